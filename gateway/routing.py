"""Routing: which destinations a message goes to, from the ``[[routes]]`` of the configuration.

Rules are tried in order; the first whose ``document_type``, ``procedure``,
``sender`` and ``destination`` all match (``*`` matches anything) gives the
destinations. Several destinations fan the message out (an issued e-C/O goes
to the partner state and to customs), each into its own outbox. Nothing here
knows any particular partner.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from gateway.config import RouteSettings
from gateway.errors import NoRoute, UnknownDestination
from gateway.model import SubmissionEnvelope
from gateway.ports import did_you_mean

__all__ = ["Router"]


def _match(pattern: str, value: str | None) -> bool:
    return pattern == "*" or pattern == value


@dataclass(frozen=True)
class Router:
    routes: Sequence[RouteSettings]
    destinations: Collection[str]
    """The configured destinations: a named ``X-Destination`` must be one of them or a route's ``destination``."""

    def route(self, envelope: SubmissionEnvelope) -> tuple[str, ...]:
        """The destinations for ``envelope``; :class:`~gateway.errors.UnknownDestination` when the sender
        names a destination nobody knows, :class:`~gateway.errors.NoRoute` when no rule matches."""
        named = envelope.destination
        if named is not None:
            known = set(self.destinations) | {r.destination for r in self.routes if r.destination != "*"}
            if named not in known:
                raise UnknownDestination(
                    f"unknown destination {named!r}{did_you_mean(named, known, 'destination')}", field="X-Destination"
                )
        for route in self.routes:
            if (
                _match(route.document_type, envelope.document_type)
                and _match(route.procedure, envelope.procedure)
                and _match(route.sender, envelope.sender)
                and _match(route.destination, envelope.destination)
            ):
                return tuple(dict.fromkeys(route.to))
        where = f" to {envelope.destination}" if envelope.destination else ""
        raise NoRoute(
            f"no route for {envelope.document_type} from {envelope.sender}{where}",
            field="X-Destination" if envelope.destination else "X-Document-Type",
        )
