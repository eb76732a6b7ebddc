"""AS4 duplicate elimination is per partner: (eb:From PartyId, eb:MessageId), in the gateway's store.

Everything real on 127.0.0.1: the gateway with its ``as4`` inbound endpoint, TH-ASW and MY-ASW as
``As4Adapter`` instances sending to it, and a loopback destination the messages are routed to.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from adapters.as4 import As4Adapter, StateDuplicateStore, verify_signal
from gateway.api import Gateway
from gateway.errors import PartnerRejected
from gateway.model import gateway_message_id
from gateway.ports import AdapterState, MemoryAdapterState, OutboundMessage, StoreAdapterState
from gateway.store.base import MessageQuery
from gateway.store.sqlite import SqliteStore
from helpers.as4 import ACTION, GATEWAY, PARTNER, partner_options, pmode, receiver_for, sender_to, serve, side
from helpers.gateway import Receiver, dev_trust, eventually, make_config
from signing.dev.pki import DevPki
from signing.keys import SoftwareSigner
from signing.sign import sign_document

MY_PARTNER = "MY-ASW"
TH_FORM_D = b"<CertificateOfOrigin><ReferenceNo>TH-2026-0001</ReferenceNo><Form>D</Form></CertificateOfOrigin>"
MY_FORM_D = b"<CertificateOfOrigin><ReferenceNo>MY-2026-0001</ReferenceNo><Form>D</Form></CertificateOfOrigin>"


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AS4_TEST_P12_PASSWORD", "changeit")


def two_partner_gateway(
    dev_pki: DevPki, tmp_path: Path, destination: str, *, verification: str = "well-formed"
) -> Gateway:
    gw_key = dev_pki.party("nsw-gateway")
    options: dict[str, Any] = {
        "party_id": GATEWAY,
        "signer": {"p12": str(gw_key.p12_path), "password_env": "AS4_TEST_P12_PASSWORD"},
        "partners": {
            PARTNER: partner_options(dev_pki, "TH", party_id=PARTNER, cert_name="th-asw"),
            MY_PARTNER: partner_options(dev_pki, "MY", party_id=MY_PARTNER, cert_name="my-asw"),
        },
    }
    parties: dict[str, dict[str, Any]] = {
        "TH": {"tokens": ["th-token"], "document_types": ["eco.form_d"]},
        "MY": {"tokens": ["my-token"], "document_types": ["eco.form_d"]},
    }
    if verification == "signature":
        parties = {
            **{name: {"trust": dev_trust(dev_pki, name.lower())} for name in ("MOIT", "MARD", "TRADER")},
            **{
                name: {**settings, "trust": dev_trust(dev_pki, f"{name.lower()}-asw")}
                for name, settings in parties.items()
            },
        }
    config = make_config(
        tmp_path,
        {"DEST": destination},
        parties=parties,
        routes=[{"document_type": "eco.form_d", "to": ["DEST"]}],
        gateway={"verification": verification},
        extra={"inbound": {"asean": {"endpoint": "as4", "options": options}}},
    )
    return Gateway(config)


def adapter(dev_pki: DevPki, url: str, cert_name: str, party_id: str) -> As4Adapter:
    return sender_to(url, side(dev_pki, cert_name, party_id), side(dev_pki, "nsw-gateway", GATEWAY))


def outbound(message_id: str, payload: bytes, sender: str) -> OutboundMessage:
    return OutboundMessage(
        message_id=message_id, payload=payload, sender=sender, document_type=ACTION, conversation=f"conv-{message_id}"
    )


async def test_two_partners_with_the_same_message_id_each_get_their_message_submitted_and_their_own_receipt(
    dev_pki: DevPki, tmp_path: Path
) -> None:
    dest = await Receiver().start()
    try:
        gw = two_partner_gateway(dev_pki, tmp_path, dest.url)
        async with gw:
            url = f"{gw.url}/as4"
            async with (
                adapter(dev_pki, url, "th-asw", PARTNER) as th,
                adapter(dev_pki, url, "my-asw", MY_PARTNER) as my,
            ):
                th_receipt = await th.deliver(outbound("ECO-1", TH_FORM_D, PARTNER))
                my_receipt = await my.deliver(outbound("ECO-1", MY_FORM_D, MY_PARTNER))
                th_again = await th.deliver(outbound("ECO-1", TH_FORM_D, PARTNER))
                my_again = await my.deliver(outbound("ECO-1", MY_FORM_D, MY_PARTNER))
            await eventually(lambda: len(dest.requests) == 2)
            stored = {
                party: [r.message.id for r in await gw.store.search(MessageQuery(sender=party))]
                for party in ("TH", "MY")
            }
    finally:
        await dest.stop()
    ebms_id = f"ECO-1@{pmode(PARTNER, GATEWAY).message_id_domain}"
    assert ebms_id == f"ECO-1@{pmode(MY_PARTNER, GATEWAY).message_id_domain}"  # the same MessageId on the wire
    assert stored == {"TH": [gateway_message_id("TH", ebms_id)], "MY": [gateway_message_id("MY", ebms_id)]}
    assert sorted(r["body"] for r in dest.requests) == sorted([TH_FORM_D, MY_FORM_D])
    gateway_trust = side(dev_pki, "nsw-gateway", GATEWAY).trust
    for receipt in (th_receipt, my_receipt):
        signal = verify_signal(receipt.raw, "application/soap+xml", trust=gateway_trust)
        assert signal.signal.receipt and signal.signal.ref_to_message_id == ebms_id and not receipt.duplicate
    assert th_receipt.raw != my_receipt.raw
    # each partner's resend is answered with its own original receipt
    assert th_again.duplicate and th_again.raw == th_receipt.raw
    assert my_again.duplicate and my_again.raw == my_receipt.raw


async def test_replayed_signed_payload_under_a_new_message_id_gets_an_ebms_error_with_DUPLICATE_CONTENT(
    dev_pki: DevPki, tmp_path: Path
) -> None:
    p = dev_pki.party("th-asw")
    signed = sign_document(TH_FORM_D, SoftwareSigner(p.key, p.cert, [dev_pki.issuing_cert]))
    dest = await Receiver().start()
    try:
        gw = two_partner_gateway(dev_pki, tmp_path, dest.url, verification="signature")
        async with gw:
            async with adapter(dev_pki, f"{gw.url}/as4", "th-asw", PARTNER) as th:
                first = await th.deliver(outbound("ECO-A", signed, PARTNER))
                with pytest.raises(PartnerRejected) as caught:
                    await th.deliver(outbound("ECO-B", signed, PARTNER))
            await eventually(lambda: len(dest.requests) == 1)
            stored = [r.message.envelope.message_id for r in await gw.store.search(MessageQuery(sender="TH"))]
    finally:
        await dest.stop()
    domain = pmode(PARTNER, GATEWAY).message_id_domain
    assert not first.duplicate and stored == [f"ECO-A@{domain}"]
    details = caught.value.details
    assert details["ebms"] == "EBMS:0004" and str(details["detail"]).startswith("DUPLICATE_CONTENT")
    assert gateway_message_id("TH", f"ECO-A@{domain}") in str(caught.value)
    assert len(dest.requests) == 1


async def test_received_message_ids_in_the_gateway_store_are_keyed_by_partner_and_survive_a_restart(
    tmp_path: Path,
) -> None:
    async with SqliteStore(tmp_path / "gw.db", synchronous="NORMAL") as store:
        received = StateDuplicateStore(StoreAdapterState(store, "inbound:asean"), retention=3600)
        assert await received.remember("TH-ASW", "ECO-1@x", b"<th/>") == b"<th/>"
        assert await received.remember("MY-ASW", "ECO-1@x", b"<my/>") == b"<my/>"
        assert await received.remember("TH-ASW", "ECO-1@x", b"<th-again/>") == b"<th/>"  # the first receipt stays
        assert await received.receipt_for("SG-ASW", "ECO-1@x") is None
    async with SqliteStore(tmp_path / "gw.db", synchronous="NORMAL") as store:
        received = StateDuplicateStore(StoreAdapterState(store, "inbound:asean"), retention=3600)
        assert await received.receipt_for("TH-ASW", "ECO-1@x") == b"<th/>"
        assert await received.receipt_for("MY-ASW", "ECO-1@x") == b"<my/>"
        other = StateDuplicateStore(StoreAdapterState(store, "inbound:other"), retention=3600)
        assert await other.receipt_for("TH-ASW", "ECO-1@x") is None  # another endpoint's namespace


# ------------------------------------------------------------------------------------------ the sent store


async def _no_sleep(seconds: float) -> None:
    return None


def sending_adapter(dev_pki: DevPki, url: str, cert_name: str, party_id: str, state: AdapterState) -> As4Adapter:
    """The gateway's adapter towards ``party_id``."""
    us, them = side(dev_pki, "nsw-gateway", GATEWAY), side(dev_pki, cert_name, party_id)
    return As4Adapter(
        url,
        timeout=5,
        options={
            "pmode": pmode(GATEWAY, party_id, attempts=1),
            "signer": us.signer,
            "trust": them.trust,
            "encryption_certificate": them.certificate,
            "sleep": _no_sleep,
        },
        state=state,
    )


