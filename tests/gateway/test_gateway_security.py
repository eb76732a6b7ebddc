"""The broker with the signing layer and the mappings wired in: verification per party, mapping per
destination, outbound signing, signed receipts, data intermediaries. Real loopback partners, the dev PKI."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from lxml import etree

from gateway.api import Gateway
from gateway.errors import ConfigError
from gateway.model import State
from helpers.gateway import TOKENS, Receiver, eventually, make_config, submit
from helpers.mappings import form_d, quarantine_result
from helpers.ocsp import OcspResponder, dev_pki, free_loopback_port, ocsp_responder  # noqa: F401
from mappings.registry import get as get_format
from signing.dev.pki import DEFAULT_ORGANIZATION, DevPki
from signing.keys import SoftwareSigner
from signing.policy import SigningProfile, VerifyPolicy
from signing.sign import sign_document
from signing.trust import PinnedCertificate, TrustStore

UTC = dt.UTC


def signer(pki: DevPki, name: str) -> SoftwareSigner:
    p = pki.party(name)
    return SoftwareSigner(p.key, p.cert, [pki.issuing_cert])


def pinned(pki: DevPki, name: str, **window: Any) -> dict[str, Any]:
    return {"pinned": [{"certificate": str(pki.party(name).cert_path), **window}]}


def anchored(pki: DevPki, *names: str, **extra: Any) -> dict[str, Any]:
    """The dev PKI's root for a party whose signers are the dev PKI certificates issued under ``names`` (their
    subject CN, within the dev PKI's organization)."""
    signers = [{"subject": {"CN": name, "O": DEFAULT_ORGANIZATION}} for name in names]
    return {
        "anchors": [str(pki.root_cert_path)],
        "intermediates": [str(pki.issuing_cert_path)],
        "signers": signers,
        **extra,
    }


def eco(n: int = 1) -> bytes:
    return get_format("form-d").emit(
        form_d(items=2, document=form_d().document.model_copy(update={"number": f"VN-SG-24-{n:05d}"}))
    )


def signed_eco(pki: DevPki, party: str = "moit", n: int = 1) -> bytes:
    return sign_document(eco(n), signer(pki, party))


def gateway_trust(pki: DevPki) -> tuple[TrustStore, VerifyPolicy]:
    return TrustStore(party="nsw-gateway", pinned=(PinnedCertificate(pki.party("nsw-gateway").cert),)), VerifyPolicy()


def secure_config(
    tmp_path: Path,
    pki: DevPki,
    destinations: dict[str, str],
    *,
    parties: dict[str, dict[str, Any]] | None = None,
    per_destination: dict[str, dict[str, Any]] | None = None,
    signing: str = "on",
    routes: list[dict[str, Any]] | None = None,
) -> Any:
    base = {
        "MOIT": {"trust": pinned(pki, "moit"), "format": "form-d"},
        "MARD": {
            "trust": anchored(pki, "mard"),
            "verify": {"profile": "vnsw-legacy"},
            "format": "vnsw",
            "document_types": ["sps.permit", "sps.quarantine_result"],
        },
        "TRADER": {"trust": anchored(pki, "trader")},
    }
    for name, settings in (parties or {}).items():
        base[name] = {**base.get(name, {}), **settings}
    gw_key = pki.party("nsw-gateway")
    return make_config(
        tmp_path,
        destinations,
        routes=routes,
        parties=base,
        per_destination=per_destination,
        document_types={"sps.quarantine_result": {"procedures": ["BNNPTNT0600011/12/05"]}},
        gateway={"verification": "signature", "signing": signing},
        extra={"signing": {"keys": [{"pkcs12": str(gw_key.p12_path), "password": "changeit"}]}},
    )


async def read(s: aiohttp.ClientSession, gw: Gateway, party: str, mid: str) -> dict[str, Any]:
    async with s.get(f"{gw.url}/v1/messages/{mid}", headers={"Authorization": f"Bearer {TOKENS[party]}"}) as r:
        return json.loads(await r.read())


# --------------------------------------------------------------------------- verification


