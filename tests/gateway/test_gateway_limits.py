"""One size limit on the whole intake path, and bounded evidence of refused submissions.

``gateway.max_message_bytes`` is the limit of every entry point (REST, the ``vnsw-soap`` and ``as4`` endpoints,
the file drop) and the limit the intake's XML parser enforces; it may not exceed the parser's ceiling (refused at
load), nor may an AS4 PMode's ``max_payload_bytes`` exceed it. Each entry point refuses an oversized request in
its own protocol: JSON 413 on REST, a ``soap:Client`` fault on SOAP, a signed ebMS error signal on AS4. A single
text node above libxml2's own 10 MB limit (a base64 attachment) is accepted within the limit. A refused submission is stored as ``REJECTED`` with only its first
``gateway.rejected_prefix_bytes`` bytes and the size and SHA-256 of the whole; an accepted one keeps its whole
verified document. Real gateways on 127.0.0.1; the stored rows are read from the database itself.
"""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import aiohttp
import asyncpg
import pytest

from adapters.as4 import verify_signal
from adapters.as4.messages import SIGNAL_CONTENT_TYPE
from adapters.filedrop import FileDropInbox, atomic_write
from gateway.api import Gateway
from gateway.config import Config
from gateway.errors import ConfigError, XmlTooLarge
from gateway.model import PartyId
from gateway.security import build_verifier
from gateway.store.base import MessageQuery
from helpers.adapters import vnsw_envelope
from helpers.as4 import GATEWAY, PARTNER, partner_options, side
from helpers.gateway import TOKENS, Receiver, dev_trust, doc, eventually, make_config, submit
from signing.dev.pki import DevPki
from signing.xml import DEFAULT_LIMITS, parse_xml

SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"

MIB = 1024 * 1024


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AS4_TEST_P12_PASSWORD", "changeit")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    th = await Receiver().start()
    try:
        yield th
    finally:
        await th.stop()


async def post(
    s: aiohttp.ClientSession, gw: Gateway, path: str, message_id: str, body: bytes, *, party: str = "MOIT"
) -> tuple[int, dict[str, Any]]:
    """POST ``body`` (streamed, as a large upload should be) to ``path`` of ``gw``; the status and the JSON answer."""
    headers = {
        "Authorization": f"Bearer {TOKENS[party]}",
        "X-Message-Id": message_id,
        "X-Document-Type": "eco.form_d" if party == "MOIT" else "sps.permit",
        "Content-Type": "application/soap+xml" if path == "/as4" else "application/xml",
        "SOAPAction": '""',
    }
    async with s.post(f"{gw.url}{path}", data=io.BytesIO(body), headers=headers) as r:
        return r.status, json.loads(await r.read())


async def stored(config: Config, gateway_id: str) -> tuple[bytes, int | None, str | None, str]:
    """``(payload, payload_size, payload_sha256, intake_state)`` of the message row, read from the database."""
    query = (
        "SELECT p.data, m.payload_size, m.payload_sha256, m.intake_state FROM messages AS m"
        " JOIN message_payloads AS p ON p.message = m.id WHERE m.id = "
    )
    if config.store.kind == "postgresql":
        assert config.store.dsn is not None
        conn = await asyncpg.connect(config.store.dsn)
        try:
            row = await conn.fetchrow(query + "$1", gateway_id)
        finally:
            await conn.close()
    else:
        with sqlite3.connect(config.store.url.removeprefix("sqlite:///")) as db:
            row = db.execute(query + "?", (gateway_id,)).fetchone()
    assert row is not None, gateway_id
    return bytes(row[0]), row[1], row[2], row[3]


def large_doc(size: int) -> bytes:
    """A simple well-formed document of exactly ``size`` bytes: many short elements (libxml2 refuses a single
    text node above 10 MB)."""
    head, tail, item = b"<Doc><No>LARGE</No>", b"</Doc>", b"<I>" + b"x" * 1017 + b"</I>"
    count, rest = divmod(size - len(head) - len(tail) - len(b"<P></P>"), len(item))
    return head + item * count + b"<P>" + b"y" * rest + b"</P>" + tail


def _as4_options(dev_pki: DevPki, tmp_path: Path) -> dict[str, Any]:
    return {
        "party_id": GATEWAY,
        "signer": {"p12": str(dev_pki.party("nsw-gateway").p12_path), "password_env": "AS4_TEST_P12_PASSWORD"},
        "partners": {PARTNER: partner_options(dev_pki, "TH")},
    }


