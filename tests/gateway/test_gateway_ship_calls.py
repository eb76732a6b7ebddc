"""Ship calls (gateway.shipcalls): one declaration by a shipping agent, every agency its part, one decision, on
each store.

A real gateway on 127.0.0.1 from the example topology (gateway/examples/ship-calls-unsigned.toml, its URLs replaced by
loopback partner servers: the port authority, border guard, health quarantine, customs, animal/plant quarantine and
the agent's inbox), everyone submitting the harmonized JSON through the HTTP API. What each agency receives is read
from the bytes its server got; the agent's status notifications likewise; the call from
``GET /v1/ship-calls/{reference}``; the disclosures from ``GET /v1/admin/disclosures``.
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
from gateway.config import parse_config
from gateway.dev.shipcall import (
    AGENCY_TOKENS,
    AGENT_TOKEN,
    PASSPORTS,
    SHIPOWNER,
    VNSW_AGENT,
    decision,
    example_config_text,
    vnsw_ship_call,
)
from gateway.dev.shipcall import ship_call as declaration
from gateway.model import State, gateway_message_id
from helpers.gateway import Receiver, eventually
from helpers.stores import STORE_PARAMS, store_settings

AGENCIES = ("PORT", "BORDER", "HEALTH", "CUSTOMS", "QUARANTINE")
CALL = "SGN-2026-0417"
OPS = "ops-token"
OTHER_AGENT = "other-agent-token"
VNSW_AGENT_TOKEN = "vnsw-agent-token"
STRANGER = "stranger-token"
PERMITTED, REFUSED = "PORT_ENTRY_PERMITTED", "PORT_ENTRY_REFUSED"
EXTRA = f"""
[operators.ops]
tokens = ["{OPS}"]

[parties.OTHER-AGENT]
name = "Another shipping agency"
tokens = ["{OTHER_AGENT}"]
kind = "intermediary"
on_behalf_of = ["{SHIPOWNER}"]
document_types = ["ship.call"]
format = "json"

[parties.VOSA]
name = "A shipping agency declaring in the MOT VNSW envelope, as itself"
tokens = ["{VNSW_AGENT_TOKEN}"]
document_types = ["ship.call"]
format = "vnsw"
identities = {{ vnsw = {json.dumps(VNSW_AGENT).replace('":', '" =')} }}

