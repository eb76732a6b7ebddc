"""The harmonized data-element set: one frozen pydantic model for every message that crosses the gateway.

"Submit once, use many times": every native format maps to and from :class:`TradeMessage`. Each field
documents itself (``description``) and, where the WCO Data Model defines the element, carries its WCO
DM id in ``json_schema_extra["wco"]``; fields checked against a code list carry
``json_schema_extra["code_list"]`` (see :mod:`mappings.codes`). ``nswgw dictionary`` prints all of it.

The models check shape only (types, lengths, signs). Code lists and business rules (ATIGA Form D, origin
criteria) are checked by :func:`mappings.rules.validate`, which reports every violation at once.

Conventions
-----------
* Paths in validation issues are dotted attribute names with 0-based list indexes: ``goods[3].origin_criterion``.
* Timestamps are timezone-aware :class:`~datetime.datetime`; native formats without an offset (VNSW)
  are read in Vietnam time (UTC+07:00).
* Quantities and amounts are :class:`~decimal.Decimal`, never floats.
"""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Address",
    "Party",
    "Parties",
    "Endpoint",
    "Envelope",
    "DocumentInfo",
    "DocumentReference",
    "Location",
    "TransportLeg",
    "Transport",
    "Measure",
    "Amount",
    "Quantity",
    "Note",
    "GoodsItem",
    "Signatory",
    "OriginCertificate",
    "CertificateNoticeKind",
    "CertificateNotice",
    "Decision",
    "Permit",
    "ErrorEntry",
    "Acknowledgement",
    "CustomsDeclaration",
    "CustomsResponseStatus",
    "CustomsResponse",
    "DeclarationCancellation",
    "ShipParticulars",
    "Voyage",
    "IdentityDocument",
    "Person",
    "DangerousGoodsItem",
    "StoresItem",
    "CrewEffect",
    "HealthDeclaration",
    "SecurityPortCall",
    "ShipSecurity",
    "Shifting",
    "ShipCall",
    "ShipCallAnswer",
    "ShipCallDecision",
    "TradeMessage",
    "wco_id",
]


def F(
    description: str,
    *,
    wco: str | None = None,
    wco_identifier: str | None = None,
    code_list: str | None = None,
    default: Any = None,
    **kw: Any,
) -> Any:
    """A documented optional field: description, WCO Data Model id and code list in the field metadata.

    ``wco_identifier`` is for party roles: the WCO DM id of that party's identifier (``wco`` is its name's)."""
    extra: dict[str, Any] = {}
    if wco:
        extra["wco"] = wco
    if wco_identifier:
        extra["wco_identifier"] = wco_identifier
    if code_list:
        extra["code_list"] = code_list
    if isinstance(default, tuple):
        return Field(default=default, description=description, json_schema_extra=extra or None, **kw)
    return Field(default=default, description=description, json_schema_extra=extra or None, **kw)


def wco_id(model: type[BaseModel], field: str) -> str | None:
    """The WCO Data Model id of ``model.field``, or None where the WCO DM has none."""
    extra = model.model_fields[field].json_schema_extra
    return extra.get("wco") if isinstance(extra, dict) else None  # type: ignore[return-value]


Text = str


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class Address(_Frozen):
    """A postal address."""

    line1: str | None = F("Street and number or P.O. box.", max_length=500)
    line2: str | None = F("Second address line (building, district).", max_length=500)
    city: str | None = F("City name.", max_length=100)
    postcode: str | None = F("Postcode.", max_length=17)
    subdivision: str | None = F("Country subdivision (province, state) name.", max_length=100)
    country: str | None = F("Country, ISO 3166-1 alpha-2.", code_list="ISO3166")


class Party(_Frozen):
    """A party: exporter, consignee, declarant, issuing authority or carrier (the role is where it sits)."""

    name: str | None = F("Name of the party.", max_length=500)
    identifier: str | None = F("Identifier of the party (tax or registration number).", max_length=50)
    address: Address | None = F("Postal address.")
    phone: str | None = F("Telephone number.", max_length=50)
    fax: str | None = F("Fax number.", max_length=50)
    email: str | None = F("E-mail address.", max_length=254)


