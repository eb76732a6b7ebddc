"""Profile ``asw-acdd``: the ASEAN Customs Declaration Document exchanged with a partner customs.

The partner customs (the kit's party, ``settings.party``) submits signed ACDD XML (``mappings/schemas/acdd/ACDD.md``,
``X-Format`` ``settings.acdd.format``) to ``POST /v1/messages`` with its bearer token, as the gateway's partner
customs parties do: ACDDs (``settings.acdd.declaration_type``), their cancellations
(``settings.acdd.cancellation_type``) and Customs Responses (``settings.acdd.response_type``). Each document the
kit sends is the partner guide's example with a fresh declaration number, so that no case's document is a replay of
another's. The invalid declarations are that example with one mandatory parameter removed, a bad HS code or a bad
UN/LOCODE: the party refuses each with ``VALIDATION_FAILED`` and the issue (path and code) the gateway reports
for it (:data:`MANDATORY`, :data:`BAD_HS_CODE`, :data:`BAD_LOCODE`).

As receiver, the kit is the partner customs' endpoint: the party delivers a Customs Response, which must be ACDD
XML valid against the XSD and the business rules.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from conformance.listener import Incoming, Listener, listening, require_target
from conformance.pki import KitPki, open_pki
from conformance.registry import case, profile
from conformance.runner import PREPARING, TRANSPORT_ERRORS, CaseContext, HttpReply, PrerequisiteUnmet, unreachable
from conformance.settings import AcddSettings, KitSettings, RunOptions
from gateway.errors import NswError
from signing.sign import sign_document
from signing.xml import ParserLimits, parse_xml, serialize

__all__ = ["ACDD", "AcddSession", "MANDATORY", "BAD_HS_CODE", "BAD_LOCODE", "declaration", "customs_response"]

NS = "urn:nsw-gateway:asean:acdd:1"
_N = {"a": NS}
_DECLARATION_ID = "<ID>305123456710</ID>"

_DECLARATION = f"""<?xml version='1.0' encoding='UTF-8'?>
<ExportDeclaration xmlns="{NS}">
  <Declaration>
    {_DECLARATION_ID}
    <RegistrationDateTime>2026-03-02T09:30:00+07:00</RegistrationDateTime>
    <ExportCountryCode>TH</ExportCountryCode>
    <ImportCountryCode>VN</ImportCountryCode>
  </Declaration>
  <Exporter>
    <ID>0105555000001</ID>
    <Name>Siam Foods Co Ltd</Name>
  </Exporter>
  <Consignee>
    <Name>Minh Phu Seafood JSC</Name>
    <Address>
      <Line>21 Le Duan</Line>
      <CityName>Ho Chi Minh City</CityName>
      <CountryCode>VN</CountryCode>
    </Address>
  </Consignee>
  <DeclaringAgent>
    <ID>0105555000777</ID>
    <Name>Bangkok Customs Brokers Co</Name>
  </DeclaringAgent>
  <Transport>
    <DepartureDate>2026-03-03</DepartureDate>
    <BorderModeCode>1</BorderModeCode>
    <LoadingLocation>
      <ID>THLCH</ID>
      <Name>Laem Chabang</Name>
    </LoadingLocation>
    <DischargeLocation>
      <ID>VNSGN</ID>
      <Name>Ho Chi Minh City</Name>
    </DischargeLocation>
  </Transport>
  <GoodsItem>
    <SequenceNumeric>1</SequenceNumeric>
    <Description>Canned tuna</Description>
    <ClassificationCode>160414</ClassificationCode>
    <Quantity unitCode="KGM">800</Quantity>
    <OriginCountryCode>TH</OriginCountryCode>
  </GoodsItem>
</ExportDeclaration>
""".encode()
"""The ACDD every declaration case starts from: Thai customs declaring an export to Viet Nam."""


@dataclass(frozen=True)
class Expected:
    """One invalid declaration: what is changed, and the first issue the party reports for it."""

    name: str
    remove: str | None
    """XPath (prefix ``a``) of the element removed, or None."""
    replace: tuple[bytes, bytes] | None
    path: str
    code: str
    names: str = ""
    """A local element name the issue's message must name (the missing element), or empty."""


def _missing(name: str, remove: str, path: str) -> Expected:
    local = remove.rsplit(":", 1)[-1]
    return Expected(name, remove, None, path, "SCHEMA_INVALID", local)


