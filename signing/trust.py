"""Per-party trust: pinned certificates, CA anchors, path validation, key rotation.

A :class:`TrustStore` answers one question: *is this certificate allowed to
sign for this party at this instant?* It accepts a certificate that is

* pinned for the party, inside that pin's acceptance window (rotation: the
  old and the new certificate are both pinned during the overlap, the old one
  with ``accept_until`` at the end of the overlap), or
* on a valid RFC 5280 path, built from the certificates in KeyInfo and the
  store's intermediates, to one of the party's trust anchors;

in the second case also one of the party's signers (its :class:`~signing.identity.SignerIdentity`: an anchor
vouches for every certificate it issues, other parties' too, so a store with anchors names the certificates
that sign for its party, or says ``any_signer`` explicitly); and in both cases within its validity dates,
fit for signing (keyUsage, extendedKeyUsage), with strong keys and not revoked according to the store's
revocation checker. The :class:`TrustRegistry` maps party ids to their stores:
trust is configuration of its own, separate from routing and from our own keys.

Path building and validation are ``cryptography.x509.verification``'s (the
Rust validator of pyca/cryptography): signatures, basicConstraints cA and
pathLenConstraint, keyUsage keyCertSign, name constraints on subjectAltName
names, refusal of unknown critical extensions, issuer key strength, validity at
an instant. Its extension profile is relaxed from the Web PKI one to what
document-signing hierarchies carry (no subjectAltName, serverAuth or
authority/subject key identifiers required; basicConstraints of any
criticality); the per-party keyUsage and extendedKeyUsage rules of the
:class:`~signing.policy.VerifyPolicy` are applied on top. The store adds what
the library leaves out: directoryName (and emailAddress) name constraints on
subject names, the key strength of the signer certificate itself, clock skew
on validity dates, pins with their windows, and revocation.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property, lru_cache
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import (
    ClientVerifier,
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from gateway.errors import (
    CertificateCriticalExtension,
    CertificateError,
    CertificateExpired,
    CertificateKeyUsage,
    CertificateKeyWeak,
    CertificateNameConstraints,
    CertificateNotYetValid,
    CertificatePathLength,
    CertificateRotatedOut,
    CertificateUntrusted,
    ConfigError,
)
from signing.identity import SignerIdentity, certificate_fingerprint
from signing.keys import load_certificates
from signing.policy import VerifyPolicy
from signing.revocation import NoRevocationCheck, RevocationChecker

__all__ = [
    "PinnedCertificate",
    "TrustStore",
    "TrustRegistry",
    "fingerprint",
    "MIN_RSA_BITS",
    "ALLOWED_CURVES",
    "CA_EXTENSION_POLICY",
    "EE_EXTENSION_POLICY",
]

MIN_RSA_BITS = 2048
"""Smallest RSA modulus accepted for any certificate of a path (the validator's floor as well)."""
ALLOWED_CURVES: frozenset[str] = frozenset({"secp256r1", "secp384r1", "secp521r1"})
"""Elliptic curves accepted for any certificate of a path: P-256, P-384, P-521."""


fingerprint = lru_cache(maxsize=4096)(certificate_fingerprint)
"""SHA-256 fingerprint of the DER certificate, lower-case hex (:func:`signing.identity.certificate_fingerprint`,
cached per certificate)."""


def _name(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string()


# --------------------------------------------------------------------------- the validator's profile


def _ca_key_usage(_policy: object, cert: x509.Certificate, ku: x509.KeyUsage | None) -> None:
    if ku is not None and not ku.key_cert_sign:
        raise ValueError(f"keyUsage.keyCertSign must be asserted in a CA certificate ({_name(cert)})")


CA_EXTENSION_POLICY: ExtensionPolicy = (
    ExtensionPolicy.webpki_defaults_ca()
    .require_present(x509.BasicConstraints, Criticality.AGNOSTIC, None)
    .may_be_present(x509.KeyUsage, Criticality.AGNOSTIC, _ca_key_usage)
    .may_be_present(x509.AuthorityKeyIdentifier, Criticality.AGNOSTIC, None)
    .may_be_present(x509.SubjectKeyIdentifier, Criticality.AGNOSTIC, None)
    .may_be_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, None)
)
"""CA certificates: basicConstraints cA (and its pathLenConstraint) required, keyCertSign when keyUsage is
present, name constraints honoured; key identifiers and extendedKeyUsage optional."""

EE_EXTENSION_POLICY: ExtensionPolicy = (
    ExtensionPolicy.webpki_defaults_ee()
    .may_be_present(x509.SubjectAlternativeName, Criticality.AGNOSTIC, None)
    .may_be_present(x509.KeyUsage, Criticality.AGNOSTIC, None)
    .may_be_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, None)
    .may_be_present(x509.AuthorityKeyIdentifier, Criticality.AGNOSTIC, None)
    .may_be_present(x509.BasicConstraints, Criticality.AGNOSTIC, None)
)
"""Signer certificates: subjectAltName optional; keyUsage, extendedKeyUsage and a CA flag are judged by the
party's :class:`~signing.policy.VerifyPolicy` (``CERT_KEY_USAGE``), not by the Web PKI rules."""

