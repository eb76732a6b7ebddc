"""The procedures onboarded with ``nswgw procedure scaffold`` and finished by hand: MOT Vietnam Register imported
vehicle list and MOH cosmetics. Lenient in, strict (XSD-valid) out, lossless round trips through the registry."""

from __future__ import annotations

from decimal import Decimal

import pytest

from gateway.errors import ValidationFailed
from mappings.model import Amount, DocumentInfo, GoodsItem, Note, TradeMessage
from mappings.registry import convert, get
from mappings.vnsw.mot_vr_imported_vehicles import NOTE_SUBJECTS
from mappings.xmlformat import load_schema
from signing.xml import parse_xml

MOT = get("mot-vr-imported-vehicles")
MOH = get("moh-cosmetic")

_VEHICLE = """<ImportedVehicle>
    <SequenceNo>{seq}</SequenceNo><CodeNumber>1001</CodeNumber><MarkAsVehicle>1</MarkAsVehicle>
    <TradeMark>TOYOTA</TradeMark><ModelType>CAMRY 2.5Q</ModelType><VehicleType>Ô tô con</VehicleType>
    <EngineType>2AR-FE</EngineType><ProductionYear>2024</ProductionYear>
    <ChassisNumber>JTNB11HK{seq}03000001</ChassisNumber><EngineNumber>2AR{seq}123456</EngineNumber>
    <VehicleEngineStatus>0</VehicleEngineStatus><TechnicalSpecCode>TS-2024-0{seq}</TechnicalSpecCode>
    <VehicleUnitPrice>25000.50</VehicleUnitPrice><Currency>USD</Currency><VehicleColor>Trắng</VehicleColor>
  </ImportedVehicle>"""
VEHICLE_LIST = (
    "<?xml version='1.0' encoding='UTF-8'?>\n<ImportedVehicleList>\n  "
    + "\n  ".join(_VEHICLE.format(seq=i) for i in (1, 2))
    + "\n</ImportedVehicleList>\n"
).encode()
"""Written for these tests (fictitious vehicles), in the order of ImportedVehicleList.xsd."""

COSMETIC = (
    b'<ns2:getMessageFromNSWCosmetic xmlns:ns2="http://ws.viettel.com/">'
    b"<name>&lt;Envelope&gt;&lt;Header/&gt;&lt;/Envelope&gt;</name></ns2:getMessageFromNSWCosmetic>"
)
"""A JAX-WS call as the NSW sends it (the NSW message escaped as the text of ``name``)."""


def _codes(exc: pytest.ExceptionInfo[ValidationFailed]) -> list[tuple[str, str]]:
    return [(i.path, i.code) for i in exc.value.issues]


def test_mot_vehicle_list_reads_each_vehicle_as_a_goods_item() -> None:
    assert load_schema("vnsw/mot_vr/ImportedVehicleList.xsd").validate(parse_xml(VEHICLE_LIST))
    msg = MOT.parse(VEHICLE_LIST)
    assert len(msg.goods) == 2
    first = msg.goods[0]
    assert (first.sequence, first.description) == (1, "Ô tô con")
    assert first.fob_value == Amount(value=Decimal("25000.50"), currency="USD")
    notes = {n.subject: n.content for n in first.notes}
    assert list(notes) == list(NOTE_SUBJECTS)
    assert notes["ChassisNumber"] == "JTNB11HK103000001"
    assert notes["VehicleColor"] == "Trắng"


def test_mot_vehicle_list_round_trips_through_the_registry_and_json() -> None:
    msg = MOT.parse(VEHICLE_LIST)
    out = MOT.emit(msg)
    assert load_schema("vnsw/mot_vr/ImportedVehicleList.xsd").validate(parse_xml(out))
    assert MOT.parse(out) == msg
    assert (
        MOT.parse(
            convert(convert(VEHICLE_LIST, "mot-vr-imported-vehicles", "json"), "json", "mot-vr-imported-vehicles")
        )
        == msg
    )


