"""A development PKI: keys, certificates, CRLs and an OpenSSL CA database.

Two audiences:

* ``nswgw keys init DIR`` builds a demo PKI for developers and demonstrations
  (:func:`init_dev_pki`, reopened with :meth:`DevPki.open`);
* tests mint certificates of every kind with :func:`issue_certificate`,
  :func:`make_crl` and :meth:`DevPki.issue` / :meth:`DevPki.revoke`
  (expired, not yet valid, wrong key usage, revoked, from another CA).

Nothing here is meant for production key material: private keys are written
unencrypted (mode 0600) and the CA keys sit next to the certificates.

Layout of a :class:`DevPki` directory::

    manifest.json            every file, the party names, serials, SHA-256 fingerprints, status
    root-ca.pem              "NSW Development Root CA" (self-signed)
    root-ca.key.pem          (0600)
    root-ca.crl.pem          the root's CRL (revoked issuing CAs: none)
    issuing-ca.pem           "NSW Development Issuing CA", issued by the root
    issuing-ca.key.pem       (0600)
    ca-chain.pem             issuing CA then root (PEM bundle)
    crl.pem                  the issuing CA's CRL, re-signed on every revocation
    index.txt                OpenSSL CA database of the issuing CA (``openssl ocsp -index``)
    index.txt.attr           ``unique_subject = no``
    ocsp.pem                 OCSP responder certificate (id-kp-OCSPSigning, issued by the issuing CA)
    ocsp.key.pem             (0600)
    parties/NAME.pem         end-entity signing certificate of each party
    parties/NAME.key.pem     its private key (0600)
    parties/NAME.p12         PKCS#12: key + certificate + issuing CA (0600)

A real ``openssl ocsp`` responder runs straight over it::

    openssl ocsp -index index.txt -port PORT -rsigner ocsp.pem -rkey ocsp.key.pem \\
        -CA issuing-ca.pem -nmin 5
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gateway.errors import ConfigError
from signing.keys import PrivateKey, load_certificate, load_private_key
from signing.revocation import load_crl

__all__ = [
    "KeyKind",
    "KEY_KINDS",
    "PrivateKey",
    "KEY_USAGE_NAMES",
    "EKU_NAMES",
    "REVOCATION_REASONS",
    "DEFAULT_PARTIES",
    "ROOT_CA_NAME",
    "ISSUING_CA_NAME",
    "OCSP_RESPONDER_NAME",
    "generate_key",
    "issue_certificate",
    "make_crl",
    "IssuedCert",
    "DevPki",
    "init_dev_pki",
]

KeyKind = Literal["rsa2048", "rsa3072", "p256", "p384"]
KEY_KINDS: tuple[str, ...] = ("rsa2048", "rsa3072", "p256", "p384")
"""Key kinds accepted by :func:`generate_key` (and ``nswgw keys init --key-type``)."""

DEFAULT_PARTIES: tuple[str, ...] = ("nsw-gateway", "moit", "mard", "customs", "th-asw", "my-asw", "sg-asw")
"""The gateway itself, three demo ministries and three ASEAN Single Window partners."""

ROOT_CA_NAME = "NSW Development Root CA"
ISSUING_CA_NAME = "NSW Development Issuing CA"
OCSP_RESPONDER_NAME = "NSW Development OCSP Responder"
DEFAULT_ORGANIZATION = "NSW Development PKI"

KEY_USAGE_NAMES: frozenset[str] = frozenset(
    {
        "digital_signature",
        "content_commitment",
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
        "key_cert_sign",
        "crl_sign",
        "encipher_only",
        "decipher_only",
    }
)
"""Names accepted in ``key_usage`` (the keyword arguments of :class:`x509.KeyUsage`)."""

EKU_NAMES: Mapping[str, x509.ObjectIdentifier] = {
    "server_auth": ExtendedKeyUsageOID.SERVER_AUTH,
    "client_auth": ExtendedKeyUsageOID.CLIENT_AUTH,
    "code_signing": ExtendedKeyUsageOID.CODE_SIGNING,
    "email_protection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "time_stamping": ExtendedKeyUsageOID.TIME_STAMPING,
    "ocsp_signing": ExtendedKeyUsageOID.OCSP_SIGNING,
}
"""Names accepted in ``extended_key_usage`` besides :class:`x509.ObjectIdentifier` values."""

REVOCATION_REASONS: Mapping[str, x509.ReasonFlags] = {
    "unspecified": x509.ReasonFlags.unspecified,
    "key_compromise": x509.ReasonFlags.key_compromise,
    "ca_compromise": x509.ReasonFlags.ca_compromise,
    "affiliation_changed": x509.ReasonFlags.affiliation_changed,
    "superseded": x509.ReasonFlags.superseded,
    "cessation_of_operation": x509.ReasonFlags.cessation_of_operation,
    "certificate_hold": x509.ReasonFlags.certificate_hold,
}
"""Reasons :meth:`DevPki.revoke` accepts: those both a CRL and ``index.txt`` can carry."""

# How `openssl ca` / `openssl ocsp` spell the reasons in index.txt.
_OPENSSL_REASON = {
    x509.ReasonFlags.unspecified: "unspecified",
    x509.ReasonFlags.key_compromise: "keyCompromise",
    x509.ReasonFlags.ca_compromise: "CACompromise",
    x509.ReasonFlags.affiliation_changed: "affiliationChanged",
    x509.ReasonFlags.superseded: "superseded",
    x509.ReasonFlags.cessation_of_operation: "cessationOfOperation",
    x509.ReasonFlags.certificate_hold: "certificateHold",
}

_ROOT_VALIDITY = dt.timedelta(days=3650)
_CA_VALIDITY = dt.timedelta(days=1825)
_EE_VALIDITY = dt.timedelta(days=730)
_CRL_VALIDITY = dt.timedelta(days=7)
_BACKDATE = dt.timedelta(minutes=5)  # tolerate small clock differences between hosts
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_MANIFEST_FORMAT = "nsw-dev-pki/1"


# --------------------------------------------------------------------------- primitives


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _utc(value: dt.datetime) -> dt.datetime:
    """Aware UTC, whole seconds (X.509 times carry no fractions). Naive values are taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).replace(microsecond=0)


