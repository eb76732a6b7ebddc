"""Regenerate the signing vectors of this folder: ``python tests/vectors/signing/generate.py``.

One file per scenario, listed with its expected result in ``vectors.json``.
The keys under ``pki/`` are TEST-ONLY keys (never trust them anywhere); they
are committed so that the vectors are stable files that other implementations
can be run against. Every certificate is checked at the fixed instant
``VERIFY_AT`` of vectors.json, so the vectors do not age.

Attack techniques follow the XML signature wrapping literature (Somorovsky et
al., "On Breaking SAML: Be Whoever You Want to Be", USENIX Security 2012;
McIntosh & Austel, "XML signature element wrapping attacks and
countermeasures", 2005) and the signxml / xmlsec negative test suites.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import hmac
import json
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))

from signing.algorithms import (  # noqa: E402
    C14N_EXCLUSIVE,
    DS_NS,
    RSA_SHA1,
    SHA1_DIGEST,
    TRANSFORM_XPATH,
    TRANSFORM_XSLT,
    canonicalize,
)
from signing.dev.pki import generate_key, issue_certificate, make_crl  # noqa: E402
from signing.keys import SoftwareSigner  # noqa: E402
from signing.policy import SigningProfile  # noqa: E402
from signing.sign import sign_document  # noqa: E402

DS = f"{{{DS_NS}}}"
UTC = dt.UTC
VERIFY_AT = dt.datetime(2027, 6, 1, tzinfo=UTC)
VALID_FROM = dt.datetime(2025, 1, 1, tzinfo=UTC)
VALID_TO = dt.datetime(2045, 1, 1, tzinfo=UTC)

DOC = b"""<?xml version="1.0" encoding="UTF-8"?>
<CertificateOfOrigin xmlns="urn:nsw:atiga:form-d:1" Id="co-1">
  <CertificateNumber>VN-TH 26/01/00123</CertificateNumber>
  <IssueDate>2026-11-20</IssueDate>
  <Exporter><Name>Mekong Seafood Export JSC</Name><Country>VN</Country></Exporter>
  <Consignee><Name>Siam Fresh Foods Co., Ltd.</Name><Country>TH</Country></Consignee>
  <GoodsItem Sequence="1"><Description>Frozen pangasius fillets</Description><HSCode>030462</HSCode><FOBValue Currency="USD">18350.00</FOBValue><OriginCriterion>WO</OriginCriterion></GoodsItem>
</CertificateOfOrigin>
"""

BATCH = b"""<?xml version="1.0" encoding="UTF-8"?>
<Batch xmlns="urn:nsw:batch:1">
  <Certificate Id="c1"><Number>VN-TH 26/01/00001</Number><Value>100.00</Value></Certificate>
  <Certificate Id="c2"><Number>VN-TH 26/01/00002</Number><Value>999999.00</Value></Certificate>
