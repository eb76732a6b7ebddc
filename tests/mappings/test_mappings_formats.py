"""Form D (our schema), SPS certificate (UN/CEFACT, corpus sample) and JSON: vectors, strict output, bad input."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest

from gateway.errors import UnknownFormat, ValidationFailed
from helpers.mappings import VECTORS, form_d, form_d_item
from mappings import formd
from mappings.model import DocumentReference, TradeMessage
from mappings.registry import convert, names
from mappings.registry import get as get_format
from mappings.xmlformat import SCHEMA_DIR, load_schema
from signing.xml import parse_xml

FORM_D = get_format("form-d")
SPS = get_format("sps")
JSON = get_format("json")
SPS_SAMPLE = VECTORS / "sps" / "uncefact-SPSCertificate-17-ephyto-sample-with-pdf-attachment.xml"


def issues_of(info: pytest.ExceptionInfo[ValidationFailed]) -> list[tuple[str, str]]:
    return [(i.path, i.code) for i in info.value.issues]


# --------------------------------------------------------------------------- registry


def test_registry_lists_the_built_in_formats() -> None:
    assert names() == [
        "acdd",
        "form-d",
        "json",
        "moh-cosmetic",
        "mot-vr-imported-vehicles",
        "ship-decision",
        "sps",
        "vnsw",
    ]


def test_unknown_format_suggests_the_closest_name() -> None:
    with pytest.raises(UnknownFormat) as info:
        get_format("formd")
    assert info.value.code == "FORMAT_UNKNOWN"
    assert "did you mean 'form-d'" in info.value.message
    assert info.value.details["suggestions"] == ["form-d"]


# --------------------------------------------------------------------------- Form D


def test_form_d_emits_xml_valid_against_the_shipped_xsd() -> None:
    out = FORM_D.emit(form_d(items=2))
    root = parse_xml(out)
    assert load_schema(formd.XSD).validate(root)
    ns = {"d": formd.NAMESPACE}
    assert root.findtext("d:Certificate/d:ThirdCountryInvoicing", namespaces=ns) == "true"
    assert root.findtext("d:GoodsItem[2]/d:OriginCriterion", namespaces=ns) == "RVC 45%"
    assert root.find("d:GoodsItem/d:FOBValue", namespaces=ns).get("currencyID") == "USD"  # type: ignore[union-attr]
    assert FORM_D.parse(out) == form_d(items=2)


def test_shipped_form_d_xsd_and_partner_guide_are_the_generated_ones() -> None:
    assert (SCHEMA_DIR / "formd" / "atiga-form-d-1.xsd").read_bytes() == formd.generate_xsd()
    assert (SCHEMA_DIR / "formd" / "FORM_D.md").read_text(encoding="utf-8") == formd.partner_guide()


def test_form_d_vector_file_parses_and_validates() -> None:
    data = (VECTORS / "formd" / "form_d_two_items.xml").read_bytes()
    assert FORM_D.parse(data) == form_d(items=2)
    assert FORM_D.validate(data) == []


def test_form_d_missing_required_elements_are_listed_before_the_schema() -> None:
    msg = form_d(goods=(form_d_item(0, hs_code=None, invoice_date=None),), parties={})
    with pytest.raises(ValidationFailed) as info:
        FORM_D.emit(msg)
    assert issues_of(info) == [
        ("parties.exporter.name", "NATIVE_REQUIRED_MISSING"),
        ("parties.consignee.name", "NATIVE_REQUIRED_MISSING"),
        ("goods[0].hs_code", "NATIVE_REQUIRED_MISSING"),
        ("goods[0].invoice_date", "NATIVE_REQUIRED_MISSING"),
    ]


def test_form_d_input_breaking_the_schema_is_schema_invalid() -> None:
    data = FORM_D.emit(form_d()).replace(
        b"<ClassificationCode>030617</ClassificationCode>", b"<ClassificationCode>0306.17</ClassificationCode>"
    )
    with pytest.raises(ValidationFailed) as info:
        FORM_D.parse(data)
    (issue,) = info.value.issues
    assert issue.code == "SCHEMA_INVALID" and "ClassificationCode" in issue.message


def test_form_d_validate_reports_business_rules_after_reading() -> None:
    data = FORM_D.emit(form_d(goods=(form_d_item(0, origin_criterion="RVC 35%", invoice_date=dt.date(2024, 4, 1)),)))
    assert [(i.path, i.code) for i in FORM_D.validate(data)] == [
        ("goods[0].origin_criterion", "ORIGIN_RVC_BELOW_MINIMUM"),
        ("goods[0].invoice_date", "FORM_D_INVOICE_AFTER_ISSUE"),
    ]


def test_form_d_wrong_root_is_refused() -> None:
    with pytest.raises(ValidationFailed) as info:
        FORM_D.parse(b"<CertificateOfOrigin/>")
    assert issues_of(info) == [("/CertificateOfOrigin", "ROOT_UNEXPECTED")]


# --------------------------------------------------------------------------- SPS


def test_corpus_sps_certificate_parses() -> None:
    msg = SPS.parse(SPS_SAMPLE.read_bytes())
    assert msg.document is not None
    assert (msg.document.number, msg.document.type_code, msg.document.status_code) == ("123ABC", "851", "70")
    assert msg.document.issue_date == dt.datetime(2016, 4, 22, 13, 53, 8, tzinfo=dt.timezone(dt.timedelta(hours=-3)))
    assert msg.parties.exporter is not None and msg.parties.exporter.identifier == "98543210"
    assert msg.parties.consignee is not None and msg.parties.consignee.name == "Importer SA"
    assert msg.transport is not None
    assert (msg.transport.export_country, msg.transport.destination_country, msg.transport.transit_countries) == (
        "AR",
        "EC",
        ("US",),
    )
    assert msg.transport.port_of_discharge is not None and msg.transport.port_of_discharge.code == "USSEA"
    assert [(leg.mode, leg.means, leg.journey) for leg in msg.transport.legs] == [
        ("3", None, None),
        ("1", "Ocean Vessel: Black Pearl", "Voyage N° 18"),
    ]
    first, second = msg.goods
    assert (first.sequence, first.hs_code, first.package_count, first.package_type) == (0, "06029048", 100, "BG")
    assert first.gross_weight is not None and (first.gross_weight.value, first.gross_weight.unit) == (
        Decimal(60),
        "KGM",
    )
    assert (first.origin_country, first.origin_region) == ("AR", "Valles de la RegiónPatagónica")
    assert first.notes[0].subject == "RPCST" and len(first.notes) == 18
    assert second.hs_code is None and [n.subject for n in second.notes] == ["OPTND", "OQV", "OQU"]
    assert len(msg.notes) == 12 and msg.notes[1].language == "en"
    assert [d.filename for d in msg.documents][:2] == ["TestPdf.pdf", "US-F-12345-13467-7N.png"]
    assert msg.signatory is not None and (msg.signatory.name, msg.signatory.place) == (
        "Miguel Perrerra",
        "La Plata, Buenos Aires",
    )
    assert SPS.validate(SPS_SAMPLE.read_bytes()) == []


def test_corpus_sps_sample_is_not_schema_valid_but_our_output_is() -> None:
    schema = load_schema("sps/SPSCertificate_17.xsd")
    assert not schema.validate(parse_xml(SPS_SAMPLE.read_bytes()))
    msg = SPS.parse(SPS_SAMPLE.read_bytes())
    with pytest.raises(ValidationFailed) as info:
        SPS.emit(msg)
    assert issues_of(info) == [(f"documents[{i}].type_code", "NATIVE_REQUIRED_MISSING") for i in range(6)]
    typed = msg.model_copy(
        update={"documents": tuple(d.model_copy(update={"type_code": "916"}) for d in msg.documents)}
    )
    out = SPS.emit(typed)
    assert schema.validate(parse_xml(out))
    assert SPS.parse(out) == typed


def test_sps_wrong_root_and_bad_numbers_are_reported() -> None:
    with pytest.raises(ValidationFailed) as info:
        SPS.parse(b'<SPSCertificate xmlns="urn:other"/>')
    assert issues_of(info) == [("/{urn:other}SPSCertificate", "ROOT_UNEXPECTED")]
    data = SPS_SAMPLE.read_bytes().replace(
        b'<ns1:GrossWeightMeasure unitCode="KGM">60<', b'<ns1:GrossWeightMeasure unitCode="KGM">sixty<'
    )
    with pytest.raises(ValidationFailed) as info:
        SPS.parse(data)
    assert issues_of(info) == [
        (
            "/SPSCertificate/SPSConsignment/IncludedSPSConsignmentItem/IncludedSPSTradeLineItem[1]/GrossWeightMeasure",
            "NATIVE_VALUE_INVALID",
        )
    ]


def test_vnsw_dispatch_maps_to_json_and_back_losslessly() -> None:
    data = (VECTORS / "vnsw" / "BNNPTNT0600011_t16_f12_import_quarantine_dispatch_BNN_to_NSW.xml").read_bytes()
    via_json = convert(data, "vnsw", "json")
    assert convert(via_json, "json", "vnsw") == get_format("vnsw").emit(get_format("vnsw").parse(data))


def test_form_d_maps_to_json_and_back_losslessly() -> None:
    data = FORM_D.emit(form_d(items=3))
    assert convert(convert(data, "form-d", "json"), "json", "form-d") == data


def test_each_format_names_the_dossier_reference_and_where_it_stands() -> None:
    data = (VECTORS / "vnsw" / "BNNPTNT0600011_t16_f12_import_quarantine_dispatch_BNN_to_NSW.xml").read_bytes()
    reference = get_format("vnsw").parse(data).envelope.reference  # type: ignore[union-attr]
    assert get_format("vnsw").reference(data) == (reference, "/Envelope/Header/Subject/reference")
    assert get_format("json").reference(convert(data, "vnsw", "json")) == (reference, "envelope.reference")
    assert FORM_D.reference(FORM_D.emit(form_d())) is None


def test_unreadable_documents_name_no_reference_and_leave_the_error_to_parsing() -> None:
    assert get_format("vnsw").reference(b"<Envelope><Header>") is None
    assert (
        get_format("vnsw").reference(b"<Other><Header><Subject><reference>X</reference></Subject></Header></Other>")
        is None
    )
    assert get_format("json").reference(b"{not json") is None


# --------------------------------------------------------------------------- JSON


def test_json_round_trips_and_leaves_out_nulls() -> None:
    msg = form_d(items=2, documents=(DocumentReference(reference="INV-1", issue_date=dt.date(2024, 3, 1)),))
    out = JSON.emit(msg)
    assert JSON.parse(out) == msg
    body = json.loads(out)
    assert "envelope" not in body and body["goods"][0]["fob_value"] == {"value": "1500.00", "currency": "USD"}


def test_json_syntax_and_model_errors_are_coded() -> None:
    with pytest.raises(ValidationFailed) as info:
        JSON.parse(b"{not json")
    assert [c for _, c in issues_of(info)] == ["JSON_INVALID"]
    with pytest.raises(ValidationFailed) as info:
        JSON.parse(b'{"goods": [{"sequence": -1}, {"colour": "red"}], "envelope": {"message_id": 5}}')
    assert issues_of(info) == [
        ("envelope.message_id", "MODEL_INVALID"),
        ("goods[0].sequence", "MODEL_INVALID"),
        ("goods[1].colour", "MODEL_INVALID"),
    ]


def test_json_schema_of_the_model_carries_wco_ids() -> None:
    schema = TradeMessage.model_json_schema()
    assert schema["$defs"]["GoodsItem"]["properties"]["hs_code"]["wco"] == "145"


def test_vector_sources_are_documented() -> None:
    sources = (VECTORS / "SOURCES.md").read_text(encoding="utf-8")
    for path in VECTORS.rglob("*.xml"):
        assert path.name in sources, path
    shipped = (SCHEMA_DIR / "SOURCES.md").read_text(encoding="utf-8")
    for path in Path(SCHEMA_DIR).rglob("*.xsd"):
        assert path.name in shipped, path


def test_signed_form_d_reads_like_the_unsigned_one():
    """A Form D with its enveloped ds:Signature (as MOIT submits it) is the same message."""
    from mappings.registry import get
    from signing.dev.pki import generate_key, issue_certificate
    from signing.keys import SoftwareSigner
    from signing.sign import sign_document

    key = generate_key("p256")
    cert = issue_certificate(None, key, "MOIT test", key.public_key())
    fmt = get("form-d")
    unsigned = fmt.emit(fmt.parse(_signed_form_d_sample()))
    signed = sign_document(unsigned, SoftwareSigner(key, cert))
    assert b"Signature" in signed
    assert fmt.validate(signed) == []
    assert fmt.parse(signed) == fmt.parse(unsigned)


def _signed_form_d_sample() -> bytes:
    from pathlib import Path

    return next((Path(__file__).parents[1] / "vectors" / "mappings" / "formd").glob("*.xml")).read_bytes()