def generate_key(kind: str = "rsa2048") -> PrivateKey:
    """A fresh private key: ``rsa2048``, ``rsa3072``, ``p256`` or ``p384``."""
    if kind == "rsa2048":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == "rsa3072":
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    if kind == "p256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "p384":
        return ec.generate_private_key(ec.SECP384R1())
    raise ConfigError(f"unknown key kind {kind!r}{_did_you_mean(kind, KEY_KINDS)}", field="key_kind")


def _did_you_mean(name: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _key_usage(names: Iterable[str]) -> x509.KeyUsage:
    chosen = set(names)
    unknown = chosen - KEY_USAGE_NAMES
    if unknown:
        bad = sorted(unknown)[0]
        raise ConfigError(f"unknown key usage {bad!r}{_did_you_mean(bad, KEY_USAGE_NAMES)}", field="key_usage")
    flags = {name: name in chosen for name in KEY_USAGE_NAMES}
    # encipher_only/decipher_only are only meaningful (and only encodable) with key_agreement.
    if not flags["key_agreement"] and (flags["encipher_only"] or flags["decipher_only"]):
        raise ConfigError("encipher_only/decipher_only require key_agreement", field="key_usage")
    return x509.KeyUsage(**flags)


def _eku(values: Iterable[str | x509.ObjectIdentifier]) -> x509.ExtendedKeyUsage:
    oids: list[x509.ObjectIdentifier] = []
    for value in values:
        if isinstance(value, x509.ObjectIdentifier):
            oids.append(value)
        elif value in EKU_NAMES:
            oids.append(EKU_NAMES[value])
        else:
            raise ConfigError(
                f"unknown extended key usage {value!r}{_did_you_mean(str(value), EKU_NAMES)}",
                field="extended_key_usage",
            )
    return x509.ExtendedKeyUsage(oids)


def _reason(value: x509.ReasonFlags | str | None) -> x509.ReasonFlags | None:
    if value is None or isinstance(value, x509.ReasonFlags):
        return value
    if value in REVOCATION_REASONS:
        return REVOCATION_REASONS[value]
    for flag in x509.ReasonFlags:  # also accept the RFC 5280 spelling, "keyCompromise"
        if flag.value.lower() == value.lower():
            return flag
    raise ConfigError(f"unknown revocation reason {value!r}{_did_you_mean(value, REVOCATION_REASONS)}", field="reason")


def issue_certificate(
    issuer_cert: x509.Certificate | None,
    issuer_key: PrivateKey,
    common_name: str,
    public_key: Any,
    *,
    organization: str = DEFAULT_ORGANIZATION,
    country: str = "VN",
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    is_ca: bool = False,
    path_length: int | None = None,
    key_usage: Iterable[str] | None = None,
    extended_key_usage: Iterable[str | x509.ObjectIdentifier] | None = None,
    ocsp_url: str | None = None,
    crl_url: str | None = None,
    serial: int | None = None,
    ocsp_no_check: bool = False,
) -> x509.Certificate:
    """Issue an X.509 v3 certificate signed with SHA-256 by ``issuer_key``.

    ``issuer_cert=None`` makes a self-signed root (``issuer_key`` should then be
    the private half of ``public_key``). Deliberately no consistency checks
    between ``issuer_cert`` and ``issuer_key``, so that tests can mint broken
    certificates on purpose.

    Extensions: BasicConstraints (critical), KeyUsage (critical), SubjectKeyIdentifier,
    AuthorityKeyIdentifier (from the issuer's SKI), ExtendedKeyUsage when given,
    AuthorityInformationAccess/OCSP when ``ocsp_url`` is given, CRLDistributionPoints
    when ``crl_url`` is given, OCSPNoCheck when ``ocsp_no_check`` (responder certificates).

    ``key_usage`` defaults to ``{"digital_signature", "content_commitment"}`` for an
    end entity and ``{"key_cert_sign", "crl_sign", "digital_signature"}`` for a CA.
    Validity defaults: from five minutes ago, for two years (end entity) or five (CA).
    """
    not_before = _utc(not_before) if not_before is not None else _now() - _BACKDATE
    if not_after is None:
        not_after = not_before + (_CA_VALIDITY if is_ca else _EE_VALIDITY)
    not_after = _utc(not_after)
    if key_usage is None:
        key_usage = (
            {"key_cert_sign", "crl_sign", "digital_signature"} if is_ca else {"digital_signature", "content_commitment"}
        )
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, country),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    issuer_name = issuer_cert.subject if issuer_cert is not None else subject
    if issuer_cert is not None:
        try:
            ski = issuer_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
            aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
        except x509.ExtensionNotFound:
            aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_cert.public_key())  # type: ignore[arg-type]
    else:
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key())
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(public_key)
        .serial_number(serial if serial is not None else x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=path_length if is_ca else None), critical=True)
        .add_extension(_key_usage(key_usage), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(aki, critical=False)
    )
    if extended_key_usage is not None:
        builder = builder.add_extension(_eku(extended_key_usage), critical=False)
    if ocsp_url:
        builder = builder.add_extension(
            x509.AuthorityInformationAccess(
                [
                    x509.AccessDescription(
                        x509.AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url)
                    )
                ]
            ),
            critical=False,
        )
    if crl_url:
        builder = builder.add_extension(
            x509.CRLDistributionPoints(
                [x509.DistributionPoint([x509.UniformResourceIdentifier(crl_url)], None, None, None)]
            ),
            critical=False,
        )
    if ocsp_no_check:
        builder = builder.add_extension(x509.OCSPNoCheck(), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def make_crl(
    issuer_cert: x509.Certificate,
    issuer_key: PrivateKey,
    revoked: Iterable[tuple[int, dt.datetime, x509.ReasonFlags | str | None]] = (),
    *,
    this_update: dt.datetime | None = None,
    next_update: dt.datetime | None = None,
    crl_number: int | None = None,
) -> x509.CertificateRevocationList:
    """A CRL signed (SHA-256) by ``issuer_key`` under ``issuer_cert``'s name.

    ``revoked`` holds ``(serial, revocation_time, reason)``; a reason of ``None`` or
    ``unspecified`` is left out of the entry (RFC 5280 5.3.1). ``this_update``
    defaults to now, ``next_update`` to seven days later, ``crl_number`` to
    ``this_update`` in milliseconds (monotonic for a dev PKI). Carries CRLNumber
    and AuthorityKeyIdentifier.
    """
    this_update = _utc(this_update) if this_update is not None else _now()
    next_update = _utc(next_update) if next_update is not None else this_update + _CRL_VALIDITY
    if crl_number is None:
        crl_number = int(this_update.timestamp() * 1000)
    try:
        ski = issuer_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
    except x509.ExtensionNotFound:
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key())
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer_cert.subject)
        .last_update(this_update)
        .next_update(next_update)
        .add_extension(x509.CRLNumber(crl_number), critical=False)
        .add_extension(aki, critical=False)
    )
    for serial, when, reason in revoked:
        entry = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(_utc(when))
        flag = _reason(reason)
        if flag is not None and flag is not x509.ReasonFlags.unspecified:
            entry = entry.add_extension(x509.CRLReason(flag), critical=False)
        builder = builder.add_revoked_certificate(entry.build())
    return builder.sign(issuer_key, hashes.SHA256())


