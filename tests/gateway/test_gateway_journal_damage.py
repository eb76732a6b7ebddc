"""Damage behind the message log's back: a replaced stored payload or receipt, a damaged database page, the
newest entries cut off the end, an edited entry. Each is found by ``nswgw log verify`` with the exact problem,
and a gateway refuses to start on a broken chain (``JOURNAL_BROKEN``, in process and as ``nswgw serve``);
entries cut off while it runs turn ``/readyz`` not ready.

The damage is done to the real store files and rows (SQLite file bytes and rows of a stopped store, PostgreSQL
rows), the anchor file is a real file appended by the running gateway.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from gateway.api import Gateway
from gateway.commands import main
from gateway.config import Config, load_config, parse_config
from gateway.errors import ConfigError, JournalBroken
from gateway.journal import read_anchors
from gateway.model import State
from gateway.store.postgres import PostgresStore
from helpers.gateway import Receiver, cli_toml, doc, eventually, make_config, submit
from helpers.postgres import fresh_schema

FORM_D = "eco.form_d"


def _config(tmp_path: Path, receiver: Receiver, *, anchor: bool = True, interval: float = 60.0) -> Config:
    journal: dict[str, Any] = {"anchor": str(tmp_path / "elsewhere" / "anchors.jsonl"), "anchor_interval": interval}
    return make_config(tmp_path, {"TH": receiver.url}, extra={"journal": journal} if anchor else {})


def _toml(tmp_path: Path, config: Config) -> Path:
    """The same store and anchor as ``config`` for the CLI commands (which read a file)."""
    anchor = f'anchor = "{config.journal.anchor}"' if config.journal.anchor else ""
    return cli_toml(tmp_path, config.store.url, f"[journal]\n{anchor}")


async def _exchange(config: Config, receiver: Receiver, count: int) -> list[str]:
    """Accept and deliver ``count`` messages through the real HTTP API, then stop the gateway (which anchors)."""
    async with Gateway(config) as gw, aiohttp.ClientSession() as session:
        ids = []
        for n in range(count):
            status, body = await submit(session, gw.url, "MOIT", f"M-{n}", FORM_D, doc(n))
            assert status == 202, body
            ids.append(body["id"])

        async def delivered() -> bool:
            records = [await gw.store.get(i) for i in ids]
            return all(r is not None and r.state is State.ACKNOWLEDGED for r in records)

        await eventually(delivered)
    return ids


def _verify(path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, dict[str, Any]]:
    code = main(["log", "verify", "--config", str(path), "--json", *extra])
    return code, json.loads(capsys.readouterr().out)


def _db(config: Config) -> Path:
    return Path(config.store.url.removeprefix("sqlite:///"))


async def test_a_replaced_stored_payload_and_receipt_are_found_by_log_verify(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with Receiver() as receiver:
        config = _config(tmp_path, receiver)
        ids = await _exchange(config, receiver, 3)
    path = _toml(tmp_path, config)
    code, report = await asyncio.to_thread(_verify, path, capsys)
    assert code == 0 and report["ok"] and report["entries"] == 6 and report["problems"] == []
    with sqlite3.connect(_db(config)) as conn:
        conn.execute("UPDATE message_payloads SET data = ? WHERE message = ?", (b"<Doc><No>forged</No></Doc>", ids[1]))
        conn.execute("UPDATE deliveries SET receipt = ? WHERE message = ?", (b'{"message_id":"x"}', ids[2]))
        conn.execute(
            "UPDATE delivery_payloads SET data = ? WHERE delivery = (SELECT seq FROM deliveries WHERE message = ?)",
            (b"<Doc><No>forged</No></Doc>", ids[0]),
        )
    code, report = await asyncio.to_thread(_verify, path, capsys)
    assert code == 1 and not report["ok"]
    with sqlite3.connect(_db(config)) as conn:
        seq = dict(conn.execute("SELECT kind || message, seq FROM journal"))
    replaced = {
        seq["ACCEPTED" + ids[1]]: f"accepted payload of {ids[1]}",
        seq["DELIVERED" + ids[0]]: f"delivery to TH of {ids[0]}",
        seq["DELIVERED" + ids[2]]: f"delivery to TH of {ids[2]}",
    }
    assert report["problems"] == [
        f"entry {n}: evidence-replaced ({what} is not what was logged)" for n, what in sorted(replaced.items())
    ]
    code, report = await asyncio.to_thread(_verify, path, capsys, "--chain-only")
    assert code == 0, "the chain itself is intact: only the evidence was replaced"


async def test_a_deleted_delivery_row_is_evidence_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    async with Receiver() as receiver:
        config = _config(tmp_path, receiver)
        ids = await _exchange(config, receiver, 1)
    with sqlite3.connect(_db(config)) as conn:
        conn.execute("DELETE FROM deliveries WHERE message = ?", (ids[0],))
    code, report = await asyncio.to_thread(_verify, _toml(tmp_path, config), capsys)
    assert code == 1
    assert report["problems"] == [f"entry 2: evidence-missing (delivery to TH of {ids[0]} is gone)"]


async def test_a_damaged_database_page_is_found_by_log_verify(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with Receiver() as receiver:
        config = _config(tmp_path, receiver)
        await _exchange(config, receiver, 20)
    db = _db(config)
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        (root,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'transitions_message'").fetchone()
    conn.close()
    with open(db, "r+b") as fh:  # an index page nothing of the evidence reads: only the integrity check sees it
        fh.seek((root - 1) * page_size + 8)
        fh.write(b"\xa5" * 64)
    code, report = await asyncio.to_thread(_verify, _toml(tmp_path, config), capsys)
    assert code == 1 and len(report["problems"]) == 1
    assert report["problems"][0].startswith("entry 0: store-damaged (failed: [STORE_CORRUPT] ")


async def test_entries_cut_off_the_end_refuse_the_start_and_are_found_by_log_verify(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """Prerequisite: a gateway ran with an anchor file and stopped after 4 entries. Predicate: with the last two
    journal rows deleted from the stopped store (the chain left is itself valid), the next start fails with
    JOURNAL_BROKEN naming the truncation and logs it at ERROR; ``nswgw serve`` exits non-zero saying so; ``log
    verify`` reports it; without the anchor file the cut would have gone unnoticed (--anchor of an empty file)."""
    async with Receiver() as receiver:
        config = _config(tmp_path, receiver)
        await _exchange(config, receiver, 2)
        anchors = read_anchors(tmp_path / "elsewhere" / "anchors.jsonl")
        assert anchors[-1].seq == 4
        with sqlite3.connect(_db(config)) as conn:
            conn.execute("DELETE FROM journal WHERE seq > 2")
        with pytest.raises(JournalBroken) as err:
            async with Gateway(config):
                pass
    truncated = "entry 3: truncated (entries 3..4 were anchored and are gone; head is 2)"
    assert err.value.code == "JOURNAL_BROKEN" and truncated in err.value.message
    assert any(r.levelname == "ERROR" and truncated in r.getMessage() for r in caplog.records)
    path = _toml(tmp_path, config)
    code, report = await asyncio.to_thread(_verify, path, capsys)
    assert code == 1 and report["problems"] == [truncated]
    (tmp_path / "empty.jsonl").write_text("")
    code, report = await asyncio.to_thread(_verify, path, capsys, "--anchor", str(tmp_path / "empty.jsonl"))
    assert code == 0, "the chain left is valid: only the anchor shows the cut"
    served = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "gateway.commands", "serve", "--config", str(path), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert served.returncode != 0 and served.stderr.splitlines()[-1].startswith("JOURNAL_BROKEN")
    assert truncated in served.stderr and "nswgw listening" not in served.stdout


async def test_an_edited_entry_refuses_the_start_without_an_anchor(tmp_path: Path) -> None:
    async with Receiver() as receiver:
        config = _config(tmp_path, receiver, anchor=False)
        await _exchange(config, receiver, 2)
        with sqlite3.connect(_db(config)) as conn:
            conn.execute("UPDATE journal SET destination = 'XX' WHERE seq = 2")
        with pytest.raises(JournalBroken) as err:
            async with Gateway(config):
                pass
    assert "entry 2: edited (content does not match its hash)" in err.value.message
    assert err.value.details["problems"] == ["entry 2: edited (content does not match its hash)"]


async def test_a_sound_store_starts_and_anchors_its_head_once_per_change(tmp_path: Path) -> None:
    async with Receiver() as receiver:
        config = _config(tmp_path, receiver)
        await _exchange(config, receiver, 2)
        await _exchange(config, receiver, 0)  # a start and stop with nothing new: no new anchor
    anchors = read_anchors(tmp_path / "elsewhere" / "anchors.jsonl")
    assert [a.seq for a in anchors] == [4]


async def test_entries_cut_off_while_running_make_the_gateway_not_ready(tmp_path: Path) -> None:
    async with Receiver() as receiver:
        config = _config(tmp_path, receiver, interval=0.05)
        async with Gateway(config) as gw, aiohttp.ClientSession() as session:
            for n in range(3):
                status, _ = await submit(session, gw.url, "MOIT", f"M-{n}", FORM_D, doc(n))
                assert status == 202

            async def anchored() -> bool:
                newest = gw.anchoring.newest
                return newest is not None and newest.seq == 6

            await eventually(anchored)
            async with session.get(f"{gw.url}/readyz") as r:
                assert r.status == 200, await r.text()
            with sqlite3.connect(_db(config)) as conn:
                conn.execute("DELETE FROM journal WHERE seq > 4")
            # an anchoring round after the cut does not anchor the shorter head: the proof of the cut stays newest
            newest = await gw.anchoring.anchor_now()
            assert newest is not None and newest.seq == 6
            async with session.get(f"{gw.url}/readyz") as r:
                body = await r.json()
                assert r.status == 503 and body["status"] == "not ready"
                assert body["checks"]["journal_anchor"].startswith(
                    "failed: [JOURNAL_BROKEN] the journal head is entry 4 but entry 6 was anchored in "
                )


def test_a_torn_last_anchor_line_is_ignored_and_a_bad_line_is_a_config_error(tmp_path: Path) -> None:
    anchors = tmp_path / "anchors.jsonl"
    anchors.write_text('{"seq":1,"hash":"' + "a" * 64 + '","at":1.0}\n{"seq":2,"ha')
    assert [a.seq for a in read_anchors(anchors)] == [1]
    anchors.write_text('{"seq":1,"hash":"' + "a" * 64 + '","at":1.0}\nnot json\n{"seq":3,"hash":"b","at":2.0}\n')
    with pytest.raises(ConfigError) as err:
        read_anchors(anchors)
    assert err.value.field == "journal.anchor" and ", line 2, is not an anchor" in err.value.message


def test_an_anchor_naming_a_directory_is_refused_at_load(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"gateway": {"signing": "off"}, "journal": {"anchor": str(tmp_path)}})
    assert err.value.code == "CONFIG_INVALID" and err.value.field == "journal.anchor"
    assert "is a directory; name the anchor file in it" in err.value.message


def test_an_anchor_path_is_relative_to_the_configuration_file(tmp_path: Path) -> None:
    path = tmp_path / "gw.toml"
    path.write_text('[gateway]\nsigning = "off"\n[journal]\nanchor = "anchors.jsonl"\n')
    assert load_config(path).journal.anchor == str(tmp_path / "anchors.jsonl")


@pytest.mark.postgres
async def test_a_replaced_payload_on_postgresql_is_evidence_replaced(tmp_path: Path) -> None:
    from gateway.audit import audit_store

    async with fresh_schema() as dsn, Receiver() as receiver:
        config = _config(tmp_path, receiver)
        store = PostgresStore(dsn)
        async with Gateway(config, store=store) as gw, aiohttp.ClientSession() as session:
            ids = []
            for n in range(2):
                status, body = await submit(session, gw.url, "MOIT", f"M-{n}", FORM_D, doc(n))
                assert status == 202
                ids.append(body["id"])

            async def delivered() -> bool:
                records = [await gw.store.get(i) for i in ids]
                return all(r is not None and r.state is State.ACKNOWLEDGED for r in records)

            await eventually(delivered)
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("UPDATE message_payloads SET data = $1 WHERE message = $2", b"<forged/>", ids[0])
        finally:
            await conn.close()
        async with PostgresStore(dsn) as reopened:
            report = await audit_store(reopened, anchors=read_anchors(tmp_path / "elsewhere" / "anchors.jsonl"))
    assert [str(p) for p in report.problems] == [
        f"entry 1: evidence-replaced (accepted payload of {ids[0]} is not what was logged)"
    ]
    assert report.entries == 4