</Batch>
"""


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key) -> bytes:  # type: ignore[no-untyped-def]
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _load_or_make_pki(pki_dir: Path) -> dict[str, object]:
    """Keys and certificates of the vector PKI (created once, then reused so vectors stay stable)."""
    pki_dir.mkdir(exist_ok=True)
    marker = pki_dir / "root-ca.pem"
    if marker.exists():
        out: dict[str, object] = {}
        for path in pki_dir.glob("*.pem"):
            name = path.name[: -len(".pem")]
            raw = path.read_bytes()
            if name.endswith(".key"):
                out[name] = serialization.load_pem_private_key(raw, None)
            elif name.endswith(".crl"):
                out[name] = x509.load_pem_x509_crl(raw)
            else:
                out[name] = x509.load_pem_x509_certificate(raw)
        return out
    k = {n: generate_key("p256") for n in ("root-ca", "issuing-ca", "other-ca")}
    k.update(
        {
            n: generate_key("rsa2048")
            for n in ("moit", "expired", "not-yet-valid", "wrong-usage", "server-only", "revoked", "intruder")
        }
    )
    root = issue_certificate(
        None,
        k["root-ca"],
        "NSW Vector Test Root CA",
        k["root-ca"].public_key(),
        is_ca=True,
        not_before=VALID_FROM,
        not_after=VALID_TO,
    )
    issuing = issue_certificate(
        root,
        k["root-ca"],
        "NSW Vector Test Issuing CA",
        k["issuing-ca"].public_key(),
        is_ca=True,
        path_length=0,
        not_before=VALID_FROM,
        not_after=VALID_TO,
    )
    other = issue_certificate(
        None,
        k["other-ca"],
        "Some Other CA",
        k["other-ca"].public_key(),
        is_ca=True,
        not_before=VALID_FROM,
        not_after=VALID_TO,
    )

    def ee(name: str, issuer=issuing, issuer_key=k["issuing-ca"], **kw):  # type: ignore[no-untyped-def]
        kw.setdefault("not_before", VALID_FROM)
        kw.setdefault("not_after", VALID_TO)
        return issue_certificate(issuer, issuer_key, f"Vector {name}", k[name].public_key(), **kw)

    certs = {
        "root-ca": root,
        "issuing-ca": issuing,
        "other-ca": other,
        "moit": ee("moit"),
        "expired": ee(
            "expired", not_before=dt.datetime(2020, 1, 1, tzinfo=UTC), not_after=dt.datetime(2021, 1, 1, tzinfo=UTC)
        ),
        "not-yet-valid": ee("not-yet-valid", not_before=dt.datetime(2040, 1, 1, tzinfo=UTC)),
        "wrong-usage": ee("wrong-usage", key_usage={"key_encipherment"}),
        "server-only": ee("server-only", extended_key_usage=["server_auth"]),
        "revoked": ee("revoked"),
        "intruder": ee("intruder", issuer=other, issuer_key=k["other-ca"]),
    }
    crl = make_crl(
        issuing,
        k["issuing-ca"],
        [(certs["revoked"].serial_number, dt.datetime(2026, 3, 1, tzinfo=UTC), "key_compromise")],
        this_update=dt.datetime(2027, 5, 1, tzinfo=UTC),
        next_update=dt.datetime(2044, 1, 1, tzinfo=UTC),
    )
    root_crl = make_crl(
        root,
        k["root-ca"],
        [],
        this_update=dt.datetime(2027, 5, 1, tzinfo=UTC),
        next_update=dt.datetime(2044, 1, 1, tzinfo=UTC),
    )
    (pki_dir / "root-ca.crl.pem").write_bytes(root_crl.public_bytes(serialization.Encoding.PEM))
    for name, cert in certs.items():
        (pki_dir / f"{name}.pem").write_bytes(_pem(cert))
    for name, key in k.items():
        (pki_dir / f"{name}.key.pem").write_bytes(_key_pem(key))
    (pki_dir / "issuing-ca.crl.pem").write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    return _load_or_make_pki(pki_dir)


def _signer(pki: dict[str, object], name: str) -> SoftwareSigner:
    return SoftwareSigner(pki[f"{name}.key"], pki[name], [pki["issuing-ca"]] if name != "intruder" else [])  # type: ignore[arg-type]


def _root(data: bytes) -> etree._Element:
    return etree.fromstring(data)


def _ser(root: etree._Element) -> bytes:
    return etree.tostring(root.getroottree(), xml_declaration=True, encoding="UTF-8")


def _sig(root: etree._Element) -> etree._Element:
    return root.find(f".//{DS}Signature")


def _resign(root: etree._Element, pki: dict[str, object], name: str = "moit") -> None:
    """Recompute the SignatureValue over the (edited) SignedInfo: a validly signed but hostile SignedInfo."""
    sig = _sig(root)
    si = sig.find(DS + "SignedInfo")
    signer = _signer(pki, name)
    from signing.algorithms import SIGNATURES

    algo = SIGNATURES[si.find(DS + "SignatureMethod").get("Algorithm")]
    sig.find(DS + "SignatureValue").text = base64.b64encode(
        signer.sign(canonicalize(si, C14N_EXCLUSIVE), algo)
    ).decode()


def build(pki_dir: Path) -> dict[str, dict[str, object]]:
    pki = _load_or_make_pki(pki_dir)
    moit = _signer(pki, "moit")
    valid = sign_document(DOC, moit)
    valid_by_id = sign_document(DOC, moit, reference_id="co-1")
    vectors: dict[str, tuple[bytes, str | None, str, dict[str, object]]] = {}

    def add(name: str, data: bytes, code: str | None, what: str, **options: object) -> None:
        vectors[name] = (data, code, what, options)

    add("valid.xml", valid, None, 'positive control: exclusive C14N, RSA-SHA256, URI=""')
    add("valid_by_id.xml", valid_by_id, None, "positive control: reference #co-1 to the root element")

    root = _root(valid)
    root.find("{urn:nsw:atiga:form-d:1}GoodsItem/{urn:nsw:atiga:form-d:1}FOBValue").text = "1.00"
    add("tampered_content.xml", _ser(root), "SIG_DIGEST_MISMATCH", "FOB value edited after signing")

    root = _root(valid)
    dv = _sig(root).find(f"{DS}SignedInfo/{DS}Reference/{DS}DigestValue")
    dv.text = base64.b64encode(hashlib.sha256(b"forged").digest()).decode()
    add("tampered_signedinfo.xml", _ser(root), "SIG_SIGNATURE_INVALID", "DigestValue in SignedInfo replaced")

    root = _root(valid)
    sv = _sig(root).find(DS + "SignatureValue")
    raw = bytearray(base64.b64decode(sv.text))
    raw[10] ^= 0x01
    sv.text = base64.b64encode(bytes(raw)).decode()
    add("tampered_signature_value.xml", _ser(root), "SIG_SIGNATURE_INVALID", "one bit of SignatureValue flipped")

    root = _root(valid_by_id)
    forged = etree.SubElement(root, "{urn:nsw:atiga:form-d:1}Amendment", Id="co-1")
    forged.text = "forged content carrying the signed id"
    add("xsw_duplicate_id.xml", _ser(root), "SIG_DUPLICATE_ID", "a second element carries the signed Id")

    # XSW: the signed certificate is moved into a wrapper, a forged one takes its place as the document.
    signed = _root(valid_by_id)
    wrapper = etree.Element(
        "{urn:nsw:atiga:form-d:1}CertificateOfOrigin", Id="forged", nsmap={None: "urn:nsw:atiga:form-d:1"}
    )
    etree.SubElement(wrapper, "{urn:nsw:atiga:form-d:1}CertificateNumber").text = "VN-TH 26/01/99999"
    ext = etree.SubElement(wrapper, "{urn:nsw:atiga:form-d:1}Extension")
    ext.append(signed)
    add("xsw_moved_signed_element.xml", _ser(wrapper), "SIG_WRAPPING", "signed element moved under a forged root")

    # XSW: signature over a sibling: the application processes Certificate[2], the signature covers c1.
    batch = _root(BATCH)
    from signing.sign import sign_element

    sign_element(batch, moit, reference_id="c1")
    add(
        "xsw_signature_over_sibling.xml",
        _ser(batch),
        "SIG_WRAPPING",
        "signature covers Certificate c1; the application processes Certificate c2",
        expect="/b:Batch/b:Certificate[@Id='c2']",
        namespaces={"b": "urn:nsw:batch:1"},
    )
    add(
        "signature_over_sibling_expected_element.xml",
        _ser(batch),
        None,
        "positive control: same document, the application processes c1, which is signed",
        expect="/b:Batch/b:Certificate[@Id='c1']",
        namespaces={"b": "urn:nsw:batch:1"},
    )

    root = _root(valid_by_id)
    _sig(root).find(f"{DS}SignedInfo/{DS}Reference").set("URI", "#does-not-exist")
    _resign(root, pki)
    add("reference_missing_id.xml", _ser(root), "SIG_REFERENCE_NOT_FOUND", "Reference URI names an absent id")

    for name, uri, what in (
        ("external_reference_http.xml", "http://127.0.0.1:9/evil.xml", "Reference to a URL"),
        ("external_reference_file.xml", "file:///etc/passwd", "Reference to a local file"),
        ("xpointer_reference.xml", "#xpointer(/)", "XPointer reference"),
    ):
        root = _root(valid)
        _sig(root).find(f"{DS}SignedInfo/{DS}Reference").set("URI", uri)
        _resign(root, pki)
        add(name, _ser(root), "SIG_EXTERNAL_REFERENCE", what)

    for name, algorithm, child, what in (
        ("transform_xslt.xml", TRANSFORM_XSLT, "{http://www.w3.org/1999/XSL/Transform}stylesheet", "XSLT transform"),
        ("transform_xpath.xml", TRANSFORM_XPATH, DS + "XPath", "XPath transform"),
    ):
        root = _root(valid)
        transforms = _sig(root).find(f"{DS}SignedInfo/{DS}Reference/{DS}Transforms")
        t = etree.SubElement(transforms, DS + "Transform", Algorithm=algorithm)
        etree.SubElement(t, child).text = "not(ancestor-or-self::x)" if "XPath" in child else ""
        _resign(root, pki)
        add(name, _ser(root), "SIG_TRANSFORM_FORBIDDEN", what)

    # HMAC: a real HMAC-SHA256 over SignedInfo with a key the attacker chose.
    root = _root(valid)
    sig = _sig(root)
    si = sig.find(DS + "SignedInfo")
    si.find(DS + "SignatureMethod").set("Algorithm", "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256")
    mac = hmac.new(b"attacker-chosen-secret", canonicalize(si, C14N_EXCLUSIVE), hashlib.sha256).digest()
    sig.find(DS + "SignatureValue").text = base64.b64encode(mac).decode()
    add("hmac_signature.xml", _ser(root), "SIG_HMAC_FORBIDDEN", "HMAC-SHA256 SignatureMethod")

    sha1 = sign_document(
        DOC, moit, SigningProfile(signature_method=RSA_SHA1.uri, digest_method=SHA1_DIGEST.uri, allow_sha1=True)
    )
    add("sha1_signature.xml", sha1, "SIG_WEAK_ALGORITHM", "RSA-SHA1 with a SHA-1 digest under the default policy")
    add(
        "sha1_signature_allowed.xml",
        sha1,
        None,
        "the same document for a party whose profile allows SHA-1",
        allow_sha1=True,
    )

    root = _root(valid)
    extra = _root(sign_document(b"<Note xmlns='urn:x'>second</Note>", moit))
    root.append(extra)
    add("multiple_signatures.xml", _ser(root), "SIG_MULTIPLE", "a second signed element inside the document")

    add("no_signature.xml", DOC, "SIG_MISSING", "unsigned document")

    root = _root(valid_by_id)
    sig = _sig(root)
    si = sig.find(DS + "SignedInfo")
    si.append(copy.deepcopy(si.find(DS + "Reference")))
    _resign(root, pki)
    add("two_references.xml", _ser(root), "SIG_REFERENCE_COUNT", "SignedInfo with two References")

    # Signature beside (not inside) the element it signs.
    doc = _root(b"<Dossier xmlns='urn:nsw:dossier:1'><Data Id='d1'><Value>42</Value></Data></Dossier>")
    sign_element(doc, moit, reference_id="d1")
    data = doc.find("{urn:nsw:dossier:1}Data")
    doc.append(data.find(DS + "Signature"))
    add(
        "signature_not_enveloped.xml",
        _ser(doc),
        "SIG_LOCATION_INVALID",
        "ds:Signature is a sibling of the signed element",
    )

    for who, code, what in (
        ("intruder", "CERT_UNTRUSTED", "signed by a certificate of another CA"),
        ("expired", "CERT_EXPIRED", "signer certificate expired in 2021"),
        ("not-yet-valid", "CERT_NOT_YET_VALID", "signer certificate valid from 2040"),
        ("wrong-usage", "CERT_KEY_USAGE", "signer certificate has keyUsage keyEncipherment only"),
        ("server-only", "CERT_KEY_USAGE", "signer certificate has extendedKeyUsage serverAuth only"),
        ("revoked", "CERT_REVOKED", "signer certificate revoked in the issuing CA's CRL"),
    ):
        add(f"signer_{who.replace('-', '_')}.xml", sign_document(DOC, _signer(pki, who)), code, what)

    add(
        "xxe_signed_document.xml",
        b'<?xml version="1.0"?>\n<!DOCTYPE CertificateOfOrigin [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
        + valid.split(b"?>", 1)[1].replace(b"<IssueDate>", b"<IssueDate>&x;", 1),
        "XML_DTD_FORBIDDEN",
        "an external entity in a signed document",
    )

    manifest: dict[str, dict[str, object]] = {}
    for name, (data, code, what, options) in vectors.items():
        (HERE / name).write_bytes(data)
        manifest[name] = {"expect_code": code, "scenario": what, **options}
    return manifest


def main() -> None:
    manifest = build(HERE / "pki")
    doc = {
        "verify_at": VERIFY_AT.isoformat(),
        "trust": {"anchors": ["pki/root-ca.pem"], "crls": ["pki/issuing-ca.crl.pem", "pki/root-ca.crl.pem"]},
        "vectors": manifest,
    }
    (HERE / "vectors.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {len(manifest)} vectors")


if __name__ == "__main__":
    main()
