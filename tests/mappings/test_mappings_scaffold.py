"""``nswgw procedure scaffold``: corpus XSDs in, an importable skeleton, a valid sample and its test out;
bad XSD input refused with exact codes naming the file or element."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from lxml import etree

from gateway.cli import main
from gateway.errors import ScaffoldIncludeOutside
from helpers.mappings import VECTORS
from mappings import scaffold as sc
from mappings.xmlspec import Group, Leaf
from signing.xml import parse_xml

XSDS = VECTORS / "scaffold"
VEHICLES = XSDS / "ImportedVehicleList.xsd"
INSPECTION = XSDS / "RequestForQualityInspection.xsd"
COSMETIC = XSDS / "MOH_CosmeticServiceBYT_getMessageFromNSWCosmetic.xsd"
XS = 'xmlns:xs="http://www.w3.org/2001/XMLSchema"'


def _import(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _valid(xsd: Path, document: bytes) -> bool:
    schema = etree.XMLSchema(etree.parse(str(xsd), etree.XMLParser(no_network=True, resolve_entities=False)))
    return bool(schema.validate(parse_xml(document)))


def _leaf(group: Group, *tags: str) -> Leaf:
    node: Group | Leaf = group
    for tag in tags:
        assert isinstance(node, Group)
        node = next(c for c in node.children if c.tag.rsplit("}", 1)[-1] == tag)
    assert isinstance(node, Leaf)
    return node


def _code(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 2
    return capsys.readouterr().err.split(" ", 1)[0].split(":", 1)[0]


def test_scaffold_of_the_mot_vehicle_list_writes_an_importable_module_a_valid_sample_and_a_passing_test(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["procedure", "scaffold", "--xsd", str(VEHICLES), "--name", "mot_vehicles", "-o", str(tmp_path)]
    assert main(argv) == 0
    assert "leaves matched" in capsys.readouterr().out
    module = _import(tmp_path / "mot_vehicles.py")
    table = module.IMPORTEDVEHICLELIST
    vehicle = table.children[0]
    assert (vehicle.tag, vehicle.path, vehicle.many, vehicle.required) == ("ImportedVehicle", "goods", True, True)
    assert _leaf(table, "ImportedVehicle", "SequenceNo").path == "sequence"
    assert _leaf(table, "ImportedVehicle", "Currency").path == "fob_value.currency"
    assert _leaf(table, "ImportedVehicle", "TradeMark").path is None
    assert "/ImportedVehicleList/ImportedVehicle/ChassisNumber" in module.UNMATCHED
    assert _valid(VEHICLES, (tmp_path / "mot_vehicles_sample.xml").read_bytes())
    report = (tmp_path / "mot_vehicles_dictionary_diff.md").read_text(encoding="utf-8")
    assert "| `/ImportedVehicleList/ImportedVehicle/VehicleColor` |" in report
    assert (tmp_path / "mot_vehicles_xsd" / "ImportedVehicleList.xsd").read_bytes() == VEHICLES.read_bytes()
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path), str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 passed, 1 xfailed" in run.stdout


def test_matcher_finds_the_known_fields_of_the_mot_inspection_request(tmp_path: Path) -> None:
    found = sc.scaffold([INSPECTION], "mot_inspection")
    by_native = {m.native.removeprefix("/RequestForQualityInspection/"): m.path for m in found.matches}
    assert by_native["Importer/ImporterCode"] == "parties.consignee.identifier"
    assert by_native["Importer/ImporterName"] == "parties.consignee.name"
    assert by_native["Importer/Phone"] == "parties.consignee.phone"
    assert by_native["Importer/Email"] == "parties.consignee.email"
    assert by_native["AttachedFile/AttachedTypeCode"] == "documents[].type_code"
    assert by_native["AttachedFile/FullFileName"] == "documents[].filename"
    assert by_native["ImporterSign/SignName"] == "signatory.name"
    assert by_native["ImporterSign/SignDate"] == "signatory.signed_at"
    assert by_native["Importer/Representative"] is None
    assert by_native["TotalNumberVehicle"] is None
    # The inspector's signature is a second signatory: the field is already the importer's.
    assert by_native["InspectorSign/SignName"] is None
    assert "signatory.name is already SignName's" in found.module
    assert "# 0.95: name words phone, context consignee" in found.module
    sc.write_scaffold(found, tmp_path)
    module = _import(tmp_path / "mot_inspection.py")
    assert module.REQUESTFORQUALITYINSPECTION.children[1].path == "documents"
    assert _valid(INSPECTION, found.sample)


def test_scaffold_of_the_moh_cosmetics_call_keeps_the_namespace_and_unqualified_children(tmp_path: Path) -> None:
    found = sc.scaffold([COSMETIC], "moh_cosmetics", root="getMessageFromNSWCosmetic")
    root = parse_xml(found.sample)
    assert root.tag == "{http://ws.viettel.com/}getMessageFromNSWCosmetic"
    assert [c.tag for c in root] == ["name"]
    assert _valid(COSMETIC, found.sample)
    sc.write_scaffold(found, tmp_path)
    module = _import(tmp_path / "moh_cosmetics.py")
    assert module.GETMESSAGEFROMNSWCOSMETIC.tag == "{http://ws.viettel.com/}getMessageFromNSWCosmetic"


def test_vietnamese_abbreviations_match_harmonized_fields() -> None:
    leaf = sc.SchemaElement("TenDoanhNghiep", None, simple=sc.SimpleType())
    assert sc.match(leaf, ["ThongTinDoanhNghiep"], "/x").path == "parties.declarant.name"
    assert {"tax", "identifier"} <= set(sc.words("MaSoThue"))
    assert sc.match(sc.SchemaElement("MaHS", None, simple=sc.SimpleType()), ["HangHoa"], "/x", "goods").path == (
        "goods[].hs_code"
    )


def test_content_model_walk_follows_includes_extensions_choices_and_restrictions(tmp_path: Path) -> None:
    (tmp_path / "types.xsd").write_text(
        f"""<xs:schema {XS} xmlns="urn:t" targetNamespace="urn:t" elementFormDefault="qualified">
  <xs:simpleType name="HsCode"><xs:restriction base="xs:string"><xs:pattern value="[0-9]{{8}}"/>
  </xs:restriction></xs:simpleType>
  <xs:simpleType name="Unit"><xs:restriction base="xs:string"><xs:enumeration value="KGM"/>
    <xs:enumeration value="TNE"/></xs:restriction></xs:simpleType>
  <xs:complexType name="Base"><xs:sequence><xs:element name="SoHoSo" type="xs:string"/></xs:sequence>
  </xs:complexType>
