"""The HTTP API: authentication, authorization, intake errors, duplicates, reads, search, ops endpoints."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from gateway.api import Gateway
from gateway.model import PartyId, State
from gateway.ports import VerifiedMessage, Verifier
from helpers.gateway import TOKENS, Receiver, doc, eventually, make_config, submit


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[tuple[Gateway, aiohttp.ClientSession, Receiver]]:
    th = await Receiver().start()
    config = make_config(
        tmp_path,
        {"TH": th.url},
        routes=[
            {"document_type": "eco.form_d", "to": ["TH"]},
            {"document_type": "sps.registration", "to": ["TH"]},
            {"document_type": "sps.permit", "to": ["TH"]},
        ],
    )
    try:
        async with Gateway(config) as gw, aiohttp.ClientSession() as s:
            yield gw, s, th
    finally:
        await th.stop()


async def test_missing_token_is_rejected_with_auth_required(rig) -> None:
    gw, s, _ = rig
    async with s.post(f"{gw.url}/v1/messages", data=doc(1)) as r:
        body = await r.json()
    assert r.status == 401 and body["error"]["code"] == "AUTH_REQUIRED" and body["error"]["field"] == "Authorization"
    async with s.get(f"{gw.url}/v1/messages", headers={"Authorization": "Bearer wrong"}) as r:
        assert r.status == 401 and (await r.json())["error"]["code"] == "AUTH_REQUIRED"


async def test_party_cannot_submit_as_another_party(rig) -> None:
    gw, s, th = rig
    status, body = await submit(s, gw.url, "MARD", "M-1", "eco.form_d", doc(1), X_Sender="MOIT")
    assert status == 403 and body["error"]["code"] == "AUTH_FORBIDDEN" and body["error"]["field"] == "X-Sender"
    assert th.requests == []


async def test_party_cannot_submit_a_document_type_it_is_not_configured_for(rig) -> None:
    gw, s, _ = rig
    status, body = await submit(s, gw.url, "MARD", "M-1", "eco.form_d", doc(1))
    assert status == 403 and body["error"]["code"] == "AUTH_FORBIDDEN"
    assert body["error"]["field"] == "X-Document-Type"


async def test_missing_message_id_names_the_header(rig) -> None:
    gw, s, _ = rig
    async with s.post(
        f"{gw.url}/v1/messages",
        data=doc(1),
        headers={"Authorization": f"Bearer {TOKENS['MOIT']}", "X-Document-Type": "eco.form_d"},
    ) as r:
        body = await r.json()
    assert r.status == 400 and body["error"]["code"] == "REQUEST_INVALID" and body["error"]["field"] == "X-Message-Id"


async def test_malformed_xml_is_rejected_stored_and_the_same_rejection_comes_back_on_resubmission(rig) -> None:
    gw, s, th = rig
    status, body = await submit(s, gw.url, "MOIT", "BAD-1", "eco.form_d", b"<Doc><unclosed></Doc>")
    assert status == 400 and body["error"]["code"] == "XML_MALFORMED"
    assert body["ack"]["state"] == "REJECTED"
    again_status, again = await submit(s, gw.url, "MOIT", "BAD-1", "eco.form_d", doc(1))
    assert again_status == 400 and again["ack"] == body["ack"]
    async with s.get(
        f"{gw.url}/v1/messages/{body['ack']['id']}", headers={"Authorization": f"Bearer {TOKENS['MOIT']}"}
    ) as r:
        record = await r.json()
    assert record["state"] == "REJECTED" and record["error"]["code"] == "XML_MALFORMED"
    assert [h["to"] for h in record["history"]] == ["RECEIVED", "REJECTED"]
    assert th.requests == []


async def test_doctype_in_a_submission_is_rejected_by_the_hardened_parser(rig) -> None:
    gw, s, _ = rig
    evil = b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x "y">]><Doc>&x;</Doc>'
    status, body = await submit(s, gw.url, "MOIT", "XXE-1", "eco.form_d", evil)
    assert status == 400 and body["error"]["code"] == "XML_DTD_FORBIDDEN"


async def test_unrouted_document_type_is_rejected_with_route_not_found(tmp_path: Path) -> None:
    config = make_config(
        tmp_path, {"TH": "http://127.0.0.1:9/x"}, routes=[{"document_type": "eco.form_d", "to": ["TH"]}]
    )
    async with Gateway(config) as gw, aiohttp.ClientSession() as s:
        status, body = await submit(s, gw.url, "MOIT", "A-1", "eco.amendment", doc(1))
    assert status == 422 and body["error"]["code"] == "ROUTE_NOT_FOUND"
    assert body["error"]["field"] == "X-Document-Type"


async def test_unknown_destination_is_refused_with_destination_unknown_not_routed_elsewhere(rig) -> None:
    gw, s, th = rig
    status, body = await submit(s, gw.url, "MOIT", "D-1", "eco.form_d", doc(1), **{"X-Destination": "TJ"})
    assert status == 422 and body["error"]["code"] == "DESTINATION_UNKNOWN"
    assert body["error"]["field"] == "X-Destination" and body["error"]["message"].endswith("known destinations: TH")
    assert body["ack"]["state"] == State.REJECTED.value and body["ack"]["destinations"] == []
    status, body = await submit(s, gw.url, "MOIT", "D-2", "eco.form_d", doc(2), **{"X-Destination": "TH"})
    assert status == 202 and body["destinations"] == ["TH"]
    await eventually(lambda: len(th.requests) == 1)
    assert [b"<No>2</No>" in r["body"] for r in th.requests] == [True]


async def test_search_takes_iso_8601_or_epoch_and_refuses_bad_bounds_naming_the_parameter(rig) -> None:
    gw, s, _ = rig
    status, _ = await submit(s, gw.url, "MOIT", "S-1", "eco.form_d", doc(1))
    assert status == 202
    auth = {"Authorization": f"Bearer {TOKENS['MOIT']}"}

    async def search(**params: str) -> tuple[int, dict]:
        async with s.get(f"{gw.url}/v1/messages", params=params, headers=auth) as r:
            return r.status, await r.json()

    for since in ("2000-01-01T00:00:00Z", "2000-01-01T07:00:00+07:00", "2000-01-01", "946684800"):
        status, body = await search(since=since)
        assert status == 200 and [m["message_id"] for m in body["messages"]] == ["S-1"], since
    status, body = await search(until="2000-01-01T00:00:00Z")
    assert status == 200 and body["messages"] == []
    for params, field in (
        ({"since": "yesterday"}, "since"),
        ({"limit": "-1"}, "limit"),
        ({"state": "queued"}, "state"),
    ):
        status, body = await search(**params)
        assert status == 400 and body["error"]["code"] == "REQUEST_INVALID" and body["error"]["field"] == field
    status, body = await search(state="queued")
    assert "QUEUED" in body["error"]["message"]


async def test_duplicate_submission_returns_the_original_ack_and_is_delivered_once(rig) -> None:
    gw, s, th = rig
    status, ack = await submit(s, gw.url, "MOIT", "ECO-1", "eco.form_d", doc(1))
    assert status == 202
    await eventually(lambda: len(th.processed) == 1)
    status2, ack2 = await submit(s, gw.url, "MOIT", "ECO-1", "eco.form_d", doc(1))
    assert status2 == 200 and ack2 == ack
    assert th.processed == [ack["id"]] and len(th.requests) == 1


async def test_message_state_and_history_are_visible_to_its_sender_only(rig) -> None:
    gw, s, th = rig
    _, ack = await submit(s, gw.url, "MOIT", "ECO-1", "eco.form_d", doc(1))
    await eventually(lambda: len(th.processed) == 1)

    async def read(party: str) -> tuple[int, dict]:
        async with s.get(
            f"{gw.url}/v1/messages/{ack['id']}", headers={"Authorization": f"Bearer {TOKENS[party]}"}
        ) as r:
            return r.status, await r.json()

    async def acknowledged() -> bool:
        return (await read("MOIT"))[1]["state"] == "ACKNOWLEDGED"

    await eventually(acknowledged)
    status, record = await read("MOIT")
    assert status == 200
    assert [h["to"] for h in record["history"]] == [
        "RECEIVED",
        "VERIFIED",
        "MAPPED",
        "QUEUED",
        "QUEUED",
        "DELIVERED",
        "ACKNOWLEDGED",
    ]
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z", h["at"]) for h in record["history"])
    status, other = await read("MARD")
    assert status == 404 and other["error"]["code"] == "MESSAGE_NOT_FOUND"


async def test_permit_issued_in_reply_is_correlated_to_the_registration(rig) -> None:
    gw, s, th = rig
    _, reg = await submit(s, gw.url, "TRADER", "REG-7", "sps.registration", doc("reg"))
    _, permit = await submit(s, gw.url, "MARD", "PERMIT-7", "sps.permit", doc("permit"), X_Reference=reg["id"])
    async with s.get(f"{gw.url}/v1/messages/{reg['id']}", headers={"Authorization": f"Bearer {TOKENS['TRADER']}"}) as r:
        record = await r.json()
    assert record["replies"] == [permit["id"]]
    await eventually(lambda: len(th.processed) == 2)
    assert th.requests[1]["headers"]["X-Reference"] == reg["id"]


async def test_search_returns_only_the_partys_own_messages(rig) -> None:
    gw, s, _ = rig
    for n in range(3):
        await submit(s, gw.url, "MOIT", f"E-{n}", "eco.form_d", doc(n), X_Conversation_Id="C-9")
    await submit(s, gw.url, "TRADER", "R-1", "sps.registration", doc("r"))
    headers = {"Authorization": f"Bearer {TOKENS['MOIT']}"}
    async with s.get(f"{gw.url}/v1/messages?conversation=C-9&limit=2", headers=headers) as r:
        found = (await r.json())["messages"]
    assert len(found) == 2 and {m["sender"] for m in found} == {"MOIT"}
    async with s.get(f"{gw.url}/v1/messages?state=NOPE", headers=headers) as r:
        body = await r.json()
    assert r.status == 400 and body["error"]["code"] == "REQUEST_INVALID" and body["error"]["field"] == "state"


async def test_ops_endpoints(rig) -> None:
    gw, s, th = rig
    await submit(s, gw.url, "MOIT", "ECO-1", "eco.form_d", doc(1))
    await eventually(lambda: gw.metrics.value("nswgw_deliveries_total", destination="TH") == 1)
    async with s.get(f"{gw.url}/healthz") as r:
        assert r.status == 200
    async with s.get(f"{gw.url}/readyz") as r:
        assert r.status == 200 and (await r.json())["status"] == "ready"
    async with s.get(f"{gw.url}/metrics") as r:
        text = await r.text()
    assert 'nswgw_messages_received_total{sender="MOIT"} 1' in text
    assert 'nswgw_deliveries_total{destination="TH"} 1' in text
    assert 'nswgw_delivery_latency_seconds_count{destination="TH"} 1' in text
    async with s.get(f"{gw.url}/openapi.json") as r:
        spec = json.loads(await r.read())
    assert set(spec["paths"]) >= {"/v1/messages", "/v1/messages/{id}", "/healthz", "/readyz", "/metrics"}
    assert "AUTH_FORBIDDEN" in spec["components"]["schemas"]["ErrorDetail"]["properties"]["code"]["enum"]
    assert State.ACKNOWLEDGED.value in spec["components"]["schemas"]["State"]["enum"]


class _CountingVerifier:
    """The gateway's verifier behind one that notes how many references the document it is handed has."""

    def __init__(self, inner: Verifier) -> None:
        self.inner = inner
        self.references: list[int] = []

    def verify(self, raw: bytes, sender: PartyId, *, format: str = "xml") -> VerifiedMessage:
        self.references.append(sys.getrefcount(raw))
        return self.inner.verify(raw, sender, format=format)


async def test_a_submitted_body_is_held_by_the_verifier_alone_once_handed_over(rig) -> None:  # type: ignore[no-untyped-def]
    gw, s, th = rig
    counting = _CountingVerifier(gw.broker.verifier)
    gw.broker.verifier = counting
    # 900 kB: aiohttp's client warns about a bytes body above 1 MiB
    status, ack = await submit(s, gw.url, "MOIT", "M-BIG", "eco.form_d", doc(1, 900_000))
    assert status == 202, ack
    # the verifier's own name and getrefcount's argument: neither aiohttp, the handler nor the broker keeps it
    assert counting.references == [2]
    await eventually(lambda: len(th.requests) == 1)
