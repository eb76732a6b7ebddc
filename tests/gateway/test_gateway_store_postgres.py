"""PostgreSQL store: what only a shared, multi-node store has to prove (the common behaviour suite is
tests/gateway/test_gateway_store.py, run against SQLite and PostgreSQL). Real server, one schema per test."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from test_gateway_store import accept, queued
from test_gateway_store_sqlite_schema import LEGACY_TRANSITIONS, version_2_rows

from gateway.api import Gateway
from gateway.cli import main as nswgw
from gateway.disclosures import DisclosureQuery
from gateway.errors import ConfigError, NswError, StoreSchemaOutdated, StoreUnavailable
from gateway.journal import JournalEntry, OperatorAction, verify_chain
from gateway.model import State
from gateway.reference import ReferenceVersion
from gateway.registry import RegistryQuery
from gateway.store import MessageQuery, Store, migrations, store_from_settings
from gateway.store.base import CertificateQuery, JournalBase, OnDead, StoredTimestamp
from gateway.store.postgres import _CLAIMS, PostgresStore
from helpers.gateway import Receiver, eventually, make_config
from helpers.postgres import PG_DSN, fresh_schema, pg_proxy

pytestmark = [pytest.mark.postgres]


@pytest.fixture
async def dsn() -> AsyncIterator[str]:
    async with fresh_schema() as d:
        yield d


async def _nodes(dsn: str, n: int) -> list[PostgresStore]:
    stores = [PostgresStore(dsn, pool_size=4, node_name=f"node-{i}") for i in range(n)]
    for s in stores:
        await s.open()
    return stores


async def _close(stores: list[PostgresStore]) -> None:
    for s in stores:
        await s.close()


async def test_two_nodes_claiming_at_once_never_get_the_same_delivery(dsn: str) -> None:
    a, b = stores = await _nodes(dsn, 2)
    try:
        await asyncio.gather(*(accept(a if i % 2 else b, f"M-{i}") for i in range(200)))
        got: list[str] = []

        async def drain(store: PostgresStore, owner: str) -> None:
            while batch := await store.claim("TH", owner=owner, limit=7, now=200.0, lease=60):
                got.extend(d.message_id for d in batch)

        await asyncio.gather(drain(a, "a"), drain(b, "b"), drain(a, "a2"), drain(b, "b2"))
        assert len(got) == 200 and len(set(got)) == 200
    finally:
        await _close(stores)


async def test_next_message_of_a_conversation_is_not_claimable_on_another_node_until_the_head_is_acknowledged(
    dsn: str,
) -> None:
    a, b = stores = await _nodes(dsn, 2)
    try:
        await accept(a, "ORIG", conversation="C-1")
        await accept(b, "AMEND", conversation="C-1")
        [head] = await a.claim("TH", owner="a", limit=10, now=200.0, lease=60)
        assert await b.claim("TH", owner="b", limit=10, now=200.0, lease=60) == []
        await a.record(head.delivered(at=201.0).acknowledged(b"r", at=201.0), owner="a", now=201.0)
        [nxt] = await b.claim("TH", owner="b", limit=10, now=202.0, lease=60)
        assert nxt.message_id == queued("AMEND")[0].id
    finally:
        await _close(stores)


async def test_the_same_message_submitted_to_two_nodes_at_once_is_stored_once(dsn: str) -> None:
    a, b = stores = await _nodes(dsn, 2)
    try:
        m, ds, ack = queued("DUP-1")
        results = await asyncio.gather(*(s.accept(m, b"<raw/>", ds, ack) for s in (a, b, a, b)))
        assert sorted(created for _, created in results) == [False, False, False, True]
        assert len({ack for ack, _ in results}) == 1
        assert len(await a.claim("TH", owner="w", limit=10, now=200.0, lease=60)) == 1
    finally:
        await _close(stores)


async def test_journal_appends_from_several_nodes_form_one_chain(dsn: str) -> None:
    stores = await _nodes(dsn, 3)
    try:
        await asyncio.gather(*(accept(stores[i % 3], f"M-{i}") for i in range(150)))
        claimed = await stores[0].claim("TH", owner="w", limit=150, now=200.0, lease=60)
        await asyncio.gather(
            *(
                stores[i % 3].record(d.delivered(at=201.0).acknowledged(b"ok", at=201.0), owner="w", now=201.0)
                for i, d in enumerate(claimed)
            )
        )
        entries = await stores[1].journal()
        assert len(entries) == 300 and verify_chain(entries).ok
        assert [e.seq for e in entries] == list(range(1, 301))
        batches, operations = stores[0].commit_stats
        assert operations >= batches > 0
    finally:
        await _close(stores)


async def test_new_work_on_one_node_wakes_the_idle_workers_of_another(dsn: str) -> None:
    a, b = stores = await _nodes(dsn, 2)
    woken: asyncio.Queue[tuple[str, ...]] = asyncio.Queue()
    b.on_work(woken.put_nowait)
    try:
        await accept(a, "M-1", destinations=("TH", "CUSTOMS"))
        assert await asyncio.wait_for(woken.get(), 30) == ("CUSTOMS", "TH")
    finally:
        await _close(stores)


async def test_restarting_node_releases_the_leases_of_a_dead_node_but_not_of_a_live_one(dsn: str) -> None:
    """A node is dead once its session is gone and its heartbeat is older than its ``node_timeout`` (1 s here)."""
    async with pg_proxy() as proxy:
        dead = PostgresStore(
            proxy.through(dsn), pool_size=4, node_name="node-dead", node_timeout=1.0, connect_timeout=1.0
        )
        await dead.open()
        stores = [dead, *await _nodes(dsn, 1)]
        live = stores[1]
        try:
            await accept(live, "M-1")
            await accept(live, "M-2")
            [d1] = await dead.claim("TH", owner="dead", limit=1, now=200.0, lease=1000)
            [d2] = await live.claim("TH", owner="live", limit=1, now=200.0, lease=1000)
            proxy.cut()  # a crash as the database sees it: the node's sessions end and no heartbeat comes
            [restarted] = await _nodes(dsn, 1)
            stores.append(restarted)
            released: list[int] = []

            async def dead_by_now() -> bool:
                released.append(await restarted.recover(now=201.0))
                return sum(released) > 0

            await eventually(dead_by_now, limit=30)
            assert sum(released) == 1
            [again] = await restarted.claim("TH", owner="new", limit=5, now=201.0, lease=10)
            assert again.message_id == d1.message_id and again.message_id != d2.message_id
        finally:
            proxy.heal()
            await _close(stores)


async def test_gateway_refuses_to_start_on_a_database_whose_schema_is_behind() -> None:
    async with fresh_schema(migrate=False) as dsn:
        store = PostgresStore(dsn)
        with pytest.raises(StoreSchemaOutdated) as err:
            await store.open()
        assert err.value.code == "STORE_SCHEMA_OUTDATED" and "PostgreSQL store" in err.value.message
        assert "nswgw db upgrade" in err.value.message and err.value.details["version"] == 0
        assert await asyncio.to_thread(nswgw, ["db", "status", "--dsn", dsn]) == 1
        assert await asyncio.to_thread(nswgw, ["db", "upgrade", "--dsn", dsn]) == 0
        assert await asyncio.to_thread(nswgw, ["db", "upgrade", "--dsn", dsn]) == 0  # idempotent
        assert await asyncio.to_thread(nswgw, ["db", "status", "--dsn", dsn]) == 0
        async with store:
            assert await store.stats() == []


async def test_database_one_migration_behind_is_refused_then_upgraded_to_lz4_payloads_and_hot_leases(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with fresh_schema(migrate=False) as dsn:
        with monkeypatch.context() as m:  # a database last upgraded by a gateway that knew only migration 1
            m.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:1])
            conn = await asyncpg.connect(dsn)
            try:
                await migrations.upgrade(conn)
            finally:
                await conn.close()
        store = PostgresStore(dsn)
        with pytest.raises(StoreSchemaOutdated) as err:
            await store.open()
        assert err.value.code == "STORE_SCHEMA_OUTDATED"
        assert err.value.details["version"] == 1 and err.value.details["needed"] == migrations.LATEST
        assert await asyncio.to_thread(nswgw, ["db", "upgrade", "--dsn", dsn]) == 0
        big = b"<eco>" + b"".join(b"<Item n='%d'>rice, jasmine, 5%% broken</Item>" % i for i in range(3000)) + b"</eco>"
        async with store:
            m_, ds, ack = queued("BIG-1")
            await store.accept(m_, big, [replace(d, payload=big) for d in ds], ack)
            [claimed] = await store.claim("TH", owner="w", limit=1, now=200.0, lease=60)
            assert claimed.payload == big
        conn = await asyncpg.connect(dsn)
        try:
            assert await conn.fetchval("SELECT pg_column_compression(data) FROM message_payloads") == "lz4"
            assert await conn.fetchval("SELECT pg_column_compression(data) FROM delivery_payloads") == "lz4"
            assert await conn.fetchval("SELECT to_regclass('deliveries_leased')") is None
            assert await conn.fetchval("SELECT to_regprocedure('journal_head(bigint)')") is not None
            assert "fillfactor=80" in await conn.fetchval(
                "SELECT array_to_string(reloptions, ',') FROM pg_class WHERE oid = 'deliveries'::regclass"
            )
        finally:
            await conn.close()


async def test_delivery_queued_at_version_2_is_upgraded_and_sent_with_its_destination_media_type(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Prerequisite: a database at schema version 2 with a delivery queued for a ``json`` destination (no content
    type stored), as a node of the earlier version leaves it, also while it runs on after ``nswgw db upgrade``.
    Predicate: after the upgrade the row's content type stays unknown (NULL) and it is delivered as
    ``application/json``, the media type of the destination's format."""
    from helpers.mappings import form_d
    from mappings.registry import get

    body = get("json").emit(form_d())
    message, delivery, history = version_2_rows(body, at=time.time())
    rest = await Receiver().start()
    try:
        async with fresh_schema(migrate=False) as dsn:
            with monkeypatch.context() as m:  # the database as a gateway that knew migrations 1 and 2 left it
                m.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:2])
                conn = await asyncpg.connect(dsn)
                try:
                    await migrations.upgrade(conn)
                    assert await migrations.current_version(conn) == 2
                    marks = ", ".join(f"${i}" for i in range(1, len(message) + 1))
                    await conn.execute(
                        f"INSERT INTO messages ({', '.join(message)}) VALUES ({marks})", *message.values()
                    )
                    marks = ", ".join(f"${i}" for i in range(1, len(delivery) + 1))
                    await conn.execute(
                        f"INSERT INTO deliveries ({', '.join(delivery)}) VALUES ({marks})", *delivery.values()
                    )
                    await conn.executemany(LEGACY_TRANSITIONS + "($1, $2, $3, $4, $5)", history)
                finally:
                    await conn.close()
            assert await asyncio.to_thread(nswgw, ["db", "upgrade", "--dsn", dsn]) == 0
            config = make_config(
                tmp_path,
                {"REST": rest.url},
                per_destination={"REST": {"format": "json"}},
                extra={"store": {"kind": "postgresql", "dsn": dsn, "pool_size": 4}},
            )
            async with Gateway(config) as gw:

                async def acknowledged() -> bool:
                    record = await gw.store.get(message["id"])
                    return record is not None and record.state is State.ACKNOWLEDGED

                await eventually(acknowledged)
                record = await gw.store.get(message["id"])
            conn = await asyncpg.connect(dsn)
            try:
                assert await migrations.current_version(conn) == migrations.LATEST
            finally:
                await conn.close()
    finally:
        await rest.stop()
    assert [r["headers"]["Content-Type"] for r in rest.requests] == ["application/json"]
    assert rest.requests[0]["body"] == body
    assert record is not None and [d.content_type for d in record.deliveries] == [None]