class Parties(_Frozen):
    """The parties of a message, by role."""

    exporter: Party | None = F(
        "Exporter (consignor): the party that sends the goods (name: WCO R031).", wco="R031", wco_identifier="R032"
    )
    consignee: Party | None = F("Consignee: the party the goods are consigned to (name: WCO R014).", wco="R014")
    declarant: Party | None = F("Declarant or applicant: the party that submits the declaration or application.")
    issuing_authority: Party | None = F("Authority that issues the certificate, permit or decision.")
    carrier: Party | None = F("Carrier.")
    manufacturer: Party | None = F("Manufacturer or producer of the goods.")


class Endpoint(_Frozen):
    """A routing address of a national single window system (VNSW header From/To)."""

    name: str | None = F("Display name of the system.", max_length=255)
    identity: str | None = F("Identity code of the system.", max_length=255)
    country: str | None = F("Country of the system, ISO 3166-1 alpha-2.", code_list="ISO3166")
    ministry: str | None = F("Ministry code (BTC, BNNPTNT, ...).", max_length=20)
    organization: str | None = F("Organization code within the ministry.", max_length=20)
    unit: str | None = F("Unit code within the organization.", max_length=20)


class Envelope(_Frozen):
    """Routing data of the message: who sends what kind of message about which dossier."""

    message_id: str | None = F("Unique message id (a UUID).", max_length=36)
    version: str | None = F("Envelope version.", max_length=50)
    sender: Endpoint | None = F("Sending system.")
    recipient: Endpoint | None = F("Receiving system.")
    procedure: str | None = F("Procedure (document type) code, e.g. BNNPTNT0600011.", max_length=100)
    message_type: str | None = F("Message type within the procedure (2-3 digits).", max_length=3)
    function: str | None = F("Message function (01 submit, 99 acknowledgement, 00 error list, ...).", max_length=3)
    reference: str | None = F("Dossier reference (NSW file code).", max_length=35)
    reference_year: int | None = F("Year of the dossier reference.", ge=0, le=9999)
    previous_reference: str | None = F("Reference of the dossier this message follows.", max_length=35)
    previous_reference_year: int | None = F("Year of the previous reference.", ge=0, le=9999)
    sent_at: dt.datetime | None = F("When the message was sent.")


class DocumentInfo(_Frozen):
    """The document the message carries (certificate, permit, dispatch)."""

    number: str | None = F("Document number (certificate or dispatch number).", max_length=50)
    type_code: str | None = F(
        "Document type code (UN/EDIFACT 1001: 851 phytosanitary certificate, 861 certificate of origin).", max_length=10
    )
    status_code: str | None = F("Document status code (UN/EDIFACT 1225: 70 original, 9 replaced).", max_length=10)
    name: str | None = F("Document name or title.", max_length=250)
    issue_date: dt.datetime | None = F("Date and time of issue.")
    issuing_country: str | None = F("Country of issue, ISO 3166-1 alpha-2.", code_list="ISO3166")
    summary: str | None = F("Summary line (subject) of the document.", max_length=250)
    preamble: str | None = F("Preamble (grounds) of the document.", max_length=500)
    content: str | None = F("Body text of the document (the decision as written).", max_length=5000)
    remarks: str | None = F("Remarks.", max_length=1000)
    link: str | None = F("Link (URL) to the signed document.", max_length=1000)


class DocumentReference(_Frozen):
    """A document referred to by the message: invoice, licence, attachment."""

    reference: str | None = F("Document reference number.", max_length=100)
    type_code: str | None = F("Document type code (UN/EDIFACT 1001 or the native code list).", max_length=10)
    relationship_code: str | None = F(
        "How the document relates to the message (UN/EDIFACT 1153: AWR, ZZZ, ...).", max_length=10
    )
    issue_date: dt.date | None = F("Date of issue.")
    issuing_country: str | None = F("Country that issued the document, ISO 3166-1 alpha-2.", code_list="ISO3166")
    description: str | None = F("Free-text description of the document.", max_length=500)
    filename: str | None = F("File name of an attached copy.", max_length=255)
    link: str | None = F("Link (URL) to an attached copy.", max_length=1000)
    content_base64: str | None = F("Attached copy, base64.")


class Location(_Frozen):
    """A place: port, border crossing, place of signature."""

    code: str | None = F("UN/LOCODE (5 characters: country + 3 location characters).", code_list="UNLOCODE")
    name: str | None = F("Name of the place.", max_length=255)


