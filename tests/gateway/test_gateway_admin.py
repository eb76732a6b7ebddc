"""The operator API under ``/v1/admin/``: operators' credentials only, search across parties, full records, dead
letters and their replay, the partners view, the certificate inventory.

A real gateway on 127.0.0.1, real loopback partners, and each store where a store query is involved (SQLite and
PostgreSQL).
"""

from __future__ import annotations

import asyncio
import hashlib
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.actions import SIGNAL_OPERATOR
from gateway.api import Gateway
from gateway.audit import audit_store
from gateway.config import load_config
from gateway.errors import ConfigError
from gateway.journal import OperatorAction
from gateway.store.base import MessageQuery
from gateway.store.sqlite import SqliteStore
from helpers.admin import NEW_PARTY, OPERATORS, OPS, VIEWER, Rig, gateway_toml, running, serve, stop
from helpers.gateway import TOKENS, Receiver, dev_trust, doc, eventually, make_config, submit
from helpers.stores import STORE_PARAMS, STORES
from signing.dev.pki import DevPki

ADMIN_GETS = (
    "/v1/admin/messages",
    "/v1/admin/messages/nope",
    "/v1/admin/dead-letters",
    "/v1/admin/partners",
    "/v1/admin/certificates",
)


def _config(tmp_path: Path, url: str, **overrides: Any) -> Any:
    return make_config(
        tmp_path,
        {"TH": url},
        extra={"operators": OPERATORS},
        retry={"max_attempts": 1000},
        **overrides,
    )


@pytest.fixture(params=STORE_PARAMS)
async def rig(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Rig]:
    async with running(lambda partner: _config(tmp_path, partner.url), STORES[request.param](tmp_path)) as r:
        yield r


@pytest.fixture
async def sqlite_rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with running(lambda partner: _config(tmp_path, partner.url)) as r:
        yield r


async def test_operator_endpoints_refuse_party_tokens_unknown_tokens_and_no_credentials(sqlite_rig: Rig) -> None:
    for path in ADMIN_GETS:
        status, body = await sqlite_rig.call("GET", path, token=TOKENS["MOIT"])
        assert (status, body["error"]["code"], body["error"]["field"]) == (403, "AUTH_FORBIDDEN", "Authorization")
        status, body = await sqlite_rig.call("GET", path, token=None)
        assert (status, body["error"]["code"]) == (401, "AUTH_REQUIRED")
        status, body = await sqlite_rig.call("GET", path, token="nobody-token")
        assert (status, body["error"]["code"]) == (401, "AUTH_REQUIRED")
    status, body = await sqlite_rig.call("POST", "/v1/admin/dead-letters/replay", token=TOKENS["MARD"], body={})
    assert (status, body["error"]["code"]) == (403, "AUTH_FORBIDDEN")


async def test_party_endpoints_refuse_an_operator_token(sqlite_rig: Rig) -> None:
    status, body = await sqlite_rig.call("GET", "/v1/messages")
    assert (status, body["error"]["code"], body["error"]["field"]) == (403, "AUTH_FORBIDDEN", "Authorization")
    async with sqlite_rig.session.post(
        f"{sqlite_rig.gw.url}/v1/messages",
        data=doc(1),
        headers={"Authorization": f"Bearer {OPS}", "X-Message-Id": "m1", "X-Document-Type": "eco.form_d"},
    ) as r:
        assert (r.status, (await r.json())["error"]["code"]) == (403, "AUTH_FORBIDDEN")
    assert await sqlite_rig.gw.store.search(MessageQuery()) == []


async def test_a_read_operator_reads_but_cannot_replay(sqlite_rig: Rig) -> None:
    status, _ = await sqlite_rig.call("GET", "/v1/admin/partners", token=VIEWER)
    assert status == 200
    status, body = await sqlite_rig.call("POST", "/v1/admin/dead-letters/replay", token=VIEWER, body={"ids": ["x"]})
    assert (status, body["error"]["code"]) == (403, "AUTH_FORBIDDEN")
    assert "lacks the 'act' role" in body["error"]["message"]


