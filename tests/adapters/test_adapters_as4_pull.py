"""ebMS 3.0 One-Way/Pull on real servers on 127.0.0.1: the gateway as responder (messages wait on the partner's
MPC until its signed PullRequest fetches them) and as initiator (the as4 endpoint polls a partner's MPC).

Responder: a destination whose PMode has ``mep_binding = "pull"``; its delivery attempt offers the message on the
MPC and waits; the partner's receipt, posted to the gateway's as4 endpoint (``pull_destination``), acknowledges it.
Initiator: an as4 endpoint partner whose PMode has ``mep_binding = "pull"``; what it pulls is submitted through
the intake and receipted once stored.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from adapters.as4 import As4Adapter, As4Partner, As4Receiver, PMode, verify_signal
from adapters.as4.ebms import build_receipt_messaging, new_envelope
from adapters.as4.messages import SIGNAL_CONTENT_TYPE, ReceivedMessage, build_pull_request
from adapters.as4.pull import Puller
from gateway.api import Gateway
from gateway.config import Config
from gateway.errors import ConfigError, PartnerUnavailable, StoreUnavailable
from gateway.ports import AdapterState, OutboundMessage, Receipt, StoreAdapterState
from gateway.store import Store
from gateway.store.base import State
from gateway.store.sqlite import SqliteStore
from helpers.as4 import (
    ACTION,
    GATEWAY,
    PARTNER,
    Side,
    partner_options,
    pmode,
    receiver_for,
    serve,
    side,
    th_destination,
)
from helpers.gateway import Receiver, eventually, make_config, submit
from signing.dev.pki import DevPki
from signing.wss import sign_envelope
from signing.xml import serialize

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("p12_password")]

FORM_D = b"<CertificateOfOrigin><ReferenceNo>VN-2026-0042</ReferenceNo><Form>D</Form></CertificateOfOrigin>"


def pull_pmode(us: str, them: str, *, endpoint: str | None = None) -> PMode:
    """``us`` -> ``them`` with ``mep_binding = "pull"``; a pulled message without an answer is offered again after
    0.05 s."""
    return pmode(us, them, endpoint=endpoint).model_copy(update={"mep_binding": "pull"})


def pull_adapter(us: Side, them: Side, state: AdapterState, *, pull_wait: float = 10.0) -> As4Adapter:
    """``us`` offering messages to ``them`` on the default MPC."""
    return As4Adapter(
        "http://127.0.0.1:9/unused",
        timeout=5,
        options={
            "pmode": pull_pmode(us.party_id, them.party_id),
            "signer": us.signer,
            "trust": them.trust,
            "encryption_certificate": them.certificate,
            "pull_wait": pull_wait,
            "pull_poll": 0.02,
        },
        state=state,
    )


def pull_server(us: Side, them: Side, adapter: As4Adapter) -> As4Receiver:
    """``us``'s as4 endpoint answering ``them``'s PullRequests from ``adapter``'s MPC queue."""
    return receiver_for(us, them, pull_queues={them.party_id: adapter.pull_queue})


def puller(us: Side, them: Side, url: str, receiver: As4Receiver | None = None) -> Puller:
    """``us`` pulling from ``them`` at ``url``, processing what it pulls with ``receiver``."""
    receiver = receiver or receiver_for(us, them)
    agreement = As4Partner(pull_pmode(us.party_id, them.party_id, endpoint=url), them.trust, them.certificate)
    return Puller(receiver, agreement, url=url, interval=0.05, timeout=5)


def outbound(message_id: str, payload: bytes = FORM_D) -> OutboundMessage:
    return OutboundMessage(
        message_id=message_id,
        payload=payload,
        sender="VN-MOIT",
        document_type=ACTION,
        conversation=f"conv-{message_id}",
        content_type="application/xml",
    )


async def raw_pull(url: str, signer_side: Side) -> tuple[int, bytes, str]:
    """One PullRequest on the default MPC signed by ``signer_side``, posted as is."""
    request = build_pull_request(
        "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/defaultMPC",
        signer_side.signer,
        domain="test",
    )
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=request, headers={"Content-Type": SIGNAL_CONTENT_TYPE}) as response,
    ):
        return response.status, await response.read(), response.headers.get("Content-Type", "")


async def pulled_one(th: Puller) -> bool:
    """Whether a round of PullRequests brought exactly one message."""
    return await th.drain() == 1