async def test_signed_eco_is_verified_resigned_by_the_gateway_and_the_partner_verifies_only_the_gateways_signature(
    tmp_path: Path, dev_pki: DevPki
) -> None:
    th = await Receiver(verify_with=gateway_trust(dev_pki)).start()
    try:
        config = secure_config(tmp_path, dev_pki, {"TH": th.url}, per_destination={"TH": {"format": "form-d"}})
        async with Gateway(config) as gw, aiohttp.ClientSession() as s:
            status, ack = await submit(s, gw.url, "MOIT", "ECO-1", "eco.form_d", signed_eco(dev_pki))
            assert status == 202, ack
            await eventually(lambda: len(th.processed) == 1)
            record = await read(s, gw, "MOIT", ack["id"])
            stored = await gw.store._read(
                lambda c: c.execute(  # type: ignore[attr-defined]
                    "SELECT data FROM message_payloads WHERE message = ?", (ack["id"],)
                ).fetchone()[0]
            )
    finally:
        await th.stop()
    assert th.verified == ["CN=nsw-gateway,O=NSW Development PKI"] or th.verified[0].startswith("CN=nsw-gateway")
    body = th.requests[0]["body"]
    assert body.count(b"<ds:SignatureValue>") == 1  # MOIT's signature removed, the gateway's added
    verified = [h for h in record["history"] if h["to"] == "VERIFIED"][0]
    assert verified["detail"].startswith("signed by CN=moit")
    assert b"<ds:Signature" in stored  # the evidence: what MOIT signed, with its signature


@pytest.mark.parametrize(
    "scenario, code",
    [
        ("unsigned", "SIG_MISSING"),
        ("tampered", "SIG_DIGEST_MISMATCH"),
        ("signed_by_another_party", "CERT_UNTRUSTED"),
    ],
)
async def test_bad_signature_is_rejected_with_its_code_and_nothing_is_delivered(
    tmp_path: Path, dev_pki: DevPki, scenario: str, code: str
) -> None:
    th = await Receiver().start()
    data = {
        "unsigned": eco(),
        "signed_by_another_party": signed_eco(dev_pki, "mard"),
        "tampered": signed_eco(dev_pki).replace(b"Minh Phu Seafood", b"Evil Seafood JSC"),
    }[scenario]
    try:
        config = secure_config(tmp_path, dev_pki, {"TH": th.url})
        async with Gateway(config) as gw, aiohttp.ClientSession() as s:
            status, body = await submit(s, gw.url, "MOIT", "ECO-1", "eco.form_d", data)
            record = await read(s, gw, "MOIT", body["ack"]["id"])
    finally:
        await th.stop()
    assert status == 403 and body["error"]["code"] == code and body["ack"]["state"] == "REJECTED"
    assert body["error"]["field"]
    assert record["error"]["code"] == code and th.requests == []


async def test_enterprise_certificate_of_the_same_ca_signing_as_moit_is_rejected_with_cert_identity_mismatch(
    tmp_path: Path, dev_pki: DevPki
) -> None:
    """Prerequisite: MOIT's trust anchors the dev PKI root, which also issues enterprises' certificates, with
    signers = [{ subject = { CN = "moit", O = "NSW Development PKI" } }].
    Predicate: an e-C/O signed by an enterprise's valid certificate of that CA, submitted with MOIT's token, is
    refused 403 CERT_IDENTITY_MISMATCH naming MOIT and the enterprise's subject, nothing delivered; MOIT's own
    certificate is accepted and recorded as the signer."""
    from signing.dev.pki import generate_key

    enterprise = dev_pki.issue("ent-0300000001-gw", key=generate_key("p256"))
    forged = sign_document(eco(1), SoftwareSigner(enterprise.key, enterprise.cert, [dev_pki.issuing_cert]))
    th = await Receiver().start()
    try:
        config = secure_config(
            tmp_path, dev_pki, {"TH": th.url}, parties={"MOIT": {"trust": anchored(dev_pki, "moit")}}
        )
        async with Gateway(config) as gw, aiohttp.ClientSession() as s:
            status, body = await submit(s, gw.url, "MOIT", "ECO-1", "eco.form_d", forged)
            ok, ack = await submit(s, gw.url, "MOIT", "ECO-2", "eco.form_d", signed_eco(dev_pki, "moit", 2))
            await eventually(lambda: len(th.processed) == 1)
            record = await read(s, gw, "MOIT", ack["id"])
    finally:
        await th.stop()
    assert status == 403 and body["error"]["code"] == "CERT_IDENTITY_MISMATCH" and body["ack"]["state"] == "REJECTED"
    assert "'MOIT'" in body["error"]["message"] and "CN=ent-0300000001-gw" in body["error"]["message"]
    assert ok == 202 and len(th.requests) == 1
    verified = [h for h in record["history"] if h["to"] == "VERIFIED"][0]
    assert verified["detail"].startswith("signed by CN=moit")


