"""RFC 3161 trusted timestamps over the journal head.

The imprint of a journal head is ``H("<seq>:<entry hash>")`` with the configured SHA-2 algorithm, so a token
binds one position of the hash chain, and through the chain every entry before it.

:func:`build_request` makes a ``TimeStampReq`` (imprint, nonce, ``certReq``), :func:`parse_response` takes the
token out of a ``TimeStampResp`` that grants it, and :func:`verify_timestamp_token` checks a stored token on its
own: the CMS ``SignedData`` signature over the signed attributes, the message-digest attribute against the
``TSTInfo``, the ESS signing-certificate binding, the imprint (and nonce, when given), the TSA certificate's
critical ``timeStamping`` extended key usage and its path to the configured anchors (validated at ``genTime``
through :class:`signing.trust.TrustStore`). Revocation of the TSA certificate is not checked here.

ASN.1 is parsed with ``asn1crypto``; signatures are checked with ``cryptography``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from asn1crypto import cms, tsp
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from gateway.errors import CertificateError, NswError, TimestampInvalid, TimestampOverdue, TimestampUnavailable
from gateway.journal import JournalEntry, JournalProblem
from gateway.periodic import Periodic
from gateway.store.base import Store, StoredTimestamp

if TYPE_CHECKING:
    from gateway.config import TimestampSettings

__all__ = [
    "HASH_ALGORITHMS",
    "TimestampInfo",
    "head_imprint",
    "build_request",
    "parse_response",
    "verify_timestamp_token",
    "request_timestamp",
    "JournalTimestamping",
    "TimestampReport",
    "verify_stored_timestamps",
]

log = logging.getLogger("nswgw.journal")

HASH_ALGORITHMS: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
"""The imprint and CMS digest algorithms accepted (no SHA-1)."""

_IMPRINT_SIZES = {"sha256": 32, "sha384": 48, "sha512": 64}


@dataclass(frozen=True)
class TimestampInfo:
    """What a verified token proves: ``imprint`` existed by ``gen_time`` according to the TSA."""

    gen_time: datetime
    serial: int
    tsa_subject: str
    hash_algorithm: str = "sha256"
    imprint: bytes = b""
    nonce: int | None = None


def head_imprint(seq: int, entry_hash: str, algorithm: str = "sha256") -> bytes:
    """The hashed message timestamped for journal entry ``seq`` whose chain hash is ``entry_hash``."""
    if algorithm not in HASH_ALGORITHMS:
        raise TimestampInvalid(f"hash algorithm {algorithm!r} is not one of {sorted(HASH_ALGORITHMS)}", field="hash")
    return hashlib.new(algorithm, f"{seq}:{entry_hash}".encode()).digest()


def build_request(imprint: bytes, algorithm: str = "sha256", *, nonce: int | None = None) -> tuple[bytes, int]:
    """A DER ``TimeStampReq`` for ``imprint`` with ``certReq`` set; returns it and its nonce."""
    if _IMPRINT_SIZES.get(algorithm) != len(imprint):
        raise TimestampInvalid(f"imprint of {len(imprint)} bytes does not fit {algorithm}", field="hash")
    nonce = nonce if nonce is not None else secrets.randbits(63)
    req = tsp.TimeStampReq(
        {
            "version": "v1",
            "message_imprint": {"hash_algorithm": {"algorithm": algorithm}, "hashed_message": imprint},
            "nonce": nonce,
            "cert_req": True,
        }
    )
    return req.dump(), nonce


def parse_response(response_der: bytes) -> bytes:
    """The DER token of a ``TimeStampResp``; TIMESTAMP_INVALID unless its status grants one."""
    try:
        resp = tsp.TimeStampResp.load(response_der)
        status = resp["status"]["status"].native
        token = resp["time_stamp_token"]
    except (ValueError, TypeError, KeyError) as exc:
        raise TimestampInvalid(f"the TSA response does not parse: {exc}", field="response") from exc
    if status not in ("granted", "granted_with_mods"):
        texts = resp["status"]["status_string"].native or []
        failure = resp["status"]["fail_info"].native
        raise TimestampInvalid(f"the TSA refused the request: {status} {failure or ''} {' '.join(texts)}".strip())
    if token.native is None:
        raise TimestampInvalid("the TSA granted the request but sent no token", field="response")
    return bytes(token.dump())


def request_timestamp(
    url: str,
    imprint: bytes,
    algorithm: str = "sha256",
    *,
    timeout: float = 10.0,
    anchors: Sequence[x509.Certificate] = (),
) -> tuple[bytes, TimestampInfo]:
    """Ask the TSA at ``url`` for a token over ``imprint`` and verify it (nonce included) against ``anchors``.

    TIMESTAMP_UNAVAILABLE when the TSA cannot be reached or answers with an HTTP error;
    TIMESTAMP_INVALID when its answer is not a valid token for our request."""
    request, nonce = build_request(imprint, algorithm)
    http = urllib.request.Request(
        url, data=request, method="POST", headers={"Content-Type": "application/timestamp-query"}
    )
    try:
        with urllib.request.urlopen(http, timeout=timeout) as reply:  # noqa: S310 - the configured TSA URL
            body = reply.read()
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise TimestampUnavailable(f"the TSA at {url} is unavailable: {exc}", field="journal.timestamp.url") from exc
    token = parse_response(body)
    return token, verify_timestamp_token(token, imprint, anchors, nonce=nonce)


def _name(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string()


def _attr(signed_attrs: Any, name: str) -> Any:
    values = [a["values"] for a in signed_attrs if a["type"].native == name]
    if len(values) != 1 or len(values[0]) != 1:
        return None
    return values[0][0]


def _signer_cert(sd: Any, sid: Any) -> tuple[x509.Certificate, list[x509.Certificate]]:
    certs = [c.chosen for c in sd["certificates"] if c.name == "certificate"] if sd["certificates"].native else []
    if not certs:
        raise TimestampInvalid("the token carries no TSA certificate (request it with certReq)", field="certificates")
    chosen = None
    for cert in certs:
        if sid.name == "issuer_and_serial_number":
            if cert.issuer == sid.chosen["issuer"] and cert.serial_number == sid.chosen["serial_number"].native:
                chosen = cert
        elif cert.key_identifier == sid.chosen.native:
            chosen = cert
    if chosen is None:
        raise TimestampInvalid("no certificate in the token matches its signer", field="signer_infos")
    leaf = x509.load_der_x509_certificate(chosen.dump())
    others = [x509.load_der_x509_certificate(c.dump()) for c in certs if c is not chosen]
    return leaf, others


def _check_signature(leaf: x509.Certificate, si: Any, signed: bytes, digest: str) -> None:
    algo = si["signature_algorithm"]["algorithm"].native
    signature = si["signature"].native
    key = leaf.public_key()
    chosen = HASH_ALGORITHMS[digest]()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            if algo == "rsassa_pss":
                params = si["signature_algorithm"]["parameters"]
                salt = int(params["salt_length"].native)
                mgf_hash = params["mask_gen_algorithm"]["parameters"]["algorithm"].native
                if mgf_hash not in HASH_ALGORITHMS:
                    raise TimestampInvalid(f"RSA-PSS MGF hash {mgf_hash} is not accepted", field="signer_infos")
                key.verify(signature, signed, padding.PSS(padding.MGF1(HASH_ALGORITHMS[mgf_hash]()), salt), chosen)
            elif algo in ("rsassa_pkcs1v15", f"{digest}_rsa"):
                key.verify(signature, signed, padding.PKCS1v15(), chosen)
            else:
                raise TimestampInvalid(f"signature algorithm {algo} is not accepted", field="signer_infos")
        elif isinstance(key, ec.EllipticCurvePublicKey):
            if algo not in ("ecdsa", f"{digest}_ecdsa"):
                raise TimestampInvalid(f"signature algorithm {algo} is not accepted", field="signer_infos")
            key.verify(signature, signed, ec.ECDSA(chosen))
        else:
            raise TimestampInvalid(f"TSA key type {type(key).__name__} is not accepted", field="signer_infos")
    except InvalidSignature as exc:
        raise TimestampInvalid("the token's CMS signature does not verify", field="signature") from exc


def _check_tsa_usage(leaf: x509.Certificate) -> None:
    # RFC 3161 2.3: the TSA certificate has exactly one extended key usage, timeStamping, marked critical.
    try:
        ext = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound as exc:
        raise TimestampInvalid(f"TSA certificate {_name(leaf)} has no extendedKeyUsage", field="tsa") from exc
    if not ext.critical or list(ext.value) != [ExtendedKeyUsageOID.TIME_STAMPING]:
        raise TimestampInvalid(
            f"TSA certificate {_name(leaf)} lacks the critical timeStamping extended key usage", field="tsa"
        )


def _check_tsa_certificate(
    leaf: x509.Certificate, others: Sequence[x509.Certificate], anchors: Sequence[x509.Certificate], at: datetime
) -> None:
    if not anchors:
        raise TimestampInvalid("no TSA trust anchors are configured", field="journal.timestamp.anchors")
    # Imported here: signing.trust pulls in the whole signing layer, which the rest of this module does not need.
    from signing.policy import VerifyPolicy
    from signing.trust import TrustStore

    store = TrustStore(party="timestamping authority", anchors=tuple(anchors), any_signer=True)
    policy = VerifyPolicy(allowed_ekus=frozenset({ExtendedKeyUsageOID.TIME_STAMPING.dotted_string}))
    try:
        store.validate(leaf, others, policy=policy, at=at)
    except CertificateError as exc:
        raise TimestampInvalid(f"TSA certificate not trusted: [{exc.code}] {exc.message}", field="tsa") from exc


def verify_timestamp_token(
    token_der: bytes,
    imprint: bytes,
    anchors: Sequence[x509.Certificate],
    *,
    nonce: int | None = None,
) -> TimestampInfo:
    """Verify an RFC 3161 token (a CMS ``ContentInfo``, DER) over ``imprint``; return what it proves.

    ``anchors``: the certificates the TSA certificate must chain to. ``nonce``: the nonce of our request, when
    the token answers one just made. Every failure is TIMESTAMP_INVALID, ``field`` naming the part at fault."""
    try:
        info = cms.ContentInfo.load(token_der, strict=True)
        if info["content_type"].native != "signed_data":
            raise TimestampInvalid("the token is not CMS SignedData", field="content_type")
        sd = info["content"]
        encap = sd["encap_content_info"]
        if encap["content_type"].native != "tst_info":
            raise TimestampInvalid("the token's content is not a TSTInfo", field="encap_content_info")
        econtent = bytes(encap["content"].contents)
        tst = tsp.TSTInfo.load(econtent)
        signer_infos = list(sd["signer_infos"])
        if len(signer_infos) != 1:
            raise TimestampInvalid(f"the token has {len(signer_infos)} signers, not one", field="signer_infos")
        si = signer_infos[0]
        digest = si["digest_algorithm"]["algorithm"].native
        if digest not in HASH_ALGORITHMS:
            raise TimestampInvalid(f"CMS digest algorithm {digest} is not accepted", field="signer_infos")
        signed_attrs = si["signed_attrs"]
        if not signed_attrs.native:
            raise TimestampInvalid("the token's signer has no signed attributes", field="signed_attrs")
        content_type = _attr(signed_attrs, "content_type")
        if content_type is None or content_type.native != "tst_info":
            raise TimestampInvalid("the content-type attribute is not TSTInfo", field="signed_attrs")
        message_digest = _attr(signed_attrs, "message_digest")
        if message_digest is None or message_digest.native != hashlib.new(digest, econtent).digest():
            raise TimestampInvalid("the message-digest attribute does not match the TSTInfo", field="message_digest")
        leaf, others = _signer_cert(sd, si["sid"])
        _check_tsa_usage(leaf)
        # The signature covers the DER of the attributes as a SET OF, not the [0] IMPLICIT form in the token.
        signed = b"\x31" + signed_attrs.dump()[1:]
        _check_signature(leaf, si, signed, digest)
        _check_signing_certificate(signed_attrs, leaf)
        algorithm = tst["message_imprint"]["hash_algorithm"]["algorithm"].native
        hashed = bytes(tst["message_imprint"]["hashed_message"].native)
        gen_time = tst["gen_time"].native
        serial = int(tst["serial_number"].native)
        token_nonce = tst["nonce"].native
    except TimestampInvalid:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        raise TimestampInvalid(f"the token does not parse: {exc}", field="token") from exc
    if algorithm not in HASH_ALGORITHMS or hashed != imprint:
        raise TimestampInvalid("the token's messageImprint is not the expected imprint", field="message_imprint")
    if nonce is not None and token_nonce != nonce:
        raise TimestampInvalid(f"the token's nonce {token_nonce} is not the request's {nonce}", field="nonce")
    _check_tsa_certificate(leaf, others, anchors, gen_time)
    return TimestampInfo(
        gen_time=gen_time,
        serial=serial,
        tsa_subject=_name(leaf),
        hash_algorithm=algorithm,
        imprint=hashed,
        nonce=token_nonce,
    )


def _check_signing_certificate(signed_attrs: Any, leaf: x509.Certificate) -> None:
    # RFC 5816 / RFC 2634: the ESS signing-certificate attribute binds the signer's certificate to the signature.
    der = leaf.public_bytes(Encoding.DER)
    v2 = _attr(signed_attrs, "signing_certificate_v2")
    if v2 is not None:
        first = v2["certs"][0]
        algo = first["hash_algorithm"]["algorithm"].native
        if algo not in HASH_ALGORITHMS or bytes(first["cert_hash"].native) != hashlib.new(algo, der).digest():
            raise TimestampInvalid("the ESS signing-certificate-v2 attribute names another certificate", field="tsa")
        return
    v1 = _attr(signed_attrs, "signing_certificate")
    if v1 is None:
        raise TimestampInvalid("the token has no ESS signing-certificate attribute", field="signed_attrs")
    # The v1 attribute can only carry a SHA-1 hash; it identifies (does not secure) the certificate.
    if bytes(v1["certs"][0]["cert_hash"].native) != hashlib.sha1(der, usedforsecurity=False).digest():
        raise TimestampInvalid("the ESS signing-certificate attribute names another certificate", field="tsa")


# --------------------------------------------------------------------------- the running gateway's side


class JournalTimestamping:
    """Timestamps the journal head on a :class:`~gateway.periodic.Periodic` task, never on intake or delivery.

    Every ``check_interval`` seconds it looks at the head; the head is due when it moved since the last token and
    ``every_entries`` entries were appended or ``every_seconds`` passed since then, or when an attempt on an earlier
    head failed (so the head is timestamped after an outage even when no new entries arrive). A failed attempt is
    logged at WARNING and retried after a wait that doubles up to ``max_backoff``. Once the head has stayed
    untimestamped for ``grace`` seconds after the first failure, :meth:`checks` reports ``journal_timestamp``
    failed, one ``timestamp_overdue`` event is published and, with ``stop_intake_after_grace``,
    :meth:`check_intake` refuses with ``TIMESTAMP_OVERDUE``. With no ``[journal.timestamp]`` (``settings=None``)
    it does nothing."""

    def __init__(
        self,
        store: Store,
        settings: TimestampSettings | None,
        *,
        now: Callable[[], float],
        publish: Callable[[str, dict[str, Any]], None] = lambda name, fields: None,
    ) -> None:
        self.store = store
        self.settings = settings
        self._now = now
        self._publish = publish
        self.anchors: tuple[x509.Certificate, ...] = ()
        self.last: StoredTimestamp | None = None
        self.failing_since: float | None = None
        self.last_error: str | None = None
        self.failures = 0
        self._next_attempt = 0.0
        self._since = now()
        self._announced = False
        self._rounds: Periodic | None = None
        if settings is not None:
            from signing.keys import load_certificates

            self.anchors = tuple(c for path in settings.anchors for c in load_certificates(path))
            self._rounds = Periodic(
                "journal-timestamp",
                settings.check_interval,
                self.round,
                log=log,
                failure=f"could not timestamp the journal head at {settings.url}",
            )

    async def start(self) -> None:
        if self.settings is None or self._rounds is None:
            return
        stored = await self.store.timestamps()
        self.last = stored[-1] if stored else None
        self._since = self._now()
        self._rounds.start()

    async def stop(self) -> None:
        if self._rounds is not None and self._rounds.running:
            await self._rounds.stop()

    def _due(self, head: JournalEntry) -> bool:
        settings = self.settings
        assert settings is not None
        if self.last is not None and self.last.seq == head.seq:
            return False
        if self.failing_since is not None:
            return True
        appended = head.seq - (self.last.seq if self.last is not None else 0)
        by_count = settings.every_entries is not None and appended >= settings.every_entries
        by_time = settings.every_seconds is not None and self._now() - self._since >= settings.every_seconds
        return by_count or by_time

    async def round(self) -> StoredTimestamp | None:
        """One look at the head: timestamp it when due and when no retry wait is running; the new token, if any."""
        settings = self.settings
        if settings is None:
            return None
        now = self._now()
        self._check_overdue(now)
        if now < self._next_attempt:
            return None
        head = await self.store.journal_head()
        if head is None or not self._due(head):
            return None
        imprint = head_imprint(head.seq, head.hash, settings.hash)
        try:
            token, info = await asyncio.to_thread(
                request_timestamp, settings.url, imprint, settings.hash, timeout=settings.timeout, anchors=self.anchors
            )
        except (TimestampUnavailable, TimestampInvalid) as exc:
            self._failed(now, head.seq, exc)
            return None
        stamp = StoredTimestamp(head.seq, head.hash, token, info.gen_time.timestamp(), str(info.serial))
        await self.store.timestamp_add(stamp)
        if self.failing_since is not None:
            log.warning(
                "journal head %d timestamped at %s after %d failed attempt(s)", head.seq, settings.url, self.failures
            )
        self.last, self.failing_since, self.last_error, self.failures = stamp, None, None, 0
        self._since = self._now()  # by the gateway's clock, not the TSA's genTime: the two may disagree
        self._next_attempt, self._announced = 0.0, False
        return stamp

    def _failed(self, now: float, seq: int, exc: NswError) -> None:
        settings = self.settings
        assert settings is not None
        self.failures += 1
        self.last_error = str(exc)
        if self.failing_since is None:
            self.failing_since = now
        wait = min(settings.check_interval * 2 ** (self.failures - 1), settings.max_backoff)
        self._next_attempt = now + wait
        log.warning(
            "could not timestamp journal head %d (attempt %d, next in %.0f s): %s", seq, self.failures, wait, exc
        )
        self._check_overdue(now)

    def overdue(self, now: float | None = None) -> bool:
        """Whether the head has stayed untimestamped for longer than ``grace`` since the first failed attempt."""
        if self.settings is None or self.failing_since is None:
            return False
        return (self._now() if now is None else now) - self.failing_since > self.settings.grace

    def _check_overdue(self, now: float) -> None:
        if not self._announced and self.overdue(now):
            self._announced = True
            assert self.failing_since is not None
            fields = {
                "code": TimestampOverdue.code,
                "since": self.failing_since,
                "failures": self.failures,
                "last_seq": self.last.seq if self.last is not None else 0,
                "error": self.last_error,
            }
            log.error("journal head untimestamped for longer than the grace period: %s", self.last_error)
            self._publish("timestamp_overdue", fields)

    def _why(self) -> str:
        assert self.settings is not None and self.failing_since is not None
        last = f"entry {self.last.seq}" if self.last is not None else "no entry yet"
        return (
            f"[{TimestampOverdue.code}] no trusted timestamp for {self._now() - self.failing_since:.0f} s"
            f" (grace {self.settings.grace:.0f} s; last timestamped: {last}): {self.last_error}"
        )

    def checks(self) -> dict[str, str]:
        """``{"journal_timestamp": ...}`` for ``/readyz`` when timestamping, else nothing."""
        if self.settings is None:
            return {}
        self._check_overdue(self._now())
        return {"journal_timestamp": f"failed: {self._why()}" if self.overdue() else "ok"}

    def check_intake(self) -> None:
        """Raise ``TIMESTAMP_OVERDUE`` when intake must stop (overdue and ``stop_intake_after_grace``)."""
        if self.settings is not None and self.settings.stop_intake_after_grace and self.overdue():
            raise TimestampOverdue(f"intake stopped: {self._why()}", field="journal.timestamp")


# --------------------------------------------------------------------------- nswgw log verify


@dataclass(frozen=True)
class TimestampReport:
    """What ``nswgw log verify`` found in the stored tokens."""

    tokens: int
    covered: dict[int, TimestampInfo]
    """For each seq a token covers (the token's seq and every entry before it), the earliest token covering it."""
    problems: tuple[JournalProblem, ...]
    """``timestamp-entry-mismatch`` / ``timestamp-invalid``, each naming the seq of the token."""


async def verify_stored_timestamps(
    store: Store, anchors: Sequence[x509.Certificate], entries: Mapping[int, str]
) -> TimestampReport:
    """Verify every stored token against the hash of its seq in ``entries`` (seq → chain hash, the journal as it
    is now); a token whose seq is not in ``entries`` is checked against its stored entry hash (a pruned entry)."""
    problems: list[JournalProblem] = []
    good: list[tuple[int, TimestampInfo]] = []
    stored = await store.timestamps()
    for stamp in stored:
        entry_hash = entries.get(stamp.seq, stamp.entry_hash)
        if entry_hash != stamp.entry_hash:
            problems.append(
                JournalProblem(stamp.seq, "timestamp-entry-mismatch (the entry's hash is not the one timestamped)")
            )
        try:
            info = verify_timestamp_token(
                stamp.token, head_imprint(stamp.seq, entry_hash, _token_hash(stamp.token)), anchors
            )
        except TimestampInvalid as exc:
            problems.append(JournalProblem(stamp.seq, f"timestamp-invalid ({exc.field}: {exc.message})"))
            continue
        good.append((stamp.seq, info))
    covered: dict[int, TimestampInfo] = {}
    for seq in sorted(entries):
        best = min((info for s, info in good if s >= seq), key=lambda i: i.gen_time, default=None)
        if best is not None:
            covered[seq] = best
    return TimestampReport(len(stored), covered, tuple(problems))


def _token_hash(token: bytes) -> str:
    """The imprint algorithm a token says it used (sha256 when it does not parse; verification then names why)."""
    try:
        tst = cms.ContentInfo.load(token)["content"]["encap_content_info"]["content"].parsed
        name = str(tst["message_imprint"]["hash_algorithm"]["algorithm"].native)
    except (ValueError, TypeError, KeyError):
        return "sha256"
    return name if name in HASH_ALGORITHMS else "sha256"
