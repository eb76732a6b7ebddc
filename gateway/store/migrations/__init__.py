"""Versioned schema migrations of both stores, in one list.

:data:`MIGRATIONS` is the ordered list; each entry has its SQL for PostgreSQL and for SQLite (the
dialects differ in types, identity columns and partial indexes; an empty text means the step has
nothing to do in that dialect) and is applied once, in its own transaction. Never edit a released
migration: append a new one.

* PostgreSQL records the applied versions in ``schema_version``. ``nswgw db upgrade`` applies the
  pending ones (:func:`upgrade`); a gateway refuses to start while the database is behind
  (``STORE_SCHEMA_OUTDATED``). Everything is created in the connection's ``search_path`` schema (its
  first entry), so one database can hold several isolated gateways (tests do this).
* SQLite keeps the version in ``PRAGMA user_version``; the store applies the pending migrations when it
  opens the file (:func:`upgrade_sqlite`). A file with the tables but no version predates versioning and
  is adopted as version 1. A file newer than this code is refused with ``STORE_SCHEMA_OUTDATED``.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from gateway.errors import StoreSchemaOutdated

__all__ = [
    "Migration",
    "MIGRATIONS",
    "LATEST",
    "current_version",
    "upgrade",
    "pending",
    "sqlite_version",
    "upgrade_sqlite",
]


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    postgresql: str
    """The step on PostgreSQL."""
    sqlite: str
    """The step on SQLite (``""``: nothing to do there)."""


_INITIAL_POSTGRESQL = """
CREATE TABLE messages (
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
    received_at DOUBLE PRECISION NOT NULL,
    error TEXT,
    ack TEXT NOT NULL,
    payload BYTEA NOT NULL,
    CONSTRAINT messages_dedup UNIQUE (sender, message_id)
);
CREATE INDEX messages_sender_received ON messages (sender, received_at);
CREATE INDEX messages_reference ON messages (reference) WHERE reference IS NOT NULL;
CREATE INDEX messages_received ON messages (received_at);

CREATE TABLE deliveries (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message TEXT NOT NULL REFERENCES messages (id),
    destination TEXT NOT NULL,
    conversation TEXT NOT NULL,
    sender TEXT NOT NULL,
    document_type TEXT NOT NULL,
    reference TEXT,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    queued_at DOUBLE PRECISION NOT NULL,
    deadline DOUBLE PRECISION NOT NULL,
    next_at DOUBLE PRECISION NOT NULL,
    lease_owner TEXT,
    lease_until DOUBLE PRECISION,
    lease_node BIGINT,
    last_error TEXT,
    payload BYTEA NOT NULL,
    receipt BYTEA,
    CONSTRAINT deliveries_once UNIQUE (message, destination)
);
-- the claim scans only due rows of one outbox ...
CREATE INDEX deliveries_queued ON deliveries (destination, seq) WHERE state = 'QUEUED';
-- ... and checks the head of each conversation against the rows not yet acknowledged
CREATE INDEX deliveries_pending ON deliveries (destination, conversation, seq) WHERE state <> 'ACKNOWLEDGED';
CREATE INDEX deliveries_dead ON deliveries (destination, seq) WHERE state = 'DEAD';
CREATE INDEX deliveries_leased ON deliveries (lease_node) WHERE lease_owner IS NOT NULL;

CREATE TABLE transitions (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message TEXT NOT NULL,
    destination TEXT,
    from_state TEXT,
    to_state TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL,
    code TEXT,
    detail TEXT
);
CREATE INDEX transitions_message ON transitions (message, id);

CREATE TABLE journal (
    seq BIGINT PRIMARY KEY,
    at DOUBLE PRECISION NOT NULL,
    kind TEXT NOT NULL,
    message TEXT NOT NULL,
    destination TEXT,
    digest TEXT NOT NULL,
    prev TEXT NOT NULL,
    hash TEXT NOT NULL
);

