"""``[inbound.NAME] endpoint = "as4"``: ASEAN partners push signed, encrypted AS4 messages into the gateway.

Everything real on 127.0.0.1: the gateway (configured from plain TOML values), TH-ASW as an ``As4Adapter``
sending to the gateway's ``/as4`` path, and a loopback destination the message is routed to.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from adapters.as4 import As4Adapter, verify_signal
from adapters.as4.inbound import As4Endpoint
from gateway.api import Gateway
from gateway.errors import ConfigError, PartnerRejected
from gateway.model import gateway_message_id
from gateway.ports import OutboundMessage, resolve_inbound
from helpers.as4 import ACTION, GATEWAY, PARTNER, partner_options, pmode, sender_to, side
from helpers.gateway import Receiver, eventually, make_config
from signing.dev.pki import DevPki

FORM_D = b"<CertificateOfOrigin><ReferenceNo>TH-2026-0001</ReferenceNo><Form>D</Form></CertificateOfOrigin>"


def inbound_options(dev_pki: DevPki, tmp_path: Path, *, party: str = "TH") -> dict[str, Any]:
    """What ``[inbound.asean.options]`` decodes to (plain TOML values)."""
    return {
        "party_id": GATEWAY,
        "signer": {"p12": str(dev_pki.party("nsw-gateway").p12_path), "password_env": "AS4_TEST_P12_PASSWORD"},
        "decryption_key": {
            "key": str(dev_pki.party("nsw-gateway").key_path),
            "cert": str(dev_pki.party("nsw-gateway").cert_path),
        },
        "retention": 86400,
        "partners": {PARTNER: partner_options(dev_pki, party)},
    }


def gateway_for(dev_pki: DevPki, tmp_path: Path, destination: str, *, allowed: list[str]) -> Gateway:
    config = make_config(
        tmp_path,
        {"DEST": destination},
        parties={"TH": {"tokens": ["th-token"], "document_types": allowed}},
        routes=[{"document_type": "eco.form_d", "sender": "TH", "to": ["DEST"]}],
        extra={"inbound": {"asean": {"endpoint": "as4", "options": inbound_options(dev_pki, tmp_path)}}},
    )
    return Gateway(config)


def th_adapter(dev_pki: DevPki, url: str, *, from_party: str = PARTNER) -> As4Adapter:
    us, th = side(dev_pki, "nsw-gateway", GATEWAY), side(dev_pki, "th-asw", PARTNER)
    return sender_to(url, th, us, initiator=from_party)


def outbound(message_id: str) -> OutboundMessage:
    return OutboundMessage(
        message_id=message_id, payload=FORM_D, sender=PARTNER, document_type=ACTION, conversation=f"conv-{message_id}"
    )


async def messages_of(session: aiohttp.ClientSession, gw: Gateway) -> list[dict[str, Any]]:
    async with session.get(f"{gw.url}/v1/messages", headers={"Authorization": "Bearer th-token"}) as r:
        assert r.status == 200
        return list((await r.json())["messages"])


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AS4_TEST_P12_PASSWORD", "changeit")


def test_as4_is_a_builtin_inbound_endpoint() -> None:
    assert resolve_inbound("as4") is As4Endpoint


async def test_partner_form_d_is_received_stored_once_routed_and_receipted(dev_pki: DevPki, tmp_path: Path) -> None:
    dest = await Receiver().start()
    try:
        gw = gateway_for(dev_pki, tmp_path, dest.url, allowed=["eco.form_d"])
        async with gw, aiohttp.ClientSession() as session:
            adapter = th_adapter(dev_pki, f"{gw.url}/as4")
            async with adapter:
                receipt = await adapter.deliver(outbound("TH-ECO-1"))
                again = await adapter.deliver(outbound("TH-ECO-1"))
            ebms_id = f"TH-ECO-1@{pmode(PARTNER, GATEWAY).message_id_domain}"
            gid = gateway_message_id("TH", ebms_id)

            async def acknowledged() -> bool:
                record = await gw.store.get(gid)
                return record is not None and record.state.value == "ACKNOWLEDGED"

            await eventually(acknowledged)
            async with session.get(f"{gw.url}/v1/messages/{gid}", headers={"Authorization": "Bearer th-token"}) as r:
                assert r.status == 200
                shown = await r.json()
            listed = await messages_of(session, gw)
    finally:
        await dest.stop()
    # The partner got the gateway's signed receipt of exactly its message, and the original one on the resend.
    signal = verify_signal(receipt.raw, "application/soap+xml", trust=side(dev_pki, "nsw-gateway", GATEWAY).trust)
    assert signal.signal.receipt and signal.signal.ref_to_message_id == ebms_id
    assert receipt.message_id == "TH-ECO-1" and not receipt.duplicate
    assert again.raw == receipt.raw and again.duplicate
    # Stored once, routed to DEST, with the ebMS ids in the envelope.
    assert [m["id"] for m in listed] == [gid]
    steps = [(t["to"], t["destination"]) for t in shown["history"]]
    assert steps[:4] == [("RECEIVED", None), ("VERIFIED", None), ("MAPPED", None), ("QUEUED", None)]
    assert steps[-1] == ("ACKNOWLEDGED", "DEST")
    assert shown["document_type"] == "eco.form_d"
    assert len(dest.requests) == 1 and dest.requests[0]["body"] == FORM_D


async def test_unknown_partner_gets_a_signed_ebms_error_and_nothing_is_stored(dev_pki: DevPki, tmp_path: Path) -> None:
    dest = await Receiver().start()
    try:
        gw = gateway_for(dev_pki, tmp_path, dest.url, allowed=["eco.form_d"])
        async with gw, aiohttp.ClientSession() as session:
            async with th_adapter(dev_pki, f"{gw.url}/as4", from_party="MY-ASW") as adapter:
                with pytest.raises(PartnerRejected) as caught:
                    await adapter.deliver(outbound("MY-ECO-1"))
            listed = await messages_of(session, gw)
    finally:
        await dest.stop()
    assert caught.value.details["ebms"] == "EBMS:0001"
    assert listed == [] and dest.requests == []


async def test_untrusted_signature_gets_a_signed_ebms_error_and_nothing_is_stored(
    dev_pki: DevPki, tmp_path: Path
) -> None:
    options = inbound_options(dev_pki, tmp_path)
    partner = options["partners"][PARTNER]
    # TH-ASW's messages must be signed with a key we do not hold for it: its real key is untrusted.
    options["partners"] = {PARTNER: {**partner, "trust": {"pinned": [str(dev_pki.party("nsw-gateway").cert_path)]}}}
    config = make_config(
        tmp_path,
        {"DEST": "http://127.0.0.1:9/unused"},
        parties={"TH": {"tokens": ["th-token"], "document_types": ["eco.form_d"]}},
        extra={"inbound": {"asean": {"endpoint": "as4", "options": options}}},
    )
    async with Gateway(config) as gw, aiohttp.ClientSession() as session:
        async with th_adapter(dev_pki, f"{gw.url}/as4") as adapter:
            with pytest.raises(PartnerRejected) as caught:
                await adapter.deliver(outbound("TH-ECO-3"))
        listed = await messages_of(session, gw)
    assert caught.value.details["ebms"] == "EBMS:0101"
    assert listed == []


async def test_payload_the_broker_rejects_gets_an_ebms_error_with_the_gateway_code(
    dev_pki: DevPki, tmp_path: Path
) -> None:
    dest = await Receiver().start()
    try:
        gw = gateway_for(dev_pki, tmp_path, dest.url, allowed=["sps.permit"])  # TH may not send eco.form_d
        async with gw, aiohttp.ClientSession() as session:
            async with th_adapter(dev_pki, f"{gw.url}/as4") as adapter:
                with pytest.raises(PartnerRejected) as caught:
                    await adapter.deliver(outbound("TH-ECO-2"))
                with pytest.raises(PartnerRejected) as again:  # not acknowledged: a resend is refused again
                    await adapter.deliver(outbound("TH-ECO-2"))
            listed = await messages_of(session, gw)
    finally:
        await dest.stop()
    details = caught.value.details
    assert details["ebms"] == "EBMS:0004" and "AUTH_FORBIDDEN" in str(caught.value)
    assert str(details["detail"]).startswith("AUTH_FORBIDDEN")
    assert again.value.details["ebms"] == "EBMS:0004"
    assert listed == [] and dest.requests == []


async def test_as4_path_needs_no_bearer_token_but_the_api_still_does(dev_pki: DevPki, tmp_path: Path) -> None:
    gw = gateway_for(dev_pki, tmp_path, "http://127.0.0.1:9/unused", allowed=["eco.form_d"])
    async with gw, aiohttp.ClientSession() as session:
        async with session.post(
            f"{gw.url}/as4", data=b"not a soap message", headers={"Content-Type": "application/soap+xml"}
        ) as r:
            assert r.status == 200
            signal = verify_signal(
                await r.read(), r.headers["Content-Type"], trust=side(dev_pki, "nsw-gateway", GATEWAY).trust
            )
        async with session.get(f"{gw.url}/v1/messages") as r:
            assert r.status == 401
    assert signal.signal.errors


@pytest.mark.parametrize(
    ("key", "value", "field"),
    [
        ("party_id", "", "inbound.asean.options.party_id"),
        ("signer", "key.pem", "inbound.asean.options.signer"),
        ("path", "as4", "inbound.asean.options.path"),
        ("duplicate_store", 42, "inbound.asean.options.duplicate_store"),
        ("retention", -1, "inbound.asean.options.retention"),
        ("partners", {}, "inbound.asean.options.partners"),
        ("partners", {PARTNER: {"pmode": {}}}, f"inbound.asean.options.partners.{PARTNER}.party"),
    ],
    ids=[
        "party-id-empty",
        "signer-not-a-table",
        "path-relative",
        "duplicate-store-removed",
        "retention-negative",
        "no-partners",
        "partner-without-party",
    ],
)
def test_bad_option_is_a_config_error_naming_it(
    dev_pki: DevPki, tmp_path: Path, key: str, value: object, field: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        As4Endpoint("asean", options={**inbound_options(dev_pki, tmp_path), key: value})
    assert caught.value.field == field


def test_duplicate_store_file_option_is_refused_at_load_pointing_to_the_gateway_store(
    dev_pki: DevPki, tmp_path: Path
) -> None:
    # a configuration written for a node-local SQLite file of received MessageIds: it no longer means anything
    options = {**inbound_options(dev_pki, tmp_path), "duplicate_store": str(tmp_path / "as4-received.db")}
    with pytest.raises(ConfigError) as caught:
        As4Endpoint("asean", options=options)
    assert caught.value.code == "CONFIG_INVALID" and caught.value.field == "inbound.asean.options.duplicate_store"
    assert "received MessageIds are kept in the gateway's store ([store])" in caught.value.message
    assert not (tmp_path / "as4-received.db").exists()


def test_bad_partner_trust_and_pmode_name_the_option(dev_pki: DevPki, tmp_path: Path) -> None:
    options = inbound_options(dev_pki, tmp_path)
    partner = options["partners"][PARTNER]
    with pytest.raises(ConfigError) as caught:
        As4Endpoint("asean", options={**options, "partners": {PARTNER: {**partner, "trust": {}}}})
    assert caught.value.field == f"inbound.asean.options.partners.{PARTNER}.trust"
    with pytest.raises(ConfigError) as caught:
        As4Endpoint("asean", options={**options, "partners": {PARTNER: {**partner, "pmode": {"id": "x"}}}})
    assert str(caught.value.field).startswith(f"inbound.asean.options.partners.{PARTNER}.pmode")
    assert json.dumps(options)  # plain TOML values


# --------------------------------------------------------------------------- identities bound to the signer

MY_PARTNER = "MY-ASW"
ISO6523 = "urn:oasis:names:tc:ebcore:partyid-type:iso6523:0088"


def two_partner_options(dev_pki: DevPki, tmp_path: Path, **th_pmode: Any) -> dict[str, Any]:
    """TH-ASW (submitting as TH) and MY-ASW (as MY), both trusting the dev PKI's root, each bound to its own
    certificate by its trust's ``signers``."""
    options = inbound_options(dev_pki, tmp_path)
    th = options["partners"][PARTNER]
    th = {**th, "pmode": {**th["pmode"], **th_pmode}}
    my = {
        **th,
        "party": "MY",
        "pmode": {**th["pmode"], "id": "VN-NSW-MY-ASW-eco", "responder": {"party_id": MY_PARTNER}},
        "trust": {**th["trust"], "signers": [{"dn": dev_pki.party("my-asw").cert.subject.rfc4514_string()}]},
    }
    return {**options, "partners": {PARTNER: th, MY_PARTNER: my}}


