"""Builds the security ports from the configuration: trust stores, verify policies, the key ring.

* :func:`trust_store`: ``[parties.X.trust]`` / ``[destinations.X.trust]`` → ``signing.trust.TrustStore``
  (anchors with the ``signers`` who may sign through them, or ``any_signer``; pinned certificates with
  acceptance windows; intermediates; revocation: OCSP then CRLs, hard-fail unless ``soft_fail``);
* :func:`signer_identity`: ``signers`` → ``signing.identity.SignerIdentity``;
* :func:`verify_policy`: ``[parties.X.verify]`` → ``signing.policy.VerifyPolicy``;
* :func:`build_verifier`, :func:`build_signer`, :func:`build_receipts`: the broker's and the delivery
  workers' ports for the switches ``gateway.verification`` and ``gateway.signing``;
* :func:`certificate_inventory`: every certificate the configuration names, with its party and role (the
  ``nswgw_certificate_expiry_timestamp_seconds`` gauges).

Every file is loaded here, at start; a file that cannot be read or decoded is ``CONFIG_INVALID`` naming
the configuration key (``parties.MOIT.trust.anchors[0]``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509

from gateway.config import (
    Config,
    DestinationSettings,
    KeySettings,
    SignerSettings,
    SigningProfileSettings,
    TrustSettings,
    VerifySettings,
)
from gateway.errors import ConfigError, NswError
from gateway.ports import (
    Adapter,
    AdapterState,
    DeliverySigner,
    DocumentSigner,
    DocumentVerifier,
    MessageIdReceiptVerifier,
    NullSigner,
    NullVerifier,
    ReceiptVerifier,
    SignedReceiptVerifier,
    Verifier,
    WellFormedVerifier,
    resolve_adapter,
)
from signing.identity import SignerIdentity, SignerRule, attribute_oid
from signing.keys import KeyRing, SoftwareSigner, load_certificates
from signing.keys import Signer as KeySigner
from signing.policy import SigningProfile, VerifyPolicy
from signing.revocation import (
    CrlChecker,
    FirstAvailable,
    NoRevocationCheck,
    OcspChecker,
    RevocationChecker,
    SoftFail,
)
from signing.trust import PinnedCertificate, TrustStore

__all__ = [
    "trust_store",
    "signer_identity",
    "signer_rule",
    "verify_policy",
    "signing_profile",
    "key_ring",
    "pkcs11_signer",
    "build_verifier",
    "build_signer",
    "build_receipts",
    "build_adapter",
    "ConfiguredCertificate",
    "certificate_inventory",
]


@contextmanager
def _loading(field: str) -> Iterator[None]:
    """A coded error raised while loading a configured file becomes ``CONFIG_INVALID`` naming ``field``."""
    try:
        yield
    except NswError as exc:
        raise ConfigError(exc.message, field=field) from exc


def signer_rule(settings: SignerSettings) -> SignerRule:
    return SignerRule(
        dn=x509.Name.from_rfc4514_string(settings.dn) if settings.dn else None,
        subject=tuple((attribute_oid(k), v) for k, v in settings.subject.items()),
        dns=settings.dns,
        email=settings.email,
        uri=settings.uri,
        directory_name=tuple(x509.Name.from_rfc4514_string(n) for n in settings.directory_name),
        certificate_sha256=settings.certificate_sha256,
        public_key_sha256=settings.public_key_sha256,
    )


def signer_identity(settings: TrustSettings) -> SignerIdentity | None:
    """The certificates that may sign through the anchors of ``settings`` (``None``: no rule written)."""
    return SignerIdentity(tuple(signer_rule(s) for s in settings.signers)) if settings.signers else None


def trust_store(name: str, settings: TrustSettings, *, field: str) -> TrustStore:
    from signing.revocation import load_crl

    def certs(key: str, paths: tuple[str, ...]) -> list[x509.Certificate]:
        found: list[x509.Certificate] = []
        for i, path in enumerate(paths):
            with _loading(f"{field}.{key}[{i}]"):
                found.extend(load_certificates(path))
        return found

    pinned: list[PinnedCertificate] = []
    for i, pin in enumerate(settings.pinned):
        with _loading(f"{field}.pinned[{i}].certificate"):
            certificates = load_certificates(pin.certificate)
        pinned.extend(
            PinnedCertificate(cert, accept_from=pin.accept_from, accept_until=pin.accept_until) for cert in certificates
        )
    checkers: list[RevocationChecker] = []
    if settings.ocsp:
        with _loading(f"{field}.ocsp_responder"):
            checkers.append(OcspChecker(responder_url=settings.ocsp_responder))
    if settings.crls or settings.fetch_crls:
        crls = []
        for i, path in enumerate(settings.crls):
            with _loading(f"{field}.crls[{i}]"):
                crls.append(load_crl(path))
        checkers.append(CrlChecker(crls, fetch_distribution_points=settings.fetch_crls))
    revocation: RevocationChecker = (
        NoRevocationCheck() if not checkers else (checkers[0] if len(checkers) == 1 else FirstAvailable(checkers))
    )
    if settings.soft_fail and checkers:
        revocation = SoftFail(revocation)
    return TrustStore(
        party=name,
        anchors=tuple(certs("anchors", settings.anchors)),
        pinned=tuple(pinned),
        intermediates=tuple(certs("intermediates", settings.intermediates)),
        revocation=revocation,
        signers=signer_identity(settings),
        any_signer=settings.any_signer,
    )


def verify_policy(settings: VerifySettings) -> VerifyPolicy:
    if settings.profile == "vnsw-legacy":
        return VerifyPolicy.vnsw_legacy(allow_sha1=settings.allow_sha1)
    return VerifyPolicy(allow_sha1=settings.allow_sha1)


def signing_profile(settings: SigningProfileSettings) -> SigningProfile | None:
    if settings.profile == "none":
        return None
    if settings.profile == "vnsw-legacy":
        return SigningProfile.vnsw_legacy(allow_sha1=settings.allow_sha1)
    return SigningProfile(allow_sha1=settings.allow_sha1)


def _password(key: KeySettings, field: str) -> bytes | None:
    if key.password_env is not None:
        value = os.environ.get(key.password_env)
        if value is None:
            raise ConfigError(f"environment variable {key.password_env} is not set", field=f"{field}.password_env")
        return value.encode()
    return key.password.encode() if key.password is not None else None


def pkcs11_signer(key: KeySettings, field: str) -> KeySigner:
    """The signer of a ``pkcs11 = {...}`` key: logged in now, so a missing or wrong PIN fails at start with
    HSM_PIN_MISSING / HSM_PIN_INCORRECT (other token faults KEY_LOAD_FAILED) naming ``field.pkcs11.*``."""
    from signing.pkcs11 import Pkcs11Signer, read_pin

    settings = key.pkcs11
    if settings is None:  # callers check
        raise ConfigError("not a PKCS#11 key", field=f"{field}.pkcs11")
    base = f"{field}.pkcs11"
    pin = read_pin(pin_env=settings.pin_env, pin_file=settings.pin_file, field=base)
    certificate = None
    chain: list[x509.Certificate] = []
    if settings.certificate is not None:
        with _loading(f"{base}.certificate"):
            certs = load_certificates(settings.certificate)
        certificate, chain = certs[0], certs[1:]
    if settings.chain is not None:
        with _loading(f"{base}.chain"):
            chain = load_certificates(settings.chain)
    return Pkcs11Signer(
        settings.module,
        settings.token,
        pin=pin,
        key_label=settings.key_label,
        key_id=bytes.fromhex(settings.key_id) if settings.key_id is not None else None,
        certificate=certificate,
        chain=chain,
        field=base,
        pin_field=f"{base}.pin_env" if settings.pin_env is not None else f"{base}.pin_file",
    )


def key_ring(config: Config) -> KeySigner:
    """The gateway's signer: one key, or a ``KeyRing`` when several keys rotate."""
    signers: list[tuple[KeySigner, datetime]] = []
    for i, key in enumerate(config.signing.keys):
        field = f"signing.keys[{i}]"
        password = _password(key, field)
        signer: KeySigner
        if key.pkcs11 is not None:
            signer = pkcs11_signer(key, field)
        elif key.pkcs12 is not None:
            with _loading(f"{field}.pkcs12"):
                signer = SoftwareSigner.from_pkcs12(key.pkcs12, password)
        else:
            if key.key is None or key.certificate is None:  # enforced by KeySettings
                raise ConfigError("a PEM key needs both key and certificate", field=f"{field}.key")
            with _loading(f"{field}.key"):
                signer = SoftwareSigner.from_pem(key.key, key.certificate, password=password, chain_path=key.chain)
        signers.append((signer, key.active_from or datetime(1970, 1, 1, tzinfo=UTC)))
    if not signers:
        raise ConfigError("no signing key configured", field="signing.keys")
    return signers[0][0] if len(signers) == 1 else KeyRing(signers)


