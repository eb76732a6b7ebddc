"""The adapter behaviour suite for AS4: submit, receive, duplicate, retryable and final failures, receipts.

Every test runs the real As4Adapter against a real As4Receiver served by aiohttp on 127.0.0.1.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from aiohttp import web

from adapters.as4 import As4Adapter, ReceivedMessage
from gateway.errors import (
    ConfigError,
    PartnerRejected,
    PartnerUnavailable,
    ReceiptInvalid,
    ValidationFailed,
    ValidationIssue,
)
from gateway.ports import OutboundMessage, resolve_adapter
from helpers.as4 import ACTION, GATEWAY, PARTNER, Side, free_port, pmode, receiver_for, serve, side
from signing.dev.pki import DevPki

FORM_D = Path(__file__).parents[1] / "vectors" / "mappings" / "formd" / "form_d_two_items.xml"


@pytest.fixture(scope="module")
def intruder(dev_pki: DevPki) -> Side:
    return side(dev_pki, "sg-asw", PARTNER)


class Sleeps:
    """The injected sleep of reception awareness: records the waits, never waits."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def adapter_for(
    gateway: Side, partner: Side, url: str, *, sleeps: Sleeps | None = None, attempts: int = 3, **options: object
) -> As4Adapter:
    return As4Adapter(
        url,
        timeout=5,
        options={
            "pmode": pmode(gateway.party_id, partner.party_id, attempts=attempts),
            "signer": gateway.signer,
            "trust": partner.trust,
            "encryption_certificate": partner.certificate,
            "sleep": sleeps or Sleeps(),
            **options,
        },
    )


def outbound(message_id: str = "msg-0001", payload: bytes = b"<Doc>1</Doc>") -> OutboundMessage:
    return OutboundMessage(
        message_id=message_id,
        payload=payload,
        sender="VN-MOIT",
        document_type=ACTION,
        conversation="conv-1",
        content_type="application/xml",
    )


async def test_submit_delivers_the_payload_and_returns_the_verified_receipt(gateway: Side, partner: Side) -> None:
    receiver = receiver_for(partner, gateway)
    async with serve(receiver.app()) as url, adapter_for(gateway, partner, url) as adapter:
        receipt = await adapter.deliver(outbound())
    assert receipt.message_id == "msg-0001" and receipt.status == 200 and not receipt.duplicate
    got = receiver.inbox.get_nowait()
    assert got.user_message.message_id == "msg-0001@nsw-gateway"
    assert list(got.payloads.values()) == [b"<Doc>1</Doc>"]
    assert got.user_message.sender.party_id == GATEWAY and got.user_message.action == ACTION
    assert got.verification.certificate == gateway.certificate
    assert b"NonRepudiationInformation" in receipt.raw


async def test_a_message_relayed_for_an_enterprise_carries_it_as_the_original_sender_property(
    gateway: Side, partner: Side
) -> None:
    receiver = receiver_for(partner, gateway)
    relayed = dataclasses.replace(outbound("relay-1"), sender="BROKER", on_behalf_of="0300000001")
    async with serve(receiver.app()) as url, adapter_for(gateway, partner, url) as adapter:
        await adapter.deliver(relayed)
        await adapter.deliver(outbound("direct-1"))
    by_id = {}
    while not receiver.inbox.empty():
        got = receiver.inbox.get_nowait()
        by_id[got.user_message.message_id] = {p.name: p.value for p in got.user_message.properties}
    assert by_id["relay-1@nsw-gateway"].get("originalSender") == "0300000001"
    assert "originalSender" not in by_id["direct-1@nsw-gateway"]


async def test_eco_form_d_reaches_the_partner_over_as4_and_its_receipt_comes_back(gateway: Side, partner: Side) -> None:
    form_d = FORM_D.read_bytes()
    receiver = receiver_for(partner, gateway)
    async with serve(receiver.app()) as url:
        adapter_cls = resolve_adapter("as4")
        async with adapter_cls(url, options=adapter_for(gateway, partner, url).options) as adapter:
            receipt = await adapter.deliver(outbound("eco-VN-TH-2026-00123", form_d))
    assert receipt.message_id == "eco-VN-TH-2026-00123"
    received = receiver.inbox.get_nowait()
    assert list(received.payloads.values()) == [form_d]
    assert received.mime_types[next(iter(received.payloads))] == "application/xml"