# --------------------------------------------------------------------------- evidence of refused submissions


async def test_an_unparseable_1_mib_document_is_rejected_and_the_store_keeps_only_its_prefix_size_and_digest(
    tmp_path: Path, receiver: Receiver, store_section: dict[str, Any]
) -> None:
    config = make_config(tmp_path, {"TH": receiver.url}, extra=store_section)
    body = b"<Doc><Pad>" + b"x" * MIB  # never closed: XML_MALFORMED
    async with Gateway(config) as gw, aiohttp.ClientSession() as s:
        status, answer = await post(s, gw, "/v1/messages", "BIG-BAD-1", body)
    assert status == 400 and answer["error"]["code"] == "XML_MALFORMED", answer
    assert answer["ack"]["state"] == "REJECTED"
    payload, size, digest, state = await stored(config, answer["ack"]["id"])
    assert state == "REJECTED"
    assert payload == body[: config.gateway.rejected_prefix_bytes] and len(payload) == 4096
    assert size == len(body) and digest == hashlib.sha256(body).hexdigest()


async def test_an_accepted_1_mib_document_keeps_its_whole_evidence(
    tmp_path: Path, receiver: Receiver, store_section: dict[str, Any]
) -> None:
    config = make_config(tmp_path, {"TH": receiver.url}, extra=store_section)
    body = doc("BIG-OK-1", size=MIB)
    async with Gateway(config) as gw, aiohttp.ClientSession() as s:
        status, ack = await post(s, gw, "/v1/messages", "BIG-OK-1", body)
        assert status == 202, ack
    payload, size, digest, state = await stored(config, ack["id"])
    assert state == "QUEUED" and payload == body and size is None and digest is None


async def test_the_rejected_prefix_is_configurable_and_a_short_refused_document_is_kept_whole(
    tmp_path: Path, receiver: Receiver
) -> None:
    config = make_config(tmp_path, {"TH": receiver.url}, gateway={"rejected_prefix_bytes": 16})
    async with Gateway(config) as gw, aiohttp.ClientSession() as s:
        _, long = await submit(s, gw.url, "MOIT", "P-1", "eco.form_d", b"<Doc>" + b"y" * 100)
        _, short = await submit(s, gw.url, "MOIT", "P-2", "eco.form_d", b"<Doc>")
    payload, size, digest, _ = await stored(config, long["ack"]["id"])
    assert (
        payload == b"<Doc>yyyyyyyyyyy" and size == 105 and digest == hashlib.sha256(b"<Doc>" + b"y" * 100).hexdigest()
    )
    payload, size, digest, _ = await stored(config, short["ack"]["id"])
    assert payload == b"<Doc>" and size == 5 and digest == hashlib.sha256(b"<Doc>").hexdigest()


async def test_an_unparseable_dropped_file_is_rejected_and_the_store_keeps_only_its_prefix(
    tmp_path: Path, receiver: Receiver
) -> None:
    config = make_config(tmp_path, {"TH": receiver.url})
    gw = Gateway(config)
    gw.inbound.append(
        FileDropInbox(
            "mard",
            options={"path": str(tmp_path / "drop"), "party": "MARD", "document_type": "sps.permit", "interval": 0.05},
        )
    )
    body = b"<Permit>" + b"z" * MIB
    async with gw:
        atomic_write(tmp_path / "drop" / "inbox", "big.xml", body)
        await eventually(lambda: (tmp_path / "drop" / "error" / "big.xml").exists())
    sidecar = json.loads((tmp_path / "drop" / "error" / "big.xml.error.json").read_bytes())
    assert sidecar["error"]["code"] == "XML_MALFORMED"
    payload, size, digest, state = await stored(config, sidecar["error"]["ack"]["id"])
    assert state == "REJECTED" and payload == body[:4096]
    assert size == len(body) and digest == hashlib.sha256(body).hexdigest()


# --------------------------------------------------------------------------- one size limit


