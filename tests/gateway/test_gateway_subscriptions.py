"""Agency subscriptions with data minimisation (gateway.subscriptions) and the record of disclosures
(gateway.disclosures), on each store.

A real gateway on 127.0.0.1 from a configuration file (so that ``POST /v1/admin/reload`` reads it again), MOIT
submitting import permits in the harmonized JSON format through the HTTP API, customs routed the whole permit
and a market-surveillance agency subscribed to some of its fields, each a real loopback partner server. What the
agency receives is read from the bytes its server got; the disclosures from ``GET /v1/admin/disclosures``; the
journal is walked with its evidence (:func:`gateway.audit.audit_store`, what ``nswgw log verify`` runs).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from gateway.api import Gateway
from gateway.audit import audit_store
from gateway.config import load_config
from gateway.disclosures import DisclosureQuery
from gateway.model import Message, PartyId, State, SubmissionEnvelope
from gateway.store import Store
from helpers.gateway import TOKENS, Receiver, eventually, make_config
from helpers.stores import STORE_PARAMS, store_settings

OPS = "ops-token"
PERMIT = "import.permit"
LEGAL_BASIS = "Decree 98/2020/ND-CP, Art. 5"
NARROW = ["permit.number", "permit.valid_until", "goods.hs_code", "transport.port_of_discharge"]
SECRETS = ("Cong ty TNHH Nhap Khau Sao Mai", "0312345678", "Nguyen Thi Thu", "1200", "98765.40", "Laptop computers")
"""Values of the permit the agency may not see: the importer's name and tax id, the officer, a quantity, a value
and the goods description."""


def _permit(number: str, *, hs_code: str = "84713020", port: str = "VNHPH") -> bytes:
    """An import permit in the harmonized JSON format, with parties, quantities and values."""
    message = {
        "document": {"number": number, "type_code": "911", "name": "Import licence"},
        "parties": {
            "consignee": {"name": "Cong ty TNHH Nhap Khau Sao Mai", "identifier": "0312345678"},
            "issuing_authority": {"name": "Ministry of Industry and Trade", "identifier": "BCT"},
        },
        "transport": {"port_of_discharge": {"code": port, "name": "Hai Phong"}},
        "goods": [
            {
                "sequence": 1,
                "hs_code": hs_code,
                "description": "Laptop computers",
                "quantities": [{"value": "1200", "unit": "H87"}],
                "fob_value": {"value": "98765.40", "currency": "USD"},
            }
        ],
        "permit": {"number": number, "officer": "Nguyen Thi Thu", "valid_until": "2027-06-30T00:00:00+07:00"},
    }
    return json.dumps(message).encode()


def _subscription(fields: list[str], **extra: Any) -> str:
    lines = [
        "[subscriptions.MS]",
        'destination = "MS"',
        f'legal_basis = "{LEGAL_BASIS}"',
        f'document_types = ["{PERMIT}"]',
        'hs_chapters = ["84", "85"]',
        'ports = ["vnhph", "Cua khau Huu Nghi"]',
        f"fields = {json.dumps(fields)}",
    ]
    lines += [f"{key} = {json.dumps(value)}" for key, value in extra.items()]
    return "\n".join(lines) + "\n"


def _toml(tmp_path: Path, customs: str, ms: str, store: dict[str, Any], subscription: str) -> str:
    if store:
        s = store["store"]
        store_table = f'[store]\nkind = "postgresql"\ndsn = "{s["dsn"]}"\npool_size = {s["pool_size"]}\n'
    else:
        store_table = f'[store]\nurl = "sqlite:///{tmp_path / "gw.db"}"\nsynchronous = "NORMAL"\n'
    return f"""