# --------------------------------------------------------------------------- files


def _write(path: Path, data: bytes, *, private: bool = False) -> None:
    """Write atomically (readers such as a running ``openssl ocsp`` never see half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o600 if private else 0o644)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _serial_hex(serial: int) -> str:
    """The serial as OpenSSL's index.txt spells it: upper-case hex, whole bytes."""
    text = f"{serial:X}"
    return text if len(text) % 2 == 0 else "0" + text


def _index_time(when: dt.datetime) -> str:
    """ASN.1 time as ``openssl ca`` writes it: UTCTime before 2050, GeneralizedTime after."""
    when = _utc(when)
    return when.strftime("%y%m%d%H%M%SZ") if when.year < 2050 else when.strftime("%Y%m%d%H%M%SZ")


def _oneline_dn(name: x509.Name) -> str:
    """``/C=VN/O=.../CN=...``, the X509_NAME_oneline form used in index.txt."""
    return "".join(f"/{attr.rfc4514_attribute_name}={attr.value}" for attr in name)


@dataclass(frozen=True)
class IssuedCert:
    """An end-entity certificate of the development PKI, with its key and files."""

    name: str
    cert: x509.Certificate
    key: PrivateKey
    cert_path: Path
    key_path: Path
    p12_path: Path


class DevPki:
    """A development PKI on disk (see the module docstring for the layout).

    Create one with :func:`init_dev_pki`, reopen it with :meth:`DevPki.open`.
    ``manifest.json`` is the source of truth; ``index.txt`` and ``crl.pem`` are
    regenerated from it on every change.
    """

    MANIFEST = "manifest.json"
    ROOT_CERT = "root-ca.pem"
    ROOT_KEY = "root-ca.key.pem"
    ROOT_CRL = "root-ca.crl.pem"
    ISSUING_CERT = "issuing-ca.pem"
    ISSUING_KEY = "issuing-ca.key.pem"
    CHAIN = "ca-chain.pem"
    CRL = "crl.pem"
    INDEX = "index.txt"
    INDEX_ATTR = "index.txt.attr"
    OCSP_CERT = "ocsp.pem"
    OCSP_KEY = "ocsp.key.pem"
    PARTIES_DIR = "parties"

    def __init__(self, directory: Path, manifest: dict[str, Any]) -> None:
        self.directory = directory
        self._manifest = manifest
        self._cache: dict[str, Any] = {}

    # ---------------------------------------------------------------- opening

    @classmethod
    def open(cls, directory: str | os.PathLike[str]) -> DevPki:
        """Reopen a PKI made by :func:`init_dev_pki`; CONFIG_INVALID when there is none."""
        path = Path(directory)
        manifest_path = path / cls.MANIFEST
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(
                f"{path} is not a development PKI (no {cls.MANIFEST}); run 'nswgw keys init {path}'", field=str(path)
            ) from exc
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read {manifest_path}: {exc}", field=str(manifest_path)) from exc
        if not isinstance(manifest, dict) or manifest.get("format") != _MANIFEST_FORMAT:
            raise ConfigError(f"{manifest_path} is not a {_MANIFEST_FORMAT} manifest", field=str(manifest_path))
        return cls(path, manifest)

    # ---------------------------------------------------------------- properties

    @property
    def manifest(self) -> dict[str, Any]:
        """A copy of the parsed manifest."""
        return json.loads(json.dumps(self._manifest))

    @property
    def parties(self) -> tuple[str, ...]:
        """The parties created by ``init`` (extra certificates from :meth:`issue` are in :attr:`names`)."""
        return tuple(self._manifest["parties"])

    @property
    def names(self) -> tuple[str, ...]:
        """Every end-entity name: the parties and the certificates added by :meth:`issue`."""
        return tuple(n for n, e in self._manifest["certificates"].items() if e["role"] in ("party", "extra"))

    @property
    def key_kind(self) -> str:
        return str(self._manifest["key_kind"])

    @property
    def ocsp_url(self) -> str | None:
        return self._manifest.get("ocsp_url")

    @property
    def crl_url(self) -> str | None:
        return self._manifest.get("crl_url")

    root_cert_path = property(lambda self: self.directory / self.ROOT_CERT, doc="Path of the root CA certificate.")
    root_key_path = property(lambda self: self.directory / self.ROOT_KEY, doc="Path of the root CA key.")
    root_crl_path = property(lambda self: self.directory / self.ROOT_CRL, doc="Path of the root's CRL.")
    issuing_cert_path = property(
        lambda self: self.directory / self.ISSUING_CERT, doc="Path of the issuing CA certificate."
    )
    issuing_key_path = property(lambda self: self.directory / self.ISSUING_KEY, doc="Path of the issuing CA key.")
    chain_path = property(lambda self: self.directory / self.CHAIN, doc="Issuing CA + root, PEM.")
    crl_path = property(lambda self: self.directory / self.CRL, doc="Path of the issuing CA's CRL.")
    index_path = property(lambda self: self.directory / self.INDEX, doc="Path of the OpenSSL CA database.")
    ocsp_cert_path = property(
        lambda self: self.directory / self.OCSP_CERT, doc="Path of the OCSP responder certificate."
    )
    ocsp_key_path = property(lambda self: self.directory / self.OCSP_KEY, doc="Path of the OCSP responder key.")

    def _load(self, attr: str, loader: Any, path: Path) -> Any:
        if attr not in self._cache:
            self._cache[attr] = loader(path)
        return self._cache[attr]

    @property
    def root_cert(self) -> x509.Certificate:
        return self._load("root_cert", load_certificate, self.root_cert_path)

    @property
    def root_key(self) -> PrivateKey:
        return self._load("root_key", load_private_key, self.root_key_path)

    @property
    def issuing_cert(self) -> x509.Certificate:
        return self._load("issuing_cert", load_certificate, self.issuing_cert_path)

    @property
    def issuing_key(self) -> PrivateKey:
        return self._load("issuing_key", load_private_key, self.issuing_key_path)

    @property
    def ocsp_cert(self) -> x509.Certificate:
        return self._load("ocsp_cert", load_certificate, self.ocsp_cert_path)

    @property
    def ocsp_key(self) -> PrivateKey:
        return self._load("ocsp_key", load_private_key, self.ocsp_key_path)

    def crl(self) -> x509.CertificateRevocationList:
        """The issuing CA's current CRL (read from :attr:`crl_path`)."""
        return load_crl(self.crl_path)

    def root_crl(self) -> x509.CertificateRevocationList:
        return load_crl(self.root_crl_path)

    # ---------------------------------------------------------------- parties

    def party(self, name: str) -> IssuedCert:
        """An end-entity certificate by name; CONFIG_INVALID with "did you mean" when unknown."""
        entry = self._manifest["certificates"].get(name)
        if entry is None or entry["role"] not in ("party", "extra"):
            raise ConfigError(
                f"no certificate named {name!r} in the development PKI {self.directory}"
                f"{_did_you_mean(name, self.names)}",
                field="name",
            )
        cached = self._cache.get(f"party:{name}")
        if cached is not None:
            return cached
        cert_path = self.directory / entry["cert"]
        key_path = self.directory / entry["key"]
        issued = IssuedCert(
            name=name,
            cert=load_certificate(cert_path),
            key=load_private_key(key_path),
            cert_path=cert_path,
            key_path=key_path,
            p12_path=self.directory / entry["p12"],
        )
        self._cache[f"party:{name}"] = issued
        return issued

    def issue(
        self,
        name: str,
        *,
        key_kind: str | None = None,
        key: PrivateKey | None = None,
        common_name: str | None = None,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
        key_usage: Iterable[str] | None = None,
        extended_key_usage: Iterable[str | x509.ObjectIdentifier] | None = None,
        ocsp_url: str | None = None,
        crl_url: str | None = None,
        p12_password: bytes = b"changeit",
    ) -> IssuedCert:
        """Issue one more end-entity certificate from the issuing CA (tests: expired, wrong usage, ...).

        Written to ``parties/NAME.*`` and recorded in ``index.txt`` and the manifest.
        ``key_kind`` defaults to the PKI's; pass ``key`` to reuse an existing key (fast).
        ``ocsp_url``/``crl_url`` default to those given at ``init``. The common name
        defaults to ``NAME``.
        """
        self._check_new_name(name)
        if key is None:
            key = generate_key(key_kind or self.key_kind)
        cert = issue_certificate(
            self.issuing_cert,
            self.issuing_key,
            common_name or name,
            key.public_key(),
            not_before=not_before,
            not_after=not_after,
            key_usage=key_usage,
            extended_key_usage=extended_key_usage,
            ocsp_url=ocsp_url if ocsp_url is not None else self.ocsp_url,
            crl_url=crl_url if crl_url is not None else self.crl_url,
        )
        issued = self._store_end_entity(name, cert, key, role="extra", p12_password=p12_password)
        self._save()
        return issued

    def revoke(
        self,
        name: str,
        reason: x509.ReasonFlags | str | None = "unspecified",
        *,
        at: dt.datetime | None = None,
    ) -> x509.CertificateRevocationList:
        """Revoke an end-entity (or the OCSP responder) certificate.

        Rewrites ``index.txt`` (an ``R`` line) and ``crl.pem`` (newly signed) and
        returns the new CRL. ``at`` (default now) is the revocation time.
        CONFIG_INVALID when the name is unknown or already revoked.
        """
        entries = self._manifest["certificates"]
        entry = entries.get(name)
        revocable = [n for n, e in entries.items() if e["role"] in ("party", "extra", "ocsp")]
        if entry is None or name not in revocable:
            raise ConfigError(
                f"no revocable certificate named {name!r} in {self.directory}{_did_you_mean(name, revocable)}",
                field="name",
            )
        if entry["status"] == "revoked":
            raise ConfigError(f"{name!r} is already revoked (since {entry['revoked_at']})", field="name")
        flag = _reason(reason) or x509.ReasonFlags.unspecified
        if flag not in _OPENSSL_REASON:
            raise ConfigError(f"reason {flag.name!r} cannot be recorded in index.txt", field="reason")
        entry["status"] = "revoked"
        entry["revoked_at"] = _utc(at or _now()).isoformat()
        entry["reason"] = flag.name
        crl = self._write_revocation_state()
        self._save()
        return crl

    def refresh_crl(
        self, *, this_update: dt.datetime | None = None, next_update: dt.datetime | None = None
    ) -> x509.CertificateRevocationList:
        """Re-sign ``crl.pem`` from the manifest (e.g. with a chosen validity window)."""
        crl = self._write_revocation_state(this_update=this_update, next_update=next_update)
        self._save()
        return crl

    # ---------------------------------------------------------------- internals

    def _check_new_name(self, name: str) -> None:
        if not _NAME_RE.match(name):
            raise ConfigError(
                f"invalid certificate name {name!r}: use letters, digits, '.', '_' and '-' (at most 64)", field="name"
            )
        if name in self._manifest["certificates"]:
            raise ConfigError(f"a certificate named {name!r} already exists in {self.directory}", field="name")

    def _record(self, name: str, role: str, cert: x509.Certificate, files: Mapping[str, str]) -> None:
        self._manifest["certificates"][name] = {
            "role": role,
            **files,
            "subject": cert.subject.rfc4514_string(),
            "issuer": cert.issuer.rfc4514_string(),
            "serial": _serial_hex(cert.serial_number),
            "not_before": cert.not_valid_before_utc.isoformat(),
            "not_after": cert.not_valid_after_utc.isoformat(),
            "sha256": cert.fingerprint(hashes.SHA256()).hex(":").upper(),
            "status": "valid",
            "revoked_at": None,
            "reason": None,
        }

    def _store_end_entity(
        self, name: str, cert: x509.Certificate, key: PrivateKey, *, role: str, p12_password: bytes
    ) -> IssuedCert:
        base = self.directory / self.PARTIES_DIR
        cert_path, key_path, p12_path = base / f"{name}.pem", base / f"{name}.key.pem", base / f"{name}.p12"
        _write(cert_path, _cert_pem(cert))
        _write(key_path, _key_pem(key), private=True)
        encryption = (
            serialization.BestAvailableEncryption(p12_password) if p12_password else serialization.NoEncryption()
        )
        p12 = pkcs12.serialize_key_and_certificates(name.encode(), key, cert, [self.issuing_cert], encryption)
        _write(p12_path, p12, private=True)
        rel = {
            k: str(p.relative_to(self.directory))
            for k, p in (("cert", cert_path), ("key", key_path), ("p12", p12_path))
        }
        self._record(name, role, cert, rel)
        self._write_index()
        issued = IssuedCert(name, cert, key, cert_path, key_path, p12_path)
        self._cache[f"party:{name}"] = issued
        return issued

    def _issued_by_issuing_ca(self) -> list[tuple[str, dict[str, Any]]]:
        return [(n, e) for n, e in self._manifest["certificates"].items() if e["role"] in ("ocsp", "party", "extra")]

    def _write_index(self) -> None:
        lines = []
        for _name, entry in self._issued_by_issuing_ca():
            cert = load_certificate(self.directory / entry["cert"])
            expiry = _index_time(cert.not_valid_after_utc)
            if entry["status"] == "revoked":
                flag = x509.ReasonFlags[entry["reason"]]
                revoked = f"{_index_time(dt.datetime.fromisoformat(entry['revoked_at']))},{_OPENSSL_REASON[flag]}"
                lines.append(f"R\t{expiry}\t{revoked}\t{entry['serial']}\tunknown\t{_oneline_dn(cert.subject)}\n")
            else:
                lines.append(f"V\t{expiry}\t\t{entry['serial']}\tunknown\t{_oneline_dn(cert.subject)}\n")
        _write(self.index_path, "".join(lines).encode())
        if not (self.directory / self.INDEX_ATTR).exists():
            _write(self.directory / self.INDEX_ATTR, b"unique_subject = no\n")

    def _write_revocation_state(
        self, *, this_update: dt.datetime | None = None, next_update: dt.datetime | None = None
    ) -> x509.CertificateRevocationList:
        revoked = [
            (int(e["serial"], 16), dt.datetime.fromisoformat(e["revoked_at"]), x509.ReasonFlags[e["reason"]])
            for _, e in self._issued_by_issuing_ca()
            if e["status"] == "revoked"
        ]
        number = int(self._manifest.get("crl_number", 0)) + 1
        self._manifest["crl_number"] = number
        crl = make_crl(
            self.issuing_cert,
            self.issuing_key,
            revoked,
            this_update=this_update,
            next_update=next_update,
            crl_number=number,
        )
        _write(self.crl_path, crl.public_bytes(serialization.Encoding.PEM))
        self._write_index()
        return crl

    def _save(self) -> None:
        files = sorted(
            {self.MANIFEST, self.ROOT_CRL, self.CHAIN, self.CRL, self.INDEX, self.INDEX_ATTR}
            | {e[k] for e in self._manifest["certificates"].values() for k in ("cert", "key", "p12") if e.get(k)}
        )
        self._manifest["files"] = files
        _write(self.directory / self.MANIFEST, (json.dumps(self._manifest, indent=2, sort_keys=False) + "\n").encode())


