"""``as4`` inbound: ASEAN partners push signed, encrypted ebMS 3.0 user messages into the gateway.

Configured as ``[inbound.NAME] endpoint = "as4"`` with options (:class:`As4EndpointOptions`, validated at config
load; relative paths are relative to the configuration file):

* ``path`` (default ``/as4``): where the :class:`~adapters.as4.receiver.As4Receiver` is mounted;
* ``party_id``: our eb:PartyId (the eb:To of inbound messages);
* ``signer``: our key for receipts and error signals (:func:`adapters.options.signer_from_options`);
* ``decryption_key``: our key for decryption, a PKCS#12 or PEM table like ``signer`` (default: the ``signer`` key);
* ``retention`` (seconds, default 30 days): how long a received (partner, MessageId) pair and its receipt are
  remembered for duplicate elimination. They are kept in the endpoint's :class:`~gateway.ports.AdapterState` (in
  the gateway: its store, namespace ``inbound:NAME``, shared by every node and kept across restarts), so a
  duplicate arriving at another node is answered like one arriving at the first. The former option
  ``duplicate_store`` (a SQLite file of its own) is refused at load;
* ``error_signals``: how many refused messages are answered with a signed error signal, per client address and
  overall (:class:`~adapters.as4.receiver.ErrorSignalLimits`: ``per_client_burst`` 10, ``per_client_rate`` 1/s,
  ``burst`` 50, ``rate`` 10/s); beyond them HTTP 429 ``AS4_SIGNAL_LIMIT``, unsigned;
* ``partners``: one table per partner PartyId with ``party`` (the gateway party it submits as), ``pull_interval``
  and ``pull_destination`` (ebMS 3.0 One-Way/Pull, :mod:`adapters.as4.pull`: a partner whose ``pmode`` has
  ``mep_binding = "pull"`` and an ``endpoint`` is polled with signed PullRequests every ``pull_interval`` seconds,
  what it answers is submitted like a pushed message and receipted once the broker stored it; a partner naming an
  ``as4`` destination with ``mep_binding = "pull"`` towards it in ``pull_destination`` pulls that destination's
  messages with PullRequests posted to ``path``; the destination's queue is read and answered in its records of
  the gateway's store, ``destination:NAME``), ``pmode``
  (:class:`~adapters.as4.pmode.PMode` table, seen from our side), ``trust`` (who may sign for it,
  :func:`adapters.options.trust_from_options`: with anchors, which vouch for every certificate they issue, other
  partners' included, its ``signers`` name the partner's certificates, as for every party) and
  ``document_types`` (eb:Action → gateway document type; default: the document type whose eb:Service/eb:Action
  the PMode maps it to, ``pmode.documents`` over :data:`~adapters.as4.pmode.ASW_COLLABORATIONS`, else the Action
  itself). A partner's message is taken under the PMode's own Service/Action or any of those mapped ones, so an
  ACDD and a Form D of the same partner arrive as ``acdd.declaration`` and the Form D type.

A message larger than ``gateway.max_message_bytes`` is refused unread with a signed ebMS error signal (EBMS:0004,
``XML_TOO_LARGE`` at ``body`` in the ErrorDetail, no RefToMessageInError: the MessageId was not read), within the
error-signal budget like every refusal.

Partners authenticate by their WS-Security signature, not by a bearer token: ``path`` is one of
:meth:`public_paths`. The signed eb:From PartyId (and its type, when the PMode names one) must be the partner's
(``IDENTITY_MISMATCH``, EBMS:0004, otherwise) and the signing certificate one the partner's ``trust`` accepts for it
(``CERT_IDENTITY_MISMATCH``, EBMS:0101, for another certificate of the same CA); the signed
eb:To must be ``party_id`` (EBMS:0003); nothing is submitted otherwise.

Each verified message is submitted to the broker as the partner's party (message id = eb:MessageId, conversation =
eb:ConversationId, reference = eb:RefToMessageId, raw = the decrypted payload); the signed receipt is returned only
once the broker has accepted it durably. A broker refusal is answered with a signed ebMS error signal (EBMS:0004,
the gateway's code in the description); a store failure with HTTP 503 so the partner resends; a MessageId the same
partner already sent with the original receipt, without a second submission (duplicates are keyed by the partner's
PartyId and the MessageId: another partner's message with the same MessageId is its own message, submitted and
answered with its own receipt). A signed payload the partner's party already had accepted under another MessageId (a
replay) is refused by the broker: a signed error signal, EBMS:0004 with ``DUPLICATE_CONTENT`` and the original's id
and state in the description.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from adapters.as4.adapter import As4Options
from adapters.as4.messages import SIGNAL_CONTENT_TYPE, As4Partner, ReceivedMessage
from adapters.as4.pmode import PMode
from adapters.as4.pull import Puller, PullQueue
from adapters.as4.receiver import As4Receiver, ErrorSignalLimits, StateDuplicateStore
from adapters.options import (
    SignerOption,
    SignerOptions,
    TrustOption,
    object_or,
    signer_from_options,
    trust_from_options,
)
from gateway.config import Config
from gateway.errors import ClientError, ConfigError, GatewayError, NswError, Origin, SignalLimitExceeded
from gateway.model import PartyId, SubmissionEnvelope
from gateway.openapi import error_responses
from gateway.ports import AdapterState, InboundEndpoint, Intake
from signing.keys import Signer, SoftwareSigner
from signing.xenc import Decrypter, SoftwareDecrypter

__all__ = ["As4Endpoint", "As4EndpointOptions", "As4PartnerOptions", "InboundPartner", "BrokerRefused"]

log = logging.getLogger("nswgw.as4.inbound")


class As4PartnerOptions(BaseModel):
    """``[inbound.NAME.options.partners.PARTY_ID]``: one partner that pushes to the endpoint."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True, arbitrary_types_allowed=True)

    party: str = Field(min_length=1)
    """The gateway party this partner submits as."""
    pmode: PMode
    """The agreement (:class:`~adapters.as4.pmode.PMode`), seen from our side."""
    trust: TrustOption
    """Who may sign for the partner: a :class:`~signing.trust.TrustStore` or a ``{ anchors = [...], signers = [...] }``
    table (:class:`gateway.config.TrustSettings`: with anchors, ``signers`` such as
    ``[{ dn = "CN=th-asw,O=Thai NSW,C=TH" }]`` name the partner's certificates; pins are the partner's as such)."""
    document_types: dict[str, str] = Field(default_factory=dict)
    """eb:Action → the gateway's document type (default: the Action itself)."""
    pull_interval: float = Field(10.0, gt=0)
    """``pmode.mep_binding = "pull"``: seconds between two rounds of PullRequests to the partner's
    ``pmode.endpoint`` (each round pulls until the MPC is empty)."""
    pull_destination: str | None = None
    """The destination (an ``as4`` one whose PMode has ``mep_binding = "pull"`` towards this partner) whose
    messages this partner pulls from us with PullRequests posted to ``path``; None: it pulls nothing from us."""

    @model_validator(mode="after")
    def _pull_endpoint(self) -> As4PartnerOptions:
        if self.pmode.mep_binding == "pull" and self.pmode.endpoint is None:
            raise ValueError("a partner we pull from needs pmode.endpoint, the URL our PullRequests go to")
        return self


