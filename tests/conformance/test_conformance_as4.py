"""Profile asw-formd: every sender case passes against a real gateway (gateway.api.Gateway with the ``as4`` inbound
endpoint at /as4, the kit's PKI trusted for the kit's party, a loopback destination), and against the bare
adapters.as4.As4Receiver; every defect of the broken AS4 peer is caught by the case meant for it, and by no other."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from test_conformance_rest import check_reports

from conformance.broken_peer import AS4_DEFECTS, BrokenAs4Peer
from conformance.model import Outcome, RunReport
from conformance.pki import KitPki, prepare_pki
from conformance.registry import cases
from conformance.runner import run_profile
from conformance.settings import RunOptions
from gateway.api import Gateway
from helpers.conformance import (
    ISSUER_TOKEN,
    KIT_TOKEN,
    Served,
    Sink,
    as4_gateway_config,
    as4_lifecycle_gateway_config,
    as4_receiver,
    kit_settings,
)
from helpers.gateway import eventually
from helpers.stores import STORE_PARAMS, STORES

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
    assert [c.id for c in cases(AS4, role="sender")] == [f"NSW-AS4-TA{n:02d}" for n in range(0, 11)]
    assert [c.id for c in cases(AS4, role="receiver")] == [f"NSW-AS4-RX{n:02d}" for n in range(1, 8)]


async def test_gateway_without_the_kit_partner_fails_the_preflight_only(kit_pki: KitPki, tmp_path: Path) -> None:
    """Our gateway holds no agreement for the kit's eb:PartyId: EBMS:0001 in the preflight, the rest NOT_RUN."""
    config = as4_gateway_config(tmp_path, kit_pki, "http://127.0.0.1:9/inbox", kit_party_id="someone-else")
    async with Gateway(config) as gw:
        report = await run_profile(AS4, RunOptions(target=gw.url, settings=kit_settings(kit_pki)))
        stored = await _messages(gw)
    ids = [f"NSW-AS4-TA{n:02d}" for n in range(1, 11)]
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
    assert report.counts() == {"PASS": 0, "FAIL": 1, "ERROR": 0, "NOT_RUN": 10}
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
        # TA01's message, TA07's original and TA10's original and amendment reach the destination once each;
        # nothing refused (TA10's early amendment included) is stored or routed.
        await eventually(lambda: len(sink.received) >= 4)
        await asyncio.sleep(0.3)  # a second delivery of either, or of a refused message, would show up here
        stored = await _messages(gw)
    assert [r.case.id for r in report.results] == [f"NSW-AS4-TA{n:02d}" for n in range(0, 11)]
    assert len(stored) == 4 and len(sink.received) == 4, (stored, sink.received)
    assert all(m["sender"] == "CONFORMANCE" and m["document_type"] == "eco.form_d" for m in stored), stored
    check_reports(report, tmp_path / "report", raw="<!DOCTYPE x [", escaped="&lt;!DOCTYPE x [")


async def test_as4_profile_passes_against_our_receiver(kit_pki: KitPki, tmp_path: Path) -> None:
    """The bare receiver (no broker): isolates a receiver regression from a gateway-wiring one. It keeps no
    certificates of origin, so TA10 (an amendment before its original) is the gateway's alone."""
    receiver = as4_receiver(kit_pki)
    transport = tuple(c.id for c in cases(AS4, role="sender") if c.id != "NSW-AS4-TA10")
    async with Served(receiver.app("/as4")) as served:
        report = await run_profile(AS4, RunOptions(target=served.url, settings=kit_settings(kit_pki)), only=transport)
    assert report.passed, {
        r.case.id: f"{r.outcome.value} {r.error_code}: {r.reason}" for r in report.results if not r.passed
    }
    assert receiver.delivered == 2 or receiver.inbox.qsize() == 2  # TA01 and TA07's original, nothing else
    check_reports(report, tmp_path / "report", raw="<!DOCTYPE x [", escaped="&lt;!DOCTYPE x [")


async def test_broken_peer_without_defects_passes(kit_pki: KitPki) -> None:
    async with BrokenAs4Peer(pki=kit_pki) as peer:
        report = await run_profile(AS4, RunOptions(target=peer.url, settings=kit_settings(kit_pki)))
    assert report.passed, [(r.case.id, r.reason) for r in report.results if not r.passed]


SENDER_DEFECTS = sorted(d for d, meant_for in AS4_DEFECTS.items() if "-TA" in meant_for)
LIFECYCLE_DEFECTS = sorted(d for d, meant_for in AS4_DEFECTS.items() if "-RX" in meant_for)


@pytest.mark.parametrize("defect", SENDER_DEFECTS)
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
    # the bare adapter takes no notifications: the lifecycle cases run against a gateway and the broken peer below
    kit_run = asyncio.create_task(run_profile(AS4, options, only=("NSW-AS4-RX01", "NSW-AS4-RX02")))
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


# ------------------------------------------------------------------- the kit as the importing side: the C/O lifecycle

RX_LIFECYCLE = [f"NSW-AS4-RX{n:02d}" for n in range(1, 8)]


def _issued(number: str) -> bytes:
    """The kit's sample e-Form D numbered ``number`` (issuing country VN), as MOIT issues it."""
    from conformance.profiles.rest import CERTIFICATE_NUMBER, sample_document

    return sample_document().replace(CERTIFICATE_NUMBER, f"<ID>{number}</ID>".encode())


