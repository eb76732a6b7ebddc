"""MOT maritime procedures: a ship's entry into and exit from a Vietnamese port (the IMO FAL declarations).

Corpus folder ``mot_maritime_content_xsd`` (the Ministry of Transport's content schemas of the 2014 generation,
strict sequences of ``xs:string`` elements, no namespace, every element required). Each declaration travels in
the VNSW envelope (:mod:`mappings.vnsw`) with the Subject codes of the MOT system (``vn.gt.tichhop.message
.MessageType`` of the same source):

============  =====  ==============================================  ==========================================
documentType  type   content                                         harmonized
============  =====  ==============================================  ==========================================
1 entry,      30     ``NoticeOfArrival``                             ship_call: ship, owner, agent, voyage
2 exit,       50     ``GeneralDeclaration`` (FAL form 1)             ship_call: ship, agent, voyage, cargo
3 transit     51     ``CrewLists`` (FAL form 5)                      ship_call.crew
              52     ``PassengerList`` (FAL form 6)                  ship_call.passengers
              53     ``DangerousGoodsManifest`` (FAL form 7)         ship_call.dangerous_goods
              54     ``ShipsStoresDeclaration`` (FAL form 3)         ship_call.stores
              55     ``CrewEffectsDeclaration`` (FAL form 4)         ship_call.crew_effects
              56     ``HealthQuanrantineDeclare`` (sic)              ship_call.health
              57     ``DeclarationForPlantQuarantine``               ship_call.plants_on_board
              58     ``DeclarationForAnimalQuarantine``              ship_call.animals_on_board
              99     the whole call: the general declaration, then   the whole ship_call
                     each declaration above the call carries
              60     ``PortClearance`` (the administration's)        permit (issued), ship_call: ship, etd
              72     ``PortEntryPermit`` (the administration's)      permit (issued), ship_call: ship, etd
1, 3          10     ``ShipSecurityNotification`` (the agent's)      ship_call: ship, agent, security, eta
1 entry       40     ``ConfirmationOfArrival`` (the agent's)         ship_call: ship, port, berth, arrival time
1, 2, 3       70     ``ShiftingOrder`` (the port authority's)        permit (issued), ship_call.shifting, ship
3 transit     80     ``AcceptanceForTransit`` (the administration's) permit (issued), ship, transit, etd
              90     ``PermissionForTransit`` (the administration's) permit (issued), ship, transit, etd
============  =====  ==============================================  ==========================================

Functions ``01`` (declared) and ``02`` (amended, the MOT ``KHAI_SUA``); the port clearance (type 60) and the port
entry permit (type 72, the MOT ``GIAY_PHEP_ROI_CANG_BO_GTVT_CAP_KHI_XUAT_CANH_VIET_CAM``) the maritime
administration sends back with function ``01``, which states ``permit.decision = issued``; so are the shifting order
(type 70, ``LENH_DIEU_DONG``: the order's number, authority, officer and date are ``permit``, the move
``ship_call.shifting``), the acceptance of a transit (80, ``THONG_BAO_CHO_PHEP_TAU_QUA_CANH``) and the transit
permit (90, ``GIAY_PHEP_QUA_CANH``) of documentType ``3`` (``QUA_CANH``). The shifting order's schema types the
draughts, length overall and deadweight ``xs:double``, so they are required on output. A transit (documentType
``3``) has the declarations 50-58 and the whole call 99 but not the notice of arrival (the MOT transit notice, type
32, is not mapped) nor the port clearance and entry permit.

Type ``99`` is the MOT dossier code (``HO_SO``); its content, one section per FAL form in the order above, is this
gateway's: a declaration appears when the call carries its part (a crew list when there is a crew), the general
declaration always. It is what a shipping agent submits once for the whole call, and what a projection of the
call for one agency is written as.

Every section repeats the ship (name, IMO number, call sign, flag, master) and the voyage as its form does;
``DocumentName`` is the call's reference and, in the notice of arrival and the general declaration,
``DocumentReference`` the reference of the version an amendment amends (``ship_call.amends``). The schemas require
every element, so an element without a value is written empty (:attr:`~mappings.xmlspec.Leaf.blank`); the call's
reference and the ship's name, each person's family name, each dangerous goods item's UN number and proper shipping
name, each stores article's name and each crew effect's crew member are required. Not carried: the MMSI, identity
documents' issuing state and expiry, the ETD (but in the port clearance and entry permit), stowage of dangerous
goods, crew effects' quantity, the sanitation certificate's expiry (``json`` carries all of them); ports, harbour
regions, anchorages, wastes, cargo lists, health questions and attachments beyond those mapped below are
written empty and not read. The general declaration has no purpose of call and no owner contacts (the notice of
arrival has). Dates and times are read as ``yyyy-MM-dd[ HH:mm:ss]`` or ``dd/MM/yyyy[ HH:mm[:ss]]`` (Vietnam time
without an offset) and written as ``yyyy-MM-dd[ HH:mm:ss]``; flags as ``1``/``0`` (``true``/``false`` read too); the
IMO number with or without its ``IMO`` prefix; lists of ports separated by ``;``, ``,`` or spaces.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from typing import Any

from mappings.vnsw import VN_TZ, VNSW_DATETIME, VNSW_UNIT, VnswMessage, register_message
from mappings.xmlspec import BOOL, DECIMAL, INT, TEXT, Codec, Group, Leaf

__all__ = [
    "ENTRY",
    "EXIT",
    "TRANSIT",
    "PROCEDURES",
    "ALL_PROCEDURES",
    "SHIP_CALL_TYPE",
    "FUNCTIONS",
    "IMO",
    "FLAG",
    "MOT_DATE",
    "MOT_DATETIME",
    "LOCODES",
    "NOTICE_OF_ARRIVAL",
    "GENERAL_DECLARATION",
    "CREW_LIST",
    "PASSENGER_LIST",
    "DANGEROUS_GOODS_MANIFEST",
    "SHIPS_STORES",
    "CREW_EFFECTS",
    "HEALTH",
    "PLANT_QUARANTINE",
    "ANIMAL_QUARANTINE",
    "PORT_ENTRY_PERMIT",
    "PORT_CLEARANCE",
    "CONFIRMATION_OF_ARRIVAL",
    "SHIP_SECURITY_NOTIFICATION",
    "SHIFTING_ORDER",
    "PERMISSION_FOR_TRANSIT",
    "ACCEPTANCE_FOR_TRANSIT",
    "SHIP_CALL",
    "FORMS",
    "PERMITS",
    "NOTICES",
    "ORDERS",
]

ENTRY = "1"
"""documentType of a ship's entry (arrival from abroad, the MOT ``NHAP_CANH``)."""
EXIT = "2"
"""documentType of a ship's exit (departure abroad, the MOT ``XUAT_CANH``)."""
PROCEDURES = {ENTRY: "entry", EXIT: "exit"}
TRANSIT = "3"
"""documentType of a ship's transit through Vietnamese waters (the MOT ``QUA_CANH``)."""
ALL_PROCEDURES = {**PROCEDURES, TRANSIT: "transit"}
SHIP_CALL_TYPE = "99"
"""Message type of the whole ship call in one envelope."""
FUNCTIONS = {"01": "declared", "02": "amended"}

