"""``GET /openapi.json``: a valid OpenAPI 3.1 document that describes every route the configuration serves, and
every live answer (status, body, declared headers) of every route, on its good and its main bad paths.

A real gateway on 127.0.0.1 with the inbound endpoints ``poll`` (results mailbox), ``vnsw-soap`` and ``as4``
configured from plain values; the AS4 partner is an ``As4Adapter`` of the development PKI.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import aiohttp
import jsonschema
import pytest
from aiohttp import web
from openapi_spec_validator import validate as validate_openapi

from gateway.api import DOCUMENT, Gateway, build_app
from gateway.errors import GatewayError, StoreUnavailable
from gateway.events import Event
from gateway.openapi import documented_operations, served_operations, undocumented_operations
from gateway.ports import InboundEndpoint, Intake, OutboundMessage
from helpers.adapters import vnsw_envelope
from helpers.as4 import ACTION, GATEWAY, PARTNER, partner_options, sender_to, side
from helpers.gateway import TOKENS, Receiver, doc, eventually, make_config
from mappings.registry import convert
from signing.dev.pki import DevPki

ROOT = Path(__file__).resolve().parents[2]
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
FORM_D = b"<CertificateOfOrigin><ReferenceNo>TH-2026-0001</ReferenceNo><Form>D</Form></CertificateOfOrigin>"


def _as4_options(dev_pki: DevPki, tmp_path: Path) -> dict[str, Any]:
    return {
        "party_id": GATEWAY,
        "signer": {"p12": str(dev_pki.party("nsw-gateway").p12_path), "password_env": "AS4_TEST_P12_PASSWORD"},
        "partners": {PARTNER: partner_options(dev_pki, "TH")},
    }


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Checked:
    """A client that checks every answer against the served document and notes which operations it called."""

    gw: Gateway
    session: aiohttp.ClientSession
    document: dict[str, Any]
    called: set[tuple[str, str]] = field(default_factory=set)

    async def call(self, method: str, template: str, *, path: str | None = None, **kwargs: Any) -> Answer:
        async with self.session.request(method, f"{self.gw.url}{path or template}", **kwargs) as r:
            answer = Answer(r.status, dict(r.headers), await r.read())
        check_answer(self.document, template, method.lower(), answer)
        self.called.add((template, method.lower()))
        return answer


def _validate(document: dict[str, Any], schema: dict[str, Any], value: Any) -> None:
    """``value`` against ``schema``, whose ``#/components/...`` references resolve in ``document``."""
    rooted = {**schema, "components": document["components"]}
    validator = jsonschema.Draft202012Validator(rooted, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    validator.validate(value)


def check_answer(document: dict[str, Any], template: str, method: str, answer: Answer) -> None:
    """The answer's status is listed for the operation, its media type and body match that status' schema and
    every header declared required is present and valid."""
    operation = document["paths"][template][method]
    assert str(answer.status) in operation["responses"], (
        f"{method.upper()} {template} answered {answer.status}, not in {sorted(operation['responses'])}: "
        f"{answer.body[:300]!r}"
    )
    response = operation["responses"][str(answer.status)]
    media = answer.headers.get("Content-Type", "").split(";")[0].strip()
    assert media in response.get("content", {}), f"{method.upper()} {template} {answer.status} answered {media}"
    schema = response["content"][media].get("schema", {})
    if media == "application/json":
        _validate(document, schema, json.loads(answer.body))
    else:
        _validate(document, schema, answer.body.decode("utf-8"))
    for name, header in response.get("headers", {}).items():
        if header.get("required"):
            assert name in answer.headers, f"{method.upper()} {template} {answer.status} lacks the header {name}"
        if name in answer.headers:
            _validate(document, header.get("schema", {}), answer.headers[name])


def _bearer(party: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[party]}"}


def _soap(payload: bytes) -> bytes:
    return (
        f'<soapenv:Envelope xmlns:soapenv="{SOAP11}"><soapenv:Body>'
        '<ws:receiveRequest xmlns:ws="http://com/vnsw/ws/generated"><ws:requestPayload>'
        f"{escape(payload.decode('utf-8'))}</ws:requestPayload></ws:receiveRequest></soapenv:Body></soapenv:Envelope>"
    ).encode()


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AS4_TEST_P12_PASSWORD", "changeit")


@pytest.fixture
async def rig(dev_pki: DevPki, tmp_path: Path) -> AsyncIterator[tuple[Checked, Receiver]]:
    th = await Receiver().start()
    config = make_config(
        tmp_path,
        {"TH": th.url, "MARD-BOX": (tmp_path / "box").as_uri()},
        per_destination={"MARD-BOX": {"adapter": "mailbox", "options": {"party": "MARD"}}},
        gateway={"max_message_bytes": 256 * 1024},
        parties={"TH": {"tokens": ["th-token"], "document_types": ["eco.form_d"]}},
        routes=[
            {"document_type": "sps.registration", "to": ["MARD-BOX"]},
            {"document_type": "*", "to": ["TH"]},
        ],
        extra={
            "operators": {"ops": {"tokens": ["ops-token"]}},
            "inbound": {
                "results": {"endpoint": "poll"},
                "vnsw": {
                    "endpoint": "vnsw-soap",
                    "options": {"document_types": {"BNNPTNT0600011": "sps.permit"}},
                },
                "asean": {"endpoint": "as4", "options": _as4_options(dev_pki, tmp_path)},
            },
        },
    )
    try:
        async with Gateway(config) as gw, aiohttp.ClientSession() as session:
            async with session.get(f"{gw.url}/openapi.json") as r:
                assert r.status == 200
                document = json.loads(await r.read())
            yield Checked(gw, session, document), th
    finally:
        await th.stop()


# --------------------------------------------------------------------------- the document itself


async def test_the_served_document_is_valid_openapi_3_1(rig) -> None:
    client, _ = rig
    validate_openapi(client.document)
    assert client.document["openapi"] == "3.1.0"
    schemas = client.document["components"]["schemas"]
    assert {"Ack", "Rejection", "Error", "ErrorDetail", "MessageStatus", "SearchResult", "Health", "Readiness"} <= set(
        schemas
    )
    assert {"ResultsListing", "ResultAcknowledged", "TradeMessage"} <= set(schemas)
    assert "METHOD_NOT_ALLOWED" in schemas["ErrorDetail"]["properties"]["code"]["enum"]


async def test_every_served_route_is_described_and_every_described_route_is_served(rig) -> None:
    client, _ = rig
    app = build_app(client.gw)
    assert undocumented_operations(app, app[DOCUMENT]) == []
    assert served_operations(app) == documented_operations(app[DOCUMENT]) == documented_operations(client.document)
    assert {("/v1/results", "get"), ("/v1/results/{id}/ack", "post"), ("/vnsw/soap", "post"), ("/as4", "post")} <= (
        documented_operations(client.document)
    )
    soap = client.document["paths"]["/vnsw/soap"]["post"]["responses"]
    assert (set(soap["200"]["content"]), set(soap["500"]["content"])) == (
        {"text/xml"},
        {"text/xml", "application/json"},
    )
    assert client.document["paths"]["/as4"]["post"]["security"] == []


class _Undescribed(InboundEndpoint):
    scheme = "undescribed"

    def routes(self, intake: Intake) -> list[web.AbstractRouteDef]:
        async def hello(request: web.Request) -> web.Response:
            return web.Response(text="hi")

        return [web.get("/v1/hello", hello)]


async def test_a_route_an_endpoint_does_not_describe_fails_the_coverage_check(tmp_path: Path) -> None:
    gw = Gateway(make_config(tmp_path, {"TH": "http://127.0.0.1:9/x"}), serve_http=False)
    gw.inbound.append(_Undescribed("hello"))
    app = build_app(gw)
    assert undocumented_operations(app, app[DOCUMENT]) == [("/v1/hello", "get")]


def test_the_statuses_come_from_the_error_classes(tmp_path: Path) -> None:
    gw = Gateway(make_config(tmp_path, {"TH": "http://127.0.0.1:9/x"}), serve_http=False)
    paths = build_app(gw)[DOCUMENT]["paths"]
    submit = paths["/v1/messages"]["post"]["responses"]
    assert set(submit) == {"200", "202", "400", "401", "403", "408", "409", "413", "422", "429", "500", "503", "507"}
    assert "STORE_FULL" in submit["507"]["description"] and submit["507"]["headers"]["Retry-After"]["required"]
    assert "Retry-After" in submit["503"]["headers"]  # not required: STORE_SCHEMA_OUTDATED says no time
    assert "AUTH_MALFORMED" in submit["401"]["description"] and "REQUEST_TIMEOUT" in submit["408"]["description"]
    assert set(submit["202"]["headers"]) == {"Location"}
    assert set(submit["200"]["headers"]) == {"Location", "X-Duplicate"}
    assert set(paths["/v1/messages/{id}"]["get"]["responses"]) == {"200", "401", "404", "500", "503", "507"}
    assert set(paths["/v1/messages"]["get"]["responses"]) == {"200", "400", "401", "500", "503", "507"}
    assert set(paths["/readyz"]["get"]["responses"]) == {"200", "500", "503"}
    assert paths["/readyz"]["get"]["security"] == []
    assert "STORE_UNAVAILABLE" in paths["/readyz"]["get"]["responses"]["503"]["description"]
    assert set(paths["/metrics"]["get"]["responses"]) == {"200", "401", "403", "500"}
    assert "security" not in paths["/metrics"]["get"]


# --------------------------------------------------------------------------- every route, live


async def test_every_route_answers_as_the_document_describes(rig, dev_pki: DevPki) -> None:
    client, th = rig
    gw = client.gw
    moit = {**_bearer("MOIT"), "X-Document-Type": "eco.form_d", "Content-Type": "application/xml"}

    # submit: accepted, duplicate, harmonized JSON, refusals before and after storing
    first = await client.call("POST", "/v1/messages", data=doc(1), headers={**moit, "X-Message-Id": "E-1"})
    assert first.status == 202 and "X-Duplicate" not in first.headers
    ack = first.json()
    assert first.headers["Location"] == f"/v1/messages/{ack['id']}"
    again = await client.call("POST", "/v1/messages", data=doc(1), headers={**moit, "X-Message-Id": "E-1"})
    assert again.status == 200 and again.headers["X-Duplicate"] == "true" and again.json() == ack
    harmonized = convert((ROOT / "samples" / "form_d_two_items.xml").read_bytes(), "form-d", "json")
    as_json = {**moit, "Content-Type": "application/json", "X-Format": "json", "X-Message-Id": "E-JSON"}
    answer = await client.call("POST", "/v1/messages", data=harmonized, headers=as_json)
    assert answer.status == 202, answer.body
    bad_json = {**as_json, "X-Message-Id": "E-JSON-BAD"}
    answer = await client.call("POST", "/v1/messages", data=b'{"document": 1}', headers=bad_json)
    assert answer.status == 422 and answer.json()["error"]["code"] == "VALIDATION_FAILED"
    assert answer.json()["ack"]["state"] == "REJECTED" and answer.json()["error"]["issues"]
    answer = await client.call("POST", "/v1/messages", data=b"<Doc>", headers={**moit, "X-Message-Id": "E-BAD"})
    assert answer.status == 400 and answer.json()["error"]["code"] == "XML_MALFORMED"
    answer = await client.call("POST", "/v1/messages", data=doc(2), headers=moit)
    assert answer.status == 400 and answer.json()["error"]["code"] == "REQUEST_INVALID"
    answer = await client.call("POST", "/v1/messages", data=doc(2), headers={"X-Message-Id": "E-2"})
    assert answer.status == 401 and answer.json()["error"]["code"] == "AUTH_REQUIRED"
    answer = await client.call(
        "POST", "/v1/messages", data=doc(2), headers={**moit, "X-Message-Id": "E-2", "X-Document-Type": "sps.permit"}
    )
    assert answer.status == 403 and answer.json()["error"]["code"] == "AUTH_FORBIDDEN"
    big = doc(3, size=gw.config.gateway.max_message_bytes + 1)
    answer = await client.call("POST", "/v1/messages", data=big, headers={**moit, "X-Message-Id": "E-3"})
    assert answer.status == 413 and answer.json()["error"]["code"] == "XML_TOO_LARGE"

    # read and search
    await eventually(lambda: len(th.processed) >= 1)
    answer = await client.call("GET", "/v1/messages/{id}", path=f"/v1/messages/{ack['id']}", headers=_bearer("MOIT"))
    assert answer.status == 200 and answer.json()["id"] == ack["id"]
    answer = await client.call("GET", "/v1/messages/{id}", path=f"/v1/messages/{ack['id']}", headers=_bearer("MARD"))
    assert answer.status == 404 and answer.json()["error"]["code"] == "MESSAGE_NOT_FOUND"
    answer = await client.call("GET", "/v1/messages/{id}", path=f"/v1/messages/{ack['id']}")
    assert answer.status == 401 and answer.json()["error"]["code"] == "AUTH_REQUIRED"
    certificate = ("/v1/certificates/{issuing_country}/{number}", "/v1/certificates/VN/VN-SG-24-00001")
    answer = await client.call("GET", certificate[0], path=certificate[1], headers=_bearer("MOIT"))
    assert answer.status == 200 and answer.json()["history"][0]["status"] == "issued"  # the harmonized JSON one
    answer = await client.call("GET", certificate[0], path=certificate[1], headers=_bearer("MARD"))
    assert answer.status == 404 and answer.json()["error"]["code"] == "MESSAGE_NOT_FOUND"
    answer = await client.call("GET", "/v1/messages", path="/v1/messages?limit=10", headers=_bearer("MOIT"))
    assert answer.status == 200 and len(answer.json()["messages"]) == 4
    answer = await client.call("GET", "/v1/messages", path="/v1/messages?since=yesterday", headers=_bearer("MOIT"))
    assert (answer.status, answer.json()["error"]["code"], answer.json()["error"]["field"]) == (
        400,
        "REQUEST_INVALID",
        "since",
    )
    answer = await client.call("GET", "/v1/messages")
    assert answer.status == 401 and answer.json()["error"]["code"] == "AUTH_REQUIRED"

    # ops
    assert (await client.call("GET", "/healthz")).json() == {"status": "ok"}
    assert (await client.call("GET", "/readyz")).json()["status"] == "ready"
    assert b"nswgw_messages_received_total" in (await client.call("GET", "/metrics")).body
    assert (await client.call("GET", "/openapi.json")).json() == client.document

    # results polling (inbound endpoint "poll")
    trader = {**_bearer("TRADER"), "X-Document-Type": "sps.registration", "X-Message-Id": "R-1"}
    answer = await client.call("POST", "/v1/messages", data=doc("reg"), headers=trader)
    assert answer.status == 202
    result_id = answer.json()["id"]

    async def listed() -> list[str]:
        listing = await client.call("GET", "/v1/results", headers=_bearer("MARD"))
        return [r["id"] for r in listing.json()["results"]]

    await eventually(listed)
    assert await listed() == [result_id]
    answer = await client.call("GET", "/v1/results", path="/v1/results?limit=x", headers=_bearer("MARD"))
    assert answer.status == 400 and answer.json()["error"]["code"] == "REQUEST_INVALID"
    answer = await client.call("GET", "/v1/results", headers=_bearer("TRADER"))
    assert answer.status == 404 and answer.json()["error"]["code"] == "MESSAGE_NOT_FOUND"
    answer = await client.call("GET", "/v1/results")
    assert answer.status == 401 and answer.json()["error"]["code"] == "AUTH_REQUIRED"
    ack_path = f"/v1/results/{result_id}/ack"
    answer = await client.call("POST", "/v1/results/{id}/ack", path=ack_path, headers=_bearer("MARD"))
    assert answer.status == 200 and answer.json() == {"id": result_id, "acknowledged": True}
    answer = await client.call("POST", "/v1/results/{id}/ack", path="/v1/results/nope/ack", headers=_bearer("MARD"))
    assert answer.status == 404 and answer.json()["error"]["code"] == "MESSAGE_NOT_FOUND"

    # VNSW SOAP (inbound endpoint "vnsw-soap")
    answer = await client.call("GET", "/vnsw/soap", path="/vnsw/soap?wsdl", headers=_bearer("MARD"))
    assert answer.status == 200 and b"receiveRequest" in answer.body
    answer = await client.call("GET", "/vnsw/soap", headers=_bearer("MARD"))
    assert answer.status == 405 and answer.json()["error"]["code"] == "METHOD_NOT_ALLOWED"
    assert answer.headers["Allow"] == "POST"
    soap = {**_bearer("MARD"), "Content-Type": "text/xml; charset=utf-8"}
    answer = await client.call("POST", "/vnsw/soap", data=_soap(vnsw_envelope("V-1")), headers=soap)
    assert answer.status == 200 and b"receiveResponse" in answer.body
    answer = await client.call("POST", "/vnsw/soap", data=b"not xml", headers=soap)
    assert answer.status == 500 and b"SOAP-ENV:Client" in answer.body and b'code="XML_MALFORMED"' in answer.body
    answer = await client.call("POST", "/vnsw/soap", data=_soap(vnsw_envelope("V-2")))
    assert answer.status == 401 and answer.json()["error"]["code"] == "AUTH_REQUIRED"

    # AS4 (inbound endpoint "as4"): public, authenticated by the message's WS-Security signature
    answer = await client.call(
        "POST",
        "/as4",
        data=b"--x\r\n\r\nnot a message\r\n--x--",
        headers={"Content-Type": 'multipart/related; boundary="x"'},
    )
    assert answer.status == 200 and b"Error" in answer.body  # a signed ebMS error signal

    # the operator API
    ops = {"Authorization": "Bearer ops-token"}
    answer = await client.call("GET", "/v1/admin/messages", path="/v1/admin/messages?limit=2", headers=ops)
    assert answer.status == 200 and len(answer.json()["messages"]) == 2 and answer.json()["next_cursor"]
    answer = await client.call("GET", "/v1/admin/messages", headers=_bearer("MOIT"))
    assert answer.status == 403 and answer.json()["error"]["code"] == "AUTH_FORBIDDEN"
    answer = await client.call("GET", "/v1/admin/messages/{id}", path=f"/v1/admin/messages/{ack['id']}", headers=ops)
    assert answer.status == 200 and answer.json()["evidence"][0]["destination"] == "TH"
    answer = await client.call("GET", "/v1/admin/messages/{id}", path="/v1/admin/messages/nope", headers=ops)
    assert answer.status == 404 and answer.json()["error"]["code"] == "MESSAGE_NOT_FOUND"
    evidence = "/v1/admin/messages/{id}/evidence"
    answer = await client.call("GET", evidence, path="/v1/admin/messages/nope/evidence", headers=ops)
    assert answer.status == 404 and answer.json()["error"]["code"] == "MESSAGE_NOT_FOUND"
    answer = await client.call("GET", "/v1/admin/dead-letters", headers=ops)
    assert answer.status == 200 and answer.json() == {"dead_letters": []}
    replay = "/v1/admin/dead-letters/replay"
    answer = await client.call("POST", replay, json={"destination": "TH"}, headers=ops)
    assert answer.status == 200 and (answer.json()["replayed"], answer.json()["operator"]) == ([], "ops")
    replayed = answer.json()
    answer = await client.call("GET", "/v1/admin/actions", path="/v1/admin/actions?operator=ops", headers=ops)
    assert answer.status == 200 and [a["id"] for a in answer.json()["actions"]] == [replayed["action"]]
    answer = await client.call("POST", replay, json={"ids": ["nope"]}, headers=ops)
    assert answer.status == 404 and answer.json()["error"]["code"] == "MESSAGE_NOT_FOUND"
    answer = await client.call("GET", "/v1/admin/partners", headers=ops)
    assert answer.status == 200 and {p["destination"] for p in answer.json()["partners"]} == {"TH", "MARD-BOX"}
    answer = await client.call("POST", "/v1/admin/reload", headers=ops)
    assert answer.status == 409 and answer.json()["error"]["code"] == "RELOAD_REFUSED"  # started without a file
    answer = await client.call("GET", "/v1/admin/certificates", headers=ops)
    assert answer.status == 200  # this rig configures no trust files; the shape is checked against the document
    answer = await client.call("GET", "/v1/admin/origin-certificates", headers=ops)
    assert answer.status == 200 and answer.json()["next_cursor"] is None
    co = "/v1/admin/origin-certificates/{country}/{number}"
    answer = await client.call("GET", co, path="/v1/admin/origin-certificates/VN/nope", headers=ops)
    assert answer.status == 404 and answer.json()["error"]["code"] == "MESSAGE_NOT_FOUND"
    lists, one = "/v1/admin/reference-lists", "/v1/admin/reference-lists/{name}"
    versions = "/v1/admin/reference-lists/{name}/versions"
    body = {"owner": "MOIT", "purpose": "prohibited", "effective_from": "2027-01-01T00:00:00Z", "entries": []}
    answer = await client.call(
        "POST", versions, path=f"{lists}/import-prohibited.moit/versions", json=body, headers=ops
    )
    assert answer.status == 201 and answer.json()["version"] == 1
    answer = await client.call("POST", versions, path=f"{lists}/Bad/versions", json=body, headers=ops)
    assert answer.status == 422 and answer.json()["error"]["code"] == "REFERENCE_LIST_INVALID"
    answer = await client.call("GET", lists, headers=ops)
    assert answer.status == 200 and [x["name"] for x in answer.json()["lists"]] == ["import-prohibited.moit"]
    answer = await client.call("GET", one, path=f"{lists}/import-prohibited.moit", headers=ops)
    assert answer.status == 200 and answer.json()["in_force"] is None  # effective in the future
    answer = await client.call("GET", one, path=f"{lists}/nope.moit", headers=ops)
    assert answer.status == 404 and answer.json()["error"]["code"] == "REFERENCE_LIST_UNKNOWN"
    answer = await client.call("GET", "/v1/admin/events", path="/v1/admin/events?events=nope", headers=ops)
    assert answer.status == 400 and answer.json()["error"]["field"] == "events"
    streaming = asyncio.create_task(client.call("GET", "/v1/admin/events", headers=ops))
    await eventually(lambda: bool(gw.events._subscribers))
    gw.events.publish(Event("config_reloaded", gw.clock.now(), {"operator": "ops"}))
    gw.events.close()  # the stream ends as at the gateway's stop: the answer is complete
    answer = await streaming
    assert answer.status == 200 and answer.body.startswith(b"id: 1\nevent: config_reloaded\ndata: {")
    answer = await client.call("GET", "/v1/admin/disclosures", path="/v1/admin/disclosures?limit=5", headers=ops)
    assert answer.status == 200 and answer.json()["disclosures"] == []
    answer = await client.call("GET", "/v1/admin/disclosures", path="/v1/admin/disclosures?limit=x", headers=ops)
    assert answer.status == 400 and answer.json()["error"]["code"] == "REQUEST_INVALID"
    ship_call = "/v1/ship-calls/{reference}"
    answer = await client.call("GET", ship_call, path="/v1/ship-calls/SC-NONE", headers=_bearer("MOIT"))
    assert answer.status == 404 and answer.json()["error"]["code"] == "SHIP_CALL_UNKNOWN"
    admin_call = "/v1/admin/ship-calls/{reference}"
    answer = await client.call("GET", admin_call, path="/v1/admin/ship-calls/SC-NONE", headers=ops)
    assert answer.status == 404 and answer.json()["error"]["code"] == "SHIP_CALL_UNKNOWN"

    # the registry of issued documents: this rig grants no registry role
    check = {"enterprise": "0100000001", "declaration_reference": "D-1", "goods": [{"hs_code": "01022900"}]}
    answer = await client.call("POST", "/v1/registry/check", json=check, headers=_bearer("MOIT"))
    assert answer.status == 403 and answer.json()["error"]["code"] == "AUTH_FORBIDDEN"
    answer = await client.call("GET", "/v1/registry/documents", headers=_bearer("MOIT"))
    assert answer.status == 403 and answer.json()["error"]["code"] == "AUTH_FORBIDDEN"
    one_document = "/v1/registry/documents/{doc_type}/{number}"
    answer = await client.call("GET", one_document, path="/v1/registry/documents/permit/P-1", headers=_bearer("MOIT"))
    assert answer.status == 403 and answer.json()["error"]["code"] == "AUTH_FORBIDDEN"

    assert client.called == documented_operations(client.document)


async def test_an_as4_receipt_and_its_duplicate_answer_match_the_document(rig, dev_pki: DevPki) -> None:
    """The partner's adapter reads the answer itself: the endpoint's handler is served once more, recording."""
    client, _ = rig
    endpoint = next(ep for ep in client.gw.inbound if ep.scheme == "as4")
    seen: list[Answer] = []
    handle: Callable[[web.Request], Any] = endpoint.receiver.handle  # type: ignore[attr-defined]

    async def recording(request: web.Request) -> web.Response:
        response = await handle(request)
        seen.append(Answer(response.status, dict(response.headers), bytes(response.body or b"")))
        return response

    us, partner = side(dev_pki, "nsw-gateway", GATEWAY), side(dev_pki, "th-asw", PARTNER)
    server = web.Application()
    server.router.add_post("/as4", recording)
    runner = web.AppRunner(server, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        adapter = sender_to(f"http://127.0.0.1:{runner.addresses[0][1]}/as4", partner, us)
        async with adapter:
            await adapter.deliver(
                OutboundMessage(
                    message_id="TH-2", payload=FORM_D, sender=PARTNER, document_type=ACTION, conversation="c"
                )
            )
            await adapter.deliver(
                OutboundMessage(
                    message_id="TH-2", payload=FORM_D, sender=PARTNER, document_type=ACTION, conversation="c"
                )
            )
    finally:
        await runner.cleanup()
    assert [a.status for a in seen] == [200, 200] and seen[1].headers.get("X-AS4-Duplicate") == "true"
    for answer in seen:
        check_answer(client.document, "/as4", "post", answer)


# --------------------------------------------------------------------------- errors outside the handlers


async def test_an_unknown_path_is_PATH_NOT_FOUND_as_coded_json(rig) -> None:
    client, _ = rig
    async with client.session.get(f"{client.gw.url}/v2/nothing", headers=_bearer("MOIT")) as r:
        body = await r.json()
    assert r.status == 404 and (body["error"]["code"], body["error"]["field"]) == ("PATH_NOT_FOUND", "path")
    _validate(client.document, {"$ref": "#/components/schemas/Error"}, body)


async def test_a_wrong_method_is_METHOD_NOT_ALLOWED_with_allow(rig) -> None:
    client, _ = rig
    async with client.session.delete(f"{client.gw.url}/v1/messages", headers=_bearer("MOIT")) as r:
        body = await r.json()
    assert r.status == 405 and body["error"]["code"] == "METHOD_NOT_ALLOWED"
    assert r.headers["Allow"] == "GET, POST" and body["error"]["details"] == {"allow": ["GET", "POST"]}
    _validate(client.document, {"$ref": "#/components/schemas/Error"}, body)
    async with client.session.post(f"{client.gw.url}/healthz") as r:
        assert r.status == 405 and (await r.json())["error"]["code"] == "METHOD_NOT_ALLOWED"
        assert r.headers["Allow"] == "GET"


async def test_readyz_answers_503_not_ready_naming_the_failed_check_when_the_store_is_down(rig, monkeypatch) -> None:
    client, _ = rig

    def down(fn: object) -> None:
        raise StoreUnavailable("connection refused", field="store.url")

    monkeypatch.setattr(client.gw.store, "_write", down)
    answer = await client.call("GET", "/readyz")
    body = answer.json()
    assert answer.status == 503 and body["status"] == "not ready" and answer.headers["Retry-After"].isdigit()
    assert body["checks"]["write"].startswith("failed: [STORE_UNAVAILABLE]")
    assert {k: v for k, v in body["checks"].items() if k != "write"} == {
        "free_space": "ok",
        "integrity": "ok",
        "journal": "ok",
    }


async def test_an_unexpected_failure_is_500_GATEWAY_INTERNAL(rig, monkeypatch) -> None:
    client, _ = rig

    async def broken(message_id: str) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(client.gw.store, "get", broken)
    answer = await client.call("GET", "/v1/messages/{id}", path="/v1/messages/x", headers=_bearer("MOIT"))
    assert answer.status == 500 and answer.json()["error"]["code"] == GatewayError.code


# --------------------------------------------------------------------------- times


def _instant(text: str) -> float:
    assert RFC3339_UTC.fullmatch(text), text
    return datetime.fromisoformat(text).timestamp()


async def test_api_times_are_rfc3339_utc_strings_and_epoch_since_still_filters(rig) -> None:
    client, th = rig
    headers = {**_bearer("MOIT"), "X-Document-Type": "eco.form_d", "X-Message-Id": "T-1"}
    ack = (await client.call("POST", "/v1/messages", data=doc(1), headers=headers)).json()
    received = _instant(ack["received_at"])
    await eventually(lambda: len(th.processed) == 1)

    async def record() -> dict[str, Any]:
        answer = await client.call(
            "GET", "/v1/messages/{id}", path=f"/v1/messages/{ack['id']}", headers=_bearer("MOIT")
        )
        return answer.json()

    async def acknowledged() -> bool:
        return (await record())["state"] == "ACKNOWLEDGED"

    await eventually(acknowledged)
    status = await record()
    assert status["received_at"] == ack["received_at"]
    assert all(RFC3339_UTC.fullmatch(h["at"]) for h in status["history"])
    assert (status["history"][0]["to"], status["history"][0]["at"]) == ("RECEIVED", ack["received_at"])
    [delivery] = status["deliveries"]
    assert _instant(delivery["queued_at"]) < _instant(delivery["deadline"])
    assert RFC3339_UTC.fullmatch(delivery["next_attempt_at"])
    assert delivery["content_type"] == "application/xml"

    for since, expected in ((received - 60, [ack["id"]]), (received + 60, [])):
        for value in (str(since), datetime.fromtimestamp(since, UTC).isoformat()):
            answer = await client.call(
                "GET", "/v1/messages", path="/v1/messages", params={"since": value}, headers=_bearer("MOIT")
            )
            assert [m["id"] for m in answer.json()["messages"]] == expected, value


async def test_polled_results_carry_stored_at_as_rfc3339(rig) -> None:
    client, _ = rig
    headers = {**_bearer("TRADER"), "X-Document-Type": "sps.registration", "X-Message-Id": "R-T"}
    assert (await client.call("POST", "/v1/messages", data=doc("reg"), headers=headers)).status == 202

    async def results() -> list[dict[str, Any]]:
        return list((await client.call("GET", "/v1/results", headers=_bearer("MARD"))).json()["results"])

    await eventually(results)
    [result] = await results()
    assert RFC3339_UTC.fullmatch(result["stored_at"])