@pytest.mark.parametrize("on_dead", ["hold", "skip"])
async def test_claim_finds_conversation_heads_and_its_rows_by_index_whatever_the_backlog(
    dsn: str, on_dead: OnDead
) -> None:
    [store] = await _nodes(dsn, 1)
    conn = await asyncpg.connect(dsn)
    try:
        # A node prepares its claim when the outbox is new and keeps that plan while the table grows: the
        # plan must reach rows by index, and check each candidate's conversation head with one probe on
        # (destination, conversation), not by reading every pending row of the destination per candidate.
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        await conn.execute("PREPARE claim AS " + _CLAIMS[on_dead])
        await conn.execute("EXECUTE claim('TH', 'w', 0, 16, 60, 1)")
        await asyncio.gather(*(accept(store, f"M-{i}", conversation=f"C-{i % 50}") for i in range(1200)))
        delivered = 0
        while done := await store.claim(
            "TH", owner="w", limit=100, now=200.0, lease=60, on_dead=on_dead
        ):  # 50 heads at a time
            await asyncio.gather(
                *(store.record(d.delivered(at=201.0).acknowledged(b"ok", at=201.0), owner="w", now=201.0) for d in done)
            )
            delivered += len(done)
        assert delivered == 1200
        await accept(store, "NEW-1", conversation="C-1")
        plan = await conn.fetchval("EXPLAIN (FORMAT JSON) EXECUTE claim('TH', 'w', 300, 16, 60, 1)")
        scans = []

        def walk(node: dict[str, Any]) -> None:
            if node.get("Relation Name") == "deliveries":
                scans.append((node["Node Type"], node.get("Index Name"), node.get("Index Cond", "")))
            for child in node.get("Plans", []):
                walk(child)

        walk(json.loads(plan)[0]["Plan"])
        assert scans and all(kind in ("Index Scan", "Index Only Scan", "ModifyTable") for kind, _, _ in scans), scans
        [(_, _, head_probe)] = [scan for scan in scans if scan[1] == "deliveries_pending"]
        assert "destination" in head_probe and "conversation" in head_probe, scans
        [new] = await store.claim("TH", owner="w", limit=16, now=300.0, lease=60, on_dead=on_dead)
        assert new.message_id == queued("NEW-1")[0].id
    finally:
        await conn.close()
        await _close([store])


