"""Which certificates may sign for a party: the identity constraint applied after path validation.

A trust anchor vouches for every certificate it issues: the national CA issues the certificates of every
ministry, enterprise and intermediary, so a path to it says nothing about *which* of them signed. A party
trusted through anchors therefore names its signers: a :class:`SignerRule` states what the signing
certificate must carry, and :class:`SignerIdentity` accepts a certificate that satisfies one of its rules.

A rule is satisfied when every criterion it states holds:

* ``dn``: the subject distinguished name, RFC 4514 (``"CN=moit,O=NSW Development PKI,C=VN"``), equal
  attribute by attribute (case and inner whitespace folded);
* ``subject``: subject attributes by name (``CN``, ``O``, ``OU``, ``C``, ``serialNumber``,
  ``organizationIdentifier``, ``emailAddress``, ``UID``, ``DC``, ``L``, ``ST``, or a dotted OID), each equal to
  one of the certificate's values of that attribute;
* ``dns``, ``email``, ``uri``, ``directory_name``: subjectAltName values, of which the certificate must carry
  at least one per kind stated (directory names as RFC 4514 strings);
* ``certificate_sha256``: SHA-256 fingerprints of the DER certificate (one of them);
* ``public_key_sha256``: SHA-256 fingerprints of the DER SubjectPublicKeyInfo (one of them; survives renewal
  with the same key).

A certificate failing every rule is refused with ``CERT_IDENTITY_MISMATCH`` naming the party and the subject.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID, ObjectIdentifier

from gateway.errors import CertificateIdentityMismatch

__all__ = [
    "SignerRule",
    "SignerIdentity",
    "SUBJECT_ATTRIBUTES",
    "attribute_oid",
    "certificate_fingerprint",
    "public_key_fingerprint",
]

SUBJECT_ATTRIBUTES: Mapping[str, ObjectIdentifier] = {
    "CN": NameOID.COMMON_NAME,
    "O": NameOID.ORGANIZATION_NAME,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "C": NameOID.COUNTRY_NAME,
    "L": NameOID.LOCALITY_NAME,
    "ST": NameOID.STATE_OR_PROVINCE_NAME,
    "serialNumber": NameOID.SERIAL_NUMBER,
    "organizationIdentifier": NameOID.ORGANIZATION_IDENTIFIER,
    "emailAddress": NameOID.EMAIL_ADDRESS,
    "UID": NameOID.USER_ID,
    "DC": NameOID.DOMAIN_COMPONENT,
}
"""Subject attribute names a rule may use (any other attribute by its dotted OID)."""


def attribute_oid(name: str) -> ObjectIdentifier:
    """The OID of a subject attribute named in a rule; ``ValueError`` for an unknown name."""
    oid = SUBJECT_ATTRIBUTES.get(name) or next(
        (o for n, o in SUBJECT_ATTRIBUTES.items() if n.lower() == name.lower()), None
    )
    if oid is not None:
        return oid
    try:
        return ObjectIdentifier(name)
    except ValueError:
        raise ValueError(
            f"unknown subject attribute {name!r}; use one of {', '.join(SUBJECT_ATTRIBUTES)} or a dotted OID"
        ) from None


def certificate_fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the DER certificate, lower-case hex."""
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()