def _receiver_options(kit_pki: KitPki, port: int, target: str) -> RunOptions:
    from conformance.settings import As4Settings

    settings = kit_settings(kit_pki).model_copy(update={"as4": As4Settings(issuer_token=ISSUER_TOKEN)})
    return RunOptions(role="receiver", target=target, listen_port=port, wait=30, settings=settings)


async def _issuer_view(gw: Gateway, number: str) -> dict[str, Any]:
    import aiohttp

    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{gw.url}/v1/certificates/VN/{number}", headers={"Authorization": f"Bearer {ISSUER_TOKEN}"}) as r,
    ):
        assert r.status == 200, await r.text()
        return dict(await r.json())


@pytest.mark.parametrize("store_kind", STORE_PARAMS)
async def test_lifecycle_cases_pass_against_our_gateway_delivering_and_taking_notifications(
    kit_pki: KitPki, tmp_path: Path, store_kind: str
) -> None:
    """MOIT issues two e-Form Ds; our gateway delivers them over AS4 to the kit (the importing partner), takes the
    kit's receipt, utilization, rejection and verification request at /as4, routes them to MOIT's inbox and shows
    MOIT each certificate's status; the kit's notification about a certificate never carried is CO_UNKNOWN."""
    import aiohttp
    from test_conformance_rest import free_port

    port = free_port()
    async with Sink() as issuer_box:
        config = as4_lifecycle_gateway_config(tmp_path, kit_pki, f"http://127.0.0.1:{port}/as4", issuer_box.url)
        async with Gateway(config, store=STORES[store_kind](tmp_path)) as gw:
            kit_run = asyncio.create_task(run_profile(AS4, _receiver_options(kit_pki, port, gw.url)))
            async with aiohttp.ClientSession() as session:
                for n in (1, 2):
                    headers = {
                        "Authorization": f"Bearer {ISSUER_TOKEN}",
                        "X-Message-Id": f"CO-{n}",
                        "X-Document-Type": "eco.form_d",
                        "Content-Type": "application/xml",
                    }
                    body = _issued(f"VN-KIT-26-0000{n}")
                    async with session.post(f"{gw.url}/v1/messages", data=body, headers=headers) as r:
                        assert r.status == 202, await r.text()
            report = await kit_run
            assert report.passed, {
                r.case.id: f"{r.outcome.value} {r.error_code}: {r.reason}" for r in report.results if not r.passed
            }
            views = {number: await _issuer_view(gw, number) for number in ("VN-KIT-26-00001", "VN-KIT-26-00002")}
            await eventually(lambda: len(issuer_box.received) >= 4)
    assert [r.case.id for r in report.results] == RX_LIFECYCLE
    assert report.result("NSW-AS4-RX07").error_code == "CO_UNKNOWN"
    # which of the two the gateway delivered first is not fixed: one was received, utilized and asked about, the
    # other rejected
    statuses = sorted(str(v["status"]) for v in views.values())
    assert statuses == ["rejected", "utilized"], views
    steps = {str(v["status"]): [str(e["status"]) for e in v["history"]] for v in views.values()}
    assert steps["utilized"] == ["issued", "delivered", "received", "utilized", "verification_request"]
    assert steps["rejected"] == ["issued", "delivered", "rejected"]
    assert len(issuer_box.received) == 4  # the four notifications the gateway took, not the refused one


async def _against_the_broken_peer(kit_pki: KitPki, *defects: str) -> tuple[RunReport, BrokenAs4Peer]:
    """The kit as receiver of the broken AS4 peer's two e-Form Ds, then notifying the peer about them."""
    from test_conformance_rest import free_port

    port = free_port()
    async with BrokenAs4Peer(defects, pki=kit_pki, issuer_token=ISSUER_TOKEN) as peer:
        kit_run = asyncio.create_task(run_profile(AS4, _receiver_options(kit_pki, port, peer.url)))
        await peer.deliver(f"http://127.0.0.1:{port}/as4", ["VN-KIT-26-00001", "VN-KIT-26-00002"])
        return await kit_run, peer


async def test_broken_peer_without_defects_passes_the_lifecycle_cases(kit_pki: KitPki) -> None:
    report, peer = await _against_the_broken_peer(kit_pki)
    assert report.passed, {r.case.id: f"{r.outcome.value}: {r.reason}" for r in report.results if not r.passed}
    assert [r.case.id for r in report.results] == RX_LIFECYCLE
    assert {number: c.status for (_, number), c in peer.certificates.items()} == {
        "VN-KIT-26-00001": "utilized",
        "VN-KIT-26-00002": "rejected",
    }


@pytest.mark.parametrize("defect", LIFECYCLE_DEFECTS)
async def test_each_lifecycle_defect_is_caught_by_its_case(kit_pki: KitPki, tmp_path: Path, defect: str) -> None:
    meant_for = AS4_DEFECTS[defect]
    report, _peer = await _against_the_broken_peer(kit_pki, defect)
    outcomes = {r.case.id: r for r in report.results}
    assert outcomes[meant_for].outcome is Outcome.FAIL, outcomes[meant_for]
    others = {i: f"{r.outcome.value}: {r.reason}" for i, r in outcomes.items() if i != meant_for and not r.passed}
    assert not others, others
    check_reports(report, tmp_path / "report", raw="")
