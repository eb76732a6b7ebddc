"""Trust stores at work in verification: anchors, pins, rotation, CRL and a real OCSP responder."""

from __future__ import annotations

import datetime as dt

import pytest

from gateway.errors import NswError
from signing.dev.pki import generate_key, issue_certificate
from signing.keys import SoftwareSigner
from signing.policy import VerifyPolicy
from signing.revocation import CrlChecker, FirstAvailable, OcspChecker
from signing.sign import sign_document
from signing.trust import PinnedCertificate, TrustRegistry, TrustStore
from signing.verify import verify_document

DOC = b"<Permit xmlns='urn:nsw:permit:1'><No>BNN-2026-000123</No><Decision>APPROVED</Decision></Permit>"
UTC = dt.UTC


def _signer(pki, name):
    party = pki.party(name)
    return SoftwareSigner(party.key, party.cert, [pki.issuing_cert])


def _code(fn) -> str:
    with pytest.raises(NswError) as info:
        fn()
    return info.value.code


def test_chain_through_intermediate_presented_in_keyinfo(dev_pki):
    signed = sign_document(DOC, _signer(dev_pki, "mard"))
    result = verify_document(signed, trust=TrustStore("mard", anchors=(dev_pki.root_cert,), any_signer=True))
    assert [c.subject for c in result.chain] == [
        dev_pki.party("mard").cert.subject,
        dev_pki.issuing_cert.subject,
        dev_pki.root_cert.subject,
    ]


def test_chain_through_intermediate_known_to_the_store(dev_pki):
    party = dev_pki.party("mard")
    signed = sign_document(DOC, SoftwareSigner(party.key, party.cert))  # leaf only in KeyInfo
    assert (
        _code(lambda: verify_document(signed, trust=TrustStore("mard", anchors=(dev_pki.root_cert,), any_signer=True)))
        == "CERT_UNTRUSTED"
    )
    store = TrustStore("mard", anchors=(dev_pki.root_cert,), intermediates=(dev_pki.issuing_cert,), any_signer=True)
    assert len(verify_document(signed, trust=store).chain) == 3


def test_another_partys_anchor_does_not_vouch(dev_pki):
    other_key = generate_key("p256")
    other_root = issue_certificate(None, other_key, "Thai NSW Root", other_key.public_key(), is_ca=True)
    signed = sign_document(DOC, _signer(dev_pki, "th-asw"))
    assert (
        _code(lambda: verify_document(signed, trust=TrustStore("th-asw", anchors=(other_root,), any_signer=True)))
        == "CERT_UNTRUSTED"
    )


def test_a_ca_certificate_cannot_sign_documents(dev_pki):
    signer = SoftwareSigner(dev_pki.issuing_key, dev_pki.issuing_cert)
    signed = sign_document(DOC, signer)
    assert (
        _code(lambda: verify_document(signed, trust=TrustStore("x", anchors=(dev_pki.root_cert,), any_signer=True)))
        == "CERT_KEY_USAGE"
    )


def test_pinned_certificate_without_any_ca(dev_pki):
    party = dev_pki.party("customs")
    signed = sign_document(DOC, SoftwareSigner(party.key, party.cert))
    store = TrustStore("customs", pinned=(PinnedCertificate(party.cert),))
    assert verify_document(signed, trust=store).certificate == party.cert
    other = dev_pki.party("moit")
    assert (
        _code(lambda: verify_document(sign_document(DOC, SoftwareSigner(other.key, other.cert)), trust=store))
        == "CERT_UNTRUSTED"
    )


def test_key_rotation_overlap_window(dev_pki):
    old = dev_pki.party("sg-asw")
    new_key = generate_key("p256")
    new_cert = issue_certificate(dev_pki.issuing_cert, dev_pki.issuing_key, "sg-asw 2027", new_key.public_key())
    t0 = dt.datetime.now(UTC)
    store = TrustStore("sg-asw", pinned=(PinnedCertificate(old.cert),)).with_rotation(
        new_cert, overlap=dt.timedelta(days=7), now=t0
    )
    signed_old = sign_document(DOC, SoftwareSigner(old.key, old.cert))
    signed_new = sign_document(DOC, SoftwareSigner(new_key, new_cert))
    during = t0 + dt.timedelta(days=3)
    assert verify_document(signed_old, trust=store, at=during).certificate == old.cert
    assert verify_document(signed_new, trust=store, at=during).certificate == new_cert
    after = t0 + dt.timedelta(days=8)
    assert _code(lambda: verify_document(signed_old, trust=store, at=after)) == "CERT_ROTATED_OUT"
    assert verify_document(signed_new, trust=store, at=after).certificate == new_cert
    before = t0 - dt.timedelta(days=1)
    assert _code(lambda: verify_document(signed_new, trust=store, at=before)) == "CERT_UNTRUSTED"


def test_keyinfo_without_certificate_uses_the_single_live_pin(dev_pki):
    from lxml import etree

    party = dev_pki.party("my-asw")
    root = etree.fromstring(sign_document(DOC, SoftwareSigner(party.key, party.cert)))
    key_info = root.find(".//{http://www.w3.org/2000/09/xmldsig#}KeyInfo")
    key_info.getparent().remove(key_info)
    bare = etree.tostring(root)
    assert (
        verify_document(bare, trust=TrustStore("my-asw", pinned=(PinnedCertificate(party.cert),))).certificate
        == party.cert
    )
    assert (
        _code(lambda: verify_document(bare, trust=TrustStore("my-asw", anchors=(dev_pki.root_cert,), any_signer=True)))
        == "CERT_MISSING"
    )


