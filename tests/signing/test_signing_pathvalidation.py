"""RFC 5280 path validation of signer certificates: basicConstraints path length, name constraints, unknown
critical extensions, minimum key strength; RSA-PSS salt length.

Each rule is asserted once at the trust store, over a corpus of generated chains whose verdicts are also
compared with two independent validators: ``cryptography.x509.verification`` with the store's profile
(the store's own rules on top of it are marked ``own``) and ``openssl verify`` (when on PATH; its
differences of policy are marked). The weak-key, path-length and critical-extension refusals are then
asserted at the HTTP entry point of a real gateway.
"""

from __future__ import annotations

import base64
import datetime as dt
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError
from lxml import etree

from gateway.api import Gateway
from gateway.errors import NswError
from helpers.gateway import make_config, submit
from signing.algorithms import C14N_EXCLUSIVE, DS_NS, PSS_NS, RSA_PSS_SHA256, SignatureAlgorithm, canonicalize
from signing.keys import PrivateKey, Signer, SoftwareSigner, verify_raw
from signing.policy import SigningProfile, VerifyPolicy
from signing.sign import sign_document
from signing.trust import CA_EXTENSION_POLICY, EE_EXTENSION_POLICY, PinnedCertificate, TrustStore
from signing.verify import verify_document

UTC = dt.UTC
NOW = dt.datetime.now(UTC).replace(microsecond=0)
DOC = b"<Permit xmlns='urn:nsw:permit:1'><No>BNN-2026-000123</No><Decision>APPROVED</Decision></Permit>"
UNKNOWN_OID = x509.ObjectIdentifier("1.3.6.1.4.1.99999.1")


# --------------------------------------------------------------------------- a small certificate factory


def p256() -> PrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def name(cn: str, *, country: str = "VN", org: str = "NSW Test PKI", email: str | None = None) -> x509.Name:
    attrs = [
        x509.NameAttribute(NameOID.COUNTRY_NAME, country),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
    ]
    if email:
        attrs.append(x509.NameAttribute(NameOID.EMAIL_ADDRESS, email))
    return x509.Name(attrs)


@dataclass
class Node:
    key: Any
    cert: x509.Certificate


_CA_USAGE = x509.KeyUsage(True, False, False, False, False, True, True, False, False)
_SIGNING_USAGE = x509.KeyUsage(True, True, False, False, False, False, False, False, False)


def make(
    issuer: Node | None,
    subject: x509.Name | str,
    *,
    key: Any = None,
    ca: bool = False,
    path_length: int | None = None,
    extensions: list[tuple[x509.ExtensionType, bool]] | None = None,
    bc_critical: bool = True,
    key_usage: x509.KeyUsage | None | bool = True,
    ids: bool = True,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> Node:
    """A certificate: self-signed without ``issuer``; defaults are a well-formed CA or signer certificate."""
    key = key if key is not None else p256()
    subject = name(subject) if isinstance(subject, str) else subject
    signing_key = issuer.key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or NOW - dt.timedelta(days=30))
        .not_valid_after(not_after or NOW + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=bc_critical)
    )
    if key_usage is True:
        builder = builder.add_extension(_CA_USAGE if ca else _SIGNING_USAGE, critical=True)
    elif isinstance(key_usage, x509.KeyUsage):
        builder = builder.add_extension(key_usage, critical=True)
    if ids:
        builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()), critical=False
        )
    for ext, critical in extensions or ():
        builder = builder.add_extension(ext, critical=critical)
    return Node(key, builder.sign(signing_key, hashes.SHA256()))


def constraints(
    permitted: list[x509.GeneralName] | None = None, excluded: list[x509.GeneralName] | None = None
) -> tuple[x509.ExtensionType, bool]:
    return x509.NameConstraints(permitted, excluded), True


def san(*names: x509.GeneralName) -> tuple[x509.ExtensionType, bool]:
    return x509.SubjectAlternativeName(list(names)), False


def dirname(country: str, org: str | None = None) -> x509.DirectoryName:
    attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, country)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.DirectoryName(x509.Name(attrs))


