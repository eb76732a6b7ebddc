"""The tamper-evident message log: a hash chain over every accepted and every delivered message.

Each :class:`JournalEntry` carries the SHA-256 of the previous entry's hash
and its own canonical content, so editing, inserting or removing any entry
(other than cutting the newest ones off the end) breaks the chain at that
point, which :func:`verify_chain` reports. The entries are appended by the
store in the same transaction as the state change they record (accepting a
message, its receipt being verified), so the log and the store never
disagree. ``nswgw log verify`` runs :func:`verify_chain` over a store.

Cutting entries off the *end* is only detectable against a head recorded
elsewhere: :class:`JournalReport` gives ``head`` (seq and hash) for an
operator to publish or to compare with a previous run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = [
    "GENESIS",
    "JournalEntry",
    "JournalProblem",
    "JournalReport",
    "entry_hash",
    "head_status",
    "payload_digest",
    "verify_chain",
]

GENESIS = "0" * 64
"""The ``prev`` hash of the first entry."""

ACCEPTED = "ACCEPTED"
DELIVERED = "DELIVERED"


def payload_digest(data: bytes) -> str:
    """The SHA-256 hex digest recorded for a payload."""
    return hashlib.sha256(data).hexdigest()


def entry_hash(prev: str, seq: int, at: float, kind: str, message_id: str, destination: str | None, digest: str) -> str:
    """The hash of an entry: SHA-256 over the previous hash and the entry's canonical JSON."""
    body = json.dumps([seq, repr(float(at)), kind, message_id, destination, digest], separators=(",", ":"))
    return hashlib.sha256(prev.encode("ascii") + b"\n" + body.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class JournalEntry:
    """One appended record."""

    seq: int
    at: float
    kind: str
    """``ACCEPTED`` (stored and acknowledged to its sender) or ``DELIVERED`` (receipt verified)."""
    message_id: str
    destination: str | None
    digest: str
    """SHA-256 of the payload accepted or delivered."""
    prev: str
    hash: str

    @classmethod
    def after(
        cls,
        prev_seq: int,
        prev_hash: str,
        *,
        at: float,
        kind: str,
        message_id: str,
        destination: str | None,
        digest: str,
    ) -> JournalEntry:
        seq = prev_seq + 1
        return cls(
            seq,
            at,
            kind,
            message_id,
            destination,
            digest,
            prev_hash,
            entry_hash(prev_hash, seq, at, kind, message_id, destination, digest),
        )


@dataclass(frozen=True)
class JournalProblem:
    seq: int
    problem: str
    """``edited`` (the entry does not hash to its recorded hash), ``removed`` (a gap) or ``broken-link``."""

    def __str__(self) -> str:
        return f"entry {self.seq}: {self.problem}"


@dataclass(frozen=True)
class JournalReport:
    entries: int
    head_seq: int
    head_hash: str
    problems: tuple[JournalProblem, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_chain(entries: Iterable[JournalEntry]) -> JournalReport:
    """Walk the chain in ``seq`` order and report every place it is broken."""
    problems: list[JournalProblem] = []
    count = 0
    prev_seq, prev_hash = 0, GENESIS
    for entry in entries:
        count += 1
        if entry.seq != prev_seq + 1:
            problems.append(JournalProblem(prev_seq + 1, f"removed (next entry present is {entry.seq})"))
        elif entry.prev != prev_hash:
            problems.append(JournalProblem(entry.seq, "broken-link (prev does not match the previous entry's hash)"))
        expected = entry_hash(
            entry.prev, entry.seq, entry.at, entry.kind, entry.message_id, entry.destination, entry.digest
        )
        if expected != entry.hash:
            problems.append(JournalProblem(entry.seq, "edited (content does not match its hash)"))
        prev_seq, prev_hash = entry.seq, entry.hash
    return JournalReport(count, prev_seq, prev_hash, tuple(problems))


def head_status(head: JournalEntry | None) -> str:
    """``ok`` when the newest entry (``None``: an empty journal) hashes to its recorded hash, else ``failed: ...``
    (the cheap check of readiness; :func:`verify_chain` walks the whole chain)."""
    if head is None:
        return "ok"
    expected = entry_hash(head.prev, head.seq, head.at, head.kind, head.message_id, head.destination, head.digest)
    return "ok" if expected == head.hash else f"failed: the journal head (entry {head.seq}) does not match its hash"
