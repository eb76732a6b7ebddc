"""Certificates bound to parties: each kind of signer rule matching and not matching, and the trust store
refusing a certificate of the party's CA that is not one of its signers."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.errors import CertificateIdentityMismatch, ConfigError
from helpers.ocsp import dev_pki  # noqa: F401
from signing.dev.pki import DevPki
from signing.identity import (
    SignerIdentity,
    SignerRule,
    attribute_oid,
    certificate_fingerprint,
    public_key_fingerprint,
)
from signing.policy import VerifyPolicy
from signing.trust import PinnedCertificate, TrustStore

_CA_KEY = ec.generate_private_key(ec.SECP256R1())


def _cert(
    *attributes: tuple[x509.ObjectIdentifier, str], san: list[x509.GeneralName] | None = None
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(oid, value) for oid, value in attributes]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "National CA")]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
    )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return builder.sign(_CA_KEY, hashes.SHA256())


MARD = _cert(
    (NameOID.COUNTRY_NAME, "VN"),
    (NameOID.ORGANIZATION_NAME, "Ministry of Agriculture and Rural Development"),
    (NameOID.ORGANIZATION_IDENTIFIER, "NTRVN-0100000001"),
    (NameOID.SERIAL_NUMBER, "MST:0100000001"),
    (NameOID.COMMON_NAME, "mard-signer"),
    san=[
        x509.DNSName("nsw.mard.gov.vn"),
        x509.RFC822Name("nsw@mard.gov.vn"),
        x509.UniformResourceIdentifier("urn:vnsw:party:BNNPTNT"),
        x509.DirectoryName(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "BNNPTNT")])),
    ],
)
ENTERPRISE = _cert(
    (NameOID.COUNTRY_NAME, "VN"),
    (NameOID.ORGANIZATION_NAME, "Minh Phu Seafood JSC"),
    (NameOID.ORGANIZATION_IDENTIFIER, "NTRVN-0300000001"),
    (NameOID.SERIAL_NUMBER, "MST:0300000001"),
    (NameOID.COMMON_NAME, "mard-signer"),
    san=[x509.DNSName("minhphu.vn"), x509.RFC822Name("it@minhphu.vn")],
)


def _dir(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


@pytest.mark.parametrize(
    "rule",
    [
        SignerRule(subject=((attribute_oid("organizationIdentifier"), "NTRVN-0100000001"),)),
        SignerRule(subject=((attribute_oid("serialNumber"), "MST:0100000001"),)),
        SignerRule(
            subject=(
                (attribute_oid("O"), "ministry of agriculture and  rural development"),
                (attribute_oid("CN"), "mard-signer"),
            )
        ),
        SignerRule(dn=MARD.subject),
        SignerRule(dns=("other.gov.vn", "NSW.MARD.GOV.VN.")),
        SignerRule(email=("nsw@mard.gov.vn",)),
        SignerRule(uri=("urn:vnsw:party:BNNPTNT",)),
        SignerRule(directory_name=(_dir("bnnptnt"),)),
        SignerRule(certificate_sha256=(certificate_fingerprint(MARD).upper(),)),
        SignerRule(public_key_sha256=(public_key_fingerprint(MARD),)),
    ],
    ids=[
        "organizationIdentifier",
        "serialNumber",
        "O-and-CN-case-and-space-folded",
        "whole-dn",
        "san-dns",
        "san-email",
        "san-uri",
        "san-directory-name",
        "certificate-sha256",
        "public-key-sha256",
    ],
)
def test_each_kind_of_signer_rule_matches_the_partys_certificate_and_not_another_of_the_same_ca(
    rule: SignerRule,
) -> None:
    identity = SignerIdentity((rule,))
    assert identity.matches(MARD)
    assert not identity.matches(ENTERPRISE)
    with pytest.raises(CertificateIdentityMismatch) as caught:
        identity.check(ENTERPRISE, party="MARD")
    assert caught.value.code == "CERT_IDENTITY_MISMATCH" and caught.value.http_status == 403
    assert caught.value.details["party"] == "MARD"
    assert caught.value.details["subject"] == ENTERPRISE.subject.rfc4514_string()


def test_a_rule_holds_only_when_every_criterion_it_states_holds() -> None:
    rule = SignerRule(subject=((attribute_oid("CN"), "mard-signer"),), dns=("nsw.mard.gov.vn",))
    assert rule.matches(MARD) and not rule.matches(ENTERPRISE)  # same CN, not the SAN


def test_a_san_rule_does_not_match_a_certificate_without_subject_alt_names() -> None:
    bare = _cert((NameOID.COMMON_NAME, "mard-signer"))
    assert not SignerRule(dns=("nsw.mard.gov.vn",)).matches(bare)
    assert not SignerRule(email=("nsw@mard.gov.vn",)).matches(bare)


def test_a_certificate_satisfying_one_of_the_rules_is_a_signer() -> None:
    identity = SignerIdentity((SignerRule(dns=("nowhere.example",)), SignerRule(email=("it@minhphu.vn",))))
    assert identity.matches(ENTERPRISE) and not identity.matches(MARD)


def test_an_unknown_subject_attribute_name_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown subject attribute 'CNN'"):
        attribute_oid("CNN")
    assert attribute_oid("2.5.4.97") == NameOID.ORGANIZATION_IDENTIFIER


def test_trust_store_with_anchors_and_no_signers_is_refused_unless_any_signer(dev_pki: DevPki) -> None:
    with pytest.raises(ConfigError) as caught:
        TrustStore("MARD", anchors=(dev_pki.root_cert,))
    assert caught.value.field == "parties.MARD.trust.signers"
    assert TrustStore("MARD", anchors=(dev_pki.root_cert,), any_signer=True).any_signer
    assert TrustStore("MARD", pinned=(PinnedCertificate(dev_pki.party("mard").cert),)).signers is None


def test_another_ministrys_certificate_on_a_valid_path_is_refused_with_cert_identity_mismatch(
    dev_pki: DevPki,
) -> None:
    """Prerequisite: MARD anchored at the dev root, signers its subject CN. Predicate: MOIT's certificate of the
    same CA passes path validation and is refused for MARD; MARD's own is accepted and returned as the signer."""
    store = TrustStore(
        "MARD",
        anchors=(dev_pki.root_cert,),
        intermediates=(dev_pki.issuing_cert,),
        signers=SignerIdentity.subject(CN="mard", O="NSW Development PKI"),
    )
    moit, mard = dev_pki.party("moit").cert, dev_pki.party("mard").cert
    with pytest.raises(CertificateIdentityMismatch) as caught:
        store.validate(moit, policy=VerifyPolicy())
    assert "'MARD'" in caught.value.message and moit.subject.rfc4514_string() in caught.value.message
    assert store.validate(mard, policy=VerifyPolicy())[0] == mard
    with pytest.raises(CertificateIdentityMismatch):  # the path cache does not skip the identity check
        store.validate(moit, policy=VerifyPolicy())


def test_a_pinned_certificate_is_the_partys_whatever_the_signers_of_its_anchors(dev_pki: DevPki) -> None:
    customs = dev_pki.party("customs").cert
    store = TrustStore(
        "MARD",
        anchors=(dev_pki.root_cert,),
        intermediates=(dev_pki.issuing_cert,),
        pinned=(PinnedCertificate(customs),),
        signers=SignerIdentity.subject(CN="mard"),
    )
    assert store.validate(customs, policy=VerifyPolicy())[0] == customs