async def test_receive_yields_verified_inbound_messages(gateway: Side, partner: Side) -> None:
    # The partner pushes to our receiver; our adapter's receive() hands the verified messages to the gateway.
    our_receiver = receiver_for(gateway, partner)
    async with serve(our_receiver.app()) as url:
        async with adapter_for(partner, gateway, url) as partner_adapter:
            await partner_adapter.deliver(outbound("th-0001", b"<Reply/>"))
        ours = adapter_for(gateway, partner, url, receiver=our_receiver)
        inbound = [m async for m in ours.receive()]
    assert [(m.message_id, m.payload, m.document_type) for m in inbound] == [
        ("th-0001@nsw-gateway", b"<Reply/>", ACTION)
    ]
    assert inbound[0].headers["AS4-From"] == PARTNER


async def test_duplicate_message_id_is_answered_with_the_original_receipt_and_delivered_once(
    gateway: Side, partner: Side
) -> None:
    receiver = receiver_for(partner, gateway)
    async with serve(receiver.app()) as url, adapter_for(gateway, partner, url) as adapter:
        first = await adapter.deliver(outbound("dup-1"))
        second = await adapter.deliver(outbound("dup-1"))
    assert receiver.delivered == 1 and receiver.inbox.qsize() == 1
    assert second.duplicate and not first.duplicate
    assert second.raw == first.raw


async def test_retryable_failure_resends_the_same_message_id_until_a_receipt_arrives(
    gateway: Side, partner: Side
) -> None:
    seen: list[str] = []

    async def flaky(message: ReceivedMessage) -> None:
        seen.append(message.user_message.message_id)
        if len(seen) < 3:
            raise PartnerUnavailable("back end restarting")

    receiver = receiver_for(partner, gateway, sink=flaky)
    sleeps = Sleeps()
    async with serve(receiver.app()) as url, adapter_for(gateway, partner, url, sleeps=sleeps, attempts=5) as adapter:
        receipt = await adapter.deliver(outbound("retry-1"))
        assert adapter.transmissions == 3
    assert seen == ["retry-1@nsw-gateway"] * 3
    assert len(sleeps.waits) == 2 and receipt.message_id == "retry-1"


async def test_unreachable_partner_is_retryable_after_the_pmode_attempts(gateway: Side, partner: Side) -> None:
    sleeps = Sleeps()
    url = f"http://127.0.0.1:{free_port()}/as4"
    async with adapter_for(gateway, partner, url, sleeps=sleeps, attempts=3) as adapter:
        with pytest.raises(PartnerUnavailable) as caught:
            await adapter.deliver(outbound("down-1"))
        assert adapter.transmissions == 3
    assert caught.value.retryable and caught.value.code == "PARTNER_UNAVAILABLE"
    assert len(sleeps.waits) == 2


async def test_http_503_without_a_signal_is_retried_then_reported_unavailable(gateway: Side, partner: Side) -> None:
    async def busy(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=503, text="busy")

    app = web.Application()
    app.router.add_post("/as4", busy)
    async with serve(app) as url, adapter_for(gateway, partner, url, attempts=2) as adapter:
        with pytest.raises(PartnerUnavailable) as caught:
            await adapter.deliver(outbound("busy-1"))
        assert adapter.transmissions == 2
    assert caught.value.details["status"] == 503


async def test_signed_ebms_error_is_final_and_not_retried(gateway: Side, partner: Side) -> None:
    # The partner's back end refuses the content: a final, signed ebMS error, never retried.
    refusing = receiver_for(partner, gateway)

    async def reject(message: ReceivedMessage) -> None:
        raise ValidationFailed([ValidationIssue("/CertificateOfOrigin", "FORM_D_INVALID", "unknown HS code")])

    refusing.sink = reject
    async with serve(refusing.app()) as url, adapter_for(gateway, partner, url, attempts=5) as adapter:
        with pytest.raises(PartnerRejected) as caught:
            await adapter.deliver(outbound("bad-1"))
        assert adapter.transmissions == 1
    assert caught.value.details["ebms"] == "EBMS:0003"
    assert "VALIDATION_FAILED" in caught.value.details["detail"]


