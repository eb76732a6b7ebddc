"""``GET /metrics`` of a real gateway with a real loopback partner: the exposition parses with prometheus_client's
parser and passes ``promtool check metrics``; each gauge moves as the scenario says; refusals are counted with code
and sender; HTTP requests by route template; certificate expiry and build info from the configuration."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from importlib.metadata import version
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.actions import replay_dead_letters
from gateway.api import Gateway
from helpers.gateway import TOKENS, Receiver, dev_trust, doc, eventually, make_config, submit
from helpers.ocsp import dev_pki  # noqa: F401 - fixture
from helpers.postgres import IsolatedPostgresStore
from signing.dev.pki import DevPki

SCRAPE = "scrape-token-for-tests"

pytestmark = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian package prometheus)")


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition, by name and labels."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def sample(text: str, name: str, **labels: str) -> float | None:
    return samples(text).get((name, frozenset(labels.items())))


async def scrape(s: aiohttp.ClientSession, gw: Gateway, accept: str | None = None) -> str:
    headers = {"Authorization": f"Bearer {SCRAPE}"}
    if accept is not None:
        headers["Accept"] = accept
    async with s.get(f"{gw.url}/metrics", headers=headers) as r:
        assert r.status == 200
        return await r.text()


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[tuple[Gateway, aiohttp.ClientSession, Receiver]]:
    th = await Receiver().start()
    config = make_config(
        tmp_path,
        {"TH": th.url},
        routes=[{"document_type": "eco.form_d", "to": ["TH"]}, {"document_type": "sps.permit", "to": ["TH"]}],
        gateway={"metrics": {"tokens": [SCRAPE]}, "max_message_bytes": 4096},
        retry={"max_attempts": 1000, "ttl": 600.0},
    )
    try:
        async with Gateway(config) as gw, aiohttp.ClientSession() as s:
            yield gw, s, th
    finally:
        await th.stop()


async def test_a_live_scrape_parses_and_passes_promtool_check_metrics(rig, tmp_path: Path) -> None:
    gw, s, _ = rig
    await submit(s, gw.url, "MOIT", "ECO-1", "eco.form_d", doc(1))
    await eventually(lambda: gw.metrics.value("nswgw_deliveries_total", destination="TH") == 1)
    async with s.get(f"{gw.url}/metrics", headers={"Authorization": f"Bearer {SCRAPE}"}) as r:
        assert r.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        text = await r.text()
    assert "X-Prometheus-Format" not in r.headers
    names = {f.name for f in text_string_to_metric_families(text)}
    assert {"nswgw_outbox_pending", "nswgw_dossier_latency_seconds", "process_resident_memory_bytes"} <= names
    checked = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    openmetrics = await scrape(s, gw, accept="application/openmetrics-text; version=1.0.0")
    assert openmetrics.endswith("# EOF\n")


async def test_backlog_rises_during_a_partner_outage_and_returns_to_zero(rig) -> None:
    gw, s, th = rig
    th.mode = "down"
    for n in range(3):
        status, _ = await submit(s, gw.url, "MOIT", f"ECO-OUT-{n}", "eco.form_d", doc(n))
        assert status == 202
    await eventually(lambda: len(th.requests) >= 3)
    text = await scrape(s, gw)
    assert sample(text, "nswgw_outbox_pending", destination="TH") == 3
    assert (sample(text, "nswgw_outbox_oldest_age_seconds", destination="TH") or 0) > 0
    assert (
        sample(text, "nswgw_delivery_failures_total", destination="TH", code="PARTNER_UNAVAILABLE", outcome="retry")
        or 0
    ) >= 3
    th.mode = "ok"

    async def drained() -> bool:
        return sample(await scrape(s, gw), "nswgw_outbox_pending", destination="TH") == 0

    await eventually(drained, limit=60)
    text = await scrape(s, gw)
    assert sample(text, "nswgw_outbox_oldest_age_seconds", destination="TH") == 0
    assert sample(text, "nswgw_deliveries_total", destination="TH") == 3


async def test_dead_letter_queue_depth_goes_down_after_replay(rig) -> None:
    gw, s, th = rig
    th.mode = "reject"
    await submit(s, gw.url, "MOIT", "ECO-DLQ-1", "eco.form_d", doc(1))

    async def depth() -> float | None:
        return sample(await scrape(s, gw), "nswgw_dead_letter_queue_depth", destination="TH")

    async def depth_is(n: float) -> bool:
        return await depth() == n

    await eventually(lambda: depth_is(1))
    text = await scrape(s, gw)
    assert sample(text, "nswgw_dead_letters_total", destination="TH") == 1
    assert sample(text, "nswgw_delivery_failures_total", destination="TH", code="PARTNER_REJECTED", outcome="dead") == 1
    th.mode = "ok"
    replayed, _ = await replay_dead_letters(gw.store, gw.config, now=time.time(), operator="test", destination="TH")
    assert len(replayed) == 1
    gw.engine.wake(("TH",))
    await eventually(lambda: depth_is(0))
    text = await scrape(s, gw)
    assert sample(text, "nswgw_dead_letters_total", destination="TH") == 1  # a counter: replay does not undo it
    assert sample(text, "nswgw_deliveries_total", destination="TH") == 1


async def test_dossier_latency_is_observed_per_document_type(rig) -> None:
    gw, s, _ = rig
    await submit(s, gw.url, "MOIT", "ECO-LAT-1", "eco.form_d", doc(1))
    await submit(s, gw.url, "MOIT", "ECO-LAT-2", "eco.form_d", doc(2))
    await submit(s, gw.url, "MARD", "SPS-LAT-1", "sps.permit", doc(3))
    await eventually(lambda: gw.metrics.value("nswgw_dossier_latency_seconds_count", document_type="sps.permit") == 1)
    await eventually(lambda: gw.metrics.value("nswgw_dossier_latency_seconds_count", document_type="eco.form_d") == 2)
    text = await scrape(s, gw)
    assert sample(text, "nswgw_dossier_latency_seconds_count", document_type="eco.form_d") == 2
    assert sample(text, "nswgw_dossier_latency_seconds_bucket", document_type="eco.form_d", le="+Inf") == 2
    assert sample(text, "nswgw_dossier_latency_seconds_bucket", document_type="eco.form_d", le="3.0") is not None


async def test_refusals_are_counted_by_code_and_sender_including_unauthenticated_and_oversized(rig) -> None:
    gw, s, _ = rig
    async with s.post(f"{gw.url}/v1/messages", data=doc(1)) as r:
        assert r.status == 401 and (await r.json())["error"]["code"] == "AUTH_REQUIRED"
    headers = {"Authorization": f"Bearer {TOKENS['MOIT']}", "X-Message-Id": "BIG-1", "X-Document-Type": "eco.form_d"}
    async with s.post(f"{gw.url}/v1/messages", data=doc(2, size=10_000), headers=headers) as r:
        assert r.status == 413 and (await r.json())["error"]["code"] == "XML_TOO_LARGE"
    status, body = await submit(s, gw.url, "MOIT", "BAD-1", "eco.form_d", b"<not-closed>")
    assert status == 400 and body["error"]["code"] == "XML_MALFORMED"
    code = "XML_MALFORMED"
    async with s.get(f"{gw.url}/no/such/path", headers={"Authorization": f"Bearer {TOKENS['MOIT']}"}) as r:
        assert r.status == 404
    text = await scrape(s, gw)
    assert sample(text, "nswgw_rejections_total", code="AUTH_REQUIRED", sender="") == 1
    assert sample(text, "nswgw_rejections_total", code="XML_TOO_LARGE", sender="MOIT") == 1
    assert sample(text, "nswgw_rejections_total", code=code, sender="MOIT") == 1
    assert sample(text, "nswgw_messages_rejected_total", code=code) == 1
    assert sample(text, "nswgw_rejections_total", code="PATH_NOT_FOUND", sender="MOIT") == 1


async def test_http_requests_are_counted_by_route_template_never_the_raw_path(rig) -> None:
    gw, s, _ = rig
    _, ack = await submit(s, gw.url, "MOIT", "ECO-R-1", "eco.form_d", doc(1))
    auth = {"Authorization": f"Bearer {TOKENS['MOIT']}"}
    for _ in range(2):
        async with s.get(f"{gw.url}/v1/messages/{ack['id']}", headers=auth) as r:
            assert r.status == 200
    async with s.get(f"{gw.url}/v1/messages/does-not-exist", headers=auth) as r:
        assert r.status == 404
    async with s.get(f"{gw.url}/random/{ack['id']}", headers=auth) as r:
        assert r.status == 404
    text = await scrape(s, gw)
    assert sample(text, "nswgw_http_requests_total", route="/v1/messages", status="202") == 1
    assert sample(text, "nswgw_http_requests_total", route="/v1/messages/{id}", status="200") == 2
    assert sample(text, "nswgw_http_requests_total", route="/v1/messages/{id}", status="404") == 1
    assert sample(text, "nswgw_http_requests_total", route="unmatched", status="404") == 1
    assert sample(text, "nswgw_http_request_duration_seconds_count", route="/v1/messages/{id}") == 3
    assert ack["id"] not in text


async def test_metrics_refused_without_the_scrape_token(rig) -> None:
    gw, s, _ = rig
    async with s.get(f"{gw.url}/metrics") as r:
        assert r.status == 401 and (await r.json())["error"]["code"] == "AUTH_REQUIRED"
    async with s.get(f"{gw.url}/metrics", headers={"Authorization": f"Bearer {TOKENS['MOIT']}"}) as r:
        assert r.status == 403 and (await r.json())["error"]["code"] == "AUTH_FORBIDDEN"


async def test_readiness_gauge_reports_the_readyz_checks(rig) -> None:
    gw, s, _ = rig
    text = await scrape(s, gw)
    assert sample(text, "nswgw_ready") == 1
    assert sample(text, "nswgw_readiness_check", check="write") == 1


async def test_certificate_expiry_and_build_info_come_from_the_configuration(tmp_path: Path, dev_pki: DevPki) -> None:
    th = await Receiver().start()
    gw_key = dev_pki.party("nsw-gateway")
    config = make_config(
        tmp_path,
        {"TH": th.url},
        parties={
            "MOIT": {"trust": {"pinned": [{"certificate": str(dev_pki.party("moit").cert_path)}]}},
            "MARD": {"trust": dev_trust(dev_pki, "mard")},
            "TRADER": {"trust": dev_trust(dev_pki, "trader")},
        },
        per_destination={
            "TH": {"receipt": "signed", "trust": {"pinned": [{"certificate": str(dev_pki.party("th-asw").cert_path)}]}}
        },
        gateway={"verification": "signature", "signing": "on"},
        extra={"signing": {"keys": [{"pkcs12": str(gw_key.p12_path), "password": "changeit"}]}},
    )

    def expiry(cert) -> float:  # type: ignore[no-untyped-def]
        return cert.not_valid_after_utc.timestamp()

    def serial(cert) -> str:  # type: ignore[no-untyped-def]
        return format(cert.serial_number, "x")

    try:
        async with Gateway(config) as gw, aiohttp.ClientSession() as s:
            async with s.get(f"{gw.url}/metrics") as r:
                text = await r.text()
    finally:
        await th.stop()
    name = "nswgw_certificate_expiry_timestamp_seconds"
    expected = {
        ("gateway", "signing", gw_key.cert),
        ("MOIT", "pinned", dev_pki.party("moit").cert),
        ("MARD", "anchor", dev_pki.root_cert),
        ("MARD", "intermediate", dev_pki.issuing_cert),
        ("TH", "receipt_pinned", dev_pki.party("th-asw").cert),
    }
    for party, role, cert in expected:
        assert sample(text, name, party=party, role=role, serial=serial(cert)) == expiry(cert), (party, role)
    assert sample(text, "nswgw_build_info", version=version("nsw-gateway")) == 1


@pytest.mark.postgres
async def test_outbox_gauges_count_the_postgresql_store_too(tmp_path: Path) -> None:
    th = await Receiver(mode="down").start()
    config = make_config(tmp_path, {"TH": th.url}, gateway={"metrics": {"tokens": [SCRAPE]}})
    try:
        async with Gateway(config, store=IsolatedPostgresStore(pool_size=4)) as gw, aiohttp.ClientSession() as s:
            await submit(s, gw.url, "MOIT", "ECO-PG-1", "eco.form_d", doc(1))
            await eventually(lambda: len(th.requests) >= 1)
            text = await scrape(s, gw)
            assert sample(text, "nswgw_outbox_pending", destination="TH") == 1
            assert (sample(text, "nswgw_outbox_oldest_age_seconds", destination="TH") or 0) > 0
            assert sample(text, "nswgw_dead_letter_queue_depth", destination="TH") == 0
            th.mode = "ok"

            async def drained() -> bool:
                return sample(await scrape(s, gw), "nswgw_outbox_pending", destination="TH") == 0

            await eventually(drained, limit=60)
    finally:
        await th.stop()
