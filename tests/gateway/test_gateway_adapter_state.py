"""The adapter state port (:class:`gateway.ports.AdapterState`) on every store: SQLite and PostgreSQL.

Namespaced ``key -> bytes`` records with a time-to-live in the gateway's store: put-if-absent with exactly one
winner (also across two nodes of one PostgreSQL database), expiry on the gateway's clock, purge, and store faults
coming out as the store's own ``STORE_*`` codes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from gateway.errors import StoreFull, StoreUnavailable
from gateway.ports import MemoryAdapterState, StoreAdapterState
from gateway.store import Store
from gateway.store.postgres import PostgresStore
from gateway.store.sqlite import SqliteStore
from helpers.disk import fill, mounted_tmpfs
from helpers.postgres import PG_DSN, create_schema, drop_schema, pg_proxy


class Clock:
    """The gateway's clock, moved by the test."""

    def __init__(self, at: float = 1_000_000.0) -> None:
        self.at = at

    def now(self) -> float:
        return self.at


@contextlib.asynccontextmanager
async def every_node(store: Store) -> AsyncIterator[list[Store]]:
    """``store`` and, on PostgreSQL, a second node's store of the same schema (closed afterwards): the nodes
    that share the records."""
    nodes: list[Store] = [store]
    if isinstance(store, PostgresStore):
        second = PostgresStore(store.dsn, pool_size=4, node_name="second-node")
        await second.open()
        nodes.append(second)
    try:
        yield nodes
    finally:
        for node in nodes[1:]:
            await node.close()


async def test_add_stores_a_new_key_once_and_a_second_add_keeps_the_first_value(store: Store) -> None:
    state = StoreAdapterState(store, "inbound:asean")
    assert await state.add("received:TH-ASW/ECO-1", b"<receipt-1/>", ttl=3600) is True
    assert await state.add("received:TH-ASW/ECO-1", b"<receipt-2/>", ttl=3600) is False
    assert await state.get("received:TH-ASW/ECO-1") == b"<receipt-1/>"
    assert await state.get("received:TH-ASW/ECO-2") is None


async def test_put_replaces_a_record_and_delete_removes_it(store: Store) -> None:
    state = StoreAdapterState(store, "destination:TH")
    await state.put("sent:1", b"\x00first", ttl=60)
    await state.put("sent:1", b"\x00second\xff", ttl=60)
    assert await state.get("sent:1") == b"\x00second\xff"  # bytes, exactly
    await state.delete("sent:1")
    await state.delete("sent:1")  # deleting what is not there is nothing
    assert await state.get("sent:1") is None
    assert await state.add("sent:1", b"again", ttl=60) is True


async def test_namespaces_never_see_each_others_records(store: Store) -> None:
    th, my = StoreAdapterState(store, "destination:TH"), StoreAdapterState(store, "destination:MY")
    assert await th.add("k", b"th", ttl=60) and await my.add("k", b"my", ttl=60)
    await th.delete("k")
    assert await th.get("k") is None and await my.get("k") == b"my"


async def test_a_record_past_its_time_to_live_is_absent_replaced_by_add_and_purged(store: Store) -> None:
    clock = Clock()
    state = StoreAdapterState(store, "inbound:asean", now=clock.now)
    other = StoreAdapterState(store, "inbound:other", now=clock.now)
    await state.put("old", b"old", ttl=10)
    await state.put("kept", b"kept", ttl=100)
    await other.put("old", b"other", ttl=10)
    clock.at += 10  # expires_at == now: expired
    assert await state.get("old") is None and await state.get("kept") == b"kept"
    assert await state.add("old", b"new", ttl=10) is True  # an expired record does not block put-if-absent
    assert await state.get("old") == b"new"
    clock.at += 50
    assert await state.purge() == 1  # "old" (the new one) expired again; "kept" lives
    assert await state.purge() == 0
    assert await state.get("kept") == b"kept"
    assert await other.get("old") is None and await other.purge() == 1  # purged per namespace only


async def test_concurrent_adds_of_one_key_have_exactly_one_winner_on_every_node(store: Store) -> None:
    async with every_node(store) as nodes:
        states = [StoreAdapterState(node, "inbound:asean") for node in nodes]
        results = await asyncio.gather(
            *(states[i % len(states)].add("received:TH-ASW/ECO-RACE", f"{i}".encode(), ttl=60) for i in range(24))
        )
        assert results.count(True) == 1
        winner = str(results.index(True)).encode()
        assert [await s.get("received:TH-ASW/ECO-RACE") for s in states] == [winner] * len(states)


async def test_replace_writes_only_over_the_value_it_read_and_a_missing_record_only_when_expected_absent(
    store: Store,
) -> None:
    clock = Clock()
    state = StoreAdapterState(store, "destination:TH", now=clock.now)
    assert await state.replace("mpc", b"[]", b"[1]", ttl=60) is False  # nothing there yet
    assert await state.replace("mpc", None, b"[]", ttl=60) is True
    assert await state.replace("mpc", None, b"[9]", ttl=60) is False  # there is one now
    assert await state.replace("mpc", b"[]", b"[1]", ttl=60) is True
    assert await state.replace("mpc", b"[]", b"[2]", ttl=60) is False  # read before the last change
    assert await state.get("mpc") == b"[1]"
    clock.at += 60
    assert await state.replace("mpc", b"[1]", b"[3]", ttl=60) is False  # expired: absent
    assert await state.replace("mpc", None, b"[4]", ttl=60) is True and await state.get("mpc") == b"[4]"


