"""Every operator action is written to the journal with the operator's identity: a replay of dead letters (operator
API, ``nswgw dlq replay``) and a reload (operator API, SIGHUP), refused ones too, are ``OPERATOR`` entries whose
evidence is the action's stored record; a tampered record is found by ``nswgw log verify``; archiving carries the
records into the bundle, which verifies offline; ``GET /v1/admin/actions`` lists them to operators only.

A real gateway on 127.0.0.1 with a real loopback partner, real ``nswgw`` commands, each store where the store is
involved (SQLite and PostgreSQL).
"""

from __future__ import annotations

import asyncio
import base64
import getpass
import io
import json
import sqlite3
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from gateway.api import Gateway
from gateway.archive import ACTIONS, archive, verify_bundles
from gateway.audit import audit_store
from gateway.commands import main
from gateway.config import Config, load_config, parse_config
from gateway.errors import InvalidTransition, PartnerRejected
from gateway.journal import OPERATOR, JournalEntry, OperatorAction, payload_digest
from gateway.model import Delivery, Message, PartyId, SubmissionAck, SubmissionEnvelope
from gateway.store import Store
from gateway.store.sqlite import SqliteStore
from helpers.admin import NEW_PARTY, OPERATORS, VIEWER, Rig, gateway_toml
from helpers.gateway import TOKENS, Receiver, doc, eventually, make_config, submit
from helpers.postgres import IsolatedPostgresStore
from helpers.signing import PKI, cert, signer
from helpers.stores import STORE_PARAMS, STORES
from signing.keys import default_algorithm_for

DAY = 86400.0
ONE_ATTEMPT = "[destinations.TH.retry]\nmax_attempts = 1"
NOW = 1_000 * DAY


@pytest.fixture(params=STORE_PARAMS)
async def rig(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Rig]:
    partner = await Receiver(mode="reject").start()
    config = make_config(tmp_path, {"TH": partner.url}, extra={"operators": OPERATORS}, retry={"max_attempts": 1})
    try:
        async with Gateway(config, store=STORES[request.param](tmp_path)) as gw, aiohttp.ClientSession() as session:
            yield Rig(gw, session, partner)
    finally:
        await partner.stop()


async def _entry(store: Store, seq: int) -> JournalEntry:
    [entry] = await store.journal(after=seq - 1, limit=1)
    return entry


async def _action(store: Store, entry: JournalEntry) -> OperatorAction:
    [held] = await store.operator_actions(ids=[entry.message_id])
    assert held.seq == entry.seq and payload_digest(held.record) == entry.digest
    return OperatorAction.from_record(held.record)


async def test_a_replay_through_the_admin_api_is_an_operator_entry_naming_the_operator_and_the_ids(rig: Rig) -> None:
    """Prerequisite: three messages to TH dead-lettered (the partner rejects them). Predicate: replaying one by id
    and then the rest by destination appends one OPERATOR entry each, naming operator ``ops`` and exactly the
    replayed (message, destination) pairs, its digest the SHA-256 of the stored record; the whole log verifies,
    evidence included; GET /v1/admin/actions lists both, newest first, filtered by operator."""
    ids = [(await submit(rig.session, rig.gw.url, "MOIT", f"d-{i}", "eco.form_d", doc(i)))[1]["id"] for i in range(3)]
    await eventually(lambda: _dead_count(rig, 3))
    rig.partner.mode = "ok"
    status, one = await rig.call("POST", "/v1/admin/dead-letters/replay", body={"ids": [ids[0]]})
    assert status == 200 and [d["id"] for d in one["replayed"]] == [ids[0]]
    entry = await _entry(rig.gw.store, one["journal_seq"])
    assert (entry.kind, entry.message_id, entry.destination) == (OPERATOR, one["action"], "TH")
    action = await _action(rig.gw.store, entry)
    assert (action.operator, action.action, action.targets) == (
        "ops",
        "replay",
        ({"message": ids[0], "destination": "TH"},),
    )
    assert action.detail == {"outcome": "applied", "replayed": 1, "ids": [ids[0]]}

    status, rest = await rig.call("POST", "/v1/admin/dead-letters/replay", body={"destination": "TH"})
    assert status == 200 and rest["journal_seq"] > one["journal_seq"]
    action = await _action(rig.gw.store, await _entry(rig.gw.store, rest["journal_seq"]))
    assert sorted(t["message"] for t in action.targets) == sorted(ids[1:])
    assert action.detail == {"outcome": "applied", "replayed": 2, "destination": "TH"}
    await eventually(lambda: set(ids) <= set(rig.partner.processed))

    report = await audit_store(rig.gw.store)
    assert report.ok, report.problems
    status, listed = await rig.call("GET", "/v1/admin/actions", token=VIEWER)
    assert status == 200
    assert [(a["id"], a["operator"], a["action"], a["journal_seq"]) for a in listed["actions"]] == [
        (rest["action"], "ops", "replay", rest["journal_seq"]),
        (one["action"], "ops", "replay", one["journal_seq"]),
    ]
    assert listed["actions"][1]["targets"] == [{"message": ids[0], "destination": "TH"}]
    assert (await rig.call("GET", "/v1/admin/actions?operator=nobody"))[1]["actions"] == []
    assert len((await rig.call("GET", "/v1/admin/actions?operator=ops&limit=1"))[1]["actions"]) == 1


