"""Routing: which destinations a message goes to, from the ``[[routes]]`` of the configuration.

Rules are tried in order; the first whose ``document_type``, ``procedure``,
``sender`` and ``destination`` all match (``*`` matches anything) gives the
destinations. Several destinations fan the message out (an issued e-C/O goes
to the partner state and to customs), each into its own outbox. Nothing here
knows any particular partner.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gateway.config import RouteSettings
from gateway.errors import NoRoute
from gateway.model import Envelope

__all__ = ["Router"]


def _match(pattern: str, value: str | None) -> bool:
    return pattern == "*" or pattern == value


@dataclass(frozen=True)
class Router:
    routes: Sequence[RouteSettings]

    def route(self, envelope: Envelope) -> tuple[str, ...]:
        """The destinations for ``envelope``; :class:`~gateway.errors.NoRoute` when no rule matches."""
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
