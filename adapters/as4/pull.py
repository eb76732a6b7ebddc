"""ebMS 3.0 One-Way/Pull (Core section 3.1.2): user messages fetched with signed eb:PullRequest signals.

The gateway as **responder** (a destination whose PMode has ``mep_binding = "pull"``): the
:class:`~adapters.as4.adapter.As4Adapter` does not push. Its ``deliver`` records the built message (as for push,
:class:`~adapters.as4.sent.StateSentStore`), offers it on the partner's MPC (:meth:`PullQueue.offer`) and waits for
the partner's answer; the delivery worker's attempt stays open while it waits, so the delivery becomes
ACKNOWLEDGED through the normal worker and store path once the receipt is in. The queue lives in the destination's
:class:`~gateway.ports.AdapterState`: the ``as4`` endpoint that hears the partner's PullRequests
(:class:`~adapters.as4.receiver.As4Receiver`, ``pull_queues``) answers with the oldest message waiting for that
partner on the requested MPC (:meth:`PullQueue.take`), or with a signed EBMS:0006 EmptyMessagePartitionChannel
warning; the partner's receipt, posted to the same endpoint, is verified against the partner's trust and checked
against the references recorded for the message (:func:`~adapters.as4.messages.check_receipt`) before
:meth:`PullQueue.answer` records it. Reception awareness: a message pulled without a receipt is offered again, the
same bytes, once ``redeliver_after`` seconds have passed since it was pulled; the partner's duplicate elimination
answers a second copy with its original receipt. A wait without an answer ends in
:class:`~gateway.errors.PartnerUnavailable` (``details.cause = "AS4_NOT_PULLED"``): the worker retries, and the
next attempt finds the message still offered (offering is idempotent), also after a restart or on another node.

The gateway as **initiator** (:class:`Puller`, started by the ``as4`` endpoint for a partner whose PMode has
``mep_binding = "pull"``): every ``interval`` seconds it posts signed PullRequests on the PMode's MPC to the
partner's ``endpoint`` until the MPC is empty (EBMS:0006, not an error); each user message it receives is
processed as if it had been pushed (:meth:`~adapters.as4.receiver.As4Receiver.accept`: verification, duplicate
elimination, submission through the intake, which returns once the broker accepted the message durably) and the
resulting signal, the signed receipt or an error signal, is posted back to the partner. A message the broker could
not store yet is not answered, so the partner offers it again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import aiohttp

from adapters.as4.ebms import DEFAULT_MPC, parse_user_message
from adapters.as4.messages import (
    SIGNAL_CONTENT_TYPE,
    As4Partner,
    OutgoingMessage,
    VerifiedSignal,
    build_pull_request,
    check_receipt,
    signed_references_of,
    verify_signal,
)
from adapters.as4.mime import parse_multipart
from adapters.as4.sent import SentRecord, StateSentStore, reference_elements
from gateway.errors import GatewayError, NswError, PartnerRejected, PartnerUnavailable, StoreContended
from gateway.ports import AdapterState
from signing.wss import EB_NS, SOAP12_NS
from signing.xml import parse_xml

if TYPE_CHECKING:
    from adapters.as4.receiver import As4Receiver

__all__ = ["EMPTY_MPC", "PullAnswer", "PullQueue", "Puller", "outgoing_from_record"]

log = logging.getLogger("nswgw.as4.pull")

EMPTY_MPC = "EBMS:0006"
"""The ebMS warning answering a PullRequest on an MPC without a message for the puller."""


def outgoing_from_record(record: SentRecord) -> OutgoingMessage:
    """The recorded message: its exact bytes, its UserMessage and the references we signed."""
    try:
        envelope = parse_xml(parse_multipart(record.body, record.content_type).soap)
        messaging = envelope.find(f"{{{SOAP12_NS}}}Header/{{{EB_NS}}}Messaging")
        if messaging is None:
            raise GatewayError("no eb:Messaging in the recorded message", field="state")
        user = parse_user_message(messaging)
        references = signed_references_of(reference_elements(record.references))
    except NswError as exc:
        raise GatewayError(
            f"the sent-message record of {record.message_id} cannot be read: {exc.message}",
            field="options.retention",
            details={"cause": exc.code},
        ) from exc
    return OutgoingMessage(user, record.body, record.content_type, references)


@dataclass(frozen=True)
class PullAnswer:
    """The partner's verified answer to a pulled message: its receipt, or the ebMS error it refused it with."""

    signal_id: str
    raw: bytes
    error: str | None = None
    """The eb:Error code (None: a receipt)."""
    text: str = ""