async def _dead_count(rig: Rig, n: int) -> bool:
    return len(await rig.gw.store.dead_letters()) == n


async def test_the_actions_list_is_refused_to_a_party_token_and_without_credentials(rig: Rig) -> None:
    status, body = await rig.call("GET", "/v1/admin/actions", token=TOKENS["MOIT"])
    assert (status, body["error"]["code"], body["error"]["field"]) == (403, "AUTH_FORBIDDEN", "Authorization")
    status, body = await rig.call("GET", "/v1/admin/actions", token=None)
    assert (status, body["error"]["code"]) == (401, "AUTH_REQUIRED")
    status, body = await rig.call("GET", "/v1/admin/actions?since=yesterday")
    assert (status, body["error"]["code"], body["error"]["field"]) == (400, "REQUEST_INVALID", "since")


async def _dead_delivery(store: Store, mid: str, *, at: float) -> Delivery:
    """A message to TH accepted at ``at`` and dead-lettered, as the store holds it."""
    env = SubmissionEnvelope(sender=PartyId("MOIT"), message_id=mid, document_type="eco.form_d")
    m = Message.receive(env, at=at).verify(at=at).map(at=at).enqueue(at=at)
    d = Delivery.create(m, "TH", f"<m>{mid}</m>".encode(), content_type="application/xml", at=at, ttl=DAY)
    await store.accept(m, f"<raw>{mid}</raw>".encode(), [d], SubmissionAck(m.id, "MOIT", mid, m.state, at, ("TH",)))
    [claimed] = await store.claim("TH", owner="w", limit=1, now=at + 1, lease=60)
    error = PartnerRejected("no")
    await store.record(claimed.attempt_failed(error, at=at + 1).dead(error, at=at + 1), owner="w", now=at + 1)
    [dead] = await store.dead_letters(message_id=m.id)
    return dead


async def test_a_replay_and_its_record_commit_together_and_a_lost_race_writes_neither(store: Store) -> None:
    """Prerequisite: a dead delivery. Predicate: its replay and the action's record are one transaction (the entry
    follows the delivery's own entries, the delivery is QUEUED); the same replay again (another operator's, from the
    same stale dead letter) fails its compare-and-set with STATE_TRANSITION_INVALID and writes no record, no entry."""
    dead = await _dead_delivery(store, "M-1", at=NOW)
    again = dead.replay(at=NOW + 2, ttl=DAY)
    targets = [{"message": dead.message_id, "destination": "TH"}]
    first = OperatorAction.new("ops", "replay", at=NOW + 2, targets=targets)
    entry = await store.record_operator_action(first, replays=[again])
    assert (entry.seq, entry.kind, entry.message_id, entry.destination) == (2, OPERATOR, first.id, "TH")
    assert entry.digest == payload_digest(first.record())
    assert await store.dead_letters() == []
    second = OperatorAction.new("desk", "replay", at=NOW + 3, targets=targets)
    with pytest.raises(InvalidTransition) as lost:
        await store.record_operator_action(second, replays=[again])
    assert lost.value.code == "STATE_TRANSITION_INVALID"
    assert [a.id for a in await store.operator_actions()] == [first.id]
    head = await store.journal_head()
    assert head is not None and head.seq == 2
    record = await store.get(dead.message_id)
    assert record is not None and [d.state.value for d in record.deliveries] == ["QUEUED"]


