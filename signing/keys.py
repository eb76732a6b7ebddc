"""Key material behind the :class:`Signer` interface.

The signing code never touches a private key: it hands the canonical
SignedInfo bytes to a :class:`Signer` and gets the SignatureValue back. A
software key (PEM or PKCS#12) is one implementation; an HSM (PKCS#11) is
another one to come, with the same three members.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import xmlsec
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.hazmat.primitives.serialization import pkcs12

from gateway.errors import CertificateMalformed, ConfigError, KeyLoadFailed, SigningFailed
from signing.algorithms import ECDSA_SHA256, ECDSA_SHA384, RSA_SHA256, SignatureAlgorithm

__all__ = [
    "Signer",
    "SoftwareSigner",
    "KeyRing",
    "PrivateKey",
    "load_certificate",
    "load_certificates",
    "load_private_key",
    "verify_raw",
    "default_algorithm_for",
]


PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
"""The private key types a :class:`SoftwareSigner` accepts."""


class Signer(abc.ABC):
    """Something that can sign bytes with a key whose certificate it knows."""

    @property
    @abc.abstractmethod
    def certificate(self) -> x509.Certificate:
        """The signer's (leaf) certificate, placed in KeyInfo."""

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        """Intermediate certificates to place in KeyInfo after the leaf (no trust anchor)."""
        return ()

    @abc.abstractmethod
    def sign(self, data: bytes, algorithm: SignatureAlgorithm) -> bytes:
        """The XMLDSig SignatureValue of ``data`` (ECDSA as raw r||s, per XMLDSig 1.1)."""


def default_algorithm_for(certificate: x509.Certificate) -> SignatureAlgorithm:
    """RSA-SHA256 for RSA keys, ECDSA-SHA256 for P-256, ECDSA-SHA384 for larger curves."""
    key = certificate.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        return ECDSA_SHA256 if key.curve.key_size <= 256 else ECDSA_SHA384
    return RSA_SHA256


def _spki(key: CertificatePublicKeyTypes) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _ec_size(key: ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey) -> int:
    return (key.curve.key_size + 7) // 8


class SoftwareSigner(Signer):
    """A private key held in memory, loaded from PEM files or a PKCS#12 bundle."""

    def __init__(
        self,
        key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
        certificate: x509.Certificate,
        chain: Sequence[x509.Certificate] = (),
    ) -> None:
        if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
            raise KeyLoadFailed(f"unsupported private key type {type(key).__name__}; RSA or EC keys only")
        if _spki(key.public_key()) != _spki(certificate.public_key()):
            raise KeyLoadFailed(
                f"the private key does not belong to certificate {certificate.subject.rfc4514_string()}"
            )
        self._key = key
        self._certificate = certificate
        self._chain = tuple(chain)
        self._native = _native_rsa_key(key)

    @property
    def certificate(self) -> x509.Certificate:
        return self._certificate

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        return self._chain

    @classmethod
    def from_pem(
        cls,
        key_path: str | Path,
        cert_path: str | Path,
        *,
        password: bytes | None = None,
        chain_path: str | Path | None = None,
    ) -> SoftwareSigner:
        """Load a PEM private key and a PEM certificate (optionally more certificates as the chain)."""
        try:
            key = serialization.load_pem_private_key(Path(key_path).read_bytes(), password=password)
        except (ValueError, TypeError, UnsupportedAlgorithm, OSError) as exc:
            raise KeyLoadFailed(f"cannot load private key {key_path}: {exc}", field=str(key_path)) from exc
        certs = load_certificates(cert_path)
        chain = load_certificates(chain_path) if chain_path else certs[1:]
        return cls(key, certs[0], chain)  # type: ignore[arg-type]

    @classmethod
    def from_pkcs12(cls, path: str | Path, password: bytes | None) -> SoftwareSigner:
        """Load a PKCS#12 bundle: its key, its certificate and any additional certificates as the chain."""
        try:
            key, cert, extra = pkcs12.load_key_and_certificates(Path(path).read_bytes(), password)
        except (ValueError, TypeError, UnsupportedAlgorithm, OSError) as exc:
            raise KeyLoadFailed(f"cannot open PKCS#12 {path}: {exc}", field=str(path)) from exc
        if key is None or cert is None:
            raise KeyLoadFailed(f"PKCS#12 {path} holds no private key with its certificate", field=str(path))
        chain = [c for c in extra if c.subject != c.issuer]  # never ship the root in KeyInfo
        return cls(key, cert, chain)  # type: ignore[arg-type]

    def sign(self, data: bytes, algorithm: SignatureAlgorithm) -> bytes:
        key = self._key
        try:
            if algorithm.key_type == "ec":
                if not isinstance(key, ec.EllipticCurvePrivateKey):
                    raise SigningFailed(f"{algorithm.uri} needs an EC key, this signer holds RSA")
                r, s = decode_dss_signature(key.sign(data, ec.ECDSA(algorithm.hash())))
                size = _ec_size(key)
                return r.to_bytes(size, "big") + s.to_bytes(size, "big")
            if not isinstance(key, rsa.RSAPrivateKey):
                raise SigningFailed(f"{algorithm.uri} needs an RSA key, this signer holds EC")
            if algorithm.key_type == "rsa" and self._native is not None:
                return _native_rsa_sign(self._native, data, algorithm)
            if algorithm.key_type == "rsa-pss":
                pad: padding.AsymmetricPadding = padding.PSS(
                    mgf=padding.MGF1(algorithm.hash()), salt_length=algorithm.salt_length
                )
            else:
                pad = padding.PKCS1v15()
            return key.sign(data, pad, algorithm.hash())
        except SigningFailed:
            raise
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise SigningFailed(f"signing with {algorithm.uri} failed: {exc}") from exc