</xs:schema>""",
        encoding="utf-8",
    )
    main_xsd = tmp_path / "main.xsd"
    main_xsd.write_text(
        f"""<xs:schema {XS} xmlns="urn:t" targetNamespace="urn:t" elementFormDefault="qualified">
  <xs:include schemaLocation="types.xsd"/>
  <xs:element name="HoSo"><xs:complexType><xs:complexContent><xs:extension base="Base"><xs:sequence>
    <xs:element name="NgayNop" type="xs:date"/>
    <xs:choice><xs:element name="MaSoThue" type="xs:string"/><xs:element name="SoCMND" type="xs:string"/>
    </xs:choice>
    <xs:element name="HangHoa" maxOccurs="unbounded"><xs:complexType><xs:sequence>
      <xs:element name="MaHS" type="HsCode"/>
      <xs:element name="SoLuong"><xs:simpleType><xs:restriction base="xs:decimal">
        <xs:fractionDigits value="0"/><xs:minInclusive value="5"/></xs:restriction></xs:simpleType></xs:element>
      <xs:element name="DonViTinh" type="Unit"/>
      <xs:element name="TenHang"><xs:simpleType><xs:restriction base="xs:string"><xs:minLength value="5"/>
        </xs:restriction></xs:simpleType></xs:element>
    </xs:sequence></xs:complexType></xs:element>
  </xs:sequence></xs:extension></xs:complexContent></xs:complexType></xs:element>
