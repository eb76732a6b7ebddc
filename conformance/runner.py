"""Running a profile's cases against a party: per case setup, exchange, assertion.

:func:`run_profile` opens the profile's session (``profile.session(options)``)
once, runs the profile's preflight case (``NSW-<PROFILE>-TA00``: the target is
reachable and prepared for the kit's parties) and then each selected case with a
fresh :class:`CaseContext`. When the preflight does not pass, the other cases
are ``NOT_RUN`` with its reason: one message naming what to configure instead
of the same failure once per case.

* ``ctx.require(condition, reason)``: the case's prerequisite; when it is unmet
  the case is a FAIL whose reason starts with ``prerequisite unmet:`` (a case is
  never silently skipped);
* ``ctx.check(condition, reason)``: the predicate; false is a FAIL;
* ``ctx.http``: an HTTP client that records every request and response as an
  :class:`~conformance.model.Exchange` and notes the coded error a JSON reply
  carries; ``ctx.record(...)`` / ``ctx.observe(code)`` for other transports.

Anything else raised by a case (a refused connection, a bug in the kit) is an
ERROR with the exception's type and message; a case exceeding
``options.case_timeout`` is an ERROR too (a guard against a hung party, not an
assertion on speed).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn

import aiohttp

from conformance.model import Case, CaseResult, Exchange, Outcome, RunReport
from conformance.registry import cases as select_cases
from conformance.registry import get_profile
from conformance.settings import RunOptions

__all__ = [
    "PrerequisiteUnmet",
    "CheckFailed",
    "CaseContext",
    "HttpReply",
    "RecordingHttp",
    "run_profile",
    "run_cases",
    "PREPARING",
    "unreachable",
]

PREPARING = "see conformance/README.md#preparing-a-gateway"
"""Where a preflight failure sends the operator: the configuration the party needs for the kit's parties."""

TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (aiohttp.ClientError, OSError, TimeoutError)
"""What a request raises when the target cannot be reached (refused, reset, name unknown, timed out)."""


def unreachable(url: str, exc: BaseException) -> str:
    """The preflight's reason when ``url`` cannot be reached."""
    detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return f"the target is unreachable ({url}: {detail}); start the party or correct --target"


class PrerequisiteUnmet(Exception):
    """The case cannot run: something it needs (a credential, a certificate, a piece of the party) is missing."""


class CheckFailed(AssertionError):
    """The case's predicate does not hold."""


@dataclass(frozen=True)
class HttpReply:
    """A response as the kit saw it."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The decoded JSON body, or None when the body is not JSON."""
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            return None

    @property
    def error_code(self) -> str | None:
        """``error.code`` of a JSON error reply."""
        data = self.json()
        if isinstance(data, dict) and isinstance(data.get("error"), dict):
            code = data["error"].get("code")
            return str(code) if code is not None else None
        return None


class RecordingHttp:
    """An HTTP client bound to one case: every request and response becomes an exchange of that case."""

    def __init__(self, client: aiohttp.ClientSession, ctx: CaseContext) -> None:
        self._client = client
        self._ctx = ctx

    async def request(
        self, method: str, url: str, *, body: bytes = b"", headers: Mapping[str, str] | None = None, note: str = ""
    ) -> HttpReply:
        headers = dict(headers or {})
        shown = {k: ("Bearer ***" if k.lower() == "authorization" else v) for k, v in headers.items()}
        self._ctx.record(Exchange.of("sent", f"{method} {url}", shown, body, note))
        async with self._client.request(method, url, data=body if body else None, headers=headers) as response:
            data = await response.read()
            reply = HttpReply(response.status, dict(response.headers), data)
        self._ctx.record(Exchange.of("received", f"HTTP {reply.status}", reply.headers, data))
        if reply.error_code:
            self._ctx.observe(reply.error_code)
        return reply

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str] | None = None, *, note: str = ""
    ) -> HttpReply:
        return await self.request("POST", url, body=body, headers=headers, note=note)

    async def get(self, url: str, headers: Mapping[str, str] | None = None, *, note: str = "") -> HttpReply:
        return await self.request("GET", url, headers=headers, note=note)


