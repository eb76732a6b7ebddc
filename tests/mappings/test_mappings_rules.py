"""The harmonized model and its validation rules: code lists, origin criteria, ATIGA Form D."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from pydantic import ValidationError

from gateway.errors import ValidationFailed, ValidationIssue
from helpers.mappings import form_d, form_d_item
from mappings import rules
from mappings.codes import CODE_LISTS, is_country, is_currency, is_hs_code, is_locode, is_unit
from mappings.model import Address, Amount, GoodsItem, Location, Measure, Party, TradeMessage, Transport, wco_id
from mappings.rules import ISSUE_CODES, check, parse_origin_criterion, validate


def codes_at(issues: list[ValidationIssue]) -> list[tuple[str, str]]:
    return [(i.path, i.code) for i in issues]


def test_valid_form_d_has_no_issues() -> None:
    msg = form_d(items=3)
    assert validate(msg) == []
    assert check(msg) is msg


def test_models_are_frozen_and_forbid_unknown_fields() -> None:
    item = form_d_item()
    with pytest.raises(ValidationError):
        item.hs_code = "1234"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        GoodsItem(colour="red")  # type: ignore[call-arg]


def test_wco_ids_are_carried_in_field_metadata() -> None:
    from mappings.model import Parties

    assert wco_id(GoodsItem, "origin_country") == "063"
    assert wco_id(GoodsItem, "description") == "137"
    assert wco_id(GoodsItem, "gross_weight") == "126"
    assert wco_id(GoodsItem, "package_count") == "144"
    assert wco_id(GoodsItem, "hs_code") == "145"
    assert wco_id(Parties, "consignee") == "R014"
    assert wco_id(GoodsItem, "scientific_name") is None


@pytest.mark.parametrize(
    ("check_fn", "good", "bad"),
    [
        (is_country, "VN", "XX"),
        (is_currency, "USD", "USX"),
        (is_unit, "KGM", "KILO"),
        (is_locode, "VNSGN", "VNSG1"),
        (is_hs_code, "0306170000", "0306.17"),
    ],
)
def test_code_list_checks(check_fn, good: str, bad: str) -> None:  # type: ignore[no-untyped-def]
    assert check_fn(good)
    assert not check_fn(bad)


def test_locode_needs_a_known_country_and_hs_code_needs_6_to_10_digits() -> None:
    assert not is_locode("XXSGN")
    assert not is_hs_code("03061")
    assert is_hs_code("030617")
    assert not is_hs_code("03061700001")


def test_every_code_list_issue_code_is_documented() -> None:
    for code_list in CODE_LISTS.values():
        assert code_list.issue_code in ISSUE_CODES


def test_bad_codes_are_all_reported_with_their_paths() -> None:
    msg = form_d(
        items=2,
        transport=Transport(export_country="XX", port_of_loading=Location(code="VN1"), transit_countries=("SG", "ZZ")),
    )
    bad_item = form_d_item(
        1,
        hs_code="12AB",
        origin_country="QQ",
        gross_weight=Measure(value=Decimal(1), unit="KILO"),
        fob_value=Amount(value=Decimal(1), currency="DOL"),
    )
    msg = msg.model_copy(update={"goods": (msg.goods[0], bad_item)})
    assert codes_at(validate(msg)) == [
        ("transport.port_of_loading.code", "LOCODE_INVALID"),
        ("transport.export_country", "COUNTRY_UNKNOWN"),
        ("transport.transit_countries[1]", "COUNTRY_UNKNOWN"),
        ("goods[1].hs_code", "HS_CODE_INVALID"),
        ("goods[1].gross_weight.unit", "UNIT_UNKNOWN"),
        ("goods[1].fob_value.currency", "CURRENCY_UNKNOWN"),
        ("goods[1].origin_country", "COUNTRY_UNKNOWN"),
    ]


def test_check_raises_one_validation_failed_with_every_issue() -> None:
    msg = TradeMessage(
        parties={"exporter": Party(address=Address(country="XX"))}, goods=(GoodsItem(origin_country="YY"),)
    )
    with pytest.raises(ValidationFailed) as info:
        check(msg)
    assert info.value.code == "VALIDATION_FAILED"
    assert codes_at(list(info.value.issues)) == [
        ("parties.exporter.address.country", "COUNTRY_UNKNOWN"),
        ("goods[0].origin_country", "COUNTRY_UNKNOWN"),
    ]


@pytest.mark.parametrize(
    ("text", "kind", "percent"),
    [
        ("WO", "WO", None),
        ("CC", "CC", None),
        ("CTH", "CTH", None),
        ("CTSH", "CTSH", None),
        ("SP", "SP", None),
        ("RVC 40%", "RVC", Decimal(40)),
        ("RVC40%", "RVC", Decimal(40)),
        ("PC 25%", "PC", Decimal(25)),
        ("rvc 55 %", "RVC", Decimal(55)),
    ],
)
def test_origin_criterion_grammar_accepts(text: str, kind: str, percent: Decimal | None) -> None:
    crit = parse_origin_criterion(text)
    assert crit is not None
    assert (crit.kind, crit.percent) == (kind, percent)


@pytest.mark.parametrize("text", ["", "WX", "RVC", "RVC 40", "40%", "CTH+RVC 40%", "PE", "RVC -40%"])
def test_origin_criterion_grammar_refuses(text: str) -> None:
    assert parse_origin_criterion(text) is None


@pytest.mark.parametrize(
    ("criterion", "code"),
    [
        ("XYZ", "ORIGIN_CRITERION_INVALID"),
        ("RVC 39%", "ORIGIN_RVC_BELOW_MINIMUM"),
        ("RVC 40.5%", "ORIGIN_RVC_NOT_INTEGER"),
        ("PC 19%", "ORIGIN_PC_OUT_OF_RANGE"),
        ("PC 40%", "ORIGIN_PC_OUT_OF_RANGE"),
    ],
)
def test_bad_origin_criterion_on_item_3_is_reported_at_its_path(criterion: str, code: str) -> None:
    msg = form_d(items=5)
    goods = list(msg.goods)
    goods[3] = form_d_item(3, origin_criterion=criterion)
    assert codes_at(validate(msg.model_copy(update={"goods": tuple(goods)}))) == [("goods[3].origin_criterion", code)]


@pytest.mark.parametrize("criterion", ["RVC 40%", "PC 20%", "PC 39%", "WO", "CTSH"])
def test_origin_criteria_at_the_limits_pass(criterion: str) -> None:
    msg = form_d(goods=(form_d_item(0, origin_criterion=criterion),))
    assert validate(msg) == []


def test_form_d_with_51_items_is_refused() -> None:
    assert codes_at(validate(form_d(items=51))) == [("goods", "FORM_D_TOO_MANY_ITEMS")]
    assert validate(form_d(items=50)) == []


def test_form_d_without_items_is_refused() -> None:
    assert codes_at(validate(form_d(goods=()))) == [("goods", "FORM_D_NO_ITEMS")]


def test_form_d_missing_invoice_and_fob_are_reported_per_item() -> None:
    msg = form_d(
        goods=(
            form_d_item(0, invoice_number=None, invoice_date=None),
            form_d_item(1, fob_value=None),
            form_d_item(2, fob_value=None, origin_criterion="WO"),
        )
    )
    assert codes_at(validate(msg)) == [
        ("goods[0].invoice_number", "FORM_D_INVOICE_NUMBER_REQUIRED"),
        ("goods[0].invoice_date", "FORM_D_INVOICE_DATE_REQUIRED"),
        ("goods[1].fob_value", "FORM_D_FOB_REQUIRED"),
    ]


def test_form_d_invoice_dated_after_issue_is_refused() -> None:
    msg = form_d(
        goods=(form_d_item(0, invoice_date=dt.date(2024, 3, 6)), form_d_item(1, invoice_date=dt.date(2024, 3, 5)))
    )
    assert codes_at(validate(msg)) == [("goods[0].invoice_date", "FORM_D_INVOICE_AFTER_ISSUE")]


def test_form_d_without_certificate_data_reports_every_missing_element() -> None:
    msg = form_d(document=None, parties={}, goods=(GoodsItem(sequence=1),))
    assert codes_at(validate(msg)) == [
        ("document.number", "FORM_D_NUMBER_REQUIRED"),
        ("document.issue_date", "FORM_D_ISSUE_DATE_REQUIRED"),
        ("parties.exporter.name", "FORM_D_EXPORTER_REQUIRED"),
        ("parties.consignee.name", "FORM_D_CONSIGNEE_REQUIRED"),
        ("goods[0].description", "FORM_D_DESCRIPTION_REQUIRED"),
        ("goods[0].hs_code", "FORM_D_HS_CODE_REQUIRED"),
        ("goods[0].origin_criterion", "FORM_D_ORIGIN_CRITERION_REQUIRED"),
        ("goods[0].invoice_number", "FORM_D_INVOICE_NUMBER_REQUIRED"),
        ("goods[0].invoice_date", "FORM_D_INVOICE_DATE_REQUIRED"),
    ]


def test_form_d_rules_apply_only_to_certificates_of_origin() -> None:
    msg = TradeMessage(goods=(GoodsItem(description="x", origin_criterion="WO"),))
    assert validate(msg) == []


def test_duplicate_goods_sequence_is_reported() -> None:
    msg = form_d(goods=(form_d_item(0), form_d_item(1, sequence=1)))
    assert codes_at(validate(msg)) == [("goods[1].sequence", "GOODS_SEQUENCE_DUPLICATE")]


def test_negative_quantities_are_refused_by_the_model() -> None:
    with pytest.raises(ValidationError):
        Measure(value=Decimal(-1), unit="KGM")


def test_issue_codes_are_upper_snake_and_table_lists_them() -> None:
    import re

    table = rules.issue_table_markdown()
    for code in ISSUE_CODES:
        assert re.fullmatch(r"[A-Z][A-Z0-9]*(_[A-Z0-9]+)*", code)
        assert f"`{code}`" in table
