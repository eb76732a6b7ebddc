"""The IPPC ePhyto hub adapters (``ippc-hub``) against a simulated hub on loopback (:mod:`helpers.ippc`), through a
real gateway: SPS certificates out and tracked to their delivery state, imports pulled in and acknowledged once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import requests
import zeep.exceptions as zx
from lxml import etree

from adapters.ippc import IppcHubAdapter, IppcHubSource, translate_error
from adapters.ippc.hub import HUB_NS
from gateway.api import Gateway
from gateway.config import Config
from gateway.errors import ConfigError, NswError, PartnerError, PartnerRejected, RequestInvalid
from gateway.model import State, gateway_message_id
from gateway.ports import OutboundMessage
from helpers.adapters import soap_driver_errors
from helpers.gateway import Receiver, eventually, make_config, submit
from helpers.ippc import SimulatedHub
from helpers.stores import STORE_PARAMS, STORES

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "mappings"
CERTIFICATE = (VECTORS / "sps" / "uncefact-SPSCertificate-17-ephyto-sample-with-pdf-attachment.xml").read_bytes()
"""The corpus' UN/CEFACT SPSCertificate:17 (ID 123ABC, type 851, status 70, import country EC)."""
DOCUMENT_TYPES = {"sps.phyto": {"codes": ["851"]}}
PARTIES: dict[str, dict[str, Any]] = {
    "MARD": {"document_types": ["sps.phyto"]},
    "IPPC": {"document_types": ["sps.phyto"]},
}
FAST = {"nppo": "VN", "tracking_interval": 0.02}


def _outbound_config(tmp_path: Path, hub: SimulatedHub, *, timeout: float = 5.0, **options: Any) -> Config:
    return make_config(
        tmp_path,
        {"IPPC": hub.url},
        per_destination={"IPPC": {"adapter": "ippc-hub", "timeout": timeout, "options": {**FAST, **options}}},
        parties=PARTIES,
        document_types=DOCUMENT_TYPES,
        retry={"max_attempts": 20},
    )


def _inbound_config(tmp_path: Path, hub: SimulatedHub, receiver: Receiver, **options: Any) -> Config:
    source = {"url": hub.url, "nppo": "VN", "party": "IPPC", "document_type": "sps.phyto", "poll_interval": 0.05}
    return make_config(
        tmp_path,
        {"PPD": receiver.url},
        parties=PARTIES,
        document_types=DOCUMENT_TYPES,
        extra={"inbound": {"ippc": {"endpoint": "ippc-hub", "options": {**source, **options}}}},
    )


async def _send(gw: Gateway, message_id: str = "PHY-1", body: bytes = CERTIFICATE) -> str:
    async with aiohttp.ClientSession() as s:
        status, ack = await submit(s, gw.url, "MARD", message_id, "sps.phyto", body, X_Format="sps")
    assert status == 202, ack
    return str(ack["id"])


async def _settled(gw: Gateway, gateway_id: str) -> Any:
    async def done() -> bool:
        record = await gw.store.get(gateway_id)
        return record is not None and record.deliveries[0].state in (State.ACKNOWLEDGED, State.DEAD)

    await eventually(done)
    record = await gw.store.get(gateway_id)
    assert record is not None
    return record.deliveries[0]


# --------------------------------------------------------------------------- outbound


@pytest.fixture(params=STORE_PARAMS)
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_sps_certificate_reaches_the_hub_and_is_tracked_to_delivered(tmp_path: Path, store_kind: str) -> None:
    async with SimulatedHub() as hub:
        async with Gateway(_outbound_config(tmp_path, hub), store=STORES[store_kind](tmp_path)) as gw:
            delivery = await _settled(gw, await _send(gw))
    assert delivery.state is State.ACKNOWLEDGED, delivery.last_error
    [(number, envelope)] = hub.delivered.items()
    assert (envelope["From"], envelope["To"], envelope["NPPOCertificateNumber"]) == ("VN", "EC", "123ABC")
    assert (envelope["CertificateType"], envelope["CertificateStatus"]) == ("851", "70")
    assert envelope["Content"].encode() == CERTIFICATE
    receipt = etree.fromstring(delivery.receipt)
    assert receipt.findtext(f"{{{HUB_NS}}}HUBTrackingInfo") == "Delivered"
    assert receipt.findtext(f"{{{HUB_NS}}}hubDeliveryNumber") == number


