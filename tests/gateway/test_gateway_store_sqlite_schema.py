"""The SQLite store's schema versions: the migrations of :mod:`gateway.store.migrations` on a file."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from gateway.api import Gateway
from gateway.errors import StoreSchemaOutdated
from gateway.journal import ACCEPTED, GENESIS, JournalEntry, payload_digest
from gateway.model import PartyId, State, SubmissionAck, SubmissionEnvelope
from gateway.store import migrations
from gateway.store.sqlite import SqliteStore
from helpers.gateway import Receiver, eventually, make_config

# The schema as the store wrote it before files carried a version (copied, not imported: it must not change).
UNVERSIONED_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY,
    sender TEXT NOT NULL,
    message_id TEXT NOT NULL,
    document_type TEXT NOT NULL,
    conversation TEXT NOT NULL,
    reference TEXT,
    destination TEXT,
    procedure TEXT,
    format TEXT NOT NULL,
    intake_state TEXT NOT NULL,
    state TEXT NOT NULL,
    received_at REAL NOT NULL,
    error TEXT,
    ack TEXT NOT NULL,
    payload BLOB NOT NULL,
    UNIQUE (sender, message_id)
);
CREATE INDEX IF NOT EXISTS messages_sender_received ON messages (sender, received_at);
CREATE INDEX IF NOT EXISTS messages_reference ON messages (reference);
CREATE TABLE IF NOT EXISTS deliveries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    message TEXT NOT NULL REFERENCES messages (id),
    destination TEXT NOT NULL,
    conversation TEXT NOT NULL,
    sender TEXT NOT NULL,
    document_type TEXT NOT NULL,
    reference TEXT,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    queued_at REAL NOT NULL,
    deadline REAL NOT NULL,
    next_at REAL NOT NULL,
    lease_owner TEXT,
    lease_until REAL,
    last_error TEXT,
    payload BLOB NOT NULL,
    receipt BLOB,
    UNIQUE (message, destination)
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (destination, state, seq);
CREATE INDEX IF NOT EXISTS deliveries_pending ON deliveries (destination, conversation, seq)
    WHERE state <> 'ACKNOWLEDGED';
CREATE TABLE IF NOT EXISTS transitions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    message TEXT NOT NULL,
    destination TEXT,
    from_state TEXT,
    to_state TEXT NOT NULL,
    at REAL NOT NULL,
    code TEXT,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS transitions_message ON transitions (message, id);
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    message TEXT NOT NULL,
    destination TEXT,
    digest TEXT NOT NULL,
    prev TEXT NOT NULL,
    hash TEXT NOT NULL
);
"""


def _user_version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


