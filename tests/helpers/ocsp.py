"""A real OpenSSL OCSP responder (and CRL server) on 127.0.0.1, for tests.

OpenSSL 3.0's ``openssl ocsp -port`` takes only a port number and listens on
every interface (``*:PORT``), which our tests must not do. So
:class:`OcspResponder` is a small HTTP server bound to 127.0.0.1 that hands
each POSTed request to the real responder, ``openssl ocsp -index index.txt
-rsigner ... -rkey ... -CA issuing-ca.pem -nmin N -reqin REQ -respout RESP``,
and returns its answer. The status logic, the signing and the nonce echo are
OpenSSL's; ``index.txt`` is read afresh for every request, so a
:meth:`DevPki.revoke` is visible at once (no restart).

It also serves ``GET /crl.pem`` and ``GET /root-ca.crl.pem`` (the PKI's current
CRLs) for CRL distribution point tests, and counts requests in
:attr:`OcspResponder.ocsp_requests` / :attr:`OcspResponder.crl_requests`.

Fixtures (import them into a test module to use them)::

    from helpers.ocsp import dev_pki, ocsp_responder  # noqa: F401

* ``dev_pki`` (session): a :class:`signing.dev.pki.DevPki` with RSA-2048 keys and the
  default parties. Treat the parties as read-only; to revoke, ``dev_pki.issue()``
  a certificate under a fresh name first (``key=`` a p256 key keeps it fast).
* ``ocsp_responder`` (session): an :class:`OcspResponder` over ``dev_pki``;
  ``ocsp_responder.url`` is the responder URL.
"""

from __future__ import annotations

import contextlib
import http.server
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from helpers.loopback import reply, serve_in_thread, shut_down
from signing.dev.pki import DevPki, init_dev_pki

__all__ = ["OcspResponder", "dev_pki", "ocsp_responder", "free_loopback_port", "openssl_reply", "OPENSSL"]

OPENSSL = shutil.which("openssl")


def openssl_reply(
    request_der: bytes,
    argv: Callable[[Path, Path], list[str]],
    *,
    names: tuple[str, str],
    lock: contextlib.AbstractContextManager[object] | None = None,
) -> bytes:
    """The response ``openssl`` writes to a DER request: ``request_der`` in a temporary file ``names[0]``,
    ``openssl`` run (holding ``lock``, when given) with ``argv(request, response)``, the bytes of the file
    ``names[1]``; a ``RuntimeError`` with openssl's stderr when it fails or writes nothing."""
    with tempfile.TemporaryDirectory(prefix="openssl-") as tmp:
        req, resp = Path(tmp, names[0]), Path(tmp, names[1])
        req.write_bytes(request_der)
        args = argv(req, resp)
        with lock or contextlib.nullcontext():
            result = subprocess.run([str(OPENSSL), *args], capture_output=True, timeout=30, check=False)
        if result.returncode != 0 or not resp.exists():
            raise RuntimeError(
                f"openssl {args[0]} failed ({result.returncode}): {result.stderr.decode(errors='replace')}"
            )
        return resp.read_bytes()


def free_loopback_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (for "responder down" tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OcspResponder:
    """``openssl ocsp`` over a PKI directory, behind an HTTP server on 127.0.0.1.

    ``rsigner``/``rkey`` default to the PKI's OCSP responder certificate; pass
    others (a party's certificate, another CA's responder, the issuing CA itself)
    to test authorization. ``replay`` makes it answer every request with those
    fixed response bytes instead (e.g. a response produced earlier without a nonce).
    """

    def __init__(
        self,
        pki: DevPki,
        *,
        rsigner: Path | None = None,
        rkey: Path | None = None,
        nmin: int = 5,
        replay: bytes | None = None,
    ) -> None:
        if OPENSSL is None:
            pytest.skip("the openssl command is not installed")
        self.pki = pki
        self.rsigner = Path(rsigner or pki.ocsp_cert_path)
        self.rkey = Path(rkey or pki.ocsp_key_path)
        self.nmin = nmin
        self.replay = replay
        self.ocsp_requests = 0
        self.crl_requests = 0
        self._lock = threading.Lock()
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._server is not None, "responder not started"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def crl_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/crl.pem"

    def answer(self, request_der: bytes) -> bytes:
        """Run ``openssl ocsp`` on one DER request; return the DER response."""
        if self.replay is not None:
            return self.replay
        pki = self.pki
        return openssl_reply(
            request_der,
            lambda req, resp: [
                "ocsp",
                *("-index", str(pki.index_path), "-CA", str(pki.issuing_cert_path)),
                *("-rsigner", str(self.rsigner), "-rkey", str(self.rkey), "-nmin", str(self.nmin)),
                *("-reqin", str(req), "-respout", str(resp)),
            ],
            names=("req.der", "resp.der"),
        )

    def start(self) -> OcspResponder:
        responder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
                pass

            def _reply(self, status: int, body: bytes, content_type: str) -> None:
                reply(self, status, body, content_type)

            def do_POST(self) -> None:
                with responder._lock:
                    responder.ocsp_requests += 1
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                try:
                    answer = responder.answer(body)
                except Exception as exc:  # report to the client, like a broken responder would
                    self._reply(500, str(exc).encode(), "text/plain")
                    return
                self._reply(200, answer, "application/ocsp-response")

            def do_GET(self) -> None:
                files = {"/crl.pem": responder.pki.crl_path, "/root-ca.crl.pem": responder.pki.root_crl_path}
                if self.path not in files:
                    self._reply(404, b"not found", "text/plain")
                    return
                with responder._lock:
                    responder.crl_requests += 1
                self._reply(200, files[self.path].read_bytes(), "application/pkix-crl")

        self._server, self._thread = serve_in_thread(Handler, "ocsp-responder")
        return self

    def stop(self) -> None:
        if self._server is not None:
            shut_down(self._server, self._thread)

    def __enter__(self) -> OcspResponder:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture(scope="session")
def dev_pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    """A development PKI with RSA-2048 keys and the default parties (made once per session)."""
    return init_dev_pki(tmp_path_factory.mktemp("dev-pki"), key_kind="rsa2048")


@pytest.fixture(scope="session")
def ocsp_responder(dev_pki: DevPki) -> Iterator[OcspResponder]:
    """A real ``openssl ocsp`` responder for ``dev_pki`` on 127.0.0.1 (started once per session)."""
    with OcspResponder(dev_pki) as responder:
        yield responder
