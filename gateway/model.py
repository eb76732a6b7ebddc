"""Messages, deliveries and their state machines.

A submitted message lives through two linked state machines:

* the **message** (intake) machine, driven by the broker while it accepts a
  submission: ``RECEIVED → VERIFIED → MAPPED → QUEUED``, or ``REJECTED`` with
  a coded error from any step before ``QUEUED``;
* one **delivery** machine per destination the message is routed to (fan-out
  gives several), driven by the delivery workers:
  ``QUEUED → DELIVERED → ACKNOWLEDGED``; a failed attempt goes
  ``QUEUED → FAILED`` and then back to ``QUEUED`` (retry) or on to ``DEAD``
  (dead-letter queue); a receipt that does not verify goes
  ``DELIVERED → FAILED``; ``DEAD → QUEUED`` is the operator's replay.

Transitions are only made through the event methods of :class:`Message` and
:class:`Delivery` (``verify()``, ``attempt_failed()``, ``replay()``...). Each
one checks :data:`TRANSITIONS`, returns a *new* frozen object with the
transition appended to its history, and raises
:class:`~gateway.errors.InvalidTransition` otherwise; there is no setter for
``state``. The stores enforce the same table again with compare-and-set
updates, so a stale worker cannot move a row either.
"""

from __future__ import annotations

import enum
import hashlib
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, NewType, get_args

from gateway.errors import InvalidTransition, NswError, RequestInvalid

if TYPE_CHECKING:
    from gateway.disclosures import Disclosure
    from gateway.registry import RegistryAct
    from gateway.shipcalls import ShipCallFacts
    from signing.xml import Spliced

__all__ = [
    "PartyId",
    "State",
    "TRANSITIONS",
    "MESSAGE_STATES",
    "DELIVERY_STATES",
    "TERMINAL_STATES",
    "Transition",
    "SubmissionEnvelope",
    "Message",
    "Delivery",
    "SubmissionAck",
    "DocumentKind",
    "CertificateAct",
    "CertificateAction",
    "CERTIFICATE_ACTIONS",
    "Excerpt",
    "gateway_message_id",
    "check_transition",
    "overall_state",
]

PartyId = NewType("PartyId", str)
"""A configured party's name (``MOIT``, ``MARD``, ``TH``...)."""


class State(str, enum.Enum):  # noqa: UP042 - StrEnum would change str() of states stored and reported
    """Every state a message or one of its deliveries can be in."""

    RECEIVED = "RECEIVED"
    VERIFIED = "VERIFIED"
    MAPPED = "MAPPED"
    QUEUED = "QUEUED"
    DELIVERED = "DELIVERED"
    ACKNOWLEDGED = "ACKNOWLEDGED"
    REJECTED = "REJECTED"
    FAILED = "FAILED"
    DEAD = "DEAD"


S = State

TRANSITIONS: Mapping[State | None, frozenset[State]] = {
    None: frozenset({S.RECEIVED}),
    # intake (message)
    S.RECEIVED: frozenset({S.VERIFIED, S.REJECTED}),
    S.VERIFIED: frozenset({S.MAPPED, S.REJECTED}),
    S.MAPPED: frozenset({S.QUEUED, S.REJECTED}),
    # delivery (one per destination; a delivery is born QUEUED)
    S.QUEUED: frozenset({S.DELIVERED, S.FAILED, S.DEAD}),
    S.DELIVERED: frozenset({S.ACKNOWLEDGED, S.FAILED}),
    S.FAILED: frozenset({S.QUEUED, S.DEAD}),
    S.DEAD: frozenset({S.QUEUED}),
    S.ACKNOWLEDGED: frozenset(),
    S.REJECTED: frozenset(),
}
"""The one transition table: ``TRANSITIONS[current]`` is the set of allowed next states."""

MESSAGE_STATES = frozenset({S.RECEIVED, S.VERIFIED, S.MAPPED, S.QUEUED, S.REJECTED})
DELIVERY_STATES = frozenset({S.QUEUED, S.DELIVERED, S.ACKNOWLEDGED, S.FAILED, S.DEAD})
TERMINAL_STATES = frozenset({S.ACKNOWLEDGED, S.REJECTED})
"""States nothing leaves (``DEAD`` is left by a replay)."""


