"""VNSW ministry SOAP: our inbound endpoint with zeep as the ministry's client; our outbound zeep adapter
against a ministry written with spyne. Everything on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import requests
import zeep.exceptions as zx
from lxml import etree

from adapters.vnsw_soap import VnswSoapAdapter, VnswSoapEndpoint, translate_error
from gateway.api import Gateway
from gateway.errors import ConfigError, NswError, PartnerError, PartnerRejected, PartnerUnavailable, ReceiptInvalid
from gateway.model import gateway_message_id
from gateway.ports import MessageIdReceiptVerifier, OutboundMessage
from gateway.store.base import MessageQuery
from helpers.adapters import SpyneMinistry, call_vnsw_endpoint, soap_driver_errors, vnsw_envelope
from helpers.gateway import TOKENS, Receiver, dev_trust, make_config
from helpers.ocsp import dev_pki  # noqa: F401
from mappings.registry import get
from mappings.xmlformat import load_schema
from signing.dev.pki import DevPki
from signing.keys import SoftwareSigner
from signing.policy import SigningProfile
from signing.sign import sign_document
from signing.xml import parse_xml

pytestmark = [pytest.mark.interop]

SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"


# --------------------------------------------------------------------------- inbound


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    receiver = await Receiver().start()
    config = make_config(tmp_path, {"NSW-BACKEND": receiver.url})
    gw = Gateway(config)
    gw.inbound.append(VnswSoapEndpoint("vnsw", options={"document_types": {"BNNPTNT0600011": "sps.permit"}}))
    try:
        async with gw:
            yield gw
    finally:
        await receiver.stop()


async def _call(gw: Gateway, payload: str | bytes, token: str = TOKENS["MARD"]):  # type: ignore[no-untyped-def]
    text = payload.decode() if isinstance(payload, bytes) else payload
    answer = await asyncio.to_thread(call_vnsw_endpoint, f"{gw.url}/vnsw/soap", token, text)
    return parse_xml(answer.encode())


async def _post_soap(gw: Gateway, body: bytes) -> tuple[int, bytes]:
    async with (
        aiohttp.ClientSession() as s,
        s.post(
            f"{gw.url}/vnsw/soap",
            data=body,
            headers={"Authorization": f"Bearer {TOKENS['MARD']}", "Content-Type": "text/xml; charset=utf-8"},
        ) as r,
    ):
        return r.status, await r.read()


def _errors(answer) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return [(e.findtext("ErrorCode"), e.findtext("ErrorName")) for e in answer.iterfind("Body/Content/ErrorList/Error")]


async def test_zeep_client_gets_the_function_99_ack_shaped_like_the_corpus(gateway: Gateway) -> None:
    answer = await _call(gateway, vnsw_envelope("m-99"))
    assert load_schema("vnsw/vnsw_ack.xsd").validate(answer)
    subject = answer.find("Header/Subject")
    assert [c.tag for c in answer] == ["Header", "Body", "SystemSignature"]
    assert (
        subject.findtext("documentType"),
        subject.findtext("type"),
        subject.findtext("function"),
        subject.findtext("reference"),
    ) == ("BNNPTNT0600011", "12", "99", "BNNPTNT11190000272")
    assert answer.findtext("Header/From/identity") == "NSW" and answer.findtext("Header/To/identity") == "BNNPTNT"
    assert answer.findtext("Header/Reference/version") == "01"
    assert answer.findtext("Header/Reference/messageId") != "m-99"
    assert answer.find("Body/Content/ReceiveDate") is not None and answer.find("Body/Signature") is not None
    msg = get("vnsw").parse(etree.tostring(answer))
    assert msg.envelope is not None and msg.envelope.function == "99"
    record = await gateway.store.get(gateway_message_id("MARD", "m-99"))
    assert record is not None and record.message.state.value == "QUEUED"
    env = record.message.envelope
    assert (env.sender, env.document_type, env.reference, env.conversation, env.procedure, env.format) == (
        "MARD",
        "sps.permit",
        "BNNPTNT11190000272",
        "BNNPTNT11190000272",
        "BNNPTNT0600011",
        "vnsw",
    )


async def test_resent_message_id_is_acknowledged_again_and_stored_once(gateway: Gateway) -> None:
    first = await _call(gateway, vnsw_envelope("m-dup"))
    second = await _call(gateway, vnsw_envelope("m-dup"))
    assert first.findtext("Header/Subject/function") == second.findtext("Header/Subject/function") == "99"
    found = await gateway.store.search(MessageQuery(sender="MARD"))
    assert [r.message.envelope.message_id for r in found] == ["m-dup"]


async def test_unparseable_payload_gets_00_with_XML_MALFORMED_and_reference_00(gateway: Gateway) -> None:
    answer = await _call(gateway, "<Envelope><Header>")
    assert load_schema("vnsw/vnsw_ack.xsd").validate(answer)
    assert answer.findtext("Header/Subject/function") == "00"
    assert answer.findtext("Header/Subject/reference") == "00" and answer.findtext("Header/Subject/type") == "00"
    [(code, name)] = _errors(answer)
    assert code == "XML_MALFORMED" and "line" in name


async def test_payload_with_a_dtd_gets_00_with_XML_DTD_FORBIDDEN(gateway: Gateway) -> None:
    evil = '<?xml version="1.0"?><!DOCTYPE Envelope [<!ENTITY x "boom">]><Envelope>&x;</Envelope>'
    [(code, _)] = _errors(await _call(gateway, evil))
    assert code == "XML_DTD_FORBIDDEN"


async def test_missing_message_id_gets_00_naming_the_element(gateway: Gateway) -> None:
    payload = vnsw_envelope("m-x").replace(b"<messageId>m-x</messageId>", b"")
    answer = await _call(gateway, payload)
    [(code, name)] = _errors(answer)
    assert code == "REQUEST_INVALID" and name.startswith("/Envelope/Header/Reference/messageId")
    assert answer.findtext("Header/Subject/reference") == "00"


async def test_malformed_message_id_gets_00_naming_the_vnsw_element(gateway: Gateway) -> None:
    [(code, name)] = _errors(await _call(gateway, vnsw_envelope("bad id with spaces")))
    assert code == "REQUEST_INVALID" and name.startswith("/Envelope/Header/Reference/messageId")


def _claiming(message_id: str, **claims: str) -> bytes:
    """MARD's envelope (``From`` BNNPTNT / BNNPTNT / 06) with the ``From`` elements in ``claims`` replaced."""
    envelope = vnsw_envelope(message_id)
    head, sep, rest = envelope.partition(b"</From>")
    for name, value in claims.items():
        start, end = head.index(f"<{name}>".encode()), head.index(f"</{name}>".encode())
        head = head[:start] + f"<{name}>{value}".encode() + head[end:]
    return head + sep + rest