def unknown_extension(critical: bool = True) -> tuple[x509.ExtensionType, bool]:
    return x509.UnrecognizedExtension(UNKNOWN_OID, b"\x05\x00"), critical


@dataclass
class Chain:
    """A leaf, the certificates presented with it (KeyInfo), and the anchors of the party."""

    leaf: Node
    presented: list[x509.Certificate] = field(default_factory=list)
    anchors: list[x509.Certificate] = field(default_factory=list)

    def store(self) -> TrustStore:
        return TrustStore("partner", anchors=tuple(self.anchors), any_signer=True)


def through(*nodes: Node) -> Chain:
    """``through(root, ca1, ..., leaf)``: the leaf presented with the CAs between it and the root."""
    return Chain(nodes[-1], [n.cert for n in nodes[1:-1]], [nodes[0].cert])


def root(cn: str = "Root", **kw: Any) -> Node:
    return make(None, cn, ca=True, **kw)


def one_ca(leaf: Callable[[Node], Node], **ca_kw: Any) -> Chain:
    r = root()
    ca = make(r, "Issuing CA", ca=True, **ca_kw)
    return through(r, ca, leaf(ca))


# --------------------------------------------------------------------------- the corpus


def _good_two_level() -> Chain:
    return one_ca(lambda ca: make(ca, "Signer"))


def _good_field_profile() -> Chain:
    """As national document-signing CAs issue them: no key identifiers, no SAN, basicConstraints of the CA not
    critical, no keyUsage on the CAs."""
    r = make(None, "Old Root", ca=True, ids=False, key_usage=None, bc_critical=False)
    ca = make(r, "Old Issuing CA", ca=True, ids=False, key_usage=None, bc_critical=False)
    return through(r, ca, make(ca, "Signer", ids=False))


def _good_rsa_and_large_curves() -> Chain:
    r = root(key=rsa.generate_private_key(65537, 3072))
    ca = make(r, "P-521 CA", ca=True, key=ec.generate_private_key(ec.SECP521R1()))
    return through(r, ca, make(ca, "P-384 Signer", key=ec.generate_private_key(ec.SECP384R1())))


def _path_length_exceeded() -> Chain:
    r = root()
    ca0 = make(r, "Policy CA", ca=True, path_length=0)
    ca1 = make(ca0, "Issuing CA", ca=True)
    return through(r, ca0, ca1, make(ca1, "Signer"))


def _path_length_respected() -> Chain:
    r = root()
    ca0 = make(r, "Policy CA", ca=True, path_length=1)
    ca1 = make(ca0, "Issuing CA", ca=True, path_length=0)
    return through(r, ca0, ca1, make(ca1, "Signer"))


def _intermediate_not_a_ca() -> Chain:
    r = root()
    ca = make(r, "Not A CA", key_usage=_CA_USAGE)
    return through(r, ca, make(ca, "Signer"))


def _intermediate_without_key_cert_sign() -> Chain:
    ku = x509.KeyUsage(True, False, False, False, False, False, True, False, False)
    return one_ca(lambda ca: make(ca, "Signer"), key_usage=ku)


def _intermediate_expired() -> Chain:
    r = root()
    ca = make(r, "Lapsed CA", ca=True, not_before=NOW - dt.timedelta(days=400), not_after=NOW - dt.timedelta(days=1))
    return through(r, ca, make(ca, "Signer", not_before=NOW - dt.timedelta(days=30)))


def _wrong_issuer_signature() -> Chain:
    r = root()
    impostor = Node(p256(), r.cert)  # same name as the root, another key
    return Chain(make(impostor, "Signer"), [], [r.cert])


def _root_path_length_exceeded() -> Chain:
    r = root(path_length=0)
    ca = make(r, "Issuing CA", ca=True)
    return through(r, ca, make(ca, "Signer"))


def _unknown_critical_extension_on_anchor() -> Chain:
    r = root(extensions=[unknown_extension()])
    return Chain(make(r, "Signer"), [], [r.cert])


def _ca_certificate_as_signer() -> Chain:
    r = root()
    return Chain(make(r, "Signing CA", ca=True), [], [r.cert])


