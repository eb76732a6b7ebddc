"""Verification of enveloped XMLDSig under a frozen policy.

:func:`verify_document` returns *what was signed*: the element the single
Reference covers, bound to the element the caller will process, and the
validated signer certificate. It never answers a bare bool, and it checks, in
this order, each failure with its own code:

1. structure: exactly the allowed number of ds:Signature elements
   (``SIG_MISSING``, ``SIG_MULTIPLE``), a well-formed SignedInfo
   (``SIG_MALFORMED``);
2. algorithms: no HMAC (``SIG_HMAC_FORBIDDEN``), no SHA-1 unless allowed
   (``SIG_WEAK_ALGORITHM``), only allow-listed c14n/signature/digest methods
   (``SIG_ALGORITHM_FORBIDDEN``) and transforms (``SIG_TRANSFORM_FORBIDDEN``);
3. references: the required count (``SIG_REFERENCE_COUNT``), same-document
   only (``SIG_EXTERNAL_REFERENCE``), resolving to exactly one element
   (``SIG_REFERENCE_NOT_FOUND``, ``SIG_DUPLICATE_ID``), with the signature
   where the profile places it (``SIG_LOCATION_INVALID``) and the signed
   element being the processed one (``SIG_WRAPPING``);
4. the signer certificate against the party's trust store (``CERT_*``);
5. the cryptography, by libxmlsec1 with the validated key only (KeyInfo is
   never trusted by itself); a failure is diagnosed as altered content
   (``SIG_DIGEST_MISMATCH``) or altered SignedInfo / wrong key
   (``SIG_SIGNATURE_INVALID``).

A document holding a large text (a base64 attachment, :func:`signing.xml.take_text`) outside its signature is
checked with that text out of the tree: libxml2 canonicalizes a text node by copying it whole, twice, so libxmlsec1
would hold three times the text. Each reference's digest is then taken over the same libxml2 canonical form with the
text spliced in chunk by chunk (:meth:`~signing.xml.TakenText.splice`) and the SignatureValue is checked over the
canonical SignedInfo with the validated key; anything that check does not cover (a transform or parameter beyond the
enveloped signature and one canonicalization, a failed check) goes to libxmlsec1 with the text put back, so it
only ever accepts what libxmlsec1 would, and every failure is libxmlsec1's diagnosis. :attr:`VerifyResult.taken`
then holds the text, still out of the tree.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from lxml import etree

from gateway.errors import (
    AlgorithmForbidden,
    CertificateMalformed,
    CertificateMissing,
    DigestMismatch,
    DuplicateId,
    ExternalReference,
    HmacForbidden,
    MultipleSignatures,
    ReferenceCountInvalid,
    ReferenceNotFound,
    SignatureLocationInvalid,
    SignatureMalformed,
    SignatureMissing,
    SignatureValueInvalid,
    SignatureWrapping,
    TransformForbidden,
    WeakAlgorithm,
)
from signing.algorithms import (
    C14N_METHODS,
    DIGESTS,
    DS_NS,
    SIGNATURES,
    TRANSFORM_ENVELOPED,
    canonicalize,
    check_signature_parameters,
    is_hmac,
)
from signing.keys import verify_raw
from signing.policy import VerifyPolicy
from signing.sign import SYSTEM_SIGNATURE
from signing.trust import TrustStore, fingerprint
from signing.xml import TakenText, parse_xml, take_text

__all__ = ["VerifyResult", "verify_document"]

_DS = f"{{{DS_NS}}}"
_NS = {"ds": DS_NS}
_FIND_SIGNATURES = etree.XPath("//ds:Signature", namespaces=_NS)
_DEFAULT_POLICY = VerifyPolicy()


@dataclass(frozen=True)
class VerifyResult:
    """What a successful verification proves."""

    element: etree._Element
    """The signed element (the document root for URI=""): the only content downstream code may read."""
    certificate: x509.Certificate
    """The signer's certificate, validated against the party's trust store."""
    chain: tuple[x509.Certificate, ...]
    """The validated path, signer first."""
    signature_method: str
    digest_method: str
    c14n_method: str
    reference_uri: str
    signature: etree._Element
    """The ds:Signature element that was verified."""
    taken: TakenText | None = None
    """With ``leave_out``: the document's large text, left out of the tree (its element's text is the marker):
    outputs of :attr:`element` are made with it (:func:`signing.xml.serialize`); None when the tree is whole."""

    @property
    def signer_fingerprint(self) -> str:
        return fingerprint(self.certificate)

    @property
    def signer_subject(self) -> str:
        return self.certificate.subject.rfc4514_string()


def _path_of(el: etree._Element) -> str:
    return el.getroottree().getpath(el)


def _child(parent: etree._Element, index: int, name: str) -> etree._Element:
    children = [c for c in parent if isinstance(c.tag, str)]
    if len(children) <= index or children[index].tag != _DS + name:
        raise SignatureMalformed(f"ds:{name} missing or out of order in {_path_of(parent)}", field=f"ds:{name}")
    return children[index]


def _algorithm(el: etree._Element, what: str) -> str:
    uri = el.get("Algorithm")
    if not uri:
        raise SignatureMalformed(f"ds:{what} has no Algorithm attribute", field=f"ds:{what}/@Algorithm")
    return uri


def _check_signature_method(uri: str, policy: VerifyPolicy) -> None:
    if is_hmac(uri):
        raise HmacForbidden(f"HMAC signatures ({uri}) prove nothing about the sender", field="ds:SignatureMethod")
    known = SIGNATURES.get(uri)
    if known is not None and known.weak and not policy.allow_sha1:
        raise WeakAlgorithm(f"{uri} uses SHA-1, not allowed for this party", field="ds:SignatureMethod")
    if known is None or not policy.accepts_signature(uri):
        raise AlgorithmForbidden(f"signature method {uri} is not accepted", field="ds:SignatureMethod")


def _check_digest_method(uri: str, policy: VerifyPolicy) -> None:
    known = DIGESTS.get(uri)
    if known is not None and known.weak and not policy.allow_sha1:
        raise WeakAlgorithm(f"digest {uri} is SHA-1, not allowed for this party", field="ds:DigestMethod")
    if known is None or not policy.accepts_digest(uri):
        raise AlgorithmForbidden(f"digest method {uri} is not accepted", field="ds:DigestMethod")


@dataclass(frozen=True)
class _Reference:
    uri: str
    target: etree._Element
    id_attribute: str | None
    transforms: tuple[str, ...]
    digest_method: str
    digest_value: str


@lru_cache(maxsize=16)
def _id_finder(attributes: tuple[str, ...]) -> etree.XPath:
    """One compiled XPath finding every element that carries a given id under any id attribute."""
    namespaces: dict[str, str] = {}
    tests = []
    for attr in attributes:
        if attr.startswith("{"):
            ns, _, local = attr[1:].partition("}")
            prefix = f"n{len(namespaces)}"
            namespaces[prefix] = ns
            tests.append(f"@{prefix}:{local}=$v")
        else:
            tests.append(f"@{attr}=$v")
    return etree.XPath(f"//*[{' or '.join(tests)}]", namespaces=namespaces)


def _resolve(root: etree._Element, ref: etree._Element, policy: VerifyPolicy) -> _Reference:
    uri = ref.get("URI")
    if uri is None:
        raise ExternalReference(
            "a Reference without URI leaves the signed content to the application", field="ds:Reference"
        )
    id_attribute = None
    if uri == "":
        target = root
    elif uri.startswith("#") and "(" not in uri and len(uri) > 1:
        wanted = uri[1:]
        elements = {
            id(el): (el, next(a for a in policy.id_attributes if el.get(a) == wanted))
            for el in _id_finder(policy.id_attributes)(root, v=wanted)
        }
        if not elements:
            raise ReferenceNotFound(f"no element carries id {wanted!r}", field=f"ds:Reference[@URI='{uri}']")
        if len(elements) > 1:
            paths = sorted(_path_of(el) for el, _ in elements.values())
            raise DuplicateId(
                f"id {wanted!r} is carried by {len(elements)} elements ({', '.join(paths)})",
                field=f"ds:Reference[@URI='{uri}']",
            )
        target, id_attribute = next(iter(elements.values()))
    else:
        raise ExternalReference(
            f"reference {uri!r} points outside the document or uses XPointer", field="ds:Reference/@URI"
        )
    transforms: list[str] = []
    digest_method = digest_value = None
    for child in ref:
        if child.tag == _DS + "Transforms":
            for t in child:
                if not isinstance(t.tag, str):
                    continue
                if t.tag != _DS + "Transform":
                    raise SignatureMalformed(f"unexpected {t.tag} in ds:Transforms", field="ds:Transforms")
                turi = _algorithm(t, "Transform")
                if turi not in policy.transforms:
                    raise TransformForbidden(f"transform {turi} is not accepted", field="ds:Transform/@Algorithm")
                if len(t):
                    raise TransformForbidden(
                        f"transform {turi} carries parameters ({str(t[0].tag)}); none are accepted",
                        field="ds:Transform",
                    )
                transforms.append(turi)
        elif child.tag == _DS + "DigestMethod":
            digest_method = _algorithm(child, "DigestMethod")
        elif child.tag == _DS + "DigestValue":
            digest_value = (child.text or "").strip()
    if digest_method is None or not digest_value:
        raise SignatureMalformed("ds:Reference lacks DigestMethod or DigestValue", field="ds:Reference")
    _check_digest_method(digest_method, policy)
    return _Reference(uri, target, id_attribute, tuple(transforms), digest_method, digest_value)


def _check_placement(
    root: etree._Element, signature: etree._Element, target: etree._Element, policy: VerifyPolicy
) -> None:
    parent = signature.getparent()
    if policy.placement == "system-signature":
        ok = (
            parent is not None
            and etree.QName(parent).localname == SYSTEM_SIGNATURE
            and parent.getparent() is root
            and target is root
        )
        where = f"/{str(root.tag)}/{SYSTEM_SIGNATURE}"
    else:
        ok = parent is target
        where = "a child of the signed element"
    if not ok:
        raise SignatureLocationInvalid(
            f"ds:Signature at {_path_of(signature)} must be {where}", field=_path_of(signature)
        )


def _bind(
    root: etree._Element,
    target: etree._Element,
    expect: str | etree._Element | None,
    namespaces: Mapping[str, str] | None,
    policy: VerifyPolicy,
) -> None:
    if expect is None:
        if policy.require_root_signed and target is not root:
            raise SignatureWrapping(
                f"the signature covers {_path_of(target)}, not the document that will be processed",
                field=_path_of(target),
            )
        return
    if isinstance(expect, str):
        found = root.xpath(expect, namespaces=dict(namespaces or {}))
        if not isinstance(found, list) or len(found) != 1 or not isinstance(found[0], etree._Element):
            raise SignatureWrapping(
                f"{expect!r} selects {len(found) if isinstance(found, list) else 'no'} elements; "
                "exactly one signed element is required",
                field=expect,
            )
        expected = found[0]
    else:
        expected = expect
    if expected is not target:
        raise SignatureWrapping(
            f"the element to process ({_path_of(expected)}) is not the signed element ({_path_of(target)})",
            field=_path_of(expected),
        )


@lru_cache(maxsize=1024)
def _decode_certificate(text: str) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(base64.b64decode("".join(text.split()), validate=True))
    except (binascii.Error, ValueError) as exc:
        raise CertificateMalformed(
            f"X509Certificate is not a DER certificate: {exc}", field="ds:X509Certificate"
        ) from exc


def _certificates(signature: etree._Element) -> list[x509.Certificate]:
    return [
        _decode_certificate(node.text or "")
        for node in signature.iterfind("ds:KeyInfo/ds:X509Data/ds:X509Certificate", namespaces=_NS)
    ]


def _pick_leaf(
    certs: list[x509.Certificate], trust: TrustStore, at: datetime
) -> tuple[x509.Certificate, list[x509.Certificate]]:
    if not certs:
        live = [
            p.certificate
            for p in trust.pinned
            if (p.accept_from is None or p.accept_from <= at) and (p.accept_until is None or at <= p.accept_until)
        ]
        if len(live) == 1:
            return live[0], []
        raise CertificateMissing(
            "KeyInfo carries no X509Certificate and the party has no single pinned certificate to use",
            field="ds:KeyInfo",
        )
    if len(certs) == 1:
        return certs[0], []
    # The leaf is the certificate that issued none of the others; by convention it comes first.
    leaves = [c for c in certs if c.subject not in {o.issuer for o in certs if o is not c}]
    leaf = leaves[0] if leaves else certs[0]
    return leaf, [c for c in certs if c is not leaf]


@lru_cache(maxsize=1024)
def _xmlsec_key(certificate: x509.Certificate) -> xmlsec.Key:
    """The certificate's public key alone (no certificate attached: cheaper to copy into each context)."""
    spki = certificate.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    return xmlsec.Key.from_memory(spki, xmlsec.constants.KeyDataFormatPem, None)