class TransportLeg(_Frozen):
    """One movement of the goods (main carriage)."""

    mode: str | None = F("Mode of transport, UN/ECE Rec 19 (1 sea, 2 rail, 3 road, 4 air, ...).", pattern=r"^[0-9]$")
    means: str | None = F("Identification (name) of the means of transport: vessel, flight, vehicle.", max_length=255)
    journey: str | None = F("Journey (voyage, flight) number.", max_length=35)
    departure_date: dt.date | None = F("Date of departure.")


class Transport(_Frozen):
    """Transport of the consignment."""

    legs: tuple[TransportLeg, ...] = F("Movements of the goods, main carriage first.", default=())
    port_of_loading: Location | None = F("Port or place of loading (departure).")
    port_of_discharge: Location | None = F("Port or place of discharge (arrival, border gate).")
    export_country: str | None = F("Country of exportation, ISO 3166-1 alpha-2.", wco="062", code_list="ISO3166")
    destination_country: str | None = F(
        "Country of destination (importing country), ISO 3166-1 alpha-2.", wco="064", code_list="ISO3166"
    )
    transit_countries: tuple[str, ...] = F("Countries of transit, ISO 3166-1 alpha-2.", code_list="ISO3166", default=())
    departure_date: dt.date | None = F("Date the goods leave the exporting country.")
    border_mode: str | None = F(
        "Mode of transport at the border (on export: the outward mode), UN/ECE Rec 19 (1 sea, 2 rail, 3 road, 4 air).",
        wco="061",
        pattern=r"^[0-9]$",
    )


class Measure(_Frozen):
    """A measured value with its UN/ECE Rec 20 unit."""

    value: Decimal = Field(description="The value.", ge=0)
    unit: str = Field(
        description="Unit, UN/ECE Recommendation 20 code (KGM, TNE, LTR, H87, ...).",
        json_schema_extra={"code_list": "REC20"},
    )


class Amount(_Frozen):
    """A monetary amount with its ISO 4217 currency."""

    value: Decimal = Field(description="The amount.", ge=0)
    currency: str = Field(description="Currency, ISO 4217 alphabetic code.", json_schema_extra={"code_list": "ISO4217"})


class Quantity(_Frozen):
    """A quantity of goods with its unit and an optional qualifier (for example female/male animals)."""

    value: Decimal = Field(description="The quantity.", ge=0)
    unit: str = Field(description="Unit, UN/ECE Recommendation 20 code.", json_schema_extra={"code_list": "REC20"})
    qualifier: str | None = F(
        "What is counted, when a goods item has several quantities (female, male).", max_length=35
    )


class Note(_Frozen):
    """A coded note: subject code plus free text (SPS IncludedSPSNote and the like)."""

    subject: str | None = F("Subject code of the note.", max_length=35)
    content: str | None = F("Text of the note.", max_length=5000)
    language: str | None = F("Language of the text, ISO 639-1.", max_length=8)


class GoodsItem(_Frozen):
    """One goods item (line) of the consignment."""

    sequence: int | None = F("Goods item sequence number.", wco="006", ge=0)
    description: str | None = F("Description of goods.", wco="137", max_length=1000)
    commodity_code: str | None = F(
        "Native product code where it is not an HS code (animal or product code).", max_length=50
    )
    category: str | None = F("Native category of the goods (e.g. the pesticide licence's TypeGood 1-3).", max_length=10)
    scientific_name: str | None = F("Scientific (botanical or zoological) name.", max_length=255)
    common_name: str | None = F("Common name.", max_length=255)
    hs_code: str | None = F("HS tariff classification code, 6 to 10 digits.", wco="145", code_list="HS")
    package_count: int | None = F("Number of packages.", wco="144", ge=0)
    package_type: str | None = F("Type of packages, UN/ECE Rec 21 code.", wco="141", max_length=35)
    packing: str | None = F("Free-text description of the packing.", max_length=255)
    quantities: tuple[Quantity, ...] = F("Quantities of goods with units.", default=())
    net_weight: Measure | None = F("Net weight.")
    gross_weight: Measure | None = F("Gross weight.", wco="126")
    net_volume: Measure | None = F("Net volume.")
    gross_volume: Measure | None = F("Gross volume.")
    fob_value: Amount | None = F("FOB value of the item.")
    origin_country: str | None = F("Country of origin, ISO 3166-1 alpha-2.", wco="063", code_list="ISO3166")
    origin_country_name: str | None = F("Name of the country of origin as written by the sender.", max_length=255)
    export_country: str | None = F("Country the item is exported from, ISO 3166-1 alpha-2.", code_list="ISO3166")
    export_country_name: str | None = F("Name of the exporting country as written by the sender.", max_length=255)
    destination_port: Location | None = F("Port or border gate of entry for this item.")
    origin_region: str | None = F("Region of origin within the country.", max_length=255)
    origin_criterion: str | None = F(
        "Preferential origin criterion (ATIGA): WO, CC, CTH, CTSH, SP, RVC nn%, PC nn%.", code_list="ORIGIN_CRITERION"
    )
    intended_use: str | None = F("Intended use or purpose of the goods.", max_length=500)
    marks: str | None = F("Shipping marks and numbers.", wco="142", max_length=512)
    invoice_number: str | None = F("Number of the commercial invoice covering the item.", max_length=50)
    invoice_date: dt.date | None = F("Date of the commercial invoice covering the item.")
    notes: tuple[Note, ...] = F("Coded notes on the item.", default=())


