"""The case model of the conformance kit: cases, exchanged messages, results and run reports.

A :class:`Case` is a frozen description (stable id, profile, title, prerequisite,
predicate, severity, the kit's role) of one check, built from an ``async``
case function by :func:`conformance.registry.case`: the title is the first
line of the function's docstring, the prerequisite and the predicate its
``Prerequisite:`` and ``Predicate:`` sections. A run produces one
:class:`CaseResult` per case (``PASS``, ``FAIL``, ``ERROR`` or ``NOT_RUN``,
with the messages exchanged and the error code observed) collected in a
:class:`RunReport`, which the reporters render.

A profile's *preflight* case (``Case.preflight``) runs first; when it does not
pass, the other cases are ``NOT_RUN`` with the preflight's reason, instead of
each failing for the same missing piece of configuration.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

__all__ = [
    "Severity",
    "Outcome",
    "Role",
    "Case",
    "CaseFunction",
    "CaseContextLike",
    "Exchange",
    "CaseResult",
    "RunReport",
    "CASE_ID",
    "parse_docstring",
]

CASE_ID = re.compile(r"^NSW-[A-Z0-9]{2,8}-(?:TA|RX)[0-9]{2}$")
"""Stable case ids: ``NSW-<PROFILE>-TA<nn>`` (kit as sender) or ``-RX<nn>`` (kit as receiver)."""

Role = Literal["sender", "receiver"]
"""The kit's role in a case: ``sender`` (the kit sends to the party's endpoint) or ``receiver``."""


class CaseContextLike(Protocol):
    """What the model needs of the context a case function receives (the runner's ``CaseContext``)."""

    @property
    def session(self) -> Any: ...

    def record(self, exchange: Exchange) -> None: ...

    def observe(self, code: str | None) -> None: ...


CaseFunction = Callable[[CaseContextLike], Awaitable[None]]
"""``async def f(ctx) -> None``, called by the runner with its ``CaseContext`` (a :class:`CaseContextLike`)."""


class Severity(enum.StrEnum):
    """How much a failure matters to go-live: ``must`` blocks it, ``should`` is reported."""

    MUST = "must"
    SHOULD = "should"


class Outcome(enum.StrEnum):
    """``PASS``: the predicate holds. ``FAIL``: it does not, or the prerequisite is unmet.
    ``ERROR``: the case could not be carried out (the kit or the transport broke).
    ``NOT_RUN``: the profile's preflight did not pass, so the case was not attempted."""

    PASS = "PASS"
    FAIL = "FAIL"
    ERROR = "ERROR"
    NOT_RUN = "NOT_RUN"


_SECTION = re.compile(r"^\s*(Prerequisite|Predicate):\s*(.*)$")


def parse_docstring(doc: str | None) -> tuple[str, str, str]:
    """(title, prerequisite, predicate) of a case function's docstring; ValueError if a part is missing."""
    if not doc or not doc.strip():
        raise ValueError("a conformance case needs a docstring with a title, Prerequisite: and Predicate:")
    lines = doc.strip().splitlines()
    title = lines[0].strip()
    sections: dict[str, list[str]] = {}
    current: str | None = None
    for line in lines[1:]:
        m = _SECTION.match(line)
        if m:
            current = m.group(1)
            if current in sections:
                raise ValueError(f"section {current}: appears twice")
            sections[current] = [m.group(2).strip()]
        elif current is not None:
            sections[current].append(line.strip())
    out = []
    for name in ("Prerequisite", "Predicate"):
        text = " ".join(p for p in sections.get(name, []) if p).strip()
        if not text:
            raise ValueError(f"the docstring has no (or an empty) {name}: section")
        out.append(text)
    if not title or _SECTION.match(title):
        raise ValueError("the docstring's first line must be the case title")
    return title, out[0], out[1]


@dataclass(frozen=True)
class Case:
    """One conformance case. Built by :func:`conformance.registry.case`; its ``id`` never changes."""

    id: str
    profile: str
    title: str
    prerequisite: str
    predicate: str
    severity: Severity = Severity.MUST
    role: Role = "sender"
    preflight: bool = False
    """Run before the profile's other cases; when it does not pass, they are NOT_RUN."""
    func: CaseFunction | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "profile": self.profile,
            "title": self.title,
            "prerequisite": self.prerequisite,
            "predicate": self.predicate,
            "severity": self.severity.value,
            "role": self.role,
            "preflight": self.preflight,
        }


MAX_BODY_CHARS = 64 * 1024
"""Longest body kept per exchanged message in a report (the rest is cut, with its size noted)."""


@dataclass(frozen=True)
class Exchange:
    """One message that crossed the wire during a case (as sent or as received, not interpreted)."""

    direction: Literal["sent", "received"]
    summary: str
    """``POST http://host/v1/messages`` for a request, ``HTTP 202`` for a response."""
    headers: tuple[tuple[str, str], ...] = ()
    body: str = ""
    """The body as text (undecodable bytes replaced), cut at :data:`MAX_BODY_CHARS`."""
    size: int = 0
    """The body's full size in bytes."""
    note: str = ""

    @classmethod
    def of(
        cls, direction: Literal["sent", "received"], summary: str, headers: Any = (), body: bytes = b"", note: str = ""
    ) -> Exchange:
        items = tuple((str(k), str(v)) for k, v in (headers.items() if hasattr(headers, "items") else headers))
        text = body[: MAX_BODY_CHARS * 4].decode("utf-8", errors="replace")
        if len(text) > MAX_BODY_CHARS or len(body) > MAX_BODY_CHARS * 4:
            text = text[:MAX_BODY_CHARS] + f"\n[... {len(body)} bytes in all, cut for the report]"
        return cls(direction, summary, items, text, len(body), note)

    def to_dict(self) -> dict[str, Any]:
        return {
            "direction": self.direction,
            "summary": self.summary,
            "headers": [list(h) for h in self.headers],
            "body": self.body,
            "size": self.size,
            "note": self.note,
        }


@dataclass(frozen=True)
class CaseResult:
    """The outcome of one case."""

    case: Case
    outcome: Outcome
    reason: str
    """Why it failed or erred (empty on PASS, or a short confirmation)."""
    error_code: str | None = None
    """The coded error the party answered with, when it answered with one."""
    exchanges: tuple[Exchange, ...] = ()
    duration: float = 0.0

    @property
    def passed(self) -> bool:
        return self.outcome is Outcome.PASS

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.case.to_dict(),
            "result": self.outcome.value,
            "reason": self.reason,
            "error_code": self.error_code,
            "duration": round(self.duration, 4),
            "exchanges": [e.to_dict() for e in self.exchanges],
        }


@dataclass(frozen=True)
class RunReport:
    """Every result of one run of one profile against one party."""

    profile: str
    target: str
    role: Role
    started_at: str
    finished_at: str
    results: tuple[CaseResult, ...]
    kit_version: str = "1"

    @property
    def passed(self) -> bool:
        """True only if every case passed (and there was at least one)."""
        return bool(self.results) and all(r.passed for r in self.results)

    def counts(self) -> dict[str, int]:
        out = {o.value: 0 for o in Outcome}
        for r in self.results:
            out[r.outcome.value] += 1
        return out

    def result(self, case_id: str) -> CaseResult:
        for r in self.results:
            if r.case.id == case_id:
                return r
        raise KeyError(case_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kit_version": self.kit_version,
            "profile": self.profile,
            "target": self.target,
            "role": self.role,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "passed": self.passed,
            "counts": self.counts(),
            "cases": [r.to_dict() for r in self.results],
        }