def build_verifier(config: Config) -> Verifier:
    mode = config.gateway.verification
    if mode == "off":
        return NullVerifier()
    if mode == "well-formed":
        return WellFormedVerifier(config.gateway.parser_limits)
    parties = {}
    for name, party in config.parties.items():
        assert party.trust is not None  # enforced by Config
        parties[name] = (trust_store(name, party.trust, field=f"parties.{name}.trust"), verify_policy(party.verify))
    return DocumentVerifier(parties, limits=config.gateway.parser_limits)


def build_signer(config: Config) -> DeliverySigner:
    if config.gateway.signing == "off":
        return NullSigner()
    return DocumentSigner(key_ring(config), {n: signing_profile(d.signing) for n, d in config.destinations.items()})


def build_receipts(config: Config) -> ReceiptVerifier:
    trust = {
        name: (trust_store(name, d.trust, field=f"destinations.{name}.trust"), verify_policy(d.receipt_verify))
        for name, d in config.destinations.items()
        if d.receipt == "signed" and d.trust is not None
    }
    return SignedReceiptVerifier(trust) if trust else MessageIdReceiptVerifier()


def build_adapter(name: str, settings: DestinationSettings, *, state: AdapterState | None = None) -> Adapter:
    """The outbound adapter of destination ``name``, found by its alias in the adapter registry, built with
    its validated options and ``state``, its durable records (the gateway hands in the store's namespace
    ``destination:NAME``; None: in memory). A ``CONFIG_INVALID`` of the adapter (a key file that does not load,
    a password variable that is not set) names the option under the destination
    (``destinations.TH.options.signer``)."""
    cls = resolve_adapter(settings.adapter, field=f"destinations.{name}.adapter")
    try:
        return cls(settings.url, timeout=settings.timeout, options=settings.options, state=state)
    except ConfigError as exc:
        if exc.field is not None and (exc.field in ("options", "url") or exc.field.startswith("options.")):
            exc.field = f"destinations.{name}.{exc.field}"
        raise


