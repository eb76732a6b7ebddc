"""The HTTP surface: secure defaults and their reported weakenings, the scrape credential of ``/metrics``,
malformed credentials, and slow or greedy clients (header and body deadlines, connections per client address).

Every case runs a real gateway on 127.0.0.1; malformed requests and slow clients are written by hand over raw
sockets (``asyncio.open_connection``), since aiohttp's client refuses to send them. Deadlines are small (0.3 s)
and the tests assert what the client observes (an answer, a closed connection), never how long it took.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.api import Gateway
from gateway.config import parse_config, token_digest
from gateway.errors import ConfigError
from helpers.gateway import TOKENS, Receiver, dev_trust, doc, eventually, make_config, submit
from signing.dev.pki import DevPki

ROOT = Path(__file__).resolve().parents[2]
SCRAPE = "scrape-token"
DEADLINE = 0.3
CAP = 3
BOUND = 15.0
"""Upper bound on waiting for the gateway to act (a hung test fails instead of hanging), never asserted."""


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    th = await Receiver().start()
    try:
        yield th
    finally:
        await th.stop()


@pytest.fixture
async def guarded(tmp_path: Path, receiver: Receiver) -> AsyncIterator[Gateway]:
    """A gateway with small deadlines, a cap of three connections per client and a scrape token for /metrics."""
    settings = {
        "header_timeout": DEADLINE,
        "body_timeout": DEADLINE,
        "max_connections_per_client": CAP,
        "metrics": {"tokens": [SCRAPE]},
    }
    async with Gateway(make_config(tmp_path, {"TH": receiver.url}, gateway=settings)) as gw:
        yield gw


async def _exchange(gw: Gateway, raw: bytes) -> bytes:
    """``raw`` written on a fresh connection; everything the gateway answers until it closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
    try:
        writer.write(raw)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), BOUND)
    finally:
        writer.close()


def _parse(answer: bytes) -> tuple[int, dict[str, str], Any]:
    """Status, headers (lower-case names) and JSON body of one HTTP/1.1 answer."""
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, json.loads(body) if body else None


def _get(path: str, authorization: bytes | None) -> bytes:
    auth = b"Authorization: " + authorization + b"\r\n" if authorization is not None else b""
    return b"GET " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" + auth + b"\r\n"


# ---------------------------------------------------------------------------- secure by default


def test_a_configuration_without_switches_verifies_signatures_and_signs() -> None:
    config = parse_config(
        {
            "parties": {"MOIT": {"tokens": ["t"], "trust": {"pinned": [{"certificate": "/pki/moit.pem"}]}}},
            "signing": {"keys": [{"pkcs12": "/pki/gw.p12"}]},
        }
    )
    assert (config.gateway.verification, config.gateway.signing) == ("signature", "on")
    assert config.gateway.metrics.public is False and config.gateway.weakened == ()


def test_a_party_without_trust_is_refused_under_the_default_verification() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"gateway": {"signing": "off"}, "parties": {"MOIT": {"tokens": ["t"]}}})
    assert (caught.value.code, caught.value.field) == ("CONFIG_INVALID", "parties.MOIT.trust")


def test_no_signing_key_is_refused_under_the_default_signing() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"gateway": {"verification": "well-formed"}})
    assert (caught.value.code, caught.value.field) == ("CONFIG_INVALID", "signing.keys")
    assert 'gateway.signing = "off"' in caught.value.message


async def test_weakened_modes_are_listed_by_readyz_and_logged_at_start(
    tmp_path: Path, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="nswgw.api"):
        async with Gateway(make_config(tmp_path, {"TH": receiver.url})) as gw, aiohttp.ClientSession() as s:
            async with s.get(f"{gw.url}/readyz") as r:
                body = await r.json()
    assert r.status == 200
    assert body["weakened"] == ["verification=well-formed", "signing=off", "metrics=public"]
    logged = [r.getMessage() for r in caplog.records if r.name == "nswgw.api"]
    assert "security weakened by configuration: verification=well-formed, signing=off, metrics=public" in logged


async def test_a_secure_configuration_reports_nothing_weakened(
    tmp_path: Path, receiver: Receiver, dev_pki: DevPki, caplog: pytest.LogCaptureFixture
) -> None:
    config = make_config(
        tmp_path,
        {"TH": receiver.url},
        gateway={"verification": "signature", "signing": "on", "metrics": {"tokens": [SCRAPE]}},
        parties={name: {"trust": dev_trust(dev_pki, name.lower())} for name in ("MOIT", "MARD", "TRADER")},
        extra={"signing": {"keys": [{"pkcs12": str(dev_pki.party("nsw-gateway").p12_path), "password": "changeit"}]}},
    )
    with caplog.at_level(logging.WARNING, logger="nswgw.api"):
        async with Gateway(config) as gw, aiohttp.ClientSession() as s:
            async with s.get(f"{gw.url}/readyz") as r:
                body = await r.json()
    assert body["weakened"] == []
    assert not [r for r in caplog.records if "weakened" in r.getMessage()]


