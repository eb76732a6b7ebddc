"""The embedded store: SQLite in WAL mode with group commit.

Connection string: ``sqlite:///path/to/gateway.db`` (or just a path).

Features:

* **group commit**: every write is queued to one writer thread, which runs
  all the writes waiting at that moment in one transaction (each inside its
  own ``SAVEPOINT``, so one failing write does not undo the others) and
  commits once: one fsync for the whole batch. Callers are answered only
  after the commit, so an acknowledgement always follows durability.
* WAL journal mode, ``synchronous=FULL`` by default (``NORMAL`` survives any
  process crash, but not power loss), a separate reader thread so that
  queries never wait behind the writer.
* A single gateway process owns the file: :meth:`SqliteStore.recover`
  releases all leases left by a crashed previous run.
* Payloads live in ``message_payloads`` and ``delivery_payloads``, written once and
  never updated (SQLite rebuilds a whole row in memory to update it); one above
  1 MiB is written and read by incremental blob I/O in 1 MiB chunks.
* The schema comes from the versioned migrations of :mod:`gateway.store.migrations`
  (``PRAGMA user_version``), applied when the store opens; a file newer than this
  gateway is refused with ``STORE_SCHEMA_OUTDATED``.

* Driver faults are translated where they arise (:func:`translate`, logged at ERROR on
  ``nswgw.store`` with the incident id): a full disk is ``STORE_FULL`` (507), a damaged file
  ``STORE_CORRUPT``, an I/O error or a lock held too long ``STORE_UNAVAILABLE``; a failed commit
  answers every caller of its batch with the error, so nothing refused was acknowledged.
* :meth:`SqliteStore.health` (``/readyz``): a write rolled back in the writer's transaction, free
  space on the file's file system (``min_free_bytes``), ``PRAGMA quick_check`` (reused for
  ``integrity_interval`` seconds), the journal head.

Options: ``synchronous``, ``max_batch``, ``min_free_bytes`` (default 64 MiB), ``integrity_interval``
(seconds, default 300).

Nothing SQLite-specific crosses :class:`~gateway.store.base.Store`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import queue
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from gateway.disclosures import DISCLOSED, Disclosure, DisclosureQuery, StoredDisclosure
from gateway.errors import (
    ConfigError,
    GatewayError,
    InvalidTransition,
    NswError,
    StoreCorrupt,
    StoreFull,
    StoreUnavailable,
)
from gateway.journal import (
    ACCEPTED,
    DELIVERED,
    GENESIS,
    OPERATOR,
    JournalEntry,
    OperatorAction,
    head_status,
    payload_digest,
)
from gateway.model import (
    CertificateAct,
    Delivery,
    Excerpt,
    Message,
    PartyId,
    State,
    SubmissionAck,
    SubmissionEnvelope,
    Transition,
    overall_state,
)
from gateway.reference import ReferenceVersion, numbering_refusal, ownership_refusal
from gateway.registry import RegistryAct, RegistryDocument, RegistryQuery
from gateway.shipcalls import ShipCallAct, ShipCallRecord
from gateway.store import disclosure_rows, migrations, registry_sql, shipcall_sql
from gateway.store.base import (
    FLOW_SAMPLE,
    NOTIFIER_ACTS,
    CertificateEvent,
    CertificateQuery,
    CertificateRecord,
    CertificateSummary,
    DestinationOutcomes,
    DestinationStats,
    FlowStats,
    JournalBase,
    MessageQuery,
    MessageRecord,
    OnDead,
    ProcedureStats,
    RecordedAction,
    Store,
    StoredTimestamp,
    blocked_by,
    certificate_query_sql,
    certificate_refusal,
    certificate_status,
    destination_flows,
    procedure_stats,
    reference_row,
    reference_values,
    sender_flows,
)
from signing.xml import Spliced, payload_bytes, payload_chunks

__all__ = ["SqliteStore", "translate"]

T = TypeVar("T")

log = logging.getLogger("nswgw.store")

_UNAVAILABLE_CODES = frozenset(
    {sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_PROTOCOL}
)


def translate(exc: BaseException, where: str) -> NswError:
    """A SQLite (or file system) exception as a gateway error, logged at ERROR with its incident id: the one
    mapping of the store boundary. A full disk is ``STORE_FULL``, a damaged file ``STORE_CORRUPT``, an I/O error
    or a lock held too long ``STORE_UNAVAILABLE``, anything else ``GATEWAY_INTERNAL``."""
    if isinstance(exc, NswError):
        return exc
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    text = str(exc)
    error: NswError
    if primary == sqlite3.SQLITE_FULL or "database or disk is full" in text:
        error = StoreFull(f"SQLite store {where} is full: {text}", field="store.url")
    elif primary in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB) or "malformed" in text or "not a database" in text:
        error = StoreCorrupt(f"SQLite store {where} is damaged: {text}", field="store.url")
    elif primary in _UNAVAILABLE_CODES or isinstance(exc, OSError) or "disk I/O error" in text or "locked" in text:
        error = StoreUnavailable(f"SQLite store {where} is unavailable: {text}", field="store.url")
    else:
        error = GatewayError(f"SQLite store {where} failed: {type(exc).__name__}: {text}", field="store")
    error.__cause__ = exc
    log.error("incident %s: %s", error.incident_id, error)
    return error


class _ConnectionThread(threading.Thread):
    """One thread owning one connection; runs queued operations in batches, one transaction per batch."""

    def __init__(self, path: str, *, write: bool, synchronous: str, max_batch: int, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self._path = path
        self._write = write
        self._synchronous = synchronous
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any]] | None] = (
            queue.SimpleQueue()
        )
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self.batches = 0
        self.operations = 0

    def start_and_wait(self) -> None:
        self.start()
        self._ready.wait()
        if self._startup_error is not None:
            if isinstance(self._startup_error, sqlite3.Error | OSError):
                raise translate(self._startup_error, self._path) from self._startup_error
            raise self._startup_error

    def submit(self, fn: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put((fn, future))
        return future

    def stop(self) -> None:
        self._queue.put(None)
        self.join()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, isolation_level=None, timeout=30.0)
        conn.execute("PRAGMA busy_timeout = 30000")
        conn.execute("PRAGMA foreign_keys = ON")
        if self._write:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                conn.close()
                raise ConfigError(f"SQLite refused WAL mode (got {mode})", field="store.path")
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            try:
                migrations.upgrade_sqlite(conn, where=self._path)
            except BaseException:
                conn.close()
                raise
        return conn

    def run(self) -> None:
        try:
            conn = self._connect()
        except BaseException as exc:  # noqa: BLE001 - not swallowed: start_and_wait re-raises it in the opener
            self._startup_error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            stopping = False
            while not stopping:
                item = self._queue.get()
                if item is None:
                    break
                batch = [item]
                while len(batch) < self._max_batch:
                    try:
                        nxt = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is None:
                        stopping = True
                        break
                    batch.append(nxt)
                self._run_batch(conn, batch)
        finally:
            conn.close()

    def _run_batch(self, conn: sqlite3.Connection, batch: list[Any]) -> None:
        results: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        try:
            conn.execute("BEGIN IMMEDIATE" if self._write else "BEGIN")
            for fn, future in batch:
                conn.execute("SAVEPOINT op")
                try:
                    value = fn(conn)
                except Exception as failure:  # noqa: BLE001 - handed to this operation's caller, which alone it undoes
                    if isinstance(failure, sqlite3.Error) and not conn.in_transaction:
                        raise  # SQLite rolled the whole batch back itself (a full disk): every caller gets this error
                    conn.execute("ROLLBACK TO op")
                    conn.execute("RELEASE op")
                    results.append((future, None, failure))
                else:
                    conn.execute("RELEASE op")
                    results.append((future, value, None))
            conn.execute("COMMIT")
        except sqlite3.Error as db_error:
            # nothing of the batch is committed (SQLite may have rolled it back itself: a full disk, an I/O error)
            with contextlib.suppress(sqlite3.Error):
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            error = translate(db_error, self._path)
            results = [(future, None, error) for _, future in batch]
        else:
            results = [
                (future, value, translate(outcome, self._path) if isinstance(outcome, sqlite3.Error) else outcome)
                for future, value, outcome in results
            ]
        self.batches += 1
        self.operations += len(batch)
        for future, value, outcome in results:
            future.get_loop().call_soon_threadsafe(_settle, future, value, outcome)


def _settle(future: asyncio.Future[Any], value: Any, exc: BaseException | None) -> None:
    if future.cancelled():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(value)


_BLOB_CHUNK = 1024 * 1024
"""Payloads larger than this are written and read with incremental blob I/O, one chunk at a time: a bound
parameter is copied by SQLite and then again into the row it builds, and a SELECT of the column builds the
value in SQLite and then copies it into Python (twice the payload in memory at once, either way)."""


def _insert_payload(
    conn: sqlite3.Connection, table: str, key_column: str, key: str | int, data: bytes | Spliced
) -> None:
    """Insert the payload row of a message (``message_payloads``) or a delivery (``delivery_payloads``): a small
    payload as a parameter, a large one as a zero-filled blob of its size (``zeroblob(?)``) filled in chunks (a
    :class:`~signing.xml.Spliced` one part after the other). Payload rows are never updated: SQLite would build the
    whole row in memory again."""
    if len(data) <= _BLOB_CHUNK:
        conn.execute(f"INSERT INTO {table} ({key_column}, data) VALUES (?, ?)", (key, payload_bytes(data)))
        return
    rowid = conn.execute(
        f"INSERT INTO {table} ({key_column}, data) VALUES (?, zeroblob(?))", (key, len(data))
    ).lastrowid
    assert rowid is not None  # a row was just inserted
    with conn.blobopen(table, "data", rowid) as blob:
        for chunk in payload_chunks(data, _BLOB_CHUNK):
            blob.write(chunk)


def _read_payload(conn: sqlite3.Connection, table: str, rowid: int) -> bytes:
    """The payload of a row of ``table`` by blob I/O: one ``bytes`` of its size."""
    with conn.blobopen(table, "data", rowid, readonly=True) as blob:
        return blob.read()


def _message_payload(conn: sqlite3.Connection, message_id: str) -> bytes | None:
    """The stored payload of a message (None: no such message)."""
    row = conn.execute("SELECT rowid FROM message_payloads WHERE message = ?", (message_id,)).fetchone()
    return None if row is None else _read_payload(conn, "message_payloads", row[0])


def _with_payload(conn: sqlite3.Connection, row: Sequence[Any]) -> Sequence[Any]:
    """A row of :data:`_READ_COLUMNS` with its payload: a large one (NULL in the row) read by blob I/O."""
    index = _PAYLOAD_AT
    if row[index] is not None:
        return row
    payload = _read_payload(conn, "delivery_payloads", row[0])
    return (*row[:index], payload, *row[index + 1 :])


def _dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _loads(value: str | None) -> Any:
    return None if value is None else json.loads(value)


def _append_journal(
    conn: sqlite3.Connection, *, at: float, kind: str, message: str, destination: str | None, digest: str
) -> None:
    row = conn.execute("SELECT seq, hash FROM journal ORDER BY seq DESC LIMIT 1").fetchone()
    prev_seq, prev_hash = row if row else (0, GENESIS)
    e = JournalEntry.after(
        prev_seq, prev_hash, at=at, kind=kind, message_id=message, destination=destination, digest=digest
    )
    conn.execute(
        "INSERT INTO journal (seq, at, kind, message, destination, digest, prev, hash) VALUES (?,?,?,?,?,?,?,?)",
        (e.seq, e.at, e.kind, e.message_id, e.destination, e.digest, e.prev, e.hash),
    )


def _disclosures_insert(conn: sqlite3.Connection, disclosures: Sequence[Disclosure]) -> None:
    """Each disclosure of an accepted message and its ``DISCLOSED`` journal entry (after the ``ACCEPTED`` one)."""
    for d in disclosures:
        values = disclosure_rows.insert_values(d)
        conn.execute(disclosure_rows.INSERT.format(marks="?,?,?,?,?"), values)
        digest = payload_digest(values[-1])
        _append_journal(conn, at=d.at, kind=DISCLOSED, message=d.message_id, destination=d.destination, digest=digest)


def _insert_transitions(conn: sqlite3.Connection, message: str, steps: Sequence[Transition]) -> None:
    conn.executemany(
        "INSERT INTO transitions (message, destination, from_state, to_state, at, code, detail) VALUES (?,?,?,?,?,?,?)",
        [
            (
                message,
                t.destination,
                t.from_state.value if t.from_state else None,
                t.to_state.value,
                t.at,
                t.code,
                t.detail,
            )
            for t in steps
        ],
    )


_BLOCKING: dict[str, str] = {"hold": "", "skip": " AND e.state <> 'DEAD'"}
"""Per ``on_dead`` policy, what else (besides ``ACKNOWLEDGED``) an earlier delivery must not be to hold up a
later one (the ``<> 'ACKNOWLEDGED'`` term stays as written so that ``deliveries_pending`` serves the probe)."""

_DELIVERY_COLUMNS = (
    "seq, message, destination, conversation, sender, document_type, reference, state, attempts, queued_at,"
    " deadline, next_at, last_error, payload, receipt, content_type, on_behalf_of"
)
_READ_COLUMNS = _DELIVERY_COLUMNS.replace(
    " payload,",
    f" (SELECT CASE WHEN length(p.data) > {_BLOB_CHUNK} THEN NULL ELSE p.data END FROM delivery_payloads AS p"
    " WHERE p.delivery = seq),",
)
"""The delivery columns as every read selects them from ``deliveries`` (the only table of the outer query, so
``seq`` is its row's): the payload from ``delivery_payloads``, a large one left out (NULL; the column is NOT
NULL) and read by :func:`_with_payload`. ``length()`` of a blob column reads only the record header."""
_PAYLOAD_AT = [column.strip() for column in _DELIVERY_COLUMNS.split(",")].index("payload")
"""The position of ``payload`` in :data:`_DELIVERY_COLUMNS`."""


def _delivery(row: Sequence[Any], history: tuple[Transition, ...] = ()) -> Delivery:
    (
        seq,
        message,
        destination,
        conversation,
        sender,
        document_type,
        reference,
        state,
        attempts,
        queued_at,
        deadline,
        next_at,
        last_error,
        payload,
        receipt,
        content_type,
        on_behalf_of,
    ) = row
    return Delivery(
        message_id=message,
        destination=destination,
        conversation=conversation,
        sender=sender,
        document_type=document_type,
        reference=reference,
        on_behalf_of=on_behalf_of,
        payload=bytes(payload),
        queued_at=queued_at,
        deadline=deadline,
        content_type=content_type,
        state=State(state),
        attempts=attempts,
        next_attempt_at=next_at,
        last_error=_loads(last_error),
        receipt=bytes(receipt) if receipt is not None else None,
        seq=seq,
        history=history,
    )


_LAST_OUTCOME = """
SELECT destination, from_state, to_state, at, code, detail FROM transitions INDEXED BY transitions_outcomes
WHERE destination = ? AND to_state = ? AND to_state IN ('ACKNOWLEDGED', 'FAILED')
ORDER BY at DESC, id DESC LIMIT 1"""
"""A destination's newest transition to a state (``ACKNOWLEDGED`` or ``FAILED``), by the partial index."""


