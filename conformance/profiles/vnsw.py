"""Profile ``vnsw-ministry``: the VNSW SOAP envelope exchange of the ministry systems.

The kit (as sender) calls the party's SOAP 1.1 ``receiveRequest(requestPayload)`` endpoint
(``settings.vnsw.endpoint``, bearer token as for REST) with VNSW Envelopes whose ``From/identity`` is the
kit's party, signed in ``<SystemSignature>`` (the ``vnsw-legacy`` profile, SHA-256) with the kit's
certificates, and reads the synchronous answer in ``receiveResponse/responsePayload``: the function-99
acknowledgement, or the function-00 ``ErrorList`` whose ``ErrorCode`` is the coded error.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

import aiohttp
from lxml import etree

from conformance.listener import Incoming, Listener, listening, require_target
from conformance.pki import ANOTHER_PARTNER, EXPIRED, REVOKED, KitPki, open_pki
from conformance.registry import case, profile
from conformance.runner import PREPARING, TRANSPORT_ERRORS, CaseContext, HttpReply, PrerequisiteUnmet, unreachable
from conformance.settings import KitSettings, RunOptions
from gateway.errors import NswError
from signing.policy import SigningProfile
from signing.sign import sign_document
from signing.xml import ParserLimits, parse_xml

__all__ = ["VNSW", "VnswSession", "vnsw_envelope", "soap_request", "read_answer", "SOAP11_NS", "VNSW_WS_NS"]

SOAP11_NS = "http://schemas.xmlsoap.org/soap/envelope/"
VNSW_WS_NS = "http://com/vnsw/ws/generated"
_LIMITS = ParserLimits(max_bytes=64 * 1024 * 1024)


def vnsw_envelope(
    message_id: str,
    sender: str,
    *,
    reference: str = "BNNPTNT11190000272",
    document_type: str = "BNNPTNT0600011",
    recipient: str = "NSW",
    identity: str | None = None,
    organization: str | None = None,
) -> bytes:
    """A VNSW quarantine-result Envelope (type 12, function 05), shaped like the corpus; values fictitious.

    ``From/identity``, ``From/ministryCode`` and ``From/organizationCode`` are ``sender``, unless ``identity`` or
    ``organization`` name another ``From/identity`` or ``From/organizationCode``."""

    def party(name: str, identity: str | None = None, organization: str = "06") -> str:
        return (
            f"<name>{name}</name><identity>{identity or name}</identity><countryCode>VN</countryCode>"
            f"<ministryCode>{name}</ministryCode><organizationCode>{organization}</organizationCode>"
            f"<unitCode>{name}</unitCode>"
        )

    return (
        '<?xml version="1.0" encoding="UTF-8"?><Envelope><Header>'
        f"<Reference><version>01</version><messageId>{message_id}</messageId></Reference>"
        f"<From>{party(sender, identity, organization or sender)}</From><To>{party(recipient)}</To>"
        f"<Subject><documentType>{document_type}</documentType><type>12</type><function>05</function>"
        f"<reference>{reference}</reference><documentYear>2019</documentYear><preReference>{reference}</preReference>"
        "<preDocumentYear>2019</preDocumentYear><sendDate>2019-12-13 09:15:02</sendDate></Subject></Header>"
        f"<Body><Content><QuarantineResult><NSWFileCode>{reference}</NSWFileCode><Reason>Ho so hop le</Reason>"
        "</QuarantineResult></Content><Signature></Signature></Body></Envelope>"
    ).encode()


def soap_request(payload: bytes) -> bytes:
    """The SOAP 1.1 ``receiveRequest`` carrying ``payload`` as an escaped string (as the ministries' stacks do)."""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="{SOAP11_NS}" '
        f'xmlns:ws="{VNSW_WS_NS}"><soapenv:Header/><soapenv:Body><ws:receiveRequest><ws:requestPayload>'
        f"{escape(payload.decode('utf-8'))}</ws:requestPayload></ws:receiveRequest></soapenv:Body>"
        "</soapenv:Envelope>"
    ).encode()


