"""The rest of the MOT maritime messages: the port authority's shifting order (type 70), the transit permissions
(types 80 and 90, documentType 3) and the inland-waterway variants (``mappings.vnsw.mot_inland``, documentType 4
and 5). Strict (XSD-valid) out, lenient in, lossless round trips, a sample of each valid against its corpus content
schema, and the bad paths at the HTTP API with their codes."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from gateway.api import Gateway
from gateway.errors import ValidationFailed
from helpers.gateway import Receiver, eventually, make_config, submit
from helpers.mappings import VECTORS, alnum, aware, countries, dates, decimals, o, text
from mappings import rules
from mappings.dictionary import entries
from mappings.model import (
    Address,
    Decision,
    DocumentInfo,
    Endpoint,
    Envelope,
    IdentityDocument,
    Party,
    Permit,
    Person,
    SecurityPortCall,
    Shifting,
    ShipCall,
    ShipParticulars,
    ShipSecurity,
    Signatory,
    TradeMessage,
    Voyage,
)
from mappings.registry import get
from mappings.vnsw import find_message
from mappings.vnsw.mot_inland import INLAND_FORMS, INLAND_ORDERS, INLAND_PROCEDURES
from mappings.vnsw.mot_maritime import CONFIRMATION_OF_ARRIVAL, NOTICES, ORDERS, SHIFTING_ORDER
from mappings.xmlformat import load_schema
from signing.xml import parse_xml

VNSW = get("vnsw")
VN = dt.timezone(dt.timedelta(hours=7))
SAMPLES = VECTORS / "vnsw" / "mot_maritime"
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

PORT = Endpoint(
    name="Cang vu Hang hai TP HCM", identity="CVHHHCM", country="VN", ministry="BGTVT", organization="CHHVN"
)
NSW = Endpoint(name="NSW", identity="NSW", country="VN", ministry="BTC", organization="TCHQ", unit="NSW")
PORT_IDENTITY = {"identity": "CVHHHCM", "ministryCode": "BGTVT", "organizationCode": "CHHVN"}


def envelope(procedure: str, message_type: str, function: str = "01") -> Envelope:
    return Envelope(
        message_id="0c6f5e2a-8b1d-4f3e-a7c9-2d4e6f8a0b1c",
        version="01",
        sender=PORT,
        recipient=NSW,
        procedure=procedure,
        message_type=message_type,
        function=function,
        reference="2026120400017",
        reference_year=2026,
        previous_reference="2026120400017",
        sent_at=dt.datetime(2026, 12, 5, 9, 15, tzinfo=VN),
    )


def ship(**kw: Any) -> ShipParticulars:
    base: dict[str, Any] = dict(
        name="OCEAN STAR",
        call_sign="3FZA7",
        flag="PA",
        master="John Smith",
        length_overall=Decimal("199.9"),
        breadth=Decimal("32.2"),
        deadweight=Decimal("33500"),
        gross_tonnage=Decimal("25305"),
        net_tonnage=Decimal("12890.5"),
    )
    base.update(kw)
    return ShipParticulars(**base)


def shifting_order(procedure: str = "1") -> TradeMessage:
    """The port authority of Ho Chi Minh City orders OCEAN STAR from Cat Lai berth 3 to berth 5 (fictitious)."""
    return TradeMessage(
        envelope=envelope(procedure, "70"),
        permit=Permit(
            number="LDD-2026-0412",
            decision=Decision.ISSUED,
            decision_date=dt.datetime(2026, 12, 5, 9, 0, tzinfo=VN),
            department="CVHHHCM",
            officer="Tran Van Binh",
        ),
        document=DocumentInfo(number="SO-0412", link="https://nsw.example/so/0412.pdf"),
        ship_call=ShipCall(
            reference="2026120400017",
            ship=ShipParticulars(
                name="OCEAN STAR", flag="PA", length_overall=Decimal("199.9"), deadweight=Decimal("33500")
            ),
            voyage=Voyage(port_of_call="VNSGN", draught_forward=Decimal("10.2"), draught_aft=Decimal("11.05")),
            agent=Party(name="VOSA Saigon", identifier="0300437898", phone="+84 28 3829 0000"),
            shifting=Shifting(
                from_berth="Cat Lai berth 3",
                to_berth="Cat Lai berth 5",
                harbour="CATLAI",
                wharf="CL05",
                shifting_at=dt.datetime(2026, 12, 5, 14, 30, tzinfo=VN),
                reason="Berth 3 needed for a dredger",
                tugs="TUG SG 01, TUG SG 07",
            ),
        ),
    )


def transit_permit(message_type: str) -> TradeMessage:
    """The maritime administration lets OCEAN STAR through Vietnamese waters on its way to Phnom Penh."""
    return TradeMessage(
        envelope=envelope("3", message_type),
        permit=Permit(
            number="QC-2026-0033",
            decision=Decision.ISSUED,
            decision_date=dt.datetime(2026, 12, 5, 10, 0, tzinfo=VN) if message_type == "90" else None,
            valid_until=dt.datetime(2026, 12, 9, 0, 0, tzinfo=VN) if message_type == "90" else None,
            department="CVHHVT" if message_type == "90" else None,
            officer="Le Thi Hoa" if message_type == "90" else None,
        ),
        ship_call=ShipCall(
            reference="2026120400017",
            ship=ship(registry_port=None)
            if message_type == "80"
            else ship(length_overall=None, breadth=None, deadweight=None, net_tonnage=None),
            voyage=Voyage(
                etd=dt.datetime(2026, 12, 6, 18, 0, tzinfo=VN),
                transit_from="Vung Tau pilot station",
                transit_to="Vinh Xuong border gate",
                draught_forward=Decimal("9.8") if message_type == "80" else None,
                draught_aft=Decimal("10.1") if message_type == "80" else None,
            ),
            crew_count=21 if message_type == "90" else None,
            passenger_count=0 if message_type == "90" else None,
            cargo_summary="1,204 containers in transit" if message_type == "90" else None,
        ),
    )


def arrival_confirmation(function: str = "01") -> TradeMessage:
    """The agent confirms that OCEAN STAR has berthed at Cat Lai berth 3."""
    return TradeMessage(
        envelope=envelope("1", "40", function),
        ship_call=ShipCall(
            reference="2026120400017",
            ship=ShipParticulars(
                name="OCEAN STAR", imo_number="9074729", call_sign="3FZA7", flag="PA", ship_type="CONT"
            ),
            voyage=Voyage(port_of_call="VNSGN", berth="CL03", eta=dt.datetime(2026, 12, 5, 6, 40, tzinfo=VN)),
        ),
        signatory=Signatory(place="Ho Chi Minh City", signed_at=dt.datetime(2026, 12, 5, 7, 0, tzinfo=VN)),
    )


def security_notification(function: str = "01") -> TradeMessage:
    """OCEAN STAR's pre-arrival security information: a valid certificate, level 1, its last two port facilities."""
    return TradeMessage(
        envelope=envelope("1", "10", function),
        ship_call=ShipCall(
            reference="2026120400017",
            ship=ShipParticulars(
                name="OCEAN STAR",
                imo_number="9074729",
                call_sign="3FZA7",
                flag="PA",
                gross_tonnage=Decimal("25305"),
                ship_type="CONT",
                master="John Smith",
            ),
            voyage=Voyage(eta=dt.datetime(2026, 12, 5, 6, 0, tzinfo=VN), purpose_of_call="1", berth="CL03"),
            agent=Party(name="VOSA Saigon", identifier="0300437898", phone="+84 28 3829 0000"),
            crew_count=21,
            security=ShipSecurity(
                certificate_valid=True,
                certificate_issuer="Panama Maritime Authority",
                certificate_issued=dt.date(2024, 3, 1),
                certificate_expiry=dt.date(2029, 2, 28),
                security_level="1",
                last_port_calls=(
                    SecurityPortCall(
                        port="SGSIN",
                        arrival=dt.datetime(2026, 12, 2, 8, 0, tzinfo=VN),
                        departure=dt.datetime(2026, 12, 3, 20, 0, tzinfo=VN),
                        security_level="1",
                    ),
                    SecurityPortCall(port="MYPKG", arrival=dt.datetime(2026, 11, 30, 6, 0, tzinfo=VN)),
                ),
                additional_measures=False,
                security_maintained=True,
            ),
        ),
        signatory=Signatory(place="Ho Chi Minh City", signed_at=dt.datetime(2026, 12, 4, 8, 0, tzinfo=VN)),
    )


