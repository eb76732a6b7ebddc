"""VNSW ministry envelope: corpus vectors in, strict XSD-valid messages out (MARD BNNPTNT0600011, BNN0300003)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from gateway.errors import ValidationFailed, XmlDtdForbidden, XmlMalformed
from helpers.mappings import MARD, NSW, VECTORS, VN, envelope, quarantine_result
from mappings.model import (
    Acknowledgement,
    Decision,
    ErrorEntry,
    GoodsItem,
    Location,
    Measure,
    Parties,
    Party,
    Permit,
    Signatory,
    TradeMessage,
)
from mappings.registry import get as get_format
from mappings.vnsw import VN_TZ, find_message, messages
from mappings.xmlformat import load_schema
from signing.xml import parse_xml

VNSW = get_format("vnsw")
DIR = VECTORS / "vnsw"
SAMPLE = DIR / "mard_BNNPTNT0600011_t10_f01_registration_NSW_to_BNN_sample.xml"


def issues_of(exc: pytest.ExceptionInfo[ValidationFailed]) -> list[tuple[str, str]]:
    return [(i.path, i.code) for i in exc.value.issues]


def test_captured_registration_sample_parses_leniently() -> None:
    """SOAP:Envelope root, undeclared RegistrationType and SystemSignature, '.0' millis, ISO SignDate: all accepted."""
    msg = VNSW.parse(SAMPLE.read_bytes())
    env = msg.envelope
    assert env is not None
    assert (env.procedure, env.message_type, env.function) == ("BNNPTNT0600011", "10", "01")
    assert env.sent_at == dt.datetime(2019, 12, 12, 19, 27, 22, tzinfo=VN_TZ)
    assert env.sender == NSW.model_copy(update={})
    assert msg.parties.declarant is not None and msg.parties.declarant.name == "Công ty TNHH Ánh Sao"
    assert msg.parties.declarant.email == "hoangnl@viettel.com.vn"
    assert msg.parties.exporter is not None and msg.parties.exporter.name == "Cty Sao Vàng"
    (animal,) = msg.goods
    assert animal.description == "Lợn nái"
    assert [(q.qualifier, q.value, q.unit) for q in animal.quantities] == [
        ("female", Decimal(12), "NAR"),
        ("male", Decimal(12), "NAR"),
    ]
    assert (animal.export_country, animal.export_country_name) == ("CN", "Trung Quốc")
    assert msg.permit is not None
    assert msg.permit.expected_date == dt.datetime(2019, 12, 24, 17, 0, tzinfo=VN_TZ)
    assert msg.permit.purpose == "làm giống"
    assert msg.permit.procedure_code == "BNNPTNT0600011"
    assert msg.signatory == Signatory(
        name="Trần Hùng", role="giám đốc", place="Hà nội", signed_at=dt.datetime(2019, 12, 30, tzinfo=VN_TZ)
    )
    assert VNSW.validate(SAMPLE.read_bytes()) == []


def test_captured_sample_is_not_reemitted_without_what_the_xsd_requires() -> None:
    """Lenient in, strict out: the sample lacks AnimalSort, AnimalCode and the port of destination."""
    msg = VNSW.parse(SAMPLE.read_bytes())
    with pytest.raises(ValidationFailed) as info:
        VNSW.emit(msg)
    assert issues_of(info) == [
        ("goods[0].sequence", "NATIVE_REQUIRED_MISSING"),
        ("goods[0].commodity_code", "NATIVE_REQUIRED_MISSING"),
        ("goods[0].destination_port.name", "NATIVE_REQUIRED_MISSING"),
    ]


def test_completed_registration_emits_a_message_valid_against_type10_func01_xsd() -> None:
    msg = VNSW.parse(SAMPLE.read_bytes())
    animal = msg.goods[0].model_copy(
        update={"sequence": 1, "commodity_code": "1001", "destination_port": Location(name="Huu Nghi")}
    )
    fixed = msg.model_copy(update={"goods": (animal,)})
    out = VNSW.emit(fixed)
    root = parse_xml(out)
    assert root.tag == "Envelope"
    schema = load_schema("vnsw/mard_p08_BNNPTNT0600011/BNNPTNT0600011_type10_func01.xsd")
    assert schema.validate(root), schema.error_log
    assert root.findtext("Body/Content/Registration/AnimalRegistration/AnimalExecutionTime") == "2019-12-24 17:00:00"
    assert root.findtext("Body/Content/Registration/SignDate") == "2019-12-30 00:00:00"
    assert VNSW.parse(out) == fixed


@pytest.mark.parametrize(
    "name",
    [
        "BNNPTNT0600011_t12_f05_quarantine_result_accept_BNN_to_NSW.xml",
        "BNNPTNT0600011_t16_f12_import_quarantine_dispatch_BNN_to_NSW.xml",
        "ack_success_func99_NSW_to_BNN.xml",
        "ack_error_func00_ErrorList.xml",
    ],
)
def test_reconstructed_vector_round_trips_through_the_harmonized_model(name: str) -> None:
    msg = VNSW.parse((DIR / name).read_bytes())
    out = VNSW.emit(msg)
    assert VNSW.parse(out) == msg


def test_quarantine_result_function_05_means_accepted() -> None:
    msg = VNSW.parse((DIR / "BNNPTNT0600011_t12_f05_quarantine_result_accept_BNN_to_NSW.xml").read_bytes())
    assert msg.permit == Permit(
        procedure_code="BNNPTNT0600011",
        application_number="BNNPTNT11190000272",
        decision="accepted",  # type: ignore[arg-type]
        decision_date=dt.datetime(2019, 12, 13, 9, 14, 40, tzinfo=VN_TZ),
        reason="Ho so hop le",
        department="Cuc Thu y",
        officer="Nguyen Van A",
    )


@pytest.mark.parametrize(
    ("function", "decision"), [("05", "accepted"), ("06", "rejected"), ("07", "supplement_requested")]
)
def test_quarantine_result_functions_emit_valid_xml(function: str, decision: str) -> None:
    out = VNSW.emit(quarantine_result(function, decision))
    schema = load_schema(f"vnsw/mard_p08_BNNPTNT0600011/BNNPTNT0600011_type12_func{function}.xsd")
    assert schema.validate(parse_xml(out))
    assert VNSW.parse(out).permit.decision.value == decision  # type: ignore[union-attr]


def test_rejection_sent_as_acceptance_is_a_function_conflict() -> None:
    with pytest.raises(ValidationFailed) as info:
        VNSW.emit(quarantine_result("05", "rejected"))
    assert issues_of(info) == [("permit.decision", "MESSAGE_FUNCTION_CONFLICT")]


def test_dispatch_vector_maps_goods_units_and_parties() -> None:
    msg = VNSW.parse((DIR / "BNNPTNT0600011_t16_f12_import_quarantine_dispatch_BNN_to_NSW.xml").read_bytes())
    assert msg.permit is not None and (msg.permit.number, msg.permit.decision) == ("1234/TY-KD", "issued")
    assert msg.permit.valid_until == dt.datetime(2020, 3, 16, tzinfo=VN_TZ)
    (item,) = msg.goods
    assert (item.sequence, item.commodity_code, item.origin_country) == (1, "01032900", "CN")
    assert [(q.qualifier, q.value, q.unit) for q in item.quantities] == [
        ("female", Decimal(12), "NAR"),
        ("male", Decimal(12), "NAR"),
        (None, Decimal(24), "NAR"),
    ]
    out = parse_xml(VNSW.emit(msg))
    assert out.findtext("Body/Content/Quarantine/GoodsList/Goods/QuantityUnitCode") == "CON"
    assert out.findtext("Body/Content/Quarantine/GoodsList/Goods/QuantityUnitName") == "con"
    assert msg.parties.consignee == Party(name="Cong ty TNHH Anh Sao")


def test_amended_dispatch_uses_function_14_and_its_xsd() -> None:
    msg = VNSW.parse((DIR / "BNNPTNT0600011_t16_f12_import_quarantine_dispatch_BNN_to_NSW.xml").read_bytes())
    amended = msg.model_copy(
        update={
            "envelope": msg.envelope.model_copy(update={"function": "14"}),  # type: ignore[union-attr]
            "permit": msg.permit.model_copy(update={"decision": Decision.AMENDED, "reason": "Sua so luong"}),  # type: ignore[union-attr]
        }
    )
    out = VNSW.emit(amended)
    assert parse_xml(out).findtext("Body/Content/Quarantine/ReasonEdit") == "Sua so luong"
    assert VNSW.parse(out) == amended


def test_acknowledgement_and_error_list_vectors() -> None:
    ack = VNSW.parse((DIR / "ack_success_func99_NSW_to_BNN.xml").read_bytes())
    assert ack.acknowledgement == Acknowledgement(received_at=dt.datetime(2019, 12, 13, 9, 15, 3, tzinfo=VN_TZ))
    err = VNSW.parse((DIR / "ack_error_func00_ErrorList.xml").read_bytes())
    assert err.acknowledgement == Acknowledgement(
        errors=(ErrorEntry(code="ERR02_CODE", message="Phân tích xml bị lỗi"),)
    )


def test_error_list_without_errors_is_not_emitted() -> None:
    msg = TradeMessage(envelope=envelope("BNNPTNT0600011", "12", "00"), acknowledgement=Acknowledgement())
    with pytest.raises(ValidationFailed) as info:
        VNSW.emit(msg)
    assert issues_of(info) == [("acknowledgement.errors", "NATIVE_REQUIRED_MISSING")]


def licence() -> TradeMessage:
    return TradeMessage(
        envelope=envelope(
            "BNN0300003", "20", "18", reference="BNN0300003190001", previous_reference="BNN0300003190001"
        ),
        parties=Parties(declarant=Party(name="Cong ty Thuoc BVTV Sai Gon", address={"line1": "12 Nguyen Hue, TP HCM"})),
        goods=(
            GoodsItem(
                sequence=1,
                category="1",
                description="Glyphosate 480SL",
                net_weight=Measure(value=Decimal("1500.5"), unit="KGM"),
                intended_use="Kinh doanh",
                origin_country_name="Trung Quoc",
            ),
        ),
        signatory=Signatory(
            name="Le Van D", role="Cuc truong", place="Ha Noi", signed_at=dt.datetime(2019, 5, 2, 8, 0, tzinfo=VN)
        ),
        permit=Permit(
            procedure_code="BNN0300003",
            number="123/GP-BVTV",
            application_number="HS0001",
            decision="issued",  # type: ignore[arg-type]
            decision_date=dt.datetime(2019, 5, 2, 8, 0, tzinfo=VN),
            purpose="Nhap khau kinh doanh",
            border_gates="Cat Lai",
        ),
    )


def test_pesticide_licence_emits_xml_valid_against_mard_20_and_reads_back() -> None:
    out = VNSW.emit(licence())
    root = parse_xml(out)
    assert load_schema("vnsw/mard_p14_BNN0300003/mard_20.xsd").validate(root)
    goods = root.find("Body/Content/MedicinePPLicense/GoodsList/Goods")
    assert goods is not None
    assert [c.tag for c in goods] == [
        "Sort",
        "TypeGood",
        "NameOfGoods",
        "Weight",
        "WeightUnitCode",
        "WeightUnitName",
        "MainUse",
        "Origin",
    ]
    assert goods.findtext("WeightUnitName") == "kg"
    assert VNSW.parse(out) == licence()


def test_pesticide_licence_without_goods_lists_every_missing_element() -> None:
    msg = licence().model_copy(
        update={"goods": (), "permit": licence().permit.model_copy(update={"border_gates": None})}
    )  # type: ignore[union-attr]
    with pytest.raises(ValidationFailed) as info:
        VNSW.emit(msg)
    assert issues_of(info) == [("goods", "NATIVE_REQUIRED_MISSING"), ("permit.border_gates", "NATIVE_REQUIRED_MISSING")]


def test_pesticide_licence_reference_with_a_slash_fails_the_xsd_pattern() -> None:
    msg = licence()
    bad = msg.model_copy(update={"envelope": msg.envelope.model_copy(update={"reference": "BNN/03"})})  # type: ignore[union-attr]
    with pytest.raises(ValidationFailed) as info:
        VNSW.emit(bad)
    assert {code for _, code in issues_of(info)} == {"SCHEMA_INVALID"}
    assert any("reference" in path for path, _ in issues_of(info))


def test_unknown_procedure_is_message_type_unknown() -> None:
    data = SAMPLE.read_bytes().replace(b"<type>10</type>", b"<type>42</type>")
    with pytest.raises(ValidationFailed) as info:
        VNSW.parse(data)
    assert issues_of(info) == [("/Envelope/Header/Subject", "MESSAGE_TYPE_UNKNOWN")]
    with pytest.raises(ValidationFailed) as info:
        VNSW.emit(TradeMessage(envelope=envelope("BNNPTNT0600011", "42", "01")))
    assert issues_of(info) == [("envelope.function", "MESSAGE_TYPE_UNKNOWN")]


def test_message_without_envelope_cannot_be_emitted() -> None:
    with pytest.raises(ValidationFailed) as info:
        VNSW.emit(TradeMessage())
    assert issues_of(info) == [("envelope.function", "MESSAGE_TYPE_UNKNOWN")]


def test_wrong_root_element_is_refused() -> None:
    with pytest.raises(ValidationFailed) as info:
        VNSW.parse(b"<Message><Header/></Message>")
    assert issues_of(info) == [("/Message", "ROOT_UNEXPECTED")]


def test_unreadable_values_are_all_reported_with_native_paths() -> None:
    data = (
        SAMPLE.read_bytes()
        .replace(b"<documentYear>2019</documentYear>", b"<documentYear>twenty</documentYear>")
        .replace(b"2019-12-24 17:00:00.0", b"24/12/2019")
        .replace(b"<AnimalQuantityMale>12<", b"<AnimalQuantityMale>a dozen<")
    )
    with pytest.raises(ValidationFailed) as info:
        VNSW.parse(data)
    assert issues_of(info) == [
        ("/Envelope/Header/Subject/documentYear", "NATIVE_VALUE_INVALID"),
        (
            "/Envelope/Body/Content/Registration/AnimalRegistration/AnimalList/Animal[1]/AnimalQuantityMale",
            "NATIVE_VALUE_INVALID",
        ),
        ("/Envelope/Body/Content/Registration/AnimalRegistration/AnimalExecutionTime", "NATIVE_VALUE_INVALID"),
    ]


def test_values_that_break_the_model_are_model_invalid() -> None:
    data = SAMPLE.read_bytes().replace(
        b"<messageId>14a01761-29e4-4026-a71f-983170f405dd</messageId>", b"<messageId>" + b"x" * 40 + b"</messageId>"
    )
    with pytest.raises(ValidationFailed) as info:
        VNSW.parse(data)
    assert issues_of(info) == [("envelope.message_id", "MODEL_INVALID")]


def test_hostile_xml_is_refused_by_the_hardened_parser() -> None:
    with pytest.raises(XmlDtdForbidden):
        VNSW.parse(b'<!DOCTYPE Envelope [<!ENTITY x "y">]><Envelope>&x;</Envelope>')
    with pytest.raises(XmlMalformed):
        VNSW.parse(b"<Envelope><Header></Envelope>")


def test_times_are_written_in_vietnam_time() -> None:
    msg = quarantine_result()
    utc = msg.model_copy(
        update={
            "permit": msg.permit.model_copy(
                update={"decision_date": dt.datetime(2019, 12, 13, 2, 14, 40, tzinfo=dt.UTC)}
            )
        }  # type: ignore[union-attr]
    )
    out = parse_xml(VNSW.emit(utc))
    assert out.findtext("Body/Content/QuarantineResult/ResultDate") == "2019-12-13 09:14:40"


def test_declared_messages_cover_the_first_procedures() -> None:
    keys = {m.key for m in messages()}
    assert {
        ("BNNPTNT0600011", "10", "01"),
        ("BNNPTNT0600011", "12", "05"),
        ("BNNPTNT0600011", "16", "12"),
        ("BNN0300003", "20", "18"),
        ("*", "*", "99"),
        ("*", "*", "00"),
    } <= keys
    assert find_message("BNN0300003", "20", "99") is not None
    assert MARD.country == "VN"


def test_the_from_block_is_read_as_the_identities_the_envelope_claims() -> None:
    data = VNSW.emit(quarantine_result())
    assert VNSW.identities(data) == [
        ("identity", "BNNPTNT", "/Envelope/Header/From/identity"),
        ("ministryCode", "BNNPTNT", "/Envelope/Header/From/ministryCode"),
        ("organizationCode", "06", "/Envelope/Header/From/organizationCode"),
    ]
    missing = data.replace(b"<organizationCode>06</organizationCode>", b"", 1)
    assert VNSW.identities(missing)[2] == ("organizationCode", "", "/Envelope/Header/From/organizationCode")


def test_a_soap_envelope_with_a_ws_addressing_from_claims_no_vnsw_identity() -> None:
    soap = (
        b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://www.w3.org/2005/08/addressing">'
        b"<s:Header><a:From><a:Address>urn:x</a:Address></a:From></s:Header><s:Body/></s:Envelope>"
    )
    assert VNSW.identities(soap) == [] and VNSW.identities(b"<Doc/>") == [] and VNSW.identities(b"not xml") == []