def _decryption_key(value: Any, info: ValidationInfo) -> SignerOptions:
    return SignerOptions.model_validate(value, context=info.context)


class As4EndpointOptions(BaseModel):
    """``[inbound.NAME.options]`` of the ``as4`` endpoint."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True, arbitrary_types_allowed=True)

    path: str = Field("/as4", pattern=r"^/")
    """Where the receiver is mounted (a public path: partners authenticate by their signature)."""
    party_id: str = Field(min_length=1)
    """Our eb:PartyId (the eb:To of inbound messages)."""
    signer: SignerOption
    """Our key for receipts and error signals (a :class:`~signing.keys.Signer`, or a p12 / key+cert table)."""
    decryption_key: (
        Annotated[Decrypter | Signer | SignerOptions, object_or((Decrypter, Signer), _decryption_key)] | None
    ) = None
    """Our key for decryption: a :class:`~signing.xenc.Decrypter`, or a software key like ``signer``
    (default: the ``signer`` key)."""
    retention: float = Field(30 * 86400.0, gt=0)
    """Seconds a received (partner, MessageId) and the receipt it was answered with are remembered in the
    gateway's store: a resend within them is answered with that receipt and not submitted again."""
    duplicate_store: object | None = None
    """No longer an option: received MessageIds are kept in the gateway's store. A value is refused at load."""

    @field_validator("duplicate_store")
    @classmethod
    def _no_duplicate_store(cls, value: object) -> None:
        raise ValueError(
            "the AS4 endpoint no longer keeps a duplicate store of its own: received MessageIds are kept in the"
            " gateway's store ([store]), shared by every node; remove this option (options.retention sets how long)"
        )

    error_signals: ErrorSignalLimits = ErrorSignalLimits()
    """Token buckets bounding the signed error signals that answer refused messages (each costs a private-key
    operation), per client address and overall; beyond them a refusal is answered HTTP 429 ``AS4_SIGNAL_LIMIT``."""
    partners: dict[str, As4PartnerOptions] = Field(min_length=1)
    """One table per partner PartyId."""


