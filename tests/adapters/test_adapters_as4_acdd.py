"""The ACDD over AS4: national customs' ACDD travels to the Thai partner under the ACDD's own eb:Service/eb:Action
(not the Form D's of the same agreement), and the Thai customs' Customs Response comes back the same way and
reaches national customs.

Everything real on 127.0.0.1: the gateway on each store (configured from plain TOML values) with an ``as4``
destination and an ``as4`` endpoint, TH-ASW as an ``As4Receiver`` (taking the ACDD) and an ``As4Adapter`` (sending
the response) with the dev PKI's keys, and national customs' loopback inbox."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from adapters.as4 import As4Adapter, As4Partner, As4Receiver
from adapters.as4.pmode import ASW_COLLABORATIONS, Collaboration
from gateway.api import Gateway
from gateway.dev.demo import acdd_declaration, customs_response
from gateway.ports import OutboundMessage
from helpers.as4 import ACTION, GATEWAY, PARTNER, partner_options, pmode, sender_to, serve, side, th_destination
from helpers.gateway import Receiver, eventually, make_config
from helpers.stores import STORE_PARAMS, STORES
from signing.dev.pki import DevPki

ROOT = "{urn:nsw-gateway:asean:acdd:1}"
TYPES = {
    "acdd.declaration": {"codes": ["830"], "roots": [ROOT + "ExportDeclaration"]},
    "acdd.response": {"codes": ["961"], "roots": [ROOT + "CustomsResponse"]},
}


@dataclass
class Rig:
    gw: Gateway
    session: aiohttp.ClientSession
    th: As4Receiver
    customs_box: Receiver
    th_sender: As4Adapter


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AS4_TEST_P12_PASSWORD", "changeit")


def _config(dev_pki: DevPki, tmp_path: Path, th_url: str, customs_url: str, documents: dict[str, object]) -> object:
    destination = th_destination(dev_pki, attempts=3)
    agreement = {**destination["pmode"], "documents": documents}
    destination["pmode"] = agreement
    endpoint = {
        "party_id": GATEWAY,
        "signer": destination["signer"],
        "partners": {PARTNER: {**partner_options(dev_pki, "TH-CUSTOMS"), "pmode": agreement, "document_types": {}}},
    }
    return make_config(
        tmp_path,
        {"TH": th_url, "CUSTOMS-BOX": customs_url},
        per_destination={"TH": {"adapter": "as4", "options": destination, "format": "acdd"}},
        parties={
            "CUSTOMS": {"tokens": ["customs-token"], "document_types": ["acdd.declaration"], "format": "acdd"},
            "TH-CUSTOMS": {"tokens": ["th-token"], "document_types": ["acdd.response"], "format": "acdd"},
        },
        routes=[
            {"document_type": "acdd.declaration", "sender": "CUSTOMS", "to": ["TH"]},
            {"document_type": "acdd.response", "sender": "TH-CUSTOMS", "to": ["CUSTOMS-BOX"]},
        ],
        document_types=TYPES,
        extra={"inbound": {"asean": {"endpoint": "as4", "options": endpoint}}},
    )


@pytest.fixture(params=STORE_PARAMS)
async def rig(request: pytest.FixtureRequest, dev_pki: DevPki, tmp_path: Path) -> AsyncIterator[Rig]:
    us, them = side(dev_pki, "nsw-gateway", GATEWAY), side(dev_pki, "th-asw", PARTNER)
    # TH-ASW holds the same agreement, seen from its side: the Form D's Service/Action and the ACDD's (ASW defaults)
    ours = pmode(PARTNER, GATEWAY)
    th = As4Receiver(
        party_id=PARTNER,
        partners={GATEWAY: [As4Partner(p, us.trust, us.certificate) for _, p in ours.variants()]},
        signer=them.signer,
        decrypter=them.decrypter,
    )
    customs_box = await Receiver().start()
    try:
        async with serve(th.app()) as th_url:
            config = _config(dev_pki, tmp_path, th_url, customs_box.url, {})
            async with Gateway(config, store=STORES[request.param](tmp_path)) as gw:  # type: ignore[arg-type]
                sender = sender_to(f"{gw.url}/as4", them, us)
                async with aiohttp.ClientSession() as session, sender:
                    yield Rig(gw, session, th, customs_box, sender)
    finally:
        await customs_box.stop()


async def test_customs_acdd_goes_to_the_partner_over_as4_and_its_customs_response_comes_back(rig: Rig) -> None:
    headers = {
        "Authorization": "Bearer customs-token",
        "X-Message-Id": "ACDD-1",
        "X-Document-Type": "acdd.declaration",
        "Content-Type": "application/xml",
    }
    async with rig.session.post(f"{rig.gw.url}/v1/messages", data=acdd_declaration(1), headers=headers) as r:
        assert r.status == 202, await r.text()
    received = await asyncio.wait_for(rig.th.inbox.get(), 30)
    um = received.user_message
    acdd = ASW_COLLABORATIONS["acdd.declaration"]
    assert (um.service, um.action) == (acdd.service, acdd.action)
    assert um.action != ACTION  # the Form D's action of the same agreement
    [payload] = received.payloads.values()
    assert b"ExportDeclaration" in payload and b"305123450001" in payload

    answer = OutboundMessage(
        message_id="TH-RESP-1",
        payload=customs_response(1),
        sender=PARTNER,
        document_type="acdd.response",
        conversation=um.conversation_id,
        reference=um.message_id,
    )
    receipt = await rig.th_sender.deliver(answer)
    assert receipt.message_id == "TH-RESP-1" and not receipt.duplicate
    await eventually(lambda: len(rig.customs_box.requests) == 1)
    assert b"CustomsResponse" in rig.customs_box.requests[0]["body"]
    assert b"305123450001" in rig.customs_box.requests[0]["body"]


def test_a_partners_pmode_overrides_the_asw_default_action_of_a_document_type() -> None:
    agreement = pmode(GATEWAY, PARTNER).model_copy(
        update={"documents": {"acdd.declaration": Collaboration(service="urn:th:acdd", action="ACDD")}}
    )
    assert (agreement.for_document("acdd.declaration").service, agreement.for_document("acdd.declaration").action) == (
        "urn:th:acdd",
        "ACDD",
    )
    default = ASW_COLLABORATIONS["acdd.response"]
    assert agreement.for_document("acdd.response").action == default.action
    assert agreement.for_document("eco.form_d").action == ACTION  # not mapped: the agreement's own
