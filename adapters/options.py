"""Adapter options from plain TOML values: keys, trust stores, certificates, file paths.

Each adapter and inbound endpoint declares its options as a frozen pydantic model
(``Options``, see :class:`gateway.ports.Adapter`), validated when the configuration
is loaded, with relative paths resolved against the configuration file's directory.
The field types here let one option be a plain TOML value there and a Python object
in tests and embedding code:

* :data:`SignerOption`: a :class:`~signing.keys.Signer` or a :class:`SignerOptions` table;
* :data:`TrustOption`: a :class:`~signing.trust.TrustStore` or a
  :class:`gateway.config.TrustSettings` table (a pinned entry may be a bare path);
* :data:`CertificateOption`: an ``x509.Certificate`` or a PEM/DER file path.

The helpers below turn the validated value into the object the adapter needs (loading
keys and certificates, reading password variables); every error is a
:class:`~gateway.errors.ConfigError` whose ``field`` is the dotted path of the bad
option (``options.signer.password_env``, ``options.trust.anchors[0]``).

* :func:`signer_from_options`: a :class:`~signing.keys.Signer`, or
  ``{ p12 = "path", password_env = "VAR" }`` (PKCS#12; also ``password``) or
  ``{ key = "path", cert = "path" }`` (PEM; optionally ``chain``,
  ``password``/``password_env``);
* :func:`trust_from_options`: a :class:`~signing.trust.TrustStore`, or
  ``{ anchors = [...], signers = [...], pinned = [...], intermediates = [...], crls = [...] }``,
  the same table as ``[destinations.X.trust]`` (:class:`gateway.config.TrustSettings`: ``signers`` required
  with anchors, or ``any_signer = true``; also ``ocsp``, ``fetch_crls``, ``soft_fail``; a pinned entry is a path or
  ``{ certificate = "path", accept_from = ..., accept_until = ... }``);
* :func:`certificate_from_options`: an ``x509.Certificate`` or a PEM/DER file;
* :func:`path_from_options`: a file path;
* :func:`client_ssl_context`: the ``ssl.SSLContext`` of a :class:`TlsOptions` table (``ca_bundle``,
  ``client_certificate``/``client_key``, ``minimum_version``).
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from cryptography import x509
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from gateway.config import FilePath, TrustSettings, config_error
from gateway.errors import ConfigError, NswError
from signing.keys import Signer, SoftwareSigner, load_certificates
from signing.trust import TrustStore

__all__ = [
    "SignerOptions",
    "SignerOption",
    "TrustOption",
    "CertificateOption",
    "object_or",
    "validate_file_path",
    "signer_from_options",
    "trust_from_options",
    "certificate_from_options",
    "path_from_options",
    "TlsOptions",
    "client_ssl_context",
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

    p12: FilePath | None = Field(None, validation_alias=AliasChoices("p12", "pkcs12"))
    """PKCS#12 file with the key, its certificate and the chain (also spelled ``pkcs12``)."""
    key: FilePath | None = None
    """PEM private key file (with ``cert``)."""
    cert: FilePath | None = Field(None, validation_alias=AliasChoices("cert", "certificate"))
    """PEM certificate file; further certificates in it are the chain (also spelled ``certificate``)."""
    chain: FilePath | None = None
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


def object_or(kind: type | tuple[type, ...], validate: Callable[[Any, ValidationInfo], Any]) -> PlainValidator:
    """A field validator that takes an instance of ``kind`` (an object given in code) as it is and validates
    anything else (a TOML value) with ``validate(value, info)``."""

    def check(value: Any, info: ValidationInfo) -> Any:
        return value if isinstance(value, kind) else validate(value, info)

    return PlainValidator(check)


def _model(model: type[BaseModel], prepare: Callable[[Any], Any] = lambda v: v) -> Callable[[Any, ValidationInfo], Any]:
    def validate(value: Any, info: ValidationInfo) -> Any:
        return model.model_validate(prepare(value), context=info.context)

    return validate


def _pinned_paths(value: Any) -> Any:
    """A trust table whose ``pinned`` entries may be bare paths (``{ certificate = path }``)."""
    if isinstance(value, Mapping) and isinstance(value.get("pinned"), (list, tuple)):
        pinned = [{"certificate": p} if isinstance(p, (str, os.PathLike)) else p for p in value["pinned"]]
        return {**value, "pinned": pinned}
    return value


_FILE_PATH: TypeAdapter[str] = TypeAdapter(FilePath)


def validate_file_path(value: Any, info: ValidationInfo) -> str:
    """A :data:`~gateway.config.FilePath` (relative to the validation context's ``base``), for :func:`object_or`."""
    return _FILE_PATH.validate_python(value, context=info.context)


SignerOption = Annotated[Signer | SignerOptions, object_or(Signer, _model(SignerOptions))]
"""Our signing key: a :class:`~signing.keys.Signer`, or ``{ p12 = ... }`` / ``{ key = ..., cert = ... }``."""
TrustOption = Annotated[TrustStore | TrustSettings, object_or(TrustStore, _model(TrustSettings, _pinned_paths))]
"""Who may sign for a partner: a :class:`~signing.trust.TrustStore`, or a ``[destinations.X.trust]``-style table
(:class:`gateway.config.TrustSettings`; a ``pinned`` entry may be a bare path)."""
CertificateOption = Annotated[x509.Certificate | str, object_or(x509.Certificate, validate_file_path)]
"""A certificate: an ``x509.Certificate``, or a PEM/DER file (relative to the configuration file)."""


def _load(field: str, loader: Any) -> Any:
    try:
        return loader()
    except NswError as exc:
        raise ConfigError(exc.message, field=field) from exc