@dataclass(frozen=True)
class Answer:
    """A synchronous VNSW answer: function, Subject/reference, documentType and the error list."""

    function: str
    reference: str
    document_type: str
    errors: tuple[tuple[str, str], ...]
    fault_code: str | None = None

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(c for c, _ in self.errors) + ((self.fault_code,) if self.fault_code else ())


def read_answer(body: bytes) -> Answer | None:
    """The answer in a SOAP response (responsePayload, or a SOAP fault's coded error); None if unreadable."""
    try:
        soap = parse_xml(body, limits=_LIMITS)
    except Exception:  # noqa: BLE001 - not XML: no answer
        return None
    fault = soap.find(f"{{{SOAP11_NS}}}Body/{{{SOAP11_NS}}}Fault")
    if fault is not None:
        err = fault.find("detail/{urn:nsw:gateway:error}error")
        return Answer("fault", "", "", (), err.get("code") if err is not None else "SOAP_FAULT")
    payload = soap.find(f".//{{{VNSW_WS_NS}}}responsePayload")
    text = payload.text if payload is not None else None
    if text is None or not text.strip():
        return None
    try:
        root = parse_xml(text.encode("utf-8"), limits=_LIMITS)
    except Exception:  # noqa: BLE001
        return None
    errors = tuple(
        (e.findtext("ErrorCode") or "", e.findtext("ErrorName") or "")
        for e in root.iterfind("Body/Content/ErrorList/Error")
    )
    return Answer(
        root.findtext("Header/Subject/function") or "",
        root.findtext("Header/Subject/reference") or "",
        root.findtext("Header/Subject/documentType") or "",
        errors,
    )


@dataclass
class VnswSession:
    options: RunOptions
    pki: KitPki | None
    listener: Listener | None = None
    """As receiver: where the party calls receiveRequest."""
    seen: set[str] = field(default_factory=set)

    @property
    def settings(self) -> KitSettings:
        return self.options.settings

    def signed(self, payload: bytes, signer: str = "valid") -> bytes:
        pki = self.pki
        if pki is None:
            raise PrerequisiteUnmet("no PKI configured (settings 'pki'); run 'nswgw conformance pki DIR'")
        if signer == "intruder":
            key = pki.intruder_signer()
        else:
            kinds = {
                "valid": self.settings.signer,
                "expired": EXPIRED,
                "revoked": REVOKED,
                "another-party": ANOTHER_PARTNER,
            }
            key = pki.signer(kinds[signer])
        return sign_document(payload, key, SigningProfile.vnsw_legacy())

    def envelope(self, message_id: str | None = None, **kw: str) -> bytes:
        kw.setdefault("document_type", self.settings.vnsw.document_type)
        return vnsw_envelope(
            message_id or new_id(),
            kw.pop("sender", self.settings.party),
            reference=kw.pop("reference", new_ref()),
            **kw,
        )

    async def call(
        self, ctx: CaseContext, payload: bytes, *, raw_soap: bytes | None = None, note: str = ""
    ) -> tuple[HttpReply, Answer | None]:
        headers = {
            "Authorization": f"Bearer {self.settings.token}",
            "Content-Type": "text/xml; charset=utf-8",
            "SOAPAction": f'"{self.settings.vnsw.soap_action}"',
        }
        reply = await ctx.http.post(
            self.options.url(self.settings.vnsw.endpoint),
            raw_soap if raw_soap is not None else soap_request(payload),
            headers,
            note=note,
        )
        answer = read_answer(reply.body)
        if answer is not None and answer.codes:
            ctx.observe(answer.codes[0])
        return reply, answer


def new_id() -> str:
    return str(uuid.uuid4())  # VNSW messageIds are UUIDs (at most 36 characters)


def new_ref() -> str:
    return f"CONF{uuid.uuid4().int % 10**14:014d}"


@asynccontextmanager
async def _session(options: RunOptions) -> AsyncIterator[VnswSession]:
    s = options.settings
    require_target(options, token=True)
    pki = open_pki(s.pki) if s.pki is not None else None
    async with listening(options, s.vnsw.receiver_path) as listener:
        yield VnswSession(options, pki, listener)