-- gateway nodes: a node is alive while its session (pid, backend_start) is connected
CREATE TABLE nodes (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pid INTEGER NOT NULL,
    backend_start TIMESTAMPTZ NOT NULL,
    started_at DOUBLE PRECISION NOT NULL,
    name TEXT NOT NULL
);
"""

_CHEAPER_WRITES = """
-- Payloads (signed XML, 8 KB to several MB) are compressed when TOASTed. PostgreSQL's default, pglz,
-- costs ~0.15 ms of server CPU per 8 KB payload and ~1 ms per 100 KB; lz4 a fraction of that at about
-- the same ratio on XML. Only new values are affected. A server built without lz4 keeps pglz.
DO $$
BEGIN
    ALTER TABLE messages ALTER COLUMN payload SET COMPRESSION lz4;
    ALTER TABLE deliveries ALTER COLUMN payload SET COMPRESSION lz4;
    ALTER TABLE deliveries ALTER COLUMN receipt SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'lz4 is not available on this server: payloads stay pglz-compressed';
END
$$;
-- A claim only writes the lease columns. With no index on them and room left on each page, that
-- update is HOT: no index entry is written. Only QUEUED rows are ever leased, so the start-up
-- release of dead nodes' leases finds them through deliveries_queued.
DROP INDEX deliveries_leased;
ALTER TABLE deliveries SET (fillfactor = 80);
-- The journal is one hash chain for every node: a transaction that appends takes the schema's journal
-- lock, reads the head and inserts after it, holding the lock to COMMIT. Lock and read in one call (each
-- statement of a volatile function sees what committed before it, so the head is read after the lock).
CREATE FUNCTION journal_head(lock_key BIGINT) RETURNS TABLE (seq BIGINT, hash TEXT)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(lock_key);
    RETURN QUERY SELECT j.seq, j.hash FROM journal AS j ORDER BY j.seq DESC LIMIT 1;
