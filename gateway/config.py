"""The gateway's one typed configuration file (TOML), validated at start.

Errors are :class:`~gateway.errors.ConfigError` whose ``field`` is the
dotted path of the bad key (``destinations.TH.retry.max_attempts``,
``routes[2].to[0]``). An example with every section:
``gateway/examples/gateway.toml``.

Sections:

* ``[gateway]``: listen address, verification/signing switches (secure by default: a weaker mode is written
  out and reported), deadlines and a connection cap for clients, ``[gateway.metrics]`` (who may scrape);
* ``[store]``: connection string and durability;
* ``[signing]``: the gateway's own signing key(s) (``[[signing.keys]]``, PKCS#12
  or PEM; several with ``active_from`` for rotation);
* ``[parties.NAME]``: who may submit, with which API tokens, document types and
  default format; ``kind = "intermediary"`` with ``on_behalf_of`` for data
  intermediaries; ``[parties.NAME.trust]`` (anchors with the ``signers`` who may sign through them, or
  ``any_signer = true``; pinned certificates with acceptance windows, intermediates, CRLs, OCSP, soft-fail) and
  ``[parties.NAME.verify]`` (``default`` or ``vnsw-legacy``, ``allow_sha1``);
* ``[destinations.NAME]``: where messages go: adapter, URL, format, concurrency
  (bulkhead), retry policy and circuit breaker, ``[destinations.NAME.signing]``
  (the profile the gateway signs with for it), ``receipt = "signed"`` with
  ``[destinations.NAME.trust]`` (who signs its receipts);
* ``[[routes]]``: which messages go where (first match wins; a route with
  several destinations fans out);
* ``[document_types.NAME]``: how a document of each type is recognised from its content (document
  codes, VNSW messages, pass-through XML root elements), so that what a sender declares must be what it
  sends; every type a party or route names must be declared, with a rule or ``unchecked = true``;
* ``[inbound.NAME]``: endpoints through which parties that do not call the API submit;
* ``[ship_calls.PROCEDURE]``: the rule of a ship-call procedure's overall status (:class:`ShipCallSettings`,
  docs/ship-calls.md);
* ``[subscriptions.NAME]``: agencies outside a procedure that receive some data elements of the messages they are
  entitled to, under a legal basis (:class:`SubscriptionSettings`, docs/subscriptions.md).

``[destinations.NAME.options]`` and ``[inbound.NAME.options]`` are validated at load against the
``Options`` model of the adapter / endpoint class (:attr:`gateway.ports.Adapter.Options`,
:attr:`gateway.ports.InboundEndpoint.Options`, documented in each adapter's module): a misspelt or
mistyped option is a ``CONFIG_INVALID`` naming it (``destinations.TH.options.signer.password_env``), and
every mistake of the file is reported at once. The settings then hold the validated model, which the
adapter receives as its ``options``.

Relative file paths (store, certificates, keys, CRLs, and the paths among the options) are relative to
the configuration file.
"""

from __future__ import annotations

import difflib
import hashlib
import hmac
import os
import re
import tomllib
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from gateway.errors import ConfigError
from gateway.model import DocumentKind
from signing.xml import DEFAULT_LIMITS, ParserLimits

__all__ = [
    "config_error",
    "GatewaySettings",
    "LogSettings",
    "ConsoleSettings",
    "StoreSettings",
    "JournalSettings",
    "PartySettings",
    "OperatorSettings",
    "RetryPolicy",
    "BreakerSettings",
    "DestinationSettings",
    "RouteSettings",
    "InboundSettings",
    "PinnedSettings",
    "SignerSettings",
    "TrustSettings",
    "VerifySettings",
    "SigningProfileSettings",
    "KeySettings",
    "SigningSettings",
    "DocumentTypeSettings",
    "ShipCallSettings",
    "MetricsSettings",
    "ServerTlsSettings",
    "BearerToken",
    "Config",
    "load_config",
    "parse_config",
    "token_digest",
]

_NAME = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


def _resolve_path(value: str, info: ValidationInfo) -> str:
    base = (info.context or {}).get("base")
    if base is not None and not Path(value).is_absolute():
        return str((Path(base) / value).resolve())
    return value


def _fspath(value: Any) -> Any:
    return os.fspath(value) if isinstance(value, os.PathLike) else value


FilePath = Annotated[str, BeforeValidator(_fspath), AfterValidator(_resolve_path)]
"""A file path (``str``, or a ``PathLike`` in code); relative paths are relative to the configuration file
(the validation context's ``base``)."""


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("must carry a UTC offset (e.g. 2026-01-01T00:00:00Z)")
    return value


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]


class PinnedSettings(_Frozen):
    certificate: FilePath
    """PEM (or DER) file of a certificate accepted for the party as such."""
    accept_from: AwareDatetime | None = None
    """Not accepted before this instant (a rotated-in certificate announced ahead of time)."""
    accept_until: AwareDatetime | None = None
    """Not accepted after this instant (end of the overlap window of a rotated-out certificate)."""


_SHA256 = re.compile(r"^(?:[0-9A-Fa-f]{2}:?){31}[0-9A-Fa-f]{2}$")


class SignerSettings(_Frozen):
    """One rule of ``signers`` (``signing.identity.SignerRule``): what a certificate signing for the party
    carries. Every criterion written must hold; a certificate satisfying one of the party's rules may sign."""

    dn: str | None = None
    """The whole subject DN, RFC 4514 (``"CN=moit,O=NSW Development PKI,C=VN"``)."""
    subject: dict[str, str] = Field(default_factory=dict)
    """Subject attributes by name (``CN``, ``O``, ``OU``, ``C``, ``serialNumber``, ``organizationIdentifier``,
    ``emailAddress``, ``UID``, ``DC``, ``L``, ``ST`` or a dotted OID) and the value each must have."""
    dns: tuple[str, ...] = ()
    """subjectAltName dNSName values, one of which the certificate must carry."""
    email: tuple[str, ...] = ()
    """subjectAltName rfc822Name values, one of which the certificate must carry."""
    uri: tuple[str, ...] = ()
    """subjectAltName URI values, one of which the certificate must carry."""
    directory_name: tuple[str, ...] = ()
    """subjectAltName directoryName values (RFC 4514), one of which the certificate must carry."""
    certificate_sha256: tuple[str, ...] = ()
    """SHA-256 fingerprints of the DER certificate (hex, colons allowed), one of which it must have."""
    public_key_sha256: tuple[str, ...] = ()
    """SHA-256 fingerprints of the DER SubjectPublicKeyInfo (hex), one of which its key must have."""

    @model_validator(mode="after")
    def _valid(self) -> SignerSettings:
        from cryptography import x509

        from signing.identity import attribute_oid

        if not (
            self.dn
            or self.subject
            or self.dns
            or self.email
            or self.uri
            or self.directory_name
            or self.certificate_sha256
            or self.public_key_sha256
        ):
            raise ValueError(
                "a signer needs at least one of dn, subject, dns, email, uri, directory_name, certificate_sha256, "
                "public_key_sha256"
            )
        for key, names in (("dn", (self.dn,) if self.dn else ()), ("directory_name", self.directory_name)):
            for name in names:
                try:
                    x509.Name.from_rfc4514_string(name)
                except ValueError as exc:
                    raise _Ref(key, "", {}, "", message=f"{name!r} is not an RFC 4514 name: {exc}") from None
        for attribute in self.subject:
            try:
                attribute_oid(attribute)
            except ValueError as exc:
                raise _Ref(f"subject.{attribute}", "", {}, "", message=str(exc)) from None
        for key in ("certificate_sha256", "public_key_sha256"):
            for value in getattr(self, key):
                if not _SHA256.match(value):
                    raise _Ref(key, "", {}, "", message=f"{value!r} is not a SHA-256 fingerprint (64 hex digits)")
        return self