_OUTCOME_STEPS = "to_state IN ('ACKNOWLEDGED', 'FAILED', 'DEAD')"
"""The predicate of the partial index ``transitions_flow``, word for word (SQLite uses it only so)."""

_SENDER_COUNTS = """
SELECT sender, CASE WHEN intake_state = 'REJECTED' THEN coalesce(json_extract(error, '$.code'), '') END, count(*)
FROM messages INDEXED BY messages_received WHERE received_at >= ? AND received_at < ? GROUP BY 1, 2"""

_FINISHED = """
SELECT m.sender, m.document_type, m.procedure, m.received_at,
    (SELECT max(t.at) FILTER (WHERE t.to_state = 'ACKNOWLEDGED') FROM transitions AS t WHERE t.message = m.id)
    - m.received_at
FROM messages AS m INDEXED BY messages_received
WHERE m.received_at >= ? AND m.received_at < ? AND m.intake_state = 'QUEUED'
    AND NOT EXISTS (SELECT 1 FROM deliveries AS d WHERE d.message = m.id AND d.state <> 'ACKNOWLEDGED')
ORDER BY m.received_at DESC LIMIT ?"""
"""The submissions of a window whose every delivery is acknowledged, newest first, with the seconds to the last
receipt (NULL for a message without deliveries). The receipt is found among the message's own transitions (their
index by message), never by the index of every destination's outcomes."""

