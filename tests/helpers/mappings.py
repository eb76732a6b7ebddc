"""Builders and hypothesis strategies shared by the tests/mappings/test_mappings_*.py suites."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

from hypothesis import strategies as st

from mappings.model import (
    Address,
    Amount,
    DocumentInfo,
    Endpoint,
    Envelope,
    GoodsItem,
    Location,
    Measure,
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

VECTORS = Path(__file__).parents[1] / "vectors" / "mappings"
VN = dt.timezone(dt.timedelta(hours=7))

NSW = Endpoint(name="NSW", identity="NSW", country="VN", ministry="BTC", organization="TCHQ", unit="NSW")
MARD = Endpoint(name="BNNPTNT", identity="BNNPTNT", country="VN", ministry="BNNPTNT", organization="06", unit="BNNPTNT")


def envelope(procedure: str, message_type: str, function: str, **kw: object) -> Envelope:
    base = dict(
        message_id="3f1c2a7e-9b1d-4f3e-8c55-2d7a1e0b9c41",
        version="01",
        sender=MARD,
        recipient=NSW,
        procedure=procedure,
        message_type=message_type,
        function=function,
        reference="BNNPTNT11190000272",
        reference_year=2019,
        previous_reference="BNNPTNT11190000272",
        previous_reference_year=2019,
        sent_at=dt.datetime(2019, 12, 13, 9, 15, 2, tzinfo=VN),
    )
    base.update(kw)
    return Envelope(**base)  # type: ignore[arg-type]


def form_d_item(i: int = 0, **kw: object) -> GoodsItem:
    base = dict(
        sequence=i + 1,
        description=f"Frozen shrimp lot {i + 1}",
        hs_code="030617",
        package_count=10,
        package_type="CT",
        marks="N/M",
        quantities=(Quantity(value=Decimal("100"), unit="KGM"),),
        gross_weight=Measure(value=Decimal("120.5"), unit="KGM"),
        fob_value=Amount(value=Decimal("1500.00"), currency="USD"),
        origin_country="VN",
        origin_criterion="RVC 45%",
        invoice_number="INV-2024-001",
        invoice_date=dt.date(2024, 3, 1),
    )
    base.update(kw)
    return GoodsItem(**base)  # type: ignore[arg-type]


def form_d(items: int = 1, **kw: object) -> TradeMessage:
    base = dict(
        document=DocumentInfo(
            number="VN-SG-24-00001", issue_date=dt.datetime(2024, 3, 5, 10, 0, tzinfo=VN), issuing_country="VN"
        ),
        parties=Parties(
            exporter=Party(
                name="Minh Phu Seafood JSC", identifier="0300000001", address=Address(line1="Ca Mau", country="VN")
            ),
            consignee=Party(
                name="Lion Foods Pte Ltd", address=Address(line1="1 Jurong Port Rd", city="Singapore", country="SG")
            ),
            issuing_authority=Party(name="Ministry of Industry and Trade"),
        ),
        transport=Transport(
            legs=(TransportLeg(mode="1", means="MV Ocean Star", journey="V123", departure_date=dt.date(2024, 3, 6)),),
            port_of_loading=Location(code="VNSGN", name="Ho Chi Minh City"),
            port_of_discharge=Location(code="SGSIN", name="Singapore"),
            export_country="VN",
            destination_country="SG",
        ),
        goods=tuple(form_d_item(i) for i in range(items)),
        signatory=Signatory(
            name="Nguyen Van C",
            role="Director",
            place="Ho Chi Minh City",
            signed_at=dt.datetime(2024, 3, 5, 9, 0, tzinfo=VN),
        ),
        origin_certificate=OriginCertificate(third_country_invoicing=True),
    )
    base.update(kw)
    return TradeMessage(**base)  # type: ignore[arg-type]


def quarantine_result(function: str = "05", decision: str | None = "accepted") -> TradeMessage:
    return TradeMessage(
        envelope=envelope("BNNPTNT0600011", "12", function),
        permit=Permit(
            procedure_code="BNNPTNT0600011",
            application_number="BNNPTNT11190000272",
            decision=decision,  # type: ignore[arg-type]
            decision_date=dt.datetime(2019, 12, 13, 9, 14, 40, tzinfo=VN),
            reason="Ho so hop le",
        ),
    )


# --------------------------------------------------------------------------- strategies

# Text that survives XML and the models: printable, stripped, non-empty.
_ALPHABET = st.characters(codec="utf-8", categories=("L", "N", "P", "Zs"), exclude_characters="\x00")


def text(max_size: int = 30) -> st.SearchStrategy[str]:
    return st.text(_ALPHABET, min_size=1, max_size=max_size).map(str.strip).filter(bool)


codes = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=10)
countries = st.sampled_from(["VN", "SG", "TH", "MY", "ID", "PH", "CN", "AR", "US", "EC"])
units = st.sampled_from(["KGM", "TNE", "LTR", "MTQ", "GRM"])
decimals = st.decimals(min_value=0, max_value=10**9, places=2, allow_nan=False, allow_infinity=False)
whole = st.integers(min_value=0, max_value=10**9).map(Decimal)
aware = st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2090, 1, 1)).map(
    lambda d: d.replace(microsecond=0, tzinfo=VN)
)
dates = st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2090, 1, 1))


def o(strategy: st.SearchStrategy) -> st.SearchStrategy:  # type: ignore[type-arg]
    return st.none() | strategy


hs_codes = st.text(alphabet="0123456789", min_size=6, max_size=10)
alnum = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ0123456789", min_size=1, max_size=15)
full_addresses = st.builds(
    Address,
    line1=text(),
    line2=o(text()),
    city=o(text()),
    postcode=o(alnum),
    subdivision=o(text()),
    country=o(countries),
)
"""Addresses with every line the model has, each optional one sometimes left out."""


def measure(unit_strategy: st.SearchStrategy[str] = units) -> st.SearchStrategy[Measure]:
    return st.builds(Measure, value=decimals, unit=unit_strategy)


def party(with_id: bool = True, lines: int = 1) -> st.SearchStrategy[Party]:
    address = st.builds(Address, line1=text(), line2=text() if lines > 1 else st.none())
    return st.builds(Party, name=text(), identifier=o(codes) if with_id else st.none(), address=o(address))