@pytest.mark.parametrize(
    ("where", "field"),
    [("party", "parties.MARD.trust.signers"), ("receipts", "destinations.TH.trust.signers")],
)
def test_trust_anchors_without_signers_are_refused_at_load_naming_the_field(
    tmp_path: Path, dev_pki: DevPki, where: str, field: str
) -> None:
    """Anchors vouch for every certificate they issue: a trust section with anchors and neither signers nor
    any_signer is CONFIG_INVALID naming its ``signers`` and saying what to write."""
    bare = {"anchors": [str(dev_pki.root_cert_path)]}
    with pytest.raises(ConfigError) as err:
        secure_config(
            tmp_path,
            dev_pki,
            {"TH": "http://127.0.0.1:9/x"},
            parties={"MARD": {"trust": bare}} if where == "party" else None,
            per_destination={"TH": {"receipt": "signed", "trust": bare}} if where == "receipts" else None,
        )
    assert err.value.code == "CONFIG_INVALID" and err.value.field == field
    assert "signers = [{ subject = " in err.value.message and "any_signer = true" in err.value.message


async def test_any_signer_opt_in_is_accepted_and_reported_weakened_at_start_and_by_readyz(
    tmp_path: Path, dev_pki: DevPki, caplog: pytest.LogCaptureFixture
) -> None:
    """Prerequisite: MARD's trust anchors the dev root with any_signer = true.
    Predicate: the gateway starts, logs the weakening, ``/readyz`` lists ``parties.MARD.trust.any_signer``, and
    MOIT's certificate of the same CA signs as MARD (what the opt-in accepts)."""
    config = secure_config(
        tmp_path,
        dev_pki,
        {"CUSTOMS": "http://127.0.0.1:9/x"},
        parties={"MARD": {"trust": {"anchors": [str(dev_pki.root_cert_path)], "any_signer": True}}},
    )
    assert "parties.MARD.trust.any_signer" in config.weakened
    with caplog.at_level("WARNING", logger="nswgw.api"):
        async with Gateway(config) as gw, aiohttp.ClientSession() as s:
            async with s.get(f"{gw.url}/readyz") as r:
                ready = await r.json()
            status, _ = await submit(
                s, gw.url, "MARD", "QR-1", "sps.quarantine_result", vnsw_result_by(dev_pki, "moit")
            )
    assert ready["weakened"] == list(config.gateway.weakened) + ["parties.MARD.trust.any_signer"]
    assert "security weakened by configuration: " in caplog.text
    assert "parties.MARD.trust.any_signer" in caplog.text
    assert status == 202


async def test_pinned_certificate_past_its_acceptance_window_is_rejected_with_cert_rotated_out(
    tmp_path: Path, dev_pki: DevPki
) -> None:
    yesterday = dt.datetime.now(UTC) - dt.timedelta(days=1)
    config = secure_config(
        tmp_path,
        dev_pki,
        {"TH": "http://127.0.0.1:9/x"},
        parties={"MOIT": {"trust": pinned(dev_pki, "moit", accept_until=yesterday)}},
    )
    async with Gateway(config) as gw, aiohttp.ClientSession() as s:
        status, body = await submit(s, gw.url, "MOIT", "ECO-1", "eco.form_d", signed_eco(dev_pki))
    assert status == 403 and body["error"]["code"] == "CERT_ROTATED_OUT"


