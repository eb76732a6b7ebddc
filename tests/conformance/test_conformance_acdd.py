"""Profile asw-acdd: every sender case passes against a real gateway (REST API, the kit as a partner customs sending
signed ACDD XML, national customs as a loopback destination taking harmonized JSON); each defect of the broken peer
(lax in one ACDD rule) is caught by the case meant for it, and by no other; the kit as receiver takes the Customs
Response national customs sends through the gateway."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest
from test_conformance_rest import check_reports, free_port

from conformance.broken_peer import DEFECTS, BrokenPeer, PeerParty
from conformance.model import Outcome
from conformance.pki import KitPki, prepare_pki
from conformance.profiles.acdd import MANDATORY, customs_response
from conformance.registry import cases
from conformance.runner import run_profile
from conformance.settings import RunOptions
from gateway.api import Gateway
from helpers.conformance import CUSTOMS_TOKEN, KIT_TOKEN, MAX_BYTES, Sink, acdd_gateway_config, kit_settings
from helpers.gateway import eventually
from mappings.acdd import AcddFormat
from signing.sign import sign_document

ACDD = "asw-acdd"
SENDER_IDS = [f"NSW-ACDD-TA{n:02d}" for n in range(0, 7)]


@pytest.fixture(scope="module")
def kit_pki(tmp_path_factory: pytest.TempPathFactory) -> KitPki:
    return prepare_pki(tmp_path_factory.mktemp("kit") / "pki")


async def _stored(gw: Gateway) -> list[dict[str, object]]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{gw.url}/v1/messages", headers={"Authorization": f"Bearer {KIT_TOKEN}"}) as r,
    ):
        assert r.status == 200, await r.text()
        return list((await r.json())["messages"])


def test_case_ids_and_the_fifteen_mandatory_parameters() -> None:
    assert [c.id for c in cases(ACDD, role="sender")] == SENDER_IDS
    assert [c.id for c in cases(ACDD, role="receiver")] == ["NSW-ACDD-RX01"]
    assert len([m for m in MANDATORY if m.name != "goods item"]) == 15


async def test_acdd_profile_passes_against_our_gateway(kit_pki: KitPki, tmp_path: Path) -> None:
    """Accepted: TA01's ACDD, TA05's ACDD and its cancellation, TA06's accepting response; each reaches national
    customs once, as harmonized JSON; nothing refused is stored or routed."""
    async with Sink() as sink, Gateway(acdd_gateway_config(tmp_path, kit_pki, sink.url)) as gw:
        report = await run_profile(ACDD, RunOptions(target=gw.url, settings=kit_settings(kit_pki)))
        assert report.passed, {
            r.case.id: f"{r.outcome.value} {r.error_code}: {r.reason}" for r in report.results if not r.passed
        }
        await eventually(lambda: len(sink.received) >= 4)
        await asyncio.sleep(0.3)  # a refused message routed anyway would show up here
        stored = await _stored(gw)
    assert [r.case.id for r in report.results] == SENDER_IDS
    accepted = [m for m in stored if m["state"] != "REJECTED"]
    assert len(sink.received) == 4 and len(accepted) == 4, (sink.received, stored)
    assert len(stored) - len(accepted) == len(MANDATORY) + 3  # TA02's, TA03's, TA04's and TA06's refusals
    assert sorted(str(m["document_type"]) for m in accepted) == [
        "acdd.cancellation",
        "acdd.declaration",
        "acdd.declaration",
        "acdd.response",
    ]
    mandatory = report.result("NSW-ACDD-TA02")
    assert mandatory.error_code == "VALIDATION_FAILED"
    assert sum(e.direction == "sent" for e in mandatory.exchanges) == len(MANDATORY)
    check_reports(report, tmp_path / "report", raw="", escaped="")


def _broken_peer(pki: KitPki, *defects: str) -> BrokenPeer:
    party = PeerParty(KIT_TOKEN, ("acdd.declaration", "acdd.cancellation", "acdd.response"))
    return BrokenPeer(ACDD, defects, pki=pki, parties={"CONFORMANCE": party}, max_message_bytes=MAX_BYTES)


async def test_broken_peer_without_defects_passes(kit_pki: KitPki) -> None:
    async with _broken_peer(kit_pki) as peer:
        report = await run_profile(ACDD, RunOptions(target=peer.url, settings=kit_settings(kit_pki)))
    assert report.passed, {r.case.id: r.reason for r in report.results if not r.passed}


@pytest.mark.parametrize("defect", sorted(DEFECTS[ACDD]))
async def test_each_defect_is_caught_by_its_case(kit_pki: KitPki, tmp_path: Path, defect: str) -> None:
    meant_for = DEFECTS[ACDD][defect]
    async with _broken_peer(kit_pki, defect) as peer:
        report = await run_profile(ACDD, RunOptions(target=peer.url, settings=kit_settings(kit_pki)))
    outcomes = {r.case.id: r for r in report.results}
    assert outcomes[meant_for].outcome is Outcome.FAIL, outcomes[meant_for]
    others = {i: f"{r.outcome.value}: {r.reason}" for i, r in outcomes.items() if i != meant_for and not r.passed}
    assert not others, others
    check_reports(report, tmp_path / "report", raw="", escaped="")


async def test_peer_ignoring_missing_parameters_is_named_for_each_of_them(kit_pki: KitPki) -> None:
    async with _broken_peer(kit_pki, "ignore-missing-parameters") as peer:
        report = await run_profile(
            ACDD, RunOptions(target=peer.url, settings=kit_settings(kit_pki)), only=("NSW-ACDD-TA02",)
        )
    reason = report.result("NSW-ACDD-TA02").reason
    assert reason.startswith(f"{len(MANDATORY)} of {len(MANDATORY)} not refused as expected: without the ")
    assert reason.count("HTTP 202 without an error code, not 422 VALIDATION_FAILED") == len(MANDATORY)
    assert all(f"without the {m.name}:" in reason for m in MANDATORY)


async def test_gateway_without_the_kit_party_fails_the_preflight_only(kit_pki: KitPki, tmp_path: Path) -> None:
    async with Gateway(acdd_gateway_config(tmp_path, kit_pki, "http://127.0.0.1:9/inbox")) as gw:
        settings = kit_settings(kit_pki).model_copy(update={"token": "unknown-token"})
        report = await run_profile(ACDD, RunOptions(target=gw.url, settings=settings))
    assert report.counts() == {"PASS": 0, "FAIL": 1, "ERROR": 0, "NOT_RUN": 6}
    assert "does not accept the kit's token for party CONFORMANCE" in report.result("NSW-ACDD-TA00").reason


async def test_kit_receives_the_customs_response_national_customs_sends(kit_pki: KitPki, tmp_path: Path) -> None:
    """National customs answers the partner's ACDD; the gateway maps nothing (ACDD in, ACDD out) and delivers the
    signed Customs Response to the kit's listener, which checks it against the XSD and rules and answers a receipt."""
    port = free_port()
    config = acdd_gateway_config(
        tmp_path, kit_pki, "http://127.0.0.1:9/inbox", kit_url=f"http://127.0.0.1:{port}/inbox"
    )
    options = RunOptions(role="receiver", listen_port=port, wait=30, settings=kit_settings(kit_pki))
    kit_run = asyncio.create_task(run_profile(ACDD, options))
    body = sign_document(
        customs_response("305123456710", "query", "Please send the invoice of item 1."),
        kit_pki.signer("conformance"),
    )
    async with Gateway(config) as gw, aiohttp.ClientSession() as s:
        headers = {
            "Authorization": f"Bearer {CUSTOMS_TOKEN}",
            "X-Message-Id": "RESP-1",
            "X-Document-Type": "acdd.response",
            "X-Format": "acdd",
            "Content-Type": "application/xml",
        }
        async with s.post(f"{gw.url}/v1/messages", data=body, headers=headers) as r:
            ack = json.loads(await r.read())
            assert r.status == 202, ack
        report = await kit_run
    assert report.passed, {r.case.id: f"{r.outcome.value}: {r.reason}" for r in report.results}
    assert [r.case.id for r in report.results] == ["NSW-ACDD-RX01"]
    received = [e for e in report.results[0].exchanges if e.direction == "received"]
    assert received and AcddFormat().parse(_unsigned(received[0].body.encode())).customs_response is not None
    check_reports(report, tmp_path / "report", raw="", escaped="")