def _positions(el: etree._Element) -> list[int]:
    """Child positions from the root down to ``el`` (stable across a deep copy)."""
    out = []
    while (parent := el.getparent()) is not None:
        out.append(parent.index(el))
        el = parent
    return out[::-1]


def _follow(root: etree._Element, positions: list[int]) -> etree._Element:
    for i in positions:
        root = root[i]
    return root


def _diagnose(
    root: etree._Element,
    signature: etree._Element,
    signed_info: etree._Element,
    c14n: str,
    algorithm: str,
    signature_value: bytes,
    ref: _Reference,
    certificate: x509.Certificate,
) -> Exception:
    """Tell altered content from altered SignedInfo after libxmlsec1 said no."""
    if not verify_raw(certificate, signature_value, canonicalize(signed_info, c14n), SIGNATURES[algorithm]):
        return SignatureValueInvalid(
            "SignatureValue does not match SignedInfo for the signer's key (SignedInfo altered or wrong key)",
            field="ds:SignatureValue",
        )
    c14n_transforms = [t for t in ref.transforms if t in C14N_METHODS]
    method = c14n_transforms[-1] if c14n_transforms else "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
    tree = copy.deepcopy(root.getroottree())
    copy_root = tree.getroot()
    copy_sig = _follow(copy_root, _positions(signature))
    copy_parent = copy_sig.getparent()
    if copy_parent is None:
        raise SignatureLocationInvalid("ds:Signature has no parent element", field="ds:Signature")
    copy_parent.remove(copy_sig)
    node = tree if ref.uri == "" else _follow(copy_root, _positions(ref.target))
    try:
        computed = base64.b64encode(DIGESTS[ref.digest_method].digest(canonicalize(node, method))).decode()
    except ValueError:
        computed = None
    if computed != ref.digest_value:
        return DigestMismatch(
            f"the content of {_path_of(ref.target)} was altered after signing (digest mismatch)",
            field=_path_of(ref.target),
        )
    return SignatureValueInvalid("libxmlsec1 rejected the signature", field="ds:Signature")


