"""Intake: verify, map, route and sign a submission, then store it durably in one transaction.

:meth:`Broker.submit` runs the intake state machine
(``RECEIVED → VERIFIED → MAPPED → QUEUED``, or ``REJECTED`` with the coded
error) and hands the result to :meth:`Store.accept`, which commits the
message, its history, one outbox entry per destination and the journal entry
together. The acknowledgement is returned only after that commit; a second
submission with the same sender and message id returns the original
acknowledgement and adds nothing to any outbox. A signed document whose verified content that sender
already had accepted under another message id (a replay: the same
:attr:`~gateway.ports.VerifiedMessage.digest`) is refused with ``DUPLICATE_CONTENT`` naming the original
message and its current state; nothing is stored or queued for it.

Authorization failures (wrong party, document type not allowed, an
intermediary submitting for an enterprise it is not delegated for:
``AUTH_DELEGATION_MISSING``) are raised before anything is stored; so is a verified document that claims a
sender identity other than the party's own (a VNSW ``From/identity``: ``IDENTITY_MISMATCH``, see
:meth:`Mapper.identities` and ``[parties.NAME.identities]``), whichever way it came in.

What an accepted document does to a certificate of origin (:meth:`Mapper.certificate`: issues, amends or cancels
it, or notifies about it) is recorded by :meth:`Store.accept` in the same transaction as the message; an act on
a certificate the gateway did not carry (or, from its non-issuer, an amendment, cancellation or verification
answer) is refused with ``CO_UNKNOWN`` naming the element, and nothing is stored. The importing side's
notifications (received, utilized, rejected, verification request) are taken only from a party answering for a
destination the certificate was routed to (``destinations.NAME.party``, else the party named like it); from any
other, ``CO_NOTIFIER_MISMATCH`` naming the element, and nothing is stored. Likewise the policy-list version a
``reference.list`` document publishes (:func:`gateway.reference.message_version`) is stored by
:meth:`Store.accept` with the message, and announced once it is committed.

What an accepted document does to the registry of issued documents (:meth:`Mapper.issued`: issues, amends or
cancels a permit, licence or certificate; a customs ``registry.utilization`` report, only from a party with the
``utilize`` registry role, else ``AUTH_FORBIDDEN``) is recorded by :meth:`Store.accept` in the same transaction; a
draw beyond a document's remaining quantity (``REGISTRY_QUANTITY_EXCEEDED``) or on an unknown, cancelled or expired
one is refused with its code (:mod:`gateway.registry`), and nothing is stored.

What a ship-call document does to its call (a declaration, an amendment, an agency's decision:
:mod:`gateway.shipcalls`) is planned from the call as stored and recorded by :meth:`Store.accept` in the same
transaction, planned again while another change of the call commits first; an amendment keeps only the deliveries
to the agencies whose part changed, and a change of the overall status adds the agent's notification. A decision on
an unknown call, from a party that is none of its agencies, or on a superseded version is refused with its
``SHIP_CALL_*`` code, and nothing is stored.

What a submission declares must be what its verified content says, for every entry point and format: the
document type by its ``[document_types.NAME]`` rule (:meth:`Mapper.kind`; ``DOCUMENT_TYPE_MISMATCH``, stored
as ``REJECTED``), and an intermediary's enterprise (``X-On-Behalf-Of``) by the enterprises the document names
(:meth:`Mapper.enterprises`; ``DELEGATION_MISMATCH``, an authorization failure: nothing is stored). The
enterprise travels with every delivery (:attr:`Delivery.on_behalf_of`), so each destination sees who relayed
what for whom.

Verification (``gateway.verification``) yields the verified content only;
that content, without the sender's signature, is mapped to each
destination's format (``RegistryMapper``) and signed with the gateway's key
under each destination's profile (``gateway.signing``). Each delivery carries
the media type of the format its payload was mapped to
(:meth:`Mapper.media_type`), which the delivery worker sends as it is. The store keeps the
verified document with the sender's signature as evidence. Every other client error is stored as
``REJECTED`` with its code, so the sender can look it up, and a duplicate of
a rejected submission gets the same rejection back; of a rejected submission the store keeps only an
:class:`~gateway.model.Excerpt` (its first ``gateway.rejected_prefix_bytes`` bytes, and the size and SHA-256 of
the whole), so an oversized or unparseable document does not cost its size in the store.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace
from typing import Any

from gateway import subscriptions
from gateway.clock import Clock
from gateway.config import Config
from gateway.cpu import CpuThreads
from gateway.errors import (
    CertificateNotifierMismatch,
    CertificateUnknown,
    ClientError,
    DelegationMismatch,
    DelegationMissing,
    DocumentTypeMismatch,
    DuplicateContent,
    IdentityMismatch,
    NotAuthorized,
    ReferenceListNotOwner,
    RegistryRefusal,
    RequestInvalid,
    StoreContended,
)
from gateway.events import Event, EventBus
from gateway.intake_pool import IntakeRunner, ThreadIntake
from gateway.metrics import Metrics
from gateway.model import (
    CertificateAct,
    Delivery,
    Excerpt,
    Message,
    PartyId,
    State,
    SubmissionAck,
    SubmissionEnvelope,
)
from gateway.ports import DeliverySigner, Mapper, Verifier
from gateway.reference import NullReferences, ReferenceDraft, References, message_version
from gateway.registry import registry_act
from gateway.routing import Router
from gateway.shipcalls import ShipCalls, ship_call_facts
from gateway.store.base import Store
from signing.trust import fingerprint
from signing.xml import Spliced

__all__ = ["Broker", "Submission"]

SHIP_CALL_ATTEMPTS = 16
"""How many times a ship-call change is planned again while other changes of the same call commit first."""


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
        events: EventBus,
        on_accepted: Callable[[tuple[str, ...]], None],
        intake_gate: Callable[[], None] = lambda: None,
        references: References | None = None,
        intake: IntakeRunner | None = None,
        cpu: CpuThreads | None = None,
    ) -> None:
        """``intake``: where :meth:`_process` runs; by default in ``cpu`` (the gateway's CPU threads, or without
        them Python's default executor)."""
        self.config = config
        self.intake_gate = intake_gate
        """Called before each submission; raises to refuse intake as a whole (``TIMESTAMP_OVERDUE``)."""
        self.store = store
        self.verifier = verifier
        self.mapper = mapper
        self.signer = signer
        self.clock = clock
        self.metrics = metrics
        self.events = events
        self.on_accepted = on_accepted
        self.references: References = references if references is not None else NullReferences()
        """The policy lists: checked at intake, published by ``reference.list`` documents."""
        self.router = Router(config.routes, tuple(config.destinations))
        self.ship_calls = ShipCalls()
        """Plans what a ship-call document does to its call (:mod:`gateway.shipcalls`)."""
        self.intake: IntakeRunner = (
            intake if intake is not None else ThreadIntake(self._process, cpu or CpuThreads(None))
        )
        """Where :meth:`_process` runs (:mod:`gateway.intake_pool`): threads, or ``intake_processes`` workers."""

    def reconfigure(self, config: Config, verifier: Verifier) -> None:
        """Authorize, verify and route with ``config`` and ``verifier`` from the next submission (a reload of
        parties, routes and trust; the destinations are the same)."""
        self.config, self.verifier = config, verifier
        self.router = Router(config.routes, tuple(config.destinations))
        self.intake.reconfigure(config)

    def _process(
        self, message: Message, document: list[bytes], drafts: list[ReferenceDraft] | None = None
    ) -> tuple[Message, list[Delivery], bytes | Spliced, CertificateAct | None]:
        """The CPU-bound part of intake (run in a worker thread) of the one submitted document in ``document``,
        which it takes out and hands to the verifier as its only reference (freed once parsed). Returns the bytes
        to keep as evidence and what the document does to a certificate of origin (:meth:`Mapper.certificate`)."""
        env = message.envelope
        verified = self.verifier.verify(document.pop(), PartyId(env.sender), format=env.format)
        detail = None
        if verified.certificate is not None:
            detail = (
                f"signed by {verified.certificate.subject.rfc4514_string()} "
                f"(sha256 {fingerprint(verified.certificate)[:16]})"
            )
        message = replace(message.verify(at=self.clock.now(), detail=detail), content_digest=verified.digest)
        content, tree, plain, taken = verified.content, verified.tree, verified.ascii, verified.taken
        evidence = verified.signed if verified.signed is not None else content
        del verified  # from here on content is referenced only where it is used, so that it can be freed
        self._claimed_identities(env, content)
        self._declared_content(env, content)
        # policy lists: the version in force at the submission's time, and a list version this document publishes
        policy = self.references.check(content, env.format, at=message.received_at)
        draft = self.references.publication(content, env)
        if draft is not None and drafts is not None:
            drafts.append(draft)
        certificate = self.mapper.certificate(content, env.format)
        if certificate is not None:
            answers_for = frozenset(
                name for name, dest in self.config.destinations.items() if (dest.party or name) == env.sender
            )
            certificate = replace(certificate, answers_for=answers_for)
        registry = self.mapper.issued(content, env.format)
        if registry is not None:
            roles = self.config.parties[env.sender].registry
            message = replace(message, registry=registry_act(registry, env.sender, roles))
        if env.reference is None:
            env = self._named_reference(env, content)
            message = replace(message, envelope=env)
        destinations = self.router.route(env)
        # subscribers after the routed destinations; reads the harmonized message only when one may need it
        plan = subscriptions.plan(
            self.config,
            env,
            destinations,
            lambda: self.mapper.harmonized(content, env.format),
            self.mapper.write,
        )
        if self.config.ship_calls:  # what the document says about a ship call, with each routed agency's part
            parts = {name: plan.fields_for(name, self.config.destinations[name].fields) for name in destinations}
            facts = ship_call_facts(self.mapper.harmonized(content, env.format), parts)
            message = replace(message, ship_call=facts)
        destinations += plan.destinations
        content_types: dict[str, str] = {}
        # with taken: each holds the text's marker (VerifiedMessage.taken)
        mapped: dict[tuple[str, tuple[str, ...] | None], bytes] = dict(plan.bodies)
        work: dict[tuple[int, Hashable], tuple[bytes, str]] = {}
        keys: dict[str, tuple[int, Hashable]] = {}
        for name in destinations:
            target = self.config.destinations[name].format
            target = env.format if target == "same" else target
            fields = plan.fields_for(name, self.config.destinations[name].fields)
            if (target, fields) not in mapped:
                if fields is None:
                    mapped[target, fields] = self.mapper.map(content, env.format, target)
                else:
                    mapped[target, fields] = self.mapper.map(content, env.format, target, fields=fields)
            content_types[name] = self.mapper.media_type(target)
            body = mapped[target, fields]
            keys[name] = key = (id(body), self.signer.profile_for(name))
            work.setdefault(key, (body, name))
        message = message.map(at=self.clock.now())
        if policy.detail() is not None:
            step = replace(message.history[-1], detail=policy.detail())
            message = replace(message, history=message.history[:-1] + (step,))
        if (note := plan.note()) is not None:
            step = message.history[-1]
            step = replace(step, detail=f"{step.detail}; {note}" if step.detail else note)
            message = replace(message, history=message.history[:-1] + (step,))
        # The content passed through unchanged and signed under one profile is signed last, with nothing else here
        # holding it: from the verified tree if there is one (no second parse), else from the content's bytes, handed
        # over so that the signer frees them once parsed. Either way they are gone before the signature is made.
        of_content = [key for key in work if key[0] == id(content)]
        last = of_content[0] if len(of_content) == 1 and of_content[0][1] is not None else None
        signed: dict[tuple[int, Hashable], bytes | Spliced]
        if taken is not None:  # every output shares the one text, spliced in by the signer and the store
            signed = {key: self.signer.sign_spliced(body, name, taken) for key, (body, name) in work.items()}
            last = None
        else:
            signed = {key: self.signer.sign(body, name) for key, (body, name) in work.items() if key != last}
        if last is not None:
            name = work.pop(last)[1]
            del work, mapped, body
            if tree is not None:
                del content
                signed[last] = self.signer.sign_tree(tree, name, ascii=plain)
            else:
                held = [content]
                del content
                signed[last] = self.signer.sign(held.pop(), name)
        del tree
        payloads = {name: signed[keys[name]] for name in destinations}
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
        if plan.recipients:
            message = replace(message, disclosures=plan.disclosures(deliveries))
        return message, deliveries, evidence, certificate

    def _claimed_identities(self, env: SubmissionEnvelope, content: bytes) -> None:
        """Every sender identity the verified document claims (:meth:`Mapper.identities`) is the sender's own,
        as its ``identities`` configuration states; ``IDENTITY_MISMATCH`` naming the first element that is not."""
        settings = self.config.parties[env.sender]
        for claim in self.mapper.identities(content, env.format):
            expected = settings.identity(claim.format, claim.name, env.sender)
            if claim.value != expected:
                claimed = repr(claim.value) if claim.value else "nothing"
                raise IdentityMismatch(
                    f"{env.sender} submits as {expected!r}; the document claims {claimed}", field=claim.path
                )

    def _declared_content(self, env: SubmissionEnvelope, content: bytes) -> None:
        """The verified document is what the envelope declares: a document of the declared type by that type's
        ``[document_types.NAME]`` rule (``DOCUMENT_TYPE_MISMATCH`` naming ``X-Document-Type`` and saying what the
        content is), and, from an intermediary, about the enterprise it names in ``X-On-Behalf-Of``
        (``DELEGATION_MISMATCH``): the same rule for every entry point, whichever endpoint derived the envelope."""
        rule = self.config.document_types.get(env.document_type)
        if rule is None:
            raise DocumentTypeMismatch(
                f"{env.document_type} is not a document type of this gateway",
                field="X-Document-Type",
                details={"declared": env.document_type, "known": sorted(self.config.document_types)},
            )
        if not rule.unchecked:
            kind = self.mapper.kind(content, env.format)
            if not rule.recognises(kind):
                raise DocumentTypeMismatch(
                    f"declared {env.document_type}, but the content is {kind}",
                    field="X-Document-Type",
                    details={
                        "declared": env.document_type,
                        "content": {"code": kind.code, "procedure": kind.procedure, "root": kind.root},
                    },
                )
        if env.on_behalf_of is not None:
            named = self.mapper.enterprises(content, env.format, paths=rule.enterprise_paths)
            if env.on_behalf_of not in named:
                said = f"names {', '.join(named)}" if named else "names no enterprise"
                raise DelegationMismatch(
                    f"submitted on behalf of {env.on_behalf_of}, but the document {said}",
                    field="X-On-Behalf-Of",
                    details={"on_behalf_of": env.on_behalf_of, "named": list(named)},
                )

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

    async def _content_duplicate(self, message: Message, original: SubmissionAck) -> DuplicateContent:
        """The refusal of ``message``, whose signed content ``original`` already carried: names the original
        and the state it is in now."""
        record = await self.store.get(original.id)
        state = record.state if record is not None else original.state
        self.metrics.submission_rejected(DuplicateContent.code)  # the refusal itself is counted where it is answered
        return DuplicateContent(
            f"this signed document was already submitted by {original.sender} as {original.message_id!r}"
            f" (gateway id {original.id}, now {state.value}); nothing was queued for {message.envelope.message_id!r}",
            field="body",
            details={"original": {"id": original.id, "message_id": original.message_id, "state": state.value}},
        )

    async def submit(self, party: str, envelope: SubmissionEnvelope, raw: bytes) -> Submission:
        """Accept ``raw`` from the authenticated ``party``; returns once it is durably stored."""
        self.intake_gate()
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
        refused = Excerpt.of(raw, self.config.gateway.rejected_prefix_bytes)  # kept if the document is refused
        document = [raw]
        del raw  # _process takes it out of document: the intake holds it whole only until it is parsed
        kept: bytes | Spliced | Excerpt
        certificate: CertificateAct | None = None
        drafts: list[ReferenceDraft] = []
        await self.references.refresh()
        try:
            message, deliveries, kept, certificate = await self.intake.process(message, document, drafts)
        except (IdentityMismatch, DelegationMismatch):
            raise  # an authorization failure: nothing is stored
        except ClientError as exc:
            message = message.reject(exc, at=self.clock.now())
            deliveries = []
            kept = refused
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
        try:
            ack, created = await self._stored(
                message,
                kept,
                deliveries,
                ack,
                certificate=certificate,
                reference=message_version(drafts, message),
                registry=message.registry,
                disclosures=message.disclosures,
            )
        except (CertificateUnknown, CertificateNotifierMismatch, ReferenceListNotOwner, RegistryRefusal) as exc:
            self.metrics.submission_rejected(exc.code)  # the refusal itself is counted where it is answered
            raise  # a certificate the gateway did not carry, a list another owner took first: nothing is stored
        if not created and ack.id != message.id:
            raise await self._content_duplicate(message, ack)
        if created:
            if ack.error:
                self.metrics.submission_rejected(ack.error["code"])
                self.metrics.refused(ack.error["code"], party)
            else:
                self.metrics.accepted(envelope.sender)
                self.on_accepted(ack.destinations)
                if drafts:
                    await self.references.accepted(ack.id)  # stored with the message: announced now
            self._announce(envelope, ack)
        return Submission(ack, created)

    async def _stored(
        self,
        message: Message,
        kept: bytes | Spliced | Excerpt,
        deliveries: list[Delivery],
        ack: SubmissionAck,
        **acts: Any,
    ) -> tuple[SubmissionAck, bool]:
        """:meth:`Store.accept`, with what a ship-call document does to its call (:mod:`gateway.shipcalls`):
        planned from the call as stored, and planned again from the new record while another change of the same
        call commits first (``STORE_CONTENDED``). A ``SHIP_CALL_*`` refusal is raised: nothing is stored."""
        facts = message.ship_call
        if facts is None or message.state is not State.QUEUED:
            return await self.store.accept(message, kept, deliveries, ack, **acts)
        key = (facts.amends if facts.kind == "call" else None) or facts.reference or ""
        disclosures = acts.pop("disclosures", ())
        attempts = 0
        while True:
            record = await self.store.ship_call(key) if key else None
            try:
                now = self.clock.now()
                planned, act = self.ship_calls.admit(self.config, facts, record, message, deliveries, at=now)
            except ClientError as exc:
                self.metrics.submission_rejected(exc.code)  # the refusal itself is counted where it is answered
                raise
            names = {d.destination for d in planned}
            try:
                return await self.store.accept(
                    message,
                    kept,
                    planned,
                    replace(ack, destinations=tuple(d.destination for d in planned)),
                    ship_call=act,
                    disclosures=tuple(d for d in disclosures if d.destination in names),
                    **acts,
                )
            except StoreContended:
                attempts += 1
                if act is None or attempts == SHIP_CALL_ATTEMPTS:
                    raise

    def _announce(self, envelope: SubmissionEnvelope, ack: SubmissionAck) -> None:
        """Publish ``accepted`` or ``rejected`` for a submission just stored."""
        now = self.clock.now()
        fields: dict[str, object] = {
            "message_id": ack.id,
            "sender_message_id": envelope.message_id,
            "sender": envelope.sender,
            "document_type": envelope.document_type,
            "state": ack.state.value,
            "latency_seconds": round(now - ack.received_at, 6),
        }
        if envelope.on_behalf_of is not None:
            fields["on_behalf_of"] = envelope.on_behalf_of
        if envelope.conversation_id is not None:
            fields["conversation"] = envelope.conversation_id
        if ack.error:
            fields.update({k: ack.error[k] for k in ("code", "field", "incident_id") if ack.error.get(k) is not None})
            self.events.publish(Event("rejected", now, fields))
        else:
            fields["destinations"] = ",".join(ack.destinations)
            self.events.publish(Event("accepted", now, fields))
