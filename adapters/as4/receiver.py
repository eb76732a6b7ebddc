"""The AS4 receiver: an aiohttp handler that verifies, de-duplicates, delivers and answers with a signal.

For each POST:

1. :func:`~adapters.as4.messages.open_user_message` decrypts and verifies the
   message against the claimed partner's trust store; any coded failure is
   answered with a **signed** ebMS error signal (EBMS:0101 for signature and
   certificate failures, 0102 decryption, 0103 policy, 0009 header, 0001 an
   unknown partner or Service/Action, 0010 a PMode mismatch, 0003/0007
   content) whose ErrorDetail carries our error code and incident id;
2. duplicate elimination: under a per-MessageId lock, a MessageId already in
   the :class:`DuplicateStore` is answered with the *original* receipt and is
   not delivered again;
3. the verified message goes to the sink (an ``async`` callable, or the
   receiver's own :attr:`As4Receiver.inbox` queue). A sink that raises a
   retryable error makes the answer HTTP 503 without a receipt, so the sender's
   reception awareness resends the same MessageId; a non-retryable coded error
   is answered with a signed error signal;
4. the signed non-repudiation receipt is stored and returned (HTTP 200,
   ``application/soap+xml``).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from aiohttp import web

from adapters.as4.messages import (
    SIGNAL_CONTENT_TYPE,
    As4Partner,
    ReceivedMessage,
    build_error_signal,
    build_receipt,
    open_user_message,
    peek_message_id,
)
from gateway.errors import NswError, ValidationFailed, ValidationIssue
from signing.keys import Signer
from signing.xenc import Decrypter
from signing.xml import parse_xml

__all__ = ["DuplicateStore", "MemoryDuplicateStore", "SqliteDuplicateStore", "As4Receiver", "MessageSink"]

log = logging.getLogger(__name__)

MessageSink = Callable[[ReceivedMessage], Awaitable[None]]


class DuplicateStore(Protocol):
    """MessageIds already received, with the receipt each was answered with."""

    async def receipt_for(self, message_id: str) -> bytes | None: ...

    async def remember(self, message_id: str, receipt: bytes) -> None: ...


class MemoryDuplicateStore:
    """In-memory duplicate store (tests, single-process receivers)."""

    def __init__(self) -> None:
        self._receipts: dict[str, bytes] = {}

    async def receipt_for(self, message_id: str) -> bytes | None:
        return self._receipts.get(message_id)

    async def remember(self, message_id: str, receipt: bytes) -> None:
        self._receipts[message_id] = receipt

    def __len__(self) -> int:
        return len(self._receipts)


class SqliteDuplicateStore:
    """Duplicate store in a SQLite file: survives restarts of the receiver."""

    def __init__(self, path: str | Path) -> None:
        self._db = sqlite3.connect(str(path), check_same_thread=False)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS as4_received "
            "(message_id TEXT PRIMARY KEY, receipt BLOB NOT NULL, at TEXT NOT NULL)"
        )
        self._db.commit()

    async def receipt_for(self, message_id: str) -> bytes | None:
        row = self._db.execute("SELECT receipt FROM as4_received WHERE message_id = ?", (message_id,)).fetchone()
        return bytes(row[0]) if row else None

    async def remember(self, message_id: str, receipt: bytes) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO as4_received (message_id, receipt, at) VALUES (?, ?, ?)",
            (message_id, receipt, datetime.now(UTC).isoformat()),
        )
        self._db.commit()

    def close(self) -> None:
        self._db.close()


class As4Receiver:
    """Receives AS4 user messages for ``party_id`` from the configured partners.

    ``partners`` maps each partner's PartyId to its agreement, or to several
    (e.g. one PMode per Service/Action); an inbound message is held to the one
    whose Service, Service/@type and Action it carries
    (:func:`~adapters.as4.messages.select_agreement`): an unknown partner or
    Service/Action is answered with a signed EBMS:0001 ValueNotRecognized, a
    message naming a PMode whose Service/Action it does not carry with
    EBMS:0010 ProcessingModeMismatch (ebMS 3.0 Core, section 6.7.1).
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
    ) -> None:
        self.party_id = party_id
        self.partners = dict(partners)
        self.signer = signer
        self.decrypter = decrypter
        self.inbox: asyncio.Queue[ReceivedMessage] = asyncio.Queue()
        self.sink: MessageSink = sink or self.inbox.put
        self.store: DuplicateStore = store or MemoryDuplicateStore()
        self.domain = domain
        self.clock = clock or (lambda: datetime.now(UTC))
        self.delivered = 0
        self._locks: dict[str, asyncio.Lock] = {}

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

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        content_type = request.headers.get("Content-Type", "")
        try:
            received = open_user_message(
                body,
                content_type,
                our_party_id=self.party_id,
                partner_for=self._partner,
                decrypter=self.decrypter,
                at=self.clock(),
            )
        except NswError as exc:
            return self._error(exc, body, content_type)
        message_id = received.user_message.message_id
        lock = self._locks.setdefault(message_id, asyncio.Lock())
        async with lock:
            if received.partner.pmode.duplicate_detection:
                original = await self.store.receipt_for(message_id)
                if original is not None:
                    log.info("AS4 duplicate %s answered with its original receipt", message_id)
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
                        status=503, text=f"{exc.code}: delivery failed, resend later", headers={"Retry-After": "1"}
                    )
                return self._error(exc, body, content_type)
            self.delivered += 1
            receipt = build_receipt(received, self.signer, domain=self.domain, at=self.clock())
            await self.store.remember(message_id, receipt)
        self._locks.pop(message_id, None)
        return web.Response(body=receipt, status=200, headers={"Content-Type": SIGNAL_CONTENT_TYPE})

    def app(self, path: str = "/as4", *, max_bytes: int = 128 * 1024 * 1024) -> web.Application:
        """An aiohttp application serving the receiver at ``path``."""
        app = web.Application(client_max_size=max_bytes)
        app.router.add_post(path, self.handle)
        return app
