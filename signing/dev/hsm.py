"""A SoftHSM2 development token holding a gateway signing key (``nswgw keys hsm-init``).

Layout of the directory it is given::

    softhsm2.conf     SoftHSM2 configuration (export SOFTHSM2_CONF=<dir>/softhsm2.conf for the gateway)
    tokens/           the token store (mode 0700)
    pin, so-pin       user and security-officer PINs (mode 0600; generated unless given)
    LABEL.pem         the key's certificate, issued by the dev PKI's issuing CA, followed by that CA

The key pair is generated on the token (sensitive, not extractable); its certificate is also stored on the
token as a certificate object with the same label and id. For development and tests only: the PINs are files.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.errors import ConfigError, KeyLoadFailed
from signing.dev.pki import KEY_KINDS, DevPki, issue_certificate

__all__ = ["SOFTHSM2_MODULE", "DevToken", "init_dev_token"]

SOFTHSM2_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
"""Where Debian's ``softhsm2`` package installs the PKCS#11 module."""

_CURVES = {"p256": "secp256r1", "p384": "secp384r1"}
_RSA_BITS = {"rsa2048": 2048, "rsa3072": 3072}


@dataclass(frozen=True)
class DevToken:
    """What :func:`init_dev_token` made: enough to write the ``[[signing.keys]]`` block."""

    directory: Path
    conf_path: Path
    module: str
    token: str
    key_label: str
    key_id: str
    pin_path: Path
    certificate_path: Path
    certificate: x509.Certificate

    def config_block(self) -> str:
        """The ``[[signing.keys]]`` TOML block for this key."""
        return (
            "[[signing.keys]]\n"
            f'pkcs11 = {{ module = "{self.module}", token = "{self.token}", key_label = "{self.key_label}", '
            f'key_id = "{self.key_id}", pin_file = "{self.pin_path}", certificate = "{self.certificate_path}" }}\n'
        )


def _private(path: Path, data: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(data + "\n")
    os.chmod(path, 0o600)


def _pin(path: Path, given: str | None) -> str:
    if given:
        _private(path, given)
        return given
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    value = secrets.token_hex(8)
    _private(path, value)
    return value


def _library(module: str, conf: Path) -> Any:
    """The PKCS#11 library, (re)initialized so SoftHSM2 reads ``conf`` (it reads SOFTHSM2_CONF at C_Initialize)."""
    import pkcs11

    os.environ["SOFTHSM2_CONF"] = str(conf)
    try:
        lib = pkcs11.lib(module)
    except (pkcs11.exceptions.PKCS11Error, OSError, RuntimeError) as exc:
        raise KeyLoadFailed(f"cannot load PKCS#11 module {module}: {exc}", field="--module") from exc
    lib.reinitialize()
    return lib


def init_dev_token(
    directory: str | os.PathLike[str],
    pki: DevPki,
    *,
    key_kind: str = "rsa2048",
    token: str = "nswgw-dev",
    key_label: str = "gateway",
    key_id: str | None = None,
    common_name: str = "nsw-gateway",
    pin: str | None = None,
    module: str = SOFTHSM2_MODULE,
) -> DevToken:
    """Create (or reuse) the SoftHSM2 token ``token`` under ``directory`` and generate a ``key_kind`` key on it.

    Errors: CONFIG_INVALID naming the option (``--key-type``, ``--label``, ``--id``) for a bad request or a
    label already taken on the token; KEY_LOAD_FAILED (``--module``) when the module or ``softhsm2-util`` is
    missing. Re-initializes the PKCS#11 library in this process (other sessions on it are closed).
    """
    import pkcs11
    from pkcs11 import Attribute, CertificateType, KeyType, ObjectClass
    from pkcs11.util.ec import encode_ec_public_key, encode_named_curve_parameters

    if key_kind not in KEY_KINDS:
        raise ConfigError(f"unknown key type {key_kind!r}; one of {', '.join(KEY_KINDS)}", field="--key-type")
    if key_id is None:
        key_id = secrets.token_hex(4)
    try:
        id_bytes = bytes.fromhex(key_id)
    except ValueError:
        raise ConfigError(f"--id {key_id!r} is not hex", field="--id") from None
    if not id_bytes:
        raise ConfigError("--id must not be empty", field="--id")
    root = Path(directory).resolve()
    tokens = root / "tokens"
    tokens.mkdir(parents=True, exist_ok=True)
    os.chmod(tokens, 0o700)
    conf = root / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
        encoding="utf-8",
    )
    user_pin = _pin(root / "pin", pin)
    so_pin = _pin(root / "so-pin", None)
    lib = _library(module, conf)
    if not list(lib.get_tokens(token_label=token)):
        util = shutil.which("softhsm2-util")
        if util is None:
            raise KeyLoadFailed("softhsm2-util not found: apt-get install softhsm2", field="--module")
        done = subprocess.run(
            [util, "--init-token", "--free", "--label", token, "--pin", user_pin, "--so-pin", so_pin],
            env={**os.environ, "SOFTHSM2_CONF": str(conf)},
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise KeyLoadFailed(f"softhsm2-util --init-token failed: {done.stderr.strip()}", field="--module")
        lib.reinitialize()  # SoftHSM2 lists the slots it found at C_Initialize
    session = lib.get_token(token_label=token).open(user_pin=user_pin, rw=True)
    try:
        taken = list(session.get_objects({Attribute.LABEL: key_label})) + list(
            session.get_objects({Attribute.ID: id_bytes})
        )
        if taken:
            raise ConfigError(
                f"token {token!r} already holds objects labelled {key_label!r} or id {key_id}", field="--label"
            )
        private_template = {Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False, Attribute.SIGN: True}
        if key_kind in _RSA_BITS:
            pub, _ = session.generate_keypair(
                KeyType.RSA,
                _RSA_BITS[key_kind],
                label=key_label,
                id=id_bytes,
                store=True,
                private_template=private_template,
            )
            public_key: Any = rsa.RSAPublicNumbers(
                int.from_bytes(pub[Attribute.PUBLIC_EXPONENT], "big"), int.from_bytes(pub[Attribute.MODULUS], "big")
            ).public_key()
        else:
            params = session.create_domain_parameters(
                KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters(_CURVES[key_kind])}, local=True
            )
            pub, _ = params.generate_keypair(
                label=key_label, id=id_bytes, store=True, private_template=private_template
            )
            public_key = serialization.load_der_public_key(encode_ec_public_key(pub))
        cert = issue_certificate(pki.issuing_cert, pki.issuing_key, common_name, public_key)
        der = cert.public_bytes(serialization.Encoding.DER)
        session.create_object(
            {
                Attribute.CLASS: ObjectClass.CERTIFICATE,
                Attribute.CERTIFICATE_TYPE: CertificateType.X_509,
                Attribute.TOKEN: True,
                Attribute.LABEL: key_label,
                Attribute.ID: id_bytes,
                Attribute.SUBJECT: cert.subject.public_bytes(),
                Attribute.ISSUER: cert.issuer.public_bytes(),
                Attribute.VALUE: der,
            }
        )
    except pkcs11.exceptions.PKCS11Error as exc:
        raise KeyLoadFailed(f"token {token!r}: {type(exc).__name__} {exc}", field="--module") from exc
    finally:
        session.close()
    cert_path = root / f"{key_label}.pem"
    pem = serialization.Encoding.PEM
    cert_path.write_bytes(cert.public_bytes(pem) + pki.issuing_cert.public_bytes(pem))
    return DevToken(root, conf, module, token, key_label, id_bytes.hex(), root / "pin", cert_path, cert)
