"""WS-Security 1.1 signatures of SOAP 1.2 envelopes with MIME attachments (the AS4 profile).

What this module produces and accepts is what OASIS WSS SOAP Message Security
1.1, its X.509 Token Profile and its SwA Profile 1.1 specify, as the eDelivery
AS4 profile, WSS4J and phase4 use them:

* ``wsse:Security`` (mustUnderstand) in ``soap:Header`` holding a
  ``wsse:BinarySecurityToken`` (X509v3, Base64Binary) and a ``ds:Signature``;
* ``ds:SignedInfo`` canonicalized with exclusive C14N, RSA-SHA256 by default
  (RSA-PSS and ECDSA as the policy allows), SHA-256 digests;
* one ``ds:Reference`` per signed part: ``#wsu:Id`` of ``eb:Messaging`` and
  of ``soap:Body`` (transform: exclusive C14N), and ``cid:`` per MIME
  attachment (transform: ``Attachment-Content-Signature-Transform``, digest
  over the attachment's content as :func:`swa_content_octets` canonicalizes
  it for its MIME type, SwA 1.1 section 5.4.2);
* ``ds:KeyInfo/wsse:SecurityTokenReference/wsse:Reference URI="#bst-id"``.

libxmlsec1 cannot resolve ``cid:`` URIs, so reference digests are computed
here with :func:`signing.algorithms.canonicalize` and hashlib, and the
SignatureValue is checked over the canonical SignedInfo with
:func:`signing.keys.verify_raw` (and produced with :meth:`Signer.sign`).

:func:`verify_envelope` returns **what was signed** (a :class:`WssVerifyResult`):
the ``eb:Messaging`` and ``soap:Body`` elements, bound to the ones a receiver
processes (the ``eb:Messaging`` child of ``soap:Header``, the ``soap:Body``
child of the Envelope), the attachment bytes whose digests matched, and the
signer's certificate after :meth:`TrustStore.validate`. It checks, each with
its own code:

1. structure: one ``wsse:Security`` with one ``ds:Signature`` (``SIG_MISSING``,
   ``SIG_MULTIPLE``, ``SIG_MALFORMED``);
2. algorithms: exclusive C14N only, no HMAC, no SHA-1 unless the party's policy
   allows it, allow-listed signature/digest methods and transforms
   (``SIG_HMAC_FORBIDDEN``, ``SIG_WEAK_ALGORITHM``, ``SIG_ALGORITHM_FORBIDDEN``,
   ``SIG_TRANSFORM_FORBIDDEN``);
3. ids: every id in the envelope carried once (``SIG_DUPLICATE_ID``), every
   reference resolving (``SIG_REFERENCE_NOT_FOUND``, ``SIG_EXTERNAL_REFERENCE``);
4. binding: a signed ``eb:Messaging``/``soap:Body`` (or anything else) that is not
   the processed one is ``SIG_WRAPPING``;
5. coverage: the policy's required parts (Messaging, Body, every attachment)
   are all referenced (``SIG_REFERENCE_COUNT`` naming the unsigned part);
6. the signer certificate (``CERT_*``), then the SignatureValue
   (``SIG_SIGNATURE_INVALID``), then each digest (``SIG_DIGEST_MISMATCH``
   naming the altered element or ``cid:``).

:func:`verify_envelope_signature` runs steps 1-6 but the ``cid:`` digests, with
public keys only: AS4 signs the attachments before encrypting them, so a
receiver authenticates the sender first and spends its private key (decryption)
only on a message that an accepted certificate signed; the
:class:`WssSignedEnvelope` it returns checks the attachment digests once they
are decrypted.
"""

from __future__ import annotations

import base64
import binascii
import copy
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree
from pydantic import BaseModel, ConfigDict, Field

from gateway.errors import (
    AlgorithmForbidden,
    CertificateError,
    CertificateMalformed,
    CertificateMissing,
    ConfigError,
    DigestMismatch,
    DuplicateId,
    ExternalReference,
    HmacForbidden,
    MultipleSignatures,
    ReferenceCountInvalid,
    ReferenceNotFound,
    SignatureMalformed,
    SignatureMissing,
    SignatureValueInvalid,
    SignatureWrapping,
    TransformForbidden,
    WeakAlgorithm,
    XmlError,
)
from signing.algorithms import (
    C14N_EXCLUSIVE,
    C14N_EXCLUSIVE_WITH_COMMENTS,
    DIGESTS,
    DS_NS,
    SHA256_DIGEST,
    SIGNATURES,
    DigestAlgorithm,
    SignatureAlgorithm,
    canonicalize,
    check_signature_parameters,
    is_hmac,
)
from signing.keys import Signer, default_algorithm_for, verify_raw
from signing.policy import WSU_NS, VerifyPolicy
from signing.trust import TrustStore, fingerprint
from signing.xml import DEFAULT_LIMITS, ParserLimits, parse_xml