async def test_signer_revoked_in_the_configured_crl_is_rejected_with_cert_revoked(
    tmp_path: Path, dev_pki: DevPki
) -> None:
    from signing.dev.pki import generate_key

    revoked = dev_pki.issue("moit-revoked-gw", key=generate_key("p256"))
    dev_pki.revoke("moit-revoked-gw", reason="key_compromise")
    data = sign_document(eco(), SoftwareSigner(revoked.key, revoked.cert, [dev_pki.issuing_cert]))
    config = secure_config(
        tmp_path,
        dev_pki,
        {"TH": "http://127.0.0.1:9/x"},
        parties={"MOIT": {"trust": anchored(dev_pki, "moit-revoked-gw", crls=[str(dev_pki.crl_path)])}},
    )
    async with Gateway(config) as gw, aiohttp.ClientSession() as s:
        status, body = await submit(s, gw.url, "MOIT", "ECO-1", "eco.form_d", data)
    assert status == 403 and body["error"]["code"] == "CERT_REVOKED"


def vnsw_result(pki: DevPki, profile: SigningProfile) -> bytes:
    return sign_document(get_format("vnsw").emit(quarantine_result()), signer(pki, "mard"), profile)


def vnsw_result_by(pki: DevPki, party: str) -> bytes:
    return sign_document(get_format("vnsw").emit(quarantine_result()), signer(pki, party), SigningProfile.vnsw_legacy())


async def test_vnsw_legacy_party_signs_inside_systemsignature_and_a_default_placement_is_sig_location_invalid(
    tmp_path: Path, dev_pki: DevPki
) -> None:
    customs = await Receiver(verify_with=gateway_trust(dev_pki)).start()
    try:
        config = secure_config(tmp_path, dev_pki, {"CUSTOMS": customs.url})
        async with Gateway(config) as gw, aiohttp.ClientSession() as s:
            ok, ack = await submit(
                s, gw.url, "MARD", "QR-1", "sps.quarantine_result", vnsw_result(dev_pki, SigningProfile.vnsw_legacy())
            )
            bad, rejected = await submit(
                s, gw.url, "MARD", "QR-2", "sps.quarantine_result", vnsw_result(dev_pki, SigningProfile())
            )
            await eventually(lambda: len(customs.processed) == 1)
    finally:
        await customs.stop()
    assert ok == 202, ack
    assert bad == 403 and rejected["error"]["code"] == "SIG_LOCATION_INVALID"
    assert customs.verified[0].startswith("CN=nsw-gateway")


# --------------------------------------------------------------------------- mapping


async def test_vnsw_quarantine_result_is_mapped_to_json_for_a_json_destination(tmp_path: Path, dev_pki: DevPki) -> None:
    rest = await Receiver().start()
    try:
        config = secure_config(
            tmp_path,
            dev_pki,
            {"REST": rest.url},
            per_destination={"REST": {"format": "json", "signing": {"profile": "none"}}},
        )
        async with Gateway(config) as gw, aiohttp.ClientSession() as s:
            status, ack = await submit(
                s, gw.url, "MARD", "QR-1", "sps.quarantine_result", vnsw_result(dev_pki, SigningProfile.vnsw_legacy())
            )
            await eventually(lambda: len(rest.processed) == 1)
            record = await read(s, gw, "MARD", ack["id"])
    finally:
        await rest.stop()
    assert status == 202
    sent = json.loads(rest.requests[0]["body"])
    assert sent["permit"]["application_number"] == "BNNPTNT11190000272"
    assert rest.requests[0]["headers"]["Content-Type"].startswith("application/json")
    assert [h["to"] for h in record["history"]][:4] == ["RECEIVED", "VERIFIED", "MAPPED", "QUEUED"]