async def test_kit_as_receiver_fails_a_delivery_that_is_no_customs_response(kit_pki: KitPki) -> None:
    """A delivery of a declaration where a Customs Response was expected fails RX01 naming the root."""
    from conformance.profiles.acdd import declaration

    port = free_port()
    options = RunOptions(role="receiver", listen_port=port, wait=30, settings=kit_settings(kit_pki))
    kit_run = asyncio.create_task(run_profile(ACDD, options))
    headers = {"X-Message-Id": "M-1", "X-Document-Type": "acdd.response", "Content-Type": "application/xml"}
    async with aiohttp.ClientSession() as s:
        for _ in range(100):
            try:
                async with s.post(f"http://127.0.0.1:{port}/inbox", data=declaration(), headers=headers) as r:
                    assert r.status == 200
                    break
            except aiohttp.ClientConnectorError:
                await asyncio.sleep(0.05)
    report = await kit_run
    result = report.result("NSW-ACDD-RX01")
    assert result.outcome is Outcome.FAIL
    assert (
        "ExportDeclaration" in result.reason and "not '{urn:nsw-gateway:asean:acdd:1}CustomsResponse'" in result.reason
    )


def _unsigned(body: bytes) -> bytes:
    from signing.xml import parse_xml, serialize

    root = parse_xml(body)
    for signature in root.findall("{http://www.w3.org/2000/09/xmldsig#}Signature"):
        root.remove(signature)
    return serialize(root)