_NATIVE_RSA = {
    "sha1": xmlsec.constants.TransformRsaSha1,
    "sha256": xmlsec.constants.TransformRsaSha256,
    "sha384": xmlsec.constants.TransformRsaSha384,
    "sha512": xmlsec.constants.TransformRsaSha512,
}


def _native_rsa_key(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> xmlsec.Key | None:
    """The RSA key as an xmlsec (OpenSSL) key, or None.

    RSA PKCS#1 v1.5 signing (the ~1 ms private-key operation of every signed message) goes through
    xmlsec because it releases the GIL while OpenSSL computes, so a gateway signing in worker threads
    keeps its event loop answering; ``cryptography`` holds the GIL for the whole operation. Same key,
    same deterministic signature bytes.
    """
    if not isinstance(key, rsa.RSAPrivateKey):
        return None
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    try:
        return xmlsec.Key.from_memory(pem, xmlsec.constants.KeyDataFormatPem, None)
    except xmlsec.Error:  # not expected for a key cryptography loaded; sign with cryptography then
        return None


def _native_rsa_sign(native: xmlsec.Key, data: bytes, algorithm: SignatureAlgorithm) -> bytes:
    ctx = xmlsec.SignatureContext()
    ctx.key = native
    try:
        return bytes(ctx.sign_binary(data, _NATIVE_RSA[algorithm.hash_name]))
    except xmlsec.Error as exc:
        raise SigningFailed(f"signing with {algorithm.uri} failed: {exc}") from exc


@dataclass(frozen=True)
class _RingEntry:
    signer: Signer
    active_from: datetime


class KeyRing(Signer):
    """Key rotation on the signing side: the newest signer whose ``active_from`` has passed signs.

    Publish the next certificate to partners (they add it to their trust store
    with an overlap window), add it here with a future ``active_from``, and the
    switch happens by itself at that instant.
    """

    def __init__(
        self, entries: Sequence[tuple[Signer, datetime]], *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        if not entries:
            raise KeyLoadFailed("a key ring needs at least one signer")
        self._entries = tuple(sorted((_RingEntry(s, t) for s, t in entries), key=lambda e: e.active_from))
        self._clock = clock

    def current(self) -> Signer:
        now = self._clock()
        active = [e for e in self._entries if e.active_from <= now]
        if not active:
            raise SigningFailed(f"no key of the ring is active yet (first activates {self._entries[0].active_from})")
        return active[-1].signer

    @property
    def certificate(self) -> x509.Certificate:
        return self.current().certificate

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        return self.current().chain

    def sign(self, data: bytes, algorithm: SignatureAlgorithm) -> bytes:
        return self.current().sign(data, algorithm)


def load_certificates(path: str | os.PathLike[str] | None) -> list[x509.Certificate]:
    """Every certificate in a PEM (or single DER) file, in file order; CONFIG_INVALID when the file cannot be
    read, CERT_MALFORMED when it holds no decodable certificate."""
    if path is None:
        return []
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read certificate file {path}: {exc.strerror or exc}", field=str(path)) from exc
    try:
        pem = b"-----BEGIN" in raw
        certs = x509.load_pem_x509_certificates(raw) if pem else [x509.load_der_x509_certificate(raw)]
    except ValueError as exc:
        raise CertificateMalformed(f"cannot decode certificate file {path}: {exc}", field=str(path)) from exc
    if not certs:
        raise CertificateMalformed(f"no certificate in {path}", field=str(path))
    return certs


def load_certificate(path: str | os.PathLike[str]) -> x509.Certificate:
    """The first certificate of a PEM or DER file; the codes of :func:`load_certificates`."""
    return load_certificates(path)[0]


def load_private_key(path: str | os.PathLike[str], password: bytes | None = None) -> PrivateKey:
    """An unencrypted (or ``password``-protected) PEM RSA or EC private key; KEY_LOAD_FAILED otherwise."""
    try:
        data = Path(path).read_bytes()
        key = serialization.load_pem_private_key(data, password=password)
    except (OSError, ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyLoadFailed(f"cannot load private key {path}: {exc}", field=str(path)) from exc
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise KeyLoadFailed(f"{path}: unsupported key type {type(key).__name__}", field=str(path))
    return key


def verify_raw(certificate: x509.Certificate, signature: bytes, data: bytes, algorithm: SignatureAlgorithm) -> bool:
    """Whether ``signature`` over ``data`` was made by ``certificate``'s key (used to diagnose failures)."""
    key = certificate.public_key()
    try:
        if algorithm.key_type == "ec":
            if not isinstance(key, ec.EllipticCurvePublicKey):
                return False
            size = _ec_size(key)
            if len(signature) != 2 * size:
                return False
            der = encode_dss_signature(int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big"))
            key.verify(der, data, ec.ECDSA(algorithm.hash()))
            return True
        if not isinstance(key, rsa.RSAPublicKey):
            return False
        if algorithm.key_type == "rsa-pss":
            # Exactly the salt length the method fixes: PSS.AUTO would accept any.
            pad: padding.AsymmetricPadding = padding.PSS(
                mgf=padding.MGF1(algorithm.hash()), salt_length=algorithm.salt_length
            )
        else:
            pad = padding.PKCS1v15()
        key.verify(signature, data, pad, algorithm.hash())
        return True
    except (InvalidSignature, ValueError):
        return False