def test_mot_reading_is_lenient_namespaces_unknown_and_missing_elements() -> None:
    lenient = (
        b'<v:ImportedVehicleList xmlns:v="urn:any"><v:ImportedVehicle><v:SequenceNo>3</v:SequenceNo>'
        b"<v:Extra>x</v:Extra><v:TradeMark>KIA</v:TradeMark></v:ImportedVehicle></v:ImportedVehicleList>"
    )
    msg = MOT.parse(lenient)
    assert msg.goods[0].sequence == 3
    assert msg.goods[0].notes == (Note(subject="TradeMark", content="KIA"),)


def test_mot_writing_is_strict_every_required_element() -> None:
    item = GoodsItem(sequence=1, description="Ô tô con", notes=(Note(subject="TradeMark", content="KIA"),))
    with pytest.raises(ValidationFailed) as info:
        MOT.emit(TradeMessage(goods=(item,)))
    codes = _codes(info)
    assert ("goods[0].notes[subject=ChassisNumber].content", "NATIVE_REQUIRED_MISSING") in codes
    assert ("goods[0].fob_value.value", "NATIVE_REQUIRED_MISSING") in codes
    with pytest.raises(ValidationFailed) as info:
        MOT.emit(TradeMessage())
    assert _codes(info) == [("goods", "NATIVE_REQUIRED_MISSING")]


def test_mot_writing_refuses_what_the_xsd_refuses() -> None:
    msg = MOT.parse(VEHICLE_LIST)
    item = msg.goods[0]
    notes = tuple(
        Note(subject=n.subject, content="not-a-number") if n.subject == "CodeNumber" else n for n in item.notes
    )
    bad = msg.model_copy(update={"goods": (item.model_copy(update={"notes": notes}),)})
    with pytest.raises(ValidationFailed) as info:
        MOT.emit(bad)
    assert [code for _, code in _codes(info)] == ["SCHEMA_INVALID"]


def test_mot_bad_values_and_roots_are_refused_with_codes() -> None:
    with pytest.raises(ValidationFailed) as info:
        MOT.parse(VEHICLE_LIST.replace(b"25000.50", b"many", 1))
    assert _codes(info) == [("/ImportedVehicleList/ImportedVehicle[1]/VehicleUnitPrice", "NATIVE_VALUE_INVALID")]
    with pytest.raises(ValidationFailed) as info:
        MOT.parse(b"<ImportedVehicles/>")
    assert _codes(info) == [("/ImportedVehicles", "ROOT_UNEXPECTED")]


def test_moh_cosmetic_call_carries_the_nsw_message_as_document_text() -> None:
    msg = MOH.parse(COSMETIC)
    assert msg.document == DocumentInfo(content="<Envelope><Header/></Envelope>")
    out = MOH.emit(msg)
    root = parse_xml(out)
    assert root.tag == "{http://ws.viettel.com/}getMessageFromNSWCosmetic"
    assert [c.tag for c in root] == ["name"]
    assert MOH.parse(out) == msg
    assert MOH.parse(convert(convert(COSMETIC, "moh-cosmetic", "json"), "json", "moh-cosmetic")) == msg


def test_moh_cosmetic_writing_requires_the_message_and_reading_tolerates_its_absence() -> None:
    with pytest.raises(ValidationFailed) as info:
        MOH.emit(TradeMessage())
    assert _codes(info) == [("document.content", "NATIVE_REQUIRED_MISSING")]
    empty = MOH.parse(b'<getMessageFromNSWCosmetic xmlns="http://ws.viettel.com/"/>')
    assert empty.document is None


def test_mapping_tables_of_the_onboarded_procedures() -> None:
    assert ("/ImportedVehicleList/ImportedVehicle/ChassisNumber", "goods[].notes[subject=ChassisNumber].content") in (
        MOT.mapping_table()
    )
    assert MOH.mapping_table() == [("/getMessageFromNSWCosmetic/name", "document.content")]