def _unknown_critical_extension_on_leaf() -> Chain:
    return one_ca(lambda ca: make(ca, "Signer", extensions=[unknown_extension()]))


def _unknown_critical_extension_on_ca() -> Chain:
    return one_ca(lambda ca: make(ca, "Signer"), extensions=[unknown_extension()])


def _unknown_non_critical_extension() -> Chain:
    return one_ca(lambda ca: make(ca, "Signer", extensions=[unknown_extension(critical=False)]))


def _critical_certificate_policies() -> Chain:
    policies = x509.CertificatePolicies([x509.PolicyInformation(x509.ObjectIdentifier("1.3.6.1.4.1.99999.2"), None)])
    return one_ca(lambda ca: make(ca, "Signer", extensions=[(policies, True)]))


def _dns_constraint_violated() -> Chain:
    return one_ca(
        lambda ca: make(ca, "Signer", extensions=[san(x509.DNSName("evil.example"))]),
        extensions=[constraints([x509.DNSName("moit.gov.vn")])],
    )


def _dns_constraint_respected() -> Chain:
    return one_ca(
        lambda ca: make(ca, "Signer", extensions=[san(x509.DNSName("ecosys.moit.gov.vn"))]),
        extensions=[constraints([x509.DNSName("moit.gov.vn")])],
    )


def _directory_name_outside_permitted() -> Chain:
    return one_ca(
        lambda ca: make(ca, name("Signer", country="TH", org="Siam Ltd")),
        extensions=[constraints([dirname("VN", "NSW Test PKI")])],
    )


def _directory_name_inside_permitted() -> Chain:
    return one_ca(
        lambda ca: make(ca, name("Signer", org="nsw   TEST pki")),  # RFC 4518: case and inner spaces ignored
        extensions=[constraints([dirname("VN", "NSW Test PKI")])],
    )


def _directory_name_excluded() -> Chain:
    return one_ca(
        lambda ca: make(ca, name("Signer", country="TH")),
        extensions=[constraints(None, [dirname("TH")])],
    )


def _directory_name_in_subject_alt_name_excluded() -> Chain:
    return one_ca(
        lambda ca: make(ca, "Signer", extensions=[san(dirname("TH", "Siam Ltd"))]),
        extensions=[constraints(None, [dirname("TH")])],
    )


def _email_in_subject_outside_permitted() -> Chain:
    return one_ca(
        lambda ca: make(ca, name("Signer", email="clerk@evil.example")),
        extensions=[constraints([x509.RFC822Name("moit.gov.vn")])],
    )


def _email_in_subject_inside_permitted() -> Chain:
    return one_ca(
        lambda ca: make(ca, name("Signer", email="clerk@moit.gov.vn")),
        extensions=[constraints([x509.RFC822Name("moit.gov.vn")])],
    )


def _weak(key_factory: Callable[[], Any], where: str) -> Callable[[], Chain]:
    def build() -> Chain:
        r = root()
        ca = make(r, "Issuing CA", ca=True, key=key_factory() if where == "ca" else None)
        return through(r, ca, make(ca, "Signer", key=key_factory() if where == "leaf" else None))

    return build


def _rsa1024() -> Any:
    return rsa.generate_private_key(65537, 1024)


def _p192() -> Any:
    return ec.generate_private_key(ec.SECP192R1())


def _secp256k1() -> Any:
    return ec.generate_private_key(ec.SECP256K1())


@dataclass(frozen=True)
class Case:
    build: Callable[[], Chain]
    code: str | None
    library: str = "agrees"
    """``agrees``, or ``accepts`` where the store's own rule (leaf key, subject names) refuses on top."""
    openssl: str = "agrees"
    """``agrees``, or ``accepts`` where OpenSSL's policy is knowingly more lenient (secp256k1 has 128-bit
    security; keyUsage, basicConstraints criticality and certificate policies are not checked by default)."""