async def test_serve_prints_the_weakened_modes_on_its_listening_line(tmp_path: Path) -> None:
    path = tmp_path / "weak.toml"
    path.write_text(
        '[gateway]\nverification = "off"\nsigning = "off"\n'
        f'[store]\nurl = "sqlite:///{tmp_path / "gw.db"}"\n'
        '[parties.MOIT]\ntokens = ["t"]\ndocument_types = ["*"]\n'
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "gateway.commands", "serve", "--config", str(path), "--port", "0"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT) as proc:
        try:
            assert proc.stdout is not None
            line = (await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), BOUND)).decode()
        finally:
            proc.terminate()
            proc.communicate(timeout=BOUND)
    assert line.startswith("nswgw listening on http://127.0.0.1:")
    assert line.rstrip().endswith("(weakened: verification=off, signing=off)")


# ---------------------------------------------------------------------------- /metrics


async def test_metrics_answer_only_a_scrape_token(guarded: Gateway) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{guarded.url}/metrics") as r:
            assert (r.status, (await r.json())["error"]["code"]) == (401, "AUTH_REQUIRED")
        async with s.get(f"{guarded.url}/metrics", headers={"Authorization": "Bearer not-a-token"}) as r:
            assert (r.status, (await r.json())["error"]["code"]) == (401, "AUTH_REQUIRED")
        party = {"Authorization": f"Bearer {TOKENS['MOIT']}"}
        async with s.get(f"{guarded.url}/metrics", headers=party) as r:
            assert (r.status, (await r.json())["error"]["code"]) == (403, "AUTH_FORBIDDEN")
        async with s.get(f"{guarded.url}/metrics", headers={"Authorization": f"Bearer {SCRAPE}"}) as r:
            assert r.status == 200 and "nswgw_messages_received_total" in await r.text()


async def test_metrics_without_a_metrics_section_are_closed_to_everyone(tmp_path: Path, receiver: Receiver) -> None:
    config = make_config(tmp_path, {"TH": receiver.url}, gateway={"metrics": {}})
    async with Gateway(config) as gw, aiohttp.ClientSession() as s:
        async with s.get(f"{gw.url}/metrics") as r:
            assert (r.status, (await r.json())["error"]["code"]) == (401, "AUTH_REQUIRED")
        async with s.get(f"{gw.url}/metrics", headers={"Authorization": f"Bearer {TOKENS['MOIT']}"}) as r:
            assert (r.status, (await r.json())["error"]["code"]) == (403, "AUTH_FORBIDDEN")


async def test_metrics_scrape_token_may_be_given_as_its_digest(tmp_path: Path, receiver: Receiver) -> None:
    config = make_config(tmp_path, {"TH": receiver.url}, gateway={"metrics": {"token_sha256": [token_digest(SCRAPE)]}})
    async with Gateway(config) as gw, aiohttp.ClientSession() as s:
        async with s.get(f"{gw.url}/metrics", headers={"Authorization": f"Bearer {SCRAPE}"}) as r:
            assert r.status == 200


def test_public_metrics_with_scrape_tokens_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        make_config(tmp_path, {}, gateway={"metrics": {"public": True, "tokens": [SCRAPE]}})
    assert (caught.value.code, caught.value.field) == ("CONFIG_INVALID", "gateway.metrics.public")


# ---------------------------------------------------------------------------- malformed credentials


@pytest.mark.parametrize(
    ("path", "authorization"),
    [
        ("/v1/messages", b"Bearer \xff\xfe\xfd"),
        ("/v1/messages", b"Bearer caf\xc3\xa9"),
        ("/v1/messages", b"Bearer moit\ttoken"),
        ("/v1/messages", b"Bearer moit token"),
        ("/metrics", b"Bearer \xff\xfe\xfd"),
    ],
    ids=["not-utf8", "non-ascii", "tab-in-token", "space-in-token", "not-utf8-on-metrics"],
)
async def test_a_malformed_credential_is_auth_malformed(guarded: Gateway, path: str, authorization: bytes) -> None:
    status, _, body = _parse(await _exchange(guarded, _get(path, authorization)))
    assert (status, body["error"]["code"], body["error"]["field"]) == (401, "AUTH_MALFORMED", "Authorization")


