"""``sps``: the UN/CEFACT SPS certificate (e-Phyto).

Namespace ``urn:un:unece:uncefact:data:standard:SPSCertificate:17``.

The schema is the one the IPPC ePhyto Hub publishes inline in its WSDL
(``shared/corpus/asw/ippc-ephyto-hub-DeliveryService.wsdl``), split into one XSD per namespace under
``mappings/schemas/sps/``. Emitted certificates validate against it. Real certificates do not always
(the corpus sample orders several elements differently), so reading is lenient: order is ignored,
unknown elements are skipped, and the first of repeated single-valued elements (descriptions in several
languages, several origin countries) is taken.

Carried: document id, name, type and status codes, issue time, issuer, notes, referenced documents and
attachments, signatory; consignor, consignee, export/import/transit countries, unloading port, main
carriage movements; per trade line item the sequence, description, common and scientific names, intended
use, weights and volumes, notes, HS classification, level-1 package, first origin country and region.
Not carried: examination event, transport equipment and seals, applied treatments (``AppliedSPSProcess``),
non-HS classifications, package levels above 1, clauses of the signatory authentication.
"""

from __future__ import annotations

from typing import Any

from gateway.errors import ValidationFailed, ValidationIssue
from mappings.model import TradeMessage
from mappings.registry import MessageFormat, build_message, register
from mappings.xmlformat import emit_strict, parse_root
from mappings.xmlspec import DATE, DATETIME, DECIMAL, INT, Attr, Group, Leaf, leaves, read

__all__ = ["NS_SPS", "NS_RAM", "NS_UDT", "XSD", "SPEC", "SpsFormat"]

NS_SPS = "urn:un:unece:uncefact:data:standard:SPSCertificate:17"
NS_RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:21"
NS_UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:21"
XSD = "sps/SPSCertificate_17.xsd"
NSMAP: dict[str | None, str] = {"rsm": NS_SPS, "ram": NS_RAM, "udt": NS_UDT}


def _r(tag: str) -> str:
    return "{" + NS_RAM + "}" + tag


def _dts(path: str) -> tuple[Leaf]:
    return (Leaf("{" + NS_UDT + "}DateTimeString", path, DATETIME),)


def _note(tag: str, path: str) -> Group:
    return Group(
        _r(tag),
        path=path,
        many=True,
        children=(
            Leaf(_r("Subject"), "subject"),
            Leaf(_r("Content"), "content", attrs=(Attr("languageID", "language"),)),
        ),
    )


def _party(tag: str, path: str) -> Group:
    return Group(
        _r(tag),
        path=path,
        children=(
            Leaf(_r("Name"), "name"),
            Leaf(_r("TypeCode"), "identifier", attrs=(Attr("listName", const="NationalRegistrationNumber"),)),
            Group(
                _r("SpecifiedSPSAddress"),
                path="address",
                children=(Leaf(_r("LineOne"), "line1"), Leaf(_r("LineTwo"), "line2")),
            ),
        ),
    )


def _country(tag: str, path: str) -> Group:
    return Group(_r(tag), children=(Leaf(_r("ID"), path),))


def _measure(tag: str, path: str) -> Leaf:
    return Leaf(_r(tag), f"{path}.value", DECIMAL, attrs=(Attr("unitCode", f"{path}.unit"),))


EXCHANGED_DOCUMENT = Group(
    "{" + NS_SPS + "}SPSExchangedDocument",
    required=True,
    children=(
        Leaf(_r("Name"), "document.name"),
        Leaf(_r("ID"), "document.number"),
        Leaf(_r("TypeCode"), "document.type_code", required=True),
        Leaf(_r("StatusCode"), "document.status_code", required=True),
        Group(_r("IssueDateTime"), children=_dts("document.issue_date")),
        Group(_r("IssuerSPSParty"), children=(Leaf(_r("Name"), "parties.issuing_authority.name"),)),
        _note("IncludedSPSNote", "notes"),
        Group(
            _r("ReferenceSPSReferencedDocument"),
            path="documents",
            many=True,
            children=(
                Leaf(_r("IssueDateTime"), "issue_date", DATE),
                Leaf(_r("TypeCode"), "type_code", required=True),
                Leaf(_r("RelationshipTypeCode"), "relationship_code"),
                Leaf(_r("ID"), "reference"),
                Leaf(_r("AttachmentBinaryObject"), "content_base64", attrs=(Attr("filename", "filename"),)),
                Leaf(_r("Information"), "description"),
            ),
        ),
        Group(
            _r("SignatorySPSAuthentication"),
            path="signatory",
            children=(
                Group(_r("ActualDateTime"), children=_dts("signed_at")),
                Group(_r("IssueSPSLocation"), children=(Leaf(_r("Name"), "place"),)),
                Group(
                    _r("ProviderSPSParty"),
                    children=(Group(_r("SpecifiedSPSPerson"), children=(Leaf(_r("Name"), "name"),)),),
                ),
            ),
        ),
    ),
)

