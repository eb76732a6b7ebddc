"""The shared store: PostgreSQL, for several gateway nodes on one database (asyncpg).

Connection string: ``postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?search_path=SCHEMA&...]``
(any query parameter other than libpq's connection options is sent as a server setting, so
``search_path`` puts a gateway in its own schema). Configuration: ``[store] kind = "postgresql"``,
``dsn = "..."``. The schema is created and upgraded by ``nswgw db upgrade`` (versioned migrations
in :mod:`gateway.store.migrations`); :meth:`PostgresStore.open` refuses a database whose schema is
behind with ``STORE_SCHEMA_OUTDATED``.

Features:

* **any number of nodes** share one database. Work is claimed with one statement,
  ``UPDATE deliveries ... FROM (SELECT seq ... FOR UPDATE SKIP LOCKED) AS claimed WHERE seq =
  claimed.seq RETURNING ...`` (the candidates come from the partial index of queued rows, each checked
  against the head of its conversation with one index probe, and the locked rows are updated by
  primary key, so a claim costs about the same with a million delivered rows as with none), which
  leases each due delivery to one worker for ``lease`` seconds of the database's clock (see the recovery
  rules below).
* **per-conversation order** across nodes: only the head of a conversation (no earlier
  delivery of it to the same destination that is not yet ``ACKNOWLEDGED``) is claimable,
  checked by the claim statement itself on a partial index of the rows not acknowledged.
* **deduplication** by the unique constraint on ``(sender, message_id)`` and the partial unique
  index on ``(sender, content_digest)`` (``INSERT ... ON CONFLICT DO NOTHING``: a concurrent insert
  of either key waits for the first and then does nothing).
* **group commit**: writes queue to a few writer tasks per node; each runs every write
  waiting at that moment in one transaction (a compare-and-set that fails writes nothing, so
  the others commit), and answers the callers after ``COMMIT``.
* **one linear journal, no lock to commit**: a transaction inserts its journal entries unchained
  (``journal_pending``); one sealer at a time (any node, under the schema's journal advisory lock) chains
  them in commit order into the one hash chain of every node, moments later, and every read of the journal
  seals first (:mod:`gateway.store.pg_journal`); ``journal.seq`` is the primary key as a second guard.
  ``journal = "inline"`` chains them in the transaction instead, under the same lock held to COMMIT
  (``journal_head()`` takes it and reads the head in one call), so nodes commit one at a time.
* **few round trips**: a group-commit transaction is BEGIN, one statement per write, one
  statement for the rows every write left (deliveries and transitions, ``unnest`` arrays), one for
  the journal entries with the notification, COMMIT.
* **large payloads in chunks**: payloads live in ``message_payloads`` and ``delivery_payloads``,
  written once; one above 256 KiB is inserted by a binary ``COPY`` streamed in 256 KiB chunks and read
  back by ``substring`` in 256 KiB chunks, so the gateway holds it about once rather than two or three
  times (asyncpg's encoded parameter, its read buffer).
* **LISTEN/NOTIFY**: accepting a message notifies the channel of the schema with its
  destinations; every node listens and wakes its idle workers (:meth:`Store.on_work`).
* driver exceptions never cross the interface (``raise ... from exc``, logged at ERROR on ``nswgw.store``
  with the incident id): connection failures become ``STORE_UNAVAILABLE``, a full disk (SQLSTATE 53100) or
  out of memory ``STORE_FULL``, damaged data (XX001, XX002) ``STORE_CORRUPT``, anything else ``GATEWAY_INTERNAL``.
* :meth:`PostgresStore.health` (``/readyz``): a write rolled back to a savepoint in a writer's transaction,
  a trivial query, the journal head.

Multi-node recovery rules:

* **One clock for leases: the database's.** A claim sets ``lease_until`` to the database's ``now()`` plus the
  lease; claim, :meth:`record` (unleased compare-and-set) and :meth:`expire` take a lease only once
  ``lease_until`` is past by that clock. The ``now`` a node passes is used for what is in gateway time (next
  attempt, deadline), never for leases, so a node whose clock is an hour off neither takes a live lease early
  nor keeps its own past its length.
* **Liveness is a heartbeat, not a connection.** Each node has one row in ``nodes``, one id for its whole run,
  naming its listening session (``pid``, ``backend_start``) and carrying a heartbeat (``seen_at``, set from
  ``clock_timestamp()`` every ``node_timeout / 6`` seconds) and its own ``node_timeout`` (default 30 s). A node
  is **dead** only when its session is gone *and* its heartbeat is older than its ``node_timeout`` (a row without
  a heartbeat, from an earlier version, lives by its session alone). A node cut off for less than its timeout
  is live, however its connections fared.
* **Nobody takes a live node's lease.** :meth:`recover` (every node, at start) releases only leases run out by
  the database clock, leases of dead nodes (or of nodes whose row is gone) and leases taken under its own id,
  and deletes the rows of dead nodes. A node taken for dead while it was only cut off for longer than its
  timeout registers again under its id when it is back; the compare-and-set tells its workers about any lease
  lost meanwhile (``STATE_TRANSITION_INVALID``).
* **The listening connection is supervised.** When it is lost (its backend terminated, the network cut, the
  server restarted, a heartbeat failing or timing out) a WARNING ``node N lost its LISTEN connection;
  reconnecting`` is logged on ``nswgw.store`` and a background task reconnects with capped exponential backoff
  and jitter (``RECONNECT_INITIAL`` 0.1 s doubling to ``RECONNECT_MAX`` 5 s, each wait between half and all of
  it), updates the node's row to the new session under the same id, LISTENs again, logs INFO ``node N is
  listening again; ...`` and wakes every worker once (notifications sent meanwhile were lost). The pool
  replaces its own broken connections on use; workers keep retrying a result the store could not record.
  :meth:`close` stops the supervisor first.

Options: ``pool_size`` (connections per node, default 10), ``writers`` (concurrent write
transactions per node, default 2), ``max_batch`` (writes per transaction, default 256),
``connect_timeout`` (seconds, default 10; also bounds each query of the supervisor), ``node_timeout`` (seconds,
default 30, ``[store] node_timeout``), ``journal`` (``sealed``, the default, or ``inline``; ``[store] journal``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import json
import logging
import random
import re
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Concatenate, ParamSpec, TypeVar

import asyncpg

from gateway.disclosures import DISCLOSED, Disclosure, DisclosureQuery, StoredDisclosure
from gateway.errors import (
    ConfigError,
    GatewayError,
    InvalidTransition,
    NswError,
    StoreCorrupt,
    StoreFull,
    StoreSchemaOutdated,
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
)
from gateway.reference import ReferenceVersion, numbering_refusal, ownership_refusal
from gateway.registry import RegistryAct, RegistryDocument, RegistryQuery
from gateway.shipcalls import ShipCallAct, ShipCallRecord
from gateway.store import disclosure_rows, migrations, pg_journal, registry_sql, shipcall_sql
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

__all__ = ["PostgresStore", "upgrade_schema", "schema_version", "redact"]

T = TypeVar("T")
P = ParamSpec("P")

log = logging.getLogger("nswgw.store")

_Conn = Any
"""An asyncpg connection, or a pool's proxy of one (asyncpg's stubs type the two apart)."""

_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    # the protocol of a connection whose server session was terminated under it (asyncpg reports the lost
    # connection this way when the termination arrives while a statement is being prepared)
    asyncpg.InternalClientError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.ConnectionDoesNotExistError,
)
_RETRY_ALONE: tuple[type[BaseException], ...] = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)


def redact(dsn: str) -> str:
    """The connection string without its password (for messages and logs)."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", dsn)


def translate(exc: BaseException, where: str) -> NswError:
    """A driver (or socket) exception as a gateway error: the one mapping of the store boundary."""
    if isinstance(exc, NswError):
        return exc
    error: NswError
    if isinstance(exc, asyncpg.DiskFullError | asyncpg.OutOfMemoryError):  # SQLSTATE 53100, 53200
        error = StoreFull(f"PostgreSQL store {where} is full: {type(exc).__name__}: {exc}", field="store.dsn")
    elif isinstance(exc, asyncpg.DataCorruptedError | asyncpg.IndexCorruptedError):  # XX001, XX002
        error = StoreCorrupt(f"PostgreSQL store {where} is damaged: {type(exc).__name__}: {exc}", field="store.dsn")
    elif isinstance(exc, _UNAVAILABLE):
        error = StoreUnavailable(
            f"PostgreSQL store {where} is unavailable: {type(exc).__name__}: {exc}", field="store.dsn"
        )
    else:
        error = GatewayError(f"PostgreSQL store {where} failed: {type(exc).__name__}: {exc}", field="store")
    error.__cause__ = exc
    log.error("incident %s: %s", error.incident_id, error)
    return error


