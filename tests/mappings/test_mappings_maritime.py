"""The MOT maritime declarations (``mappings.vnsw.mot_maritime``): a ship call in the VNSW envelope, one FAL form per
message type and the whole call in one (type 99). Strict (XSD-valid) out, lenient in, lossless round trips through
``vnsw`` and ``json``, the samples under ``tests/vectors/mappings/vnsw/mot_maritime`` valid against the corpus
content schemas, and the bad paths at the HTTP API with their codes."""

from __future__ import annotations

import datetime as dt
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
    CrewEffect,
    DangerousGoodsItem,
    Decision,
    DocumentInfo,
    Endpoint,
    Envelope,
    HealthDeclaration,
    IdentityDocument,
    Party,
    Permit,
    Person,
    Quantity,
    ShipCall,
    ShipParticulars,
    Signatory,
    StoresItem,
    TradeMessage,
    Voyage,
)
from mappings.registry import get
from mappings.vnsw import find_message
from mappings.vnsw.mot_maritime import FORMS, PERMITS, SHIP_CALL_TYPE
from mappings.xmlformat import load_schema
from signing.xml import parse_xml

VNSW = get("vnsw")
JSON = get("json")
VN = dt.timezone(dt.timedelta(hours=7))
SAMPLES = VECTORS / "vnsw" / "mot_maritime"
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

AGENT = Endpoint(name="VOSA Saigon", identity="VOSASGN", country="VN", ministry="BGTVT", organization="CHHVN")
NSW = Endpoint(name="NSW", identity="NSW", country="VN", ministry="BTC", organization="TCHQ", unit="NSW")
AGENT_IDENTITY = {"identity": "VOSASGN", "ministryCode": "BGTVT", "organizationCode": "CHHVN"}


def envelope(message_type: str = SHIP_CALL_TYPE, function: str = "01", procedure: str = "1") -> Envelope:
    return Envelope(
        message_id="5b0f7c1e-3a52-4c8e-9d0a-6f1e2b3c4d5e",
        version="01",
        sender=AGENT,
        recipient=NSW,
        procedure=procedure,
        message_type=message_type,
        function=function,
        reference="2026120400017",
        reference_year=2026,
        previous_reference="2026120400017",
        sent_at=dt.datetime(2026, 12, 4, 8, 30, tzinfo=VN),
    )