@dataclass(frozen=True)
class ConfiguredCertificate:
    """A certificate the configuration names, for the expiry gauges of ``/metrics``."""

    party: str
    """The party or destination whose trust names it; ``gateway`` for the gateway's own keys and TLS."""
    role: str
    """``signing`` (a key of ``[signing]``), ``tls`` / ``client_ca`` (``[gateway.tls]``), ``anchor``, ``pinned``,
    ``intermediate`` (a party's trust) or ``receipt_anchor``, ``receipt_pinned``, ``receipt_intermediate`` (a
    destination's receipt trust)."""
    field: str
    """The configuration key that names the file (``parties.MOIT.trust.anchors[0]``)."""
    certificate: x509.Certificate

    @property
    def serial(self) -> str:
        return format(self.certificate.serial_number, "x")

    @property
    def not_after(self) -> float:
        return self.certificate.not_valid_after_utc.timestamp()


def certificate_inventory(config: Config) -> list[ConfiguredCertificate]:
    """Every certificate the configuration names (the end-entity certificate of each signing key and of the TLS
    server; every certificate of each trust file). A file that does not load is ``CONFIG_INVALID`` naming it."""
    found: list[ConfiguredCertificate] = []

    def add(party: str, role: str, field: str, path: str | os.PathLike[str] | None, *, first: bool = False) -> None:
        with _loading(field):
            certificates = load_certificates(path)
        found.extend(ConfiguredCertificate(party, role, field, c) for c in certificates[: 1 if first else None])

    for i, key in enumerate(config.signing.keys):
        field = f"signing.keys[{i}]"
        if key.pkcs11 is not None:
            if key.pkcs11.certificate is not None:
                add("gateway", "signing", f"{field}.pkcs11.certificate", key.pkcs11.certificate, first=True)
            else:
                token_signer = pkcs11_signer(key, field)
                found.append(ConfiguredCertificate("gateway", "signing", f"{field}.pkcs11", token_signer.certificate))
        elif key.pkcs12 is not None:
            with _loading(f"{field}.pkcs12"):
                signer = SoftwareSigner.from_pkcs12(key.pkcs12, _password(key, field))
            found.append(ConfiguredCertificate("gateway", "signing", f"{field}.pkcs12", signer.certificate))
        else:
            add("gateway", "signing", f"{field}.certificate", key.certificate, first=True)
    tls = config.gateway.tls
    if tls is not None:
        add("gateway", "tls", "gateway.tls.certificate", tls.certificate, first=True)
        add("gateway", "client_ca", "gateway.tls.client_ca", tls.client_ca)

    def trust(name: str, settings: TrustSettings | None, base: str, prefix: str) -> None:
        if settings is None:
            return
        for i, path in enumerate(settings.anchors):
            add(name, f"{prefix}anchor", f"{base}.anchors[{i}]", path)
        for i, pin in enumerate(settings.pinned):
            add(name, f"{prefix}pinned", f"{base}.pinned[{i}].certificate", pin.certificate)
        for i, path in enumerate(settings.intermediates):
            add(name, f"{prefix}intermediate", f"{base}.intermediates[{i}]", path)

    for name, party in config.parties.items():
        trust(name, party.trust, f"parties.{name}.trust", "")
    for name, dest in config.destinations.items():
        trust(name, dest.trust, f"destinations.{name}.trust", "receipt_")
    return found