async def test_an_operator_token_scrapes_metrics_and_a_party_token_does_not(tmp_path: Path) -> None:
    config = make_config(
        tmp_path,
        {"TH": "http://127.0.0.1:9/inbox"},
        gateway={"metrics": {"tokens": ["scrape-token"]}},
        extra={"operators": OPERATORS},
    )
    async with Gateway(config) as gw, aiohttp.ClientSession() as session:
        async with session.get(f"{gw.url}/metrics", headers={"Authorization": f"Bearer {VIEWER}"}) as r:
            assert r.status == 200
            assert "nswgw_build_info" in await r.text()
        async with session.get(f"{gw.url}/metrics", headers={"Authorization": f"Bearer {TOKENS['MOIT']}"}) as r:
            assert (r.status, (await r.json())["error"]["code"]) == (403, "AUTH_FORBIDDEN")


def test_an_operator_without_credentials_or_sharing_a_party_token_is_refused_at_load(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as bare:
        make_config(tmp_path, {"TH": "http://127.0.0.1:9/inbox"}, extra={"operators": {"ops": {"name": "desk"}}})
    assert bare.value.field == "operators.ops.tokens"
    with pytest.raises(ConfigError) as shared:
        make_config(
            tmp_path, {"TH": "http://127.0.0.1:9/inbox"}, extra={"operators": {"ops": {"tokens": [TOKENS["MOIT"]]}}}
        )
    assert shared.value.field == "operators.ops.tokens[0]"
    assert "also party MOIT's" in shared.value.message


async def test_search_across_parties_filters_by_sender_type_and_state_and_pages_by_cursor(rig: Rig) -> None:
    for i in range(3):
        assert (await submit(rig.session, rig.gw.url, "MOIT", f"moit-{i}", "eco.form_d", doc(i)))[0] == 202
    for i in range(2):
        assert (await submit(rig.session, rig.gw.url, "MARD", f"mard-{i}", "sps.permit", doc(i)))[0] == 202
    status, body = await rig.call("GET", "/v1/admin/messages")
    assert status == 200
    assert sorted(m["sender"] for m in body["messages"]) == ["MARD", "MARD", "MOIT", "MOIT", "MOIT"]
    assert body["next_cursor"] is None
    status, body = await rig.call("GET", "/v1/admin/messages?sender=MARD")
    assert [m["message_id"] for m in body["messages"]] == ["mard-1", "mard-0"]
    status, body = await rig.call("GET", "/v1/admin/messages?document_type=eco.form_d&destination=TH")
    assert [m["message_id"] for m in body["messages"]] == ["moit-2", "moit-1", "moit-0"]
    status, body = await rig.call("GET", "/v1/admin/messages?destination=NOWHERE")
    assert body["messages"] == []
    seen: list[str] = []
    path = "/v1/admin/messages?sender=MOIT&limit=2"
    status, page = await rig.call("GET", path)
    seen += [m["message_id"] for m in page["messages"]]
    assert page["next_cursor"] is not None
    status, page = await rig.call("GET", f"{path}&cursor={page['next_cursor']}")
    seen += [m["message_id"] for m in page["messages"]]
    assert seen == ["moit-2", "moit-1", "moit-0"]
    status, body = await rig.call("GET", "/v1/admin/messages?since=yesterday")
    assert (status, body["error"]["code"], body["error"]["field"]) == (400, "REQUEST_INVALID", "since")
    status, body = await rig.call("GET", "/v1/admin/messages?state=LOST")
    assert (status, body["error"]["code"], body["error"]["field"]) == (400, "REQUEST_INVALID", "state")


async def test_the_full_record_carries_the_digests_of_the_delivered_payload_and_receipt(rig: Rig) -> None:
    _, ack = await submit(rig.session, rig.gw.url, "MOIT", "moit-r", "eco.form_d", doc("r"))

    async def acknowledged() -> bool:
        return (await rig.call("GET", f"/v1/admin/messages/{ack['id']}"))[1]["message"]["state"] == "ACKNOWLEDGED"

    await eventually(acknowledged)
    status, body = await rig.call("GET", f"/v1/admin/messages/{ack['id']}")
    assert status == 200
    record = await rig.gw.store.get(ack["id"])
    assert record is not None
    (delivery,) = record.deliveries
    assert body["evidence"] == [
        {
            "destination": "TH",
            "payload_sha256": hashlib.sha256(delivery.payload).hexdigest(),
            "receipt_sha256": hashlib.sha256(delivery.receipt or b"").hexdigest(),
        }
    ]
    assert body["signer"] is None
    assert [h["to"] for h in body["message"]["history"]][-1] == "ACKNOWLEDGED"
    status, body = await rig.call("GET", "/v1/admin/messages/nope")
    assert (status, body["error"]["code"]) == (404, "MESSAGE_NOT_FOUND")


async def test_dead_letters_are_listed_and_replayed_one_then_all_of_a_destination(rig: Rig) -> None:
    rig.partner.mode = "reject"
    ids = [
        (await submit(rig.session, rig.gw.url, "MOIT", f"dead-{i}", "eco.form_d", doc(i)))[1]["id"] for i in range(3)
    ]

    async def all_dead() -> bool:
        return len((await rig.call("GET", "/v1/admin/dead-letters?destination=TH"))[1]["dead_letters"]) == 3

    await eventually(all_dead)
    _, listed = await rig.call("GET", "/v1/admin/dead-letters")
    assert {d["last_error"]["code"] for d in listed["dead_letters"]} == {"PARTNER_REJECTED"}
    _, partners = await rig.call("GET", "/v1/admin/partners")
    assert [(p["destination"], p["dead"], p["pending"]) for p in partners["partners"]] == [("TH", 3, 0)]
    _, failed = await rig.call("GET", "/v1/admin/messages?code=PARTNER_REJECTED")
    assert sorted(m["id"] for m in failed["messages"]) == sorted(ids)

    rig.partner.mode = "ok"
    status, body = await rig.call("POST", "/v1/admin/dead-letters/replay", body={"ids": [ids[0]]})
    assert status == 200
    assert ([d["id"] for d in body["replayed"]], body["operator"]) == ([ids[0]], "ops")

    async def first_acknowledged() -> bool:
        return (await rig.call("GET", f"/v1/admin/messages/{ids[0]}"))[1]["message"]["state"] == "ACKNOWLEDGED"

    await eventually(first_acknowledged)
    status, body = await rig.call("POST", "/v1/admin/dead-letters/replay", body={"destination": "TH"})
    assert sorted(d["id"] for d in body["replayed"]) == sorted(ids[1:])

    async def queue_empty() -> bool:
        return (await rig.call("GET", "/v1/admin/dead-letters"))[1]["dead_letters"] == []

    await eventually(queue_empty)
    status, body = await rig.call("POST", "/v1/admin/dead-letters/replay", body={"ids": [ids[0]]})
    assert (status, body["error"]["code"], body["error"]["field"]) == (404, "MESSAGE_NOT_FOUND", "ids[0]")
    status, body = await rig.call("POST", "/v1/admin/dead-letters/replay", body={"destination": "XX"})
    assert (status, body["error"]["code"], body["error"]["field"]) == (422, "DESTINATION_UNKNOWN", "destination")
    status, body = await rig.call("POST", "/v1/admin/dead-letters/replay", body={"ids": ["a"], "destination": "TH"})
    assert (status, body["error"]["code"], body["error"]["field"]) == (400, "REQUEST_INVALID", "body")


async def test_the_partners_view_shows_an_open_breaker_and_the_backlog_during_an_outage(tmp_path: Path) -> None:
    partner = await Receiver(mode="down").start()
    config = make_config(
        tmp_path,
        {"TH": partner.url},
        breaker={"failure_threshold": 2, "reset_timeout": 3600.0},
        extra={"operators": OPERATORS},
    )
    try:
        async with Gateway(config) as gw, aiohttp.ClientSession() as session:
            rig = Rig(gw, session, partner)
            for i in range(3):
                await submit(session, gw.url, "MOIT", f"out-{i}", "eco.form_d", doc(i))

            async def opened() -> bool:
                (th,) = (await rig.call("GET", "/v1/admin/partners"))[1]["partners"]
                return bool(th["breaker"] == "open")

            await eventually(opened)
            (th,) = (await rig.call("GET", "/v1/admin/partners"))[1]["partners"]
            assert (th["pending"], th["dead"], th["delivered"]) == (3, 0, 0)
            assert th["consecutive_failures"] >= 2  # attempts in flight when it opened also count
            assert th["latency_seconds"] == {"p50": None, "p95": None, "p99": None}
    finally:
        await partner.stop()


async def test_latency_percentiles_appear_once_deliveries_are_acknowledged(sqlite_rig: Rig) -> None:
    _, ack = await submit(sqlite_rig.session, sqlite_rig.gw.url, "MOIT", "fast", "eco.form_d", doc(1))

    async def delivered() -> bool:
        (th,) = (await sqlite_rig.call("GET", "/v1/admin/partners"))[1]["partners"]
        return bool(th["delivered"] == 1)

    await eventually(delivered)
    (th,) = (await sqlite_rig.call("GET", "/v1/admin/partners"))[1]["partners"]
    assert th["breaker"] == "closed"
    latency = th["latency_seconds"]
    assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"]


async def test_the_certificate_inventory_matches_the_dev_pki(tmp_path: Path, dev_pki: DevPki) -> None:
    config = make_config(
        tmp_path,
        {"TH": "http://127.0.0.1:9/inbox"},
        parties={"MOIT": {"trust": dev_trust(dev_pki, "moit")}},
        extra={"operators": OPERATORS},
    )
    async with Gateway(config) as gw, aiohttp.ClientSession() as session:
        status, body = await Rig(gw, session, Receiver()).call("GET", "/v1/admin/certificates")
    assert status == 200
    by_field = {c["field"]: c for c in body["certificates"]}
    root = by_field["parties.MOIT.trust.anchors[0]"]
    expected = dev_pki.root_cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert (root["party"], root["role"], root["not_after"]) == ("MOIT", "anchor", expected)
    assert root["subject"] == dev_pki.root_cert.subject.rfc4514_string()
    assert root["serial"] == format(dev_pki.root_cert.serial_number, "x")
    assert root["days_left"] > 0
    assert by_field["parties.MOIT.trust.intermediates[0]"]["issuer"] == root["subject"]


@pytest.fixture
async def file_rig(tmp_path: Path) -> AsyncIterator[tuple[Rig, Path]]:
    partner = await Receiver().start()
    path = tmp_path / "gateway.toml"
    path.write_text(gateway_toml(tmp_path, partner.url), encoding="utf-8")
    config = load_config(path)
    try:
        async with Gateway(config) as gw, aiohttp.ClientSession() as session:
            gw.config_file = (path, config)
            yield Rig(gw, session, partner), path
    finally:
        await partner.stop()


async def _submit_as(rig: Rig, token: str, message_id: str) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}", "X-Message-Id": message_id, "X-Document-Type": "eco.form_d"}
    async with rig.session.post(f"{rig.gw.url}/v1/messages", data=doc(message_id), headers=headers) as r:
        return r.status, await r.json()