def verify_document(
    data: bytes | str | etree._Element,
    *,
    trust: TrustStore,
    policy: VerifyPolicy = _DEFAULT_POLICY,
    expect: str | etree._Element | None = None,
    namespaces: Mapping[str, str] | None = None,
    at: datetime | None = None,
    leave_out: bool = False,
) -> VerifyResult:
    """Verify the enveloped signature of a document for one party.

    ``expect`` names the element the caller will process (an XPath over the
    document, with ``namespaces``, or the element itself); it must be the
    signed element. Without it the signed element must be the root.
    ``at`` is the instant certificates are checked at (default: now).
    ``leave_out``: the document's large text (:func:`signing.xml.take_text`) is left out of the tree after the
    check (:attr:`VerifyResult.taken`), however it was checked; by default the tree is whole again.
    """
    at = at or datetime.now(UTC)
    root = parse_xml(data) if isinstance(data, (bytes, bytearray, str)) else data

    signatures = _FIND_SIGNATURES(root)
    if not signatures:
        raise SignatureMissing("the document carries no ds:Signature", field="ds:Signature")
    if len(signatures) > policy.max_signatures:
        raise MultipleSignatures(
            f"{len(signatures)} ds:Signature elements, at most {policy.max_signatures} accepted "
            f"({', '.join(_path_of(s) for s in signatures)})",
            field="ds:Signature",
        )
    signature = signatures[0]
    signed_info = _child(signature, 0, "SignedInfo")
    signature_value_el = _child(signature, 1, "SignatureValue")
    c14n = _algorithm(_child(signed_info, 0, "CanonicalizationMethod"), "CanonicalizationMethod")
    if c14n not in policy.c14n_methods:
        raise AlgorithmForbidden(f"canonicalization {c14n} is not accepted", field="ds:CanonicalizationMethod")
    method_el = _child(signed_info, 1, "SignatureMethod")
    method = _algorithm(method_el, "SignatureMethod")
    _check_signature_method(method, policy)
    check_signature_parameters(method_el, SIGNATURES[method], "ds:SignatureMethod")

    references = signed_info.findall(_DS + "Reference")
    if len(references) != policy.references:
        raise ReferenceCountInvalid(
            f"SignedInfo holds {len(references)} Reference(s); the profile requires {policy.references}",
            field="ds:SignedInfo",
        )
    refs = [_resolve(root, r, policy) for r in references]
    primary = refs[0]
    if TRANSFORM_ENVELOPED not in primary.transforms:
        raise SignatureLocationInvalid(
            "the reference lacks the enveloped-signature transform; only enveloped signatures are accepted",
            field="ds:Transforms",
        )
    _check_placement(root, signature, primary.target, policy)
    _bind(root, primary.target, expect, namespaces, policy)

    try:
        signature_value = base64.b64decode("".join((signature_value_el.text or "").split()), validate=True)
    except binascii.Error as exc:
        raise SignatureMalformed(f"SignatureValue is not base64: {exc}", field="ds:SignatureValue") from exc

    leaf, presented = _pick_leaf(_certificates(signature), trust, at)
    chain = trust.validate(leaf, presented, policy=policy, at=at)

    checked = _Signature(root, signature, signed_info, c14n, method, signature_value, refs, leaf)
    taken = take_text(root)
    if taken is None:
        _xmlsec_check(checked)
    elif not _spliced_check(checked, taken):
        taken.put_back()
        _xmlsec_check(checked)
        taken = take_text(primary.target) if leave_out else None  # out again for the caller's outputs
    elif not leave_out:
        taken.put_back()
        taken = None

    return VerifyResult(
        element=primary.target,
        certificate=leaf,
        chain=chain,
        signature_method=method,
        digest_method=primary.digest_method,
        c14n_method=c14n,
        reference_uri=primary.uri,
        signature=signature,
        taken=taken,
    )