[gateway]
port = 0
poll_interval = 0.05
verification = "well-formed"
signing = "off"
[gateway.metrics]
public = true
{store_table}
[operators.ops]
tokens = ["{OPS}"]
[parties.MOIT]
tokens = ["{TOKENS["MOIT"]}"]
document_types = ["{PERMIT}", "sps.permit"]
format = "json"
[destinations.CUSTOMS]
url = "{customs}"
format = "json"
[destinations.CUSTOMS.retry]
initial = 0.01
max_wait = 0.05
jitter = 0.01
[destinations.MS]
url = "{ms}"
format = "json"
[destinations.MS.retry]
initial = 0.01
max_wait = 0.05
jitter = 0.01
[destinations.MS.breaker]
failure_threshold = 1000
reset_timeout = 0.05
[[routes]]
to = ["CUSTOMS"]
[document_types."{PERMIT}"]
unchecked = true
[document_types."sps.permit"]
unchecked = true
{subscription}
"""


@dataclass
class Rig:
    gw: Gateway
    http: aiohttp.ClientSession
    customs: Receiver
    ms: Receiver
    path: Path
    write: Any
    """``write(subscription_toml)``: the configuration file with another ``[subscriptions]`` section."""
    dsn: str | None

    async def submit(self, mid: str, body: bytes, doc_type: str = PERMIT) -> str:
        headers = {
            "Authorization": f"Bearer {TOKENS['MOIT']}",
            "X-Message-Id": mid,
            "X-Document-Type": doc_type,
            "Content-Type": "application/json",
        }
        async with self.http.post(f"{self.gw.url}/v1/messages", data=body, headers=headers) as r:
            reply = json.loads(await r.read())
            assert r.status == 202, reply
            return str(reply["id"])

    async def admin(self, method: str, path: str) -> tuple[int, dict[str, Any]]:
        """The answer's status and JSON (of an error, its ``error`` object)."""
        headers = {"Authorization": f"Bearer {OPS}"}
        async with self.http.request(method, f"{self.gw.url}{path}", headers=headers) as r:
            reply = json.loads(await r.read())
            return r.status, reply["error"] if r.status >= 400 else reply

    async def reload(self, subscription: str) -> tuple[int, dict[str, Any]]:
        self.write(subscription)
        return await self.admin("POST", "/v1/admin/reload")

    async def acknowledged(self, *ids: str) -> None:
        async def done() -> bool:
            records = [await self.gw.store.get(i) for i in ids]
            return all(r is not None and r.state is State.ACKNOWLEDGED for r in records)

        await eventually(done)

    def received(self, receiver: Receiver, gateway_id: str) -> bytes:
        bodies = [r["body"] for r in receiver.requests if r["id"] == gateway_id]
        assert bodies, f"{gateway_id} did not reach {receiver.url}"
        return bytes(bodies[-1])


@pytest.fixture(params=STORE_PARAMS)
async def rig(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Rig]:
    async with AsyncExitStack() as stack:
        store = await store_settings(stack, request.param)
        customs = await Receiver().start()
        stack.push_async_callback(customs.stop)
        ms = await Receiver().start()
        stack.push_async_callback(ms.stop)
        path = tmp_path / "gateway.toml"

        def write(subscription: str) -> None:
            path.write_text(_toml(tmp_path, customs.url, ms.url, store, subscription), encoding="utf-8")

        write(_subscription(NARROW))
        config = load_config(path)
        gw = await stack.enter_async_context(Gateway(config))
        gw.config_file = (path, config)
        http = await stack.enter_async_context(aiohttp.ClientSession())
        yield Rig(gw, http, customs, ms, path, write, store["store"]["dsn"] if store else None)


async def test_a_market_surveillance_subscriber_receives_only_its_allowed_fields_of_an_import_permit(
    rig: Rig,
) -> None:
    gid = await rig.submit("P-1", _permit("GP-2026-0001"))
    await rig.acknowledged(gid)
    whole = rig.received(rig.customs, gid)
    for value in SECRETS:
        assert value.encode() in whole, "customs, routed the permit, receives all of it"
    body = rig.received(rig.ms, gid)
    for value in SECRETS:
        assert value.encode() not in body, f"{value!r} was disclosed to market surveillance"
    assert _carried(json.loads(body)) == {
        "permit": {"number": "GP-2026-0001", "valid_until": "2027-06-30T00:00:00+07:00"},
        "goods": [{"hs_code": "84713020"}],
        "transport": {"port_of_discharge": {"code": "VNHPH", "name": "Hai Phong"}},
    }

    status, page = await rig.admin("GET", "/v1/admin/disclosures?subscription=MS")
    assert status == 200, page
    [disclosure] = page["disclosures"]
    assert disclosure["message"] == gid and disclosure["destination"] == "MS"
    assert disclosure["legal_basis"] == LEGAL_BASIS
    assert disclosure["fields"] == NARROW and disclosure["disclosed"] == NARROW
    assert disclosure["sha256"] == hashlib.sha256(body).hexdigest()
    assert (disclosure["sender"], disclosure["document_type"]) == ("MOIT", PERMIT)
    entries = {(e.kind, e.message_id, e.destination): e for e in await rig.gw.store.journal()}
    logged = entries[("DISCLOSED", gid, "MS")]
    assert disclosure["journal_seq"] == logged.seq
    [stored] = await rig.gw.store.disclosures(DisclosureQuery(message=gid))
    assert logged.digest == hashlib.sha256(stored.disclosure.record()).hexdigest()
    report = await audit_store(rig.gw.store, integrity=False)
    assert report.ok, report.problems