def ship_call(**kw: Any) -> ShipCall:
    """A container ship's arrival at Ho Chi Minh City from Singapore (fictitious ship, crew and passenger)."""
    base: dict[str, Any] = dict(
        reference="2026120400017",
        ship=ShipParticulars(
            imo_number="9074729",
            call_sign="3FZA7",
            name="OCEAN STAR",
            flag="PA",
            gross_tonnage=Decimal("25305"),
            net_tonnage=Decimal("12890.5"),
            ship_type="CONT",
            master="John Smith",
            registry_certificate="PA-45021-22",
            registry_port="Panama",
            registry_date=dt.date(2022, 5, 17),
            length_overall=Decimal("199.9"),
            breadth=Decimal("32.2"),
            deadweight=Decimal("33500"),
            owner=Party(name="Ocean Star Shipping SA", address=Address(line1="Calle 50, Panama City")),
        ),
        voyage=Voyage(
            voyage_number="045N",
            arrival=True,
            port_of_call="VNSGN",
            eta=dt.datetime(2026, 12, 5, 6, 0, tzinfo=VN),
            last_port="SGSIN",
            next_port="THLCH",
            berth="CL03",
            previous_ports=("MYPKG", "SGSIN"),
            subsequent_ports=("THLCH",),
        ),
        crew=(
            Person(
                family_name="Smith",
                given_names="John",
                nationality="GB",
                date_of_birth=dt.date(1971, 3, 14),
                place_of_birth="Liverpool",
                gender="M",
                rank_or_rating="MASTER",
                identity_document=IdentityDocument(type="PP", number="533402187"),
            ),
            Person(
                family_name="Santos",
                given_names="Maria Luisa",
                nationality="PH",
                date_of_birth=dt.date(1990, 11, 2),
                place_of_birth="Cebu",
                gender="F",
                rank_or_rating="2OFF",
                identity_document=IdentityDocument(type="SB", number="C0193344"),
            ),
        ),
        passengers=(
            Person(
                family_name="Nguyen",
                given_names="Van An",
                nationality="VN",
                date_of_birth=dt.date(1985, 7, 1),
                place_of_birth="Da Nang",
                gender="M",
                identity_document=IdentityDocument(type="PP", number="C1234567"),
                port_of_embarkation="SGSIN",
                port_of_disembarkation="VNSGN",
                transit=False,
            ),
        ),
        dangerous_goods=(
            DangerousGoodsItem(
                un_number="1203",
                proper_shipping_name="GASOLINE",
                imo_class="3",
                packing_group="II",
                quantity=Quantity(value=Decimal("18000"), unit="KGM"),
                reference="BKG-0457",
                marks="MSKU1234565",
                package_count=1,
                package_type="tank container",
                flash_point="-43",
                marine_pollutant=True,
                ems="F-E, S-E",
            ),
        ),
        stores=(
            StoresItem(
                name="Marine gas oil", quantity=Quantity(value=Decimal("85.5"), unit="TNE"), location="DB tank 3"
            ),
        ),
        crew_effects=(CrewEffect(crew_member="Smith", given_names="John", description="Cigarettes, 2 cartons"),),
        health=HealthDeclaration(
            ill_persons=0,
            deaths=0,
            suspected_infectious=False,
            sanitation_certificate_number="SSCEC-SG-2026-0912",
            sanitation_certificate_place="Singapore",
            last_ports_visited=("MYPKG", "SGSIN"),
        ),
        cargo_summary="1,204 containers (TEU), general cargo",
        agent=Party(name="VOSA Saigon", identifier="0300437898", phone="+84 28 3829 0000"),
        crew_count=2,
        passenger_count=1,
        animals_on_board="None",
        plants_on_board="Fresh fruit in ship's stores",
    )
    base.update(kw)
    return ShipCall(**base)


def message(call: ShipCall | None = None, message_type: str = SHIP_CALL_TYPE, function: str = "01") -> TradeMessage:
    return TradeMessage(
        envelope=envelope(message_type, function),
        ship_call=call if call is not None else ship_call(),
        signatory=Signatory(place="Ho Chi Minh City", signed_at=dt.datetime(2026, 12, 4, 8, 0, tzinfo=VN)),
    )


def _sections(data: bytes) -> list[etree._Element]:
    """The declarations of a VNSW envelope (the children of ``Body/Content``)."""
    content = parse_xml(data).find("Body/Content")
    assert content is not None
    return list(content)


def _issues(exc: pytest.ExceptionInfo[ValidationFailed]) -> list[tuple[str, str]]:
    return [(i.path, i.code) for i in exc.value.issues]


# --------------------------------------------------------------------------- the samples


def test_the_whole_ship_call_sample_is_what_the_call_is_written_as() -> None:
    assert VNSW.emit(message()) == (SAMPLES / "ship_entry_t99_f01_whole_call.xml").read_bytes()
    assert VNSW.parse((SAMPLES / "ship_entry_t99_f01_whole_call.xml").read_bytes()) == message()


@pytest.mark.parametrize("name", ["ship_entry_t99_f01_whole_call.xml", "ship_entry_t51_f01_crew_list.xml"])
def test_each_declaration_of_the_samples_validates_against_its_corpus_content_schema(name: str) -> None:
    sections = _sections((SAMPLES / name).read_bytes())
    assert sections
    for section in sections:
        schema = load_schema(f"vnsw/mot_maritime/{etree.QName(section).localname}.xsd")
        assert schema.validate(etree.ElementTree(section)), (section.tag, schema.error_log)


def test_the_whole_call_carries_every_fal_declaration_in_the_order_of_its_schema() -> None:
    assert [s.tag for s in _sections(VNSW.emit(message()))] == [
        "GeneralDeclaration",
        "CrewLists",
        "PassengerList",
        "DangerousGoodsManifest",
        "ShipsStoresDeclaration",
        "CrewEffectsDeclaration",
        "HealthQuanrantineDeclare",
        "DeclarationForPlantQuarantine",
        "DeclarationForAnimalQuarantine",
    ]


