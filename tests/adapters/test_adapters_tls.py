"""Outbound adapters over TLS (``[destinations.NAME.options.tls]``: ``http``, ``as4``, ``vnsw-soap``): the partner's server
certificate is checked against the destination's CA bundle, the gateway presents its client certificate, and a
partner below the minimum TLS version is refused; a TLS file that does not load is a configuration error naming
its option.

Real TLS partners on 127.0.0.1 with certificates issued by the development PKI's issuing CA.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from adapters.as4 import As4Adapter
from adapters.http import HttpAdapter
from adapters.vnsw_soap import VnswSoapAdapter
from gateway.errors import ConfigError, NswError
from gateway.ports import OutboundMessage
from gateway.security import build_adapter
from helpers.adapters import SpyneMinistry, vnsw_envelope
from helpers.as4 import GATEWAY, PARTNER, pmode, receiver_for, side
from helpers.gateway import make_config
from helpers.tls import TlsFiles, issue_tls, server_context
from signing.dev.pki import DevPki


@pytest.fixture
def partner_tls(dev_pki: DevPki, tmp_path: Path) -> TlsFiles:
    return issue_tls(dev_pki, tmp_path / "tls", "partner.example", server=True)


@pytest.fixture
def gateway_tls(dev_pki: DevPki, tmp_path: Path) -> TlsFiles:
    return issue_tls(dev_pki, tmp_path / "tls", "nsw-gateway-client", server=False)


@asynccontextmanager
async def tls_site(app: web.Application, context: ssl.SSLContext, path: str) -> AsyncIterator[str]:
    """``app`` served over TLS on 127.0.0.1; the URL of ``path``."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    try:
        yield f"https://127.0.0.1:{runner.addresses[0][1]}{path}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def partner(context: ssl.SSLContext, seen: list[Any]) -> AsyncIterator[str]:
    """A TLS partner on 127.0.0.1 acknowledging every POST; ``seen`` gets the client certificate of each."""

    async def inbox(request: web.Request) -> web.Response:
        await request.read()
        seen.append(request.transport.get_extra_info("peercert") if request.transport else None)
        return web.json_response({"message_id": request.headers["X-Message-Id"]})

    app = web.Application()
    app.router.add_post("/inbox", inbox)
    async with tls_site(app, context, "/inbox") as url:
        yield url


def _message(n: int = 1) -> OutboundMessage:
    return OutboundMessage(
        message_id=f"TLS-{n}", payload=b"<Doc/>", sender="MOIT", document_type="eco.form_d", conversation="C"
    )


async def _deliver(url: str, tls: dict[str, Any]) -> str | None:
    async with HttpAdapter(url, timeout=5.0, options={"tls": tls}) as adapter:
        assert isinstance(adapter, HttpAdapter)
        return (await adapter.deliver(_message())).message_id


async def _refused(url: str, tls: dict[str, Any]) -> str:
    with pytest.raises(NswError) as caught:
        await _deliver(url, tls)
    return caught.value.code


async def test_the_partner_is_verified_against_the_destinations_ca_bundle(
    dev_pki: DevPki, partner_tls: TlsFiles
) -> None:
    seen: list[Any] = []
    async with partner(server_context(partner_tls), seen) as url:
        assert await _deliver(url, {"ca_bundle": str(dev_pki.root_cert_path)}) == "TLS-1"
    assert len(seen) == 1


async def test_a_partner_certificate_outside_the_trusted_cas_is_partner_unavailable(partner_tls: TlsFiles) -> None:
    async with partner(server_context(partner_tls), []) as url:
        assert await _refused(url, {}) == "PARTNER_UNAVAILABLE"


async def test_the_client_certificate_is_presented_to_a_partner_that_requires_one(
    dev_pki: DevPki, partner_tls: TlsFiles, gateway_tls: TlsFiles
) -> None:
    seen: list[Any] = []
    tls = {
        "ca_bundle": str(dev_pki.root_cert_path),
        "client_certificate": str(gateway_tls.certificate),
        "client_key": str(gateway_tls.key),
    }
    async with partner(server_context(partner_tls, client_ca=dev_pki.root_cert_path), seen) as url:
        assert await _deliver(url, tls) == "TLS-1"
        assert await _refused(url, {"ca_bundle": str(dev_pki.root_cert_path)}) == "PARTNER_UNAVAILABLE"
    [peer] = seen
    assert dict(pair[0] for pair in peer["subject"])["commonName"] == "nsw-gateway-client"


async def test_a_partner_below_the_minimum_tls_version_is_refused(dev_pki: DevPki, partner_tls: TlsFiles) -> None:
    context = server_context(partner_tls, maximum=ssl.TLSVersion.TLSv1_2)
    trusted = {"ca_bundle": str(dev_pki.root_cert_path)}
    async with partner(context, []) as url:
        assert await _refused(url, {**trusted, "minimum_version": "1.3"}) == "PARTNER_UNAVAILABLE"
        assert await _deliver(url, {**trusted, "minimum_version": "1.2"}) == "TLS-1"


