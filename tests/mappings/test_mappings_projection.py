"""Field projection (mappings.projection): a recipient gets the data elements it may see and nothing else."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from gateway.errors import UnknownFormat
from gateway.ports import RegistryMapper
from mappings.model import GoodsItem, Parties, Party, Permit, Quantity, TradeMessage
from mappings.projection import path_errors, present, project, selection
from mappings.registry import get

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def _permit() -> TradeMessage:
    return TradeMessage(
        parties=Parties(
            consignee=Party(name="Cong ty A", identifier="0100000001"),
            declarant=Party(name="Nguyen Van B", identifier="0100000002"),
        ),
        goods=(
            GoodsItem(
                hs_code="01022900", description="Live cattle", quantities=(Quantity(value=Decimal(10), unit="TNE"),)
            ),
            GoodsItem(hs_code="02013000", description="Beef", origin_country="AU"),
        ),
        permit=Permit(number="P-1", purpose="breeding", officer="Officer C"),
    )


def test_projection_keeps_only_the_named_elements_of_every_goods_item() -> None:
    projected = project(_permit(), ["permit.number", "goods.hs_code", "parties.consignee"])
    assert projected.permit == Permit(number="P-1")
    assert [g.hs_code for g in projected.goods] == ["01022900", "02013000"]
    assert all(g.description is None and g.quantities == () and g.origin_country is None for g in projected.goods)
    assert projected.parties.consignee == Party(name="Cong ty A", identifier="0100000001")
    assert projected.parties.declarant is None


def test_projection_into_a_quantity_keeps_its_unit_beside_its_value() -> None:
    projected = project(_permit(), ["goods.quantities.value"])
    assert projected.goods[0].quantities == (Quantity(value=Decimal(10), unit="TNE"),)


def test_a_path_under_one_kept_whole_adds_nothing() -> None:
    assert selection(["permit", "permit.number"]) == {"permit": None}
    assert project(_permit(), ["permit.number", "permit"]).permit == _permit().permit


def test_unknown_paths_are_named_with_the_closest_field() -> None:
    errors = path_errors(["permit.numbr", "goods.hs_code.digits", "goods.hs_code"])
    assert len(errors) == 2
    assert errors[0] == "'permit.numbr': permit has no field 'numbr'; did you mean 'number'?"
    assert "goods.hs_code is a value" in errors[1]


def test_present_names_only_the_elements_the_message_carries() -> None:
    msg = _permit()
    assert present(msg, ["permit.number", "permit.reason", "goods.origin_country", "parties.exporter"]) == (
        "permit.number",
        "goods.origin_country",
    )


def test_a_projected_mapping_writes_only_the_allowed_fields_in_the_target_format() -> None:
    raw = (SAMPLES / "form_d_two_items.xml").read_bytes()
    whole = json.loads(RegistryMapper().map(raw, "form-d", "json"))
    part = json.loads(RegistryMapper().map(raw, "form-d", "json", fields=("goods.hs_code", "document.number")))
    assert whole["goods"] and any(k != "hs_code" for g in whole["goods"] for k in g)
    assert whole["parties"]["exporter"] and len(whole["document"]) > 1
    assert {k for k, v in part.items() if v} == {"document", "goods"}
    assert part["document"] == {"number": whole["document"]["number"]}
    assert [{k: v for k, v in g.items() if v} for g in part["goods"]] == [
        {"hs_code": g["hs_code"]} for g in whole["goods"]
    ]
    assert get("json").read(json.dumps(part).encode()).goods[0].hs_code == whole["goods"][0].get("hs_code")


def test_pass_through_xml_cannot_be_projected() -> None:
    with pytest.raises(UnknownFormat) as caught:
        RegistryMapper().map(b"<a/>", "xml", "xml", fields=("permit.number",))
    assert caught.value.code == "FORMAT_UNKNOWN"
    assert caught.value.field == "X-Format"
