"""PostgreSQL: a gateway node recovers by itself from lost connections, and no node takes a live node's lease.

Real PostgreSQL (one schema per test), real gateways on 127.0.0.1, real loopback receivers that deduplicate by
message id and count every request. Outages are real too: ``pg_terminate_backend`` on every session of a node,
and a 5 s network cut through a loopback TCP proxy (:class:`helpers.postgres.PgProxy`). A node's clock is made
wrong by an hour through the ``clock=`` of :class:`~gateway.api.Gateway`; the database's clock is the only one
leases follow.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from test_gateway_store import queued

from gateway.api import Gateway
from gateway.config import Config, StoreSettings, parse_config
from gateway.errors import ConfigError
from gateway.model import State
from gateway.store import store_from_settings
from gateway.store.postgres import PostgresStore
from helpers.gateway import Receiver, doc, eventually, make_config, submit
from helpers.postgres import PG_DSN, create_schema, drop_schema, pg_proxy

pytestmark = [pytest.mark.postgres]

FORM_D = "eco.form_d"
HOUR = 3600.0


@pytest.fixture
async def dsn() -> AsyncIterator[str]:
    schema, dsn = await create_schema()
    try:
        yield dsn
    finally:
        await drop_schema(schema)


class SkewedClock:
    """The gateway's wall clock, ``offset`` seconds off; real sleeps."""

    def __init__(self, offset: float) -> None:
        self.offset = offset

    def now(self) -> float:
        return time.time() + self.offset

    def monotonic(self) -> float:
        return time.monotonic()

    def not_before(self, at: float) -> None:
        pass  # the skew is the point: a node an hour behind stays behind

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class CountingReceiver(Receiver):
    """A deduplicating partner endpoint that counts every request per message id (``arrived``, in arrival order,
    with the conversation of each) and keeps the first request of each id in ``hold`` unanswered until
    :meth:`release` (``on_hold(id)`` is called as it arrives)."""

    def __init__(self, *, delay: float = 0.0, hold: tuple[str, ...] = ()) -> None:
        super().__init__(dedup=True, delay=delay)
        self.arrived: list[tuple[str, str]] = []
        self.hold = set(hold)
        self.on_hold: Callable[[str], None] = lambda mid: None
        self._released = asyncio.Event()

    def release(self) -> None:
        self._released.set()

    def arrivals(self) -> Counter[str]:
        return Counter(mid for mid, _ in self.arrived)

    async def _handle(self, request: web.Request) -> web.Response:
        mid = request.headers.get("X-Message-Id", "")
        self.arrived.append((mid, request.headers.get("X-Conversation-Id", "")))
        await request.read()  # kept by the request for the answer, whether or not the sender still waits
        if mid in self.hold:
            self.hold.discard(mid)
            self.on_hold(mid)
            await self._released.wait()
        return await super()._handle(request)


def _config(
    tmp_path: Path, receiver: Receiver, *, concurrency: int = 4, timeout: float = 30.0, **gateway: Any
) -> Config:
    """One gateway's configuration: destination TH at ``receiver``; a worker's lease is ``max(lease_seconds,
    2 * timeout)``."""
    return make_config(
        tmp_path,
        {"TH": receiver.url},
        concurrency=concurrency,
        gateway={"shutdown_grace": 0.2, **gateway},
        retry={"ttl": 4 * HOUR},  # an hour-wrong clock must not expire what it sees
        per_destination={"TH": {"timeout": timeout}},
    )


async def _intake(store: PostgresStore, mid: str, *, at: float, conversation: str | None = None) -> str:
    """Accept a message to TH on ``store`` (a node without workers), queued at ``at``: its gateway id."""
    m, ds, ack = queued(mid, at=at, conversation=conversation, ttl=4 * HOUR)
    stored, created = await store.accept(m, b"<raw/>", ds, ack)
    assert created
    return stored.id


async def _admin(sql: str, *args: object) -> Any:
    conn = await asyncpg.connect(PG_DSN, timeout=10)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def _node_row(dsn: str, node: int) -> tuple[int, int] | None:
    schema = dsn.rsplit("search_path=", 1)[1]
    rows = await _admin(f'SELECT id, pid FROM "{schema}".nodes WHERE id = $1', node)
    return (rows[0]["id"], rows[0]["pid"]) if rows else None