def inland_call(procedure: str, message_type: str, function: str = "01") -> TradeMessage:
    """A river barge's arrival at Can Tho from Ho Chi Minh City on an inland route (fictitious)."""
    arrival = procedure == "4"
    forms: dict[str, dict[str, Any]] = {
        "30": dict(
            ship=ShipParticulars(name="SONG HAU 27", call_sign="XVHB", ship_type="BARGE", master="Pham Van Duc"),
            voyage=Voyage(
                port_of_call="VNVCA",
                eta=dt.datetime(2026, 12, 6, 7, 0, tzinfo=VN),
                last_port="VNSGN",
                draught_forward=Decimal("3.2"),
                draught_aft=Decimal("3.4"),
            ),
            agent=Party(name="Mekong Logistics", identifier="1800158923"),
            cargo_summary="Rice, 1,200 t",
            crew_count=6,
            passenger_count=0,
        ),
        "50": dict(
            ship=ShipParticulars(
                name="SONG HAU 27",
                call_sign="XVHB",
                ship_type="BARGE",
                master="Pham Van Duc",
                gross_tonnage=Decimal("980"),
                net_tonnage=Decimal("540"),
            ),
            voyage=Voyage(
                arrival=arrival,
                port_of_call="VNVCA",
                eta=dt.datetime(2026, 12, 6, 7, 0, tzinfo=VN),
                last_port="VNSGN",
                berth="CT02",
            ),
            agent=Party(name="Mekong Logistics", identifier="1800158923"),
            cargo_summary="Rice, 1,200 t",
        ),
        "51": dict(
            ship=ShipParticulars(name="SONG HAU 27"),
            voyage=Voyage(arrival=arrival),
            crew=(
                Person(
                    family_name="Pham",
                    given_names="Van Duc",
                    rank_or_rating="MASTER",
                    identity_document=IdentityDocument(number="B7654321"),
                ),
                Person(family_name="Le", given_names="Minh", rank_or_rating="ENG"),
            ),
        ),
        "52": dict(
            ship=ShipParticulars(name="SONG HAU 27"),
            voyage=Voyage(arrival=arrival),
            passengers=(
                Person(
                    family_name="Nguyen",
                    given_names="Thi Lan",
                    date_of_birth=dt.date(1992, 4, 18),
                    place_of_birth="Can Tho",
                    identity_document=IdentityDocument(type="CCCD", number="092192004418"),
                ),
            ),
        ),
    }
    return TradeMessage(
        envelope=envelope(procedure, message_type, function),
        ship_call=ShipCall(reference="2026120600008", **forms[message_type]),
        signatory=Signatory(place="Can Tho", signed_at=dt.datetime(2026, 12, 5, 16, 0, tzinfo=VN)),
    )