def _inside(element: etree._Element, ancestor: etree._Element) -> bool:
    return any(a is ancestor for a in element.iterancestors()) or element is ancestor


@dataclass(frozen=True)
class _Signature:
    """A signature whose structure, algorithms, references and signer passed the policy: what the cryptographic
    check needs."""

    root: etree._Element
    signature: etree._Element
    signed_info: etree._Element
    c14n: str
    method: str
    signature_value: bytes
    refs: list[_Reference]
    certificate: x509.Certificate


def _spliced_check(checked: _Signature, taken: TakenText) -> bool:
    """Whether the signature holds, checked with ``taken``'s text out of the tree (see the module's docstring);
    False for a signature this check does not cover as well as for one that fails it."""
    root, signature, signed_info, refs = checked.root, checked.signature, checked.signed_info, checked.refs
    c14n, method, signature_value, certificate = (
        checked.c14n,
        checked.method,
        checked.signature_value,
        checked.certificate,
    )
    if _inside(taken.element, signature) or any(isinstance(c.tag, str) for c in _c14n_parameters(signed_info)):
        return False
    try:
        if not verify_raw(certificate, signature_value, canonicalize(signed_info, c14n), SIGNATURES[method]):
            return False
        for ref in refs:
            transforms = list(ref.transforms)
            enveloped = transforms[:1] == [TRANSFORM_ENVELOPED]  # first, on the node-set, or not covered here
            if enveloped:
                transforms.pop(0)
            if len(transforms) > 1 or any(t not in C14N_METHODS for t in transforms):
                return False
            if not enveloped and (_inside(signature, ref.target) or ref.uri == ""):
                return False
            c14n_method = transforms[0] if transforms else "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
            copy_tree = copy.deepcopy(root.getroottree())
            copy_root = copy_tree.getroot()
            if enveloped:
                _remove_keeping_tail(_follow(copy_root, _positions(signature)))
            node = copy_tree if ref.uri == "" else _follow(copy_root, _positions(ref.target))
            canonical = canonicalize(node, c14n_method)
            running = hashlib.new(DIGESTS[ref.digest_method].name)
            marker = taken.marker.encode("ascii")
            if canonical.count(marker) == 0:
                running.update(canonical)
            elif not taken.splice(canonical, running.update):
                return False
            if not hmac.compare_digest(base64.b64encode(running.digest()).decode("ascii"), ref.digest_value):
                return False
    except ValueError:  # a canonicalization lxml does not produce (C14N 1.1), a malformed value
        return False
    return True