# The validator's reasons (its error text) mapped to our codes; anything else is CERT_UNTRUSTED.
_REASONS: tuple[tuple[str, type[CertificateError]], ...] = (
    ("path length constraint violated", CertificatePathLength),
    ("name constraint", CertificateNameConstraints),
    ("unaccounted-for critical extension", CertificateCriticalExtension),
    ("key is too weak", CertificateKeyWeak),
    ("key too weak", CertificateKeyWeak),
    ("Forbidden public key algorithm", CertificateKeyWeak),
    ("Forbidden signature algorithm", CertificateKeyWeak),
    ("digest algorithm too weak", CertificateKeyWeak),
)
_DATES = "not valid at validation time"


def _library_error(reason: str) -> type[CertificateError] | None:
    for text, error in _REASONS:
        if text in reason:
            return error
    return None


# --------------------------------------------------------------------------- our own rules


def _check_key_strength(cert: x509.Certificate) -> None:
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise CertificateKeyWeak(
                f"certificate {_name(cert)} has a {key.key_size}-bit RSA key; at least {MIN_RSA_BITS} bits required",
                details={"fingerprint": fingerprint(cert), "key": f"rsa{key.key_size}"},
            )
        return
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in ALLOWED_CURVES:
            raise CertificateKeyWeak(
                f"certificate {_name(cert)} has a key on curve {key.curve.name}; only P-256, P-384 and P-521 are "
                "accepted",
                details={"fingerprint": fingerprint(cert), "key": key.curve.name},
            )
        return
    raise CertificateKeyWeak(
        f"certificate {_name(cert)} has a {type(key).__name__.removeprefix('_')} key; RSA or EC keys only",
        details={"fingerprint": fingerprint(cert)},
    )


def _norm(value: str | bytes) -> str:
    """RFC 4518-like string preparation: case folded, inner whitespace collapsed, outer whitespace removed."""
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return " ".join(text.casefold().split())


def _rdns(name: x509.Name) -> list[frozenset[tuple[str, str]]]:
    return [frozenset((a.oid.dotted_string, _norm(a.value)) for a in rdn) for rdn in name.rdns]


def _dn_within(name: x509.Name, base: x509.Name) -> bool:
    """RFC 5280 4.2.1.10: a DN is within a directoryName subtree when the base's RDNs are its first RDNs."""
    outer, inner = _rdns(base), _rdns(name)
    return len(inner) >= len(outer) and inner[: len(outer)] == outer


def _mail_within(address: str, constraint: str) -> bool:
    """RFC 5280 4.2.1.10 rfc822Name subtrees: a mailbox, a host, or ``.domain`` for every host below it."""
    address, constraint = _norm(address), _norm(constraint)
    if "@" in constraint:
        return address == constraint
    host = address.rpartition("@")[2]
    if constraint.startswith("."):
        return host.endswith(constraint)
    return host == constraint