async def test_a_dropped_file_above_max_message_bytes_is_refused_unread_with_XML_TOO_LARGE(
    tmp_path: Path, receiver: Receiver
) -> None:
    config = make_config(tmp_path, {"TH": receiver.url}, gateway={"max_message_bytes": 64 * 1024})
    gw = Gateway(config)
    gw.inbound.append(
        FileDropInbox(
            "mard",
            options={"path": str(tmp_path / "drop"), "party": "MARD", "document_type": "sps.permit", "interval": 0.05},
        )
    )
    async with gw:
        atomic_write(tmp_path / "drop" / "inbox", "big.xml", doc(1, size=64 * 1024))
        atomic_write(tmp_path / "drop" / "inbox", "fits.xml", doc(2, size=60 * 1024))
        await eventually(lambda: (tmp_path / "drop" / "error" / "big.xml").exists())
        await eventually(lambda: (tmp_path / "drop" / "processed" / "fits.xml").exists())
    sidecar = json.loads((tmp_path / "drop" / "error" / "big.xml.error.json").read_bytes())
    assert sidecar["error"]["code"] == "XML_TOO_LARGE" and sidecar["error"]["field"] == "body"
    assert "ack" not in sidecar["error"]  # refused before the broker: nothing stored


def test_max_message_bytes_above_the_parsers_limit_is_refused_at_load_naming_the_field_and_the_maximum(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigError) as err:
        make_config(
            tmp_path, {"TH": "http://127.0.0.1:9/"}, gateway={"max_message_bytes": DEFAULT_LIMITS.max_bytes + 1}
        )
    assert err.value.code == "CONFIG_INVALID" and err.value.field == "gateway.max_message_bytes"
    assert str(DEFAULT_LIMITS.max_bytes) in err.value.message
    assert make_config(tmp_path, {"TH": "http://127.0.0.1:9/"}, gateway={"max_message_bytes": DEFAULT_LIMITS.max_bytes})


def test_an_as4_pmode_payload_limit_above_max_message_bytes_is_refused_at_load(tmp_path: Path, dev_pki: DevPki) -> None:
    options = _as4_options(dev_pki, tmp_path)
    partner = options["partners"][PARTNER]
    options["partners"][PARTNER] = {**partner, "pmode": {**partner["pmode"], "max_payload_bytes": 64 * 1024 + 1}}
    with pytest.raises(ConfigError) as err:
        make_config(
            tmp_path,
            {"TH": "http://127.0.0.1:9/"},
            gateway={"max_message_bytes": 64 * 1024},
            extra={"inbound": {"asean": {"endpoint": "as4", "options": options}}},
        )
    assert err.value.code == "CONFIG_INVALID"
    assert err.value.field == f"inbound.asean.options.partners.{PARTNER}.pmode.max_payload_bytes"
    assert "65536" in err.value.message


def _three_entry_points(tmp_path: Path, dev_pki: DevPki, receiver: Receiver, limit: int) -> Config:
    """REST, a ``vnsw-soap`` endpoint at ``/vnsw/soap`` and an ``as4`` endpoint at ``/as4``, under ``limit``."""
    return make_config(
        tmp_path,
        {"TH": receiver.url},
        gateway={"max_message_bytes": limit},
        extra={
            "inbound": {
                "vnsw": {"endpoint": "vnsw-soap", "options": {"document_types": {"BNNPTNT0600011": "sps.permit"}}},
                "asean": {"endpoint": "as4", "options": _as4_options(dev_pki, tmp_path)},
            }
        },
    )


async def post_raw(
    s: aiohttp.ClientSession, gw: Gateway, path: str, body: bytes, content_type: str
) -> tuple[int, str, bytes]:
    """POST ``body`` (streamed) to ``path`` as MARD; the status, the answer's media type and the answer."""
    headers = {"Authorization": f"Bearer {TOKENS['MARD']}", "Content-Type": content_type, "SOAPAction": '""'}
    async with s.post(f"{gw.url}{path}", data=io.BytesIO(body), headers=headers) as r:
        return r.status, r.content_type, await r.read()


async def test_a_rest_body_above_max_message_bytes_is_refused_with_XML_TOO_LARGE_naming_body(
    tmp_path: Path, dev_pki: DevPki, receiver: Receiver
) -> None:
    limit = 64 * 1024
    config = _three_entry_points(tmp_path, dev_pki, receiver, limit)
    async with Gateway(config) as gw, aiohttp.ClientSession() as s:
        status, answer = await post(s, gw, "/v1/messages", "TOO-BIG", doc(1, size=limit + 1), party="MARD")
        assert await gw.store.get("TOO-BIG") is None
    assert status == 413 and answer["error"]["code"] == "XML_TOO_LARGE" and answer["error"]["field"] == "body", answer