async def test_failed_delivery_is_dead_lettered_with_partner_rejected_and_the_hubs_reason(tmp_path: Path) -> None:
    async with SimulatedHub(final="FailedDelivery", reason="EC NPPO: unknown consignee") as hub:
        async with Gateway(_outbound_config(tmp_path, hub)) as gw:
            delivery = await _settled(gw, await _send(gw))
    assert delivery.state is State.DEAD
    assert delivery.attempts == 1
    assert delivery.last_error["code"] == "PARTNER_REJECTED"
    assert delivery.last_error["details"]["reason"] == "EC NPPO: unknown consignee"
    assert delivery.last_error["details"]["tracking"] == "FailedDelivery"
    assert hub.calls["DeliverEnvelope"] == 1


async def test_pending_across_attempts_and_a_restart_is_tracked_to_delivered_without_a_second_envelope(
    tmp_path: Path,
) -> None:
    """Each attempt (0.1 s) sees at most a few PendingDelivery answers; the retries, one of them on a restarted
    gateway, ask about the envelope the first attempt delivered (kept in the store's adapter state)."""
    async with SimulatedHub(pending_polls=12) as hub:
        config = _outbound_config(tmp_path, hub, timeout=0.1, operation_timeout=5.0, tracking_interval=0.03)
        async with Gateway(config) as gw:
            gateway_id = await _send(gw)
            await eventually(lambda: sum(hub.tracked.values()) >= 4)
        assert hub.calls["DeliverEnvelope"] == 1
        async with Gateway(config) as gw:
            remembered = await gw.adapter_state("destination:IPPC").get(gateway_id)
            delivery = await _settled(gw, gateway_id)
    assert delivery.state is State.ACKNOWLEDGED, delivery.last_error
    assert delivery.attempts >= 3
    [number] = hub.delivered
    assert remembered == number.encode()
    assert hub.calls["DeliverEnvelope"] == 1
    assert hub.tracked[number] == 13
    failures = [t for t in delivery.history if t.code == "PARTNER_UNAVAILABLE"]
    assert failures and all("PendingDelivery" in (t.detail or "") for t in failures)


async def test_hub_503_is_retried_and_the_certificate_delivered_once(tmp_path: Path) -> None:
    async with SimulatedHub(unavailable=2) as hub:
        async with Gateway(_outbound_config(tmp_path, hub)) as gw:
            delivery = await _settled(gw, await _send(gw))
    assert delivery.state is State.ACKNOWLEDGED, delivery.last_error
    assert delivery.attempts == 3
    assert [t.code for t in delivery.history if t.code] == ["PARTNER_UNAVAILABLE", "PARTNER_UNAVAILABLE"]
    assert len(hub.delivered) == 1


def _out(payload: bytes = CERTIFICATE, message_id: str = "m-1") -> OutboundMessage:
    return OutboundMessage(message_id, payload, "MARD", "sps.phyto", message_id)


async def test_soap_fault_on_deliver_is_partner_rejected_with_the_hub_exception_message() -> None:
    async with SimulatedHub(faults=("DeliverEnvelope",)) as hub:
        adapter = IppcHubAdapter(hub.url, timeout=5.0, options=FAST)
        with pytest.raises(PartnerRejected) as err:
            await adapter.deliver(_out())
        await adapter.close()
    assert err.value.details["hub_message"] == "DeliverEnvelope refused by the hub"
    assert await adapter.state.get("m-1") is None, "nothing remembered for an envelope the hub refused"