def test_postgresql_store_without_a_dsn_names_the_key() -> None:
    from gateway.config import parse_config

    with pytest.raises(ConfigError) as err:
        parse_config({"store": {"kind": "postgresql"}})
    assert err.value.code == "CONFIG_INVALID" and err.value.field == "store.dsn"
    assert isinstance(
        store_from_settings(
            parse_config({"gateway": {"signing": "off"}, "store": {"kind": "postgresql", "dsn": PG_DSN}}).store
        ),
        PostgresStore,
    )


async def test_unreachable_database_is_store_unavailable_not_a_driver_error() -> None:
    store = PostgresStore("postgresql://postgres@127.0.0.1:1/test", connect_timeout=5)
    with pytest.raises(StoreUnavailable) as err:
        await store.open()
    assert err.value.code == "STORE_UNAVAILABLE" and isinstance(err.value.__cause__, OSError)
    assert "127.0.0.1:1" in err.value.message


# Every Store method, called with valid arguments. A method missing here fails the next test.
_CALLS: dict[str, Callable[[Store], Awaitable[Any]]] = {
    "recover": lambda s: s.recover(now=1.0),
    "accept": lambda s: s.accept(queued("X")[0], b"<x/>", queued("X")[1], queued("X")[2]),
    "claim": lambda s: s.claim("TH", owner="w", limit=1, now=1.0, lease=1.0),
    "record": lambda s: s.record(replace(queued("X")[1][0], history=()).delivered(at=2.0), owner="w", now=2.0),
    "expire": lambda s: s.expire("TH", now=1.0, code="PARTNER_UNAVAILABLE", detail="ttl"),
    "get": lambda s: s.get("x"),
    "certificate": lambda s: s.certificate("VN", "x"),
    "certificates": lambda s: s.certificates(CertificateQuery(status="utilized", party="TH", after=(1.0, "VN", "x"))),
    "search": lambda s: s.search(MessageQuery(sender="MOIT", destination="TH", code="X", after=(1.0, "x"))),
    "dead_letters": lambda s: s.dead_letters(),
    "journal": lambda s: s.journal(),
    "stats": lambda s: s.stats(),
    "outcomes": lambda s: s.outcomes(["TH"]),
    "flows": lambda s: s.flows(1.0, 2.0),
    "procedure_stats": lambda s: s.procedure_stats(1.0, 2.0),
    "health": lambda s: s.health(),
    "waiting_behind": lambda s: s.waiting_behind(queued("X")[1][0]),
    "state_add": lambda s: s.state_add("inbound:as4", "k", b"v", expires_at=2.0, now=1.0),
    "state_put": lambda s: s.state_put("inbound:as4", "k", b"v", expires_at=2.0),
    "state_replace": lambda s: s.state_replace("inbound:as4", "k", b"v", b"w", expires_at=2.0, now=1.0),
    "state_get": lambda s: s.state_get("inbound:as4", "k", now=1.0),
    "state_delete": lambda s: s.state_delete("inbound:as4", "k"),
    "state_purge": lambda s: s.state_purge("inbound:as4", now=1.0),
    "journal_head": lambda s: s.journal_head(),
    "evidence_digests": lambda s: s.evidence_digests(
        [JournalEntry(1, 1.0, "ACCEPTED", "x", None, "0" * 64, "0" * 64, "0" * 64)]
    ),
    "integrity": lambda s: s.integrity(),
    "journal_base": lambda s: s.journal_base(),
    "timestamp_add": lambda s: s.timestamp_add(StoredTimestamp(1, "0" * 64, b"token", 1.0, "1")),
    "timestamps": lambda s: s.timestamps(since_seq=1),
    "reference_add": lambda s: s.reference_add(
        ReferenceVersion("a.b", 0, "MOIT", "prohibited", 1.0, (), "0" * 64, "ops", "operator", None, 1.0)
    ),
    "reference_versions": lambda s: s.reference_versions(),
    "reference_head": lambda s: s.reference_head(),
    "finished_messages": lambda s: s.finished_messages(received_before=1.0, limit=1),
    "message_payload": lambda s: s.message_payload("x"),
    "prune_archived": lambda s: s.prune_archived(["x"], base=JournalBase(1, "0" * 64, "")),
    "record_operator_action": lambda s: s.record_operator_action(OperatorAction.new("ops", "reload", at=1.0)),
    "operator_actions": lambda s: s.operator_actions(operator="ops", since=1.0, ids=["x"]),
    "registry_find": lambda s: s.registry_find(RegistryQuery(at=1.0, holder="0100000001", hs_code="0102")),
    "registry_document": lambda s: s.registry_document("permit", "x"),
    "registry_candidates": lambda s: s.registry_candidates("0100000001", ["01022900"]),
    "ship_call": lambda s: s.ship_call("x"),
    "disclosures": lambda s: s.disclosures(DisclosureQuery(destination="MS", since=1.0, after=(2.0, 1))),
}