async def test_form_d_breaking_the_harmonized_rules_is_rejected_with_validation_failed_and_every_issue(
    tmp_path: Path, dev_pki: DevPki
) -> None:
    rest = await Receiver().start()
    root = etree.fromstring(eco())
    for el in root.iter("{*}InvoiceNumber", "{*}HSCode"):
        el.getparent().remove(el)
    data = sign_document(root, signer(dev_pki, "moit"))
    try:
        config = secure_config(
            tmp_path,
            dev_pki,
            {"REST": rest.url},
            per_destination={"REST": {"format": "json", "signing": {"profile": "none"}}},
        )
        async with Gateway(config) as gw, aiohttp.ClientSession() as s:
            status, body = await submit(s, gw.url, "MOIT", "ECO-1", "eco.form_d", data)
    finally:
        await rest.stop()
    assert status == 422 and body["error"]["code"] == "VALIDATION_FAILED"
    assert body["error"]["issues"] and all(i["code"] and i["path"] for i in body["error"]["issues"])
    assert rest.requests == []


async def test_json_destination_with_an_xml_signing_profile_is_a_config_error(tmp_path: Path, dev_pki: DevPki) -> None:
    with pytest.raises(ConfigError) as err:
        secure_config(tmp_path, dev_pki, {"REST": "http://127.0.0.1:9/x"}, per_destination={"REST": {"format": "json"}})
    assert err.value.field == "destinations.REST.signing.profile"


def test_unreadable_trust_anchor_is_a_config_error_naming_the_key(tmp_path: Path, dev_pki: DevPki) -> None:
    config = secure_config(
        tmp_path,
        dev_pki,
        {"TH": "http://127.0.0.1:9/x"},
        parties={
            "MOIT": {"trust": {"anchors": [str(tmp_path / "missing.pem")], "signers": [{"subject": {"CN": "moit"}}]}}
        },
    )
    with pytest.raises(ConfigError) as err:
        Gateway(config)
    assert err.value.field == "parties.MOIT.trust.anchors[0]"


def test_signature_verification_without_trust_for_a_party_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        make_config(tmp_path, {"TH": "http://127.0.0.1:9/x"}, gateway={"verification": "signature"})
    assert err.value.field == "parties.MOIT.trust"


# --------------------------------------------------------------------------- signed receipts


async def test_signed_receipt_signed_by_another_certificate_of_the_destinations_ca_is_refused(
    tmp_path: Path, dev_pki: DevPki
) -> None:
    """Prerequisite: TH's receipt trust anchors the dev PKI root with signers = [{ subject = { CN = "th-asw",
    O = "NSW Development PKI" } }].
    Predicate: a receipt signed by MY-ASW's valid certificate of the same CA does not acknowledge the delivery:
    PARTNER_RECEIPT_INVALID caused by CERT_IDENTITY_MISMATCH, the delivery retried and dead."""
    th = await Receiver(receipt_signer=signer(dev_pki, "my-asw")).start()
    try:
        config = secure_config(
            tmp_path,
            dev_pki,
            {"TH": th.url},
            per_destination={
                "TH": {
                    "receipt": "signed",
                    "trust": anchored(dev_pki, "th-asw"),
                    "retry": {"max_attempts": 2, "ttl": 60.0, "initial": 0.01, "max_wait": 0.02, "jitter": 0.0},
                }
            },
        )
        async with Gateway(config) as gw, aiohttp.ClientSession() as s:
            _, ack = await submit(s, gw.url, "MOIT", "ECO-1", "eco.form_d", signed_eco(dev_pki))

            async def settled() -> bool:
                rec = await gw.store.get(ack["id"])
                return rec is not None and rec.deliveries[0].state is State.DEAD

            await eventually(settled)
            record = await gw.store.get(ack["id"])
    finally:
        await th.stop()
    assert record is not None
    error = record.deliveries[0].last_error
    assert error["code"] == "PARTNER_RECEIPT_INVALID" and len(th.requests) == 2
    assert "CERT_IDENTITY_MISMATCH" in json.dumps(error) and "CN=my-asw" in json.dumps(error)