async def test_message_signed_by_an_untrusted_key_gets_a_signed_failed_authentication_error(
    gateway: Side, partner: Side, dev_pki: DevPki
) -> None:
    other = dev_pki.issue("as4-rogue-ca-signed", key=dev_pki.party("my-asw").key)
    rogue = Side(GATEWAY, other.cert, gateway.signer.__class__(other.key, other.cert), gateway.decrypter, gateway.trust)  # type: ignore[arg-type]
    receiver = receiver_for(partner, gateway)
    pinned_partner = receiver.partners[GATEWAY]
    from signing.trust import PinnedCertificate, TrustStore

    receiver.partners[GATEWAY] = pinned_partner.__class__(
        pinned_partner.pmode, TrustStore(GATEWAY, pinned=(PinnedCertificate(gateway.certificate),)), gateway.certificate
    )
    async with serve(receiver.app()) as url, adapter_for(rogue, partner, url, attempts=5) as adapter:
        with pytest.raises(PartnerRejected) as caught:
            await adapter.deliver(outbound("rogue-1"))
    assert caught.value.details["ebms"] == "EBMS:0101"
    assert caught.value.details["detail"].startswith("CERT_UNTRUSTED")
    assert receiver.delivered == 0


async def test_receipt_signed_by_someone_else_is_receipt_invalid(gateway: Side, partner: Side, intruder: Side) -> None:
    # The receiver signs its receipts with another party's key than the one we trust for the partner.
    receiver = receiver_for(partner, gateway)
    receiver.signer = intruder.signer
    from signing.trust import PinnedCertificate, TrustStore

    pinned = TrustStore(PARTNER, pinned=(PinnedCertificate(partner.certificate),))
    async with serve(receiver.app()) as url, adapter_for(gateway, partner, url, attempts=2, trust=pinned) as adapter:
        with pytest.raises(ReceiptInvalid) as caught:
            await adapter.deliver(outbound("rcpt-1"))
    assert caught.value.details["cause"] == "CERT_UNTRUSTED"
    assert caught.value.retryable


async def test_receipt_signed_by_another_partners_certificate_of_the_same_ca_is_cert_identity_mismatch(
    gateway: Side, partner: Side, intruder: Side
) -> None:
    """Prerequisite: TH-ASW's trust (``partner.trust``) anchors the dev PKI root with signers subject CN th-asw.
    Predicate: a receipt signed by SG-ASW's valid certificate of the same root is ReceiptInvalid caused by
    CERT_IDENTITY_MISMATCH, not an acknowledgement."""
    receiver = receiver_for(partner, gateway)
    receiver.signer = intruder.signer
    assert partner.trust.anchors and partner.trust.signers is not None
    async with serve(receiver.app()) as url, adapter_for(gateway, partner, url, attempts=2) as adapter:
        with pytest.raises(ReceiptInvalid) as caught:
            await adapter.deliver(outbound("rcpt-2"))
    assert caught.value.details["cause"] == "CERT_IDENTITY_MISMATCH"


async def test_receipt_for_another_message_is_receipt_invalid(gateway: Side, partner: Side) -> None:
    # A genuine, validly signed receipt of an earlier message is replayed for a new one.
    receiver = receiver_for(partner, gateway)
    async with serve(receiver.app()) as url:
        async with adapter_for(gateway, partner, url) as adapter:
            old = await adapter.deliver(outbound("old-1"))

        async def replay(request: web.Request) -> web.Response:
            await request.read()
            return web.Response(body=old.raw, content_type="application/soap+xml")

        app = web.Application()
        app.router.add_post("/as4", replay)
        async with serve(app) as replay_url, adapter_for(gateway, partner, replay_url, attempts=1) as adapter:
            with pytest.raises(ReceiptInvalid) as caught:
                await adapter.deliver(outbound("new-1"))
    assert caught.value.code == "PARTNER_RECEIPT_INVALID"
    assert caught.value.field is not None and caught.value.field.endswith("eb:RefToMessageId")


async def test_adapter_configuration_errors_name_the_option(gateway: Side, partner: Side) -> None:
    with pytest.raises(ConfigError) as caught:
        As4Adapter(
            "http://127.0.0.1:1/as4",
            options={"pmode": pmode(GATEWAY, PARTNER), "signer": gateway.signer, "trust": partner.trust},
        )
    assert caught.value.field == "options.encryption_certificate"
    with pytest.raises(ConfigError) as caught:
        As4Adapter("http://127.0.0.1:1/as4", options={"signer": gateway.signer})
    assert caught.value.field == "options.pmode"
    assert resolve_adapter("as4") is As4Adapter
