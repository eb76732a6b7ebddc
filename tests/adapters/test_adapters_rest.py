"""REST/JSON results: signed webhooks retried by the delivery engine, and polling with acknowledgement."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from adapters.rest import SIGNATURE_HEADER, ResultsEndpoint, WebhookAdapter, sign_detached, verify_webhook, webhook_body
from gateway.api import Gateway
from gateway.config import parse_config
from gateway.errors import ConfigError, SignatureError
from gateway.ports import OutboundMessage
from helpers.adapters import webhook_signer
from helpers.gateway import TOKENS, eventually, make_config

SIGNER = webhook_signer()


def _body() -> tuple[bytes, str]:
    body = webhook_body(OutboundMessage("g1", b"<Permit/>", "MARD", "sps.permit", "c", reference="r1"))
    return body, sign_detached(body, SIGNER, claims={"nsw-mid": "g1"})


def test_webhook_signature_verifies_and_binds_the_message_id() -> None:
    body, jws = _body()
    header = verify_webhook(body, jws, SIGNER.certificate)
    assert header["alg"] == "ES256" and header["nsw-mid"] == "g1"
    doc = json.loads(body)
    assert base64.b64decode(doc["payload"]) == b"<Permit/>" and doc["reference"] == "r1"


def test_altered_webhook_body_is_SIG_SIGNATURE_INVALID() -> None:
    body, jws = _body()
    with pytest.raises(SignatureError) as err:
        verify_webhook(body.replace(b"MARD", b"MOIT"), jws, SIGNER.certificate)
    assert err.value.code == "SIG_SIGNATURE_INVALID"


def test_webhook_signed_by_another_key_is_SIG_SIGNATURE_INVALID() -> None:
    body, _ = _body()
    other = webhook_signer()
    with pytest.raises(SignatureError) as err:
        verify_webhook(body, sign_detached(body, other), SIGNER.certificate)
    assert err.value.code == "SIG_SIGNATURE_INVALID"


def test_unsigned_alg_none_webhook_is_SIG_MALFORMED() -> None:
    body, jws = _body()
    forged = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode() + ".."
    with pytest.raises(SignatureError) as err:
        verify_webhook(body, forged, SIGNER.certificate)
    assert err.value.code == "SIG_MALFORMED" and err.value.field == f"{SIGNATURE_HEADER}.alg"
    with pytest.raises(SignatureError) as err:
        verify_webhook(body, jws.replace("..", ".x."), SIGNER.certificate)
    assert err.value.code == "SIG_MALFORMED"


async def test_a_webhook_relayed_for_an_enterprise_names_it_in_the_signed_body_and_the_header() -> None:
    seen: list[tuple[dict[str, Any], str | None]] = []

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        verify_webhook(body, request.headers[SIGNATURE_HEADER], SIGNER.certificate)
        seen.append((json.loads(body), request.headers.get("X-On-Behalf-Of")))
        return web.json_response({"message_id": json.loads(body)["message_id"]})

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    try:
        async with WebhookAdapter(url, options={"signer": SIGNER}) as adapter:
            relayed = OutboundMessage("g2", b"<Reg/>", "BROKER", "sps.registration", "c", on_behalf_of="0300000001")
            await adapter.deliver(relayed)
            await adapter.deliver(OutboundMessage("g3", b"<Permit/>", "MARD", "sps.permit", "c"))
    finally:
        await runner.cleanup()
    (first, first_header), (second, second_header) = seen
    assert (first["sender"], first["on_behalf_of"], first_header) == ("BROKER", "0300000001", "0300000001")
    assert "on_behalf_of" not in second and second_header is None


def test_webhook_without_a_key_is_config_invalid_naming_the_option() -> None:
    with pytest.raises(ConfigError) as err:
        WebhookAdapter("http://127.0.0.1:9/hook")
    assert err.value.field == "options.signer"


async def test_webhook_is_retried_by_the_delivery_engine_with_the_same_id_and_a_valid_signature(tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        header = verify_webhook(body, request.headers[SIGNATURE_HEADER], SIGNER.certificate)
        seen.append({"mid": header["nsw-mid"], "id": request.headers["X-Message-Id"]})
        if len(seen) < 3:
            return web.Response(status=503)
        return web.json_response({"message_id": json.loads(body)["message_id"]})

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    try:
        destination = {"adapter": "webhook", "options": {"signer": SIGNER}}
        config = make_config(tmp_path, {"TRADER-HOOK": url}, per_destination={"TRADER-HOOK": destination})
        async with Gateway(config, adapters={"TRADER-HOOK": WebhookAdapter(url, options={"signer": SIGNER})}) as gw:
            async with (
                aiohttp.ClientSession() as s,
                s.post(
                    f"{gw.url}/v1/messages",
                    data=b"<Permit>1</Permit>",
                    headers={
                        "Authorization": f"Bearer {TOKENS['MARD']}",
                        "X-Message-Id": "p-1",
                        "X-Document-Type": "sps.permit",
                    },
                ) as r,
            ):
                gid = (await r.json())["id"]

            async def acked() -> bool:
                rec = await gw.store.get(gid)
                return rec is not None and rec.state.value == "ACKNOWLEDGED"

            await eventually(acked)
            record = await gw.store.get(gid)
        assert record is not None and record.deliveries[0].attempts == 3
        assert {(s["mid"], s["id"]) for s in seen} == {(gid, gid)}
    finally:
        await runner.cleanup()


@pytest.fixture
async def polling(tmp_path: Path):  # type: ignore[no-untyped-def]
    config = make_config(
        tmp_path,
        {"MARD-BOX": (tmp_path / "box").as_uri()},
        per_destination={"MARD-BOX": {"adapter": "mailbox", "options": {"party": "MARD"}}},
    )
    gw = Gateway(config)
    gw.inbound.append(ResultsEndpoint("results"))
    async with gw, aiohttp.ClientSession() as s:
        yield gw, s


async def test_acknowledging_an_unknown_result_is_MESSAGE_NOT_FOUND(polling) -> None:  # type: ignore[no-untyped-def]
    gw, s = polling
    async with s.post(f"{gw.url}/v1/results/nope/ack", headers={"Authorization": f"Bearer {TOKENS['MARD']}"}) as r:
        assert r.status == 404 and (await r.json())["error"]["code"] == "MESSAGE_NOT_FOUND"


async def test_party_without_a_mailbox_polls_MESSAGE_NOT_FOUND(polling) -> None:  # type: ignore[no-untyped-def]
    gw, s = polling
    async with s.get(f"{gw.url}/v1/results", headers={"Authorization": f"Bearer {TOKENS['TRADER']}"}) as r:
        body = await r.json()
    assert r.status == 404 and (body["error"]["code"], body["error"]["field"]) == ("MESSAGE_NOT_FOUND", "party")


async def test_polling_without_a_token_is_AUTH_REQUIRED(polling) -> None:  # type: ignore[no-untyped-def]
    gw, s = polling
    async with s.get(f"{gw.url}/v1/results") as r:
        assert r.status == 401 and (await r.json())["error"]["code"] == "AUTH_REQUIRED"


async def test_a_result_is_listed_until_acknowledged_and_a_retry_does_not_resurrect_it(polling, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    gw, s = polling
    auth = {"Authorization": f"Bearer {TOKENS['MARD']}"}
    async with s.post(
        f"{gw.url}/v1/messages",
        data=b"<Eco/>",
        headers={
            **{"Authorization": f"Bearer {TOKENS['MOIT']}"},
            "X-Message-Id": "e-1",
            "X-Document-Type": "eco.form_d",
        },
    ) as r:
        gid = (await r.json())["id"]

    async def listed() -> list[str]:
        async with s.get(f"{gw.url}/v1/results", headers=auth) as r:
            return [x["id"] for x in (await r.json())["results"]]

    await eventually(lambda: listed())
    assert await listed() == [gid] and await listed() == [gid]
    async with s.post(f"{gw.url}/v1/results/{gid}/ack", headers=auth) as r:
        assert r.status == 200
    async with s.post(f"{gw.url}/v1/results/{gid}/ack", headers=auth) as r:
        assert r.status == 200  # acknowledging twice is harmless
    adapter = gw.engine.workers["MARD-BOX"].adapter
    await adapter.deliver(OutboundMessage(gid, b"<Eco/>", "MOIT", "eco.form_d", "c"))  # a late retry
    assert await listed() == []


def test_inbound_section_names_a_known_endpoint_or_suggests_one(tmp_path: Path) -> None:
    base = {"gateway": {"signing": "off"}, "store": {"url": f"sqlite:///{tmp_path / 'g.db'}"}}
    config = parse_config({**base, "inbound": {"vnsw": {"endpoint": "vnsw-soap", "options": {"path": "/soap"}}}})
    assert config.inbound["vnsw"].endpoint == "vnsw-soap"
    gw = Gateway(config)
    assert [(e.name, e.scheme, getattr(e, "path", None)) for e in gw.inbound] == [("vnsw", "vnsw-soap", "/soap")]
    with pytest.raises(ConfigError) as err:
        parse_config({**base, "inbound": {"vnsw": {"endpoint": "vnsw-sop"}}})
    assert err.value.field == "inbound.vnsw.endpoint" and "did you mean 'vnsw-soap'" in err.value.message


async def _submit_form_d(tmp_path: Path, mid: str, body: bytes, fmt: str, ctype: str) -> None:
    """Submit over the REST API to a Form D destination; check status and what the partner got."""
    from helpers.gateway import Receiver
    from mappings.registry import get

    receiver = await Receiver().start()
    try:
        config = make_config(tmp_path, {"TH": receiver.url}, per_destination={"TH": {"format": "form-d"}})
        async with Gateway(config) as gw, aiohttp.ClientSession() as s:
            auth = {"Authorization": f"Bearer {TOKENS['MOIT']}"}
            async with s.post(
                f"{gw.url}/v1/messages",
                data=body,
                headers={
                    **auth,
                    "X-Message-Id": mid,
                    "X-Document-Type": "eco.form_d",
                    "X-Format": fmt,
                    "Content-Type": ctype,
                },
            ) as r:
                assert r.status == 202, await r.text()
                gid = (await r.json())["id"]

            async def acked() -> bool:
                rec = await gw.store.get(gid)
                return rec is not None and rec.state.value == "ACKNOWLEDGED"

            await eventually(acked)
            async with s.get(f"{gw.url}/v1/messages/{gid}", headers=auth) as r:
                status = await r.json()
        assert status["state"] == "ACKNOWLEDGED" and status["history"][-1]["to"] == "ACKNOWLEDGED"
        [request] = receiver.requests
        get("form-d").parse(request["body"])  # arrived as Form D XML
    finally:
        await receiver.stop()


async def test_native_xml_submission_and_status_over_the_rest_api(tmp_path: Path) -> None:
    from helpers.mappings import form_d
    from mappings.registry import get

    await _submit_form_d(tmp_path, "x-1", get("form-d").emit(form_d()), "form-d", "application/xml")


async def test_harmonized_json_submission_is_mapped_to_the_destination_format(tmp_path: Path) -> None:
    from helpers.mappings import form_d
    from mappings.registry import get

    await _submit_form_d(tmp_path, "j-1", get("json").emit(form_d()), "json", "application/json")


def test_webhook_and_mailbox_destinations_and_poll_endpoint_from_toml_values(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    signer = webhook_signer()
    (tmp_path / "k.pem").write_bytes(
        signer._key.private_bytes(  # type: ignore[attr-defined]
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    (tmp_path / "c.pem").write_bytes(signer.certificate.public_bytes(serialization.Encoding.PEM))
    config = parse_config(
        {
            "gateway": {"verification": "well-formed", "signing": "off"},
            "store": {"url": f"sqlite:///{tmp_path / 'g.db'}"},
            "parties": {"MARD": {"tokens": ["t"], "document_types": ["*"]}},
            "destinations": {
                "HOOK": {
                    "adapter": "webhook",
                    "url": "https://trader.example/hook",
                    "options": {"signer": {"key": str(tmp_path / "k.pem"), "cert": str(tmp_path / "c.pem")}},
                },
                "BOX": {"adapter": "mailbox", "url": (tmp_path / "box").as_uri(), "options": {"party": "MARD"}},
            },
            "inbound": {
                "results": {"endpoint": "poll"},
                "legacy": {
                    "endpoint": "filedrop",
                    "options": {"path": str(tmp_path / "drop"), "party": "MARD", "document_type": "sps.permit"},
                },
            },
        }
    )
    gw = Gateway(config)
    hook = gw.engine.workers["HOOK"].adapter
    assert isinstance(hook, WebhookAdapter) and hook.signer.certificate == signer.certificate
    assert [e.scheme for e in gw.inbound] == ["poll", "filedrop"]
