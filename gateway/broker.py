"""Intake: verify, map, route and sign a submission, then store it durably in one transaction.

:meth:`Broker.submit` runs the intake state machine
(``RECEIVED → VERIFIED → MAPPED → QUEUED``, or ``REJECTED`` with the coded
error) and hands the result to :meth:`Store.accept`, which commits the
message, its history, one outbox entry per destination and the journal entry
together. The acknowledgement is returned only after that commit; a second
submission with the same sender and message id returns the original
acknowledgement and adds nothing to any outbox.

Authorization failures (wrong party, document type not allowed, an
intermediary submitting for an enterprise it is not delegated for:
``AUTH_DELEGATION_MISSING``) are raised before anything is stored.

Verification (``gateway.verification``) yields the verified content only;
that content, without the sender's signature, is mapped to each
destination's format (``RegistryMapper``) and signed with the gateway's key
under each destination's profile (``gateway.signing``). Each delivery carries
the media type of the format its payload was mapped to
(:meth:`Mapper.media_type`), which the delivery worker sends as it is. The store keeps the
verified document with the sender's signature as evidence. Every other client error is stored as
``REJECTED`` with its code, so the sender can look it up, and a duplicate of
a rejected submission gets the same rejection back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, replace

from gateway.config import Config
from gateway.delivery import Clock
from gateway.errors import ClientError, DelegationMissing, NotAuthorized, RequestInvalid
from gateway.metrics import Metrics
from gateway.model import Delivery, Message, PartyId, SubmissionAck, SubmissionEnvelope
from gateway.ports import DeliverySigner, Mapper, Verifier
from gateway.routing import Router
from gateway.store.base import Store
from signing.trust import fingerprint

__all__ = ["Broker", "Submission"]


@dataclass(frozen=True)
class Submission:
    """The outcome of :meth:`Broker.submit`."""

    ack: SubmissionAck
    created: bool
    """False when this was a duplicate and ``ack`` is the original acknowledgement."""


class Broker:
    """Intake: authorization, verification, routing, mapping and signing, then one durable acceptance.
    Every collaborator is built by the composition root (:class:`gateway.api.Gateway`)."""

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        verifier: Verifier,
        mapper: Mapper,
        signer: DeliverySigner,
        clock: Clock,
        metrics: Metrics,
        on_accepted: Callable[[tuple[str, ...]], None],
    ) -> None:
        self.config = config
        self.store = store
        self.verifier = verifier
        self.mapper = mapper
        self.signer = signer
        self.clock = clock
        self.metrics = metrics
        self.on_accepted = on_accepted
        self.router = Router(config.routes, tuple(config.destinations))

    def _process(self, message: Message, raw: bytes) -> tuple[Message, list[Delivery], bytes]:
        """The CPU-bound part of intake (run in a worker thread). Returns the bytes to keep as evidence."""
        env = message.envelope
        verified = self.verifier.verify(raw, PartyId(env.sender), format=env.format)
        detail = None
        if verified.certificate is not None:
            detail = (
                f"signed by {verified.certificate.subject.rfc4514_string()} "
                f"(sha256 {fingerprint(verified.certificate)[:16]})"
            )
        message = message.verify(at=self.clock.now(), detail=detail)
        if env.reference is None:
            env = self._named_reference(env, verified.content)
            message = replace(message, envelope=env)
        destinations = self.router.route(env)
        payloads: dict[str, bytes] = {}
        content_types: dict[str, str] = {}
        mapped: dict[str, bytes] = {}
        for name in destinations:
            target = self.config.destinations[name].format
            target = env.format if target == "same" else target
            if target not in mapped:
                mapped[target] = self.mapper.map(verified.content, env.format, target)
            payloads[name] = mapped[target]
            content_types[name] = self.mapper.media_type(target)
        message = message.map(at=self.clock.now())
        signed: dict[tuple[int, object], bytes] = {}
        for name, body in payloads.items():
            key = (id(body), self.signer.profile_for(name))
            if key not in signed:
                signed[key] = self.signer.sign(body, name)
            payloads[name] = signed[key]
        at = self.clock.now()
        message = message.enqueue(at=at)
        deliveries = [
            Delivery.create(
                message,
                name,
                payloads[name],
                content_type=content_types[name],
                at=at,
                ttl=self.config.destinations[name].retry.ttl,
            )
            for name in destinations
        ]
        return message, deliveries, verified.signed if verified.signed is not None else verified.content

    def _named_reference(self, env: SubmissionEnvelope, content: bytes) -> SubmissionEnvelope:
        """``env`` with the dossier reference the document names (a VNSW envelope's ``Header/Subject/reference``),
        as the VNSW SOAP endpoint takes it, so that results correlate whichever way the message came in; also
        its conversation unless the sender named one."""
        named = self.mapper.reference(content, env.format)
        if named is None:
            return env
        value, where = named
        try:
            return replace(env, reference=value, conversation_id=env.conversation_id or value)
        except RequestInvalid as exc:
            raise RequestInvalid(f"the document's reference {value!r} is malformed", field=where) from exc

    async def submit(self, party: str, envelope: SubmissionEnvelope, raw: bytes) -> Submission:
        """Accept ``raw`` from the authenticated ``party``; returns once it is durably stored."""
        settings = self.config.parties.get(party)
        if settings is None or envelope.sender != party:
            raise NotAuthorized(f"{party} cannot submit as {envelope.sender}", field="X-Sender")
        if not settings.may_send(envelope.document_type):
            raise NotAuthorized(f"{party} may not submit {envelope.document_type}", field="X-Document-Type")
        if envelope.on_behalf_of is not None:
            if not settings.delegated(envelope.on_behalf_of):
                raise DelegationMissing(
                    f"{party} is not delegated to submit on behalf of {envelope.on_behalf_of}", field="X-On-Behalf-Of"
                )
        elif settings.kind == "intermediary":
            raise DelegationMissing(
                f"{party} is an intermediary: name the enterprise it submits for", field="X-On-Behalf-Of"
            )
        message = Message.receive(envelope, at=self.clock.now())
        kept = raw
        try:
            message, deliveries, kept = await asyncio.to_thread(self._process, message, raw)
        except ClientError as exc:
            message = message.reject(exc, at=self.clock.now())
            deliveries = []
        ack = SubmissionAck(
            id=message.id,
            sender=envelope.sender,
            message_id=envelope.message_id,
            state=message.state,
            received_at=message.received_at,
            destinations=tuple(d.destination for d in deliveries),
            error=message.error,
            on_behalf_of=envelope.on_behalf_of,
        )
        ack, created = await self.store.accept(message, kept, deliveries, ack)
        if created:
            if ack.error:
                self.metrics.rejected[ack.error["code"]] += 1
            else:
                self.metrics.received[envelope.sender] += 1
                self.on_accepted(ack.destinations)
        return Submission(ack, created)
