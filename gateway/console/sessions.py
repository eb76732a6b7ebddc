"""Console logins and sessions, kept in the gateway's store so that every node of a cluster knows them.

* A **login link** (``nswgw console-url``, ``nswgw demo --serve``): a random token whose SHA-256 is stored in the
  namespace ``console:login`` for ``[gateway.console] login_link_ttl`` seconds, naming the operator. It works
  once: redeeming it claims a ``used:`` record atomically (:meth:`AdapterState.add`), so two nodes redeeming the
  same link at once let only one in.
* A **session**: a random id (the HttpOnly, SameSite=Strict cookie ``nswgw_console``) whose SHA-256 is stored in
  ``console:session`` with the operator, the session's CSRF token and its expiry (``session_timeout`` after the
  login). The store never holds a token or a session id in clear.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from gateway.config import ConsoleSettings
from gateway.ports import StoreAdapterState
from gateway.store.base import Store

__all__ = ["ConsoleSession", "Sessions", "LOGIN_NAMESPACE", "SESSION_NAMESPACE"]

LOGIN_NAMESPACE = "console:login"
SESSION_NAMESPACE = "console:session"


def _key(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ConsoleSession:
    """A logged-in operator."""

    id: str
    """The session id (the cookie's value)."""
    operator: str
    csrf: str
    """The token every POST form of this session carries (``csrf`` field)."""
    expires_at: float


class Sessions:
    """Login links and sessions of the console in ``store`` (expiring on ``now``, the gateway's clock)."""

    def __init__(self, store: Store, settings: ConsoleSettings, *, now: Callable[[], float]) -> None:
        self.settings = settings
        self.now = now
        self._links = StoreAdapterState(store, LOGIN_NAMESPACE, now=now)
        self._sessions = StoreAdapterState(store, SESSION_NAMESPACE, now=now)

    async def issue_link(self, operator: str) -> str:
        """A new one-time login token for ``operator``, valid ``login_link_ttl`` seconds."""
        token = secrets.token_urlsafe(32)
        await self._links.put(_key(token), operator.encode("utf-8"), ttl=self.settings.login_link_ttl)
        return token

    async def redeem(self, token: str) -> str | None:
        """The operator of a live login token, once: a second redemption (on any node) is None."""
        key = _key(token)
        operator = await self._links.get(key)
        if operator is None:
            return None
        if not await self._links.add(f"used:{key}", b"", ttl=self.settings.login_link_ttl):
            return None
        await self._links.delete(key)
        return operator.decode("utf-8")

    async def open(self, operator: str) -> ConsoleSession:
        """A new session of ``operator``."""
        session = ConsoleSession(
            id=secrets.token_urlsafe(32),
            operator=operator,
            csrf=secrets.token_urlsafe(24),
            expires_at=self.now() + self.settings.session_timeout,
        )
        record = json.dumps({"operator": operator, "csrf": session.csrf, "expires_at": session.expires_at})
        await self._sessions.put(_key(session.id), record.encode("utf-8"), ttl=self.settings.session_timeout)
        return session

    async def find(self, session_id: str) -> ConsoleSession | None:
        """The live session with this id, or None (unknown, logged out or expired)."""
        record = await self._sessions.get(_key(session_id))
        if record is None:
            return None
        data = json.loads(record)
        return ConsoleSession(session_id, str(data["operator"]), str(data["csrf"]), float(data["expires_at"]))

    async def close(self, session_id: str) -> None:
        """Log the session out (on every node)."""
        await self._sessions.delete(_key(session_id))