@pytest.mark.parametrize("broken", ["schema-dropped", "connections-killed"])
async def test_no_driver_exception_leaves_any_store_method(broken: str) -> None:
    methods = sorted(Store.__abstractmethods__ - {"open", "close"})
    assert sorted(_CALLS) == methods, "add every Store method to _CALLS"
    for name in methods:
        async with fresh_schema() as dsn:
            store_name = f"nswgw-test-{uuid.uuid4().hex[:8]}"
            store = PostgresStore(dsn, pool_size=3, writers=1, node_name=store_name)
            async with store:
                admin = await asyncpg.connect(PG_DSN)
                try:
                    if broken == "schema-dropped":
                        schema = dsn.rsplit("search_path=", 1)[1]
                        await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
                    else:
                        await admin.execute(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
                            store_name,
                        )
                finally:
                    await admin.close()
                if name == "health":  # never raises: each check it could not pass is reported failed, coded
                    checks = await store.health()
                    failed = [v for v in checks.values() if v != "ok"]
                    assert all(re.match(r"failed: \[(STORE_UNAVAILABLE|GATEWAY_INTERNAL)\]", v) for v in failed), checks
                    assert failed or broken == "connections-killed", checks
                    continue
                if name == "integrity":  # never raises either: reports the coded failure
                    result = await store.integrity()
                    assert result == "ok" or re.match(r"failed: \[(STORE_UNAVAILABLE|GATEWAY_INTERNAL)\]", result)
                    assert result != "ok" or broken == "connections-killed", result
                    continue
                try:
                    await _CALLS[name](store)
                except NswError as exc:
                    if exc.code == "STATE_TRANSITION_INVALID" and broken == "connections-killed":
                        continue  # the store answered: there is no such leased delivery
                    assert exc.code in ("STORE_UNAVAILABLE", "GATEWAY_INTERNAL"), (name, exc)
                    assert exc.__cause__ is not None, name
                else:  # a killed connection may be replaced by the pool transparently; a dropped schema may not
                    assert broken == "connections-killed", f"{name} succeeded on a dropped schema"


@pytest.mark.parametrize(
    ("store", "field"),
    [
        ({"kind": "sqlite", "url": "postgresql://postgres@127.0.0.1:5432/test"}, "store.url"),
        ({"url": "postgres://postgres@127.0.0.1:5432/test"}, "store.url"),
        ({"kind": "postgresql", "dsn": "sqlite:///gateway.db"}, "store.dsn"),
    ],
    ids=["sqlite-kind-with-a-postgresql-url", "default-kind-with-a-postgres-url", "postgresql-kind-with-a-sqlite-dsn"],
)
def test_store_kind_alone_selects_the_store(store: dict, field: str) -> None:
    from gateway.config import parse_config

    with pytest.raises(ConfigError) as err:
        parse_config({"store": store})
    assert err.value.code == "CONFIG_INVALID" and err.value.field == field
