"""The AS4 receiver: an aiohttp handler that verifies, de-duplicates, delivers and answers with a signal.

For each POST:

1. :func:`~adapters.as4.messages.open_user_message` verifies the message's
   signature against the claimed partner's trust store, then decrypts it; any
   coded failure is answered with a **signed** ebMS error signal (EBMS:0101 for
   signature and certificate failures, 0102 decryption, 0103 policy, 0009
   header, 0001 an unknown partner or Service/Action, 0010 a PMode mismatch,
   0004 an eb:From that is not the partner's (``IDENTITY_MISMATCH``), 0003 an
   eb:To that is not us, 0003/0007 content, 0004 a message over the size limit,
   refused unread: ``XML_TOO_LARGE``) whose ErrorDetail carries our error
   code and incident id. Each signed signal costs a private-key operation, for
   anyone who can reach the endpoint: these refusals are bounded by token
   buckets per client address and overall (:class:`ErrorSignalLimits`); beyond
   them a refusal is answered HTTP 429 ``AS4_SIGNAL_LIMIT`` (JSON, unsigned,
   ``details.refused`` the refusal's code, ``Retry-After``);
2. duplicate elimination, keyed by the sending partner's PartyId and the
   MessageId (two partners may use the same MessageId: each is its own
   message): under a lock per key, a key already in the
   :class:`DuplicateStore` is answered with the *original* receipt and is not
   delivered again. In the gateway the store is :class:`StateDuplicateStore`
   on the endpoint's :class:`~gateway.ports.AdapterState`, in the gateway's
   store: a duplicate arriving at another node, or after a restart, is answered
   the same way;
3. the verified message goes to the sink (an ``async`` callable, or the
   receiver's own :attr:`As4Receiver.inbox` queue). A sink that raises a
   retryable error makes the answer HTTP 503 without a receipt, so the sender's
   reception awareness resends the same MessageId; a non-retryable coded error
   is answered with a signed error signal;
4. the signed non-repudiation receipt is stored and returned (HTTP 200,
   ``application/soap+xml``); the first receipt stored wins: when two nodes
   received the same message at once (the sink must absorb the second
   delivery, as the broker does by (sender, message id)), the later one answers
   with the first one's receipt, marked ``X-AS4-Duplicate``.

A partner in ``pull_queues`` pulls from us (ebMS 3.0 One-Way/Pull, :mod:`adapters.as4.pull`): a signal it posts
is verified against the trust of each such partner (none accepting the signer: a signed error signal, EBMS:0101,
within the error-signal budget); a PullRequest is answered with the oldest message waiting for that partner on its
MPC, the recorded bytes, or with a signed EBMS:0006 EmptyMessagePartitionChannel warning; its receipt or error
signal about a pulled message is checked and recorded for the waiting delivery (HTTP 202). :meth:`As4Receiver.accept`
processes a user message we pulled exactly as one pushed to us.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Protocol

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from adapters.as4.messages import (
    SIGNAL_CONTENT_TYPE,
    As4Partner,
    ReceivedMessage,
    VerifiedSignal,
    build_empty_mpc_warning,
    build_error_signal,
    build_receipt,
    open_user_message,
    peek_message_id,
    verify_signal,
)
from adapters.as4.mime import parse_multipart
from adapters.as4.pull import PullQueue
from adapters.as4.sent import PURGE_INTERVAL
from gateway.errors import (
    NswError,
    SignalLimitExceeded,
    StoreCorrupt,
    StoreFull,
    StoreUnavailable,
    ValidationFailed,
    ValidationIssue,
    XmlTooLarge,
)
from gateway.ports import AdapterState
from gateway.wire import error_reply
from signing.keys import Signer
from signing.wss import EB_NS, SOAP12_NS
from signing.xenc import Decrypter
from signing.xml import DEFAULT_LIMITS, parse_xml

__all__ = [
    "DuplicateStore",
    "MemoryDuplicateStore",
    "StateDuplicateStore",
    "As4Receiver",
    "MessageSink",
    "ErrorSignalLimits",
    "SignalBudget",
]

log = logging.getLogger("nswgw.as4.receiver")

MessageSink = Callable[[ReceivedMessage], Awaitable[None]]


class DuplicateStore(Protocol):
    """Messages already received, by (sending partner's PartyId, MessageId), with the receipt each was answered
    with."""

    async def receipt_for(self, partner: str, message_id: str) -> bytes | None:
        """The receipt ``message_id`` from ``partner`` was answered with, if it was received before."""
        ...

    async def remember(self, partner: str, message_id: str, receipt: bytes) -> bytes:
        """Keep ``receipt`` as the answer to ``message_id`` from ``partner`` unless one is kept already (another
        node answered the same message meanwhile): return the receipt that is kept, the first one."""
        ...


class MemoryDuplicateStore:
    """In-memory duplicate store (tests, single-process receivers)."""

    def __init__(self) -> None:
        self._receipts: dict[tuple[str, str], bytes] = {}

    async def receipt_for(self, partner: str, message_id: str) -> bytes | None:
        return self._receipts.get((partner, message_id))

    async def remember(self, partner: str, message_id: str, receipt: bytes) -> bytes:
        return self._receipts.setdefault((partner, message_id), receipt)

    def __len__(self) -> int:
        return len(self._receipts)


class StateDuplicateStore:
    """Duplicate store on an :class:`~gateway.ports.AdapterState` (in the gateway: its store, namespace
    ``inbound:NAME``, shared by every node and kept across restarts). One record per (partner, MessageId) under the
    key ``received:["partner","message_id"]``, its value the receipt, kept ``retention`` seconds; the first receipt
    stored wins (:meth:`AdapterState.add <gateway.ports.AdapterState.add>`, atomic across nodes)."""

    def __init__(self, state: AdapterState, *, retention: float) -> None:
        self.state = state
        self.retention = retention
        self._purged_at: float | None = None

    @staticmethod
    def key(partner: str, message_id: str) -> str:
        return "received:" + json.dumps([partner, message_id], ensure_ascii=False, separators=(",", ":"))

    async def receipt_for(self, partner: str, message_id: str) -> bytes | None:
        return await self.state.get(self.key(partner, message_id))

    async def remember(self, partner: str, message_id: str, receipt: bytes) -> bytes:
        now = time.monotonic()
        if self._purged_at is None or now - self._purged_at >= PURGE_INTERVAL:
            self._purged_at = now
            await self.state.purge()
        key = self.key(partner, message_id)
        if await self.state.add(key, receipt, ttl=self.retention):
            return receipt
        kept = await self.state.get(key)
        if kept is None:  # expired between the two calls: ours is the answer now
            await self.state.put(key, receipt, ttl=self.retention)
            return receipt
        return kept


class ErrorSignalLimits(BaseModel):
    """``error_signals``: how many refused messages are answered with a signed ebMS error signal.

    Two token buckets, one per client address and one for all clients together; a signed signal takes a token
    from both. Beyond them a refusal is answered HTTP 429 ``AS4_SIGNAL_LIMIT``, without signing. Receipts and the
    refusals of messages already verified and accepted from a partner are always signed."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    per_client_burst: int = Field(10, ge=0)
    """Signed error signals one client address may receive at once (its bucket's size)."""
    per_client_rate: float = Field(1.0, ge=0)
    """Signed error signals per second a client address's bucket refills by (0: never)."""
    burst: int = Field(50, ge=0)
    """Signed error signals all clients together may receive at once."""
    rate: float = Field(10.0, ge=0)
    """Signed error signals per second the overall bucket refills by (0: never)."""
    clients: int = Field(10_000, ge=1)
    """Client addresses tracked at most (a full bucket is forgotten first; the overall bucket still holds)."""


class _Bucket:
    __slots__ = ("tokens", "stamp")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp

    def refill(self, size: int, rate: float, now: float) -> None:
        self.tokens = min(float(size), self.tokens + (now - self.stamp) * rate)
        self.stamp = now


class SignalBudget:
    """The token buckets of :class:`ErrorSignalLimits` (``clock``: seconds, monotonic)."""

    def __init__(self, limits: ErrorSignalLimits, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self._overall = _Bucket(float(limits.burst), clock())
        self._clients: dict[str, _Bucket] = {}

    def take(self, client: str) -> bool:
        """Whether one more signed error signal may go to ``client`` now (and if so, count it)."""
        limits, now = self.limits, self._clock()
        self._overall.refill(limits.burst, limits.rate, now)
        bucket = self._clients.get(client)
        if bucket is None:
            self._forget(now)
            bucket = self._clients[client] = _Bucket(float(limits.per_client_burst), now)
        bucket.refill(limits.per_client_burst, limits.per_client_rate, now)
        if bucket.tokens < 1 or self._overall.tokens < 1:
            return False
        bucket.tokens -= 1
        self._overall.tokens -= 1
        return True

    def retry_after(self) -> int:
        """Seconds after which a refused client may expect a token again (at most an hour)."""
        rate = min(self.limits.rate, self.limits.per_client_rate)
        return 3600 if rate <= 0 else max(1, min(3600, math.ceil(1 / rate)))

    def _forget(self, now: float) -> None:
        if len(self._clients) < self.limits.clients:
            return
        limits = self.limits
        for address, bucket in list(self._clients.items()):
            bucket.refill(limits.per_client_burst, limits.per_client_rate, now)
            if bucket.tokens >= limits.per_client_burst:
                del self._clients[address]
        while len(self._clients) >= limits.clients:
            del self._clients[next(iter(self._clients))]


def _is_signal(body: bytes, content_type: str) -> bool:
    """Whether a request holds an eb:SignalMessage (unverified: it only picks the processing)."""
    try:
        envelope = parse_xml(parse_multipart(body, content_type).soap)
    except (NswError, ValueError):
        return False
    return envelope.find(f"{{{SOAP12_NS}}}Header/{{{EB_NS}}}Messaging/{{{EB_NS}}}SignalMessage") is not None


class As4Receiver:
    """Receives AS4 user messages for ``party_id`` from the configured partners.

    ``partners`` maps each partner's PartyId to its agreement, or to several
    (e.g. one PMode per Service/Action); an inbound message is held to the one
    whose Service, Service/@type and Action it carries
    (:func:`~adapters.as4.messages.select_agreement`): an unknown partner or
    Service/Action is answered with a signed EBMS:0001 ValueNotRecognized, a
    message naming a PMode whose Service/Action it does not carry with
    EBMS:0010 ProcessingModeMismatch (ebMS 3.0 Core, section 6.7.1).
    ``max_payload_bytes`` bounds the payloads of a partner whose PMode sets no limit of its own.
    """

    def __init__(
        self,
        *,
        party_id: str,
        partners: Mapping[str, As4Partner | Sequence[As4Partner]],
        signer: Signer,
        decrypter: Decrypter | None,
        sink: MessageSink | None = None,
        store: DuplicateStore | None = None,
        domain: str = "nsw-gateway",
        clock: Callable[[], datetime] | None = None,
        error_signals: ErrorSignalLimits | SignalBudget | None = None,
        max_payload_bytes: int = DEFAULT_LIMITS.max_bytes,
        pull_queues: Mapping[str, PullQueue] | None = None,
    ) -> None:
        self.party_id = party_id
        self.pull_queues: dict[str, PullQueue] = dict(pull_queues or {})
        """Partner PartyId -> the queue of the destination whose messages that partner pulls from us."""
        self.partners = dict(partners)
        self.max_payload_bytes = max_payload_bytes
        self.signer = signer
        self.decrypter = decrypter
        self.inbox: asyncio.Queue[ReceivedMessage] = asyncio.Queue()
        self.sink: MessageSink = sink or self.inbox.put
        self.store: DuplicateStore = store or MemoryDuplicateStore()
        self.domain = domain
        self.clock = clock or (lambda: datetime.now(UTC))
        self.delivered = 0
        self.budget = (
            error_signals
            if isinstance(error_signals, SignalBudget)
            else SignalBudget(error_signals or ErrorSignalLimits())
        )
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    def _partner(self, party_id: str) -> As4Partner | Sequence[As4Partner]:
        """The agreements with ``party_id``; an unknown party is EBMS:0001 ValueNotRecognized (no P-Mode can be
        associated)."""
        partner = self.partners.get(party_id)
        if partner is None or (not isinstance(partner, As4Partner) and not partner):
            raise ValidationFailed(
                [
                    ValidationIssue(
                        "/S12:Envelope/S12:Header/eb:Messaging/eb:UserMessage/eb:PartyInfo/eb:From/eb:PartyId",
                        "AS4_UNKNOWN_PARTNER",
                        f"no PMode for partner {party_id!r}",
                    )
                ],
                details={"ebms": "EBMS:0001"},
            )
        return partner

    def _error(self, error: NswError, body: bytes, content_type: str) -> web.Response:
        ref = None
        try:
            from adapters.as4.mime import parse_multipart

            ref = peek_message_id(parse_xml(parse_multipart(body, content_type).soap))
        except (NswError, ValueError):
            ref = None
        log.warning("AS4 message %s refused: %s (incident %s)", ref, error, error.incident_id)
        signal = build_error_signal(error, ref, self.signer, domain=self.domain, at=self.clock())
        return web.Response(body=signal, status=200, headers={"Content-Type": SIGNAL_CONTENT_TYPE})

    def _refusal(self, error: NswError, body: bytes, content_type: str, client: str) -> web.Response:
        """A refused, unverified message: signed error signal within the budget, else HTTP 429 unsigned."""
        if self.budget.take(client):
            return self._error(error, body, content_type)
        limited = SignalLimitExceeded(
            f"{client} sent more refused messages than are answered with a signed error signal; this one was "
            f"refused with {error.code} (incident {error.incident_id})",
            field="error_signals",
            details={"refused": error.code, "refused_incident_id": error.incident_id},
        )
        log.warning(
            "AS4 message from %s refused: %s (incident %s), unsigned: %s",
            client,
            error,
            error.incident_id,
            limited.incident_id,
        )
        return error_reply(limited, headers={"Retry-After": str(self.budget.retry_after())})

    def oversized(self, request: web.Request, error: NswError) -> web.Response:
        """The answer to a message refused unread for its size (``XML_TOO_LARGE``): a signed error signal,
        EBMS:0004, within the error-signal budget (HTTP 429 beyond it), as for every refused message; unread,
        it cannot name the MessageId it answers."""
        return self._refusal(error, b"", request.headers.get("Content-Type", ""), request.remote or "")

    async def handle(self, request: web.Request) -> web.Response:
        content_type = request.headers.get("Content-Type", "")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge as exc:
            return self.oversized(request, XmlTooLarge(exc.text or "the message is too large", field="body"))
        if self.pull_queues and _is_signal(body, content_type):
            return await self._signal(body, content_type, request.remote or "")
        return await self.accept(body, content_type, request.remote or "")

    async def accept(self, body: bytes, content_type: str, client: str) -> web.Response:
        """Process one user message (pushed to us, or the answer to our PullRequest): the signed receipt, a signed
        error signal, or HTTP 503 when it could not be stored (the partner sends it again)."""
        try:
            received = open_user_message(
                body,
                content_type,
                our_party_id=self.party_id,
                partner_for=self._partner,
                decrypter=self.decrypter,
                at=self.clock(),
                max_payload_bytes=self.max_payload_bytes,
            )
        except NswError as exc:
            return self._refusal(exc, body, content_type, client)
        message_id = received.user_message.message_id
        key = (received.user_message.sender.party_id, message_id)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            if received.partner.pmode.duplicate_detection:
                original = await self.store.receipt_for(*key)
                if original is not None:
                    log.info("AS4 duplicate %s from %s answered with its original receipt", message_id, key[0])
                    return web.Response(
                        body=original,
                        status=200,
                        headers={"Content-Type": SIGNAL_CONTENT_TYPE, "X-AS4-Duplicate": "true"},
                    )
            try:
                await self.sink(received)
            except NswError as exc:
                if exc.retryable:
                    log.warning("AS4 %s: delivery to the back end failed, asking for a resend: %s", message_id, exc)
                    return web.Response(
                        status=503,
                        text=f"{exc.code}: delivery failed, resend later",
                        headers={"Retry-After": str(exc.retry_after or 1)},
                    )
                return self._error(exc, body, content_type)
            self.delivered += 1
            receipt = build_receipt(received, self.signer, domain=self.domain, at=self.clock())
            kept = await self.store.remember(*key, receipt)
        self._locks.pop(key, None)
        if kept != receipt:  # another node answered the same message meanwhile: its receipt is the answer
            log.info("AS4 duplicate %s from %s answered with its original receipt", message_id, key[0])
            return web.Response(
                body=kept, status=200, headers={"Content-Type": SIGNAL_CONTENT_TYPE, "X-AS4-Duplicate": "true"}
            )
        return web.Response(body=receipt, status=200, headers={"Content-Type": SIGNAL_CONTENT_TYPE})

    def _pull_partner(self, signal_body: bytes, content_type: str) -> tuple[str, VerifiedSignal]:
        """The partner (of :attr:`pull_queues`) whose certificate signed a signal, and the verified signal; the
        refusal of the last partner tried when none does (EBMS:0101 for a certificate of none of them)."""
        failure: NswError | None = None
        for party_id in self.pull_queues:
            partner = self._partner(party_id)
            agreement = partner if isinstance(partner, As4Partner) else partner[0]
            try:
                signal = verify_signal(
                    signal_body,
                    content_type,
                    trust=agreement.trust,
                    policy=agreement.pmode.security.verify,
                    at=self.clock(),
                )
            except NswError as exc:
                failure = exc
                continue
            return party_id, signal
        assert failure is not None
        raise failure

    async def _signal(self, body: bytes, content_type: str, client: str) -> web.Response:
        """A signal from a partner that pulls from us: a PullRequest is answered with the oldest message waiting
        for it on the MPC (or a signed EBMS:0006 warning); a receipt or error signal about a message it pulled is
        recorded (HTTP 202, no body)."""
        try:
            party_id, signal = self._pull_partner(body, content_type)
        except NswError as exc:
            return self._refusal(exc, body, content_type, client)
        queue = self.pull_queues[party_id]
        mpc = signal.signal.pull_mpc
        try:
            if mpc is not None:
                record = await queue.take(party_id, mpc)
                if record is None:
                    warning = build_empty_mpc_warning(
                        signal.signal.message_id, mpc, self.signer, domain=self.domain, at=self.clock()
                    )
                    return web.Response(body=warning, status=200, headers={"Content-Type": SIGNAL_CONTENT_TYPE})
                log.info("AS4 %s pulled by %s from %s", record.message_id, party_id, mpc)
                return web.Response(body=record.body, status=200, headers={"Content-Type": record.content_type})
            answer = await queue.record(party_id, signal)
        except NswError as exc:
            if isinstance(exc, StoreUnavailable | StoreFull | StoreCorrupt):  # the partner asks again
                log.warning("AS4 signal from %s not processed, asking for a resend: %s", party_id, exc)
                return web.Response(
                    status=503, text=f"{exc.code}: resend later", headers={"Retry-After": str(exc.retry_after or 1)}
                )
            return self._error(exc, body, content_type)
        log.info(
            "AS4 %s from %s for pulled %s recorded",
            answer.error or "receipt",
            party_id,
            signal.signal.ref_to_message_id,
        )
        return web.Response(status=202)

    def app(self, path: str = "/as4", *, max_bytes: int = 128 * 1024 * 1024) -> web.Application:
        """An aiohttp application serving the receiver at ``path``."""
        app = web.Application(client_max_size=max_bytes)
        app.router.add_post(path, self.handle)
        return app
