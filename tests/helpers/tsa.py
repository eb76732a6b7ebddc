"""A real RFC 3161 timestamping authority on 127.0.0.1, for tests: ``openssl ts -reply`` behind HTTP.

:func:`make_tsa_pki` writes a root CA and a TSA certificate with the critical ``timeStamping`` extended key usage
(OpenSSL itself refuses to sign with a certificate lacking it), plus a certificate without the EKU for negative
tests. :class:`TsaServer` answers each POSTed ``TimeStampReq`` by running ``openssl ts -reply`` on it; ``stop()``
makes it an outage (connections refused) and ``start()`` brings it back on the same port.

Fixtures::

    from helpers.tsa import tsa_pki, tsa_server  # noqa: F401
"""

from __future__ import annotations

import datetime as dt
import http.server
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from helpers.loopback import reply, serve_in_thread, shut_down
from helpers.ocsp import OPENSSL, openssl_reply
from signing.dev.pki import generate_key, issue_certificate

__all__ = ["TsaPki", "TsaServer", "make_tsa_pki", "tsa_pki", "tsa_server", "sign_as_tsa_with_openssl_cms"]


@dataclass(frozen=True)
class TsaPki:
    directory: Path
    root: x509.Certificate
    root_path: Path
    tsa_cert_path: Path
    tsa_key_path: Path
    no_eku_cert_path: Path
    no_eku_key_path: Path
    soft_eku_cert_path: Path
    """timeStamping as a non-critical extended key usage (RFC 3161 requires it critical); key: ``no_eku_key_path``."""


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "NSW test TSA"), x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    )


def _leaf(
    root: x509.Certificate,
    root_key: ec.EllipticCurvePrivateKey,
    cn: str,
    key: ec.EllipticCurvePrivateKey,
    eku: bool,
    critical: bool = True,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(root.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
    )
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=critical)
    return builder.sign(root_key, hashes.SHA256())


def _write(path: Path, cert: x509.Certificate | None = None, key: ec.EllipticCurvePrivateKey | None = None) -> Path:
    if cert is not None:
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    return path


def make_tsa_pki(directory: Path) -> TsaPki:
    """A root CA, a TSA certificate (critical EKU timeStamping) and one without EKU, P-256 keys, in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    root_key = generate_key("p256")
    assert isinstance(root_key, ec.EllipticCurvePrivateKey)
    root = issue_certificate(None, root_key, "NSW test TSA root", root_key.public_key(), is_ca=True)
    tsa_key, bad_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    tsa = _leaf(root, root_key, "NSW test TSA", tsa_key, eku=True)
    bad = _leaf(root, root_key, "NSW test signer without timeStamping", bad_key, eku=False)
    return TsaPki(
        directory=directory,
        root=root,
        root_path=_write(directory / "tsa-root.pem", root),
        tsa_cert_path=_write(directory / "tsa.pem", tsa),
        tsa_key_path=_write(directory / "tsa.key", key=tsa_key),
        no_eku_cert_path=_write(directory / "no-eku.pem", bad),
        no_eku_key_path=_write(directory / "no-eku.key", key=bad_key),
        soft_eku_cert_path=_write(
            directory / "soft-eku.pem",
            _leaf(root, root_key, "NSW test TSA, soft EKU", bad_key, eku=True, critical=False),
        ),
    )


_CONFIG = """\
[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
dir = {dir}
serial = $dir/tsaserial
crypto_device = builtin
signer_cert = {cert}
certs = {root}
signer_key = {key}
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


class TsaServer:
    """``openssl ts -reply`` over :class:`TsaPki`'s TSA certificate, behind an HTTP server on 127.0.0.1."""

    def __init__(self, pki: TsaPki) -> None:
        if OPENSSL is None:
            pytest.fail("the openssl command is not installed (scripts/test installs it)")
        self.pki = pki
        self.requests = 0
        self._port = 0
        self._lock = threading.Lock()
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._config = pki.directory / "tsa.cnf"
        (pki.directory / "tsaserial").write_text("01\n")
        self._config.write_text(
            _CONFIG.format(dir=pki.directory, cert=pki.tsa_cert_path, key=pki.tsa_key_path, root=pki.root_path)
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}/"

    def answer(self, request_der: bytes) -> bytes:
        return openssl_reply(
            request_der,
            lambda req, resp: ["ts", "-reply", "-config", str(self._config), "-queryfile", str(req), "-out", str(resp)],
            names=("req.tsq", "resp.tsr"),
            lock=self._lock,  # the serial file is read and rewritten by each run
        )

    def start(self) -> TsaServer:
        tsa = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                tsa.requests += 1
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                try:
                    answer, status, kind = tsa.answer(body), 200, "application/timestamp-reply"
                except Exception as exc:  # report like a broken TSA would
                    answer, status, kind = str(exc).encode(), 500, "text/plain"
                reply(self, status, answer, kind)

        # the same port again after an outage (HTTPServer sets allow_reuse_address)
        self._server, self._thread = serve_in_thread(Handler, "tsa", self._port)
        self._port = int(self._server.server_address[1])
        return self

    def stop(self) -> None:
        """An outage: the port refuses connections until :meth:`start`."""
        if self._server is not None:
            shut_down(self._server, self._thread)
            self._server = None


def sign_as_tsa_with_openssl_cms(tst_info_der: bytes, cert: Path, key: Path, directory: Path) -> bytes:
    """A token carrying ``tst_info_der``, CMS-signed by ``cert`` with ``openssl cms`` (which, unlike
    ``openssl ts``, signs with any certificate): for tokens from a certificate that is not a TSA's."""
    src, out = directory / "tst.der", directory / "forged.tsr"
    src.write_bytes(tst_info_der)
    subprocess.run(
        [
            str(OPENSSL),
            "cms",
            "-sign",
            "-binary",
            "-nodetach",
            "-in",
            str(src),
            "-signer",
            str(cert),
            "-inkey",
            str(key),
            "-md",
            "sha256",
            "-econtent_type",
            "1.2.840.113549.1.9.16.1.4",
            "-outform",
            "DER",
            "-out",
            str(out),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return out.read_bytes()


@pytest.fixture(scope="session")
def tsa_pki(tmp_path_factory: pytest.TempPathFactory) -> TsaPki:
    return make_tsa_pki(tmp_path_factory.mktemp("tsa-pki"))


@pytest.fixture
def tsa_server(tsa_pki: TsaPki) -> Iterator[TsaServer]:
    server = TsaServer(tsa_pki).start()
    try:
        yield server
    finally:
        server.stop()
