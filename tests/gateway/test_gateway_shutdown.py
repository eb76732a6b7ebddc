"""Graceful shutdown against a partner slower than the destination timeout, on SQLite and PostgreSQL.

Prerequisite: a real loopback partner that processes each request at once and then answers late (or never);
a gateway (in process, or a ``nswgw serve`` subprocess stopped with SIGTERM) with deliveries in flight.
Predicate: once the gateway has stopped, the store holds no lease of it (lease columns all NULL); every
delivery is recorded or released back to ``QUEUED`` (a history step says so, the attempt not counted); after a
restart every message reaches the deduplicating partner exactly once (and with the same message id), none lost.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from gateway.api import Gateway
from gateway.config import Config
from gateway.errors import ConfigError
from gateway.model import Delivery, State
from gateway.store import Store, store_from_settings
from helpers.gateway import TOKENS, Receiver, doc, eventually, make_config, submit
from helpers.postgres import fresh_schema

RELEASED = "lease released at shutdown"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    if request.param == "sqlite":
        yield {"url": f"sqlite:///{tmp_path / 'gw.db'}", "synchronous": "NORMAL"}
        return
    async with fresh_schema() as dsn:
        yield {"kind": "postgresql", "dsn": dsn}


@pytest.fixture
async def partner() -> AsyncIterator[Receiver]:
    receiver = await Receiver(dedup=True, delay=3600.0).start()
    yield receiver
    receiver.delay = 0.0  # let the hanging requests end
    await receiver.stop()


def _config(tmp_path: Path, store: dict[str, Any], partner: Receiver, *, timeout: float, grace: float) -> Config:
    return make_config(
        tmp_path,
        {"TH": partner.url},
        concurrency=4,
        gateway={"shutdown_grace": grace},
        per_destination={"TH": {"timeout": timeout}},
        extra={"store": store},
    )


async def _leases(store: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The deliveries leased to anyone, read from the lease columns."""
    if "dsn" in store:
        conn = await asyncpg.connect(store["dsn"])
        try:
            rows = await conn.fetch(
                "SELECT message, lease_owner, lease_until, lease_node FROM deliveries"
                " WHERE lease_owner IS NOT NULL OR lease_until IS NOT NULL OR lease_node IS NOT NULL"
            )
        finally:
            await conn.close()
        return [tuple(r) for r in rows]
    db = sqlite3.connect(store["url"].removeprefix("sqlite:///"))
    try:
        return db.execute(
            "SELECT message, lease_owner, lease_until FROM deliveries"
            " WHERE lease_owner IS NOT NULL OR lease_until IS NOT NULL"
        ).fetchall()
    finally:
        db.close()


async def _submit_all(gw: Gateway, n: int) -> list[str]:
    ids = []
    async with aiohttp.ClientSession() as s:
        for i in range(n):
            status, ack = await submit(s, gw.url, "MOIT", f"SLOW-{i}", "eco.form_d", doc(i))
            assert status == 202, ack
            ids.append(ack["id"])
    return ids


async def _deliveries(store: Store, ids: list[str]) -> list[Delivery]:
    out = []
    for i in ids:
        rec = await store.get(i)
        assert rec is not None
        out.extend(rec.deliveries)
    return out


async def _restart_and_drain(config: Config, store: dict[str, Any], partner: Receiver, ids: list[str]) -> None:
    """Restart with a partner that answers at once: every message acknowledged, processed exactly once."""
    partner.delay = 0.0
    async with Gateway(config) as gw:

        async def done() -> bool:
            return all(d.state is State.ACKNOWLEDGED for d in await _deliveries(gw.store, ids))

        await eventually(done)
    assert partner.counts() == {i: 1 for i in ids}
    assert {r["id"] for r in partner.requests} == set(ids)  # every resend carried the same message id
    assert await _leases(store) == []


