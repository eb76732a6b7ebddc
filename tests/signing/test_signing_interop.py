"""Interop with independent implementations: the xmlsec1 command (libxmlsec1 1.2, Debian) and signxml.

Documents signed by them verify with ours; ours verify with them; tampering is caught by both sides.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from lxml import etree

from gateway.errors import NswError
from signing import algorithms as A
from signing.dev.pki import generate_key, issue_certificate
from signing.keys import SoftwareSigner
from signing.policy import SigningProfile
from signing.sign import sign_document
from signing.trust import TrustStore
from signing.verify import verify_document

pytestmark = [pytest.mark.interop]

XMLSEC1 = shutil.which("xmlsec1")
NS = "urn:nsw:atiga:form-d:1"
DOC = f"""<?xml version="1.0" encoding="UTF-8"?>
<CertificateOfOrigin xmlns="{NS}" Id="co-42"><CertificateNumber>VN-MY 26/03/00042</CertificateNumber>
  <Exporter><Name>Công ty TNHH Ánh Sao</Name></Exporter>
  <GoodsItem Sequence="1"><HSCode>090111</HSCode><OriginCriterion>WO</OriginCriterion></GoodsItem>
</CertificateOfOrigin>
""".encode()


def test_xmlsec1_command_is_installed():
    """The interop proof needs the independent xmlsec1 command (Debian package xmlsec1; scripts/test installs it)."""
    assert XMLSEC1 is not None, "apt-get install xmlsec1 (scripts/test does it)"


class Pki:
    def __init__(self, tmp: Path, kind: str):
        self.root_key = generate_key("p256")
        self.root = issue_certificate(None, self.root_key, "Interop Root CA", self.root_key.public_key(), is_ca=True)
        self.mid_key = generate_key("p256")
        self.mid = issue_certificate(
            self.root, self.root_key, "Interop Issuing CA", self.mid_key.public_key(), is_ca=True, path_length=0
        )
        self.key = generate_key(kind)
        self.cert = issue_certificate(self.mid, self.mid_key, f"MOIT interop {kind}", self.key.public_key())
        self.dir = tmp
        pem = serialization.Encoding.PEM
        (tmp / "root.pem").write_bytes(self.root.public_bytes(pem))
        (tmp / "mid.pem").write_bytes(self.mid.public_bytes(pem))
        (tmp / "cert.pem").write_bytes(self.cert.public_bytes(pem))
        (tmp / "key.pem").write_bytes(
            self.key.private_bytes(pem, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())
        )
        self.signer = SoftwareSigner(self.key, self.cert, [self.mid])
        self.trust = TrustStore("moit", anchors=(self.root,), any_signer=True)


@pytest.fixture(scope="module", params=["rsa2048", "p256"])
def pki(request, tmp_path_factory):
    return Pki(tmp_path_factory.mktemp(f"interop-{request.param}"), request.param)


def _xmlsec1_verify(pki: Pki, data: bytes, name: str) -> subprocess.CompletedProcess:
    path = pki.dir / name
    path.write_bytes(data)
    return subprocess.run(
        [
            XMLSEC1,
            "--verify",
            "--trusted-pem",
            str(pki.dir / "root.pem"),
            "--untrusted-pem",
            str(pki.dir / "mid.pem"),
            "--id-attr:Id",
            f"{NS}:CertificateOfOrigin",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


def _template(pki: Pki, c14n: str, uri: str) -> bytes:
    is_ec = "ec" in type(pki.key).__name__.lower()
    method = A.ECDSA_SHA256.uri if is_ec else A.RSA_SHA256.uri
    root = etree.fromstring(DOC)
    ds = f"{{{A.DS_NS}}}"
    sig = etree.SubElement(root, ds + "Signature", nsmap={"ds": A.DS_NS})
    si = etree.SubElement(sig, ds + "SignedInfo")
    etree.SubElement(si, ds + "CanonicalizationMethod", Algorithm=c14n)
    etree.SubElement(si, ds + "SignatureMethod", Algorithm=method)
    ref = etree.SubElement(si, ds + "Reference", URI=uri)
    tr = etree.SubElement(ref, ds + "Transforms")
    etree.SubElement(tr, ds + "Transform", Algorithm=A.TRANSFORM_ENVELOPED)
    etree.SubElement(tr, ds + "Transform", Algorithm=c14n)
    etree.SubElement(ref, ds + "DigestMethod", Algorithm=A.SHA256_DIGEST.uri)
    etree.SubElement(ref, ds + "DigestValue")
    etree.SubElement(sig, ds + "SignatureValue")
    etree.SubElement(etree.SubElement(etree.SubElement(sig, ds + "KeyInfo"), ds + "X509Data"), ds + "X509Certificate")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _xmlsec1_sign(pki: Pki, template: bytes, name: str) -> bytes:
    """``template`` (a document with an empty ds:Signature) signed by the xmlsec1 command with the PKI's key."""
    tmpl = pki.dir / f"{name}.xml"
    tmpl.write_bytes(template)
    out = pki.dir / f"{name}-signed-by-xmlsec1.xml"
    done = subprocess.run(
        [
            XMLSEC1,
            "--sign",
            "--privkey-pem",
            f"{pki.dir / 'key.pem'},{pki.dir / 'cert.pem'},{pki.dir / 'mid.pem'}",
            "--id-attr:Id",
            f"{NS}:CertificateOfOrigin",
            "--output",
            str(out),
            str(tmpl),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return out.read_bytes()


@pytest.mark.parametrize("c14n", [A.C14N_EXCLUSIVE, A.C14N_INCLUSIVE], ids=["exc", "inc"])
@pytest.mark.parametrize("uri", ["", "#co-42"], ids=["uri-empty", "uri-id"])
def test_document_signed_by_xmlsec1_verifies_with_ours(pki, c14n, uri):
    signed = _xmlsec1_sign(pki, _template(pki, c14n, uri), "template")
    result = verify_document(signed, trust=pki.trust)
    assert result.certificate == pki.cert
    assert result.c14n_method == c14n and result.reference_uri == uri
    with pytest.raises(NswError) as info:
        verify_document(signed.replace(b"090111", b"090112"), trust=pki.trust)
    assert info.value.code == "SIG_DIGEST_MISMATCH"


@pytest.mark.parametrize("c14n", [A.C14N_EXCLUSIVE, A.C14N_INCLUSIVE], ids=["exc", "inc"])
@pytest.mark.parametrize("reference_id", [None, "co-42"], ids=["uri-empty", "uri-id"])
def test_document_signed_by_us_verifies_with_xmlsec1(pki, c14n, reference_id):
    signed = sign_document(DOC, pki.signer, SigningProfile(c14n=c14n), reference_id=reference_id)
    done = _xmlsec1_verify(pki, signed, "ours.xml")
    assert done.returncode == 0, done.stderr
    assert "OK" in done.stderr
    tampered = _xmlsec1_verify(pki, signed.replace(b"090111", b"090112"), "ours-tampered.xml")
    assert tampered.returncode != 0


def test_vnsw_legacy_envelope_signed_by_us_verifies_with_xmlsec1(pki):
    sample = (
        Path(__file__).parents[1]
        / "vectors"
        / "corpus"
        / "mard_BNNPTNT0600011_t10_f01_registration_NSW_to_BNN_sample.xml"
    ).read_bytes()
    signed = sign_document(sample, pki.signer, SigningProfile.vnsw_legacy())
    done = _xmlsec1_verify(pki, signed, "vnsw.xml")
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("c14n", [A.C14N_EXCLUSIVE, A.C14N_INCLUSIVE], ids=["exc", "inc"])
def test_document_signed_by_us_verifies_with_signxml(pki, c14n):
    from signxml import XMLVerifier

    signed = sign_document(DOC, pki.signer, SigningProfile(c14n=c14n))
    cert_pem = (pki.dir / "cert.pem").read_text()
    result = XMLVerifier().verify(signed, x509_cert=cert_pem)
    assert result.signed_xml.findtext(f"{{{NS}}}CertificateNumber") == "VN-MY 26/03/00042"
    from signxml.exceptions import InvalidSignature

    with pytest.raises(InvalidSignature):
        XMLVerifier().verify(signed.replace(b"090111", b"090112"), x509_cert=cert_pem)


@pytest.mark.parametrize("c14n", [A.C14N_EXCLUSIVE, A.C14N_INCLUSIVE], ids=["exc", "inc"])
def test_document_signed_by_signxml_verifies_with_ours(pki, c14n):
    from signxml import XMLSigner, methods

    is_ec = "ec" in type(pki.key).__name__.lower()
    signer = XMLSigner(
        method=methods.enveloped,
        signature_algorithm="ecdsa-sha256" if is_ec else "rsa-sha256",
        digest_algorithm="sha256",
        c14n_algorithm=c14n,
    )
    key_pem = (pki.dir / "key.pem").read_bytes()
    certs = [(pki.dir / "cert.pem").read_text(), (pki.dir / "mid.pem").read_text()]
    root = signer.sign(etree.fromstring(DOC), key=key_pem, cert=certs)
    signed = etree.tostring(root)
    result = verify_document(signed, trust=pki.trust)
    assert result.certificate == pki.cert
    assert len(result.chain) == 3


def _large_template(pki: Pki, c14n: str, uri: str) -> bytes:
    """:func:`_template` with a 2 MiB base64 scan before the signature and an element after it (the signature's
    tail text stays in the document the enveloped-signature transform leaves)."""
    root = etree.fromstring(_template(pki, c14n, uri))
    ns = f"{{{NS}}}"
    scan = etree.Element(ns + "Scan", MimeType="application/pdf")
    scan.text = base64.b64encode(os.urandom(1536 * 1024)).decode("ascii")
    scan.tail = "\n  "
    signature = root.find(f"{{{A.DS_NS}}}Signature")
    assert signature is not None
    signature.addprevious(scan)
    signature.tail = "\n  "
    after = etree.SubElement(root, ns + "IssuedAt")
    after.text = "2026-12-03"
    after.tail = "\n"
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


@pytest.mark.parametrize("c14n", [A.C14N_EXCLUSIVE, A.C14N_INCLUSIVE], ids=["exc", "inc"])
@pytest.mark.parametrize("uri", ["", "#co-42"], ids=["uri-empty", "uri-id"])
def test_large_document_signed_by_xmlsec1_is_checked_with_its_text_out_of_the_tree(pki, c14n, uri):
    signed = _xmlsec1_sign(pki, _large_template(pki, c14n, uri), "large")
    result = verify_document(signed, trust=pki.trust, leave_out=True)
    assert result.taken is not None and result.taken.text is not None  # checked without libxmlsec1's copies
    assert result.certificate == pki.cert
    whole = verify_document(signed, trust=pki.trust)
    assert whole.taken is None and whole.element.find(f"{{{NS}}}Scan").text == result.taken.text
    scan = signed.index(b"<Scan")
    altered = signed[: scan + 200] + bytes([signed[scan + 200] ^ 0x01]) + signed[scan + 201 :]
    with pytest.raises(NswError) as info:
        verify_document(altered, trust=pki.trust, leave_out=True)
    assert info.value.code == "SIG_DIGEST_MISMATCH"
    with pytest.raises(NswError) as info:
        verify_document(signed.replace(b"<IssuedAt>2026-12-03", b"<IssuedAt>2026-12-04"), trust=pki.trust)
    assert info.value.code == "SIG_DIGEST_MISMATCH"
    value = signed.index(b"SignatureValue>") + len(b"SignatureValue>")
    flipped = signed[:value] + (b"A" if signed[value : value + 1] != b"A" else b"B") + signed[value + 1 :]
    with pytest.raises(NswError) as info:
        verify_document(flipped, trust=pki.trust, leave_out=True)
    assert info.value.code == "SIG_SIGNATURE_INVALID"


def test_large_document_signed_by_us_with_its_text_out_of_the_tree_verifies_with_xmlsec1(pki):
    root = etree.fromstring(_large_template(pki, A.C14N_EXCLUSIVE, ""))
    template = root.find(f"{{{A.DS_NS}}}Signature")
    assert template is not None
    root.remove(template)
    signed = sign_document(etree.tostring(root, xml_declaration=True, encoding="UTF-8"), pki.signer)
    done = _xmlsec1_verify(pki, signed, "large-ours.xml")
    assert done.returncode == 0, done.stderr
    assert verify_document(signed, trust=pki.trust, leave_out=True).taken is not None