__all__ = [
    "SOAP12_NS",
    "WSSE_NS",
    "WSSE11_NS",
    "WSU_NS",
    "EB_NS",
    "EC_NS",
    "X509V3",
    "BASE64_BINARY",
    "SWA_CONTENT_SIGNATURE_TRANSFORM",
    "NAMESPACES",
    "swa_content_octets",
    "WssPolicy",
    "SignedReference",
    "WssVerifyResult",
    "WssSignedEnvelope",
    "sign_envelope",
    "verify_envelope",
    "verify_envelope_signature",
    "security_header",
    "element_path",
    "new_id",
    "copy_reference",
]

SOAP12_NS = "http://www.w3.org/2003/05/soap-envelope"
WSSE_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSSE11_NS = "http://docs.oasis-open.org/wss/oasis-wss-wssecurity-secext-1.1.xsd"
EB_NS = "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/"
EC_NS = "http://www.w3.org/2001/10/xml-exc-c14n#"
X509V3 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3"
BASE64_BINARY = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
SWA_CONTENT_SIGNATURE_TRANSFORM = (
    "http://docs.oasis-open.org/wss/oasis-wss-SwAProfile-1.1#Attachment-Content-Signature-Transform"
)

NAMESPACES: dict[str, str] = {
    "S12": SOAP12_NS,
    "wsse": WSSE_NS,
    "wsse11": WSSE11_NS,
    "wsu": WSU_NS,
    "ds": DS_NS,
    "eb": EB_NS,
    "ebbp": "http://docs.oasis-open.org/ebxml-bp/ebbp-signals-2.0",
    "xenc": "http://www.w3.org/2001/04/xmlenc#",
    "xenc11": "http://www.w3.org/2009/xmlenc11#",
}
"""Prefixes used in produced envelopes and in error paths."""

_PREFIX_OF = {ns: prefix for prefix, ns in NAMESPACES.items()}
_S = f"{{{SOAP12_NS}}}"
_WSSE = f"{{{WSSE_NS}}}"
_WSU_ID = f"{{{WSU_NS}}}Id"
_DS = f"{{{DS_NS}}}"
_EB = f"{{{EB_NS}}}"
_EXCLUSIVE = frozenset({C14N_EXCLUSIVE, C14N_EXCLUSIVE_WITH_COMMENTS})
_XML_TYPES = frozenset({"text/xml", "application/xml"})


def swa_content_octets(content: bytes, mime_type: str, *, where: str = "cid:") -> bytes:
    """The octets a ``cid:`` reference digests: ``content`` after the Attachment-Content-Signature-Transform.

    SwA 1.1 section 5.4.2, as WSS4J (Domibus, phase4, Holodeck) applies it, chosen by the MIME type the receiver
    sees (the part's Content-Type, or ``EncryptedData/@MimeType`` of an encrypted part; parameters ignored):

    * XML (``text/xml``, ``application/xml``, ``*/*+xml``): the document in exclusive C14N without comments. It is
      parsed by :func:`signing.xml.parse_xml`, so a DTD is ``XML_DTD_FORBIDDEN`` and content that is not XML is
      ``XML_MALFORMED``, both at ``where`` (the ``cid:`` URI). The attachment's size was bounded where the message
      was received; the parser's depth limit applies;
    * other ``text/*``: every line end (CR, LF or CRLF) made CRLF;
    * anything else (``application/gzip`` of a compressed payload, ``application/octet-stream``): unchanged.
    """
    media = mime_type.split(";", 1)[0].strip().lower()
    if media in _XML_TYPES or media.endswith("+xml"):
        try:
            root = parse_xml(content, limits=ParserLimits(max_bytes=max(len(content), DEFAULT_LIMITS.max_bytes)))
        except XmlError as exc:
            raise type(exc)(f"{where} is declared {media} but is not accepted XML: {exc.message}", field=where) from exc
        return canonicalize(root.getroottree(), C14N_EXCLUSIVE)
    if media.startswith("text/"):
        return content.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
    return content


