"""Revocation checking: CRLs, OCSP, and how to combine them.

Every checker implements :class:`RevocationChecker`::

    checker.check(cert, issuer, at=datetime.now(timezone.utc))

which returns ``None`` when ``cert`` (issued by ``issuer``) was not revoked at
``at`` and raises otherwise:

* :class:`~gateway.errors.CertificateRevoked` (``CERT_REVOKED``), with
  ``details`` ``serial`` (upper-case hex), ``revocation_time`` (ISO 8601),
  ``reason`` (``x509.ReasonFlags`` name or ``None``) and ``source``
  (``"crl"`` or ``"ocsp"``, plus ``url`` when fetched);
* :class:`~gateway.errors.RevocationUnavailable` (``CERT_REVOCATION_UNAVAILABLE``)
  when the status cannot be established (no CRL from the issuer, stale CRL,
  responder down, unauthorized responder, UNKNOWN, ...);
* :class:`~gateway.errors.CertificateMalformed` (``CERT_MALFORMED``) when a
  fetched CRL or an OCSP response cannot be decoded.

**The default everywhere is hard-fail**: "cannot tell" is an error. Wrap a
checker in :class:`SoftFail` to accept certificates whose status is unknown
(a logged warning each time), and use :class:`FirstAvailable` to fall back
from OCSP to CRLs. :class:`NoRevocationCheck` is the null object for parties
whose profile does not check revocation at all.

Only ``http://`` and ``https://`` URLs are ever fetched (never ``file:``,
``ftp:`` or LDAP), with a timeout and a size limit.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import urllib.error
import urllib.request
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from http.client import HTTPException
from typing import Any, Protocol, runtime_checkable

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from gateway.errors import CertificateMalformed, CertificateRevoked, ConfigError, NswError, RevocationUnavailable

__all__ = [
    "load_crl",
    "RevocationChecker",
    "NoRevocationCheck",
    "CrlChecker",
    "OcspChecker",
    "FirstAvailable",
    "SoftFail",
]

log = logging.getLogger("nswgw.revocation")

Clock = Callable[[], dt.datetime]

_MAX_CRL_BYTES = 20 * 1024 * 1024
_MAX_OCSP_BYTES = 1024 * 1024
_ALLOWED_SCHEMES = ("http://", "https://")
# Hashes accepted on an OCSP response signature (no SHA-1, no MD5). Ed25519/Ed448 carry none.
_STRONG_HASHES = (hashes.SHA256, hashes.SHA384, hashes.SHA512)


def load_crl(path: str | os.PathLike[str]) -> x509.CertificateRevocationList:
    """A PEM or DER CRL; CERT_MALFORMED when undecodable, CONFIG_INVALID when unreadable."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}", field=str(path)) from exc
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_crl(data)
        return x509.load_der_x509_crl(data)
    except ValueError as exc:
        raise CertificateMalformed(f"cannot decode CRL {path}: {exc}", field=str(path)) from exc


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _aware(value: dt.datetime) -> dt.datetime:
    """Naive datetimes are taken as UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _serial(cert: x509.Certificate) -> str:
    return f"{cert.serial_number:X}"


def _subject(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string()


@runtime_checkable
class RevocationChecker(Protocol):
    """Decides whether ``cert`` (issued by ``issuer``) was revoked at ``at``.

    Returns ``None`` when it was not; raises ``CertificateRevoked``,
    ``RevocationUnavailable`` or ``CertificateMalformed`` (see the module docstring).
    Implementations are thread-safe.
    """

    def check(self, cert: x509.Certificate, issuer: x509.Certificate, *, at: dt.datetime) -> None: ...


class NoRevocationCheck:
    """The null object: never checks, always passes."""

    def check(self, cert: x509.Certificate, issuer: x509.Certificate, *, at: dt.datetime) -> None:
        return None

    def __repr__(self) -> str:
        return "NoRevocationCheck()"


def _revoked(
    cert: x509.Certificate,
    when: dt.datetime,
    reason: x509.ReasonFlags | None,
    source: str,
    **extra: Any,
) -> CertificateRevoked:
    details: dict[str, Any] = {
        "serial": _serial(cert),
        "subject": _subject(cert),
        "revocation_time": when.isoformat(),
        "reason": reason.name if reason is not None else None,
        "source": source,
        **extra,
    }
    why = f" ({reason.name})" if reason is not None else ""
    return CertificateRevoked(
        f"certificate {_subject(cert)} (serial {_serial(cert)}) was revoked at {when.isoformat()}{why}"
        f" according to {source}",
        field="certificate",
        details=details,
    )


def _unavailable(cert: x509.Certificate, message: str, source: str, **extra: Any) -> RevocationUnavailable:
    return RevocationUnavailable(
        f"revocation status of {_subject(cert)} (serial {_serial(cert)}) unavailable: {message}",
        field="certificate",
        details={"serial": _serial(cert), "subject": _subject(cert), "source": source, **extra},
    )


def _http(url: str, *, data: bytes | None, content_type: str | None, accept: str, timeout: float, limit: int) -> bytes:
    """GET/POST ``url``; raises ``OSError``/``HTTPException``/``ValueError`` for the caller to map."""
    if not url.lower().startswith(_ALLOWED_SCHEMES):
        raise ValueError(f"refusing to fetch {url!r}: only http(s) URLs are allowed")
    headers = {"Accept": accept, "User-Agent": "nsw-gateway-revocation/1"}
    if content_type:
        headers["Content-Type"] = content_type
    request = urllib.request.Request(url, data=data, headers=headers, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - scheme checked above
            if response.status != 200:
                raise ValueError(f"HTTP {response.status} from {url}")
            body = response.read(limit + 1)
    except urllib.error.HTTPError as exc:
        exc.close()  # it holds the connection open
        raise ValueError(f"HTTP {exc.code} from {url}") from None
    if len(body) > limit:
        raise ValueError(f"response from {url} exceeds {limit} bytes")
    return body


# --------------------------------------------------------------------------- CRL


@dataclass(frozen=True)
class _FetchedCrl:
    crl: x509.CertificateRevocationList
    expires: dt.datetime


class CrlChecker:
    """Revocation from CRLs.

    ``crls`` are the CRLs known up front (e.g. :meth:`from_files`). For a
    certificate the checker considers only CRLs whose issuer name equals the
    issuer's subject **and** whose signature verifies with the issuer's public
    key (a CRL signed by anyone else is ignored), that are complete (not delta
    CRLs, not partitioned by reason, not indirect, in scope for CA/end-entity
    certificates) and that carry a nextUpdate. If none remains:
    ``RevocationUnavailable``. Of those, the newest with ``at <= nextUpdate``
    decides; if all are stale: ``RevocationUnavailable``. A serial listed
    with ``revocationDate <= at``: ``CertificateRevoked``.

    With ``fetch_distribution_points``, the CRLs named by the certificate's
    CRLDistributionPoints (http/https only) are fetched (``timeout`` seconds,
    DER or PEM) and cached until their nextUpdate; an undecodable download is
    ``CertificateMalformed``, an unreachable one only matters if no usable CRL
    remains.
    """

    def __init__(
        self,
        crls: Iterable[x509.CertificateRevocationList] = (),
        *,
        fetch_distribution_points: bool = False,
        timeout: float = 5.0,
        clock: Clock = _utcnow,
    ) -> None:
        self._crls = tuple(crls)
        self.fetch_distribution_points = fetch_distribution_points
        self.timeout = timeout
        self._clock = clock
        self._fetched: dict[str, _FetchedCrl] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_files(cls, paths: Iterable[str | os.PathLike[str]], **kwargs: Any) -> CrlChecker:
        """Load PEM or DER CRL files (CERT_MALFORMED when undecodable, CONFIG_INVALID when unreadable)."""
        return cls([load_crl(p) for p in paths], **kwargs)

    def __repr__(self) -> str:
        return f"CrlChecker({len(self._crls)} CRL(s), fetch_distribution_points={self.fetch_distribution_points})"

    def check(self, cert: x509.Certificate, issuer: x509.Certificate, *, at: dt.datetime) -> None:
        at = _aware(at)
        candidates = list(self._crls)
        fetch_errors: list[str] = []
        if self.fetch_distribution_points:
            for url in _crl_urls(cert):
                try:
                    candidates.append(self._fetch(url))
                except (OSError, HTTPException, ValueError) as exc:
                    fetch_errors.append(f"{url}: {exc}")
                    log.info("CRL download from %s failed: %s", url, exc)
        usable = [crl for crl in candidates if _crl_applies(crl, cert, issuer)]
        suffix = f" (downloads failed: {'; '.join(fetch_errors)})" if fetch_errors else ""
        if not usable:
            raise _unavailable(cert, f"no complete CRL signed by {_subject(issuer)} is available{suffix}", "crl")
        fresh = [crl for crl in usable if at <= crl.next_update_utc]  # type: ignore[operator]
        if not fresh:
            latest = max(crl.next_update_utc or at for crl in usable)
            raise _unavailable(
                cert,
                f"the CRL of {_subject(issuer)} is stale"
                f" (nextUpdate {latest.isoformat()} is before {at.isoformat()}){suffix}",
                "crl",
            )
        crl = max(fresh, key=lambda c: c.last_update_utc)
        entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
        if entry is None or entry.revocation_date_utc > at:
            return None
        try:
            reason: x509.ReasonFlags | None = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
        except x509.ExtensionNotFound:
            reason = None
        if reason is x509.ReasonFlags.remove_from_crl:  # only meaningful in delta CRLs; not revoked
            return None
        raise _revoked(cert, entry.revocation_date_utc, reason, "crl", crl_number=_crl_number(crl))

    def _fetch(self, url: str) -> x509.CertificateRevocationList:
        now = self._clock()
        with self._lock:
            cached = self._fetched.get(url)
        if cached is not None and now < cached.expires:
            return cached.crl
        body = _http(
            url, data=None, content_type=None, accept="application/pkix-crl", timeout=self.timeout, limit=_MAX_CRL_BYTES
        )
        try:
            crl = (
                x509.load_pem_x509_crl(body)
                if body.lstrip().startswith(b"-----BEGIN")
                else x509.load_der_x509_crl(body)
            )
        except ValueError as exc:
            raise CertificateMalformed(
                f"the CRL at {url} cannot be decoded: {exc}", field="crl", details={"url": url}
            ) from exc
        expires = crl.next_update_utc or now
        with self._lock:
            self._fetched[url] = _FetchedCrl(crl, expires)
        return crl


def _crl_urls(cert: x509.Certificate) -> list[str]:
    try:
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return []
    urls = []
    for point in points:
        for name in point.full_name or ():
            if isinstance(name, x509.UniformResourceIdentifier) and name.value.lower().startswith(_ALLOWED_SCHEMES):
                urls.append(name.value)
    return urls


def _crl_number(crl: x509.CertificateRevocationList) -> int | None:
    try:
        return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    except x509.ExtensionNotFound:
        return None


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


_crl_signatures: dict[tuple[bytes, x509.Certificate], bool] = {}


def _crl_signed_by(crl_fingerprint: bytes, crl: x509.CertificateRevocationList, issuer: x509.Certificate) -> bool:
    """Whether ``issuer`` signed ``crl``, verified once per (CRL, issuer): checks run per message."""
    key = (crl_fingerprint, issuer)
    known = _crl_signatures.get(key)
    if known is None:
        try:
            known = bool(crl.is_signature_valid(issuer.public_key()))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            known = False
        if len(_crl_signatures) > 4096:
            _crl_signatures.clear()
        _crl_signatures[key] = known
    return known


def _crl_applies(crl: x509.CertificateRevocationList, cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Issued and signed by ``issuer``, complete, in scope for ``cert``, with a nextUpdate."""
    if crl.issuer != issuer.subject or cert.issuer != issuer.subject or crl.next_update_utc is None:
        return False
    if not _crl_signed_by(crl.fingerprint(hashes.SHA256()), crl, issuer):
        return False
    try:
        crl.extensions.get_extension_for_class(x509.DeltaCRLIndicator)
        return False
    except x509.ExtensionNotFound:
        pass
    try:
        idp = crl.extensions.get_extension_for_class(x509.IssuingDistributionPoint).value
    except x509.ExtensionNotFound:
        return True
    if idp.indirect_crl or idp.only_some_reasons or idp.only_contains_attribute_certs:
        return False
    if idp.only_contains_ca_certs and not _is_ca(cert):
        return False
    return not (idp.only_contains_user_certs and _is_ca(cert))