_IMO_PREFIX = re.compile(r"^IMO", re.IGNORECASE)


def _read_imo(text: str) -> str:
    return _IMO_PREFIX.sub("", re.sub(r"[\s.-]", "", text))


IMO = Codec("IMO number (7 digits, 'IMO' prefix accepted)", _read_imo, str)
FLAG = Codec("flag (1/0, true/false)", BOOL.read, lambda b: "1" if b else "0")

_DMY = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?$")


def _read_datetime(text: str) -> dt.datetime:
    m = _DMY.match(text)
    if m is None:
        return VNSW_DATETIME.read(text)
    day, month, year, hour, minute, second = (int(g) if g else 0 for g in m.groups())
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=VN_TZ)


def _read_date(text: str) -> dt.date:
    m = _DMY.match(text)
    if m is not None:
        return dt.date(int(m[3]), int(m[2]), int(m[1]))
    return dt.date.fromisoformat(text[:10])


def _read_locodes(text: str) -> list[str]:
    return [code for code in re.split(r"[;,\s]+", text) if code]


def _write_locodes(codes: Any) -> str:
    return ";".join(codes)


MOT_DATETIME = Codec(
    "MOT time (yyyy-MM-dd HH:mm:ss or dd/MM/yyyy HH:mm:ss, Vietnam time)", _read_datetime, VNSW_DATETIME.write
)
MOT_DATE = Codec("date (yyyy-MM-dd or dd/MM/yyyy)", _read_date, lambda d: d.isoformat())
LOCODES = Codec("UN/LOCODEs separated by ';', ',' or spaces", _read_locodes, _write_locodes)


def _blank(tag: str) -> Leaf:
    """A native element the harmonized model does not carry: written empty, not read."""
    return Leaf(tag, blank=True)


def _mapped(tag: str, path: str, codec: Codec = TEXT, sets: tuple[tuple[str, Any], ...] = ()) -> Leaf:
    """An optional mapped element (written empty without a value)."""
    return Leaf(tag, path, codec, sets=sets, blank=True)


def _required(tag: str, path: str, codec: Codec = TEXT) -> Leaf:
    return Leaf(tag, path, codec, required=True)


_CARGO_LIST = Group(
    "CargoList",
    required=True,
    children=(
        _blank("Category"),
        _blank("Type"),
        _blank("Name"),
        _blank("Description"),
        _blank("Quantity"),
        _blank("Unit"),
    ),
)


_WASTE = tuple(Group(f"Waste{n:02}", required=True, children=(_blank("Weight"), _blank("Unit"))) for n in range(1, 7))
"""The six waste categories of the notice of arrival and the general declaration, written empty."""


NOTICE_OF_ARRIVAL = Group(
    "NoticeOfArrival",
    required=True,
    children=(
        _required("DocumentName", "ship_call.reference"),
        _mapped("DocumentReference", "ship_call.amends"),
        _blank("DocumentYear"),
        _blank("UserCreated"),
        _mapped("IsArrival", "ship_call.voyage.arrival", FLAG),
        _required("NameOfShip", "ship_call.ship.name"),
        _mapped("ShipTypeCode", "ship_call.ship.ship_type"),
        _mapped("IMONumber", "ship_call.ship.imo_number", IMO),
        _mapped("CallSign", "ship_call.ship.call_sign"),
        _mapped("VoyageNumber", "ship_call.voyage.voyage_number"),
        _mapped("FlagStateOfShip", "ship_call.ship.flag"),
        _mapped("NameOfMaster", "ship_call.ship.master"),
        _mapped("PortOfArrivalCode", "ship_call.voyage.port_of_call"),
        _blank("PortHarbourCode"),
        _blank("PortRegionCode"),
        _mapped("PortWharfCode", "ship_call.voyage.berth"),
        _mapped("TimeOfArrival", "ship_call.voyage.eta", MOT_DATETIME),
        _mapped("LastPortOfCallCode", "ship_call.voyage.last_port"),
        _mapped("CertificateOfRegistryNumber", "ship_call.ship.registry_certificate"),
        _mapped("CertificateOfRegistryDate", "ship_call.ship.registry_date", MOT_DATE),
        _mapped("CertificateOfRegistryPortName", "ship_call.ship.registry_port"),
        _mapped("NameOfShipOwners", "ship_call.ship.owner.name"),
        _mapped("AddressOfShipOwners", "ship_call.ship.owner.address.line1"),
        _mapped("ShipOwnerStateCode", "ship_call.ship.owner.address.country"),
        _mapped("ShipOwnerPhone", "ship_call.ship.owner.phone"),
        _mapped("ShipOwnerFax", "ship_call.ship.owner.fax"),
        _mapped("ShipOwnerEmail", "ship_call.ship.owner.email"),
        _mapped("LOA", "ship_call.ship.length_overall", DECIMAL),
        _blank("LOAUNIT"),
        _mapped("Breadth", "ship_call.ship.breadth", DECIMAL),
        _blank("BreadthUnit"),
        _blank("ClearanceHeight"),
        _blank("ClearanceHeightUnit"),
        _mapped("ShownDraftxF", "ship_call.voyage.draught_forward", DECIMAL),
        _blank("UnitShownDraftxF"),
        _mapped("ShownDraftxA", "ship_call.voyage.draught_aft", DECIMAL),
        _blank("UnitShownDraftxA"),
        _mapped("GT", "ship_call.ship.gross_tonnage", DECIMAL),
        _blank("GTUNIT"),
        _mapped("DWT", "ship_call.ship.deadweight", DECIMAL),
        _blank("DWTUNIT"),
        _mapped("TaxCodeOfShipownersAgents", "ship_call.agent.identifier"),
        _mapped("NameOfShipownersAgents", "ship_call.agent.name"),
        _mapped("ShipAgencyAddress", "ship_call.agent.address.line1"),
        _mapped("ShipAgencyPhone", "ship_call.agent.phone"),
        _mapped("ShipAgencyFax", "ship_call.agent.fax"),
        _mapped("ShipAgencyEmail", "ship_call.agent.email"),
        _mapped("PurposeCode", "ship_call.voyage.purpose_of_call"),
        _blank("QuantityOfCargo"),
        _blank("UnitQuantityofCargo"),
        _mapped("TypeOfCargo", "ship_call.cargo_summary"),
        _mapped("NumberOfCrew", "ship_call.crew_count", INT),
        _mapped("NumberOfPassengers", "ship_call.passenger_count", INT),
        _blank("OtherPersons"),
        _mapped("NetTonnage", "ship_call.ship.net_tonnage", DECIMAL),
        _blank("NetTonnageUnit"),
        _blank("PositionOfShipInPort"),
        Group(
            "BriefParticularsOfVoyage",
            required=True,
            children=(
                _mapped("PreviousPortsOfCall", "ship_call.voyage.previous_ports", LOCODES),
                _mapped("SubsequentPortsOfCall", "ship_call.voyage.subsequent_ports", LOCODES),
                _blank("DischargedPorts"),
            ),
        ),
        _blank("DO"),
        _blank("FO"),
        _blank("FW"),
        _blank("RemainingCargo"),
        _blank("ShipRequirementsInTermsOfWaste"),
        *_WASTE,
        _blank("PlaceOfReception"),
        _blank("NumberCargoDeclaration"),
        _blank("NumberShipStoreDeclaration"),
        _blank("NumberCrewList"),
        _blank("NumberPassengerList"),
        _blank("NumberCrewEffectsDeclaration"),
        _blank("NumberHealthMaritimeDeclaration"),
        _blank("PortClearanceNo"),
        _blank("Remarks"),
        _mapped("SignPlace", "signatory.place"),
        _mapped("SignDate", "signatory.signed_at", MOT_DATETIME),
        _blank("MasterSigned"),
        _CARGO_LIST,
        _blank("TimeOfPORTArrival"),
        _blank("TimeOfPilotOnBoard"),
        _blank("TugBoat"),
    ),
)
"""The notice of arrival (type 30): the ship, its agent and owner, the voyage, the cargo in brief."""