class PullQueue:
    """The user messages waiting for their partners' PullRequests, in one destination's AdapterState.

    Records: ``mpc:["partner","mpc"]`` the waiting MessageIds in the order offered, each with the time it was last
    pulled; ``answer:["partner","message_id"]`` the partner's verified answer (first one wins). The message bytes
    are the adapter's sent records (:class:`~adapters.as4.sent.StateSentStore`). An MPC's list is read, changed and
    written back with :meth:`~gateway.ports.AdapterState.replace` (a compare-and-set), read again when another node
    changed it meanwhile: no offer is lost and no two PullRequests, on one node or several, take the same message
    (until ``redeliver_after`` passed without an answer).
    """

    def __init__(
        self,
        state: AdapterState,
        *,
        retention: float,
        redeliver_after: float,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.state = state
        self.sent = StateSentStore(state, retention=retention)
        self.retention = retention
        self.redeliver_after = redeliver_after
        self._now = now
        self._lock = asyncio.Lock()

    @staticmethod
    def _key(kind: str, a: str, b: str) -> str:
        return kind + ":" + json.dumps([a, b], ensure_ascii=False, separators=(",", ":"))

    async def _entries(self, key: str) -> tuple[bytes | None, list[list[object]]]:
        """The MPC record under ``key`` as read (for :meth:`~gateway.ports.AdapterState.replace`) and its entries."""
        value = await self.state.get(key)
        if value is None:
            return None, []
        try:
            entries = json.loads(value)
        except ValueError as exc:
            raise GatewayError(f"the MPC record {key} in {self.state.namespace} cannot be read", field="state") from exc
        return value, [list(e) for e in entries]

    async def _written(self, key: str, read: bytes | None, entries: list[list[object]]) -> bool:
        """Whether ``entries`` replaced the record read as ``read`` (False: another node changed it first)."""
        return await self.state.replace(key, read, json.dumps(entries).encode(), ttl=self.retention)

    async def offer(self, partner: str, mpc: str, message_id: str) -> None:
        """Make ``message_id`` (recorded in the sent store) available to ``partner``'s PullRequests on ``mpc``;
        nothing when it is waiting already or was answered."""
        if await self.answer(partner, message_id) is not None:
            return
        key = self._key("mpc", partner, mpc)
        async with self._lock:
            for _ in range(_RACES):
                read, entries = await self._entries(key)
                if any(e[0] == message_id for e in entries):
                    return
                if await self._written(key, read, [*entries, [message_id, None]]):
                    return
        raise _contended(key)

    async def take(self, partner: str, mpc: str) -> SentRecord | None:
        """The oldest message waiting for ``partner`` on ``mpc`` that was never pulled or was pulled more than
        ``redeliver_after`` seconds ago without an answer (marked pulled now); None: the MPC is empty for it."""
        key = self._key("mpc", partner, mpc)
        async with self._lock:
            for _ in range(_RACES):
                now = self._now()
                read, entries = await self._entries(key)
                kept: list[list[object]] = []
                chosen: SentRecord | None = None
                for entry in entries:
                    message_id, pulled = str(entry[0]), entry[1]
                    record = await self.sent.get(partner, message_id)
                    if record is None or await self.answer(partner, message_id) is not None:
                        continue  # answered or expired: no longer waiting
                    waiting = not isinstance(pulled, int | float) or now - pulled >= self.redeliver_after
                    if chosen is None and waiting:
                        chosen = record
                        entry = [message_id, now]
                    kept.append(entry)
                if kept == entries or await self._written(key, read, kept):
                    return chosen
        raise _contended(key)

    async def answer(self, partner: str, message_id: str) -> PullAnswer | None:
        """The partner's recorded answer to ``message_id``, once it arrived."""
        value = await self.state.get(self._key("answer", partner, message_id))
        if value is None:
            return None
        line, _, raw = value.partition(b"\n")
        header = json.loads(line)
        return PullAnswer(str(header["signal_id"]), raw, header["error"], str(header["text"]))

    async def forget(self, partner: str, message_id: str) -> None:
        """Drop the recorded answer to ``message_id`` (a transient refusal: the next offer is pulled again)."""
        await self.state.delete(self._key("answer", partner, message_id))

    async def record(self, partner: str, signal: VerifiedSignal) -> PullAnswer:
        """Record ``partner``'s verified signal about a message it pulled: a receipt must acknowledge exactly the
        references we signed (``RECEIPT_INVALID`` otherwise); the first answer recorded is the one kept."""
        ref = signal.signal.ref_to_message_id or ""
        sent = await self.sent.get(partner, ref)
        if sent is None:
            raise PartnerRejected(
                f"{ref!r} is not a message {partner} pulled from us",
                field="eb:RefToMessageId",
                details={"ebms": "EBMS:0003", "cause": "AS4_UNCORRELATED"},
            )
        error: str | None = None
        text = ""
        if signal.signal.errors:
            first = signal.signal.errors[0]
            error = first.code
            text = f"{first.code} {first.short_description or ''} {first.description or ''}".strip()
        else:
            check_receipt(signal, outgoing_from_record(sent))
            await self.sent.set_receipt(partner, ref, signal.signal.message_id)
        header = {"signal_id": signal.signal.message_id, "error": error, "text": text}
        value = json.dumps(header).encode() + b"\n" + signal.raw
        await self.state.add(self._key("answer", partner, ref), value, ttl=self.retention)
        kept = await self.answer(partner, ref)
        assert kept is not None
        return kept


_RACES = 50
"""Attempts of one MPC update against other nodes' concurrent ones before it gives up (retryably)."""


def _contended(key: str) -> StoreContended:
    return StoreContended(f"the MPC record {key} kept changing under {_RACES} attempts to update it", field="state")


class Puller:
    """Polls one partner's MPC with signed PullRequests and processes each message it answers with."""

    def __init__(
        self,
        receiver: As4Receiver,
        agreement: As4Partner,
        *,
        url: str,
        interval: float,
        timeout: float = 30.0,
    ) -> None:
        self.receiver = receiver
        self.agreement = agreement
        self.url = url
        self.mpc = agreement.pmode.mpc or DEFAULT_MPC
        self.interval = interval
        self.timeout = timeout
        self.pulled = 0
        """User messages received in answer to our PullRequests."""
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None

    async def _post(self, body: bytes, content_type: str) -> tuple[int, bytes, str]:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        try:
            async with self._session.post(
                self.url, data=body, headers={"Content-Type": content_type, "MIME-Version": "1.0"}
            ) as response:
                return response.status, await response.read(), response.headers.get("Content-Type", "")
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise PartnerUnavailable(f"{self.url}: {exc}", field="pmode.endpoint") from exc

    async def pull_once(self) -> bool:
        """One PullRequest: whether a user message came back (and was answered)."""
        receiver = self.receiver
        request = build_pull_request(self.mpc, receiver.signer, domain=receiver.domain, at=receiver.clock())
        status, body, content_type = await self._post(request, SIGNAL_CONTENT_TYPE)
        if status >= 300 or not body.strip():
            raise PartnerUnavailable(
                f"{self.url} answered the PullRequest with HTTP {status}",
                field="http.status",
                details={"status": status},
            )
        envelope = parse_xml(parse_multipart(body, content_type or "application/soap+xml").soap)
        if envelope.find(f"{{{SOAP12_NS}}}Header/{{{EB_NS}}}Messaging/{{{EB_NS}}}SignalMessage") is not None:
            signal = verify_signal(
                body, content_type, trust=self.agreement.trust, policy=self.agreement.pmode.security.verify
            )
            codes = [e.code for e in signal.signal.errors]
            if codes == [EMPTY_MPC]:
                return False
            raise PartnerRejected(
                f"{self.url} answered the PullRequest with {', '.join(codes) or 'a signal that is no user message'}",
                field="eb:Error",
                details={"ebms": codes[0] if codes else None},
            )
        self.pulled += 1
        answer = await receiver.accept(body, content_type, self.url)
        if answer.status != 200 or not isinstance(answer.body, bytes):
            return False  # not stored yet: unanswered, the partner offers it again
        status, _, _ = await self._post(answer.body, SIGNAL_CONTENT_TYPE)
        if status >= 300:
            raise PartnerUnavailable(
                f"{self.url} refused our receipt with HTTP {status}", field="http.status", details={"status": status}
            )
        return True

    async def drain(self) -> int:
        """Pull until the MPC is empty for us: how many user messages came."""
        count = 0
        while await self.pull_once():
            count += 1
        return count

    async def _run(self) -> None:
        while True:
            try:
                await self.drain()
            except NswError as exc:
                log.warning("AS4 pull from %s on %s failed: %s (incident %s)", self.url, self.mpc, exc, exc.incident_id)
            except Exception:  # the poller outlives one bad round; the next one starts afresh
                log.exception("AS4 pull from %s on %s failed", self.url, self.mpc)
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        """Poll every ``interval`` seconds in a background task."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"as4-pull:{self.url}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        session, self._session = self._session, None
        if session is not None:
            await session.close()
