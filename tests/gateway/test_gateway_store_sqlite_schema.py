"""The SQLite store's schema versions: the migrations of :mod:`gateway.store.migrations` on a file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gateway.errors import StoreSchemaOutdated
from gateway.journal import GENESIS
from gateway.store import migrations
from gateway.store.sqlite import SqliteStore

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