MANDATORY: tuple[Expected, ...] = (
    _missing("declaration (permit) number", "a:Declaration/a:ID", "/*/*[1]/*[1]"),
    _missing("exporter identifier", "a:Exporter/a:ID", "/*/*[2]/*"),
    _missing("exporter name", "a:Exporter/a:Name", "/*/*[2]"),
    _missing("consignee name", "a:Consignee/a:Name", "/*/*[3]/*"),
    _missing("consignee address", "a:Consignee/a:Address", "/*/*[3]"),
    _missing("declaring agent identifier", "a:DeclaringAgent/a:ID", "/*/*[4]/*"),
    _missing("declaring agent name", "a:DeclaringAgent/a:Name", "/*/*[4]"),
    _missing("departure date", "a:Transport/a:DepartureDate", "/*/*[5]/*[1]"),
    _missing("item serial number", "a:GoodsItem/a:SequenceNumeric", "/*/*[6]/*[1]"),
    _missing("HS code", "a:GoodsItem/a:ClassificationCode", "/*/*[6]/*[3]"),
    _missing("quantity", "a:GoodsItem/a:Quantity", "/*/*[6]/*[4]"),
    Expected("unit of quantity", None, (b' unitCode="KGM"', b""), "/*/*[6]/*[4]", "SCHEMA_INVALID", "unitCode"),
    _missing("country of origin", "a:GoodsItem/a:OriginCountryCode", "/*/*[6]"),
    _missing("outward transport mode", "a:Transport/a:BorderModeCode", "/*/*[5]/*[2]"),
    _missing("port of discharge", "a:Transport/a:DischargeLocation", "/*/*[5]"),
    _missing("goods item", "a:GoodsItem", "/*"),
)
"""The fifteen mandatory parameters (quantity and unit counted apart) and the goods item that carries six of them,
each removed from the declaration: the XSD requires each, so the gateway reports ``SCHEMA_INVALID`` at the element
where the schema noticed it (the next element at the parameter's position, or its parent when it was the last
child; the Quantity for its unitCode), naming the missing element."""

BAD_HS_CODE = Expected("HS code", None, (b">160414<", b">1604.14<"), "/*/*[6]/*[3]", "SCHEMA_INVALID")
"""An HS code with a dot: not 6 to 10 digits, refused by the XSD at GoodsItem/ClassificationCode."""
BAD_LOCODE = Expected(
    "UN/LOCODE", None, (b"<ID>VNSGN</ID>", b"<ID>XXSGN</ID>"), "transport.port_of_discharge.code", "LOCODE_INVALID"
)
"""A port of discharge of the LOCODE's shape whose country XX is no ISO 3166 country: a business rule."""


def _declaration_number() -> str:
    return "".join(random.choices("0123456789", k=12))


def declaration(number: str | None = None) -> bytes:
    """The kit's ACDD with ``number`` (default: a fresh one) as its declaration number."""
    return _DECLARATION.replace(_DECLARATION_ID.encode(), f"<ID>{number or _declaration_number()}</ID>".encode(), 1)


def _invalid(expected: Expected) -> bytes:
    doc = declaration()
    if expected.replace is not None:
        return doc.replace(*expected.replace, 1)
    root = parse_xml(doc)
    assert expected.remove is not None
    element = root.find(expected.remove, _N)
    assert element is not None, f"the kit's declaration has no {expected.remove}"
    parent = element.getparent()
    assert parent is not None
    parent.remove(element)
    return serialize(root)


def cancellation(number: str, reason: str = "Shipment withdrawn by the exporter.") -> bytes:
    """A cancellation of the declaration ``number``."""
    return (
        f"<?xml version='1.0' encoding='UTF-8'?>\n<DeclarationCancellation xmlns=\"{NS}\"><Cancellation>"
        f"<DeclarationID>{number}</DeclarationID><Reason>{reason}</Reason>"
        "<ExportCountryCode>TH</ExportCountryCode><ImportCountryCode>VN</ImportCountryCode>"
        "</Cancellation></DeclarationCancellation>\n"
    ).encode()