async def _nothing_stored(gw: Gateway, *message_ids: str) -> None:
    for mid in message_ids:
        for party in ("MARD", "MOIT"):
            assert await gw.store.get(gateway_message_id(party, mid)) is None, (party, mid)


async def test_mard_token_with_an_envelope_claiming_moit_identity_gets_00_with_IDENTITY_MISMATCH(
    gateway: Gateway,
) -> None:
    """MARD's token submitting a VNSW envelope claiming From/identity of MOIT (BCT) is refused, nothing queued; the
    refusal is counted for MARD and published as ``rejected`` naming the element and the endpoint."""
    subscription = gateway.events.subscribe()
    answer = await _call(gateway, vnsw_envelope("m-imp", sender="BCT"))
    [(code, name)] = _errors(answer)
    assert code == "IDENTITY_MISMATCH" and name.startswith("/Envelope/Header/From/identity: ")
    assert answer.findtext("Header/Subject/reference") == "BNNPTNT11190000272"  # the header was readable
    await _nothing_stored(gateway, "m-imp")
    [rejected] = [e.fields for e in subscription.pending() if e.name == "rejected"]
    assert (rejected["code"], rejected["sender"], rejected["field"]) == (
        "IDENTITY_MISMATCH",
        "MARD",
        "/Envelope/Header/From/identity",
    )
    assert gateway.metrics.value("nswgw_rejections_total", code="IDENTITY_MISMATCH", sender="MARD") == 1