VNSW = profile(
    "vnsw-ministry",
    "VNSW SOAP envelope exchange (receiveRequest)",
    session=_session,
    description="Ministry systems exchanging VNSW Envelopes with the NSW over SOAP 1.1.",
)


def _ack(ctx: CaseContext, reply: HttpReply, answer: Answer | None, reference: str) -> None:
    ctx.check(reply.status == 200, f"expected HTTP 200, got {reply.status}")
    ctx.check(answer is not None, "the response carries no readable responsePayload")
    assert answer is not None
    ctx.check(
        answer.function == "99",
        f"expected a function-99 acknowledgement, got function {answer.function!r} with errors {list(answer.errors)}",
    )
    ctx.check(answer.reference == reference, f"the ack is for dossier {answer.reference!r}, not {reference!r}")


def _refused(ctx: CaseContext, answer: Answer | None, *codes: str) -> None:
    ctx.check(answer is not None, "the response carries no readable answer")
    assert answer is not None
    ctx.check(
        answer.function in ("00", "fault"), f"expected a function-00 error list, got function {answer.function!r}"
    )
    ctx.expect_code(answer.codes[0] if answer.codes else None, *codes, what="the error list")


@case("NSW-VNSW-TA00", VNSW, preflight=True)
async def preflight(ctx: CaseContext) -> None:
    """The target is reachable, serves the SOAP endpoint and accepts the kit's token (run first).

    Prerequisite: a target URL (--target), the kit's token (settings 'token') and the endpoint's path
    (settings 'vnsw.endpoint').
    Predicate: a SOAP 1.1 Envelope with an empty Body (no receiveRequest: nothing is submitted) posted with the
    kit's token is answered by the party, neither 404/405 (no endpoint at that path) nor 401 (token unknown).
    When this fails, the other cases are NOT_RUN.
    """
    s: VnswSession = ctx.session
    endpoint = s.settings.vnsw.endpoint
    empty = (
        f'<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="{SOAP11_NS}">'
        "<soapenv:Body/></soapenv:Envelope>"
    )
    try:
        reply, _ = await s.call(ctx, b"", raw_soap=empty.encode(), note="preflight: empty SOAP Body")
    except TRANSPORT_ERRORS as exc:
        ctx.fail(unreachable(s.options.target, exc))
    ctx.check(
        reply.status not in (404, 405),
        f"the target answers HTTP {reply.status} on POST {endpoint}: no VNSW SOAP endpoint there; configure "
        f"[inbound.vnsw] endpoint = \"vnsw-soap\" at the gateway or correct settings 'vnsw.endpoint'; {PREPARING}",
    )
    ctx.check(
        reply.status != 401 and reply.error_code != "AUTH_REQUIRED",
        f"the gateway does not accept the kit's token for party {s.settings.party} (settings 'token'): add "
        f'[parties.{s.settings.party}] tokens = ["<settings \'token\'>"] (format "vnsw", its document_types, trust '
        f'and verify.profile "vnsw-legacy"); {PREPARING}',
    )


@case("NSW-VNSW-TA01", VNSW)
async def valid_envelope(ctx: CaseContext) -> None:
    """A valid signed Envelope is acknowledged with function 99 for its dossier.

    Prerequisite: the party maps the kit's From/identity to the kit's party and trusts the kit's PKI.
    Predicate: HTTP 200, a responsePayload with Subject/function 99 and the submitted Subject/reference.
    """
    s: VnswSession = ctx.session
    ref = new_ref()
    reply, answer = await s.call(ctx, s.signed(s.envelope(reference=ref)))
    _ack(ctx, reply, answer, ref)


