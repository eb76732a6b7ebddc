"""MARD procedure BNNPTNT0600011: import animal quarantine.

Corpus folder ``mard_p08_animal_quarantine_BNNPTNT0600011``.

=========  ========  =============================================  ==========================
type       function  message                                        harmonized
=========  ========  =============================================  ==========================
10         01        Registration (NSW -> MARD), animal variant     declarant, goods, permit
12         05/06/07  QuarantineResult (MARD -> NSW)                 permit.decision accepted /
                                                                    rejected / supplement
16         12/14     Quarantine dispatch, amended dispatch          permit (issued / amended),
                     (MARD -> NSW)                                  document, goods, exporter
=========  ========  =============================================  ==========================

Only the animal variant of the registration (``AnimalRegistration``) is mapped; ``ProductRegistration``,
``BoneMealRegistration`` and ``QualityRegistration`` are ignored when read. Of a list of foreign companies
only the first is read (it is the harmonized exporter); quarantine locations, farms, ages and meal
fields are not carried. Animal counts (female/male) are quantities in ``NAR`` (number of articles).
"""

from __future__ import annotations

from mappings.vnsw import VNSW_DATETIME, VNSW_UNIT, VNSW_UNIT_NAME, VnswMessage, register_message
from mappings.xmlspec import DECIMAL, INT, Group, Leaf

__all__ = ["PROCEDURE", "REGISTRATION", "QUARANTINE_RESULT", "DISPATCH"]

PROCEDURE = "BNNPTNT0600011"
_XSD = "vnsw/mard_p08_BNNPTNT0600011/BNNPTNT0600011_type{type}_func{function}.xsd"

_FEMALE = "quantities[qualifier=female]"
_MALE = "quantities[qualifier=male]"
_TOTAL = "quantities[qualifier=]"

REGISTRATION = Group(
    "Content",
    children=(
        Group(
            "Registration",
            required=True,
            children=(
                Leaf("NSWFileCode", "permit.application_number", required=True),
                Leaf("NameOfRegistration", "parties.declarant.name", required=True),
                Leaf("AddressOfRegistration", "parties.declarant.address.line1", required=True),
                Leaf("Tel", "parties.declarant.phone"),
                Leaf("Fax", "parties.declarant.fax"),
                Leaf("Email", "parties.declarant.email"),
                Leaf("ProductType", "permit.product_type", required=True),
                Group(
                    "AnimalRegistration",
                    children=(
                        Group(
                            "AnimalList",
                            children=(
                                Group(
                                    "Animal",
                                    path="goods",
                                    many=True,
                                    children=(
                                        Leaf("AnimalSort", "sequence", INT, required=True),
                                        Leaf("AnimalCode", "commodity_code", required=True),
                                        Leaf("AnimalName", "description", required=True),
                                        Leaf(
                                            "AnimalQuantityFemale",
                                            f"{_FEMALE}.value",
                                            DECIMAL,
                                            sets=((f"{_FEMALE}.unit", "NAR"),),
                                        ),
                                        Leaf(
                                            "AnimalQuantityMale",
                                            f"{_MALE}.value",
                                            DECIMAL,
                                            sets=((f"{_MALE}.unit", "NAR"),),
                                        ),
                                        Leaf("AnimalExporterStateName", "export_country_name", required=True),
                                        Leaf("AnimalExporterStateCode", "export_country"),
                                        Leaf("AnimalPortOfDestinationName", "destination_port.name", required=True),
                                        Leaf("AnimalPortOfDestinationCode", "destination_port.code"),
                                    ),
                                ),
                            ),
                        ),
                        Group(
                            "AnimalCompanyList",
                            children=(
                                Group(
                                    "AnimalCompany",
                                    path="parties.exporter",
                                    children=(
                                        Leaf("AnimalCompanyName", "name", required=True),
                                        Leaf("AnimalCompanyAddress", "address.line1", required=True),
                                    ),
                                ),
                            ),
                        ),
                        Leaf("AnimalExecutionTime", "permit.expected_date", VNSW_DATETIME, required=True),
                        Leaf("AnimalPurpose", "permit.purpose", required=True),
                        Leaf("AnimalAttachedDoc", "permit.remarks"),
                    ),
                ),
                Leaf("SignAddress", "signatory.place", required=True),
                Leaf("SignDate", "signatory.signed_at", VNSW_DATETIME, required=True),
                Leaf("SignName", "signatory.name", required=True),
                Leaf("SignerRole", "signatory.role", required=True),
                Group(
                    "AttachmentList",
                    children=(
                        Group(
                            "Attachment",
                            path="documents",
                            many=True,
                            children=(
                                Leaf("AttachmentId", "reference", required=True),
                                Leaf("AttachmentTypeCode", "type_code", required=True),
                                Leaf("NameOfAttachment", "filename"),
                                Leaf("LinkFile", "link", required=True),
                            ),
                        ),
                    ),
                ),
            ),
        ),
    ),
)
"""Type 10 function 01: the trader's registration for import quarantine (animal variant)."""

QUARANTINE_RESULT = Group(
    "Content",
    children=(
        Group(
            "QuarantineResult",
            required=True,
            children=(
                Leaf("NSWFileCode", "permit.application_number", required=True),
                Leaf("Reason", "permit.reason"),
                Leaf("ResultDate", "permit.decision_date", VNSW_DATETIME, required=True),
                Leaf("Department", "permit.department"),
                Leaf("CreaterName", "permit.officer"),
            ),
        ),
    ),
)
"""Type 12 functions 05 (accepted), 06 (rejected), 07 (supplement requested): MARD's result on the dossier."""

