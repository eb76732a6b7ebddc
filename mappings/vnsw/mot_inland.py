"""MOT inland-waterway procedures: a ship's arrival at and departure from a port on a domestic (inland) route.

Corpus folder ``mot_maritime_content_xsd``, the ``Inland*`` content schemas: the sea declarations of
:mod:`mappings.vnsw.mot_maritime` with fewer elements (no IMO number, no flag on most, no registry certificate,
no tonnages but the gross and net tonnage of the general declaration). Each is declared here as the list of its
elements in the order of its schema, every element the sea declaration has taken from the sea table (the same
harmonized path, codec and requiredness), so the harmonized model is the same ship call:

============  =====  ==============================  ================================================
documentType  type   content                         harmonized
============  =====  ==============================  ================================================
4 arrival,    30     ``InlandNoticeOfArrival``       ship_call: ship, agent, voyage, cargo in brief
5 departure   50     ``InlandGeneralDeclaration``    ship_call: ship, agent, voyage, cargo in brief
              51     ``InlandCrewLists``             ship_call.crew (passport number, names, rank)
              52     ``InlandPassengerList``         ship_call.passengers (names, birth, identity)
              60     ``InlandPortClearance``         permit (issued), ship_call: ship, etd
              70     ``InlandShiftingOrder``         permit (issued), ship_call.shifting, the ship
============  =====  ==============================  ================================================

The documentTypes are the MOT ``TAU_VAO`` (4) and ``TAU_RA`` (5) that the MOT system routes to its inland
service (``receiveFromInland``); the message types are those of the sea declarations with the same content
(``vn.gt.tichhop.message.MessageType``: the source names no separate inland codes). Functions ``01`` and ``02``
for the declarations; the port clearance and shifting order are sent with ``01`` and state
``permit.decision = issued``. The inland port clearance and shifting order carry no number of their own
(``permit.number`` is not carried); the inland shifting order has no draughts, no origin berth and no reason.
The source also wraps its refusals for documentType 16 and 17 (``TAU_VAO_PTTND``, ``TAU_RA_PTTND``: the inland
waterway vessels of the ``PTTND*`` schemas) in the inland envelope; those procedures are not mapped here.
"""

from __future__ import annotations

from mappings.vnsw import VnswMessage, register_message
from mappings.vnsw.mot_maritime import (
    CREW_LIST,
    FUNCTIONS,
    GENERAL_DECLARATION,
    NOTICE_OF_ARRIVAL,
    PASSENGER_LIST,
    PORT_CLEARANCE,
    SHIFTING_ORDER,
)
from mappings.xmlspec import Group, Node

__all__ = [
    "INLAND_ARRIVAL",
    "INLAND_DEPARTURE",
    "INLAND_PROCEDURES",
    "INLAND_NOTICE_OF_ARRIVAL",
    "INLAND_GENERAL_DECLARATION",
    "INLAND_CREW_LIST",
    "INLAND_PASSENGER_LIST",
    "INLAND_PORT_CLEARANCE",
    "INLAND_SHIFTING_ORDER",
    "INLAND_FORMS",
    "INLAND_ORDERS",
]

INLAND_ARRIVAL = "4"
"""documentType of a ship's arrival on an inland route (the MOT ``TAU_VAO``)."""
INLAND_DEPARTURE = "5"
"""documentType of a ship's departure on an inland route (the MOT ``TAU_RA``)."""
INLAND_PROCEDURES = {INLAND_ARRIVAL: "arrival", INLAND_DEPARTURE: "departure"}


def _child(sea: Group, tag: str) -> Node:
    found = [c for c in sea.children if c.tag == tag]
    if len(found) != 1:
        raise ValueError(f"{sea.tag} has no single element {tag}")
    return found[0]


def _group(sea: Group, tag: str) -> Group:
    found = _child(sea, tag)
    if not isinstance(found, Group):
        raise ValueError(f"{sea.tag}/{tag} is no group")
    return found


def _like(sea: Group, tag: str, *elements: str | Node, path: str | None = None, many: bool = False) -> Group:
    """The inland element ``tag``: its child elements in order, each a tag of the sea element ``sea`` (its node
    reused) or a node of its own."""
    return Group(
        tag,
        path=path,
        many=many,
        required=True,
        children=tuple(_child(sea, e) if isinstance(e, str) else e for e in elements),
    )


INLAND_NOTICE_OF_ARRIVAL = _like(
    NOTICE_OF_ARRIVAL,
    "InlandNoticeOfArrival",
    "DocumentName",
    "DocumentYear",
    "UserCreated",
    "NameOfShip",
    "ShipTypeCode",
    "CallSign",
    "NameOfMaster",
    "PortOfArrivalCode",
    "PortHarbourCode",
    "PortRegionCode",
    "PortWharfCode",
    "TimeOfArrival",
    "LastPortOfCallCode",
    "ClearanceHeight",
    "ClearanceHeightUnit",
    "ShownDraftxF",
    "UnitShownDraftxF",
    "ShownDraftxA",
    "UnitShownDraftxA",
    "TaxCodeOfShipownersAgents",
    "NameOfShipownersAgents",
    "ShipAgencyAddress",
    "ShipAgencyPhone",
    "ShipAgencyFax",
    "ShipAgencyEmail",
    "PurposeCode",
    "QuantityOfCargo",
    "UnitQuantityofCargo",
    "TypeOfCargo",
    "NumberOfCrew",
    "NumberOfPassengers",
    "OtherPersons",
    "Remarks",
    "SignPlace",
    "SignDate",
    "MasterSigned",
    "CargoList",
)
"""The inland notice of arrival (type 30)."""