def test_the_crew_list_sample_reads_the_crew_and_the_ship() -> None:
    msg = VNSW.parse((SAMPLES / "ship_entry_t51_f01_crew_list.xml").read_bytes())
    assert msg.envelope is not None and (msg.envelope.procedure, msg.envelope.message_type) == ("1", "51")
    call = msg.ship_call
    assert call is not None and call.ship is not None and call.voyage is not None
    assert (call.reference, call.ship.name, call.ship.imo_number, call.voyage.port_of_call) == (
        "2026120400017",
        "OCEAN STAR",
        "9074729",
        "VNSGN",
    )
    assert call.crew == ship_call().crew
    assert call.passengers == () and call.health is None and call.dangerous_goods == ()


# --------------------------------------------------------------------------- one agency's part


def test_a_call_without_passengers_health_or_goods_is_written_without_their_declarations() -> None:
    """What a projection for the border guard (the crew and the ship) is written as: no other declaration, and none
    of their data in the bytes."""
    call = ship_call(
        passengers=(),
        dangerous_goods=(),
        stores=(),
        crew_effects=(),
        health=None,
        animals_on_board=None,
        plants_on_board=None,
        voyage=ship_call().voyage.model_copy(update={"next_port": None}),  # type: ignore[union-attr]
    )
    data = VNSW.emit(message(call))
    assert [s.tag for s in _sections(data)] == ["GeneralDeclaration", "CrewLists"]
    for absent in (b"Nguyen", b"GASOLINE", b"Marine gas oil", b"SSCEC", b"Cigarettes", b"Fresh fruit"):
        assert absent not in data
    assert VNSW.parse(data) == message(call)


@pytest.mark.parametrize(("message_type", "title", "table", "when"), FORMS, ids=[f[0] for f in FORMS])
def test_each_fal_form_is_a_registered_message_of_entry_and_exit_declared_and_amended(
    message_type: str, title: str, table: Any, when: str | None
) -> None:
    for procedure in ("1", "2"):
        for function in ("01", "02"):
            found = find_message(procedure, message_type, function)
            assert found is not None and found.content.children == (table,), (procedure, message_type, function)
    sections = _sections(VNSW.emit(message(message_type=message_type)))
    assert [s.tag for s in sections] == [table.tag]
    assert load_schema(f"vnsw/mot_maritime/{table.tag}.xsd").validate(etree.ElementTree(sections[0]))


def test_the_notice_of_arrival_carries_the_owner_the_agent_and_the_purpose_of_the_call() -> None:
    base = ship_call()
    ship = base.ship.model_copy(  # type: ignore[union-attr]
        update={"owner": Party(name="Ocean Star Shipping SA", phone="+507 210 0000", email="ops@oceanstar.example")}
    )
    call = base.model_copy(
        update={"ship": ship, "voyage": base.voyage.model_copy(update={"purpose_of_call": "1"})}  # type: ignore[union-attr]
    )
    back = VNSW.parse(VNSW.emit(message(call, message_type="30"))).ship_call
    assert back is not None and back.ship is not None and back.voyage is not None
    assert back.ship.owner == ship.owner and back.agent == call.agent
    assert (back.voyage.purpose_of_call, back.cargo_summary) == ("1", call.cargo_summary)
    assert back.voyage.eta == dt.datetime(2026, 12, 5, 6, 0, tzinfo=VN)
    assert back.crew == () and back.health is None


# --------------------------------------------------------------------------- strict out


def test_writing_a_call_without_its_reference_or_ship_name_names_each_missing_field() -> None:
    call = ship_call(reference=None, ship=ShipParticulars(imo_number="9074729"))
    with pytest.raises(ValidationFailed) as exc:
        VNSW.emit(message(call, message_type="50"))
    assert _issues(exc) == [
        ("ship_call.reference", "NATIVE_REQUIRED_MISSING"),
        ("ship_call.ship.name", "NATIVE_REQUIRED_MISSING"),
    ]


