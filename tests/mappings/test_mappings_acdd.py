"""The ASEAN Customs Declaration Document (``acdd``): lossless round trips, the shipped XSD and partner guide, every
validation rule's bad path with its exact code, and an ACDD exchange through a real gateway on 127.0.0.1 (customs
sends an ACDD, the partner receives it mapped and answers, customs receives the Customs Response)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.api import Gateway
from gateway.errors import ValidationFailed
from gateway.model import DocumentKind, State
from helpers.gateway import Receiver, eventually, make_config
from helpers.mappings import alnum, aware, countries, dates, decimals, full_addresses, o, text, units
from helpers.mappings import hs_codes as hs
from helpers.stores import STORE_PARAMS, STORES
from mappings import acdd
from mappings.dictionary import entries
from mappings.model import (
    Address,
    CustomsDeclaration,
    CustomsResponse,
    CustomsResponseStatus,
    DeclarationCancellation,
    GoodsItem,
    Location,
    Measure,
    Parties,
    Party,
    Quantity,
    TradeMessage,
    Transport,
)
from mappings.registry import convert
from mappings.registry import get as get_format
from mappings.rules import validate
from mappings.xmlformat import SCHEMA_DIR, load_schema
from signing.xml import parse_xml

ACDD = get_format("acdd")
JSON = get_format("json")
SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
EXAMPLES = acdd.examples()
DECLARATION = EXAMPLES["ExportDeclaration"]
RESPONSE = EXAMPLES["CustomsResponse"]
CANCELLATION = EXAMPLES["DeclarationCancellation"]
NS = {"a": acdd.NAMESPACE}


def issues_of(info: pytest.ExceptionInfo[ValidationFailed]) -> list[tuple[str, str]]:
    return [(i.path, i.code) for i in info.value.issues]


def valid_against_the_xsd(data: bytes) -> bool:
    return bool(load_schema(acdd.XSD).validate(parse_xml(data)))


# --------------------------------------------------------------------------- strategies

locodes = st.sampled_from(["VNSGN", "VNHPH", "THLCH", "THBKK", "SGSIN", "MYPKG", "IDJKT"])
modes = st.sampled_from("0123456789")
locations = st.builds(Location, code=locodes, name=o(text()))
border_countries = st.builds(Transport, export_country=countries, destination_country=o(countries))


@st.composite
def acdd_goods(draw: st.DrawFn) -> tuple[GoodsItem, ...]:
    n = draw(st.integers(min_value=1, max_value=4))
    return tuple(
        GoodsItem(
            sequence=i + 1,
            description=draw(o(text())),
            hs_code=draw(hs),
            quantities=(Quantity(value=draw(decimals), unit=draw(units)),),
            gross_weight=draw(o(st.builds(Measure, value=decimals, unit=units))),
            origin_country=draw(countries),
        )
        for i in range(n)
    )


declarations = st.builds(
    TradeMessage,
    customs_declaration=st.builds(CustomsDeclaration, number=alnum, registered_at=o(aware)),
    parties=st.builds(
        Parties,
        exporter=st.builds(Party, identifier=alnum, name=text(), address=o(full_addresses)),
        consignee=st.builds(Party, identifier=o(alnum), name=text(), address=full_addresses),
        declarant=st.builds(Party, identifier=alnum, name=text(), address=o(full_addresses)),
    ),
    transport=st.builds(
        Transport,
        departure_date=dates,
        border_mode=modes,
        port_of_loading=o(locations),
        port_of_discharge=locations,
        export_country=o(countries),
        destination_country=o(countries),
    ),
    goods=acdd_goods(),
)
responses = st.builds(
    TradeMessage,
    customs_response=st.builds(
        CustomsResponse,
        declaration_number=alnum,
        status=st.sampled_from(list(CustomsResponseStatus)),
        reason=text(),
        responded_at=o(aware),
    ),
    transport=o(border_countries),
)
cancellations = st.builds(
    TradeMessage,
    cancellation=st.builds(DeclarationCancellation, declaration_number=alnum, reason=o(text()), cancelled_at=o(aware)),
    transport=o(border_countries),
)
acdd_messages = declarations | responses | cancellations


# --------------------------------------------------------------------------- round trips and the schema


@SETTINGS
@given(acdd_messages)
def test_acdd_round_trip_is_lossless_and_valid_against_the_xsd(msg: TradeMessage) -> None:
    out = ACDD.emit(msg)
    assert valid_against_the_xsd(out)
    assert ACDD.parse(out) == msg
    assert validate(msg) == []


@SETTINGS
@given(acdd_messages)
def test_acdd_message_maps_to_json_and_back_to_the_same_document(msg: TradeMessage) -> None:
    data = ACDD.emit(msg)
    assert convert(convert(data, "acdd", "json"), "json", "acdd") == data


def test_shipped_acdd_xsd_and_partner_guide_are_the_generated_ones() -> None:
    assert (SCHEMA_DIR / "acdd" / "asean-acdd-1.xsd").read_bytes() == acdd.generate_xsd()
    assert (SCHEMA_DIR / "acdd" / "ACDD.md").read_text(encoding="utf-8") == acdd.partner_guide()


def test_each_example_emits_its_root_valid_against_the_xsd() -> None:
    for root, msg in EXAMPLES.items():
        out = ACDD.emit(msg)
        assert valid_against_the_xsd(out)
        assert parse_xml(out).tag == f"{{{acdd.NAMESPACE}}}{root}"
        assert ACDD.parse(out) == msg and ACDD.validate(out) == []
    doc = parse_xml(ACDD.emit(DECLARATION))
    assert doc.findtext("a:Exporter/a:ID", namespaces=NS) == "0300000001"
    assert doc.findtext("a:Transport/a:DischargeLocation/a:ID", namespaces=NS) == "THLCH"
    assert doc.find("a:GoodsItem/a:Quantity", namespaces=NS).get("unitCode") == "KGM"  # type: ignore[union-attr]


def test_the_fifteen_parameters_map_to_harmonized_fields_with_wco_ids_where_known() -> None:
    table = dict(ACDD.mapping_table())
    assert table["/ExportDeclaration/Declaration/ID"] == "customs_declaration.number"
    assert table["/ExportDeclaration/DeclaringAgent/ID"] == "parties.declarant.identifier"
    assert table["/ExportDeclaration/Transport/BorderModeCode"] == "transport.border_mode"
    assert table["/ExportDeclaration/GoodsItem/Quantity/@unitCode"] == "goods[].quantities[qualifier=].unit"
    wco = {e.path: e.wco for e in entries()}
    assert wco["parties.exporter.identifier"] == "R032" and wco["parties.exporter.name"] == "R031"
    assert wco["parties.consignee.name"] == "R014" and wco["transport.border_mode"] == "061"
    assert (wco["goods[].sequence"], wco["goods[].hs_code"], wco["goods[].origin_country"]) == ("006", "145", "063")


def test_kind_is_the_root_and_the_document_code() -> None:
    root = f"{{{acdd.NAMESPACE}}}"
    assert ACDD.kind(ACDD.emit(DECLARATION)) == DocumentKind(code="830", root=root + "ExportDeclaration")
    assert ACDD.kind(ACDD.emit(RESPONSE)) == DocumentKind(code="961", root=root + "CustomsResponse")
    assert ACDD.kind(ACDD.emit(CANCELLATION)) == DocumentKind(code=None, root=root + "DeclarationCancellation")
    assert JSON.kind(JSON.emit(DECLARATION)).code == "830" and JSON.kind(JSON.emit(RESPONSE)).code == "961"
    assert ACDD.enterprises(ACDD.emit(DECLARATION)) == ("0312345678", "0300000001")


# --------------------------------------------------------------------------- validation: code lists and dates


def _with_item(**changes: Any) -> TradeMessage:
    item = DECLARATION.goods[0].model_copy(update=changes)
    return DECLARATION.model_copy(update={"goods": (item,)})


def _with_transport(**changes: Any) -> TradeMessage:
    assert DECLARATION.transport is not None
    return DECLARATION.model_copy(update={"transport": DECLARATION.transport.model_copy(update=changes)})


@pytest.mark.parametrize(
    ("msg", "path", "code"),
    [
        (_with_item(hs_code="0306.17"), "goods[0].hs_code", "HS_CODE_INVALID"),
        (_with_item(hs_code="03061"), "goods[0].hs_code", "HS_CODE_INVALID"),
        (
            _with_item(quantities=(Quantity(value=Decimal(5), unit="KILO"),)),
            "goods[0].quantities[0].unit",
            "UNIT_UNKNOWN",
        ),
        (_with_item(origin_country="XX"), "goods[0].origin_country", "COUNTRY_UNKNOWN"),
        (
            _with_transport(port_of_discharge=Location(code="THLC1")),
            "transport.port_of_discharge.code",
            "LOCODE_INVALID",
        ),
        (
            _with_transport(port_of_discharge=Location(code="XXLCH")),
            "transport.port_of_discharge.code",
            "LOCODE_INVALID",
        ),
        (_with_transport(port_of_loading=Location(code="vnsgn")), "transport.port_of_loading.code", "LOCODE_INVALID"),
    ],
    ids=[
        "hs-with-dot",
        "hs-five-digits",
        "unit-not-rec20",
        "origin-not-iso3166",
        "port-not-locode-shape",
        "port-of-unknown-country",
        "port-lower-case",
    ],
)
def test_bad_code_is_reported_at_its_path(msg: TradeMessage, path: str, code: str) -> None:
    assert [(i.path, i.code) for i in validate(msg)] == [(path, code)]


def test_native_date_that_is_not_iso_is_schema_invalid_at_its_element() -> None:
    data = ACDD.emit(DECLARATION).replace(b"<DepartureDate>2026-03-03<", b"<DepartureDate>03/03/2026<")
    with pytest.raises(ValidationFailed) as info:
        ACDD.parse(data)
    (issue,) = info.value.issues
    assert issue.code == "SCHEMA_INVALID" and issue.path == "/*/*[5]/*[1]"  # Transport/DepartureDate
    assert "DepartureDate" in issue.message and "xs:date" in issue.message


def test_harmonized_date_that_is_not_iso_is_model_invalid_at_its_path() -> None:
    body = json.loads(JSON.emit(DECLARATION))
    body["transport"]["departure_date"] = "03/03/2026"
    with pytest.raises(ValidationFailed) as info:
        JSON.parse(json.dumps(body).encode())
    assert issues_of(info) == [("transport.departure_date", "MODEL_INVALID")]


def test_native_hs_code_of_five_digits_is_schema_invalid() -> None:
    data = ACDD.emit(DECLARATION).replace(b">030617<", b">03061<")
    with pytest.raises(ValidationFailed) as info:
        ACDD.parse(data)
    (issue,) = info.value.issues
    assert issue.code == "SCHEMA_INVALID" and issue.path == "/*/*[6]/*[3]"  # GoodsItem/ClassificationCode
    assert "ClassificationCode" in issue.message


# --------------------------------------------------------------------------- validation: mandatory parameters


def _parties(**changes: Any) -> Callable[[TradeMessage], TradeMessage]:
    def change(msg: TradeMessage) -> TradeMessage:
        updated = {}
        for role, fields in changes.items():
            party = getattr(msg.parties, role)
            updated[role] = None if fields is None else party.model_copy(update=fields)
        return msg.model_copy(update={"parties": msg.parties.model_copy(update=updated)})

    return change


MANDATORY: list[tuple[str, Callable[[TradeMessage], TradeMessage], str]] = [
    (
        "declaration-number",
        lambda m: m.model_copy(update={"customs_declaration": CustomsDeclaration()}),
        "customs_declaration.number",
    ),
    ("exporter-identifier", _parties(exporter={"identifier": None}), "parties.exporter.identifier"),
    ("exporter-name", _parties(exporter={"name": None}), "parties.exporter.name"),
    ("consignee-name", _parties(consignee={"name": None}), "parties.consignee.name"),
    ("consignee-address", _parties(consignee={"address": None}), "parties.consignee.address"),
    (
        "consignee-address-line",
        _parties(consignee={"address": Address(city="Bangkok")}),
        "parties.consignee.address.line1",
    ),
    ("agent-identifier", _parties(declarant={"identifier": None}), "parties.declarant.identifier"),
    ("agent-name", _parties(declarant={"name": None}), "parties.declarant.name"),
    ("departure-date", lambda m: _with_transport(departure_date=None), "transport.departure_date"),
    ("transport-mode", lambda m: _with_transport(border_mode=None), "transport.border_mode"),
    ("port-of-discharge", lambda m: _with_transport(port_of_discharge=None), "transport.port_of_discharge.code"),
    ("item-serial-number", lambda m: _with_item(sequence=None), "goods[0].sequence"),
    ("hs-code", lambda m: _with_item(hs_code=None), "goods[0].hs_code"),
    ("quantity-and-unit", lambda m: _with_item(quantities=()), "goods[0].quantities"),
    ("origin-country", lambda m: _with_item(origin_country=None), "goods[0].origin_country"),
    ("goods", lambda m: m.model_copy(update={"goods": ()}), "goods"),
]


@pytest.mark.parametrize(("change", "path"), [(c, p) for _, c, p in MANDATORY], ids=[n for n, _, _ in MANDATORY])
def test_missing_mandatory_parameter_is_named_at_its_path(
    change: Callable[[TradeMessage], TradeMessage], path: str
) -> None:
    msg = change(DECLARATION)
    assert [(i.path, i.code) for i in validate(msg)] == [(path, "ACDD_MANDATORY_MISSING")]


def test_declaration_without_parties_transport_or_goods_lists_every_missing_parameter() -> None:
    msg = TradeMessage(customs_declaration=CustomsDeclaration(number="305123456710"))
    assert [(i.path, i.code) for i in validate(msg)] == [
        (path, "ACDD_MANDATORY_MISSING")
        for path in (
            "parties.exporter.identifier",
            "parties.exporter.name",
            "parties.consignee.name",
            "parties.consignee.address",
            "parties.declarant.identifier",
            "parties.declarant.name",
            "transport.departure_date",
            "transport.border_mode",
            "transport.port_of_discharge.code",
            "goods",
        )
    ]
    with pytest.raises(ValidationFailed) as info:
        ACDD.emit(msg)
    assert ("parties.exporter.identifier", "NATIVE_REQUIRED_MISSING") in issues_of(info)


@pytest.mark.parametrize("status", [CustomsResponseStatus.REJECTED, CustomsResponseStatus.QUERY])
def test_rejection_or_query_without_a_reason_is_refused(status: CustomsResponseStatus) -> None:
    assert RESPONSE.customs_response is not None
    msg = RESPONSE.model_copy(
        update={"customs_response": RESPONSE.customs_response.model_copy(update={"status": status, "reason": None})}
    )
    assert [(i.path, i.code) for i in validate(msg)] == [("customs_response.reason", "ACDD_RESPONSE_REASON_REQUIRED")]


def test_acceptance_needs_no_reason_but_a_declaration_number_and_a_status() -> None:
    accepted = TradeMessage(
        customs_response=CustomsResponse(declaration_number="1", status=CustomsResponseStatus.ACCEPTED)
    )
    assert validate(accepted) == []
    assert [(i.path, i.code) for i in validate(TradeMessage(customs_response=CustomsResponse()))] == [
        ("customs_response.declaration_number", "ACDD_MANDATORY_MISSING"),
        ("customs_response.status", "ACDD_MANDATORY_MISSING"),
    ]


def test_cancellation_without_the_declaration_number_is_refused() -> None:
    msg = TradeMessage(cancellation=DeclarationCancellation(reason="withdrawn"))
    assert [(i.path, i.code) for i in validate(msg)] == [("cancellation.declaration_number", "ACDD_MANDATORY_MISSING")]


def test_native_status_outside_the_three_is_schema_invalid() -> None:
    data = ACDD.emit(RESPONSE).replace(b"<StatusCode>query<", b"<StatusCode>maybe<")
    with pytest.raises(ValidationFailed) as info:
        ACDD.parse(data)
    (issue,) = info.value.issues
    assert issue.code == "SCHEMA_INVALID" and issue.path == "/*/*/*[2]"  # Response/StatusCode
    assert "StatusCode" in issue.message


@pytest.mark.parametrize(
    "msg",
    [TradeMessage(), DECLARATION.model_copy(update={"customs_response": RESPONSE.customs_response})],
    ids=["no-acdd-data", "declaration-and-response"],
)
def test_message_that_is_not_exactly_one_acdd_message_cannot_be_emitted(msg: TradeMessage) -> None:
    with pytest.raises(ValidationFailed) as info:
        ACDD.emit(msg)
    assert issues_of(info) == [("/", "ACDD_MESSAGE_KIND_UNCLEAR")]


def test_acdd_wrong_root_is_refused() -> None:
    with pytest.raises(ValidationFailed) as info:
        ACDD.parse(b"<ExportDeclaration/>")
    assert issues_of(info) == [("/ExportDeclaration", "ROOT_UNEXPECTED")]


# --------------------------------------------------------------------------- through a real gateway

TOKENS = {"CUSTOMS": "customs-token", "TH-CUSTOMS": "th-customs-token"}
ACDD_TYPES = ("acdd.declaration", "acdd.response", "acdd.cancellation")
ROOT = "{" + acdd.NAMESPACE + "}"
DOCUMENT_TYPES: dict[str, dict[str, Any]] = {
    "acdd.declaration": {"codes": ["830"], "roots": [ROOT + "ExportDeclaration"]},
    "acdd.response": {"codes": ["961"], "roots": [ROOT + "CustomsResponse"]},
    "acdd.cancellation": {"roots": [ROOT + "DeclarationCancellation"]},
}
ROUTES = [
    {"document_type": "acdd.declaration", "sender": "CUSTOMS", "to": ["TH-CUSTOMS"]},
    {"document_type": "acdd.cancellation", "sender": "CUSTOMS", "to": ["TH-CUSTOMS"]},
    {"document_type": "acdd.response", "sender": "TH-CUSTOMS", "to": ["CUSTOMS"]},
]


async def _submit(
    s: aiohttp.ClientSession, url: str, party: str, mid: str, doc_type: str, body: bytes, fmt: str
) -> tuple[int, dict[str, Any]]:
    headers = {
        "Authorization": f"Bearer {TOKENS[party]}",
        "X-Message-Id": mid,
        "X-Document-Type": doc_type,
        "X-Format": fmt,
        "Content-Type": "application/json" if fmt == "json" else "application/xml",
    }
    async with s.post(f"{url}/v1/messages", data=body, headers=headers) as r:
        return r.status, json.loads(await r.read())


@pytest.fixture(params=STORE_PARAMS)
async def exchange(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[Gateway, aiohttp.ClientSession, Receiver, Receiver]]:
    partner, customs = await Receiver().start(), await Receiver().start()
    config = make_config(
        tmp_path,
        {"TH-CUSTOMS": partner.url, "CUSTOMS": customs.url},
        routes=ROUTES,
        per_destination={"TH-CUSTOMS": {"format": "acdd"}, "CUSTOMS": {"format": "json"}},
        parties={
            "CUSTOMS": {"tokens": [TOKENS["CUSTOMS"]], "document_types": list(ACDD_TYPES), "format": "json"},
            "TH-CUSTOMS": {"tokens": [TOKENS["TH-CUSTOMS"]], "document_types": list(ACDD_TYPES), "format": "acdd"},
        },
        document_types=DOCUMENT_TYPES,
    )
    try:
        async with Gateway(config, store=STORES[request.param](tmp_path)) as gw, aiohttp.ClientSession() as s:
            yield gw, s, partner, customs
    finally:
        await partner.stop()
        await customs.stop()


async def _state(gw: Gateway, message_id: str) -> State | None:
    record = await gw.store.get(message_id)
    return record.state if record is not None else None


async def test_customs_sends_an_acdd_the_partner_answers_and_customs_receives_the_response(exchange) -> None:
    """Prerequisite: customs submits an ACDD as harmonized JSON; the partner's destination takes ``acdd`` XML,
    customs' destination JSON. Predicate: the partner receives the ACDD mapped to our XSD with every parameter;
    its Customs Response (``acdd`` XML) reaches customs as the same harmonized message; both are acknowledged."""
    gw, s, partner, customs = exchange
    status, ack = await _submit(s, gw.url, "CUSTOMS", "ACDD-1", "acdd.declaration", JSON.emit(DECLARATION), "json")
    assert status == 202, ack
    assert ack["destinations"] == ["TH-CUSTOMS"]
    await eventually(lambda: len(partner.requests) == 1)
    delivered = partner.requests[0]
    assert delivered["headers"]["X-Document-Type"] == "acdd.declaration"
    assert delivered["headers"]["Content-Type"] == "application/xml"
    assert valid_against_the_xsd(delivered["body"])
    assert ACDD.parse(delivered["body"]) == DECLARATION

    rejection = CustomsResponse(
        declaration_number="305123456710", status=CustomsResponseStatus.REJECTED, reason="HS code does not match"
    )
    answer = RESPONSE.model_copy(update={"customs_response": rejection})
    status, reply = await _submit(s, gw.url, "TH-CUSTOMS", "RESP-1", "acdd.response", ACDD.emit(answer), "acdd")
    assert status == 202, reply
    assert reply["destinations"] == ["CUSTOMS"]
    await eventually(lambda: len(customs.requests) == 1)
    received = customs.requests[0]
    assert received["headers"]["X-Sender"] == "TH-CUSTOMS"
    assert received["headers"]["X-Document-Type"] == "acdd.response"
    assert JSON.parse(received["body"]) == answer
    await eventually(lambda: _acknowledged(gw, ack["id"], reply["id"]))


async def _acknowledged(gw: Gateway, *message_ids: str) -> bool:
    return all([await _state(gw, mid) is State.ACKNOWLEDGED for mid in message_ids])


async def test_acdd_missing_a_mandatory_parameter_is_refused_at_submission_naming_it(exchange) -> None:
    gw, s, partner, _ = exchange
    incomplete = _parties(exporter={"identifier": None})(DECLARATION)
    status, body = await _submit(s, gw.url, "CUSTOMS", "ACDD-BAD", "acdd.declaration", JSON.emit(incomplete), "json")
    assert status == 422 and body["error"]["code"] == "VALIDATION_FAILED"
    assert [(i["path"], i["code"]) for i in body["error"]["issues"]] == [
        ("parties.exporter.identifier", "ACDD_MANDATORY_MISSING")
    ]
    assert partner.requests == []


async def test_cancellation_declared_as_a_declaration_is_refused_by_its_root(exchange) -> None:
    gw, s, partner, _ = exchange
    status, body = await _submit(
        s, gw.url, "CUSTOMS", "CANCEL-AS-DECL", "acdd.declaration", ACDD.emit(CANCELLATION), "acdd"
    )
    assert status == 422 and body["error"]["code"] == "DOCUMENT_TYPE_MISMATCH"
    assert body["error"]["details"]["content"]["root"] == ROOT + "DeclarationCancellation"
    status, ack = await _submit(s, gw.url, "CUSTOMS", "CANCEL-1", "acdd.cancellation", ACDD.emit(CANCELLATION), "acdd")
    assert status == 202, ack
    await eventually(lambda: len(partner.requests) == 1)
    assert ACDD.parse(partner.requests[0]["body"]) == CANCELLATION