# --------------------------------------------------------------------------- OCSP


@dataclass(frozen=True)
class _OcspAnswer:
    status: ocsp.OCSPCertStatus
    revocation_time: dt.datetime | None
    reason: x509.ReasonFlags | None
    expires: dt.datetime
    url: str


class OcspChecker:
    """Revocation from an OCSP responder (RFC 6960), over HTTP POST.

    * Responder: ``responder_url``, else the certificate's AIA OCSP URL (http/https).
    * Request: one CertID (hash ``cert_id_hash``, SHA-1 by default because that
      is what every responder understands; it identifies, it does not sign),
      plus a 16-byte nonce when ``use_nonce``.
    * Nonce policy: with ``use_nonce=True`` (the default) the response **must**
      echo the nonce, otherwise ``RevocationUnavailable``: a responder that
      ignores nonces could be replaying an old "good". For responders serving
      pre-signed responses (RFC 5019, most public CAs), set ``use_nonce=False``;
      freshness then rests on thisUpdate/nextUpdate alone.
    * Signature: by the issuer itself, or by a delegated responder certificate
      carried in the response that the issuer signed (verified) and that has the
      id-kp-OCSPSigning EKU and was valid when the response was produced.
      Anything else: ``RevocationUnavailable`` ("not authorized"). SHA-1/MD5
      signatures are refused. The delegated responder's own revocation status
      is not checked (RFC 6960 4.2.2.2.1, id-pkix-ocsp-nocheck).
    * Freshness (against the wall clock, ``clock``): thisUpdate no later than
      now + ``clock_skew``, nextUpdate (when present) no earlier than now - ``clock_skew``.
    * Status: GOOD passes; REVOKED with revocationTime <= ``at``: ``CertificateRevoked``;
      UNKNOWN: ``RevocationUnavailable``.
    * Cache: GOOD/REVOKED answers are cached per (issuer key hash, serial) until
      nextUpdate, or ``default_ttl`` when the response has none, so that
      verifying thousands of messages from one signer makes one OCSP call
      (concurrent first checks of one certificate share one call). At most
      ``max_cache_entries`` entries (oldest evicted).
    """

    def __init__(
        self,
        *,
        responder_url: str | None = None,
        timeout: float = 5.0,
        use_nonce: bool = True,
        clock_skew: dt.timedelta = dt.timedelta(minutes=5),
        default_ttl: dt.timedelta = dt.timedelta(minutes=5),
        cert_id_hash: hashes.HashAlgorithm = hashes.SHA1(),  # noqa: B008 - immutable
        max_cache_entries: int = 10_000,
        clock: Clock = _utcnow,
    ) -> None:
        if responder_url is not None and not responder_url.lower().startswith(_ALLOWED_SCHEMES):
            raise ConfigError(f"OCSP responder URL must be http(s): {responder_url!r}", field="responder_url")
        self.responder_url = responder_url
        self.timeout = timeout
        self.use_nonce = use_nonce
        self.clock_skew = clock_skew
        self.default_ttl = default_ttl
        self.cert_id_hash = cert_id_hash
        self.max_cache_entries = max_cache_entries
        self._clock = clock
        self._cache: OrderedDict[tuple[bytes, int], _OcspAnswer] = OrderedDict()
        self._inflight: dict[tuple[bytes, int], threading.Lock] = {}
        self._lock = threading.Lock()
        self.requests_sent = 0
        """How many OCSP requests this checker has sent (for monitoring and tests)."""

    def __repr__(self) -> str:
        return f"OcspChecker(responder_url={self.responder_url!r}, use_nonce={self.use_nonce})"

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()

    def check(self, cert: x509.Certificate, issuer: x509.Certificate, *, at: dt.datetime) -> None:
        at = _aware(at)
        key = (x509.SubjectKeyIdentifier.from_public_key(issuer.public_key()).digest, cert.serial_number)
        answer = self._cached(key)
        if answer is None:
            with self._lock:
                gate = self._inflight.setdefault(key, threading.Lock())
            try:
                with gate:
                    answer = self._cached(key)
                    if answer is None:
                        answer = self._query(cert, issuer)
                        if answer.status is not ocsp.OCSPCertStatus.UNKNOWN:
                            self._store(key, answer)
            finally:
                with self._lock:
                    self._inflight.pop(key, None)
        self._decide(cert, answer, at)

    # ---------------------------------------------------------------- internals

    def _cached(self, key: tuple[bytes, int]) -> _OcspAnswer | None:
        with self._lock:
            answer = self._cache.get(key)
            if answer is None:
                return None
            if self._clock() >= answer.expires:
                del self._cache[key]
                return None
            return answer

    def _store(self, key: tuple[bytes, int], answer: _OcspAnswer) -> None:
        with self._lock:
            self._cache[key] = answer
            self._cache.move_to_end(key)
            while len(self._cache) > self.max_cache_entries:
                self._cache.popitem(last=False)

    def _decide(self, cert: x509.Certificate, answer: _OcspAnswer, at: dt.datetime) -> None:
        if answer.status is ocsp.OCSPCertStatus.GOOD:
            return
        if answer.status is ocsp.OCSPCertStatus.REVOKED:
            assert answer.revocation_time is not None
            if answer.revocation_time <= at:
                raise _revoked(cert, answer.revocation_time, answer.reason, "ocsp", url=answer.url)
            return
        raise _unavailable(cert, f"the OCSP responder {answer.url} answered UNKNOWN", "ocsp", url=answer.url)

    def _url(self, cert: x509.Certificate) -> str:
        if self.responder_url:
            return self.responder_url
        try:
            aia: Iterable[x509.AccessDescription] = cert.extensions.get_extension_for_class(
                x509.AuthorityInformationAccess
            ).value
        except x509.ExtensionNotFound:
            aia = ()
        for desc in aia:
            if (
                desc.access_method == x509.AuthorityInformationAccessOID.OCSP
                and isinstance(desc.access_location, x509.UniformResourceIdentifier)
                and desc.access_location.value.lower().startswith(_ALLOWED_SCHEMES)
            ):
                return desc.access_location.value
        raise _unavailable(cert, "no OCSP responder URL configured or in the certificate's AIA", "ocsp")

    def _query(self, cert: x509.Certificate, issuer: x509.Certificate) -> _OcspAnswer:
        url = self._url(cert)
        builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, self.cert_id_hash)
        nonce = os.urandom(16) if self.use_nonce else None
        if nonce is not None:
            builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
        request = builder.build()
        with self._lock:
            self.requests_sent += 1
        try:
            body = _http(
                url,
                data=request.public_bytes(Encoding.DER),
                content_type="application/ocsp-request",
                accept="application/ocsp-response",
                timeout=self.timeout,
                limit=_MAX_OCSP_BYTES,
            )
        except ValueError as exc:
            raise _unavailable(cert, f"the OCSP responder {url} failed: {exc}", "ocsp", url=url) from exc
        except (OSError, HTTPException) as exc:
            raise _unavailable(cert, f"the OCSP responder {url} is unreachable: {exc}", "ocsp", url=url) from exc
        try:
            response = ocsp.load_der_ocsp_response(body)
        except ValueError as exc:
            raise CertificateMalformed(
                f"the OCSP response from {url} cannot be decoded: {exc}", field="ocsp_response", details={"url": url}
            ) from exc
        if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
            raise _unavailable(
                cert, f"the OCSP responder {url} answered {response.response_status.name}", "ocsp", url=url
            )
        try:
            return self._validate(cert, issuer, request, response, nonce, url)
        except NswError:
            raise
        except (ValueError, TypeError) as exc:  # a field cryptography could not parse lazily
            raise CertificateMalformed(
                f"the OCSP response from {url} cannot be decoded: {exc}", field="ocsp_response", details={"url": url}
            ) from exc

    def _validate(
        self,
        cert: x509.Certificate,
        issuer: x509.Certificate,
        request: ocsp.OCSPRequest,
        response: ocsp.OCSPResponse,
        nonce: bytes | None,
        url: str,
    ) -> _OcspAnswer:
        def fail(message: str) -> RevocationUnavailable:
            return _unavailable(cert, message, "ocsp", url=url)

        signer = _authorized_signer(response, issuer)
        if signer is None:
            raise fail(
                f"the OCSP response from {url} is signed by a responder that is not authorized by "
                f"{_subject(issuer)} (neither the issuer nor a certificate it issued with id-kp-OCSPSigning)"
            )
        if isinstance(signer, x509.Certificate):
            produced = response.produced_at_utc
            skew = self.clock_skew
            if not (signer.not_valid_before_utc - skew <= produced <= signer.not_valid_after_utc + skew):
                raise fail(
                    f"the OCSP responder certificate {_subject(signer)} was not valid when the response was produced"
                )
            public_key = signer.public_key()
        else:
            public_key = issuer.public_key()
        problem = _verify_response_signature(response, public_key)
        if problem:
            raise fail(f"the OCSP response from {url} {problem}")

        if nonce is not None:
            try:
                echoed = response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
            except x509.ExtensionNotFound:
                raise fail(
                    f"the OCSP responder {url} did not echo the request nonce (set use_nonce=False for responders "
                    "that serve pre-signed responses)"
                ) from None
            if echoed != nonce:
                raise fail(f"the OCSP response from {url} carries a different nonce (replayed?)")

        single = next(
            (
                r
                for r in response.responses
                if r.serial_number == cert.serial_number
                and r.issuer_key_hash == request.issuer_key_hash
                and r.issuer_name_hash == request.issuer_name_hash
            ),
            None,
        )
        if single is None:
            raise fail(f"the OCSP response from {url} does not cover the certificate")
        now = self._clock()
        if single.this_update_utc > now + self.clock_skew:
            raise fail(f"the OCSP response's thisUpdate {single.this_update_utc.isoformat()} is in the future")
        next_update = single.next_update_utc
        if next_update is not None and next_update < now - self.clock_skew:
            raise fail(f"the OCSP response expired at {next_update.isoformat()} (nextUpdate)")
        expires = next_update if next_update is not None else now + self.default_ttl
        status = single.certificate_status
        if status is ocsp.OCSPCertStatus.REVOKED:
            return _OcspAnswer(status, single.revocation_time_utc, single.revocation_reason, expires, url)
        return _OcspAnswer(status, None, None, expires, url)