def _guarded(
    method: Callable[Concatenate[PostgresStore, P], Awaitable[T]],
) -> Callable[Concatenate[PostgresStore, P], Coroutine[Any, Any, T]]:
    """Translate every exception leaving a public store method (asyncio cancellation excepted)."""

    @functools.wraps(method)
    async def wrapper(self: PostgresStore, /, *args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await method(self, *args, **kwargs)
        except NswError:
            raise
        except Exception as exc:
            raise translate(exc, self.name) from exc

    return wrapper


async def _connect(dsn: str, timeout: float) -> asyncpg.Connection:
    return await asyncpg.connect(dsn, timeout=timeout)


async def schema_version(dsn: str, *, timeout: float = 10.0) -> int:
    """The schema version of the database (0: never migrated)."""
    try:
        conn = await _connect(dsn, timeout)
        try:
            return await migrations.current_version(conn)
        finally:
            await conn.close()
    except NswError:
        raise
    except Exception as exc:
        raise translate(exc, redact(dsn)) from exc


async def upgrade_schema(dsn: str, *, timeout: float = 10.0) -> list[migrations.Migration]:
    """Apply the pending migrations (``nswgw db upgrade``); safe to run from several nodes at once."""
    try:
        conn = await _connect(dsn, timeout)
        try:
            return await migrations.upgrade(conn)
        finally:
            await conn.close()
    except NswError:
        raise
    except Exception as exc:
        raise translate(exc, redact(dsn)) from exc


def _dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _loads(value: str | None) -> Any:
    return None if value is None else json.loads(value)


_DELIVERY_COLUMNS = (
    "seq, message, destination, conversation, sender, document_type, reference, state, attempts,"
    " queued_at, deadline, next_at, last_error, payload, receipt, content_type, on_behalf_of"
)


_COPY_CHUNK = 256 * 1024
"""Payloads larger than this are inserted by a binary ``COPY`` streamed in chunks of this size and read back in
chunks of it: asyncpg encodes a bound parameter into its message buffers (about 2.7 times the payload in memory at
once) and holds a fetched value twice (the message it read and the ``bytes`` it decodes)."""
_INLINE_DATA = f"CASE WHEN length(p.data) > {_COPY_CHUNK} THEN NULL ELSE p.data END"
"""A payload column ``p.data`` as a read selects it: NULL when large (``length()`` of a TOASTed value reads only
its pointer)."""


def _read_columns(alias: str) -> str:
    """:data:`_DELIVERY_COLUMNS` as a read of ``deliveries`` named ``alias`` selects them: the payload from
    ``delivery_payloads``, a large one left out (NULL) and read by :func:`_with_payload`."""
    return ", ".join(
        f"(SELECT {_INLINE_DATA} FROM delivery_payloads AS p WHERE p.delivery = {alias}.seq) AS payload"
        if column == "payload"
        else f"{alias}.{column}"
        for column in (c.strip() for c in _DELIVERY_COLUMNS.split(","))
    )


_READ_COLUMNS = _read_columns("deliveries")
"""The delivery columns of a query of ``deliveries``."""

_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
_COPY_TRAILER = struct.pack("!h", -1)
"""The signature, flags and header extension that open the data of a binary ``COPY``, and the end-of-data mark."""


def _inline(data: bytes | Spliced) -> bytes | None:
    """A payload as a parameter of the statement that inserts its row, or None when :func:`_copy_payload` writes it."""
    return payload_bytes(data) if len(data) <= _COPY_CHUNK else None


async def _copy_payload(conn: _Conn, table: str, key_column: str, key: str | int, data: bytes | Spliced) -> None:
    """Insert one row of ``message_payloads`` or ``delivery_payloads`` (its key, then the payload) by a binary
    ``COPY`` whose data is the payload's chunks, sent as they are."""
    encoded = key.encode() if isinstance(key, str) else struct.pack("!q", key)

    async def rows() -> AsyncIterator[bytes | memoryview]:
        yield _COPY_HEADER + struct.pack("!hi", 2, len(encoded)) + encoded + struct.pack("!i", len(data))
        for chunk in payload_chunks(data, _COPY_CHUNK):
            yield chunk
        yield _COPY_TRAILER

    await conn.copy_to_table(table, source=rows(), columns=[key_column, "data"], format="binary")


async def _read_payload(conn: _Conn, table: str, key_column: str, key: str | int) -> bytes | None:
    """A payload of ``table`` read in chunks into one ``bytes`` of its size (None: no such row). The buffer is
    sized first, so that ``getvalue()`` hands out the buffer itself rather than a copy."""
    size = await conn.fetchval(f"SELECT length(data) FROM {table} WHERE {key_column} = $1", key)
    if size is None:
        return None
    out = io.BytesIO()
    if size:
        out.seek(size - 1)
        out.write(b"\0")
        out.seek(0)
    for start in range(0, size, _COPY_CHUNK):
        chunk = await conn.fetchval(
            f"SELECT substring(data FROM $2 FOR $3) FROM {table} WHERE {key_column} = $1", key, start + 1, _COPY_CHUNK
        )
        if chunk is None:
            return None
        out.write(chunk)
    return out.getvalue()


async def _with_payload(conn: _Conn, row: asyncpg.Record) -> Sequence[Any] | asyncpg.Record:
    """A row of :data:`_READ_COLUMNS` with its payload: a large one (NULL in the row) read by :func:`_read_payload`."""
    if row["payload"] is not None:
        return row
    payload = await _read_payload(conn, "delivery_payloads", "delivery", row["seq"])
    return tuple(payload if name == "payload" else value for name, value in row.items())


def _delivery(row: Sequence[Any] | asyncpg.Record, history: tuple[Transition, ...] = ()) -> Delivery:
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
    ) = tuple(row)
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


_LAST_OUTCOMES = """
SELECT t.destination, t.from_state, t.to_state, t.at, t.code, t.detail
FROM unnest($1::text[]) AS d (name)
CROSS JOIN (VALUES ('ACKNOWLEDGED'), ('FAILED')) AS s (state)
CROSS JOIN LATERAL (
    SELECT destination, from_state, to_state, at, code, detail FROM transitions
    WHERE destination = d.name AND to_state = s.state AND to_state IN ('ACKNOWLEDGED', 'FAILED')
    ORDER BY at DESC, id DESC LIMIT 1
) AS t"""
"""Per destination of ``$1``, its newest ``ACKNOWLEDGED`` and newest ``FAILED`` transition, by the partial index."""


_OUTCOME_STEPS = "to_state IN ('ACKNOWLEDGED', 'FAILED', 'DEAD')"
"""The predicate of the partial index ``transitions_flow``."""

_SENDER_COUNTS = """
SELECT sender, CASE WHEN intake_state = 'REJECTED' THEN coalesce(error::jsonb ->> 'code', '') END, count(*)
FROM messages WHERE received_at >= $1 AND received_at < $2 GROUP BY 1, 2"""

_FINISHED = """
SELECT m.sender, m.document_type, m.procedure, m.received_at,
    (SELECT max(t.at) FILTER (WHERE t.to_state = 'ACKNOWLEDGED') FROM transitions AS t WHERE t.message = m.id)
    - m.received_at
FROM messages AS m
WHERE m.received_at >= $1 AND m.received_at < $2 AND m.intake_state = 'QUEUED'
    AND NOT EXISTS (SELECT 1 FROM deliveries AS d WHERE d.message = m.id AND d.state <> 'ACKNOWLEDGED')
ORDER BY m.received_at DESC LIMIT $3"""
"""The submissions of a window whose every delivery is acknowledged, newest first, with the seconds to the last
receipt (NULL for a message without deliveries). The receipt is found among the message's own transitions (their
index by message), never by the index of every destination's outcomes."""

_DESTINATION_COUNTS = f"""
SELECT destination, to_state, count(*) FROM transitions
WHERE at >= $1 AND at < $2 AND {_OUTCOME_STEPS} AND destination IS NOT NULL GROUP BY 1, 2"""

_ACKNOWLEDGED = f"""
SELECT t.destination, t.at - d.queued_at FROM transitions AS t
JOIN deliveries AS d ON d.message = t.message AND d.destination = t.destination
WHERE t.at >= $1 AND t.at < $2 AND t.{_OUTCOME_STEPS} AND t.to_state = 'ACKNOWLEDGED'
ORDER BY t.at DESC LIMIT $3"""

_PROCEDURE_COUNTS = """
SELECT document_type, procedure, floor(received_at / $1)::bigint, count(*),
    count(*) FILTER (WHERE intake_state = 'REJECTED')
FROM messages WHERE received_at >= $2 AND received_at < $3 GROUP BY 1, 2, 3"""


def _transition(row: Sequence[Any] | asyncpg.Record) -> Transition:
    destination, from_state, to_state, at, code, detail = tuple(row)
    return Transition(State(to_state), at, State(from_state) if from_state else None, destination, code, detail)


# the one state shown for a message (gateway.model.overall_state), computed in SQL for searches
_OVERALL_STATE = """(CASE WHEN m.intake_state <> 'QUEUED' THEN m.intake_state ELSE (
    SELECT CASE WHEN count(*) = 0 THEN 'QUEUED'
                WHEN bool_or(d.state = 'DEAD') THEN 'DEAD'
                WHEN bool_or(d.state = 'FAILED') THEN 'FAILED'
                WHEN bool_or(d.state = 'QUEUED') THEN 'QUEUED'
                WHEN bool_or(d.state = 'DELIVERED') THEN 'DELIVERED'
                ELSE 'ACKNOWLEDGED' END
    FROM deliveries AS d WHERE d.message = m.id) END)"""

_DB_NOW = "extract(epoch FROM now())::float8"
"""The database's clock in seconds since the epoch (the start of the statement's transaction): the only clock
leases are set and compared by, so that a node whose clock is wrong neither takes a live lease early nor keeps its
own past its length. Deadlines and next-attempt times stay in the gateway's time."""