def customs_response(number: str, status: str = "accepted", reason: str | None = None) -> bytes:
    """A Customs Response to the declaration ``number`` (the importing side answering an ACDD)."""
    because = f"<Reason>{reason}</Reason>" if reason else ""
    return (
        f"<?xml version='1.0' encoding='UTF-8'?>\n<CustomsResponse xmlns=\"{NS}\"><Response>"
        f"<DeclarationID>{number}</DeclarationID><StatusCode>{status}</StatusCode>{because}"
        "<ExportCountryCode>VN</ExportCountryCode><ImportCountryCode>TH</ImportCountryCode>"
        "</Response></CustomsResponse>\n"
    ).encode()


@dataclass
class AcddSession:
    """What the ACDD cases share: options, the kit's PKI and, as receiver, the listener."""

    options: RunOptions
    pki: KitPki
    listener: Listener | None = None
    seen: set[str] = field(default_factory=set)

    @property
    def settings(self) -> KitSettings:
        return self.options.settings

    @property
    def acdd(self) -> AcddSettings:
        return self.options.settings.acdd

    def signed(self, document: bytes) -> bytes:
        return sign_document(document, self.pki.signer(self.settings.signer))

    async def submit(self, ctx: CaseContext, document_type: str, body: bytes, *, note: str = "") -> HttpReply:
        headers = {
            "Authorization": f"Bearer {self.settings.token}",
            "X-Message-Id": f"conf-acdd-{uuid.uuid4().hex}",
            "X-Document-Type": document_type,
            "X-Format": self.acdd.format,
            "Content-Type": "application/xml",
        }
        return await ctx.http.post(self.options.url("/v1/messages"), self.signed(body), headers, note=note)


@asynccontextmanager
async def _session(options: RunOptions) -> AsyncIterator[AcddSession]:
    s = options.settings
    if options.role == "sender":
        require_target(options, token=True)
    if s.pki is None:
        raise PrerequisiteUnmet("no PKI configured (settings 'pki'); run 'nswgw conformance pki DIR'")
    async with listening(options, s.acdd.receiver_path) as listener:
        yield AcddSession(options, open_pki(s.pki), listener)


ACDD = profile(
    "asw-acdd",
    "ASEAN Customs Declaration Document with a partner customs (ASEAN Single Window)",
    session=_session,
    description="A partner customs sending ACDDs, cancellations and Customs Responses, and receiving responses.",
)


def _body(reply: HttpReply) -> Mapping[str, Any]:
    data = reply.json()
    return data if isinstance(data, dict) else {}


def _accepted(ctx: CaseContext, reply: HttpReply, what: str) -> None:
    ctx.observe(reply.error_code)
    ack = _body(reply)
    ctx.check(reply.status == 202, f"{what}: expected HTTP 202, got {reply.status} ({reply.error_code or 'no code'})")
    ctx.check(
        ack.get("state") not in (None, "REJECTED") and not ack.get("error"),
        f"{what}: the ack's state is {ack.get('state')!r} with error {ack.get('error')!r}",
    )


def _issue_problem(reply: HttpReply, expected: Expected) -> str | None:
    """Why ``reply`` is not the refusal ``expected`` describes (None when it is)."""
    if reply.status != 422 or reply.error_code != "VALIDATION_FAILED":
        return f"HTTP {reply.status} {reply.error_code or 'without an error code'}, not 422 VALIDATION_FAILED"
    error = _body(reply).get("error") or {}
    issues = [i for i in error.get("issues", []) if isinstance(i, dict)]
    if not issues:
        return "VALIDATION_FAILED without issues"
    first = issues[0]
    got = (first.get("path"), first.get("code"))
    if got != (expected.path, expected.code):
        return f"first issue {got[1]} at {got[0]!r}, expected {expected.code} at {expected.path!r}"
    if expected.names and not any(
        f"{mark}{expected.names}{end}" in str(first.get("message", "")) for mark, end in (("}", " "), ("'", "'"))
    ):
        return f"the issue does not name the missing element {expected.names}: {first.get('message')!r}"
    return None


async def _refused(ctx: CaseContext, expected: Expected) -> None:
    s: AcddSession = ctx.session
    reply = await s.submit(ctx, s.acdd.declaration_type, _invalid(expected), note=f"{expected.name}: invalid")
    problem = _issue_problem(reply, expected)
    ctx.observe(reply.error_code)
    ctx.check(problem is None, f"{expected.name}: {problem}")


# ----------------------------------------------------------------------------------------------- cases