async def test_a_control_character_in_the_authorization_header_is_refused_by_the_parser_with_a_code(
    guarded: Gateway,
) -> None:
    status, _, body = _parse(await _exchange(guarded, _get("/v1/messages", b"Bearer moit\x01token")))
    assert (status, body["error"]["code"]) == (400, "REQUEST_MALFORMED")
    assert "moit" not in body["error"]["message"]


def test_a_configured_token_that_is_not_a_header_value_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        make_config(tmp_path, {}, parties={"MOIT": {"tokens": ["two words"]}})
    assert (caught.value.code, caught.value.field) == ("CONFIG_INVALID", "parties.MOIT.tokens[0]")


# ---------------------------------------------------------------------------- slow and greedy clients


async def test_a_client_trickling_headers_is_disconnected_after_the_header_timeout(guarded: Gateway) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", guarded.port)

    async def trickle() -> None:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        for _ in range(int(BOUND / 0.05)):
            await asyncio.sleep(0.05)
            writer.write(b"a")

    trickling = asyncio.create_task(trickle())
    try:
        answer = await asyncio.wait_for(reader.read(), BOUND)
    finally:
        trickling.cancel()
        writer.close()
    assert answer == b""


async def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(guarded: Gateway) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", guarded.port)
    try:
        assert await asyncio.wait_for(reader.read(), BOUND) == b""
    finally:
        writer.close()
    await eventually(lambda: guarded.listener is not None and guarded.listener.limits.open("127.0.0.1") == 0)


async def test_a_stalled_body_is_answered_request_timeout(guarded: Gateway) -> None:
    head = (
        "POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {TOKENS['MOIT']}\r\nX-Message-Id: SLOW-1\r\nX-Document-Type: eco.form_d\r\n"
        "Content-Type: application/xml\r\nContent-Length: 1000\r\n\r\n<Doc><No>1"
    )
    reader, writer = await asyncio.open_connection("127.0.0.1", guarded.port)
    try:
        writer.write(head.encode())
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), BOUND)
        status, headers, _ = _parse(status_line)
        body = json.loads(await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), BOUND))
    finally:
        writer.close()
    assert (status, body["error"]["code"], body["error"]["field"]) == (408, "REQUEST_TIMEOUT", "body")
    assert headers["connection"] == "close"
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{guarded.url}/v1/messages", headers={"Authorization": f"Bearer {TOKENS['MOIT']}"}) as r:
            assert (await r.json())["messages"] == []


async def test_a_stalled_body_of_a_request_the_middleware_reads_is_answered_request_timeout(guarded: Gateway) -> None:
    head = (
        "GET /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {TOKENS['MOIT']}\r\nContent-Length: 1000\r\n\r\nnot all of it"
    )
    reader, writer = await asyncio.open_connection("127.0.0.1", guarded.port)
    try:
        writer.write(head.encode())
        await writer.drain()
        status, headers, _ = _parse(await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), BOUND))
        body = json.loads(await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), BOUND))
    finally:
        writer.close()
    assert (status, body["error"]["code"], body["error"]["field"]) == (408, "REQUEST_TIMEOUT", "body")
    assert headers["connection"] == "close"


async def test_the_connection_beyond_the_per_client_cap_is_refused_while_the_others_are_open(
    guarded: Gateway,
) -> None:
    assert guarded.listener is not None
    limits = guarded.listener.limits
    held = [await asyncio.open_connection("127.0.0.1", guarded.port) for _ in range(CAP)]
    try:
        await eventually(lambda: limits.open("127.0.0.1") == CAP)
        status, headers, body = _parse(await _exchange(guarded, _get("/healthz", None)))
        assert (status, body["error"]["code"]) == (429, "CONNECTION_LIMIT")
        assert headers["connection"] == "close" and limits.open("127.0.0.1") == CAP
    finally:
        for _, writer in held:
            writer.close()
    await eventually(lambda: limits.open("127.0.0.1") == 0)
    status, _, body = _parse(await _exchange(guarded, _get("/healthz", None)))
    assert (status, body) == (200, {"status": "ok"})


async def test_a_normal_client_is_unaffected_by_the_limits(guarded: Gateway, receiver: Receiver) -> None:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CAP)) as s:
        results = await asyncio.gather(
            *(submit(s, guarded.url, "MOIT", f"OK-{n}", "eco.form_d", doc(n, size=64 * 1024)) for n in range(12))
        )
        assert [status for status, _ in results] == [202] * 12
        async with s.get(f"{guarded.url}/readyz") as r:
            assert r.status == 200
    await eventually(lambda: len(receiver.processed) == 12)