def _subject_names(cert: x509.Certificate) -> tuple[list[x509.Name], list[str]]:
    """The directory names and mail addresses of ``cert`` that subjectAltName checks by the validator leave out:
    the subject DN, directoryName alternative names, and emailAddress attributes of the subject."""
    names = [cert.subject] if len(cert.subject) else []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names += san.get_values_for_type(x509.DirectoryName)
    except x509.ExtensionNotFound:
        pass
    mails = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.EMAIL_ADDRESS)]
    return names, mails


def _check_subject_name_constraints(path: Sequence[x509.Certificate]) -> None:
    """directoryName and emailAddress name constraints of every CA on the path (leaf first) over the certificates
    below it; self-issued intermediates are exempt (RFC 5280 6.1.3 (b), (c))."""
    for i in range(1, len(path)):
        try:
            nc = path[i].extensions.get_extension_for_class(x509.NameConstraints).value
        except x509.ExtensionNotFound:
            continue
        permitted = list(nc.permitted_subtrees or ())
        excluded = list(nc.excluded_subtrees or ())
        permitted_dn = [g.value for g in permitted if isinstance(g, x509.DirectoryName)]
        excluded_dn = [g.value for g in excluded if isinstance(g, x509.DirectoryName)]
        permitted_mail = [g.value for g in permitted if isinstance(g, x509.RFC822Name)]
        excluded_mail = [g.value for g in excluded if isinstance(g, x509.RFC822Name)]
        if not (permitted_dn or excluded_dn or permitted_mail or excluded_mail):
            continue
        for j, cert in enumerate(path[:i]):
            if j > 0 and cert.subject == cert.issuer:
                continue
            names, mails = _subject_names(cert)
            for dn in names:
                if permitted_dn and not any(_dn_within(dn, base) for base in permitted_dn):
                    raise _name_constraint(cert, path[i], f"subject {dn.rfc4514_string()} is in no permitted subtree")
                if any(_dn_within(dn, base) for base in excluded_dn):
                    raise _name_constraint(cert, path[i], f"subject {dn.rfc4514_string()} is in an excluded subtree")
            for mail in mails:
                if permitted_mail and not any(_mail_within(mail, c) for c in permitted_mail):
                    raise _name_constraint(cert, path[i], f"emailAddress {mail} is in no permitted subtree")
                if any(_mail_within(mail, c) for c in excluded_mail):
                    raise _name_constraint(cert, path[i], f"emailAddress {mail} is in an excluded subtree")


def _name_constraint(cert: x509.Certificate, ca: x509.Certificate, why: str) -> CertificateNameConstraints:
    return CertificateNameConstraints(
        f"certificate {_name(cert)} violates the name constraints of {_name(ca)}: {why}",
        details={"fingerprint": fingerprint(cert), "constrained_by": fingerprint(ca)},
    )


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
        return True
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False


# --------------------------------------------------------------------------- stores


@dataclass(frozen=True)
class PinnedCertificate:
    """A certificate accepted for a party as such, inside an optional acceptance window."""

    certificate: x509.Certificate
    accept_from: datetime | None = None
    """Not accepted before this instant (a rotated-in key announced ahead of time)."""
    accept_until: datetime | None = None
    """Not accepted after this instant (the end of the overlap window of a rotated-out key)."""


_PathKey = tuple[bool, str, frozenset[str], bool, int]


@dataclass(frozen=True)
class _Validated:
    """A path whose static checks passed, with the window in which all its certificates are valid."""

    path: tuple[x509.Certificate, ...]
    latest_start: datetime
    earliest_end: datetime