def check_transition(current: State | None, target: State, *, what: str = "message") -> None:
    """Raise :class:`InvalidTransition` unless ``current → target`` is in :data:`TRANSITIONS`."""
    if target not in TRANSITIONS.get(current, frozenset()):
        raise InvalidTransition(
            f"{what} cannot go from {current.value if current else 'nothing'} to {target.value}",
            field="state",
            details={"from": current.value if current else None, "to": target.value},
        )


@dataclass(frozen=True)
class Transition:
    """One timestamped step in a message's history."""

    to_state: State
    at: float
    """Seconds since the epoch (UTC)."""
    from_state: State | None = None
    destination: str | None = None
    """The delivery's destination; ``None`` for intake transitions."""
    code: str | None = None
    """The error code that caused it (``REJECTED``, ``FAILED``, ``DEAD``)."""
    detail: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "from": self.from_state.value if self.from_state else None,
            "to": self.to_state.value,
            "at": self.at,
            "destination": self.destination,
            "code": self.code,
            "detail": self.detail,
        }


_MESSAGE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/+=-]{0,127}")
_DOC_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
_NAMESPACE = uuid.UUID("6f1c3f5e-7b0e-4c59-9a54-2b1b8b0b4e11")


def gateway_message_id(sender: str, message_id: str) -> str:
    """The gateway-wide id of ``sender``'s ``message_id``: stable, so a resubmission maps to the same id."""
    return uuid.uuid5(_NAMESPACE, f"{sender}\x00{message_id}").hex


@dataclass(frozen=True)
class SubmissionEnvelope:
    """What a sender says about its message (HTTP headers of ``POST /v1/messages``)."""

    sender: PartyId
    message_id: str
    document_type: str
    conversation_id: str | None = None
    """Messages of one conversation are delivered in submission order per destination (default: the message id)."""
    reference: str | None = None
    """The message this one answers or amends (its sender's message id or its gateway id)."""
    destination: str | None = None
    """The intended recipient, when the sender names one; routes may match on it."""
    procedure: str | None = None
    format: str = "xml"
    """The format of the payload as submitted (a mappings registry name)."""
    on_behalf_of: str | None = None
    """The enterprise an intermediary submits for (``X-On-Behalf-Of``); ``sender`` is the intermediary."""

    def __post_init__(self) -> None:
        for name, value, pattern in (
            ("X-On-Behalf-Of", self.on_behalf_of, _MESSAGE_ID),
            ("X-Message-Id", self.message_id, _MESSAGE_ID),
            ("X-Document-Type", self.document_type, _DOC_TYPE),
            ("X-Conversation-Id", self.conversation_id, _MESSAGE_ID),
            ("X-Reference", self.reference, _MESSAGE_ID),
            ("X-Destination", self.destination, _DOC_TYPE),
            ("X-Procedure", self.procedure, _DOC_TYPE),
            ("X-Format", self.format, _DOC_TYPE),
        ):
            if value is None and name not in ("X-Message-Id", "X-Document-Type", "X-Format"):
                continue
            if not isinstance(value, str) or not pattern.fullmatch(value):
                raise RequestInvalid(f"{name} is missing or malformed: {value!r}", field=name)

    @property
    def gateway_id(self) -> str:
        return gateway_message_id(self.sender, self.message_id)

    @property
    def conversation(self) -> str:
        return self.conversation_id or self.message_id


@dataclass(frozen=True)
class DocumentKind:
    """What a document is by its content (:meth:`gateway.ports.Mapper.kind`), matched against the declared
    document type's rule (:class:`gateway.config.DocumentTypeSettings`). Each field is ``None`` when the
    content does not say it."""

    code: str | None = None
    """UN/EDIFACT 1001 document name code of the harmonized document (``861`` certificate of origin, ``851``
    phytosanitary certificate): a Form D, SPS or JSON submission."""
    procedure: str | None = None
    """The VNSW message, ``<documentType>/<type>/<function>`` (``BNNPTNT0600011/10/01``): a ``vnsw`` envelope, or
    JSON whose envelope names it."""
    root: str | None = None
    """The root element of pass-through XML (``format = "xml"``), ``{namespace}LocalName`` (``LocalName`` without a
    namespace)."""

    def __str__(self) -> str:
        said = [
            f"{label} {value}"
            for label, value in (
                ("VNSW message", self.procedure),
                ("document code", self.code),
                ("root element", self.root),
            )
            if value
        ]
        return ", ".join(said) or "a document that states no kind"


