"""The operators' view of the certificates of origin (e-C/O) the gateway carried, on both stores:
``GET /v1/admin/origin-certificates`` (filters, cursor pages) and ``GET /v1/admin/origin-certificates/{country}/
{number}`` (status, history, links to the carrying messages). A real gateway on 127.0.0.1 and loopback partners;
MOIT issues over REST and the Thai side notifies back, as in the e-Form D lifecycle."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.api import Gateway
from helpers.eco import TOKENS, certificate, notification, submit, th_config
from helpers.gateway import Receiver, eventually
from helpers.stores import STORE_PARAMS, STORES

OPS, ACTOR = "ops-token", "actor-token"
OPERATORS = {"ops": {"tokens": [OPS], "roles": ["read"]}, "actor": {"tokens": [ACTOR], "roles": ["act"]}}


class Rig:
    def __init__(self, gw: Gateway, session: aiohttp.ClientSession) -> None:
        self.gw, self.session = gw, session

    async def submit(self, party: str, message_id: str, document_type: str, body: bytes) -> dict[str, Any]:
        status, reply = await submit(self.session, self.gw.url, TOKENS[party], message_id, document_type, body)
        assert status == 202, reply
        return reply

    async def get(self, path: str, token: str = OPS) -> tuple[int, dict[str, Any]]:
        async with self.session.get(f"{self.gw.url}{path}", headers={"Authorization": f"Bearer {token}"}) as r:
            return r.status, json.loads(await r.read())

    async def statuses(self) -> dict[str, str]:
        _, body = await self.get("/v1/admin/origin-certificates")
        return {c["number"]: c["status"] for c in body["certificates"]}

    async def issue_three_and_utilize_one(self) -> dict[str, str]:
        """Three e-C/Os delivered to TH, the second received and utilized by the Thai side; their gateway ids."""
        ids = {}
        for n in (1, 2, 3):
            ids[f"CO-{n}"] = (await self.submit("MOIT", f"CO-{n}", "eco.form_d", certificate(f"VN-TH-26-0000{n}")))[
                "id"
            ]

        async def all_delivered() -> bool:
            return set((await self.statuses()).values()) == {"delivered"} and len(await self.statuses()) == 3

        await eventually(all_delivered)
        ids["N-R"] = (
            await self.submit("TH-ASW", "N-R", "eco.form_d.notification", notification("received", "VN-TH-26-00002"))
        )["id"]
        used = notification("utilized", "VN-TH-26-00002", DeclarationID="TH-IMP-1", DeclarationDate="2026-12-04")
        ids["N-U"] = (await self.submit("TH-ASW", "N-U", "eco.form_d.notification", used))["id"]
        return ids


@pytest.fixture(params=STORE_PARAMS)
async def rig(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Rig]:
    partner, moit_box = await Receiver().start(), await Receiver().start()
    config = th_config(tmp_path, partner.url, moit_box.url, extra={"operators": OPERATORS})
    try:
        async with Gateway(config, store=STORES[request.param](tmp_path)) as gw, aiohttp.ClientSession() as session:
            yield Rig(gw, session)
    finally:
        await partner.stop()
        await moit_box.stop()


async def test_operator_lists_every_e_co_with_its_status_latest_change_first_and_filters_them(rig: Rig) -> None:
    await rig.issue_three_and_utilize_one()
    status, body = await rig.get("/v1/admin/origin-certificates")
    assert status == 200, body
    listed = body["certificates"]
    assert listed[0]["number"] == "VN-TH-26-00002" and listed[0]["status"] == "utilized"  # moved last
    assert sorted((c["number"], c["status"], c["issuer"], c["issuing_country"]) for c in listed) == [
        ("VN-TH-26-00001", "delivered", "MOIT", "VN"),
        ("VN-TH-26-00002", "utilized", "MOIT", "VN"),
        ("VN-TH-26-00003", "delivered", "MOIT", "VN"),
    ]
    assert listed[0]["href"] == "/v1/admin/origin-certificates/VN/VN-TH-26-00002"
    assert body["next_cursor"] is None

    _, utilized = await rig.get("/v1/admin/origin-certificates?status=utilized")
    assert [c["number"] for c in utilized["certificates"]] == ["VN-TH-26-00002"]
    _, by_notifier = await rig.get("/v1/admin/origin-certificates?party=TH-ASW")
    assert [c["number"] for c in by_notifier["certificates"]] == ["VN-TH-26-00002"]
    _, by_destination = await rig.get("/v1/admin/origin-certificates?party=TH")  # receipted all three
    assert len(by_destination["certificates"]) == 3
    _, by_issuer = await rig.get("/v1/admin/origin-certificates?party=MOIT&issuing_country=VN")
    assert len(by_issuer["certificates"]) == 3
    _, other_country = await rig.get("/v1/admin/origin-certificates?issuing_country=TH")
    assert other_country["certificates"] == []


async def test_operator_pages_through_the_e_cos_by_cursor_without_repeats_or_gaps(rig: Rig) -> None:
    await rig.issue_three_and_utilize_one()
    _, whole = await rig.get("/v1/admin/origin-certificates")
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        path = "/v1/admin/origin-certificates?limit=1" + (f"&cursor={cursor}" if cursor else "")
        status, page = await rig.get(path)
        assert status == 200, page
        seen += [c["number"] for c in page["certificates"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [c["number"] for c in whole["certificates"]]
    assert pages == 4  # three full pages, then an empty last one


async def test_operator_reads_an_e_co_history_with_links_to_the_messages_that_carried_it(rig: Rig) -> None:
    ids = await rig.issue_three_and_utilize_one()
    status, body = await rig.get("/v1/admin/origin-certificates/VN/VN-TH-26-00002")
    assert status == 200, body
    co = body["certificate"]
    assert (co["issuer"], co["status"]) == ("MOIT", "utilized")
    assert [(e["status"], e["party"]) for e in co["history"]] == [
        ("issued", "MOIT"),
        ("delivered", "TH"),
        ("received", "TH-ASW"),
        ("utilized", "TH-ASW"),
    ]
    assert co["history"][-1]["detail"]["declaration_number"] == "TH-IMP-1"
    assert [m["id"] for m in body["messages"]] == [ids["CO-2"], ids["N-R"], ids["N-U"]]
    for link in body["messages"]:
        code, record = await rig.get(link["href"])
        assert code == 200 and record["message"]["id"] == link["id"]


async def test_an_e_co_the_gateway_did_not_carry_is_message_not_found(rig: Rig) -> None:
    status, body = await rig.get("/v1/admin/origin-certificates/VN/VN-NOPE-1")
    assert (status, body["error"]["code"], body["error"]["field"]) == (404, "MESSAGE_NOT_FOUND", "number")


async def test_an_operator_without_the_read_role_or_a_party_is_refused_the_e_co_view(rig: Rig) -> None:
    await rig.submit("MOIT", "CO-9", "eco.form_d", certificate("VN-TH-26-00009"))
    for path in ("/v1/admin/origin-certificates", "/v1/admin/origin-certificates/VN/VN-TH-26-00009"):
        for token in (ACTOR, TOKENS["MOIT"]):
            status, body = await rig.get(path, token=token)
            assert (status, body["error"]["code"], body["error"]["field"]) == (403, "AUTH_FORBIDDEN", "Authorization")
            assert "certificates" not in body and "certificate" not in body


async def test_a_bad_status_cursor_or_limit_is_request_invalid_naming_it(rig: Rig) -> None:
    for query, field in (("status=lost", "status"), ("cursor=yesterday", "cursor"), ("limit=0", "limit")):
        status, body = await rig.get(f"/v1/admin/origin-certificates?{query}")
        assert (status, body["error"]["code"], body["error"]["field"]) == (400, "REQUEST_INVALID", field), query