@pytest.mark.parametrize(("signer", "code"), [("moit", "CERT_IDENTITY_MISMATCH"), ("mard", None)])
async def test_another_ministrys_certificate_signing_a_vnsw_envelope_as_mard_gets_00_with_CERT_IDENTITY_MISMATCH(
    tmp_path: Path, dev_pki: DevPki, signer: str, code: str | None
) -> None:
    """Prerequisite: MARD's trust anchors the dev PKI root (which also issues MOIT's certificate) with
    signers = [{ subject = { CN = "mard", O = "NSW Development PKI" } }].
    Predicate: MARD's envelope signed in <SystemSignature> by MOIT's certificate, sent with MARD's token, gets a
    function-00 answer with ErrorCode CERT_IDENTITY_MISMATCH naming MARD and MOIT's subject, recorded REJECTED
    and nothing delivered; signed by MARD's own certificate it is acknowledged."""
    receiver = await Receiver().start()
    config = make_config(
        tmp_path,
        {"NSW-BACKEND": receiver.url},
        parties={
            "MARD": {"trust": dev_trust(dev_pki, "mard"), "verify": {"profile": "vnsw-legacy"}, "format": "vnsw"},
            "MOIT": {"trust": dev_trust(dev_pki, "moit")},
            "TRADER": {"trust": dev_trust(dev_pki, "trader")},
        },
        gateway={"verification": "signature"},
    )
    gw = Gateway(config)
    gw.inbound.append(VnswSoapEndpoint("vnsw", options={"document_types": {"BNNPTNT0600011": "sps.permit"}}))
    issued = dev_pki.party(signer)
    signed = sign_document(
        vnsw_envelope(f"vn-signed-by-{signer}"),
        SoftwareSigner(issued.key, issued.cert, [dev_pki.issuing_cert]),
        SigningProfile.vnsw_legacy(),
    )
    try:
        async with gw:
            answer = await _call(gw, signed)
            stored = await gw.store.get(gateway_message_id("MARD", f"vn-signed-by-{signer}"))
    finally:
        await receiver.stop()
    if code is None:
        assert answer.findtext("Header/Subject/function") == "99" and stored is not None
        return
    [(got, name)] = _errors(answer)
    assert answer.findtext("Header/Subject/function") == "00"
    assert got == code and "'MARD'" in name and "CN=moit" in name
    assert stored is not None and stored.state.name == "REJECTED" and receiver.requests == []


async def test_moit_token_with_mards_envelope_is_refused_not_looked_up_as_mard(tmp_path: Path) -> None:
    """MOIT, allowed to send the procedure, submits MARD's envelope: the From is not looked up as MARD's party."""
    config = make_config(tmp_path, {"NSW-BACKEND": "http://127.0.0.1:9/"}, parties={"MOIT": {"document_types": ["*"]}})
    gw = Gateway(config)
    gw.inbound.append(VnswSoapEndpoint("vnsw", options={"document_types": {"BNNPTNT0600011": "sps.permit"}}))
    async with gw:
        answer = await _call(gw, vnsw_envelope("m-moit"), token=TOKENS["MOIT"])
        await _nothing_stored(gw, "m-moit")
    [(code, name)] = _errors(answer)
    assert code == "IDENTITY_MISMATCH" and name.startswith("/Envelope/Header/From/identity: ")


async def test_unknown_identity_with_mards_ministry_code_gets_00_with_IDENTITY_MISMATCH(gateway: Gateway) -> None:
    """No fallback: an identity the configuration does not name is refused although ministryCode is MARD's."""
    answer = await _call(gateway, _claiming("m-unk", identity="BNNPTNT-LAB"))
    [(code, name)] = _errors(answer)
    assert code == "IDENTITY_MISMATCH" and name.startswith("/Envelope/Header/From/identity: ")
    await _nothing_stored(gateway, "m-unk")


async def test_mards_identity_with_moits_ministry_code_gets_00_naming_ministry_code(gateway: Gateway) -> None:
    [(code, name)] = _errors(await _call(gateway, _claiming("m-min", ministryCode="BCT")))
    assert code == "IDENTITY_MISMATCH" and name.startswith("/Envelope/Header/From/ministryCode: ")
    await _nothing_stored(gateway, "m-min")


async def test_another_organization_code_gets_00_naming_organization_code(gateway: Gateway) -> None:
    [(code, name)] = _errors(await _call(gateway, _claiming("m-org", organizationCode="07")))
    assert code == "IDENTITY_MISMATCH" and name.startswith("/Envelope/Header/From/organizationCode: ")
    await _nothing_stored(gateway, "m-org")


async def test_envelope_without_organization_code_gets_00_naming_it(gateway: Gateway) -> None:
    payload = vnsw_envelope("m-noorg").replace(b"<organizationCode>06</organizationCode>", b"", 1)
    [(code, name)] = _errors(await _call(gateway, payload))
    assert code == "IDENTITY_MISMATCH" and name.startswith("/Envelope/Header/From/organizationCode: ")
    await _nothing_stored(gateway, "m-noorg")