def _carried(value: Any) -> Any:
    """``value`` without its empty lists and objects: the data elements a JSON message carries."""
    if isinstance(value, dict):
        kept = {k: _carried(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v not in ({}, [])}
    if isinstance(value, list):
        return [_carried(v) for v in value]
    return value


async def test_an_edited_disclosure_record_is_found_by_the_journal_walk(rig: Rig) -> None:
    gid = await rig.submit("P-1", _permit("GP-2026-0001"))
    await rig.acknowledged(gid)
    seq = {(e.kind, e.message_id): e.seq for e in await rig.gw.store.journal()}[("DISCLOSED", gid)]
    forged = b'{"fields":["permit.number"],"legal_basis":"none"}'
    if rig.dsn is None:
        db = rig.gw.config.store.url.removeprefix("sqlite:///")

        def edit() -> None:
            import sqlite3

            with sqlite3.connect(db) as conn:
                conn.execute("UPDATE disclosures SET record = ? WHERE message = ?", (forged, gid))

        import asyncio

        await asyncio.to_thread(edit)
    else:
        conn = await asyncpg.connect(rig.dsn)
        try:
            await conn.execute("UPDATE disclosures SET record = $1 WHERE message = $2", forged, gid)
        finally:
            await conn.close()
    report = await audit_store(rig.gw.store, integrity=False)
    assert [str(p) for p in report.problems] == [
        f"entry {seq}: evidence-replaced (disclosure to MS of {gid} is not what was logged)"
    ]


async def test_messages_outside_its_document_types_hs_chapters_or_ports_are_not_delivered_to_it(rig: Rig) -> None:
    ids = [
        await rig.submit("SPS-1", _permit("GP-2026-0002"), doc_type="sps.permit"),  # not a type it may receive
        await rig.submit("P-2", _permit("GP-2026-0003", hs_code="01022900")),  # chapter 01: live animals
        await rig.submit("P-3", _permit("GP-2026-0004", port="VNSGN")),  # entered through Sai Gon
    ]
    await rig.acknowledged(*ids)
    assert {r["id"] for r in rig.customs.requests} == set(ids)
    assert rig.ms.requests == []
    status, page = await rig.admin("GET", "/v1/admin/disclosures")
    assert status == 200 and page == {"disclosures": [], "next_cursor": None}
    records = [await rig.gw.store.get(i) for i in ids]
    assert [[d.destination for d in r.deliveries] for r in records if r is not None] == [["CUSTOMS"]] * 3


async def test_a_port_named_by_the_permits_border_gates_matches_without_case(rig: Rig) -> None:
    body = json.loads(_permit("GP-2026-0005", port="VNSGN"))
    body["permit"]["border_gates"] = "Cua khau Mong Cai; CUA KHAU HUU NGHI"
    gid = await rig.submit("P-5", json.dumps(body).encode())
    await rig.acknowledged(gid)
    assert json.loads(rig.received(rig.ms, gid))["permit"]["number"] == "GP-2026-0005"


async def test_a_widening_reload_applies_to_later_messages_and_never_to_a_queued_delivery(rig: Rig) -> None:
    rig.ms.mode = "down"
    first = await rig.submit("P-1", _permit("GP-2026-0001"))
    await eventually(lambda: any(r["id"] == first for r in rig.ms.requests))  # queued, retrying behind a 503
    wider = [*NARROW, "parties.consignee"]
    status, reply = await rig.reload(_subscription(wider))
    assert status == 200 and reply["changed"] == ["subscriptions"], reply
    second = await rig.submit("P-2", _permit("GP-2026-0002"))
    rig.ms.mode = "ok"
    await rig.acknowledged(first, second)
    narrow_bytes = rig.received(rig.ms, first)
    assert b"Sao Mai" not in narrow_bytes and b"0312345678" not in narrow_bytes
    assert "parties" not in _carried(json.loads(narrow_bytes))
    wide = json.loads(rig.received(rig.ms, second))
    assert _carried(wide)["parties"] == {
        "consignee": {"name": "Cong ty TNHH Nhap Khau Sao Mai", "identifier": "0312345678"}
    }
    _, page = await rig.admin("GET", "/v1/admin/disclosures?destination=MS")
    by_message = {d["message"]: d for d in page["disclosures"]}
    assert by_message[first]["fields"] == NARROW
    assert by_message[second]["fields"] == wider
    assert by_message[first]["sha256"] == hashlib.sha256(narrow_bytes).hexdigest()

    status, _ = await rig.reload(_subscription(["permit.number"]))  # narrowed again
    assert status == 200
    third = await rig.submit("P-3", _permit("GP-2026-0006"))
    await rig.acknowledged(third)
    assert _carried(json.loads(rig.received(rig.ms, third))) == {"permit": {"number": "GP-2026-0006"}}
    report = await audit_store(rig.gw.store, integrity=False)
    assert report.ok, report.problems


async def test_a_reload_naming_a_bad_field_or_an_unknown_destination_is_refused_and_keeps_the_running_one(
    rig: Rig,
) -> None:
    status, error = await rig.reload(_subscription(["permit.number", "permit.numbr"]))
    assert status == 422 and error["code"] == "CONFIG_INVALID"
    assert error["field"] == "subscriptions.MS.fields[1]"
    assert "did you mean 'number'" in error["message"]
    status, error = await rig.reload(_subscription(NARROW).replace('destination = "MS"', 'destination = "M5"'))
    assert (status, error["code"], error["field"]) == (422, "CONFIG_INVALID", "subscriptions.MS.destination")
    gid = await rig.submit("P-1", _permit("GP-2026-0001"))
    await rig.acknowledged(gid)
    assert _carried(json.loads(rig.received(rig.ms, gid)))["goods"] == [{"hs_code": "84713020"}]


async def test_the_disclosure_list_pages_by_cursor_and_checks_its_parameters(rig: Rig) -> None:
    ids = [await rig.submit(f"P-{n}", _permit(f"GP-2026-{n:04d}")) for n in range(3)]
    await rig.acknowledged(*ids)
    status, first = await rig.admin("GET", "/v1/admin/disclosures?limit=2")
    assert status == 200 and [d["message"] for d in first["disclosures"]] == ids[:0:-1]
    assert first["next_cursor"] is not None
    _, second = await rig.admin("GET", f"/v1/admin/disclosures?limit=2&cursor={first['next_cursor']}")
    assert [d["message"] for d in second["disclosures"]] == ids[:1] and second["next_cursor"] is None
    _, one = await rig.admin("GET", f"/v1/admin/disclosures?message={ids[1]}")
    assert [d["message"] for d in one["disclosures"]] == [ids[1]]
    _, none = await rig.admin("GET", "/v1/admin/disclosures?since=2099-01-01T00:00:00Z")
    assert none["disclosures"] == []
    _, before = await rig.admin("GET", "/v1/admin/disclosures?until=0")
    assert before["disclosures"] == []
    for query, expected in [
        ("destination=NOPE", (422, "DESTINATION_UNKNOWN", "destination")),
        ("cursor=yesterday", (400, "REQUEST_INVALID", "cursor")),
        ("limit=0", (400, "REQUEST_INVALID", "limit")),
        ("since=noon", (400, "REQUEST_INVALID", "since")),
    ]:
        status, error = await rig.admin("GET", f"/v1/admin/disclosures?{query}")
        assert (status, error["code"], error["field"]) == expected
    async with rig.http.get(f"{rig.gw.url}/v1/admin/disclosures") as r:
        assert r.status == 401 and (await r.json())["error"]["code"] == "AUTH_REQUIRED"
    async with rig.http.get(f"{rig.gw.url}/openapi.json") as r:
        operation = (await r.json())["paths"]["/v1/admin/disclosures"]["get"]
    assert operation["operationId"] == "adminDisclosures"
    assert {p["name"] for p in operation["parameters"]} == {
        "destination",
        "subscription",
        "message",
        "since",
        "until",
        "cursor",
        "limit",
    }
    assert {"200", "400", "422"} <= set(operation["responses"])


@pytest.mark.parametrize("kind", STORE_PARAMS)
async def test_a_destination_with_its_own_fields_records_its_disclosures_too(kind: str, tmp_path: Path) -> None:
    async with AsyncExitStack() as stack:
        store = await store_settings(stack, kind)
        guard = await stack.enter_async_context(Receiver())
        config = make_config(
            tmp_path,
            {"BORDER-GUARD": guard.url},
            parties={"MOIT": {"document_types": ["sps.permit"], "format": "json"}},
            per_destination={
                "BORDER-GUARD": {
                    "format": "json",
                    "fields": ["permit.number", "parties.consignee.name"],
                    "legal_basis": "Law 14/2022/QH15, Art. 9",
                }
            },
            extra={**store, "operators": {"ops": {"tokens": [OPS]}}},
        )
        gw = await stack.enter_async_context(Gateway(config))
        http = await stack.enter_async_context(aiohttp.ClientSession())
        headers = {
            "Authorization": f"Bearer {TOKENS['MOIT']}",
            "X-Message-Id": "BG-1",
            "X-Document-Type": "sps.permit",
            "Content-Type": "application/json",
        }
        async with http.post(f"{gw.url}/v1/messages", data=_permit("GP-2026-0009"), headers=headers) as r:
            gid = (await r.json())["id"]
        await eventually(lambda: bool(guard.requests))
        async with http.get(f"{gw.url}/v1/admin/disclosures", headers={"Authorization": f"Bearer {OPS}"}) as r:
            [disclosure] = (await r.json())["disclosures"]
        assert disclosure["message"] == gid and disclosure["subscription"] is None
        assert disclosure["legal_basis"] == "Law 14/2022/QH15, Art. 9"
        assert disclosure["fields"] == ["permit.number", "parties.consignee.name"]
        assert disclosure["disclosed"] == ["permit.number", "parties.consignee.name"]
        assert disclosure["sha256"] == hashlib.sha256(guard.requests[0]["body"]).hexdigest()
        assert b"0312345678" not in guard.requests[0]["body"]


def test_a_subscriptions_fields_are_narrowed_to_what_its_destination_lets_through() -> None:
    from gateway.subscriptions import allowed

    assert allowed(["permit.number", "goods"], None) == ("permit.number", "goods")
    assert allowed(["permit.number", "parties", "goods.hs_code"], ["permit", "parties.consignee.name"]) == (
        "permit.number",
        "parties.consignee.name",
    )
    assert allowed(["goods.hs_code"], ["permit"]) == ()


def test_the_places_a_message_names_are_its_ports_border_gates_and_port_of_call_without_case() -> None:
    from gateway.subscriptions import places
    from mappings.model import TradeMessage

    message = TradeMessage.model_validate(
        {
            "transport": {"port_of_discharge": {"code": "VNHPH", "name": "Hai Phong"}},
            "goods": [{"destination_port": {"code": "vnsgn"}}, {"hs_code": "84713020"}],
            "permit": {"border_gates": "Cua khau Huu Nghi; Lao Cai | Mong Cai"},
            "ship_call": {"voyage": {"port_of_call": "VNDAD"}},
        }
    )
    assert places(message) == {
        "VNHPH",
        "HAI PHONG",
        "VNSGN",
        "CUA KHAU HUU NGHI",
        "LAO CAI",
        "MONG CAI",
        "VNDAD",
    }


def _queued(mid: str, at: float) -> Message:
    env = SubmissionEnvelope(sender=PartyId("MOIT"), message_id=mid, document_type=PERMIT)
    return Message.receive(env, at=at).verify(at=at).map(at=at).enqueue(at=at)


async def test_an_archived_message_takes_its_disclosure_records_into_the_bundle(store: Store, tmp_path: Path) -> None:
    from gateway.archive import archive, verify_bundles
    from gateway.config import parse_config
    from gateway.disclosures import Disclosure
    from gateway.evidence import build_bundle, verify_bundle
    from gateway.model import Delivery, SubmissionAck
    from helpers.signing import PKI, cert, signer

    day = 86400.0
    at = 1_780_272_000.0  # 2026-06-01, within the test certificates' validity
    m = _queued("P-1", at)
    narrow = b'{"permit":{"number":"GP-1"}}'
    d = Delivery.create(m, "MS", narrow, content_type="application/json", at=at, ttl=day)
    disclosure = Disclosure(
        m.id, "MS", "MS", LEGAL_BASIS, ("permit.number",), ("permit.number",), hashlib.sha256(narrow).hexdigest(), at
    )
    await store.accept(
        m, b"{}", [d], SubmissionAck(m.id, "MOIT", "P-1", m.state, at, ("MS",)), disclosures=[disclosure]
    )
    [claimed] = await store.claim("MS", owner="w", limit=1, now=at + 1, lease=60)
    await store.record(claimed.delivered(at=at + 1).acknowledged(b"{}", at=at + 1), owner="w", now=at + 1)
    evidence = await build_bundle(store, signer("moit"), m.id, now=at + 2)  # the message's signed evidence package
    assert verify_bundle(evidence, anchors=[cert("root-ca")])
    config = parse_config(
        {
            "signing": {"keys": [{"key": str(PKI / "moit.key.pem"), "certificate": str(PKI / "moit.pem")}]},
            "retention": {"default": "P30D", "archive_dir": str(tmp_path / "archive")},
            "document_types": {PERMIT: {"unchecked": True}},
        }
    )
    later = _queued("P-2", at + 2 * day)  # a later message, so that the first one's entries are not the head
    await store.accept(later, b"{}", [], SubmissionAck(later.id, "MOIT", "P-2", later.state, at + 2 * day, ()))
    run = await archive(store, config, signer("moit"), now=at + 40 * day)
    assert run.bundle is not None and run.messages == 1
    assert verify_bundles([run.bundle], trust=[signer("moit").certificate]) == []
    base = await store.journal_base()
    assert (run.first_seq, run.last_seq, base.seq) == (1, 3, 3)  # ACCEPTED, DISCLOSED, DELIVERED
    report = await audit_store(store, integrity=False, start=(base.seq, base.hash))
    assert report.ok, report.problems
    [kept] = await store.disclosures(DisclosureQuery(message=m.id))
    assert kept.disclosure == disclosure and kept.journal_seq is None  # still listed, its entry in the bundle


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"legal_basis": "  "}, "subscriptions.MS.legal_basis"),
        ({"hs_chapters": ["84", "8"]}, "subscriptions.MS.hs_chapters[1]"),
        ({"document_types": ["sps.permit", "import.licence"]}, "subscriptions.MS.document_types[1]"),
        ({"senders": ["MOIT", "MOTI"]}, "subscriptions.MS.senders[1]"),
        ({"fields": ["goods.quantities"]}, "subscriptions.MS.fields"),  # the destination lets only the permit out
        ({"fields": []}, "subscriptions.MS.fields"),
        ({"destination": "XML"}, "subscriptions.MS.destination"),  # pass-through XML cannot be cut to fields
    ],
)
def test_a_subscription_config_error_names_its_key(change: dict[str, Any], field: str, tmp_path: Path) -> None:
    from gateway.errors import ConfigError

    subscription = {
        "destination": "MS",
        "legal_basis": LEGAL_BASIS,
        "document_types": ["sps.permit"],
        "fields": ["permit.number"],
        **change,
    }
    with pytest.raises(ConfigError) as caught:
        make_config(
            tmp_path,
            {"CUSTOMS": "http://127.0.0.1:9/inbox", "MS": "http://127.0.0.1:9/ms", "XML": "http://127.0.0.1:9/x"},
            routes=[{"to": ["CUSTOMS"]}],
            per_destination={"MS": {"format": "json", "fields": ["permit"]}, "XML": {"format": "xml"}},
            extra={"subscriptions": {"MS": subscription}},
        )
    assert (caught.value.code, caught.value.field) == ("CONFIG_INVALID", field)