class TrustSettings(_Frozen):
    """Who may sign for a party (or a destination's receipts): ``signing.trust.TrustStore``.

    A party trusted through ``anchors`` names its ``signers``: an anchor vouches for every certificate it
    issues, other parties' too. ``any_signer = true`` accepts any of them instead (for an anchor that issues
    to this party alone), and is reported as weakened at start and by ``/readyz``."""

    anchors: tuple[FilePath, ...] = ()
    """PEM files of trust anchors (CA certificates); a signer must chain to one of them and be one of
    ``signers``."""
    signers: tuple[SignerSettings, ...] = ()
    """The certificates that may sign for the party through ``anchors``: a certificate satisfying one of these
    rules (``[{ subject = { CN = "moit", O = "Ministry of Industry and Trade" } }]``); any other is refused with
    ``CERT_IDENTITY_MISMATCH``. Required with ``anchors`` unless ``any_signer``; pinned certificates are the
    party's as such."""
    any_signer: bool = False
    """Accept every certificate the anchors vouch for, whoever it was issued to (weakened; instead of
    ``signers``)."""
    pinned: tuple[PinnedSettings, ...] = ()
    """Certificates accepted as such, each with an optional acceptance window (key rotation)."""
    intermediates: tuple[FilePath, ...] = ()
    """PEM files of intermediate CA certificates used to build paths."""
    crls: tuple[FilePath, ...] = ()
    """CRL files (PEM or DER) checked for revocation."""
    fetch_crls: bool = False
    """Also download the CRLs named by the certificates' CRL distribution points (http/https)."""
    ocsp: bool = False
    """Check revocation by OCSP (before the CRLs, which remain the fallback)."""
    ocsp_responder: str | None = None
    """OCSP responder URL (default: the certificate's AIA)."""
    soft_fail: bool = False
    """Accept a certificate whose revocation status cannot be established (logged). Hard-fail by default."""

    @model_validator(mode="after")
    def _something(self) -> TrustSettings:
        if not self.anchors and not self.pinned:
            raise ValueError("needs at least one trust anchor or pinned certificate")
        if self.anchors and not self.signers and not self.any_signer:
            raise _Ref(
                "signers",
                "",
                {},
                "",
                message="required with anchors, which vouch for every certificate they issue: name the party's "
                'certificates, e.g. signers = [{ subject = { CN = "...", O = "..." } }] (or dns, email, uri, '
                "directory_name, dn, certificate_sha256, public_key_sha256), or write any_signer = true",
            )
        if self.signers and self.any_signer:
            raise _Ref("any_signer", "", {}, "", message="any_signer = true with signers: drop one of them")
        if self.signers and not self.anchors:
            raise _Ref(
                "signers",
                "",
                {},
                "",
                message="applies to certificates accepted through anchors; pinned certificates are the party's as such",
            )
        return self


class VerifySettings(_Frozen):
    profile: Literal["default", "vnsw-legacy"] = "default"
    """``default``: one enveloped signature over the whole document, SHA-2 only; ``vnsw-legacy``: the
    signature inside ``<SystemSignature>`` (VNSW ministry exchange)."""
    allow_sha1: bool = False
    """Accept RSA-SHA1 / SHA-1 digests from this party (VNSW legacy ministries only; never a default)."""


class SigningProfileSettings(_Frozen):
    profile: Literal["default", "vnsw-legacy", "none"] = "default"
    """How the gateway signs what it delivers here: ``default`` (exclusive C14N, SHA-256, enveloped),
    ``vnsw-legacy`` (inside ``<SystemSignature>``, inclusive C14N) or ``none`` (delivered unsigned, e.g. JSON)."""
    allow_sha1: bool = False
    """Sign with RSA-SHA1 (``vnsw-legacy`` receivers that accept nothing else; never a default)."""


def _hex_id(value: str | None) -> str | None:
    if value is not None:
        try:
            if not value or len(value) % 2:
                raise ValueError
            bytes.fromhex(value)
        except ValueError:
            raise ValueError("must be the object id in hex (an even number of hex digits, e.g. 01a2)") from None
    return value.lower() if value is not None else None


class Pkcs11KeySettings(_Frozen):
    """``pkcs11 = {...}`` of a signing key: a private key held by a PKCS#11 token (HSM), never extracted."""

    module: FilePath
    """The PKCS#11 library (``/usr/lib/softhsm/libsofthsm2.so`` for SoftHSM2)."""
    token: str
    """Label of the token holding the key."""
    key_label: str | None = None
    """``CKA_LABEL`` of the private key (and of its certificate object when ``certificate`` is not given)."""
    key_id: Annotated[str | None, AfterValidator(_hex_id)] = None
    """``CKA_ID`` of the private key in hex (and of its certificate object)."""
    pin_env: str | None = None
    """Environment variable holding the user PIN."""
    pin_file: FilePath | None = None
    """File holding the user PIN; refused when group or others may read it (mode 0600 or 0400)."""
    certificate: FilePath | None = None
    """PEM certificate of the key (further certificates in it are the chain); default: the token's certificate
    object with the same label/id."""
    chain: FilePath | None = None
    """PEM file of intermediate certificates sent in KeyInfo."""

    @model_validator(mode="after")
    def _names_key_and_pin(self) -> Pkcs11KeySettings:
        if self.key_label is None and self.key_id is None:
            raise _Ref("key_label", "", {}, "", message="name the key by key_label and/or key_id")
        if (self.pin_env is None) == (self.pin_file is None):
            raise _Ref(
                "pin_env", "", {}, "", message="give exactly one of pin_env or pin_file (there is no default PIN)"
            )
        if self.pin_file is not None:
            import stat

            try:
                mode = os.stat(self.pin_file).st_mode
            except OSError as exc:
                raise _Ref("pin_file", "", {}, "", message=f"cannot read {self.pin_file}: {exc.strerror}") from None
            if mode & 0o077:
                raise _Ref(
                    "pin_file",
                    "",
                    {},
                    "",
                    message=f"{self.pin_file} is accessible by group or others (mode {stat.S_IMODE(mode):04o}); "
                    "chmod 600 it",
                )
        return self


class KeySettings(_Frozen):
    """One signing key of the gateway: a PKCS#12 bundle, a PEM key with its certificate, or a PKCS#11 token key."""

    pkcs12: FilePath | None = None
    """PKCS#12 file with the key, its certificate and the chain."""
    key: FilePath | None = None
    """PEM private key file (with ``certificate``)."""
    certificate: FilePath | None = None
    """PEM certificate file (further certificates in it are the chain)."""
    chain: FilePath | None = None
    """PEM file of intermediate certificates sent in KeyInfo."""
    password: str | None = None
    """Password of the PKCS#12 bundle or the PEM key, in clear (development only)."""
    password_env: str | None = None
    """Environment variable holding that password."""
    active_from: AwareDatetime | None = None
    """The key signs from this instant (rotation: the newest active key signs)."""
    pkcs11: Pkcs11KeySettings | None = None
    """A key held by a PKCS#11 token instead of a file (then no pkcs12, key or certificate here)."""

    @model_validator(mode="after")
    def _one_source(self) -> KeySettings:
        if self.pkcs11 is not None:
            if self.pkcs12 is not None or self.key is not None or self.certificate is not None:
                raise ValueError("give either pkcs11 or a key file (pkcs12, or key with certificate), not both")
            if self.password is not None or self.password_env is not None or self.chain is not None:
                raise ValueError("a pkcs11 key takes its PIN and chain inside pkcs11 (pin_env or pin_file, chain)")
            return self
        if (self.pkcs12 is None) == (self.key is None):
            raise ValueError("give either pkcs12, key (with certificate) or pkcs11")
        if self.key is not None and self.certificate is None:
            raise ValueError("a PEM key needs its certificate")
        return self


class SigningSettings(_Frozen):
    keys: tuple[KeySettings, ...] = ()
    """The gateway's signing keys (a key ring: the newest whose ``active_from`` has passed signs)."""


def _header_token(value: str) -> str:
    if not value or any(not "\x21" <= c <= "\x7e" for c in value):
        raise ValueError("a bearer token must be non-empty visible ASCII (no spaces, control or non-ASCII characters)")
    return value


BearerToken = Annotated[str, AfterValidator(_header_token)]
"""An API bearer token: what can travel as ``Authorization: Bearer <token>`` (visible ASCII, no spaces)."""


def _rfc4514(value: str) -> str:
    from cryptography import x509

    try:
        return x509.Name.from_rfc4514_string(value).rfc4514_string()
    except ValueError:
        raise ValueError("must be an RFC 4514 subject, CN=...,O=...,C=... without spaces after commas") from None