async def test_hanging_partner_past_the_grace_period_leaves_no_lease_and_is_delivered_once_after_restart(
    tmp_path: Path, store_settings: dict[str, Any], partner: Receiver
) -> None:
    config = _config(tmp_path, store_settings, partner, timeout=30.0, grace=0.3)
    gw = Gateway(config)
    await gw.start()
    try:
        ids = await _submit_all(gw, 10)  # 4 in flight (concurrency), 6 waiting behind them
        await eventually(lambda: len(partner.requests) == 4)
    finally:
        started = asyncio.get_running_loop().time()
        await gw.stop()
    assert asyncio.get_running_loop().time() - started < 5.0  # bounded by the grace period, not the timeout
    assert await _leases(store_settings) == []
    async with store_from_settings(config.store) as store:  # look with no worker that could claim
        deliveries = await _deliveries(store, ids)
    assert all(d.state is State.QUEUED and d.attempts == 0 for d in deliveries)
    released = [d.message_id for d in deliveries for t in d.history if t.detail is not None and RELEASED in t.detail]
    assert sorted(released) == sorted({r["id"] for r in partner.requests})
    await _restart_and_drain(config, store_settings, partner, ids)


async def test_partner_slower_than_the_destination_timeout_records_a_retry_within_the_grace_period(
    tmp_path: Path, store_settings: dict[str, Any], partner: Receiver
) -> None:
    config = _config(tmp_path, store_settings, partner, timeout=0.3, grace=5.0)
    gw = Gateway(config)
    await gw.start()
    try:
        ids = await _submit_all(gw, 6)
        await eventually(lambda: len(partner.requests) >= 4)
    finally:
        await gw.stop()
    assert await _leases(store_settings) == []
    async with store_from_settings(config.store) as store:  # look with no worker that could claim
        deliveries = await _deliveries(store, ids)
    assert all(d.state is State.QUEUED for d in deliveries)
    timed_out = [d for d in deliveries if d.attempts]
    assert timed_out and all(d.last_error and d.last_error["code"] == "PARTNER_UNAVAILABLE" for d in timed_out)
    await _restart_and_drain(config, store_settings, partner, ids)


async def test_attempt_cancelled_while_recording_its_acknowledgement_is_recorded_at_shutdown(
    tmp_path: Path, store_settings: dict[str, Any], partner: Receiver
) -> None:
    partner.delay = 0.0
    config = _config(tmp_path, store_settings, partner, timeout=30.0, grace=0.2)
    gw = Gateway(config)
    await gw.start()
    original = gw.store.record
    blocked = asyncio.Event()

    async def stuck_record(delivery: Delivery, *, owner: str | None, now: float) -> None:
        if delivery.state is State.ACKNOWLEDGED and not blocked.is_set():
            blocked.set()
            await asyncio.sleep(3600)  # cancelled by the shutdown
        await original(delivery, owner=owner, now=now)

    gw.store.record = stuck_record  # type: ignore[method-assign]
    try:
        ids = await _submit_all(gw, 1)
        await asyncio.wait_for(blocked.wait(), 10)
    finally:
        await gw.stop()
    assert await _leases(store_settings) == []
    async with store_from_settings(config.store) as store:  # look with no worker that could claim
        (delivery,) = await _deliveries(store, ids)
    assert delivery.state is State.ACKNOWLEDGED and delivery.attempts == 1
    assert partner.counts() == {ids[0]: 1}


async def test_batch_claimed_while_stopping_is_released_unsent(
    tmp_path: Path, store_settings: dict[str, Any], partner: Receiver
) -> None:
    config = _config(tmp_path, store_settings, partner, timeout=30.0, grace=0.2)
    gw = Gateway(config)
    await gw.start()
    gw.engine.workers["TH"].stop()
    await asyncio.sleep(0.2)  # the worker has drained and exited; claim by hand as a stopping worker would
    worker = gw.engine.workers["TH"]
    try:
        ids = await _submit_all(gw, 3)
        original = gw.store.claim

        async def claim_then_stop(*args: Any, **kwargs: Any) -> list[Delivery]:
            claimed = await original(*args, **kwargs)
            worker.stop()  # SIGTERM arrives while the claim is on its way back
            return claimed

        gw.store.claim = claim_then_stop  # type: ignore[method-assign]
        worker._stopping = False
        worker._last_expire = worker.clock.monotonic()
        runner = asyncio.create_task(worker.run())
        await asyncio.wait_for(runner, 10)
        assert len(await _leases(store_settings)) == 0
    finally:
        await gw.stop()
    assert partner.requests == []
    assert await _leases(store_settings) == []
    async with store_from_settings(config.store) as store:  # look with no worker that could claim
        deliveries = await _deliveries(store, ids)
    assert all(d.state is State.QUEUED and d.attempts == 0 for d in deliveries)
    assert all(any(t.detail and RELEASED in t.detail for t in d.history) for d in deliveries)
    await _restart_and_drain(config, store_settings, partner, ids)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