CertificateAction = Literal[
    "issued",
    "amended",
    "cancelled",
    "received",
    "utilized",
    "rejected",
    "verification_request",
    "verification_answer",
]
"""What a document does to a certificate of origin the gateway carries (:attr:`CertificateAct.action`)."""

CERTIFICATE_ACTIONS: tuple[CertificateAction, ...] = get_args(CertificateAction)
"""The values of :data:`CertificateAction`, in order."""


@dataclass(frozen=True)
class CertificateAct:
    """What a document does to one certificate of origin (:meth:`gateway.ports.Mapper.certificate`): issues it,
    amends or cancels it (from its issuer), or notifies about it (from the importing side: received, utilized,
    rejected, a verification request; from the issuer: the verification answer). The certificate is named by
    its issuing country and number; ``detail`` is what the notification says (declaration number and date,
    reason code and text), kept in the certificate's history."""

    action: str
    """One of :data:`CERTIFICATE_ACTIONS`."""
    issuing_country: str
    number: str
    """The certificate's number; for an amendment, the number of the amended certificate it references."""
    path: str
    """Where the document names the certificate (the field a refusal names)."""
    detail: Mapping[str, str] = field(default_factory=dict)
    answers_for: frozenset[str] = frozenset()
    """The destinations the sending party answers for (set by the broker from ``destinations.NAME.party``): the
    importing side's notification is accepted only about a certificate routed to one of them."""

    @property
    def issues(self) -> bool:
        """True when the act creates the certificate's record (an issue), False when it needs one to exist."""
        return self.action == "issued"


@dataclass(frozen=True)
class Message:
    """A submitted message and its intake history. Build with :meth:`receive`; move with the event methods."""

    id: str
    envelope: SubmissionEnvelope
    received_at: float
    history: tuple[Transition, ...] = ()
    error: dict[str, Any] | None = None
    content_digest: str | None = None
    """The digest of the verified signed content (:attr:`gateway.ports.VerifiedMessage.digest`) of a queued
    message: the store refuses a second message of the same sender with the same digest (a replay under another
    message id). None for unsigned and rejected messages."""
    registry: RegistryAct | None = None
    """What the verified document does to the registry of issued documents (:meth:`gateway.ports.Mapper.issued`),
    found by the intake and recorded by :meth:`gateway.store.base.Store.accept` with the message."""
    disclosures: tuple[Disclosure, ...] = ()
    """The deliveries of a queued message that carry only some of its data elements (a subscription's, a
    destination's ``fields``: :mod:`gateway.subscriptions`), found by the intake and recorded by
    :meth:`gateway.store.base.Store.accept` (``disclosures=``) with the message; empty on a message read back."""
    ship_call: ShipCallFacts | None = None
    """What the verified document says about a ship call (a declaration, an amendment, a decision:
    :mod:`gateway.shipcalls`), found by the intake; the broker plans the call's change from it. None on a message
    read back."""

    @property
    def state(self) -> State:
        return self.history[-1].to_state

    @classmethod
    def receive(cls, envelope: SubmissionEnvelope, *, at: float) -> Message:
        detail = (
            f"submitted by {envelope.sender} on behalf of {envelope.on_behalf_of}" if envelope.on_behalf_of else None
        )
        return cls(
            id=envelope.gateway_id,
            envelope=envelope,
            received_at=at,
            history=(Transition(S.RECEIVED, at, detail=detail),),
        )

    def _go(self, target: State, at: float, *, error: NswError | None = None) -> Message:
        check_transition(self.state, target, what=f"message {self.id}")
        step = Transition(
            target,
            at,
            from_state=self.state,
            code=error.code if error else None,
            detail=error.message if error else None,
        )
        return replace(self, history=self.history + (step,), error=error.to_dict() if error else self.error)

    def verify(self, *, at: float, detail: str | None = None) -> Message:
        """``detail``: what was verified (e.g. the signer's certificate), kept in the history."""
        message = self._go(S.VERIFIED, at)
        if detail is not None:
            message = replace(message, history=message.history[:-1] + (replace(message.history[-1], detail=detail),))
        return message

    def map(self, *, at: float) -> Message:
        return self._go(S.MAPPED, at)

    def enqueue(self, *, at: float) -> Message:
        return self._go(S.QUEUED, at)

    def reject(self, error: NswError, *, at: float) -> Message:
        return self._go(S.REJECTED, at, error=error)