async def pull_offered(url: str, signer_side: Side) -> tuple[bytes, str]:
    """PullRequests until one is answered with a user message (multipart): its body and Content-Type."""
    loop = asyncio.get_running_loop()
    end = loop.time() + 10
    while True:
        status, body, content_type = await raw_pull(url, signer_side)
        assert status == 200
        if content_type.startswith("multipart/related"):
            return body, content_type
        assert loop.time() < end, "nothing was offered"
        await asyncio.sleep(0.02)


async def pulled_unanswered(th: Puller) -> bool:
    """Whether a round of PullRequests received a message it did not answer."""
    return await th.drain() == 0 and th.pulled == 1


async def offered_again_then_receipted(
    url: str, gateway: Side, partner: Side, th_receiver: As4Receiver, delivery: asyncio.Task[Receipt]
) -> tuple[bytes, Receipt]:
    """Past max_wait, what ``partner`` pulls raw (its body, returned) is offered again; ``partner``'s puller then
    pulls it once more and ``delivery`` completes with the receipt (returned)."""
    await asyncio.sleep(0.1)
    _, body, _ = await raw_pull(url, partner)
    await asyncio.sleep(0.1)
    th = puller(partner, gateway, url, th_receiver)
    try:
        assert await th.pull_once() is True
        receipt = await asyncio.wait_for(delivery, 10)
    finally:
        await th.stop()
    return body, receipt


# ---------------------------------------------------------------------------------------- components


async def test_pull_request_on_an_empty_mpc_is_answered_with_a_signed_ebms_0006_warning_not_an_error(
    gateway: Side, partner: Side, store: Store
) -> None:
    adapter = pull_adapter(gateway, partner, StoreAdapterState(store, "destination:TH"))
    async with serve(pull_server(gateway, partner, adapter).app()) as url:
        status, body, content_type = await raw_pull(url, partner)
        th = puller(partner, gateway, url)
        try:
            assert await th.pull_once() is False
            assert await th.drain() == 0
        finally:
            await th.stop()
    assert status == 200 and content_type.startswith("application/soap+xml")
    signal = verify_signal(body, content_type, trust=gateway.trust)
    [error] = signal.signal.errors
    assert (error.code, error.severity, error.short_description) == (
        "EBMS:0006",
        "warning",
        "EmptyMessagePartitionChannel",
    )
    assert th.pulled == 0


async def test_responder_offers_the_message_on_the_mpc_and_the_pullers_receipt_completes_the_delivery(
    gateway: Side, partner: Side, store: Store
) -> None:
    adapter = pull_adapter(gateway, partner, StoreAdapterState(store, "destination:TH"))
    th_receiver = receiver_for(partner, gateway)
    async with serve(pull_server(gateway, partner, adapter).app()) as url, adapter:
        delivery = asyncio.create_task(adapter.deliver(outbound("eco-pull-1")))
        th = puller(partner, gateway, url, th_receiver)
        try:
            await eventually(lambda: pulled_one(th))
            receipt = await asyncio.wait_for(delivery, 10)
            assert await th.drain() == 0  # acknowledged: no longer offered
        finally:
            await th.stop()
    assert adapter.transmissions == 0  # nothing pushed
    assert th_receiver.delivered == 1
    received = th_receiver.inbox.get_nowait()
    assert list(received.payloads.values()) == [FORM_D]
    signal = verify_signal(receipt.raw, SIGNAL_CONTENT_TYPE, trust=partner.trust)
    assert signal.signal.receipt and signal.signal.ref_to_message_id == "eco-pull-1@nsw-gateway"
    assert receipt.message_id == "eco-pull-1" and not receipt.duplicate


async def test_a_message_pulled_twice_is_deduplicated_by_the_puller_and_acknowledged_with_the_original_receipt(
    gateway: Side, partner: Side, store: Store
) -> None:
    adapter = pull_adapter(gateway, partner, StoreAdapterState(store, "destination:TH"))
    th_receiver = receiver_for(partner, gateway)
    async with serve(pull_server(gateway, partner, adapter).app()) as url, adapter:
        delivery = asyncio.create_task(adapter.deliver(outbound("eco-pull-dup")))

        # The first answer reaches TH-ASW, which receipts it, but the receipt never comes back.
        first_body, first_type = await pull_offered(url, partner)
        first = await th_receiver.accept(first_body, first_type, url)
        assert first.status == 200 and not delivery.done()
        # Reception awareness: once max_wait has passed the same bytes are offered again.
        second_body, receipt = await offered_again_then_receipted(url, gateway, partner, th_receiver, delivery)
    assert second_body == first_body
    assert th_receiver.delivered == 1 and th_receiver.inbox.qsize() == 1  # processed once
    assert receipt.raw == first.body  # the original receipt acknowledged the delivery


