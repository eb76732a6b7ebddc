"""The PostgreSQL journal chained after commit: nodes commit without the journal lock, one sealer at a time chains.

A transaction that appends journal entries (accepting a message, a verified receipt, an operator action) inserts
them, unchained, as one row of ``journal_pending`` (:data:`PENDING`: its entries in order, as arrays), numbered by
that table's identity, which takes no lock that is held to ``COMMIT``; so the write transactions of every node
commit side by side, none waits for another's ``COMMIT`` to learn the journal head. The entries are **sealed**
afterwards: a transaction takes the journal lock (the schema's advisory lock, the same one that chaining at commit
takes), reads the head (the newest entry, else the last one pruned into an archive, else the genesis), reads the
pending rows in id order, chains their entries after the head with :meth:`~gateway.journal.JournalEntry.after`
(consecutive ``seq``, each ``prev`` the hash before it) and, in one statement, inserts them into ``journal`` and
deletes their rows from ``journal_pending``; the count of rows deleted must equal the rows read, or the transaction
is rolled back (:data:`SEAL`). So an entry is chained exactly once: the lock serialises sealers, each sees what the
one before it committed, and the move from pending to chained is one transaction. ``journal.seq`` is still the
primary key.

The chain is the one ``nswgw log verify``, anchors, RFC 3161 head timestamps, archive bundles and evidence packages
read: one linear hash chain of consecutive ``seq``. Its order is sealing order: transactions in id order among those
committed when a seal ran (one committed later comes later), each transaction's entries together and in the order
it wrote them, as when they were chained at commit. What depends on another entry keeps its place (a receipt is
recorded after its acceptance committed, so its row has the larger id and is sealed no earlier).

Who seals (:class:`Sealer`): every node runs one sealer task. After a commit that appended entries it waits
:attr:`Sealer.DELAY` seconds (so one seal chains the commits of that while) and tries the lock without waiting; when
another node holds it, it tries again after the next delay (what the other sealer read before this node committed is
still pending). Every :attr:`Sealer.IDLE` seconds it tries anyway, so entries a node committed just before it died
are sealed by any node still running. Reading the journal through the store (``journal()``, ``journal_head()``,
an operator action's entry) first seals, waiting for the lock, so a reader sees every entry committed before it
asked. A node seals what it committed once more when it stops.

What is protected when: a sealed entry as ever (the chain, anchors, timestamps); a pending entry only by the database
until its seal, normally within :attr:`Sealer.DELAY` plus one seal's time (``nswgw log verify`` seals before it
walks, so it never leaves a committed entry out). Operators who want no such window at all, with one node, can
chain at commit (``[store] journal = "inline"``): the transaction takes the journal lock and reads the head before it
inserts the entries, and holds the lock to ``COMMIT``, so the nodes' write transactions commit one at a time. Both
modes take the same lock and can share a schema.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg

from gateway.errors import GatewayError
from gateway.journal import JournalEntry

__all__ = ["PENDING", "SEAL", "JournalRow", "Sealer", "chain_pending", "entry_columns", "pending_arguments", "seal"]

log = logging.getLogger("nswgw.store")

PENDING = """
WITH j AS (
    INSERT INTO journal_pending (at, kind, message, destination, digest)
    VALUES ($1::float8[], $2::text[], $3::text[], $4::text[], $5::text[]))
SELECT pg_notify($6, $7) WHERE $7::text IS NOT NULL
"""
"""A transaction's journal entries, unchained (one row, its entries in order as arrays), and its notification, in
one round trip."""

_HEAD = "SELECT seq, hash FROM journal_seal_head($1::bigint, $2::boolean)"
"""The journal lock (waiting for it, or not: no row when another session holds it) and the head to chain on from."""

_READ = "SELECT id, at, kind, message, destination, digest FROM journal_pending ORDER BY id LIMIT $1"
"""Up to ``$1`` transactions' entries, oldest first."""

SEAL = """
WITH d AS (DELETE FROM journal_pending WHERE id = ANY($9::bigint[]) RETURNING id),
j AS (
    INSERT INTO journal (seq, at, kind, message, destination, digest, prev, hash)
    SELECT * FROM unnest($1::bigint[], $2::float8[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                         $8::text[]))
SELECT count(*) FROM d
"""
"""The sealed entries into ``journal`` and their pending rows out, in one statement: the count of rows deleted."""

JournalRow = tuple[float, str, str, str | None, str]
"""``(at, kind, message, destination, digest)``: an entry before it is chained."""