class Signatory(_Frozen):
    """Who signed the declaration or certificate, where and when."""

    name: str | None = F("Name of the signatory.", max_length=250)
    role: str | None = F("Function or title of the signatory.", max_length=250)
    place: str | None = F("Place of signature.", max_length=250)
    signed_at: dt.datetime | None = F("Date and time of signature.")


class OriginCertificate(_Frozen):
    """Certificate of origin data (ATIGA e-Form D) beyond the common document data."""

    form: str = Field(default="D", description="Form of the certificate (D: ATIGA).", max_length=5)
    back_to_back: bool = Field(default=False, description="Box 13: back-to-back certificate of origin.")
    third_country_invoicing: bool = Field(default=False, description="Box 13: third-country invoicing.")
    exhibition: bool = Field(default=False, description="Box 13: exhibition.")
    issued_retroactively: bool = Field(default=False, description="Box 13: issued retroactively.")
    de_minimis: bool = Field(default=False, description="Box 13: de minimis.")
    accumulation: bool = Field(default=False, description="Box 13: accumulation.")
    partial_cumulation: bool = Field(default=False, description="Box 13: partial cumulation.")
    remarks: str | None = F("Remarks of the issuing authority.", max_length=1000)
    amends: str | None = F(
        "Number of the issued certificate this one amends (an amended certificate references the original).",
        max_length=35,
    )


class CertificateNoticeKind(enum.StrEnum):
    """What a notification about an issued certificate of origin says."""

    RECEIVED = "received"
    UTILIZED = "utilized"
    REJECTED = "rejected"
    VERIFICATION_REQUEST = "verification_request"
    VERIFICATION_ANSWER = "verification_answer"
    CANCELLED = "cancelled"


class CertificateNotice(_Frozen):
    """A business notification about an issued e-C/O, correlated to it by its number and issuing country: from the
    importing side (received by the importing ministry or customs, utilized against a declaration, rejected with a
    reason, a verification request of the retroactive check), or from the issuer (the answer to a verification
    request, the cancellation of the certificate)."""

    kind: CertificateNoticeKind | None = F("What the notification says.")
    certificate_number: str | None = F("Number of the certificate of origin notified about.", max_length=35)
    issuing_country: str | None = F("Country that issued the certificate.", code_list="ISO3166", max_length=2)
    notifying_country: str | None = F("Country of the authority that notifies.", code_list="ISO3166", max_length=2)
    declaration_number: str | None = F(
        "Number of the import declaration the certificate was used against (utilized).", max_length=35
    )
    declaration_date: dt.date | None = F("Date of the import declaration (utilized).")
    reason_code: str | None = F("Code of the reason of a rejection or verification request.", max_length=35)
    reason: str | None = F("Text of the reason, the question asked, or the answer given.", max_length=1000)
    request_id: str | None = F("Identifier of the verification request (and of its answer).", max_length=35)
    notified_at: dt.datetime | None = F("When the authority notified.")


