"""A :class:`~signing.keys.Signer` whose private key stays in a PKCS#11 token (an HSM, or SoftHSM2 in development).

The key is found on the token by label and/or id (hex) and used only through ``C_Sign``: it is never read or
extracted. The certificate comes from a PEM file or from the token's certificate object with the same label/id.

Unattended operation: the signer logs in when it is built (a missing or wrong PIN is a coded error then, never
a default PIN) and, when the session or the token's login is lost (``SessionHandleInvalid``, ``DeviceRemoved``,
``UserNotLoggedIn``, ``TokenNotPresent``, the library finalized), it reopens the session and logs in again once
before giving up with ``SIGNING_FAILED``. One session per signer, guarded by a lock: worker threads may sign
concurrently.

Mechanisms: RSA PKCS#1 v1.5 (``CKM_SHA*_RSA_PKCS``), RSASSA-PSS (``CKM_SHA*_RSA_PKCS_PSS`` with MGF1 of the same
hash and a salt as long as the hash, as the ``*-rsa-MGF1`` methods fix), ECDSA (``CKM_ECDSA_SHA*`` where the token
offers it, otherwise the hash computed here and ``CKM_ECDSA``). PKCS#11 returns ECDSA signatures as raw r||s,
which is what XMLDSig 1.1 wants.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import stat
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography import x509

from gateway.errors import ConfigError, HsmPinIncorrect, HsmPinMissing, KeyLoadFailed, SigningFailed
from signing.algorithms import SignatureAlgorithm
from signing.keys import Signer, default_algorithm_for, verify_raw

__all__ = ["Pkcs11Signer", "read_pin", "check_pin_file"]

_HASHES = ("sha1", "sha224", "sha256", "sha384", "sha512")

_LOGINS: dict[tuple[str, str], bytes] = {}
"""SHA-256 of the PIN that logged this process in, per (module, token label)."""


def check_pin_file(path: str | os.PathLike[str], field: str) -> None:
    """CONFIG_INVALID naming ``field`` unless ``path`` is a regular file that only its owner can read or write."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise ConfigError(f"cannot read PIN file {path}: {exc.strerror or exc}", field=field) from exc
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"PIN file {path} is not a regular file", field=field)
    if st.st_mode & 0o077:
        raise ConfigError(
            f"PIN file {path} is accessible by group or others (mode {stat.S_IMODE(st.st_mode):04o}); "
            "chmod 600 it so only the service user can read it",
            field=field,
        )


