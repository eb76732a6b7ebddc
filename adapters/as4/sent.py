"""What the AS4 adapter has sent: the exact bytes of each user message, kept across restarts.

Reception awareness (ebMS 3.0 core, AS4 profile section 3.2) resends the
*same* message until a receipt arrives. "The same" means the same bytes: the
partner's duplicate elimination answers a repeated MessageId with the receipt
of the *first* transmission, whose ebbp:NonRepudiationInformation lists the
ds:References (digests) of that transmission. A message rebuilt after a
restart has a new Timestamp, new Content-IDs and a new encryption key, hence
other digests, and that original receipt would never match it.

So the adapter records each built message in a :class:`SentStore` **before
its first transmission** and, on every later attempt (in this process or after
a restart), resends the recorded bytes. Records are kept per partner (the
eb:To PartyId) and MessageId: adapters of two partners may share one state.
A record holds the ebMS MessageId, the
exact HTTP body and Content-Type, the UserMessage Timestamp, the signed
ds:Reference elements, the SHA-256 of the gateway payload (a MessageId reused
for other content is refused, never silently resent) and, once one verified,
the MessageId of the partner's receipt (so a later receipt with the same id is
reported as a duplicate, also after a restart).

The records are the adapter's :class:`~gateway.ports.AdapterState` (:class:`StateSentStore`): in the
gateway they live in the gateway's store (namespace ``destination:NAME``), so a resend after a restart, or
picked up by another node of a gateway on PostgreSQL, carries the bytes the first transmission carried, and the
partner's receipt of it matches wherever it is processed. Each record is kept ``retention`` seconds after it was
last written (built, or its receipt recorded). Store faults (``STORE_UNAVAILABLE``, ``STORE_FULL``,
``STORE_CORRUPT``) are retryable: a message that cannot be recorded is not transmitted.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from lxml import etree

from gateway.errors import GatewayError
from gateway.ports import AdapterState
from signing.algorithms import DS_NS
from signing.xml import parse_xml, serialize

__all__ = ["SentRecord", "SentStore", "StateSentStore", "PURGE_INTERVAL", "references_xml", "reference_elements"]

_DS = f"{{{DS_NS}}}"


@dataclass(frozen=True)
class SentRecord:
    """One built user message, exactly as it goes on the wire."""

    message_id: str
    """The ebMS MessageId."""
    body: bytes
    """The exact HTTP request body (multipart/related)."""
    content_type: str
    """The exact Content-Type header (with its boundary)."""
    timestamp: datetime
    """eb:MessageInfo/eb:Timestamp of the UserMessage."""
    references: bytes
    """The signed ds:Reference elements, serialized inside a ds:SignedInfo (see :func:`references_xml`)."""
    payload_sha256: str
    """SHA-256 (hex) of the gateway payload the message carries."""
    receipt_id: str | None = None
    """MessageId of the partner's verified receipt, once one arrived."""
    partner: str = ""
    """The eb:To PartyId the message is sent to: records are kept per (partner, MessageId), so adapters of two
    partners sharing one store never take each other's message for their own."""


def references_xml(elements: Sequence[etree._Element]) -> bytes:
    """The ds:Reference elements, copied into one ds:SignedInfo and serialized."""
    import copy

    holder = etree.Element(_DS + "SignedInfo", nsmap={"ds": DS_NS})
    for el in elements:
        holder.append(copy.deepcopy(el))
    return serialize(holder, declaration=False)


def reference_elements(data: bytes) -> tuple[etree._Element, ...]:
    """The ds:Reference elements stored by :func:`references_xml` (parsed by the hardened parser)."""
    return tuple(parse_xml(data).iterfind(_DS + "Reference"))


PURGE_INTERVAL = 3600.0
"""Seconds between two purges of expired records (the first write after start purges)."""


@runtime_checkable
class SentStore(Protocol):
    """The user messages the adapter has built, by (partner PartyId, ebMS MessageId)."""

    async def get(self, partner: str, message_id: str) -> SentRecord | None:
        """The record of ``message_id`` sent to ``partner``, if it was built before."""
        ...

    async def add(self, record: SentRecord) -> SentRecord:
        """Record ``record`` unless its (partner, MessageId) is recorded already; return the record that is kept
        (the first one: of two nodes building the same message at once, both send the one recorded first)."""
        ...

    async def set_receipt(self, partner: str, message_id: str, receipt_id: str) -> None:
        """Remember the MessageId of the verified receipt of ``message_id`` sent to ``partner``."""
        ...


class StateSentStore:
    """:class:`SentStore` on an :class:`~gateway.ports.AdapterState`: one record per (partner, MessageId) under
    the key ``sent:["partner","message_id"]``, its value a JSON header line followed by the exact body."""

    def __init__(self, state: AdapterState, *, retention: float, field: str = "state") -> None:
        self.state = state
        self.retention = retention
        self._field = field
        self._purged_at: float | None = None

    @staticmethod
    def key(partner: str, message_id: str) -> str:
        return "sent:" + json.dumps([partner, message_id], ensure_ascii=False, separators=(",", ":"))

    @staticmethod
    def encode(record: SentRecord) -> bytes:
        header = {
            "message_id": record.message_id,
            "content_type": record.content_type,
            "timestamp": record.timestamp.isoformat(),
            "references": record.references.decode("utf-8"),
            "payload_sha256": record.payload_sha256,
            "receipt_id": record.receipt_id,
            "partner": record.partner,
        }
        return json.dumps(header, separators=(",", ":")).encode("ascii") + b"\n" + record.body

    def decode(self, value: bytes) -> SentRecord:
        line, _, body = value.partition(b"\n")
        try:
            header = json.loads(line)
            return SentRecord(
                message_id=str(header["message_id"]),
                body=body,
                content_type=str(header["content_type"]),
                timestamp=datetime.fromisoformat(str(header["timestamp"])),
                references=str(header["references"]).encode("utf-8"),
                payload_sha256=str(header["payload_sha256"]),
                receipt_id=None if header["receipt_id"] is None else str(header["receipt_id"]),
                partner=str(header["partner"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise GatewayError(
                f"a sent-message record in {self.state.namespace} cannot be read: {exc}", field=self._field
            ) from exc

    async def get(self, partner: str, message_id: str) -> SentRecord | None:
        value = await self.state.get(self.key(partner, message_id))
        return None if value is None else self.decode(value)

    async def add(self, record: SentRecord) -> SentRecord:
        await self._purge()
        if await self.state.add(self.key(record.partner, record.message_id), self.encode(record), ttl=self.retention):
            return record
        kept = await self.get(record.partner, record.message_id)
        if kept is None:  # expired between the two calls: ours is the record now
            await self.state.put(self.key(record.partner, record.message_id), self.encode(record), ttl=self.retention)
            return record
        return kept

    async def set_receipt(self, partner: str, message_id: str, receipt_id: str) -> None:
        record = await self.get(partner, message_id)
        if record is not None and record.receipt_id != receipt_id:
            updated = SentRecord(**{**record.__dict__, "receipt_id": receipt_id})
            await self.state.put(self.key(partner, message_id), self.encode(updated), ttl=self.retention)

    async def _purge(self) -> None:
        now = time.monotonic()
        if self._purged_at is None or now - self._purged_at >= PURGE_INTERVAL:
            self._purged_at = now
            await self.state.purge()
