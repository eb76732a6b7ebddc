"""The running gateway timestamps its journal head with a real ``openssl ts -reply`` TSA on loopback, on both
stores: tokens stored and verified, a TSA outage that leaves intake open and turns ``/readyz`` not ready only
after the grace period, catch-up after the outage with no new messages, intake stopped only when configured, and
``nswgw log verify`` naming a tampered token's seq.

Time past the grace period is the injected clock's (moved by the test), never a wait."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from asn1crypto import cms, tsp

from gateway.api import Gateway
from gateway.commands import main
from gateway.config import Config
from gateway.journal import JournalEntry
from gateway.store import Store
from gateway.store.base import StoredTimestamp
from gateway.timestamps import verify_stored_timestamps
from helpers.gateway import Receiver, cli_toml, doc, eventually, make_config, submit
from helpers.tsa import TsaPki, TsaServer, tsa_pki, tsa_server  # noqa: F401

FORM_D = "eco.form_d"
GRACE = 600.0


class ShiftedClock:
    """Wall time plus an offset the test moves forward (the grace period passes without waiting for it)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    def not_before(self, at: float) -> None:
        pass

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with Receiver() as r:
        yield r


def _settings(tsa_server: TsaServer, tsa_pki: TsaPki, **extra: Any) -> dict[str, Any]:
    return {
        "url": tsa_server.url,
        "anchors": [str(tsa_pki.root_path)],
        "every_entries": 1,
        "check_interval": 0.05,
        "max_backoff": 1.0,
        "grace": GRACE,
        "timeout": 5.0,
        **extra,
    }


def _config(tmp_path: Path, receiver: Receiver, settings: dict[str, Any]) -> Config:
    """Everything to ``TH`` at ``receiver``, the journal timestamped under ``settings``."""
    return make_config(tmp_path, {"TH": receiver.url}, extra={"journal": {"timestamp": settings}})


async def _accept(session: aiohttp.ClientSession, gw: Gateway, *numbers: int | str) -> None:
    """MOIT's messages ``M-{n}`` (:func:`doc` ``n``) for each of ``numbers``, each accepted."""
    for n in numbers:
        status, body = await submit(session, gw.url, "MOIT", f"M-{n}", FORM_D, doc(n))
        assert status == 202, body


async def _head_stamped(gw: Gateway) -> bool:
    head = await gw.store.journal_head()
    stamps = await gw.store.timestamps()
    return head is not None and bool(stamps) and stamps[-1].seq == head.seq


async def _readyz(session: aiohttp.ClientSession, gw: Gateway) -> tuple[int, dict[str, Any]]:
    async with session.get(f"{gw.url}/readyz") as r:
        return r.status, await r.json()


async def test_tokens_over_the_head_are_stored_and_verify(
    tmp_path: Path, store: Store, receiver: Receiver, tsa_server: TsaServer, tsa_pki: TsaPki
) -> None:
    config = _config(tmp_path, receiver, _settings(tsa_server, tsa_pki))
    async with Gateway(config, store=store) as gw, aiohttp.ClientSession() as session:
        await _accept(session, gw, 0, 1, 2)

        async def settled() -> bool:  # three messages accepted and delivered: six entries, then nothing moves
            head = await gw.store.journal_head()
            return head is not None and head.seq == 6 and await _head_stamped(gw)

        await eventually(settled)
        status, ready = await _readyz(session, gw)
        assert ready["checks"]["journal_timestamp"] == "ok"
        entries = {e.seq: e.hash for e in await gw.store.journal()}
        await gw.timestamping.stop()
        report = await verify_stored_timestamps(store, [tsa_pki.root], entries)
        stamps = await store.timestamps()
    assert report.problems == () and report.tokens == len(stamps) >= 1
    assert set(report.covered) == set(entries)
    # an entry is covered by the earliest token at or after it
    first = min(s.seq for s in stamps)
    assert all(report.covered[seq].gen_time <= report.covered[max(entries)].gen_time for seq in entries)
    assert report.covered[1].serial == int(next(s.tsa_serial for s in stamps if s.seq == first))