def new_id(prefix: str) -> str:
    """A fresh XML id (an NCName) for a wsu:Id."""
    return f"{prefix}-{uuid.uuid4()}"


def element_path(el: etree._Element) -> str:
    """A readable path of ``el`` with the usual prefixes: ``/S12:Envelope/S12:Header/eb:Messaging``."""
    steps = []
    node: etree._Element | None = el
    while node is not None:
        if not isinstance(node.tag, str):
            steps.append("node()")
        else:
            q = etree.QName(node)
            prefix = _PREFIX_OF.get(q.namespace or "", "")
            name = (
                f"{prefix}:{q.localname}"
                if prefix
                else (f"{{{q.namespace}}}{q.localname}" if q.namespace else q.localname)
            )
            parent = node.getparent()
            if parent is not None:
                same = [c for c in parent if c.tag == node.tag]
                if len(same) > 1:
                    name += f"[{same.index(node) + 1}]"
            steps.append(name)
        node = node.getparent()
    return "/" + "/".join(reversed(steps))


class WssPolicy(BaseModel):
    """What a WS-Security signature of an AS4 envelope must cover and which algorithms it may use."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dsig: VerifyPolicy = Field(
        VerifyPolicy(),
        description="Algorithm allow-lists, SHA-1 permission, id attributes and certificate checks (signing.policy).",
    )
    require_messaging: bool = Field(True, description="The eb:Messaging header must be signed (AS4: always).")
    require_body: bool = Field(True, description="The soap:Body must be signed (AS4: always).")
    require_attachments: bool = Field(True, description="Every MIME attachment must be signed by a cid: reference.")
    max_references: int = Field(64, ge=1, description="Most References accepted in SignedInfo (bounds the work).")


_DEFAULT_POLICY = WssPolicy()


@dataclass(frozen=True)
class SignedReference:
    """One ds:Reference of a verified (or produced) signature."""

    uri: str
    transforms: tuple[str, ...]
    digest_method: str
    digest_value: str
    element: etree._Element = field(compare=False, repr=False)
    """The ds:Reference element itself (copied verbatim into non-repudiation receipts)."""

    def key(self) -> tuple[str, tuple[str, ...], str, str]:
        """What two references must share to be "the same": URI, transforms (sorted), digest method and value."""
        return (self.uri, tuple(sorted(self.transforms)), self.digest_method, self.digest_value)


@dataclass(frozen=True)
class WssVerifyResult:
    """What a verified WS-Security signature proves. Downstream code reads only these."""

    messaging: etree._Element | None
    """The signed eb:Messaging: the one child of soap:Header (None when absent and not required)."""
    body: etree._Element
    """The signed soap:Body child of the Envelope."""
    attachments: Mapping[str, bytes]
    """Content-ID (without ``cid:``) -> the bytes whose digest was verified."""
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    references: tuple[SignedReference, ...]
    signature: etree._Element
    signature_method: str
    c14n_method: str

    @property
    def signer_fingerprint(self) -> str:
        return fingerprint(self.certificate)


@dataclass(frozen=True)
class WssSignedEnvelope:
    """A signature whose signer certificate, SignatureValue and eb:Messaging / soap:Body digests verified.

    Its ``cid:`` digests are not checked yet: :meth:`verify_attachments` checks them against the attachments as
    signed (AS4: decrypted) and returns the :class:`WssVerifyResult`. Until then only :attr:`messaging`,
    :attr:`body` and :attr:`certificate` may be read (to authenticate the sender before decrypting)."""

    messaging: etree._Element | None
    body: etree._Element
    content_ids: frozenset[str]
    """The Content-IDs of the MIME attachments the signature was checked against."""
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    references: tuple[SignedReference, ...]
    signature: etree._Element
    signature_method: str
    c14n_method: str
    require_attachments: bool = True

    def verify_attachments(self, attachments: Mapping[str, tuple[bytes, str]]) -> WssVerifyResult:
        """The verified result, once each ``cid:`` reference's digest matches its attachment.

        ``attachments`` maps Content-IDs to (content octets, MIME type the receiver sees: the part's Content-Type,
        or ``EncryptedData/@MimeType`` of a decrypted part); the digest is over :func:`swa_content_octets`. The
        result's ``attachments`` are the content octets as received."""
        covered: set[str] = set()
        for ref in self.references:
            if not ref.uri.startswith("cid:"):
                continue
            cid = ref.uri[4:]
            attachment = attachments.get(cid)
            if attachment is None:
                raise ReferenceNotFound(f"no MIME attachment has Content-ID <{cid}>", field=ref.uri)
            octets = swa_content_octets(*attachment, where=ref.uri)
            if _b64(DIGESTS[ref.digest_method].digest(octets)) != ref.digest_value:
                raise DigestMismatch(f"{ref.uri} was altered after signing (digest mismatch)", field=ref.uri)
            covered.add(cid)
        if self.require_attachments:
            for cid in attachments:
                if cid not in covered:
                    raise ReferenceCountInvalid(
                        f"the signature does not cover the attachment cid:{cid}", field="cid:" + cid
                    )
        return WssVerifyResult(
            messaging=self.messaging,
            body=self.body,
            attachments={cid: attachments[cid][0] for cid in attachments if cid in covered},
            certificate=self.certificate,
            chain=self.chain,
            references=self.references,
            signature=self.signature,
            signature_method=self.signature_method,
            c14n_method=self.c14n_method,
        )


