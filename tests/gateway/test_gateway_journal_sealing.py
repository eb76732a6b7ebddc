"""The PostgreSQL journal chained after commit (gateway.store.pg_journal): several nodes writing at once commit
without waiting for the journal lock, every entry is chained exactly once into one verifiable chain, and
``nswgw log verify`` still finds an entry deleted, altered or moved. Real server, one schema per test, several
:class:`PostgresStore` nodes on it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from test_gateway_store import accept

from gateway.cli import main as nswgw
from gateway.config import load_config
from gateway.errors import ConfigError
from gateway.journal import OperatorAction, verify_chain
from gateway.store.postgres import PostgresStore
from helpers.gateway import eventually
from helpers.postgres import fresh_schema

pytestmark = [pytest.mark.postgres]


@pytest.fixture
async def dsn() -> AsyncIterator[str]:
    async with fresh_schema() as d:
        yield d


async def _nodes(dsn: str, n: int, **options: Any) -> list[PostgresStore]:
    stores = [PostgresStore(dsn, pool_size=4, node_name=f"sealing-node-{i}", **options) for i in range(n)]
    for s in stores:
        await s.open()
    return stores


async def _close(stores: list[PostgresStore]) -> None:
    for s in stores:
        await s.close()


async def _traffic(stores: list[PostgresStore], messages: int) -> set[tuple[str, str, str | None]]:
    """``messages`` accepted round-robin on ``stores`` at once, each delivery acknowledged on another node at once:
    the (kind, message, destination) of every journal entry this wrote."""
    acks = await asyncio.gather(*(accept(stores[i % len(stores)], f"M-{i}") for i in range(messages)))
    claimed = await stores[0].claim("TH", owner="w", limit=messages, now=200.0, lease=60)
    await asyncio.gather(
        *(
            stores[(i + 1) % len(stores)].record(
                d.delivered(at=201.0).acknowledged(b"ok", at=201.0), owner="w", now=201.0
            )
            for i, d in enumerate(claimed)
        )
    )
    return {("ACCEPTED", a.id, None) for a in acks} | {("DELIVERED", d.message_id, "TH") for d in claimed}


async def _sql(dsn: str, query: str, *args: object) -> Any:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


_COUNTS = "SELECT (SELECT count(*) FROM journal), (SELECT coalesce(sum(cardinality(kind)), 0) FROM journal_pending)"
"""Entries chained, entries waiting to be."""


def _config_file(tmp_path: Path, dsn: str) -> Path:
    path = tmp_path / "gw.toml"
    path.write_text(
        f"""
