"""Profile asw-formd: every sender case passes against a real gateway (gateway.api.Gateway with the ``as4`` inbound
endpoint at /as4, the kit's PKI trusted for the kit's party, a loopback destination), and against the bare
adapters.as4.As4Receiver; every defect of the broken AS4 peer is caught by the case meant for it, and by no other."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from test_conformance_rest import check_reports

from conformance.broken_peer import AS4_DEFECTS, BrokenAs4Peer
from conformance.model import Outcome
from conformance.pki import KitPki, prepare_pki
from conformance.registry import cases
from conformance.runner import run_profile
from conformance.settings import RunOptions
from gateway.api import Gateway
from helpers.conformance import KIT_TOKEN, Served, Sink, as4_gateway_config, as4_receiver, kit_settings
from helpers.gateway import eventually

AS4 = "asw-formd"


@pytest.fixture(scope="module")
def kit_pki(tmp_path_factory: pytest.TempPathFactory) -> KitPki:
    return prepare_pki(tmp_path_factory.mktemp("kit") / "pki")


async def _messages(gw: Gateway) -> list[dict[str, object]]:
    """The messages the gateway stored for the kit's party (its API, the party's bearer token)."""
    import aiohttp

    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{gw.url}/v1/messages", headers={"Authorization": f"Bearer {KIT_TOKEN}"}) as r,
    ):
        assert r.status == 200, await r.text()
        return list((await r.json())["messages"])


def test_case_ids() -> None:
    assert [c.id for c in cases(AS4, role="sender")] == [f"NSW-AS4-TA{n:02d}" for n in range(0, 10)]


async def test_gateway_without_the_kit_partner_fails_the_preflight_only(kit_pki: KitPki, tmp_path: Path) -> None:
    """Our gateway holds no agreement for the kit's eb:PartyId: EBMS:0001 in the preflight, the rest NOT_RUN."""
    config = as4_gateway_config(tmp_path, kit_pki, "http://127.0.0.1:9/inbox", kit_party_id="someone-else")
    async with Gateway(config) as gw:
        report = await run_profile(AS4, RunOptions(target=gw.url, settings=kit_settings(kit_pki)))
        stored = await _messages(gw)
    ids = [f"NSW-AS4-TA{n:02d}" for n in range(1, 10)]
    assert {r.case.id: r.outcome for r in report.results} == {"NSW-AS4-TA00": Outcome.FAIL} | dict.fromkeys(
        ids, Outcome.NOT_RUN
    )
    preflight = report.result("NSW-AS4-TA00")
    assert "EBMS:0001 ValueNotRecognized" in preflight.reason and "AS4_UNKNOWN_PARTNER" in preflight.reason
    assert preflight.reason.startswith("the gateway has no agreement with the kit's party 'conformance-asw'")
    assert "[inbound.asean.options.partners.conformance-asw]" in preflight.reason
    assert stored == []


async def test_target_down_fails_the_preflight_only(kit_pki: KitPki) -> None:
    async with BrokenAs4Peer(pki=kit_pki) as peer:
        url = peer.url
    report = await run_profile(AS4, RunOptions(target=url, settings=kit_settings(kit_pki), request_timeout=5))
    assert report.counts() == {"PASS": 0, "FAIL": 1, "ERROR": 0, "NOT_RUN": 9}
    assert report.result("NSW-AS4-TA00").reason.startswith("the target is unreachable")


async def test_as4_profile_passes_against_our_gateway(kit_pki: KitPki, tmp_path: Path) -> None:
    """Every sender case against a real gateway: AS4 inbound endpoint at /as4, the kit's PKI trusted for its party,
    accepted messages submitted to the broker and routed to a loopback destination."""
    await _passes_against_gateway(kit_pki, tmp_path, sink_format="same")


async def test_as4_profile_passes_against_our_gateway_mapping_for_a_json_destination(
    kit_pki: KitPki, tmp_path: Path
) -> None:
    await _passes_against_gateway(kit_pki, tmp_path, sink_format="json")


async def _passes_against_gateway(kit_pki: KitPki, tmp_path: Path, *, sink_format: str) -> None:
    async with Sink() as sink, Gateway(as4_gateway_config(tmp_path, kit_pki, sink.url, sink_format=sink_format)) as gw:
        report = await run_profile(AS4, RunOptions(target=gw.url, settings=kit_settings(kit_pki)))
        assert report.passed, {
            r.case.id: f"{r.outcome.value} {r.error_code}: {r.reason}" for r in report.results if not r.passed
        }
        # TA01's message and TA07's original reach the destination once each; nothing refused is stored or routed.
        await eventually(lambda: len(sink.received) >= 2)
        await asyncio.sleep(0.3)  # a second delivery of either, or of a refused message, would show up here
        stored = await _messages(gw)
    assert [r.case.id for r in report.results] == [f"NSW-AS4-TA{n:02d}" for n in range(0, 10)]
    assert len(stored) == 2 and len(sink.received) == 2, (stored, sink.received)
    assert all(m["sender"] == "CONFORMANCE" and m["document_type"] == "eco.form_d" for m in stored), stored
    check_reports(report, tmp_path / "report", raw="<!DOCTYPE x [", escaped="&lt;!DOCTYPE x [")