_DESTINATION_COUNTS = f"""
SELECT destination, to_state, count(*) FROM transitions INDEXED BY transitions_flow
WHERE at >= ? AND at < ? AND {_OUTCOME_STEPS} AND destination IS NOT NULL GROUP BY 1, 2"""

_ACKNOWLEDGED = f"""
SELECT t.destination, t.at - d.queued_at FROM transitions AS t INDEXED BY transitions_flow
JOIN deliveries AS d ON d.message = t.message AND d.destination = t.destination
WHERE t.at >= ? AND t.at < ? AND t.{_OUTCOME_STEPS} AND t.to_state = 'ACKNOWLEDGED'
ORDER BY t.at DESC LIMIT ?"""

_PROCEDURE_COUNTS = """
SELECT document_type, procedure, CAST(received_at / ? AS INTEGER), count(*), sum(intake_state = 'REJECTED')
FROM messages INDEXED BY messages_received WHERE received_at >= ? AND received_at < ? GROUP BY 1, 2, 3"""


def _outcomes(rows: Sequence[Sequence[Any]]) -> list[DestinationOutcomes]:
    success: dict[str, float] = {}
    failure: dict[str, Transition] = {}
    for row in rows:
        step = _transition(row)
        assert step.destination is not None  # the query reads delivery transitions only
        if step.to_state is State.ACKNOWLEDGED:
            success[step.destination] = step.at
        else:
            failure[step.destination] = step
    return [DestinationOutcomes(d, success.get(d), failure.get(d)) for d in sorted(success.keys() | failure.keys())]


def _transition(row: Sequence[Any]) -> Transition:
    destination, from_state, to_state, at, code, detail = row
    return Transition(State(to_state), at, State(from_state) if from_state else None, destination, code, detail)


def _refresh_message_state(conn: sqlite3.Connection, message: str) -> None:
    intake = conn.execute("SELECT intake_state FROM messages WHERE id = ?", (message,)).fetchone()[0]
    states = [State(r[0]) for r in conn.execute("SELECT state FROM deliveries WHERE message = ?", (message,))]
    conn.execute("UPDATE messages SET state = ? WHERE id = ?", (overall_state(State(intake), states).value, message))


def _certificate_event(
    conn: sqlite3.Connection,
    key: tuple[str, str],
    event: str,
    current: str | None,
    *,
    at: float,
    message: str,
    party: str,
    detail: dict[str, str],
) -> None:
    """Append ``event`` to the history of certificate ``key`` and move its status (:func:`certificate_status`)."""
    conn.execute(
        "INSERT INTO certificate_events (issuing_country, number, status, at, message, party, detail)"
        " VALUES (?,?,?,?,?,?,?)",
        (*key, event, at, message, party, _dumps(detail)),
    )
    status = certificate_status(event, current)
    if status is not None:
        conn.execute(
            "UPDATE certificates SET status = ?, updated_at = ? WHERE issuing_country = ? AND number = ?",
            (status, at, *key),
        )


def _certificate_act(conn: sqlite3.Connection, act: CertificateAct, message: Message) -> None:
    """Record ``act`` of the accepted ``message``, or raise its :func:`certificate_refusal`."""
    key = (act.issuing_country, act.number)
    sender = message.envelope.sender
    row = conn.execute(
        "SELECT issuer, status FROM certificates WHERE issuing_country = ? AND number = ?", key
    ).fetchone()
    delivered_to: frozenset[str] = frozenset()
    if row is not None and act.action in NOTIFIER_ACTS:
        delivered_to = frozenset(
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT d.destination FROM deliveries AS d JOIN certificate_events AS e"
                " ON e.message = d.message WHERE e.issuing_country = ? AND e.number = ?"
                " AND e.status IN ('issued', 'amended')",
                key,
            )
        )
    refusal = certificate_refusal(act, sender, row[0] if row else None, delivered_to)
    if refusal is not None:
        raise refusal
    at = message.history[-1].at
    if row is None:
        conn.execute(
            "INSERT INTO certificates (issuing_country, number, issuer, status, updated_at) VALUES (?,?,?,?,?)",
            (*key, sender, act.action, at),
        )
    _certificate_event(
        conn, key, act.action, row[1] if row else None, at=at, message=message.id, party=sender, detail=dict(act.detail)
    )


