"""Property tests: harmonized -> native -> harmonized is lossless for every format, on what the format carries."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers.mappings import alnum, aware, countries, dates, decimals, full_addresses, o, text, units, whole
from helpers.mappings import hs_codes as hs
from mappings.model import (
    Acknowledgement,
    Address,
    Amount,
    Decision,
    DocumentInfo,
    DocumentReference,
    Endpoint,
    Envelope,
    ErrorEntry,
    GoodsItem,
    Location,
    Measure,
    Note,
    OriginCertificate,
    Parties,
    Party,
    Permit,
    Quantity,
    Signatory,
    TradeMessage,
    Transport,
    TransportLeg,
)
from mappings.registry import get as get_format

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

locodes = st.sampled_from(["VNSGN", "VNHPH", "SGSIN", "THBKK", "CNSHA", "USSEA"])
digits = st.text(alphabet="0123456789", min_size=1, max_size=3)
criteria = st.sampled_from(["WO", "CC", "CTH", "CTSH", "SP", "RVC 40%", "RVC 75%", "PC 25%"])


def assert_round_trip(fmt_name: str, msg: TradeMessage) -> None:
    fmt = get_format(fmt_name)
    assert fmt.parse(fmt.emit(msg)) == msg


# --------------------------------------------------------------------------- Form D

full_party = st.builds(
    Party, name=text(), identifier=o(alnum), address=o(full_addresses), phone=o(alnum), fax=o(alnum), email=o(alnum)
)


@st.composite
def form_d_goods(draw: st.DrawFn) -> tuple[GoodsItem, ...]:
    n = draw(st.integers(min_value=1, max_value=4))
    return tuple(
        GoodsItem(
            sequence=i + 1,
            description=draw(text()),
            hs_code=draw(hs),
            marks=draw(o(text())),
            package_count=draw(o(st.integers(0, 10**6))),
            package_type=draw(o(alnum)),
            quantities=tuple(draw(st.lists(st.builds(Quantity, value=decimals, unit=units), max_size=1))),
            gross_weight=draw(o(st.builds(Measure, value=decimals, unit=units))),
            net_weight=draw(o(st.builds(Measure, value=decimals, unit=units))),
            fob_value=draw(o(st.builds(Amount, value=decimals, currency=st.sampled_from(["USD", "VND", "SGD"])))),
            origin_country=draw(o(countries)),
            origin_criterion=draw(criteria),
            invoice_number=draw(alnum),
            invoice_date=draw(dates),
        )
        for i in range(n)
    )


form_d_messages = st.builds(
    TradeMessage,
    document=st.builds(DocumentInfo, number=alnum, issue_date=aware, issuing_country=o(countries)),
    parties=st.builds(Parties, exporter=full_party, consignee=full_party, issuing_authority=o(full_party)),
    transport=o(
        st.builds(
            Transport,
            legs=st.lists(
                st.builds(
                    TransportLeg,
                    mode=o(st.sampled_from("123456789")),
                    means=text(),
                    journey=o(alnum),
                    departure_date=o(dates),
                ),
                max_size=2,
            ).map(tuple),
            port_of_loading=o(st.builds(Location, code=o(locodes), name=text())),
            port_of_discharge=o(st.builds(Location, code=o(locodes), name=text())),
            export_country=countries,
            destination_country=o(countries),
        )
    ),
    goods=form_d_goods(),
    signatory=o(st.builds(Signatory, name=text(), role=o(text()), place=o(text()), signed_at=o(aware))),
    origin_certificate=st.builds(
        OriginCertificate,
        back_to_back=st.booleans(),
        third_country_invoicing=st.booleans(),
        exhibition=st.booleans(),
        issued_retroactively=st.booleans(),
        de_minimis=st.booleans(),
        accumulation=st.booleans(),
        partial_cumulation=st.booleans(),
        remarks=o(text()),
    ),
)


@SETTINGS
@given(form_d_messages)
def test_form_d_round_trip_is_lossless(msg: TradeMessage) -> None:
    assert_round_trip("form-d", msg)


@SETTINGS
@given(form_d_messages)
def test_json_round_trip_is_lossless(msg: TradeMessage) -> None:
    assert_round_trip("json", msg)


# --------------------------------------------------------------------------- VNSW

endpoints = st.builds(
    Endpoint,
    name=alnum,
    identity=st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ", min_size=1, max_size=13),
    country=st.just("VN"),
    ministry=alnum,
    organization=alnum,
    unit=o(alnum),
)


def vnsw_envelope(procedure: str, message_type: str, functions: list[str]) -> st.SearchStrategy[Envelope]:
    return st.builds(
        Envelope,
        message_id=st.uuids().map(str),
        version=st.just("01"),
        sender=endpoints,
        recipient=endpoints,
        procedure=st.just(procedure),
        message_type=st.just(message_type),
        function=st.sampled_from(functions),
        reference=alnum,
        reference_year=st.integers(2000, 9999),
        previous_reference=alnum,
        previous_reference_year=o(st.integers(2000, 9999)),
        sent_at=aware,
    )


_DECISIONS = {
    "05": Decision.ACCEPTED,
    "06": Decision.REJECTED,
    "07": Decision.SUPPLEMENT_REQUESTED,
    "12": Decision.ISSUED,
    "14": Decision.AMENDED,
}


@st.composite
def quarantine_results(draw: st.DrawFn) -> TradeMessage:
    env = draw(vnsw_envelope("BNNPTNT0600011", "12", ["05", "06", "07"]))
    permit = Permit(
        procedure_code="BNNPTNT0600011",
        application_number=draw(alnum),
        decision=_DECISIONS[env.function or ""],
        decision_date=draw(aware),
        reason=draw(o(text())),
        department=draw(o(text())),
        officer=draw(o(text())),
    )
    return TradeMessage(envelope=env, permit=permit)


vnsw_units = st.sampled_from(["NAR", "KGM", "TNE", "LTR", "H87"])


@st.composite
def dispatch_goods(draw: st.DrawFn, i: int) -> GoodsItem:
    quantities = []
    for qualifier in ("female", "male"):
        if draw(st.booleans()):
            quantities.append(Quantity(value=draw(whole), unit="NAR", qualifier=qualifier))
    quantities.append(Quantity(value=draw(whole), unit=draw(vnsw_units)))
    return GoodsItem(
        sequence=i + 1,
        commodity_code=draw(alnum),
        description=draw(text()),
        scientific_name=draw(o(text())),
        packing=draw(o(text())),
        quantities=tuple(quantities),
        net_weight=draw(o(st.builds(Measure, value=decimals, unit=vnsw_units))),
        gross_weight=draw(o(st.builds(Measure, value=decimals, unit=vnsw_units))),
        intended_use=draw(text()),
        origin_country=draw(countries),
        origin_country_name=draw(text()),
        destination_port=Location(code=draw(o(locodes)), name=draw(text())),
    )


@st.composite
def dispatches(draw: st.DrawFn) -> TradeMessage:
    env = draw(vnsw_envelope("BNNPTNT0600011", "16", ["12", "14"]))
    n = draw(st.integers(0, 3))
    name_line = st.builds(lambda n, a: Party(name=n, address=Address(line1=a)), text(), text())
    return TradeMessage(
        envelope=env,
        document=DocumentInfo(
            summary=draw(text()),
            preamble=draw(text()),
            content=draw(text()),
            remarks=draw(o(text())),
            link=draw(o(alnum)),
        ),
        parties=Parties(
            exporter=draw(o(name_line)), consignee=Party(name=draw(text())), manufacturer=draw(o(name_line))
        ),
        goods=tuple(draw(dispatch_goods(i)) for i in range(n)),
        signatory=Signatory(name=draw(text()), role=draw(text()), place=draw(text()), signed_at=draw(aware)),
        permit=Permit(
            procedure_code="BNNPTNT0600011",
            number=draw(alnum),
            application_number=draw(alnum),
            product_type=draw(st.sampled_from("0123456789")),
            decision=_DECISIONS[env.function or ""],
            valid_until=draw(o(aware)),
            reason=draw(o(text())),
        ),
    )


@st.composite
def licences(draw: st.DrawFn) -> TradeMessage:
    env = draw(vnsw_envelope("BNN0300003", "20", ["18"]))
    n = draw(st.integers(1, 3))
    goods = tuple(
        GoodsItem(
            sequence=i,
            category=draw(st.sampled_from("123")),
            description=draw(text()),
            net_weight=Measure(value=draw(decimals), unit=draw(vnsw_units)),
            intended_use=draw(text()),
            origin_country_name=draw(text()),
        )
        for i in range(n)
    )
    return TradeMessage(
        envelope=env,
        parties=Parties(declarant=Party(name=draw(text()), address=Address(line1=draw(text())))),
        goods=goods,
        signatory=Signatory(name=draw(text()), role=draw(text()), place=draw(text()), signed_at=draw(aware)),
        permit=Permit(
            procedure_code="BNN0300003",
            number=draw(alnum),
            application_number=draw(alnum),
            decision=Decision.ISSUED,
            decision_date=draw(aware),
            purpose=draw(text()),
            purpose_note=draw(o(text())),
            border_gates=draw(text()),
            expected_date=draw(o(aware)),
            remarks=draw(o(text())),
        ),
    )


@st.composite
def acknowledgements(draw: st.DrawFn) -> TradeMessage:
    env = draw(vnsw_envelope("BNNPTNT0600011", "12", ["99", "00"]))
    if env.function == "99":
        ack = Acknowledgement(received_at=draw(aware))
    else:
        errors = draw(st.lists(st.builds(ErrorEntry, code=alnum, message=o(text())), min_size=1, max_size=3))
        ack = Acknowledgement(errors=tuple(errors))
    return TradeMessage(envelope=env, acknowledgement=ack)


@SETTINGS
@given(st.one_of(quarantine_results(), dispatches(), licences(), acknowledgements()))
def test_vnsw_round_trip_is_lossless(msg: TradeMessage) -> None:
    assert_round_trip("vnsw", msg)


# --------------------------------------------------------------------------- SPS

notes = st.lists(
    st.builds(Note, subject=o(alnum), content=text(), language=o(st.sampled_from(["en", "vi", "es"]))), max_size=2
).map(tuple)
sps_party = st.builds(
    Party, name=text(), identifier=o(alnum), address=o(st.builds(Address, line1=text(), line2=o(text())))
)


@st.composite
def sps_goods(draw: st.DrawFn) -> tuple[GoodsItem, ...]:
    items = []
    for i in range(draw(st.integers(0, 3))):
        count = draw(o(st.integers(0, 10**6)))
        items.append(
            GoodsItem(
                sequence=i,
                description=draw(o(text())),
                common_name=draw(o(text())),
                scientific_name=draw(o(text())),
                intended_use=draw(o(text())),
                net_weight=draw(o(st.builds(Measure, value=decimals, unit=units))),
                gross_weight=draw(o(st.builds(Measure, value=decimals, unit=units))),
                net_volume=draw(o(st.builds(Measure, value=decimals, unit=st.just("MTQ")))),
                gross_volume=draw(o(st.builds(Measure, value=decimals, unit=st.just("MTQ")))),
                notes=draw(notes),
                hs_code=draw(o(hs)),
                package_count=count,
                package_type=draw(o(alnum)) if count is not None else None,
                origin_country=draw(countries),
                origin_country_name=draw(o(text())),
                origin_region=draw(o(text())),
            )
        )
    return tuple(items)


sps_messages = st.builds(
    TradeMessage,
    document=st.builds(
        DocumentInfo,
        name=o(text()),
        number=o(alnum),
        type_code=st.sampled_from(["851", "657"]),
        status_code=st.sampled_from(["70", "9"]),
        issue_date=o(aware),
    ),
    parties=st.builds(
        Parties, exporter=o(sps_party), consignee=o(sps_party), issuing_authority=o(st.builds(Party, name=text()))
    ),
    notes=notes,
    documents=st.lists(
        st.builds(
            DocumentReference,
            type_code=digits,
            relationship_code=o(st.sampled_from(["AWR", "ZZZ", "ACE"])),
            reference=o(alnum),
            issue_date=o(dates),
            description=o(text()),
        ),
        max_size=2,
    ).map(tuple),
    signatory=o(st.builds(Signatory, name=text(), place=o(text()), signed_at=o(aware))),
    transport=o(
        st.builds(
            Transport,
            export_country=countries,
            destination_country=o(countries),
            transit_countries=st.lists(countries, max_size=2).map(tuple),
            port_of_discharge=o(st.builds(Location, code=o(locodes), name=text())),
            legs=st.lists(
                st.builds(TransportLeg, mode=st.sampled_from("1234"), means=o(text()), journey=o(alnum)), max_size=2
            ).map(tuple),
        )
    ),
    goods=sps_goods(),
)


@SETTINGS
@given(sps_messages)
def test_sps_round_trip_is_lossless(msg: TradeMessage) -> None:
    assert_round_trip("sps", msg)


@SETTINGS
@given(form_d_messages)
def test_form_d_message_maps_to_json_and_back_through_form_d(msg: TradeMessage) -> None:
    """Submit once, use many times: Form D -> harmonized -> JSON -> harmonized -> Form D gives the same bytes."""
    form_d_bytes = get_format("form-d").emit(msg)
    via_json = get_format("json").emit(get_format("form-d").parse(form_d_bytes))
    assert get_format("form-d").emit(get_format("json").parse(via_json)) == form_d_bytes