async def test_as4_profile_passes_against_our_receiver(kit_pki: KitPki, tmp_path: Path) -> None:
    """The bare receiver (no broker): isolates a receiver regression from a gateway-wiring one."""
    receiver = as4_receiver(kit_pki)
    async with Served(receiver.app("/as4")) as served:
        report = await run_profile(AS4, RunOptions(target=served.url, settings=kit_settings(kit_pki)))
    assert report.passed, {
        r.case.id: f"{r.outcome.value} {r.error_code}: {r.reason}" for r in report.results if not r.passed
    }
    assert receiver.delivered == 2 or receiver.inbox.qsize() == 2  # TA01 and TA07's original, nothing else
    check_reports(report, tmp_path / "report", raw="<!DOCTYPE x [", escaped="&lt;!DOCTYPE x [")


async def test_broken_peer_without_defects_passes(kit_pki: KitPki) -> None:
    async with BrokenAs4Peer(pki=kit_pki) as peer:
        report = await run_profile(AS4, RunOptions(target=peer.url, settings=kit_settings(kit_pki)))
    assert report.passed, [(r.case.id, r.reason) for r in report.results if not r.passed]


@pytest.mark.parametrize("defect", sorted(AS4_DEFECTS))
async def test_each_defect_is_caught_by_its_case(kit_pki: KitPki, tmp_path: Path, defect: str) -> None:
    meant_for = AS4_DEFECTS[defect]
    async with BrokenAs4Peer([defect], pki=kit_pki) as peer:
        report = await run_profile(AS4, RunOptions(target=peer.url, settings=kit_settings(kit_pki)))
    outcomes = {r.case.id: r for r in report.results}
    assert outcomes[meant_for].outcome is Outcome.FAIL, outcomes[meant_for]
    others = {i: f"{r.outcome.value}: {r.reason}" for i, r in outcomes.items() if i != meant_for and not r.passed}
    assert not others, others
    check_reports(report, tmp_path / "report", raw="<!DOCTYPE x [", escaped="&lt;!DOCTYPE x [")


async def test_as4_receiver_profile_passes_against_our_adapter_sending(kit_pki: KitPki) -> None:
    """Our gateway's AS4 adapter (reception awareness) sends to the kit acting as the ASEAN partner."""
    import asyncio

    from test_conformance_rest import free_port

    from adapters.as4 import As4Adapter, PartyConfig, PMode, ReceptionAwareness
    from conformance.profiles.rest import sample_document
    from gateway.errors import PartnerUnavailable
    from gateway.ports import OutboundMessage
    from signing.identity import SignerIdentity
    from signing.keys import SoftwareSigner
    from signing.trust import TrustStore

    port = free_port()
    ours, kit = kit_pki.pki.party("nsw-gateway"), kit_pki.pki.party("conformance")
    unregistered = "urn:oasis:names:tc:ebcore:partyid-type:unregistered"
    pmode = PMode(
        id="nsw-to-kit",
        initiator=PartyConfig(party_id="nsw-gateway", party_id_type=unregistered),
        responder=PartyConfig(party_id="conformance-asw", party_id_type=unregistered),
        service="urn:asean:asw:e-form-d",
        action="SubmitFormD",
        reception_awareness=ReceptionAwareness(attempts=50, initial_wait=0.01, max_wait=0.05),
    )

    async def sleep(seconds: float) -> None:
        await asyncio.sleep(min(seconds, 0.05))

    adapter = As4Adapter(
        f"http://127.0.0.1:{port}/as4",
        timeout=10,
        options={
            "pmode": pmode,
            "signer": SoftwareSigner(ours.key, ours.cert, [kit_pki.pki.issuing_cert]),
            "trust": TrustStore(
                "conformance-asw",
                anchors=(kit_pki.pki.root_cert,),
                intermediates=(kit_pki.pki.issuing_cert,),
                signers=SignerIdentity.of(kit.cert),
            ),
            "encryption_certificate": kit.cert,
            "sleep": sleep,
        },
    )
    options = RunOptions(role="receiver", listen_port=port, wait=30, settings=kit_settings(kit_pki))
    kit_run = asyncio.create_task(run_profile(AS4, options))
    async with adapter:
        for n in range(2):
            message = OutboundMessage(f"as4-{n}", sample_document(), "MOIT", "eco.form_d", f"conv-{n}")
            for _ in range(200):  # as the delivery engine does: a PartnerUnavailable is delivered again
                try:
                    receipt = await adapter.deliver(message)
                    break
                except PartnerUnavailable:
                    await asyncio.sleep(0.02)
            assert receipt.message_id
    report = await kit_run
    assert report.passed, {r.case.id: f"{r.outcome.value}: {r.reason}" for r in report.results}
    assert [r.case.id for r in report.results] == ["NSW-AS4-RX01", "NSW-AS4-RX02"]