_CLAIM_SQL = """
UPDATE deliveries AS d SET lease_owner = $2, lease_until = {db_now} + $5::float8, lease_node = $6
FROM (
    SELECT c.seq FROM deliveries AS c
    WHERE c.destination = $1 AND c.state = 'QUEUED' AND c.next_at <= $3
      AND (c.lease_owner IS NULL OR c.lease_until < {db_now})
      -- the head of its conversation: the first row of it not yet acknowledged (one probe of
      -- deliveries_pending on (destination, conversation), whatever the backlog)
      AND c.seq = (SELECT min(e.seq) FROM deliveries AS e
                   WHERE e.destination = c.destination AND e.conversation = c.conversation
                     AND e.state <> 'ACKNOWLEDGED'{blocking})
    ORDER BY c.seq
    LIMIT $4
    FOR UPDATE SKIP LOCKED) AS claimed
WHERE d.seq = claimed.seq
RETURNING {returning}
"""
_CLAIMS: dict[str, str] = {
    on_dead: _CLAIM_SQL.format(db_now=_DB_NOW, blocking=blocking, returning=_read_columns("d"))
    for on_dead, blocking in {"hold": "", "skip": " AND e.state <> 'DEAD'"}.items()
}
"""The claim per ``on_dead`` policy: with ``skip`` a ``DEAD`` row no longer heads its conversation (the
``<> 'ACKNOWLEDGED'`` term stays as written so that ``deliveries_pending`` serves the probe)."""

_DEAD_NODES = (
    "SELECT n.id FROM nodes AS n WHERE NOT EXISTS (SELECT 1 FROM pg_stat_activity AS a"
    " WHERE a.pid = n.pid AND a.backend_start = n.backend_start)"
    " AND (n.seen_at IS NULL OR n.seen_at < clock_timestamp() - make_interval(secs => coalesce(n.timeout, 0)))"
)
"""Nodes dead by the rule of the module docstring: their listening session is gone and their heartbeat is older
than their timeout by the database clock (a node that never wrote one: its session alone)."""


@dataclass
class _Tx:
    """What the writes of one transaction leave for its end: delivery and transition rows (inserted
    together in one statement, in the order the writes were made), journal entries and notifications."""

    deliveries: list[Delivery] = field(default_factory=list)
    transitions: list[tuple[str, Transition]] = field(default_factory=list)
    journal: list[tuple[float, str, str, str | None, str]] = field(default_factory=list)
    notify: set[str] = field(default_factory=set)

    def add_transitions(self, message: str, steps: Sequence[Transition]) -> None:
        self.transitions.extend((message, t) for t in steps)


_Op = Callable[[_Conn, _Tx], Awaitable[Any]]


_ROWS = """
WITH d AS (
    INSERT INTO deliveries (message, destination, conversation, sender, document_type, reference, state, attempts,
                            queued_at, deadline, next_at, content_type, on_behalf_of)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                         $8::int[], $9::float8[], $10::float8[], $11::float8[], $13::text[], $22::text[])
    RETURNING seq, message, destination),
p AS (
    INSERT INTO delivery_payloads (delivery, data)
    SELECT d.seq, u.data FROM d JOIN unnest($1::text[], $2::text[], $12::bytea[]) AS u (message, destination, data)
        USING (message, destination) WHERE u.data IS NOT NULL),
t AS (
    INSERT INTO transitions (message, destination, from_state, to_state, at, code, detail)
    SELECT * FROM unnest($14::text[], $15::text[], $16::text[], $17::text[], $18::float8[], $19::text[], $20::text[]))
SELECT h.seq, h.hash FROM journal_head($21::bigint) AS h WHERE $21::bigint IS NOT NULL
"""
"""The rows a transaction's writes left (deliveries, their payloads matched by (message, destination), transitions)
in one round trip, which also takes the journal lock and reads the journal's head when there are entries to chain
(``$21``: the lock key, or NULL; no row: the journal is empty, or there was nothing to chain). ``$22``, the
deliveries' enterprises, comes last because that column was added last."""

_JOURNAL = """
WITH j AS (
    INSERT INTO journal (seq, at, kind, message, destination, digest, prev, hash)
    SELECT * FROM unnest($1::bigint[], $2::float8[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                         $8::text[]))
SELECT pg_notify($9, $10) WHERE $10::text IS NOT NULL
"""
"""The chained journal entries and the notification of the transaction, in one round trip."""


def _row_arguments(tx: _Tx, lock: int | None) -> tuple[Any, ...]:
    ds, ts = tx.deliveries, tx.transitions
    return (
        [d.message_id for d in ds],
        [d.destination for d in ds],
        [d.conversation for d in ds],
        [d.sender for d in ds],
        [d.document_type for d in ds],
        [d.reference for d in ds],
        [d.state.value for d in ds],
        [d.attempts for d in ds],
        [d.queued_at for d in ds],
        [d.deadline for d in ds],
        [d.next_attempt_at for d in ds],
        [_inline(d.body) for d in ds],
        [d.content_type for d in ds],
        [m for m, _ in ts],
        [t.destination for _, t in ts],
        [t.from_state.value if t.from_state else None for _, t in ts],
        [t.to_state.value for _, t in ts],
        [t.at for _, t in ts],
        [t.code for _, t in ts],
        [t.detail for _, t in ts],
        lock,
        [d.on_behalf_of for d in ds],
    )