@pytest.mark.parametrize("shared", ["memory", "sqlite"])
async def test_one_message_fanned_out_to_two_partners_sharing_a_state_reaches_each_as_its_own(
    dev_pki: DevPki, tmp_path: Path, shared: str
) -> None:
    """The same gateway message (hence the same ebMS MessageId) to TH-ASW and MY-ASW through one adapter state:
    each partner gets the message built for it (encrypted for its key) and each receipt is checked."""
    async with SqliteStore(tmp_path / "gw.db", synchronous="NORMAL") as store:
        state = MemoryAdapterState() if shared == "memory" else StoreAdapterState(store, "destination:ASEAN")
        await fan_out(dev_pki, state)


async def fan_out(dev_pki: DevPki, sent_store: AdapterState) -> None:
    us = side(dev_pki, "nsw-gateway", GATEWAY)
    th_side, my_side = side(dev_pki, "th-asw", PARTNER), side(dev_pki, "my-asw", MY_PARTNER)
    th_receiver, my_receiver = receiver_for(th_side, us), receiver_for(my_side, us)
    async with serve(th_receiver.app()) as th_url, serve(my_receiver.app()) as my_url:
        async with (
            sending_adapter(dev_pki, th_url, "th-asw", PARTNER, sent_store) as to_th,
            sending_adapter(dev_pki, my_url, "my-asw", MY_PARTNER, sent_store) as to_my,
        ):
            message = outbound("gw-fanout-1", TH_FORM_D, "VN-MOIT")
            th_receipt = await to_th.deliver(message)
            my_receipt = await to_my.deliver(message)
    assert to_th.ebms_message_id(message) == to_my.ebms_message_id(message)
    assert th_receiver.delivered == 1 and my_receiver.delivered == 1
    th_got, my_got = th_receiver.inbox.get_nowait(), my_receiver.inbox.get_nowait()
    assert list(th_got.payloads.values()) == [TH_FORM_D] and list(my_got.payloads.values()) == [TH_FORM_D]
    assert my_got.user_message.receiver.party_id == MY_PARTNER
    assert not th_receipt.duplicate and not my_receipt.duplicate