async def test_a_soap_request_above_max_message_bytes_is_a_soap_client_fault_with_XML_TOO_LARGE(
    tmp_path: Path, dev_pki: DevPki, receiver: Receiver
) -> None:
    limit = 64 * 1024
    config = _three_entry_points(tmp_path, dev_pki, receiver, limit)
    async with Gateway(config) as gw, aiohttp.ClientSession() as s:
        status, media_type, answer = await post_raw(s, gw, "/vnsw/soap", doc(1, size=limit + 1), "text/xml")
        stored_any = await gw.store.search(MessageQuery(sender="MARD"))
    assert status == 500 and media_type == "text/xml", answer[:300]
    fault = parse_xml(answer).find(f"{{{SOAP11}}}Body/{{{SOAP11}}}Fault")
    assert fault is not None and fault.findtext("faultcode") == "SOAP-ENV:Client"
    error = fault.find("detail/{urn:nsw:gateway:error}error")
    assert error is not None and error.get("code") == "XML_TOO_LARGE" and error.get("field") == "body"
    assert stored_any == []


async def test_an_as4_message_above_max_message_bytes_is_answered_with_a_signed_ebms_error_XML_TOO_LARGE(
    tmp_path: Path, dev_pki: DevPki, receiver: Receiver
) -> None:
    limit = 64 * 1024
    config = _three_entry_points(tmp_path, dev_pki, receiver, limit)
    async with Gateway(config) as gw, aiohttp.ClientSession() as s:
        status, media_type, answer = await post_raw(s, gw, "/as4", doc(1, size=limit + 1), "application/soap+xml")
        stored_any = await gw.store.search(MessageQuery(sender="MARD"))
    assert status == 200 and media_type == "application/soap+xml", answer[:300]
    signal = verify_signal(answer, SIGNAL_CONTENT_TYPE, trust=side(dev_pki, "nsw-gateway", GATEWAY).trust)
    [error] = signal.signal.errors
    assert error.code == "EBMS:0004" and error.ref_to_message_in_error is None
    assert error.detail is not None and error.detail.startswith("XML_TOO_LARGE incident ")
    assert error.detail.endswith(" at body")
    assert stored_any == []


async def test_a_document_of_exactly_the_default_limit_is_accepted_end_to_end_and_one_byte_more_is_not(
    tmp_path: Path, receiver: Receiver
) -> None:
    config = make_config(tmp_path, {"TH": receiver.url})
    limit = config.gateway.max_message_bytes
    assert limit == DEFAULT_LIMITS.max_bytes
    exact = large_doc(limit)
    assert len(exact) == limit
    async with Gateway(config) as gw, aiohttp.ClientSession() as s:
        status, ack = await post(s, gw, "/v1/messages", "EXACT", exact)
        assert status == 202, ack
        status, answer = await post(s, gw, "/v1/messages", "OVER", exact + b" ")
    assert status == 413 and answer["error"]["code"] == "XML_TOO_LARGE" and answer["error"]["field"] == "body"


# --------------------------------------------------------------------------- large text nodes within the limit

LIBXML2_TEXT_LIMIT = 10_000_000
"""libxml2's own limit on one text node (without ``huge_tree``): a document within ``max_message_bytes`` may hold a
larger one, a base64 attachment."""


async def test_a_rest_document_with_one_text_node_above_libxml2s_10_mb_limit_is_accepted_whole(
    tmp_path: Path, receiver: Receiver
) -> None:
    config = make_config(tmp_path, {"TH": receiver.url})
    body = doc("HUGE-TEXT", size=LIBXML2_TEXT_LIMIT + MIB)
    assert len(body) <= config.gateway.max_message_bytes
    async with Gateway(config) as gw, aiohttp.ClientSession() as s:
        status, ack = await post(s, gw, "/v1/messages", "HUGE-TEXT", body)
    assert status == 202 and ack["state"] == "QUEUED", ack
    payload, size, digest, state = await stored(config, ack["id"])
    assert state == "QUEUED" and payload == body and size is None and digest is None


