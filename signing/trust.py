"""Per-party trust: pinned certificates, CA anchors, path validation, key rotation.

A :class:`TrustStore` answers one question: *is this certificate allowed to
sign for this party at this instant?* It accepts a certificate that is

* pinned for the party, inside that pin's acceptance window (rotation: the
  old and the new certificate are both pinned during the overlap, the old one
  with ``accept_until`` at the end of the overlap), or
* on a valid path, built from the certificates in KeyInfo and the store's
  intermediates, to one of the party's trust anchors;

and in both cases within its validity dates, fit for signing (keyUsage,
extendedKeyUsage) and not revoked according to the store's revocation
checker. The :class:`TrustRegistry` maps party ids to their stores: trust is
configuration of its own, separate from routing and from our own keys.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import Encoding

from gateway.errors import (
    CertificateExpired,
    CertificateKeyUsage,
    CertificateNotYetValid,
    CertificateRotatedOut,
    CertificateUntrusted,
    ConfigError,
)
from signing.keys import load_certificates
from signing.policy import VerifyPolicy
from signing.revocation import NoRevocationCheck, RevocationChecker

__all__ = ["PinnedCertificate", "TrustStore", "TrustRegistry", "fingerprint"]


@lru_cache(maxsize=4096)
def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 fingerprint of the DER certificate, lower-case hex."""
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()


def _name(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string()


@dataclass(frozen=True)
class PinnedCertificate:
    """A certificate accepted for a party as such, inside an optional acceptance window."""

    certificate: x509.Certificate
    accept_from: datetime | None = None
    """Not accepted before this instant (a rotated-in key announced ahead of time)."""
    accept_until: datetime | None = None
    """Not accepted after this instant (the end of the overlap window of a rotated-out key)."""


@dataclass(frozen=True)
class TrustStore:
    """Everything that decides whether a certificate may sign for one party."""

    party: str
    anchors: tuple[x509.Certificate, ...] = ()
    pinned: tuple[PinnedCertificate, ...] = ()
    intermediates: tuple[x509.Certificate, ...] = ()
    revocation: RevocationChecker = field(default_factory=NoRevocationCheck)
    _paths: dict[tuple[bool, str, int], tuple[x509.Certificate, ...]] = field(
        default_factory=dict, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if not self.anchors and not self.pinned:
            raise ConfigError(
                f"trust store of party {self.party!r} has neither trust anchors nor pinned certificates",
                field=f"parties.{self.party}.trust",
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
    ) -> TrustStore:
        """Build a store from PEM files (each file may hold several certificates)."""
        return cls(
            party=party,
            anchors=tuple(c for p in anchors for c in load_certificates(p)),
            pinned=tuple(PinnedCertificate(c) for p in pinned for c in load_certificates(p)),
            intermediates=tuple(c for p in intermediates for c in load_certificates(p)),
            revocation=revocation or NoRevocationCheck(),
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
        )

    # ------------------------------------------------------------------ validation

    def validate(
        self,
        leaf: x509.Certificate,
        presented: Sequence[x509.Certificate] = (),
        *,
        policy: VerifyPolicy,
        at: datetime | None = None,
    ) -> tuple[x509.Certificate, ...]:
        """Validate ``leaf`` for signing; return its path (leaf first). Raises a CERT_* error."""
        at = at or datetime.now(UTC)
        fp = fingerprint(leaf)
        pin = self._pin_for(fp, at)
        # Path building and the static checks (CA flags, key usage) are done once per
        # (pinned or chained, leaf, policy); dates and revocation are checked on every call.
        cache_key = (pin is not None, fp, id(policy))
        path = self._paths.get(cache_key)
        if path is None:
            if pin is not None:
                issuer = self._find_issuer(leaf, presented)
                path = (leaf, issuer) if issuer is not None else (leaf,)
            else:
                path = self._build_path(leaf, presented, policy)
            for ca in path[1:]:
                self._check_ca(ca)
            self._check_signing_usage(leaf, policy)
            self._paths[cache_key] = path
        for cert in path:
            self._check_dates(cert, at, policy.clock_skew)
        for cert, issuer in itertools.pairwise(path):
            self.revocation.check(cert, issuer, at=at)
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

    def _find_issuer(self, cert: x509.Certificate, presented: Sequence[x509.Certificate]) -> x509.Certificate | None:
        for candidate in (*presented, *self.intermediates, *self.anchors):
            if candidate.subject == cert.issuer and _issued_by(cert, candidate):
                return candidate
        return None

    def _build_path(
        self, leaf: x509.Certificate, presented: Sequence[x509.Certificate], policy: VerifyPolicy
    ) -> tuple[x509.Certificate, ...]:
        anchor_fps = {fingerprint(a) for a in self.anchors}
        path = [leaf]
        current = leaf
        while len(path) < policy.max_chain_length:
            if fingerprint(current) in anchor_fps:
                return tuple(path)
            issuer = None
            for candidate in (*self.anchors, *presented, *self.intermediates):
                if candidate is current or candidate.subject != current.issuer:
                    continue
                if _issued_by(current, candidate):
                    issuer = candidate
                    break
            if issuer is None:
                break
            path.append(issuer)
            if fingerprint(issuer) in anchor_fps:
                return tuple(path)
            current = issuer
        raise CertificateUntrusted(
            f"certificate {_name(leaf)} (issued by {leaf.issuer.rfc4514_string()}) is not pinned for party "
            f"{self.party!r} and does not chain to any of its {len(self.anchors)} trust anchor(s)",
            details={"fingerprint": fingerprint(leaf)},
        )

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


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
        return True
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False


@dataclass(frozen=True)
class TrustRegistry:
    """Trust stores by party id."""

    stores: Mapping[str, TrustStore]

    def for_party(self, party: str) -> TrustStore:
        try:
            return self.stores[party]
        except KeyError:
            raise CertificateUntrusted(f"no trust store is configured for party {party!r}", field="party") from None
