"""Signed ship calls, on each store: the signed topology (gateway/examples/ship-calls.toml, its URLs replaced by
loopback agency servers, its dev PKI made here), the agent declaring in the signed MOT VNSW envelope (type 99),
each agency deciding in the signed ``ship-decision`` XML, everything through the HTTP API under the default
verification; the port authority's deliveries verified as the gateway's signature on arrival.
"""

from __future__ import annotations

import asyncio
import json
import tomllib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.api import Gateway
from gateway.config import load_config, parse_config
from gateway.dev.shipcall import (
    AGENCY_KEYS,
    AGENCY_TOKENS,
    AGENT_TOKEN,
    EXAMPLE,
    PASSPORTS,
    PKI_DIR,
    example_config_text,
    party_signer,
    ship_call_pki,
    signed_decision,
    signed_ship_call,
)
from gateway.model import State
from helpers.gateway import Receiver, eventually
from helpers.stores import STORE_PARAMS, store_settings
from signing.dev.pki import DevPki
from signing.policy import VerifyPolicy
from signing.trust import PinnedCertificate, TrustStore

AGENCIES = ("PORT", "BORDER", "HEALTH", "CUSTOMS", "QUARANTINE")
CALL = "SGN-2026-0417"
PERMITTED, REFUSED, PENDING = "PORT_ENTRY_PERMITTED", "PORT_ENTRY_REFUSED", "PENDING_AGENCIES"
EXPIRED = "ship sanitation certificate SSCC-SG-2026-0931 expired on 2026-11-30"
XML = {"Content-Type": "application/xml"}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    return ship_call_pki(tmp_path_factory.mktemp("ship-calls-pki"))


@dataclass
class Rig:
    gw: Gateway
    http: aiohttp.ClientSession
    inbox: dict[str, Receiver]
    pki: DevPki

    async def post(self, token: str, mid: str, doc_type: str, body: bytes, **headers: str) -> tuple[int, Any]:
        h = {"Authorization": f"Bearer {token}", "X-Message-Id": mid, "X-Document-Type": doc_type, **XML, **headers}
        async with self.http.post(f"{self.gw.url}/v1/messages", data=body, headers=h) as r:
            return r.status, json.loads(await r.read())

    async def declare(self, mid: str, body: bytes, **headers: str) -> dict[str, Any]:
        status, ack = await self.post(AGENT_TOKEN, mid, "ship.call", body, **headers)
        assert status == 202, ack
        return dict(ack)

    def decision(self, call: str, answer: str, *, key: str, **extra: Any) -> bytes:
        return signed_decision(call, answer, party_signer(self.pki, key), **extra)

    async def decide(self, agency: str, mid: str, body: bytes, **headers: str) -> tuple[int, Any]:
        return await self.post(AGENCY_TOKENS[agency], mid, "ship.call.decision", body, **headers)

    async def decided(self, agency: str, mid: str, answer: str, **extra: Any) -> str:
        headers = {"X-Reference": extra.pop("reference")} if "reference" in extra else {}
        at = f"2026-12-05T{7 + int(mid.rsplit('-', 1)[1]):02d}:00:00+07:00"  # D-AGENCY-N: its Nth decision
        body = self.decision(CALL, answer, key=AGENCY_KEYS[agency], decided_at=at, **extra)
        status, ack = await self.decide(agency, mid, body, **headers)
        assert status == 202, ack
        return str(ack["id"])

    async def view(self) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {AGENT_TOKEN}"}
        async with self.http.get(f"{self.gw.url}/v1/ship-calls/{CALL}", headers=headers) as r:
            assert r.status == 200
            return dict(json.loads(await r.read()))

    async def acknowledged(self, *ids: str) -> None:
        async def done() -> bool:
            records = [await self.gw.store.get(i) for i in ids]
            return all(r is not None and r.state is State.ACKNOWLEDGED for r in records)

        await eventually(done)

    def received(self, destination: str, gateway_id: str) -> bytes:
        [body] = [bytes(r["body"]) for r in self.inbox[destination].requests if r["id"] == gateway_id]
        return body

    def reached(self, gateway_id: str) -> set[str]:
        return {name for name in AGENCIES if any(r["id"] == gateway_id for r in self.inbox[name].requests)}

    async def notifications(self, count: int) -> list[dict[str, Any]]:
        await eventually(lambda: len(self.inbox["AGENT-BOX"].requests) >= count)
        await asyncio.sleep(0.2)  # none more arrives
        return [json.loads(r["body"]) for r in self.inbox["AGENT-BOX"].requests]