@pytest.mark.parametrize("scenario", ["trusted", "untrusted_key", "other_message", "other_content"])
async def test_signed_receipt_completes_a_delivery_only_when_it_verifies(
    tmp_path: Path, dev_pki: DevPki, scenario: str
) -> None:
    key = signer(dev_pki, "mard" if scenario == "untrusted_key" else "th-asw")
    mode = {"other_message": "bad-receipt-signed", "other_content": "wrong-digest"}.get(scenario, "ok")
    th = await Receiver(receipt_signer=key, mode=mode).start()
    try:
        config = secure_config(
            tmp_path,
            dev_pki,
            {"TH": th.url},
            per_destination={
                "TH": {
                    "receipt": "signed",
                    "trust": pinned(dev_pki, "th-asw"),
                    "retry": {"max_attempts": 2, "ttl": 60.0, "initial": 0.01, "max_wait": 0.02, "jitter": 0.0},
                }
            },
        )
        async with Gateway(config) as gw, aiohttp.ClientSession() as s:
            _, ack = await submit(s, gw.url, "MOIT", "ECO-1", "eco.form_d", signed_eco(dev_pki))
            final = State.ACKNOWLEDGED if scenario == "trusted" else State.DEAD

            async def settled() -> bool:
                rec = await gw.store.get(ack["id"])
                return rec is not None and rec.deliveries[0].state is final

            await eventually(settled)
            record = await gw.store.get(ack["id"])
    finally:
        await th.stop()
    assert record is not None
    delivery = record.deliveries[0]
    if scenario == "trusted":
        assert delivery.receipt and b"<ds:Signature" in delivery.receipt
    else:
        assert delivery.last_error["code"] == "PARTNER_RECEIPT_INVALID" and len(th.requests) == 2


# --------------------------------------------------------------------------- data intermediaries


def broker_config(tmp_path: Path, url: str) -> Any:
    return make_config(
        tmp_path,
        {"MARD": url},
        parties={
            "BROKER": {
                "tokens": [TOKENS["BROKER"]],
                "document_types": ["sps.registration"],
                "kind": "intermediary",
                "on_behalf_of": ["ENT-0100000001", "ENT-0200000002"],
            }
        },
        document_types={"sps.registration": {"roots": ["Registration"], "enterprise_paths": ["Registrant/TaxCode"]}},
    )


def registration(enterprise: str) -> bytes:
    """A registration (pass-through XML) naming the enterprise it is submitted for."""
    return f"<Registration><Registrant><TaxCode>{enterprise}</TaxCode></Registrant></Registration>".encode()


async def test_intermediary_submits_for_a_delegated_enterprise_and_the_message_records_both(tmp_path: Path) -> None:
    mard = await Receiver().start()
    try:
        async with Gateway(broker_config(tmp_path, mard.url)) as gw, aiohttp.ClientSession() as s:
            status, ack = await submit(
                s,
                gw.url,
                "BROKER",
                "REG-1",
                "sps.registration",
                registration("ENT-0100000001"),
                X_On_Behalf_Of="ENT-0100000001",
            )
            record = await read(s, gw, "BROKER", ack["id"])
            await eventually(lambda: len(mard.processed) == 1)
    finally:
        await mard.stop()
    assert status == 202 and ack["sender"] == "BROKER" and ack["on_behalf_of"] == "ENT-0100000001"
    assert record["sender"] == "BROKER" and record["on_behalf_of"] == "ENT-0100000001"
    assert record["history"][0]["detail"] == "submitted by BROKER on behalf of ENT-0100000001"


@pytest.mark.parametrize(
    "party, enterprise", [("BROKER", "ENT-0999999999"), ("BROKER", None), ("TRADER", "ENT-0100000001")]
)
async def test_submission_for_an_enterprise_not_delegated_is_rejected_with_auth_delegation_missing(
    tmp_path: Path, party: str, enterprise: str | None
) -> None:
    mard = await Receiver().start()
    headers = {"X_On_Behalf_Of": enterprise} if enterprise else {}
    try:
        async with Gateway(broker_config(tmp_path, mard.url)) as gw, aiohttp.ClientSession() as s:
            status, body = await submit(
                s, gw.url, party, "REG-1", "sps.registration", registration("ENT-0100000001"), **headers
            )
    finally:
        await mard.stop()
    assert status == 403 and body["error"]["code"] == "AUTH_DELEGATION_MISSING"
    assert body["error"]["field"] == "X-On-Behalf-Of" and mard.requests == []