[gateway]
verification = "well-formed"
signing = "off"
[store]
kind = "postgresql"
dsn = "{dsn}"
pool_size = 4
[parties.MOIT]
tokens = ["t"]
document_types = ["*"]
[destinations.TH]
url = "http://127.0.0.1:9/inbox"
[[routes]]
to = ["TH"]
[document_types."eco.form_d"]
unchecked = true
"""
    )
    return path


async def _log_verify(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    code = await asyncio.to_thread(nswgw, ["log", "verify", "--config", str(path), "--json", "--chain-only"])
    return code, json.loads(capsys.readouterr().out)


async def test_four_nodes_writing_at_once_lose_no_entry_and_chain_none_twice(dsn: str) -> None:
    stores = await _nodes(dsn, 4)
    try:
        written = await _traffic(stores, 240)
        for store in stores:
            entries = await store.journal()
            assert [e.seq for e in entries] == list(range(1, 481))
            assert {(e.kind, e.message_id, e.destination) for e in entries} == written
            assert verify_chain(entries).ok
        assert await _sql(dsn, "SELECT id FROM journal_pending") == []
        by_message: dict[str, list[str]] = {}
        for e in await stores[0].journal():
            by_message.setdefault(e.message_id, []).append(e.kind)
        assert all(kinds == ["ACCEPTED", "DELIVERED"] for kinds in by_message.values())
    finally:
        await _close(stores)


async def test_entries_are_chained_without_anyone_reading_the_journal(dsn: str) -> None:
    stores = await _nodes(dsn, 2)
    try:
        await asyncio.gather(*(accept(stores[i % 2], f"M-{i}") for i in range(40)))

        async def chained() -> bool:
            rows = await _sql(dsn, _COUNTS)
            return tuple(rows[0]) == (40, 0)

        await eventually(chained)
    finally:
        await _close(stores)


async def test_nodes_commit_while_another_session_holds_the_journal_lock(dsn: str) -> None:
    """Prerequisite: an outside session holds the schema's journal lock (what a sealer, or a node chaining at
    commit, holds). Predicate: accepts on two nodes still commit and are answered; their entries wait, unchained,
    and are chained into one valid chain once the lock is released."""
    stores = await _nodes(dsn, 2)
    holder = await asyncpg.connect(dsn)
    try:
        await holder.execute("BEGIN")
        await holder.execute("SELECT pg_advisory_xact_lock(hashtext('nswgw-journal:' || current_schema()))")
        acks = await asyncio.gather(*(accept(stores[i % 2], f"M-{i}") for i in range(20)))
        assert len({a.id for a in acks}) == 20
        rows = await _sql(dsn, _COUNTS)
        assert tuple(rows[0]) == (0, 20)
        await holder.execute("COMMIT")
        entries = await stores[1].journal()
        assert len(entries) == 20 and verify_chain(entries).ok
        assert {e.message_id for e in entries} == {a.id for a in acks}
    finally:
        await holder.close()
        await _close(stores)


async def test_a_node_chaining_at_commit_waits_for_the_journal_lock(dsn: str) -> None:
    """The ``inline`` journal: the accept's transaction waits on the journal lock (seen in ``pg_stat_activity``)
    until the outside session lets it go."""
    [store] = await _nodes(dsn, 1, journal="inline")
    holder = await asyncpg.connect(dsn)
    try:
        await holder.execute("BEGIN")
        await holder.execute("SELECT pg_advisory_xact_lock(hashtext('nswgw-journal:' || current_schema()))")
        pending = asyncio.create_task(accept(store, "M-1"))

        async def waiting() -> bool:
            rows = await _sql(
                dsn,
                "SELECT 1 FROM pg_stat_activity WHERE application_name = 'sealing-node-0'"
                " AND wait_event_type = 'Lock' AND wait_event = 'advisory'",
            )
            return bool(rows)

        await eventually(waiting)
        assert not pending.done()
        await holder.execute("COMMIT")
        ack = await pending
        [entry] = await store.journal()
        assert entry.message_id == ack.id and verify_chain([entry]).ok
    finally:
        await holder.close()
        await store.close()


async def test_nodes_chaining_at_commit_and_after_it_share_one_chain(dsn: str) -> None:
    stores = await _nodes(dsn, 1, journal="inline") + await _nodes(dsn, 2)
    try:
        written = await _traffic(stores, 90)
        entries = await stores[0].journal()
        assert [e.seq for e in entries] == list(range(1, 181)) and verify_chain(entries).ok
        assert {(e.kind, e.message_id, e.destination) for e in entries} == written
    finally:
        await _close(stores)


async def test_entries_of_a_node_that_stopped_unsealed_are_chained_by_another(dsn: str) -> None:
    """Prerequisite: node A commits entries while the journal lock is held elsewhere and stops before it can chain
    them (its last attempt gives up). Predicate: node B, still running, chains them on its own."""
    [b] = await _nodes(dsn, 1)
    a = PostgresStore(dsn, pool_size=4, node_name="sealing-node-a", connect_timeout=1.0)
    await a.open()
    holder = await asyncpg.connect(dsn)
    try:
        await holder.execute("BEGIN")
        await holder.execute("SELECT pg_advisory_xact_lock(hashtext('nswgw-journal:' || current_schema()))")
        acks = [await accept(a, f"M-{i}") for i in range(5)]
        await a.close()
        await holder.execute("COMMIT")

        async def chained() -> bool:
            rows = await _sql(dsn, "SELECT message FROM journal ORDER BY seq")
            return [r[0] for r in rows] == [ack.id for ack in acks]

        await eventually(chained)
        assert verify_chain(await b.journal()).ok
    finally:
        await holder.close()
        await b.close()


async def test_another_nodes_head_is_read_after_every_commit(dsn: str) -> None:
    """What anchors and RFC 3161 head timestamps read: the head on node B includes what node A just committed;
    an operator action's entry is chained when it is returned."""
    a, b = stores = await _nodes(dsn, 2)
    try:
        ack = await accept(a, "M-1")
        head = await b.journal_head()
        assert head is not None and (head.seq, head.message_id) == (1, ack.id)
        entry = await b.record_operator_action(OperatorAction.new("ops", "reload", at=300.0))
        assert entry.seq == 2 and entry.prev == head.hash
        [listed] = await a.operator_actions(operator="ops")
        assert listed.seq == 2
    finally:
        await _close(stores)


@pytest.mark.parametrize(
    ("tamper", "seq", "problem"),
    [
        ("DELETE FROM journal WHERE seq = 17", 17, "removed"),
        ("UPDATE journal SET destination = 'XX' WHERE seq = 23", 23, "edited"),
        (
            "UPDATE journal SET seq = -seq WHERE seq IN (30, 31);"
            " UPDATE journal SET seq = CASE seq WHEN -30 THEN 31 ELSE 30 END WHERE seq IN (-30, -31)",
            30,
            "broken-link",
        ),
    ],
    ids=["deleted", "altered", "reordered"],
)
async def test_an_entry_deleted_altered_or_reordered_after_nodes_wrote_at_once_is_found_by_log_verify(
    dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], tamper: str, seq: int, problem: str
) -> None:
    stores = await _nodes(dsn, 3)
    try:
        await _traffic(stores, 30)
        await stores[2].journal()  # every entry chained
    finally:
        await _close(stores)
    path = _config_file(tmp_path, dsn)
    code, report = await _log_verify(path, capsys)
    assert (code, report["ok"], report["entries"]) == (0, True, 60)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(tamper)
    finally:
        await conn.close()
    code, report = await _log_verify(path, capsys)
    assert code == 1 and not report["ok"]
    assert any(p.startswith(f"entry {seq}: {problem}") for p in report["problems"]), report["problems"]


async def test_a_journal_mode_that_does_not_exist_is_refused_at_load_naming_the_key(tmp_path: Path) -> None:
    path = _config_file(tmp_path, "postgresql://postgres@127.0.0.1:5432/test")
    path.write_text(path.read_text().replace("pool_size = 4", 'pool_size = 4\njournal = "async"'))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.code == "CONFIG_INVALID" and err.value.field == "store.journal"
    with pytest.raises(ConfigError) as direct:
        PostgresStore("postgresql://postgres@127.0.0.1:5432/test", journal="async")
    assert direct.value.field == "store.journal"