async def test_tsa_outage_keeps_intake_open_readyz_fails_after_grace_and_recovers_without_new_messages(
    tmp_path: Path, store: Store, receiver: Receiver, tsa_server: TsaServer, tsa_pki: TsaPki
) -> None:
    clock = ShiftedClock()
    config = _config(tmp_path, receiver, _settings(tsa_server, tsa_pki))
    async with Gateway(config, store=store, clock=clock) as gw, aiohttp.ClientSession() as session:
        events = gw.events.subscribe()
        tsa_server.stop()
        await _accept(session, gw, 0, 1, 2)  # the outage does not stop intake
        await eventually(lambda: gw.timestamping.failures >= 2)
        status, ready = await _readyz(session, gw)
        assert status == 200 and ready["checks"]["journal_timestamp"] == "ok"  # within the grace period
        clock.offset += GRACE + 1
        await eventually(lambda: gw.timestamping.overdue())
        status, ready = await _readyz(session, gw)
        assert status == 503
        assert ready["checks"]["journal_timestamp"].startswith("failed: [TIMESTAMP_OVERDUE] no trusted timestamp for ")
        assert "TIMESTAMP_UNAVAILABLE" in ready["checks"]["journal_timestamp"]
        seen: list[Any] = []

        def announced() -> bool:
            seen.extend(e for e in events.pending() if e.name == "timestamp_overdue")
            return bool(seen)

        await eventually(announced)
        assert len(seen) == 1 and seen[0].fields["code"] == "TIMESTAMP_OVERDUE"
        await _accept(session, gw, "late")  # stop_intake_after_grace is off: still accepted

        async def settled() -> bool:  # four messages accepted and delivered: eight entries, then nothing moves
            head = await gw.store.journal_head()
            return head is not None and head.seq == 8

        await eventually(settled)
        head = await gw.store.journal_head()
        assert head is not None
        before = len(await gw.store.timestamps())

        tsa_server.start()  # back on the same port; no message arrives from now on
        clock.offset += 2.0  # past the longest backoff
        await eventually(lambda: _head_stamped(gw))
        stamps = await gw.store.timestamps()
        assert stamps[-1].seq == head.seq and len(stamps) == before + 1
        status, ready = await _readyz(session, gw)
        assert status == 200 and ready["checks"]["journal_timestamp"] == "ok"


async def test_by_time_the_head_is_timestamped_once_every_seconds_passed(
    tmp_path: Path, store: Store, receiver: Receiver, tsa_server: TsaServer, tsa_pki: TsaPki
) -> None:
    clock = ShiftedClock()
    settings = _settings(tsa_server, tsa_pki, every_entries=None, every_seconds=3600.0)
    config = _config(tmp_path, receiver, settings)
    async with Gateway(config, store=store, clock=clock) as gw, aiohttp.ClientSession() as session:
        await _accept(session, gw, 0)

        async def delivered() -> bool:  # accepted and delivered: two entries, then nothing moves
            head = await gw.store.journal_head()
            return head is not None and head.seq == 2

        await eventually(delivered)
        assert await gw.timestamping.round() is None  # not due yet: an hour has not passed
        assert await gw.store.timestamps() == []
        clock.offset += 3601
        await eventually(lambda: _head_stamped(gw))


async def test_intake_refused_with_timestamp_overdue_only_when_configured(
    tmp_path: Path, store: Store, receiver: Receiver, tsa_server: TsaServer, tsa_pki: TsaPki
) -> None:
    clock = ShiftedClock()
    settings = _settings(tsa_server, tsa_pki, stop_intake_after_grace=True)
    config = _config(tmp_path, receiver, settings)
    async with Gateway(config, store=store, clock=clock) as gw, aiohttp.ClientSession() as session:
        tsa_server.stop()
        await _accept(session, gw, 0)
        await eventually(lambda: gw.timestamping.failures >= 1)
        await _accept(session, gw, 1)  # within the grace period
        clock.offset += GRACE + 1
        h = {"Authorization": "Bearer " + config.parties["MOIT"].tokens[0], "X-Message-Id": "M-2"}
        h |= {"X-Document-Type": FORM_D, "Content-Type": "application/xml"}
        async with session.post(f"{gw.url}/v1/messages", data=doc(2), headers=h) as r:
            assert r.status == 503
            assert r.headers["Retry-After"] == "60"
            assert (await r.json())["error"]["code"] == "TIMESTAMP_OVERDUE"
        tsa_server.start()
        clock.offset += 2.0
        await eventually(lambda: _head_stamped(gw))
        await _accept(session, gw, 3)


