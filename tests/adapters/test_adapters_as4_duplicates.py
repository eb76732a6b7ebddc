"""AS4 duplicate elimination is per partner: (eb:From PartyId, eb:MessageId), in memory and in SQLite.

Everything real on 127.0.0.1: the gateway with its ``as4`` inbound endpoint, TH-ASW and MY-ASW as
``As4Adapter`` instances sending to it, and a loopback destination the messages are routed to.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from adapters.as4 import As4Adapter, SqliteDuplicateStore, verify_signal
from adapters.as4.sent import MemorySentStore, SentRecord, SqliteSentStore
from gateway.api import Gateway
from gateway.errors import PartnerRejected
from gateway.model import gateway_message_id
from gateway.ports import OutboundMessage
from gateway.store.base import MessageQuery
from helpers.as4 import ACTION, GATEWAY, PARTNER, partner_options, pmode, receiver_for, serve, side
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
    dev_pki: DevPki, tmp_path: Path, destination: str, *, duplicate_store: bool, verification: str = "well-formed"
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
    if duplicate_store:
        options["duplicate_store"] = str(tmp_path / "as4-received.db")
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
    us, them = side(dev_pki, "nsw-gateway", GATEWAY), side(dev_pki, cert_name, party_id)
    return As4Adapter(
        url,
        timeout=10,
        options={
            "pmode": pmode(party_id, GATEWAY, attempts=1),
            "signer": them.signer,
            "trust": us.trust,
            "encryption_certificate": us.certificate,
        },
    )


def outbound(message_id: str, payload: bytes, sender: str) -> OutboundMessage:
    return OutboundMessage(
        message_id=message_id, payload=payload, sender=sender, document_type=ACTION, conversation=f"conv-{message_id}"
    )


@pytest.mark.parametrize("duplicate_store", [False, True], ids=["memory", "sqlite"])
async def test_two_partners_with_the_same_message_id_each_get_their_message_submitted_and_their_own_receipt(
    dev_pki: DevPki, tmp_path: Path, duplicate_store: bool
) -> None:
    dest = await Receiver().start()
    try:
        gw = two_partner_gateway(dev_pki, tmp_path, dest.url, duplicate_store=duplicate_store)
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
        gw = two_partner_gateway(dev_pki, tmp_path, dest.url, duplicate_store=True, verification="signature")
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


def _legacy_file(path: Path, rows: list[tuple[str, bytes]]) -> None:
    """A duplicate store written when it was keyed by MessageId alone."""
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE IF NOT EXISTS as4_received (message_id TEXT PRIMARY KEY, receipt BLOB NOT NULL, at TEXT NOT NULL)"
    )
    conn.executemany("INSERT INTO as4_received VALUES (?, ?, '2026-01-01T00:00:00+00:00')", rows)
    conn.commit()
    conn.close()


async def test_sqlite_duplicate_store_keys_receipts_by_partner_and_message_id(tmp_path: Path) -> None:
    store = SqliteDuplicateStore(tmp_path / "received.db")
    try:
        await store.remember("TH-ASW", "ECO-1@x", b"<th/>")
        await store.remember("MY-ASW", "ECO-1@x", b"<my/>")
        await store.remember("TH-ASW", "ECO-1@x", b"<th-again/>")  # the first receipt stays
        assert await store.receipt_for("TH-ASW", "ECO-1@x") == b"<th/>"
        assert await store.receipt_for("MY-ASW", "ECO-1@x") == b"<my/>"
        assert await store.receipt_for("SG-ASW", "ECO-1@x") is None
    finally:
        store.close()
    reopened = SqliteDuplicateStore(tmp_path / "received.db")
    try:
        assert await reopened.receipt_for("MY-ASW", "ECO-1@x") == b"<my/>"
    finally:
        reopened.close()


async def test_duplicate_store_file_keyed_by_message_id_alone_is_upgraded_keeping_its_receipts(
    tmp_path: Path,
) -> None:
    path = tmp_path / "received.db"
    _legacy_file(path, [("OLD-1@x", b"<old/>")])
    store = SqliteDuplicateStore(path)
    try:
        # a resend of a message received before the upgrade is still answered with its receipt
        assert await store.receipt_for("TH-ASW", "OLD-1@x") == b"<old/>"
        await store.remember("TH-ASW", "NEW-1@x", b"<th/>")
        await store.remember("MY-ASW", "NEW-1@x", b"<my/>")
        assert await store.receipt_for("MY-ASW", "NEW-1@x") == b"<my/>"
        await store.remember("MY-ASW", "OLD-1@x", b"<my-old/>")  # recorded under its partner, preferred to it
        assert await store.receipt_for("MY-ASW", "OLD-1@x") == b"<my-old/>"
    finally:
        store.close()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
        keys = [r[1] for r in sorted(conn.execute("PRAGMA table_info(as4_received)"), key=lambda r: r[5]) if r[5]]
        assert keys == ["partner", "message_id"]
    finally:
        conn.close()
    again = SqliteDuplicateStore(path)  # opening an upgraded file changes nothing
    try:
        assert await again.receipt_for("TH-ASW", "NEW-1@x") == b"<th/>"
    finally:
        again.close()


# ------------------------------------------------------------------------------------------ the sent store


async def _no_sleep(seconds: float) -> None:
    return None


def sending_adapter(dev_pki: DevPki, url: str, cert_name: str, party_id: str, sent_store: Any) -> As4Adapter:
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
            "sent_store": sent_store,
        },
    )


@pytest.mark.parametrize("shared", ["memory", "sqlite"])
async def test_one_message_fanned_out_to_two_partners_sharing_a_sent_store_reaches_each_as_its_own(
    dev_pki: DevPki, tmp_path: Path, shared: str
) -> None:
    """The same gateway message (hence the same ebMS MessageId) to TH-ASW and MY-ASW through one sent store:
    each partner gets the message built for it (encrypted for its key) and each receipt is checked."""
    sent_store: Any = MemorySentStore() if shared == "memory" else str(tmp_path / "as4-sent.db")
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


async def test_sent_store_file_keyed_by_message_id_alone_is_upgraded_keeping_its_records(tmp_path: Path) -> None:
    path = tmp_path / "as4-sent.db"
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE as4_sent (message_id TEXT PRIMARY KEY, body BLOB NOT NULL, content_type TEXT NOT NULL,"
        " timestamp TEXT NOT NULL, refs BLOB NOT NULL, payload_sha256 TEXT NOT NULL, receipt_id TEXT,"
        " recorded_at TEXT NOT NULL)"
    )
    conn.execute(
        "INSERT INTO as4_sent VALUES ('old@x', x'00', 'multipart/related', '2026-01-01T00:00:00+00:00',"
        " x'00', 'abc', NULL, '2026-01-01T00:00:00+00:00')"
    )
    conn.commit()
    conn.close()
    store = SqliteSentStore(path)
    try:
        old = await store.get(PARTNER, "old@x")
        assert old is not None and old.payload_sha256 == "abc" and old.partner == ""
        await store.set_receipt(PARTNER, "old@x", "receipt-1")
        assert (await store.get(PARTNER, "old@x")).receipt_id == "receipt-1"  # type: ignore[union-attr]
        new = SentRecord("new@x", b"th", "multipart/related", old.timestamp, b"", "def", partner=PARTNER)
        assert await store.add(new) == new
        assert await store.get(MY_PARTNER, "new@x") is None
        mine = SentRecord("new@x", b"my", "multipart/related", old.timestamp, b"", "def", partner=MY_PARTNER)
        assert await store.add(mine) == mine and (await store.get(PARTNER, "new@x")) == new
    finally:
        store.close()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    finally:
        conn.close()