class Decision(str, enum.Enum):  # noqa: UP042 - StrEnum would change str()/format() output of existing callers
    """The authority's decision on an application."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    SUPPLEMENT_REQUESTED = "supplement_requested"
    ISSUED = "issued"
    AMENDED = "amended"


class Permit(_Frozen):
    """An application for, or the decision on, a permit or licence (quarantine, import licence)."""

    procedure_code: str | None = F("Procedure code of the permit (e.g. BNNPTNT0600011).", max_length=100)
    number: str | None = F("Permit or licence number.", max_length=50)
    application_number: str | None = F("Number of the application the decision answers.", max_length=50)
    product_type: str | None = F("Product type of the application (native code).", max_length=255)
    purpose: str | None = F("Purpose of the import or export.", max_length=500)
    purpose_note: str | None = F("Further details on the purpose.", max_length=500)
    expected_date: dt.datetime | None = F("Expected date of import or execution.")
    decision: Decision | None = F("Decision on the application.")
    decision_date: dt.datetime | None = F("Date of the decision.")
    reason: str | None = F("Reason of the decision.", max_length=1000)
    department: str | None = F("Department that decided.", max_length=250)
    officer: str | None = F("Officer who decided.", max_length=250)
    valid_until: dt.datetime | None = F("End of validity.")
    border_gates: str | None = F("Border gates through which the goods may enter.", max_length=500)
    remarks: str | None = F("Remarks.", max_length=1000)


class ErrorEntry(_Frozen):
    """One error in a negative acknowledgement."""

    code: str = Field(description="Error code.", max_length=50)
    message: str | None = F("Error text.", max_length=1000)


class Acknowledgement(_Frozen):
    """A receipt acknowledgement (positive: received_at; negative: errors)."""

    received_at: dt.datetime | None = F("When the acknowledged message was received.")
    errors: tuple[ErrorEntry, ...] = F("Errors of a negative acknowledgement.", default=())


class CustomsDeclaration(_Frozen):
    """An export declaration as the exporting customs passes it to the importing customs (the ASEAN Customs
    Declaration Document, ACDD), beyond its parties, transport and goods."""

    number: str | None = F(
        "Number of the export declaration (or export permit) as the exporting customs registered it.", max_length=35
    )
    registered_at: dt.datetime | None = F("When the exporting customs registered the declaration.")


class CustomsResponseStatus(enum.StrEnum):
    """The importing customs' answer to an export declaration it received."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    QUERY = "query"


class CustomsResponse(_Frozen):
    """The importing customs' answer to an ACDD (the Customs Response), travelling back to the exporting customs."""

    declaration_number: str | None = F("Number of the export declaration answered.", max_length=35)
    status: CustomsResponseStatus | None = F(
        "accepted, rejected, or query (the importing customs asks about the declaration)."
    )
    reason: str | None = F("Why the declaration was rejected, or what the query asks.", max_length=1000)
    responded_at: dt.datetime | None = F("When the importing customs answered.")


class DeclarationCancellation(_Frozen):
    """The exporting customs' cancellation of an export declaration (ACDD) it sent."""

    declaration_number: str | None = F("Number of the export declaration cancelled.", max_length=35)
    reason: str | None = F("Why the declaration is cancelled.", max_length=1000)
    cancelled_at: dt.datetime | None = F("When the exporting customs cancelled the declaration.")


class ShipParticulars(_Frozen):
    """The ship of a ship call (IMO FAL form 1, general declaration: boxes 1-5 and the tonnages)."""

    imo_number: str | None = F(
        "IMO ship identification number (7 digits, without the 'IMO' prefix).", pattern=r"^[0-9]{7}$"
    )
    call_sign: str | None = F("Radio call sign of the ship.", max_length=35)
    name: str | None = F("Name of the ship.", max_length=255)
    flag: str | None = F("Flag state of the ship, ISO 3166-1 alpha-2.", code_list="ISO3166")
    gross_tonnage: Decimal | None = F("Gross tonnage.", ge=0)
    net_tonnage: Decimal | None = F("Net tonnage.", ge=0)
    ship_type: str | None = F("Type of ship (native ship-type code).", max_length=35)
    mmsi: str | None = F("Maritime Mobile Service Identity (9 digits).", pattern=r"^[0-9]{9}$")
    master: str | None = F("Name of the master.", max_length=255)
    registry_certificate: str | None = F("Number of the certificate of registry.", max_length=50)
    registry_port: str | None = F("Port of registry as written on the certificate of registry.", max_length=255)
    registry_date: dt.date | None = F("Date of the certificate of registry.")
    length_overall: Decimal | None = F("Length overall, metres.", ge=0)
    breadth: Decimal | None = F("Breadth, metres.", ge=0)
    deadweight: Decimal | None = F("Deadweight, tonnes.", ge=0)
    owner: Party | None = F("Shipowner.")