async def test_rest_vnsw_envelope_claiming_moit_identity_with_mards_token_is_IDENTITY_MISMATCH(
    gateway: Gateway,
) -> None:
    """The same rule on REST (``X-Format: vnsw``): 403 naming the element, nothing stored or delivered."""
    status, body = await _post_rest(gateway, vnsw_envelope("rest-imp", sender="BCT"), "rest-imp")
    assert status == 403
    assert (body["error"]["code"], body["error"]["field"]) == ("IDENTITY_MISMATCH", "/Envelope/Header/From/identity")
    status, body = await _post_rest(gateway, _claiming("rest-org", organizationCode="07"), "rest-org")
    assert status == 403
    assert (body["error"]["code"], body["error"]["field"]) == (
        "IDENTITY_MISMATCH",
        "/Envelope/Header/From/organizationCode",
    )
    await _nothing_stored(gateway, "rest-imp", "rest-org")


async def test_rest_vnsw_envelope_passed_through_as_xml_is_held_to_the_same_identities(gateway: Gateway) -> None:
    """``X-Format: xml`` (not mapped, delivered as submitted) does not let MARD's token send MOIT's envelope."""
    status, body = await _post_rest(gateway, vnsw_envelope("rest-xml", sender="BCT"), "rest-xml", **{"X-Format": "xml"})
    assert status == 403
    assert (body["error"]["code"], body["error"]["field"]) == ("IDENTITY_MISMATCH", "/Envelope/Header/From/identity")
    await _nothing_stored(gateway, "rest-xml")


def test_an_identity_the_format_does_not_claim_is_config_invalid_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        make_config(
            tmp_path,
            {"NSW-BACKEND": "http://127.0.0.1:9/"},
            parties={"MARD": {"identities": {"vnsw": {"identity": "BNNPTNT", "ministry": "BNNPTNT"}}}},
        )
    assert info.value.field == "parties.MARD.identities.vnsw.ministry"
    assert "identity, ministryCode, organizationCode" in info.value.message


def test_soap_endpoint_options_have_no_identity_to_party_map() -> None:
    with pytest.raises(ConfigError) as info:
        VnswSoapEndpoint("vnsw", options={"parties": {"BNNPTNT": "MARD"}})
    assert info.value.field is not None and "parties" in info.value.field


async def test_procedure_the_party_may_not_send_gets_00_with_AUTH_FORBIDDEN(gateway: Gateway) -> None:
    [(code, name)] = _errors(await _call(gateway, vnsw_envelope("m-p", document_type="BNN0300003")))
    assert code == "AUTH_FORBIDDEN" and name.startswith("/Envelope/Header/Subject/documentType")


async def test_procedure_mapped_to_a_document_type_its_content_is_not_gets_00_with_DOCUMENT_TYPE_MISMATCH(
    tmp_path: Path,
) -> None:
    """The endpoint derives eco.form_d from the procedure code; the envelope is a quarantine result, not a Form D."""
    config = make_config(
        tmp_path,
        {"NSW-BACKEND": "http://127.0.0.1:9/"},
        parties={"MARD": {"document_types": ["eco.form_d"]}},
        document_types={"eco.form_d": {"codes": ["861"]}},
    )
    gw = Gateway(config)
    gw.inbound.append(VnswSoapEndpoint("vnsw", options={"document_types": {"BNNPTNT0600011": "eco.form_d"}}))
    async with gw:
        answer = await _call(gw, vnsw_envelope("m-eco"))
        record = await gw.store.get(gateway_message_id("MARD", "m-eco"))
    assert answer.findtext("Header/Subject/function") == "00"
    [(code, name)] = _errors(answer)
    assert code == "DOCUMENT_TYPE_MISMATCH"
    assert name == (
        "/Envelope/Header/Subject/documentType: declared eco.form_d, but the content is VNSW message "
        "BNNPTNT0600011/12/05"
    )
    assert record is not None and record.message.state.value == "REJECTED"


async def test_not_xml_is_a_soap_fault_with_XML_MALFORMED(gateway: Gateway) -> None:
    status, body = await _post_soap(gateway, b"this is not SOAP")
    fault = parse_xml(body)
    assert status == 500
    assert fault.findtext(f"{{{SOAP11}}}Body/{{{SOAP11}}}Fault/faultcode") == "SOAP-ENV:Client"
    assert fault.find(".//{urn:nsw:gateway:error}error").get("code") == "XML_MALFORMED"
    assert gateway.metrics.value("nswgw_rejections_total", code="XML_MALFORMED", sender="MARD") == 1


