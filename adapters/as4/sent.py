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
eb:To PartyId) and MessageId: adapters of two partners may share one store.
A record holds the ebMS MessageId, the
exact HTTP body and Content-Type, the UserMessage Timestamp, the signed
ds:Reference elements, the SHA-256 of the gateway payload (a MessageId reused
for other content is refused, never silently resent) and, once one verified,
the MessageId of the partner's receipt (so a later receipt with the same id is
reported as a duplicate, also after a restart).

* :class:`SqliteSentStore`: a SQLite file (``options.sent_store = "path"``);
  what a deployment configures;
* :class:`MemorySentStore`: the default when ``sent_store`` is not configured;
  lives as long as the adapter, so a resend after a restart is rebuilt.

Failures of the SQLite file are :class:`~gateway.errors.StoreUnavailable`
(retryable): a message that cannot be recorded is not transmitted.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from lxml import etree

from gateway.errors import ConfigError, StoreUnavailable
from signing.algorithms import DS_NS
from signing.xml import parse_xml, serialize

__all__ = ["SentRecord", "SentStore", "MemorySentStore", "SqliteSentStore", "references_xml", "reference_elements"]

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


@runtime_checkable
class SentStore(Protocol):
    """The user messages the adapters have built, by (partner PartyId, ebMS MessageId)."""

    async def get(self, partner: str, message_id: str) -> SentRecord | None:
        """The record of ``message_id`` sent to ``partner``, if it was built before."""
        ...

    async def add(self, record: SentRecord) -> SentRecord:
        """Record ``record`` unless its (partner, MessageId) is recorded already; return the record that is kept."""
        ...

    async def set_receipt(self, partner: str, message_id: str, receipt_id: str) -> None:
        """Remember the MessageId of the verified receipt of ``message_id`` sent to ``partner``."""
        ...

    def close(self) -> None:
        """Release the file (the store reopens it when used again)."""
        ...


class MemorySentStore:
    """Records in memory: the default when ``sent_store`` is not configured (lost on restart).

    Keeps the newest ``limit`` records.
    """

    def __init__(self, limit: int = 4096) -> None:
        self._records: dict[tuple[str, str], SentRecord] = {}
        self.limit = limit

    async def get(self, partner: str, message_id: str) -> SentRecord | None:
        return self._records.get((partner, message_id))

    async def add(self, record: SentRecord) -> SentRecord:
        kept = self._records.setdefault((record.partner, record.message_id), record)
        while len(self._records) > self.limit:
            del self._records[next(iter(self._records))]
        return kept

    async def set_receipt(self, partner: str, message_id: str, receipt_id: str) -> None:
        record = self._records.get((partner, message_id))
        if record is not None:
            self._records[(partner, message_id)] = SentRecord(**{**record.__dict__, "receipt_id": receipt_id})

    def close(self) -> None:
        pass

    def __len__(self) -> int:
        return len(self._records)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS as4_sent (
    partner TEXT NOT NULL,
    message_id TEXT NOT NULL,
    body BLOB NOT NULL,
    content_type TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    refs BLOB NOT NULL,
    payload_sha256 TEXT NOT NULL,
    receipt_id TEXT,
    recorded_at TEXT NOT NULL,
    PRIMARY KEY (partner, message_id)
)
"""
_SCHEMA_VERSION = 1
"""``PRAGMA user_version`` of a sent store keyed by (partner, MessageId)."""
_LEGACY_PARTNER = ""
"""The partner of records written when the store was keyed by MessageId alone (it was not recorded)."""
_COLUMNS = "message_id, body, content_type, timestamp, refs, payload_sha256, receipt_id, recorded_at"


class SqliteSentStore:
    """Records in a SQLite file (``synchronous = FULL``): survives restarts of the gateway.

    A path that cannot be opened is :class:`~gateway.errors.ConfigError` naming ``field``. A file written when
    records were keyed by MessageId alone is upgraded in place when opened: its records are kept under an
    unknown partner and still found by their MessageId for any partner (which partner was not recorded); every
    record written since is keyed by (partner, MessageId).
    """

    def __init__(self, path: str | Path, *, field: str = "options.sent_store") -> None:
        self.path = Path(path)
        self._field = field
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        try:
            self._connect()
        except sqlite3.Error as exc:
            raise ConfigError(f"cannot open the AS4 sent store {self.path}: {exc}", field=field) from exc

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
            try:
                db.execute("PRAGMA synchronous = FULL")
                if int(db.execute("PRAGMA user_version").fetchone()[0]) < _SCHEMA_VERSION:
                    self._upgrade(db)
            except sqlite3.Error:
                db.close()
                raise
            self._db = db
        return self._db

    @staticmethod
    def _upgrade(db: sqlite3.Connection) -> None:
        legacy = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'as4_sent'").fetchone()
        steps = [_SCHEMA]
        if legacy:
            steps = [
                "ALTER TABLE as4_sent RENAME TO as4_sent_by_id",
                _SCHEMA,
                f"INSERT INTO as4_sent (partner, {_COLUMNS})"
                f" SELECT '{_LEGACY_PARTNER}', {_COLUMNS} FROM as4_sent_by_id",
                "DROP TABLE as4_sent_by_id",
            ]
        db.executescript(
            "BEGIN IMMEDIATE;\n" + ";\n".join(steps) + f";\nPRAGMA user_version = {_SCHEMA_VERSION};\nCOMMIT;"
        )

    async def _exec(self, sql: str, params: tuple[object, ...]) -> list[tuple[Any, ...]]:
        return await asyncio.to_thread(self._run, sql, params)  # each write is an fsync: off the event loop

    def _run(self, sql: str, params: tuple[object, ...]) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._connect().execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"the AS4 sent store {self.path} failed: {exc}", field=self._field) from exc

    async def get(self, partner: str, message_id: str) -> SentRecord | None:
        rows = await self._exec(
            "SELECT message_id, body, content_type, timestamp, refs, payload_sha256, receipt_id, partner "
            "FROM as4_sent WHERE message_id = ? AND partner IN (?, ?) ORDER BY partner = ? DESC LIMIT 1",
            (message_id, partner, _LEGACY_PARTNER, partner),
        )
        if not rows:
            return None
        mid, body, content_type, timestamp, refs, digest, receipt_id, kept_for = rows[0]
        return SentRecord(
            str(mid),
            bytes(body),
            str(content_type),
            datetime.fromisoformat(str(timestamp)),
            bytes(refs),
            str(digest),
            None if receipt_id is None else str(receipt_id),
            str(kept_for),
        )

    async def add(self, record: SentRecord) -> SentRecord:
        await self._exec(
            "INSERT OR IGNORE INTO as4_sent "
            "(partner, message_id, body, content_type, timestamp, refs, payload_sha256, recorded_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.partner,
                record.message_id,
                record.body,
                record.content_type,
                record.timestamp.isoformat(),
                record.references,
                record.payload_sha256,
                datetime.now(UTC).isoformat(),
            ),
        )
        kept = await self.get(record.partner, record.message_id)
        assert kept is not None
        return kept

    async def set_receipt(self, partner: str, message_id: str, receipt_id: str) -> None:
        await self._exec(
            "UPDATE as4_sent SET receipt_id = ? WHERE message_id = ? AND partner = (SELECT partner FROM as4_sent"
            " WHERE message_id = ? AND partner IN (?, ?) ORDER BY partner = ? DESC LIMIT 1)",
            (receipt_id, message_id, message_id, partner, _LEGACY_PARTNER, partner),
        )

    def close(self) -> None:
        with self._lock:
            db, self._db = self._db, None
        if db is not None:
            db.close()