# --------------------------------------------------------------------------- signing


def security_header(envelope: etree._Element, *, create: bool = True) -> etree._Element | None:
    """The envelope's wsse:Security header (created, with soap:mustUnderstand, if asked and absent)."""
    header = envelope.find(_S + "Header")
    if header is None:
        if not create:
            return None
        header = etree.Element(_S + "Header")
        envelope.insert(0, header)
    security = header.find(_WSSE + "Security")
    if security is None and create:
        security = etree.Element(_WSSE + "Security", nsmap={"wsse": WSSE_NS, "wsu": WSU_NS})
        security.set(_S + "mustUnderstand", "true")
        header.insert(0, security)
    return security


def _ensure_id(el: etree._Element, prefix: str) -> str:
    value = el.get(_WSU_ID)
    if not value:
        value = new_id(prefix)
        el.set(_WSU_ID, value)
    return value


def _ds(parent: etree._Element, name: str, text: str | None = None, **attrib: str) -> etree._Element:
    el = etree.SubElement(parent, _DS + name, attrib)
    if text is not None:
        el.text = text
    return el


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def sign_envelope(
    envelope: etree._Element,
    signer: Signer,
    attachments: Mapping[str, tuple[bytes, str]] | None = None,
    *,
    algorithm: SignatureAlgorithm | str | None = None,
    digest: DigestAlgorithm | str = SHA256_DIGEST,
    token_id: str | None = None,
) -> etree._Element:
    """Sign ``envelope`` in place (eb:Messaging if present, soap:Body, every attachment); return the ds:Signature.

    ``attachments`` maps Content-IDs (without ``cid:``) to the content octets
    to sign (AS4: after compression, before encryption) and the MIME type the
    receiver will see (the part's Content-Type, or ``EncryptedData/@MimeType``
    when encrypted); each digest is over :func:`swa_content_octets`. Missing
    wsu:Ids are assigned. ``algorithm`` defaults to RSA-SHA256 / ECDSA for the
    signer's key.
    """
    if envelope.tag != _S + "Envelope":
        raise ConfigError(f"{element_path(envelope)} is not a SOAP 1.2 Envelope", field="envelope")
    if isinstance(algorithm, str):
        algorithm = SIGNATURES.get(algorithm) or _config_error(
            f"unknown signature method {algorithm}", "signature_method"
        )
    algorithm = algorithm or default_algorithm_for(signer.certificate)
    if isinstance(digest, str):
        digest = DIGESTS.get(digest) or _config_error(f"unknown digest method {digest}", "digest_method")
    security = security_header(envelope)
    assert security is not None
    header = security.getparent()
    if header is None:
        raise ConfigError("the wsse:Security header has no parent soap:Header", field="S12:Header")
    body = envelope.find(_S + "Body")
    if body is None:
        raise ConfigError("the envelope has no soap:Body to sign", field="S12:Body")
    targets = [el for el in header.findall(_EB + "Messaging")] + [body]

    bst_id = token_id or new_id("X509")
    bst = etree.SubElement(security, _WSSE + "BinarySecurityToken")
    bst.set("EncodingType", BASE64_BINARY)
    bst.set("ValueType", X509V3)
    bst.set(_WSU_ID, bst_id)
    bst.text = _b64(signer.certificate.public_bytes(Encoding.DER))

    signature = etree.SubElement(security, _DS + "Signature", nsmap={"ds": DS_NS})
    signature.set("Id", new_id("SIG"))
    signed_info = _ds(signature, "SignedInfo")
    _ds(signed_info, "CanonicalizationMethod", Algorithm=C14N_EXCLUSIVE)
    _ds(signed_info, "SignatureMethod", Algorithm=algorithm.uri)
    for target in targets:
        ref_id = _ensure_id(target, etree.QName(target).localname.lower())
        value = digest.digest(canonicalize(target, C14N_EXCLUSIVE))
        ref = _ds(signed_info, "Reference", URI="#" + ref_id)
        _ds(_ds(ref, "Transforms"), "Transform", Algorithm=C14N_EXCLUSIVE)
        _ds(ref, "DigestMethod", Algorithm=digest.uri)
        _ds(ref, "DigestValue", _b64(value))
    for cid, (content, mime_type) in (attachments or {}).items():
        octets = swa_content_octets(content, mime_type, where="cid:" + cid)
        ref = _ds(signed_info, "Reference", URI="cid:" + cid)
        _ds(_ds(ref, "Transforms"), "Transform", Algorithm=SWA_CONTENT_SIGNATURE_TRANSFORM)
        _ds(ref, "DigestMethod", Algorithm=digest.uri)
        _ds(ref, "DigestValue", _b64(digest.digest(octets)))
    value_el = _ds(signature, "SignatureValue")
    key_info = _ds(signature, "KeyInfo")
    str_el = etree.SubElement(key_info, _WSSE + "SecurityTokenReference")
    str_ref = etree.SubElement(str_el, _WSSE + "Reference")
    str_ref.set("URI", "#" + bst_id)
    str_ref.set("ValueType", X509V3)
    value_el.text = _b64(signer.sign(canonicalize(signed_info, C14N_EXCLUSIVE), algorithm))
    return signature