DISPATCH = Group(
    "Content",
    children=(
        Group(
            "Quarantine",
            required=True,
            children=(
                Leaf("NSWFileCode", "permit.application_number", required=True),
                Leaf("QuarantineNo", "permit.number", required=True),
                Leaf("Summary", "document.summary", required=True),
                Leaf("Preamble", "document.preamble", required=True),
                Leaf("ReportInfo", "document.remarks"),
                Group(
                    "GoodsList",
                    children=(
                        Group(
                            "Goods",
                            path="goods",
                            many=True,
                            children=(
                                Leaf("GoodsSort", "sequence", INT, required=True),
                                Leaf("CodeOfGoods", "commodity_code", required=True),
                                Leaf("NameOfGoods", "description", required=True),
                                Leaf("NameSicenceOfGoods", "scientific_name"),
                                Leaf(
                                    "AnimalQuantityFemale",
                                    f"{_FEMALE}.value",
                                    DECIMAL,
                                    sets=((f"{_FEMALE}.unit", "NAR"),),
                                ),
                                Leaf("AnimalQuantityMale", f"{_MALE}.value", DECIMAL, sets=((f"{_MALE}.unit", "NAR"),)),
                                Leaf("WayOfPackinglist", "packing"),
                                Leaf(
                                    "QuantityOrVolumn",
                                    f"{_TOTAL}.value",
                                    DECIMAL,
                                    required=True,
                                    sets=((f"{_TOTAL}.unit", "NAR"),),
                                ),
                                Leaf("QuantityUnitCode", f"{_TOTAL}.unit", VNSW_UNIT),
                                Leaf("QuantityUnitName", f"{_TOTAL}.unit", VNSW_UNIT_NAME, emit_only=True),
                                Leaf("NetWeight", "net_weight.value", DECIMAL, sets=(("net_weight.unit", "KGM"),)),
                                Leaf("NetWeightUnitCode", "net_weight.unit", VNSW_UNIT),
                                Leaf("NetWeightUnitName", "net_weight.unit", VNSW_UNIT_NAME, emit_only=True),
                                Leaf(
                                    "GrossWeight", "gross_weight.value", DECIMAL, sets=(("gross_weight.unit", "KGM"),)
                                ),
                                Leaf("GrossWeightUnitName", "gross_weight.unit", VNSW_UNIT_NAME),
                                Leaf("PurposeUse", "intended_use", required=True),
                                Leaf("OriginationCode", "origin_country", required=True),
                                Leaf("OriginationName", "origin_country_name", required=True),
                                Leaf("ImportPortOfDestinationCode", "destination_port.code"),
                                Leaf("ImportPortOfDestinationName", "destination_port.name", required=True),
                            ),
                        ),
                    ),
                ),
                Group(
                    "CompanyList",
                    required=True,
                    children=(
                        Group(
                            "Company",
                            path="parties.exporter",
                            children=(
                                Leaf("CompanyName", "name", required=True),
                                Leaf("CompanyAddress", "address.line1", required=True),
                            ),
                        ),
                    ),
                ),
                Group(
                    "ManufactureList",
                    children=(
                        Group(
                            "Manufacture",
                            path="parties.manufacturer",
                            children=(Leaf("ManufacturerName", "name"), Leaf("ManufactureAddress", "address.line1")),
                        ),
                    ),
                ),
                Leaf("ResponseContent", "document.content", required=True),
                Leaf("DispatchExpires", "permit.valid_until", VNSW_DATETIME),
                Leaf("Recipient", "parties.consignee.name", required=True),
                Leaf("SignConfirmDate", "signatory.signed_at", VNSW_DATETIME, required=True),
                Leaf("SignConfirmName", "signatory.name", required=True),
                Leaf("SignConfirmAddress", "signatory.place", required=True),
                Leaf("SignerRole", "signatory.role", required=True),
                Leaf("ReasonEdit", "permit.reason"),
                Leaf("ProductType", "permit.product_type", required=True),
                Leaf("LinkFile", "document.link"),
            ),
        ),
    ),
)
"""Type 16 functions 12 (dispatch) and 14 (amended dispatch): MARD's import quarantine dispatch."""


def _message(message_type: str, function: str, title: str, content: object, decision: str) -> VnswMessage:
    return register_message(
        VnswMessage(
            PROCEDURE,
            message_type,
            function,
            title,
            content,  # type: ignore[arg-type]
            _XSD.format(type=message_type, function=function),
            implies=(("permit.procedure_code", PROCEDURE),) + ((("permit.decision", decision),) if decision else ()),
        )
    )


_message("10", "01", "Registration for import animal quarantine", REGISTRATION, "")
_message("12", "05", "Quarantine result: dossier accepted", QUARANTINE_RESULT, "accepted")
_message("12", "06", "Quarantine result: dossier rejected", QUARANTINE_RESULT, "rejected")
_message("12", "07", "Quarantine result: supplement requested", QUARANTINE_RESULT, "supplement_requested")
_message("16", "12", "Import quarantine dispatch", DISPATCH, "issued")
_message("16", "14", "Amended import quarantine dispatch", DISPATCH, "amended")