@case("NSW-VNSW-TA02", VNSW)
async def missing_header_element(ctx: CaseContext) -> None:
    """An Envelope without Header/Reference/messageId is refused with REQUEST_INVALID naming it.

    Prerequisite: as NSW-VNSW-TA01.
    Predicate: a function-00 answer whose first ErrorCode is REQUEST_INVALID and whose ErrorName names messageId.
    """
    s: VnswSession = ctx.session
    mid = new_id()
    payload = s.envelope(mid).replace(f"<messageId>{mid}</messageId>".encode(), b"")
    reply, answer = await s.call(ctx, s.signed(payload), note="no messageId")
    _refused(ctx, answer, "REQUEST_INVALID")
    ctx.check(
        answer is not None and "messageId" in answer.errors[0][1],
        f"the ErrorName does not name messageId: {answer.errors[0][1] if answer and answer.errors else ''!r}",
    )


async def _signature_case(ctx: CaseContext, code: str, *, signer: str = "valid", tamper: bool = False) -> None:
    s: VnswSession = ctx.session
    body = s.signed(s.envelope(), signer)
    if tamper:
        body = body.replace(b"Ho so hop le", b"Ho so bi sua")
    reply, answer = await s.call(ctx, body, note=f"{'content altered after signing' if tamper else signer + ' signer'}")
    _refused(ctx, answer, code)


@case("NSW-VNSW-TA03", VNSW)
async def tampered(ctx: CaseContext) -> None:
    """An Envelope altered after signing is refused with SIG_DIGEST_MISMATCH.

    Prerequisite: the party verifies the SystemSignature of the kit's party against the kit's PKI.
    Predicate: a function-00 answer with ErrorCode SIG_DIGEST_MISMATCH.
    """
    await _signature_case(ctx, "SIG_DIGEST_MISMATCH", tamper=True)


@case("NSW-VNSW-TA04", VNSW)
async def wrong_certificate(ctx: CaseContext) -> None:
    """An Envelope signed by a certificate of another CA is refused with CERT_UNTRUSTED.

    Prerequisite: the party trusts only the kit's PKI for the kit's party.
    Predicate: a function-00 answer with ErrorCode CERT_UNTRUSTED.
    """
    await _signature_case(ctx, "CERT_UNTRUSTED", signer="intruder")


@case("NSW-VNSW-TA05", VNSW)
async def expired_certificate(ctx: CaseContext) -> None:
    """An Envelope signed with an expired certificate is refused with CERT_EXPIRED.

    Prerequisite: the party trusts the kit's PKI.
    Predicate: a function-00 answer with ErrorCode CERT_EXPIRED.
    """
    await _signature_case(ctx, "CERT_EXPIRED", signer="expired")


@case("NSW-VNSW-TA06", VNSW)
async def revoked_certificate(ctx: CaseContext) -> None:
    """An Envelope signed with a revoked certificate is refused with CERT_REVOKED.

    Prerequisite: the party trusts the kit's PKI and reads its CRL.
    Predicate: a function-00 answer with ErrorCode CERT_REVOKED.
    """
    await _signature_case(ctx, "CERT_REVOKED", signer="revoked")


@case("NSW-VNSW-TA07", VNSW)
async def duplicate(ctx: CaseContext) -> None:
    """A resent messageId is acknowledged again and not processed twice.

    Prerequisite: the party offers the status search of the REST API (GET /v1/messages?reference=) to the kit.
    Predicate: both calls are answered function 99 for the dossier, and the search by the dossier finds
    exactly one message.
    """
    s: VnswSession = ctx.session
    mid, ref = new_id(), new_ref()
    body = s.signed(s.envelope(mid, reference=ref))
    reply, answer = await s.call(ctx, body, note="original")
    ctx.require(answer is not None and answer.function == "99", "the original Envelope was not acknowledged")
    reply, answer = await s.call(ctx, body, note="resent with the same messageId")
    _ack(ctx, reply, answer, ref)
    found = await ctx.http.get(
        s.options.url(f"/v1/messages?reference={ref}"),
        {"Authorization": f"Bearer {s.settings.token}"},
        note="status search",
    )
    data = found.json()
    ctx.require(found.status == 200 and isinstance(data, dict), f"no status search (HTTP {found.status})")
    messages = data.get("messages")
    ctx.check(
        isinstance(messages, list) and len(messages) == 1,
        f"the dossier holds {len(messages) if isinstance(messages, list) else '?'} messages, not exactly one",
    )