def test_writing_a_crew_list_without_crew_or_a_crew_member_without_family_name_is_refused() -> None:
    with pytest.raises(ValidationFailed) as exc:
        VNSW.emit(message(ship_call(crew=()), message_type="51"))
    assert _issues(exc) == [("ship_call.crew", "NATIVE_REQUIRED_MISSING")]
    nameless = ship_call(crew=(Person(given_names="John"),))
    with pytest.raises(ValidationFailed) as exc:
        VNSW.emit(message(nameless, message_type="51"))
    assert _issues(exc) == [("ship_call.crew[0].family_name", "NATIVE_REQUIRED_MISSING")]


def test_writing_dangerous_goods_without_un_number_or_shipping_name_is_refused() -> None:
    call = ship_call(dangerous_goods=(DangerousGoodsItem(imo_class="3"),))
    with pytest.raises(ValidationFailed) as exc:
        VNSW.emit(message(call, message_type="53"))
    assert _issues(exc) == [
        ("ship_call.dangerous_goods[0].proper_shipping_name", "NATIVE_REQUIRED_MISSING"),
        ("ship_call.dangerous_goods[0].un_number", "NATIVE_REQUIRED_MISSING"),
    ]


def test_the_model_refuses_a_malformed_imo_number_un_number_or_mmsi() -> None:
    with pytest.raises(ValueError, match="imo_number"):
        ShipParticulars(imo_number="IMO 9074729")
    with pytest.raises(ValueError, match="mmsi"):
        ShipParticulars(mmsi="35123")
    with pytest.raises(ValueError, match="un_number"):
        DangerousGoodsItem(un_number="UN1203")


# --------------------------------------------------------------------------- lenient in

_NATIVE = """<?xml version="1.0" encoding="UTF-8"?>
<SOAP:Envelope xmlns:SOAP="urn:example:soap"><Header>
<Reference><version>1</version><messageId>77</messageId></Reference>
<From><name>Dai ly tau bien</name><identity>1234</identity></From><To><name>NSW</name><identity>1</identity></To>
<Subject><documentType>1</documentType><type>51</type><function>01</function><reference>1775</reference>
<preReference>0</preReference><documentYear>2014</documentYear><sendDate>2014-09-16 08:40:58</sendDate></Subject>
</Header><Body><Content><CrewLists>
<DocumentName>1775</DocumentName><IsArrival>true</IsArrival><NameOfShip>HAI PHONG STAR</NameOfShip>
<IMONumber>IMO 9312345</IMONumber><CallSign/><PortOfArrivalCode>VNHPH</PortOfArrivalCode>
<DateOfArrival>17/09/2014 14:30</DateOfArrival><Unexpected>ignored</Unexpected><FlagStateOfShip>VN</FlagStateOfShip>
<CrewList><Crew><CrewCode>1</CrewCode><FamilyName>Tran</FamilyName><GivenName>Van Binh</GivenName>
<Nationality>VN</Nationality><DateOfBirth>02/01/1980</DateOfBirth></Crew></CrewList>
</CrewLists></Content></Body></SOAP:Envelope>"""
"""Written for these tests: a crew list as the 2014 MOT system sends it (namespaced root, the old header, dd/MM/yyyy
times, an 'IMO' prefix, true/false flags, missing and unknown elements)."""


def test_a_native_crew_list_is_read_leniently() -> None:
    msg = VNSW.parse(_NATIVE.encode())
    call = msg.ship_call
    assert call is not None and call.ship is not None and call.voyage is not None
    assert (call.ship.imo_number, call.ship.call_sign, call.voyage.arrival) == ("9312345", None, True)
    assert call.voyage.eta == dt.datetime(2014, 9, 17, 14, 30, tzinfo=VN)
    assert call.crew == (
        Person(family_name="Tran", given_names="Van Binh", nationality="VN", date_of_birth=dt.date(1980, 1, 2)),
    )
    assert msg.envelope is not None and msg.envelope.sent_at == dt.datetime(2014, 9, 16, 8, 40, 58, tzinfo=VN)
    assert rules.validate(msg) == []


def test_a_native_value_that_is_no_date_is_refused_naming_the_element() -> None:
    bad = _NATIVE.replace("<DateOfBirth>02/01/1980</DateOfBirth>", "<DateOfBirth>31/02/1980</DateOfBirth>")
    with pytest.raises(ValidationFailed) as exc:
        VNSW.parse(bad.encode())
    assert _issues(exc) == [("/Envelope/Body/Content/CrewLists/CrewList/Crew[1]/DateOfBirth", "NATIVE_VALUE_INVALID")]


