"""Profile vnsw-ministry: passes against our gateway's VNSW SOAP endpoint; every defect of the broken peer
is caught by the case meant for it, and by no other."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from test_conformance_rest import check_reports

from conformance.broken_peer import DEFECTS
from conformance.model import Outcome
from conformance.pki import KitPki, prepare_pki
from conformance.registry import cases
from conformance.runner import run_profile
from conformance.settings import RunOptions
from gateway.api import Gateway
from helpers.conformance import Sink, broken_peer, kit_settings, vnsw_gateway_config

VNSW = "vnsw-ministry"


@pytest.fixture(scope="module")
def kit_pki(tmp_path_factory: pytest.TempPathFactory) -> KitPki:
    return prepare_pki(tmp_path_factory.mktemp("kit") / "pki")


def test_case_ids() -> None:
    assert [c.id for c in cases(VNSW, role="sender")] == [f"NSW-VNSW-TA{n:02d}" for n in range(0, 15)]


async def test_unknown_token_fails_the_preflight_and_the_other_cases_are_not_run(kit_pki: KitPki) -> None:
    settings = kit_settings(kit_pki).model_copy(update={"token": "not-the-kit-token"})
    async with broken_peer(kit_pki, profile=VNSW) as peer:
        report = await run_profile(VNSW, RunOptions(target=peer.url, settings=settings))
    ids = [f"NSW-VNSW-TA{n:02d}" for n in range(1, 15)]
    assert {r.case.id: r.outcome for r in report.results} == {"NSW-VNSW-TA00": Outcome.FAIL} | dict.fromkeys(
        ids, Outcome.NOT_RUN
    )
    reason = report.result("NSW-VNSW-TA00").reason
    assert reason.startswith("the gateway does not accept the kit's token for party CONFORMANCE (settings 'token')")
    assert reason.endswith("see conformance/README.md#preparing-a-gateway")


async def test_target_down_fails_the_preflight_only(kit_pki: KitPki) -> None:
    async with broken_peer(kit_pki, profile=VNSW) as peer:
        url = peer.url
    report = await run_profile(VNSW, RunOptions(target=url, settings=kit_settings(kit_pki), request_timeout=5))
    assert report.counts() == {"PASS": 0, "FAIL": 1, "ERROR": 0, "NOT_RUN": 14}
    assert report.result("NSW-VNSW-TA00").reason.startswith("the target is unreachable")


async def test_vnsw_profile_passes_against_our_gateway(kit_pki: KitPki, tmp_path: Path) -> None:
    async with Sink() as sink, Gateway(vnsw_gateway_config(tmp_path, kit_pki, sink.url)) as gw:
        report = await run_profile(VNSW, RunOptions(target=gw.url, settings=kit_settings(kit_pki)))
    assert report.passed, {
        r.case.id: f"{r.outcome.value} {r.error_code}: {r.reason}" for r in report.results if not r.passed
    }
    check_reports(report, tmp_path / "report", raw="<!DOCTYPE Envelope", escaped="&amp;lt;!DOCTYPE Envelope")


async def test_broken_peer_without_defects_passes(kit_pki: KitPki) -> None:
    async with broken_peer(kit_pki, profile=VNSW) as peer:
        report = await run_profile(VNSW, RunOptions(target=peer.url, settings=kit_settings(kit_pki)))
    assert report.passed, [(r.case.id, r.reason) for r in report.results if not r.passed]


@pytest.mark.parametrize("defect", sorted(DEFECTS[VNSW]))
async def test_each_defect_is_caught_by_its_case(kit_pki: KitPki, tmp_path: Path, defect: str) -> None:
    meant_for = DEFECTS[VNSW][defect]
    async with broken_peer(kit_pki, defect, profile=VNSW) as peer:
        report = await run_profile(VNSW, RunOptions(target=peer.url, settings=kit_settings(kit_pki)))
    outcomes = {r.case.id: r for r in report.results}
    assert outcomes[meant_for].outcome is Outcome.FAIL, outcomes[meant_for]
    others = {i: f"{r.outcome.value}: {r.reason}" for i, r in outcomes.items() if i != meant_for and not r.passed}
    assert not others, others
    check_reports(report, tmp_path / "report", raw="<!DOCTYPE Envelope", escaped="&amp;lt;!DOCTYPE Envelope")


async def test_vnsw_receiver_profile_passes_against_our_gateway_delivering(kit_pki: KitPki, tmp_path: Path) -> None:
    """Our gateway's zeep adapter (adapters/vnsw_soap) calls the kit acting as the ministry."""
    import aiohttp
    from test_conformance_rest import free_port

    from conformance.profiles.vnsw import VnswSession

    port = free_port()
    config = vnsw_gateway_config(tmp_path, kit_pki, "http://unused.invalid")
    dest = config.destinations["SINK"].model_copy(
        update={
            "adapter": "vnsw-soap",
            "url": f"http://127.0.0.1:{port}/vnsw/soap",
            "format": "same",
            "options": {"office_code": "BNNPTNT"},
        }
    )
    config = config.model_copy(update={"destinations": {"SINK": dest}})
    options = RunOptions(role="receiver", listen_port=port, wait=30, settings=kit_settings(kit_pki))
    async with Gateway(config) as gw:
        kit = asyncio.create_task(run_profile(VNSW, options))
        session = VnswSession(RunOptions(target=gw.url, settings=kit_settings(kit_pki)), kit_pki)
        async with aiohttp.ClientSession() as client:
            for _ in range(2):
                h = {"Authorization": "Bearer kit-token", "Content-Type": "text/xml; charset=utf-8"}
                from conformance.profiles.vnsw import soap_request

                body = soap_request(session.signed(session.envelope()))
                async with client.post(f"{gw.url}/vnsw/soap", data=body, headers=h) as r:
                    assert r.status == 200 and b"&lt;function&gt;99" in await r.read()
        report = await kit
    assert report.passed, {r.case.id: f"{r.outcome.value}: {r.reason}" for r in report.results}
    assert [r.case.id for r in report.results] == ["NSW-VNSW-RX01", "NSW-VNSW-RX02"]
