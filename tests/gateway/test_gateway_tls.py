"""The API over HTTPS (``[gateway.tls]``) with parties authenticated by TLS client certificate
(``parties.NAME.client_certificates``): a mapped certificate stands for the party's bearer token, an unmapped one
is refused, a token and a certificate of different parties are refused, and ``client_certificates =
"required"`` refuses a connection without one in the handshake.

A real gateway on 127.0.0.1; certificates issued by the development PKI's issuing CA.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.api import Gateway
from gateway.errors import ConfigError
from helpers.gateway import TOKENS, Receiver, doc, make_config
from helpers.tls import TlsFiles, issue_tls
from signing.dev.pki import DevPki


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    th = await Receiver().start()
    try:
        yield th
    finally:
        await th.stop()


@pytest.fixture
def certs(dev_pki: DevPki, tmp_path: Path) -> dict[str, TlsFiles]:
    directory = tmp_path / "tls"
    return {
        "server": issue_tls(dev_pki, directory, "nsw-gateway-api", server=True),
        "moit": issue_tls(dev_pki, directory, "moit-client", server=False),
        "stranger": issue_tls(dev_pki, directory, "stranger-client", server=False),
    }


def _config(tmp_path: Path, dev_pki: DevPki, certs: dict[str, TlsFiles], url: str, **tls: Any) -> Any:
    server = certs["server"]
    settings = {
        "certificate": str(server.certificate),
        "key": str(server.key),
        "client_ca": str(dev_pki.root_cert_path),
    }
    moit = certs["moit"].cert.subject.rfc4514_string()
    return make_config(
        tmp_path,
        {"TH": url},
        gateway={"tls": {**settings, **tls}},
        parties={"MOIT": {"client_certificates": [moit]}},
    )


def _client(dev_pki: DevPki, files: TlsFiles | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(dev_pki.root_cert_path))
    if files is not None:
        context.load_cert_chain(files.certificate, files.key)
    return context


async def _post(gw: Gateway, context: ssl.SSLContext, message_id: str, **headers: str) -> tuple[int, Any]:
    h = {"X-Message-Id": message_id, "X-Document-Type": "eco.form_d", "Content-Type": "application/xml", **headers}
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{gw.url}/v1/messages", data=doc(1), headers=h, ssl=context) as r:
            return r.status, await r.json()


async def test_a_mapped_client_certificate_authenticates_its_party(
    tmp_path: Path, dev_pki: DevPki, certs: dict[str, TlsFiles], receiver: Receiver
) -> None:
    async with Gateway(_config(tmp_path, dev_pki, certs, receiver.url)) as gw:
        assert gw.url.startswith("https://127.0.0.1:")
        status, body = await _post(gw, _client(dev_pki, certs["moit"]), "CERT-1")
        assert (status, body["sender"]) == (202, "MOIT")
        status, body = await _post(gw, _client(dev_pki, certs["stranger"]), "CERT-2")
        assert (status, body["error"]["code"], body["error"]["field"]) == (401, "AUTH_REQUIRED", "certificate")
        status, body = await _post(gw, _client(dev_pki, None), "CERT-3")
        assert (status, body["error"]["code"]) == (401, "AUTH_REQUIRED")


async def test_a_bearer_token_still_authenticates_over_https(
    tmp_path: Path, dev_pki: DevPki, certs: dict[str, TlsFiles], receiver: Receiver
) -> None:
    async with Gateway(_config(tmp_path, dev_pki, certs, receiver.url)) as gw:
        bearer = {"Authorization": f"Bearer {TOKENS['MOIT']}"}
        status, body = await _post(gw, _client(dev_pki, None), "TOKEN-1", **bearer)
        assert (status, body["sender"]) == (202, "MOIT")
        status, body = await _post(gw, _client(dev_pki, certs["stranger"]), "TOKEN-2", **bearer)
        assert (status, body["sender"]) == (202, "MOIT")


async def test_a_token_and_a_certificate_of_different_parties_are_refused(
    tmp_path: Path, dev_pki: DevPki, certs: dict[str, TlsFiles], receiver: Receiver
) -> None:
    async with Gateway(_config(tmp_path, dev_pki, certs, receiver.url)) as gw:
        mard = {"Authorization": f"Bearer {TOKENS['MARD']}"}
        status, body = await _post(gw, _client(dev_pki, certs["moit"]), "MIX-1", **mard)
    assert (status, body["error"]["code"]) == (403, "AUTH_FORBIDDEN")


async def test_required_client_certificates_refuse_a_connection_without_one(
    tmp_path: Path, dev_pki: DevPki, certs: dict[str, TlsFiles], receiver: Receiver
) -> None:
    config = _config(tmp_path, dev_pki, certs, receiver.url, client_certificates="required")
    async with Gateway(config) as gw:
        with pytest.raises(aiohttp.ClientError):
            await _post(gw, _client(dev_pki, None), "REQ-1", Authorization=f"Bearer {TOKENS['MOIT']}")
        status, _ = await _post(gw, _client(dev_pki, certs["moit"]), "REQ-2")
    assert status == 202


def test_client_certificates_without_a_client_ca_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        make_config(
            tmp_path,
            {"TH": "http://127.0.0.1:9/inbox"},
            parties={"MOIT": {"client_certificates": ["CN=moit-client,O=NSW,C=VN"]}},
        )
    assert (caught.value.code, caught.value.field) == ("CONFIG_INVALID", "parties.MOIT.client_certificates")


def test_a_subject_that_is_not_rfc4514_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        make_config(tmp_path, {}, parties={"MOIT": {"client_certificates": ["moit client"]}})
    assert (caught.value.code, caught.value.field) == ("CONFIG_INVALID", "parties.MOIT.client_certificates[0]")


async def test_a_server_certificate_that_does_not_load_names_its_key(
    tmp_path: Path, dev_pki: DevPki, certs: dict[str, TlsFiles]
) -> None:
    config = _config(tmp_path, dev_pki, certs, "http://127.0.0.1:9/inbox", certificate=str(tmp_path / "none.pem"))
    with pytest.raises(ConfigError) as caught:
        async with Gateway(config):
            pass
    assert (caught.value.code, caught.value.field) == ("CONFIG_INVALID", "gateway.tls.certificate")


async def test_a_client_that_never_completes_the_tls_handshake_is_disconnected_after_the_header_timeout(
    tmp_path: Path, dev_pki: DevPki, certs: dict[str, TlsFiles], receiver: Receiver
) -> None:
    config = _config(tmp_path, dev_pki, certs, receiver.url)
    config = config.model_copy(update={"gateway": config.gateway.model_copy(update={"header_timeout": 0.3})})
    async with Gateway(config) as gw:
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
        try:
            writer.write(b"\x16\x03\x01")  # the first bytes of a ClientHello, and then nothing
            with contextlib.suppress(ConnectionResetError):
                assert await asyncio.wait_for(reader.read(), 15.0) == b""
        finally:
            writer.close()