def _sha256_hex(value: tuple[str, ...]) -> tuple[str, ...]:
    for v in value:
        if len(v) != 64 or any(c not in "0123456789abcdef" for c in v):
            raise ValueError("must be lowercase SHA-256 hex digests")
    return value


def _token_matches(token: str, tokens: tuple[str, ...], digests: tuple[str, ...]) -> bool:
    digest = token_digest(token)
    known = {token_digest(t) for t in tokens} | set(digests)
    return any(hmac.compare_digest(digest, k) for k in known)


class MetricsSettings(_Frozen):
    """``[gateway.metrics]``: who may scrape ``GET /metrics`` (its series name parties and destinations)."""

    tokens: tuple[BearerToken, ...] = ()
    """Scrape bearer tokens in clear (development only)."""
    token_sha256: Annotated[tuple[str, ...], AfterValidator(_sha256_hex)] = ()
    """SHA-256 hex digests of the scrape bearer tokens."""
    public: bool = False
    """Serve ``/metrics`` to anyone who reaches the port, without a token (reported as weakened)."""

    @model_validator(mode="after")
    def _one_way(self) -> MetricsSettings:
        if self.public and (self.tokens or self.token_sha256):
            raise _Ref("public", "", {}, "", message="public = true serves /metrics without a token; drop the tokens")
        return self

    def matches(self, token: str) -> bool:
        return _token_matches(token, self.tokens, self.token_sha256)


class LogSettings(_Frozen):
    """``[gateway.logging]``: what ``nswgw serve`` logs on stderr (``--log-level`` / ``--log-format`` override it);
    see :mod:`gateway.logs`."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """The least severe record the ``nswgw`` loggers write (other libraries: WARNING and above)."""
    format: Literal["json", "text"] = "json"
    """``json``: one JSON object per line; ``text``: ``TS LEVEL LOGGER MESSAGE key=value ...``."""
    access: bool = True
    """One ``nswgw.access`` line per HTTP request (method, route, status, party, duration; never a credential
    or a payload)."""
    certificate_warning_days: float = Field(30.0, gt=0)
    """A configured certificate expiring within this many days is announced (event ``certificate_expiring``,
    WARNING) at start, on every reload and once a day."""


class ConsoleSettings(_Frozen):
    """``[gateway.console]``: the operator console at ``/console`` (:mod:`gateway.console`), for ``[operators]``."""

    enabled: bool = True
    """Serve the console (``/console``; ``/`` redirects to it)."""
    session_timeout: float = Field(3600.0, gt=0)
    """Seconds a console session lasts after its login; then the operator logs in again."""
    login_link_ttl: float = Field(600.0, gt=0)
    """Seconds a one-time login link of ``nswgw console-url`` stays valid (it works once)."""
    language: Literal["en", "vi"] = "en"
    """The labels' language until an operator picks another (English or Vietnamese)."""


class ServerTlsSettings(_Frozen):
    """``[gateway.tls]``: serve the API over HTTPS, optionally authenticating parties by TLS client certificate
    (``parties.NAME.client_certificates``)."""

    certificate: FilePath
    """PEM file of the gateway's server certificate (followed by its chain)."""
    key: FilePath
    """PEM private key of ``certificate``."""
    key_password_env: str | None = None
    """Environment variable holding the password of ``key``."""
    client_ca: FilePath | None = None
    """PEM file of the CA certificates a client certificate must chain to; without it no client certificate is
    asked for."""
    client_certificates: Literal["optional", "required"] = "optional"
    """With ``client_ca``: ``optional`` (a client may authenticate with a bearer token instead) or ``required``
    (a connection without a valid client certificate fails its handshake)."""
    minimum_version: Literal["1.2", "1.3"] = "1.2"
    """Oldest TLS version the gateway accepts."""


class GatewaySettings(_Frozen):
    host: str = "127.0.0.1"
    """Address the HTTP API listens on."""
    port: int = Field(8080, ge=0, le=65535)
    """Port the HTTP API listens on (0: any free port)."""
    verification: Literal["signature", "well-formed", "off"] = "signature"
    """``signature`` (the default): every submission must carry a signature valid under its party's ``trust``
    and ``verify`` profile (every party then needs a ``trust`` section); ``well-formed``: the hardened XML
    parser only; ``off``: pass-through (benchmark baseline). A weaker mode is reported at start and by
    ``/readyz``."""
    signing: Literal["on", "off"] = "on"
    """``on`` (the default): sign every delivery with the gateway's key (``[signing]``) under the destination's
    profile; ``off``: deliver unsigned (reported at start and by ``/readyz``)."""
    metrics: MetricsSettings = MetricsSettings()
    """Who may scrape ``GET /metrics`` (by default nobody until a token is configured)."""
    logging: LogSettings = LogSettings()
    """How ``nswgw serve`` logs (JSON lines on stderr by default)."""
    console: ConsoleSettings = ConsoleSettings()
    """The operator console at ``/console``."""
    tls: ServerTlsSettings | None = None
    """Serve HTTPS (and accept TLS client certificates as party credentials); default plain HTTP."""
    header_timeout: float = Field(20.0, gt=0)
    """Seconds a connection may take to send a complete request head, counted from when it opens or from the
    end of the previous answer (so also how long an idle keep-alive connection is kept); then it is closed."""
    body_timeout: float = Field(60.0, gt=0)
    """Seconds a client may take to send a whole request body; then it is answered ``REQUEST_TIMEOUT`` (408)
    and the connection is closed."""
    max_connections_per_client: int = Field(256, ge=0)
    """Connections one client address may hold open at once; a further one is answered ``CONNECTION_LIMIT``
    (429) and closed. ``0``: no cap (behind a reverse proxy, whose address every client shares)."""
    max_message_bytes: int = Field(16 * 1024 * 1024, gt=0)
    """Largest accepted submission, in bytes, at every entry point (REST, inbound SOAP and AS4 requests: the
    HTTP body limit; a drop-folder file), and the size limit the XML parser enforces on what it receives
    (:attr:`parser_limits`); at most the parser's ceiling (:data:`signing.xml.DEFAULT_LIMITS`, 16 MiB), under
    which the gateway also parses what it maps and signs, so a larger value is refused at load rather than
    refusing such documents later. A single text node may be as large as the limit allows (a base64
    attachment inside XML above libxml2's own 10 MB text limit is accepted)."""
    rejected_prefix_bytes: int = Field(4096, ge=0)
    """How much of a refused submission the store keeps as evidence: its first bytes, with the size and
    SHA-256 of the whole (``messages.payload_size``, ``messages.payload_sha256``), so a sender's file can be
    matched without keeping all of it. Accepted messages keep their whole verified document."""
    lease_seconds: float = Field(60.0, gt=0)
    """How long a worker holds a claimed delivery before another may take it."""
    poll_interval: float = Field(0.5, gt=0)
    """How often idle delivery workers look for due messages (they are also woken on every new message)."""
    shutdown_grace: float = Field(10.0, ge=0)
    """On stop, how long deliveries already being sent may take to finish (each is also bounded by its
    destination's ``timeout``). Whatever is still unfinished then is cancelled and its lease released back
    to ``QUEUED`` in the store, without counting the attempt; after a restart it is sent again with the same
    message id, which the receiver must deduplicate since the first request may have reached it."""
    cpu_threads: int = Field(default_factory=lambda: min(32, (os.cpu_count() or 1) + 4), ge=1, le=64)
    """Threads of the gateway process for its CPU-bound work: a submission's verification, mapping and signing
    (with ``intake_processes = 0``) and the verification of signed receipts, apart from the threads of blocking
    calls (files, SOAP clients: Python's default executor), so that neither waits behind the other. The default is
    the size of Python's default executor (cores + 4, at most 32): the Python parts hold the GIL, but lxml and
    xmlsec release it while they parse, canonicalize and digest, and on the full-path benchmark (2 cores) 6 threads
    did as well as 2 at 8 KB and better at 36.5 KB (``benchmarks/intake_processes.py --threads``, README). See
    :mod:`gateway.cpu`."""
    intake_processes: int = Field(0, ge=0, le=64)
    """Worker processes for the CPU-bound part of intake (verification, mapping, signing), so that it runs on
    other cores than the event loop and the store: ``0`` (the default) runs it in threads of the gateway process;
    ``N`` starts N processes at start, each building its verifier, mapper and signer from this configuration
    (an HSM key opens its own session in each). A reload reaches every process before its next submission; the
    reference lists in force travel from the gateway process with the submission. A process that dies fails only
    the submission it held (``INTAKE_WORKER_LOST``, nothing stored) and is replaced. See docs/intake-processes.md."""

    @field_validator("max_message_bytes")
    @classmethod
    def _within_parser_limit(cls, value: int) -> int:
        parser = DEFAULT_LIMITS.max_bytes
        if value > parser:
            raise _Ref("", "", {}, "", message=f"{value} is above the XML parser's limit: at most {parser} bytes")
        return value

    @property
    def parser_limits(self) -> ParserLimits:
        """The limits every received document is parsed under: :attr:`max_message_bytes` as the size limit."""
        return ParserLimits.of(self.max_message_bytes)

    @property
    def weakened(self) -> tuple[str, ...]:
        """The security defaults this configuration turns off (``verification=well-formed``, ``signing=off``,
        ``metrics=public``): printed at start, logged, and listed by ``/readyz``."""
        out = []
        if self.verification != "signature":
            out.append(f"verification={self.verification}")
        if self.signing != "on":
            out.append(f"signing={self.signing}")
        if self.metrics.public:
            out.append("metrics=public")
        return tuple(out)