async def test_envelope_the_hub_no_longer_knows_is_delivered_again_on_the_next_attempt() -> None:
    async with SimulatedHub() as hub:
        adapter = IppcHubAdapter(hub.url, timeout=5.0, options=FAST)
        await adapter.state.put("m-1", b"HUB-LOST", ttl=60)
        with pytest.raises(NswError) as err:
            await adapter.deliver(_out())
        assert err.value.code == "PARTNER_UNAVAILABLE" and err.value.details["tracking"] == "EnvelopeNotExists"
        receipt = await adapter.deliver(_out())
        await adapter.close()
    assert receipt.message_id == "m-1"
    assert list(hub.delivered) == ["HUB-0001"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (b"<Doc/>", "/SPSCertificate"),
        (
            CERTIFICATE.replace(b"<ns1:TypeCode>851</ns1:TypeCode>", b"<ns1:TypeCode>PHYTO</ns1:TypeCode>", 1),
            "/SPSCertificate/SPSExchangedDocument/TypeCode",
        ),
        (
            CERTIFICATE.replace(b"<ns1:ID>EC</ns1:ID>", b"<ns1:ID></ns1:ID>"),
            "/SPSCertificate/SPSConsignment/ImportSPSCountry/ID",
        ),
    ],
    ids=["not-sps", "type-code-not-a-number", "no-import-country"],
)
async def test_payload_the_hub_cannot_envelope_is_request_invalid_naming_the_element(
    payload: bytes, field: str
) -> None:
    async with SimulatedHub() as hub:
        adapter = IppcHubAdapter(hub.url, options=FAST)
        with pytest.raises(RequestInvalid) as err:
            await adapter.deliver(_out(payload))
    assert err.value.code == "REQUEST_INVALID" and err.value.field == field
    assert hub.calls["DeliverEnvelope"] == 0


# --------------------------------------------------------------------------- inbound


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    partner = await Receiver().start()
    try:
        yield partner
    finally:
        await partner.stop()


async def test_import_is_pulled_accepted_delivered_and_acknowledged_once(tmp_path: Path, receiver: Receiver) -> None:
    async with SimulatedHub() as hub:
        number = hub.add_import(CERTIFICATE, certificate="TH-77")
        async with Gateway(_inbound_config(tmp_path, hub, receiver)) as gw:
            await eventually(lambda: hub.acknowledged == [number])
            pulls = hub.calls["PULLImportEnvelope"]
            await eventually(lambda: hub.calls["PULLImportEnvelope"] >= pulls + 3)
            delivery = await _settled(gw, gateway_message_id("IPPC", number))
            record = await gw.store.get(gateway_message_id("IPPC", number))
    assert record is not None and record.message.envelope.conversation == "TH:TH-77"
    assert delivery.state is State.ACKNOWLEDGED
    assert hub.calls["AcknowledgeEnvelopeReceipt"] == 1 and not hub.imports
    assert [r["body"] for r in receiver.requests] == [CERTIFICATE]


async def test_acknowledgement_lost_at_a_crash_is_pulled_again_deduplicated_and_acknowledged(
    tmp_path: Path, receiver: Receiver
) -> None:
    """Fault injection: the hub fails every acknowledgement while the first gateway runs (accepted, never
    acknowledged), then the gateway stops; the restarted one pulls the envelope again, the broker answers it as a
    duplicate, and it is acknowledged."""
    async with SimulatedHub(ack_failures=10_000) as hub:
        number = hub.add_import(CERTIFICATE)
        gateway_id = gateway_message_id("IPPC", number)
        config = _inbound_config(tmp_path, hub, receiver)
        async with Gateway(config) as gw:
            await eventually(lambda: hub.calls["AcknowledgeEnvelopeReceipt"] >= 2)
            first = await _settled(gw, gateway_id)
        assert number in hub.imports and hub.acknowledged == []
        assert first.state is State.ACKNOWLEDGED
        hub.ack_failures = 0
        async with Gateway(config) as gw:
            await eventually(lambda: hub.acknowledged == [number])
            record = await gw.store.get(gateway_id)
    assert record is not None and record.deliveries[0].attempts == 1
    assert not hub.imports
    assert len(receiver.requests) == 1, "the duplicate was neither stored nor delivered again"


async def test_import_the_broker_refuses_is_acknowledged_as_failed_with_the_code(
    tmp_path: Path, receiver: Receiver
) -> None:
    async with SimulatedHub() as hub:
        refused = hub.add_import(b"<Doc><No>1</No></Doc>")
        elsewhere = hub.add_import(CERTIFICATE, to="TH")
        async with Gateway(_inbound_config(tmp_path, hub, receiver)):
            await eventually(lambda: len(hub.failed) == 2)
    failed = dict(hub.failed)
    assert failed[refused].startswith("VALIDATION_FAILED: ")
    assert failed[elsewhere].startswith("REQUEST_INVALID: ")
    assert hub.acknowledged == [] and receiver.requests == []