def _matches_responder_id(response: ocsp.OCSPResponse, cert: x509.Certificate) -> bool:
    if response.responder_name is not None:
        return response.responder_name == cert.subject
    key_hash = response.responder_key_hash
    try:
        return key_hash == x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest
    except (TypeError, ValueError):
        return False


def _authorized_signer(response: ocsp.OCSPResponse, issuer: x509.Certificate) -> x509.Certificate | bool | None:
    """``True`` when the issuer signed the response itself, the delegated responder certificate, or ``None``."""
    if _matches_responder_id(response, issuer):
        return True
    for candidate in response.certificates:
        if not _matches_responder_id(response, candidate):
            continue
        if candidate.issuer != issuer.subject:
            continue
        try:
            candidate.verify_directly_issued_by(issuer)
        except (InvalidSignature, ValueError, TypeError):
            continue
        try:
            eku = candidate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            continue
        if ExtendedKeyUsageOID.OCSP_SIGNING in eku:
            return candidate
    return None


def _verify_response_signature(response: ocsp.OCSPResponse, public_key: Any) -> str | None:
    """``None`` when valid, else what is wrong."""
    algorithm = response.signature_hash_algorithm
    data, signature = response.tbs_response_bytes, response.signature
    try:
        if isinstance(public_key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
            public_key.verify(signature, data)
            return None
        if not isinstance(algorithm, _STRONG_HASHES):
            name = algorithm.name if algorithm is not None else "none"
            return f"is signed with a weak or unsupported hash ({name})"
        if isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, data, padding.PKCS1v15(), algorithm)
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, data, ec.ECDSA(algorithm))
        elif isinstance(public_key, dsa.DSAPublicKey):
            return "is signed with DSA, which is not accepted"
        else:
            return f"is signed with an unsupported key type ({type(public_key).__name__})"
    except InvalidSignature:
        return "has an invalid signature"
    except (ValueError, TypeError) as exc:  # e.g. RSASSA-PSS or mismatched algorithm
        return f"signature cannot be verified: {exc}"
    return None