def two_partner_gateway(dev_pki: DevPki, tmp_path: Path, destination: str, **th_pmode: Any) -> Gateway:
    config = make_config(
        tmp_path,
        {"DEST": destination},
        parties={
            "TH": {"tokens": ["th-token"], "document_types": ["eco.form_d"]},
            "MY": {"tokens": ["my-token"], "document_types": ["eco.form_d"]},
        },
        routes=[{"document_type": "eco.form_d", "to": ["DEST"]}],
        extra={
            "inbound": {"asean": {"endpoint": "as4", "options": two_partner_options(dev_pki, tmp_path, **th_pmode)}}
        },
    )
    return Gateway(config)


def test_partner_trust_opting_into_any_signer_is_accepted_and_reported_weakened(
    dev_pki: DevPki, tmp_path: Path
) -> None:
    """Prerequisite: MY-ASW's trust anchors the dev root with any_signer = true instead of signers.
    Predicate: the configuration loads and lists the opt-in among what it weakens (start log and ``/readyz``)."""
    options = two_partner_options(dev_pki, tmp_path)
    my = options["partners"][MY_PARTNER]
    trust = {k: v for k, v in my["trust"].items() if k != "signers"} | {"any_signer": True}
    options["partners"][MY_PARTNER] = {**my, "trust": trust}
    config = make_config(
        tmp_path,
        {"DEST": "http://127.0.0.1:9/x"},
        parties={"TH": {"tokens": ["th-token"]}, "MY": {"tokens": ["my-token"]}},
        extra={"inbound": {"asean": {"endpoint": "as4", "options": options}}},
    )
    assert f"inbound.asean.options.partners.{MY_PARTNER}.trust.any_signer" in config.weakened
    assert not any(PARTNER + "." in w for w in config.weakened)