</xs:schema>""",
        encoding="utf-8",
    )
    found = sc.scaffold([main_xsd], "ho_so")
    assert [c.name for c in found.root.children] == ["SoHoSo", "NgayNop", "MaSoThue", "SoCMND", "HangHoa"]
    goods = found.root.children[4]
    assert goods.repeated and [c.simple.base for c in goods.children if c.simple] == [
        "string",
        "decimal",
        "string",
        "string",
    ]
    assert goods.children[2].simple is not None and goods.children[2].simple.enumerations == ("KGM", "TNE")
    assert _valid(main_xsd, found.sample)
    assert [m.path for m in found.matches if m.native.endswith("/MaHS")] == ["goods[].hs_code"]
    sc.write_scaffold(found, tmp_path / "out")
    assert (tmp_path / "out" / "ho_so_xsd" / "types.xsd").exists()
    assert _import(tmp_path / "out" / "ho_so.py").HOSO.tag == "{urn:t}HoSo"


def test_a_missing_xsd_is_refused_naming_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.xsd"
    argv = ["procedure", "scaffold", "--xsd", str(missing), "--name", "x", "-o", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"SCAFFOLD_XSD_UNREADABLE ({missing.resolve()})")


@pytest.mark.parametrize(
    ("scenario", "text"),
    [
        ("not_xml", "<xs:schema"),
        ("not_a_schema", "<schema/>"),
        ("dtd_in_the_xsd", '<!DOCTYPE s [<!ENTITY e "x">]><s>&e;</s>'),
    ],
)
def test_an_unreadable_xsd_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], scenario: str, text: str
) -> None:
    bad = tmp_path / f"{scenario}.xsd"
    bad.write_text(text, encoding="utf-8")
    assert _code(capsys, ["procedure", "scaffold", "--xsd", str(bad), "--name", "x", "-o", str(tmp_path)]) == (
        "SCAFFOLD_XSD_UNREADABLE"
    )


@pytest.mark.parametrize("location", ["../outside.xsd", "http://example.invalid/types.xsd", "file:///etc/types.xsd"])
def test_an_include_outside_the_xsd_directory_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], location: str
) -> None:
    (tmp_path / "outside.xsd").write_text(f"<xs:schema {XS}/>", encoding="utf-8")
    inner = tmp_path / "in"
    inner.mkdir()
    xsd = inner / "main.xsd"
    xsd.write_text(
        f'<xs:schema {XS}><xs:include schemaLocation="{location}"/><xs:element name="A"/></xs:schema>',
        encoding="utf-8",
    )
    with pytest.raises(ScaffoldIncludeOutside) as info:
        sc.load_schemas([xsd])
    assert info.value.field == str(xsd.resolve())
    argv = ["procedure", "scaffold", "--xsd", str(xsd), "--name", "x", "-o", str(tmp_path / "out")]
    assert _code(capsys, argv) == "SCAFFOLD_INCLUDE_OUTSIDE"
    assert not (tmp_path / "out").exists()


def test_a_root_not_declared_is_refused_naming_the_element(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    argv = ["procedure", "scaffold", "--xsd", str(VEHICLES), "--name", "x", "--root", "Vehicle", "-o", str(tmp_path)]
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith("SCAFFOLD_ROOT_MISSING (Vehicle): no global element 'Vehicle'")


def test_several_global_elements_need_a_root(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    argv = ["procedure", "scaffold", "--xsd", str(COSMETIC), "--name", "x", "-o", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("SCAFFOLD_ROOT_MISSING (--root)") and "getMessageFromNSWCosmetic" in err