GENERAL_DECLARATION = Group(
    "GeneralDeclaration",
    required=True,
    children=(
        _required("DocumentName", "ship_call.reference"),
        _blank("DocumentYear"),
        _mapped("DocumentReference", "ship_call.amends"),
        _blank("UserCreated"),
        _mapped("IsArrival", "ship_call.voyage.arrival", FLAG),
        _required("NameOfShip", "ship_call.ship.name"),
        _mapped("ShipTypeCode", "ship_call.ship.ship_type"),
        _mapped("IMONumber", "ship_call.ship.imo_number", IMO),
        _mapped("CallSign", "ship_call.ship.call_sign"),
        _mapped("VoyageNumber", "ship_call.voyage.voyage_number"),
        _mapped("PortOfArrivalCode", "ship_call.voyage.port_of_call"),
        _mapped("DateOfArrival", "ship_call.voyage.eta", MOT_DATETIME),
        _blank("PortHarbourCode"),
        _blank("PortRegionCode"),
        _mapped("PortWharfCode", "ship_call.voyage.berth"),
        _mapped("FlagStateOfShip", "ship_call.ship.flag"),
        _mapped("NameOfMaster", "ship_call.ship.master"),
        _mapped("LastPortOfCallCode", "ship_call.voyage.last_port"),
        _mapped("CertificateOfRegistryNumber", "ship_call.ship.registry_certificate"),
        _mapped("CertificateOfRegistryDate", "ship_call.ship.registry_date", MOT_DATE),
        _mapped("CertificateOfRegistryPortName", "ship_call.ship.registry_port"),
        _mapped("TaxCodeOfShipownersAgents", "ship_call.agent.identifier"),
        _mapped("NameOfShipownersAgents", "ship_call.agent.name"),
        _mapped("ShipAgencyAddress", "ship_call.agent.address.line1"),
        _mapped("ShipAgencyPhone", "ship_call.agent.phone"),
        _mapped("ShipAgencyFax", "ship_call.agent.fax"),
        _mapped("ShipAgencyEmail", "ship_call.agent.email"),
        _mapped("GrossTonnage", "ship_call.ship.gross_tonnage", DECIMAL),
        _blank("GrossTonnageUnit"),
        _mapped("NetTonnage", "ship_call.ship.net_tonnage", DECIMAL),
        _blank("NetTonnageUnit"),
        _blank("PositionOfShipInPort"),
        Group(
            "BriefParticularsOfVoyage",
            required=True,
            children=(
                _mapped("PreviousPortsOfCall", "ship_call.voyage.previous_ports", LOCODES),
                _mapped("SubsequentPortsOfCall", "ship_call.voyage.subsequent_ports", LOCODES),
                _blank("DischargedPorts"),
            ),
        ),
        _blank("RemainingCargo"),
        _mapped("BriefDescriptionOfTheCargo", "ship_call.cargo_summary"),
        _mapped("NumberOfCrew", "ship_call.crew_count", INT),
        _mapped("NumberOfPassengers", "ship_call.passenger_count", INT),
        _blank("ShipRequirementsInTermsOfWaste"),
        *_WASTE,
        _blank("PlaceOfReception"),
        _blank("Remarks"),
        _blank("NumberCargoDeclaration"),
        _blank("NumberShipStoreDeclaration"),
        _blank("NumberCrewList"),
        _blank("NumberPassengerList"),
        _blank("NumberCrewEffectsDeclaration"),
        _blank("NumberHealthMaritimeDeclaration"),
        _mapped("SignPlace", "signatory.place"),
        _mapped("SignDate", "signatory.signed_at", MOT_DATETIME),
        _blank("MasterSigned"),
        _CARGO_LIST,
        _blank("Link"),
        _blank("QCCode"),
        _blank("NumberOfPortClearance"),
        _mapped("LOA", "ship_call.ship.length_overall", DECIMAL),
        _blank("LOAUNIT"),
        _mapped("Breadth", "ship_call.ship.breadth", DECIMAL),
        _blank("BreadthUnit"),
        _blank("ClearanceHeight"),
        _blank("ClearanceHeightUnit"),
        _mapped("ShownDraftxF", "ship_call.voyage.draught_forward", DECIMAL),
        _blank("UnitShownDraftxF"),
        _mapped("ShownDraftxA", "ship_call.voyage.draught_aft", DECIMAL),
        _blank("UnitShownDraftxA"),
        _mapped("DWT", "ship_call.ship.deadweight", DECIMAL),
        _blank("DWTUNIT"),
        _blank("TimeOfPORTArrival"),
        _blank("TimeOfPilotOnBoard"),
        _blank("TugBoat"),
        _blank("DO"),
        _blank("FO"),
        _blank("FW"),
        _mapped("NameOfShipOwners", "ship_call.ship.owner.name"),
        _mapped("AddressOfShipOwners", "ship_call.ship.owner.address.line1"),
    ),
)
"""The general declaration, IMO FAL form 1 (type 50)."""


CREW_LIST = Group(
    "CrewLists",
    required=True,
    children=(
        _required("DocumentName", "ship_call.reference"),
        _blank("DocumentYear"),
        _blank("UserCreated"),
        _mapped("IsArrival", "ship_call.voyage.arrival", FLAG),
        _required("NameOfShip", "ship_call.ship.name"),
        _mapped("IMONumber", "ship_call.ship.imo_number", IMO),
        _mapped("CallSign", "ship_call.ship.call_sign"),
        _mapped("VoyageNumber", "ship_call.voyage.voyage_number"),
        _mapped("PortOfArrivalCode", "ship_call.voyage.port_of_call"),
        _blank("AnchorageCode"),
        _mapped("DateOfArrival", "ship_call.voyage.eta", MOT_DATETIME),
        _mapped("FlagStateOfShip", "ship_call.ship.flag"),
        _mapped("LastPortOfCallCode", "ship_call.voyage.last_port"),
        Group(
            "CrewList",
            required=True,
            children=(
                Group(
                    "Crew",
                    path="ship_call.crew",
                    many=True,
                    required=True,
                    children=(
                        _blank("CrewCode"),
                        _required("FamilyName", "family_name"),
                        _mapped("GivenName", "given_names"),
                        _mapped("RankCode", "rank_or_rating"),
                        _mapped("Nationality", "nationality"),
                        _mapped("DateOfBirth", "date_of_birth", MOT_DATE),
                        _mapped("PlaceOfBirth", "place_of_birth"),
                        _mapped("PassportNumber", "identity_document.number"),
                        _mapped("PassportTypeCode", "identity_document.type"),
                        _mapped("Gender", "gender"),
                        _blank("GoAshore"),
                    ),
                ),
            ),
        ),
        _mapped("SignPlace", "signatory.place"),
        _mapped("SignDate", "signatory.signed_at", MOT_DATETIME),
        _blank("MasterSigned"),
    ),
)
"""The crew list, IMO FAL form 5 (type 51)."""