CORPUS: dict[str, Case] = {
    "good_two_level_chain": Case(_good_two_level, None),
    "good_field_profile_without_key_ids_or_ca_key_usage": Case(_good_field_profile, None),
    "good_rsa3072_root_p521_ca_p384_signer": Case(_good_rsa_and_large_curves, None),
    "path_length_respected": Case(_path_length_respected, None),
    "path_length_exceeded": Case(_path_length_exceeded, "CERT_PATH_LENGTH"),
    "anchor_path_length_exceeded": Case(_root_path_length_exceeded, "CERT_PATH_LENGTH"),
    "ca_certificate_as_signer": Case(_ca_certificate_as_signer, "CERT_KEY_USAGE", library="accepts", openssl="accepts"),
    "unknown_critical_extension_on_anchor": Case(_unknown_critical_extension_on_anchor, "CERT_CRITICAL_EXTENSION"),
    "intermediate_not_a_ca": Case(_intermediate_not_a_ca, "CERT_UNTRUSTED"),
    "intermediate_without_key_cert_sign": Case(_intermediate_without_key_cert_sign, "CERT_UNTRUSTED"),
    "intermediate_expired": Case(_intermediate_expired, "CERT_EXPIRED"),
    "wrong_issuer_signature": Case(_wrong_issuer_signature, "CERT_UNTRUSTED"),
    "unknown_critical_extension_on_leaf": Case(_unknown_critical_extension_on_leaf, "CERT_CRITICAL_EXTENSION"),
    "unknown_critical_extension_on_ca": Case(_unknown_critical_extension_on_ca, "CERT_CRITICAL_EXTENSION"),
    "unknown_non_critical_extension": Case(_unknown_non_critical_extension, None),
    "critical_certificate_policies_not_processed": Case(
        _critical_certificate_policies, "CERT_CRITICAL_EXTENSION", openssl="accepts"
    ),
    "dns_name_constraint_violated": Case(_dns_constraint_violated, "CERT_NAME_CONSTRAINTS"),
    "dns_name_constraint_respected": Case(_dns_constraint_respected, None),
    "directory_name_outside_permitted_subtree": Case(
        _directory_name_outside_permitted, "CERT_NAME_CONSTRAINTS", library="accepts"
    ),
    "directory_name_inside_permitted_subtree": Case(_directory_name_inside_permitted, None),
    "directory_name_in_excluded_subtree": Case(_directory_name_excluded, "CERT_NAME_CONSTRAINTS", library="accepts"),
    # The library refuses any directoryName in subjectAltName under directoryName constraints ("unsupported").
    "directory_name_alt_name_in_excluded_subtree": Case(
        _directory_name_in_subject_alt_name_excluded, "CERT_NAME_CONSTRAINTS"
    ),
    "email_address_outside_permitted_subtree": Case(
        _email_in_subject_outside_permitted, "CERT_NAME_CONSTRAINTS", library="accepts"
    ),
    "email_address_inside_permitted_subtree": Case(_email_in_subject_inside_permitted, None),
    "rsa1024_signer": Case(_weak(_rsa1024, "leaf"), "CERT_KEY_WEAK", library="accepts"),
    "rsa1024_issuing_ca": Case(_weak(_rsa1024, "ca"), "CERT_KEY_WEAK"),
    "p192_signer": Case(_weak(_p192, "leaf"), "CERT_KEY_WEAK", library="accepts"),
    "p192_issuing_ca": Case(_weak(_p192, "ca"), "CERT_KEY_WEAK"),
    "secp256k1_signer": Case(_weak(_secp256k1, "leaf"), "CERT_KEY_WEAK", library="accepts", openssl="accepts"),
    "secp256k1_issuing_ca": Case(_weak(_secp256k1, "ca"), "CERT_KEY_WEAK", openssl="accepts"),
}


def _validate_code(chain: Chain, policy: VerifyPolicy | None = None) -> str | None:
    try:
        chain.store().validate(chain.leaf.cert, chain.presented, policy=policy or VerifyPolicy(), at=NOW)
    except NswError as exc:
        return exc.code
    return None


def _library_accepts(chain: Chain) -> bool:
    verifier = (
        PolicyBuilder()
        .store(Store(chain.anchors))
        .time(NOW)
        .extension_policies(ca_policy=CA_EXTENSION_POLICY, ee_policy=EE_EXTENSION_POLICY)
        .build_client_verifier()
    )
    try:
        verifier.verify(chain.leaf.cert, chain.presented)
    except VerificationError:
        return False
    return True