async def test_a_reload_with_a_new_party_lets_its_token_submit_without_a_restart(
    file_rig: tuple[Rig, Path], tmp_path: Path
) -> None:
    rig, path = file_rig
    status, body = await _submit_as(rig, "newco-token", "n-1")
    assert (status, body["error"]["code"]) == (401, "AUTH_REQUIRED")
    path.write_text(gateway_toml(tmp_path, rig.partner.url, extra=NEW_PARTY), encoding="utf-8")
    status, body = await rig.call("POST", "/v1/admin/reload")
    assert (status, body) == (200, {"config": str(path), "changed": ["parties"], "operator": "ops"})
    status, newco = await _submit_as(rig, "newco-token", "n-2")
    assert (status, newco["sender"], newco["destinations"]) == (202, "NEWCO", ["TH"])
    status, moit = await _submit_as(rig, TOKENS["MOIT"], "m-1")
    assert status == 202
    await eventually(lambda: {newco["id"], moit["id"]} <= set(rig.partner.processed))


async def test_a_reload_of_an_invalid_file_is_refused_and_the_running_configuration_kept(
    file_rig: tuple[Rig, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rig, path = file_rig
    path.write_text(gateway_toml(tmp_path, rig.partner.url, extra=NEW_PARTY, routes="NOWHERE"), encoding="utf-8")
    status, body = await rig.call("POST", "/v1/admin/reload")
    assert (status, body["error"]["code"], body["error"]["field"]) == (422, "CONFIG_INVALID", "routes[0].to[0]")
    assert body["error"]["details"]["errors"][0]["message"] == "unknown destination 'NOWHERE'"
    assert "reload refused, the running configuration is kept" in caplog.text
    assert (await _submit_as(rig, "newco-token", "n-1"))[0] == 401
    assert (await _submit_as(rig, TOKENS["MOIT"], "m-1"))[0] == 202


async def test_a_reload_that_changes_the_listener_is_refused_naming_the_keys(
    file_rig: tuple[Rig, Path], tmp_path: Path
) -> None:
    rig, path = file_rig
    path.write_text(gateway_toml(tmp_path, rig.partner.url, extra=NEW_PARTY, port=8099), encoding="utf-8")
    status, body = await rig.call("POST", "/v1/admin/reload")
    assert (status, body["error"]["code"], body["error"]["field"]) == (409, "RELOAD_REFUSED", "gateway.port")
    assert body["error"]["details"] == {"keys": ["gateway.port"]}
    assert (await _submit_as(rig, "newco-token", "n-1"))[0] == 401


async def test_a_reload_needs_the_act_role_and_a_configuration_file(sqlite_rig: Rig) -> None:
    status, body = await sqlite_rig.call("POST", "/v1/admin/reload", token=VIEWER)
    assert (status, body["error"]["code"]) == (403, "AUTH_FORBIDDEN")
    status, body = await sqlite_rig.call("POST", "/v1/admin/reload")
    assert (status, body["error"]["code"], body["error"]["field"]) == (409, "RELOAD_REFUSED", "config")


async def test_sighup_to_nswgw_serve_reloads_the_file_a_new_party_token_works_and_the_journal_says_who(
    tmp_path: Path,
) -> None:
    """Prerequisite: ``nswgw serve`` running from a file. Predicate: after SIGHUP with a new party in the file, the
    new party's token submits, and the store holds a ``reload`` action of ``signal:SIGHUP`` naming ``parties``; the
    log verifies."""
    partner = await Receiver().start()
    path = tmp_path / "gateway.toml"
    path.write_text(gateway_toml(tmp_path, partner.url), encoding="utf-8")
    process, url = await serve(path)
    try:
        assert process.stdout is not None
        headers = {"Authorization": "Bearer newco-token", "X-Message-Id": "n-1", "X-Document-Type": "eco.form_d"}
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{url}/v1/messages", data=doc(1), headers=headers) as r:
                assert r.status == 401
            path.write_text(gateway_toml(tmp_path, partner.url, extra=NEW_PARTY), encoding="utf-8")
            process.send_signal(signal.SIGHUP)
            line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
            assert line == f"nswgw reloaded {path}: parties\n"
            async with session.post(f"{url}/v1/messages", data=doc(1), headers=headers) as r:
                assert (r.status, (await r.json())["sender"]) == (202, "NEWCO")
    finally:
        await stop(process)
        await partner.stop()
    async with SqliteStore(tmp_path / "gw.db") as store:
        [held] = await store.operator_actions()
        action = OperatorAction.from_record(held.record)
        assert (action.operator, action.action, action.targets) == (
            SIGNAL_OPERATOR,
            "reload",
            ({"section": "parties"},),
        )
        assert (await audit_store(store)).ok