async def test_soap_12_envelope_is_a_version_mismatch_fault(gateway: Gateway) -> None:
    body = b'<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body/></e:Envelope>'
    status, raw = await _post_soap(gateway, body)
    fault = parse_xml(raw)
    assert status == 500 and fault.findtext(f".//{{{SOAP11}}}Fault/faultcode") == "SOAP-ENV:VersionMismatch"


async def test_body_without_receive_request_is_a_fault_naming_it(gateway: Gateway) -> None:
    body = f'<s:Envelope xmlns:s="{SOAP11}"><s:Body><other/></s:Body></s:Envelope>'.encode()
    status, raw = await _post_soap(gateway, body)
    err = parse_xml(raw).find(".//{urn:nsw:gateway:error}error")
    assert status == 500 and err.get("code") == "REQUEST_INVALID"
    assert err.get("field") == "/Envelope/Body/receiveRequest"


async def test_soap_with_a_dtd_is_a_fault_with_XML_DTD_FORBIDDEN(gateway: Gateway) -> None:
    body = f'<!DOCTYPE s [<!ENTITY a "a">]><s:Envelope xmlns:s="{SOAP11}"><s:Body/></s:Envelope>'.encode()
    status, raw = await _post_soap(gateway, body)
    assert status == 500 and parse_xml(raw).find(".//{urn:nsw:gateway:error}error").get("code") == "XML_DTD_FORBIDDEN"


async def test_wsdl_is_served_with_the_address_it_was_asked_at(gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{gateway.url}/vnsw/soap?wsdl", headers={"Authorization": f"Bearer {TOKENS['MARD']}"}) as r:
            wsdl = parse_xml(await r.read())
    address = wsdl.find(".//{http://schemas.xmlsoap.org/wsdl/soap/}address").get("location")
    assert address == f"{gateway.url}/vnsw/soap"


async def test_business_results_come_back_as_separate_calls_correlated_by_reference(gateway: Gateway) -> None:
    await _call(gateway, vnsw_envelope("res-accept", type_="12", function="05"))
    await _call(
        gateway,
        vnsw_envelope(
            "res-dispatch",
            type_="16",
            function="12",
            content="<Quarantine><NSWFileCode>BNNPTNT11190000272</NSWFileCode></Quarantine>",
        ),
    )
    await _call(gateway, vnsw_envelope("other-dossier", reference="BNNPTNT11190000999"))
    found = await gateway.store.search(MessageQuery(reference="BNNPTNT11190000272"))
    assert sorted(r.message.envelope.message_id for r in found) == ["res-accept", "res-dispatch"]
    async with (
        aiohttp.ClientSession() as s,
        s.get(
            f"{gateway.url}/v1/messages?conversation=BNNPTNT11190000272",
            headers={"Authorization": f"Bearer {TOKENS['MARD']}"},
        ) as r,
    ):
        listed = (await r.json())["messages"]
    assert sorted(m["message_id"] for m in listed) == ["res-accept", "res-dispatch"]


async def _post_rest(gw: Gateway, payload: bytes, message_id: str, **headers: str) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as s,
        s.post(
            f"{gw.url}/v1/messages",
            data=payload,
            headers={
                "Authorization": f"Bearer {TOKENS['MARD']}",
                "X-Message-Id": message_id,
                "X-Document-Type": "sps.permit",
                "X-Format": "vnsw",
                "Content-Type": "application/xml",
                **headers,
            },
        ) as r,
    ):
        return r.status, await r.json()


async def _record(gw: Gateway, gateway_id: str) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as s,
        s.get(f"{gw.url}/v1/messages/{gateway_id}", headers={"Authorization": f"Bearer {TOKENS['MARD']}"}) as r,
    ):
        assert r.status == 200
        return dict(await r.json())