@pytest.fixture(params=STORE_PARAMS)
async def rig(request: pytest.FixtureRequest, tmp_path: Path, pki: DevPki) -> AsyncIterator[Rig]:
    gateway_trust = (
        TrustStore("nsw-gateway", pinned=(PinnedCertificate(pki.party("nsw-gateway").cert),)),
        VerifyPolicy(),
    )
    async with AsyncExitStack() as stack:
        settings = await store_settings(stack, request.param)
        names = (*AGENCIES, "AGENT-BOX")
        inbox = {name: await Receiver(verify_with=gateway_trust if name == "PORT" else None).start() for name in names}
        for receiver in inbox.values():
            stack.push_async_callback(receiver.stop)
        if settings:
            s = settings["store"]
            store = f'[store]\nkind = "postgresql"\ndsn = "{s["dsn"]}"\npool_size = {s["pool_size"]}'
        else:
            store = f'[store]\nurl = "sqlite:///{tmp_path / "gw.db"}"\nsynchronous = "NORMAL"'
        urls = {9201 + i: inbox[n].url for i, n in enumerate(names)}
        text = example_config_text(urls, store, pki=pki.directory)
        config = parse_config(tomllib.loads(text), base=tmp_path)
        assert config.weakened == ()
        gw = await stack.enter_async_context(Gateway(config))
        http = await stack.enter_async_context(aiohttp.ClientSession())
        yield Rig(gw, http, inbox, pki)


async def test_a_signed_ship_call_reaches_five_agencies_four_accept_one_refuses_then_accepts_after_an_amendment(
    rig: Rig,
) -> None:
    first = await rig.declare(
        "SC-1", signed_ship_call(CALL, party_signer(rig.pki, "agent")), **{"X-Procedure": "arrival"}
    )
    await rig.acknowledged(first["id"])
    assert rig.reached(first["id"]) == set(AGENCIES)
    parts = {name: rig.received(name, first["id"]) for name in AGENCIES}
    # the port authority gets the VNSW envelope as declared, the agent's signature replaced by the gateway's
    assert b"<Envelope>" in parts["PORT"] and b"SystemSignature" not in parts["PORT"]
    for number in PASSPORTS[:2]:  # the crew's documents
        assert number.encode() in parts["PORT"] and number.encode() in parts["BORDER"]
        assert number.encode() in parts["HEALTH"]
        assert number.encode() not in parts["CUSTOMS"], f"{number} was disclosed to customs"
        assert number.encode() not in parts["QUARANTINE"], f"{number} was disclosed to the quarantine"
    assert PASSPORTS[2].encode() in parts["BORDER"] and PASSPORTS[2].encode() not in parts["HEALTH"]
    for name, absent in (
        ("CUSTOMS", (b"Keller", b"given_names", b"identity_document")),  # crew effects name their owner only
        ("QUARANTINE", (b"Andersen", b"Santos", b"Keller")),
    ):
        for personal in absent:
            assert personal not in parts[name], f"{personal!r} was disclosed to {name}"
    seen = {  # what each agency received in JSON, its empty lists left out
        name: {k for k, v in json.loads(parts[name])["ship_call"].items() if v != []} for name in AGENCIES[1:]
    }
    assert seen == {
        "BORDER": {"reference", "ship", "voyage", "crew", "passengers"},
        "HEALTH": {"reference", "ship", "voyage", "health", "crew"},
        "CUSTOMS": {"reference", "ship", "voyage", "cargo_summary", "stores", "dangerous_goods", "crew_effects"},
        "QUARANTINE": {"reference", "ship", "voyage", "animals_on_board", "plants_on_board"},
    }

    for agency in ("PORT", "BORDER", "CUSTOMS", "QUARANTINE"):
        await rig.decided(agency, f"D-{agency}-1", "accepted")
    await rig.decided("HEALTH", "D-HEALTH-1", "refused", reasons=[EXPIRED])
    view = await rig.view()
    health = {a["agency"]: a for a in view["agencies"]}["HEALTH"]
    assert (view["status"], health["answer"], health["reasons"]) == (REFUSED, "refused", [EXPIRED])

    # function 02: the amendment under the call's own reference, a crew change (a new ship's doctor)
    amended = signed_ship_call(CALL, party_signer(rig.pki, "agent"), function="02", extra_crew=True)
    second = await rig.declare("SC-1-A1", amended)
    await rig.acknowledged(second["id"])
    assert rig.reached(second["id"]) == {"PORT", "BORDER", "HEALTH"}, "a crew change: those who see the crew"
    assert b"VN0077123" in rig.received("HEALTH", second["id"])
    for agency in ("HEALTH", "BORDER", "PORT"):
        await rig.decided(agency, f"D-{agency}-2", "accepted", reference=second["id"])

    notes = await rig.notifications(5)
    statuses = [n["status"] for n in notes]
    assert statuses == ["SUBMITTED", PENDING, REFUSED, PENDING, PERMITTED], statuses
    assert notes[2]["agency"] == "HEALTH" and notes[2]["detail"]["reasons"] == [EXPIRED]
    assert [n["sequence"] for n in notes] == sorted(n["sequence"] for n in notes)
    assert (await rig.view())["status"] == PERMITTED
    # every delivery to the port authority carried the gateway's signature (checked on arrival)
    assert rig.inbox["PORT"].verified and set(rig.inbox["PORT"].verified) == {
        rig.pki.party("nsw-gateway").cert.subject.rfc4514_string()
    }
    decisions = [r for r in rig.inbox["PORT"].requests if b"ShipCallDecision" in r["body"]]
    assert len(decisions) == 8 and all(b"urn:nswgw:ship-call:decision:1" in r["body"] for r in decisions)