class StoreSettings(_Frozen):
    url: str = "sqlite:///nswgw-data/gateway.db"
    """``sqlite:///PATH`` (relative paths are relative to the configuration file)."""
    synchronous: Literal["FULL", "NORMAL", "EXTRA"] = "FULL"
    """SQLite durability: ``FULL`` survives power loss, ``NORMAL`` survives process crashes."""
    max_batch: int = Field(512, gt=0)
    """Most writes committed together in one transaction (group commit)."""
    kind: Literal["sqlite", "postgresql"] = "sqlite"
    """The store, and the only selector of it: ``sqlite`` (embedded, one node; ``url``) or ``postgresql``
    (any number of nodes on one database; ``dsn``)."""
    dsn: str | None = None
    """PostgreSQL connection string, ``postgresql://USER@HOST:PORT/DB[?search_path=SCHEMA]``
    (``kind = "postgresql"``)."""
    pool_size: int = Field(10, ge=3, le=200)
    """PostgreSQL connections per gateway node."""
    node_timeout: float = Field(30.0, ge=1.0, le=3600.0)
    """PostgreSQL: seconds without a heartbeat (written by each node every ``node_timeout / 6`` seconds, timed by
    the database clock) after which a node whose session is gone too is dead, and a starting node releases its
    leases. Longer than any network cut the nodes should live through without being taken for dead; each node's own
    value applies to it."""
    journal: Literal["sealed", "inline"] = "sealed"
    """PostgreSQL: how journal entries are chained. ``sealed``: each transaction commits its entries unchained,
    without waiting for any other node, and one node at a time chains them into the one hash chain moments later
    (within about 50 ms; every read of the journal, ``nswgw log verify`` among them, chains first). ``inline``:
    each transaction chains its entries under the journal lock, held to its commit, so the nodes' writes commit one
    at a time (no entry is ever unchained; for one node). Nodes of both kinds can share a database."""
    min_free_bytes: int = Field(64 * 1024 * 1024, ge=0)
    """SQLite: ``/readyz`` fails its ``free_space`` check below this many free bytes on the file system of the
    database file (default 64 MiB; 0 turns the check off)."""
    integrity_interval: float = Field(300.0, gt=0)
    """SQLite: seconds a ``PRAGMA quick_check`` of ``/readyz`` is reused before it is run again (it reads the
    whole file)."""

    @model_validator(mode="after")
    def _one_selector(self) -> StoreSettings:
        postgres = ("postgres://", "postgresql://")
        if self.kind == "sqlite":
            if self.url.startswith(postgres):
                raise _Ref("url", "", {}, "", message='a postgresql:// URL needs kind = "postgresql" and dsn')
            if "://" in self.url and not self.url.startswith("sqlite:///"):
                raise _Ref("url", "", {}, "", message="must be sqlite:///PATH")
        else:
            if not self.dsn:
                raise _Ref("dsn", "", {}, "", message='kind = "postgresql" needs dsn = "postgresql://..."')
            if not self.dsn.startswith(postgres):
                raise _Ref("dsn", "", {}, "", message="must be a postgresql:// connection string")
        return self


def token_digest(token: str) -> str:
    """SHA-256 hex of an API token, as stored in ``token_sha256``."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class PartySettings(_Frozen):
    name: str = ""
    """Human-readable name."""
    tokens: tuple[BearerToken, ...] = ()
    """API bearer tokens in clear (development only)."""
    token_sha256: Annotated[tuple[str, ...], AfterValidator(_sha256_hex)] = ()
    """SHA-256 hex digests of the party's API bearer tokens."""
    document_types: tuple[str, ...] = ()
    """Document types the party may submit (``*`` for any)."""
    kind: Literal["party", "intermediary"] = "party"
    """``intermediary``: submits on behalf of the enterprises in ``on_behalf_of`` (``X-On-Behalf-Of``)."""
    on_behalf_of: tuple[str, ...] = ()
    """Enterprise ids an intermediary is delegated to submit for."""
    format: str = "xml"
    """Format of this party's submissions when ``X-Format`` is absent (a mappings registry name, or ``xml``)."""
    trust: TrustSettings | None = None
    """Who may sign this party's submissions (required with ``gateway.verification = "signature"``)."""
    verify: VerifySettings = VerifySettings()
    """What the gateway accepts as this party's signature."""
    client_certificates: tuple[Annotated[str, AfterValidator(_rfc4514)], ...] = ()
    """RFC 4514 subjects (``CN=moit,O=NSW Development PKI,C=VN``) of TLS client certificates, chaining to
    ``gateway.tls.client_ca``, that authenticate as this party (instead of a bearer token)."""
    identities: dict[str, dict[str, str]] = Field(default_factory=dict)
    """Per format, the sender identities this party's documents claim, by element: ``[parties.MARD.identities]
    vnsw = { identity = "BNNPTNT", ministryCode = "BNNPTNT", organizationCode = "06" }``. A document (on every
    path: REST, VNSW SOAP, AS4) claiming any other value is refused (``IDENTITY_MISMATCH``); an element not
    listed must claim the party's own name. Keys are checked at load against the format's ``identity_fields``."""
    registry: tuple[Literal["check", "all", "issued", "own", "utilize"], ...] = ()
    """What the party may do with the registry of issued documents (docs/registry.md), each checked at load:
    ``check`` a declaration's goods (``POST /v1/registry/check``, customs at clearance), read ``all`` documents
    (customs), those it ``issued`` (a ministry), its enterprises' ``own`` (an intermediary, for the enterprise
    named in ``X-On-Behalf-Of``), ``utilize``: submit ``registry.utilization`` reports that draw quantities down
    (customs). Empty (the default): none of these."""

    def identity(self, format: str, name: str, party: str) -> str:
        """The value of identity ``name`` that ``party``'s documents in ``format`` must claim."""
        return self.identities.get(format, {}).get(name, party)

    @model_validator(mode="after")
    def _delegation(self) -> PartySettings:
        if self.kind == "intermediary" and not self.on_behalf_of:
            raise _Ref("on_behalf_of", "", {}, "", message="an intermediary needs at least one enterprise")
        if self.kind != "intermediary" and self.on_behalf_of:
            raise _Ref("on_behalf_of", "", {}, "", message='only kind = "intermediary" submits on behalf of others')
        if "own" in self.registry and self.kind != "intermediary":
            raise _Ref("registry", "", {}, "", message="\"own\" is an intermediary's role: its enterprises' documents")
        return self

    def delegated(self, enterprise: str) -> bool:
        return self.kind == "intermediary" and enterprise in self.on_behalf_of

    def matches(self, token: str) -> bool:
        return _token_matches(token, self.tokens, self.token_sha256)

    def may_send(self, document_type: str) -> bool:
        return "*" in self.document_types or document_type in self.document_types