async def _tamper(store: Store, sql: str, *args: object) -> None:
    """Run ``sql`` (``?`` placeholders) on the store's database behind its back."""
    if isinstance(store, SqliteStore):
        with sqlite3.connect(store.path) as conn:
            conn.execute(sql, args)
        conn.close()
        return
    assert isinstance(store, IsolatedPostgresStore)
    numbered, n = sql, 0
    while "?" in numbered:
        n += 1
        numbered = numbered.replace("?", f"${n}", 1)
    pg = await asyncpg.connect(store.dsn)
    try:
        await pg.execute(numbered, *args)
    finally:
        await pg.close()


async def test_a_tampered_or_deleted_action_record_is_found_by_the_audit(store: Store) -> None:
    """Prerequisite: a recorded replay and a recorded refused reload. Predicate: the audit is clean; with the replay's
    record rewritten (another operator) it reports ``evidence-replaced`` for that entry alone; with the reload's
    record deleted, ``evidence-missing``; the chain itself stays intact."""
    dead = await _dead_delivery(store, "M-1", at=NOW)
    replay = OperatorAction.new(
        "ops", "replay", at=NOW + 2, targets=[{"message": dead.message_id, "destination": "TH"}]
    )
    replayed = await store.record_operator_action(replay, replays=[dead.replay(at=NOW + 2, ttl=DAY)])
    reload = OperatorAction.new("ops", "reload", at=NOW + 3, detail={"outcome": "refused", "code": "RELOAD_REFUSED"})
    reloaded = await store.record_operator_action(reload)
    assert (await audit_store(store)).ok
    forged = replay.record().replace(b'"operator":"ops"', b'"operator":"someone-else"')
    await _tamper(store, "UPDATE operator_actions SET record = ? WHERE id = ?", forged, replay.id)
    await _tamper(store, "DELETE FROM operator_actions WHERE id = ?", reload.id)
    report = await audit_store(store)
    assert [str(p) for p in report.problems] == [
        f"entry {replayed.seq}: evidence-replaced (operator action record of {replay.id} is not what was logged)",
        f"entry {reloaded.seq}: evidence-missing (operator action record of {reload.id} is gone)",
    ]
    assert (await audit_store(store, evidence=False)).ok, "the chain is intact: only the evidence was replaced"