def test_code_lists_are_checked_on_the_ship_the_voyage_and_each_person() -> None:
    call = ship_call(
        ship=ShipParticulars(name="X", flag="XX"),
        voyage=Voyage(port_of_call="SAIGON", previous_ports=("SGSIN", "??")),
        crew=(Person(family_name="A", nationality="ZZ"),),
    )
    found = {(i.path, i.code) for i in rules.validate(message(call))}
    assert found == {
        ("ship_call.ship.flag", "COUNTRY_UNKNOWN"),
        ("ship_call.voyage.port_of_call", "LOCODE_INVALID"),
        ("ship_call.voyage.previous_ports[1]", "LOCODE_INVALID"),
        ("ship_call.crew[0].nationality", "COUNTRY_UNKNOWN"),
    }


def test_the_data_dictionary_lists_the_ship_call_with_its_code_lists() -> None:
    by_path = {e.path: e for e in entries()}
    assert by_path["ship_call.ship.flag"].code_list == "ISO3166"
    assert by_path["ship_call.voyage.port_of_call"].code_list == "UNLOCODE"
    assert by_path["ship_call.crew[].identity_document.number"].description
    assert by_path["ship_call.health.last_ports_visited[]"].code_list == "UNLOCODE"


# --------------------------------------------------------------------------- round trips

locodes = st.sampled_from(["VNSGN", "VNHPH", "VNDAD", "SGSIN", "THLCH", "MYPKG", "CNSHA", "HKHKG"])
vnsw_units = st.sampled_from(["NAR", "KGM", "TNE", "LTR", "H87"])
endpoints = st.builds(
    Endpoint,
    name=alnum,
    identity=alnum,
    country=st.just("VN"),
    ministry=alnum,
    organization=alnum,
    unit=o(alnum),
)
counts = st.integers(min_value=0, max_value=5000)


def persons(crew: bool) -> st.SearchStrategy[Person]:
    return st.builds(
        Person,
        family_name=text(),
        given_names=o(text()),
        nationality=o(countries),
        date_of_birth=o(dates),
        place_of_birth=o(text()),
        gender=o(st.sampled_from(["M", "F", "X"])),
        rank_or_rating=o(alnum) if crew else st.none(),
        identity_document=o(st.builds(IdentityDocument, type=o(alnum), number=alnum)),
        port_of_embarkation=st.none() if crew else o(locodes),
        port_of_disembarkation=st.none() if crew else o(locodes),
        transit=st.none() if crew else o(st.booleans()),
    )