def inland_order(procedure: str, message_type: str) -> TradeMessage:
    """The port authority of Can Tho clears SONG HAU 27 (60) or orders it to another wharf (70)."""
    call: dict[str, Any]
    if message_type == "60":
        call = dict(
            ship=ShipParticulars(
                name="SONG HAU 27", flag="VN", call_sign="XVHB", master="Pham Van Duc", gross_tonnage=Decimal("980")
            ),
            voyage=Voyage(etd=dt.datetime(2026, 12, 7, 6, 0, tzinfo=VN), next_port="VNSGN"),
            crew_count=6,
            passenger_count=1,
            cargo_summary="In ballast",
        )
    else:
        call = dict(
            ship=ShipParticulars(name="SONG HAU 27", call_sign="XVHB"),
            voyage=Voyage(port_of_call="VNVCA"),
            shifting=Shifting(harbour="CAIRANG", wharf="CR01", shifting_at=dt.datetime(2026, 12, 6, 13, 0, tzinfo=VN)),
        )
    return TradeMessage(
        envelope=envelope(procedure, message_type),
        permit=Permit(
            decision=Decision.ISSUED,
            decision_date=dt.datetime(2026, 12, 6, 11, 0, tzinfo=VN),
            department="CVHHCT",
            officer="Vo Thanh Son",
            valid_until=dt.datetime(2026, 12, 7, 12, 0, tzinfo=VN) if message_type == "60" else None,
        ),
        document=DocumentInfo(number=f"CT-{message_type}-0091"),
        ship_call=ShipCall(reference="2026120600008", **call),
    )


SAMPLE_MESSAGES: dict[str, TradeMessage] = {
    "ship_entry_t10_f01_ship_security_notification.xml": security_notification(),
    "ship_entry_t40_f01_confirmation_of_arrival.xml": arrival_confirmation(),
    "ship_entry_t70_f01_shifting_order.xml": shifting_order(),
    "ship_transit_t80_f01_acceptance_for_transit.xml": transit_permit("80"),
    "ship_transit_t90_f01_permission_for_transit.xml": transit_permit("90"),
    "inland_arrival_t30_f01_notice_of_arrival.xml": inland_call("4", "30"),
    "inland_arrival_t50_f01_general_declaration.xml": inland_call("4", "50"),
    "inland_arrival_t51_f01_crew_list.xml": inland_call("4", "51"),
    "inland_arrival_t52_f01_passenger_list.xml": inland_call("4", "52"),
    "inland_departure_t60_f01_port_clearance.xml": inland_order("5", "60"),
    "inland_arrival_t70_f01_shifting_order.xml": inland_order("4", "70"),
}


def _section(data: bytes) -> etree._Element:
    content = parse_xml(data).find("Body/Content")
    assert content is not None
    (section,) = list(content)
    return section


def _issues(exc: pytest.ExceptionInfo[ValidationFailed]) -> list[tuple[str, str]]:
    return [(i.path, i.code) for i in exc.value.issues]


# --------------------------------------------------------------------------- the samples


@pytest.mark.parametrize("name", sorted(SAMPLE_MESSAGES))
def test_each_sample_is_what_its_message_is_written_as_and_reads_back(name: str) -> None:
    sample = (SAMPLES / name).read_bytes()
    assert VNSW.emit(SAMPLE_MESSAGES[name]) == sample
    assert VNSW.parse(sample) == SAMPLE_MESSAGES[name]


@pytest.mark.parametrize("name", sorted(SAMPLE_MESSAGES))
def test_each_sample_validates_against_its_corpus_content_schema(name: str) -> None:
    section = _section((SAMPLES / name).read_bytes())
    schema = load_schema(f"vnsw/mot_maritime/{etree.QName(section).localname}.xsd")
    assert schema.validate(etree.ElementTree(section)), (section.tag, schema.error_log)