@pytest.mark.parametrize("kind", STORE_PARAMS)
async def test_reloads_applied_and_refused_are_operator_entries(kind: str, tmp_path: Path) -> None:
    """Prerequisite: a gateway started from a file. Predicate: an applied reload (a new party) is a ``reload``
    entry of ``ops`` naming the section ``parties``; a refused one (the port changed: RELOAD_REFUSED; an unknown
    destination: CONFIG_INVALID) is one too, with its code and field and no targets; the log verifies and the
    gateway starts again on it."""
    partner = await Receiver().start()
    path = tmp_path / "gateway.toml"
    path.write_text(gateway_toml(tmp_path, partner.url, destination=ONE_ATTEMPT), encoding="utf-8")
    config = load_config(path)
    store = STORES[kind](tmp_path)
    try:
        async with Gateway(config, store=store) as gw, aiohttp.ClientSession() as session:
            gw.config_file = (path, config)
            rig = Rig(gw, session, partner)
            path.write_text(
                gateway_toml(tmp_path, partner.url, extra=NEW_PARTY, destination=ONE_ATTEMPT), encoding="utf-8"
            )
            assert (await rig.call("POST", "/v1/admin/reload"))[0] == 200
            path.write_text(
                gateway_toml(tmp_path, partner.url, extra=NEW_PARTY, port=8099, destination=ONE_ATTEMPT),
                encoding="utf-8",
            )
            status, body = await rig.call("POST", "/v1/admin/reload")
            assert (status, body["error"]["code"]) == (409, "RELOAD_REFUSED")
            path.write_text(gateway_toml(tmp_path, "http://127.0.0.1:9/", routes="NOWHERE", destination=ONE_ATTEMPT))
            status, body = await rig.call("POST", "/v1/admin/reload")
            assert (status, body["error"]["code"]) == (422, "CONFIG_INVALID")
            status, listed = await rig.call("GET", "/v1/admin/actions")
            assert status == 200
            invalid, refused, applied = listed["actions"]
            assert (applied["operator"], applied["action"], applied["targets"]) == (
                "ops",
                "reload",
                [{"section": "parties"}],
            )
            assert applied["detail"] == {"outcome": "applied", "config": str(path)}
            assert (refused["targets"], refused["detail"]["outcome"]) == ([], "refused")
            assert (refused["detail"]["code"], refused["detail"]["field"]) == ("RELOAD_REFUSED", "gateway.port")
            assert (invalid["detail"]["code"], invalid["detail"]["field"]) == ("CONFIG_INVALID", "routes[0].to[0]")
            seqs = [a["journal_seq"] for a in (applied, refused, invalid)]
            entries = await gw.store.journal()
            assert [(e.seq, e.kind) for e in entries] == [(s, OPERATOR) for s in seqs]
            assert (await audit_store(gw.store)).ok
        if kind == "sqlite":  # the start-up check walks a chain of OPERATOR entries (a PostgreSQL schema is dropped)
            async with Gateway(config) as again:
                assert (await again.store.journal_head()) == entries[-1]
    finally:
        await partner.stop()