@dataclass(frozen=True)
class TrustStore:
    """Everything that decides whether a certificate may sign for one party."""

    party: str
    anchors: tuple[x509.Certificate, ...] = ()
    pinned: tuple[PinnedCertificate, ...] = ()
    intermediates: tuple[x509.Certificate, ...] = ()
    revocation: RevocationChecker = field(default_factory=NoRevocationCheck)
    signers: SignerIdentity | None = None
    """The certificates that may sign for the party through ``anchors`` (pins are the party's as such)."""
    any_signer: bool = False
    """Accept every certificate the anchors vouch for, whoever it was issued to (only for an anchor that issues
    to this party alone); required, instead of ``signers``, for a store with anchors."""
    _paths: dict[_PathKey, _Validated] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.anchors and not self.pinned:
            raise ConfigError(
                f"trust store of party {self.party!r} has neither trust anchors nor pinned certificates",
                field=f"parties.{self.party}.trust",
            )
        if self.anchors and self.signers is None and not self.any_signer:
            raise ConfigError(
                f"trust store of party {self.party!r} has trust anchors but names none of its signers: the anchors "
                "vouch for every certificate they issue, other parties' too; give signers (subject attributes, "
                "subjectAltName values or fingerprints), or any_signer = true",
                field=f"parties.{self.party}.trust.signers",
            )

    @classmethod
    def from_files(
        cls,
        party: str,
        *,
        anchors: Iterable[str | Path] = (),
        pinned: Iterable[str | Path] = (),
        intermediates: Iterable[str | Path] = (),
        revocation: RevocationChecker | None = None,
        signers: SignerIdentity | None = None,
        any_signer: bool = False,
    ) -> TrustStore:
        """Build a store from PEM files (each file may hold several certificates)."""
        return cls(
            party=party,
            anchors=tuple(c for p in anchors for c in load_certificates(p)),
            pinned=tuple(PinnedCertificate(c) for p in pinned for c in load_certificates(p)),
            intermediates=tuple(c for p in intermediates for c in load_certificates(p)),
            revocation=revocation or NoRevocationCheck(),
            signers=signers,
            any_signer=any_signer,
        )

    def with_rotation(
        self, new_certificate: x509.Certificate, *, overlap: timedelta, now: datetime | None = None
    ) -> TrustStore:
        """A copy in which ``new_certificate`` is pinned and every currently pinned one expires after ``overlap``."""
        now = now or datetime.now(UTC)
        until = now + overlap
        retired = tuple(
            PinnedCertificate(p.certificate, p.accept_from, min(p.accept_until, until) if p.accept_until else until)
            for p in self.pinned
        )
        return TrustStore(
            party=self.party,
            anchors=self.anchors,
            pinned=(*retired, PinnedCertificate(new_certificate, accept_from=now)),
            intermediates=self.intermediates,
            revocation=self.revocation,
            signers=self.signers,
            any_signer=self.any_signer,
        )

    @cached_property
    def _store(self) -> Store | None:
        return Store(list(self.anchors)) if self.anchors else None

    # ------------------------------------------------------------------ validation

    def validate(
        self,
        leaf: x509.Certificate,
        presented: Sequence[x509.Certificate] = (),
        *,
        policy: VerifyPolicy,
        at: datetime | None = None,
    ) -> tuple[x509.Certificate, ...]:
        """Validate ``leaf`` for signing for the party; return its path (leaf first). Raises a CERT_* error
        (``CERT_IDENTITY_MISMATCH`` for a certificate on a valid path that is not one of the party's signers)."""
        at = at or datetime.now(UTC)
        fp = fingerprint(leaf)
        pin = self._pin_for(fp, at)
        # The path and its static checks (signatures, constraints, extensions, key usage, key strength) are
        # established once per (pinned or chained, leaf, policy rules); dates and revocation on every call.
        key: _PathKey = (pin is not None, fp, policy.allowed_ekus, policy.require_key_usage, policy.max_chain_length)
        skew = policy.clock_skew
        cached = self._paths.get(key)
        # A cached path is reused while every certificate on it is within its dates; otherwise another path
        # may be valid at this instant (a renewed intermediate), and a fresh validation names the culprit.
        if cached is not None and cached.latest_start <= at + skew and at - skew <= cached.earliest_end:
            path = cached.path
        else:
            path = self._pinned_path(leaf, presented) if pin is not None else self._chain(leaf, presented, policy, at)
            for cert in path:
                _check_key_strength(cert)
            _check_subject_name_constraints(path)
            self._check_signing_usage(leaf, policy)
            for cert in path:
                self._check_dates(cert, at, skew)
            self._paths[key] = _Validated(
                path,
                latest_start=max(c.not_valid_before_utc for c in path),
                earliest_end=min(c.not_valid_after_utc for c in path),
            )
        for cert, issuer in itertools.pairwise(path):
            self.revocation.check(cert, issuer, at=at)
        if pin is None and self.signers is not None:
            self.signers.check(leaf, party=self.party)
        return path

    def _pin_for(self, fp: str, at: datetime) -> PinnedCertificate | None:
        matches = [p for p in self.pinned if fingerprint(p.certificate) == fp]
        if not matches:
            return None
        for p in matches:
            if (p.accept_from is None or p.accept_from <= at) and (p.accept_until is None or at <= p.accept_until):
                return p
        if any(p.accept_until is not None and at > p.accept_until for p in matches):
            raise CertificateRotatedOut(
                f"certificate {_name(matches[0].certificate)} was rotated out for party {self.party!r}; "
                f"its overlap window ended {max(p.accept_until for p in matches if p.accept_until)}",
                details={"fingerprint": fp},
            )
        raise CertificateUntrusted(
            f"certificate {_name(matches[0].certificate)} is not yet accepted for party {self.party!r}",
            details={"fingerprint": fp},
        )

    def _pinned_path(
        self, leaf: x509.Certificate, presented: Sequence[x509.Certificate]
    ) -> tuple[x509.Certificate, ...]:
        """A pin is trusted as such; its certificate still has to pass the signer profile (no unknown critical
        extension), judged by the validator with the pin as its own anchor at an instant inside its validity
        (its dates are checked, with the clock skew, by :meth:`validate`)."""
        verifier = _verifier(Store([leaf]), leaf.not_valid_before_utc, 0)
        try:
            verifier.verify(leaf, [])
        except VerificationError as exc:
            raise self._refusal(leaf, str(exc)) from None
        issuer = self._find_issuer(leaf, presented)
        if issuer is None:
            return (leaf,)
        self._check_ca(issuer)
        return (leaf, issuer)

    def _chain(
        self, leaf: x509.Certificate, presented: Sequence[x509.Certificate], policy: VerifyPolicy, at: datetime
    ) -> tuple[x509.Certificate, ...]:
        """The validator's path from ``leaf`` to an anchor, at ``at`` or, for validity dates, anywhere within the
        clock skew of it."""
        untrusted = [*presented, *self.intermediates]
        store = self._store
        if store is None:
            raise self._untrusted(leaf)
        depth = max(policy.max_chain_length - 2, 0)
        reason = ""
        for instant in (at, at + policy.clock_skew, at - policy.clock_skew):
            try:
                chain = _verifier(store, instant, depth).verify(leaf, untrusted).chain
            except VerificationError as exc:
                reason = reason or str(exc)
                if _DATES not in str(exc) or not policy.clock_skew:
                    break
                continue
            if len(chain) > policy.max_chain_length:
                raise self._untrusted(leaf, f"its path holds more than {policy.max_chain_length} certificates")
            return tuple(chain)
        if _DATES in reason:
            for cert in self._diagnostic_path(leaf, untrusted):
                self._check_dates(cert, at, policy.clock_skew)
        raise self._refusal(leaf, reason)

    def _refusal(self, leaf: x509.Certificate, reason: str) -> CertificateError:
        reason = reason.removeprefix("validation failed: ").split(" (encountered processing")[0]
        error = _library_error(reason)
        if error is None:
            return self._untrusted(leaf, reason)
        return error(
            f"certificate {_name(leaf)} has no valid path for party {self.party!r}: {reason}",
            details={"fingerprint": fingerprint(leaf), "reason": reason},
        )

    def _untrusted(self, leaf: x509.Certificate, reason: str | None = None) -> CertificateUntrusted:
        because = f" ({reason})" if reason else ""
        return CertificateUntrusted(
            f"certificate {_name(leaf)} (issued by {leaf.issuer.rfc4514_string()}) is not pinned for party "
            f"{self.party!r} and does not chain to any of its {len(self.anchors)} trust anchor(s){because}",
            details={"fingerprint": fingerprint(leaf), **({"reason": reason} if reason else {})},
        )

    def _diagnostic_path(self, leaf: x509.Certificate, untrusted: Sequence[x509.Certificate]) -> list[x509.Certificate]:
        """Issuer by issuer, the path the validator would have taken; only used to name the certificate whose
        dates made it refuse (the refusal itself is the validator's)."""
        anchor_fps = {fingerprint(a) for a in self.anchors}
        path = [leaf]
        current = leaf
        while fingerprint(current) not in anchor_fps and len(path) < 16:
            issuer = next(
                (
                    c
                    for c in (*self.anchors, *untrusted)
                    if c is not current and c.subject == current.issuer and _issued_by(current, c)
                ),
                None,
            )
            if issuer is None:
                break
            path.append(issuer)
            current = issuer
        return path

    def _find_issuer(self, cert: x509.Certificate, presented: Sequence[x509.Certificate]) -> x509.Certificate | None:
        for candidate in (*presented, *self.intermediates, *self.anchors):
            if candidate.subject == cert.issuer and _issued_by(cert, candidate):
                return candidate
        return None

    @staticmethod
    def _check_dates(cert: x509.Certificate, at: datetime, skew: timedelta) -> None:
        if at + skew < cert.not_valid_before_utc:
            raise CertificateNotYetValid(
                f"certificate {_name(cert)} is valid only from {cert.not_valid_before_utc.isoformat()}",
                details={"fingerprint": fingerprint(cert)},
            )
        if at - skew > cert.not_valid_after_utc:
            raise CertificateExpired(
                f"certificate {_name(cert)} expired {cert.not_valid_after_utc.isoformat()}",
                details={"fingerprint": fingerprint(cert)},
            )

    @staticmethod
    def _check_ca(cert: x509.Certificate) -> None:
        """The issuer found for a pinned certificate (not validated as a path: the pin is the trust)."""
        try:
            bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound:
            bc = None
        if bc is None or not bc.ca:
            raise CertificateUntrusted(f"certificate {_name(cert)} issues certificates but is not a CA")
        try:
            ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        except x509.ExtensionNotFound:
            return
        if not ku.key_cert_sign:
            raise CertificateUntrusted(f"CA certificate {_name(cert)} lacks keyUsage keyCertSign")

    @staticmethod
    def _check_signing_usage(leaf: x509.Certificate, policy: VerifyPolicy) -> None:
        exts = leaf.extensions
        try:
            bc = exts.get_extension_for_class(x509.BasicConstraints).value
            if bc.ca:
                raise CertificateKeyUsage(f"certificate {_name(leaf)} is a CA certificate, not a signing certificate")
        except x509.ExtensionNotFound:
            pass
        try:
            ku = exts.get_extension_for_class(x509.KeyUsage).value
        except x509.ExtensionNotFound:
            ku = None
        if ku is None:
            if policy.require_key_usage:
                raise CertificateKeyUsage(f"certificate {_name(leaf)} has no keyUsage extension")
        elif not (ku.digital_signature or ku.content_commitment):
            raise CertificateKeyUsage(
                f"certificate {_name(leaf)} keyUsage allows neither digitalSignature nor nonRepudiation"
            )
        try:
            eku = exts.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            return
        oids = {o.dotted_string for o in eku}
        if not oids & policy.allowed_ekus:
            raise CertificateKeyUsage(
                f"certificate {_name(leaf)} extendedKeyUsage {sorted(oids)} allows no document signing"
            )


def _verifier(store: Store, at: datetime, depth: int) -> ClientVerifier:
    return (
        PolicyBuilder()
        .store(store)
        .time(at)
        .max_chain_depth(depth)
        .extension_policies(ca_policy=CA_EXTENSION_POLICY, ee_policy=EE_EXTENSION_POLICY)
        .build_client_verifier()
    )


@dataclass(frozen=True)
class TrustRegistry:
    """Trust stores by party id."""

    stores: Mapping[str, TrustStore]

    def for_party(self, party: str) -> TrustStore:
        try:
            return self.stores[party]
        except KeyError:
            raise CertificateUntrusted(f"no trust store is configured for party {party!r}", field="party") from None
