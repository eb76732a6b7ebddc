"""Enveloped XMLDSig signing.

The reference is computed with lxml's C14N (libxml2) and hashlib, SignedInfo
is canonicalized the same way, and the :class:`~signing.keys.Signer` produces
the SignatureValue, so a private key never has to leave its device. The
output verifies with xmlsec (python-xmlsec and the ``xmlsec1`` command) and
with signxml; the interop tests prove it.
"""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from gateway.errors import ConfigError, SignatureMalformed, WeakAlgorithm
from signing.algorithms import (
    DIGESTS,
    DS_NS,
    SIGNATURES,
    TRANSFORM_ENVELOPED,
    SignatureAlgorithm,
    canonical_digest,
    canonicalize,
)
from signing.keys import Signer, default_algorithm_for
from signing.policy import SigningProfile
from signing.xml import TakenText, ascii_only, parse_xml, serialize, take_text

__all__ = ["sign_document", "sign_element", "sign_tree", "SYSTEM_SIGNATURE"]

SYSTEM_SIGNATURE = "SystemSignature"
_DS = f"{{{DS_NS}}}"
_DEFAULT_PROFILE = SigningProfile()


def _sub(parent: etree._Element, name: str, text: str | None = None, **attrib: str) -> etree._Element:
    el = etree.SubElement(parent, _DS + name, attrib)
    if text is not None:
        el.text = text
    return el


def _signature_algorithm(profile: SigningProfile, signer: Signer) -> SignatureAlgorithm:
    if profile.signature_method is None:
        return default_algorithm_for(signer.certificate)
    algorithm = SIGNATURES.get(profile.signature_method)
    if algorithm is None:
        raise ConfigError(f"unknown signature method {profile.signature_method}", field="signing.signature_method")
    if algorithm.weak and not profile.allow_sha1:
        raise WeakAlgorithm(
            f"{algorithm.uri} is SHA-1 and this profile does not allow it", field="signing.signature_method"
        )
    return algorithm


def sign_element(
    root: etree._Element,
    signer: Signer,
    profile: SigningProfile = _DEFAULT_PROFILE,
    *,
    reference_id: str | None = None,
    taken: TakenText | None = None,
) -> etree._Element:
    """Sign ``root``'s document in place and return the new ds:Signature element.

    With ``reference_id`` the reference is ``#reference_id`` (the element
    carrying ``Id``/``ID``/``id`` equal to it) and the signature is enveloped
    in that element; otherwise the reference is ``""`` (the whole document).
    ``taken``: the text :func:`~signing.xml.take_text` took out of the document, digested in its place.
    """
    digest = DIGESTS.get(profile.digest_method)
    if digest is None:
        raise ConfigError(f"unknown digest method {profile.digest_method}", field="signing.digest_method")
    if digest.weak and not profile.allow_sha1:
        raise WeakAlgorithm(f"{digest.uri} is SHA-1 and this profile does not allow it", field="signing.digest_method")
    algorithm = _signature_algorithm(profile, signer)

    if reference_id is None:
        target, uri = root, ""
    else:
        found = root.xpath("//*[@Id=$v or @ID=$v or @id=$v]", v=reference_id)
        if len(found) != 1:
            raise SignatureMalformed(
                f"reference id {reference_id!r} is carried by {len(found)} elements; exactly one is required",
                field=f"#{reference_id}",
            )
        target, uri = found[0], "#" + reference_id

    if profile.placement == "system-signature":
        if reference_id is not None:
            raise ConfigError("the system-signature placement signs the whole document", field="signing.placement")
        # An unprefixed <SystemSignature> takes the root's default namespace, if it has one.
        default_ns = root.nsmap.get(None)
        tag = f"{{{default_ns}}}{SYSTEM_SIGNATURE}" if default_ns else SYSTEM_SIGNATURE
        parent = root.find(tag)
        if parent is None:
            parent = etree.SubElement(root, tag)
        else:
            for child in list(parent):
                parent.remove(child)
            parent.text = None
    else:
        parent = target

    # The enveloped-signature transform removes exactly the ds:Signature node, so the digest
    # of the reference can be taken before the signature is inserted.
    node = root.getroottree() if uri == "" else target
    digest_value = base64.b64encode(canonical_digest(node, profile.c14n, digest, taken=taken)).decode("ascii")

    signature = etree.SubElement(parent, _DS + "Signature", nsmap={"ds": DS_NS})
    signed_info = _sub(signature, "SignedInfo")
    _sub(signed_info, "CanonicalizationMethod", Algorithm=profile.c14n)
    _sub(signed_info, "SignatureMethod", Algorithm=algorithm.uri)
    reference = _sub(signed_info, "Reference", URI=uri)
    transforms = _sub(reference, "Transforms")
    _sub(transforms, "Transform", Algorithm=TRANSFORM_ENVELOPED)
    _sub(transforms, "Transform", Algorithm=profile.c14n)
    _sub(reference, "DigestMethod", Algorithm=digest.uri)
    _sub(reference, "DigestValue", digest_value)
    signature_value = _sub(signature, "SignatureValue")
    key_info = _sub(signature, "KeyInfo")
    x509_data = _sub(key_info, "X509Data")
    certificates = (signer.certificate, *(signer.chain if profile.include_chain else ()))
    for cert in certificates:
        _sub(x509_data, "X509Certificate", base64.b64encode(cert.public_bytes(Encoding.DER)).decode("ascii"))

    raw = signer.sign(canonicalize(signed_info, profile.c14n), algorithm)
    signature_value.text = base64.b64encode(raw).decode("ascii")
    return signature


def sign_document(
    data: bytes | etree._Element,
    signer: Signer,
    profile: SigningProfile = _DEFAULT_PROFILE,
    *,
    reference_id: str | None = None,
) -> bytes:
    """Sign a document and return its serialized bytes.

    ``data`` may be bytes (parsed with the hardened parser) or an element (its
    document is signed in place).
    """
    root = parse_xml(data) if isinstance(data, (bytes, bytearray, str)) else data
    plain = isinstance(data, bytes) and ascii_only(data, root)  # the signature adds ASCII only
    parsed = isinstance(data, (bytes, bytearray, str))
    del data  # a caller that handed over its only reference frees the bytes before the tree is canonicalized
    return sign_tree(root, signer, profile, ascii=plain, reference_id=reference_id, spent=parsed)


def sign_tree(
    root: etree._Element,
    signer: Signer,
    profile: SigningProfile = _DEFAULT_PROFILE,
    *,
    ascii: bool = False,
    reference_id: str | None = None,
    spent: bool = False,
) -> bytes:
    """Sign ``root``'s document in place (:func:`sign_element`) and return it serialized; ``ascii``: the tree holds
    ASCII characters only (:func:`~signing.xml.ascii_only`), which lets its serialization take less memory.

    ``spent``: the tree was parsed by :func:`~signing.xml.parse_xml` and nothing uses it afterwards. Its large text
    is then taken out (:func:`~signing.xml.take_text`) and not put back, so that the document's digest and
    serialization are made without whole copies of it."""
    taken = take_text(root) if spent else None
    sign_element(root, signer, profile, reference_id=reference_id, taken=taken)
    return serialize(root.getroottree(), ascii=ascii, taken=taken)
