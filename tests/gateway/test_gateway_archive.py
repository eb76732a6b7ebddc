"""Retention and archiving: finished messages older than their type's retention leave the store for a signed
bundle that verifies offline, the journal stays verifiable across the pruning, and the store stays bounded."""

from __future__ import annotations

import asyncio
import getpass
import io
import json
import sqlite3
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest

from gateway.api import Gateway
from gateway.archive import archive, verify_bundles
from gateway.audit import audit_store
from gateway.config import Config, parse_config
from gateway.errors import ConfigError, NswError, PartnerRejected
from gateway.journal import OperatorAction
from gateway.model import Delivery, Message, PartyId, State, SubmissionAck, SubmissionEnvelope
from gateway.store import Store
from gateway.store.sqlite import SqliteStore
from helpers.gateway import Receiver, doc, eventually, make_config, submit
from helpers.signing import PKI, cert, signer

DAY = 86400.0
NOW = 1_000 * DAY
KEY = signer("moit")


def _config(tmp_path: Path, **retention: object) -> Config:
    return parse_config(
        {
            "signing": {"keys": [{"key": str(PKI / "moit.key.pem"), "certificate": str(PKI / "moit.pem")}]},
            "retention": {"default": "P30D", "archive_dir": str(tmp_path / "archive"), **retention},
            "document_types": {
                "eco.form_d": {"unchecked": True, "retention": "P10D"},
                "sps.permit": {"unchecked": True},
            },
        }
    )


async def _message(
    store: Store, mid: str, *, at: float, outcome: str = "ack", document_type: str = "eco.form_d"
) -> str:
    """A message received at ``at`` to TH, then acknowledged (``ack``), dead (``dead``) or left queued."""
    env = SubmissionEnvelope(sender=PartyId("MOIT"), message_id=mid, document_type=document_type)
    m = Message.receive(env, at=at).verify(at=at).map(at=at).enqueue(at=at)
    d = Delivery.create(m, "TH", f"<m>{mid}</m>".encode(), content_type="application/xml", at=at, ttl=DAY)
    ack = SubmissionAck(m.id, "MOIT", mid, m.state, at, ("TH",))
    await store.accept(m, f"<raw>{mid}</raw>".encode(), [d], ack)
    if outcome != "queued":
        [claimed] = await store.claim("TH", owner="w", limit=1, now=at + 1, lease=60)
        if outcome == "ack":
            done = claimed.delivered(at=at + 1).acknowledged(f"<r>{mid}</r>".encode(), at=at + 1)
        else:
            error = PartnerRejected("no")
            done = claimed.attempt_failed(error, at=at + 1).dead(error, at=at + 1)
        await store.record(done, owner="w", now=at + 1)
    return m.id


def _codes(problems: list[NswError]) -> list[tuple[str, str | None]]:
    return [(p.code, p.field) for p in problems]