class BrokerRefused(ClientError):
    """The broker refused an inbound AS4 message: answered with EBMS:0004 carrying the broker's own code.

    Not a registered error code of its own: each instance carries the code the broker answered with.
    """

    http_status = 400

    def __init__(self, code: str, message: str, *, field: str | None = None) -> None:
        super().__init__(f"{code}: {message}", field=field, details={"ebms": "EBMS:0004"})
        self.code = code  # type: ignore[misc]


@dataclass(frozen=True)
class InboundPartner:
    """One partner as the endpoint sees it: the gateway party it submits as and its Action map."""

    party: str
    agreement: As4Partner
    document_types: Mapping[str, str]
    agreements: tuple[As4Partner, ...] = ()
    """Every agreement its messages may arrive under (:meth:`~adapters.as4.pmode.PMode.variants`)."""


def _refused(code: str, message: str, field: str | None) -> BrokerRefused:
    return BrokerRefused(code, message, field=field)


class As4Endpoint(InboundEndpoint):
    """The AS4 receiver mounted on the gateway, submitting verified messages to the broker."""

    scheme: ClassVar[str] = "as4"
    Options: ClassVar[type[BaseModel]] = As4EndpointOptions
    options: As4EndpointOptions

    def __init__(
        self,
        name: str = "as4",
        *,
        options: BaseModel | Mapping[str, Any] | None = None,
        state: AdapterState | None = None,
    ) -> None:
        super().__init__(name, options=options, state=state)
        opts = self.options
        f = f"inbound.{name}.options"
        self.path = opts.path
        self.party_id = opts.party_id
        self.signer = signer_from_options(opts.signer, field=f"{f}.signer")
        raw_key = opts.decryption_key
        self.decrypter: Decrypter | None
        if isinstance(raw_key, Decrypter):
            self.decrypter = raw_key
        else:
            key_signer = self.signer if raw_key is None else signer_from_options(raw_key, field=f"{f}.decryption_key")
            if not isinstance(key_signer, SoftwareSigner):
                raise ConfigError(
                    "a software key (p12 or key/cert) is required to decrypt", field=f"{f}.decryption_key"
                )
            self.decrypter = SoftwareDecrypter(key_signer._key, key_signer.certificate)  # type: ignore[arg-type]
        self.partners: dict[str, InboundPartner] = {
            pid: self._partner(pid, table, f"{f}.partners.{pid}") for pid, table in opts.partners.items()
        }
        self._intake: Intake | None = None
        self.pullers: list[Puller] = []
        """The polling tasks of the partners we pull from (``pmode.mep_binding = "pull"``), once started."""
        self.receiver = As4Receiver(
            party_id=self.party_id,
            partners={pid: p.agreements or (p.agreement,) for pid, p in self.partners.items()},
            signer=self.signer,
            decrypter=self.decrypter,
            sink=self._submit,
            store=StateDuplicateStore(self.state, retention=opts.retention),
            error_signals=opts.error_signals,
        )

    @staticmethod
    def _partner(party_id: str, table: As4PartnerOptions, field: str) -> InboundPartner:
        trust = trust_from_options(table.trust, party=party_id, field=f"{field}.trust")
        variants = table.pmode.variants()
        by_action = {p.action: t for t, p in variants if t is not None}
        return InboundPartner(
            party=table.party,
            agreement=As4Partner(table.pmode, trust),
            document_types={**by_action, **table.document_types},
            agreements=tuple(As4Partner(p, trust) for _, p in variants),
        )

    @classmethod
    def check_config(cls, options: BaseModel, config: Config, *, field: str) -> None:
        """A partner's PMode ``max_payload_bytes`` is at most ``gateway.max_message_bytes`` (unset: that); a
        ``pull_destination`` is an as4 destination with ``mep_binding = "pull"`` to that partner, whose ``pull_wait``
        is shorter than the delivery's lease."""
        assert isinstance(options, As4EndpointOptions)
        limit = config.gateway.max_message_bytes
        for pid, partner in options.partners.items():
            if partner.pull_destination is not None:
                where = f"{field}.partners.{pid}.pull_destination"
                dest = config.destinations.get(partner.pull_destination)
                if dest is None:
                    raise ConfigError(f"no destination {partner.pull_destination!r}", field=where)
                dest_options = dest.options
                if not isinstance(dest_options, As4Options) or dest_options.pmode.mep_binding != "pull":
                    raise ConfigError(
                        f"destination {partner.pull_destination!r} is not an as4 destination with"
                        ' pmode.mep_binding = "pull"',
                        field=where,
                    )
                if dest_options.pmode.responder.party_id != pid:
                    raise ConfigError(
                        f"destination {partner.pull_destination!r} sends to "
                        f"{dest_options.pmode.responder.party_id!r}, not to {pid!r}",
                        field=where,
                    )
                lease = max(config.gateway.lease_seconds, 2 * dest.timeout)
                if dest_options.pull_wait >= lease:
                    raise ConfigError(
                        f"{dest_options.pull_wait:g} s of pull_wait outlast the delivery's lease of {lease:g} s"
                        " (gateway.lease_seconds, at least twice the destination's timeout): another worker would"
                        " take the waiting delivery",
                        field=f"destinations.{partner.pull_destination}.options.pull_wait",
                    )
            own = partner.pmode.max_payload_bytes
            if own is not None and own > limit:
                raise ConfigError(
                    f"{own} is above the gateway's limit: at most gateway.max_message_bytes = {limit}",
                    field=f"{field}.partners.{pid}.pmode.max_payload_bytes",
                )

    def public_paths(self) -> list[str]:
        """AS4 partners authenticate by their WS-Security signature, not by a bearer token."""
        return [self.path]

    def refusal(self, request: web.Request, error: NswError) -> web.StreamResponse | None:
        """A message refused unread for its size: the receiver's signed ebMS error signal (EBMS:0004,
        ``XML_TOO_LARGE``)."""
        if request.path != self.path:
            return None
        return self.receiver.oversized(request, error)

    def routes(self, intake: Intake) -> list[Any]:
        self._intake = intake
        self.receiver.max_payload_bytes = intake.config.gateway.max_message_bytes
        self.receiver.pull_queues = self._pull_queues(intake)
        return [web.post(self.path, self.receiver.handle)]

    def _pull_queues(self, intake: Intake) -> dict[str, PullQueue]:
        """The MPC queue of each ``pull_destination``, in that destination's records of the gateway's store."""
        queues: dict[str, PullQueue] = {}
        for pid, table in self.options.partners.items():
            if table.pull_destination is None:
                continue
            options = intake.config.destinations[table.pull_destination].options
            assert isinstance(options, As4Options)  # check_config
            if intake.destination_state is None:
                raise GatewayError(
                    "this gateway gives its inbound endpoints no destination state: AS4 pull cannot serve an MPC",
                    field=f"inbound.{self.name}.options.partners.{pid}.pull_destination",
                )
            queues[pid] = PullQueue(
                intake.destination_state(table.pull_destination),
                retention=options.retention,
                redeliver_after=options.pmode.reception_awareness.max_wait,
            )
        return queues

    def openapi_paths(self) -> dict[str, Any]:
        signal = {SIGNAL_CONTENT_TYPE.split(";")[0]: {"schema": {"type": "string"}}}
        return {
            self.path: {
                "post": {
                    "summary": "An ebMS 3.0 / AS4 user message (signed, payload encrypted) from an ASEAN partner",
                    "operationId": f"{self.name}.receive",
                    "security": [],
                    "description": "Authenticated by the message's WS-Security signature, not by a bearer token.",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "multipart/related": {"schema": {"type": "string"}},
                            "application/soap+xml": {"schema": {"type": "string"}},
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "the signed receipt (X-AS4-Duplicate: true for a resent MessageId: the "
                            "original receipt), or a signed ebMS error signal",
                            "headers": {"X-AS4-Duplicate": {"required": False, "schema": {"type": "string"}}},
                            "content": signal,
                        },
                        "503": {
                            "description": "the gateway could not store the message: resend later",
                            "headers": {"Retry-After": {"required": True, "schema": {"type": "string"}}},
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        },
                        **error_responses(SignalLimitExceeded),
                    },
                }
            }
        }

    async def start(self, intake: Intake) -> None:
        self._intake = intake
        for pid, table in self.options.partners.items():
            if table.pmode.mep_binding == "pull":
                assert table.pmode.endpoint is not None  # As4PartnerOptions
                puller = Puller(
                    self.receiver, self.partners[pid].agreement, url=table.pmode.endpoint, interval=table.pull_interval
                )
                self.pullers.append(puller)
                puller.start()

    async def stop(self) -> None:
        pullers, self.pullers = self.pullers, []
        for puller in pullers:
            await puller.stop()

    def envelope_for(self, received: ReceivedMessage) -> tuple[str, SubmissionEnvelope, bytes]:
        """The gateway party, broker envelope and raw payload of a verified user message.

        The payload is in the partner party's configured ``format`` (as for REST submissions without
        ``X-Format``): an ASEAN e-Form D is then mapped like any other submission."""
        um = received.user_message
        partner = self.partners[um.sender.party_id]  # open_user_message checked it is a configured partner
        if len(received.payloads) != 1:
            raise _refused("REQUEST_INVALID", f"expected one payload, got {len(received.payloads)}", "eb:PayloadInfo")
        [raw] = received.payloads.values()
        envelope = SubmissionEnvelope(
            sender=PartyId(partner.party),
            message_id=um.message_id,
            document_type=partner.document_types.get(um.action, um.action),
            conversation_id=um.conversation_id or None,
            reference=um.ref_to_message_id,
            format=self._party_format(partner.party),
        )
        return partner.party, envelope, raw

    def _party_format(self, party: str) -> str:
        config = self._intake.config if self._intake is not None else None
        settings = config.parties.get(party) if config is not None else None
        return settings.format if settings is not None else "xml"

    async def _submit(self, received: ReceivedMessage) -> None:
        """The receiver's sink: returns only once the broker accepted the message durably."""
        if self._intake is None:
            raise GatewayError("the AS4 endpoint is not started", field="inbound")
        try:
            party, envelope, raw = self.envelope_for(received)
            result = await self._intake.submit(PartyId(party), envelope, raw)
        except BrokerRefused:
            raise
        except NswError as exc:
            if exc.retryable or exc.origin is not Origin.CLIENT:
                raise  # retryable: HTTP 503, the partner resends; otherwise a signed error signal
            partner = self.partners.get(received.user_message.sender.party_id)
            self._intake.refused(exc, partner.party if partner is not None else "", self.name)
            raise _refused(exc.code, exc.message, exc.field) from exc
        if result.ack.error:
            err = result.ack.error
            raise _refused(str(err.get("code", "GATEWAY_ERROR")), str(err.get("message", "")), err.get("field"))
        log.info("AS4 %s from %s accepted as %s", envelope.message_id, party, result.ack.id)
