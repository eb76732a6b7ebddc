"""The AS4 negative vectors of tests/vectors/as4 (see its README.md): each file, its exact error code and field."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from adapters.as4.messages import As4Partner, OutgoingMessage, check_receipt, open_user_message, verify_signal
from adapters.as4.pmode import PartyConfig, PMode, SecurityConfig
from gateway.errors import EncryptionMissing, NswError
from signing.trust import TrustStore
from signing.xenc import SoftwareDecrypter

HERE = Path(__file__).parents[1] / "vectors" / "as4"
ROOT = Path(__file__).parents[2]
MANIFEST = json.loads((HERE / "manifest.json").read_text(encoding="utf-8"))
AT = dt.datetime.fromisoformat(MANIFEST["verify_at"])


def _cert(path: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate((ROOT / path).read_bytes())


TRUST = TrustStore(
    MANIFEST["partner_party_id"],
    anchors=tuple(_cert(p) for p in MANIFEST["trust"]["anchors"]),
    intermediates=tuple(_cert(p) for p in MANIFEST["trust"]["intermediates"]),
    any_signer=True,
)
DECRYPTER = SoftwareDecrypter(
    serialization.load_pem_private_key((ROOT / MANIFEST["decryption_key"]).read_bytes(), None),  # type: ignore[arg-type]
    _cert(MANIFEST["signer"]),
)


def partner(*, require_encryption: bool = False) -> As4Partner:
    pmode = PMode(
        id="vectors",
        initiator=PartyConfig(party_id=MANIFEST["our_party_id"]),
        responder=PartyConfig(party_id=MANIFEST["partner_party_id"]),
        service="urn:asean:asw:services:eco",
        action="eco.form_d",
        security=SecurityConfig(require_encryption=require_encryption),
    )
    return As4Partner(pmode, TRUST)


def open_vector(entry: dict, **kwargs: object):  # type: ignore[no-untyped-def]
    p = kwargs.pop("partner", None) or partner()
    return open_user_message(
        (HERE / entry["file"]).read_bytes(),
        entry["content_type"],
        our_party_id=MANIFEST["our_party_id"],
        partner_for=lambda _: p,
        decrypter=DECRYPTER,
        at=AT,
    )


def _run(entry: dict) -> object:
    if entry["kind"] == "user":
        return open_vector(entry)
    return verify_signal((HERE / entry["file"]).read_bytes(), entry["content_type"], trust=TRUST, at=AT)


@pytest.mark.parametrize("entry", [v for v in MANIFEST["vectors"] if v["expect"] != "ok"], ids=lambda v: v["file"])
def test_negative_vector_is_refused_with_its_code(entry: dict) -> None:
    with pytest.raises(NswError) as caught:
        _run(entry)
    assert caught.value.code == entry["expect"], str(caught.value)
    if "field" in entry:
        assert caught.value.field == entry["field"]
    assert caught.value.field, "every refusal names the element at fault"


@pytest.mark.parametrize("entry", [v for v in MANIFEST["vectors"] if v["expect"] == "ok"], ids=lambda v: v["file"])
def test_valid_vector_verifies(entry: dict) -> None:
    result = _run(entry)
    assert result is not None


def test_valid_messages_carry_the_form_d_and_the_receipt_acknowledges_exactly_the_signed_references() -> None:
    entries = {v["file"]: v for v in MANIFEST["vectors"]}
    plain = open_vector(entries["valid_user_message.mime"])
    encrypted = open_vector(entries["valid_encrypted_user_message.mime"])
    form_d = (ROOT / "tests/vectors/mappings/formd/form_d_two_items.xml").read_bytes()
    assert list(plain.payloads.values()) == [form_d] == list(encrypted.payloads.values())
    receipt = verify_signal((HERE / "valid_receipt.xml").read_bytes(), "application/soap+xml", trust=TRUST, at=AT)
    sent = OutgoingMessage(plain.user_message, b"", "", plain.verification.references)
    check_receipt(receipt, sent)
    with pytest.raises(NswError) as caught:
        check_receipt(receipt, OutgoingMessage(encrypted.user_message, b"", "", encrypted.verification.references))
    assert caught.value.code == "PARTNER_RECEIPT_INVALID"


def test_unencrypted_payload_is_refused_when_the_pmode_requires_encryption() -> None:
    entry = next(v for v in MANIFEST["vectors"] if v["file"] == "valid_user_message.mime")
    with pytest.raises(EncryptionMissing) as caught:
        open_vector(entry, partner=partner(require_encryption=True))
    assert caught.value.code == "ENC_MISSING" and caught.value.field == "cid:form-d@th-asw.example"


def test_every_vector_file_is_in_the_manifest_and_described_in_the_readme() -> None:
    listed = {v["file"] for v in MANIFEST["vectors"]}
    on_disk = {p.name for p in HERE.iterdir() if p.suffix in (".mime", ".xml")}
    assert listed == on_disk
    readme = (HERE / "README.md").read_text(encoding="utf-8")
    assert all(name in readme for name in listed)