def _rewrite(bundle: Path, out: Path, change: Callable[[dict[str, bytes]], None]) -> Path:
    with tarfile.open(bundle) as tar:
        members = {i.name: tar.extractfile(i).read() for i in tar.getmembers()}  # type: ignore[union-attr]
    change(members)
    with tarfile.open(out, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out


async def test_finished_messages_past_retention_are_archived_verified_and_pruned(store: Store, tmp_path: Path) -> None:
    config = _config(tmp_path)
    old = [await _message(store, f"M-{i}", at=NOW - 20 * DAY + i) for i in range(3)]
    young = await _message(store, "M-young", at=NOW - 5 * DAY)
    run = await archive(store, config, KEY, now=NOW)
    assert run.bundle is not None and run.bundle.name == "nswgw-archive-000000000001-000000000006.tar"
    assert (run.messages, run.entries) == (3, 6)
    assert verify_bundles([run.bundle], trust=[cert("moit")]) == []
    assert [await store.get(mid) for mid in old] == [None, None, None]
    assert await store.get(young) is not None
    base = await store.journal_base()
    assert base.seq == 6 and base.manifest_sha256
    report = await audit_store(store, anchors=[], evidence=True, integrity=True, start=(base.seq, base.hash))
    assert report.ok and (report.entries, report.head_seq) == (2, 8)
    assert (await archive(store, config, KEY, now=NOW)).bundle is None, "nothing more is due"


async def test_queued_messages_stay_and_hold_the_journal_prefix_behind_them(store: Store, tmp_path: Path) -> None:
    config = _config(tmp_path)
    queued = await _message(store, "M-queued", at=NOW - 20 * DAY, outcome="queued")
    await _message(store, "M-done", at=NOW - 19 * DAY)
    await _message(store, "M-head", at=NOW - 1 * DAY)
    assert (await archive(store, config, KEY, now=NOW)).bundle is None
    [claimed] = await store.claim("TH", owner="w", limit=1, now=NOW, lease=60)
    await store.record(claimed.delivered(at=NOW).acknowledged(b"<r/>", at=NOW), owner="w", now=NOW)
    later = await _message(store, "M-later", at=NOW)
    assert (await archive(store, config, KEY, now=NOW)).bundle is None, "M-queued's last entry follows M-head's"
    run = await archive(store, config, KEY, now=NOW + 15 * DAY)
    assert (run.messages, run.first_seq, run.last_seq) == (3, 1, 6), "the newest message keeps the head entry"
    assert await store.get(queued) is None and await store.get(later) is not None


async def test_dead_messages_are_archived_with_their_error_and_types_keep_their_own_retention(
    store: Store, tmp_path: Path
) -> None:
    config = _config(tmp_path)
    dead = await _message(store, "M-dead", at=NOW - 15 * DAY, outcome="dead")
    sps = await _message(store, "M-sps", at=NOW - 15 * DAY + 1, document_type="sps.permit")
    await _message(store, "M-head", at=NOW - 1 * DAY)
    run = await archive(store, config, KEY, now=NOW)
    assert run.bundle is not None and run.messages == 1, "sps.permit keeps the 30-day default"
    assert await store.get(dead) is None and await store.get(sps) is not None
    with tarfile.open(run.bundle) as tar:
        [line] = tar.extractfile("deliveries.jsonl").read().splitlines()  # type: ignore[union-attr]
    delivery = json.loads(line)
    assert delivery["state"] == State.DEAD.value and delivery["last_error"]["code"] == "PARTNER_REJECTED"


async def test_each_tampering_of_a_bundle_is_caught_with_its_code(store: Store, tmp_path: Path) -> None:
    config = _config(tmp_path)
    for i in range(2):
        await _message(store, f"M-{i}", at=NOW - 20 * DAY + i)
    await _message(store, "M-head", at=NOW - DAY)
    run = await archive(store, config, KEY, now=NOW)
    assert run.bundle is not None
    trust = [cert("moit")]

    def edit_payload(m: dict[str, bytes]) -> None:
        m["messages.jsonl"] = m["messages.jsonl"].replace(b'"payload":"', b'"payload":"AAAA', 1)

    def drop_line(m: dict[str, bytes]) -> None:
        m["journal.jsonl"] = b"".join(m["journal.jsonl"].splitlines(keepends=True)[1:])

    edited = _rewrite(run.bundle, tmp_path / "edited.tar", edit_payload)
    assert _codes(verify_bundles([edited], trust=trust)) == [
        ("ARCHIVE_TAMPERED", "messages.jsonl"),
        ("ARCHIVE_TAMPERED", "messages.jsonl#1"),
    ]
    removed = _rewrite(run.bundle, tmp_path / "removed.tar", drop_line)
    assert ("ARCHIVE_TAMPERED", "journal.jsonl") in _codes(verify_bundles([removed], trust=trust))
    assert ("ARCHIVE_TAMPERED", "journal.jsonl#1") in _codes(verify_bundles([removed], trust=trust))

    def swap_manifest(m: dict[str, bytes]) -> None:
        manifest = json.loads(m["manifest.json"])
        manifest["messages"] = 1
        m["manifest.json"] = json.dumps(manifest).encode()

    swapped = _rewrite(run.bundle, tmp_path / "swapped.tar", swap_manifest)
    assert _codes(verify_bundles([swapped], trust=trust)) == [("ARCHIVE_SIGNATURE_INVALID", "manifest.sig")]
    assert _codes(verify_bundles([run.bundle], trust=[cert("intruder")])) == [
        ("ARCHIVE_SIGNATURE_INVALID", "signer.pem")
    ]


async def test_consecutive_bundles_link_and_a_missing_one_is_caught(store: Store, tmp_path: Path) -> None:
    config = _config(tmp_path, batch=2)
    for i in range(3):
        await _message(store, f"M-{i}", at=NOW - 20 * DAY + i)
    await _message(store, "M-head", at=NOW - DAY)
    bundles = []
    while (run := await archive(store, config, KEY, now=NOW)).bundle is not None:
        bundles.append(run.bundle)
    assert [b.name for b in bundles] == [
        "nswgw-archive-000000000001-000000000002.tar",
        "nswgw-archive-000000000003-000000000004.tar",
        "nswgw-archive-000000000005-000000000006.tar",
    ]
    assert verify_bundles(bundles, trust=[cert("moit")]) == []
    problems = verify_bundles([bundles[0], bundles[2]], trust=[cert("moit")])
    assert _codes(problems) == [("ARCHIVE_TAMPERED", "manifest.json")] and "do not link" in problems[0].message


async def test_rerun_after_a_crash_before_the_prune_reuses_the_bundle(tmp_path: Path) -> None:
    config = _config(tmp_path)
    path = tmp_path / "store.db"
    async with SqliteStore(path, synchronous="NORMAL") as store:
        await _message(store, "M-1", at=NOW - 20 * DAY)
        await _message(store, "M-head", at=NOW - DAY)
    backup = path.read_bytes()
    async with SqliteStore(path, synchronous="NORMAL") as store:
        first = await archive(store, config, KEY, now=NOW)
    assert first.bundle is not None and not first.reused
    bundle = first.bundle.read_bytes()
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.write_bytes(backup)  # the store as it was when the bundle had been renamed but not yet pruned
    async with SqliteStore(path, synchronous="NORMAL") as store:
        second = await archive(store, config, KEY, now=NOW)
        assert second.bundle == first.bundle and second.reused and second.messages == 1
        assert (await store.journal_base()).seq == 2
    assert first.bundle.read_bytes() == bundle, "the bundle is not written twice"
    assert sorted(p.name for p in first.bundle.parent.iterdir()) == [first.bundle.name]


async def test_the_store_stays_bounded_over_many_archive_rounds(tmp_path: Path) -> None:
    config = _config(tmp_path, default="PT1S")
    path = tmp_path / "store.db"
    pages: list[int] = []
    rows: list[int] = []
    async with SqliteStore(path, synchronous="NORMAL") as store:
        clock = NOW
        for round_ in range(6):
            for i in range(40):
                clock += 1.0
                env = SubmissionEnvelope(sender=PartyId("MOIT"), message_id=f"R{round_}-{i}", document_type="x")
                m = Message.receive(env, at=clock).verify(at=clock).map(at=clock).enqueue(at=clock)
                d = Delivery.create(m, "TH", b"<m>" + b"x" * 2000 + b"</m>", content_type="a/x", at=clock, ttl=DAY)
                await store.accept(
                    m,
                    b"<raw>" + b"y" * 2000 + b"</raw>",
                    [d],
                    SubmissionAck(m.id, "MOIT", "x", m.state, clock, ("TH",)),
                )
                [c] = await store.claim("TH", owner="w", limit=1, now=clock, lease=60)
                await store.record(c.delivered(at=clock).acknowledged(b"<r/>", at=clock), owner="w", now=clock)
            clock += 10
            while (await archive(store, config, KEY, now=clock)).bundle is not None:
                pass
            with sqlite3.connect(path) as conn:
                pages.append(conn.execute("PRAGMA page_count").fetchone()[0])
                rows.append(
                    sum(
                        conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                        for t in (
                            "messages",
                            "message_payloads",
                            "deliveries",
                            "delivery_payloads",
                            "transitions",
                            "journal",
                        )
                    )
                )
    assert max(rows) <= 22, rows
    assert max(pages[2:]) <= pages[1] + 8, pages


async def test_cli_archives_and_verifies_as_real_processes(tmp_path: Path) -> None:
    db = tmp_path / "gw.db"
    async with SqliteStore(db, synchronous="NORMAL") as store:
        await _message(store, "M-1", at=1_000.0)
        await _message(store, "M-head", at=2_000.0)
    path = tmp_path / "gw.toml"
    path.write_text(
        f'[store]\nurl = "sqlite:///{db}"\n\n[retention]\ndefault = "P1D"\narchive_dir = "bundles"\n\n'
        f'[[signing.keys]]\nkey = "{PKI / "moit.key.pem"}"\ncertificate = "{PKI / "moit.pem"}"\n\n'
        '[document_types."eco.form_d"]\nunchecked = true\n'
    )

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gateway.commands", *args], capture_output=True, text=True, timeout=120
        )

    dry = await asyncio.to_thread(run, "archive", "--config", str(path), "--dry-run", "--before", "1970-01-01T00:30:00")
    assert dry.returncode == 0, dry.stderr
    bundle = tmp_path / "bundles" / "nswgw-archive-000000000001-000000000002.tar"
    assert dry.stdout.splitlines() == [f"would write {bundle}: 1 message(s), journal entries 1..2 (2)"]
    done = await asyncio.to_thread(run, "archive", "--config", str(path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"archived {bundle}: 1 message(s), journal entries 1..2 (2)"]
    ok = await asyncio.to_thread(run, "archive", "verify", str(bundle), "--trust", str(PKI / "moit.pem"))
    assert (ok.returncode, ok.stdout.strip()) == (0, "archive OK: 1 bundle(s)")
    logged = await asyncio.to_thread(run, "log", "verify", "--config", str(path))
    assert logged.returncode == 0 and logged.stdout.startswith("message log OK: 3 entries, head 5 ")
    async with SqliteStore(db, synchronous="NORMAL") as store:  # the run is the operator's, in the journal
        [held] = await store.operator_actions()
    action = OperatorAction.from_record(held.record)
    assert (action.operator, action.action, action.targets) == (
        f"cli:{getpass.getuser()}",
        "archive",
        ({"bundle": str(bundle)},),
    )
    assert action.detail == {"messages": 1, "journal": "1..2", "before": None}
    wrong = await asyncio.to_thread(run, "archive", "verify", str(bundle), "--trust", str(PKI / "intruder.pem"))
    assert wrong.returncode == 1
    assert wrong.stderr.splitlines()[1].startswith("  ARCHIVE_SIGNATURE_INVALID signer.pem: ")


async def test_serve_archives_by_itself_and_restarts_on_the_pruned_journal(tmp_path: Path) -> None:
    extra = {
        "retention": {"default": "PT0.5S", "interval": "PT0.2S", "archive_dir": str(tmp_path / "bundles")},
        "signing": {"keys": [{"key": str(PKI / "moit.key.pem"), "certificate": str(PKI / "moit.pem")}]},
        "journal": {"anchor": str(tmp_path / "elsewhere" / "anchors.jsonl"), "anchor_interval": 0.1},
    }
    async with Receiver() as receiver:
        config = make_config(tmp_path, {"TH": receiver.url}, extra=extra)
        async with Gateway(config) as gw, aiohttp.ClientSession() as session:
            ids = []
            for n in range(3):
                status, body = await submit(session, gw.url, "MOIT", f"M-{n}", "eco.form_d", doc(n))
                assert status == 202, body
                ids.append(body["id"])

                async def delivered(mid: str = body["id"]) -> bool:
                    record = await gw.store.get(mid)
                    return record is None or record.state is State.ACKNOWLEDGED

                await eventually(delivered, limit=60)

            async def archived() -> bool:
                return [await gw.store.get(i) is None for i in ids[:2]] == [True, True]

            await eventually(archived, limit=60)
            base = await gw.store.journal_base()
        bundles = sorted((tmp_path / "bundles").glob("*.tar"))
        assert bundles and verify_bundles(bundles, trust=[cert("moit")]) == []
        assert base.seq >= 4
        async with Gateway(config) as again:
            assert (await again.store.journal_base()).seq >= base.seq, "the start check walks from the base"


@pytest.mark.parametrize(
    ("section", "value", "field"),
    [
        ("retention", {"default": "P0D"}, "retention.default"),
        ("retention", {"default": "a year"}, "retention.default"),
        ("retention", {"interval": "PT1H"}, "retention"),
        (
            "document_types",
            {"eco.form_d": {"unchecked": True, "retention": "-P1D"}},
            "document_types.eco.form_d.retention",
        ),
    ],
    ids=["zero-default", "not-a-duration", "interval-without-directory", "negative-type-retention"],
)
def test_bad_retention_settings_are_refused_at_load_naming_the_field(
    section: str, value: dict[str, object], field: str
) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"gateway": {"signing": "off"}, section: value})
    assert err.value.code == "CONFIG_INVALID" and err.value.field == field
