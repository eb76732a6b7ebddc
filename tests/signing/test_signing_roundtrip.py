"""Sign then verify across every supported profile, key type and algorithm; what verify returns."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from lxml import etree

from gateway.errors import ConfigError, NswError
from helpers.signing import CORPUS
from signing import algorithms as A
from signing.dev.pki import generate_key, issue_certificate
from signing.keys import KeyRing, SoftwareSigner
from signing.policy import SigningProfile, VerifyPolicy
from signing.sign import sign_document
from signing.trust import TrustStore
from signing.verify import verify_document

DOC = b'<?xml version="1.0"?>\n<!-- exported by MOIT eCoSys --><co:Cert xmlns:co="urn:nsw:co" xmlns="urn:nsw:d" Id="co-7"><co:No>VN-SG 26/02/00007</co:No>\n  <Item n="1">Rice</Item></co:Cert>'


@pytest.fixture(scope="module")
def ca():
    key = generate_key("p256")
    return key, issue_certificate(None, key, "Roundtrip Root CA", key.public_key(), is_ca=True)


def _signer(ca, kind: str) -> SoftwareSigner:
    ca_key, ca_cert = ca
    key = generate_key(kind)
    return SoftwareSigner(key, issue_certificate(ca_cert, ca_key, f"MOIT {kind}", key.public_key()))


@pytest.fixture(scope="module")
def rsa(ca):
    return _signer(ca, "rsa2048")


@pytest.fixture(scope="module")
def p256(ca):
    return _signer(ca, "p256")


@pytest.fixture(scope="module")
def p384(ca):
    return _signer(ca, "p384")


RSA_METHODS = [A.RSA_SHA256, A.RSA_SHA384, A.RSA_SHA512, A.RSA_PSS_SHA256, A.RSA_PSS_SHA384, A.RSA_PSS_SHA512]


@pytest.mark.parametrize("c14n", [A.C14N_EXCLUSIVE, A.C14N_INCLUSIVE], ids=["exc", "inc"])
@pytest.mark.parametrize("method", RSA_METHODS, ids=lambda m: m.uri.rsplit("#", 1)[1])
@pytest.mark.parametrize("reference_id", [None, "co-7"], ids=["uri-empty", "uri-id"])
def test_rsa_signatures_round_trip(ca, rsa, c14n, method, reference_id):
    profile = SigningProfile(c14n=c14n, signature_method=method.uri)
    signed = sign_document(DOC, rsa, profile, reference_id=reference_id)
    result = verify_document(signed, trust=TrustStore("moit", anchors=(ca[1],), any_signer=True))
    assert result.signature_method == method.uri
    assert result.c14n_method == c14n
    assert result.reference_uri == ("" if reference_id is None else "#co-7")
    assert result.certificate == rsa.certificate
    assert result.chain == (rsa.certificate, ca[1])
    assert result.element.tag == "{urn:nsw:co}Cert"
    assert result.element.findtext("{urn:nsw:co}No") == "VN-SG 26/02/00007"


@pytest.mark.parametrize(
    "signer_name,method",
    [("p256", A.ECDSA_SHA256), ("p256", A.ECDSA_SHA384), ("p384", A.ECDSA_SHA384), ("p384", A.ECDSA_SHA512)],
)
@pytest.mark.parametrize("c14n", [A.C14N_EXCLUSIVE, A.C14N_INCLUSIVE], ids=["exc", "inc"])
def test_ecdsa_signatures_round_trip(request, ca, signer_name, method, c14n):
    signer = request.getfixturevalue(signer_name)
    signed = sign_document(DOC, signer, SigningProfile(c14n=c14n, signature_method=method.uri))
    result = verify_document(signed, trust=TrustStore("moit", anchors=(ca[1],), any_signer=True))
    assert result.signature_method == method.uri


def test_default_algorithm_follows_the_key(ca, rsa, p256, p384):
    trust = TrustStore("moit", anchors=(ca[1],), any_signer=True)
    got = {s: verify_document(sign_document(DOC, s), trust=trust).signature_method for s in (rsa, p256, p384)}
    assert got == {rsa: A.RSA_SHA256.uri, p256: A.ECDSA_SHA256.uri, p384: A.ECDSA_SHA384.uri}


def test_sha1_is_never_produced_by_default(rsa):
    with pytest.raises(NswError) as info:
        sign_document(DOC, rsa, SigningProfile(signature_method=A.RSA_SHA1.uri))
    assert info.value.code == "SIG_WEAK_ALGORITHM"
    with pytest.raises(NswError) as info:
        sign_document(DOC, rsa, SigningProfile(digest_method=A.SHA1_DIGEST.uri))
    assert info.value.code == "SIG_WEAK_ALGORITHM"


def test_vnsw_legacy_profile_on_the_captured_mard_sample(ca, rsa):
    """The real captured envelope (SOAP:Envelope root, empty <SystemSignature/>) signed the VNSW way."""
    sample = (CORPUS / "mard_BNNPTNT0600011_t10_f01_registration_NSW_to_BNN_sample.xml").read_bytes()
    signed = sign_document(sample, rsa, SigningProfile.vnsw_legacy())
    root = etree.fromstring(signed)
    system_signatures = root.findall("SystemSignature")
    assert len(system_signatures) == 1  # the existing element is reused, not duplicated
    assert system_signatures[0][0].tag == f"{{{A.DS_NS}}}Signature"
    trust = TrustStore("bnn", anchors=(ca[1],), any_signer=True)
    result = verify_document(signed, trust=trust, policy=VerifyPolicy.vnsw_legacy())
    assert result.element is not None and result.reference_uri == "" and result.c14n_method == A.C14N_INCLUSIVE
    assert result.element.findtext("Header/Subject/reference") == "BNNPTNT11190000272"
    # the default policy places signatures differently and says so
    with pytest.raises(NswError) as info:
        verify_document(signed, trust=trust)
    assert info.value.code == "SIG_LOCATION_INVALID"


def test_vnsw_legacy_sha1_only_when_the_party_allows_it(ca, rsa):
    sample = (CORPUS / "mard_BNNPTNT0600011_t10_f01_registration_NSW_to_BNN_sample.xml").read_bytes()
    signed = sign_document(sample, rsa, SigningProfile.vnsw_legacy(allow_sha1=True))
    trust = TrustStore("bnn", anchors=(ca[1],), any_signer=True)
    result = verify_document(signed, trust=trust, policy=VerifyPolicy.vnsw_legacy(allow_sha1=True))
    assert result.signature_method == A.RSA_SHA1.uri and result.digest_method == A.SHA1_DIGEST.uri
    with pytest.raises(NswError) as info:
        verify_document(signed, trust=trust, policy=VerifyPolicy.vnsw_legacy())
    assert info.value.code == "SIG_WEAK_ALGORITHM"


def test_tampering_the_legacy_envelope_is_detected(ca, rsa):
    sample = (CORPUS / "mard_BNNPTNT0600011_t10_f01_registration_NSW_to_BNN_sample.xml").read_bytes()
    signed = sign_document(sample, rsa, SigningProfile.vnsw_legacy())
    forged = signed.replace(b"<Tel>66225741</Tel>", b"<Tel>00000000</Tel>")
    assert forged != signed
    with pytest.raises(NswError) as info:
        verify_document(
            forged, trust=TrustStore("bnn", anchors=(ca[1],), any_signer=True), policy=VerifyPolicy.vnsw_legacy()
        )
    assert info.value.code == "SIG_DIGEST_MISMATCH"
    assert info.value.field == "/SOAP:Envelope"


def test_signing_an_element_by_id_requires_a_unique_id(rsa):
    doc = b"<Batch><C Id='x'/><C Id='x'/></Batch>"
    with pytest.raises(NswError) as info:
        sign_document(doc, rsa, reference_id="x")
    assert info.value.code == "SIG_MALFORMED"
    with pytest.raises(ConfigError):
        sign_document(DOC, rsa, SigningProfile.vnsw_legacy(), reference_id="co-7")


def test_verify_accepts_a_parsed_element_and_returns_that_tree(ca, rsa):
    from signing.xml import parse_xml

    root = parse_xml(sign_document(DOC, rsa))
    result = verify_document(root, trust=TrustStore("moit", anchors=(ca[1],), any_signer=True))
    assert result.element is root


def test_key_ring_switches_keys_at_activation(ca, rsa, p256):
    now = dt.datetime(2026, 11, 23, 12, tzinfo=dt.UTC)
    clock = {"now": now}
    ring = KeyRing(
        [(rsa, now - dt.timedelta(days=30)), (p256, now + dt.timedelta(hours=1))], clock=lambda: clock["now"]
    )
    trust = TrustStore("moit", anchors=(ca[1],), any_signer=True)
    assert verify_document(sign_document(DOC, ring), trust=trust).certificate == rsa.certificate
    clock["now"] = now + dt.timedelta(hours=2)
    assert verify_document(sign_document(DOC, ring), trust=trust).certificate == p256.certificate


def test_pkcs12_and_pem_signers_load_and_sign(tmp_path: Path, ca, rsa):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12

    key = rsa._key
    (tmp_path / "k.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"pw")
        )
    )
    (tmp_path / "c.pem").write_bytes(rsa.certificate.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "s.p12").write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"moit", key, rsa.certificate, [ca[1]], serialization.BestAvailableEncryption(b"pw")
        )
    )
    trust = TrustStore("moit", anchors=(ca[1],), any_signer=True)
    for signer in (
        SoftwareSigner.from_pem(tmp_path / "k.pem", tmp_path / "c.pem", password=b"pw"),
        SoftwareSigner.from_pkcs12(tmp_path / "s.p12", b"pw"),
    ):
        assert verify_document(sign_document(DOC, signer), trust=trust).certificate == rsa.certificate
    with pytest.raises(NswError) as info:
        SoftwareSigner.from_pkcs12(tmp_path / "s.p12", b"wrong")
    assert info.value.code == "KEY_LOAD_FAILED"
    with pytest.raises(NswError) as info:
        SoftwareSigner.from_pem(tmp_path / "k.pem", tmp_path / "c.pem", password=b"wrong")
    assert info.value.code == "KEY_LOAD_FAILED"


@pytest.mark.parametrize("method", [A.RSA_SHA1, A.RSA_SHA256, A.RSA_SHA384, A.RSA_SHA512], ids=lambda a: a.hash_name)
def test_rsa_signature_value_through_openssl_is_byte_for_byte_the_pkcs1_signature(rsa, method):
    # The signer computes RSA PKCS#1 v1.5 with xmlsec (which lets other threads run); the value must be
    # exactly what the key's own PKCS#1 v1.5 signature is, and verify with the certificate's public key.
    from cryptography.hazmat.primitives.asymmetric import padding

    data = b'<ds:SignedInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#">e-C/O VN-TH 26/02/00007</ds:SignedInfo>'
    value = rsa.sign(data, method)
    assert value == rsa._key.sign(data, padding.PKCS1v15(), method.hash())
    rsa.certificate.public_key().verify(value, data, padding.PKCS1v15(), method.hash())


def test_signer_refuses_a_key_that_does_not_match_its_certificate(rsa, p256):
    with pytest.raises(NswError) as info:
        SoftwareSigner(p256._key, rsa.certificate)
    assert info.value.code == "KEY_LOAD_FAILED"


def test_comment_inserted_into_signed_text_cannot_truncate_it(ca, rsa):
    """XML canonicalization ignores comments, so the signature stays valid; the text read must stay whole."""
    signed = sign_document(b"<Permit><Holder>admin.evil.example</Holder></Permit>", rsa)
    injected = signed.replace(b"admin.evil.example", b"admin<!-- -->.evil.example")
    result = verify_document(injected, trust=TrustStore("moit", anchors=(ca[1],), any_signer=True))
    assert result.element.findtext("Holder") == "admin.evil.example"