class Voyage(_Frozen):
    """The voyage of a ship call: where and when the ship arrives and leaves (FAL form 1)."""

    voyage_number: str | None = F("Voyage number.", max_length=35)
    arrival: bool | None = F("True for the arrival of the ship, False for its departure.")
    port_of_call: str | None = F("Port of arrival or departure, UN/LOCODE.", code_list="UNLOCODE")
    eta: dt.datetime | None = F("Estimated (or actual) time of arrival.")
    etd: dt.datetime | None = F("Estimated (or actual) time of departure.")
    last_port: str | None = F("Last port of call, UN/LOCODE.", code_list="UNLOCODE")
    next_port: str | None = F("Next port of call, UN/LOCODE.", code_list="UNLOCODE")
    berth: str | None = F("Berth, wharf or anchorage of the ship in port (native code).", max_length=50)
    purpose_of_call: str | None = F("Purpose of the call (native purpose code).", max_length=35)
    previous_ports: tuple[str, ...] = F(
        "Ports called before the last port, UN/LOCODE.", code_list="UNLOCODE", default=()
    )
    subsequent_ports: tuple[str, ...] = F(
        "Ports to be called after the next port, UN/LOCODE.", code_list="UNLOCODE", default=()
    )
    draught_forward: Decimal | None = F("Shown draught forward, metres.", ge=0)
    draught_aft: Decimal | None = F("Shown draught aft, metres.", ge=0)
    transit_from: str | None = F(
        "Start of the transit the maritime administration permits (a place or a time, as it wrote it).",
        max_length=255,
    )
    transit_to: str | None = F(
        "End of the transit the maritime administration permits (a place or a time, as it wrote it).",
        max_length=255,
    )


class IdentityDocument(_Frozen):
    """An identity or travel document of a person on board (passport, seafarer's identity document)."""

    type: str | None = F("Type of the document (native code: passport, seafarer's book, ...).", max_length=35)
    number: str | None = F("Number of the document.", max_length=35)
    issuing_state: str | None = F("State that issued the document, ISO 3166-1 alpha-2.", code_list="ISO3166")
    expiry_date: dt.date | None = F("Date the document expires.")


class Person(_Frozen):
    """A person on board: a crew member (FAL form 5) or a passenger (FAL form 6)."""

    family_name: str | None = F("Family name.", max_length=255)
    given_names: str | None = F("Given names.", max_length=255)
    nationality: str | None = F("Nationality, ISO 3166-1 alpha-2.", code_list="ISO3166")
    date_of_birth: dt.date | None = F("Date of birth.")
    place_of_birth: str | None = F("Place of birth.", max_length=255)
    gender: str | None = F("Gender (M, F or X).", max_length=10)
    rank_or_rating: str | None = F("Rank or rating of a crew member (native code).", max_length=35)
    identity_document: IdentityDocument | None = F("Identity or travel document.")
    port_of_embarkation: str | None = F("Port where the passenger embarked, UN/LOCODE.", code_list="UNLOCODE")
    port_of_disembarkation: str | None = F("Port where the passenger disembarks, UN/LOCODE.", code_list="UNLOCODE")
    transit: bool | None = F("True for a passenger in transit.")


class DangerousGoodsItem(_Frozen):
    """One item of the dangerous goods manifest (FAL form 7)."""

    un_number: str | None = F("UN number of the substance (4 digits).", pattern=r"^[0-9]{4}$")
    proper_shipping_name: str | None = F("Proper shipping name.", max_length=500)
    imo_class: str | None = F("IMDG class or division (1.1 to 9).", max_length=10)
    packing_group: str | None = F("Packing group (I, II or III).", max_length=5)
    quantity: Quantity | None = F("Quantity (gross mass or volume) of the item.")
    stowage: str | None = F("Stowage position on board.", max_length=255)
    reference: str | None = F("Booking or reference number of the item.", max_length=50)
    marks: str | None = F("Marks and numbers of the container or packages.", max_length=512)
    package_count: int | None = F("Number of packages.", ge=0)
    package_type: str | None = F("Kind of packages.", max_length=255)
    subsidiary_risk: str | None = F("Subsidiary risk class.", max_length=35)
    flash_point: str | None = F("Flash point (degrees Celsius, as written).", max_length=35)
    marine_pollutant: bool | None = F("True when the item is a marine pollutant.")
    ems: str | None = F("Emergency schedule (EmS) numbers.", max_length=35)


