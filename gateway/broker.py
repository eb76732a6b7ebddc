"""Intake: verify, map, route and sign a submission, then store it durably in one transaction.

:meth:`Broker.submit` runs the intake state machine
(``RECEIVED → VERIFIED → MAPPED → QUEUED``, or ``REJECTED`` with the coded
error) and hands the result to :meth:`Store.accept`, which commits the
message, its history, one outbox entry per destination and the journal entry
together. The acknowledgement is returned only after that commit; a second
submission with the same sender and message id returns the original
acknowledgement and adds nothing to any outbox.

Authorization failures (wrong party, document type not allowed) are raised
before anything is stored. Every other client error is stored as
``REJECTED`` with its code, so the sender can look it up, and a duplicate of
a rejected submission gets the same rejection back.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from gateway.config import Config
from gateway.delivery import Clock, DeliveryEngine, SystemClock
from gateway.errors import ClientError, NotAuthorized
from gateway.metrics import Metrics
from gateway.model import Acknowledgement, Delivery, Envelope, Message, PartyId
from gateway.ports import IdentityMapper, Mapper, NullSigner, NullVerifier, Signer, Verifier, WellFormedVerifier
from gateway.routing import Router
from gateway.store.base import Store

__all__ = ["Broker", "Submission"]


@dataclass(frozen=True)
class Submission:
    """The outcome of :meth:`Broker.submit`."""

    ack: Acknowledgement
    created: bool
    """False when this was a duplicate and ``ack`` is the original acknowledgement."""


def default_verifier(config: Config) -> Verifier:
    return NullVerifier() if config.gateway.verification == "off" else WellFormedVerifier()


class Broker:
    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        verifier: Verifier | None = None,
        mapper: Mapper | None = None,
        signer: Signer | None = None,
        clock: Clock | None = None,
        metrics: Metrics | None = None,
        engine: DeliveryEngine | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.verifier = verifier or default_verifier(config)
        self.mapper = mapper or IdentityMapper()
        self.signer = signer or NullSigner()
        self.clock = clock or SystemClock()
        self.metrics = metrics or Metrics()
        self.engine = engine
        self.router = Router(config.routes)

    def _process(self, message: Message, raw: bytes) -> tuple[Message, list[Delivery]]:
        """The CPU-bound part of intake (run in a worker thread)."""
        env = message.envelope
        verified = self.verifier.verify(raw, PartyId(env.sender))
        message = message.verify(at=self.clock.now())
        destinations = self.router.route(env)
        payloads: dict[str, bytes] = {}
        mapped: dict[str, bytes] = {}
        for name in destinations:
            target = self.config.destinations[name].format
            target = env.format if target == "same" else target
            if target not in mapped:
                mapped[target] = self.mapper.map(verified.content, env.format, target)
            payloads[name] = mapped[target]
        message = message.map(at=self.clock.now())
        signed: dict[int, bytes] = {}
        for name, body in payloads.items():
            key = id(body)
            if key not in signed:
                signed[key] = self.signer.sign(body)
            payloads[name] = signed[key]
        at = self.clock.now()
        message = message.enqueue(at=at)
        deliveries = [
            Delivery.create(message, name, payloads[name], at=at, ttl=self.config.destinations[name].retry.ttl)
            for name in destinations
        ]
        return message, deliveries

    async def submit(self, party: str, envelope: Envelope, raw: bytes) -> Submission:
        """Accept ``raw`` from the authenticated ``party``; returns once it is durably stored."""
        settings = self.config.parties.get(party)
        if settings is None or envelope.sender != party:
            raise NotAuthorized(f"{party} cannot submit as {envelope.sender}", field="X-Sender")
        if not settings.may_send(envelope.document_type):
            raise NotAuthorized(f"{party} may not submit {envelope.document_type}", field="X-Document-Type")
        message = Message.receive(envelope, at=self.clock.now())
        try:
            message, deliveries = await asyncio.to_thread(self._process, message, raw)
        except ClientError as exc:
            message = message.reject(exc, at=self.clock.now())
            deliveries = []
        ack = Acknowledgement(
            id=message.id, sender=envelope.sender, message_id=envelope.message_id, state=message.state,
            received_at=message.received_at, destinations=tuple(d.destination for d in deliveries),
            error=message.error,
        )
        ack, created = await self.store.accept(message, raw, deliveries, ack)
        if created:
            if ack.error:
                self.metrics.rejected[ack.error["code"]] += 1
            else:
                self.metrics.received[envelope.sender] += 1
                if self.engine is not None:
                    self.engine.wake(ack.destinations)
        return Submission(ack, created)