class CaseContext:
    """What a case function sees: the profile session, the run options and the recording helpers."""

    def __init__(self, case: Case, session: Any, options: RunOptions, client: aiohttp.ClientSession) -> None:
        self.case = case
        self.session = session
        self.options = options
        self.exchanges: list[Exchange] = []
        self.error_code: str | None = None
        self.http = RecordingHttp(client, self)

    def record(self, exchange: Exchange) -> None:
        self.exchanges.append(exchange)

    def observe(self, code: str | None) -> None:
        """Note the coded error the party answered with (the last one wins)."""
        if code:
            self.error_code = code

    def require(self, condition: object, reason: str) -> None:
        if not condition:
            raise PrerequisiteUnmet(reason)

    def check(self, condition: object, reason: str) -> None:
        if not condition:
            raise CheckFailed(reason)

    def fail(self, reason: str) -> NoReturn:
        raise CheckFailed(reason)

    def expect_code(self, observed: str | None, *expected: str, what: str = "the reply") -> None:
        """The predicate "the party answered with one of ``expected``"."""
        self.observe(observed)
        if observed not in expected:
            raise CheckFailed(f"{what}: expected error code {' or '.join(expected)}, observed {observed or 'none'}")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


async def _run_case(case: Case, session: Any, options: RunOptions, client: aiohttp.ClientSession) -> CaseResult:
    ctx = CaseContext(case, session, options, client)
    start = time.monotonic()
    outcome, reason = Outcome.PASS, ""
    assert case.func is not None
    try:
        async with asyncio.timeout(options.case_timeout):
            await case.func(ctx)
    except PrerequisiteUnmet as exc:
        outcome, reason = Outcome.FAIL, f"prerequisite unmet: {exc}"
    except CheckFailed as exc:
        outcome, reason = Outcome.FAIL, str(exc) or "the predicate does not hold"
    except TimeoutError:
        outcome, reason = Outcome.ERROR, f"the case did not finish within {options.case_timeout:g} s"
    except (aiohttp.ClientError, OSError) as exc:
        outcome, reason = Outcome.ERROR, f"transport failure: {type(exc).__name__}: {exc}"
    except Exception as exc:  # noqa: BLE001 - a broken case is reported, never fatal to the run
        outcome, reason = Outcome.ERROR, f"{type(exc).__name__}: {exc}"
    return CaseResult(case, outcome, reason, ctx.error_code, tuple(ctx.exchanges), time.monotonic() - start)


def _not_run(preflight: CaseResult) -> str:
    return f"not run: the preflight {preflight.case.id} did not pass: {preflight.reason}"


async def run_cases(selected: list[Case], profile_name: str, options: RunOptions) -> RunReport:
    """Run ``selected`` (cases of one profile), preflight cases first, and return the report."""
    prof = get_profile(profile_name)
    started = _now()
    results: list[CaseResult] = []
    ordered = [c for c in selected if c.preflight] + [c for c in selected if not c.preflight]
    timeout = aiohttp.ClientTimeout(total=options.request_timeout)
    async with aiohttp.ClientSession(timeout=timeout) as client:
        try:
            async with prof.session(options) as session:
                blocked: CaseResult | None = None
                for c in ordered:
                    if blocked is not None:
                        results.append(CaseResult(c, Outcome.NOT_RUN, _not_run(blocked)))
                        continue
                    result = await _run_case(c, session, options, client)
                    results.append(result)
                    if c.preflight and not result.passed:
                        blocked = result
        except PrerequisiteUnmet as exc:
            done = {r.case.id for r in results}
            results += [CaseResult(c, Outcome.FAIL, f"prerequisite unmet: {exc}") for c in ordered if c.id not in done]
        except Exception as exc:  # noqa: BLE001 - the session could not be opened or closed
            done = {r.case.id for r in results}
            results += [
                CaseResult(c, Outcome.ERROR, f"profile session failed: {type(exc).__name__}: {exc}")
                for c in ordered
                if c.id not in done
            ]
    return RunReport(profile_name, options.target, options.role, started, _now(), tuple(results))


async def run_profile(profile_name: str, options: RunOptions, *, only: tuple[str, ...] = ()) -> RunReport:
    """Run every case of ``profile_name`` for the kit's role (or only the ids in ``only``, after the preflight)."""
    selected = select_cases(profile_name, role=options.role)
    if only:
        selected = [c for c in selected if c.preflight or c.id in only]
    return await run_cases(selected, profile_name, options)