async def _lease_owner(dsn: str, message: str) -> str | None:
    schema = dsn.rsplit("search_path=", 1)[1]
    rows = await _admin(f'SELECT lease_owner FROM "{schema}".deliveries WHERE message = $1', message)
    return rows[0]["lease_owner"]


async def _leased_by(dsn: str, node: int | None) -> set[str]:
    schema = dsn.rsplit("search_path=", 1)[1]
    rows = await _admin(f'SELECT message FROM "{schema}".deliveries WHERE lease_node = $1', node)
    return {r["message"] for r in rows}


def _store_lines(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "nswgw.store"]


def _lost(store: PostgresStore) -> tuple[int, str]:
    return (
        logging.WARNING,
        f"PostgreSQL store {store.name}: node {store.node} lost its LISTEN connection; reconnecting",
    )


def _back(store: PostgresStore) -> tuple[int, str]:
    return (
        logging.INFO,
        f"PostgreSQL store {store.name}: node {store.node} is listening again; waking every worker to look for"
        " work notified meanwhile",
    )


async def _submit_until_accepted(s: aiohttp.ClientSession, url: str, mid: str, conversation: str) -> str:
    """Submit (the same message id again after a refusal, as a client does) until the gateway acknowledges."""
    while True:
        try:
            status, body = await submit(s, url, "MOIT", mid, FORM_D, doc(mid), X_Conversation_Id=conversation)
        except aiohttp.ClientError:
            status, body = 0, {}
        if status in (200, 202):
            return str(body["id"])
        await asyncio.sleep(0.05)