async def test_a_token_over_another_entry_or_tampered_is_named_by_seq(
    tmp_path: Path, store: Store, receiver: Receiver, tsa_server: TsaServer, tsa_pki: TsaPki
) -> None:
    config = _config(tmp_path, receiver, _settings(tsa_server, tsa_pki))
    async with Gateway(config, store=store) as gw, aiohttp.ClientSession() as session:
        await _accept(session, gw, 0, 1)
        await eventually(lambda: _head_stamped(gw))
        entries = {e.seq: e.hash for e in await gw.store.journal()}
        await gw.timestamping.stop()
        good = (await store.timestamps())[-1]
        flipped = bytearray(good.token)
        flipped[_in_tst_info(good.token)] ^= 0x01
        await store.timestamp_add(StoredTimestamp(good.seq, good.entry_hash, bytes(flipped), good.gen_time, "x"))
        report = await verify_stored_timestamps(store, [tsa_pki.root], entries)
        assert [p.seq for p in report.problems] == [good.seq]
        assert report.problems[0].problem.startswith("timestamp-invalid")
        edited = dict(entries) | {good.seq: "00" * 32}
        report = await verify_stored_timestamps(store, [tsa_pki.root], edited)
    assert {p.seq for p in report.problems} == {good.seq}
    assert any(p.problem.startswith("timestamp-entry-mismatch") for p in report.problems)


def _in_tst_info(token: bytes) -> int:
    """The offset of a byte of the token's TSTInfo (its serial number), which the CMS signature covers."""
    econtent = bytes(cms.ContentInfo.load(token)["content"]["encap_content_info"]["content"].contents)
    serial = tsp.TSTInfo.load(econtent)["serial_number"].contents
    return token.index(econtent) + econtent.index(serial)


def _toml(tmp_path: Path, db: str, tsa_server: TsaServer, tsa_pki: TsaPki) -> Path:
    journal = f'[journal.timestamp]\nurl = "{tsa_server.url}"\nanchors = ["{tsa_pki.root_path}"]\nevery_entries = 1'
    return cli_toml(tmp_path, db, journal)


async def _stamped_exchange(config: Config) -> JournalEntry:
    """Three messages accepted (the destination is down), the head timestamped; the head."""
    async with Gateway(config) as gw, aiohttp.ClientSession() as session:
        await _accept(session, gw, 0, 1, 2)
        await eventually(lambda: _head_stamped(gw))
        head = await gw.store.journal_head()
        assert head is not None
        await gw.timestamping.stop()
        return head


def test_log_verify_says_each_entry_existed_by_and_names_a_tampered_token(
    tmp_path: Path, tsa_server: TsaServer, tsa_pki: TsaPki, capsys: pytest.CaptureFixture[str]
) -> None:
    config = make_config(
        tmp_path, {"TH": "http://127.0.0.1:9/inbox"}, extra={"journal": {"timestamp": _settings(tsa_server, tsa_pki)}}
    )
    head = asyncio.run(_stamped_exchange(config))
    path = _toml(tmp_path, config.store.url, tsa_server, tsa_pki)
    assert main(["log", "verify", "--config", str(path), "--chain-only"]) == 0
    out = capsys.readouterr().out
    assert "token(s) verified" in out and " existed by " in out
    assert main(["log", "verify", "--config", str(path), "--chain-only", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and set(report["timestamps"]["existed_by"]) == {str(s) for s in range(1, head.seq + 1)}

    db = Path(config.store.url.removeprefix("sqlite:///"))
    with sqlite3.connect(db) as conn:
        seq, token = conn.execute("SELECT seq, token FROM journal_timestamps ORDER BY id DESC LIMIT 1").fetchone()
        tampered = bytearray(token)
        tampered[_in_tst_info(token)] ^= 0x01
        conn.execute("UPDATE journal_timestamps SET token = ? WHERE seq = ?", (bytes(tampered), seq))
    assert main(["log", "verify", "--config", str(path), "--chain-only", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert not report["ok"]
    assert [p for p in report["problems"] if p.startswith(f"entry {seq}: timestamp-invalid")]