@case("NSW-VNSW-TA08", VNSW)
async def xxe(ctx: CaseContext) -> None:
    """An Envelope with an external entity (XXE) is refused with XML_DTD_FORBIDDEN.

    Prerequisite: as NSW-VNSW-TA01.
    Predicate: a function-00 answer (or SOAP fault) with code XML_DTD_FORBIDDEN and no file content echoed.
    """
    s: VnswSession = ctx.session
    payload = (
        b'<?xml version="1.0"?><!DOCTYPE Envelope [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        + s.envelope().split(b"?>", 1)[1].replace(b"<Reason>Ho so hop le</Reason>", b"<Reason>&xxe;</Reason>")
    )
    reply, answer = await s.call(ctx, payload, note="XXE in requestPayload")
    _refused(ctx, answer, "XML_DTD_FORBIDDEN")
    ctx.check(b"root:" not in reply.body, "the answer contains /etc/passwd content")


@case("NSW-VNSW-TA09", VNSW)
async def billion_laughs(ctx: CaseContext) -> None:
    """An Envelope with nested internal entities (billion laughs) is refused with XML_DTD_FORBIDDEN.

    Prerequisite: as NSW-VNSW-TA01.
    Predicate: a function-00 answer (or SOAP fault) with code XML_DTD_FORBIDDEN.
    """
    s: VnswSession = ctx.session
    entities = b"".join(b'<!ENTITY l%d "%s">' % (i, (b"&l%d;" % (i - 1)) * 10) for i in range(1, 10))
    payload = (
        b'<?xml version="1.0"?><!DOCTYPE Envelope [<!ENTITY l0 "lol">'
        + entities
        + b"]>"
        + s.envelope().split(b"?>", 1)[1].replace(b"<Reason>Ho so hop le</Reason>", b"<Reason>&l9;</Reason>")
    )
    reply, answer = await s.call(ctx, payload, note="billion laughs in requestPayload")
    _refused(ctx, answer, "XML_DTD_FORBIDDEN")


@case("NSW-VNSW-TA10", VNSW)
async def oversized(ctx: CaseContext) -> None:
    """A call larger than the announced limit is refused cleanly with XML_TOO_LARGE.

    Prerequisite: the party's size limit is known (settings 'max_message_bytes').
    Predicate: HTTP 413 (or a 00 answer / SOAP fault) with code XML_TOO_LARGE, not a dropped connection;
    a valid Envelope is acknowledged afterwards.
    """
    s: VnswSession = ctx.session
    limit = s.settings.max_message_bytes
    envelope = s.envelope()
    pad = b"x" * (limit + 1)
    body = soap_request(envelope.replace(b"<Reason>Ho so hop le</Reason>", b"<Reason>" + pad + b"</Reason>"))
    try:
        reply, answer = await s.call(ctx, b"", raw_soap=body, note=f"{len(body)} bytes, limit {limit}")
    except aiohttp.ClientError as exc:
        ctx.fail(f"the party dropped the connection instead of refusing ({type(exc).__name__}: {exc})")
    code = reply.error_code or (answer.codes[0] if answer and answer.codes else None)
    ctx.expect_code(code, "XML_TOO_LARGE", what=f"HTTP {reply.status}")
    ref = new_ref()
    try:
        reply, answer = await s.call(ctx, s.signed(s.envelope(reference=ref)), note="valid Envelope afterwards")
    except aiohttp.ClientError as exc:
        ctx.fail(f"the party is unreachable after the oversized call ({type(exc).__name__}: {exc})")
    _ack(ctx, reply, answer, ref)


@case("NSW-VNSW-TA11", VNSW)
async def impersonation(ctx: CaseContext) -> None:
    """An Envelope whose From names another party is refused with IDENTITY_MISMATCH.

    Prerequisite: another party is configured at the target (settings 'other_party').
    Predicate: a function-00 answer with ErrorCode IDENTITY_MISMATCH.
    """
    s: VnswSession = ctx.session
    other = s.settings.other_party
    if not other:
        raise PrerequisiteUnmet("no other party configured (settings 'other_party')")
    reply, answer = await s.call(ctx, s.signed(s.envelope(sender=other)), note=f"From/identity: {other}")
    _refused(ctx, answer, "IDENTITY_MISMATCH")


