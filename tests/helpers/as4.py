"""Shared pieces of the AS4 tests: two parties of the development PKI (and the ``gateway`` and ``partner``
fixtures, exported to tests/adapters by its conftest.py), PModes, a real aiohttp server."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from cryptography import x509

from adapters.as4 import (
    As4Adapter,
    As4Partner,
    As4Receiver,
    PartyConfig,
    PMode,
    ReceptionAwareness,
    SecurityConfig,
)
from gateway.ports import AdapterState
from signing.dev.pki import DevPki
from signing.identity import SignerIdentity
from signing.keys import SoftwareSigner
from signing.trust import TrustStore
from signing.xenc import SoftwareDecrypter

GATEWAY = "VN-NSW"
PARTNER = "TH-ASW"
SERVICE = "urn:asean:asw:services:eco"
ACTION = "eco.form_d"


@dataclass(frozen=True)
class Side:
    """One AS4 party: its id, its keys, and the trust others place in it."""

    party_id: str
    certificate: x509.Certificate
    signer: SoftwareSigner
    decrypter: SoftwareDecrypter
    trust: TrustStore
    """A trust store accepting this party's signatures: certificates of the dev PKI's root and issuing CA whose
    subject CN is the party's name."""


def side(pki: DevPki, name: str, party_id: str) -> Side:
    issued = pki.party(name)
    return Side(
        party_id=party_id,
        certificate=issued.cert,
        signer=SoftwareSigner(issued.key, issued.cert, [pki.issuing_cert]),  # type: ignore[arg-type]
        decrypter=SoftwareDecrypter(issued.key, issued.cert),  # type: ignore[arg-type]
        trust=TrustStore(
            party_id,
            anchors=(pki.root_cert,),
            intermediates=(pki.issuing_cert,),
            signers=SignerIdentity.subject(CN=name),
        ),
    )


@pytest.fixture(scope="module")
def gateway(dev_pki: DevPki) -> Side:
    """The gateway's side: party :data:`GATEWAY`, the dev PKI's ``nsw-gateway`` keys."""
    return side(dev_pki, "nsw-gateway", GATEWAY)


@pytest.fixture(scope="module")
def partner(dev_pki: DevPki) -> Side:
    """The partner's side: party :data:`PARTNER`, the dev PKI's ``th-asw`` keys."""
    return side(dev_pki, "th-asw", PARTNER)


@pytest.fixture
def p12_password(monkeypatch: pytest.MonkeyPatch) -> None:
    """The password of the dev PKI's PKCS#12 files in ``AS4_TEST_P12_PASSWORD``, where AS4 options from TOML
    (``password_env``) read it."""
    monkeypatch.setenv("AS4_TEST_P12_PASSWORD", "changeit")


def pmode(us: str, them: str, *, endpoint: str | None = None, attempts: int = 3, **security: object) -> PMode:
    """The agreement ``us`` -> ``them`` (no real waiting: the tests inject the sleep)."""
    return PMode(
        id=f"{us}-{them}-eco",
        agreement="urn:asean:asw:agreement:eco",
        initiator=PartyConfig(party_id=us, party_id_type="urn:oasis:names:tc:ebcore:partyid-type:unregistered"),
        responder=PartyConfig(party_id=them, party_id_type="urn:oasis:names:tc:ebcore:partyid-type:unregistered"),
        endpoint=endpoint,
        service=SERVICE,
        action=ACTION,
        reception_awareness=ReceptionAwareness(attempts=attempts, initial_wait=0.01, max_wait=0.05),
        security=SecurityConfig(**security),  # type: ignore[arg-type]
    )


def receiver_for(us: Side, them: Side, **kwargs: object) -> As4Receiver:
    """``us`` receiving from ``them`` (the PMode seen from our side: we initiate towards them)."""
    partner = As4Partner(pmode(us.party_id, them.party_id), them.trust, them.certificate)
    return As4Receiver(
        party_id=us.party_id,
        partners={them.party_id: partner},
        signer=us.signer,
        decrypter=us.decrypter,
        **kwargs,  # type: ignore[arg-type]
    )