def test_intermediary_without_delegations_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        make_config(tmp_path, {"TH": "http://127.0.0.1:9/x"}, parties={"BROKER": {"kind": "intermediary"}})
    assert err.value.field == "parties.BROKER.on_behalf_of"


def test_key_ring_from_configuration_signs_with_the_newest_active_key(tmp_path: Path, dev_pki: DevPki) -> None:
    """Prerequisite: two keys, the second active only from 2100. Predicate: the first one signs today."""
    from gateway.security import key_ring

    gw, moit = dev_pki.party("nsw-gateway"), dev_pki.party("moit")
    config = make_config(
        tmp_path,
        {"TH": "http://127.0.0.1:9/x"},
        gateway={"signing": "on"},
        extra={
            "signing": {
                "keys": [
                    {
                        "pkcs12": str(gw.p12_path),
                        "password": "changeit",
                        "active_from": dt.datetime(2000, 1, 1, tzinfo=UTC),
                    },
                    {
                        "key": str(moit.key_path),
                        "certificate": str(moit.cert_path),
                        "active_from": dt.datetime(2100, 1, 1, tzinfo=UTC),
                    },
                ]
            }
        },
    )
    assert key_ring(config).certificate == gw.cert


def test_signing_key_with_a_wrong_password_is_a_config_error_naming_the_key(tmp_path: Path, dev_pki: DevPki) -> None:
    from gateway.security import key_ring

    config = make_config(
        tmp_path,
        {"TH": "http://127.0.0.1:9/x"},
        gateway={"signing": "on"},
        extra={"signing": {"keys": [{"pkcs12": str(dev_pki.party("nsw-gateway").p12_path), "password": "wrong"}]}},
    )
    with pytest.raises(ConfigError) as err:
        key_ring(config)
    assert err.value.field == "signing.keys[0].pkcs12"


@pytest.mark.parametrize(
    "scenario, status, code",
    [
        ("revoked_by_ocsp", 403, "CERT_REVOKED"),
        ("responder_down_hard_fail", 403, "CERT_REVOCATION_UNAVAILABLE"),
        ("responder_down_soft_fail", 202, None),
    ],
)
async def test_ocsp_revocation_and_soft_fail_from_configuration(
    tmp_path: Path,
    dev_pki: DevPki,
    ocsp_responder: OcspResponder,
    scenario: str,
    status: int,  # noqa: F811
    code: str | None,
) -> None:
    """Prerequisite: MOIT's trust checks OCSP (real openssl responder on loopback, or a dead port).
    Predicate: a revoked signer is CERT_REVOKED; an unreachable responder fails hard unless soft_fail."""
    from signing.dev.pki import generate_key

    name = f"moit-ocsp-{scenario}"
    issued = dev_pki.issue(name, key=generate_key("p256"))
    if scenario == "revoked_by_ocsp":
        dev_pki.revoke(name, reason="key_compromise")
    url = ocsp_responder.url if scenario == "revoked_by_ocsp" else f"http://127.0.0.1:{free_loopback_port()}/"
    trust = anchored(dev_pki, name, ocsp=True, ocsp_responder=url, soft_fail=scenario.endswith("soft_fail"))
    data = sign_document(eco(), SoftwareSigner(issued.key, issued.cert, [dev_pki.issuing_cert]))
    th = await Receiver().start()
    try:
        config = secure_config(tmp_path, dev_pki, {"TH": th.url}, parties={"MOIT": {"trust": trust}})
        async with Gateway(config) as gw, aiohttp.ClientSession() as s:
            got, body = await submit(s, gw.url, "MOIT", "ECO-1", "eco.form_d", data)
    finally:
        await th.stop()
    assert got == status
    if code is not None:
        assert body["error"]["code"] == code