class StoresItem(_Frozen):
    """One article of the ship's stores declaration (FAL form 3)."""

    name: str | None = F("Name of the article.", max_length=255)
    quantity: Quantity | None = F("Quantity of the article.")
    location: str | None = F("Location on board.", max_length=255)
    use: str | None = F("Official use on board.", max_length=255)


class CrewEffect(_Frozen):
    """Effects of one crew member that are dutiable or subject to restrictions (FAL form 4)."""

    crew_member: str | None = F(
        "Name of the crew member: the family name when given_names is set, else the full name.", max_length=500
    )
    given_names: str | None = F("Given names of the crew member.", max_length=255)
    rank_or_rating: str | None = F("Rank or rating of the crew member (native code).", max_length=35)
    description: str | None = F("Description of the effects.", max_length=1000)
    quantity: Quantity | None = F("Quantity of the effects.")


class HealthDeclaration(_Frozen):
    """The maritime declaration of health (IHR 2005, annex 8) in the parts the health quarantine decides on."""

    ill_persons: int | None = F("Number of persons ill on board during the voyage.", ge=0)
    deaths: int | None = F("Number of persons who died on board during the voyage.", ge=0)
    suspected_infectious: bool | None = F("True when an illness on board is suspected to be infectious.")
    sanitation_certificate_number: str | None = F(
        "Ship sanitation control (exemption) certificate number.", max_length=50
    )
    sanitation_certificate_expiry: dt.date | None = F("Expiry of the ship sanitation certificate.")
    sanitation_certificate_place: str | None = F("Where the ship sanitation certificate was issued.", max_length=255)
    last_ports_visited: tuple[str, ...] = F(
        "Ports visited within the last 30 days, UN/LOCODE.", code_list="UNLOCODE", default=()
    )
    remarks: str | None = F("Remarks (reports on the ill, the dead, the sanitary measures).", max_length=5000)


class SecurityPortCall(_Frozen):
    """One of the ship's last calls at a port facility, as its security notification lists them."""

    port: str | None = F("The port, UN/LOCODE.", code_list="UNLOCODE")
    arrival: dt.datetime | None = F("When the ship arrived.")
    departure: dt.datetime | None = F("When the ship left.")
    security_level: str | None = F("Security level the ship operated at there (1, 2 or 3).", max_length=10)


class ShipSecurity(_Frozen):
    """The ship's pre-arrival security information (SOLAS XI-2 and the ISPS Code)."""

    certificate_valid: bool | None = F("True when the ship holds a valid International Ship Security Certificate.")
    certificate_issuer: str | None = F("Authority or organisation that issued the certificate.", max_length=255)
    certificate_issued: dt.date | None = F("Date the certificate was issued.")
    certificate_expiry: dt.date | None = F("Date the certificate expires.")
    security_level: str | None = F("Security level the ship operates at (1, 2 or 3).", max_length=10)
    last_port_calls: tuple[SecurityPortCall, ...] = F("The ship's last calls at port facilities.", default=())
    additional_measures: bool | None = F(
        "True when special or additional security measures were taken during the last calls."
    )
    additional_measures_details: str | None = F("What those measures were.", max_length=2000)
    security_maintained: bool | None = F("True when appropriate ship security was maintained during the last calls.")
    security_maintained_details: str | None = F("How (or why not), as declared.", max_length=2000)


class Shifting(_Frozen):
    """A move of the ship between berths within the port, as the port authority orders it (the shifting order; the
    order's number, issuer and date are the message's ``permit``)."""

    from_berth: str | None = F("Where the ship moves from: berth, wharf or anchorage, as written.", max_length=255)
    to_berth: str | None = F("Where the ship moves to: berth, wharf or anchorage, as written.", max_length=255)
    harbour: str | None = F("Harbour of the port the ship moves to (native code).", max_length=50)
    wharf: str | None = F("Wharf the ship moves to (native code).", max_length=50)
    shifting_at: dt.datetime | None = F("When the ship is to move.")
    reason: str | None = F("Why the ship moves.", max_length=1000)
    tugs: str | None = F("Tugs assigned to the move, as written.", max_length=500)