async def test_a_decision_whose_signature_does_not_match_is_refused_and_changes_nothing(rig: Rig) -> None:
    first = await rig.declare(
        "SC-1", signed_ship_call(CALL, party_signer(rig.pki, "agent")), **{"X-Procedure": "arrival"}
    )
    await rig.acknowledged(first["id"])
    await rig.notifications(1)
    before = await rig.view()
    signed = rig.decision(CALL, "accepted", key="health-quarantine")
    tampered = signed.replace(b"<Answer>accepted</Answer>", b"<Answer>refused</Answer>")
    assert tampered != signed
    status, body = await rig.decide("HEALTH", "D-HEALTH-1", tampered)
    assert (status, body["error"]["code"]) == (403, "SIG_DIGEST_MISMATCH"), body
    assert await rig.view() == before
    assert len(await rig.notifications(1)) == 1
    assert len(rig.inbox["PORT"].requests) == 1, "nothing but the call reached the port authority"


async def test_a_decision_signed_with_another_agencys_key_is_refused_and_changes_nothing(rig: Rig) -> None:
    first = await rig.declare(
        "SC-1", signed_ship_call(CALL, party_signer(rig.pki, "agent")), **{"X-Procedure": "arrival"}
    )
    await rig.acknowledged(first["id"])
    before = await rig.view()
    # the border guard's token, the customs branch's certificate (issued by the same dev CA)
    status, body = await rig.decide("BORDER", "D-BORDER-1", rig.decision(CALL, "accepted", key="port-customs"))
    assert (status, body["error"]["code"]) == (403, "CERT_IDENTITY_MISMATCH"), body
    assert await rig.view() == before
    # and an unsigned decision is no decision under the default verification
    unsigned = signed_decision(CALL, "accepted", party_signer(rig.pki, "border-guard")).split(b"<ds:Signature")[0]
    status, body = await rig.decide("BORDER", "D-BORDER-2", unsigned + b"</ShipCallDecision>")
    assert (status, body["error"]["code"]) == (403, "SIG_MISSING"), body
    assert await rig.view() == before


def test_the_signed_example_loads_from_its_file_with_the_pki_beside_it_and_weakens_nothing(
    tmp_path: Path, pki: DevPki
) -> None:
    (tmp_path / PKI_DIR).symlink_to(pki.directory, target_is_directory=True)
    config = tmp_path / "ship-calls.toml"
    config.write_text(EXAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    loaded = load_config(config)
    assert loaded.weakened == ()
    assert {name: p.format for name, p in loaded.parties.items() if p.document_types == ("ship.call.decision",)} == {
        name: "ship-decision"
        for name in ("PORT-AUTH", "BORDER-GUARD", "HEALTH-QUARANTINE", "PORT-CUSTOMS", "AP-QUARANTINE")
    }


def test_a_maritime_administrations_order_is_not_a_version_of_the_call() -> None:
    from mappings.registry import get
    from mappings.shipcalls import ship_call_facts

    vectors = Path(__file__).resolve().parents[1] / "vectors" / "mappings" / "vnsw" / "mot_maritime"
    for name in ("inland_departure_t60_f01_port_clearance.xml", "ship_transit_t90_f01_permission_for_transit.xml"):
        order = get("vnsw").read((vectors / name).read_bytes())
        assert order.ship_call is not None and order.permit is not None, name
        assert ship_call_facts(order, {"PORT": None}) is None, name
    call = get("vnsw").read((vectors / "ship_entry_t99_f01_whole_call.xml").read_bytes())
    facts = ship_call_facts(call, {"PORT": None})
    assert facts is not None and facts.kind == "call" and facts.reference == call.ship_call.reference  # type: ignore[union-attr]