CORPUS_SHA256 = {
    "ShiftingOrder": "8532b144f0dd9aa9ae22ba4c6d2168cc5f7791b2fdc483fe729a19f567323de2",
    "PermissionForTransit": "413a55f0f5b6bb695c6b686326b233c2383cc20c5ea06daa24a88da58dcba3fc",
    "AcceptanceForTransit": "ad3cce1a4cb35d34941a6fc3a4c381704df4f052cef8ac0aa7aea996cf775f3f",
    "InlandNoticeOfArrival": "64b6ffde8ef04cdba5af399693ad0aa9274d9a5ba12514d92679b1090c9eecd6",
    "InlandGeneralDeclaration": "9802cb38152a30a5bbb7d4d0521fb43795f5865c8f040e98ae97e0004013d2e4",
    "InlandCrewLists": "abfe46e3236c0fe64b25e3a74c5df16810d206082d626df52e873f7dfb4aa3ec",
    "InlandPassengerList": "4ad8dd23ebab6f3f76b019fcdcb8b9b4bf8162b484c020a6d7c260ea9efa3171",
    "InlandPortClearance": "c9c2015df92f1235b6df615cd5dc17e3f967f03a2e9d342c93ecc1b4705456c9",
    "InlandShiftingOrder": "4f6d1ec34ffe19e98dcf618a1ba4724d124cb04e493a97361992c9d9ac90f454",
    "ConfirmationOfArrival": "01e6c27ef9a98f92a09732c5709ec13e419f08fdebd0ac1bab366e2283deb26b",
    "ShipSecurityNotification": "84ca4d068c16e61ca63e65016cd73cadfe096727614a0ff8dd175bc42b6e9f2a",
}
"""SHA-256 of each content schema as the corpus folder ``mot_maritime_content_xsd`` holds it (SOURCES.md: copied
unchanged), so that the check needs no corpus checkout."""


@pytest.mark.parametrize("name", sorted(SAMPLE_MESSAGES))
def test_the_shipped_content_schema_of_each_sample_is_the_corpus_file_unchanged(name: str) -> None:
    root = etree.QName(_section((SAMPLES / name).read_bytes())).localname
    shipped = Path(__file__).parents[2] / "mappings" / "schemas" / "vnsw" / "mot_maritime" / f"{root}.xsd"
    assert hashlib.sha256(shipped.read_bytes()).hexdigest() == CORPUS_SHA256[root]


# --------------------------------------------------------------------------- registration


def test_the_orders_and_transit_permissions_are_registered_as_issued_under_their_document_types() -> None:
    for message_type, _, table, procedures in ORDERS:
        for procedure in procedures:
            found = find_message(procedure, message_type, "01")
            assert found is not None and found.content.children == (table,), (procedure, message_type)
            assert found.implies == (("permit.decision", "issued"),)
            assert find_message(procedure, message_type, "02") is None
    assert find_message("1", "80", "01") is None and find_message("1", "90", "01") is None


def test_a_transit_has_the_fal_declarations_and_the_whole_call_but_no_notice_of_arrival_or_port_clearance() -> None:
    for message_type in ("50", "51", "52", "53", "54", "55", "56", "57", "58", "99"):
        for function in ("01", "02"):
            found = find_message("3", message_type, function)
            assert found is not None and found.title.startswith("Ship transit: "), (message_type, function)
    for message_type in ("30", "60", "72"):
        assert find_message("3", message_type, "01") is None
    crew_list = inland_call("1", "51")
    transit = crew_list.model_copy(update={"envelope": crew_list.envelope.model_copy(update={"procedure": "3"})})  # type: ignore[union-attr]
    assert VNSW.parse(VNSW.emit(transit)) == transit


def test_the_confirmation_of_arrival_and_security_notification_are_entry_declarations_declared_and_amended() -> None:
    assert [n[0] for n in NOTICES] == ["10", "40"]
    for message_type, _, table, procedures in NOTICES:
        assert procedures == (("1", "3") if message_type == "10" else ("1",))
        for procedure in procedures:
            for function in ("01", "02"):
                found = find_message(procedure, message_type, function)
                assert found is not None and found.content.children == (table,)
                assert found.implies == ()
        assert find_message("2", message_type, "01") is None
    assert NOTICES[1][2] is CONFIRMATION_OF_ARRIVAL


def test_a_security_notification_without_its_last_port_calls_is_refused() -> None:
    """The schema requires at least one ``PortOfCall``."""
    msg = security_notification()
    call = msg.ship_call
    assert call is not None and call.security is not None
    bare = msg.model_copy(
        update={
            "ship_call": call.model_copy(update={"security": call.security.model_copy(update={"last_port_calls": ()})})
        }
    )
    with pytest.raises(ValidationFailed) as exc:
        VNSW.emit(bare)
    assert _issues(exc) == [("ship_call.security.last_port_calls", "NATIVE_REQUIRED_MISSING")]


def test_a_security_notification_naming_a_port_that_is_no_locode_is_caught_by_the_code_list_check() -> None:
    data = (SAMPLES / "ship_entry_t10_f01_ship_security_notification.xml").read_bytes()
    data = data.replace(b"<PortCode>MYPKG</PortCode>", b"<PortCode>Port Klang</PortCode>")
    issues = rules.validate(VNSW.parse(data))
    assert [(i.path, i.code) for i in issues] == [("ship_call.security.last_port_calls[1].port", "LOCODE_INVALID")]


def test_each_inland_message_is_registered_for_arrival_and_departure() -> None:
    for procedure in INLAND_PROCEDURES:
        for message_type, _, table in INLAND_FORMS:
            for function in ("01", "02"):
                found = find_message(procedure, message_type, function)
                assert found is not None and found.content.children == (table,), (procedure, message_type, function)
        for message_type, _, table in INLAND_ORDERS:
            found = find_message(procedure, message_type, "01")
            assert found is not None and found.content.children == (table,)
            assert found.implies == (("permit.decision", "issued"),)