async def test_pull_request_signed_with_another_partners_certificate_is_refused_with_ebms_0101(
    dev_pki: DevPki, gateway: Side, partner: Side, store: Store
) -> None:
    intruder = side(dev_pki, "my-asw", PARTNER)  # same CA, claims TH-ASW's place
    adapter = pull_adapter(gateway, partner, StoreAdapterState(store, "destination:TH"), pull_wait=0.3)
    async with serve(pull_server(gateway, partner, adapter).app()) as url, adapter:
        with pytest.raises(PartnerUnavailable) as waited:
            await adapter.deliver(outbound("eco-pull-intruder"))
        status, body, content_type = await raw_pull(url, intruder)
        th = puller(partner, gateway, url)
        try:
            assert await th.pull_once() is True  # still waiting for TH-ASW itself
        finally:
            await th.stop()
    assert waited.value.details["cause"] == "AS4_NOT_PULLED"
    assert status == 200
    signal = verify_signal(body, content_type, trust=gateway.trust)
    [error] = signal.signal.errors
    assert error.code == "EBMS:0101" and error.short_description == "FailedAuthentication"
    assert error.detail is not None and error.detail.startswith("CERT_IDENTITY_MISMATCH ")


async def test_receipt_of_a_pulled_message_that_does_not_acknowledge_what_we_signed_is_refused_and_not_recorded(
    gateway: Side, partner: Side, store: Store
) -> None:
    adapter = pull_adapter(gateway, partner, StoreAdapterState(store, "destination:TH"), pull_wait=0.3)
    async with serve(pull_server(gateway, partner, adapter).app()) as url, adapter:
        with pytest.raises(PartnerUnavailable):
            await adapter.deliver(outbound("eco-pull-forged"))
        _, pulled, pulled_type = await raw_pull(url, partner)
        assert pulled_type.startswith("multipart/related")
        envelope, header, _ = new_envelope()
        build_receipt_messaging(
            header,
            message_id="forged-receipt@th",
            ref_to_message_id="eco-pull-forged@nsw-gateway",
            references=[],
            timestamp=datetime.now(UTC),
        )
        sign_envelope(envelope, partner.signer)
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, data=serialize(envelope), headers={"Content-Type": SIGNAL_CONTENT_TYPE}) as response,
        ):
            status, body = response.status, await response.read()
        answer = await adapter.pull_queue.answer(PARTNER, "eco-pull-forged@nsw-gateway")
    assert status == 200 and answer is None
    [error] = verify_signal(body, SIGNAL_CONTENT_TYPE, trust=gateway.trust).signal.errors
    assert error.code == "EBMS:0004"
    assert error.detail is not None and error.detail.startswith("PARTNER_RECEIPT_INVALID ")


async def test_restart_between_pull_and_receipt_offers_the_same_bytes_again_and_their_receipt_acknowledges(
    gateway: Side, partner: Side, tmp_path: Path
) -> None:
    th_receiver = receiver_for(partner, gateway)
    # Before the restart: the message is pulled and processed by TH-ASW; the gateway stops before the receipt.
    async with SqliteStore(tmp_path / "gw.db", synchronous="NORMAL") as store:
        adapter = pull_adapter(gateway, partner, StoreAdapterState(store, "destination:TH"), pull_wait=0.5)
        async with serve(pull_server(gateway, partner, adapter).app()) as url, adapter:
            delivery = asyncio.create_task(adapter.deliver(outbound("eco-pull-restart")))
            first_body, first_type = await pull_offered(url, partner)
            first = await th_receiver.accept(first_body, first_type, url)
            assert first.status == 200
            delivery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await delivery
    # After the restart: a new adapter and endpoint on the reopened store; the worker's retry waits again.
    async with SqliteStore(tmp_path / "gw.db", synchronous="NORMAL") as store:
        adapter = pull_adapter(gateway, partner, StoreAdapterState(store, "destination:TH"))
        server = pull_server(gateway, partner, adapter)
        async with serve(server.app()) as url, adapter:
            delivery = asyncio.create_task(adapter.deliver(outbound("eco-pull-restart")))
            again_body, receipt = await offered_again_then_receipted(url, gateway, partner, th_receiver, delivery)
    assert again_body == first_body  # the recorded bytes, not a rebuilt message
    assert th_receiver.delivered == 1
    assert receipt.raw == first.body