def _pem(certs: list[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def _openssl_accepts(chain: Chain, tmp: Path) -> bool:
    (tmp / "anchors.pem").write_bytes(_pem(chain.anchors))
    (tmp / "leaf.pem").write_bytes(_pem([chain.leaf.cert]))
    args = ["openssl", "verify", "-auth_level", "2", "-attime", str(int(NOW.timestamp()))]
    args += ["-CAfile", str(tmp / "anchors.pem")]
    if chain.presented:
        (tmp / "untrusted.pem").write_bytes(_pem(chain.presented))
        args += ["-untrusted", str(tmp / "untrusted.pem")]
    done = subprocess.run([*args, str(tmp / "leaf.pem")], capture_output=True, check=False, timeout=30)
    return done.returncode == 0


@pytest.mark.parametrize("scenario", list(CORPUS))
def test_path_validation_corpus_gives_the_scenarios_code(scenario: str) -> None:
    case = CORPUS[scenario]
    assert _validate_code(case.build()) == case.code


@pytest.mark.parametrize("scenario", list(CORPUS))
def test_path_validation_corpus_agrees_with_the_library_except_for_the_stores_own_rules(scenario: str) -> None:
    case = CORPUS[scenario]
    chain = case.build()
    ours = _validate_code(chain) is None
    library = _library_accepts(chain)
    if case.library == "agrees":
        assert library == ours
    else:
        assert library and not ours


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not on PATH")
@pytest.mark.parametrize("scenario", list(CORPUS))
def test_path_validation_corpus_agrees_with_openssl_verify(scenario: str, tmp_path: Path) -> None:
    case = CORPUS[scenario]
    chain = case.build()
    ours = _validate_code(chain) is None
    openssl = _openssl_accepts(chain, tmp_path)
    if case.openssl == "agrees":
        assert openssl == ours
    else:
        assert openssl and not ours


# --------------------------------------------------------------------------- single rules at the store


def test_pinned_rsa1024_certificate_is_refused_as_weak() -> None:
    leaf = make(None, "Pinned Signer", key=_rsa1024())
    store = TrustStore("partner", pinned=(PinnedCertificate(leaf.cert),))
    with pytest.raises(NswError) as info:
        store.validate(leaf.cert, policy=VerifyPolicy(), at=NOW)
    assert info.value.code == "CERT_KEY_WEAK"
    assert info.value.details["key"] == "rsa1024"


def test_pinned_certificate_with_unknown_critical_extension_is_refused() -> None:
    leaf = make(None, "Pinned Signer", extensions=[unknown_extension()])
    store = TrustStore("partner", pinned=(PinnedCertificate(leaf.cert),))
    with pytest.raises(NswError) as info:
        store.validate(leaf.cert, policy=VerifyPolicy(), at=NOW)
    assert info.value.code == "CERT_CRITICAL_EXTENSION"


def test_path_longer_than_the_policys_max_chain_length_is_untrusted() -> None:
    chain = _path_length_respected()  # root, two CAs, signer: four certificates
    assert _validate_code(chain, VerifyPolicy(max_chain_length=4)) is None
    assert _validate_code(chain, VerifyPolicy(max_chain_length=3)) == "CERT_UNTRUSTED"


def test_intermediate_within_the_clock_skew_of_its_not_before_is_accepted() -> None:
    r = root()
    ca = make(r, "Fresh CA", ca=True, not_before=NOW + dt.timedelta(minutes=2))
    chain = through(r, ca, make(ca, "Signer", not_before=NOW - dt.timedelta(days=1)))
    assert _validate_code(chain) is None
    assert _validate_code(chain, VerifyPolicy(clock_skew=dt.timedelta(0))) == "CERT_NOT_YET_VALID"


def test_equal_policies_share_the_validated_path() -> None:
    chain = _good_two_level()
    store = chain.store()
    store.validate(chain.leaf.cert, chain.presented, policy=VerifyPolicy(), at=NOW)
    store.validate(chain.leaf.cert, chain.presented, policy=VerifyPolicy(), at=NOW)
    assert len(store._paths) == 1


def test_dev_pki_certificates_pass_path_validation(dev_pki: Any) -> None:
    store = TrustStore("moit", anchors=(dev_pki.root_cert,), any_signer=True)
    for party in ("moit", "nsw-gateway", "th-asw"):
        cert = dev_pki.party(party).cert
        path = store.validate(cert, [dev_pki.issuing_cert], policy=VerifyPolicy())
        assert [c.subject for c in path] == [cert.subject, dev_pki.issuing_cert.subject, dev_pki.root_cert.subject]


# --------------------------------------------------------------------------- RSA-PSS salt length


class _SaltSigner(Signer):
    """RSA-PSS with a chosen salt length (the gateway's own signer always uses the hash length)."""

    def __init__(self, node: Node, salt: int) -> None:
        self._node, self._salt = node, salt

    @property
    def certificate(self) -> x509.Certificate:
        return self._node.cert

    def sign(self, data: bytes, algorithm: SignatureAlgorithm) -> bytes:
        pss = padding.PSS(mgf=padding.MGF1(algorithm.hash()), salt_length=self._salt)
        return bytes(self._node.key.sign(data, pss, algorithm.hash()))


@pytest.fixture(scope="module")
def rsa_signer() -> tuple[Node, TrustStore]:
    r = root()
    leaf = make(r, "PSS Signer", key=rsa.generate_private_key(65537, 2048))
    return leaf, TrustStore("partner", anchors=(r.cert,), any_signer=True)


_PSS_PROFILE = SigningProfile(signature_method=RSA_PSS_SHA256.uri)


def test_rsa_pss_with_the_hash_length_salt_is_accepted(rsa_signer: tuple[Node, TrustStore]) -> None:
    leaf, store = rsa_signer
    signed = sign_document(DOC, _SaltSigner(leaf, 32), _PSS_PROFILE)
    assert verify_document(signed, trust=store, at=NOW).signature_method == RSA_PSS_SHA256.uri
    assert verify_document(sign_document(DOC, SoftwareSigner(leaf.key, leaf.cert), _PSS_PROFILE), trust=store)


@pytest.mark.parametrize("salt", [0, 20, 64, 222])
def test_rsa_pss_with_another_salt_length_is_sig_signature_invalid(
    rsa_signer: tuple[Node, TrustStore], salt: int
) -> None:
    leaf, store = rsa_signer
    signed = sign_document(DOC, _SaltSigner(leaf, salt), _PSS_PROFILE)
    with pytest.raises(NswError) as info:
        verify_document(signed, trust=store, at=NOW)
    assert info.value.code == "SIG_SIGNATURE_INVALID"
    data = b"signed info"
    assert not verify_raw(leaf.cert, _SaltSigner(leaf, salt).sign(data, RSA_PSS_SHA256), data, RSA_PSS_SHA256)


@pytest.mark.parametrize("salt, code", [(32, None), (0, "SIG_SIGNATURE_INVALID"), (64, "SIG_SIGNATURE_INVALID")])
def test_ws_security_rsa_pss_with_another_salt_length_is_sig_signature_invalid(
    rsa_signer: tuple[Node, TrustStore], salt: int, code: str | None
) -> None:
    from adapters.as4.ebms import Party, UserMessage, build_user_messaging, new_envelope
    from signing.wss import sign_envelope, verify_envelope
    from signing.xml import parse_xml, serialize

    leaf, store = rsa_signer
    envelope, header, _ = new_envelope()
    build_user_messaging(header, UserMessage("m1@x", NOW, Party("A"), Party("B"), "svc", "act", "c1"))
    sign_envelope(envelope, _SaltSigner(leaf, salt), algorithm=RSA_PSS_SHA256)
    try:
        verify_envelope(parse_xml(serialize(envelope)), trust=store, at=NOW)
    except NswError as exc:
        assert exc.code == code
    else:
        assert code is None


def _with_stated_salt(signed: bytes, stated: str, node: Node, used: int) -> bytes:
    root_el = etree.fromstring(signed)
    ds = f"{{{DS_NS}}}"
    signed_info = root_el.find(f".//{ds}SignedInfo")
    assert signed_info is not None
    method = signed_info.find(ds + "SignatureMethod")
    assert method is not None
    params = etree.SubElement(method, f"{{{PSS_NS}}}RSAPSSParams", nsmap={"pss": PSS_NS})
    etree.SubElement(params, f"{{{PSS_NS}}}SaltLength").text = stated
    value = root_el.find(f".//{ds}SignatureValue")
    assert value is not None
    value.text = base64.b64encode(
        _SaltSigner(node, used).sign(canonicalize(signed_info, C14N_EXCLUSIVE), RSA_PSS_SHA256)
    ).decode()
    return bytes(etree.tostring(root_el))


@pytest.mark.parametrize(
    "stated, used, code",
    [
        ("32", 32, None),
        ("0", 0, "SIG_ALGORITHM_FORBIDDEN"),
        ("0", 32, "SIG_ALGORITHM_FORBIDDEN"),
        ("x", 32, "SIG_MALFORMED"),
    ],
)
def test_rsa_pss_salt_length_stated_in_the_signature_method_must_be_the_methods(
    rsa_signer: tuple[Node, TrustStore], stated: str, used: int, code: str | None
) -> None:
    leaf, store = rsa_signer
    signed = _with_stated_salt(sign_document(DOC, _SaltSigner(leaf, 32), _PSS_PROFILE), stated, leaf, used)
    try:
        verify_document(signed, trust=store, at=NOW)
    except NswError as exc:
        assert exc.code == code
    else:
        assert code is None


# --------------------------------------------------------------------------- at the HTTP entry point


def _eco() -> bytes:
    from helpers.mappings import form_d
    from mappings.registry import get as get_format

    return get_format("form-d").emit(form_d(items=1))


def _gateway_config(tmp_path: Path, chain: Chain) -> Any:
    """A gateway verifying every submission (``verification = "signature"``), each party's trust anchored at the
    chain's root, which issues to that party alone (``any_signer``)."""
    anchor = tmp_path / "anchor.pem"
    anchor.write_bytes(_pem(chain.anchors))
    trust = {"anchors": [str(anchor)], "any_signer": True}
    return make_config(
        tmp_path,
        {"TH": "http://127.0.0.1:9/inbox"},
        parties={"MOIT": {"trust": trust, "format": "form-d"}, "MARD": {"trust": trust}, "TRADER": {"trust": trust}},
        gateway={"verification": "signature", "signing": "off"},
    )


_HTTP_CASES = {
    "rsa1024_signer": "CERT_KEY_WEAK",
    "path_length_exceeded": "CERT_PATH_LENGTH",
    "unknown_critical_extension_on_leaf": "CERT_CRITICAL_EXTENSION",
}


@pytest.mark.parametrize("scenario", list(_HTTP_CASES))
async def test_gateway_rejects_a_submission_signed_on_a_bad_path_with_the_code(scenario: str, tmp_path: Path) -> None:
    chain = CORPUS[scenario].build()
    signed = sign_document(_eco(), SoftwareSigner(chain.leaf.key, chain.leaf.cert, chain.presented))
    config = _gateway_config(tmp_path, chain)
    async with Gateway(config) as gw, aiohttp.ClientSession() as s:
        status, body = await submit(s, gw.url, "MOIT", "ECO-1", "eco.form_d", signed)
    assert status == 403, body
    assert body["error"]["code"] == _HTTP_CASES[scenario]
    assert body["ack"]["state"] == "REJECTED"


async def test_gateway_accepts_a_submission_signed_on_a_good_path(tmp_path: Path) -> None:
    chain = _good_field_profile()
    signed = sign_document(_eco(), SoftwareSigner(chain.leaf.key, chain.leaf.cert, chain.presented))
    config = _gateway_config(tmp_path, chain)
    async with Gateway(config) as gw, aiohttp.ClientSession() as s:
        status, body = await submit(s, gw.url, "MOIT", "ECO-1", "eco.form_d", signed)
    assert status == 202, body
