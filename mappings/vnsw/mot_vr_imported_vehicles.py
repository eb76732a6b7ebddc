"""MOT Vietnam Register: the imported vehicle list of a quality-inspection registration (``ImportedVehicleList``).

Corpus folder ``mot_vr_vehicle_register_content_xsd`` (``ImportedVehicleList.xsd``, a strict sequence, no
namespace). Onboarded with ``nswgw procedure scaffold`` and finished by hand: each ``ImportedVehicle`` is
one goods item. The harmonized model has no vehicle fields, so the vehicle's identification (trade mark,
model, engine, chassis and engine numbers, production year, colour, technical specification, status
codes) is carried in coded item notes whose subject is the native element name; the vehicle type is the
goods description and the unit price is the item value (one vehicle per item).
"""

from __future__ import annotations

from mappings.procedure import ContentFormat
from mappings.registry import register
from mappings.xmlspec import DECIMAL, INT, Group, Leaf

__all__ = ["IMPORTED_VEHICLE_LIST", "NOTE_SUBJECTS", "MotImportedVehicleList"]

NOTE_SUBJECTS = (
    "CodeNumber",
    "MarkAsVehicle",
    "TradeMark",
    "ModelType",
    "EngineType",
    "ProductionYear",
    "ChassisNumber",
    "EngineNumber",
    "VehicleEngineStatus",
    "TechnicalSpecCode",
    "VehicleColor",
)
"""Item note subjects: the native elements the harmonized model has no field for."""


def _note(tag: str) -> Leaf:
    return Leaf(tag, f"notes[subject={tag}].content", required=True)


IMPORTED_VEHICLE_LIST = Group(
    "ImportedVehicleList",
    children=(
        Group(
            "ImportedVehicle",
            path="goods",
            many=True,
            required=True,
            children=(
                Leaf("SequenceNo", "sequence", INT, required=True),
                _note("CodeNumber"),
                _note("MarkAsVehicle"),
                _note("TradeMark"),
                _note("ModelType"),
                Leaf("VehicleType", "description", required=True),
                _note("EngineType"),
                _note("ProductionYear"),
                _note("ChassisNumber"),
                _note("EngineNumber"),
                _note("VehicleEngineStatus"),
                _note("TechnicalSpecCode"),
                Leaf("VehicleUnitPrice", "fob_value.value", DECIMAL, required=True),
                Leaf("Currency", "fob_value.currency", required=True),
                _note("VehicleColor"),
            ),
        ),
    ),
)
"""The imported vehicle list, in the XSD's sequence order."""


class MotImportedVehicleList(ContentFormat):
    """MOT Vietnam Register imported vehicle list (``ImportedVehicleList``, no namespace)."""

    name = "mot-vr-imported-vehicles"
    description = "MOT Vietnam Register: imported vehicle list of a quality-inspection registration."
    spec = IMPORTED_VEHICLE_LIST
    xsd = "vnsw/mot_vr/ImportedVehicleList.xsd"


register(MotImportedVehicleList)
