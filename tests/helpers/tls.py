"""TLS on 127.0.0.1 for tests: server and client certificates issued by the development PKI's issuing CA (with
the subjectAltName ``127.0.0.1`` a TLS client checks), and the server-side ``ssl.SSLContext`` of a partner."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from signing.dev.pki import DevPki, generate_key


@dataclass(frozen=True)
class TlsFiles:
    """A certificate (followed by the issuing CA, as a TLS peer sends it) and its key, as PEM files."""

    certificate: Path
    key: Path
    cert: x509.Certificate


def issue_tls(pki: DevPki, directory: Path, name: str, *, server: bool) -> TlsFiles:
    """A certificate for ``name`` from ``pki``'s issuing CA: ``server`` for 127.0.0.1 (serverAuth), else a
    client certificate (clientAuth)."""
    key = generate_key("p256")
    now = dt.datetime.now(dt.UTC)
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(pki.issuing_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(pki.issuing_cert.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
    cert = builder.sign(pki.issuing_key, hashes.SHA256())  # type: ignore[arg-type]
    directory.mkdir(parents=True, exist_ok=True)
    certificate = directory / f"{name}.pem"
    certificate.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM) + pki.issuing_cert.public_bytes(serialization.Encoding.PEM)
    )
    key_path = directory / f"{name}.key.pem"
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return TlsFiles(certificate, key_path, cert)


def server_context(
    files: TlsFiles, *, client_ca: Path | None = None, maximum: ssl.TLSVersion | None = None
) -> ssl.SSLContext:
    """A server's context presenting ``files``; ``client_ca``: require a client certificate chaining to it;
    ``maximum``: the newest TLS version the server speaks."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(files.certificate, files.key)
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(client_ca)
    if maximum is not None:
        context.maximum_version = maximum
    return context