async def test_concurrent_read_change_writes_on_every_node_lose_no_change(store: Store) -> None:
    async with every_node(store) as nodes:
        states = [StoreAdapterState(node, "destination:TH") for node in nodes]

        async def append(i: int) -> None:
            state = states[i % len(states)]
            while True:
                read = await state.get("list")
                items = [] if read is None else read.decode().split(",")
                if await state.replace("list", read, ",".join([*items, str(i)]).encode(), ttl=60):
                    return

        await asyncio.gather(*(append(i) for i in range(20)))
        stored = await states[-1].get("list")
        assert stored is not None and sorted(int(i) for i in stored.decode().split(",")) == list(range(20))


async def test_records_survive_a_restart_of_a_sqlite_store(tmp_path: Path) -> None:
    first = SqliteStore(tmp_path / "gw.db", synchronous="NORMAL")
    async with first:
        assert await StoreAdapterState(first, "destination:TH").add("sent:1", b"body", ttl=3600)
    again = SqliteStore(tmp_path / "gw.db", synchronous="NORMAL")
    async with again:
        state = StoreAdapterState(again, "destination:TH")
        assert await state.get("sent:1") == b"body" and not await state.add("sent:1", b"other", ttl=3600)


async def test_memory_state_keeps_the_same_contract() -> None:
    clock = Clock()
    state = MemoryAdapterState(now=clock.now)
    assert await state.add("k", b"1", ttl=5) and not await state.add("k", b"2", ttl=5)
    assert await state.get("k") == b"1"
    assert not await state.replace("k", b"2", b"3", ttl=5) and await state.replace("k", b"1", b"3", ttl=5)
    assert await state.get("k") == b"3"
    clock.at += 5
    assert await state.get("k") is None and await state.purge() == 1 and len(state) == 0


# ------------------------------------------------------------------------------------------------ store faults


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 8 MiB file system (tmpfs), unmounted afterwards."""
    with mounted_tmpfs(tmp_path / "disk") as where:
        yield where


async def test_adapter_state_on_a_full_sqlite_disk_fails_with_STORE_FULL_logged_with_its_incident(
    tiny_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="nswgw.store")
    store = SqliteStore(tiny_disk / "gw.db", synchronous="FULL")
    async with store:
        state = StoreAdapterState(store, "destination:TH")
        assert await state.add("sent:before", b"x" * 1024, ttl=3600)
        fill(tiny_disk)
        with pytest.raises(StoreFull) as caught:
            for n in range(64):  # the WAL has some room left: write until it is gone
                await state.add(f"sent:{n}", b"x" * 256 * 1024, ttl=3600)
        assert await state.get("sent:before") == b"x" * 1024
    assert caught.value.code == "STORE_FULL" and caught.value.retryable and caught.value.http_status == 507
    logged = [r.getMessage() for r in caplog.records if r.name == "nswgw.store"]
    assert f"incident {caught.value.incident_id}: {caught.value}" in logged
    assert str(caught.value).startswith("[STORE_FULL] at store.url: SQLite store ")


@pytest.mark.postgres
async def test_adapter_state_on_postgresql_whose_sessions_are_killed_fails_with_STORE_UNAVAILABLE() -> None:
    schema, dsn = await create_schema()
    node = f"state-{uuid.uuid4().hex[:8]}"
    try:
        async with pg_proxy() as proxy:
            store = PostgresStore(proxy.through(dsn), pool_size=3, writers=1, node_name=node)
            async with store:
                state = StoreAdapterState(store, "inbound:asean")
                assert await state.add("received:1", b"r", ttl=60)
                await proxy.refuse()
                admin = await asyncpg.connect(PG_DSN, timeout=10)
                try:
                    await admin.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", node
                    )
                finally:
                    await admin.close()
                with pytest.raises(StoreUnavailable) as read:
                    await state.get("received:1")
                with pytest.raises(StoreUnavailable) as written:
                    await state.add("received:2", b"r", ttl=60)
    finally:
        await drop_schema(schema)
    assert read.value.code == written.value.code == "STORE_UNAVAILABLE" and written.value.retryable


async def test_pull_queues_of_two_nodes_lose_no_offer_and_never_hand_one_message_to_two_pull_requests(
    store: Store,
) -> None:
    from datetime import UTC, datetime

    from adapters.as4.pull import PullQueue
    from adapters.as4.sent import SentRecord

    async with every_node(store) as nodes:
        # one PullQueue per node (its own in-process lock), as two gateway nodes of one store have
        queues = [
            PullQueue(StoreAdapterState(node, "destination:ID"), retention=3600, redeliver_after=3600)
            for node in (nodes * 2)[:2]
        ]
        ids = [f"msg-{i}@nsw.gov.vn" for i in range(16)]
        for i, message_id in enumerate(ids):
            record = SentRecord(
                message_id=message_id,
                body=b"<env/>",
                content_type="application/soap+xml",
                timestamp=datetime.now(UTC),
                references=b"<r/>",
                payload_sha256="0" * 64,
                partner="ID-ASW",
            )
            await queues[i % 2].sent.add(record)
        await asyncio.gather(*(queues[i % 2].offer("ID-ASW", "urn:mpc", m) for i, m in enumerate(ids)))
        taken = await asyncio.gather(*(queues[i % 2].take("ID-ASW", "urn:mpc") for i in range(20)))
    handed = [r.message_id for r in taken if r is not None]
    assert sorted(handed) == sorted(ids)  # every offer kept, each message to exactly one PullRequest
    assert taken.count(None) == 4