@case("NSW-ACDD-TA00", ACDD, preflight=True)
async def preflight(ctx: CaseContext) -> None:
    """The target is reachable, serves the REST API and accepts the kit's token (run first).

    Prerequisite: a target URL (--target) and the kit's token (settings 'token').
    Predicate: GET /v1/messages?reference=<fresh> with the kit's token is answered neither 404 (no REST API at
    the target) nor 401 (token unknown). When this fails, the other cases are NOT_RUN.
    """
    s: AcddSession = ctx.session
    url = s.options.url(f"/v1/messages?reference=conf-preflight-{uuid.uuid4().hex}")
    try:
        reply = await ctx.http.get(url, {"Authorization": f"Bearer {s.settings.token}"}, note="preflight")
    except TRANSPORT_ERRORS as exc:
        ctx.fail(unreachable(s.options.target, exc))
    ctx.check(
        reply.status != 404,
        f"the target answers HTTP 404 on GET /v1/messages: no gateway REST API there; correct --target. {PREPARING}",
    )
    ctx.check(
        reply.status != 401 and reply.error_code != "AUTH_REQUIRED",
        f"the gateway does not accept the kit's token for party {s.settings.party}: add [parties."
        f"{s.settings.party}] tokens = [\"<settings 'token'>\"] with the ACDD document_types, format = "
        f'"{s.acdd.format}" and trust; {PREPARING}',
    )


@case("NSW-ACDD-TA01", ACDD)
async def valid_declaration(ctx: CaseContext) -> None:
    """A valid signed ACDD is accepted.

    Prerequisite: the kit's party may submit the declaration type in the ACDD format, signed by the kit's PKI.
    Predicate: HTTP 202 with an acknowledgement whose state is not REJECTED and that carries no error.
    """
    s: AcddSession = ctx.session
    reply = await s.submit(ctx, s.acdd.declaration_type, declaration(), note="valid ACDD")
    _accepted(ctx, reply, "the ACDD")


@case("NSW-ACDD-TA02", ACDD)
async def mandatory_parameters(ctx: CaseContext) -> None:
    """An ACDD missing any one of its mandatory parameters is refused, naming it.

    Prerequisite: as NSW-ACDD-TA01; the party validates ACDDs against the XSD.
    Predicate: for each of the fifteen parameters (and the goods item), the declaration without it is answered
    HTTP 422 VALIDATION_FAILED whose first issue is SCHEMA_INVALID at the expected path and names the missing
    element (conformance/profiles/acdd.py MANDATORY); every parameter is tried, the reason lists each failure.
    """
    s: AcddSession = ctx.session
    problems: list[str] = []
    for expected in MANDATORY:
        reply = await s.submit(ctx, s.acdd.declaration_type, _invalid(expected), note=f"without the {expected.name}")
        ctx.observe(reply.error_code)
        problem = _issue_problem(reply, expected)
        if problem is not None:
            problems.append(f"without the {expected.name}: {problem}")
    ctx.check(not problems, f"{len(problems)} of {len(MANDATORY)} not refused as expected: " + "; ".join(problems))


@case("NSW-ACDD-TA03", ACDD)
async def bad_hs_code(ctx: CaseContext) -> None:
    """An ACDD whose HS code is not 6 to 10 digits is refused with VALIDATION_FAILED at the code.

    Prerequisite: as NSW-ACDD-TA02.
    Predicate: HTTP 422 VALIDATION_FAILED whose first issue is SCHEMA_INVALID at GoodsItem/ClassificationCode
    (/*/*[6]/*[3]) for the HS code 1604.14.
    """
    await _refused(ctx, BAD_HS_CODE)


@case("NSW-ACDD-TA04", ACDD)
async def bad_locode(ctx: CaseContext) -> None:
    """An ACDD whose port of discharge is no UN/LOCODE is refused with LOCODE_INVALID at the port.

    Prerequisite: as NSW-ACDD-TA02; the party checks ports against ISO 3166 countries.
    Predicate: HTTP 422 VALIDATION_FAILED whose first issue is LOCODE_INVALID at
    transport.port_of_discharge.code for the port XXSGN (no country XX).
    """
    await _refused(ctx, BAD_LOCODE)