@dataclass(frozen=True)
class Excerpt:
    """What the store keeps of a refused submission instead of all of it: its first bytes, and the size and
    SHA-256 of the whole (so an operator can match the sender's file, and a refused oversized or unparseable
    document does not cost its size in the store)."""

    prefix: bytes
    """The first bytes of the submission (all of it when it is no longer than the prefix limit)."""
    size: int
    """The size of the whole submission, in bytes."""
    sha256: str
    """The SHA-256 hex digest of the whole submission."""

    @classmethod
    def of(cls, data: bytes, limit: int) -> Excerpt:
        """The excerpt of ``data`` keeping at most ``limit`` bytes."""
        return cls(bytes(data[:limit]), len(data), hashlib.sha256(data).hexdigest())

    @property
    def truncated(self) -> bool:
        """Whether :attr:`prefix` is less than the whole."""
        return len(self.prefix) < self.size


@dataclass(frozen=True)
class Delivery:
    """One message on its way to one destination (one row of that destination's outbox)."""

    message_id: str
    """The gateway id of the message (the same on every attempt and every retry)."""
    destination: str
    conversation: str
    payload: bytes
    """The exact bytes to deliver (mapped to the destination's format and signed). Empty while :attr:`large` holds
    them."""
    queued_at: float
    deadline: float
    """After this instant (time-to-live) an undelivered message goes to the dead-letter queue."""
    content_type: str | None = None
    """The media type of ``payload``, decided by the broker from the format it mapped the message to (sent as
    the delivery's ``Content-Type``). ``None`` only on a row queued by a gateway that did not record it (store
    schema before version 3): the worker then sends the media type of the destination's configured format,
    as that gateway did."""
    sender: str = ""
    document_type: str = ""
    reference: str | None = None
    on_behalf_of: str | None = None
    """The enterprise an intermediary (``sender``) submitted for; adapters pass it on where their protocol has a
    place for it (``X-On-Behalf-Of``, AS4 ``originalSender``)."""
    state: State = S.QUEUED
    attempts: int = 0
    next_attempt_at: float = 0.0
    last_error: dict[str, Any] | None = None
    receipt: bytes | None = None
    """The receiver's receipt, once verified."""
    seq: int | None = None
    """Store-assigned order; per destination and conversation, lower seq is delivered first."""
    history: tuple[Transition, ...] = field(default=())
    large: Spliced | None = field(default=None, repr=False, compare=False)
    """The bytes to deliver of a delivery just made at intake whose payload shares a large text with its message's
    other outputs (:class:`~signing.xml.Spliced`), until the store writes them; a delivery read from the store has
    its :attr:`payload`. :attr:`body` is the payload either way."""

    @property
    def body(self) -> bytes | Spliced:
        """The bytes to deliver: :attr:`large`, else :attr:`payload`."""
        return self.large if self.large is not None else self.payload

    @classmethod
    def create(
        cls,
        message: Message,
        destination: str,
        payload: bytes | Spliced,
        *,
        content_type: str,
        at: float,
        ttl: float,
    ) -> Delivery:
        """A new outbox entry for a message that has just been ``QUEUED``; ``content_type`` is ``payload``'s."""
        if message.state is not S.QUEUED:
            raise InvalidTransition(
                f"message {message.id} is {message.state.value}: only a QUEUED message gets deliveries", field="state"
            )
        env = message.envelope
        return cls(
            message_id=message.id,
            destination=destination,
            conversation=env.conversation,
            payload=payload if isinstance(payload, bytes) else b"",
            large=None if isinstance(payload, bytes) else payload,
            queued_at=at,
            deadline=at + ttl,
            content_type=content_type,
            sender=env.sender,
            document_type=env.document_type,
            reference=env.reference,
            on_behalf_of=env.on_behalf_of,
            next_attempt_at=at,
            history=(Transition(S.QUEUED, at, from_state=None, destination=destination),),
        )

    def _go(self, target: State, at: float, *, error: NswError | None = None, **changes: Any) -> Delivery:
        check_transition(self.state, target, what=f"delivery {self.message_id}→{self.destination}")
        step = Transition(
            target,
            at,
            from_state=self.state,
            destination=self.destination,
            code=error.code if error else None,
            detail=error.message if error else None,
        )
        if error is not None:
            changes["last_error"] = error.to_dict()
        return replace(self, state=target, history=self.history + (step,), **changes)

    def delivered(self, *, at: float) -> Delivery:
        return self._go(S.DELIVERED, at, attempts=self.attempts + 1)

    def acknowledged(self, receipt: bytes, *, at: float) -> Delivery:
        return self._go(S.ACKNOWLEDGED, at, receipt=receipt)

    def attempt_failed(self, error: NswError, *, at: float) -> Delivery:
        attempts = self.attempts + (1 if self.state is S.QUEUED else 0)
        return self._go(S.FAILED, at, error=error, attempts=attempts)

    def retry_at(self, when: float, *, at: float) -> Delivery:
        return self._go(S.QUEUED, at, next_attempt_at=when)

    def dead(self, error: NswError, *, at: float) -> Delivery:
        return self._go(S.DEAD, at, error=error)

    def released(self, detail: str, *, at: float) -> Delivery:
        """Handed back unfinished (its lease given up): still ``QUEUED``, the attempt not counted, the same
        message id when it is claimed again. Only a claimed, ``QUEUED`` delivery can be released."""
        if self.state is not S.QUEUED:
            raise InvalidTransition(
                f"delivery {self.message_id}→{self.destination} is {self.state.value}: only a QUEUED one is released",
                field="state",
            )
        step = Transition(S.QUEUED, at, from_state=S.QUEUED, destination=self.destination, detail=detail)
        return replace(self, history=self.history + (step,))

    def replay(self, *, at: float, ttl: float) -> Delivery:
        """Back from the dead-letter queue: a fresh attempt budget and time-to-live, the same message id."""
        return self._go(S.QUEUED, at, attempts=0, next_attempt_at=at, queued_at=at, deadline=at + ttl)