async def test_puller_sends_no_receipt_for_a_message_not_stored_durably_and_receipts_it_when_offered_again(
    gateway: Side, partner: Side, store: Store
) -> None:
    stored: list[bytes] = []
    failing = [True]

    async def sink(received: ReceivedMessage) -> None:
        if failing[0]:
            raise StoreUnavailable("the store is down", field="store")
        stored.extend(received.payloads.values())

    adapter = pull_adapter(gateway, partner, StoreAdapterState(store, "destination:TH"))
    th_receiver = receiver_for(partner, gateway, sink=sink)
    async with serve(pull_server(gateway, partner, adapter).app()) as url, adapter:
        delivery = asyncio.create_task(adapter.deliver(outbound("eco-pull-store-down")))
        th = puller(partner, gateway, url, th_receiver)
        try:
            await eventually(lambda: pulled_unanswered(th))
            unanswered = await adapter.pull_queue.answer(PARTNER, "eco-pull-store-down@nsw-gateway")
            assert not delivery.done()
            failing[0] = False
            await asyncio.sleep(0.1)  # past max_wait: offered again
            assert await th.drain() == 1
            receipt = await asyncio.wait_for(delivery, 10)
        finally:
            await th.stop()
    assert unanswered is None
    assert th.pulled == 2 and stored == [FORM_D]
    signal = verify_signal(receipt.raw, SIGNAL_CONTENT_TYPE, trust=partner.trust)
    assert signal.signal.receipt and signal.signal.ref_to_message_id == "eco-pull-store-down@nsw-gateway"


# ---------------------------------------------------------------------------------------- whole gateways


def responder_config(dev_pki: DevPki, tmp_path: Path, *, binding: str = "pull", pull_wait: float = 1.0) -> Config:
    """MOIT's Form D routed to destination TH, which TH-ASW pulls from the as4 endpoint ``asean``."""
    th = th_destination(dev_pki)
    agreement = th["pmode"]
    destination = {**th, "pmode": {**agreement, "mep_binding": binding}, "pull_wait": pull_wait, "pull_poll": 0.02}
    endpoint = {
        "party_id": GATEWAY,
        "signer": th["signer"],
        "partners": {PARTNER: {**partner_options(dev_pki, "TH"), "pmode": agreement, "pull_destination": "TH"}},
    }
    return make_config(
        tmp_path,
        {"TH": "http://127.0.0.1:9/unused"},
        parties={"TH": {"tokens": ["th-token"], "document_types": ["eco.form_d"]}},
        per_destination={"TH": {"adapter": "as4", "options": destination}},
        routes=[{"document_type": "eco.form_d", "sender": "MOIT", "to": ["TH"]}],
        extra={"inbound": {"asean": {"endpoint": "as4", "options": endpoint}}},
    )


async def test_gateway_as_responder_a_form_d_waits_on_the_mpc_until_the_partner_pulls_and_receipts_it(
    dev_pki: DevPki, gateway: Side, partner: Side, tmp_path: Path
) -> None:
    th_receiver = receiver_for(partner, gateway)
    async with Gateway(responder_config(dev_pki, tmp_path)) as gw, aiohttp.ClientSession() as session:
        status, ack = await submit(session, gw.url, "MOIT", "ECO-PULL-GW-1", "eco.form_d", FORM_D)
        assert status == 202, ack
        th = puller(partner, gateway, f"{gw.url}/as4", th_receiver)
        try:
            await eventually(lambda: pulled_one(th))

            async def acknowledged() -> bool:
                record = await gw.store.get(ack["id"])
                return record is not None and record.state is State.ACKNOWLEDGED

            await eventually(acknowledged)
            assert await th.drain() == 0
        finally:
            await th.stop()
        record = await gw.store.get(ack["id"])
    assert record is not None
    [delivery] = record.deliveries
    assert delivery.receipt is not None
    signal = verify_signal(delivery.receipt, SIGNAL_CONTENT_TYPE, trust=partner.trust)
    assert signal.signal.receipt and signal.signal.ref_to_message_id == f"{ack['id']}@nsw-gateway"
    assert th_receiver.delivered == 1
    assert list(th_receiver.inbox.get_nowait().payloads.values()) == [FORM_D]