@st.composite
def ship_calls(draw: st.DrawFn) -> TradeMessage:
    """A ship call with what the whole-call message carries (see the module docstring of mot_maritime)."""
    health = draw(
        o(
            st.builds(
                HealthDeclaration,
                ill_persons=counts,
                deaths=o(counts),
                suspected_infectious=o(st.booleans()),
                sanitation_certificate_number=o(alnum),
                sanitation_certificate_place=o(text()),
                last_ports_visited=st.lists(locodes, max_size=3).map(tuple),
                remarks=o(text(200)),
            )
        )
    )
    animals, plants = draw(o(text(200))), draw(o(text(200)))
    call = ShipCall(
        reference=draw(alnum),
        amends=draw(o(alnum)),
        ship=ShipParticulars(
            imo_number=draw(o(st.text(alphabet="0123456789", min_size=7, max_size=7))),
            call_sign=draw(o(alnum)),
            name=draw(text()),
            flag=draw(o(countries)),
            gross_tonnage=draw(o(decimals)),
            net_tonnage=draw(o(decimals)),
            ship_type=draw(o(alnum)),
            master=draw(o(text())),
            registry_certificate=draw(o(alnum)),
            registry_port=draw(o(text())),
            registry_date=draw(o(dates)),
            length_overall=draw(o(decimals)),
            breadth=draw(o(decimals)),
            deadweight=draw(o(decimals)),
            owner=draw(o(st.builds(Party, name=text(), address=o(st.builds(Address, line1=text()))))),
        ),
        voyage=Voyage(
            voyage_number=draw(alnum),
            arrival=draw(o(st.booleans())),
            port_of_call=draw(o(locodes)),
            eta=draw(o(aware)),
            last_port=draw(o(locodes)),
            next_port=draw(o(locodes)) if (health or animals or plants) else None,
            berth=draw(o(alnum)),
            previous_ports=tuple(draw(st.lists(locodes, max_size=3))),
            subsequent_ports=tuple(draw(st.lists(locodes, max_size=3))),
        ),
        crew=tuple(draw(st.lists(persons(crew=True), max_size=3))),
        passengers=tuple(draw(st.lists(persons(crew=False), max_size=3))),
        dangerous_goods=tuple(
            draw(
                st.lists(
                    st.builds(
                        DangerousGoodsItem,
                        un_number=st.text(alphabet="0123456789", min_size=4, max_size=4),
                        proper_shipping_name=text(),
                        imo_class=o(st.sampled_from(["1.1", "2.1", "3", "6.1", "8", "9"])),
                        packing_group=o(st.sampled_from(["I", "II", "III"])),
                        quantity=o(st.builds(Quantity, value=decimals, unit=st.just("KGM"))),
                        reference=o(alnum),
                        marks=o(text()),
                        package_count=o(counts),
                        package_type=o(text()),
                        subsidiary_risk=o(alnum),
                        flash_point=o(alnum),
                        marine_pollutant=o(st.booleans()),
                        ems=o(alnum),
                    ),
                    max_size=2,
                )
            )
        ),
        stores=tuple(
            draw(
                st.lists(
                    st.builds(
                        StoresItem,
                        name=text(),
                        quantity=o(st.builds(Quantity, value=decimals, unit=vnsw_units)),
                        location=o(text()),
                        use=o(text()),
                    ),
                    max_size=2,
                )
            )
        ),
        crew_effects=tuple(
            draw(
                st.lists(
                    st.builds(
                        CrewEffect,
                        crew_member=text(),
                        given_names=o(text()),
                        rank_or_rating=o(alnum),
                        description=o(text()),
                    ),
                    max_size=2,
                )
            )
        ),
        health=health,
        cargo_summary=draw(o(text(200))),
        agent=draw(
            o(
                st.builds(
                    Party,
                    name=text(),
                    identifier=o(alnum),
                    address=o(st.builds(Address, line1=text())),
                    phone=o(alnum),
                    fax=o(alnum),
                    email=o(alnum),
                )
            )
        ),
        crew_count=draw(o(counts)),
        passenger_count=draw(o(counts)),
        animals_on_board=animals,
        plants_on_board=plants,
    )
    env = Envelope(
        message_id=draw(st.uuids().map(str)),
        version="01",
        sender=draw(endpoints),
        recipient=draw(endpoints),
        procedure=draw(st.sampled_from(["1", "2"])),
        message_type=SHIP_CALL_TYPE,
        function=draw(st.sampled_from(["01", "02"])),
        reference=draw(alnum),
        reference_year=draw(st.integers(2000, 9999)),
        previous_reference=draw(alnum),
        sent_at=draw(aware),
    )
    signatory = draw(o(st.builds(Signatory, place=text(), signed_at=o(aware))))
    return TradeMessage(envelope=env, ship_call=call, signatory=signatory)


@SETTINGS
@given(ship_calls())
def test_the_whole_ship_call_round_trips_through_vnsw_losslessly(msg: TradeMessage) -> None:
    assert VNSW.parse(VNSW.emit(msg)) == msg


_PARTS = {
    "51": "crew",
    "52": "passengers",
    "53": "dangerous_goods",
    "54": "stores",
    "55": "crew_effects",
    "56": "health",
    "57": "plants_on_board",
    "58": "animals_on_board",
}


