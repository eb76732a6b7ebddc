"""Algorithm identifiers of XMLDSig 1.0/1.1 (and RFC 6931) that the gateway knows.

Knowing an algorithm is not accepting it: what a verification accepts is the
allow-list of its :class:`~signing.policy.VerifyPolicy`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

from cryptography.hazmat.primitives import hashes

if TYPE_CHECKING:  # lxml stays a lazy import at runtime
    from lxml import etree

    from signing.xml import TakenText

__all__ = [
    "DS_NS",
    "C14N_INCLUSIVE",
    "C14N_INCLUSIVE_WITH_COMMENTS",
    "C14N_11",
    "C14N_11_WITH_COMMENTS",
    "C14N_EXCLUSIVE",
    "C14N_EXCLUSIVE_WITH_COMMENTS",
    "C14N_METHODS",
    "TRANSFORM_ENVELOPED",
    "TRANSFORM_XSLT",
    "TRANSFORM_XPATH",
    "TRANSFORM_XPATH_FILTER2",
    "TRANSFORM_BASE64",
    "DigestAlgorithm",
    "SignatureAlgorithm",
    "canonical_digest",
    "DIGESTS",
    "SIGNATURES",
    "SHA1_DIGEST",
    "SHA256_DIGEST",
    "SHA384_DIGEST",
    "SHA512_DIGEST",
    "RSA_SHA1",
    "RSA_SHA256",
    "RSA_SHA384",
    "RSA_SHA512",
    "RSA_PSS_SHA256",
    "RSA_PSS_SHA384",
    "RSA_PSS_SHA512",
    "ECDSA_SHA256",
    "ECDSA_SHA384",
    "ECDSA_SHA512",
    "PSS_NS",
    "is_hmac",
    "check_signature_parameters",
    "canonicalize",
]

DS_NS = "http://www.w3.org/2000/09/xmldsig#"
PSS_NS = "http://www.w3.org/2007/05/xmldsig-more#"
"""Namespace of ``pss:RSAPSSParams`` (RFC 6931 section 2.3.10)."""

C14N_INCLUSIVE: Final = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
C14N_INCLUSIVE_WITH_COMMENTS = C14N_INCLUSIVE + "#WithComments"
C14N_11 = "http://www.w3.org/2006/12/xml-c14n11"
C14N_11_WITH_COMMENTS = C14N_11 + "#WithComments"
C14N_EXCLUSIVE: Final = "http://www.w3.org/2001/10/xml-exc-c14n#"
C14N_EXCLUSIVE_WITH_COMMENTS = C14N_EXCLUSIVE + "WithComments"

C14N_METHODS = frozenset(
    {
        C14N_INCLUSIVE,
        C14N_INCLUSIVE_WITH_COMMENTS,
        C14N_11,
        C14N_11_WITH_COMMENTS,
        C14N_EXCLUSIVE,
        C14N_EXCLUSIVE_WITH_COMMENTS,
    }
)

TRANSFORM_ENVELOPED = DS_NS + "enveloped-signature"
TRANSFORM_XSLT = "http://www.w3.org/TR/1999/REC-xslt-19991116"
TRANSFORM_XPATH = "http://www.w3.org/TR/1999/REC-xpath-19991116"
TRANSFORM_XPATH_FILTER2 = "http://www.w3.org/2002/06/xmldsig-filter2"
TRANSFORM_BASE64 = DS_NS + "base64"


@dataclass(frozen=True)
class DigestAlgorithm:
    uri: str
    name: str
    weak: bool = False

    def digest(self, data: bytes) -> bytes:
        return hashlib.new(self.name, data).digest()

    def hash(self) -> hashes.HashAlgorithm:
        return getattr(hashes, self.name.upper())()


@dataclass(frozen=True)
class SignatureAlgorithm:
    uri: str
    key_type: Literal["rsa", "rsa-pss", "ec"]
    hash_name: str
    weak: bool = False

    def hash(self) -> hashes.HashAlgorithm:
        return getattr(hashes, self.hash_name.upper())()

    @property
    def salt_length(self) -> int:
        """RSASSA-PSS salt length of the ``*-rsa-MGF1`` methods: the hash length (RFC 6931 section 2.3.11)."""
        return self.hash().digest_size


SHA1_DIGEST = DigestAlgorithm(DS_NS + "sha1", "sha1", weak=True)
SHA256_DIGEST = DigestAlgorithm("http://www.w3.org/2001/04/xmlenc#sha256", "sha256")
SHA384_DIGEST = DigestAlgorithm("http://www.w3.org/2001/04/xmldsig-more#sha384", "sha384")
SHA512_DIGEST = DigestAlgorithm("http://www.w3.org/2001/04/xmlenc#sha512", "sha512")

RSA_SHA1 = SignatureAlgorithm(DS_NS + "rsa-sha1", "rsa", "sha1", weak=True)
RSA_SHA256 = SignatureAlgorithm("http://www.w3.org/2001/04/xmldsig-more#rsa-sha256", "rsa", "sha256")
RSA_SHA384 = SignatureAlgorithm("http://www.w3.org/2001/04/xmldsig-more#rsa-sha384", "rsa", "sha384")
RSA_SHA512 = SignatureAlgorithm("http://www.w3.org/2001/04/xmldsig-more#rsa-sha512", "rsa", "sha512")
# RFC 6931 section 2.3.11, RSASSA-PSS without parameters: MGF1 with the same hash, salt = hash length.
RSA_PSS_SHA256 = SignatureAlgorithm("http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1", "rsa-pss", "sha256")
RSA_PSS_SHA384 = SignatureAlgorithm("http://www.w3.org/2007/05/xmldsig-more#sha384-rsa-MGF1", "rsa-pss", "sha384")
RSA_PSS_SHA512 = SignatureAlgorithm("http://www.w3.org/2007/05/xmldsig-more#sha512-rsa-MGF1", "rsa-pss", "sha512")
ECDSA_SHA256 = SignatureAlgorithm("http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256", "ec", "sha256")
ECDSA_SHA384 = SignatureAlgorithm("http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384", "ec", "sha384")
ECDSA_SHA512 = SignatureAlgorithm("http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512", "ec", "sha512")

DIGESTS: dict[str, DigestAlgorithm] = {d.uri: d for d in (SHA1_DIGEST, SHA256_DIGEST, SHA384_DIGEST, SHA512_DIGEST)}
SIGNATURES: dict[str, SignatureAlgorithm] = {
    s.uri: s
    for s in (
        RSA_SHA1,
        RSA_SHA256,
        RSA_SHA384,
        RSA_SHA512,
        RSA_PSS_SHA256,
        RSA_PSS_SHA384,
        RSA_PSS_SHA512,
        ECDSA_SHA256,
        ECDSA_SHA384,
        ECDSA_SHA512,
    )
}


def is_hmac(uri: str) -> bool:
    """True for any HMAC SignatureMethod (xmldsig#hmac-sha1, xmldsig-more#hmac-sha256, ...)."""
    return "#hmac-" in uri.lower()


def check_signature_parameters(method: etree._Element, algorithm: SignatureAlgorithm, where: str) -> None:
    """Refuse SignatureMethod parameters that contradict ``algorithm``.

    The ``*-rsa-MGF1`` methods fix MGF1 with the same hash and a salt as long as the hash; a
    ``pss:RSAPSSParams/pss:SaltLength`` stating another length (which libxmlsec1 would ignore) is refused with
    SIG_ALGORITHM_FORBIDDEN, a non-numeric one with SIG_MALFORMED.
    """
    from gateway.errors import AlgorithmForbidden, SignatureMalformed

    for node in method.iterfind(f"{{{PSS_NS}}}RSAPSSParams/{{{PSS_NS}}}SaltLength"):
        text = (node.text or "").strip()
        if not text.isdigit():
            raise SignatureMalformed(f"pss:SaltLength {text!r} is not a number", field=where)
        if algorithm.key_type != "rsa-pss" or int(text) != algorithm.salt_length:
            raise AlgorithmForbidden(
                f"{algorithm.uri} with salt length {int(text)} is not accepted; the method fixes "
                f"{algorithm.salt_length if algorithm.key_type == 'rsa-pss' else 'no salt'}",
                field=where,
            )


def canonicalize(
    node: etree._Element | etree._ElementTree, method: str, *, inclusive_prefixes: tuple[str, ...] = ()
) -> bytes:
    """Canonicalize an element (or a whole ``ElementTree`` for URI="") with ``method``.

    C14N 1.1 is accepted by verification (xmlsec computes it); the gateway never produces it.
    """
    from lxml import etree

    if method in (C14N_EXCLUSIVE, C14N_EXCLUSIVE_WITH_COMMENTS):
        return etree.tostring(
            node,
            method="c14n",
            exclusive=True,
            with_comments=method == C14N_EXCLUSIVE_WITH_COMMENTS,
            inclusive_ns_prefixes=list(inclusive_prefixes) or None,
        )
    if method in (C14N_INCLUSIVE, C14N_INCLUSIVE_WITH_COMMENTS):
        if isinstance(node, etree._Element) and node.getparent() is not None:
            node = _detached(node)
        return etree.tostring(
            node, method="c14n", exclusive=False, with_comments=method == C14N_INCLUSIVE_WITH_COMMENTS
        )
    raise ValueError(f"cannot produce canonicalization {method}")


def canonical_digest(
    node: etree._Element | etree._ElementTree, method: str, digest: DigestAlgorithm, *, taken: TakenText | None = None
) -> bytes:
    """``digest`` of :func:`canonicalize` ``(node, method)``. With ``taken`` (:func:`signing.xml.take_text` of the
    node's tree) the canonical form is made of the tree without that text, which is hashed in its place from
    outside the tree: the same digest without a whole canonical copy of the text."""
    if taken is not None and taken.text is not None:
        running = hashlib.new(digest.name)
        if taken.splice(canonicalize(node, method), running.update):
            return running.digest()
        taken.put_back()
    return digest.digest(canonicalize(node, method))


_XML_NS = "http://www.w3.org/XML/1998/namespace"


def _detached(element: etree._Element) -> etree._Element:
    """A standalone copy of ``element`` carrying what inclusive C14N inherits from its ancestors.

    lxml canonicalizes a non-root element through a fake document that emits
    spurious ``xmlns=""`` on descendants under a default namespace, which
    xmlsec (correctly) does not. The copy declares every in-scope namespace on
    its root and the inherited ``xml:*`` attributes (C14N 1.0, section 2.4),
    so canonicalizing it as a document gives the node-set answer.
    """
    import copy

    from lxml import etree

    assert isinstance(element, etree._Element)
    attrib = dict(element.attrib)
    ancestor = element.getparent()
    while ancestor is not None:
        for name, value in ancestor.attrib.items():
            if name.startswith("{" + _XML_NS + "}") and name not in attrib:
                attrib[name] = value
        ancestor = ancestor.getparent()
    clone = etree.Element(element.tag, attrib, nsmap=element.nsmap)
    clone.text = element.text
    for child in element:
        clone.append(copy.deepcopy(child))
    return clone