# --------------------------------------------------------------------------- combinators


class FirstAvailable:
    """Try each checker in order (e.g. OCSP, then CRL).

    ``RevocationUnavailable`` falls through to the next checker; a definite
    answer (pass, ``CertificateRevoked``, ``CertificateMalformed``) is final.
    When every checker is unavailable, the last ``RevocationUnavailable`` is
    raised (the earlier ones are listed in its ``details["attempts"]``).
    """

    def __init__(self, checkers: Sequence[RevocationChecker]) -> None:
        self.checkers = tuple(checkers)
        if not self.checkers:
            raise ConfigError("FirstAvailable needs at least one revocation checker", field="checkers")

    def __repr__(self) -> str:
        return f"FirstAvailable({list(self.checkers)!r})"

    def check(self, cert: x509.Certificate, issuer: x509.Certificate, *, at: dt.datetime) -> None:
        failures: list[RevocationUnavailable] = []
        for checker in self.checkers:
            try:
                checker.check(cert, issuer, at=at)
                return None
            except RevocationUnavailable as exc:
                log.info("revocation check %r unavailable, trying the next: %s", checker, exc)
                failures.append(exc)
        last = failures[-1]
        last.details["attempts"] = [f.message for f in failures]
        raise last


class SoftFail:
    """Accept certificates whose revocation status cannot be established.

    Swallows ``RevocationUnavailable`` (logging a warning with its code and
    incident id); ``CertificateRevoked`` and ``CertificateMalformed`` still
    propagate. Everything else in the gateway is hard-fail by default: use this
    only where a partner's profile explicitly allows it.
    """

    def __init__(self, checker: RevocationChecker, *, logger: logging.Logger | None = None) -> None:
        self.checker = checker
        self._log = logger or log

    def __repr__(self) -> str:
        return f"SoftFail({self.checker!r})"

    def check(self, cert: x509.Certificate, issuer: x509.Certificate, *, at: dt.datetime) -> None:
        try:
            self.checker.check(cert, issuer, at=at)
        except RevocationUnavailable as exc:
            self._log.warning(
                "soft-fail: accepting %s without revocation status: %s [incident %s]",
                _subject(cert),
                exc,
                exc.incident_id,
            )