async def _stored(gw: Gateway) -> list[str]:
    from gateway.store.base import MessageQuery

    return [r.message.id for party in ("TH", "MY") for r in await gw.store.search(MessageQuery(sender=party))]


async def test_partner_th_signing_a_message_claiming_my_party_id_is_refused_with_CERT_IDENTITY_MISMATCH(
    dev_pki: DevPki, tmp_path: Path
) -> None:
    """Prerequisite: MY-ASW's trust anchors the dev PKI root with signers = [{ dn = "CN=my-asw,..." }].
    Predicate: TH-ASW's key (a valid certificate of the same root) signing a message whose eb:From is MY-ASW is
    refused by MY-ASW's trust store: a signed error signal, EBMS:0101, CERT_IDENTITY_MISMATCH naming the signing
    certificate's token; nothing is submitted."""
    dest = await Receiver().start()
    try:
        gw = two_partner_gateway(dev_pki, tmp_path, dest.url)
        async with gw:
            async with th_adapter(dev_pki, f"{gw.url}/as4", from_party=MY_PARTNER) as adapter:
                with pytest.raises(PartnerRejected) as caught:
                    await adapter.deliver(outbound("MY-ECO-9"))
            stored = await _stored(gw)
    finally:
        await dest.stop()
    details = caught.value.details
    assert details["ebms"] == "EBMS:0101"
    assert (
        str(details["detail"]).startswith("CERT_IDENTITY_MISMATCH") and "wsse:BinarySecurityToken" in details["detail"]
    )
    assert stored == [] and dest.requests == []