PASSENGER_LIST = Group(
    "PassengerList",
    required=True,
    children=(
        _blank("PassengerList"),
        _required("DocumentName", "ship_call.reference"),
        _blank("DocumentYear"),
        _blank("UserCreated"),
        _mapped("isArrival", "ship_call.voyage.arrival", FLAG),
        _required("NameOfShip", "ship_call.ship.name"),
        _mapped("PortOfArrivalCode", "ship_call.voyage.port_of_call"),
        _blank("AnchorageCode"),
        _mapped("DateOfArrival", "ship_call.voyage.eta", MOT_DATETIME),
        _mapped("IMONumber", "ship_call.ship.imo_number", IMO),
        _mapped("CallSign", "ship_call.ship.call_sign"),
        _mapped("VoyageNumber", "ship_call.voyage.voyage_number"),
        _mapped("FlagStateOfShip", "ship_call.ship.flag"),
        Group(
            "ListPassengers",
            required=True,
            children=(
                Group(
                    "Passenger",
                    path="ship_call.passengers",
                    many=True,
                    required=True,
                    children=(
                        _blank("PassengerCode"),
                        _required("FamilyName", "family_name"),
                        _mapped("GivenName", "given_names"),
                        _mapped("Nationality", "nationality"),
                        _mapped("BirthDay", "date_of_birth", MOT_DATE),
                        _mapped("BirthPlace", "place_of_birth"),
                        _mapped("TypeOfIdentity", "identity_document.type"),
                        _mapped("SerialNumberOfIdentity", "identity_document.number"),
                        _mapped("PortOfEmbarkation", "port_of_embarkation"),
                        _mapped("PortOfDisembarkation", "port_of_disembarkation"),
                        _mapped("IsTransit", "transit", FLAG),
                        _mapped("Gender", "gender"),
                        _blank("GoAshore"),
                    ),
                ),
            ),
        ),
        _mapped("SignPlace", "signatory.place"),
        _mapped("SignDate", "signatory.signed_at", MOT_DATETIME),
        _blank("MasterSigned"),
    ),
)
"""The passenger list, IMO FAL form 6 (type 52)."""


DANGEROUS_GOODS_MANIFEST = Group(
    "DangerousGoodsManifest",
    required=True,
    children=(
        _required("DocumentName", "ship_call.reference"),
        _blank("DocumentYear"),
        _blank("UserCreated"),
        _required("NameOfShip", "ship_call.ship.name"),
        _mapped("FlagStateOfShip", "ship_call.ship.flag"),
        _mapped("MasterName", "ship_call.ship.master"),
        _mapped("IMONumber", "ship_call.ship.imo_number", IMO),
        _mapped("Callsign", "ship_call.ship.call_sign"),
        _mapped("VoyageNumber", "ship_call.voyage.voyage_number"),
        _blank("PortOfLoadingCode"),
        _blank("PortOfDischargeCode"),
        _mapped("ShippingAgent", "ship_call.agent.name"),
        _blank("AdditionalRemark"),
        _mapped("SignPlace", "signatory.place"),
        _mapped("SignDate", "signatory.signed_at", MOT_DATETIME),
        _blank("MasterSigned"),
        Group(
            "ListDangerousGoods",
            required=True,
            children=(
                Group(
                    "DangerousGoodsItem",
                    path="ship_call.dangerous_goods",
                    many=True,
                    required=True,
                    children=(
                        _blank("DangerousGoodItemCode"),
                        _mapped("RefNumber", "reference"),
                        _mapped("MarksContainer", "marks"),
                        _blank("NumberContainer"),
                        _mapped("NumberOfPackage", "package_count", INT),
                        _mapped("KindOfPackages", "package_type"),
                        _required("ProperShippingName", "proper_shipping_name"),
                        _mapped("GoodClass", "imo_class"),
                        _required("UNNumber", "un_number"),
                        _mapped("PackingGroup", "packing_group"),
                        _mapped("SubsidiaryRisk", "subsidiary_risk"),
                        _mapped("FlashPoint", "flash_point"),
                        _mapped("MarinePollutant", "marine_pollutant", FLAG),
                        _mapped("GrossWeight", "quantity.value", DECIMAL, sets=(("quantity.unit", "KGM"),)),
                        _mapped("Ems", "ems"),
                    ),
                ),
            ),
        ),
    ),
)
"""The dangerous goods manifest, IMO FAL form 7 (type 53); the gross weight is the item's quantity in KGM."""


SHIPS_STORES = Group(
    "ShipsStoresDeclaration",
    required=True,
    children=(
        _required("DocumentName", "ship_call.reference"),
        _blank("DocumentYear"),
        _blank("UserCreated"),
        _mapped("isArrival", "ship_call.voyage.arrival", FLAG),
        _required("NameOfShip", "ship_call.ship.name"),
        _mapped("IMONumber", "ship_call.ship.imo_number", IMO),
        _mapped("Callsign", "ship_call.ship.call_sign"),
        _mapped("VoyageNumber", "ship_call.voyage.voyage_number"),
        _mapped("NationalityOfShip", "ship_call.ship.flag"),
        _mapped("PortOfArrivalCode", "ship_call.voyage.port_of_call"),
        _blank("AnchorageCode"),
        _mapped("DateOfArrival", "ship_call.voyage.eta", MOT_DATETIME),
        _mapped("LastPortOfCallCode", "ship_call.voyage.last_port"),
        _blank("NumberOfPersonsOnBoat"),
        _blank("PeriodOfStay"),
        _blank("PeriodOfStayUnit"),
        _mapped("NameOfMaster", "ship_call.ship.master"),
        _mapped("SignPlace", "signatory.place"),
        _mapped("SignDate", "signatory.signed_at", MOT_DATETIME),
        _blank("MasterSigned"),
        Group(
            "ListShipsStores",
            required=True,
            children=(
                Group(
                    "ShipsStoreItem",
                    path="ship_call.stores",
                    many=True,
                    required=True,
                    children=(
                        _blank("ShipsStoreItemCode"),
                        _required("NameOfArticle", "name"),
                        _mapped("Quantity", "quantity.value", DECIMAL, sets=(("quantity.unit", "H87"),)),
                        _mapped("QuantityUnit", "quantity.unit", VNSW_UNIT),
                        _mapped("LocationOnBoat", "location"),
                        _mapped("UseInBoat", "use"),
                    ),
                ),
            ),
        ),
    ),
)
"""The ship's stores declaration, IMO FAL form 3 (type 54)."""