def _config_error(message: str, where: str):
    raise ConfigError(message, field=where)


# --------------------------------------------------------------------------- verification


def _only(parent: etree._Element, tag: str, what: str) -> etree._Element:
    found = parent.findall(tag)
    if len(found) != 1:
        raise SignatureMalformed(
            f"{element_path(parent)} holds {len(found)} {what}; exactly one is required",
            field=f"{element_path(parent)}/{what}",
        )
    return found[0]


def _algorithm(el: etree._Element) -> str:
    uri = el.get("Algorithm")
    if not uri:
        raise SignatureMalformed(f"{element_path(el)} has no Algorithm", field=element_path(el) + "/@Algorithm")
    return uri


def _inclusive_prefixes(el: etree._Element) -> tuple[str, ...]:
    inc = el.find(f"{{{EC_NS}}}InclusiveNamespaces")
    if inc is None:
        return ()
    return tuple(p for p in (inc.get("PrefixList") or "").split() if p != "#default")


def _check_signature_method(uri: str, policy: VerifyPolicy, where: str) -> None:
    if is_hmac(uri):
        raise HmacForbidden(f"HMAC signatures ({uri}) prove nothing about the sender", field=where)
    known = SIGNATURES.get(uri)
    if known is not None and known.weak and not policy.allow_sha1:
        raise WeakAlgorithm(f"{uri} uses SHA-1, not allowed for this party", field=where)
    if known is None or not policy.accepts_signature(uri):
        raise AlgorithmForbidden(f"signature method {uri} is not accepted", field=where)


def _check_digest_method(uri: str, policy: VerifyPolicy, where: str) -> None:
    known = DIGESTS.get(uri)
    if known is not None and known.weak and not policy.allow_sha1:
        raise WeakAlgorithm(f"digest {uri} is SHA-1, not allowed for this party", field=where)
    if known is None or not policy.accepts_digest(uri):
        raise AlgorithmForbidden(f"digest method {uri} is not accepted", field=where)


def _index_ids(root: etree._Element, attributes: tuple[str, ...]) -> dict[str, etree._Element]:
    """Every id carried in the document -> its element; SIG_DUPLICATE_ID when one is carried twice."""
    seen: dict[str, etree._Element] = {}
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        for attr in attributes:
            value = el.get(attr)
            if value is None:
                continue
            other = seen.get(value)
            if other is not None and other is not el:
                raise DuplicateId(
                    f"id {value!r} is carried by {element_path(other)} and {element_path(el)}",
                    field=element_path(el),
                )
            seen[value] = el
    return seen