def read_pin(*, pin_env: str | None, pin_file: str | os.PathLike[str] | None, field: str) -> str:
    """The token PIN from the environment variable ``pin_env`` or the owner-only file ``pin_file``.

    ``field`` is the configuration key of the PKCS#11 source (``signing.keys[0].pkcs11``); errors name
    ``field.pin_env`` / ``field.pin_file``: HSM_PIN_MISSING when unset or empty, CONFIG_INVALID for a pin file
    that others may read.
    """
    if pin_env is not None:
        value = os.environ.get(pin_env)
        if not value:
            raise HsmPinMissing(
                f"environment variable {pin_env} holding the token PIN is not set", field=f"{field}.pin_env"
            )
        return value
    if pin_file is not None:
        check_pin_file(pin_file, f"{field}.pin_file")
        try:
            value = Path(pin_file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read PIN file {pin_file}: {exc}", field=f"{field}.pin_file") from exc
        if not value:
            raise HsmPinMissing(f"PIN file {pin_file} is empty", field=f"{field}.pin_file")
        return value
    raise HsmPinMissing("no token PIN configured: give pin_env or pin_file", field=f"{field}.pin_env")


def _pkcs11() -> Any:
    try:
        import pkcs11
    except ImportError as exc:  # a declared dependency; only a broken install lacks it
        raise KeyLoadFailed(f"python-pkcs11 is not installed: {exc}") from exc
    return pkcs11


def _lost_errors(pkcs11: Any) -> tuple[type[BaseException], ...]:
    """The PKCS#11 errors after which a new session (and login) may succeed."""
    e = pkcs11.exceptions
    return (
        e.SessionHandleInvalid,
        e.SessionClosed,
        e.DeviceRemoved,
        e.DeviceError,
        e.UserNotLoggedIn,
        e.TokenNotPresent,
        e.TokenNotRecognised,
        e.KeyHandleInvalid,
        e.ObjectHandleInvalid,
    )


class Pkcs11Signer(Signer):
    """Signs with a private key held by a PKCS#11 token; the key never leaves it.

    ``module``: the PKCS#11 library (``/usr/lib/softhsm/libsofthsm2.so``); ``token``: the token label;
    ``key_label`` and/or ``key_id`` (bytes): the private key object; ``pin``: the user PIN;
    ``certificate``: the key's certificate, or ``None`` to read the token's certificate object with the same
    label/id. ``field`` is the configuration key named by errors, ``pin_field`` the one of the PIN's source.
    """

    def __init__(
        self,
        module: str | os.PathLike[str],
        token: str,
        *,
        pin: str,
        key_label: str | None = None,
        key_id: bytes | None = None,
        certificate: x509.Certificate | None = None,
        chain: Sequence[x509.Certificate] = (),
        field: str = "pkcs11",
        pin_field: str | None = None,
    ) -> None:
        if key_label is None and key_id is None:
            raise ConfigError("name the key by key_label and/or key_id", field=f"{field}.key_label")
        if not pin:
            raise HsmPinMissing("an empty token PIN", field=f"{field}.pin_env")
        self._p11 = _pkcs11()
        self._module = str(module)
        self._token_label = token
        self._key_label = key_label
        self._key_id = key_id
        self._pin = pin
        self._pin_digest = hashlib.sha256(pin.encode()).digest()
        self._login_key = (str(module), token)
        self._field = field
        self._pin_field = pin_field or f"{field}.pin"
        self._lock = threading.Lock()
        self._session: Any = None
        self._key: Any = None
        self._mechanisms: frozenset[Any] = frozenset()
        self.relogins = 0
        """How many times the session was reopened after a loss (observability and tests)."""
        try:
            self._lib = self._p11.lib(self._module)
        except (self._p11.exceptions.PKCS11Error, OSError, RuntimeError) as exc:
            raise KeyLoadFailed(f"cannot load PKCS#11 module {self._module}: {exc}", field=f"{field}.module") from exc
        with self._lock:
            self._open()
            self._certificate = certificate if certificate is not None else self._token_certificate()
        self._chain = tuple(chain)
        self._self_test()

    # ------------------------------------------------------------------ Signer

    @property
    def certificate(self) -> x509.Certificate:
        return self._certificate

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        return self._chain

    def sign(self, data: bytes, algorithm: SignatureAlgorithm) -> bytes:
        if algorithm.hash_name not in _HASHES:
            raise SigningFailed(f"{algorithm.uri}: no PKCS#11 mechanism for {algorithm.hash_name}")
        lost = _lost_errors(self._p11)
        with self._lock:
            for attempt in (1, 2):
                try:
                    if self._session is None:
                        self._open()
                    return self._sign_once(data, algorithm)
                except lost + (self._p11.exceptions.PKCS11Error,) as exc:
                    recoverable = isinstance(exc, lost) or not self._lib_initialized()
                    self._drop()
                    if recoverable and attempt == 1:
                        self.relogins += 1
                        continue
                    raise SigningFailed(
                        f"token {self._token_label!r}: signing with {algorithm.uri} failed: "
                        f"{type(exc).__name__} {exc}".rstrip(),
                        field=self._field,
                    ) from exc
                except KeyLoadFailed as exc:  # HSM_PIN_* too: the token was found again but refused us
                    raise SigningFailed(
                        f"token {self._token_label!r} lost and not reopened: {exc.message}", field=exc.field
                    ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        """Log out and close the session (the next :meth:`sign` reopens it)."""
        with self._lock:
            self._drop()

    # ------------------------------------------------------------------ internals

    def _sign_once(self, data: bytes, algorithm: SignatureAlgorithm) -> bytes:
        m = self._p11.Mechanism
        name = algorithm.hash_name.upper()
        if algorithm.key_type == "ec":
            combined = getattr(m, f"ECDSA_{name}", None)
            if combined is not None and combined in self._mechanisms:
                return bytes(self._key.sign(data, mechanism=combined))
            digest = hashlib.new(algorithm.hash_name, data).digest()
            return bytes(self._key.sign(digest, mechanism=m.ECDSA))
        if algorithm.key_type == "rsa-pss":
            params = (getattr(m, name), getattr(self._p11.MGF, name), algorithm.salt_length)
            return bytes(self._key.sign(data, mechanism=getattr(m, f"{name}_RSA_PKCS_PSS"), mechanism_param=params))
        return bytes(self._key.sign(data, mechanism=getattr(m, f"{name}_RSA_PKCS")))

    def _lib_initialized(self) -> bool:
        return bool(getattr(self._lib, "initialized", True))

    def _drop(self) -> None:
        session, self._session, self._key = self._session, None, None
        if session is not None:
            with contextlib.suppress(self._p11.exceptions.PKCS11Error):  # already gone: why it is dropped
                session.close()

    def _open(self) -> None:
        """Find the token, log in and find the private key. Caller holds the lock."""
        p11 = self._p11
        e = p11.exceptions
        if not self._lib_initialized():
            try:
                self._lib.initialize()
            except e.PKCS11Error as exc:
                raise KeyLoadFailed(
                    f"cannot initialize {self._module}: {exc!r}", field=f"{self._field}.module"
                ) from exc
        try:
            token = self._lib.get_token(token_label=self._token_label)
        except (e.NoSuchToken, e.MultipleTokensReturned) as exc:
            raise KeyLoadFailed(
                f"{type(exc).__name__}: no single token labelled {self._token_label!r} in {self._module}",
                field=f"{self._field}.token",
            ) from exc
        except e.PKCS11Error as exc:
            raise KeyLoadFailed(
                f"cannot list the tokens of {self._module}: {exc!r}", field=f"{self._field}.token"
            ) from exc
        try:
            try:
                session = token.open(user_pin=self._pin)
            except e.UserAlreadyLoggedIn:
                # Login is per application and token, not per session: another signer of this process (a second
                # key of the ring on the same token) is logged in, and a new session shares that login. The token
                # cannot check our PIN then; the PIN that logged in is compared instead, so a wrong one still fails.
                known = _LOGINS.get(self._login_key)
                if known is not None and not hmac.compare_digest(known, self._pin_digest):
                    raise e.PinIncorrect() from None
                session = token.open()
            else:
                _LOGINS[self._login_key] = self._pin_digest
        except (e.PinIncorrect, e.PinInvalid, e.PinLenRange) as exc:
            raise HsmPinIncorrect(
                f"token {self._token_label!r} refused the PIN ({type(exc).__name__})", field=self._pin_field
            ) from exc
        except (e.PinLocked, e.PinExpired, e.UserPinNotInitialized) as exc:
            raise HsmPinIncorrect(
                f"token {self._token_label!r}: {type(exc).__name__}; an officer must reset the user PIN",
                field=self._pin_field,
            ) from exc
        except e.PKCS11Error as exc:
            raise KeyLoadFailed(
                f"cannot open a session on token {self._token_label!r}: {exc!r}", field=f"{self._field}.token"
            ) from exc
        try:
            key = session.get_key(object_class=p11.ObjectClass.PRIVATE_KEY, label=self._key_label, id=self._key_id)
        except (e.NoSuchKey, e.MultipleObjectsReturned) as exc:
            session.close()
            raise KeyLoadFailed(
                f"{type(exc).__name__}: no single private key {self._describe()} on token {self._token_label!r}",
                field=f"{self._field}.key_label" if self._key_label is not None else f"{self._field}.key_id",
            ) from exc
        try:
            self._mechanisms = frozenset(token.slot.get_mechanisms())
        except e.PKCS11Error:
            self._mechanisms = frozenset()
        self._session, self._key = session, key

    def _describe(self) -> str:
        parts = []
        if self._key_label is not None:
            parts.append(f"label={self._key_label!r}")
        if self._key_id is not None:
            parts.append(f"id={self._key_id.hex()}")
        return " ".join(parts)

    def _token_certificate(self) -> x509.Certificate:
        p11 = self._p11
        attrs: dict[Any, Any] = {p11.Attribute.CLASS: p11.ObjectClass.CERTIFICATE}
        if self._key_label is not None:
            attrs[p11.Attribute.LABEL] = self._key_label
        if self._key_id is not None:
            attrs[p11.Attribute.ID] = self._key_id
        found = list(self._session.get_objects(attrs))
        if len(found) != 1:
            raise KeyLoadFailed(
                f"{len(found)} certificate objects {self._describe()} on token {self._token_label!r}; store exactly "
                "one, or give the certificate file",
                field=f"{self._field}.certificate",
            )
        try:
            return x509.load_der_x509_certificate(bytes(found[0][p11.Attribute.VALUE]))
        except ValueError as exc:
            raise KeyLoadFailed(
                f"the certificate object {self._describe()} does not decode: {exc}", field=f"{self._field}.certificate"
            ) from exc

    def _self_test(self) -> None:
        """Sign once at start: proves the PIN, the mechanism and that the key belongs to the certificate."""
        algorithm = default_algorithm_for(self._certificate)
        probe = b"nswgw pkcs11 self-test"
        try:
            value = self.sign(probe, algorithm)
        except SigningFailed as exc:
            raise KeyLoadFailed(f"the token key cannot sign: {exc.message}", field=self._field) from exc
        if not verify_raw(self._certificate, value, probe, algorithm):
            raise KeyLoadFailed(
                f"the token key {self._describe()} does not belong to certificate "
                f"{self._certificate.subject.rfc4514_string()}",
                field=f"{self._field}.certificate",
            )