INLAND_GENERAL_DECLARATION = _like(
    GENERAL_DECLARATION,
    "InlandGeneralDeclaration",
    "DocumentName",
    "DocumentYear",
    "UserCreated",
    _child(PASSENGER_LIST, "isArrival"),
    "NameOfShip",
    "ShipTypeCode",
    "CallSign",
    "PortOfArrivalCode",
    "DateOfArrival",
    "PortHarbourCode",
    "PortRegionCode",
    "PortWharfCode",
    "NameOfMaster",
    "LastPortOfCallCode",
    "TaxCodeOfShipownersAgents",
    "NameOfShipownersAgents",
    "ShipAgencyAddress",
    "ShipAgencyPhone",
    "ShipAgencyFax",
    "ShipAgencyEmail",
    "GrossTonnage",
    "GrossTonnageUnit",
    "NetTonnage",
    "BriefDescriptionOfTheCargo",
    "Remarks",
    "SignPlace",
    "SignDate",
    "MasterSigned",
    "CargoList",
)
"""The inland general declaration (type 50)."""

_SEA_CREW = _group(_group(CREW_LIST, "CrewList"), "Crew")
_SEA_PASSENGER = _group(_group(PASSENGER_LIST, "ListPassengers"), "Passenger")

INLAND_CREW_LIST = _like(
    CREW_LIST,
    "InlandCrewLists",
    "DocumentName",
    "DocumentYear",
    "UserCreated",
    "IsArrival",
    "NameOfShip",
    "SignPlace",
    "SignDate",
    "MasterSigned",
    Group(
        "CrewList",
        required=True,
        children=(
            _like(
                _SEA_CREW,
                "Crew",
                "PassportNumber",
                "CrewCode",
                "FamilyName",
                "GivenName",
                "RankCode",
                path="ship_call.crew",
                many=True,
            ),
        ),
    ),
)
"""The inland crew list (type 51): each crew member's passport number, names and rank."""

INLAND_PASSENGER_LIST = _like(
    PASSENGER_LIST,
    "InlandPassengerList",
    "DocumentName",
    "DocumentYear",
    "UserCreated",
    "isArrival",
    "NameOfShip",
    "SignPlace",
    "SignDate",
    "MasterSigned",
    Group(
        "ListPassengers",
        required=True,
        children=(
            _like(
                _SEA_PASSENGER,
                "Passenger",
                "PassengerCode",
                "FamilyName",
                "GivenName",
                "BirthDay",
                "BirthPlace",
                "TypeOfIdentity",
                "SerialNumberOfIdentity",
                path="ship_call.passengers",
                many=True,
            ),
        ),
    ),
)
"""The inland passenger list (type 52): each passenger's names, birth and identity document."""

INLAND_PORT_CLEARANCE = _like(
    PORT_CLEARANCE,
    "InlandPortClearance",
    "DocumentName",
    "DocumentYear",
    "PortofAuthority",
    "NameOfShip",
    "FlagStateOfShip",
    "NumberOfCrews",
    "NumberOfPassengers",
    "CallSign",
    "NameOfMaster",
    "Cargo",
    "VolumeCargo",
    "CargoUnit",
    "TimeOfDeparture",
    "NextPortOfCallCode",
    "ValidUntil",
    "IssueDate",
    "DirectorOfMaritimeAdministration",
    "CertificateNo",
    "GT",
    "Representative",
    "CargoList",
    "AttachedFile",
)
"""The inland port clearance the maritime administration issues (type 60)."""

INLAND_SHIFTING_ORDER = _like(
    SHIFTING_ORDER,
    "InlandShiftingOrder",
    "DocumentName",
    "DocumentYear",
    "PortofAuthority",
    "NameOfShip",
    _child(PORT_CLEARANCE, "CallSign"),
    "AnchoringPortCode",
    "PortHarbourCode",
    "AnchoringPortWharfCode",
    "ShiftingDate",
    "IssueDate",
    "DirectorOfMaritimeAdministration",
    "CertificateNo",
    "Representative",
    "AttachedFile",
)
"""The inland shifting order the port authority issues (type 70): where and when the ship moves."""

INLAND_FORMS: tuple[tuple[str, str, Group], ...] = (
    ("30", "Notice of arrival", INLAND_NOTICE_OF_ARRIVAL),
    ("50", "General declaration", INLAND_GENERAL_DECLARATION),
    ("51", "Crew list", INLAND_CREW_LIST),
    ("52", "Passenger list", INLAND_PASSENGER_LIST),
)
"""(message type, title, content table) of the declarations (functions 01 and 02)."""

INLAND_ORDERS: tuple[tuple[str, str, Group], ...] = (
    ("60", "Port clearance", INLAND_PORT_CLEARANCE),
    ("70", "Shifting order", INLAND_SHIFTING_ORDER),
)
"""(message type, title, content table) of the maritime administration's decisions (function 01: issued)."""


def _register() -> None:
    for procedure, direction in INLAND_PROCEDURES.items():
        for function, act in FUNCTIONS.items():
            for message_type, title, table in INLAND_FORMS:
                register_message(
                    VnswMessage(
                        procedure,
                        message_type,
                        function,
                        f"Inland {direction}: {title.lower()} {act}",
                        Group("Content", children=(table,)),
                        f"vnsw/mot_maritime/MOT_inland_type{message_type}.xsd",
                    )
                )
        for message_type, title, table in INLAND_ORDERS:
            register_message(
                VnswMessage(
                    procedure,
                    message_type,
                    "01",
                    f"Inland {direction}: {title.lower()} issued",
                    Group("Content", children=(table,)),
                    f"vnsw/mot_maritime/MOT_inland_type{message_type}.xsd",
                    implies=(("permit.decision", "issued"),),
                )
            )


_register()