END
$$;
"""

_INITIAL_SQLITE = """
CREATE TABLE messages (
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
CREATE INDEX messages_sender_received ON messages (sender, received_at);
CREATE INDEX messages_reference ON messages (reference);
CREATE TABLE deliveries (
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
CREATE INDEX deliveries_due ON deliveries (destination, state, seq);
CREATE INDEX deliveries_pending ON deliveries (destination, conversation, seq) WHERE state <> 'ACKNOWLEDGED';
CREATE TABLE transitions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    message TEXT NOT NULL,
    destination TEXT,
    from_state TEXT,
    to_state TEXT NOT NULL,
    at REAL NOT NULL,
    code TEXT,
    detail TEXT
);
CREATE INDEX transitions_message ON transitions (message, id);
CREATE TABLE journal (
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
# The SQLite store keeps the overall state of a message in messages.state (one process owns the file, so
# the writer keeps it current); PostgreSQL derives it from the deliveries when it reads.

_DELIVERY_CONTENT_TYPE = """
-- The media type of each delivery's payload, decided by the broker. Rows already queued keep NULL (the
-- database does not know the format they were mapped to); the delivery worker sends those with the media
-- type of the destination's configured format, as the gateway that queued them did. A nullable column
-- without a default is only a catalogue change: no table rewrite, no long lock.
ALTER TABLE deliveries ADD COLUMN content_type TEXT;
"""

_CONTENT_DIGEST = """
-- The digest of the verified signed content of each queued message (a replay of the same signed document
-- under another message id is refused as a duplicate). Rows already stored keep NULL: the digest is computed
-- at verification and the stored evidence is not verified again. A nullable column is a catalogue change; the
-- partial unique index covers only rows with a digest, so building it on a table of old rows reads it once.
ALTER TABLE messages ADD COLUMN content_digest TEXT;
CREATE UNIQUE INDEX messages_content_dedup ON messages (sender, content_digest) WHERE content_digest IS NOT NULL;
"""

_DELIVERY_ON_BEHALF_OF = """
-- The enterprise an intermediary submitted each delivery's message for, passed on to the destination
-- (X-On-Behalf-Of, AS4 originalSender). Rows already queued keep NULL and go out as they would have. A nullable
-- column without a default is only a catalogue change.
ALTER TABLE deliveries ADD COLUMN on_behalf_of TEXT;
"""

_PAYLOAD_EXCERPT = """
-- A refused submission keeps only its first bytes as evidence (gateway.rejected_prefix_bytes) with the size and
-- SHA-256 of the whole: payload is then a prefix when length(payload) < payload_size. NULL for accepted
-- messages (payload is their whole verified document) and for rows stored before. Nullable columns without a
-- default are only a catalogue change.
ALTER TABLE messages ADD COLUMN payload_size {size_type};
ALTER TABLE messages ADD COLUMN payload_sha256 TEXT;
"""

_ADAPTER_STATE = """
-- What adapters and inbound endpoints remember (gateway.ports.AdapterState: an AS4 adapter's sent messages, an
-- AS4 endpoint's received MessageIds), one namespace per destination or endpoint, shared by every node. A record
-- whose expires_at (seconds since the epoch, the gateway's clock) has passed is absent and purged by namespace.
CREATE TABLE adapter_state (
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    value {blob} NOT NULL,
    expires_at {real} NOT NULL,
    PRIMARY KEY (namespace, key)
);
CREATE INDEX adapter_state_expiry ON adapter_state (namespace, expires_at);
"""

_NODE_HEARTBEAT = """
-- A PostgreSQL node is live while its listening session is connected or its heartbeat (seen_at, written by the
-- node from the database clock every few seconds) is younger than the node's own timeout (seconds): a node whose
-- connections drop in a network cut keeps its id and its leases while it reconnects. Rows of nodes that never
-- heartbeat (seen_at NULL: a node started by the previous version) stay live by their session alone. Nullable
-- columns without a default are only a catalogue change.
ALTER TABLE nodes ADD COLUMN seen_at TIMESTAMPTZ;
ALTER TABLE nodes ADD COLUMN timeout DOUBLE PRECISION;
"""

_JOURNAL_BASE = """
-- one row: the last journal entry pruned (archived); the remaining entries chain on from its hash, and the
-- next archive bundle names this bundle's manifest digest
CREATE TABLE journal_base (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL,
    manifest_sha256 TEXT NOT NULL
);
"""

_OPERATOR_ACTIONS = """
-- The evidence of each OPERATOR journal entry: the action's record (canonical JSON, what the entry's digest
-- names), keyed by the action id the entry carries; who and when are columns for the operator API's listing.
-- Archiving moves a record into the bundle with its entry. The partial index finds an action's entry.
CREATE TABLE operator_actions (
    id TEXT PRIMARY KEY,
    operator TEXT NOT NULL,
    action TEXT NOT NULL,
    at {real} NOT NULL,
    record {blob} NOT NULL
);
CREATE INDEX operator_actions_at ON operator_actions (at);
CREATE INDEX journal_operator ON journal (message) WHERE kind = 'OPERATOR';
"""

_OUTCOME_INDEX = """
-- A destination's newest verified receipt and newest failed attempt (the operator API's partners) by index
-- lookups instead of a scan of every transition; partial: only those two kinds of step are indexed.
CREATE INDEX transitions_outcomes ON transitions (destination, to_state, at, id)
    WHERE to_state IN ('ACKNOWLEDGED', 'FAILED');
"""

_PAYLOAD_TABLES = """
-- Payloads in tables of their own, written once when a message is accepted and never updated: a row holding a
-- large value is built whole in memory by SQLite whenever the value is not the row's last column or the row is
-- updated (a lease, an attempt), and the deliveries row is updated on every claim and attempt. Each payload row is
-- keyed by its message's id or its delivery's seq and goes when that row is deleted.
CREATE TABLE message_payloads (
    message TEXT PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
    data {blob} NOT NULL
);
CREATE TABLE delivery_payloads (
    delivery {integer} PRIMARY KEY REFERENCES deliveries (seq) ON DELETE CASCADE,
    data {blob} NOT NULL
);
{compression}INSERT INTO message_payloads (message, data) SELECT id, payload FROM messages;
INSERT INTO delivery_payloads (delivery, data) SELECT seq, payload FROM deliveries;
ALTER TABLE messages DROP COLUMN payload;
ALTER TABLE deliveries DROP COLUMN payload;
"""

_PAYLOAD_COMPRESSION = """DO $$
BEGIN
    ALTER TABLE message_payloads ALTER COLUMN data SET COMPRESSION lz4;
    ALTER TABLE delivery_payloads ALTER COLUMN data SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'lz4 is not available on this server: payloads stay pglz-compressed';
END
$$;
"""
"""On PostgreSQL the payload columns are lz4-compressed as those of migration 2 were (before the rows move in)."""

_FLOW_INDEXES = """
-- The console's flow map reads one window of time: the outcome steps of every destination in it come by this
-- partial index (receipts, failed attempts, dead letters: a small part of the transitions).
CREATE INDEX transitions_flow ON transitions (at) WHERE to_state IN ('ACKNOWLEDGED', 'FAILED', 'DEAD');
"""

_MESSAGES_RECEIVED = """
-- The submissions of a window of time by arrival (PostgreSQL has this index from migration 1).
CREATE INDEX messages_received ON messages (received_at);
"""

_CERTIFICATES = """
-- Each certificate of origin the gateway carried (by issuing country and number), its issuer party and status,
-- and its history: one event per act (issued, amended, cancelled, notifications) and per delivery receipt, with
-- the gateway id of the message that carried it; the index on message finds what a receipt delivered.
CREATE TABLE certificates (
    issuing_country TEXT NOT NULL,
    number TEXT NOT NULL,
    issuer TEXT NOT NULL,
    status TEXT NOT NULL,
    updated_at {real} NOT NULL,
    PRIMARY KEY (issuing_country, number)
);
CREATE TABLE certificate_events (
    seq {serial},
    issuing_country TEXT NOT NULL,
    number TEXT NOT NULL,
    status TEXT NOT NULL,
    at {real} NOT NULL,
    message TEXT NOT NULL,
    party TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX certificate_events_certificate ON certificate_events (issuing_country, number, seq);
CREATE INDEX certificate_events_message ON certificate_events (message);
"""

_JOURNAL_TIMESTAMPS = """
-- RFC 3161 timestamp tokens, each over the journal entry seq (its chain hash, kept so a token can be checked
-- after the entry is pruned); gen_time and the TSA's serial as the token says, for listing without parsing it
CREATE TABLE journal_timestamps (
    id {serial},
    seq BIGINT NOT NULL,
    entry_hash TEXT NOT NULL,
    token {blob} NOT NULL,
    gen_time {real} NOT NULL,
    tsa_serial TEXT NOT NULL
);
CREATE INDEX journal_timestamps_seq ON journal_timestamps (seq);
"""

_REFERENCE_VERSIONS = """
-- versions of the policy lists (gateway.reference), numbered per list; entries as canonical JSON
CREATE TABLE reference_versions (
    seq {serial},
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    owner TEXT NOT NULL,
    purpose TEXT NOT NULL,
    effective_from {real} NOT NULL,
    entries TEXT NOT NULL,
    digest TEXT NOT NULL,
    publisher TEXT NOT NULL,
    via TEXT NOT NULL,
    message TEXT,
    published_at {real} NOT NULL,
    UNIQUE (name, version)
);
"""

_JOURNAL_PENDING = """
-- The journal entries of each committed transaction, one row per transaction (its entries in order, as arrays),
-- written without the journal lock and numbered by the identity (which takes none); chained into journal in id
-- order and deleted from here, in one transaction, by whichever node holds the journal lock at the moment (the
-- same lock as journal_head(), so nodes chaining at commit can share the schema).
CREATE TABLE journal_pending (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at DOUBLE PRECISION[] NOT NULL,
    kind TEXT[] NOT NULL,
    message TEXT[] NOT NULL,
    destination TEXT[] NOT NULL,
    digest TEXT[] NOT NULL
);
-- The sealer's lock and the head it chains on from, in one call: no row when wait is false and another session
-- holds the lock; otherwise the newest entry, else the last one pruned, else (0, genesis).
CREATE FUNCTION journal_seal_head(lock_key BIGINT, wait BOOLEAN) RETURNS TABLE (seq BIGINT, hash TEXT)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF wait THEN
        PERFORM pg_advisory_xact_lock(lock_key);
    ELSIF NOT pg_try_advisory_xact_lock(lock_key) THEN
        RETURN;
    END IF;
    RETURN QUERY SELECT j.seq, j.hash FROM journal AS j ORDER BY j.seq DESC LIMIT 1;
    IF NOT FOUND THEN
        RETURN QUERY SELECT b.seq, b.hash FROM journal_base AS b WHERE b.id = 1;
    END IF;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 0::BIGINT, repeat('0', 64);
    END IF;
END
$$;
"""

_REGISTRY = """
-- The registry of issued documents (gateway.registry): one row per document type and number, its issuer party,
-- holder enterprise, recorded status, validity and the gateway id of the message that carried it last; one row per
-- goods line (holder copied in: the check finds a line by holder and HS code in one index); one row per draw of a
-- declaration on a line. Quantities are decimal text, computed exactly by the gateway.
CREATE TABLE registry_documents (
    id {serial},
    doc_type TEXT NOT NULL,
    number TEXT NOT NULL,
    issuer TEXT NOT NULL,
    issuing_country TEXT,
    holder TEXT NOT NULL,
    status TEXT NOT NULL,
    valid_from {real},
    valid_until {real},
    supersedes TEXT,
    message TEXT NOT NULL,
    updated_at {real} NOT NULL,
    UNIQUE (doc_type, number)
);
CREATE INDEX registry_documents_issuer ON registry_documents (issuer, id);
CREATE INDEX registry_documents_holder ON registry_documents (holder, id);
CREATE TABLE registry_lines (
    document {integer} NOT NULL,
    line INTEGER NOT NULL,
    holder TEXT NOT NULL,
    hs_code TEXT NOT NULL,
    quantity TEXT,
    unit TEXT,
    drawn TEXT NOT NULL,
    PRIMARY KEY (document, line)
);
CREATE INDEX registry_lines_check ON registry_lines (holder, hs_code);
CREATE TABLE registry_draws (
    document {integer} NOT NULL,
    line INTEGER NOT NULL,
    declaration TEXT NOT NULL,
    quantity TEXT NOT NULL,
    message TEXT NOT NULL,
    at {real} NOT NULL,
    PRIMARY KEY (document, line, declaration)
);
"""

_DISCLOSURES = """
-- each delivery that carried only some data elements of a message (a subscription's, a destination's fields):
-- its record is the canonical JSON the DISCLOSED journal entry digests; the columns beside it are for listing
CREATE TABLE disclosures (
    seq {serial},
    message TEXT NOT NULL,
    destination TEXT NOT NULL,
    subscription TEXT,
    at {real} NOT NULL,
    record {blob} NOT NULL,
    UNIQUE (message, destination)
);
CREATE INDEX disclosures_at ON disclosures (at, seq);
CREATE INDEX disclosures_destination ON disclosures (destination, at);
-- the DISCLOSED journal entry of each (the listing names its seq)
CREATE INDEX journal_disclosed ON journal (message, destination) WHERE kind = 'DISCLOSED';
"""

_SHIP_CALLS = """
-- ship calls (gateway.shipcalls): one row per call, named by its first version's reference, changed only by
-- compare-and-set on revision; agencies is JSON (per destination: the digest and version of the part it received,
-- its answer); one row per version (its reference, its own or the call's, finds the call); one row per step of its
-- history
CREATE TABLE ship_calls (
    reference TEXT PRIMARY KEY,
    procedure TEXT NOT NULL,
    agent TEXT NOT NULL,
    on_behalf_of TEXT,
    status TEXT NOT NULL,
    version INTEGER NOT NULL,
    current_version TEXT NOT NULL,
    revision INTEGER NOT NULL,
    updated_at {real} NOT NULL,
    agencies TEXT NOT NULL
);
CREATE TABLE ship_call_versions (
    call TEXT NOT NULL,
    version INTEGER NOT NULL,
    reference TEXT NOT NULL,
    message TEXT NOT NULL,
    at {real} NOT NULL,
    PRIMARY KEY (call, version)
);
CREATE INDEX ship_call_versions_reference ON ship_call_versions (reference);
CREATE TABLE ship_call_events (
    call TEXT NOT NULL,
    seq INTEGER NOT NULL,
    at {real} NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    message TEXT NOT NULL,
    party TEXT NOT NULL,
    version INTEGER NOT NULL,
    agency TEXT,
    detail TEXT,
    PRIMARY KEY (call, seq)
);
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial", _INITIAL_POSTGRESQL, _INITIAL_SQLITE),
    # compression, fillfactor and the journal lock are PostgreSQL's; SQLite has one writer and no TOAST
    Migration(2, "cheaper writes: lz4 payloads, HOT leases, journal head in one call", _CHEAPER_WRITES, ""),
    Migration(3, "content type of each delivery", _DELIVERY_CONTENT_TYPE, _DELIVERY_CONTENT_TYPE),
    Migration(4, "content digest of each signed message, unique per sender", _CONTENT_DIGEST, _CONTENT_DIGEST),
    Migration(5, "enterprise each delivery was relayed for", _DELIVERY_ON_BEHALF_OF, _DELIVERY_ON_BEHALF_OF),
    Migration(
        6,
        "size and digest of a refused submission kept as a prefix",
        _PAYLOAD_EXCERPT.format(size_type="BIGINT"),
        _PAYLOAD_EXCERPT.format(size_type="INTEGER"),
    ),
    Migration(
        7,
        "durable state of adapters and inbound endpoints",
        _ADAPTER_STATE.format(blob="BYTEA", real="DOUBLE PRECISION"),
        _ADAPTER_STATE.format(blob="BLOB", real="REAL"),
    ),
    # only PostgreSQL has several nodes
    Migration(8, "heartbeat of each node by the database clock", _NODE_HEARTBEAT, ""),
    Migration(9, "the last journal entry pruned into an archive bundle", _JOURNAL_BASE, _JOURNAL_BASE),
    Migration(
        10,
        "operator actions, the evidence of OPERATOR journal entries",
        _OPERATOR_ACTIONS.format(blob="BYTEA", real="DOUBLE PRECISION"),
        _OPERATOR_ACTIONS.format(blob="BLOB", real="REAL"),
    ),
    Migration(11, "index of each destination's last receipt and last failure", _OUTCOME_INDEX, _OUTCOME_INDEX),
    Migration(
        12,
        "payloads written once in tables of their own",
        _PAYLOAD_TABLES.format(blob="BYTEA", integer="BIGINT", compression=_PAYLOAD_COMPRESSION),
        _PAYLOAD_TABLES.format(blob="BLOB", integer="INTEGER", compression=""),
    ),
    Migration(13, "indexes of a window of traffic", _FLOW_INDEXES, _MESSAGES_RECEIVED + _FLOW_INDEXES),
    Migration(
        14,
        "certificates of origin carried and their status history",
        _CERTIFICATES.format(real="DOUBLE PRECISION", serial="BIGSERIAL PRIMARY KEY"),
        _CERTIFICATES.format(real="REAL", serial="INTEGER PRIMARY KEY"),
    ),
    Migration(
        15,
        "RFC 3161 timestamp tokens over the journal head",
        _JOURNAL_TIMESTAMPS.format(blob="BYTEA", real="DOUBLE PRECISION", serial="BIGSERIAL PRIMARY KEY"),
        _JOURNAL_TIMESTAMPS.format(blob="BLOB", real="REAL", serial="INTEGER PRIMARY KEY"),
    ),
    Migration(
        16,
        "versions of the policy reference lists",
        _REFERENCE_VERSIONS.format(real="DOUBLE PRECISION", serial="BIGSERIAL PRIMARY KEY"),
        _REFERENCE_VERSIONS.format(real="REAL", serial="INTEGER PRIMARY KEY"),
    ),
    Migration(
        17,
        "the registry of issued documents, their goods lines and draws",
        _REGISTRY.format(real="DOUBLE PRECISION", serial="BIGSERIAL PRIMARY KEY", integer="BIGINT"),
        _REGISTRY.format(real="REAL", serial="INTEGER PRIMARY KEY", integer="INTEGER"),
    ),
    Migration(
        18,
        "disclosures: the deliveries that carried only some data elements of a message",
        _DISCLOSURES.format(real="DOUBLE PRECISION", serial="BIGSERIAL PRIMARY KEY", blob="BYTEA"),
        _DISCLOSURES.format(real="REAL", serial="INTEGER PRIMARY KEY", blob="BLOB"),
    ),
    Migration(
        19,
        "ship calls: versions, each agency's part and answer, the history",
        _SHIP_CALLS.format(real="DOUBLE PRECISION"),
        _SHIP_CALLS.format(real="REAL"),
    ),
    # SQLite has one writer: it keeps chaining each entry in the transaction that writes it
    Migration(20, "journal entries chained after commit by one sealer at a time", _JOURNAL_PENDING, ""),
)
"""Every migration, in order; versions are 1, 2, 3... without gaps."""

LATEST = MIGRATIONS[-1].version
"""The schema version this code needs."""

_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)
"""

_LOCK = "SELECT pg_advisory_xact_lock(hashtext('nswgw-migrate:' || coalesce(current_schema(), '')))"


async def current_version(conn: Any) -> int:
    """The PostgreSQL schema version of ``conn``'s schema (0: never migrated); ``conn`` is an asyncpg connection."""
    exists = await conn.fetchval("SELECT to_regclass('schema_version') IS NOT NULL")
    if not exists:
        return 0
    return int(await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_version"))


def pending(version: int) -> list[Migration]:
    return [m for m in MIGRATIONS if m.version > version]


async def upgrade(conn: Any) -> list[Migration]:
    """Apply every pending PostgreSQL migration (each in its own transaction, serialised across nodes). Returns them."""
    applied: list[Migration] = []
    for migration in MIGRATIONS:
        async with conn.transaction():
            await conn.execute(_LOCK)
            await conn.execute(_VERSION_TABLE)
            done = await conn.fetchval("SELECT 1 FROM schema_version WHERE version = $1", migration.version)
            if done:
                continue
            await conn.execute(migration.postgresql)
            await conn.execute(
                "INSERT INTO schema_version (version, name) VALUES ($1, $2)", migration.version, migration.name
            )
            applied.append(migration)
    return applied


def sqlite_version(conn: sqlite3.Connection) -> int:
    """The SQLite file's schema version (0: empty, or created before versioning: see :func:`upgrade_sqlite`)."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def upgrade_sqlite(conn: sqlite3.Connection, *, where: str) -> list[Migration]:
    """Bring a SQLite file (``conn`` in autocommit mode) to :data:`LATEST`; returns the migrations applied.

    Raises :class:`~gateway.errors.StoreSchemaOutdated` for a file newer than this code.
    """
    version = sqlite_version(conn)
    tables = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'messages'").fetchone()
    if version == 0 and tables:
        # tables without a version: the schema of migration 1, written before the file carried versions
        conn.execute("PRAGMA user_version = 1")
        version = 1
    if version > LATEST:
        raise StoreSchemaOutdated(
            f"SQLite store {where}: schema version {version} is newer than this gateway ({LATEST});"
            " upgrade the gateway",
            field="store.url",
            details={"store": where, "version": version, "needed": LATEST},
        )
    applied: list[Migration] = []
    for migration in pending(version):
        # one script, one transaction: the step and its version commit together or not at all
        try:
            conn.executescript(
                f"BEGIN IMMEDIATE;\n{migration.sqlite}\nPRAGMA user_version = {migration.version};\nCOMMIT;"
            )
        except sqlite3.Error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        applied.append(migration)
    return applied