async def test_each_partner_signing_as_itself_is_accepted_as_its_own_party(dev_pki: DevPki, tmp_path: Path) -> None:
    dest = await Receiver().start()
    try:
        gw = two_partner_gateway(dev_pki, tmp_path, dest.url)
        async with gw:
            async with th_adapter(dev_pki, f"{gw.url}/as4") as adapter:
                await adapter.deliver(outbound("TH-ECO-9"))
            stored = await _stored(gw)
    finally:
        await dest.stop()
    ebms_id = f"TH-ECO-9@{pmode(PARTNER, GATEWAY).message_id_domain}"
    assert stored == [gateway_message_id("TH", ebms_id)]


async def test_party_id_of_another_type_than_the_pmodes_is_refused_with_IDENTITY_MISMATCH(
    dev_pki: DevPki, tmp_path: Path
) -> None:
    """Our PMode knows TH-ASW as an ISO 6523 id; the message names TH-ASW of type ``unregistered``."""
    gw = two_partner_gateway(
        dev_pki, tmp_path, "http://127.0.0.1:9/unused", responder={"party_id": PARTNER, "party_id_type": ISO6523}
    )
    async with gw:
        async with th_adapter(dev_pki, f"{gw.url}/as4") as adapter:
            with pytest.raises(PartnerRejected) as caught:
                await adapter.deliver(outbound("TH-ECO-T"))
        stored = await _stored(gw)
    details = caught.value.details
    assert details["ebms"] == "EBMS:0004"
    assert str(details["detail"]).startswith("IDENTITY_MISMATCH") and "eb:From/eb:PartyId/@type" in details["detail"]
    assert stored == []


