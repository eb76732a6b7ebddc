"""Gateway lifecycle events and the in-process bus that fans them out.

An :class:`Event` is one step in a message's life (``accepted``, ``delivered``,
``dead_lettered``, ...) or in the gateway's (``breaker_opened``,
``config_reloaded``, ...).  :meth:`EventBus.publish` never blocks and never
raises: each subscriber has a bounded buffer and a slow subscriber loses its
oldest events (counted in :attr:`Subscription.dropped`) instead of slowing the
gateway.  Every published event is also logged on the ``nswgw.events`` logger
with its fields passed as ``extra=`` so structured log formatters see them.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType, TracebackType
from typing import Any

from gateway.model import Delivery, State

log = logging.getLogger("nswgw.events")

EVENT_NAMES = frozenset(
    {
        "accepted",
        "rejected",
        "delivered",
        "receipt_verified",
        "retry_scheduled",
        "dead_lettered",
        "replayed",
        "breaker_opened",
        "breaker_half_open",
        "breaker_closed",
        "certificate_expiring",
        "config_reloaded",
        "store_fault",
        "timestamp_overdue",
        "reference_list_published",
    }
)
"""Every event the gateway publishes.

Message events carry ``message_id`` (the gateway id) and, as far as the step knows them, ``sender_message_id``,
``sender``, ``on_behalf_of``, ``destination``, ``document_type``, ``state``, ``attempt``, ``code``, ``field``,
``incident_id`` and ``latency_seconds``:

* ``accepted`` (stored, acknowledged; ``destinations``, ``latency_seconds``: intake), ``rejected`` (stored as
  ``REJECTED``, or refused at an entry point before anything was stored: ``code``, ``field``, ``incident_id``,
  ``route``);
* ``delivered`` (the partner took the request; ``latency_seconds``: that attempt), ``receipt_verified``
  (``ACKNOWLEDGED``; ``latency_seconds``: queued → receipt), ``retry_scheduled`` (``code``, ``attempt``,
  ``next_attempt_at``), ``dead_lettered`` (``code``, ``attempt``), ``replayed`` (``operator``);
* ``breaker_opened`` / ``breaker_half_open`` / ``breaker_closed`` (``destination``, ``failures``),
  ``certificate_expiring`` (``party``, ``role``, ``serial``, ``not_after``, ``days_left``), ``config_reloaded``
  (``operator``, ``changed``), ``store_fault`` (``code``, ``incident_id``, ``route`` or ``destination``),
  ``timestamp_overdue`` (the journal head has had no RFC 3161 timestamp for longer than the grace period:
  ``code``, ``since``, ``failures``, ``last_seq``, ``error``);
* ``reference_list_published`` (a version of a policy list stored, announced once across the nodes: ``list``,
  ``version``, ``owner``, ``purpose``, ``effective_from``, ``digest``, ``publisher``, ``via``, ``message``,
  ``entries``).
"""

#: Events logged at WARNING; ERROR_EVENTS at ERROR; every other event at INFO.
WARNING_EVENTS = frozenset({"retry_scheduled", "dead_lettered", "breaker_opened", "certificate_expiring"})
ERROR_EVENTS = frozenset({"store_fault", "timestamp_overdue"})


@dataclass(frozen=True)
class Event:
    """One lifecycle event: a name, the gateway time and its structured fields."""

    name: str
    at: float
    fields: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def to_dict(self) -> dict[str, Any]:
        """The event as a JSON-ready dict with the time in ISO 8601 UTC."""
        out: dict[str, Any] = {
            "event": self.name,
            "at": datetime.fromtimestamp(self.at, UTC).isoformat(),
        }
        for key, value in self.fields.items():
            out[key] = value if isinstance(value, str | int | float | bool | None) else str(value)
        return out


def delivery_fields(d: Delivery, **more: Any) -> dict[str, Any]:
    """The fields of a message event about one delivery (``more`` added; ``None`` values left out)."""
    fields: dict[str, Any] = {
        "message_id": d.message_id,
        "destination": d.destination,
        "sender": d.sender,
        "on_behalf_of": d.on_behalf_of,
        "document_type": d.document_type,
        "conversation": d.conversation,
        "state": d.state.value,
        "attempt": d.attempts,
    }
    code = (d.last_error or {}).get("code")
    if code is not None and d.state is not State.ACKNOWLEDGED:
        fields["code"] = code
    fields.update(more)
    return {k: v for k, v in fields.items() if v is not None}


class Subscription:
    """An async iterator over the events published after it was created."""

    def __init__(self, bus: EventBus, buffer: int) -> None:
        self._bus = bus
        self._queue: collections.deque[Event] = collections.deque(maxlen=max(1, buffer))
        self._wakeup = asyncio.Event()
        self._closed = False
        self.dropped = 0

    def _offer(self, event: Event) -> None:
        if self._queue.maxlen is not None and len(self._queue) == self._queue.maxlen:
            self.dropped += 1
        self._queue.append(event)
        self._wakeup.set()

    def close(self) -> None:
        """Stop receiving events; a pending iteration ends."""
        self._closed = True
        self._bus._subscribers.discard(self)
        self._wakeup.set()

    def pending(self) -> list[Event]:
        """Take every event buffered now, without waiting (oldest first)."""
        taken = list(self._queue)
        self._queue.clear()
        return taken

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        while not self._queue:
            if self._closed:
                raise StopAsyncIteration
            self._wakeup.clear()
            await self._wakeup.wait()
        return self._queue.popleft()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class EventBus:
    """Fans events out to subscribers and to the ``nswgw.events`` logger."""

    def __init__(self) -> None:
        self._subscribers: set[Subscription] = set()
        self._closed = False

    def publish(self, event: Event) -> None:
        """Log the event and hand it to every subscriber; never blocks or raises."""
        try:
            level = (
                logging.ERROR
                if event.name in ERROR_EVENTS
                else logging.WARNING
                if event.name in WARNING_EVENTS
                else logging.INFO
            )
            extra = {k: v for k, v in event.fields.items() if k not in _RESERVED}
            extra["event"] = event.name
            log.log(level, event.name, extra=extra)
            for subscription in list(self._subscribers):
                subscription._offer(event)
        except Exception:  # noqa: BLE001 - publishing must never break the gateway
            log.exception("event publication failed", extra={"event": "event_failed"})

    def subscribe(self, *, buffer: int = 1000) -> Subscription:
        """A new subscription keeping at most ``buffer`` undelivered events (already ended once the bus is
        closed)."""
        subscription = Subscription(self, buffer)
        if self._closed:
            subscription.close()
        else:
            self._subscribers.add(subscription)
        return subscription

    def close(self) -> None:
        """End every subscription, and those made from now on, once their buffered events are read (the gateway
        stops: event streams end instead of holding the HTTP server's shutdown)."""
        self._closed = True
        for subscription in list(self._subscribers):
            subscription.close()


class NullEventBus(EventBus):
    """The default bus for callers that pass none: drops every event."""

    def publish(self, event: Event) -> None:
        return None


_RESERVED = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}