def public_key_fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the DER SubjectPublicKeyInfo, lower-case hex."""
    spki = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()


def _fold(value: str | bytes) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return " ".join(text.casefold().split())


def _hex(value: str) -> str:
    return value.replace(":", "").strip().lower()


def _rdns(name: x509.Name) -> list[frozenset[tuple[str, str]]]:
    return [frozenset((a.oid.dotted_string, _fold(a.value)) for a in rdn) for rdn in name.rdns]


@dataclass(frozen=True)
class SignerRule:
    """What one signing certificate of the party carries; every stated criterion must hold."""

    dn: x509.Name | None = None
    subject: tuple[tuple[ObjectIdentifier, str], ...] = ()
    dns: tuple[str, ...] = ()
    email: tuple[str, ...] = ()
    uri: tuple[str, ...] = ()
    directory_name: tuple[x509.Name, ...] = ()
    certificate_sha256: tuple[str, ...] = ()
    public_key_sha256: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.criteria:
            raise ValueError("a signer rule needs at least one criterion")

    @property
    def criteria(self) -> tuple[str, ...]:
        """The names of the criteria this rule states."""
        return tuple(
            name
            for name in (
                "dn",
                "subject",
                "dns",
                "email",
                "uri",
                "directory_name",
                "certificate_sha256",
                "public_key_sha256",
            )
            if getattr(self, name)
        )

    def matches(self, cert: x509.Certificate) -> bool:
        if self.dn is not None and _rdns(cert.subject) != _rdns(self.dn):
            return False
        for oid, value in self.subject:
            if _fold(value) not in {_fold(a.value) for a in cert.subject.get_attributes_for_oid(oid)}:
                return False
        if self.dns or self.email or self.uri or self.directory_name:
            try:
                san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            except x509.ExtensionNotFound:
                return False
            if self.dns and not {_fold(d).rstrip(".") for d in self.dns} & {
                _fold(d).rstrip(".") for d in san.get_values_for_type(x509.DNSName)
            }:
                return False
            if self.email and not {_fold(m) for m in self.email} & {
                _fold(m) for m in san.get_values_for_type(x509.RFC822Name)
            }:
                return False
            if self.uri and not set(self.uri) & set(san.get_values_for_type(x509.UniformResourceIdentifier)):
                return False
            if self.directory_name and not any(
                _rdns(n) == _rdns(d) for n in san.get_values_for_type(x509.DirectoryName) for d in self.directory_name
            ):
                return False
        if self.certificate_sha256 and certificate_fingerprint(cert) not in {_hex(f) for f in self.certificate_sha256}:
            return False
        return not self.public_key_sha256 or public_key_fingerprint(cert) in {_hex(f) for f in self.public_key_sha256}

    def describe(self) -> str:
        parts: list[str] = []
        if self.dn is not None:
            parts.append(f"dn={self.dn.rfc4514_string()}")
        parts += [f"{_attr_name(oid)}={value}" for oid, value in self.subject]
        for kind in ("dns", "email", "uri", "certificate_sha256", "public_key_sha256"):
            values = getattr(self, kind)
            if values:
                parts.append(f"{kind} in {list(values)}")
        if self.directory_name:
            parts.append(f"directory_name in {[n.rfc4514_string() for n in self.directory_name]}")
        return "{" + ", ".join(parts) + "}"


def _attr_name(oid: ObjectIdentifier) -> str:
    return next((n for n, o in SUBJECT_ATTRIBUTES.items() if o == oid), oid.dotted_string)


@dataclass(frozen=True)
class SignerIdentity:
    """The certificates that may sign for a party: those satisfying one of ``rules``."""

    rules: tuple[SignerRule, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.rules:
            raise ValueError("a signer identity needs at least one rule")

    @classmethod
    def of(cls, *certificates: x509.Certificate) -> SignerIdentity:
        """Exactly these certificates (by SHA-256 fingerprint)."""
        return cls((SignerRule(certificate_sha256=tuple(certificate_fingerprint(c) for c in certificates)),))

    @classmethod
    def subject(cls, **attributes: str) -> SignerIdentity:
        """Certificates whose subject carries these attributes (``SignerIdentity.subject(CN="moit")``)."""
        return cls((SignerRule(subject=tuple((attribute_oid(k), v) for k, v in attributes.items())),))

    def matches(self, cert: x509.Certificate) -> bool:
        return any(rule.matches(cert) for rule in self.rules)

    def check(self, cert: x509.Certificate, *, party: str) -> None:
        """Raise ``CERT_IDENTITY_MISMATCH`` unless ``cert`` may sign for ``party``."""
        if self.matches(cert):
            return
        subject = cert.subject.rfc4514_string()
        raise CertificateIdentityMismatch(
            f"certificate {subject} chains to a trust anchor of party {party!r} but is not one of its signers "
            f"({' or '.join(r.describe() for r in self.rules)})",
            details={"party": party, "subject": subject, "fingerprint": certificate_fingerprint(cert)},
        )