CREW_EFFECTS = Group(
    "CrewEffectsDeclaration",
    required=True,
    children=(
        _required("DocumentName", "ship_call.reference"),
        _blank("DocumentYear"),
        _blank("UserCreated"),
        _required("NameOfShip", "ship_call.ship.name"),
        _mapped("IMONumber", "ship_call.ship.imo_number", IMO),
        _mapped("Callsign", "ship_call.ship.call_sign"),
        _mapped("VoyageNumber", "ship_call.voyage.voyage_number"),
        _mapped("FlagStateOfShip", "ship_call.ship.flag"),
        _mapped("NameOfMaster", "ship_call.ship.master"),
        Group(
            "ListCrewEffects",
            required=True,
            children=(
                Group(
                    "CrewEffectItem",
                    path="ship_call.crew_effects",
                    many=True,
                    required=True,
                    children=(
                        _blank("CrewEffectItemCode"),
                        _required("FamilyName", "crew_member"),
                        _mapped("GivenName", "given_names"),
                        _mapped("RankOrRatingCode", "rank_or_rating"),
                        _mapped("EffectsIneligibleForRelief", "description"),
                    ),
                ),
            ),
        ),
        _mapped("SignPlace", "signatory.place"),
        _mapped("SignDate", "signatory.signed_at", MOT_DATETIME),
        _blank("MasterSigned"),
    ),
)
"""The crew's effects declaration, IMO FAL form 4 (type 55)."""


HEALTH = Group(
    "HealthQuanrantineDeclare",
    required=True,
    children=(
        Group(
            "DeclarationOfHealth",
            required=True,
            children=(
                _required("DocumentName", "ship_call.reference"),
                _blank("DocumentYear"),
                _blank("UserCreated"),
                _mapped("SubmittedPortCode", "ship_call.voyage.port_of_call"),
                _blank("DateSubmitted"),
                _required("NameOfShip", "ship_call.ship.name"),
                _blank("Registration"),
                _mapped("IMONumber", "ship_call.ship.imo_number", IMO),
                _mapped("ArrivingFrom", "ship_call.voyage.last_port"),
                _mapped("SailingTo", "ship_call.voyage.next_port"),
                _mapped("Nationality", "ship_call.ship.flag"),
                _mapped("MasterName", "ship_call.ship.master"),
                _mapped("GrossTonnage", "ship_call.ship.gross_tonnage", DECIMAL),
                _blank("GrossTonnageUnit"),
                _mapped("Tonnage", "ship_call.ship.net_tonnage", DECIMAL),
                _blank("TonnageUnit"),
                _mapped("CertificateCarried", "ship_call.health.sanitation_certificate_number"),
                _mapped("IssuedAt", "ship_call.health.sanitation_certificate_place"),
                _blank("IssueDate"),
                _blank("ReInspectionRequired"),
                _blank("IsShipVisitedWHO"),
                _blank("VisitedWHOPortCode"),
                _blank("DateOfVisitedWHO"),
                _mapped("ListPortName", "ship_call.health.last_ports_visited", LOCODES),
                _blank("DoctorName"),
                _blank("DoctorSignDate"),
            ),
        ),
        Group(
            "HealthCrewPassengerList",
            required=True,
            children=(
                Group(
                    "HealthCrewPassenger",
                    required=True,
                    children=(
                        _blank("HealthCrewPassengerCode"),
                        _blank("PassengerOrCrewCode"),
                        _blank("ClassOrRating"),
                        _blank("StateVisitedCode"),
                        _blank("PortVisitedCode"),
                        _blank("FromDate"),
                        _blank("ToDate"),
                    ),
                ),
            ),
        ),
        Group(
            "HealthQuestion",
            required=True,
            children=(
                _blank("HealthQuestionCode"),
                _blank("PersonDied"),
                _mapped("PersonDiedNo", "ship_call.health.deaths", INT),
                _blank("PersonDiedReport"),
                _mapped("IsInfectious", "ship_call.health.suspected_infectious", FLAG),
                _blank("InfectiousReport"),
                _blank("IllPassengersGreaterNomal"),
                _mapped("IllPassengersNo", "ship_call.health.ill_persons", INT),
                _blank("IllPersonsOnBoard"),
                _mapped("IllPersonsReport", "ship_call.health.remarks"),
                _blank("MedicalPractitionerConsulted"),
                _blank("MedicalTreatmentOrAdvice"),
                _blank("InfectionOrSpreadOfDisease"),
                _blank("InfectionsReport"),
                _blank("IsSanitary"),
                _blank("SanitaryDes"),
                _blank("IsStowaways"),
                _blank("JoinShip"),
                _blank("IsAnimal"),
            ),
        ),
        Group(
            "AttachmentDeclarationHealth",
            required=True,
            children=(
                Group(
                    "Attachment",
                    required=True,
                    children=(
                        _blank("AttachmentCode"),
                        _blank("PassengerOrCrewCode"),
                        _blank("Name"),
                        _blank("Age"),
                        _blank("Sex"),
                        _blank("Nationality"),
                        _blank("PortJoinVesselCode"),
                        _blank("DateJoinVessel"),
                        _blank("ClassOrRating"),
                        _blank("NatureOfIllness"),
                        _blank("DateOfOnsetOfSymptom"),
                        _blank("ReportedMedicalOfficer"),
                        _blank("DisposalOfCase"),
                        _blank("MedicinesOrOther"),
                        _blank("Comments"),
                    ),
                ),
            ),
        ),
        _mapped("SignPlace", "signatory.place"),
        _mapped("SignDate", "signatory.signed_at", MOT_DATETIME),
        _blank("MasterSigned"),
    ),
)
"""The maritime declaration of health (type 56): the first DeclarationOfHealth and HealthQuestion are read."""


ANIMAL_QUARANTINE = Group(
    "DeclarationForAnimalQuarantine",
    required=True,
    children=(
        _required("DocumentName", "ship_call.reference"),
        _blank("DocumentYear"),
        _blank("UserCreated"),
        _required("NameOfShip", "ship_call.ship.name"),
        _mapped("FlagStateOfShip", "ship_call.ship.flag"),
        _mapped("NumberOfCrew", "ship_call.crew_count", INT),
        _mapped("NumberOfPassengers", "ship_call.passenger_count", INT),
        _mapped("LastPortOfCallCode", "ship_call.voyage.last_port"),
        _mapped("NextPortOfCallCode", "ship_call.voyage.next_port"),
        _blank("AnimalNameFirst"),
        _blank("AnimalNameBetween"),
        _mapped("AnimalNameThis", "ship_call.animals_on_board"),
        _mapped("NameOfMaster", "ship_call.ship.master"),
        _mapped("SignPlace", "signatory.place"),
        _mapped("SignDate", "signatory.signed_at", MOT_DATETIME),
        _blank("MasterSigned"),
    ),
)
"""The declaration for animal quarantine (type 58)."""