async def test_fresh_file_is_created_at_the_latest_version(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    async with SqliteStore(path):
        pass
    assert _user_version(path) == migrations.LATEST
    async with SqliteStore(path) as store:  # reopening applies nothing and works
        assert await store.journal() == []
    assert _user_version(path) == migrations.LATEST


async def test_unversioned_file_of_the_old_schema_is_adopted_and_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(UNVERSIONED_SCHEMA)
    conn.execute(
        "INSERT INTO journal (seq, at, kind, message, destination, digest, prev, hash) VALUES (1, 1.0, 'ACCEPTED',"
        " 'G-1', NULL, 'd', ?, 'h')",
        (GENESIS,),
    )
    conn.commit()
    conn.close()
    assert _user_version(path) == 0
    async with SqliteStore(path) as store:
        entries = await store.journal()
        assert [(e.seq, e.message_id) for e in entries] == [(1, "G-1")]
        assert await store.stats() == []
    assert _user_version(path) == migrations.LATEST


async def test_file_newer_than_the_gateway_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    async with SqliteStore(path):
        pass
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {migrations.LATEST + 1}")
    conn.close()
    store = SqliteStore(path)
    with pytest.raises(StoreSchemaOutdated) as err:
        await store.open()
    assert err.value.code == "STORE_SCHEMA_OUTDATED" and err.value.field == "store.url"
    assert err.value.details["version"] == migrations.LATEST + 1 and err.value.details["needed"] == migrations.LATEST
    assert _user_version(path) == migrations.LATEST + 1  # untouched


LEGACY_TRANSITIONS = "INSERT INTO transitions (message, destination, from_state, to_state, at) VALUES "


def version_2_rows(
    body: bytes, *, at: float
) -> tuple[dict[str, Any], dict[str, Any], list[tuple[str, str | None, str | None, str, float]]]:
    """A message queued for ``REST`` by a gateway at schema version 2, as its ``messages``, ``deliveries``
    and ``transitions`` columns (no ``content_type``: that gateway did not store one)."""
    env = SubmissionEnvelope(sender=PartyId("MOIT"), message_id="OLD-1", document_type="eco.form_d", format="json")
    ack = SubmissionAck(env.gateway_id, "MOIT", "OLD-1", State.QUEUED, at, ("REST",))
    message = {
        "id": env.gateway_id,
        "sender": "MOIT",
        "message_id": "OLD-1",
        "document_type": "eco.form_d",
        "conversation": env.conversation,
        "format": "json",
        "intake_state": "QUEUED",
        "received_at": at,
        "ack": json.dumps(ack.to_dict()),
        "payload": body,
    }
    delivery = {
        "message": env.gateway_id,
        "destination": "REST",
        "conversation": env.conversation,
        "sender": "MOIT",
        "document_type": "eco.form_d",
        "state": "QUEUED",
        "attempts": 0,
        "queued_at": at,
        "deadline": at + 3600,
        "next_at": at,
        "payload": body,
    }
    steps = ["RECEIVED", "VERIFIED", "MAPPED", "QUEUED"]
    history = [(env.gateway_id, None, steps[i - 1] if i else None, to, at) for i, to in enumerate(steps)] + [
        (env.gateway_id, "REST", None, "QUEUED", at)
    ]
    return message, delivery, history


def _file_at_version(
    path: Path,
    version: int,
    message: dict[str, Any],
    delivery: dict[str, Any],
    history: Sequence[tuple[Any, ...]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``path`` as a gateway that knew migrations 1 to ``version`` left it, holding ``message`` (QUEUED), its
    ``delivery`` and its old-style ``history``."""
    with monkeypatch.context() as m:
        m.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:version])
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            migrations.upgrade_sqlite(conn, where=str(path))
            assert migrations.sqlite_version(conn) == version
            conn.execute(
                f"INSERT INTO messages ({', '.join(message)}, state) VALUES ({', '.join('?' * len(message))}, ?)",
                (*message.values(), "QUEUED"),
            )
            conn.execute(
                f"INSERT INTO deliveries ({', '.join(delivery)}) VALUES ({', '.join('?' * len(delivery))})",
                tuple(delivery.values()),
            )
            conn.executemany(LEGACY_TRANSITIONS + "(?, ?, ?, ?, ?)", history)
        finally:
            conn.close()


async def test_delivery_queued_at_version_2_is_upgraded_and_sent_with_its_destination_media_type(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Prerequisite: a file at schema version 2 with a delivery queued for a ``json`` destination (no content
    type stored). Predicate: the gateway upgrades the file, leaves the row's content type unknown (NULL) and
    delivers it as ``application/json``, the media type of the destination's format."""
    from helpers.mappings import form_d
    from mappings.registry import get

    rest = await Receiver().start()
    try:
        config = make_config(tmp_path, {"REST": rest.url}, per_destination={"REST": {"format": "json"}})
        path = tmp_path / "gw.db"
        body = get("json").emit(form_d())
        message, delivery, history = version_2_rows(body, at=time.time())
        _file_at_version(path, 2, message, delivery, history, monkeypatch)
        async with Gateway(config) as gw:

            async def acknowledged() -> bool:
                record = await gw.store.get(message["id"])
                return record is not None and record.state is State.ACKNOWLEDGED

            await eventually(acknowledged)
            record = await gw.store.get(message["id"])
    finally:
        await rest.stop()
    assert [r["headers"]["Content-Type"] for r in rest.requests] == ["application/json"]
    assert rest.requests[0]["body"] == body
    assert record is not None and [d.content_type for d in record.deliveries] == [None]
    assert _user_version(path) == migrations.LATEST


async def test_payloads_stored_at_version_11_move_to_their_own_tables_and_still_match_the_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Prerequisite: a file at schema version 11 with a message of 1.5 MiB (above the blob I/O chunk) queued, its
    payload in ``messages.payload`` and ``deliveries.payload``. Predicate: opening the store moves both payloads
    into ``message_payloads`` and ``delivery_payloads``, drops the old columns, and reads them back whole, with the
    digest its ACCEPTED entry names."""
    path = tmp_path / "gw.db"
    body = b"<Doc>" + b"x" * (3 * 512 * 1024) + b"</Doc>"
    message, delivery, _ = version_2_rows(body, at=time.time())
    _file_at_version(path, 11, message, delivery, [], monkeypatch)
    entry = JournalEntry.after(
        0, GENESIS, at=1.0, kind=ACCEPTED, message_id=message["id"], destination=None, digest=payload_digest(body)
    )
    async with SqliteStore(path) as store:
        assert await store.message_payload(message["id"]) == body
        assert await store.evidence_digests([entry]) == {1: entry.digest}
        record = await store.get(message["id"])
        assert record is not None and [d.payload for d in record.deliveries] == [body]
        [claimed] = await store.claim("REST", owner="w", limit=1, now=time.time() + 1, lease=60)
        assert claimed.payload == body
    assert _user_version(path) == migrations.LATEST
    conn = sqlite3.connect(path)
    try:
        columns = {
            table: [r[1] for r in conn.execute(f"PRAGMA table_info({table})")] for table in ("messages", "deliveries")
        }
    finally:
        conn.close()
    assert "payload" not in columns["messages"] and "payload" not in columns["deliveries"]