def test_an_inland_crew_list_reads_what_the_sea_crew_list_reads_of_the_same_crew() -> None:
    """The inland tables reuse the sea tables' elements: the same crew member written as a sea crew list (51,
    documentType 1) and as an inland one (51, documentType 4) reads back to the same person as far as the inland
    list carries."""
    inland = inland_call("4", "51")
    sea = inland.model_copy(update={"envelope": inland.envelope.model_copy(update={"procedure": "1"})})  # type: ignore[union-attr]
    assert VNSW.parse(VNSW.emit(sea)).ship_call.crew == VNSW.parse(VNSW.emit(inland)).ship_call.crew  # type: ignore[union-attr]


# --------------------------------------------------------------------------- strict out


def test_a_shifting_order_without_draughts_length_or_deadweight_is_refused_naming_each() -> None:
    """The ShiftingOrder schema types these ``xs:double`` and requires them: an empty element would not validate."""
    msg = shifting_order()
    call = msg.ship_call
    assert call is not None and call.ship is not None
    bare = msg.model_copy(
        update={
            "ship_call": call.model_copy(
                update={
                    "ship": call.ship.model_copy(update={"length_overall": None, "deadweight": None}),
                    "voyage": Voyage(port_of_call="VNSGN"),
                }
            )
        }
    )
    with pytest.raises(ValidationFailed) as exc:
        VNSW.emit(bare)
    assert _issues(exc) == [
        ("ship_call.voyage.draught_forward", "NATIVE_REQUIRED_MISSING"),
        ("ship_call.voyage.draught_aft", "NATIVE_REQUIRED_MISSING"),
        ("ship_call.ship.length_overall", "NATIVE_REQUIRED_MISSING"),
        ("ship_call.ship.deadweight", "NATIVE_REQUIRED_MISSING"),
    ]


def test_a_shifting_order_without_its_number_or_issue_date_is_refused() -> None:
    msg = shifting_order()
    bare = msg.model_copy(update={"permit": Permit(decision=Decision.ISSUED)})
    with pytest.raises(ValidationFailed) as exc:
        VNSW.emit(bare)
    assert _issues(exc) == [
        ("permit.number", "NATIVE_REQUIRED_MISSING"),
        ("permit.decision_date", "NATIVE_REQUIRED_MISSING"),
    ]


@pytest.mark.parametrize("message", ["70", "80", "90"])
def test_an_order_or_transit_permission_states_it_is_issued_and_refuses_another_decision(message: str) -> None:
    msg = shifting_order("3") if message == "70" else transit_permit(message)
    assert msg.permit is not None
    refused = msg.model_copy(update={"permit": msg.permit.model_copy(update={"decision": Decision.REJECTED})})
    with pytest.raises(ValidationFailed) as exc:
        VNSW.emit(refused)
    assert _issues(exc) == [("permit.decision", "MESSAGE_FUNCTION_CONFLICT")]
    unstated = msg.model_copy(update={"permit": msg.permit.model_copy(update={"decision": None})})
    back = VNSW.parse(VNSW.emit(unstated))
    assert back.permit is not None and back.permit.decision == Decision.ISSUED


def test_an_inland_shifting_order_carries_no_draughts_origin_or_reason() -> None:
    msg = shifting_order("4")
    back = VNSW.parse(VNSW.emit(msg))
    call = back.ship_call
    assert call is not None and call.shifting is not None and call.voyage is not None
    assert (call.shifting.harbour, call.shifting.wharf, call.shifting.shifting_at) == (
        "CATLAI",
        "CL05",
        dt.datetime(2026, 12, 5, 14, 30, tzinfo=VN),
    )
    assert (call.shifting.from_berth, call.shifting.reason, call.voyage.draught_forward) == (None, None, None)
    assert back.permit is not None and back.permit.number is None
    assert b"Cat Lai berth 3" not in VNSW.emit(msg)


# --------------------------------------------------------------------------- lenient in


def test_a_native_shifting_order_is_read_leniently() -> None:
    """A namespaced root, ``dd/MM/yyyy HH:mm`` times, comma decimals, unknown and missing elements."""
    data = (SAMPLES / "ship_entry_t70_f01_shifting_order.xml").read_bytes()
    data = data.replace(b"<Envelope>", b'<soap:Envelope xmlns:soap="urn:example:soap">', 1)
    data = data.replace(b"</Envelope>", b"</soap:Envelope>")
    data = data.replace(
        b"<ShiftingDate>2026-12-05 14:30:00</ShiftingDate>", b"<ShiftingDate>05/12/2026 14:30</ShiftingDate>"
    )
    data = data.replace(
        b"<ShownDraftxF>10.2</ShownDraftxF>", b"<ShownDraftxF>10,2</ShownDraftxF><PilotName>X</PilotName>"
    )
    data = data.replace(b"<ReasonToShift>Berth 3 needed for a dredger</ReasonToShift>", b"")
    back = VNSW.parse(data)
    call = back.ship_call
    assert call is not None and call.shifting is not None and call.voyage is not None
    assert call.shifting.shifting_at == dt.datetime(2026, 12, 5, 14, 30, tzinfo=VN)
    assert call.voyage.draught_forward == Decimal("10.2")
    assert call.shifting.reason is None and call.shifting.to_berth == "Cat Lai berth 5"


def test_a_shifting_date_that_is_no_date_is_refused_naming_the_element() -> None:
    data = (SAMPLES / "ship_entry_t70_f01_shifting_order.xml").read_bytes()
    data = data.replace(b"2026-12-05 14:30:00", b"2026-13-05 14:30:00")
    with pytest.raises(ValidationFailed) as exc:
        VNSW.parse(data)
    assert _issues(exc) == [("/Envelope/Body/Content/ShiftingOrder/ShiftingDate", "NATIVE_VALUE_INVALID")]