async def _certificate_event(
    conn: _Conn,
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
    status = certificate_status(event, current)
    await conn.execute(
        "WITH e AS (INSERT INTO certificate_events (issuing_country, number, status, at, message, party, detail)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7))"
        " UPDATE certificates SET status = $8, updated_at = $4"
        " WHERE issuing_country = $1 AND number = $2 AND $8::text IS NOT NULL",
        *key,
        event,
        at,
        message,
        party,
        _dumps(detail),
        status,
    )


async def _certificate_row(conn: _Conn, act: CertificateAct, sender: str) -> tuple[str, str] | None:
    """The issuer and status of the certificate ``act`` names, locked for this transaction; raises the act's
    :func:`certificate_refusal` before anything is written."""
    row = await conn.fetchrow(
        "SELECT issuer, status FROM certificates WHERE issuing_country = $1 AND number = $2 FOR UPDATE",
        act.issuing_country,
        act.number,
    )
    delivered_to: frozenset[str] = frozenset()
    if row is not None and act.action in NOTIFIER_ACTS:
        delivered_to = frozenset(
            r["destination"]
            for r in await conn.fetch(
                "SELECT DISTINCT d.destination FROM deliveries AS d JOIN certificate_events AS e"
                " ON e.message = d.message WHERE e.issuing_country = $1 AND e.number = $2"
                " AND e.status IN ('issued', 'amended')",
                act.issuing_country,
                act.number,
            )
        )
    refusal = certificate_refusal(act, sender, row["issuer"] if row else None, delivered_to)
    if refusal is not None:
        raise refusal
    return (row["issuer"], row["status"]) if row else None


async def _certificate_act(conn: _Conn, act: CertificateAct, row: tuple[str, str] | None, message: Message) -> None:
    """Record ``act`` of the accepted ``message`` on the certificate in ``row`` (``None``: a new one)."""
    key = (act.issuing_country, act.number)
    sender = message.envelope.sender
    at = message.history[-1].at
    current = row[1] if row else None
    if row is None:
        inserted = await conn.fetchval(
            "INSERT INTO certificates (issuing_country, number, issuer, status, updated_at)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING issuer",
            *key,
            sender,
            act.action,
            at,
        )
        if inserted is None:
            current = act.action  # issued by a concurrent submission of the same party a moment ago
    await _certificate_event(
        conn, key, act.action, current, at=at, message=message.id, party=sender, detail=dict(act.detail)
    )


async def _reference_lock(conn: _Conn, version: ReferenceVersion) -> None:
    """Take the lock of ``version``'s list (an advisory lock held to the end of the transaction: it serialises
    the numbering of one list across nodes), then raise its :func:`ownership_refusal`, if any, before anything
    is written."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('nswgw-reference:' || $1))", version.name)
    owner = await conn.fetchval(
        "SELECT owner FROM reference_versions WHERE name = $1 ORDER BY version DESC LIMIT 1", version.name
    )
    refusal = ownership_refusal(version, owner)
    if refusal is not None:
        raise refusal


async def _disclosures_insert(conn: _Conn, tx: _Tx, disclosures: Sequence[Disclosure]) -> None:
    """Each disclosure of an accepted message and its ``DISCLOSED`` journal entry (after the ``ACCEPTED`` one)."""
    if not disclosures:
        return
    rows = [disclosure_rows.insert_values(d) for d in disclosures]
    await conn.executemany(disclosure_rows.INSERT.format(marks="$1, $2, $3, $4, $5"), rows)
    for d, values in zip(disclosures, rows, strict=True):
        tx.journal.append((d.at, DISCLOSED, d.message_id, d.destination, payload_digest(values[-1])))


async def _reference_insert(conn: _Conn, version: ReferenceVersion) -> ReferenceVersion:
    """Store ``version`` as the next of its list, under :func:`_reference_lock`, or raise its
    :func:`numbering_refusal` before anything is written."""
    number = await conn.fetchval(
        "SELECT coalesce(max(version), 0) + 1 FROM reference_versions WHERE name = $1", version.name
    )
    stale = numbering_refusal(version, int(number))
    if stale is not None:
        raise stale
    seq = await conn.fetchval(
        "INSERT INTO reference_versions (name, version, owner, purpose, effective_from, entries, digest,"
        " publisher, via, message, published_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        " RETURNING seq",
        *reference_values(version, number),
    )
    return version.numbered(int(number), int(seq))


async def _certificate_delivered(conn: _Conn, d: Delivery) -> None:
    """A ``delivered`` event for the certificate the acknowledged delivery ``d``'s message issued or amended."""
    rows = await conn.fetch(
        "SELECT e.issuing_country, e.number, c.status FROM certificate_events AS e JOIN certificates AS c"
        " ON c.issuing_country = e.issuing_country AND c.number = e.number"
        " WHERE e.message = $1 AND e.status IN ('issued', 'amended') FOR UPDATE OF c",
        d.message_id,
    )
    for country, number, status in rows:
        await _certificate_event(
            conn,
            (country, number),
            "delivered",
            status,
            at=d.history[-1].at,
            message=d.message_id,
            party=d.destination,
            detail={},
        )


async def _record(conn: _Conn, tx: _Tx, d: Delivery, owner: str | None) -> None:
    """Compare-and-set one delivery. Raises InvalidTransition *before* writing anything."""
    if not d.history:
        raise InvalidTransition("nothing to record: the delivery has no new transition", field="history")
    expected = d.history[0].from_state
    if expected is None:
        raise InvalidTransition("a delivery cannot be recorded from no state", field="history")
    # unleased: never leased, or its lease has run out by the database clock
    lease_clause = "lease_owner = $11" if owner is not None else f"(lease_owner IS NULL OR lease_until < {_DB_NOW})"
    status = await conn.execute(
        "UPDATE deliveries SET state = $1, attempts = $2, next_at = $3, queued_at = $4, deadline = $5,"
        " last_error = $6, receipt = $7, lease_owner = NULL, lease_until = NULL, lease_node = NULL"
        f" WHERE message = $8 AND destination = $9 AND state = $10 AND {lease_clause}",
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
        *((owner,) if owner is not None else ()),
    )
    if status != "UPDATE 1":
        raise InvalidTransition(
            f"delivery {d.message_id}→{d.destination} is no longer {expected.value} and leased to {owner}",
            field="state",
        )
    tx.add_transitions(d.message_id, d.history)
    if d.state is State.ACKNOWLEDGED:
        tx.journal.append(
            (d.history[-1].at, DELIVERED, d.message_id, d.destination, payload_digest(d.payload + (d.receipt or b"")))
        )
        await _certificate_delivered(conn, d)
    if expected is State.DEAD and d.state is State.QUEUED:  # a replay: wake the nodes
        tx.notify.add(d.destination)


class PostgresStore(Store):
    """:class:`~gateway.store.base.Store` on a PostgreSQL database shared by any number of gateway nodes."""

    WAKE_COALESCE = 0.02
    """Seconds over which notifications from other nodes are gathered into one wake-up of the workers."""
    RECONNECT_INITIAL = 0.1
    """Seconds before the first attempt to reconnect the listening connection; doubled after each failed attempt,
    up to :attr:`RECONNECT_MAX`, each wait drawn between half of it and all of it (jitter)."""
    RECONNECT_MAX = 5.0
    HEARTBEATS_PER_TIMEOUT = 6
    """Heartbeats a node writes per ``node_timeout`` (every 5 s with the default 30 s)."""

    def __init__(
        self,
        dsn: str,
        *,
        pool_size: int = 10,
        writers: int = 2,
        max_batch: int = 256,
        connect_timeout: float = 10.0,
        node_name: str = "nswgw",
        node_timeout: float = 30.0,
        journal: str = "sealed",
    ) -> None:
        """``node_timeout``: seconds without a heartbeat (by the database clock) after which this node, once its
        session is gone too, is dead to the others; longer than any network cut the nodes should live through.
        ``journal``: ``sealed`` (entries chained after commit, :mod:`gateway.store.pg_journal`) or ``inline``
        (chained at commit under the journal lock)."""
        if not dsn.startswith(("postgresql://", "postgres://")):
            raise ConfigError(f"not a PostgreSQL connection string: {redact(dsn)!r}", field="store.dsn")
        if journal not in ("sealed", "inline"):
            raise ConfigError(f'journal must be "sealed" or "inline", not {journal!r}', field="store.journal")
        if pool_size < writers + 1:
            raise ConfigError(f"pool_size must be at least writers + 1 ({writers + 1})", field="store.pool_size")
        self.dsn = dsn
        self.name = redact(dsn)
        self._pool_size = pool_size
        self._writers = writers
        self._max_batch = max_batch
        self._timeout = connect_timeout
        self._node_name = node_name
        self._node_timeout = node_timeout
        self._started_at = 0.0
        self._attention = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self._pool: asyncpg.Pool | None = None
        self._listener: asyncpg.Connection | None = None
        self._node: int | None = None
        self._journal_key = 0
        self._inline_journal = journal == "inline"
        self._sealer = pg_journal.Sealer(self._require_pool, lambda: self._journal_key, self.name)
        self._channel = ""
        self._pending: list[tuple[_Op, asyncio.Future[Any]]] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._tasks: list[asyncio.Task[None]] = []
        self._subscribers: list[Callable[[tuple[str, ...]], None]] = []
        self._woken: set[str] = set()
        self._wake_timer: asyncio.TimerHandle | None = None
        self.batches = 0
        self.operations = 0

    # ------------------------------------------------------------------ lifecycle

    @_guarded
    async def open(self) -> None:
        if self._pool is not None:
            return
        pool = await asyncpg.create_pool(
            self.dsn,
            min_size=1,
            max_size=self._pool_size,
            timeout=self._timeout,
            server_settings={"application_name": self._node_name[:63]},
            reset=_no_reset,
        )
        try:
            async with pool.acquire() as conn:
                version = await migrations.current_version(conn)
                if version != migrations.LATEST:
                    how = (
                        "run `nswgw db upgrade`"
                        if version < migrations.LATEST
                        else "it is newer than this gateway: upgrade the gateway"
                    )
                    raise StoreSchemaOutdated(
                        f"PostgreSQL store {self.name}: schema version {version}, this gateway needs"
                        f" {migrations.LATEST}; {how}",
                        field="store.dsn",
                        details={"store": self.name, "version": version, "needed": migrations.LATEST},
                    )
                schema = await conn.fetchval("SELECT current_schema()")
                self._journal_key = int(await conn.fetchval("SELECT hashtext('nswgw-journal:' || $1)", schema))
            self._channel = f"nswgw:{schema}"
            self._node, self._started_at = None, time.time()
            listener = await self._listen()
        except BaseException:
            await pool.close()
            raise
        self._pool, self._listener = pool, listener
        self._closing = False
        self._attention.clear()
        self._tasks = [asyncio.create_task(self._writer(), name=f"pg-writer-{i}") for i in range(self._writers)]
        self._sealer.start()
        self._supervisor = asyncio.create_task(self._supervise(), name="pg-listener")

    async def _listen(self) -> asyncpg.Connection:
        """A new listening connection: this node registered under its session (a new id the first time, the same
        id afterwards), its heartbeat written, LISTEN on the schema's channel."""
        conn = await asyncpg.connect(
            self.dsn, timeout=self._timeout, server_settings={"application_name": self._node_name[:63]}
        )
        try:
            await self._register(conn)
            await asyncio.wait_for(conn.add_listener(self._channel, self._notified), self._timeout)
            conn.add_termination_listener(self._listener_lost)
        except BaseException:
            conn.terminate()
            raise
        return conn

    async def _register(self, conn: asyncpg.Connection) -> None:
        session = (
            "SELECT {id}pid, backend_start, $1, $2, clock_timestamp(), $3 FROM pg_stat_activity"
            " WHERE pid = pg_backend_pid()"
        )
        args = (self._started_at, self._node_name, self._node_timeout)
        if self._node is None:
            self._node = int(
                await conn.fetchval(
                    "INSERT INTO nodes (pid, backend_start, started_at, name, seen_at, timeout)"
                    f" {session.format(id='')} RETURNING id",
                    *args,
                    timeout=self._timeout,
                )
            )
            return
        # the same id again, now naming the new session (the row is back if a node took this one for dead)
        await conn.execute(
            "INSERT INTO nodes (id, pid, backend_start, started_at, name, seen_at, timeout) OVERRIDING SYSTEM VALUE"
            f" {session.format(id='$4::bigint, ')} ON CONFLICT (id) DO UPDATE SET pid = excluded.pid,"
            " backend_start = excluded.backend_start, seen_at = excluded.seen_at",
            *args,
            self._node,
            timeout=self._timeout,
        )

    def _listener_lost(self, conn: object) -> None:
        if conn is self._listener:
            self._attention.set()

    async def _supervise(self) -> None:
        """Keep this node listening and live: a heartbeat every ``node_timeout / HEARTBEATS_PER_TIMEOUT`` seconds
        on the listening connection; when that connection is lost (its session terminated, the network cut, the
        server restarted) or a heartbeat fails, reconnect with capped exponential backoff and jitter under the
        same node id, LISTEN again, and wake every worker once (what was notified meanwhile is lost)."""
        interval = self._node_timeout / self.HEARTBEATS_PER_TIMEOUT
        while not self._closing:
            conn = self._listener
            if conn is not None and not conn.is_closed():
                try:
                    beat = await conn.execute(
                        "UPDATE nodes SET seen_at = clock_timestamp() WHERE id = $1", self._node, timeout=self._timeout
                    )
                    if beat == "UPDATE 0":  # taken for dead by another node (no heartbeat for node_timeout)
                        log.warning(
                            "PostgreSQL store %s: node %s was taken for dead; registering again", self.name, self._node
                        )
                        await self._register(conn)
                except Exception as exc:  # noqa: BLE001 - any failure of the heartbeat: the connection is replaced
                    log.debug("PostgreSQL store %s: heartbeat of node %s failed: %r", self.name, self._node, exc)
                    conn.terminate()
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._attention.wait(), interval)
                self._attention.clear()
                continue
            self._listener = None
            if conn is not None:
                conn.terminate()
            log.warning("PostgreSQL store %s: node %s lost its LISTEN connection; reconnecting", self.name, self._node)
            await self._reconnect()

    async def _reconnect(self) -> None:
        delay = self.RECONNECT_INITIAL
        while not self._closing:
            with contextlib.suppress(TimeoutError):  # woken early by close()
                await asyncio.wait_for(self._attention.wait(), delay * random.uniform(0.5, 1.0))
            self._attention.clear()
            if self._closing:
                return
            try:
                conn = await asyncio.wait_for(self._listen(), 3 * self._timeout)
            except Exception as exc:  # noqa: BLE001 - the database is still out of reach: try again later
                log.debug("PostgreSQL store %s: node %s cannot reconnect yet: %r", self.name, self._node, exc)
                delay = min(2 * delay, self.RECONNECT_MAX)
                continue
            if self._closing:
                conn.terminate()
                return
            self._listener = conn
            log.info(
                "PostgreSQL store %s: node %s is listening again; waking every worker to look for work notified"
                " meanwhile",
                self.name,
                self._node,
            )
            for callback in self._subscribers:
                callback(())
            return

    async def close(self) -> None:
        pool = self._pool
        if pool is None:
            return
        self._closing = True
        self._wake.set()
        if self._wake_timer is not None:
            self._wake_timer.cancel()
            self._wake_timer = None
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None:  # ends at once, or within a heartbeat; a reconnect attempt is abandoned
            self._attention.set()
            _, running = await asyncio.wait({supervisor}, timeout=1.0)
            for task in running:
                task.cancel()
            await asyncio.gather(supervisor, return_exceptions=True)
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self._sealer.stop(self._timeout)
        listener = self._listener
        self._pool = self._listener = None
        if listener is not None and not listener.is_closed():
            listener.remove_termination_listener(self._listener_lost)
            try:
                await asyncio.wait_for(listener.remove_listener(self._channel, self._notified), self._timeout)
                await listener.execute("DELETE FROM nodes WHERE id = $1", self._node, timeout=self._timeout)
            except Exception:  # noqa: BLE001 - the database is gone: nothing to tidy (the row dies by its rule)
                pass
            await _close_quietly(listener)
        elif listener is not None:
            listener.terminate()
        try:
            await asyncio.wait_for(pool.close(), 10)
        except Exception:  # noqa: BLE001 - a pool that does not close in time is terminated
            pool.terminate()

    def on_work(self, callback: Callable[[tuple[str, ...]], None]) -> None:
        self._subscribers.append(callback)

    def _notified(self, conn: Any, pid: int, channel: str, payload: object) -> None:
        node, _, names = str(payload).partition(":")
        if node == str(self._node):  # our own workers were woken by our broker already
            return
        # coalesce: under load every accept on every node notifies; wake the workers at most once per
        # WAKE_COALESCE seconds (a busy node claims on its own; this is for idle ones)
        self._woken.update(d for d in names.split(",") if d)
        if self._wake_timer is None:
            self._wake_timer = asyncio.get_running_loop().call_later(self.WAKE_COALESCE, self._wake_workers)

    def _wake_workers(self) -> None:
        self._wake_timer = None
        destinations, self._woken = tuple(sorted(self._woken)), set()
        for callback in self._subscribers:
            callback(destinations)

    @property
    def node(self) -> int | None:
        """This node's id in the ``nodes`` table."""
        return self._node

    @property
    def commit_stats(self) -> tuple[int, int]:
        """(write transactions committed, writes in them): the group-commit ratio."""
        return self.batches, self.operations

    def _require_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise GatewayError(f"the PostgreSQL store {self.name} is not open", field="store")
        return self._pool

    # ------------------------------------------------------------------ group commit

    async def _write(self, op: _Op) -> Any:
        self._require_pool()
        if self._closing:
            raise GatewayError(f"the PostgreSQL store {self.name} is closing", field="store")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((op, future))
        self._wake.set()
        return await future

    async def _writer(self) -> None:
        while True:
            if not self._pending:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            await self._run_batch(batch)

    async def _run_batch(self, batch: list[tuple[_Op, asyncio.Future[Any]]]) -> None:
        try:
            results = await self._transaction(batch)
        except Exception as exc:  # noqa: BLE001 - sorted below: retried alone, or translated at the boundary
            if len(batch) > 1 and not isinstance(exc, _UNAVAILABLE):
                for item in batch:  # one write broke the transaction (or a deadlock): give each its own
                    await self._run_batch([item])
                return
            try:
                if not isinstance(exc, _RETRY_ALONE):
                    raise
                results = await self._transaction(batch)  # a deadlock victim: once more, alone
            except Exception as final:  # noqa: BLE001 - translated at the boundary for every caller of the batch
                failed = translate(final, self.name)
                results = [(future, None, failed) for _, future in batch]
        for future, value, error in results:
            if future.cancelled():
                continue
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(value)

    async def _transaction(
        self, batch: list[tuple[_Op, asyncio.Future[Any]]]
    ) -> list[tuple[asyncio.Future[Any], Any, BaseException | None]]:
        pool = self._require_pool()
        results: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        tx = _Tx()
        async with pool.acquire() as conn, conn.transaction():
            for op, future in batch:
                try:
                    results.append((future, await op(conn, tx), None))
                except NswError as exc:  # by contract the op wrote nothing
                    results.append((future, None, exc))
            await self._finish(conn, tx)
        if tx.journal and not self._inline_journal:
            self._sealer.committed()
        self.batches += 1
        self.operations += len(batch)
        return results

    async def _finish(self, conn: _Conn, tx: _Tx) -> None:
        """End of a transaction, in at most two round trips before COMMIT: the rows its writes left; then its
        journal entries, pending (sealed after COMMIT, :mod:`gateway.store.pg_journal`), with the notification. With
        the ``inline`` journal the first also takes the journal lock (held to COMMIT, so appends from every node form
        one chain) and reads the journal's head under it, and the second inserts the entries chained. A large
        delivery payload adds its ``COPY`` (and the lookup of its row) between the two."""
        lock = self._journal_key if tx.journal and self._inline_journal else None
        row = None
        if tx.deliveries or tx.transitions or lock is not None:
            row = await conn.fetchrow(_ROWS, *_row_arguments(tx, lock))
        for d in tx.deliveries:
            if len(d.body) > _COPY_CHUNK:
                seq = await conn.fetchval(
                    "SELECT seq FROM deliveries WHERE message = $1 AND destination = $2", d.message_id, d.destination
                )
                await _copy_payload(conn, "delivery_payloads", "delivery", seq, d.body)
        notify = f"{self._node}:" + ",".join(sorted(tx.notify)) if tx.notify else None
        if not tx.journal:
            if notify is not None:
                await conn.execute("SELECT pg_notify($1, $2)", self._channel, notify)
            return
        if not self._inline_journal:
            await conn.execute(pg_journal.PENDING, *pg_journal.pending_arguments(tx.journal, self._channel, notify))
            return
        entries = pg_journal.chain_pending((row["seq"], row["hash"]) if row else (0, GENESIS), tx.journal)
        await conn.execute(_JOURNAL, *pg_journal.entry_columns(entries), self._channel, notify)

    # ------------------------------------------------------------------ writes

    @_guarded
    async def recover(self, *, now: float) -> int:
        """Release the leases that no live node holds (called once at start): those run out by the database clock,
        those of nodes dead by the rule of the module docstring (or whose row is gone), and any taken under this
        node before it started its workers; forget the dead nodes. A live node's lease is never touched, whatever
        ``now`` (this node's clock) says."""
        pool = self._require_pool()
        async with pool.acquire() as conn, conn.transaction():
            status = await conn.execute(
                "UPDATE deliveries SET lease_owner = NULL, lease_until = NULL, lease_node = NULL"
                f" WHERE state = 'QUEUED' AND lease_owner IS NOT NULL AND (lease_node = $1 OR lease_until < {_DB_NOW}"
                f" OR lease_node IN ({_DEAD_NODES}) OR lease_node NOT IN (SELECT id FROM nodes))",
                self._node,
            )
            await conn.execute(f"DELETE FROM nodes WHERE id <> $1 AND id IN ({_DEAD_NODES})", self._node)
        return int(status.split()[-1])

    @_guarded
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
        act = certificate if message.state is not State.REJECTED else None
        call = ship_call if message.state is not State.REJECTED else None
        version = reference if message.state is not State.REJECTED else None
        indexed = registry if message.state is not State.REJECTED else None

        async def op(conn: _Conn, tx: _Tx) -> tuple[SubmissionAck, bool]:
            row = await _certificate_row(conn, act, env.sender) if act is not None else None
            prepared = await registry_sql.pg_prepare(conn, indexed, message) if indexed is not None else None
            if call is not None:
                await shipcall_sql.pg_check(conn, call)
            if version is not None:
                await _reference_lock(conn, version)
            inserted = await conn.fetchval(
                "WITH m AS (INSERT INTO messages (id, sender, message_id, document_type, conversation, reference,"
                " destination, procedure, format, intake_state, received_at, error, ack, content_digest,"
                " payload_size, payload_sha256)"
                " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$15,$16,$17)"
                " ON CONFLICT DO NOTHING RETURNING id),"
                " p AS (INSERT INTO message_payloads (message, data) SELECT id, $14::bytea FROM m"
                " WHERE $14::bytea IS NOT NULL)"
                " SELECT id FROM m",
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
                message.received_at,
                _dumps(message.error),
                _dumps(ack.to_dict()),
                _inline(data),
                message.content_digest,
                *whole,
            )
            if inserted is None:
                # either unique key: (sender, message_id) first (a resubmission), then (sender, content_digest)
                original = await conn.fetchval(
                    "SELECT ack FROM messages WHERE sender = $1 AND (message_id = $2 OR content_digest = $3)"
                    " ORDER BY message_id = $2 DESC LIMIT 1",
                    env.sender,
                    env.message_id,
                    message.content_digest,
                )
                if original is None:
                    raise GatewayError(
                        f"message {message.id} conflicts with a stored row that is not visible", field="store"
                    )
                return SubmissionAck.from_dict(json.loads(original)), False
            if len(data) > _COPY_CHUNK:
                await _copy_payload(conn, "message_payloads", "message", message.id, data)
            tx.add_transitions(message.id, message.history)
            for d in deliveries:
                tx.add_transitions(message.id, d.history)
            tx.deliveries.extend(deliveries)
            tx.notify.update(d.destination for d in deliveries)
            if act is not None:
                await _certificate_act(conn, act, row, message)
            if indexed is not None and prepared is not None:
                await registry_sql.pg_apply(conn, indexed, prepared, message)
            if call is not None:
                await shipcall_sql.pg_write(conn, call)
            if version is not None:
                await _reference_insert(conn, version)
            if message.state is not State.REJECTED:
                tx.journal.append((message.history[-1].at, ACCEPTED, message.id, None, payload_digest(data)))
                await _disclosures_insert(conn, tx, disclosures)
            return ack, True

        return await self._write(op)

    @_guarded
    async def claim(
        self, destination: str, *, owner: str, limit: int, now: float, lease: float, on_dead: OnDead = "hold"
    ) -> list[Delivery]:
        pool = self._require_pool()
        rows = await pool.fetch(_CLAIMS[on_dead], destination, owner, now, limit, lease, self._node)
        return sorted([_delivery(await _with_payload(pool, r)) for r in rows], key=lambda d: d.seq or 0)

    @_guarded
    async def record(self, delivery: Delivery, *, owner: str | None, now: float) -> None:
        async def op(conn: _Conn, tx: _Tx) -> None:
            await _record(conn, tx, delivery, owner)

        await self._write(op)

    @_guarded
    async def expire(
        self, destination: str, *, now: float, code: str, detail: str, on_dead: OnDead = "hold"
    ) -> list[Delivery]:
        from gateway.errors import ERROR_CODES

        error_cls = ERROR_CODES[code]

        async def op(conn: _Conn, tx: _Tx) -> list[Delivery]:
            rows = await conn.fetch(
                f"SELECT {_READ_COLUMNS} FROM deliveries WHERE destination = $1 AND state = 'QUEUED'"
                f" AND deadline <= $2 AND (lease_owner IS NULL OR lease_until < {_DB_NOW}) ORDER BY seq"
                " FOR UPDATE SKIP LOCKED",
                destination,
                now,
            )
            expired: list[Delivery] = []
            for row in rows:
                d = _delivery(await _with_payload(conn, row))
                head = None
                if on_dead == "hold":
                    head = await conn.fetchval(
                        "SELECT message FROM deliveries WHERE destination = $1 AND conversation = $2 AND seq < $3"
                        " AND state = 'DEAD' ORDER BY seq LIMIT 1",
                        destination,
                        d.conversation,
                        d.seq,
                    )
                error = error_cls(detail, field=destination) if head is None else blocked_by(head, d, detail)
                dead = d.dead(error, at=now)
                try:
                    await _record(conn, tx, dead, None)
                except InvalidTransition:
                    continue
                expired.append(dead)
            return expired

        return await self._write(op)

    @_guarded
    async def waiting_behind(self, delivery: Delivery) -> int:
        async with self._require_pool().acquire() as conn:
            n = await conn.fetchval(
                "SELECT count(*) FROM deliveries WHERE destination = $1 AND conversation = $2 AND seq > $3"
                " AND state <> 'ACKNOWLEDGED' AND state <> 'DEAD'",
                delivery.destination,
                delivery.conversation,
                delivery.seq or 0,
            )
        return int(n)

    # ------------------------------------------------------------------ reads

    @_guarded
    async def get(self, message_id: str) -> MessageRecord | None:
        async with self._require_pool().acquire() as conn:
            return await _load_record(conn, message_id)

    @_guarded
    async def ship_call(self, reference: str) -> ShipCallRecord | None:
        async with self._require_pool().acquire() as conn:
            return await shipcall_sql.pg_read(conn, reference)

    @_guarded
    async def registry_find(self, query: RegistryQuery) -> list[RegistryDocument]:
        async with self._require_pool().acquire() as conn:
            return await registry_sql.pg_find(conn, query)

    @_guarded
    async def registry_document(
        self, doc_type: str, number: str
    ) -> tuple[RegistryDocument, list[registry_sql.DrawRecord]] | None:
        async with self._require_pool().acquire() as conn:
            return await registry_sql.pg_document(conn, doc_type, number)

    @_guarded
    async def registry_candidates(self, holder: str, hs_codes: Sequence[str]) -> list[list[RegistryDocument]]:
        async with self._require_pool().acquire() as conn:
            return await registry_sql.pg_candidates(conn, holder, hs_codes)

    @_guarded
    async def certificate(self, issuing_country: str, number: str) -> CertificateRecord | None:
        async with self._require_pool().acquire() as conn:
            row = await conn.fetchrow(
                "SELECT issuer, status FROM certificates WHERE issuing_country = $1 AND number = $2",
                issuing_country,
                number,
            )
            if row is None:
                return None
            events = await conn.fetch(
                "SELECT status, at, message, party, detail FROM certificate_events"
                " WHERE issuing_country = $1 AND number = $2 ORDER BY seq",
                issuing_country,
                number,
            )
        history = tuple(
            CertificateEvent(e["status"], e["at"], e["message"], e["party"], json.loads(e["detail"])) for e in events
        )
        return CertificateRecord(issuing_country, number, row["issuer"], row["status"], history)

    @_guarded
    async def certificates(self, query: CertificateQuery) -> list[CertificateSummary]:
        sql, params = certificate_query_sql(query, lambda n: f"${n}")
        async with self._require_pool().acquire() as conn:
            rows = await conn.fetch(sql, *params)
        return [CertificateSummary(*row) for row in rows]

    @_guarded
    async def search(self, query: MessageQuery) -> list[MessageRecord]:
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("m.sender", query.sender),
            ("m.document_type", query.document_type),
            (_OVERALL_STATE, query.state.value if query.state else None),
            ("m.conversation", query.conversation),
            ("m.reference", query.reference),
            ("m.received_at >=", query.since),
            ("m.received_at <", query.until),
        ):
            if value is not None:
                params.append(value)
                op = "" if column.endswith(("=", "<")) else " ="
                clauses.append(f"{column}{op} ${len(params)}")
        if query.after is not None:
            params += [query.after[0], query.after[1]]
            n = len(params)
            clauses.append(f"(m.received_at < ${n - 1} OR (m.received_at = ${n - 1} AND m.id > ${n}))")
        if query.destination is not None:
            params.append(query.destination)
            clauses.append(
                f"EXISTS (SELECT 1 FROM deliveries AS d WHERE d.message = m.id AND d.destination = ${len(params)})"
            )
        if query.code is not None:
            params.append(query.code)
            n = len(params)
            clauses.append(
                f"((m.error::jsonb ->> 'code') = ${n} OR EXISTS (SELECT 1 FROM deliveries AS d"
                f" WHERE d.message = m.id AND (d.last_error::jsonb ->> 'code') = ${n}))"
            )
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        params.append(max(1, min(query.limit, 1000)))
        async with self._require_pool().acquire() as conn:
            ids = [
                r[0]
                for r in await conn.fetch(
                    f"SELECT m.id FROM messages AS m{where} ORDER BY m.received_at DESC, m.id LIMIT ${len(params)}",
                    *params,
                )
            ]
            return [rec for i in ids if (rec := await _load_record(conn, i)) is not None]

    @_guarded
    async def dead_letters(
        self, *, destination: str | None = None, message_id: str | None = None, limit: int = 1000
    ) -> list[Delivery]:
        clauses: list[str] = ["state = 'DEAD'"]
        params: list[Any] = []
        if destination is not None:
            params.append(destination)
            clauses.append(f"destination = ${len(params)}")
        if message_id is not None:
            params.append(message_id)
            clauses.append(f"message = ${len(params)}")
        params.append(limit)
        rows = await self._require_pool().fetch(
            f"SELECT {_READ_COLUMNS} FROM deliveries WHERE {' AND '.join(clauses)} ORDER BY seq LIMIT ${len(params)}",
            *params,
        )
        return [_delivery(await _with_payload(self._require_pool(), r)) for r in rows]

    @_guarded
    async def journal(self, *, after: int = 0, limit: int = 10_000) -> list[JournalEntry]:
        await self._sealer.now()
        rows = await self._require_pool().fetch(
            "SELECT seq, at, kind, message, destination, digest, prev, hash FROM journal WHERE seq > $1"
            " ORDER BY seq LIMIT $2",
            after,
            limit,
        )
        return [JournalEntry(*tuple(r)) for r in rows]

    @_guarded
    async def journal_head(self) -> JournalEntry | None:
        await self._sealer.now()
        row = await self._require_pool().fetchrow(
            "SELECT seq, at, kind, message, destination, digest, prev, hash FROM journal ORDER BY seq DESC LIMIT 1"
        )
        return None if row is None else JournalEntry(*tuple(row))

    @_guarded
    async def journal_base(self) -> JournalBase:
        row = await self._require_pool().fetchrow("SELECT seq, hash, manifest_sha256 FROM journal_base WHERE id = 1")
        return JournalBase(0, GENESIS, "") if row is None else JournalBase(*tuple(row))

    @_guarded
    async def timestamp_add(self, stamp: StoredTimestamp) -> None:
        await self._require_pool().execute(
            "INSERT INTO journal_timestamps (seq, entry_hash, token, gen_time, tsa_serial) VALUES ($1, $2, $3, $4, $5)",
            stamp.seq,
            stamp.entry_hash,
            stamp.token,
            stamp.gen_time,
            stamp.tsa_serial,
        )

    @_guarded
    async def timestamps(self, *, since_seq: int = 0) -> list[StoredTimestamp]:
        rows = await self._require_pool().fetch(
            "SELECT seq, entry_hash, token, gen_time, tsa_serial FROM journal_timestamps WHERE seq >= $1"
            " ORDER BY seq, id",
            since_seq,
        )
        return [StoredTimestamp(r[0], r[1], bytes(r[2]), float(r[3]), r[4]) for r in rows]

    @_guarded
    async def reference_add(self, version: ReferenceVersion) -> ReferenceVersion:
        async def op(conn: _Conn, tx: _Tx) -> ReferenceVersion:
            await _reference_lock(conn, version)
            return await _reference_insert(conn, version)

        result: ReferenceVersion = await self._write(op)
        return result

    @_guarded
    async def reference_versions(self, name: str | None = None) -> list[ReferenceVersion]:
        sql = (
            "SELECT seq, name, version, owner, purpose, effective_from, entries, digest, publisher, via, message,"
            " published_at FROM reference_versions"
        )
        pool = self._require_pool()
        rows = (
            await pool.fetch(sql + " ORDER BY seq")
            if name is None
            else await pool.fetch(sql + " WHERE name = $1 ORDER BY seq", name)
        )
        return [reference_row(tuple(r)) for r in rows]

    @_guarded
    async def reference_head(self) -> int:
        return int(await self._require_pool().fetchval("SELECT coalesce(max(seq), 0) FROM reference_versions"))

    @_guarded
    async def disclosures(self, query: DisclosureQuery) -> list[StoredDisclosure]:
        sql, params = disclosure_rows.disclosure_query_sql(query, lambda n: f"${n}")
        await self._sealer.now()  # each committed disclosure's entry chained, so that its seq is known
        return disclosure_rows.stored(await self._require_pool().fetch(sql, *params))

    @_guarded
    async def finished_messages(self, *, received_before: float, limit: int) -> list[tuple[str, str, float]]:
        rows = await self._require_pool().fetch(
            "SELECT m.id, m.document_type, m.received_at FROM messages m WHERE m.received_at < $1"
            " AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.message = m.id"
            " AND (d.state NOT IN ('ACKNOWLEDGED', 'DEAD') OR d.lease_owner IS NOT NULL))"
            " ORDER BY m.received_at LIMIT $2",
            received_before,
            limit,
        )
        return [(r[0], r[1], r[2]) for r in rows]

    @_guarded
    async def message_payload(self, message_id: str) -> bytes | None:
        pool = self._require_pool()
        row = await pool.fetchrow(f"SELECT {_INLINE_DATA} FROM message_payloads AS p WHERE p.message = $1", message_id)
        if row is None:
            return None
        if row[0] is not None:
            return bytes(row[0])
        return await _read_payload(pool, "message_payloads", "message", message_id)

    @_guarded
    async def prune_archived(self, message_ids: Sequence[str], *, base: JournalBase) -> int:
        ids = list(message_ids)

        async def op(conn: _Conn, tx: _Tx) -> int:
            await conn.execute("DELETE FROM transitions WHERE message = ANY($1::text[])", ids)
            await conn.execute("DELETE FROM deliveries WHERE message = ANY($1::text[])", ids)
            status = await conn.execute("DELETE FROM messages WHERE id = ANY($1::text[])", ids)
            await conn.execute(
                "DELETE FROM operator_actions WHERE id IN (SELECT message FROM journal WHERE kind = $1 AND seq <= $2)",
                OPERATOR,
                base.seq,
            )
            await conn.execute("DELETE FROM journal WHERE seq <= $1", base.seq)
            await conn.execute(
                "INSERT INTO journal_base (id, seq, hash, manifest_sha256) VALUES (1, $1, $2, $3) ON CONFLICT (id)"
                " DO UPDATE SET seq = excluded.seq, hash = excluded.hash, manifest_sha256 = excluded.manifest_sha256",
                base.seq,
                base.hash,
                base.manifest_sha256,
            )
            return int(status.split()[-1])

        return int(await self._write(op))

    @_guarded
    async def evidence_digests(self, entries: Sequence[JournalEntry]) -> dict[int, str | None]:
        if not entries:
            return {}
        rows = await self._require_pool().fetch(
            "SELECT e.seq, CASE WHEN e.kind = $5"
            " THEN (SELECT encode(sha256(m.data), 'hex') FROM message_payloads AS m WHERE m.message = e.message)"
            " WHEN e.kind = $6"
            " THEN (SELECT encode(sha256(a.record), 'hex') FROM operator_actions AS a WHERE a.id = e.message)"
            f" WHEN e.kind = '{DISCLOSED}' THEN (SELECT encode(sha256(x.record), 'hex') FROM disclosures AS x"
            " WHERE x.message = e.message AND x.destination = e.destination)"
            " ELSE (SELECT encode(sha256(p.data || coalesce(d.receipt, ''::bytea)), 'hex') FROM deliveries AS d"
            " JOIN delivery_payloads AS p ON p.delivery = d.seq"
            " WHERE d.message = e.message AND d.destination = e.destination) END"
            " FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[]) AS e(seq, kind, message, destination)",
            [e.seq for e in entries],
            [e.kind for e in entries],
            [e.message_id for e in entries],
            [e.destination for e in entries],
            ACCEPTED,
            OPERATOR,
        )
        return {int(seq): digest for seq, digest in rows}

    @_guarded
    async def record_operator_action(
        self,
        action: OperatorAction,
        *,
        replays: Sequence[Delivery] = (),
        reference: ReferenceVersion | None = None,
    ) -> JournalEntry:
        record = action.record()

        async def op(conn: _Conn, tx: _Tx) -> None:
            # the replays and the record in a savepoint, so that a failed compare-and-set leaves nothing behind
            transitions, journal, notify = len(tx.transitions), len(tx.journal), set(tx.notify)
            try:
                async with conn.transaction():
                    for d in replays:
                        await _record(conn, tx, d, None)
                    if reference is not None:
                        await _reference_lock(conn, reference)
                        await _reference_insert(conn, reference)
                    await conn.execute(
                        "INSERT INTO operator_actions (id, operator, action, at, record) VALUES ($1, $2, $3, $4, $5)",
                        action.id,
                        action.operator,
                        action.action,
                        action.at,
                        record,
                    )
            except BaseException:
                del tx.transitions[transitions:], tx.journal[journal:]
                tx.notify.intersection_update(notify)
                raise
            tx.journal.append((action.at, OPERATOR, action.id, action.destination, payload_digest(record)))

        await self._write(op)
        await self._sealer.now()
        row = await self._require_pool().fetchrow(
            # the literal kind, so that the partial index journal_operator serves it
            f"SELECT seq, at, kind, message, destination, digest, prev, hash FROM journal"
            f" WHERE kind = '{OPERATOR}' AND message = $1",
            action.id,
        )
        if row is None:
            raise GatewayError(f"the journal entry of operator action {action.id} is not visible", field="store")
        return JournalEntry(*tuple(row))

    @_guarded
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
        for clause, value in (("a.operator = ${}", operator), ("a.at >= ${}", since)):
            if value is not None:
                params.append(value)
                clauses.append(clause.format(len(params)))
        if ids is not None:
            params.append(list(ids))
            clauses.append(f"a.id = ANY(${len(params)}::text[])")
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        params.append(max(1, min(limit, 1000)))
        await self._sealer.now()  # each committed action's entry chained, so that its seq is known
        rows = await self._require_pool().fetch(
            f"SELECT a.id, a.record, (SELECT j.seq FROM journal AS j WHERE j.kind = '{OPERATOR}' AND j.message = a.id)"
            f" FROM operator_actions AS a{where} ORDER BY a.at DESC, a.id LIMIT ${len(params)}",
            *params,
        )
        return [RecordedAction(r[0], bytes(r[1]), r[2]) for r in rows]

    async def integrity(self) -> str:
        """Every table read in full, payloads and receipts detoasted: a damaged page or TOAST chunk fails the
        read (PostgreSQL checks page checksums, when the cluster has them, on every read)."""
        try:
            await self._require_pool().fetchval(
                "SELECT (SELECT count(*) FROM messages)"
                " + (SELECT count(*) + coalesce(sum(length(data)), 0) FROM message_payloads)"
                " + (SELECT count(*) + coalesce(sum(coalesce(length(receipt), 0)), 0) FROM deliveries)"
                " + (SELECT count(*) + coalesce(sum(length(data)), 0) FROM delivery_payloads)"
                " + (SELECT count(*) FROM transitions) + (SELECT count(*) FROM journal)"
                " + (SELECT count(*) + coalesce(sum(cardinality(kind)), 0) FROM journal_pending)"
                " + (SELECT count(*) + coalesce(sum(length(value)), 0) FROM adapter_state)"
                " + (SELECT count(*) + coalesce(sum(length(record)), 0) FROM operator_actions)"
            )
        except Exception as exc:  # noqa: BLE001 - translated: a check reports, it does not raise
            return f"failed: {translate(exc, self.name)}"
        return "ok"

    async def health(self) -> dict[str, str]:
        checks: dict[str, str] = {}
        try:
            await self._write(_probe_write)
            checks["write"] = "ok"
        except NswError as exc:
            checks["write"] = f"failed: {exc}"
        except Exception as exc:  # noqa: BLE001 - translated: a check reports, it does not raise
            checks["write"] = f"failed: {translate(exc, self.name)}"
        try:
            pool = self._require_pool()
            await pool.fetchval("SELECT 1")
            checks["integrity"] = "ok"
            row = await pool.fetchrow(
                "SELECT seq, at, kind, message, destination, digest, prev, hash FROM journal ORDER BY seq DESC LIMIT 1"
            )
            checks["journal"] = head_status(JournalEntry(*tuple(row)) if row is not None else None)
        except Exception as exc:  # noqa: BLE001 - translated: a check reports, it does not raise
            failed = f"failed: {translate(exc, self.name)}"
            checks.setdefault("integrity", failed)
            checks["journal"] = failed
        return checks

    @_guarded
    async def stats(self) -> list[DestinationStats]:
        out: dict[str, DestinationStats] = {}
        for dest, state, n, oldest in await self._require_pool().fetch(
            "SELECT destination, state, count(*), min(queued_at) FROM deliveries GROUP BY destination, state"
        ):
            stats = out.setdefault(dest, DestinationStats(dest, {}))
            stats.counts[State(state)] = n
            stats.oldest[State(state)] = oldest
        return [out[k] for k in sorted(out)]

    @_guarded
    async def flows(self, since: float, until: float) -> FlowStats:
        pool = self._require_pool()
        finished = await pool.fetch(_FINISHED, since, until, FLOW_SAMPLE)
        return FlowStats(
            since,
            until,
            sender_flows(
                [tuple(r) for r in await pool.fetch(_SENDER_COUNTS, since, until)],
                [(r[0], r[4]) for r in finished if r[4] is not None],
            ),
            destination_flows(
                [tuple(r) for r in await pool.fetch(_DESTINATION_COUNTS, since, until)],
                [tuple(r) for r in await pool.fetch(_ACKNOWLEDGED, since, until, FLOW_SAMPLE)],
            ),
        )

    @_guarded
    async def procedure_stats(self, since: float, until: float, *, bucket: float = 86400.0) -> list[ProcedureStats]:
        pool = self._require_pool()
        finished = await pool.fetch(_FINISHED, since, until, FLOW_SAMPLE)
        return procedure_stats(
            [tuple(r) for r in await pool.fetch(_PROCEDURE_COUNTS, bucket, since, until)],
            [(r[1], r[2], int(r[3] // bucket), r[4]) for r in finished if r[4] is not None],
            bucket,
        )

    @_guarded
    async def outcomes(self, destinations: Sequence[str]) -> list[DestinationOutcomes]:
        success: dict[str, float] = {}
        failure: dict[str, Transition] = {}
        for row in await self._require_pool().fetch(_LAST_OUTCOMES, list(destinations)):
            step = _transition(row)
            assert step.destination is not None  # the query reads delivery transitions only
            if step.to_state is State.ACKNOWLEDGED:
                success[step.destination] = step.at
            else:
                failure[step.destination] = step
        return [DestinationOutcomes(d, success.get(d), failure.get(d)) for d in sorted(success.keys() | failure.keys())]

    # ------------------------------------------------------------------ adapter state

    @_guarded
    async def state_add(self, namespace: str, key: str, value: bytes, *, expires_at: float, now: float) -> bool:
        # a concurrent insert of the same key on another node waits for it to commit, then finds it live
        async def op(conn: _Conn, tx: _Tx) -> bool:
            written = await conn.fetchval(
                "INSERT INTO adapter_state (namespace, key, value, expires_at) VALUES ($1, $2, $3, $4)"
                " ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at"
                " WHERE adapter_state.expires_at <= $5 RETURNING true",
                namespace,
                key,
                value,
                expires_at,
                now,
            )
            return bool(written)

        return bool(await self._write(op))

    @_guarded
    async def state_put(self, namespace: str, key: str, value: bytes, *, expires_at: float) -> None:
        async def op(conn: _Conn, tx: _Tx) -> None:
            await conn.execute(
                "INSERT INTO adapter_state (namespace, key, value, expires_at) VALUES ($1, $2, $3, $4)"
                " ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
                namespace,
                key,
                value,
                expires_at,
            )

        await self._write(op)

    @_guarded
    async def state_replace(
        self, namespace: str, key: str, expected: bytes, value: bytes, *, expires_at: float, now: float
    ) -> bool:
        # the row lock of the UPDATE makes a concurrent replace on another node wait, then see the new value
        async def op(conn: _Conn, tx: _Tx) -> bool:
            status = await conn.execute(
                "UPDATE adapter_state SET value = $5, expires_at = $6"
                " WHERE namespace = $1 AND key = $2 AND value = $3 AND expires_at > $4",
                namespace,
                key,
                expected,
                now,
                value,
                expires_at,
            )
            return bool(status == "UPDATE 1")

        return bool(await self._write(op))

    @_guarded
    async def state_get(self, namespace: str, key: str, *, now: float) -> bytes | None:
        value = await self._require_pool().fetchval(
            "SELECT value FROM adapter_state WHERE namespace = $1 AND key = $2 AND expires_at > $3",
            namespace,
            key,
            now,
        )
        return None if value is None else bytes(value)

    @_guarded
    async def state_delete(self, namespace: str, key: str) -> None:
        async def op(conn: _Conn, tx: _Tx) -> None:
            await conn.execute("DELETE FROM adapter_state WHERE namespace = $1 AND key = $2", namespace, key)

        await self._write(op)

    @_guarded
    async def state_purge(self, namespace: str, *, now: float) -> int:
        async def op(conn: _Conn, tx: _Tx) -> int:
            status = await conn.execute(
                "DELETE FROM adapter_state WHERE namespace = $1 AND expires_at <= $2", namespace, now
            )
            return int(status.split()[-1])

        return int(await self._write(op))


async def _probe_write(conn: _Conn, tx: _Tx) -> None:
    """A write inside a writer's transaction, rolled back to a savepoint: nothing stays."""
    probe = conn.transaction()
    await probe.start()
    try:
        await conn.execute("CREATE TEMPORARY TABLE readiness_probe (at float8) ON COMMIT DROP")
        await conn.execute("INSERT INTO readiness_probe VALUES ($1)", time.time())
    finally:
        await probe.rollback()


async def _no_reset(conn: asyncpg.Connection) -> None:
    """Pool connections keep no session state (locks are transaction-scoped, no LISTEN, no SET), so the
    default reset on every release (an extra round trip) is skipped. A transaction left open is still
    rolled back by the pool."""


async def _close_quietly(conn: asyncpg.Connection) -> None:
    try:
        await asyncio.wait_for(conn.close(), 5)
    except Exception:  # noqa: BLE001 - a connection that does not close in time is terminated
        conn.terminate()


async def _load_record(conn: _Conn, message_id: str) -> MessageRecord | None:
    row = await conn.fetchrow(
        "SELECT id, sender, message_id, document_type, conversation, reference, destination, procedure, format,"
        " received_at, error, ack FROM messages WHERE id = $1",
        message_id,
    )
    if row is None:
        return None
    mid, sender, smid, doc_type, conversation, reference, destination, procedure, fmt, received_at, error, ack = tuple(
        row
    )
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
        (r[0], _transition(r))
        for r in await conn.fetch(
            "SELECT destination, from_state, to_state, at, code, detail FROM transitions"
            " WHERE message = $1 ORDER BY id",
            mid,
        )
    ]
    intake = tuple(t for dest, t in steps if dest is None)
    message = Message(id=mid, envelope=envelope, received_at=received_at, history=intake, error=_loads(error))
    deliveries = tuple(
        [
            _delivery(await _with_payload(conn, r), tuple(t for dest, t in steps if dest == r["destination"]))
            for r in await conn.fetch(f"SELECT {_READ_COLUMNS} FROM deliveries WHERE message = $1 ORDER BY seq", mid)
        ]
    )
    replies = tuple(
        r[0]
        for r in await conn.fetch("SELECT id FROM messages WHERE reference IN ($1, $2) ORDER BY received_at", mid, smid)
    )
    return MessageRecord(message, deliveries, SubmissionAck.from_dict(json.loads(ack)), replies)