async def test_vnsw_envelope_posted_on_rest_takes_its_subject_reference_and_correlates_with_soap(
    gateway: Gateway,
) -> None:
    await _call(gateway, vnsw_envelope("soap-accept", type_="12", function="05"))
    status, ack = await _post_rest(
        gateway, vnsw_envelope("rest-dispatch", type_="16", function="12", reference="BNNPTNT11190000272"), "rest-1"
    )
    assert status == 202, ack
    record = await _record(gateway, ack["id"])
    assert (record["reference"], record["conversation_id"]) == ("BNNPTNT11190000272", "BNNPTNT11190000272")
    found = await gateway.store.search(MessageQuery(reference="BNNPTNT11190000272"))
    assert sorted(r.message.envelope.message_id for r in found) == ["rest-1", "soap-accept"]


async def test_rest_headers_naming_reference_and_conversation_win_over_the_vnsw_subject(gateway: Gateway) -> None:
    status, ack = await _post_rest(
        gateway, vnsw_envelope("rest-own"), "rest-own", **{"X-Reference": "OWN-REF", "X-Conversation-Id": "CONV-9"}
    )
    assert status == 202, ack
    record = await _record(gateway, ack["id"])
    assert (record["reference"], record["conversation_id"]) == ("OWN-REF", "CONV-9")


async def test_rest_vnsw_envelope_without_conversation_header_is_in_its_dossiers_conversation(
    gateway: Gateway,
) -> None:
    status, ack = await _post_rest(gateway, vnsw_envelope("rest-ref"), "rest-ref", **{"X-Reference": "OWN-REF"})
    assert status == 202, ack
    record = await _record(gateway, ack["id"])
    assert (record["reference"], record["conversation_id"]) == ("OWN-REF", "rest-ref")


async def test_rest_vnsw_envelope_with_malformed_subject_reference_is_refused_naming_the_element(
    gateway: Gateway,
) -> None:
    status, body = await _post_rest(gateway, vnsw_envelope("rest-bad", reference="BAD REF"), "rest-bad")
    assert status == 400
    assert (body["error"]["code"], body["error"]["field"]) == ("REQUEST_INVALID", "/Envelope/Header/Subject/reference")
    assert body["ack"]["state"] == "REJECTED"


# --------------------------------------------------------------------------- outbound against spyne


@pytest.fixture
def ministry() -> Iterator[SpyneMinistry]:
    m = SpyneMinistry().start()
    try:
        yield m
    finally:
        m.stop()


def _out(mid: str = "vn-1") -> OutboundMessage:
    return OutboundMessage(
        message_id=mid,
        payload=vnsw_envelope(mid, sender="NSW", recipient="BNNPTNT", type_="10", function="01"),
        sender="TRADER",
        document_type="sps.registration",
        conversation="c",
    )


async def test_spyne_ministry_receives_office_code_document_type_and_the_envelope_string(
    ministry: SpyneMinistry,
) -> None:
    async with VnswSoapAdapter(ministry.url, timeout=5, options={"office_code": "BNN"}) as adapter:
        receipt = await adapter.deliver(_out())
    [call] = ministry.calls
    assert call == {"officeCode": "BNN", "documentType": "BNNPTNT0600011", "requestPayload": _out().payload.decode()}
    assert MessageIdReceiptVerifier().verify(receipt, "vn-1", "MARD") == receipt.raw
    assert parse_xml(receipt.raw).findtext("Header/Subject/function") == "99"


async def test_spynes_own_wsdl_works_as_well_as_the_packaged_one(ministry: SpyneMinistry) -> None:
    async with VnswSoapAdapter(
        ministry.url, timeout=5, options={"office_code": "BNN", "wsdl": f"{ministry.url}?wsdl"}
    ) as adapter:
        receipt = await adapter.deliver(_out("vn-2"))
    assert receipt.message_id == "vn-2" and ministry.processed == ["vn-2"]


async def test_function_00_answer_is_partner_rejected_listing_the_errors(ministry: SpyneMinistry) -> None:
    ministry.mode = "reject"
    async with VnswSoapAdapter(ministry.url, timeout=5, options={"office_code": "BNN"}) as adapter:
        with pytest.raises(PartnerRejected) as err:
            await adapter.deliver(_out())
    assert err.value.code == "PARTNER_REJECTED"
    assert err.value.details["errors"] == [{"code": "ERR02_CODE", "name": "Phân tích xml bị lỗi"}]
    assert err.value.field == "responsePayload/Envelope/Body/Content/ErrorList"


async def test_soap_fault_is_partner_rejected_from_the_zeep_fault(ministry: SpyneMinistry) -> None:
    ministry.mode = "fault"
    async with VnswSoapAdapter(ministry.url, timeout=5, options={"office_code": "BNN"}) as adapter:
        with pytest.raises(PartnerRejected) as err:
            await adapter.deliver(_out())
    assert err.value.code == "PARTNER_REJECTED" and err.value.field == "soap:Fault"
    assert isinstance(err.value.__cause__, zx.Fault) and "Client" in err.value.details["faultcode"]