@pytest.mark.parametrize(
    ("tls", "field"),
    [
        ({"ca_bundle": "missing-ca.pem"}, "destinations.TH.options.tls.ca_bundle"),
        ({"client_certificate": "missing-client.pem"}, "destinations.TH.options.tls.client_certificate"),
        (
            {"client_certificate": "client.pem", "client_key_password_env": "NSW_TEST_UNSET_TLS_PASSWORD"},
            "destinations.TH.options.tls.client_key_password_env",
        ),
    ],
    ids=["ca-bundle-missing", "client-certificate-missing", "password-variable-unset"],
)
def test_a_tls_file_that_does_not_load_names_the_option_under_its_destination(
    tmp_path: Path, gateway_tls: TlsFiles, monkeypatch: pytest.MonkeyPatch, tls: dict[str, Any], field: str
) -> None:
    monkeypatch.delenv("NSW_TEST_UNSET_TLS_PASSWORD", raising=False)
    (tmp_path / "client.pem").write_bytes(gateway_tls.certificate.read_bytes())
    resolved = {k: str(tmp_path / v) if k in ("ca_bundle", "client_certificate") else v for k, v in tls.items()}
    config = make_config(
        tmp_path, {"TH": "https://127.0.0.1:9/inbox"}, per_destination={"TH": {"options": {"tls": resolved}}}
    )
    with pytest.raises(ConfigError) as caught:
        build_adapter("TH", config.destinations["TH"])
    assert (caught.value.code, caught.value.field) == ("CONFIG_INVALID", field)


def test_a_client_key_without_its_certificate_is_a_config_error(tmp_path: Path) -> None:
    per_destination = {"TH": {"options": {"tls": {"client_key": "k.pem"}}}}
    with pytest.raises(ConfigError) as caught:
        make_config(tmp_path, {"TH": "https://127.0.0.1:9/inbox"}, per_destination=per_destination)
    assert (caught.value.code, caught.value.field) == ("CONFIG_INVALID", "destinations.TH.options.tls")


async def _no_wait(seconds: float) -> None:
    return None


def _as4(dev_pki: DevPki, url: str, tls: dict[str, Any]) -> As4Adapter:
    gateway, partner = side(dev_pki, "nsw-gateway", GATEWAY), side(dev_pki, "th-asw", PARTNER)
    options = {
        "pmode": pmode(GATEWAY, PARTNER, attempts=1),
        "signer": gateway.signer,
        "trust": partner.trust,
        "encryption_certificate": partner.certificate,
        "sleep": _no_wait,
        "tls": tls,
    }
    return As4Adapter(url, timeout=5, options=options)


async def test_as4_delivers_over_tls_presenting_the_client_certificate(
    dev_pki: DevPki, partner_tls: TlsFiles, gateway_tls: TlsFiles
) -> None:
    receiver = receiver_for(side(dev_pki, "th-asw", PARTNER), side(dev_pki, "nsw-gateway", GATEWAY))
    context = server_context(partner_tls, client_ca=dev_pki.root_cert_path)
    tls = {
        "ca_bundle": str(dev_pki.root_cert_path),
        "client_certificate": str(gateway_tls.certificate),
        "client_key": str(gateway_tls.key),
        "minimum_version": "1.3",
    }
    async with tls_site(receiver.app(), context, "/as4") as url:
        async with _as4(dev_pki, url, tls) as adapter:
            receipt = await adapter.deliver(_message())
        async with _as4(dev_pki, url, {"ca_bundle": str(dev_pki.root_cert_path)}) as adapter:
            with pytest.raises(NswError) as caught:
                await adapter.deliver(_message(2))
    assert receipt.message_id == "TLS-1" and receipt.status == 200
    assert caught.value.code == "PARTNER_UNAVAILABLE"


async def test_vnsw_soap_calls_the_ministry_over_tls_fetching_its_wsdl_with_the_same_settings(
    dev_pki: DevPki, partner_tls: TlsFiles, gateway_tls: TlsFiles
) -> None:
    ministry = SpyneMinistry(ssl_context=server_context(partner_tls, client_ca=dev_pki.root_cert_path)).start()
    tls = {
        "ca_bundle": str(dev_pki.root_cert_path),
        "client_certificate": str(gateway_tls.certificate),
        "client_key": str(gateway_tls.key),
    }
    message = OutboundMessage(
        message_id="vn-tls-1",
        payload=vnsw_envelope("vn-tls-1", sender="NSW", recipient="BNNPTNT", type_="10", function="01"),
        sender="TRADER",
        document_type="sps.registration",
        conversation="c",
    )
    try:
        options = {"office_code": "BNN", "wsdl": f"{ministry.url}?wsdl", "tls": tls}
        async with VnswSoapAdapter(ministry.url, timeout=5, options=options) as adapter:
            receipt = await adapter.deliver(message)
        untrusted = {
            "office_code": "BNN",
            "tls": {"client_certificate": tls["client_certificate"], "client_key": tls["client_key"]},
        }
        async with VnswSoapAdapter(ministry.url, timeout=5, options=untrusted) as adapter:
            with pytest.raises(NswError) as caught:
                await adapter.deliver(message)
    finally:
        ministry.stop()
    assert receipt.message_id == "vn-tls-1" and ministry.processed == ["vn-tls-1"]
    assert caught.value.code == "PARTNER_UNAVAILABLE"