@case("NSW-VNSW-TA12", VNSW)
async def not_soap(ctx: CaseContext) -> None:
    """A request that is not a SOAP 1.1 receiveRequest is answered with a SOAP fault, not an acknowledgement.

    Prerequisite: as NSW-VNSW-TA01.
    Predicate: a SOAP 1.1 Fault (HTTP 500) carrying REQUEST_INVALID for a bare VNSW Envelope posted without SOAP.
    """
    s: VnswSession = ctx.session
    reply, answer = await s.call(ctx, b"", raw_soap=s.signed(s.envelope()), note="bare Envelope, no SOAP")
    ctx.check(reply.status == 500, f"expected HTTP 500 with a SOAP fault, got {reply.status}")
    ctx.check(answer is not None and answer.function == "fault", "the answer is not a SOAP fault")
    assert answer is not None
    ctx.expect_code(answer.fault_code, "REQUEST_INVALID", what="the SOAP fault")


@case("NSW-VNSW-TA13", VNSW)
async def foreign_identity(ctx: CaseContext) -> None:
    """An Envelope claiming a From identity that is not the kit's party's is refused with IDENTITY_MISMATCH.

    Prerequisite: as NSW-VNSW-TA01 (the kit's From/identity, ministryCode and organizationCode are its party).
    Predicate: each of two Envelopes signed by the kit's party gets a function-00 answer with ErrorCode
    IDENTITY_MISMATCH: one whose From/identity is unknown to the target while its ministryCode is the kit's
    (no fallback from an unknown identity to the ministry), one whose From/organizationCode is another.
    """
    s: VnswSession = ctx.session
    unknown = f"UNKNOWN{uuid.uuid4().hex[:8].upper()}"
    reply, answer = await s.call(ctx, s.signed(s.envelope(identity=unknown)), note=f"From/identity: {unknown}")
    _refused(ctx, answer, "IDENTITY_MISMATCH")
    reply, answer = await s.call(ctx, s.signed(s.envelope(organization="99")), note="From/organizationCode: 99")
    _refused(ctx, answer, "IDENTITY_MISMATCH")


@case("NSW-VNSW-TA14", VNSW)
async def another_partys_certificate(ctx: CaseContext) -> None:
    """An Envelope from the kit's party signed by another party's certificate of the same CA is refused with
    CERT_IDENTITY_MISMATCH.

    Prerequisite: the party binds the kit's party to the kit's certificate (its subject, a subjectAltName, a
    fingerprint or a pin), not to anything the kit's CA issued (``signers`` of its trust).
    Predicate: an Envelope whose From is the kit's party, signed in <SystemSignature> by a valid certificate of
    the kit's CA with another subject (``conformance-another-partner``), gets a function-00 answer with ErrorCode
    CERT_IDENTITY_MISMATCH.
    """
    await _signature_case(ctx, "CERT_IDENTITY_MISMATCH", signer="another-party")


# ----------------------------------------------------------------------------------- the kit as receiver


def _payload_of(m: Incoming) -> tuple[bytes | None, str]:
    """The requestPayload of a receiveRequest call, or (None, why not)."""
    try:
        soap = parse_xml(m.body, limits=_LIMITS)
    except Exception as exc:  # noqa: BLE001
        return None, f"the call is not well-formed XML: {exc}"
    if soap.tag != f"{{{SOAP11_NS}}}Envelope":
        return None, f"the call is not a SOAP 1.1 Envelope ({etree.QName(soap).text})"
    payload = soap.find(f"{{{SOAP11_NS}}}Body/*/{{*}}requestPayload")
    parent = payload.getparent() if payload is not None else None
    if payload is None or parent is None or etree.QName(parent).localname != "receiveRequest":
        return None, "the SOAP Body holds no receiveRequest/requestPayload"
    return (payload.text or "").encode("utf-8"), ""