PLANT_QUARANTINE = Group(
    "DeclarationForPlantQuarantine",
    required=True,
    children=(
        _required("DocumentName", "ship_call.reference"),
        _blank("DocumentYear"),
        _blank("UserCreated"),
        _required("NameOfShip", "ship_call.ship.name"),
        _mapped("FlagStateOfShip", "ship_call.ship.flag"),
        _mapped("NameOfMaster", "ship_call.ship.master"),
        _blank("DoctorName"),
        _mapped("NumberOfCrew", "ship_call.crew_count", INT),
        _mapped("NumberOfPassengers", "ship_call.passenger_count", INT),
        _mapped("LastPortOfCallCode", "ship_call.voyage.last_port"),
        _mapped("NextPortOfCallCode", "ship_call.voyage.next_port"),
        _blank("FirstPortOfLoadingCode"),
        _blank("DateOfDeparture"),
        _blank("PlantNameFirst"),
        _blank("PlantNameBetween"),
        _mapped("PlantNameThis", "ship_call.plants_on_board"),
        _mapped("SignPlace", "signatory.place"),
        _mapped("SignDate", "signatory.signed_at", MOT_DATETIME),
        _blank("MasterSigned"),
    ),
)
"""The declaration for plant quarantine (type 57)."""


_ATTACHED_FILE = Group(
    "AttachedFile",
    required=True,
    children=(
        _blank("AttachedTypeCode"),
        _blank("AttachedTypeName"),
        _blank("AttachedDocName"),
        _blank("AttachedNote"),
        _blank("FullFileName"),
        _blank("SHA1FileContent"),
        _blank("Base64FileContent"),
        _mapped("FileURL", "document.link"),
    ),
)

PORT_ENTRY_PERMIT = Group(
    "PortEntryPermit",
    required=True,
    children=(
        _required("NumberPortClearance", "permit.number"),
        _required("DocumentName", "ship_call.reference"),
        _blank("DocumentYear"),
        _mapped("PortofAuthority", "permit.department"),
        _required("NameOfShip", "ship_call.ship.name"),
        _mapped("FlagStateOfShip", "ship_call.ship.flag"),
        _mapped("NumberOfCrews", "ship_call.crew_count", INT),
        _mapped("NumberOfPassengers", "ship_call.passenger_count", INT),
        _mapped("CallSign", "ship_call.ship.call_sign"),
        _mapped("NameOfMaster", "ship_call.ship.master"),
        _mapped("Cargo", "ship_call.cargo_summary"),
        _blank("VolumeCargo"),
        _blank("CargoUnit"),
        _blank("TransitCargo"),
        _blank("VolumeTransitCargo"),
        _blank("TransitCargoUnit"),
        _mapped("TimeOfDeparture", "ship_call.voyage.etd", MOT_DATETIME),
        _mapped("NextPortOfCallCode", "ship_call.voyage.next_port"),
        _mapped("ValidUntil", "permit.valid_until", MOT_DATETIME),
        _required("IssueDate", "permit.decision_date", MOT_DATETIME),
        _mapped("DirectorOfMaritimeAdministration", "permit.officer"),
        _mapped("CertificateNo", "document.number"),
        _mapped("GT", "ship_call.ship.gross_tonnage", DECIMAL),
        _blank("Representative"),
        _CARGO_LIST,
        Group(
            "AttachedFile",
            required=True,
            children=(
                _blank("AttachedTypeCode"),
                _blank("AttachedTypeName"),
                _blank("AttachedDocName"),
                _blank("AttachedNote"),
                _blank("FullFileName"),
                _blank("SHA1FileContent"),
                _mapped("FileURL", "document.link"),
            ),
        ),
    ),
)
"""The port entry permit the maritime administration issues (type 72): ``permit`` and the ship."""


PORT_CLEARANCE = Group(
    "PortClearance",
    required=True,
    children=(
        _required("NumberPortClearance", "permit.number"),
        _required("DocumentName", "ship_call.reference"),
        _blank("DocumentYear"),
        _mapped("PortofAuthority", "permit.department"),
        _required("NameOfShip", "ship_call.ship.name"),
        _mapped("FlagStateOfShip", "ship_call.ship.flag"),
        _mapped("GT", "ship_call.ship.gross_tonnage", DECIMAL),
        _mapped("NumberOfCrews", "ship_call.crew_count", INT),
        _mapped("NumberOfPassengers", "ship_call.passenger_count", INT),
        _mapped("CallSign", "ship_call.ship.call_sign"),
        _mapped("NameOfMaster", "ship_call.ship.master"),
        _mapped("Cargo", "ship_call.cargo_summary"),
        _blank("VolumeCargo"),
        _blank("CargoUnit"),
        _blank("TransitCargo"),
        _blank("VolumeTransitCargo"),
        _blank("TransitCargoUnit"),
        _mapped("TimeOfDeparture", "ship_call.voyage.etd", MOT_DATETIME),
        _mapped("NextPortOfCallCode", "ship_call.voyage.next_port"),
        _mapped("ValidUntil", "permit.valid_until", MOT_DATETIME),
        _required("IssueDate", "permit.decision_date", MOT_DATETIME),
        _blank("CreatedDate"),
        _blank("DateOfSign"),
        _mapped("DirectorOfMaritimeAdministration", "permit.officer"),
        _mapped("CertificateNo", "document.number"),
        _blank("Representative"),
        _CARGO_LIST,
        _ATTACHED_FILE,
    ),
)
"""The port clearance the maritime administration issues on exit (type 60): ``permit`` and the ship."""


SHIFTING_ORDER = Group(
    "ShiftingOrder",
    required=True,
    children=(
        _required("NumberShiftingOrder", "permit.number"),
        _required("DocumentName", "ship_call.reference"),
        _blank("DocumentYear"),
        _mapped("PortofAuthority", "permit.department"),
        _required("NameOfShip", "ship_call.ship.name"),
        _required("ShownDraftxF", "ship_call.voyage.draught_forward", DECIMAL),
        _blank("UnitShownDraftxF"),
        _required("ShownDraftxA", "ship_call.voyage.draught_aft", DECIMAL),
        _blank("UnitShownDraftxA"),
        _required("LOA", "ship_call.ship.length_overall", DECIMAL),
        _blank("LOAUNIT"),
        _required("DWT", "ship_call.ship.deadweight", DECIMAL),
        _blank("DWTUNIT"),
        _mapped("TugBoat", "ship_call.shifting.tugs"),
        Group("Chanel", required=True, children=(_blank("ChanelCode"), _blank("ChanelName"))),
        _mapped("From", "ship_call.shifting.from_berth"),
        _mapped("To", "ship_call.shifting.to_berth"),
        _mapped("FlagStateOfShip", "ship_call.ship.flag"),
        _mapped("AnchoringPortCode", "ship_call.voyage.port_of_call"),
        _mapped("PortHarbourCode", "ship_call.shifting.harbour"),
        _mapped("AnchoringPortWharfCode", "ship_call.shifting.wharf"),
        _mapped("ShiftingDate", "ship_call.shifting.shifting_at", MOT_DATETIME),
        _mapped("ReasonToShift", "ship_call.shifting.reason"),
        _required("IssueDate", "permit.decision_date", MOT_DATETIME),
        _mapped("DirectorOfMaritimeAdministration", "permit.officer"),
        _mapped("CertificateNo", "document.number"),
        _blank("Representative"),
        _ATTACHED_FILE,
        _mapped("TaxCodeOfShipownersAgents", "ship_call.agent.identifier"),
        _mapped("NameOfShipownersAgents", "ship_call.agent.name"),
        _mapped("ShipAgencyAddress", "ship_call.agent.address.line1"),
        _mapped("ShipAgencyPhone", "ship_call.agent.phone"),
        _mapped("ShipAgencyFax", "ship_call.agent.fax"),
        _mapped("ShipAgencyEmail", "ship_call.agent.email"),
    ),
)
"""The shifting order the port authority issues (type 70): ``permit`` (the order), ``ship_call.shifting`` (the move)
and the ship; the schema types the draughts, length and deadweight ``xs:double`` and requires them."""


