"""``nswgw dictionary``, ``nswgw map`` and ``nswgw validate``, and the documentation of every issue code."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest

from gateway.cli import main
from helpers.mappings import VECTORS, form_d, form_d_item
from mappings.rules import ISSUE_CODES

SAMPLE = VECTORS / "vnsw" / "mard_BNNPTNT0600011_t10_f01_registration_NSW_to_BNN_sample.xml"
DISPATCH = VECTORS / "vnsw" / "BNNPTNT0600011_t16_f12_import_quarantine_dispatch_BNN_to_NSW.xml"


def test_dictionary_markdown_lists_wco_ids_and_issue_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dictionary"]) == 0
    out = capsys.readouterr().out
    assert "| `parties.consignee.name` | str | R014 |" in out
    assert "| `goods[].origin_country` | str | 063 | ISO3166 |" in out
    assert "| `goods[].hs_code` | str | 145 | HS |" in out
    for code in ISSUE_CODES:
        assert f"`{code}`" in out


def test_dictionary_csv_has_one_row_per_element(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "dict.csv"
    assert main(["dictionary", "--csv", "-o", str(target)]) == 0
    rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
    by_path = {r["path"]: r for r in rows}
    assert by_path["goods[].gross_weight.value"]["wco_id"] == ""
    assert by_path["goods[].description"]["wco_id"] == "137"
    assert by_path["goods[].package_count"]["wco_id"] == "144"


@pytest.mark.parametrize(
    ("fmt", "row"),
    [
        ("vnsw", "| `[BNNPTNT0600011 16/12] /Envelope/Body/Content/Quarantine/QuarantineNo` | `permit.number` |"),
        ("vnsw", "| `[BNN0300003 20/18] (function 18)` | `permit.decision = 'issued'` |"),
        ("form-d", "| `/CertificateOfOrigin/GoodsItem/OriginCriterion` | `goods[].origin_criterion` |"),
        (
            "sps",
            "| `/SPSCertificate/SPSConsignment/IncludedSPSConsignmentItem/IncludedSPSTradeLineItem/GrossWeightMeasure/@unitCode` | `goods[].gross_weight.unit` |",
        ),
    ],
)
def test_dictionary_prints_the_declared_mapping_table(fmt: str, row: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dictionary", "--mapping", fmt]) == 0
    assert row in capsys.readouterr().out


def test_map_vnsw_dispatch_to_json_and_back(tmp_path: Path) -> None:
    as_json = tmp_path / "dispatch.json"
    back = tmp_path / "dispatch.xml"
    assert main(["map", "--from", "vnsw", "--to", "json", str(DISPATCH), str(as_json)]) == 0
    assert json.loads(as_json.read_text(encoding="utf-8"))["permit"]["number"] == "1234/TY-KD"
    assert main(["map", "--from", "json", "--to", "vnsw", str(as_json), str(back)]) == 0
    assert b"<QuarantineNo>1234/TY-KD</QuarantineNo>" in back.read_bytes()


def test_map_that_cannot_be_emitted_lists_every_issue(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["map", "--from", "vnsw", "--to", "vnsw", str(SAMPLE), str(tmp_path / "out.xml")]) == 1
    err = capsys.readouterr().err
    assert "goods[0].sequence: [NATIVE_REQUIRED_MISSING]" in err
    assert "goods[0].commodity_code: [NATIVE_REQUIRED_MISSING]" in err
    assert "3 issue(s)" in err
    assert not (tmp_path / "out.xml").exists()


def test_validate_accepts_the_captured_sample(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--format", "vnsw", str(SAMPLE)]) == 0
    assert capsys.readouterr().out.strip() == "OK"


def test_validate_exits_non_zero_with_coded_issues(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mappings.registry import get

    msg = form_d(
        goods=(
            form_d_item(0),
            form_d_item(1),
            form_d_item(2),
            form_d_item(3, origin_criterion="RVC 30%", fob_value=None),
        )
    )
    path = tmp_path / "formd.json"
    path.write_bytes(get("json").emit(msg))
    assert main(["validate", "--format", "json", str(path), "--json"]) == 1
    body = json.loads(capsys.readouterr().out)
    assert body["valid"] is False
    assert [(i["path"], i["code"]) for i in body["issues"]] == [
        ("goods[3].origin_criterion", "ORIGIN_RVC_BELOW_MINIMUM"),
        ("goods[3].fob_value", "FORM_D_FOB_REQUIRED"),
    ]
    assert main(["validate", "--format", "json", str(path)]) == 1
    assert "goods[3].origin_criterion: [ORIGIN_RVC_BELOW_MINIMUM]" in capsys.readouterr().err


def test_unknown_format_exits_2_with_did_you_mean(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--format", "spss", str(SAMPLE)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("FORMAT_UNKNOWN (format):")
    assert "did you mean 'sps'" in err


def test_malformed_xml_exits_2_with_the_parser_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_bytes(b"<Envelope><Header>")
    assert main(["validate", "--format", "vnsw", str(bad)]) == 2
    assert capsys.readouterr().err.startswith("XML_MALFORMED")


def test_every_issue_code_used_in_mappings_is_documented() -> None:
    root = Path(__file__).resolve().parents[2] / "mappings"
    used: set[str] = set()
    for source in root.rglob("*.py"):
        text = source.read_text(encoding="utf-8")
        used |= set(re.findall(r'ValidationIssue\([^)]*?"([A-Z][A-Z0-9_]+)"', text, flags=re.S))
        used |= set(re.findall(r'CodeList\("[A-Z0-9]+", \w+, "([A-Z_]+)"', text))
    assert used, "no issue codes found"
    assert used <= set(ISSUE_CODES), used - set(ISSUE_CODES)