class OperatorSettings(_Frozen):
    """``[operators.NAME]``: who may use the operator API under ``/v1/admin/`` (and scrape ``/metrics``). An
    operator is not a party: its credentials open no party endpoint, and a party's open no operator endpoint."""

    name: str = ""
    """Human-readable name (the person or team)."""
    tokens: tuple[BearerToken, ...] = ()
    """Operator bearer tokens in clear (development only)."""
    token_sha256: Annotated[tuple[str, ...], AfterValidator(_sha256_hex)] = ()
    """SHA-256 hex digests of the operator's bearer tokens."""
    client_certificates: tuple[Annotated[str, AfterValidator(_rfc4514)], ...] = ()
    """RFC 4514 subjects of TLS client certificates, chaining to ``gateway.tls.client_ca``, that authenticate as
    this operator."""
    roles: tuple[Literal["read", "act"], ...] = ("read", "act")
    """``read``: the ``GET`` operations of the operator API and ``/metrics``; ``act``: also the actions (replay of
    dead letters, reload of the configuration)."""

    @model_validator(mode="after")
    def _credentials(self) -> OperatorSettings:
        if not (self.tokens or self.token_sha256 or self.client_certificates):
            raise _Ref("tokens", "", {}, "", message="an operator needs tokens, token_sha256 or client_certificates")
        if not self.roles:
            raise _Ref("roles", "", {}, "", message='an operator needs at least one role ("read", "act")')
        return self

    def matches(self, token: str) -> bool:
        return _token_matches(token, self.tokens, self.token_sha256)


class RetryPolicy(_Frozen):
    max_attempts: int = Field(12, ge=1)
    """Attempts before the message goes to the dead-letter queue."""
    ttl: float = Field(24 * 3600.0, gt=0)
    """Seconds after queuing after which an undelivered message goes to the dead-letter queue."""
    initial: float = Field(1.0, ge=0)
    """First backoff, in seconds (doubling each attempt)."""
    max_wait: float = Field(300.0, ge=0)
    """Longest backoff between two attempts, in seconds."""
    jitter: float = Field(1.0, ge=0)
    """Random extra wait, uniformly in [0, jitter] seconds."""


class BreakerSettings(_Frozen):
    failure_threshold: int = Field(5, ge=1)
    """Consecutive recoverable failures that open the circuit."""
    reset_timeout: float = Field(30.0, gt=0)
    """Seconds the circuit stays open before one probe is let through (spread by ``jitter``)."""
    jitter: float = Field(0.2, ge=0, lt=1)
    """Relative spread of each open period: it lasts ``reset_timeout`` × a uniform factor in
    [1 − jitter, 1 + jitter], drawn afresh every time the circuit opens, so probes do not lock onto the down
    phase of a partner that flaps with the same period (0: no spread)."""


class DestinationSettings(_Frozen):
    adapter: str = "http"
    """Adapter name (built-in alias or ``nsw.adapters`` entry point)."""
    url: str
    """The adapter's connection string (for ``http``: the endpoint URL)."""
    format: str = "same"
    """Format the destination expects (``same``: as submitted)."""
    concurrency: int = Field(4, ge=1, le=256)
    """Deliveries in flight at once (the bulkhead: a dead partner ties up only these)."""
    timeout: float = Field(30.0, gt=0)
    """Seconds for one delivery attempt."""
    retry: RetryPolicy = RetryPolicy()
    """Backoff, attempts and time-to-live."""
    breaker: BreakerSettings = BreakerSettings()
    """Circuit breaker."""
    conversation_on_dead: Literal["hold", "skip"] = "hold"
    """What a dead-lettered conversation head does to the later messages of its conversation: ``hold`` keeps
    them queued behind it (order kept; an ERROR log line and ``nswgw_conversations_held_total`` alert at once;
    those still waiting at their time-to-live die with ``CONVERSATION_BLOCKED`` naming the head), ``skip``
    delivers them after it."""
    options: BaseModel = Field(default_factory=dict, validate_default=True)
    """Adapter-specific options: a table validated into the adapter's ``Options`` model (documented in the
    adapter's module)."""
    signing: SigningProfileSettings = SigningProfileSettings()
    """How the gateway signs what it delivers here (with ``gateway.signing = "on"``)."""
    receipt: Literal["message-id", "signed"] = "message-id"
    """``signed``: the receipt must be a signed ``<Receipt>`` (``gateway.ports.receipt_document``) by a
    certificate of ``trust``, naming the delivered message id and the digest of the delivered bytes;
    ``message-id``: the receipt must name the delivered message id."""
    trust: TrustSettings | None = None
    """Who may sign this destination's receipts (required with ``receipt = "signed"``)."""
    receipt_verify: VerifySettings = VerifySettings()
    """What the gateway accepts as this destination's receipt signature."""
    party: str | None = None
    """The gateway party that answers for this destination (the importing side's submitting party, e.g.
    ``TH-ASW`` for destination ``TH``): a receipt, utilization, rejection or verification request about a
    certificate of origin delivered here is accepted only from it (``CO_NOTIFIER_MISMATCH`` from any other).
    None: the party named like the destination."""
    fields: tuple[str, ...] | None = None
    """The harmonized data elements this destination may see (data minimisation: paths of
    :mod:`mappings.projection`, e.g. ``["permit.number", "goods.hs_code"]``): it receives only those, written in
    its ``format``, whatever it is sent. None: the whole document. A document in pass-through XML cannot be cut
    to them and is refused (``FORMAT_UNKNOWN``)."""
    legal_basis: str | None = Field(None, min_length=1, max_length=1000)
    """With ``fields``: the legal basis on which this destination receives them (the decree and article), written
    into the record of every disclosure to it (docs/subscriptions.md). None: no basis stated."""

    @field_validator("fields")
    @classmethod
    def _known_fields(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None:
            from mappings.projection import path_errors

            if not value:
                raise ValueError("name at least one data element (leave fields out for the whole document)")
            errors = path_errors(value)
            if errors:
                raise ValueError("; ".join(errors))
        return value

    @field_validator("adapter")
    @classmethod
    def _known_adapter(cls, value: str) -> str:
        _options_model("adapter", value)
        return value

    @field_validator("options", mode="before")
    @classmethod
    def _adapter_options(cls, value: Any, info: ValidationInfo) -> BaseModel:
        return _options(value, info, kind="adapter", name=info.data.get("adapter"))


class RouteSettings(_Frozen):
    document_type: str = "*"
    """Document type to match (``*``: any)."""
    procedure: str = "*"
    """Procedure to match (``*``: any)."""
    sender: str = "*"
    """Sending party to match (``*``: any)."""
    destination: str = "*"
    """The destination the sender named (``X-Destination``) to match (``*``: any)."""
    to: tuple[str, ...] = Field(min_length=1)
    """Destinations the message is delivered to (several: fan-out)."""


def _harmonized_path(value: str) -> str:
    from mappings.projection import path_errors

    errors = path_errors([value])
    if errors:
        raise ValueError(errors[0])
    return value


def _legal_basis(value: str) -> str:
    if not value.strip():
        raise ValueError("state the legal basis (the decree and article) on which the agency receives the data")
    return value


class SubscriptionSettings(_Frozen):
    """``[subscriptions.NAME]``: an agency outside a procedure that receives some data elements of the messages it
    is entitled to (:mod:`gateway.subscriptions`, docs/subscriptions.md). Reloadable: a change applies from the
    next submission and never to what is already queued."""

    destination: str
    """The configured destination the agency receives at (its endpoint, format, adapter, signing and receipts).
    The destinations are fixed at start: a subscription names one of them."""
    legal_basis: Annotated[str, AfterValidator(_legal_basis)] = Field(max_length=1000)
    """The legal basis on which the agency receives the data (e.g. ``"Decree 85/2019/ND-CP, Art. 12"``), written
    into the record of every disclosure."""
    document_types: tuple[str, ...] = Field(min_length=1)
    """The document types it may receive (declared ``[document_types.NAME]``; ``*``: any)."""
    fields: tuple[Annotated[str, AfterValidator(_harmonized_path)], ...] = Field(min_length=1)
    """The harmonized data elements it may see (paths of :mod:`mappings.projection`, e.g. ``"permit.number"``,
    ``"goods.hs_code"``), intersected with its destination's own ``fields`` when that has them."""
    hs_chapters: tuple[Annotated[str, Field(pattern=r"^[0-9]{2}$")], ...] = ()
    """Only messages with a goods item in one of these HS chapters (two digits, e.g. ``"84"``). Empty: any."""
    ports: tuple[Annotated[str, Field(min_length=1, max_length=50)], ...] = ()
    """Only messages naming one of these ports or border gates of entry (UN/LOCODE such as ``"VNHPH"``, or the
    native code or name, compared without case; :func:`gateway.subscriptions.places`). Empty: any."""
    senders: tuple[str, ...] = ()
    """Only messages from these parties. Empty: any."""


class InboundSettings(_Frozen):
    """``[inbound.NAME]``: an endpoint through which parties submit (a SOAP service, a watched directory)."""

    endpoint: str
    """Inbound endpoint name (built-in alias ``vnsw-soap``/``filedrop``/``poll``/``as4``, or an ``nsw.inbound``
    entry point)."""
    options: BaseModel = Field(default_factory=dict, validate_default=True)
    """Endpoint-specific options: a table validated into the endpoint's ``Options`` model (documented in the
    endpoint's module)."""

    @field_validator("endpoint")
    @classmethod
    def _known_endpoint(cls, value: str) -> str:
        _options_model("endpoint", value)
        return value

    @field_validator("options", mode="before")
    @classmethod
    def _endpoint_options(cls, value: Any, info: ValidationInfo) -> BaseModel:
        return _options(value, info, kind="endpoint", name=info.data.get("endpoint"))


def _options_model(kind: Literal["adapter", "endpoint"], name: str) -> type[BaseModel]:
    """The ``Options`` model of the adapter / inbound endpoint class registered as ``name``."""
    from gateway.ports import resolve_adapter, resolve_inbound

    try:
        return (resolve_adapter(name) if kind == "adapter" else resolve_inbound(name)).Options
    except ConfigError as exc:
        raise _Ref("", "", {}, "", message=exc.message) from None


def _options(value: Any, info: ValidationInfo, *, kind: Literal["adapter", "endpoint"], name: str | None) -> BaseModel:
    """``value`` validated into the ``Options`` model of the ``kind`` named ``name`` (a model instance as it is),
    paths resolved against the context's ``base``; all its errors are reported under the ``options`` field.
    With no valid ``name`` (reported at that field) there is nothing to validate against."""
    from gateway.ports import NoOptions

    try:
        model = _options_model(kind, name) if name is not None else None
    except ValueError:
        model = None
    if model is None:
        return NoOptions()
    if isinstance(value, model):
        return value
    if isinstance(value, BaseModel):
        raise ValueError(f"must be {model.__name__}, not {type(value).__name__}")
    return model.model_validate(value, context=info.context)


_PROCEDURE = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9*]+/[A-Za-z0-9*]+)?$")
_ROOT = re.compile(r"^(\{[^{}\s]+\})?[A-Za-z_][\w.-]*$")
_PATH = re.compile(r"^[A-Za-z_][\w.-]*(/[A-Za-z_][\w.-]*)*$")