# --------------------------------------------------------------------------- round trips

locodes = st.sampled_from(["VNSGN", "VNHPH", "VNDAD", "VNVCA", "SGSIN", "KHPNH", "THLCH"])
counts = st.integers(min_value=0, max_value=5000)
endpoints = st.builds(
    Endpoint, name=alnum, identity=alnum, country=st.just("VN"), ministry=alnum, organization=alnum, unit=o(alnum)
)


def _envelope(draw: st.DrawFn, procedure: str, message_type: str, function: str) -> Envelope:
    return Envelope(
        message_id=draw(st.uuids().map(str)),
        version="01",
        sender=draw(endpoints),
        recipient=draw(endpoints),
        procedure=procedure,
        message_type=message_type,
        function=function,
        reference=draw(alnum),
        reference_year=draw(st.integers(2000, 9999)),
        previous_reference=draw(alnum),
        sent_at=draw(aware),
    )


def _some(value: Any) -> Any:
    """``value``, or None when it has no field set (what an element with only empty children reads as)."""
    return value if value is not None and value != type(value)() else None


def _permit(draw: st.DrawFn, *, number: bool, dated: bool, valid: bool) -> Permit:
    return Permit(
        number=draw(alnum) if number else None,
        decision=Decision.ISSUED,
        decision_date=draw(aware) if dated else None,
        valid_until=draw(o(aware)) if valid else None,
        officer=draw(o(text())) if dated else None,
        department=draw(o(alnum)) if dated else None,
    )


agents = st.builds(
    Party,
    name=text(),
    identifier=o(alnum),
    address=o(st.builds(Address, line1=text())),
    phone=o(alnum),
    fax=o(alnum),
    email=o(alnum),
)


@st.composite
def sea_orders(draw: st.DrawFn) -> TradeMessage:
    """A shifting order (70, documentType 1-3) or a transit permission (80 or 90, documentType 3)."""
    message_type = draw(st.sampled_from(["70", "80", "90"]))
    procedure = draw(st.sampled_from(["1", "2", "3"])) if message_type == "70" else "3"
    shifting, transit, accepted = message_type == "70", message_type == "90", message_type == "80"
    return TradeMessage(
        envelope=_envelope(draw, procedure, message_type, "01"),
        permit=_permit(draw, number=True, dated=not accepted, valid=transit),
        document=draw(o(st.builds(DocumentInfo, number=alnum, link=o(alnum)))) if not accepted else None,
        ship_call=ShipCall(
            reference=draw(alnum),
            ship=ShipParticulars(
                name=draw(text()),
                flag=draw(o(countries)),
                call_sign=draw(o(alnum)) if not shifting else None,
                master=draw(o(text())) if not shifting else None,
                gross_tonnage=draw(o(decimals)) if not shifting else None,
                net_tonnage=draw(o(decimals)) if accepted else None,
                breadth=draw(o(decimals)) if accepted else None,
                length_overall=draw(decimals if shifting else o(decimals)) if not transit else None,
                deadweight=draw(decimals if shifting else o(decimals)) if not transit else None,
            ),
            voyage=_some(
                Voyage(
                    port_of_call=draw(o(locodes)) if shifting else None,
                    etd=draw(o(aware)) if not shifting else None,
                    transit_from=draw(o(text())) if not shifting else None,
                    transit_to=draw(o(text())) if not shifting else None,
                    draught_forward=draw(decimals if shifting else o(decimals)) if not transit else None,
                    draught_aft=draw(decimals if shifting else o(decimals)) if not transit else None,
                )
            ),
            agent=draw(o(agents)) if shifting else None,
            crew_count=draw(o(counts)) if transit else None,
            passenger_count=draw(o(counts)) if transit else None,
            cargo_summary=draw(o(text(200))) if transit else None,
            shifting=_some(
                draw(
                    o(
                        st.builds(
                            Shifting,
                            from_berth=o(text()),
                            to_berth=o(text()),
                            harbour=o(alnum),
                            wharf=o(alnum),
                            shifting_at=o(aware),
                            reason=o(text(200)),
                            tugs=o(text()),
                        )
                    )
                )
            )
            if shifting
            else None,
        ),
    )


@SETTINGS
@given(sea_orders())
def test_the_shifting_order_and_transit_permissions_round_trip_through_vnsw_losslessly(msg: TradeMessage) -> None:
    data = VNSW.emit(msg)
    assert VNSW.parse(data) == msg
    section = _section(data)
    assert load_schema(f"vnsw/mot_maritime/{etree.QName(section).localname}.xsd").validate(etree.ElementTree(section))


@st.composite
def arrival_confirmations(draw: st.DrawFn) -> TradeMessage:
    return TradeMessage(
        envelope=_envelope(draw, "1", "40", draw(st.sampled_from(["01", "02"]))),
        ship_call=ShipCall(
            reference=draw(alnum),
            ship=ShipParticulars(
                name=draw(text()),
                imo_number=draw(o(st.text(alphabet="0123456789", min_size=7, max_size=7))),
                call_sign=draw(o(alnum)),
                flag=draw(o(countries)),
                ship_type=draw(o(alnum)),
            ),
            voyage=_some(Voyage(port_of_call=draw(o(locodes)), berth=draw(o(alnum)), eta=draw(o(aware)))),
        ),
        signatory=draw(o(st.builds(Signatory, place=text(), signed_at=o(aware)))),
    )