def initiator_config(dev_pki: DevPki, tmp_path: Path, partner_url: str, destination: str) -> Config:
    """TH-ASW only offers pull: the as4 endpoint ``asean`` polls it; what arrives goes to DEST."""
    options = partner_options(dev_pki, "TH")
    options["pmode"] = {**options["pmode"], "mep_binding": "pull", "endpoint": partner_url}
    options["pull_interval"] = 0.05
    endpoint = {
        "party_id": GATEWAY,
        "signer": {"p12": str(dev_pki.party("nsw-gateway").p12_path), "password_env": "AS4_TEST_P12_PASSWORD"},
        "partners": {PARTNER: options},
    }
    return make_config(
        tmp_path,
        {"DEST": destination},
        parties={"TH": {"tokens": ["th-token"], "document_types": ["eco.form_d"]}},
        routes=[{"document_type": "eco.form_d", "sender": "TH", "to": ["DEST"]}],
        extra={"inbound": {"asean": {"endpoint": "as4", "options": endpoint}}},
    )


async def test_gateway_as_initiator_polls_the_partners_mpc_submits_what_it_pulls_and_receipts_it_once_stored(
    dev_pki: DevPki, gateway: Side, partner: Side, tmp_path: Path
) -> None:
    th_state = StoreAdapterState(SqliteStore(tmp_path / "th.db", synchronous="NORMAL"), "destination:VN")
    th_adapter = As4Adapter(
        "http://127.0.0.1:9/unused",
        timeout=5,
        options={
            "pmode": pull_pmode(PARTNER, GATEWAY),
            "signer": partner.signer,
            "trust": gateway.trust,
            "encryption_certificate": gateway.certificate,
            "pull_wait": 10.0,
            "pull_poll": 0.02,
        },
        state=th_state,
    )
    dest = await Receiver().start()
    try:
        await th_state.store.open()
        th_server = receiver_for(partner, gateway, pull_queues={GATEWAY: th_adapter.pull_queue})
        async with serve(th_server.app()) as th_url, th_adapter:
            delivery = asyncio.create_task(th_adapter.deliver(outbound("TH-ECO-PULL-1")))
            async with Gateway(initiator_config(dev_pki, tmp_path, th_url, dest.url)) as gw:
                receipt = await asyncio.wait_for(delivery, 15)
                await eventually(lambda: len(dest.requests) == 1)
                listed = [m async for m in _messages(gw)]
    finally:
        await dest.stop()
        await th_state.store.close()
    signal = verify_signal(receipt.raw, SIGNAL_CONTENT_TYPE, trust=gateway.trust)
    assert signal.signal.receipt and signal.signal.ref_to_message_id == "TH-ECO-PULL-1@nsw-gateway"
    assert len(listed) == 1 and listed[0]["document_type"] == "eco.form_d"
    assert dest.requests[0]["body"] == FORM_D


async def _messages(gw: Gateway) -> AsyncIterator[dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{gw.url}/v1/messages", headers={"Authorization": "Bearer th-token"}) as r,
    ):
        assert r.status == 200
        for m in (await r.json())["messages"]:
            yield m


# ---------------------------------------------------------------------------------------- configuration


def test_pull_destination_naming_a_push_destination_is_refused_at_load(dev_pki: DevPki, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        responder_config(dev_pki, tmp_path, binding="push")
    assert caught.value.code == "CONFIG_INVALID"
    assert caught.value.field == f"inbound.asean.options.partners.{PARTNER}.pull_destination"


def test_a_pull_wait_outlasting_the_delivery_lease_is_refused_at_load(dev_pki: DevPki, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        responder_config(dev_pki, tmp_path, pull_wait=60.0)  # the lease: max(gateway.lease_seconds 60, 2 x 5 s)
    assert (caught.value.code, caught.value.field) == ("CONFIG_INVALID", "destinations.TH.options.pull_wait")
    assert responder_config(dev_pki, tmp_path, pull_wait=59.0).destinations["TH"].options is not None


def test_mep_binding_other_than_push_or_pull_is_refused_at_load() -> None:
    with pytest.raises(ValueError, match="mep_binding"):
        PMode.model_validate({**pmode(GATEWAY, PARTNER).model_dump(), "mep_binding": "sync"})
