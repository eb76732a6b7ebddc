"""MARD procedure BNN0300003: pesticide import licence (corpus folder ``mard_p14_pesticide_import_licence_BNN0300003``).

Mapped: type 20 function 18, ``MedicinePPLicense`` (MARD -> NSW: the licence is issued). The XSD
(``mard_20.xsd`` including ``mard_type.xsd``) is a strict sequence, so the table below is in its order.
``ToxicityUsed`` and ``TestingUsed`` are not carried. The goods weight unit name is written from the code.
"""

from __future__ import annotations

from mappings.vnsw import VNSW_DATETIME, VNSW_UNIT, VNSW_UNIT_NAME, VnswMessage, register_message
from mappings.xmlspec import DECIMAL, INT, Group, Leaf

__all__ = ["PROCEDURE", "LICENCE"]

PROCEDURE = "BNN0300003"

LICENCE = Group(
    "Content",
    children=(
        Group(
            "MedicinePPLicense",
            required=True,
            children=(
                Leaf("DispatchNo", "permit.number", required=True),
                Leaf("Organization", "parties.declarant.name", required=True),
                Leaf("Address", "parties.declarant.address.line1", required=True),
                Leaf("ApplicationNo", "permit.application_number", required=True),
                Leaf("SignDate", "permit.decision_date", VNSW_DATETIME, required=True),
                Group(
                    "GoodsList",
                    required=True,
                    children=(
                        Group(
                            "Goods",
                            path="goods",
                            many=True,
                            required=True,
                            children=(
                                Leaf("Sort", "sequence", INT, required=True),
                                Leaf("TypeGood", "category", required=True),
                                Leaf("NameOfGoods", "description", required=True),
                                Leaf(
                                    "Weight",
                                    "net_weight.value",
                                    DECIMAL,
                                    required=True,
                                    sets=(("net_weight.unit", "KGM"),),
                                ),
                                Leaf("WeightUnitCode", "net_weight.unit", VNSW_UNIT, required=True),
                                Leaf(
                                    "WeightUnitName", "net_weight.unit", VNSW_UNIT_NAME, required=True, emit_only=True
                                ),
                                Leaf("MainUse", "intended_use", required=True),
                                Leaf("Origin", "origin_country_name", required=True),
                            ),
                        ),
                    ),
                ),
                Leaf("Purposes", "permit.purpose", required=True),
                Leaf("PurposeOtherNote", "permit.purpose_note"),
                Leaf("Gates", "permit.border_gates", required=True),
                Leaf("TimeOfImportation", "permit.expected_date", VNSW_DATETIME),
                Leaf("Note", "permit.remarks"),
                Leaf("SignConfirmDate", "signatory.signed_at", VNSW_DATETIME, required=True),
                Leaf("SignConfirmName", "signatory.name", required=True),
                Leaf("SignConfirmPosition", "signatory.role", required=True),
                Leaf("SignConfirmAddress", "signatory.place", required=True),
            ),
        ),
    ),
)
"""Type 20 function 18: the pesticide import licence issued by MARD."""

register_message(
    VnswMessage(
        PROCEDURE,
        "20",
        "18",
        "Pesticide import licence issued",
        LICENCE,
        "vnsw/mard_p14_BNN0300003/mard_20.xsd",
        implies=(("permit.procedure_code", PROCEDURE), ("permit.decision", "issued")),
    )
)