TRADE_LINE_ITEM = Group(
    _r("IncludedSPSTradeLineItem"),
    path="goods",
    many=True,
    children=(
        Leaf(_r("SequenceNumeric"), "sequence", INT, required=True),
        Leaf(_r("Description"), "description"),
        Leaf(_r("CommonName"), "common_name"),
        Leaf(_r("ScientificName"), "scientific_name"),
        Leaf(_r("IntendedUse"), "intended_use"),
        _measure("NetWeightMeasure", "net_weight"),
        _measure("GrossWeightMeasure", "gross_weight"),
        _measure("NetVolumeMeasure", "net_volume"),
        _measure("GrossVolumeMeasure", "gross_volume"),
        _note("AdditionalInformationSPSNote", "notes"),
        Group(
            _r("ApplicableSPSClassification"),
            children=(Leaf(_r("SystemName"), const="HS"), Leaf(_r("ClassCode"), "hs_code")),
        ),
        Group(
            _r("PhysicalSPSPackage"),
            children=(
                Leaf(_r("LevelCode"), const="1"),
                Leaf(_r("TypeCode"), "package_type"),
                Leaf(_r("ItemQuantity"), "package_count", INT, required=True),
            ),
        ),
        Group(
            _r("OriginSPSCountry"),
            children=(
                Leaf(_r("ID"), "origin_country"),
                Leaf(_r("Name"), "origin_country_name"),
                Group(_r("SubordinateSPSCountrySubDivision"), children=(Leaf(_r("Name"), "origin_region"),)),
            ),
        ),
    ),
)

CONSIGNMENT = Group(
    "{" + NS_SPS + "}SPSConsignment",
    required=True,
    children=(
        _party("ConsignorSPSParty", "parties.exporter"),
        _party("ConsigneeSPSParty", "parties.consignee"),
        _country("ExportSPSCountry", "transport.export_country"),
        _country("ImportSPSCountry", "transport.destination_country"),
        Group(_r("TransitSPSCountry"), path="transport.transit_countries", many=True, children=(Leaf(_r("ID"), "."),)),
        Group(
            _r("UnloadingBaseportSPSLocation"),
            path="transport.port_of_discharge",
            children=(Leaf(_r("ID"), "code"), Leaf(_r("Name"), "name")),
        ),
        Group(
            _r("MainCarriageSPSTransportMovement"),
            path="transport.legs",
            many=True,
            children=(
                Leaf(_r("ID"), "journey"),
                Leaf(_r("ModeCode"), "mode", required=True),
                Group(_r("UsedSPSTransportMeans"), children=(Leaf(_r("Name"), "means"),)),
            ),
        ),
        Group(_r("IncludedSPSConsignmentItem"), children=(TRADE_LINE_ITEM,)),
    ),
)

SPEC = Group("{" + NS_SPS + "}SPSCertificate", children=(EXCHANGED_DOCUMENT, CONSIGNMENT))
"""The SPS certificate mapping table, in schema order."""


class SpsFormat(MessageFormat):
    """UN/CEFACT SPSCertificate:17 (IPPC ePhyto)."""

    name = "sps"
    media_type = "application/xml"
    description = "UN/CEFACT SPS certificate (e-Phyto), urn:un:unece:uncefact:data:standard:SPSCertificate:17."

    def parse(self, data: bytes) -> TradeMessage:
        root = parse_root(data)
        if root.tag != SPEC.tag:
            raise ValidationFailed(
                [
                    ValidationIssue(
                        f"/{root.tag!s}", "ROOT_UNEXPECTED", f"the SPS certificate root element is {SPEC.tag}"
                    )
                ]
            )
        issues: list[ValidationIssue] = []
        ctx: dict[str, Any] = {}
        read(SPEC, root, ctx, issues, where="/SPSCertificate")
        if issues:
            raise ValidationFailed(issues)
        return build_message(ctx)

    def emit(self, msg: TradeMessage) -> bytes:
        data = msg.model_dump(mode="python")
        return emit_strict(SPEC, data, NSMAP, XSD)

    def mapping_table(self) -> list[tuple[str, str]]:
        return [(n, h) for n, h, _ in leaves(SPEC, native="/SPSCertificate")]


register(SpsFormat)