@dataclass(frozen=True)
class SubmissionAck:
    """What the sender gets back once its message is durably stored (and again, unchanged, on a duplicate)."""

    id: str
    sender: str
    message_id: str
    state: State
    received_at: float
    destinations: tuple[str, ...] = ()
    error: dict[str, Any] | None = None
    on_behalf_of: str | None = None
    """The enterprise an intermediary (``sender``) submitted for."""

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "sender": self.sender,
            "message_id": self.message_id,
            "state": self.state.value,
            "received_at": self.received_at,
            "destinations": list(self.destinations),
        }
        if self.error is not None:
            body["error"] = self.error
        if self.on_behalf_of is not None:
            body["on_behalf_of"] = self.on_behalf_of
        return body

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SubmissionAck:
        return cls(
            id=data["id"],
            sender=data["sender"],
            message_id=data["message_id"],
            state=State(data["state"]),
            received_at=data["received_at"],
            destinations=tuple(data.get("destinations", ())),
            error=data.get("error"),
            on_behalf_of=data.get("on_behalf_of"),
        )


def overall_state(intake: State, deliveries: Iterable[State]) -> State:
    """The one state shown for a message: its intake state until queued, then the least advanced delivery."""
    if intake is not S.QUEUED:
        return intake
    states = set(deliveries)
    if not states:
        return S.QUEUED
    for s in (S.DEAD, S.FAILED, S.QUEUED, S.DELIVERED):
        if s in states:
            return s
    return S.ACKNOWLEDGED