security_notifications = st.builds(
    ShipSecurity,
    certificate_valid=o(st.booleans()),
    certificate_issuer=o(text()),
    certificate_issued=o(dates),
    certificate_expiry=o(dates),
    security_level=o(st.sampled_from(["1", "2", "3"])),
    last_port_calls=st.lists(
        st.builds(
            SecurityPortCall,
            port=o(locodes),
            arrival=o(aware),
            departure=o(aware),
            security_level=o(st.sampled_from(["1", "2", "3"])),
        ).filter(lambda c: c != SecurityPortCall()),
        min_size=1,
        max_size=3,
    ).map(tuple),
    additional_measures=o(st.booleans()),
    additional_measures_details=o(text(200)),
    security_maintained=o(st.booleans()),
    security_maintained_details=o(text(200)),
)


@SETTINGS
@given(security_notifications, st.sampled_from(["01", "02"]))
def test_the_security_notification_round_trips_through_vnsw_losslessly(security: ShipSecurity, function: str) -> None:
    base = security_notification(function)
    msg = base.model_copy(update={"ship_call": base.ship_call.model_copy(update={"security": security})})  # type: ignore[union-attr]
    data = VNSW.emit(msg)
    assert VNSW.parse(data) == msg
    assert load_schema("vnsw/mot_maritime/ShipSecurityNotification.xsd").validate(etree.ElementTree(_section(data)))


@SETTINGS
@given(arrival_confirmations())
def test_the_confirmation_of_arrival_round_trips_through_vnsw_losslessly(msg: TradeMessage) -> None:
    data = VNSW.emit(msg)
    assert VNSW.parse(data) == msg
    section = _section(data)
    assert load_schema("vnsw/mot_maritime/ConfirmationOfArrival.xsd").validate(etree.ElementTree(section))


@st.composite
def inland_messages(draw: st.DrawFn) -> TradeMessage:
    """Any inland declaration (30, 50-52, functions 01 and 02) or order (60, 70) with what its table carries."""
    procedure = draw(st.sampled_from(sorted(INLAND_PROCEDURES)))
    message_type = draw(st.sampled_from(["30", "50", "51", "52", "60", "70"]))
    order = message_type in ("60", "70")
    function = "01" if order else draw(st.sampled_from(["01", "02"]))
    declared = message_type in ("30", "50")
    ship = ShipParticulars(
        name=draw(text()),
        call_sign=draw(o(alnum)) if message_type in ("30", "50", "60", "70") else None,
        ship_type=draw(o(alnum)) if declared else None,
        master=draw(o(text())) if message_type in ("30", "50", "60") else None,
        flag=draw(o(countries)) if message_type == "60" else None,
        gross_tonnage=draw(o(decimals)) if message_type in ("50", "60") else None,
        net_tonnage=draw(o(decimals)) if message_type == "50" else None,
    )
    voyage = Voyage(
        arrival=draw(o(st.booleans())) if message_type in ("50", "51", "52") else None,
        port_of_call=draw(o(locodes)) if message_type in ("30", "50", "70") else None,
        eta=draw(o(aware)) if declared else None,
        last_port=draw(o(locodes)) if declared else None,
        berth=draw(o(alnum)) if declared else None,
        purpose_of_call=draw(o(alnum)) if message_type == "30" else None,
        etd=draw(o(aware)) if message_type == "60" else None,
        next_port=draw(o(locodes)) if message_type == "60" else None,
        draught_forward=draw(o(decimals)) if message_type == "30" else None,
        draught_aft=draw(o(decimals)) if message_type == "30" else None,
    )
    crew = draw(
        st.lists(
            st.builds(
                Person,
                family_name=text(),
                given_names=o(text()),
                rank_or_rating=o(alnum),
                identity_document=o(st.builds(IdentityDocument, number=alnum)),
            ),
            min_size=1,
            max_size=3,
        )
    )
    passengers = draw(
        st.lists(
            st.builds(
                Person,
                family_name=text(),
                given_names=o(text()),
                date_of_birth=o(dates),
                place_of_birth=o(text()),
                identity_document=o(st.builds(IdentityDocument, type=o(alnum), number=alnum)),
            ),
            min_size=1,
            max_size=3,
        )
    )
    call = ShipCall(
        reference=draw(alnum),
        ship=ship,
        voyage=_some(voyage),
        crew=tuple(crew) if message_type == "51" else (),
        passengers=tuple(passengers) if message_type == "52" else (),
        agent=draw(o(agents)) if declared else None,
        cargo_summary=draw(o(text(200))) if message_type in ("30", "50", "60") else None,
        crew_count=draw(o(counts)) if message_type in ("30", "60") else None,
        passenger_count=draw(o(counts)) if message_type in ("30", "60") else None,
        shifting=_some(draw(o(st.builds(Shifting, harbour=o(alnum), wharf=o(alnum), shifting_at=o(aware)))))
        if message_type == "70"
        else None,
    )
    return TradeMessage(
        envelope=_envelope(draw, procedure, message_type, function),
        ship_call=call,
        permit=_permit(draw, number=False, dated=True, valid=message_type == "60") if order else None,
        document=draw(o(st.builds(DocumentInfo, number=alnum, link=o(alnum)))) if order else None,
        signatory=draw(o(st.builds(Signatory, place=text(), signed_at=o(aware)))) if not order else None,
    )