async def test_message_addressed_to_another_gateway_is_refused_and_nothing_is_stored(
    dev_pki: DevPki, tmp_path: Path
) -> None:
    us, th = side(dev_pki, "nsw-gateway", GATEWAY), side(dev_pki, "th-asw", PARTNER)
    gw = two_partner_gateway(dev_pki, tmp_path, "http://127.0.0.1:9/unused")
    async with gw:
        adapter = As4Adapter(
            f"{gw.url}/as4",
            timeout=10,
            options={
                "pmode": pmode(PARTNER, "SG-NSW", attempts=1),
                "signer": th.signer,
                "trust": us.trust,
                "encryption_certificate": us.certificate,
            },
        )
        async with adapter:
            with pytest.raises(PartnerRejected) as caught:
                await adapter.deliver(outbound("TH-ECO-SG"))
        stored = await _stored(gw)
    details = caught.value.details
    assert details["ebms"] == "EBMS:0003"
    assert str(details["detail"]).startswith("VALIDATION_FAILED") and "eb:To/eb:PartyId" in details["detail"]
    assert stored == []


def test_partner_trusted_through_anchors_without_signers_is_a_config_error(dev_pki: DevPki, tmp_path: Path) -> None:
    options = inbound_options(dev_pki, tmp_path)
    partner = options["partners"][PARTNER]
    anchored = {k: v for k, v in partner["trust"].items() if k != "signers"}
    with pytest.raises(ConfigError) as caught:
        As4Endpoint("asean", options={**options, "partners": {PARTNER: {**partner, "trust": anchored}}})
    assert caught.value.field == f"inbound.asean.options.partners.{PARTNER}.trust.signers"
    not_a_dn = {**anchored, "signers": [{"dn": "not a DN"}]}
    with pytest.raises(ConfigError) as caught:
        As4Endpoint("asean", options={**options, "partners": {PARTNER: {**partner, "trust": not_a_dn}}})
    assert caught.value.field == f"inbound.asean.options.partners.{PARTNER}.trust.signers[0].dn"
    assert "not an RFC 4514 name" in caught.value.message
    pinned = {**partner, "trust": {"pinned": [str(dev_pki.party("th-asw").cert_path)]}}
    assert As4Endpoint("asean", options={**options, "partners": {PARTNER: pinned}}).partners[PARTNER].party == "TH"