# --------------------------------------------------------------------------- options and errors


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({}, "options.nppo"),
        ({"nppo": "Viet Nam"}, "options.nppo"),
        ({"nppo": "VN", "tracking_interval": 0}, "options.tracking_interval"),
        ({"nppo": "VN", "timeout": 3}, "options.timeout"),
    ],
    ids=["no-nppo", "nppo-not-a-country-code", "tracking-interval-zero", "unknown-option"],
)
def test_bad_adapter_options_are_config_invalid_naming_the_option(options: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as err:
        IppcHubAdapter("https://hub.example/hub/DeliveryService", options=options)
    assert err.value.code == "CONFIG_INVALID" and err.value.field == field


def test_bad_destination_options_are_config_invalid_naming_the_destination_option(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        make_config(
            tmp_path,
            {"IPPC": "https://hub.example/hub/DeliveryService"},
            per_destination={"IPPC": {"adapter": "ippc-hub", "options": {"nppo": "VN", "tracking_interval": -1}}},
        )
    assert err.value.code == "CONFIG_INVALID"
    assert err.value.field == "destinations.IPPC.options.tracking_interval"


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"party": "NOBODY"}, "inbound.ippc.options.party"),
        ({"party": "TRADER"}, "inbound.ippc.options.document_type"),
        ({"url": "hub.example"}, "inbound.ippc.options.url"),
        ({"poll_interval": 0}, "inbound.ippc.options.poll_interval"),
    ],
    ids=["unknown-party", "party-may-not-send-it", "url-without-scheme", "poll-interval-zero"],
)
def test_bad_source_options_are_config_invalid_naming_the_option(
    tmp_path: Path, options: dict[str, Any], field: str
) -> None:
    source = {"url": "https://hub.example/hub", "nppo": "VN", "party": "IPPC", "document_type": "sps.phyto"}
    with pytest.raises(ConfigError) as err:
        make_config(
            tmp_path,
            {"PPD": "http://127.0.0.1:9/"},
            parties=PARTIES,
            document_types=DOCUMENT_TYPES,
            extra={"inbound": {"ippc": {"endpoint": "ippc-hub", "options": {**source, **options}}}},
        )
    assert err.value.code == "CONFIG_INVALID" and err.value.field == field


def test_every_zeep_and_requests_error_is_translated_at_the_adapter_boundary() -> None:
    """Fails when zeep or requests grows an exception type the hub client would leave unmapped."""
    for cls in soap_driver_errors():
        translated = translate_error(cls.__new__(cls), "http://x")
        assert isinstance(translated, PartnerError) and isinstance(translated, NswError), cls
    assert translate_error(zx.TransportError(status_code=400), "u").code == "PARTNER_REJECTED"
    assert translate_error(zx.TransportError(status_code=503), "u").code == "PARTNER_UNAVAILABLE"
    assert translate_error(zx.Fault("no"), "u").code == "PARTNER_REJECTED"
    assert translate_error(requests.exceptions.ReadTimeout(), "u").code == "PARTNER_UNAVAILABLE"


async def test_unreachable_hub_is_unavailable_for_the_adapter_and_the_source() -> None:
    adapter = IppcHubAdapter("http://127.0.0.1:9/hub/DeliveryService", timeout=2.0, options=FAST)
    with pytest.raises(NswError) as err:
        await adapter.deliver(_out())
    assert err.value.code == "PARTNER_UNAVAILABLE"
    source = IppcHubSource(
        "ippc",
        options={"url": "http://127.0.0.1:9/hub", "nppo": "VN", "party": "IPPC", "document_type": "sps.phyto"},
    )
    with pytest.raises(NswError) as err:
        await source.hub.pull()
    assert err.value.code == "PARTNER_UNAVAILABLE"
    await asyncio.gather(adapter.close(), source.stop())