async def test_node_whose_every_session_is_terminated_listens_again_under_its_id_and_is_woken_by_another_node(
    tmp_path: Path, dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Prerequisite: gateway A on PostgreSQL polling only once an hour (so only a notification explains a prompt
    delivery), a second node B on the same schema; messages flow into A while every session of A is killed with
    ``pg_terminate_backend``.
    Predicate: A logs the loss (WARNING) and the recovery (INFO) on ``nswgw.store``, keeps its node id (its row
    now names its new session), delivers everything acknowledged exactly once, and a message accepted by B
    afterwards wakes A's idle worker."""
    caplog.set_level(logging.INFO)
    name = f"pgrec-{uuid.uuid4().hex[:8]}"
    receiver = CountingReceiver(delay=0.5)
    await receiver.start()
    store = PostgresStore(dsn, pool_size=4, node_name=name)
    other = PostgresStore(dsn, pool_size=3, node_name=f"{name}-b")
    try:
        async with Gateway(_config(tmp_path, receiver, poll_interval=HOUR), store=store) as gw:
            await other.open()
            node = store.node
            assert node is not None
            before = await _node_row(dsn, node)
            async with aiohttp.ClientSession() as s:
                flowing = asyncio.gather(
                    *(_submit_until_accepted(s, gw.url, f"FLOW-{c}-{k}", f"C-{c}") for c in range(3) for k in range(4))
                )
                await eventually(lambda: len(receiver.arrived) >= 2)
                killed = await _admin(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1"
                    f' OR pid = (SELECT pid FROM "{dsn.rsplit("=", 1)[1]}".nodes WHERE id = $2)',
                    name,
                    node,
                )
                assert len(killed) >= 2  # the listening session and at least one of the pool's
                accepted = set(await asyncio.wait_for(flowing, 60))
                await eventually(lambda: _back(store) in _store_lines(caplog), limit=30)
                await eventually(lambda: accepted <= set(receiver.processed), limit=30)

                async def all_recorded() -> bool:  # A's worker is idle again, its next poll an hour away
                    records = [await other.get(mid) for mid in accepted]
                    states = {d.state for r in records if r is not None for d in r.deliveries}
                    return states == {State.ACKNOWLEDGED} and not gw.engine.workers["TH"].inflight

                await eventually(all_recorded, limit=30)
                await asyncio.sleep(0.5)  # and the claim that followed its last record has run
            woken = await _intake(other, "FROM-B", at=time.time())
            await eventually(lambda: woken in receiver.processed, limit=30)  # the poll is an hour away
            assert store.node == node
            after = await _node_row(dsn, node)
            assert before is not None and after is not None and after[0] == node and after[1] != before[1]
    finally:
        await other.close()
        await receiver.stop()
    lines = _store_lines(caplog)
    assert _lost(store) in lines and _back(store) in lines
    assert lines.index(_lost(store)) < lines.index(_back(store))
    assert receiver.arrivals() == Counter(accepted | {woken})  # every message exactly once


async def test_five_second_network_cut_frees_no_lease_of_the_cut_node_and_delivers_each_message_once_in_order(
    tmp_path: Path, dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Prerequisite: gateway A reaches PostgreSQL through a loopback TCP proxy and has deliveries in flight to a
    slow deduplicating receiver (four conversations of five messages); the network is cut for 5 s (every
    connection dropped, new ones unanswered); gateway B starts on the same database during the cut.
    Predicate: during the cut A's leases stay A's (B's start frees none, B claims none of them); after it A
    records what it delivered and goes on; every message reaches the receiver exactly once, in submission order
    within its conversation; A logs the loss and the recovery and keeps its node id."""
    caplog.set_level(logging.INFO)
    receiver = CountingReceiver(delay=1.0)
    await receiver.start()
    conversations, per = 4, 5
    async with pg_proxy() as proxy:
        store = PostgresStore(proxy.through(dsn), pool_size=4, connect_timeout=1.0, node_name="cut-a")
        config = _config(tmp_path, receiver, poll_interval=0.05, lease_seconds=30)
        try:
            async with Gateway(config, store=store) as a:
                node = store.node
                async with aiohttp.ClientSession() as s:
                    ids = {
                        await _submit_until_accepted(s, a.url, f"CUT-{c}-{k}", f"C-{c}"): (f"C-{c}", k)
                        for k in range(per)
                        for c in range(conversations)
                    }
                await eventually(lambda: len(receiver.arrived) >= conversations)  # heads in flight
                proxy.cut()
                held = await _leased_by(dsn, node)
                assert held  # deliveries A is sending while it cannot reach the database
                (tmp_path / "b").mkdir()
                b_config = _config(tmp_path / "b", receiver, poll_interval=0.05, lease_seconds=30)
                async with Gateway(b_config, store=PostgresStore(dsn, pool_size=4, node_name="cut-b")):
                    assert await _leased_by(dsn, node) == held  # B's start freed none of A's leases
                    await asyncio.sleep(5.0)  # the rest of the cut
                    assert await _leased_by(dsn, node) == held  # nor did B's claims take any
                    assert max(receiver.arrivals().values()) == 1
                    proxy.heal()
                    await eventually(lambda: set(ids) <= set(receiver.processed), limit=60)
                assert store.node == node
        finally:
            await receiver.stop()
    lines = _store_lines(caplog)
    assert _lost(store) in lines and _back(store) in lines
    assert receiver.arrivals() == Counter(list(ids))  # each exactly once: none lost, none twice
    for c in range(conversations):
        seen = [ids[mid][1] for mid, conv in receiver.arrived if conv == f"C-{c}"]
        assert seen == list(range(per)), f"C-{c} delivered out of order: {seen}"


@pytest.mark.parametrize("skew", [HOUR, -HOUR], ids=["an-hour-ahead", "an-hour-behind"])
async def test_node_whose_clock_is_an_hour_off_takes_no_live_lease_and_loses_none_of_its_own(
    tmp_path: Path, dsn: str, skew: float
) -> None:
    """Prerequisite: two gateways on one database, one with a correct clock, one with a clock an hour off; the
    first delivery is claimed by one of them (the one behind, or the correct one when the other is ahead) and
    held in flight by the receiver; the other then claims a later message of the same outbox.
    Predicate: the lease of the delivery in flight is still its claimer's after the other node's claim (neither a
    clock ahead makes a live lease look expired, nor a clock behind makes its own lease look expired to others),
    and it was sent once."""
    receiver = CountingReceiver()
    await receiver.start()
    intake = PostgresStore(dsn, pool_size=3, node_name="intake")
    await intake.open()
    queued_at = time.time() - 2 * HOUR  # due for either clock
    first = await _intake(intake, "FIRST", at=queued_at)
    receiver.hold.add(first)
    holder_clock, taker_clock = (SkewedClock(0.0), SkewedClock(skew)) if skew > 0 else (SkewedClock(skew), None)
    try:
        holder = Gateway(
            _config(tmp_path, receiver, concurrency=1, poll_interval=0.05),
            store=PostgresStore(dsn, pool_size=4, node_name="holder"),
            clock=holder_clock,
        )
        async with holder:
            await eventually(lambda: receiver.arrivals()[first] == 1)
            (tmp_path / "taker").mkdir()
            taker = Gateway(
                _config(tmp_path / "taker", receiver, poll_interval=0.05),
                store=PostgresStore(dsn, pool_size=4, node_name="taker"),
                clock=taker_clock,
            )
            async with taker:
                later = await _intake(intake, "LATER", at=queued_at)
                await eventually(lambda: later in receiver.processed)  # the taker claimed, the holder is busy
                assert await _lease_owner(dsn, first) == holder.engine.owner
                assert receiver.arrivals()[first] == 1
                receiver.release()
                await eventually(lambda: first in receiver.processed)
    finally:
        receiver.release()
        await intake.close()
        await receiver.stop()
    assert receiver.arrivals() == Counter({first: 1, later: 1})


async def test_lease_of_a_crashed_node_whose_clock_is_an_hour_ahead_runs_out_by_the_database_clock(
    tmp_path: Path, dsn: str
) -> None:
    """Prerequisite: a gateway with a correct clock, its one delivery slot busy with a message the receiver holds;
    then a gateway whose clock is an hour ahead, reaching PostgreSQL through a loopback proxy, claims the next
    delivery (lease: 6 s), is cut off from the database the moment its request reaches the receiver, and is stopped
    (it cannot hand the lease back: a crash as the database sees it, after the other node's start); the held message
    is then answered.
    Predicate: the correct gateway takes the delivery over once the lease has run out by the database's clock (not
    an hour later) and it reaches the receiver again under the same message id, processed once."""
    receiver = CountingReceiver()
    await receiver.start()
    intake = PostgresStore(dsn, pool_size=3, node_name="intake")
    await intake.open()
    try:
        async with pg_proxy() as proxy:
            busy = await _intake(intake, "BUSY", at=time.time())
            receiver.hold.add(busy)
            right = Gateway(
                _config(tmp_path, receiver, concurrency=1, poll_interval=0.05),
                store=PostgresStore(dsn, pool_size=4, node_name="right"),
            )
            async with right:
                await eventually(lambda: receiver.arrivals()[busy] == 1)
                mid = await _intake(intake, "CRASH", at=time.time())
                receiver.hold.add(mid)
                receiver.on_hold = lambda held: proxy.cut() if held == mid else None
                (tmp_path / "ahead").mkdir()
                ahead = Gateway(
                    _config(tmp_path / "ahead", receiver, poll_interval=0.05, lease_seconds=2, timeout=3.0),
                    store=PostgresStore(proxy.through(dsn), pool_size=4, connect_timeout=1.0, node_name="ahead"),
                    clock=SkewedClock(HOUR),
                )
                await ahead.start()
                try:
                    await eventually(lambda: receiver.arrivals()[mid] == 1)
                finally:
                    await ahead.stop()  # cut off: the lease stays in the database
                assert await _lease_owner(dsn, mid) == ahead.engine.owner
                receiver.release()  # the correct node's slot frees up
                await eventually(lambda: receiver.arrivals()[mid] == 2, limit=40)  # not an hour later

                async def acknowledged() -> bool:
                    record = await intake.get(mid)
                    return record is not None and record.deliveries[0].state is State.ACKNOWLEDGED

                await eventually(acknowledged)
    finally:
        receiver.release()
        await intake.close()
        await receiver.stop()
    assert receiver.arrivals() == Counter({busy: 1, mid: 2})  # the crashed attempt, then the one after its lease
    assert receiver.processed.count(mid) == 1


async def test_node_timeout_of_the_configuration_is_the_one_the_node_announces_with_its_heartbeat(dsn: str) -> None:
    """Prerequisite: ``[store] node_timeout = 7`` on a PostgreSQL store built from the configuration.
    Predicate: the node's row carries 7 s and a heartbeat from the database clock."""
    store = store_from_settings(StoreSettings(kind="postgresql", dsn=dsn, node_timeout=7))
    assert isinstance(store, PostgresStore)
    async with store:
        schema = dsn.rsplit("search_path=", 1)[1]
        [row] = await _admin(
            f"SELECT timeout, clock_timestamp() - seen_at < interval '1 minute' AS fresh FROM \"{schema}\".nodes"
            " WHERE id = $1",
            store.node,
        )
    assert (row["timeout"], row["fresh"]) == (7.0, True)


@pytest.mark.parametrize("value", [0, 0.5, -1, 7200])
def test_node_timeout_out_of_range_is_refused_naming_the_field(value: float) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"store": {"kind": "postgresql", "dsn": PG_DSN, "node_timeout": value}})
    assert (caught.value.code, caught.value.field) == ("CONFIG_INVALID", "store.node_timeout")