[parties.STRANGER]
name = "An agency no ship call is routed to"
tokens = ["{STRANGER}"]
document_types = ["ship.call.decision"]
format = "json"
"""


@dataclass
class Rig:
    gw: Gateway
    http: aiohttp.ClientSession
    inbox: dict[str, Receiver]
    """Per destination (the five agencies and ``AGENT-BOX``), its loopback server."""

    async def post(self, token: str, mid: str, doc_type: str, body: bytes, **headers: str) -> tuple[int, Any]:
        h = {
            "Authorization": f"Bearer {token}",
            "X-Message-Id": mid,
            "X-Document-Type": doc_type,
            "Content-Type": "application/json",
            **headers,
        }
        async with self.http.post(f"{self.gw.url}/v1/messages", data=body, headers=h) as r:
            return r.status, json.loads(await r.read())

    async def declare(self, mid: str, body: bytes, *, token: str = AGENT_TOKEN, **headers: str) -> tuple[int, Any]:
        return await self.post(token, mid, "ship.call", body, **{"X-On-Behalf-Of": SHIPOWNER, **headers})

    async def decide(self, agency: str, mid: str, body: bytes, **headers: str) -> tuple[int, Any]:
        return await self.post(AGENCY_TOKENS.get(agency, agency), mid, "ship.call.decision", body, **headers)

    async def view(self, reference: str, token: str = AGENT_TOKEN, *, admin: bool = False) -> tuple[int, Any]:
        path = f"/v1/admin/ship-calls/{reference}" if admin else f"/v1/ship-calls/{reference}"
        async with self.http.get(f"{self.gw.url}{path}", headers={"Authorization": f"Bearer {token}"}) as r:
            return r.status, json.loads(await r.read())

    async def acknowledged(self, *ids: str) -> None:
        async def done() -> bool:
            records = [await self.gw.store.get(i) for i in ids]
            return all(r is not None and r.state is State.ACKNOWLEDGED for r in records)

        await eventually(done)

    def bodies(self, destination: str, gateway_id: str | None = None) -> list[bytes]:
        return [bytes(r["body"]) for r in self.inbox[destination].requests if gateway_id in (None, r["id"])]

    def received(self, destination: str, gateway_id: str) -> bytes:
        [body] = self.bodies(destination, gateway_id)
        return body

    def reached(self, gateway_id: str) -> set[str]:
        return {name for name in AGENCIES if self.bodies(name, gateway_id)}

    async def notifications(self, count: int) -> list[dict[str, Any]]:
        await eventually(lambda: len(self.inbox["AGENT-BOX"].requests) >= count)
        await asyncio.sleep(0.2)  # none more arrives
        return [json.loads(r["body"]) for r in self.inbox["AGENT-BOX"].requests]


@pytest.fixture(params=STORE_PARAMS)
async def rig(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Rig]:
    async with AsyncExitStack() as stack:
        settings = await store_settings(stack, request.param)
        names = (*AGENCIES, "AGENT-BOX")
        inbox = {name: await Receiver().start() for name in names}
        for receiver in inbox.values():
            stack.push_async_callback(receiver.stop)
        if settings:
            s = settings["store"]
            store = f'[store]\nkind = "postgresql"\ndsn = "{s["dsn"]}"\npool_size = {s["pool_size"]}'
        else:
            store = f'[store]\nurl = "sqlite:///{tmp_path / "gw.db"}"\nsynchronous = "NORMAL"'
        text = example_config_text({9201 + i: inbox[n].url for i, n in enumerate(names)}, store) + EXTRA
        gw = await stack.enter_async_context(Gateway(parse_config(tomllib.loads(text), base=tmp_path)))
        http = await stack.enter_async_context(aiohttp.ClientSession())
        yield Rig(gw, http, inbox)


async def _declared(rig: Rig) -> str:
    status, ack = await rig.declare("SC-1", declaration(CALL), **{"X-Procedure": "arrival"})
    assert status == 202, ack
    assert sorted(ack["destinations"]) == sorted([*AGENCIES, "AGENT-BOX"])
    return str(ack["id"])


async def _decided(rig: Rig, agency: str, mid: str, call: str, answer: str, **extra: Any) -> str:
    status, ack = await rig.decide(agency, mid, decision(call, answer, **extra))
    assert status == 202, ack
    return str(ack["id"])


async def test_a_ship_call_declared_once_reaches_five_agencies_each_with_exactly_its_part(rig: Rig) -> None:
    gid = await _declared(rig)
    await rig.acknowledged(gid)
    assert rig.reached(gid) == set(AGENCIES)
    parts = {name: rig.received(name, gid) for name in AGENCIES}
    crew, passenger = PASSPORTS[:2], PASSPORTS[2]
    for number in PASSPORTS:
        assert number.encode() in parts["PORT"] and number.encode() in parts["BORDER"]
        assert number.encode() not in parts["CUSTOMS"], f"{number} was disclosed to customs"
        assert number.encode() not in parts["QUARANTINE"], f"{number} was disclosed to the quarantine"
    assert all(n.encode() in parts["HEALTH"] for n in crew) and passenger.encode() not in parts["HEALTH"]
    for name, absent in (
        ("CUSTOMS", (b"Keller", b"given_names", b"identity_document")),
        ("QUARANTINE", (b"Andersen", b"Santos", b"Keller")),
    ):
        for personal in absent:
            assert personal not in parts[name], f"{personal!r} was disclosed to {name}"
    seen = {  # what each received, its empty lists left out
        name: {k: v for k, v in json.loads(parts[name])["ship_call"].items() if v != []} for name in AGENCIES
    }
    assert set(seen["CUSTOMS"]) == {
        "reference",
        "ship",
        "voyage",
        "cargo_summary",
        "stores",
        "dangerous_goods",
        "crew_effects",
    }
    assert {k: v for k, v in seen["CUSTOMS"]["voyage"].items() if v != []} == {"port_of_call": "VNCLI"}
    assert set(seen["QUARANTINE"]) == {"reference", "ship", "voyage", "animals_on_board", "plants_on_board"}
    assert seen["QUARANTINE"]["ship"] == {"name": "MAERSK KOWLOON", "imo_number": "9321483"}
    assert set(seen["BORDER"]) == {"reference", "ship", "voyage", "crew", "passengers"}
    assert set(seen["HEALTH"]) == {"reference", "ship", "voyage", "health", "crew"}
    assert "passengers" in seen["PORT"] and "health" in seen["PORT"] and "stores" in seen["PORT"]
    assert all(s["reference"] == CALL for s in seen.values())

    [submitted] = await rig.notifications(1)
    assert (submitted["ship_call"], submitted["status"], submitted["sequence"]) == (CALL, "SUBMITTED", 1)
    async with rig.http.get(f"{rig.gw.url}/v1/admin/disclosures", headers={"Authorization": f"Bearer {OPS}"}) as r:
        page = json.loads(await r.read())
    assert r.status == 200, page
    disclosed = {d["destination"]: d for d in page["disclosures"] if d["message"] == gid}
    assert set(disclosed) == {"BORDER", "HEALTH", "CUSTOMS", "QUARANTINE"}, "PORT receives the whole call"
    assert disclosed["BORDER"]["legal_basis"].startswith("Decree 58/2017/ND-CP")
    assert "ship_call.passengers" in disclosed["BORDER"]["disclosed"]
    assert "ship_call.crew" not in disclosed["CUSTOMS"]["fields"]


async def test_four_accept_one_refuses_then_accepts_after_an_amendment_and_the_agent_sees_each_status_in_order(
    rig: Rig,
) -> None:
    gid = await _declared(rig)
    for agency in ("PORT", "BORDER", "CUSTOMS", "QUARANTINE"):
        await _decided(rig, agency, f"D-{agency}-1", CALL, "accepted")
    expired = "ship sanitation certificate SSCC-SG-2026-0931 expired on 2026-11-30"
    await _decided(rig, "HEALTH", "D-HEALTH-1", CALL, "refused", reasons=[expired])
    status, view = await rig.view(CALL)
    assert status == 200 and view["status"] == REFUSED, view
    health = {a["agency"]: a for a in view["agencies"]}["HEALTH"]
    assert (health["answer"], health["reasons"], health["part_version"]) == ("refused", [expired], CALL)

    amendment = declaration(f"{CALL}-A1", amends=CALL, sanitation_expiry="2027-05-31")
    status, ack = await rig.declare("SC-1-A1", amendment)
    assert status == 202, ack
    assert sorted(ack["destinations"]) == ["AGENT-BOX", "HEALTH", "PORT"]
    await rig.acknowledged(gid, ack["id"])
    assert rig.reached(ack["id"]) == {"PORT", "HEALTH"}, "the health declaration changed: only they see it"
    assert b"2027-05-31" in rig.received("HEALTH", ack["id"])
    status, view = await rig.view(f"{CALL}-A1")
    assert view["status"] == "PENDING_AGENCIES" and view["version"] == f"{CALL}-A1"
    answers = {a["agency"]: (a["answer"], a["part_version"]) for a in view["agencies"]}
    assert answers == {
        "PORT": (None, f"{CALL}-A1"),
        "HEALTH": (None, f"{CALL}-A1"),
        "BORDER": ("accepted", CALL),
        "CUSTOMS": ("accepted", CALL),
        "QUARANTINE": ("accepted", CALL),
    }
    await _decided(rig, "HEALTH", "D-HEALTH-2", f"{CALL}-A1", "accepted")
    await _decided(rig, "PORT", "D-PORT-2", f"{CALL}-A1", "accepted")

    notes = await rig.notifications(5)
    assert [n["status"] for n in notes] == ["SUBMITTED", "PENDING_AGENCIES", REFUSED, "PENDING_AGENCIES", PERMITTED]
    assert [n["sequence"] for n in notes] == [1, 2, 6, 7, 9]
    assert notes[2]["agency"] == "HEALTH" and notes[2]["detail"]["reasons"] == [expired]
    assert all(n["ship_call"] == CALL for n in notes)
    status, view = await rig.view(CALL)
    assert view["status"] == PERMITTED
    assert [(e["event"], e["status"]) for e in view["history"]] == [
        ("submitted", "SUBMITTED"),
        *[("answered", "PENDING_AGENCIES")] * 4,
        ("answered", REFUSED),
        ("amended", "PENDING_AGENCIES"),
        ("answered", "PENDING_AGENCIES"),
        ("answered", PERMITTED),
    ]
    assert view["history"][6]["detail"] == {"delivered_to": ["PORT", "HEALTH"]}


async def test_an_eta_change_reaches_only_the_agencies_that_see_the_eta_and_the_others_answers_stand(
    rig: Rig,
) -> None:
    await _declared(rig)
    for agency in AGENCIES:
        await _decided(rig, agency, f"D-{agency}-1", CALL, "accepted")
    assert (await rig.view(CALL))[1]["status"] == PERMITTED
    status, ack = await rig.declare("SC-1-A1", declaration(f"{CALL}-A1", amends=CALL, eta="2026-12-05T14:30:00+07:00"))
    assert status == 202, ack
    await rig.acknowledged(ack["id"])
    assert rig.reached(ack["id"]) == {"PORT", "BORDER"}
    _, view = await rig.view(CALL)
    answers = {a["agency"]: a["answer"] for a in view["agencies"]}
    assert answers == {
        "PORT": None,
        "BORDER": None,
        "HEALTH": "accepted",
        "CUSTOMS": "accepted",
        "QUARANTINE": "accepted",
    }
    # an agency whose part did not change may still answer on the version it has
    await _decided(
        rig, "CUSTOMS", "D-CUSTOMS-2", CALL, "accepted_with_conditions", conditions=["seal the bonded store"]
    )
    status, ack = await rig.declare(
        "SC-1-A2", declaration(f"{CALL}-A2", amends=f"{CALL}-A1", eta="2026-12-05T14:30:00+07:00", extra_crew=True)
    )
    assert status == 202, ack
    await rig.acknowledged(ack["id"])
    assert rig.reached(ack["id"]) == {"PORT", "BORDER", "HEALTH"}, "a crew change: those who see the crew"
    for agency in ("PORT", "BORDER", "HEALTH"):
        await _decided(rig, agency, f"D-{agency}-3", f"{CALL}-A2", "accepted")
    _, view = await rig.view(CALL)
    assert view["status"] == "PORT_ENTRY_PERMITTED_WITH_CONDITIONS"


async def test_decisions_and_amendments_the_call_does_not_admit_are_refused_with_their_codes_and_nothing_is_stored(
    rig: Rig,
) -> None:
    gid = await _declared(rig)
    refused: list[tuple[str, str]] = []

    async def expect(status_code: int, code: str, field: str, sender: str, mid: str, outcome: tuple[int, Any]) -> None:
        status, body = outcome
        assert (status, body["error"]["code"], body["error"]["field"]) == (status_code, code, field), body
        refused.append((sender, mid))

    await expect(
        404,
        "SHIP_CALL_UNKNOWN",
        "ship_call_decision.call",
        "BORDER-GUARD",
        "X-1",
        await rig.decide("BORDER", "X-1", decision("SGN-2099-0001", "accepted")),
    )
    await expect(
        403,
        "SHIP_CALL_NOT_PARTY",
        "ship_call_decision.call",
        "STRANGER",
        "X-2",
        await rig.decide(STRANGER, "X-2", decision(CALL, "accepted")),
    )
    await expect(
        409,
        "SHIP_CALL_DUPLICATE",
        "ship_call.reference",
        "AGENT",
        "X-3",
        await rig.declare("X-3", declaration(CALL), **{"X-Procedure": "arrival"}),
    )
    await expect(
        422, "SHIP_CALL_INVALID", "X-Procedure", "AGENT", "X-4", await rig.declare("X-4", declaration("SGN-2026-0500"))
    )
    await expect(
        403,
        "SHIP_CALL_NOT_PARTY",
        "ship_call.amends",
        "OTHER-AGENT",
        "X-5",
        await rig.declare("X-5", declaration(f"{CALL}-B", amends=CALL), token=OTHER_AGENT),
    )
    status, ack = await rig.declare("SC-1-A1", declaration(f"{CALL}-A1", amends=CALL, sanitation_expiry="2027-05-31"))
    assert status == 202, ack
    await expect(
        409,
        "SHIP_CALL_SUPERSEDED",
        "ship_call.amends",
        "AGENT",
        "X-6",
        await rig.declare("X-6", declaration(f"{CALL}-A9", amends=CALL)),
    )
    await expect(
        409,
        "SHIP_CALL_SUPERSEDED",
        "ship_call_decision.call",
        "HEALTH-QUARANTINE",
        "X-7",
        await rig.decide("HEALTH", "X-7", decision(CALL, "accepted")),
    )
    await expect(
        422,
        "SHIP_CALL_INVALID",
        "ship_call_decision.answer",
        "PORT-AUTH",
        "X-8",
        await rig.decide(
            "PORT",
            "X-8",
            json.dumps({"document": {"type_code": "FAL-DEC"}, "ship_call_decision": {"call": CALL}}).encode(),
        ),
    )
    for sender, mid in refused:
        assert await rig.gw.store.get(gateway_message_id(sender, mid)) is None, f"{sender} {mid} was stored"
    # BORDER's part did not change: its answer on the first version counts
    await _decided(rig, "BORDER", "D-BORDER-1", CALL, "accepted")
    # the same decision again is the same message: the original acknowledgement, nothing counted twice
    status, again = await rig.decide("BORDER", "D-BORDER-1", decision(CALL, "accepted"))
    assert status == 200 and again["state"] in ("QUEUED", "DELIVERED", "ACKNOWLEDGED"), again
    _, view = await rig.view(CALL)
    assert [e["event"] for e in view["history"]] == ["submitted", "amended", "answered"]
    assert len(view["versions"]) == 2 and view["versions"][0]["message"] == gid


async def test_agencies_answering_at_once_all_count_and_an_amendment_racing_decisions_applies_in_one_order(
    rig: Rig,
) -> None:
    await _declared(rig)
    outcomes = await asyncio.gather(
        *(rig.decide(agency, f"D-{agency}-1", decision(CALL, "accepted")) for agency in AGENCIES)
    )
    assert [status for status, _ in outcomes] == [202] * 5, outcomes
    _, view = await rig.view(CALL)
    assert view["status"] == PERMITTED and {a["answer"] for a in view["agencies"]} == {"accepted"}
    assert len(view["history"]) == 6

    crew_change = declaration(f"{CALL}-A1", amends=CALL, extra_crew=True)
    (amended, _), border, customs = await asyncio.gather(
        rig.declare("SC-1-A1", crew_change),
        rig.decide("BORDER", "D-BORDER-2", decision(CALL, "refused", reasons=["crew list incomplete"])),
        rig.decide("CUSTOMS", "D-CUSTOMS-2", decision(CALL, "accepted_with_conditions", conditions=["seal"])),
    )
    assert amended == 202
    assert customs[0] == 202, "customs' part is not in the crew change: its answer counts whenever it commits"
    _, view = await rig.view(CALL)
    answers = {a["agency"]: a["answer"] for a in view["agencies"]}
    assert answers["CUSTOMS"] == "accepted_with_conditions"
    assert answers["BORDER"] is None, "the border guard's part changed: an answer on the old one no longer counts"
    events = [(e["event"], e["party"]) for e in view["history"]][6:]
    if border[0] == 202:
        assert events.index(("answered", "BORDER-GUARD")) < events.index(("amended", "AGENT"))
    else:
        assert border[1]["error"]["code"] == "SHIP_CALL_SUPERSEDED" and ("answered", "BORDER-GUARD") not in events
    assert view["status"] == "PENDING_AGENCIES"


async def test_the_ship_call_is_shown_to_its_agent_its_agencies_and_operators_only(rig: Rig) -> None:
    await _declared(rig)
    assert (await rig.view(CALL))[0] == 200
    status, view = await rig.view(CALL, AGENCY_TOKENS["CUSTOMS"])
    assert status == 200 and view["agent"] == "AGENT" and view["procedure"] == "arrival"
    for token in (OTHER_AGENT, STRANGER):
        status, body = await rig.view(CALL, token)
        assert (status, body["error"]["code"], body["error"]["field"]) == (404, "SHIP_CALL_UNKNOWN", "reference")
    status, view = await rig.view(CALL, OPS, admin=True)
    assert status == 200 and view["reference"] == CALL
    status, body = await rig.view("SGN-2099-0001", OPS, admin=True)
    assert (status, body["error"]["code"]) == (404, "SHIP_CALL_UNKNOWN")


def test_a_procedure_requiring_an_agency_that_is_no_destination_is_refused_at_load_naming_it(tmp_path: Path) -> None:
    from gateway.errors import ConfigError

    urls = {port: f"http://127.0.0.1:{port}/inbox" for port in range(9201, 9207)}
    text = example_config_text(urls, '[store]\nurl = "sqlite:///gw.db"').replace(
        'required = ["PORT", "BORDER", "CUSTOMS"]', 'required = ["PORT", "BORDERS", "CUSTOMS"]'
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(tomllib.loads(text), base=tmp_path)
    assert caught.value.code == "CONFIG_INVALID" and caught.value.field == "ship_calls.departure.required[1]"
    assert "did you mean 'BORDER'" in str(caught.value)


async def test_a_call_declared_in_the_mot_vnsw_envelope_reaches_each_agency_in_json_and_its_amendment_only_some(
    rig: Rig,
) -> None:
    async def declare(mid: str, body: bytes, **headers: str) -> dict[str, Any]:
        status, ack = await rig.post(
            VNSW_AGENT_TOKEN,
            mid,
            "ship.call",
            body,
            **{"Content-Type": "application/xml", "X-Format": "vnsw", **headers},
        )
        assert status == 202, ack
        return dict(ack)

    first = await declare("VNSW-1", vnsw_ship_call(CALL), **{"X-Procedure": "arrival"})
    await rig.acknowledged(first["id"])
    assert rig.reached(first["id"]) == set(AGENCIES)
    customs = json.loads(rig.received("CUSTOMS", first["id"]))
    assert customs["ship_call"]["reference"] == CALL and not customs["ship_call"]["crew"]
    for number in PASSPORTS[:2]:
        assert number.encode() in rig.received("BORDER", first["id"])
        assert number.encode() not in rig.received("CUSTOMS", first["id"])
    # function 02: an amendment under the call's own reference
    status, body = await rig.post(  # the MOT envelope does not carry the certificate's expiry: nothing changes
        VNSW_AGENT_TOKEN,
        "VNSW-0",
        "ship.call",
        vnsw_ship_call(CALL, function="02", sanitation_expiry="2027-05-31"),
        **{"Content-Type": "application/xml", "X-Format": "vnsw"},
    )
    assert (status, body["error"]["code"], body["error"]["field"]) == (422, "SHIP_CALL_INVALID", "ship_call"), body
    second = await declare("VNSW-2", vnsw_ship_call(CALL, function="02", eta="2026-12-05T14:30:00+07:00"))
    await rig.acknowledged(second["id"])
    assert rig.reached(second["id"]) == {"PORT", "BORDER"}
    _, view = await rig.view(CALL, VNSW_AGENT_TOKEN)
    assert [v["reference"] for v in view["versions"]] == [CALL, CALL] and view["agent"] == "VOSA"
    # versions that share a reference: X-Reference names the delivery a decision answers
    status, body = await rig.decide("BORDER", "D-B-1", decision(CALL, "accepted"), **{"X-Reference": first["id"]})
    assert (status, body["error"]["code"]) == (409, "SHIP_CALL_SUPERSEDED"), body
    await _decided(rig, "CUSTOMS", "D-C-1", CALL, "accepted")  # its part is the first version's
    status, ack = await rig.decide("BORDER", "D-B-2", decision(CALL, "accepted"), **{"X-Reference": second["id"]})
    assert status == 202, ack
    _, view = await rig.view(CALL, VNSW_AGENT_TOKEN)
    answers = {a["agency"]: a["answer"] for a in view["agencies"]}
    assert (answers["BORDER"], answers["CUSTOMS"], answers["PORT"]) == ("accepted", "accepted", None)