# one writer: the owner and the next number are read and the version written in one transaction, nothing between
def _reference_insert(conn: sqlite3.Connection, version: ReferenceVersion) -> ReferenceVersion:
    """Store ``version`` as the next of its list, or raise its :func:`ownership_refusal` or
    :func:`numbering_refusal`."""
    row = conn.execute(
        "SELECT owner FROM reference_versions WHERE name = ? ORDER BY version DESC LIMIT 1", (version.name,)
    ).fetchone()
    refusal = ownership_refusal(version, row[0] if row else None)
    if refusal is not None:
        raise refusal
    number = conn.execute(
        "SELECT coalesce(max(version), 0) + 1 FROM reference_versions WHERE name = ?", (version.name,)
    ).fetchone()[0]
    stale = numbering_refusal(version, int(number))
    if stale is not None:
        raise stale
    cur = conn.execute(
        "INSERT INTO reference_versions (name, version, owner, purpose, effective_from, entries, digest,"
        " publisher, via, message, published_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        reference_values(version, number),
    )
    return version.numbered(int(number), int(cur.lastrowid or 0))


def _certificate_delivered(conn: sqlite3.Connection, d: Delivery) -> None:
    """A ``delivered`` event for the certificate the acknowledged delivery ``d``'s message issued or amended."""
    rows = conn.execute(
        "SELECT e.issuing_country, e.number, c.status FROM certificate_events AS e JOIN certificates AS c"
        " ON c.issuing_country = e.issuing_country AND c.number = e.number"
        " WHERE e.message = ? AND e.status IN ('issued', 'amended')",
        (d.message_id,),
    ).fetchall()
    for country, number, status in rows:
        _certificate_event(
            conn,
            (country, number),
            "delivered",
            status,
            at=d.history[-1].at,
            message=d.message_id,
            party=d.destination,
            detail={},
        )


def _record(conn: sqlite3.Connection, d: Delivery, owner: str | None, now: float) -> None:
    if not d.history:
        raise InvalidTransition("nothing to record: the delivery has no new transition", field="history")
    expected = d.history[0].from_state
    if expected is None:
        raise InvalidTransition("a delivery cannot be recorded from no state", field="history")
    lease_clause = "lease_owner = ?" if owner is not None else "(lease_owner IS NULL OR lease_until < ?)"
    cur = conn.execute(
        "UPDATE deliveries SET state = ?, attempts = ?, next_at = ?, queued_at = ?, deadline = ?, last_error = ?,"
        " receipt = ?, lease_owner = NULL, lease_until = NULL"
        f" WHERE message = ? AND destination = ? AND state = ? AND {lease_clause}",
        (
            d.state.value,
            d.attempts,
            d.next_attempt_at,
            d.queued_at,
            d.deadline,
            _dumps(d.last_error),
            d.receipt,
            d.message_id,
            d.destination,
            expected.value,
            owner if owner is not None else now,
        ),
    )
    if cur.rowcount != 1:
        raise InvalidTransition(
            f"delivery {d.message_id}→{d.destination} is no longer {expected.value} and leased to {owner}",
            field="state",
        )
    _insert_transitions(conn, d.message_id, d.history)
    if d.state is State.ACKNOWLEDGED:
        _append_journal(
            conn,
            at=d.history[-1].at,
            kind=DELIVERED,
            message=d.message_id,
            destination=d.destination,
            digest=payload_digest(d.payload + (d.receipt or b"")),
        )
        _certificate_delivered(conn, d)
    _refresh_message_state(conn, d.message_id)