async def test_a_soap_request_whose_payload_is_one_text_node_above_libxml2s_10_mb_limit_is_acknowledged(
    tmp_path: Path, dev_pki: DevPki, receiver: Receiver
) -> None:
    config = _three_entry_points(tmp_path, dev_pki, receiver, DEFAULT_LIMITS.max_bytes)
    layout = "\n" * (LIBXML2_TEXT_LIMIT + MIB)  # the inner Envelope, one text node of the SOAP request, > 10 MB
    envelope = vnsw_envelope(
        "VN-HUGE-1",
        content=f"<QuarantineResult>{layout}<NSWFileCode>BNNPTNT11190000272</NSWFileCode><Reason>Ho so hop le</Reason>"
        "</QuarantineResult>",
    )
    request = (
        f'<soapenv:Envelope xmlns:soapenv="{SOAP11}"><soapenv:Body>'
        '<ws:receiveRequest xmlns:ws="http://com/vnsw/ws/generated"><requestPayload>'
        f"{escape(envelope.decode())}</requestPayload></ws:receiveRequest></soapenv:Body></soapenv:Envelope>"
    ).encode()
    assert len(request) <= DEFAULT_LIMITS.max_bytes
    async with Gateway(config) as gw, aiohttp.ClientSession() as s:
        status, media_type, answer = await post_raw(s, gw, "/vnsw/soap", request, "text/xml")
        [record] = await gw.store.search(MessageQuery(sender="MARD"))
    assert status == 200 and media_type == "text/xml", answer[:500]
    payload = parse_xml(answer).findtext(".//{http://com/vnsw/ws/generated}responsePayload")
    assert payload is not None
    assert parse_xml(payload.encode()).findtext("Header/Subject/function") == "99", payload[-1000:]
    assert record.message.envelope.message_id == "VN-HUGE-1" and record.message.state.value == "QUEUED"


@pytest.mark.parametrize("verification", ["well-formed", "signature"])
def test_the_intake_parser_enforces_max_message_bytes_not_a_limit_of_its_own(
    tmp_path: Path, dev_pki: DevPki, verification: str
) -> None:
    config = make_config(
        tmp_path,
        {"TH": "http://127.0.0.1:9/"},
        gateway={"max_message_bytes": 64 * 1024, "verification": verification},
        parties={
            "MOIT": {"tokens": [TOKENS["MOIT"]], "document_types": ["eco.form_d"], "trust": dev_trust(dev_pki, "moit")},
            "MARD": {"tokens": [TOKENS["MARD"]], "document_types": ["sps.permit"], "trust": dev_trust(dev_pki, "mard")},
            "TRADER": {
                "tokens": [TOKENS["TRADER"]],
                "document_types": ["sps.registration"],
                "trust": dev_trust(dev_pki, "trader"),
            },
        },
    )
    assert config.gateway.parser_limits.max_bytes == 64 * 1024 < DEFAULT_LIMITS.max_bytes
    with pytest.raises(XmlTooLarge) as refused:
        build_verifier(config).verify(doc(1, size=64 * 1024), PartyId("MOIT"))
    assert refused.value.code == "XML_TOO_LARGE" and "the limit is 65536" in refused.value.message


async def test_a_multi_mib_payload_is_stored_byte_for_byte_for_the_message_and_its_delivery(
    tmp_path: Path, store_section: dict[str, Any]
) -> None:
    config = make_config(tmp_path, {"TH": "http://127.0.0.1:9/"}, extra=store_section)
    body = doc("BIG-ROW", size=3 * MIB + 12345)  # written in chunks (SQLite blob I/O), not as one parameter
    async with Gateway(config) as gw, aiohttp.ClientSession() as s:
        status, ack = await post(s, gw, "/v1/messages", "BIG-ROW", body)
        assert status == 202, ack
    payload, _, _, state = await stored(config, ack["id"])
    assert state == "QUEUED" and payload == body
    query = "SELECT p.data FROM deliveries AS d JOIN delivery_payloads AS p ON p.delivery = d.seq WHERE d.message = "
    if config.store.kind == "postgresql":
        assert config.store.dsn is not None
        conn = await asyncpg.connect(config.store.dsn)
        try:
            rows = [bytes(r[0]) for r in await conn.fetch(query + "$1", ack["id"])]
        finally:
            await conn.close()
    else:
        with sqlite3.connect(config.store.url.removeprefix("sqlite:///")) as db:
            rows = [bytes(r[0]) for r in db.execute(query + "?", (ack["id"],))]
    assert rows == [body]