def signer_from_options(value: Any, *, field: str = "options.signer", base: str | Path | None = None) -> Signer:
    """Our signing key: a :class:`Signer` as it is, or a ``{ p12 = ... }`` / ``{ key = ..., cert = ... }`` table."""
    if isinstance(value, Signer):
        return value
    if isinstance(value, SignerOptions):
        return _signer(value, field)
    if value is None:
        raise ConfigError(
            'a signing key is required: { p12 = "path", password_env = "VAR" } or { key = "path", cert = "path" }',
            field=field,
        )
    if not isinstance(value, Mapping):
        raise ConfigError(f"must be a table (p12 or key/cert), not {type(value).__name__}", field=field)
    try:
        opts = SignerOptions.model_validate(dict(value), context={"base": None if base is None else str(base)})
    except ValidationError as exc:
        raise _invalid(exc, field) from None
    return _signer(opts, field)


def _signer(opts: SignerOptions, field: str) -> Signer:
    password: bytes | None = None
    if opts.password_env is not None:
        secret = os.environ.get(opts.password_env)
        if secret is None:
            raise ConfigError(f"environment variable {opts.password_env} is not set", field=f"{field}.password_env")
        password = secret.encode()
    elif opts.password is not None:
        password = opts.password.encode()
    if opts.p12 is not None:
        p12 = path_from_options(opts.p12, field=f"{field}.p12")
        return _load(f"{field}.p12", lambda: SoftwareSigner.from_pkcs12(p12, password))
    key = path_from_options(opts.key, field=f"{field}.key")
    cert = path_from_options(opts.cert, field=f"{field}.cert")
    chain = path_from_options(opts.chain, field=f"{field}.chain") if opts.chain else None
    for name, path in (("key", key), ("cert", cert), ("chain", chain)):
        if path is not None and not path.is_file():
            raise ConfigError(f"no such file {path}", field=f"{field}.{name}")
    return _load(f"{field}.key", lambda: SoftwareSigner.from_pem(key, cert, password=password, chain_path=chain))


def trust_from_options(
    value: Any, *, party: str, field: str = "options.trust", base: str | Path | None = None
) -> TrustStore:
    """Who may sign for ``party``: a :class:`TrustStore` as it is, or a ``[destinations.X.trust]``-style table."""
    from gateway.security import trust_store

    if isinstance(value, TrustStore):
        return value
    if isinstance(value, TrustSettings):
        return trust_store(party, value, field=field)
    if value is None:
        raise ConfigError(
            "a trust store is required: { anchors = [...], signers = [...] } and/or { pinned = [...] }", field=field
        )
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"must be a table (anchors, pinned, intermediates, crls), not {type(value).__name__}", field=field
        )
    try:
        settings = TrustSettings.model_validate(
            _pinned_paths(dict(value)), context={"base": None if base is None else str(base)}
        )
    except ValidationError as exc:
        raise _invalid(exc, field) from None
    return trust_store(party, settings, field=field)


def certificate_from_options(value: Any, *, field: str, base: str | Path | None = None) -> x509.Certificate:
    """A certificate: an ``x509.Certificate`` as it is, or a PEM/DER file (its first certificate)."""
    if isinstance(value, x509.Certificate):
        return value
    path = path_from_options(value, field=field, base=base)
    return _load(field, lambda: load_certificates(path)[0])


class TlsOptions(BaseModel):
    """TLS towards a partner (``[destinations.NAME.options.tls]``): whom to trust for its server certificate, the
    client certificate the gateway presents, the oldest protocol version accepted."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    ca_bundle: FilePath | None = None
    """PEM file of the CA certificates the partner's server certificate must chain to (default: the system's)."""
    client_certificate: FilePath | None = None
    """PEM file of the client certificate (and its chain) the gateway presents to the partner."""
    client_key: FilePath | None = None
    """PEM private key of ``client_certificate`` (default: in the same file)."""
    client_key_password_env: str | None = None
    """Environment variable holding the password of ``client_key``."""
    minimum_version: Literal["1.2", "1.3"] = "1.2"
    """Oldest TLS version the gateway negotiates with the partner."""

    @model_validator(mode="after")
    def _key_with_certificate(self) -> TlsOptions:
        if self.client_certificate is None and (self.client_key or self.client_key_password_env):
            raise ValueError("client_key needs client_certificate")
        return self


def client_ssl_context(tls: TlsOptions, *, field: str = "options.tls") -> ssl.SSLContext:
    """The client-side ``ssl.SSLContext`` of ``tls`` (server certificate and host name verified); an unreadable
    bundle, certificate or key is a ``CONFIG_INVALID`` naming its option."""
    try:
        context = ssl.create_default_context(cafile=tls.ca_bundle)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load the CA bundle {tls.ca_bundle}: {exc}", field=f"{field}.ca_bundle") from exc
    context.minimum_version = ssl.TLSVersion.TLSv1_3 if tls.minimum_version == "1.3" else ssl.TLSVersion.TLSv1_2
    if tls.client_certificate is not None:
        password: str | None = None
        if tls.client_key_password_env is not None:
            password = os.environ.get(tls.client_key_password_env)
            if password is None:
                raise ConfigError(
                    f"environment variable {tls.client_key_password_env} is not set",
                    field=f"{field}.client_key_password_env",
                )
        try:
            context.load_cert_chain(tls.client_certificate, tls.client_key, password=password)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"cannot load the client certificate {tls.client_certificate}: {exc}",
                field=f"{field}.client_certificate",
            ) from exc
    return context
