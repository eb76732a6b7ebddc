"""Adapter options from plain TOML values: keys, trust stores, certificates, file paths.

An adapter is built as ``cls(url, timeout=..., options=<[destinations.X.options]>)``;
its options are plain TOML values there, and Python objects in tests and
embedding code. These helpers accept both and return the object the adapter
needs; every error is a :class:`~gateway.errors.ConfigError` whose ``field``
is the dotted path of the bad option (``options.signer.password_env``,
``options.trust.anchors[0]``).

Relative paths are relative to ``base`` when given, else to the current
directory (the gateway passes ``[destinations.X.options]`` through as it is).

* :func:`signer_from_options`: a :class:`~signing.keys.Signer`, or
  ``{ p12 = "path", password_env = "VAR" }`` (PKCS#12; also ``password``) or
  ``{ key = "path", cert = "path" }`` (PEM; optionally ``chain``,
  ``password``/``password_env``);
* :func:`trust_from_options`: a :class:`~signing.trust.TrustStore`, or
  ``{ anchors = [...], pinned = [...], intermediates = [...], crls = [...] }``,
  the same table as ``[destinations.X.trust]`` (:class:`gateway.config.TrustSettings`:
  also ``ocsp``, ``fetch_crls``, ``soft_fail``; a pinned entry is a path or
  ``{ certificate = "path", accept_from = ..., accept_until = ... }``);
* :func:`certificate_from_options`: an ``x509.Certificate`` or a PEM/DER file;
* :func:`path_from_options`: a file path.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography import x509
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, model_validator

from gateway.config import config_error
from gateway.errors import ConfigError, NswError
from signing.keys import Signer, SoftwareSigner, load_certificates
from signing.trust import TrustStore

__all__ = [
    "SignerOptions",
    "signer_from_options",
    "trust_from_options",
    "certificate_from_options",
    "path_from_options",
]


def _invalid(exc: ValidationError, field: str) -> ConfigError:
    return config_error(exc, prefix=field)


def path_from_options(value: Any, *, field: str, base: str | Path | None = None) -> Path:
    """A file path (``str`` or ``PathLike``); relative to ``base`` or the current directory."""
    if not isinstance(value, (str, os.PathLike)) or not str(value):
        raise ConfigError(f"must be a file path, not {type(value).__name__}", field=field)
    path = Path(value)
    if base is not None and not path.is_absolute():
        path = Path(base) / path
    return path


class SignerOptions(BaseModel):
    """A software signing key: a PKCS#12 bundle, or a PEM key with its certificate."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True, populate_by_name=True)

    p12: str | None = Field(None, validation_alias=AliasChoices("p12", "pkcs12"))
    """PKCS#12 file with the key, its certificate and the chain (also spelled ``pkcs12``)."""
    key: str | None = None
    """PEM private key file (with ``cert``)."""
    cert: str | None = Field(None, validation_alias=AliasChoices("cert", "certificate"))
    """PEM certificate file; further certificates in it are the chain (also spelled ``certificate``)."""
    chain: str | None = None
    """PEM file of intermediate certificates sent with signatures."""
    password: str | None = None
    """Password of the PKCS#12 bundle or the PEM key, in clear (development only)."""
    password_env: str | None = None
    """Environment variable holding that password."""

    @model_validator(mode="after")
    def _one_source(self) -> SignerOptions:
        if (self.p12 is None) == (self.key is None):
            raise ValueError("give either p12 or key (with cert)")
        if self.key is not None and self.cert is None:
            raise ValueError("a PEM key needs its cert")
        if self.password is not None and self.password_env is not None:
            raise ValueError("give password or password_env, not both")
        return self


def _load(field: str, loader: Any) -> Any:
    try:
        return loader()
    except NswError as exc:
        raise ConfigError(exc.message, field=field) from exc


def signer_from_options(value: Any, *, field: str = "options.signer", base: str | Path | None = None) -> Signer:
    """Our signing key: a :class:`Signer` as it is, or a ``{ p12 = ... }`` / ``{ key = ..., cert = ... }`` table."""
    if isinstance(value, Signer):
        return value
    if value is None:
        raise ConfigError(
            'a signing key is required: { p12 = "path", password_env = "VAR" } or { key = "path", cert = "path" }',
            field=field,
        )
    if not isinstance(value, Mapping):
        raise ConfigError(f"must be a table (p12 or key/cert), not {type(value).__name__}", field=field)
    try:
        opts = SignerOptions.model_validate(dict(value))
    except ValidationError as exc:
        raise _invalid(exc, field) from None
    password: bytes | None = None
    if opts.password_env is not None:
        secret = os.environ.get(opts.password_env)
        if secret is None:
            raise ConfigError(f"environment variable {opts.password_env} is not set", field=f"{field}.password_env")
        password = secret.encode()
    elif opts.password is not None:
        password = opts.password.encode()
    if opts.p12 is not None:
        p12 = path_from_options(opts.p12, field=f"{field}.p12", base=base)
        return _load(f"{field}.p12", lambda: SoftwareSigner.from_pkcs12(p12, password))
    key = path_from_options(opts.key, field=f"{field}.key", base=base)
    cert = path_from_options(opts.cert, field=f"{field}.cert", base=base)
    chain = path_from_options(opts.chain, field=f"{field}.chain", base=base) if opts.chain else None
    for name, path in (("key", key), ("cert", cert), ("chain", chain)):
        if path is not None and not path.is_file():
            raise ConfigError(f"no such file {path}", field=f"{field}.{name}")
    return _load(f"{field}.key", lambda: SoftwareSigner.from_pem(key, cert, password=password, chain_path=chain))


def trust_from_options(
    value: Any, *, party: str, field: str = "options.trust", base: str | Path | None = None
) -> TrustStore:
    """Who may sign for ``party``: a :class:`TrustStore` as it is, or a ``[destinations.X.trust]``-style table."""
    if isinstance(value, TrustStore):
        return value
    if value is None:
        raise ConfigError("a trust store is required: { anchors = [...] } and/or { pinned = [...] }", field=field)
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"must be a table (anchors, pinned, intermediates, crls), not {type(value).__name__}", field=field
        )
    from gateway.config import TrustSettings
    from gateway.security import trust_store

    data = dict(value)
    pinned = data.get("pinned")
    if isinstance(pinned, (list, tuple)):
        data["pinned"] = [{"certificate": p} if isinstance(p, (str, os.PathLike)) else p for p in pinned]
    try:
        settings = TrustSettings.model_validate(data, context={"base": None if base is None else str(base)})
    except ValidationError as exc:
        raise _invalid(exc, field) from None
    return trust_store(party, settings, field=field)


def certificate_from_options(value: Any, *, field: str, base: str | Path | None = None) -> x509.Certificate:
    """A certificate: an ``x509.Certificate`` as it is, or a PEM/DER file (its first certificate)."""
    if isinstance(value, x509.Certificate):
        return value
    path = path_from_options(value, field=field, base=base)
    return _load(field, lambda: load_certificates(path)[0])