@dataclass(frozen=True)
class _Ref:
    reference: SignedReference
    target: etree._Element | None
    cid: str | None
    c14n: str | None
    prefixes: tuple[str, ...]


def _parse_reference(
    ref: etree._Element, index: Mapping[str, etree._Element], content_ids: Collection[str], policy: WssPolicy
) -> _Ref:
    where = element_path(ref)
    uri = ref.get("URI")
    if uri is None or uri == "":
        raise ExternalReference(
            "a Reference without a #id or cid: URI leaves the signed part to guesswork", field=where
        )
    transforms: list[str] = []
    prefixes: tuple[str, ...] = ()
    digest_method = digest_value = None
    for child in ref:
        if not isinstance(child.tag, str):
            continue
        if child.tag == _DS + "Transforms":
            for t in child:
                if not isinstance(t.tag, str):
                    continue
                if t.tag != _DS + "Transform":
                    raise SignatureMalformed(f"unexpected {t.tag} in ds:Transforms", field=element_path(t))
                turi = _algorithm(t)
                transforms.append(turi)
                prefixes = _inclusive_prefixes(t) or prefixes
                if any(isinstance(c.tag, str) and c.tag != f"{{{EC_NS}}}InclusiveNamespaces" for c in t):
                    raise TransformForbidden(
                        f"transform {turi} carries parameters; none are accepted", field=element_path(t)
                    )
        elif child.tag == _DS + "DigestMethod":
            digest_method = _algorithm(child)
        elif child.tag == _DS + "DigestValue":
            digest_value = "".join((child.text or "").split())
    if digest_method is None or not digest_value:
        raise SignatureMalformed("ds:Reference lacks DigestMethod or DigestValue", field=where)
    _check_digest_method(digest_method, policy.dsig, where + "/ds:DigestMethod")
    signed = SignedReference(uri, tuple(transforms), digest_method, digest_value, ref)
    if uri.startswith("cid:"):
        if transforms != [SWA_CONTENT_SIGNATURE_TRANSFORM]:
            raise TransformForbidden(
                f"reference {uri} must use exactly the Attachment-Content-Signature-Transform, not {transforms}",
                field=where + "/ds:Transforms",
            )
        cid = uri[4:]
        if cid not in content_ids:
            raise ReferenceNotFound(f"no MIME attachment has Content-ID <{cid}>", field=uri)
        return _Ref(signed, None, cid, None, ())
    if not uri.startswith("#") or len(uri) < 2 or "(" in uri:
        raise ExternalReference(
            f"reference {uri!r} points outside the envelope or uses XPointer", field=where + "/@URI"
        )
    if len(transforms) != 1 or transforms[0] not in _EXCLUSIVE or transforms[0] not in policy.dsig.transforms:
        raise TransformForbidden(
            f"reference {uri} must use exactly one exclusive C14N transform, not {transforms}",
            field=where + "/ds:Transforms",
        )
    target = index.get(uri[1:])
    if target is None:
        raise ReferenceNotFound(f"no element carries id {uri[1:]!r}", field=uri)
    return _Ref(signed, target, None, transforms[0], prefixes)


def _certificate(signature: etree._Element, security: etree._Element) -> tuple[x509.Certificate, etree._Element]:
    key_info = signature.find(_DS + "KeyInfo")
    where = element_path(signature) + "/ds:KeyInfo"
    if key_info is None:
        raise CertificateMissing("ds:Signature has no KeyInfo naming the signer's token", field=where)
    refs = key_info.findall(f"{_WSSE}SecurityTokenReference/{_WSSE}Reference")
    if len(refs) != 1:
        raise CertificateMissing(
            "KeyInfo must hold one wsse:SecurityTokenReference/wsse:Reference to a BinarySecurityToken", field=where
        )
    uri = refs[0].get("URI") or ""
    if not uri.startswith("#"):
        raise ExternalReference(
            f"security token reference {uri!r} is not a same-envelope #id", field=element_path(refs[0])
        )
    tokens = [t for t in security.findall(_WSSE + "BinarySecurityToken") if t.get(_WSU_ID) == uri[1:]]
    if len(tokens) != 1:
        raise CertificateMissing(
            f"wsse:Security holds {len(tokens)} BinarySecurityToken with wsu:Id {uri[1:]!r}; exactly one is required",
            field=uri,
        )
    token = tokens[0]
    if token.get("ValueType") != X509V3:
        raise CertificateMalformed(
            f"token ValueType {token.get('ValueType')!r} is not X509v3", field=element_path(token)
        )
    encoding = token.get("EncodingType", BASE64_BINARY)
    if encoding != BASE64_BINARY:
        raise CertificateMalformed(f"token EncodingType {encoding!r} is not Base64Binary", field=element_path(token))
    try:
        cert = x509.load_der_x509_certificate(base64.b64decode("".join((token.text or "").split()), validate=True))
    except (binascii.Error, ValueError) as exc:
        raise CertificateMalformed(
            f"BinarySecurityToken is not a DER certificate: {exc}", field=element_path(token)
        ) from exc
    return cert, token