def test_revoked_signer_rejected_by_real_ocsp_responder(dev_pki, ocsp_responder):
    key = generate_key("p256")
    issued = dev_pki.issue("trust-test-revoked-ocsp", key=key, ocsp_url=ocsp_responder.url)
    signed = sign_document(DOC, SoftwareSigner(key, issued.cert, [dev_pki.issuing_cert]))
    store = TrustStore(
        "moit",
        anchors=(dev_pki.root_cert,),
        revocation=FirstAvailable([OcspChecker(), CrlChecker.from_files([dev_pki.root_crl_path])]),
        any_signer=True,
    )
    assert verify_document(signed, trust=store).certificate == issued.cert  # good before revocation
    dev_pki.revoke("trust-test-revoked-ocsp", reason="key_compromise")
    fresh = TrustStore(
        "moit",
        anchors=(dev_pki.root_cert,),
        revocation=FirstAvailable([OcspChecker(), CrlChecker.from_files([dev_pki.root_crl_path])]),
        any_signer=True,
    )
    with pytest.raises(NswError) as info:
        verify_document(signed, trust=fresh)
    assert info.value.code == "CERT_REVOKED"
    assert info.value.details["source"].lower().startswith("ocsp")


def test_revocation_unavailable_is_hard_fail_by_default(dev_pki):
    from helpers.ocsp import free_loopback_port

    key = generate_key("p256")
    dead = f"http://127.0.0.1:{free_loopback_port()}/"
    issued = dev_pki.issue("trust-test-dead-responder", key=key, ocsp_url=dead)
    signed = sign_document(DOC, SoftwareSigner(key, issued.cert, [dev_pki.issuing_cert]))
    store = TrustStore("moit", anchors=(dev_pki.root_cert,), revocation=OcspChecker(timeout=2.0), any_signer=True)
    assert _code(lambda: verify_document(signed, trust=store)) == "CERT_REVOCATION_UNAVAILABLE"


def test_revoked_signer_rejected_by_crl(dev_pki):
    key = generate_key("p256")
    dev_pki.issue("trust-test-revoked-crl", key=key)
    issued = dev_pki.party("trust-test-revoked-crl")
    signed = sign_document(DOC, SoftwareSigner(key, issued.cert, [dev_pki.issuing_cert]))
    dev_pki.revoke("trust-test-revoked-crl")
    store = TrustStore(
        "moit",
        anchors=(dev_pki.root_cert,),
        revocation=CrlChecker.from_files([dev_pki.crl_path, dev_pki.root_crl_path]),
        any_signer=True,
    )
    assert _code(lambda: verify_document(signed, trust=store)) == "CERT_REVOKED"


def test_registry_knows_only_configured_parties(dev_pki):
    registry = TrustRegistry({"moit": TrustStore("moit", anchors=(dev_pki.root_cert,), any_signer=True)})
    assert registry.for_party("moit").party == "moit"
    assert _code(lambda: registry.for_party("mof")) == "CERT_UNTRUSTED"


def test_trust_store_needs_an_anchor_or_a_pin():
    assert _code(lambda: TrustStore("empty")) == "CONFIG_INVALID"


def test_expired_certificate_in_the_chain_is_named(dev_pki):
    root_key = generate_key("p256")
    now = dt.datetime.now(UTC)
    root = issue_certificate(
        None,
        root_key,
        "Old Root",
        root_key.public_key(),
        is_ca=True,
        not_before=now - dt.timedelta(days=3650),
        not_after=now + dt.timedelta(days=3650),
    )
    mid_key = generate_key("p256")
    mid = issue_certificate(
        root,
        root_key,
        "Lapsed Issuing CA",
        mid_key.public_key(),
        is_ca=True,
        not_before=now - dt.timedelta(days=800),
        not_after=now - dt.timedelta(days=1),
    )
    leaf_key = generate_key("p256")
    leaf = issue_certificate(mid, mid_key, "Signer", leaf_key.public_key())
    signed = sign_document(DOC, SoftwareSigner(leaf_key, leaf, [mid]))
    with pytest.raises(NswError) as info:
        verify_document(signed, trust=TrustStore("x", anchors=(root,), any_signer=True))
    assert info.value.code == "CERT_EXPIRED"
    assert "Lapsed Issuing CA" in info.value.message


def test_clock_skew_tolerance(dev_pki):
    key = generate_key("p256")
    start = dt.datetime.now(UTC) + dt.timedelta(minutes=2)
    cert = issue_certificate(dev_pki.issuing_cert, dev_pki.issuing_key, "Fresh", key.public_key(), not_before=start)
    signed = sign_document(DOC, SoftwareSigner(key, cert, [dev_pki.issuing_cert]))
    store = TrustStore("x", anchors=(dev_pki.root_cert,), any_signer=True)
    assert verify_document(signed, trust=store).certificate == cert  # 2 minutes early is inside the 5-minute skew
    strict = VerifyPolicy(clock_skew=dt.timedelta(0))
    assert _code(lambda: verify_document(signed, trust=store, policy=strict)) == "CERT_NOT_YET_VALID"