async def test_the_cli_replay_is_recorded_as_the_os_user_and_a_tampered_record_fails_log_verify(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Prerequisite: two dead letters in a SQLite store. Predicate: ``nswgw dlq replay --message ID`` records operator
    ``cli:<OS user>`` naming that message; ``nswgw log verify`` passes; after the record is rewritten behind the
    store's back it exits 1 listing ``evidence-replaced`` for that entry."""
    path = tmp_path / "gateway.toml"
    path.write_text(gateway_toml(tmp_path, "http://127.0.0.1:9/inbox", destination=ONE_ATTEMPT), encoding="utf-8")
    config = load_config(path)
    async with Gateway(config) as gw, aiohttp.ClientSession() as session:
        ids = [(await submit(session, gw.url, "MOIT", f"c-{i}", "eco.form_d", doc(i)))[1]["id"] for i in range(2)]

        async def dead() -> bool:
            return len(await gw.store.dead_letters()) == 2

        await eventually(dead)
    assert await asyncio.to_thread(main, ["dlq", "replay", "--config", str(path), "--message", ids[0]]) == 0
    assert "replayed 1 message(s)" in capsys.readouterr().out
    async with SqliteStore(tmp_path / "gw.db") as store:
        [held] = await store.operator_actions()
    action = OperatorAction.from_record(held.record)
    assert (action.operator, action.targets) == (
        f"cli:{getpass.getuser()}",
        ({"message": ids[0], "destination": "TH"},),
    )
    assert await asyncio.to_thread(main, ["log", "verify", "--config", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"]
    with sqlite3.connect(tmp_path / "gw.db") as conn:
        conn.execute(
            "UPDATE operator_actions SET record = ? WHERE id = ?", (held.record.replace(b"cli:", b"api:"), held.id)
        )
    conn.close()
    assert await asyncio.to_thread(main, ["log", "verify", "--config", str(path), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["problems"] == [
        f"entry {held.seq}: evidence-replaced (operator action record of {action.id} is not what was logged)"
    ]


def _archive_config(tmp_path: Path) -> Config:
    return parse_config(
        {
            "signing": {"keys": [{"key": str(PKI / "moit.key.pem"), "certificate": str(PKI / "moit.pem")}]},
            "retention": {"default": "P30D", "archive_dir": str(tmp_path / "archive")},
            "document_types": {"eco.form_d": {"unchecked": True, "retention": "P10D"}},
        }
    )


def _members(bundle: Path) -> dict[str, bytes]:
    with tarfile.open(bundle) as tar:
        return {i.name: tar.extractfile(i).read() for i in tar.getmembers()}  # type: ignore[union-attr]


def _write(out: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(out, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out


async def test_archiving_carries_old_operator_entries_with_their_records_and_the_bundle_verifies(
    store: Store, tmp_path: Path
) -> None:
    """Prerequisite: old messages with an old replay action between them, then a young reload action, then an old
    message. Predicate: the bundle holds the prefix up to the young action (the old action's record in
    ``operator_actions.jsonl``, byte for byte), verifies offline, and its record is pruned from the store with its
    entry; the young action and the entries after it stay and audit clean; a rewritten record in the bundle is
    ARCHIVE_TAMPERED at that entry; a bundle whose manifest does not list the member (as bundles written before
    operator actions were journaled) is read without it, and its OPERATOR entry's evidence is then missing."""
    config, key = _archive_config(tmp_path), signer("moit")
    dead = await _dead_delivery(store, "M-1", at=NOW - 40 * DAY)
    old = OperatorAction.new(
        "ops", "replay", at=NOW - 39 * DAY, targets=[{"message": dead.message_id, "destination": "TH"}]
    )
    old_entry = await store.record_operator_action(old, replays=[dead.replay(at=NOW - 39 * DAY, ttl=DAY)])
    [claimed] = await store.claim("TH", owner="w", limit=1, now=NOW - 39 * DAY, lease=60)
    acked = claimed.delivered(at=NOW - 39 * DAY).acknowledged(b"<r/>", at=NOW - 39 * DAY)
    await store.record(acked, owner="w", now=NOW - 39 * DAY)
    young = OperatorAction.new("ops", "reload", at=NOW - DAY, targets=[{"section": "routes"}])
    young_entry = await store.record_operator_action(young)
    await _dead_delivery(store, "M-2", at=NOW - 38 * DAY)

    run = await archive(store, config, key, now=NOW)
    assert run.bundle is not None and (run.messages, run.first_seq, run.last_seq) == (1, 1, young_entry.seq - 1)
    assert old_entry.seq < young_entry.seq
    assert verify_bundles([run.bundle], trust=[cert("moit")]) == []
    members = _members(run.bundle)
    [row] = [json.loads(line) for line in members[ACTIONS].splitlines()]
    assert row == {"id": old.id, "record": base64.b64encode(old.record()).decode()}
    assert json.loads(members["manifest.json"])["operator_actions"] == 1
    assert [a.id for a in await store.operator_actions()] == [young.id]
    base = await store.journal_base()
    report = await audit_store(store, start=(base.seq, base.hash))
    assert report.ok and report.entries == 2, report.problems

    forged = dict(members)
    forged[ACTIONS] = members[ACTIONS].replace(row["record"].encode(), base64.b64encode(b'{"forged":1}'))
    assert [(p.code, p.field) for p in verify_bundles([_write(tmp_path / "f.tar", forged)], trust=[cert("moit")])] == [
        ("ARCHIVE_TAMPERED", ACTIONS),
        ("ARCHIVE_TAMPERED", f"{ACTIONS}#{old_entry.seq}"),
    ]

    legacy = dict(members)
    del legacy[ACTIONS]
    manifest = json.loads(legacy["manifest.json"])
    del manifest["members"][ACTIONS]
    journal = [json.loads(line) for line in legacy["journal.jsonl"].splitlines()]
    assert [e["kind"] for e in journal].count(OPERATOR) == 1
    legacy["manifest.json"] = json.dumps(manifest, indent=1, sort_keys=True).encode() + b"\n"
    signature = key.sign(legacy["manifest.json"], default_algorithm_for(key.certificate))
    legacy["manifest.sig"] = base64.b64encode(signature) + b"\n"
    problems = verify_bundles([_write(tmp_path / "legacy.tar", legacy)], trust=[cert("moit")])
    assert [(p.code, p.field) for p in problems] == [("ARCHIVE_TAMPERED", f"{ACTIONS}#{old_entry.seq}")], (
        "an OPERATOR entry without its record is missing evidence"
    )