def pending_arguments(rows: Sequence[JournalRow], channel: str, notify: str | None) -> tuple[Any, ...]:
    """The parameters of :data:`PENDING`."""
    return (
        [r[0] for r in rows],
        [r[1] for r in rows],
        [r[2] for r in rows],
        [r[3] for r in rows],
        [r[4] for r in rows],
        channel,
        notify,
    )


def entry_columns(entries: Sequence[JournalEntry]) -> tuple[list[Any], ...]:
    """The columns of ``entries`` as arrays, in the order the journal's ``unnest`` inserts take them."""
    return (
        [e.seq for e in entries],
        [e.at for e in entries],
        [e.kind for e in entries],
        [e.message_id for e in entries],
        [e.destination for e in entries],
        [e.digest for e in entries],
        [e.prev for e in entries],
        [e.hash for e in entries],
    )


def chain_pending(head: tuple[int, str], rows: Sequence[JournalRow]) -> list[JournalEntry]:
    """``rows`` chained in order after ``head`` (``(seq, hash)``)."""
    prev_seq, prev_hash = head
    entries = []
    for at, kind, message, destination, digest in rows:
        e = JournalEntry.after(
            prev_seq, prev_hash, at=at, kind=kind, message_id=message, destination=destination, digest=digest
        )
        entries.append(e)
        prev_seq, prev_hash = e.seq, e.hash
    return entries


async def seal(pool: asyncpg.Pool, lock_key: int, *, wait: bool, batch: int = 2000) -> int | None:
    """Chain every pending entry (the entries of at most ``batch`` transactions per sealing transaction): how many,
    or ``None`` when ``wait`` is false and another session holds the journal lock. Driver exceptions are the
    caller's to translate."""
    total = 0
    while True:
        async with pool.acquire() as conn, conn.transaction():
            head = await conn.fetchrow(_HEAD, lock_key, wait)
            if head is None:
                return None
            rows = await conn.fetch(_READ, batch)
            if not rows:
                return total
            written = [e for r in rows for e in zip(*tuple(r)[1:], strict=True)]
            entries = chain_pending((int(head[0]), str(head[1])), written)
            moved = await conn.fetchval(SEAL, *entry_columns(entries), [r[0] for r in rows])
            if moved != len(rows):  # rolled back: never chain an entry another sealer moved
                raise GatewayError(
                    f"journal seal: {len(rows)} pending transactions read under the lock, {moved} still pending",
                    field="store",
                )
        total += len(entries)
        if len(rows) < batch:
            return total


class Sealer:
    """One node's sealing task (see the module docstring)."""

    DELAY = 0.05
    """Seconds from a commit that appended entries to the seal that chains them (and the commits of that while)."""
    IDLE = 1.0
    """Seconds between two seals tried while this node appends nothing (entries of a node that stopped)."""

    def __init__(self, pool: Callable[[], asyncpg.Pool], lock_key: Callable[[], int], store: str) -> None:
        self._pool = pool
        self._key = lock_key
        self._store = store
        self._dirty = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._failing = False
        self._commits = 0
        self._covered = 0
        self.seals = 0
        """Seal transactions that chained at least one entry (for tests and benchmarks)."""

    def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name="pg-journal-sealer")

    def committed(self) -> None:
        """This node committed journal entries: seal them soon."""
        self._commits += 1
        self._dirty.set()

    async def now(self) -> None:
        """Seal every entry committed so far, waiting for the lock."""
        await self._seal(wait=True)

    async def stop(self, timeout: float) -> None:
        """End the task; seal once more (at most ``timeout`` seconds) what this node committed and no seal took."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping.set()
        self._dirty.set()
        await asyncio.gather(task, return_exceptions=True)
        if self._commits > self._covered:
            with contextlib.suppress(Exception):  # the database is gone: a later node seals them
                await asyncio.wait_for(self._seal(wait=True), timeout)

    async def _seal(self, *, wait: bool) -> int | None:
        commits = self._commits
        done = await seal(self._pool(), self._key(), wait=wait)
        if done is not None:
            self._covered = max(self._covered, commits)
        if done:
            self.seals += 1
        return done

    async def _run(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._dirty.wait(), self.IDLE)
            if self._stopping.is_set():
                return
            await asyncio.sleep(self.DELAY)
            self._dirty.clear()
            try:
                if await self._seal(wait=False) is None:
                    self._dirty.set()  # another node is sealing; what it read before our commit is ours to seal
            except Exception as exc:  # noqa: BLE001 - the database is out of reach: tried again, logged once
                self._dirty.set()
                if not self._failing:
                    log.warning("PostgreSQL store %s: journal entries not sealed yet: %r", self._store, exc)
                self._failing = True
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self.IDLE)
                continue
            if self._failing:
                log.info("PostgreSQL store %s: journal entries sealed again", self._store)
                self._failing = False