async def test_sigterm_to_serve_with_a_hanging_partner_leaves_no_lease_and_delivers_once_after_restart(
    tmp_path: Path, store_settings: dict[str, Any], partner: Receiver
) -> None:
    port = _free_port()
    store_toml = "\n".join(f'{k} = "{v}"' for k, v in store_settings.items())
    path = tmp_path / "serve.toml"
    path.write_text(f"""
[gateway]
port = {port}
poll_interval = 0.05
shutdown_grace = 0.5
verification = "well-formed"   # unsigned test documents
signing = "off"
[store]
{store_toml}
[parties.MOIT]
tokens = ["{TOKENS["MOIT"]}"]
document_types = ["eco.form_d"]
[destinations.TH]
url = "{partner.url}"
concurrency = 8
timeout = 30
[destinations.TH.retry]
max_attempts = 100
ttl = 3600
initial = 0.01
max_wait = 0.1
jitter = 0.01
[[routes]]
document_type = "eco.form_d"
to = ["TH"]
[document_types."eco.form_d"]
unchecked = true               # opaque test documents
""")
    log = tmp_path / "serve.log"

    def serve() -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "gateway.commands", "serve", "--config", str(path)],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=tmp_path,
            )

    async def run_until_healthy(session: aiohttp.ClientSession) -> subprocess.Popen[bytes]:
        proc = serve()

        async def healthy() -> bool:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                async with session.get(f"http://127.0.0.1:{port}/healthz") as r:
                    return r.status == 200
            except aiohttp.ClientError:
                return False

        await eventually(healthy, limit=60, step=0.05)
        return proc

    async def stop(proc: subprocess.Popen[bytes]) -> int:
        os.kill(proc.pid, signal.SIGTERM)
        return await asyncio.to_thread(proc.wait, 30)

    ids = []
    async with aiohttp.ClientSession() as session:
        proc = await run_until_healthy(session)
        try:
            for i in range(12):
                status, ack = await submit(session, f"http://127.0.0.1:{port}", "MOIT", f"T-{i}", "eco.form_d", doc(i))
                assert status == 202, ack
                ids.append(ack["id"])
            await eventually(lambda: len(partner.requests) == 8)  # a full bulkhead hangs on the partner
        finally:
            code = await stop(proc)
        assert code == 0, log.read_text()[-3000:]
        assert await _leases(store_settings) == [], log.read_text()[-3000:]

        partner.delay = 0.0
        proc = await run_until_healthy(session)
        try:

            async def all_acknowledged() -> bool:
                states = []
                for i in ids:
                    async with session.get(
                        f"http://127.0.0.1:{port}/v1/messages/{i}",
                        headers={"Authorization": f"Bearer {TOKENS['MOIT']}"},
                    ) as r:
                        states.append((await r.json()).get("state"))
                return all(s == "ACKNOWLEDGED" for s in states)

            await eventually(all_acknowledged, limit=60)
        finally:
            assert await stop(proc) == 0
    assert partner.counts() == {i: 1 for i in ids}
    assert {r["id"] for r in partner.requests} == set(ids)
    assert await _leases(store_settings) == []


def test_negative_shutdown_grace_is_refused_at_load(tmp_path: Path) -> None:
    assert make_config(tmp_path, {"TH": "http://127.0.0.1:1/inbox"}).gateway.shutdown_grace == 10.0
    with pytest.raises(ConfigError) as err:
        make_config(tmp_path, {"TH": "http://127.0.0.1:1/inbox"}, gateway={"shutdown_grace": -1})
    assert err.value.code == "CONFIG_INVALID" and err.value.field == "gateway.shutdown_grace"
