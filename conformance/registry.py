"""The registry of profiles and their cases.

A profile module declares its :class:`Profile` with :func:`profile` and its
cases with the :func:`case` decorator::

    REST = profile("rest-intermediary", "REST API of an intermediary", session=RestSession.open)

    @case("NSW-REST-TA01", REST)
    async def valid_submission(ctx: CaseContext) -> None:
        \"\"\"A valid signed submission is accepted with an acknowledgement.

        Prerequisite: the kit holds a token of a party allowed to submit the document type.
        Predicate: HTTP 202 with an ack naming the message id and state QUEUED.
        \"\"\"

Ids are unique across profiles and never reused; a case without a title,
a ``Prerequisite:`` or a ``Predicate:`` section cannot be registered.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from conformance.model import CASE_ID, Case, CaseFunction, Role, Severity, parse_docstring
from gateway.errors import ConfigError

__all__ = ["Profile", "profile", "case", "profiles", "get_profile", "cases", "get_case", "PROFILE_MODULES"]

PROFILE_MODULES: tuple[str, ...] = (
    "conformance.profiles.rest",
    "conformance.profiles.vnsw",
    "conformance.profiles.as4",
    "conformance.profiles.acdd",
)
"""Modules whose import registers the built-in profiles."""

SessionFactory = Callable[[Any], AbstractAsyncContextManager[Any]]

_F = TypeVar("_F", bound=Callable[..., Awaitable[None]])


@dataclass
class Profile:
    """A set of cases for one protocol, and how to open a session against a party (``session(options)``)."""

    name: str
    title: str
    session: SessionFactory
    """``session(RunOptions)`` -> async context manager yielding the object cases see as ``ctx.session``."""
    description: str = ""
    cases: dict[str, Case] = field(default_factory=dict)


_PROFILES: dict[str, Profile] = {}
_CASES: dict[str, Case] = {}
_loaded = False


def profile(name: str, title: str, *, session: SessionFactory, description: str = "") -> Profile:
    """Declare a profile (once per name)."""
    if name in _PROFILES:
        raise ValueError(f"profile {name!r} declared twice")
    p = Profile(name, title, session, description)
    _PROFILES[name] = p
    return p


def case(
    case_id: str,
    in_profile: Profile,
    *,
    severity: Severity = Severity.MUST,
    role: Role = "sender",
    preflight: bool = False,
) -> Callable[[_F], _F]:
    """Register an ``async def f(ctx)`` as case ``case_id`` of ``in_profile``.

    A ``preflight`` case runs before the profile's other cases of its role (one per profile and role, id
    ``TA00``/``RX00``); when it does not pass the others are reported NOT_RUN with its reason.
    """
    if not CASE_ID.match(case_id):
        raise ValueError(f"case id {case_id!r} does not match {CASE_ID.pattern}")
    if (case_id[-4:-2] == "RX") != (role == "receiver"):
        raise ValueError(f"case id {case_id!r}: TAnn ids are for the kit as sender, RXnn for the kit as receiver")
    if preflight != case_id.endswith("00"):
        raise ValueError(f"case id {case_id!r}: the nn 00 is reserved for the profile's preflight case")
    if preflight and any(c.preflight and c.role == role for c in in_profile.cases.values()):
        raise ValueError(f"profile {in_profile.name!r} already has a preflight case for the kit as {role}")

    def register(func: _F) -> _F:
        if case_id in _CASES:
            raise ValueError(f"case id {case_id} registered twice")
        try:
            title, prerequisite, predicate = parse_docstring(func.__doc__)
        except ValueError as exc:
            raise ValueError(f"case {case_id} ({func.__qualname__}): {exc}") from None
        # the runner calls it with its CaseContext, which is a CaseContextLike
        c = Case(
            case_id,
            in_profile.name,
            title,
            prerequisite,
            predicate,
            severity,
            role,
            preflight,
            cast(CaseFunction, func),
        )
        _CASES[case_id] = c
        in_profile.cases[case_id] = c
        return func

    return register


def _load() -> None:
    global _loaded
    if not _loaded:
        for module in PROFILE_MODULES:
            importlib.import_module(module)
        _loaded = True


def profiles() -> list[Profile]:
    """Every registered profile, by name."""
    _load()
    return [_PROFILES[n] for n in sorted(_PROFILES)]


def get_profile(name: str) -> Profile:
    """A profile by name; CONFIG_INVALID with "did you mean" otherwise."""
    _load()
    p = _PROFILES.get(name)
    if p is None:
        close = difflib.get_close_matches(name, list(_PROFILES), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"no conformance profile {name!r}{hint} (known: {', '.join(sorted(_PROFILES))})", field="profile"
        )
    return p


def cases(profile_name: str | None = None, *, role: Role | None = None) -> list[Case]:
    """The cases of one profile (or of all), in id order, optionally only those for one role of the kit."""
    _load()
    selected = get_profile(profile_name).cases.values() if profile_name else _CASES.values()
    return sorted((c for c in selected if role is None or c.role == role), key=lambda c: (c.profile, c.id))


def get_case(case_id: str) -> Case:
    _load()
    try:
        return _CASES[case_id]
    except KeyError:
        raise ConfigError(f"no conformance case {case_id!r}", field="case") from None