def sender_to(
    url: str, them: Side, us: Side, *, initiator: str | None = None, state: AdapterState | None = None
) -> As4Adapter:
    """``them``'s adapter delivering to ``us`` at ``url``: signed by ``them``, encrypted for ``us``, under the
    agreement ``initiator`` (default ``them``'s party id) -> ``us`` with one attempt."""
    return As4Adapter(
        url,
        timeout=10,
        options={
            "pmode": pmode(initiator or them.party_id, us.party_id, attempts=1),
            "signer": them.signer,
            "trust": us.trust,
            "encryption_certificate": us.certificate,
        },
        state=state,
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def serve(app: web.Application, path: str = "/as4", *, port: int = 0) -> AsyncIterator[str]:
    """Run ``app`` on 127.0.0.1 (``port``, default a free one) and yield the URL of ``path``; always cleaned up."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        yield f"http://127.0.0.1:{port}{path}"
    finally:
        await runner.cleanup()


class AnswerCutter:
    """A TCP proxy on 127.0.0.1 in front of a real server that, while :attr:`cutting`, loses the answers.

    Requests always reach the server (which processes them and answers); while
    ``cutting`` is true the first bytes of each answer are dropped and both
    connections are cut, so the sender never learns that the partner received
    its message. ``async with AnswerCutter(url) as cutter``; ``cutter.url`` is
    the proxied URL.
    """

    def __init__(self, url: str) -> None:
        from urllib.parse import urlsplit

        target = urlsplit(url)
        self._upstream = (target.hostname or "127.0.0.1", int(target.port or 80))
        self._path = target.path
        self.cutting = True
        self.answers_dropped = 0
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.url = ""

    async def __aenter__(self) -> AnswerCutter:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}{self._path}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        up_reader, up_writer = await asyncio.open_connection(*self._upstream)

        async def requests() -> None:
            while data := await reader.read(65536):
                up_writer.write(data)
                await up_writer.drain()
            up_writer.close()

        pump = asyncio.create_task(requests())
        try:
            while data := await up_reader.read(65536):
                if self.cutting:
                    self.answers_dropped += 1
                    break
                writer.write(data)
                await writer.drain()
        finally:
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)
            for w in (writer, up_writer):
                w.close()
                with contextlib.suppress(OSError):
                    await w.wait_closed()
            self._tasks.discard(task)


def th_destination(dev_pki: DevPki, **reception_awareness: object) -> dict[str, Any]:
    """The AS4 options (plain TOML values) of the gateway's destination TH-ASW: the gateway's PKCS#12 key (its
    password in ``AS4_TEST_P12_PASSWORD``), trust in the dev PKI's ``th-asw`` certificate, and the Form D
    e-C/O agreement :data:`GATEWAY` -> :data:`PARTNER` with no real waiting (``reception_awareness`` adds)."""
    pki = dev_pki.directory
    unregistered = "urn:oasis:names:tc:ebcore:partyid-type:unregistered"
    return {
        "signer": {"p12": str(dev_pki.party("nsw-gateway").p12_path), "password_env": "AS4_TEST_P12_PASSWORD"},
        "trust": {
            "anchors": [str(pki / "root-ca.pem")],
            "intermediates": [str(pki / "issuing-ca.pem")],
            "signers": [{"subject": {"CN": "th-asw"}}],
        },
        "encryption_certificate": str(dev_pki.party("th-asw").cert_path),
        "pmode": {
            "id": f"{GATEWAY}-{PARTNER}-eco",
            "agreement": "urn:asean:asw:agreement:eco",
            "service": SERVICE,
            "action": ACTION,
            "initiator": {"party_id": GATEWAY, "party_id_type": unregistered},
            "responder": {"party_id": PARTNER, "party_id_type": unregistered},
            "reception_awareness": {"initial_wait": 0.01, "max_wait": 0.05, **reception_awareness},
        },
    }


def partner_options(
    dev_pki: DevPki,
    party: str,
    *,
    party_id: str = PARTNER,
    cert_name: str = "th-asw",
    trust: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One ``partners`` entry of the AS4 endpoint's options (plain TOML values): the agreement with
    ``party_id`` for Form D e-C/O, trusting the dev PKI's CA for the certificate issued as ``cert_name`` only
    (or ``trust``)."""
    pki = dev_pki.directory
    return {
        "party": party,
        "pmode": {
            "id": f"VN-NSW-{party_id}-eco",
            "service": SERVICE,
            "action": ACTION,
            "initiator": {"party_id": GATEWAY},
            "responder": {"party_id": party_id},
        },
        "trust": trust
        or {
            "anchors": [str(pki / "root-ca.pem")],
            "intermediates": [str(pki / "issuing-ca.pem")],
            "signers": [{"dn": dev_pki.party(cert_name).cert.subject.rfc4514_string()}],
        },
        "document_types": {ACTION: "eco.form_d"},
    }