class ShipCall(_Frozen):
    """One call of a ship at a port: everything the IMO FAL forms carry, declared once by the shipping agent."""

    reference: str | None = F("Identifier of the call given by the agent or the port.", max_length=50)
    amends: str | None = F("Reference of the call this declaration amends.", max_length=50)
    ship: ShipParticulars | None = F("The ship.")
    voyage: Voyage | None = F("The voyage: port of call, times, last and next ports.")
    crew: tuple[Person, ...] = F("Crew list (FAL form 5).", default=())
    passengers: tuple[Person, ...] = F("Passenger list (FAL form 6).", default=())
    dangerous_goods: tuple[DangerousGoodsItem, ...] = F("Dangerous goods manifest (FAL form 7).", default=())
    stores: tuple[StoresItem, ...] = F("Ship's stores declaration (FAL form 3).", default=())
    crew_effects: tuple[CrewEffect, ...] = F("Crew's effects declaration (FAL form 4).", default=())
    health: HealthDeclaration | None = F("Maritime declaration of health.")
    cargo_summary: str | None = F("Brief description of the cargo (FAL form 1).", max_length=2000)
    agent: Party | None = F("The shipping agent who declares the call on the shipowner's behalf.")
    animals_on_board: str | None = F("Animals on board, as declared for the animal quarantine.", max_length=2000)
    plants_on_board: str | None = F(
        "Plants and plant products on board, as declared for the plant quarantine.", max_length=2000
    )
    crew_count: int | None = F("Number of crew as declared (FAL form 1), when the crew list is not carried.", ge=0)
    passenger_count: int | None = F(
        "Number of passengers as declared (FAL form 1), when the passenger list is not carried.", ge=0
    )
    shifting: Shifting | None = F("A move of the ship between berths within the port (the shifting order).")
    security: ShipSecurity | None = F("The ship's pre-arrival security information (the security notification).")


class ShipCallAnswer(enum.StrEnum):
    """An agency's answer to a ship call."""

    ACCEPTED = "accepted"
    ACCEPTED_WITH_CONDITIONS = "accepted_with_conditions"
    REFUSED = "refused"


class ShipCallDecision(_Frozen):
    """One agency's decision on a ship call (port entry, clearance), correlated to the call by its reference."""

    call: str | None = F("Reference of the ship call (the version of it) decided on.", max_length=50)
    answer: ShipCallAnswer | None = F("The decision: accepted, accepted with conditions, or refused.")
    reasons: tuple[str, ...] = F("Why the call was refused (one reason per item).", default=())
    conditions: tuple[str, ...] = F("The conditions of an acceptance with conditions.", default=())
    decided_at: dt.datetime | None = F("When the agency decided.")


class TradeMessage(_Frozen):
    """One harmonized message: the routing envelope, the document and every data element it carries."""

    envelope: Envelope | None = F("Routing data.")
    document: DocumentInfo | None = F("The document carried.")
    parties: Parties = Field(default_factory=Parties, description="Parties by role.")
    transport: Transport | None = F("Transport of the consignment.")
    goods: tuple[GoodsItem, ...] = F("Goods items.", default=())
    documents: tuple[DocumentReference, ...] = F("Referenced documents and attachments.", default=())
    notes: tuple[Note, ...] = F("Coded notes on the document.", default=())
    signatory: Signatory | None = F("Signature of the declaration or certificate.")
    origin_certificate: OriginCertificate | None = F("Certificate of origin data (ATIGA Form D).")
    permit: Permit | None = F("Permit or licence application or decision.")
    acknowledgement: Acknowledgement | None = F("Acknowledgement of a received message.")
    customs_declaration: CustomsDeclaration | None = F("Export declaration data (ASEAN Customs Declaration Document).")
    customs_response: CustomsResponse | None = F("The importing customs' answer to an export declaration.")
    cancellation: DeclarationCancellation | None = F("Cancellation of an export declaration.")
    certificate_notice: CertificateNotice | None = F("A notification about an issued certificate of origin.")
    ship_call: ShipCall | None = F("A ship call: the ship, its voyage and the FAL declarations.")
    ship_call_decision: ShipCallDecision | None = F("An agency's decision on a ship call.")
