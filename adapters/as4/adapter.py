"""The AS4 adapter: One-Way/Push or One-Way/Pull of ebMS 3.0 user messages with signed receipts.

Connection string: the partner's AS4 endpoint URL (``http://host:port/as4``
or ``https://...``); the PMode's ``endpoint``, when set, wins.

Options (:class:`As4Options`, validated at config load; relative paths are relative to the configuration
file, or to the current directory for an adapter built in code):

* ``pmode`` (:class:`~adapters.as4.pmode.PMode` or a table of it): the agreement; each message travels under the
  eb:Service/eb:Action of its document type (``pmode.documents`` over
  :data:`~adapters.as4.pmode.ASW_COLLABORATIONS`: the ACDD ``urn:asean:asw:acdd``/``SubmitACDD``, its Customs
  Response ``SubmitCustomsResponse``), else the agreement's own ``service``/``action``;
* ``signer``: our signing key, a :class:`~signing.keys.Signer` or a table
  ``{ p12 = "path", password_env = "VAR" }`` / ``{ key = "path", cert = "path" }``
  (:func:`adapters.options.signer_from_options`);
* ``trust``: who may sign the partner's receipts, a
  :class:`~signing.trust.TrustStore` or a table ``{ anchors = [...], signers = [...], pinned = [...],
  intermediates = [...], crls = [...] }`` (:func:`adapters.options.trust_from_options`; with anchors, ``signers``
  name the partner's certificates: a receipt signed by another of the CA's is ``CERT_IDENTITY_MISMATCH``);
* ``encryption_certificate`` (``x509.Certificate`` or a PEM/DER file path): the
  partner's key-transport certificate (required when the PMode encrypts);
* ``retention`` (seconds, default 30 days): how long the record of a sent message is kept after it was last
  written. Every built message is recorded in the adapter's :class:`~gateway.ports.AdapterState` (in the
  gateway: its store, namespace ``destination:NAME``, shared by every node) before its first transmission, so
  that a resend, also after a restart or on another node, carries the exact same bytes (and the partner's
  original receipt still matches). Keep it longer than a delivery to the destination may be retried
  (``retry.ttl``). An adapter built in code without ``state=`` keeps its records in memory (a message resent by
  a new instance is then rebuilt, and a partner that answers a duplicate with the original receipt is reported
  ``ReceiptInvalid``). The option ``sent_store`` (a SQLite file of its own) no longer exists and is refused at
  load;
* ``receiver`` (:class:`~adapters.as4.receiver.As4Receiver`): where
  :meth:`As4Adapter.receive` pulls verified inbound messages from;
* ``sleep`` (``async`` callable) and ``clock``: injected in tests;
* ``max_connections`` (default 8);
* ``tls`` (:class:`~adapters.options.TlsOptions`, for ``https://``): ``ca_bundle``, ``client_certificate``/
  ``client_key``, ``minimum_version``, as for the ``http`` adapter;
* ``pull_wait`` (seconds, default 30) and ``pull_poll`` (default 0.2), for a PMode with ``mep_binding = "pull"``:
  how long one delivery attempt waits for the partner to pull and answer the message, and how often it looks.
  ``pull_wait`` must be shorter than the delivery lease (``gateway.lease_seconds``, at least twice the
  destination's ``timeout``): the as4 endpoint serving the partner's pulls refuses a longer one at load.

Features: ``deliver`` (one user message, payload compressed, signed, encrypted),
``receipt`` (the signed non-repudiation receipt, verified against the partner's
trust store and checked to acknowledge exactly the references we signed),
``reception-awareness`` (the same bytes, hence the same MessageId, resent with
exponential jittered waits until a receipt arrives or the PMode's attempts or
time run out; the bytes are recorded in the adapter's state before the first
transmission, so a redelivery after a restart or by another node resends them
too), ``duplicate`` (a receipt seen before, or one the receiver marks ``X-AS4-Duplicate``, is reported
``Receipt.duplicate``), ``receive``, ``pull`` (PMode ``mep_binding = "pull"``: nothing is pushed; the recorded
message is offered on the partner's MPC in this destination's state and the attempt waits for the partner's
verified receipt, recorded by the ``as4`` endpoint whose partner names this destination in ``pull_destination``;
no answer within ``pull_wait`` is ``PARTNER_UNAVAILABLE`` with ``details["cause"] = "AS4_NOT_PULLED"``, retried
by the worker; a pulled message the partner refuses is ``PartnerRejected`` with ``details["ebms"]``; see
:mod:`adapters.as4.pull`).

Who a message was relayed for: when an intermediary submitted it on behalf of an enterprise, the user message
carries the property ``originalSender`` with the enterprise's id (unless the PMode sets that property itself).

In the gateway TOML (paths relative to the configuration file, or absolute)::

    [destinations.TH]
    adapter = "as4"
    url = "https://as4.th-asw.example/as4"
    [destinations.TH.options]
    encryption_certificate = "/etc/nsw/partners/th-asw-encryption.pem"
    signer = { p12 = "/etc/nsw/keys/gateway.p12", password_env = "NSW_AS4_P12_PASSWORD" }
    trust = { anchors = ["/etc/nsw/partners/th-asw-root.pem"], intermediates = ["/etc/nsw/partners/th-asw-ca.pem"] }
    [destinations.TH.options.pmode]
    id = "VN-NSW-TH-ASW-eco"
    service = "urn:asean:asw:services:eco"
    action = "eco.form_d"
    initiator = { party_id = "VN-NSW" }
    responder = { party_id = "TH-ASW" }

Configuration errors are :class:`~gateway.errors.ConfigError` naming the option
(``options.signer.password_env``, ``options.trust.anchors[0]``).

Errors: connection failures, timeouts, 408/425/429/5xx without a signal are
:class:`~gateway.errors.PartnerUnavailable`; a signed ebMS error signal is
:class:`~gateway.errors.PartnerRejected` (EBMS:0005/0202/0301 are
``PartnerUnavailable``) with ``details["ebms"]``; a store that fails to record the message is the store's
``STORE_UNAVAILABLE`` / ``STORE_FULL`` / ``STORE_CORRUPT`` (retried; nothing is sent unrecorded);
a MessageId already sent with another payload is
:class:`~gateway.errors.GatewayError` (``details["cause"] = "AS4_MESSAGE_ID_REUSED"``,
final); a signal that does not verify
or a receipt that does not acknowledge what we sent is
:class:`~gateway.errors.ReceiptInvalid` with the cause's code in
``details["cause"]``.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, field_validator
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

from adapters.as4.ebms import DEFAULT_MPC, Party, Property, UserMessage
from adapters.as4.messages import (
    OutgoingMessage,
    Payload,
    build_user_message,
    check_receipt,
    verify_signal,
)
from adapters.as4.pmode import PMode
from adapters.as4.pull import PullQueue, outgoing_from_record
from adapters.as4.receiver import As4Receiver
from adapters.as4.sent import SentRecord, SentStore, StateSentStore, references_xml
from adapters.options import (
    CertificateOption,
    SignerOption,
    TlsOptions,
    TrustOption,
    certificate_from_options,
    client_ssl_context,
    signer_from_options,
    trust_from_options,
)
from gateway.errors import (
    ConfigError,
    GatewayError,
    NswError,
    PartnerRejected,
    PartnerUnavailable,
    ReceiptInvalid,
    StoreCorrupt,
    StoreFull,
    StoreUnavailable,
)
from gateway.ports import Adapter, AdapterState, OutboundMessage, Receipt, public_endpoint, without_credentials
from signing.keys import Signer
from signing.trust import TrustStore

__all__ = ["As4Adapter", "As4Options", "InboundMessage", "PROPERTY_HEADER_PREFIX"]

PROPERTY_HEADER_PREFIX = "AS4-Property-"
"""OutboundMessage headers named ``AS4-Property-<name>`` become eb:MessageProperties."""

ORIGINAL_SENDER = "originalSender"
"""The eb:MessageProperties property (the eDelivery four-corner model's) that carries the enterprise an
intermediary submitted for (:attr:`~gateway.ports.OutboundMessage.on_behalf_of`)."""

_RETRY_STATUSES = frozenset({408, 425, 429})
_RETRYABLE_EBMS = frozenset({"EBMS:0005", "EBMS:0202", "EBMS:0301"})
_MAX_SIGNAL = 4 * 1024 * 1024
_SENT_CACHE = 1024


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass(frozen=True)
class InboundMessage:
    """One payload of a verified AS4 user message, pulled with :meth:`As4Adapter.receive`."""

    payload: bytes
    message_id: str
    document_type: str
    headers: Mapping[str, str] = field(default_factory=dict)


class As4Options(BaseModel):
    """``[destinations.NAME.options]`` of the ``as4`` adapter."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True, arbitrary_types_allowed=True)

    pmode: PMode
    """The agreement with the partner (:class:`~adapters.as4.pmode.PMode`), seen from our side."""
    signer: SignerOption
    """Our signing key: a :class:`~signing.keys.Signer`, or ``{ p12 = ..., password_env = ... }`` /
    ``{ key = ..., cert = ... }``."""
    trust: TrustOption
    """Who may sign the partner's receipts: a :class:`~signing.trust.TrustStore`, or ``{ anchors = [...],
    signers = [...], pinned = [...], intermediates = [...], crls = [...] }``."""
    encryption_certificate: CertificateOption | None = None
    """The partner's key-transport certificate (an ``x509.Certificate`` or a PEM/DER file); required when the
    PMode encrypts."""
    retention: float = Field(30 * 86400.0, gt=0)
    """Seconds the record of a sent message (its exact bytes for resends, its receipt's MessageId) is kept in the
    gateway's store after it was last written; longer than a delivery to this destination may be retried."""
    sent_store: object | None = None
    """No longer an option: sent messages are kept in the gateway's store. A value is refused at load."""

    @field_validator("sent_store")
    @classmethod
    def _no_sent_store(cls, value: object) -> None:
        raise ValueError(
            "the AS4 adapter no longer keeps a sent store of its own: sent messages are kept in the gateway's"
            " store ([store]), shared by every node; remove this option (options.retention sets how long)"
        )

    receiver: As4Receiver | None = None
    """Where :meth:`As4Adapter.receive` pulls verified inbound messages from (code only)."""
    sleep: Callable[[float], Awaitable[None]] | None = None
    """The sleep between reception-awareness resends (injected in tests; default ``asyncio.sleep``)."""
    clock: Callable[[], datetime] | None = None
    """The clock of message timestamps and signal verification (injected in tests)."""
    max_connections: int = Field(8, ge=1, le=1024)
    """Connections to the partner at once."""
    tls: TlsOptions = TlsOptions()
    """TLS towards the partner (``https://``): CA bundle, client certificate, minimum version."""
    pull_wait: float = Field(30.0, gt=0)
    """PMode ``mep_binding = "pull"``: seconds one delivery attempt waits for the partner to pull the message and
    answer it before it ends in ``PARTNER_UNAVAILABLE`` (``AS4_NOT_PULLED``) and is retried."""
    pull_poll: float = Field(0.2, gt=0)
    """PMode ``mep_binding = "pull"``: seconds between two looks at the store for the partner's answer."""


class As4Adapter(Adapter):
    """Pushes user messages to one AS4 partner (or offers them to its PullRequests) and returns its verified
    receipt."""

    scheme: ClassVar[str] = "as4"
    recoverable = (*Adapter.recoverable, StoreUnavailable, StoreFull, StoreCorrupt)
    """Also the store's faults: a message the store cannot record is not sent, and retried."""
    Options: ClassVar[type[BaseModel]] = As4Options
    options: As4Options

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 30.0,
        options: BaseModel | Mapping[str, Any] | None = None,
        state: AdapterState | None = None,
    ) -> None:
        super().__init__(url, timeout=timeout, options=options, state=state)
        opts = self.options
        self.pmode = opts.pmode
        self.signer: Signer = signer_from_options(opts.signer, field="options.signer")
        self.trust: TrustStore = trust_from_options(
            opts.trust, party=self.pmode.responder.party_id, field="options.trust"
        )
        raw_cert = opts.encryption_certificate
        self.encryption_certificate = (
            None if raw_cert is None else certificate_from_options(raw_cert, field="options.encryption_certificate")
        )
        if self.pmode.security.encrypt and self.encryption_certificate is None:
            raise ConfigError(
                f"PMode {self.pmode.id} encrypts, so the partner's encryption certificate is required",
                field="options.encryption_certificate",
            )
        self.endpoint = self.pmode.endpoint or url
        self.shown_endpoint = public_endpoint(self.endpoint)
        """The endpoint as errors name it (no credential of the URL)."""
        if not self.endpoint.startswith(("http://", "https://")):
            raise ConfigError(f"AS4 endpoint {self.endpoint!r} is not an http(s) URL", field="url")
        self._ssl = client_ssl_context(opts.tls)
        self.sent_store: SentStore = StateSentStore(self.state, retention=opts.retention)
        self.pull_queue = PullQueue(
            self.state, retention=opts.retention, redeliver_after=self.pmode.reception_awareness.max_wait
        )
        """The partner's MPC queue (PMode ``mep_binding = "pull"``), in this destination's state."""
        self._sleep: Callable[[float], Awaitable[None]] = opts.sleep or asyncio.sleep
        self._clock: Callable[[], datetime] = opts.clock or (lambda: datetime.now(UTC))
        self._sent: OrderedDict[str, tuple[OutgoingMessage, str]] = OrderedDict()
        self._receipts_seen: dict[str, str] = {}
        self.transmissions = 0
        self._session: aiohttp.ClientSession | None = None

    # ------------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.options.max_connections, ssl=self._ssl),
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            )

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    # ------------------------------------------------------------------ sending

    def ebms_message_id(self, message: OutboundMessage) -> str:
        """The ebMS MessageId of a gateway message: the same on every attempt."""
        return (
            message.message_id if "@" in message.message_id else f"{message.message_id}@{self.pmode.message_id_domain}"
        )

    async def _prepare(self, message: OutboundMessage) -> OutgoingMessage:
        """The message to (re)send: recorded in the sent store before its first transmission, then always those
        bytes."""
        ebms_id = self.ebms_message_id(message)
        digest = hashlib.sha256(message.payload).hexdigest()
        cached = self._sent.get(ebms_id)
        if cached is not None:
            self._sent.move_to_end(ebms_id)
            outgoing, kept_digest = cached
        else:
            record = await self.sent_store.get(self.pmode.responder.party_id, ebms_id)
            if record is None:
                built = self._build(message, ebms_id)
                record = await self.sent_store.add(
                    SentRecord(
                        partner=self.pmode.responder.party_id,
                        message_id=ebms_id,
                        body=built.body,
                        content_type=built.content_type,
                        timestamp=built.user_message.timestamp,
                        references=references_xml([r.element for r in built.references]),
                        payload_sha256=digest,
                    )
                )
                outgoing = built if record.body == built.body else outgoing_from_record(record)
            else:
                outgoing = outgoing_from_record(record)
            if record.receipt_id is not None:
                self._receipts_seen.setdefault(ebms_id, record.receipt_id)
            kept_digest = record.payload_sha256
            self._sent[ebms_id] = (outgoing, kept_digest)
            while len(self._sent) > _SENT_CACHE:
                self._sent.popitem(last=False)
        if kept_digest != digest:
            raise GatewayError(
                f"ebMS MessageId {ebms_id} was already sent with another payload; a MessageId is never reused",
                field="message_id",
                details={"cause": "AS4_MESSAGE_ID_REUSED"},
            )
        return outgoing

    def _build(self, message: OutboundMessage, ebms_id: str) -> OutgoingMessage:
        pmode = self.pmode.for_document(message.document_type)
        properties = [Property(p.name, p.value, p.type) for p in pmode.properties]
        for name, value in message.headers.items():
            if name.startswith(PROPERTY_HEADER_PREFIX):
                prop = name[len(PROPERTY_HEADER_PREFIX) :]
                properties.append(Property(prop, value, pmode.property_types.get(prop)))
        if message.on_behalf_of and not any(p.name == ORIGINAL_SENDER for p in properties):
            properties.append(
                Property(ORIGINAL_SENDER, message.on_behalf_of, pmode.property_types.get(ORIGINAL_SENDER))
            )
        user = UserMessage(
            message_id=ebms_id,
            timestamp=self._clock(),
            sender=Party(pmode.initiator.party_id, pmode.initiator.party_id_type, pmode.initiator.role),
            receiver=Party(pmode.responder.party_id, pmode.responder.party_id_type, pmode.responder.role),
            service=pmode.service,
            service_type=pmode.service_type,
            action=pmode.action,
            conversation_id=message.conversation,
            agreement=pmode.agreement,
            agreement_type=pmode.agreement_type,
            pmode=pmode.id if pmode.send_pmode_id else None,
            ref_to_message_id=message.reference,
            properties=tuple(properties),
            mpc=pmode.mpc,
        )
        outgoing = build_user_message(
            user,
            [Payload(message.payload, message.content_type.split(";")[0].strip() or "application/octet-stream")],
            signer=self.signer,
            pmode=pmode,
            encrypt_for=self.encryption_certificate,
        )
        return outgoing

    async def deliver(self, message: OutboundMessage) -> Receipt:
        outgoing = await self._prepare(message)
        if self.pmode.mep_binding == "pull":
            return await self._await_pull(message, outgoing)
        awareness = self.pmode.reception_awareness
        retrying = AsyncRetrying(
            stop=stop_after_attempt(awareness.attempts) | stop_after_delay(awareness.max_seconds),
            wait=wait_exponential_jitter(
                multiplier=awareness.initial_wait, max=awareness.max_wait, jitter=awareness.initial_wait
            ),
            retry=retry_if_exception_type(self.recoverable),
            sleep=self._sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                receipt = await self._transmit(outgoing)
        return Receipt(
            message_id=message.message_id, raw=receipt.raw, status=receipt.status, duplicate=receipt.duplicate
        )

    async def _await_pull(self, message: OutboundMessage, outgoing: OutgoingMessage) -> Receipt:
        """Offer the recorded message on the partner's MPC and wait up to ``pull_wait`` seconds for its verified
        answer (recorded by the as4 endpoint that serves the partner's PullRequests)."""
        partner = self.pmode.responder.party_id
        sent_id = outgoing.user_message.message_id
        await self.pull_queue.offer(partner, self.pmode.mpc or DEFAULT_MPC, sent_id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.options.pull_wait
        while (answer := await self.pull_queue.answer(partner, sent_id)) is None:
            if loop.time() >= deadline:
                raise PartnerUnavailable(
                    f"{partner} has not pulled and acknowledged {sent_id} within {self.options.pull_wait:g} s",
                    field="pmode.mep_binding",
                    details={"cause": "AS4_NOT_PULLED"},
                )
            await asyncio.sleep(self.options.pull_poll)
        if answer.error is not None:
            details = {"ebms": answer.error, "detail": answer.text}
            text = f"{partner} refused pulled {sent_id}: {answer.text}"
            if answer.error in _RETRYABLE_EBMS:
                await self.pull_queue.forget(partner, sent_id)
                raise PartnerUnavailable(text, field="eb:Error", details=details)
            raise PartnerRejected(text, field="eb:Error", details=details)
        self._receipts_seen[sent_id] = answer.signal_id
        return Receipt(message_id=message.message_id, raw=answer.raw, status=200, duplicate=False)

    async def _transmit(self, outgoing: OutgoingMessage) -> Receipt:
        await self.open()
        assert self._session is not None
        self.transmissions += 1
        try:
            async with self._session.post(
                self.endpoint,
                data=outgoing.body,
                headers={"Content-Type": outgoing.content_type, "MIME-Version": "1.0"},
            ) as response:
                body = await response.content.read(_MAX_SIGNAL)
                status = response.status
                content_type = response.headers.get("Content-Type", "")
                marked_duplicate = response.headers.get("X-AS4-Duplicate", "").lower() == "true"
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            if isinstance(exc, aiohttp.InvalidURL):
                raise PartnerRejected(
                    f"invalid AS4 endpoint {self.shown_endpoint}: {without_credentials(_describe(exc), self.endpoint)}",
                    field="url",
                ) from exc
            if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
                raise PartnerUnavailable(f"{self.shown_endpoint} did not answer in time", field="http.timeout") from exc
            raise PartnerUnavailable(
                f"{self.shown_endpoint}: {without_credentials(_describe(exc), self.endpoint)}", field="http"
            ) from exc
        is_signal = "soap+xml" in content_type.lower() or "multipart/related" in content_type.lower()
        if not is_signal or not body.strip():
            if status >= 500 or status in _RETRY_STATUSES:
                raise PartnerUnavailable(
                    f"{self.shown_endpoint} answered {status}", field="http.status", details={"status": status}
                )
            if status >= 300:
                raise PartnerRejected(
                    f"{self.shown_endpoint} answered {status}", field="http.status", details={"status": status}
                )
            raise ReceiptInvalid(
                f"{self.shown_endpoint} answered {status} without an ebMS signal; a receipt is required",
                field="http.body",
                details={"status": status},
            )
        try:
            signal = verify_signal(
                body, content_type, trust=self.trust, policy=self.pmode.security.verify, at=self._clock()
            )
        except NswError as exc:
            raise ReceiptInvalid(
                f"the signal from {self.shown_endpoint} cannot be trusted: {exc.message}",
                field=exc.field,
                details={"cause": exc.code, "status": status},
            ) from exc
        sent_id = outgoing.user_message.message_id
        if signal.signal.errors:
            if signal.signal.ref_to_message_id not in (None, sent_id):
                raise ReceiptInvalid(
                    f"the error signal refers to {signal.signal.ref_to_message_id!r}, not {sent_id!r}",
                    field="eb:RefToMessageId",
                    details={"cause": "AS4_UNCORRELATED"},
                )
            first = signal.signal.errors[0]
            details = {
                "ebms": first.code,
                "short_description": first.short_description,
                "detail": first.detail,
                "status": status,
            }
            text = (
                f"{self.shown_endpoint} refused {sent_id}: {first.code} {first.short_description or ''} "
                f"{first.description or ''}"
            ).strip()
            if first.code in _RETRYABLE_EBMS:
                raise PartnerUnavailable(text, field="eb:Error", details=details)
            raise PartnerRejected(text, field="eb:Error", details=details)
        try:
            check_receipt(signal, outgoing)
        except ReceiptInvalid as exc:
            exc.details.setdefault("cause", exc.code)
            raise
        seen = self._receipts_seen.get(sent_id)
        duplicate = marked_duplicate or (seen is not None and seen == signal.signal.message_id)
        if seen != signal.signal.message_id:
            self._receipts_seen[sent_id] = signal.signal.message_id
            await self.sent_store.set_receipt(self.pmode.responder.party_id, sent_id, signal.signal.message_id)
        return Receipt(message_id=sent_id, raw=body, status=status, duplicate=duplicate)

    # ------------------------------------------------------------------ receiving

    async def receive(self) -> AsyncIterator[InboundMessage]:
        """Drain the verified messages the configured receiver has accepted so far."""
        receiver = self.options.receiver
        if receiver is None:
            raise GatewayError(
                "this as4 adapter has no receiver configured (options.receiver)", field="options.receiver"
            )
        while not receiver.inbox.empty():
            received = receiver.inbox.get_nowait()
            user = received.user_message
            for cid, payload in received.payloads.items():
                yield InboundMessage(
                    payload=payload,
                    message_id=user.message_id,
                    document_type=user.action,
                    headers={
                        "AS4-From": user.sender.party_id,
                        "AS4-To": user.receiver.party_id,
                        "AS4-Service": user.service,
                        "AS4-Conversation-Id": user.conversation_id,
                        "AS4-Content-Id": cid,
                        "Content-Type": received.mime_types.get(cid, "application/octet-stream"),
                        "AS4-Signer": received.verification.certificate.subject.rfc4514_string(),
                    },
                )