class DocumentTypeSettings(_Frozen):
    """``[document_types.NAME]``: how the gateway recognises a document of type NAME from its content.

    Every submission's declared type (``X-Document-Type``, or the one an inbound endpoint derives) must name one
    of these, and its content must match one of the rules (``DOCUMENT_TYPE_MISMATCH`` otherwise): a Form D, SPS or
    JSON message by its document code, a VNSW envelope (or JSON naming one) by its message, pass-through XML by its
    root element. A type without any rule is a configuration error unless it says ``unchecked = true``."""

    name: str = ""
    """Human-readable name."""
    codes: tuple[str, ...] = ()
    """UN/EDIFACT 1001 document name codes of the harmonized document (``861`` certificate of origin, which every
    Form D is; ``851`` phytosanitary certificate): matches a ``form-d``, ``sps`` or ``json`` submission."""
    procedures: tuple[str, ...] = ()
    """VNSW messages, ``"<documentType>/<type>/<function>"`` (``"BNNPTNT0600011/10/01"``), or a bare procedure
    code for every message of it: matches a ``vnsw`` envelope's ``Header/Subject``, or JSON whose envelope names
    the message."""
    roots: tuple[str, ...] = ()
    """Root elements of pass-through XML (``format = "xml"``), ``"{namespace}LocalName"`` (``"LocalName"`` without a
    namespace)."""
    enterprise_paths: tuple[str, ...] = ()
    """Where pass-through XML of this type names the enterprise it is submitted for: element paths below the
    root (local names, ``/``-separated: ``"Registrant/TaxCode"``). An intermediary's ``X-On-Behalf-Of`` must be
    one of them; the mapped formats name it themselves (declarant, registrant, exporter identifier)."""
    unchecked: bool = False
    """Accept any content under this type, explicitly (opaque documents the gateway has no rule for): the kind
    is not read. An intermediary's ``X-On-Behalf-Of`` is still checked against the document."""
    retention: timedelta | None = Field(None, gt=timedelta(0))
    """How long a finished message of this type stays in the store before ``nswgw archive`` moves it into an
    archive bundle (ISO 8601 duration, ``"P7Y"`` is not one: write days, ``"P2555D"``). Unset: ``[retention]
    default``."""

    @field_validator("procedures")
    @classmethod
    def _procedures(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for v in value:
            if not _PROCEDURE.match(v):
                raise ValueError(f"{v!r} is not <documentType>/<type>/<function> or a bare procedure code")
        return value

    @field_validator("roots")
    @classmethod
    def _roots(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for v in value:
            if not _ROOT.match(v):
                raise ValueError(f"{v!r} is not {{namespace}}LocalName or LocalName")
        return value

    @field_validator("enterprise_paths")
    @classmethod
    def _paths(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for v in value:
            if not _PATH.match(v):
                raise ValueError(f"{v!r} is not a /-separated path of element names")
        return value

    @model_validator(mode="after")
    def _one_rule(self) -> DocumentTypeSettings:
        ruled = bool(self.codes or self.procedures or self.roots)
        if self.unchecked and ruled:
            raise _Ref("unchecked", "", {}, "", message="unchecked = true with a content rule: drop one of them")
        if not self.unchecked and not ruled:
            raise ValueError(
                "needs a content rule (codes, procedures or roots), or unchecked = true to accept any content"
            )
        return self

    def recognises(self, kind: DocumentKind) -> bool:
        """Whether content of ``kind`` is a document of this type (always, when ``unchecked``)."""
        if self.unchecked:
            return True
        if kind.root is not None and kind.root in self.roots:
            return True
        if kind.procedure is not None and (
            kind.procedure in self.procedures or kind.procedure.split("/")[0] in self.procedures
        ):
            return True
        return kind.code is not None and kind.code in self.codes


class ShipCallSettings(_Frozen):
    """``[ship_calls.PROCEDURE]``: the rule of a ship-call procedure (a call declared with ``X-Procedure:
    PROCEDURE``): whose agreement it needs and what status each combination of answers gives (docs/ship-calls.md).
    Before any answer a call is ``SUBMITTED``, then ``PENDING_AGENCIES`` until the rule decides."""

    required: tuple[str, ...] = Field(min_length=1)
    """The agencies (destinations the call is routed to) that must agree; the others' answers are kept but do not
    count."""
    granted: str = Field("PORT_ENTRY_PERMITTED", pattern=r"^[A-Z][A-Z0-9_]*$")
    """The status once every required agency accepted (``CLEARANCE_GRANTED`` for a departure)."""
    conditional: str | None = Field(None, pattern=r"^[A-Z][A-Z0-9_]*$")
    """The status once every required agency accepted and one of them with conditions. None: ``granted``."""
    refused: str = Field("PORT_ENTRY_REFUSED", pattern=r"^[A-Z][A-Z0-9_]*$")
    """The status once a required agency refused (until an amendment it must answer again changes its part)."""


class RetentionSettings(_Frozen):
    """``[retention]``: when finished messages leave the store for signed archive bundles (``nswgw archive``)."""

    default: timedelta = Field(timedelta(days=365), gt=timedelta(0))
    """How long a finished message stays in the store (ISO 8601 duration, ``"P365D"``) unless its document type
    sets ``retention``. Counted from when the gateway received it."""
    archive_dir: FilePath | None = None
    """Where the bundles are written (relative to the configuration file); created when missing. ``nswgw
    archive`` refuses to run without it."""
    batch: int = Field(10_000, gt=0)
    """At most this many journal entries (and their messages) per bundle; one prune transaction per bundle."""
    interval: timedelta | None = Field(None, gt=timedelta(0))
    """How often ``nswgw serve`` archives by itself (ISO 8601 duration, ``"PT1H"``), as ``nswgw archive`` would:
    needs ``archive_dir`` and a ``[signing]`` key. Unset (the default): only ``nswgw archive`` archives."""

    @model_validator(mode="after")
    def _interval_needs_a_directory(self) -> RetentionSettings:
        if self.interval is not None and self.archive_dir is None:
            raise ValueError("retention.interval needs retention.archive_dir")
        return self


class TimestampSettings(_Frozen):
    """``[journal.timestamp]``: RFC 3161 timestamps over the journal head, off the intake and delivery path."""

    url: str = Field(pattern=r"^https?://")
    """The timestamping authority's URL (``http://`` or ``https://``); requests are POSTed to it."""
    anchors: tuple[FilePath, ...] = Field(min_length=1)
    """PEM file(s) holding the certificate(s) the TSA certificate must chain to."""
    hash: Literal["sha256", "sha384", "sha512"] = "sha256"
    """Hash algorithm of the imprint sent to the TSA."""
    every_entries: int | None = Field(None, ge=1)
    """Timestamp the head once this many entries were appended since the last token."""
    every_seconds: float | None = Field(None, gt=0)
    """Timestamp the head once this many seconds passed since the last token (when it moved)."""
    check_interval: float = Field(5.0, gt=0)
    """Seconds between two looks at the journal head (and the shortest wait before a retry)."""
    max_backoff: float = Field(300.0, gt=0)
    """The longest wait between two attempts while the TSA fails (the wait doubles from ``check_interval``)."""
    grace: float = Field(3600.0, gt=0)
    """Seconds a TSA outage is tolerated while the head is untimestamped: then ``/readyz`` check
    ``journal_timestamp`` fails and a ``timestamp_overdue`` event is published."""
    stop_intake_after_grace: bool = False
    """After ``grace``, refuse submissions with ``TIMESTAMP_OVERDUE`` (503, ``Retry-After``) until a token is got."""
    timeout: float = Field(10.0, gt=0)
    """Seconds one request to the TSA may take."""

    @model_validator(mode="after")
    def _needs_a_schedule(self) -> TimestampSettings:
        if self.every_entries is None and self.every_seconds is None:
            raise ValueError("journal.timestamp needs every_entries or every_seconds (or both)")
        return self


class JournalSettings(_Frozen):
    anchor: FilePath | None = None
    """A file the running gateway appends its journal head to (one JSON line, fsynced), so that entries cut off
    the end of the journal are detected: at start (the gateway refuses to start, ``JOURNAL_BROKEN``), by
    ``/readyz`` and by ``nswgw log verify``. Put it on another volume or host than the store. Unset: no anchor
    (truncation of the newest entries goes unnoticed). Missing directories are created at start."""
    timestamp: TimestampSettings | None = None
    """RFC 3161 timestamps of the journal head (``[journal.timestamp]``). Unset: no timestamps."""
    anchor_interval: float = Field(60.0, gt=0)
    """Seconds between two anchors while the head moves (one more is written when the gateway stops)."""

    @field_validator("anchor")
    @classmethod
    def _anchor_file(cls, value: str | None) -> str | None:
        if value is not None and Path(value).is_dir():
            raise ValueError(f"{value} is a directory; name the anchor file in it")
        return value


class Config(_Frozen):
    gateway: GatewaySettings = GatewaySettings()
    store: StoreSettings = StoreSettings()
    parties: dict[str, PartySettings] = Field(default_factory=dict)
    """Parties that submit messages, by name."""
    destinations: dict[str, DestinationSettings] = Field(default_factory=dict)
    """Where messages are delivered, by name."""
    routes: tuple[RouteSettings, ...] = ()
    """Routing rules, first match wins."""
    inbound: dict[str, InboundSettings] = Field(default_factory=dict)
    """Inbound endpoints (how parties that do not call the HTTP API get messages in), by name."""
    signing: SigningSettings = SigningSettings()
    """The gateway's own signing keys."""
    document_types: dict[str, DocumentTypeSettings] = Field(default_factory=dict)
    """Document types, by name, with how each is recognised from content. Every type a party, route or
    submission names must be one of them."""
    journal: JournalSettings = JournalSettings()
    """The tamper-evident message log's anchoring outside the store."""
    retention: RetentionSettings = RetentionSettings()
    """Retention of finished messages and where their archive bundles go."""
    operators: dict[str, OperatorSettings] = Field(default_factory=dict)
    """Operators of the gateway (the operator API under ``/v1/admin/``), by name."""
    subscriptions: dict[str, SubscriptionSettings] = Field(default_factory=dict)
    """Agencies that receive some data elements of the messages they are entitled to, by name; tried in this
    order, the first that matches a destination wins it (:mod:`gateway.subscriptions`)."""
    ship_calls: dict[str, ShipCallSettings] = Field(default_factory=dict)
    """Ship-call procedures by name (``X-Procedure`` of the declaration), each with the rule of its overall status
    (:mod:`gateway.shipcalls`)."""

    @field_validator("parties", "destinations", "document_types", "operators", "subscriptions")
    @classmethod
    def _names(cls, value: dict[str, Any]) -> dict[str, Any]:
        import re

        for name in value:
            if not re.match(_NAME, name):
                raise ValueError(f"{name!r} is not a valid name (letters, digits, . _ : -)")
        return value

    @model_validator(mode="after")
    def _references(self) -> Config:
        for name, party in self.parties.items():
            for i, doc_type in enumerate(party.document_types):
                if doc_type != "*" and doc_type not in self.document_types:
                    raise _Ref(f"parties.{name}.document_types[{i}]", "", {}, "", message=_undeclared(doc_type))
        for i, route in enumerate(self.routes):
            if route.document_type != "*" and route.document_type not in self.document_types:
                raise _Ref(f"routes[{i}].document_type", "", {}, "", message=_undeclared(route.document_type))
            for j, dest in enumerate(route.to):
                if dest not in self.destinations:
                    raise _Ref(f"routes[{i}].to[{j}]", dest, self.destinations, "destination")
            if route.sender != "*" and route.sender not in self.parties:
                raise _Ref(f"routes[{i}].sender", route.sender, self.parties, "party")
        if self.gateway.verification == "signature":
            for name, party in self.parties.items():
                if party.trust is None:
                    raise _Ref(
                        f"parties.{name}.trust",
                        "",
                        {},
                        "",
                        message='required with gateway.verification = "signature" (the default; or set a weaker mode)',
                    )
        for name, settings in self.destinations.items():
            if settings.receipt == "signed" and settings.trust is None:
                raise _Ref(f"destinations.{name}.trust", "", {}, "", message='required with receipt = "signed"')
            if settings.party is not None and settings.party not in self.parties:
                raise _Ref(f"destinations.{name}.party", settings.party, self.parties, "party")
        for procedure, rule in self.ship_calls.items():
            for i, agency in enumerate(rule.required):
                if agency not in self.destinations:
                    raise _Ref(f"ship_calls.{procedure}.required[{i}]", agency, self.destinations, "destination")
        self._subscription_references()
        ca = self.gateway.tls.client_ca if self.gateway.tls is not None else None
        subjects: dict[str, str] = {}
        for name, party in self.parties.items():
            if party.client_certificates and ca is None:
                raise _Ref(f"parties.{name}.client_certificates", "", {}, "", message="needs gateway.tls.client_ca")
            for i, subject in enumerate(party.client_certificates):
                if subjects.setdefault(subject, name) != name:
                    message = f"{subject} already authenticates party {subjects[subject]}"
                    raise _Ref(f"parties.{name}.client_certificates[{i}]", "", {}, "", message=message)
        for name, operator in self.operators.items():
            if operator.client_certificates and ca is None:
                raise _Ref(f"operators.{name}.client_certificates", "", {}, "", message="needs gateway.tls.client_ca")
            for i, subject in enumerate(operator.client_certificates):
                if subject in subjects:
                    message = f"{subject} already authenticates party {subjects[subject]}"
                    raise _Ref(f"operators.{name}.client_certificates[{i}]", "", {}, "", message=message)
            for i, token in enumerate(operator.tokens):
                if (holder := self.party_for_token(token)) is not None:
                    message = f"this token is also party {holder}'s; an operator's tokens must be its own"
                    raise _Ref(f"operators.{name}.tokens[{i}]", "", {}, "", message=message)
        if self.gateway.signing == "on" and not self.signing.keys:
            raise _Ref(
                "signing.keys",
                "",
                {},
                "",
                message='gateway.signing = "on" (the default) needs at least one key; or set gateway.signing = "off"',
            )
        return self

    def _subscription_references(self) -> None:
        """Each subscription names a configured destination, declared document types, known senders, and fields
        its destination lets through."""
        from gateway.subscriptions import allowed

        for name, sub in self.subscriptions.items():
            where = f"subscriptions.{name}"
            dest = self.destinations.get(sub.destination)
            if dest is None:
                raise _Ref(f"{where}.destination", sub.destination, self.destinations, "destination")
            if dest.format == "xml":
                message = f"destination {sub.destination} takes pass-through XML, which cannot carry some fields only"
                raise _Ref(f"{where}.destination", "", {}, "", message=message)
            for i, doc_type in enumerate(sub.document_types):
                if doc_type != "*" and doc_type not in self.document_types:
                    raise _Ref(f"{where}.document_types[{i}]", "", {}, "", message=_undeclared(doc_type))
            for i, sender in enumerate(sub.senders):
                if sender not in self.parties:
                    raise _Ref(f"{where}.senders[{i}]", sender, self.parties, "party")
            if not allowed(sub.fields, dest.fields):
                message = f"destinations.{sub.destination}.fields lets none of these through"
                raise _Ref(f"{where}.fields", "", {}, "", message=message)

    @property
    def weakened(self) -> tuple[str, ...]:
        """The security defaults this configuration turns off: :attr:`GatewaySettings.weakened` and every trust
        section, adapter options included, that accepts any signer of its anchors
        (``parties.X.trust.any_signer``): printed at start, logged, and listed by ``/readyz``."""
        return (*self.gateway.weakened, *(f"{path}.any_signer" for path in _any_signer(self, "")))

    def party_for_token(self, token: str) -> str | None:
        for name, party in self.parties.items():
            if party.matches(token):
                return name
        return None

    def party_for_certificate(self, subject: str) -> str | None:
        """The party a verified TLS client certificate with this RFC 4514 ``subject`` authenticates as."""
        for name, party in self.parties.items():
            if subject in party.client_certificates:
                return name
        return None

    def operator_for_token(self, token: str) -> str | None:
        for name, operator in self.operators.items():
            if operator.matches(token):
                return name
        return None

    def operator_for_certificate(self, subject: str) -> str | None:
        """The operator a verified TLS client certificate with this RFC 4514 ``subject`` authenticates as."""
        for name, operator in self.operators.items():
            if subject in operator.client_certificates:
                return name
        return None


def _any_signer(value: Any, path: str) -> list[str]:
    """The dotted paths of the trust sections under ``value`` that write ``any_signer = true``."""
    if isinstance(value, TrustSettings):
        return [path] if value.any_signer else []
    found: list[str] = []
    if isinstance(value, BaseModel):
        for name in type(value).model_fields:
            found += _any_signer(getattr(value, name), f"{path}.{name}" if path else name)
    elif isinstance(value, dict):
        for key, item in value.items():
            found += _any_signer(item, f"{path}.{key}")
    elif isinstance(value, (tuple, list)):
        for i, item in enumerate(value):
            found += _any_signer(item, f"{path}[{i}]")
    return found


def _undeclared(doc_type: str) -> str:
    return (
        f"document type {doc_type!r} is not declared: add [document_types.{doc_type!r}] with how it is"
        " recognised (codes, procedures or roots), or unchecked = true"
    )


class _Ref(ValueError):
    def __init__(self, field: str, name: str, known: dict[str, Any], kind: str, *, message: str | None = None) -> None:
        if message is None:
            close = difflib.get_close_matches(name, list(known), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            message = f"unknown {kind} {name!r}{hint}"
        super().__init__(message)
        self.field = field


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _one_error(error: Any, prefix: str) -> tuple[str, str]:
    """``(field, message)`` of one pydantic error, under ``prefix``."""
    loc = _loc(tuple(error["loc"]))
    ctx_error = error.get("ctx", {}).get("error")
    if isinstance(ctx_error, _Ref):
        if not ctx_error.field:
            field = loc
        elif loc and not ctx_error.field.startswith(loc):
            field = f"{loc}.{ctx_error.field}"
        else:
            field = ctx_error.field
        message = str(ctx_error)
    else:
        field = loc
        message = f"{error['msg']} (input: {error.get('input')!r})"[:300]
    if prefix:
        field = f"{prefix}{'' if field.startswith('[') or not field else '.'}{field}"
    return field, message


def config_error(exc: ValidationError, *, prefix: str = "") -> ConfigError:
    """Every error of a pydantic validation as one ``CONFIG_INVALID``: its field is the first error's dotted
    path (under ``prefix``), its message lists each error on a line of its own as ``field: message``, and
    ``details["errors"]`` has them as ``{"field", "message"}`` objects."""
    errors = [_one_error(e, prefix) for e in exc.errors()]
    field, message = errors[0]
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more)\n" + "\n".join(f"  {f or '(top level)'}: {m}" for f, m in errors)
    return ConfigError(
        message, field=field or None, details={"errors": [{"field": f, "message": m} for f, m in errors]}
    )


def parse_config(data: dict[str, Any], *, base: Path | None = None) -> Config:
    """Validate a decoded configuration (adapter and endpoint options included, against their classes'
    ``Options`` models); relative paths are resolved against ``base``, the configuration file's directory."""
    try:
        config = Config.model_validate(data, context={"base": base})
    except ValidationError as exc:
        raise config_error(exc) from None
    for name, dest in config.destinations.items():
        if dest.format not in _GENERIC_FORMATS:
            media = _format(dest.format, f"destinations.{name}.format").media_type
            if config.gateway.signing == "on" and dest.signing.profile != "none" and not media.endswith("xml"):
                raise ConfigError(
                    f'{dest.format} ({media}) cannot carry an XML signature; set profile = "none"',
                    field=f"destinations.{name}.signing.profile",
                )
    for name, party in config.parties.items():
        if party.format not in _GENERIC_FORMATS:
            _format(party.format, f"parties.{name}.format")
        for fmt, claims in party.identities.items():
            known = _format(fmt, f"parties.{name}.identities.{fmt}").identity_fields
            for element in claims:
                if element not in known:
                    raise ConfigError(
                        f"{fmt} documents claim no sender identity {element!r}"
                        + (f"; known: {', '.join(known)}" if known else " (the format names no sender)"),
                        field=f"parties.{name}.identities.{fmt}.{element}",
                    )
    from gateway.ports import resolve_inbound

    for name, inbound in config.inbound.items():
        resolve_inbound(inbound.endpoint).check_config(inbound.options, config, field=f"inbound.{name}.options")
    url = config.store.url
    if base is not None and url.startswith("sqlite:///") and not Path(url[len("sqlite:///") :]).is_absolute():
        path = (base / url[len("sqlite:///") :]).resolve()
        config = config.model_copy(update={"store": config.store.model_copy(update={"url": f"sqlite:///{path}"})})
    return config


_GENERIC_FORMATS = frozenset({"same", "xml"})
"""Format names outside the mappings registry: ``same`` (as submitted) and ``xml`` (any XML, not mapped)."""


def _format(name: str, field: str) -> Any:
    from gateway.errors import UnknownFormat
    from mappings.registry import get

    try:
        return get(name)
    except UnknownFormat as exc:
        raise ConfigError(exc.message, field=field) from None


def load_config(path: str | Path) -> Config:
    """Read and validate a TOML configuration file."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {p}: {exc.strerror}", field=str(p)) from exc
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p} is not valid TOML: {exc}", field=str(p)) from exc
    return parse_config(data, base=p.parent)