@SETTINGS
@given(ship_calls(), st.sampled_from(sorted(_PARTS)))
def test_each_fal_form_carries_its_part_of_the_call_losslessly(msg: TradeMessage, message_type: str) -> None:
    """A single form carries its own part whole and the ship and voyage as far as the form has them; written
    again, what it read is written the same."""
    part = _PARTS[message_type]
    call = msg.ship_call
    assert call is not None
    if not getattr(call, part):
        return
    single = msg.model_copy(update={"envelope": msg.envelope.model_copy(update={"message_type": message_type})})  # type: ignore[union-attr]
    data = VNSW.emit(single)
    back = VNSW.parse(data)
    assert back.ship_call is not None
    assert getattr(back.ship_call, part) == getattr(call, part)
    assert (back.ship_call.reference, back.ship_call.ship.name) == (call.reference, call.ship.name)  # type: ignore[union-attr]
    assert VNSW.emit(back) == data


full_ship_calls = st.builds(
    ShipCall,
    reference=o(alnum),
    amends=o(alnum),
    ship=o(
        st.builds(
            ShipParticulars,
            imo_number=o(st.text(alphabet="0123456789", min_size=7, max_size=7)),
            mmsi=o(st.text(alphabet="0123456789", min_size=9, max_size=9)),
            flag=o(countries),
            gross_tonnage=o(decimals),
            name=o(text()),
        )
    ),
    voyage=o(st.builds(Voyage, eta=o(aware), etd=o(aware), next_port=o(locodes), port_of_call=o(locodes))),
    crew=st.lists(
        st.builds(
            Person,
            family_name=o(text()),
            identity_document=o(
                st.builds(IdentityDocument, number=o(alnum), issuing_state=o(countries), expiry_date=o(dates))
            ),
        ),
        max_size=2,
    ).map(tuple),
    dangerous_goods=st.lists(st.builds(DangerousGoodsItem, stowage=o(text())), max_size=1).map(tuple),
    crew_effects=st.lists(
        st.builds(CrewEffect, quantity=o(st.builds(Quantity, value=decimals, unit=vnsw_units))), max_size=1
    ).map(tuple),
    health=o(st.builds(HealthDeclaration, sanitation_certificate_expiry=o(dates))),
)


@SETTINGS
@given(full_ship_calls)
def test_json_round_trips_every_field_of_a_ship_call(call: ShipCall) -> None:
    msg = TradeMessage(ship_call=call)
    assert JSON.parse(JSON.emit(msg)) == msg


def test_json_carries_what_the_vnsw_declarations_do_not_and_both_carry_the_amended_version() -> None:
    call = ship_call(
        amends="2026120400011",
        ship=ship_call().ship.model_copy(update={"mmsi": "351234000"}),  # type: ignore[union-attr]
        voyage=ship_call().voyage.model_copy(update={"etd": dt.datetime(2026, 12, 6, 18, 0, tzinfo=VN)}),  # type: ignore[union-attr]
    )
    msg = message(call)
    assert JSON.parse(JSON.emit(msg)) == msg
    through_vnsw = VNSW.parse(VNSW.emit(msg)).ship_call
    assert through_vnsw is not None and through_vnsw.amends == "2026120400011"
    assert through_vnsw.ship.mmsi is None and through_vnsw.voyage.etd is None  # type: ignore[union-attr]


@st.composite
def permits(draw: st.DrawFn) -> TradeMessage:
    """The maritime administration's port clearance (60) or port entry permit (72) for a call."""
    message_type = draw(st.sampled_from([p[0] for p in PERMITS]))
    return TradeMessage(
        envelope=envelope(message_type, "01", draw(st.sampled_from(["1", "2"]))),
        permit=Permit(
            number=draw(alnum),
            decision=Decision.ISSUED,
            decision_date=draw(aware),
            valid_until=draw(o(aware)),
            officer=draw(o(text())),
            department=draw(o(alnum)),
        ),
        document=draw(o(st.builds(DocumentInfo, number=alnum, link=o(alnum)))),
        ship_call=ShipCall(
            reference=draw(alnum),
            ship=ShipParticulars(
                name=draw(text()),
                flag=draw(o(countries)),
                gross_tonnage=draw(o(decimals)),
                call_sign=draw(o(alnum)),
                master=draw(o(text())),
            ),
            voyage=draw(o(st.builds(Voyage, etd=aware, next_port=o(locodes)))),
            crew_count=draw(o(counts)),
            passenger_count=draw(o(counts)),
            cargo_summary=draw(o(text())),
        ),
    )