def _c14n_parameters(signed_info: etree._Element) -> list[etree._Element]:
    """Children of SignedInfo's CanonicalizationMethod and of every Transform (InclusiveNamespaces and kin)."""
    out = list(signed_info[0]) if len(signed_info) else []
    out.extend(child for t in signed_info.iter(_DS + "Transform") for child in t)
    return out


def _remove_keeping_tail(element: etree._Element) -> None:
    """Remove ``element`` but not the text after it (lxml removes an element's tail with it; the enveloped-signature
    transform removes the signature's nodes only)."""
    parent = element.getparent()
    assert parent is not None  # the signature was checked to envelop nothing but sit inside the document
    if element.tail:
        previous = element.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + element.tail
        else:
            parent.text = (parent.text or "") + element.tail
    parent.remove(element)


def _xmlsec_check(checked: _Signature) -> None:
    """libxmlsec1's check of the signature with the signer's key; its failure diagnosed (:func:`_diagnose`)."""
    root, signature, signed_info, refs, leaf = (
        checked.root,
        checked.signature,
        checked.signed_info,
        checked.refs,
        checked.certificate,
    )
    primary = refs[0]
    ctx = xmlsec.SignatureContext()
    ctx.key = _xmlsec_key(leaf)
    for ref in refs:
        if ref.id_attribute is not None:
            if ref.id_attribute.startswith("{"):
                ns, _, local = ref.id_attribute[1:].partition("}")
                ctx.register_id(ref.target, local, ns)
            else:
                ctx.register_id(ref.target, ref.id_attribute)
    try:
        ctx.verify(signature)
    except xmlsec.Error:
        raise _diagnose(
            root, signature, signed_info, checked.c14n, checked.method, checked.signature_value, primary, leaf
        ) from None