def _message_id(m: Incoming) -> str:
    payload, _ = _payload_of(m)
    if not payload:
        return ""
    try:
        return parse_xml(payload, limits=_LIMITS).findtext("Header/Reference/messageId") or ""
    except Exception:  # noqa: BLE001
        return ""


def _answer_99(ctx: CaseContext, m: Incoming, note: str = "function 99") -> None:
    """receiveResponse/responsePayload (in the namespace of the party's receiveRequest) with a function-99 ack."""
    from adapters.vnsw_soap.envelope import ack_envelope, read_header

    payload, _ = _payload_of(m)
    header = read_header(parse_xml(payload or b"<x/>", limits=_LIMITS))
    call = parse_xml(m.body, limits=_LIMITS).find(f"{{{SOAP11_NS}}}Body/*")
    ns = (etree.QName(call).namespace if call is not None else None) or VNSW_WS_NS
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?><SOAP-ENV:Envelope xmlns:SOAP-ENV="{SOAP11_NS}"><SOAP-ENV:Body>'
        f'<ns2:receiveResponse xmlns:ns2="{escape(ns)}"><ns2:responsePayload>'
        f"{escape(ack_envelope(header).decode('utf-8'))}</ns2:responsePayload></ns2:receiveResponse>"
        "</SOAP-ENV:Body></SOAP-ENV:Envelope>"
    ).encode()
    m.respond(ctx, 200, body, {"Content-Type": "text/xml; charset=utf-8"}, note=note)


@case("NSW-VNSW-RX01", VNSW, role="receiver")
async def party_sends_complete_envelope(ctx: CaseContext) -> None:
    """The party calls receiveRequest with a complete VNSW Envelope.

    Prerequisite: the party is configured to deliver to the kit's listener and calls within the wait.
    Predicate: a SOAP 1.1 receiveRequest whose requestPayload parses with the hardened parser and carries
    Header/Reference/messageId, Subject documentType, type, function and reference; the kit answers function 99.
    """
    from adapters.vnsw_soap.envelope import read_header

    s: VnswSession = ctx.session
    assert s.listener is not None
    m = await s.listener.next(ctx, s.options.wait, lambda x: _message_id(x) not in s.seen, what="a call")
    assert m is not None
    mid = _message_id(m)
    s.seen.add(mid)
    payload, why = _payload_of(m)
    if payload is None:
        m.respond(ctx, 500, b"", note="refused")
        ctx.fail(why)
    try:
        read_header(parse_xml(payload, limits=_LIMITS))
    except NswError as exc:
        ctx.observe(exc.code)
        m.respond(ctx, 500, b"", note="refused")
        ctx.fail(f"the requestPayload is not a complete VNSW Envelope: {exc}")
    _answer_99(ctx, m)


@case("NSW-VNSW-RX02", VNSW, role="receiver")
async def party_retries_same_message_id(ctx: CaseContext) -> None:
    """After a transient failure (HTTP 503) the party calls again with the same messageId and Envelope.

    Prerequisite: the party calls the kit within the wait.
    Predicate: the kit answers the first call 503; the party calls again within the wait with the same
    Header/Reference/messageId and a byte-identical requestPayload.
    """
    s: VnswSession = ctx.session
    assert s.listener is not None
    m = await s.listener.next(ctx, s.options.wait, lambda x: _message_id(x) not in s.seen, what="a call")
    assert m is not None
    mid = _message_id(m)
    s.seen.add(mid)
    m.respond(ctx, 503, b"transient failure (conformance kit)", note="transient failure")
    ctx.check(mid, "the call carries no messageId")
    again = await s.listener.next(
        ctx, s.options.wait, lambda x: _message_id(x) == mid, what=f"a retry of {mid}", required=False
    )
    if again is None:
        ctx.fail(f"no retry with messageId {mid!r} within {s.options.wait:g} s")
    _answer_99(ctx, again)
    ctx.check(_payload_of(again)[0] == _payload_of(m)[0], "the retried Envelope differs from the first attempt's")
