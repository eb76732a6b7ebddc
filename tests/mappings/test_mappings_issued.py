"""What each kind of result document does to the registry of issued documents (mappings.issued), from the
harmonized model of every format: permits and licences, quarantine dispatches, certificates of origin and their
amendments, SPS certificates, cancellations; and the customs utilization report, refused with its schema issues."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from gateway.errors import ValidationFailed
from gateway.registry import IssuedAct, RegistryLine, UtilizationAct
from helpers.eco import certificate
from helpers.ippc import sps_certificate
from mappings.issued import NS, issued_act, read_utilization
from mappings.model import DocumentInfo, GoodsItem, Measure, Parties, Party, Permit, Quantity, TradeMessage
from mappings.registry import get

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "mappings" / "vnsw"


def test_an_issued_form_d_is_a_certificate_of_origin_valid_for_a_year_and_its_amendment_supersedes_it() -> None:
    issued = get("form-d").issued(certificate("VN-SG-26-00001"))
    assert isinstance(issued, IssuedAct)
    assert (issued.action, issued.doc_type, issued.number, issued.issuing_country) == (
        "issued",
        "861",
        "VN-SG-26-00001",
        "VN",
    )
    assert issued.holder == "0300000001" and issued.lines[0] == RegistryLine("030617", Decimal("100"), "KGM")
    assert issued.valid_from is not None and issued.valid_until == issued.valid_from + 365 * 86400
    amended = get("form-d").issued(certificate("VN-SG-26-00002", amends="VN-SG-26-00001"))
    assert isinstance(amended, IssuedAct) and amended.supersedes == "VN-SG-26-00001"


def test_a_mard_quarantine_dispatch_is_indexed_by_its_number_goods_code_and_expiry() -> None:
    raw = (VECTORS / "BNNPTNT0600011_t16_f12_import_quarantine_dispatch_BNN_to_NSW.xml").read_bytes()
    act = get("vnsw").issued(raw)
    assert isinstance(act, IssuedAct)
    assert (act.action, act.doc_type, act.number, act.path) == (
        "issued",
        "BNNPTNT0600011",
        "1234/TY-KD",
        "permit.number",
    )
    assert act.lines == (RegistryLine("01032900", Decimal("24"), "NAR"),) and act.valid_until is not None


def test_applications_and_results_without_a_permit_number_index_nothing() -> None:
    for name in (
        "mard_BNNPTNT0600011_t10_f01_registration_NSW_to_BNN_sample.xml",
        "BNNPTNT0600011_t12_f05_quarantine_result_accept_BNN_to_NSW.xml",
    ):
        assert get("vnsw").issued((VECTORS / name).read_bytes()) is None


def test_an_sps_certificate_is_issued_under_its_document_code() -> None:
    act = get("sps").issued(sps_certificate("PH-2026-1"))
    assert isinstance(act, IssuedAct) and (act.doc_type, act.number) == ("851", "PH-2026-1")


def _permit(**document: str) -> TradeMessage:
    return TradeMessage(
        document=DocumentInfo(**document) if document else None,
        parties=Parties(declarant=Party(identifier="0101234567")),
        goods=(
            GoodsItem(hs_code="38089190", quantities=(Quantity(value=Decimal(5), unit="TNE", qualifier="net"),)),
            GoodsItem(commodity_code="0102", net_weight=Measure(value=Decimal(800), unit="KGM")),
            GoodsItem(commodity_code="CATTLE-1"),
        ),
        permit=Permit(procedure_code="BNN0300003", number="PL-1", decision="issued"),
    )


def test_a_permit_uses_its_first_quantity_or_net_weight_and_a_numeric_native_code() -> None:
    act = issued_act(_permit())
    assert act is not None and act.holder == "0101234567"
    assert act.lines == (RegistryLine("38089190", Decimal(5), "TNE"), RegistryLine("0102", Decimal(800), "KGM"))


@pytest.mark.parametrize(("status", "action"), [("1", "cancelled"), ("5", "amended"), ("9", "issued")])
def test_the_document_status_code_cancels_or_replaces_a_permit(status: str, action: str) -> None:
    act = issued_act(_permit(status_code=status))
    assert act is not None and act.action == action


def test_a_utilization_report_reads_into_its_draw_lines() -> None:
    raw = (
        f'<RegistryUtilization xmlns="{NS}"><Declaration>D-1</Declaration>'
        "<DeclarationDate>2026-12-04T09:00:00+07:00</DeclarationDate><Enterprise>0101234567</Enterprise>"
        "<Line><DocumentType>BNN0300003</DocumentType><Number>PL-1</Number><HsCode>38089190</HsCode>"
        "<Quantity>2.5</Quantity><Unit>TNE</Unit></Line></RegistryUtilization>"
    ).encode()
    act = read_utilization(raw)
    assert isinstance(act, UtilizationAct) and (act.declaration, act.enterprise) == ("D-1", "0101234567")
    (line,) = act.lines
    assert (line.number, line.quantity, line.unit, line.path) == (
        "PL-1",
        Decimal("2.5"),
        "TNE",
        "RegistryUtilization/Line[1]",
    )
    assert read_utilization(b"<Other/>") is None


def test_a_utilization_report_that_does_not_validate_names_every_issue() -> None:
    raw = (
        f'<RegistryUtilization xmlns="{NS}"><Declaration>D-1</Declaration><Enterprise>E</Enterprise>'
        "<Line><DocumentType>X</DocumentType><Number>N</Number><HsCode>12</HsCode>"
        "<Quantity>0</Quantity><Unit>TNE</Unit></Line></RegistryUtilization>"
    ).encode()
    with pytest.raises(ValidationFailed) as failed:
        read_utilization(raw)
    assert {i.code for i in failed.value.issues} == {"SCHEMA_INVALID"} and len(failed.value.issues) == 2