def verify_envelope(
    envelope: etree._Element,
    *,
    trust: TrustStore,
    attachments: Mapping[str, tuple[bytes, str]] | None = None,
    policy: WssPolicy = _DEFAULT_POLICY,
    at: datetime | None = None,
) -> WssVerifyResult:
    """Verify the WS-Security signature of a parsed SOAP 1.2 envelope for one party.

    ``attachments`` maps every MIME attachment's Content-ID (without ``cid:``)
    to its content octets as signed (AS4: decrypted, still compressed) and the
    MIME type the receiver sees (:meth:`WssSignedEnvelope.verify_attachments`).
    """
    attachments = dict(attachments or {})
    signed = verify_envelope_signature(envelope, trust=trust, content_ids=attachments, policy=policy, at=at)
    return signed.verify_attachments(attachments)


def verify_envelope_signature(
    envelope: etree._Element,
    *,
    trust: TrustStore,
    content_ids: Collection[str] = (),
    policy: WssPolicy = _DEFAULT_POLICY,
    at: datetime | None = None,
) -> WssSignedEnvelope:
    """Every check of :func:`verify_envelope` but the digests of the ``cid:`` references.

    ``content_ids`` are the Content-IDs (without ``cid:``) of the envelope's MIME attachments. The signer
    certificate, the SignatureValue and the digests of eb:Messaging and soap:Body are verified here, with public
    keys only; the attachment digests, which AS4 computes over the content before encryption, are verified by
    :meth:`WssSignedEnvelope.verify_attachments` once the attachments are decrypted.
    """
    at = at or datetime.now(UTC)
    attachments = frozenset(content_ids)
    if envelope.tag != _S + "Envelope":
        raise SignatureMalformed(
            f"the root element {element_path(envelope)} is not a SOAP 1.2 Envelope", field=element_path(envelope)
        )
    header = envelope.find(_S + "Header")
    bodies = envelope.findall(_S + "Body")
    if len(bodies) != 1:
        raise SignatureWrapping(
            f"the Envelope holds {len(bodies)} soap:Body elements; exactly one is processed",
            field="/S12:Envelope/S12:Body",
        )
    body = bodies[0]
    securities = header.findall(_WSSE + "Security") if header is not None else []
    if not securities:
        raise SignatureMissing(
            "the envelope has no wsse:Security header", field="/S12:Envelope/S12:Header/wsse:Security"
        )
    if len(securities) > 1:
        raise MultipleSignatures(
            f"{len(securities)} wsse:Security headers; exactly one is accepted",
            field="/S12:Envelope/S12:Header/wsse:Security",
        )
    security = securities[0]
    assert header is not None
    signatures = security.findall(_DS + "Signature")
    if not signatures:
        raise SignatureMissing("wsse:Security holds no ds:Signature", field=element_path(security) + "/ds:Signature")
    if len(signatures) > 1:
        raise MultipleSignatures(
            f"wsse:Security holds {len(signatures)} ds:Signature elements", field=element_path(security)
        )
    signature = signatures[0]
    messagings = header.findall(_EB + "Messaging")
    if len(messagings) > 1:
        raise SignatureWrapping(
            f"soap:Header holds {len(messagings)} eb:Messaging elements; exactly one is processed",
            field=element_path(header) + "/eb:Messaging",
        )
    messaging = messagings[0] if messagings else None

    signed_info = _only(signature, _DS + "SignedInfo", "ds:SignedInfo")
    value_el = _only(signature, _DS + "SignatureValue", "ds:SignatureValue")
    c14n_el = _only(signed_info, _DS + "CanonicalizationMethod", "ds:CanonicalizationMethod")
    c14n = _algorithm(c14n_el)
    if c14n not in _EXCLUSIVE or c14n not in policy.dsig.c14n_methods:
        raise AlgorithmForbidden(
            f"canonicalization {c14n} is not accepted; WS-Security here uses exclusive C14N",
            field=element_path(c14n_el),
        )
    method_el = _only(signed_info, _DS + "SignatureMethod", "ds:SignatureMethod")
    method = _algorithm(method_el)
    _check_signature_method(method, policy.dsig, element_path(method_el))
    check_signature_parameters(method_el, SIGNATURES[method], element_path(method_el))

    index = _index_ids(envelope, policy.dsig.id_attributes)
    ref_elements = signed_info.findall(_DS + "Reference")
    if not ref_elements:
        raise SignatureMalformed("SignedInfo holds no Reference", field=element_path(signed_info))
    if len(ref_elements) > policy.max_references:
        raise ReferenceCountInvalid(
            f"SignedInfo holds {len(ref_elements)} References; at most {policy.max_references} are accepted",
            field=element_path(signed_info),
        )
    refs = [_parse_reference(r, index, attachments, policy) for r in ref_elements]

    # Binding: every signed element must be one the receiver processes.
    covered: set[str] = set()
    for ref in refs:
        if ref.cid is not None:
            if ref.cid in covered:
                raise DuplicateId(f"attachment cid:{ref.cid} is referenced twice", field=ref.reference.uri)
            covered.add(ref.cid)
            continue
        target = ref.target
        assert target is not None
        if target is messaging:
            key = "messaging"
        elif target is body:
            key = "body"
        else:
            processed = (
                "eb:Messaging"
                if target.tag == _EB + "Messaging"
                else "soap:Body"
                if target.tag == _S + "Body"
                else "content"
            )
            raise SignatureWrapping(
                f"reference {ref.reference.uri} covers {element_path(target)}, which is not the processed {processed}",
                field=element_path(target),
            )
        if key in covered:
            raise DuplicateId(f"{element_path(target)} is referenced twice", field=ref.reference.uri)
        covered.add(key)
    if policy.require_messaging and "messaging" not in covered:
        where = element_path(messaging) if messaging is not None else "/S12:Envelope/S12:Header/eb:Messaging"
        raise ReferenceCountInvalid(f"the signature does not cover {where}", field=where)
    if policy.require_body and "body" not in covered:
        raise ReferenceCountInvalid("the signature does not cover /S12:Envelope/S12:Body", field=element_path(body))
    if policy.require_attachments:
        for cid in attachments:
            if cid not in covered:
                raise ReferenceCountInvalid(
                    f"the signature does not cover the attachment cid:{cid}", field="cid:" + cid
                )

    certificate, token = _certificate(signature, security)
    try:
        chain = trust.validate(certificate, (), policy=policy.dsig, at=at)
    except CertificateError as exc:
        exc.field = exc.field or element_path(token)
        raise

    try:
        signature_value = base64.b64decode("".join((value_el.text or "").split()), validate=True)
    except binascii.Error as exc:
        raise SignatureMalformed(f"SignatureValue is not base64: {exc}", field=element_path(value_el)) from exc
    canonical = canonicalize(signed_info, c14n, inclusive_prefixes=_inclusive_prefixes(c14n_el))
    if not verify_raw(certificate, signature_value, canonical, SIGNATURES[method]):
        raise SignatureValueInvalid(
            "SignatureValue does not match SignedInfo for the signer's key (SignedInfo altered or wrong key)",
            field=element_path(value_el),
        )
    for ref in refs:
        if ref.cid is not None:
            continue
        assert ref.target is not None and ref.c14n is not None
        computed = DIGESTS[ref.reference.digest_method].digest(
            canonicalize(ref.target, ref.c14n, inclusive_prefixes=ref.prefixes)
        )
        where = element_path(ref.target)
        if _b64(computed) != ref.reference.digest_value:
            raise DigestMismatch(f"{where} was altered after signing (digest mismatch)", field=where)

    return WssSignedEnvelope(
        messaging=messaging if "messaging" in covered else None,
        body=body,
        content_ids=attachments,
        certificate=certificate,
        chain=chain,
        references=tuple(r.reference for r in refs),
        signature=signature,
        signature_method=method,
        c14n_method=c14n,
        require_attachments=policy.require_attachments,
    )


def copy_reference(ref: SignedReference) -> etree._Element:
    """A detached copy of a verified ds:Reference (for ebbp:NonRepudiationInformation)."""
    return copy.deepcopy(ref.element)