async def test_http_503_is_partner_unavailable(ministry: SpyneMinistry) -> None:
    ministry.mode = "down"
    async with VnswSoapAdapter(ministry.url, timeout=5, options={"office_code": "BNN"}) as adapter:
        with pytest.raises(PartnerUnavailable) as err:
            await adapter.deliver(_out())
    assert err.value.code == "PARTNER_UNAVAILABLE" and err.value.details["status"] == 503
    assert isinstance(err.value.__cause__, zx.TransportError)


async def test_answer_that_is_not_an_envelope_is_receipt_invalid(ministry: SpyneMinistry) -> None:
    ministry.mode = "garbage"
    async with VnswSoapAdapter(ministry.url, timeout=5, options={"office_code": "BNN"}) as adapter:
        with pytest.raises(ReceiptInvalid) as err:
            await adapter.deliver(_out())
    assert err.value.code == "PARTNER_RECEIPT_INVALID"


async def test_unreachable_ministry_is_unavailable_not_a_requests_error() -> None:
    async with VnswSoapAdapter("http://127.0.0.1:9/gateway", timeout=2, options={"office_code": "BNN"}) as adapter:
        with pytest.raises(PartnerUnavailable) as err:
            await adapter.deliver(_out())
    assert isinstance(err.value.__cause__, requests.exceptions.ConnectionError)


async def test_unreachable_remote_wsdl_is_unavailable() -> None:
    async with VnswSoapAdapter(
        "http://127.0.0.1:9/gateway",
        timeout=2,
        options={"office_code": "BNN", "wsdl": "http://127.0.0.1:9/gateway?wsdl"},
    ) as adapter:
        with pytest.raises(PartnerUnavailable):
            await adapter.deliver(_out())


def test_missing_office_code_is_config_invalid_naming_the_option() -> None:
    with pytest.raises(ConfigError) as err:
        VnswSoapAdapter("http://127.0.0.1:9/")
    assert err.value.code == "CONFIG_INVALID" and err.value.field == "options.office_code"


def test_every_zeep_and_requests_error_is_translated_at_the_adapter_boundary() -> None:
    """Fails when zeep or requests grows an exception type the adapter would leave unmapped."""
    for cls in soap_driver_errors():
        translated = translate_error(cls.__new__(cls), "http://x")
        assert isinstance(translated, PartnerError) and isinstance(translated, NswError), cls
    assert translate_error(zx.TransportError(status_code=400), "u").code == "PARTNER_REJECTED"
    assert translate_error(zx.TransportError(status_code=502), "u").code == "PARTNER_UNAVAILABLE"
    assert translate_error(zx.DTDForbidden("n", "s", "p"), "u").code == "PARTNER_REJECTED"
    assert translate_error(requests.exceptions.ReadTimeout(), "u").code == "PARTNER_UNAVAILABLE"


async def test_gateway_failure_is_a_server_fault_not_a_00_refusal(tmp_path: Path) -> None:
    """Fault injection: the broker cannot store (STORE_UNAVAILABLE); the ministry must resend, not give up."""
    from aiohttp import web

    from gateway.errors import StoreUnavailable
    from gateway.ports import Intake
    from gateway.store.sqlite import SqliteStore
    from helpers.gateway import make_config

    async def unavailable(party: str, envelope: object, raw: bytes) -> object:
        raise StoreUnavailable("database restarting", field="store")

    endpoint = VnswSoapEndpoint("vnsw")
    app = web.Application()
    config = make_config(tmp_path, {"CUSTOMS": "http://127.0.0.1:9/"})
    intake = Intake(
        submit=unavailable, party_of=lambda request: "MARD", store=SqliteStore(tmp_path / "s.db"), config=config
    )
    app.add_routes(endpoint.routes(intake))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/vnsw/soap"
        with pytest.raises(zx.Fault) as fault:
            await asyncio.to_thread(call_vnsw_endpoint, url, "t", vnsw_envelope("m-s").decode())
    finally:
        await runner.cleanup()
    assert fault.value.code.endswith("Server")
    assert fault.value.detail.find("{urn:nsw:gateway:error}error").get("code") == "STORE_UNAVAILABLE"