def _existing_pki_files(directory: Path) -> list[Path]:
    known = [DevPki.MANIFEST, DevPki.ROOT_CERT, DevPki.ROOT_KEY, DevPki.ISSUING_CERT, DevPki.INDEX, DevPki.CRL]
    return [directory / name for name in known if (directory / name).exists()]


def _remove_previous(directory: Path) -> None:
    """With ``force``: delete the files an earlier PKI listed (and only those)."""
    try:
        previous = json.loads((directory / DevPki.MANIFEST).read_text(encoding="utf-8"))
        listed = previous.get("files", []) if isinstance(previous, dict) else []
    except (OSError, ValueError):
        listed = []
    for rel in [
        *listed,
        DevPki.ROOT_CERT,
        DevPki.ROOT_KEY,
        DevPki.ISSUING_CERT,
        DevPki.ISSUING_KEY,
        DevPki.OCSP_CERT,
        DevPki.OCSP_KEY,
    ]:
        target = (directory / rel).resolve()
        if target.is_relative_to(directory.resolve()) and target.is_file():
            target.unlink()


def init_dev_pki(
    directory: str | os.PathLike[str],
    parties: Sequence[str] = DEFAULT_PARTIES,
    *,
    key_kind: str = "rsa2048",
    ocsp_url: str | None = None,
    crl_url: str | None = None,
    p12_password: bytes = b"changeit",
    force: bool = False,
) -> DevPki:
    """Create a development PKI in ``directory`` (see the module docstring for the layout).

    Root CA -> issuing CA -> {OCSP responder, one signing certificate per party}.
    ``ocsp_url``/``crl_url`` go into the end-entity certificates (AIA / CRL DP).
    Refuses (CONFIG_INVALID naming the directory) to overwrite an existing PKI
    unless ``force`` is set, in which case the files of the old one are deleted.
    """
    path = Path(directory)
    names = list(parties)
    if not names:
        raise ConfigError("at least one party is required", field="parties")
    if len(set(names)) != len(names):
        raise ConfigError(f"duplicate party names in {names}", field="parties")
    for name in names:
        if not _NAME_RE.match(name):
            raise ConfigError(f"invalid party name {name!r}: use letters, digits, '.', '_' and '-'", field="parties")
    if key_kind not in KEY_KINDS:
        raise ConfigError(f"unknown key kind {key_kind!r}{_did_you_mean(key_kind, KEY_KINDS)}", field="key_kind")
    existing = _existing_pki_files(path)
    if existing:
        if not force:
            raise ConfigError(
                f"{path} already holds a development PKI ({existing[0].name}); pass force=True (--force) to replace it",
                field=str(path),
            )
        _remove_previous(path)
    path.mkdir(parents=True, exist_ok=True)

    pki = DevPki(
        path,
        {
            "format": _MANIFEST_FORMAT,
            "created": _now().isoformat(),
            "key_kind": key_kind,
            "ocsp_url": ocsp_url,
            "crl_url": crl_url,
            "crl_number": 0,
            "parties": names,
            "certificates": {},
            "files": [],
        },
    )
    root_key = generate_key(key_kind)
    root = issue_certificate(
        None,
        root_key,
        ROOT_CA_NAME,
        root_key.public_key(),
        is_ca=True,
        path_length=1,
        not_after=_now() + _ROOT_VALIDITY,
    )
    _write(path / DevPki.ROOT_CERT, _cert_pem(root))
    _write(path / DevPki.ROOT_KEY, _key_pem(root_key), private=True)
    pki._record("root-ca", "root", root, {"cert": DevPki.ROOT_CERT, "key": DevPki.ROOT_KEY})

    ca_key = generate_key(key_kind)
    ca = issue_certificate(root, root_key, ISSUING_CA_NAME, ca_key.public_key(), is_ca=True, path_length=0)
    _write(path / DevPki.ISSUING_CERT, _cert_pem(ca))
    _write(path / DevPki.ISSUING_KEY, _key_pem(ca_key), private=True)
    _write(path / DevPki.CHAIN, _cert_pem(ca) + _cert_pem(root))
    pki._record("issuing-ca", "issuing", ca, {"cert": DevPki.ISSUING_CERT, "key": DevPki.ISSUING_KEY})
    _write(path / DevPki.ROOT_CRL, make_crl(root, root_key, crl_number=1).public_bytes(serialization.Encoding.PEM))

    ocsp_key = generate_key(key_kind)
    responder = issue_certificate(
        ca,
        ca_key,
        OCSP_RESPONDER_NAME,
        ocsp_key.public_key(),
        key_usage={"digital_signature"},
        extended_key_usage=["ocsp_signing"],
        ocsp_no_check=True,
    )
    _write(path / DevPki.OCSP_CERT, _cert_pem(responder))
    _write(path / DevPki.OCSP_KEY, _key_pem(ocsp_key), private=True)
    pki._record("ocsp", "ocsp", responder, {"cert": DevPki.OCSP_CERT, "key": DevPki.OCSP_KEY})

    pki._cache.update(
        root_cert=root, root_key=root_key, issuing_cert=ca, issuing_key=ca_key, ocsp_cert=responder, ocsp_key=ocsp_key
    )
    for name in names:
        key = generate_key(key_kind)
        cert = issue_certificate(ca, ca_key, name, key.public_key(), ocsp_url=ocsp_url, crl_url=crl_url)
        pki._store_end_entity(name, cert, key, role="party", p12_password=p12_password)
    pki._write_revocation_state()
    pki._save()
    return pki