PERMISSION_FOR_TRANSIT = Group(
    "PermissionForTransit",
    required=True,
    children=(
        _required("NumberPermissionForTransit", "permit.number"),
        _required("DocumentName", "ship_call.reference"),
        _blank("DocumentYear"),
        _mapped("PortofAuthority", "permit.department"),
        _required("NameOfShip", "ship_call.ship.name"),
        _mapped("FlagStateOfShip", "ship_call.ship.flag"),
        _mapped("GT", "ship_call.ship.gross_tonnage", DECIMAL),
        _mapped("NumberOfCrews", "ship_call.crew_count", INT),
        _mapped("NumberOfPassengers", "ship_call.passenger_count", INT),
        _mapped("CallSign", "ship_call.ship.call_sign"),
        _mapped("NameOfMaster", "ship_call.ship.master"),
        _mapped("TransitCargo", "ship_call.cargo_summary"),
        _blank("VolumeCargo"),
        _blank("CargoUnit"),
        _mapped("PermittedTransitFrom", "ship_call.voyage.transit_from"),
        _mapped("PermittedTransitTo", "ship_call.voyage.transit_to"),
        _mapped("TimeOfDeparture", "ship_call.voyage.etd", MOT_DATETIME),
        _mapped("ValidUntil", "permit.valid_until", MOT_DATETIME),
        _required("DateOfSign", "permit.decision_date", MOT_DATETIME),
        _blank("UserCreated"),
        _mapped("DirectorOfMaritimeAdministration", "permit.officer"),
        _blank("CreatedDate"),
        _mapped("CertificateNo", "document.number"),
        _blank("Representative"),
        _CARGO_LIST,
        _ATTACHED_FILE,
    ),
)
"""The transit permit the maritime administration issues (type 90): ``permit`` and the ship's transit."""


ACCEPTANCE_FOR_TRANSIT = Group(
    "AcceptanceForTransit",
    required=True,
    children=(
        _required("NumberAcceptanceForTransit", "permit.number"),
        _required("DocumentName", "ship_call.reference"),
        _blank("DocumentYear"),
        _required("NameOfShip", "ship_call.ship.name"),
        _mapped("FlagStateOfShip", "ship_call.ship.flag"),
        _mapped("CallSign", "ship_call.ship.call_sign"),
        _mapped("NameOfMaster", "ship_call.ship.master"),
        _mapped("LOA", "ship_call.ship.length_overall", DECIMAL),
        _blank("UnitLOA"),
        _mapped("Breadth", "ship_call.ship.breadth", DECIMAL),
        _blank("UnitBreadth"),
        _mapped("GrossTonnage", "ship_call.ship.gross_tonnage", DECIMAL),
        _blank("GrossTonnageUnit"),
        _mapped("NetTonnage", "ship_call.ship.net_tonnage", DECIMAL),
        _blank("NetTonnageUnit"),
        _mapped("DWT", "ship_call.ship.deadweight", DECIMAL),
        _blank("UnitDWT"),
        _mapped("ShownDraftxF", "ship_call.voyage.draught_forward", DECIMAL),
        _blank("UnitShownDraftxF"),
        _mapped("ShownDraftxA", "ship_call.voyage.draught_aft", DECIMAL),
        _blank("UnitShownDraftxA"),
        _blank("ClearanceHeight"),
        _blank("UnitClearanceHeight"),
        _mapped("PermittedTransitFrom", "ship_call.voyage.transit_from"),
        _mapped("PermittedTransitTo", "ship_call.voyage.transit_to"),
        _mapped("TimeOfDeparture", "ship_call.voyage.etd", MOT_DATETIME),
    ),
)
"""The notice that a ship's transit is accepted (type 80): ``permit`` (its number), the ship and its transit."""


CONFIRMATION_OF_ARRIVAL = Group(
    "ConfirmationOfArrival",
    required=True,
    children=(
        _required("DocumentName", "ship_call.reference"),
        _blank("DocumentYear"),
        _blank("UserCreated"),
        _required("NameOfShip", "ship_call.ship.name"),
        _mapped("ShipTypeCode", "ship_call.ship.ship_type"),
        _mapped("IMONumber", "ship_call.ship.imo_number", IMO),
        _mapped("CallSign", "ship_call.ship.call_sign"),
        _mapped("FlagStateOfShip", "ship_call.ship.flag"),
        _mapped("PortOfArrivalCode", "ship_call.voyage.port_of_call"),
        _blank("PortHarbourCode"),
        _blank("PortRegionCode"),
        _mapped("PortWharfCode", "ship_call.voyage.berth"),
        _mapped("TimeOfArrival", "ship_call.voyage.eta", MOT_DATETIME),
        _mapped("SignPlace", "signatory.place"),
        _mapped("SignDate", "signatory.signed_at", MOT_DATETIME),
        _blank("MasterSigned"),
        Group(
            "PersonList",
            required=True,
            children=(
                _blank("Name"),
                _blank("Age"),
                _blank("NationalCode"),
                _blank("NationalName"),
                _blank("IlnessStatus"),
                _blank("ReasonOfDead"),
                _blank("PersonType"),
            ),
        ),
    ),
)
"""The confirmation of a ship's arrival at its berth (type 40, the MOT ``XAC_BAO_TAU_DEN_CANG``): the ship, the
port and berth, the time it arrived (``ship_call.voyage.eta``); the persons ill or dead on board (``PersonList``) are
written empty and not read."""


