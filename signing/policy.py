"""Frozen, secure-by-default policies for producing and accepting XML signatures.

A :class:`SigningProfile` says how the gateway signs for one party; a
:class:`VerifyPolicy` says what it accepts from one party. Both are typed,
frozen configuration, passed explicitly. The defaults are what a national CA
auditor expects: no SHA-1, no HMAC, no XSLT/XPath transforms, exactly one
enveloped signature with exactly one same-document reference that covers the
element the gateway will process.

The VNSW legacy profile (enveloped signature inside ``<SystemSignature>``,
inclusive C14N 1.0) exists for ministries still on the old exchange; even
there SHA-1 is refused unless that party's profile sets ``allow_sha1``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from signing.algorithms import (
    C14N_EXCLUSIVE,
    C14N_INCLUSIVE,
    C14N_METHODS,
    DIGESTS,
    RSA_SHA1,
    SHA1_DIGEST,
    SHA256_DIGEST,
    SIGNATURES,
    TRANSFORM_ENVELOPED,
)

__all__ = ["Placement", "SigningProfile", "VerifyPolicy", "WSU_NS", "EKU_DOCUMENT_SIGNING"]

WSU_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
EKU_DOCUMENT_SIGNING = "1.3.6.1.5.5.7.3.36"
_EKU_CLIENT_AUTH = "1.3.6.1.5.5.7.3.2"
_EKU_EMAIL_PROTECTION = "1.3.6.1.5.5.7.3.4"
_EKU_ANY = "2.5.29.37.0"

Placement = Literal["enveloped", "system-signature"]
"""Where the ds:Signature sits: ``enveloped`` as the last child of the signed element;
``system-signature`` (VNSW legacy) inside ``/Envelope/SystemSignature``, signing the whole document."""


class SigningProfile(BaseModel):
    """How the gateway signs documents for one party."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    c14n: Literal[
        "http://www.w3.org/2001/10/xml-exc-c14n#",
        "http://www.w3.org/TR/2001/REC-xml-c14n-20010315",
    ] = Field(
        C14N_EXCLUSIVE, description="Canonicalization of SignedInfo and of the reference (exclusive or inclusive 1.0)."
    )
    signature_method: str | None = Field(
        None,
        description="SignatureMethod URI; None picks RSA-SHA256 for RSA keys and ECDSA-SHA256/384 for EC keys.",
    )
    digest_method: str = Field(SHA256_DIGEST.uri, description="DigestMethod URI of the reference.")
    placement: Placement = Field("enveloped", description="Where the ds:Signature element is placed.")
    allow_sha1: bool = Field(
        False,
        description="Permit RSA-SHA1/SHA-1 for this party (VNSW legacy ministries only, never a default).",
    )
    include_chain: bool = Field(True, description="Put intermediate certificates in KeyInfo after the signer's.")

    @classmethod
    def vnsw_legacy(cls, *, allow_sha1: bool = False) -> SigningProfile:
        """The VNSW ministry-exchange profile: inclusive C14N 1.0, URI="", inside <SystemSignature>."""
        return cls(
            c14n=C14N_INCLUSIVE,
            placement="system-signature",
            allow_sha1=allow_sha1,
            signature_method=RSA_SHA1.uri if allow_sha1 else None,
            digest_method=SHA1_DIGEST.uri if allow_sha1 else SHA256_DIGEST.uri,
        )


_STRONG_SIGNATURES = frozenset(uri for uri, algorithm in SIGNATURES.items() if not algorithm.weak)
_STRONG_DIGESTS = frozenset(uri for uri, digest in DIGESTS.items() if not digest.weak)
_C14N = C14N_METHODS


class VerifyPolicy(BaseModel):
    """What the gateway accepts as a valid signature from one party. Secure by default."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    signature_methods: frozenset[str] = Field(
        _STRONG_SIGNATURES, description="Accepted SignatureMethod URIs (RSA, RSA-PSS and ECDSA with SHA-2)."
    )
    digest_methods: frozenset[str] = Field(_STRONG_DIGESTS, description="Accepted DigestMethod URIs (SHA-2).")
    c14n_methods: frozenset[str] = Field(_C14N, description="Accepted CanonicalizationMethod and c14n transform URIs.")
    transforms: frozenset[str] = Field(
        frozenset({TRANSFORM_ENVELOPED}) | _C14N,
        description="Accepted Reference transforms; XSLT, XPath and XPath-Filter 2 are never in this set by default.",
    )
    allow_sha1: bool = Field(False, description="Also accept RSA-SHA1 and SHA-1 digests (VNSW legacy parties only).")
    max_signatures: int = Field(1, ge=1, description="How many ds:Signature elements the whole document may hold.")
    references: int = Field(1, ge=1, description="How many References SignedInfo must hold.")
    placement: Placement = Field("enveloped", description="Where the ds:Signature must sit.")
    require_root_signed: bool = Field(
        True,
        description="Without an explicit ``expect`` path, the signed element must be the document's root element.",
    )
    id_attributes: tuple[str, ...] = Field(
        ("Id", "ID", "id", "{" + WSU_NS + "}Id"),
        description="Attributes that carry the ids same-document references point to.",
    )
    require_key_usage: bool = Field(
        True, description="The signer certificate must carry keyUsage digitalSignature or nonRepudiation."
    )
    allowed_ekus: frozenset[str] = Field(
        frozenset({EKU_DOCUMENT_SIGNING, _EKU_CLIENT_AUTH, _EKU_EMAIL_PROTECTION, _EKU_ANY}),
        description="If the signer certificate has extendedKeyUsage, one of these OIDs must be in it.",
    )
    clock_skew: timedelta = Field(timedelta(minutes=5), description="Tolerance on certificate validity dates.")
    max_chain_length: int = Field(5, ge=1, description="Longest accepted certificate path, leaf and anchor included.")

    def accepts_signature(self, uri: str) -> bool:
        return uri in self.signature_methods or (self.allow_sha1 and uri == RSA_SHA1.uri)

    def accepts_digest(self, uri: str) -> bool:
        return uri in self.digest_methods or (self.allow_sha1 and uri == SHA1_DIGEST.uri)

    @classmethod
    def vnsw_legacy(cls, *, allow_sha1: bool = False) -> VerifyPolicy:
        """Accept the VNSW ministry-exchange profile (signature inside <SystemSignature>)."""
        return cls(placement="system-signature", allow_sha1=allow_sha1)