@SETTINGS
@given(inland_messages())
def test_every_inland_message_round_trips_through_vnsw_losslessly(msg: TradeMessage) -> None:
    data = VNSW.emit(msg)
    assert VNSW.parse(data) == msg
    section = _section(data)
    assert load_schema(f"vnsw/mot_maritime/{etree.QName(section).localname}.xsd").validate(etree.ElementTree(section))


def test_the_shifting_order_table_names_every_element_of_its_schema_in_order() -> None:
    schema = etree.parse(
        str(Path(__file__).parents[2] / "mappings" / "schemas" / "vnsw" / "mot_maritime" / "ShiftingOrder.xsd")
    )
    xs = "{http://www.w3.org/2001/XMLSchema}"
    root = schema.getroot().find(f"{xs}element")
    assert root is not None
    names = [e.get("name") for e in root.findall(f"{xs}complexType/{xs}sequence/{xs}element")]
    assert [c.tag for c in SHIFTING_ORDER.children] == names


# --------------------------------------------------------------------------- at the HTTP API

ORDER_DOCUMENT_TYPE = "maritime.port_order"


@pytest.fixture
async def rig(
    tmp_path: Path, store_section: dict[str, Any]
) -> AsyncIterator[tuple[Gateway, aiohttp.ClientSession, Receiver]]:
    port = await Receiver().start()
    config = make_config(
        tmp_path,
        {"PORT": port.url},
        parties={"TRADER": {"document_types": [ORDER_DOCUMENT_TYPE], "identities": {"vnsw": PORT_IDENTITY}}},
        document_types={ORDER_DOCUMENT_TYPE: {"procedures": ["1/70/01", "3/90/01", "4/70/01", "4/51/01"]}},
        extra=store_section,
    )
    try:
        async with Gateway(config) as gw, aiohttp.ClientSession() as s:
            yield gw, s, port
    finally:
        await port.stop()


async def test_a_shifting_order_and_an_inland_crew_list_reach_the_destination_as_sent(rig) -> None:
    gw, s, port = rig
    for i, msg in enumerate((shifting_order(), inland_call("4", "51"))):
        status, body = await submit(
            s, gw.url, "TRADER", f"ORDER-{i}", ORDER_DOCUMENT_TYPE, VNSW.emit(msg), X_Format="vnsw"
        )
        assert status == 202, body
    await eventually(lambda: len(port.requests) == 2)
    received = [VNSW.parse(r["body"]) for r in port.requests]
    assert sorted(received, key=lambda m: str(m.envelope.message_type if m.envelope else "")) == [
        inland_call("4", "51"),
        shifting_order(),
    ]


async def test_a_transit_permit_with_a_signing_date_that_is_no_date_is_refused_naming_the_element(rig) -> None:
    gw, s, port = rig
    data = VNSW.emit(transit_permit("90")).replace(
        b"<DateOfSign>2026-12-05 10:00:00</DateOfSign>", b"<DateOfSign>2026-12-32 10:00:00</DateOfSign>"
    )
    status, body = await submit(s, gw.url, "TRADER", "PERMIT-BAD-DATE", ORDER_DOCUMENT_TYPE, data, X_Format="vnsw")
    assert status == 422 and body["error"]["code"] == "VALIDATION_FAILED"
    assert body["error"]["field"] == "/Envelope/Body/Content/PermissionForTransit/DateOfSign"
    assert port.requests == []


async def test_an_inland_shifting_order_to_a_port_that_is_no_locode_is_refused_naming_the_field(rig) -> None:
    gw, s, port = rig
    data = VNSW.emit(inland_order("4", "70")).replace(
        b"<AnchoringPortCode>VNVCA</AnchoringPortCode>", b"<AnchoringPortCode>CAN THO</AnchoringPortCode>"
    )
    status, body = await submit(s, gw.url, "TRADER", "SHIFT-BAD-PORT", ORDER_DOCUMENT_TYPE, data, X_Format="vnsw")
    assert status == 422 and body["error"]["code"] == "VALIDATION_FAILED"
    assert body["error"]["field"] == "ship_call.voyage.port_of_call"
    assert port.requests == []


def test_the_data_dictionary_and_the_vnsw_mapping_table_list_the_new_ship_call_fields() -> None:
    by_path = {e.path: e for e in entries()}
    assert by_path["ship_call.security.last_port_calls[].port"].code_list == "UNLOCODE"
    for path in ("ship_call.shifting.to_berth", "ship_call.voyage.draught_forward", "ship_call.voyage.transit_from"):
        assert by_path[path].description, path
    rows = VNSW.mapping_table()
    assert (
        "[3 90/01] /Envelope/Body/Content/PermissionForTransit/PermittedTransitFrom",
        "ship_call.voyage.transit_from",
    ) in rows
    assert (
        "[4 51/02] /Envelope/Body/Content/InlandCrewLists/CrewList/Crew/FamilyName",
        "ship_call.crew[].family_name",
    ) in rows
    assert ("[1 70/01] (function 01)", "permit.decision = 'issued'") in rows