class SqliteStore(Store):
    """:class:`~gateway.store.base.Store` on an embedded SQLite database file."""

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: str = "FULL",
        max_batch: int = 512,
        min_free_bytes: int = 64 * 1024 * 1024,
        integrity_interval: float = 300.0,
    ) -> None:
        text = str(path)
        if text.startswith("sqlite:///"):
            text = text[len("sqlite:///") :]
        if synchronous.upper() not in ("FULL", "NORMAL", "EXTRA"):
            raise ConfigError(
                f"synchronous must be FULL, NORMAL or EXTRA, not {synchronous!r}", field="store.synchronous"
            )
        self.path = text
        self._synchronous = synchronous.upper()
        self._max_batch = max_batch
        self.min_free_bytes = min_free_bytes
        """Below this many free bytes on the file's file system, :meth:`health` fails ``free_space``."""
        self.integrity_interval = integrity_interval
        """Seconds a ``PRAGMA quick_check`` result is reused by :meth:`health` (it reads the whole file)."""
        self._integrity: tuple[float, str] | None = None
        self._writer: _ConnectionThread | None = None
        self._reader: _ConnectionThread | None = None

    # ------------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        if self._writer is not None:
            return
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        writer = _ConnectionThread(
            self.path, write=True, synchronous=self._synchronous, max_batch=self._max_batch, name="sqlite-writer"
        )
        await asyncio.to_thread(writer.start_and_wait)
        reader = _ConnectionThread(
            self.path, write=False, synchronous=self._synchronous, max_batch=64, name="sqlite-reader"
        )
        try:
            await asyncio.to_thread(reader.start_and_wait)
        except BaseException:
            await asyncio.to_thread(writer.stop)
            raise
        self._writer, self._reader = writer, reader

    async def close(self) -> None:
        writer, reader = self._writer, self._reader
        self._writer = self._reader = None
        for thread in (reader, writer):
            if thread is not None:
                await asyncio.to_thread(thread.stop)

    @property
    def commit_stats(self) -> tuple[int, int]:
        """(transactions committed, operations in them) by the writer: the group-commit ratio."""
        w = self._writer
        return (w.batches, w.operations) if w else (0, 0)

    def _write(self, fn: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        if self._writer is None:
            raise GatewayError("the store is not open", field="store")
        return self._writer.submit(fn)

    def _read(self, fn: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        if self._reader is None:
            raise GatewayError("the store is not open", field="store")
        return self._reader.submit(fn)

    # ------------------------------------------------------------------ readiness

    async def health(self) -> dict[str, str]:
        checks: dict[str, str] = {}
        try:
            await self._write(_probe_write)
            checks["write"] = "ok"
        except NswError as exc:
            checks["write"] = f"failed: {exc}"
        checks["free_space"] = await asyncio.to_thread(self._free_space)
        now = time.monotonic()
        if self._integrity is None or now - self._integrity[0] >= self.integrity_interval:
            try:
                result = await self._read(_quick_check)
            except NswError as exc:
                result = f"failed: {exc}"
            self._integrity = (now, result)
        checks["integrity"] = self._integrity[1]
        try:
            checks["journal"] = await self._read(_journal_head)
        except NswError as exc:
            checks["journal"] = f"failed: {exc}"
        return checks

    def _free_space(self) -> str:
        if self.path == ":memory:":
            return "ok"
        directory = Path(self.path).resolve().parent
        try:
            free = shutil.disk_usage(directory).free
        except OSError as exc:
            return f"failed: {translate(exc, self.path)}"
        if free < self.min_free_bytes:
            log.error("SQLite store %s: %d bytes free on %s, under store.min_free_bytes", self.path, free, directory)
            return f"failed: {free} bytes free on {directory}, under store.min_free_bytes ({self.min_free_bytes})"
        return "ok"

    # ------------------------------------------------------------------ writes

    async def recover(self, *, now: float) -> int:
        def op(conn: sqlite3.Connection) -> int:
            return conn.execute(
                "UPDATE deliveries SET lease_owner = NULL, lease_until = NULL WHERE lease_owner IS NOT NULL"
            ).rowcount

        return await self._write(op)

    async def accept(
        self,
        message: Message,
        payload: bytes | Spliced | Excerpt,
        deliveries: Sequence[Delivery],
        ack: SubmissionAck,
        *,
        certificate: CertificateAct | None = None,
        registry: RegistryAct | None = None,
        reference: ReferenceVersion | None = None,
        disclosures: Sequence[Disclosure] = (),
        ship_call: ShipCallAct | None = None,
    ) -> tuple[SubmissionAck, bool]:
        env = message.envelope
        whole = (payload.size, payload.sha256) if isinstance(payload, Excerpt) else (None, None)
        data = payload.prefix if isinstance(payload, Excerpt) else payload

        def op(conn: sqlite3.Connection) -> tuple[SubmissionAck, bool]:
            try:
                conn.execute(
                    "INSERT INTO messages (id, sender, message_id, document_type, conversation, reference, destination,"
                    " procedure, format, intake_state, state, received_at, error, ack, content_digest,"
                    " payload_size, payload_sha256)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        message.id,
                        env.sender,
                        env.message_id,
                        env.document_type,
                        env.conversation,
                        env.reference,
                        env.destination,
                        env.procedure,
                        env.format,
                        message.state.value,
                        overall_state(message.state, (d.state for d in deliveries)).value,
                        message.received_at,
                        _dumps(message.error),
                        _dumps(ack.to_dict()),
                        message.content_digest,
                        *whole,
                    ),
                )
            except sqlite3.IntegrityError:
                row = conn.execute(
                    "SELECT ack FROM messages WHERE sender = ? AND message_id = ?", (env.sender, env.message_id)
                ).fetchone()
                if row is None and message.content_digest is not None:
                    row = conn.execute(
                        "SELECT ack FROM messages WHERE sender = ? AND content_digest = ?",
                        (env.sender, message.content_digest),
                    ).fetchone()
                if row is None:
                    raise
                return SubmissionAck.from_dict(json.loads(row[0])), False
            _insert_payload(conn, "message_payloads", "message", message.id, data)
            _insert_transitions(conn, message.id, message.history)
            for d in deliveries:
                row = conn.execute(
                    "INSERT INTO deliveries (message, destination, conversation, sender, document_type, reference,"
                    " state, attempts, queued_at, deadline, next_at, content_type, on_behalf_of)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        d.message_id,
                        d.destination,
                        d.conversation,
                        d.sender,
                        d.document_type,
                        d.reference,
                        d.state.value,
                        d.attempts,
                        d.queued_at,
                        d.deadline,
                        d.next_attempt_at,
                        d.content_type,
                        d.on_behalf_of,
                    ),
                )
                assert row.lastrowid is not None  # a row was just inserted
                _insert_payload(conn, "delivery_payloads", "delivery", row.lastrowid, d.body)
                _insert_transitions(conn, message.id, d.history)
            if message.state is not State.REJECTED:
                if certificate is not None:
                    _certificate_act(conn, certificate, message)
                if registry is not None:
                    registry_sql.sqlite_record(conn, registry, message)
                if ship_call is not None:
                    shipcall_sql.sqlite_check(conn, ship_call)
                    shipcall_sql.sqlite_write(conn, ship_call)
                if reference is not None:
                    _reference_insert(conn, reference)
                _append_journal(
                    conn,
                    at=message.history[-1].at,
                    kind=ACCEPTED,
                    message=message.id,
                    destination=None,
                    digest=payload_digest(data),
                )
                _disclosures_insert(conn, disclosures)
            return ack, True

        return await self._write(op)

    async def claim(
        self, destination: str, *, owner: str, limit: int, now: float, lease: float, on_dead: OnDead = "hold"
    ) -> list[Delivery]:
        blocking = _BLOCKING[on_dead]

        def op(conn: sqlite3.Connection) -> list[Delivery]:
            rows = conn.execute(
                f"SELECT {_READ_COLUMNS} FROM deliveries AS d"
                " WHERE d.destination = ? AND d.state = 'QUEUED' AND d.next_at <= ?"
                " AND (d.lease_owner IS NULL OR d.lease_until < ?)"
                " AND NOT EXISTS (SELECT 1 FROM deliveries AS e WHERE e.destination = d.destination"
                f"   AND e.conversation = d.conversation AND e.seq < d.seq AND e.state <> 'ACKNOWLEDGED'{blocking})"
                " ORDER BY d.seq LIMIT ?",
                (destination, now, now, limit),
            ).fetchall()
            if rows:
                conn.executemany(
                    "UPDATE deliveries SET lease_owner = ?, lease_until = ? WHERE seq = ?",
                    [(owner, now + lease, r[0]) for r in rows],
                )
            return [_delivery(_with_payload(conn, r)) for r in rows]

        return await self._write(op)

    async def record(self, delivery: Delivery, *, owner: str | None, now: float) -> None:
        await self._write(lambda conn: _record(conn, delivery, owner, now))

    async def expire(
        self, destination: str, *, now: float, code: str, detail: str, on_dead: OnDead = "hold"
    ) -> list[Delivery]:
        from gateway.errors import ERROR_CODES

        error_cls = ERROR_CODES[code]

        def op(conn: sqlite3.Connection) -> list[Delivery]:
            rows = conn.execute(
                f"SELECT {_READ_COLUMNS} FROM deliveries WHERE destination = ? AND state = 'QUEUED'"
                " AND deadline <= ? AND (lease_owner IS NULL OR lease_until < ?) ORDER BY seq",
                (destination, now, now),
            ).fetchall()
            expired: list[Delivery] = []
            for row in rows:
                d = _delivery(_with_payload(conn, row))
                head = None
                if on_dead == "hold":
                    found = conn.execute(
                        "SELECT message FROM deliveries WHERE destination = ? AND conversation = ? AND seq < ?"
                        " AND state = 'DEAD' ORDER BY seq LIMIT 1",
                        (destination, d.conversation, d.seq),
                    ).fetchone()
                    head = found[0] if found else None
                error = error_cls(detail, field=destination) if head is None else blocked_by(head, d, detail)
                dead = d.dead(error, at=now)
                _record(conn, dead, None, now)
                expired.append(dead)
            return expired

        return await self._write(op)

    async def waiting_behind(self, delivery: Delivery) -> int:
        def op(conn: sqlite3.Connection) -> int:
            row = conn.execute(
                "SELECT count(*) FROM deliveries WHERE destination = ? AND conversation = ? AND seq > ?"
                " AND state <> 'ACKNOWLEDGED' AND state <> 'DEAD'",
                (delivery.destination, delivery.conversation, delivery.seq or 0),
            ).fetchone()
            return int(row[0])

        return await self._read(op)

    # ------------------------------------------------------------------ reads

    async def get(self, message_id: str) -> MessageRecord | None:
        def op(conn: sqlite3.Connection) -> MessageRecord | None:
            return _load_record(conn, message_id)

        return await self._read(op)

    async def ship_call(self, reference: str) -> ShipCallRecord | None:
        return await self._read(lambda conn: shipcall_sql.sqlite_read(conn, reference))

    async def registry_find(self, query: RegistryQuery) -> list[RegistryDocument]:
        return await self._read(lambda conn: registry_sql.sqlite_find(conn, query))

    async def registry_document(
        self, doc_type: str, number: str
    ) -> tuple[RegistryDocument, list[registry_sql.DrawRecord]] | None:
        return await self._read(lambda conn: registry_sql.sqlite_document(conn, doc_type, number))

    async def registry_candidates(self, holder: str, hs_codes: Sequence[str]) -> list[list[RegistryDocument]]:
        return await self._read(lambda conn: registry_sql.sqlite_candidates(conn, holder, hs_codes))

    async def certificate(self, issuing_country: str, number: str) -> CertificateRecord | None:
        def op(conn: sqlite3.Connection) -> CertificateRecord | None:
            key = (issuing_country, number)
            row = conn.execute(
                "SELECT issuer, status FROM certificates WHERE issuing_country = ? AND number = ?", key
            ).fetchone()
            if row is None:
                return None
            events = conn.execute(
                "SELECT status, at, message, party, detail FROM certificate_events"
                " WHERE issuing_country = ? AND number = ? ORDER BY seq",
                key,
            ).fetchall()
            history = tuple(CertificateEvent(e[0], e[1], e[2], e[3], json.loads(e[4])) for e in events)
            return CertificateRecord(issuing_country, number, row[0], row[1], history)

        return await self._read(op)

    async def certificates(self, query: CertificateQuery) -> list[CertificateSummary]:
        sql, params = certificate_query_sql(query, lambda _: "?")

        def op(conn: sqlite3.Connection) -> list[CertificateSummary]:
            return [CertificateSummary(*row) for row in conn.execute(sql, params)]

        return await self._read(op)

    async def search(self, query: MessageQuery) -> list[MessageRecord]:
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("sender", query.sender),
            ("document_type", query.document_type),
            ("state", query.state.value if query.state else None),
            ("conversation", query.conversation),
            ("reference", query.reference),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if query.since is not None:
            clauses.append("received_at >= ?")
            params.append(query.since)
        if query.until is not None:
            clauses.append("received_at < ?")
            params.append(query.until)
        if query.after is not None:
            clauses.append("(received_at < ? OR (received_at = ? AND id > ?))")
            params += [query.after[0], query.after[0], query.after[1]]
        if query.destination is not None:
            clauses.append("EXISTS (SELECT 1 FROM deliveries AS d WHERE d.message = messages.id AND d.destination = ?)")
            params.append(query.destination)
        if query.code is not None:
            clauses.append(
                "(json_extract(messages.error, '$.code') = ? OR EXISTS (SELECT 1 FROM deliveries AS d"
                " WHERE d.message = messages.id AND json_extract(d.last_error, '$.code') = ?))"
            )
            params += [query.code, query.code]
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        params.append(max(1, min(query.limit, 1000)))

        def op(conn: sqlite3.Connection) -> list[MessageRecord]:
            ids = [
                r[0]
                for r in conn.execute(f"SELECT id FROM messages{where} ORDER BY received_at DESC, id LIMIT ?", params)
            ]
            return [rec for i in ids if (rec := _load_record(conn, i)) is not None]

        return await self._read(op)

    async def dead_letters(
        self, *, destination: str | None = None, message_id: str | None = None, limit: int = 1000
    ) -> list[Delivery]:
        clauses: list[str] = ["state = 'DEAD'"]
        params: list[Any] = []
        if destination is not None:
            clauses.append("destination = ?")
            params.append(destination)
        if message_id is not None:
            clauses.append("message = ?")
            params.append(message_id)
        params.append(limit)

        def op(conn: sqlite3.Connection) -> list[Delivery]:
            rows = conn.execute(
                f"SELECT {_READ_COLUMNS} FROM deliveries WHERE {' AND '.join(clauses)} ORDER BY seq LIMIT ?",
                params,
            ).fetchall()
            return [_delivery(_with_payload(conn, r)) for r in rows]

        return await self._read(op)

    async def journal(self, *, after: int = 0, limit: int = 10_000) -> list[JournalEntry]:
        def op(conn: sqlite3.Connection) -> list[JournalEntry]:
            return [
                JournalEntry(*r)
                for r in conn.execute(
                    "SELECT seq, at, kind, message, destination, digest, prev, hash FROM journal WHERE seq > ?"
                    " ORDER BY seq LIMIT ?",
                    (after, limit),
                )
            ]

        return await self._read(op)

    async def journal_head(self) -> JournalEntry | None:
        def op(conn: sqlite3.Connection) -> JournalEntry | None:
            row = conn.execute(
                "SELECT seq, at, kind, message, destination, digest, prev, hash FROM journal ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            return None if row is None else JournalEntry(*row)

        return await self._read(op)

    async def journal_base(self) -> JournalBase:
        def op(conn: sqlite3.Connection) -> JournalBase:
            row = conn.execute("SELECT seq, hash, manifest_sha256 FROM journal_base WHERE id = 1").fetchone()
            return JournalBase(0, GENESIS, "") if row is None else JournalBase(*row)

        return await self._read(op)

    async def timestamp_add(self, stamp: StoredTimestamp) -> None:
        def op(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO journal_timestamps (seq, entry_hash, token, gen_time, tsa_serial) VALUES (?, ?, ?, ?, ?)",
                (stamp.seq, stamp.entry_hash, stamp.token, stamp.gen_time, stamp.tsa_serial),
            )

        await self._write(op)

    async def timestamps(self, *, since_seq: int = 0) -> list[StoredTimestamp]:
        def op(conn: sqlite3.Connection) -> list[StoredTimestamp]:
            rows = conn.execute(
                "SELECT seq, entry_hash, token, gen_time, tsa_serial FROM journal_timestamps WHERE seq >= ?"
                " ORDER BY seq, id",
                (since_seq,),
            ).fetchall()
            return [StoredTimestamp(r[0], r[1], bytes(r[2]), float(r[3]), r[4]) for r in rows]

        return await self._read(op)

    async def reference_add(self, version: ReferenceVersion) -> ReferenceVersion:
        def op(conn: sqlite3.Connection) -> ReferenceVersion:
            return _reference_insert(conn, version)

        result: ReferenceVersion = await self._write(op)
        return result

    async def reference_versions(self, name: str | None = None) -> list[ReferenceVersion]:
        def op(conn: sqlite3.Connection) -> list[ReferenceVersion]:
            sql = (
                "SELECT seq, name, version, owner, purpose, effective_from, entries, digest, publisher, via, message,"
                " published_at FROM reference_versions"
            )
            rows = (
                conn.execute(sql + " ORDER BY seq").fetchall()
                if name is None
                else conn.execute(sql + " WHERE name = ? ORDER BY seq", (name,)).fetchall()
            )
            return [reference_row(r) for r in rows]

        return await self._read(op)

    async def reference_head(self) -> int:
        def op(conn: sqlite3.Connection) -> int:
            return int(conn.execute("SELECT coalesce(max(seq), 0) FROM reference_versions").fetchone()[0])

        return await self._read(op)

    async def disclosures(self, query: DisclosureQuery) -> list[StoredDisclosure]:
        sql, params = disclosure_rows.disclosure_query_sql(query, lambda _: "?")

        def op(conn: sqlite3.Connection) -> list[StoredDisclosure]:
            return disclosure_rows.stored(conn.execute(sql, params).fetchall())

        return await self._read(op)

    async def finished_messages(self, *, received_before: float, limit: int) -> list[tuple[str, str, float]]:
        def op(conn: sqlite3.Connection) -> list[tuple[str, str, float]]:
            return [
                (r[0], r[1], r[2])
                for r in conn.execute(
                    "SELECT m.id, m.document_type, m.received_at FROM messages m WHERE m.received_at < ?"
                    " AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.message = m.id"
                    " AND (d.state NOT IN ('ACKNOWLEDGED', 'DEAD') OR d.lease_owner IS NOT NULL))"
                    " ORDER BY m.received_at LIMIT ?",
                    (received_before, limit),
                )
            ]

        return await self._read(op)

    async def message_payload(self, message_id: str) -> bytes | None:
        def op(conn: sqlite3.Connection) -> bytes | None:
            return _message_payload(conn, message_id)

        return await self._read(op)

    async def prune_archived(self, message_ids: Sequence[str], *, base: JournalBase) -> int:
        ids = list(message_ids)

        def op(conn: sqlite3.Connection) -> int:
            deleted = 0
            for i in range(0, len(ids), 500):
                chunk = ids[i : i + 500]
                marks = ",".join("?" * len(chunk))
                conn.execute(f"DELETE FROM transitions WHERE message IN ({marks})", chunk)
                conn.execute(f"DELETE FROM deliveries WHERE message IN ({marks})", chunk)
                deleted += conn.execute(f"DELETE FROM messages WHERE id IN ({marks})", chunk).rowcount
            conn.execute(
                "DELETE FROM operator_actions WHERE id IN (SELECT message FROM journal WHERE kind = ? AND seq <= ?)",
                (OPERATOR, base.seq),
            )
            conn.execute("DELETE FROM journal WHERE seq <= ?", (base.seq,))
            conn.execute(
                "INSERT INTO journal_base (id, seq, hash, manifest_sha256) VALUES (1, ?, ?, ?) ON CONFLICT (id)"
                " DO UPDATE SET seq = excluded.seq, hash = excluded.hash, manifest_sha256 = excluded.manifest_sha256",
                (base.seq, base.hash, base.manifest_sha256),
            )
            return deleted

        return await self._write(op)

    async def evidence_digests(self, entries: Sequence[JournalEntry]) -> dict[int, str | None]:
        def op(conn: sqlite3.Connection) -> dict[int, str | None]:
            out: dict[int, str | None] = {}
            for e in entries:
                if e.kind == ACCEPTED:
                    payload = _message_payload(conn, e.message_id)
                    out[e.seq] = None if payload is None else payload_digest(payload)
                elif e.kind == OPERATOR:
                    row = conn.execute("SELECT record FROM operator_actions WHERE id = ?", (e.message_id,)).fetchone()
                    out[e.seq] = None if row is None else payload_digest(bytes(row[0]))
                elif e.kind == DISCLOSED:
                    row = conn.execute(
                        "SELECT record FROM disclosures WHERE message = ? AND destination = ?",
                        (e.message_id, e.destination),
                    ).fetchone()
                    out[e.seq] = None if row is None else payload_digest(bytes(row[0]))
                else:
                    row = conn.execute(
                        "SELECT p.rowid, d.receipt FROM deliveries AS d JOIN delivery_payloads AS p"
                        " ON p.delivery = d.seq WHERE d.message = ? AND d.destination = ?",
                        (e.message_id, e.destination),
                    ).fetchone()
                    out[e.seq] = (
                        None
                        if row is None
                        else payload_digest(_read_payload(conn, "delivery_payloads", row[0]) + (row[1] or b""))
                    )
            return out

        return await self._read(op)

    async def record_operator_action(
        self,
        action: OperatorAction,
        *,
        replays: Sequence[Delivery] = (),
        reference: ReferenceVersion | None = None,
    ) -> JournalEntry:
        record = action.record()

        def op(conn: sqlite3.Connection) -> JournalEntry:
            for d in replays:
                _record(conn, d, None, action.at)
            if reference is not None:
                _reference_insert(conn, reference)
            conn.execute(
                "INSERT INTO operator_actions (id, operator, action, at, record) VALUES (?, ?, ?, ?, ?)",
                (action.id, action.operator, action.action, action.at, record),
            )
            _append_journal(
                conn,
                at=action.at,
                kind=OPERATOR,
                message=action.id,
                destination=action.destination,
                digest=payload_digest(record),
            )
            row = conn.execute(
                "SELECT seq, at, kind, message, destination, digest, prev, hash FROM journal ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            return JournalEntry(*row)

        return await self._write(op)

    async def operator_actions(
        self,
        *,
        operator: str | None = None,
        since: float | None = None,
        ids: Sequence[str] | None = None,
        limit: int = 100,
    ) -> list[RecordedAction]:
        clauses: list[str] = []
        params: list[Any] = []
        if operator is not None:
            clauses.append("a.operator = ?")
            params.append(operator)
        if since is not None:
            clauses.append("a.at >= ?")
            params.append(since)
        if ids is not None:
            if not ids:
                return []
            clauses.append(f"a.id IN ({','.join('?' * len(ids))})")
            params.extend(ids)
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        params.append(max(1, min(limit, 1000)))

        def op(conn: sqlite3.Connection) -> list[RecordedAction]:
            return [
                RecordedAction(r[0], bytes(r[1]), r[2])
                for r in conn.execute(
                    # the literal kind, so that the partial index journal_operator serves it
                    f"SELECT a.id, a.record, (SELECT j.seq FROM journal AS j WHERE j.kind = '{OPERATOR}'"
                    f" AND j.message = a.id) FROM operator_actions AS a{where} ORDER BY a.at DESC, a.id LIMIT ?",
                    params,
                )
            ]

        return await self._read(op)

    async def integrity(self) -> str:
        try:
            return await self._read(_integrity_check)
        except NswError as exc:
            return f"failed: {exc}"

    async def stats(self) -> list[DestinationStats]:
        def op(conn: sqlite3.Connection) -> list[DestinationStats]:
            out: dict[str, DestinationStats] = {}
            for dest, state, n, oldest in conn.execute(
                "SELECT destination, state, COUNT(*), MIN(queued_at) FROM deliveries GROUP BY destination, state"
            ):
                stats = out.setdefault(dest, DestinationStats(dest, {}))
                stats.counts[State(state)] = n
                stats.oldest[State(state)] = oldest
            return [out[k] for k in sorted(out)]

        return await self._read(op)

    async def flows(self, since: float, until: float) -> FlowStats:
        def op(conn: sqlite3.Connection) -> FlowStats:
            window = (since, until)
            finished = conn.execute(_FINISHED, (*window, FLOW_SAMPLE)).fetchall()
            return FlowStats(
                since,
                until,
                sender_flows(
                    conn.execute(_SENDER_COUNTS, window).fetchall(),
                    [(r[0], r[4]) for r in finished if r[4] is not None],
                ),
                destination_flows(
                    conn.execute(_DESTINATION_COUNTS, window).fetchall(),
                    conn.execute(_ACKNOWLEDGED, (*window, FLOW_SAMPLE)).fetchall(),
                ),
            )

        return await self._read(op)

    async def procedure_stats(self, since: float, until: float, *, bucket: float = 86400.0) -> list[ProcedureStats]:
        def op(conn: sqlite3.Connection) -> list[ProcedureStats]:
            finished = conn.execute(_FINISHED, (since, until, FLOW_SAMPLE)).fetchall()
            return procedure_stats(
                conn.execute(_PROCEDURE_COUNTS, (bucket, since, until)).fetchall(),
                [(r[1], r[2], int(r[3] // bucket), r[4]) for r in finished if r[4] is not None],
                bucket,
            )

        return await self._read(op)

    async def outcomes(self, destinations: Sequence[str]) -> list[DestinationOutcomes]:
        def op(conn: sqlite3.Connection) -> list[DestinationOutcomes]:
            rows = [
                row
                for name in destinations
                for state in (State.ACKNOWLEDGED, State.FAILED)
                for row in conn.execute(_LAST_OUTCOME, (name, state.value)).fetchall()
            ]
            return _outcomes(rows)

        return await self._read(op)

    # ------------------------------------------------------------------ adapter state

    async def state_add(self, namespace: str, key: str, value: bytes, *, expires_at: float, now: float) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "INSERT INTO adapter_state (namespace, key, value, expires_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at"
                " WHERE adapter_state.expires_at <= ?",
                (namespace, key, value, expires_at, now),
            )
            return cur.rowcount == 1

        return await self._write(op)

    async def state_put(self, namespace: str, key: str, value: bytes, *, expires_at: float) -> None:
        def op(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO adapter_state (namespace, key, value, expires_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
                (namespace, key, value, expires_at),
            )

        await self._write(op)

    async def state_replace(
        self, namespace: str, key: str, expected: bytes, value: bytes, *, expires_at: float, now: float
    ) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            return (
                conn.execute(
                    "UPDATE adapter_state SET value = ?, expires_at = ?"
                    " WHERE namespace = ? AND key = ? AND value = ? AND expires_at > ?",
                    (value, expires_at, namespace, key, expected, now),
                ).rowcount
                == 1
            )

        return await self._write(op)

    async def state_get(self, namespace: str, key: str, *, now: float) -> bytes | None:
        def op(conn: sqlite3.Connection) -> bytes | None:
            row = conn.execute(
                "SELECT value FROM adapter_state WHERE namespace = ? AND key = ? AND expires_at > ?",
                (namespace, key, now),
            ).fetchone()
            return None if row is None else bytes(row[0])

        return await self._read(op)

    async def state_delete(self, namespace: str, key: str) -> None:
        def op(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM adapter_state WHERE namespace = ? AND key = ?", (namespace, key))

        await self._write(op)

    async def state_purge(self, namespace: str, *, now: float) -> int:
        def op(conn: sqlite3.Connection) -> int:
            return conn.execute(
                "DELETE FROM adapter_state WHERE namespace = ? AND expires_at <= ?", (namespace, now)
            ).rowcount

        return await self._write(op)


def _probe_write(conn: sqlite3.Connection) -> None:
    """A write through the writer's transaction, rolled back: nothing stays in the file."""
    conn.execute("SAVEPOINT probe")
    try:
        conn.execute("CREATE TABLE readiness_probe (at REAL)")
        conn.execute("INSERT INTO readiness_probe VALUES (?)", (time.time(),))
    finally:
        conn.execute("ROLLBACK TO probe")
        conn.execute("RELEASE probe")


def _quick_check(conn: sqlite3.Connection) -> str:
    problems = [str(r[0]) for r in conn.execute("PRAGMA quick_check(5)")]
    if problems == ["ok"]:
        return "ok"
    log.error("SQLite store integrity check failed: %s", "; ".join(problems))
    return f"failed: [{StoreCorrupt.code}] " + "; ".join(problems)


def _integrity_check(conn: sqlite3.Connection) -> str:
    problems = [str(r[0]) for r in conn.execute("PRAGMA integrity_check(20)")]
    if problems == ["ok"]:
        return "ok"
    return f"failed: [{StoreCorrupt.code}] " + "; ".join(problems)


def _journal_head(conn: sqlite3.Connection) -> str:
    row = conn.execute(
        "SELECT seq, at, kind, message, destination, digest, prev, hash FROM journal ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    return head_status(JournalEntry(*row) if row is not None else None)


def _load_record(conn: sqlite3.Connection, message_id: str) -> MessageRecord | None:
    row = conn.execute(
        "SELECT id, sender, message_id, document_type, conversation, reference, destination, procedure, format,"
        " received_at, error, ack FROM messages WHERE id = ?",
        (message_id,),
    ).fetchone()
    if row is None:
        return None
    mid, sender, smid, doc_type, conversation, reference, destination, procedure, fmt, received_at, error, ack = row
    envelope = SubmissionEnvelope(
        sender=PartyId(sender),
        message_id=smid,
        document_type=doc_type,
        conversation_id=None if conversation == smid else conversation,
        reference=reference,
        destination=destination,
        procedure=procedure,
        format=fmt,
    )
    steps = [
        (r[0], _transition(r[1:]))
        for r in conn.execute(
            "SELECT destination, destination, from_state, to_state, at, code, detail FROM transitions"
            " WHERE message = ? ORDER BY id",
            (mid,),
        )
    ]
    intake = tuple(t for dest, t in steps if dest is None)
    message = Message(id=mid, envelope=envelope, received_at=received_at, history=intake, error=_loads(error))
    deliveries = tuple(
        _delivery(_with_payload(conn, r), tuple(t for dest, t in steps if dest == r[2]))
        for r in conn.execute(f"SELECT {_READ_COLUMNS} FROM deliveries WHERE message = ? ORDER BY seq", (mid,))
    )
    replies = tuple(
        r[0]
        for r in conn.execute("SELECT id FROM messages WHERE reference IN (?, ?) ORDER BY received_at", (mid, smid))
    )
    return MessageRecord(message, deliveries, SubmissionAck.from_dict(json.loads(ack)), replies)