@SETTINGS
@given(permits())
def test_the_port_clearance_and_entry_permit_round_trip_through_vnsw_losslessly(msg: TradeMessage) -> None:
    data = VNSW.emit(msg)
    assert VNSW.parse(data) == msg
    (section,) = _sections(data)
    assert load_schema(f"vnsw/mot_maritime/{etree.QName(section).localname}.xsd").validate(etree.ElementTree(section))


def test_a_port_clearance_states_it_is_issued_and_refuses_another_decision() -> None:
    msg = TradeMessage(
        envelope=envelope("60", "01", "2"),
        permit=Permit(number="PC-2026-1187", decision_date=dt.datetime(2026, 12, 6, 17, 0, tzinfo=VN)),
        ship_call=ShipCall(reference="2026120400017", ship=ShipParticulars(name="OCEAN STAR")),
    )
    back = VNSW.parse(VNSW.emit(msg))
    assert back.permit is not None and back.permit.decision == Decision.ISSUED
    refused = msg.model_copy(update={"permit": msg.permit.model_copy(update={"decision": Decision.REJECTED})})  # type: ignore[union-attr]
    with pytest.raises(ValidationFailed) as exc:
        VNSW.emit(refused)
    assert _issues(exc) == [("permit.decision", "MESSAGE_FUNCTION_CONFLICT")]


# --------------------------------------------------------------------------- at the HTTP API

SHIP_CALL_DOCUMENT_TYPE = "maritime.ship_call"


@pytest.fixture
async def rig(
    tmp_path: Path, store_section: dict[str, Any]
) -> AsyncIterator[tuple[Gateway, aiohttp.ClientSession, Receiver]]:
    port = await Receiver().start()
    config = make_config(
        tmp_path,
        {"PORT": port.url},
        parties={
            "TRADER": {
                "document_types": [SHIP_CALL_DOCUMENT_TYPE],
                "identities": {"vnsw": AGENT_IDENTITY},
            }
        },
        document_types={SHIP_CALL_DOCUMENT_TYPE: {"procedures": ["1/99/01", "1/99/02", "2/99/01", "2/99/02"]}},
        extra=store_section,
    )
    try:
        async with Gateway(config) as gw, aiohttp.ClientSession() as s:
            yield gw, s, port
    finally:
        await port.stop()


async def test_an_agent_submits_the_whole_call_once_and_the_port_receives_it(rig) -> None:
    gw, s, port = rig
    data = VNSW.emit(message())
    status, body = await submit(s, gw.url, "TRADER", "CALL-1", SHIP_CALL_DOCUMENT_TYPE, data, X_Format="vnsw")
    assert status == 202, body
    await eventually(lambda: len(port.requests) == 1)
    assert VNSW.parse(port.requests[0]["body"]) == message()


async def test_a_call_with_a_crew_member_born_on_no_date_is_refused_naming_the_element(rig) -> None:
    gw, s, port = rig
    data = VNSW.emit(message()).replace(
        b"<DateOfBirth>1971-03-14</DateOfBirth>", b"<DateOfBirth>1971-02-30</DateOfBirth>"
    )
    status, body = await submit(s, gw.url, "TRADER", "CALL-BAD-DATE", SHIP_CALL_DOCUMENT_TYPE, data, X_Format="vnsw")
    assert status == 422 and body["error"]["code"] == "VALIDATION_FAILED"
    assert body["error"]["field"] == "/Envelope/Body/Content/CrewLists/CrewList/Crew[1]/DateOfBirth"
    assert port.requests == []


async def test_a_call_flying_an_unknown_flag_is_refused_naming_the_field(rig) -> None:
    gw, s, port = rig
    data = VNSW.emit(message(ship_call(ship=ship_call().ship.model_copy(update={"flag": "XX"}))))  # type: ignore[union-attr]
    status, body = await submit(s, gw.url, "TRADER", "CALL-BAD-FLAG", SHIP_CALL_DOCUMENT_TYPE, data, X_Format="vnsw")
    assert status == 422 and body["error"]["code"] == "VALIDATION_FAILED"
    assert body["error"]["field"] == "ship_call.ship.flag"
    assert port.requests == []