SHIP_SECURITY_NOTIFICATION = Group(
    "ShipSecurityNotification",
    required=True,
    children=(
        _blank("ShipSecurityNotificationId"),
        _required("DocumentName", "ship_call.reference"),
        _blank("DocumentYear"),
        _blank("UserCreated"),
        _required("NameOfShip", "ship_call.ship.name"),
        _mapped("FlagStateOfShip", "ship_call.ship.flag"),
        _mapped("CallSign", "ship_call.ship.call_sign"),
        _mapped("GrossTonnage", "ship_call.ship.gross_tonnage", DECIMAL),
        _blank("GrossTonnageUnit"),
        _mapped("ShipTypeCode", "ship_call.ship.ship_type"),
        _mapped("NumberOfCrew", "ship_call.crew_count", INT),
        _mapped("ETA", "ship_call.voyage.eta", MOT_DATETIME),
        _mapped("IMONumber", "ship_call.ship.imo_number", IMO),
        _mapped("PurposeCode", "ship_call.voyage.purpose_of_call"),
        _blank("OthersPurpose"),
        _blank("PortRegionCode"),
        _mapped("PortWharfCode", "ship_call.voyage.berth"),
        _mapped("TaxCodeOfShipAgent", "ship_call.agent.identifier"),
        _mapped("NameOfShipAgent", "ship_call.agent.name"),
        _mapped("AddressOfShipAgent", "ship_call.agent.address.line1"),
        _mapped("TelOfShipAgency", "ship_call.agent.phone"),
        _mapped("FaxOfShipAgency", "ship_call.agent.fax"),
        _mapped("IsValidISSC", "ship_call.security.certificate_valid", FLAG),
        _mapped("NameOfAuthorityISSC", "ship_call.security.certificate_issuer"),
        _mapped("DateOfIssueISSC", "ship_call.security.certificate_issued", MOT_DATE),
        _mapped("DateOfExpiryISSC", "ship_call.security.certificate_expiry", MOT_DATE),
        _mapped("SecurityLevelCode", "ship_call.security.security_level"),
        Group(
            "Last10PortsOfCall",
            required=True,
            children=(
                Group(
                    "PortOfCall",
                    path="ship_call.security.last_port_calls",
                    many=True,
                    required=True,
                    children=(
                        _blank("PortOfCallCode"),
                        _mapped("PortCode", "port"),
                        _mapped("DateOfArrival", "arrival", MOT_DATETIME),
                        _mapped("DateOfDeparture", "departure", MOT_DATETIME),
                        _mapped("SecurityLevelCode", "security_level"),
                    ),
                ),
            ),
        ),
        _mapped("IsAdditionalSecurityMeasures", "ship_call.security.additional_measures", FLAG),
        _mapped("AdditionalSecurityDetail", "ship_call.security.additional_measures_details"),
        _mapped("IsMaintainSecurity", "ship_call.security.security_maintained", FLAG),
        _mapped("MaintainSecurityDetail", "ship_call.security.security_maintained_details"),
        _mapped("NameOfMaster", "ship_call.ship.master"),
        _blank("Latitude"),
        _mapped("SignPlace", "signatory.place"),
        _mapped("SignDate", "signatory.signed_at", MOT_DATETIME),
        _blank("MasterSigned"),
    ),
)
"""The ship security notification before arrival (type 10, the MOT ``BAN_KHAI_AN_NINH_TAU_BIEN``): the ship, its
agent, ``ship_call.security`` (the certificate, the security level, the last calls, at least one required)."""


FORMS: tuple[tuple[str, str, Group, str | None], ...] = (
    ("30", "Notice of arrival", NOTICE_OF_ARRIVAL, None),
    ("50", "General declaration", GENERAL_DECLARATION, "ship_call"),
    ("51", "Crew list", CREW_LIST, "ship_call.crew"),
    ("52", "Passenger list", PASSENGER_LIST, "ship_call.passengers"),
    ("53", "Dangerous goods manifest", DANGEROUS_GOODS_MANIFEST, "ship_call.dangerous_goods"),
    ("54", "Ship's stores declaration", SHIPS_STORES, "ship_call.stores"),
    ("55", "Crew's effects declaration", CREW_EFFECTS, "ship_call.crew_effects"),
    ("56", "Maritime declaration of health", HEALTH, "ship_call.health"),
    ("57", "Declaration for plant quarantine", PLANT_QUARANTINE, "ship_call.plants_on_board"),
    ("58", "Declaration for animal quarantine", ANIMAL_QUARANTINE, "ship_call.animals_on_board"),
)
"""(message type, title, content table, the part of the call that puts the form into the whole call's envelope;
``None``: not part of it)."""

PERMITS: tuple[tuple[str, str, Group], ...] = (
    ("60", "Port clearance", PORT_CLEARANCE),
    ("72", "Port entry permit", PORT_ENTRY_PERMIT),
)
"""(message type, title, content table) of the maritime administration's decisions (function 01: issued)."""

NOTICES: tuple[tuple[str, str, Group, tuple[str, ...]], ...] = (
    ("10", "Ship security notification", SHIP_SECURITY_NOTIFICATION, (ENTRY, TRANSIT)),
    ("40", "Confirmation of arrival", CONFIRMATION_OF_ARRIVAL, (ENTRY,)),
)
"""(message type, title, content table, documentTypes) of the agent's notices outside the whole call (functions 01
and 02)."""

ORDERS: tuple[tuple[str, str, Group, tuple[str, ...]], ...] = (
    ("70", "Shifting order", SHIFTING_ORDER, (ENTRY, EXIT, TRANSIT)),
    ("80", "Acceptance for transit", ACCEPTANCE_FOR_TRANSIT, (TRANSIT,)),
    ("90", "Permission for transit", PERMISSION_FOR_TRANSIT, (TRANSIT,)),
)
"""(message type, title, content table, documentTypes) of the orders and transit permissions the maritime
administration issues (function 01: issued)."""

SHIP_CALL = Group(
    "Content",
    children=tuple(dataclasses.replace(table, when=when) for _, _, table, when in FORMS if when is not None),
)
"""Type 99: the whole ship call, one section per declaration the call carries."""


def _register() -> None:
    for procedure, direction in ALL_PROCEDURES.items():
        for function, act in FUNCTIONS.items():
            for message_type, title, table, _ in FORMS:
                if procedure == TRANSIT and message_type == "30":
                    continue
                register_message(
                    VnswMessage(
                        procedure,
                        message_type,
                        function,
                        f"Ship {direction}: {title.lower()} {act}",
                        Group("Content", children=(table,)),
                        f"vnsw/mot_maritime/MOT_type{message_type}.xsd",
                    )
                )
            if function == "01" and procedure in PROCEDURES:
                for message_type, title, table in PERMITS:
                    register_message(
                        VnswMessage(
                            procedure,
                            message_type,
                            function,
                            f"Ship {direction}: {title.lower()} issued",
                            Group("Content", children=(table,)),
                            f"vnsw/mot_maritime/MOT_type{message_type}.xsd",
                            implies=(("permit.decision", "issued"),),
                        )
                    )
            register_message(
                VnswMessage(
                    procedure,
                    SHIP_CALL_TYPE,
                    function,
                    f"Ship {direction}: the whole ship call {act}",
                    SHIP_CALL,
                    f"vnsw/mot_maritime/MOT_type{SHIP_CALL_TYPE}.xsd",
                )
            )
    for message_type, title, table, procedures in NOTICES:
        for procedure in procedures:
            for function, act in FUNCTIONS.items():
                register_message(
                    VnswMessage(
                        procedure,
                        message_type,
                        function,
                        f"Ship {ALL_PROCEDURES[procedure]}: {title.lower()} {act}",
                        Group("Content", children=(table,)),
                        f"vnsw/mot_maritime/MOT_type{message_type}.xsd",
                    )
                )
    for message_type, title, table, procedures in ORDERS:
        for procedure in procedures:
            register_message(
                VnswMessage(
                    procedure,
                    message_type,
                    "01",
                    f"Ship {ALL_PROCEDURES[procedure]}: {title.lower()} issued",
                    Group("Content", children=(table,)),
                    f"vnsw/mot_maritime/MOT_type{message_type}.xsd",
                    implies=(("permit.decision", "issued"),),
                )
            )


_register()