@case("NSW-ACDD-TA05", ACDD)
async def cancellation_accepted(ctx: CaseContext) -> None:
    """The cancellation of an ACDD the kit sent is accepted.

    Prerequisite: as NSW-ACDD-TA01; the kit's party may submit the cancellation type.
    Predicate: a valid ACDD and then its cancellation (the same declaration number) are each answered HTTP 202
    with an acknowledgement that is not REJECTED.
    """
    s: AcddSession = ctx.session
    number = _declaration_number()
    first = await s.submit(ctx, s.acdd.declaration_type, declaration(number), note=f"ACDD {number}")
    ctx.require(first.status == 202, f"the ACDD to cancel was not accepted (HTTP {first.status})")
    reply = await s.submit(ctx, s.acdd.cancellation_type, cancellation(number), note=f"cancels {number}")
    _accepted(ctx, reply, "the cancellation")


@case("NSW-ACDD-TA06", ACDD)
async def customs_response_accepted(ctx: CaseContext) -> None:
    """A Customs Response of the partner customs is accepted; a rejection without a reason is refused.

    Prerequisite: the kit's party may submit the response type (the partner answering the party's ACDDs).
    Predicate: an accepting Customs Response is answered HTTP 202; a rejecting one without a reason HTTP 422
    VALIDATION_FAILED whose first issue is ACDD_RESPONSE_REASON_REQUIRED at customs_response.reason.
    """
    s: AcddSession = ctx.session
    reply = await s.submit(ctx, s.acdd.response_type, customs_response(_declaration_number()), note="accepted")
    _accepted(ctx, reply, "the accepting Customs Response")
    no_reason = await s.submit(
        ctx, s.acdd.response_type, customs_response(_declaration_number(), "rejected"), note="rejected, no reason"
    )
    expected = Expected("reason", None, None, "customs_response.reason", "ACDD_RESPONSE_REASON_REQUIRED")
    problem = _issue_problem(no_reason, expected)
    ctx.observe(no_reason.error_code)
    ctx.check(problem is None, f"the rejection without a reason: {problem}")


# ----------------------------------------------------------------------------------- the kit as receiver


def _response_problem(m: Incoming, limit: int) -> str | None:
    """Why a delivery is not a valid Customs Response (None when it is)."""
    from mappings.acdd import RESPONSE, AcddFormat
    from mappings.rules import check

    if not m.headers.get("X-Message-Id"):
        return "the delivery carries no X-Message-Id"
    try:
        root = parse_xml(m.body, limits=ParserLimits(max_bytes=limit))
    except NswError as exc:
        return f"the delivery is refused by the hardened parser: {exc}"
    if root.tag != RESPONSE.tag:
        return f"the delivery's root is {etree.QName(root).text!r}, not {RESPONSE.tag!r}"
    for signature in root.findall("{http://www.w3.org/2000/09/xmldsig#}Signature"):
        root.remove(signature)
    try:
        check(AcddFormat().parse(serialize(root)))
    except NswError as exc:
        return f"the Customs Response is not valid ACDD: {exc}"
    return None


@case("NSW-ACDD-RX01", ACDD, role="receiver")
async def party_delivers_customs_response(ctx: CaseContext) -> None:
    """The party delivers a Customs Response in the ACDD format, valid against the XSD and the rules.

    Prerequisite: the party routes a Customs Response to the kit's listener (settings 'acdd.receiver_path')
    within the wait.
    Predicate: the POST carries an X-Message-Id, X-Document-Type is settings 'acdd.response_type', and the body
    is a CustomsResponse valid against asean-acdd-1.xsd and the business rules (a rejection or query states its
    reason); the kit answers a JSON receipt for it.
    """
    s: AcddSession = ctx.session
    assert s.listener is not None
    m = await s.listener.next(
        ctx, s.options.wait, lambda x: x.headers.get("X-Message-Id", "") not in s.seen, what="a Customs Response"
    )
    assert m is not None
    mid = m.headers.get("X-Message-Id", "")
    s.seen.add(mid)
    m.respond(
        ctx,
        200,
        json.dumps({"message_id": mid, "duplicate": False}).encode(),
        {"Content-Type": "application/json"},
        note="receipt",
    )
    doc_type = m.headers.get("X-Document-Type", "")
    ctx.check(doc_type == s.acdd.response_type, f"X-Document-Type is {doc_type!r}, not {s.acdd.response_type!r}")
    problem = _response_problem(m, s.settings.max_message_bytes)
    ctx.check(problem is None, problem or "")
