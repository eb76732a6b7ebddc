"""``vnsw-soap`` inbound: the SOAP 1.1 endpoint ministries call, ``receiveRequest(requestPayload)``.

Configured as ``[inbound.NAME] endpoint = "vnsw-soap"`` with options (:class:`VnswSoapEndpointOptions`,
validated at config load):

* ``path`` (default ``/vnsw/soap``): where the endpoint is mounted; ``GET <path>?wsdl`` serves
  ``wsdl/vnsw_receive.wsdl`` with the address of the request;
* ``document_types``: VNSW ``documentType`` (procedure code) → the gateway's document type; default: the
  procedure code itself. ``"<documentType>/<type>/<function>"`` keys win over bare procedure codes;
* ``identity``: the ``From`` block of our answers (default: the NSW's, :data:`NSW_IDENTITY`).

Callers authenticate like every API client (``Authorization: Bearer <party token>``) and submit as that party.
The envelope's ``From/identity``, ``From/ministryCode`` and ``From/organizationCode`` must each be the
authenticated party's own, as its configuration states them (the broker checks them, the same rule as for a
VNSW envelope posted on REST)::

    [parties.MARD.identities]
    vnsw = { identity = "BNNPTNT", ministryCode = "BNNPTNT", organizationCode = "06" }

An element not listed there must be the party's name itself. Any other value, an unknown ``identity`` with a
known ``ministryCode`` included, is answered with the function-00 error list, ``IDENTITY_MISMATCH`` naming the
element (``/Envelope/Header/From/identity``...), and nothing is stored.

A POST is answered synchronously, as the ministry systems expect (``receiveResponse/responsePayload``):

* the function-99 acknowledgement once the broker has durably stored the message (and again, unchanged in
  meaning, for a resent ``messageId``);
* the function-00 error list when the inner Envelope cannot be parsed (``XML_*``), misses a header element
  (``REQUEST_INVALID`` naming it), or the broker refuses or rejects it (``AUTH_FORBIDDEN``,
  ``IDENTITY_MISMATCH``, ``VALIDATION_FAILED``...). ``ErrorCode`` is the gateway's code; ``ErrorName`` names the
  element at fault.

SOAP faults (``soap:Client``, HTTP 500) only for malformed SOAP: not XML, not a SOAP 1.1 Envelope, no
``receiveRequest/requestPayload`` in the Body, a request larger than ``gateway.max_message_bytes``
(``XML_TOO_LARGE`` naming ``body``, refused unread; the SOAP request and the VNSW Envelope in it are parsed under
that same limit, a payload of one text node above libxml2's own 10 MB included); and a ``soap:Server`` fault
when the gateway itself fails to take the message (store unavailable: ``STORE_UNAVAILABLE``...), so that the
ministry resends it rather than reading a 00 refusal. Every fault carries ``detail/nsw:error`` with ``code``,
``field`` and ``incident``.

Correlation: the submitted envelope carries ``conversation_id`` and ``reference`` = ``Subject/reference``
(the dossier number), so a business result (a permit answering a registration) comes in as its own call
and is found with ``GET /v1/messages?reference=<dossier>`` (and in the original's ``replies`` when the
original was submitted with that message id), and is delivered in order within the dossier.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from importlib import resources
from typing import Any, ClassVar
from xml.sax.saxutils import escape

from aiohttp import web
from lxml import etree
from pydantic import BaseModel, ConfigDict, Field, field_validator

from adapters.vnsw_soap.envelope import NSW_IDENTITY, VnswHeader, ack_envelope, error_envelope, read_header
from gateway.config import Config
from gateway.errors import (
    ERROR_CODES,
    GatewayError,
    MethodNotAllowed,
    NswError,
    Origin,
    RequestInvalid,
    XmlError,
    XmlMalformed,
)
from gateway.model import PartyId, SubmissionEnvelope
from gateway.openapi import error_responses
from gateway.ports import AdapterState, InboundEndpoint, Intake
from signing.xml import DEFAULT_LIMITS, ParserLimits, parse_xml

__all__ = ["VnswSoapEndpoint", "VnswSoapEndpointOptions", "SOAP11_NS", "VNSW_WS_NS", "RECEIVE_WSDL"]

log = logging.getLogger("nswgw.vnsw_soap")

SOAP11_NS = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_NS = "http://www.w3.org/2003/05/soap-envelope"
VNSW_WS_NS = "http://com/vnsw/ws/generated"
RECEIVE_WSDL = "vnsw_receive.wsdl"
_CONTENT_TYPE = "text/xml"
_HEADER_FIELDS = {
    "X-Message-Id": "/Envelope/Header/Reference/messageId",
    "X-Document-Type": "/Envelope/Header/Subject/documentType",
    "X-Conversation-Id": "/Envelope/Header/Subject/reference",
    "X-Reference": "/Envelope/Header/Subject/reference",
    "X-Procedure": "/Envelope/Header/Subject/documentType",
}
"""Broker envelope fields → the VNSW element they come from (so a 00 error names the element at fault)."""


def _wsdl_text(name: str) -> str:
    return resources.files("adapters.vnsw_soap").joinpath("wsdl", name).read_text("utf-8")


def soap_response(answer: bytes) -> bytes:
    """``receiveResponse/responsePayload`` carrying ``answer`` as an escaped string (as Spring-WS writes it)."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<SOAP-ENV:Envelope xmlns:SOAP-ENV="{SOAP11_NS}"><SOAP-ENV:Header/><SOAP-ENV:Body>'
        f'<ns2:receiveResponse xmlns:ns2="{VNSW_WS_NS}"><ns2:responsePayload>'
        f"{escape(answer.decode('utf-8'))}</ns2:responsePayload></ns2:receiveResponse>"
        "</SOAP-ENV:Body></SOAP-ENV:Envelope>"
    ).encode()


def soap_fault(error: NswError, *, faultcode: str = "Client") -> bytes:
    """A SOAP 1.1 fault carrying the coded error (``detail/nsw:error`` with code, field, incident id)."""
    root = etree.Element(f"{{{SOAP11_NS}}}Envelope", nsmap={"SOAP-ENV": SOAP11_NS})
    body = etree.SubElement(root, f"{{{SOAP11_NS}}}Body")
    fault = etree.SubElement(body, f"{{{SOAP11_NS}}}Fault")
    etree.SubElement(fault, "faultcode").text = f"SOAP-ENV:{faultcode}"
    etree.SubElement(fault, "faultstring").text = str(error)
    detail = etree.SubElement(fault, "detail")
    e = etree.SubElement(detail, "{urn:nsw:gateway:error}error", nsmap={"nsw": "urn:nsw:gateway:error"})
    e.set("code", error.code)
    e.set("incident", error.incident_id)
    if error.field:
        e.set("field", error.field)
    return etree.tostring(root, encoding="UTF-8", xml_declaration=True)


def _local(el: Any) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def read_soap_request(raw: bytes, *, limits: ParserLimits = DEFAULT_LIMITS) -> str:
    """The ``requestPayload`` string of a SOAP 1.1 ``receiveRequest``; an :class:`NswError` naming what is wrong.
    ``raw`` is parsed under ``limits`` (the gateway's ``max_message_bytes``)."""
    root = parse_xml(raw, limits=limits)
    if root.tag == f"{{{SOAP12_NS}}}Envelope":
        raise RequestInvalid(
            "this endpoint speaks SOAP 1.1, not SOAP 1.2",
            field="soap:Envelope",
            details={"faultcode": "VersionMismatch"},
        )
    if root.tag != f"{{{SOAP11_NS}}}Envelope":
        raise RequestInvalid(f"not a SOAP 1.1 Envelope: {root.tag!s}", field="/" + (_local(root) or "?"))
    body = [c for c in root if c.tag == f"{{{SOAP11_NS}}}Body"]
    if len(body) != 1:
        raise RequestInvalid("the SOAP Envelope needs exactly one Body", field="/Envelope/Body")
    calls = [c for c in body[0] if isinstance(c.tag, str)]
    if len(calls) != 1 or _local(calls[0]) != "receiveRequest":
        found = _local(calls[0]) if calls else "nothing"
        raise RequestInvalid(
            f"the Body must carry one receiveRequest, not {found}", field="/Envelope/Body/receiveRequest"
        )
    payload = [c for c in calls[0] if isinstance(c.tag, str) and _local(c) == "requestPayload"]
    if len(payload) != 1:
        raise RequestInvalid(
            "receiveRequest needs one requestPayload", field="/Envelope/Body/receiveRequest/requestPayload"
        )
    return payload[0].text or ""


class _GatewaySide(Exception):
    """The gateway (store, signer) failed while taking a message: answered as a SOAP Server fault."""

    def __init__(self, error: NswError) -> None:
        super().__init__(str(error))
        self.error = error


class VnswSoapEndpointOptions(BaseModel):
    """``[inbound.NAME.options]`` of the ``vnsw-soap`` endpoint."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    path: str = Field("/vnsw/soap", pattern=r"^/")
    """Where the endpoint is mounted (``GET <path>?wsdl`` serves the WSDL)."""
    document_types: dict[str, str] = Field(default_factory=dict)
    """VNSW ``documentType`` (or ``"<documentType>/<type>/<function>"``) → the gateway's document type."""
    identity: dict[str, str] = Field(default_factory=dict)
    """The ``From`` block of our answers (``name``, ``identity``, ``countryCode``, ``ministryCode``,
    ``organizationCode``, ``unitCode``), over :data:`~adapters.vnsw_soap.envelope.NSW_IDENTITY`."""

    @field_validator("identity")
    @classmethod
    def _from_block(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(NSW_IDENTITY))
        if unknown:
            raise ValueError(f"unknown From element {unknown[0]!r}; known: {', '.join(NSW_IDENTITY)}")
        return value


class VnswSoapEndpoint(InboundEndpoint):
    """The SOAP 1.1 ``receiveRequest(requestPayload)`` endpoint of the VNSW ministry connector."""

    scheme: ClassVar[str] = "vnsw-soap"
    Options: ClassVar[type[BaseModel]] = VnswSoapEndpointOptions
    options: VnswSoapEndpointOptions

    def __init__(
        self,
        name: str = "vnsw",
        *,
        options: BaseModel | Mapping[str, Any] | None = None,
        state: AdapterState | None = None,
    ) -> None:
        super().__init__(name, options=options, state=state)
        self.path = self.options.path
        self.document_types: dict[str, str] = dict(self.options.document_types)
        self.identity: dict[str, str] = {**NSW_IDENTITY, **self.options.identity}
        self._wsdl = _wsdl_text(RECEIVE_WSDL)

    def routes(self, intake: Intake) -> list[Any]:
        async def wsdl(request: web.Request) -> web.StreamResponse:
            if "wsdl" not in {k.lower() for k in request.query}:
                raise MethodNotAllowed("POST SOAP 1.1 requests here; GET only with ?wsdl for the WSDL", allow=["POST"])
            location = escape(str(request.url.with_query(None)), {'"': "&quot;"})
            text = self._wsdl.replace('location="http://localhost/vnsw/soap"', f'location="{location}"')
            return web.Response(text=text, content_type=_CONTENT_TYPE, charset="utf-8")

        async def post(request: web.Request) -> web.StreamResponse:
            party = intake.party_of(request)
            raw = await request.read()
            try:
                payload = read_soap_request(raw, limits=intake.config.gateway.parser_limits)
            except NswError as exc:
                log.info("incident %s: malformed SOAP from %s: %s", exc.incident_id, party, exc)
                intake.refused(exc, party, self.name)
                return self._fault(exc)
            document = payload.encode("utf-8")
            del payload  # one copy of the inner Envelope is kept while it is taken, not two
            try:
                answer = await self.receive(intake, party, document)
            except _GatewaySide as exc:  # our fault, not the message's: a Server fault, so the ministry resends
                wait = exc.error.retry_after
                return web.Response(
                    body=soap_fault(exc.error, faultcode="Server"),
                    status=500,
                    content_type=_CONTENT_TYPE,
                    charset="utf-8",
                    headers={"Retry-After": str(wait)} if wait is not None else None,
                )
            return web.Response(body=soap_response(answer), content_type=_CONTENT_TYPE, charset="utf-8")

        return [web.get(self.path, wsdl), web.post(self.path, post)]

    def _fault(self, error: NswError) -> web.Response:
        """A ``soap:Client`` fault (or the ``faultcode`` the error names), HTTP 500, for a request refused as it is."""
        code = error.details.get("faultcode", "Client") if isinstance(error.details, dict) else "Client"
        return web.Response(
            body=soap_fault(error, faultcode=code), status=500, content_type=_CONTENT_TYPE, charset="utf-8"
        )

    def refusal(self, request: web.Request, error: NswError) -> web.StreamResponse | None:
        """A POST refused before it was read (larger than ``gateway.max_message_bytes``: ``XML_TOO_LARGE``) is
        answered like every other unreadable request: a ``soap:Client`` fault."""
        if request.path != self.path or request.method != "POST":
            return None
        return self._fault(error)

    def openapi_paths(self) -> dict[str, Any]:
        xml = {_CONTENT_TYPE: {"schema": {"type": "string"}}}
        return {
            self.path: {
                "get": {
                    "summary": "The WSDL of the receiveRequest service (with ?wsdl)",
                    "operationId": f"{self.name}.wsdl",
                    "parameters": [
                        {
                            "name": "wsdl",
                            "in": "query",
                            "required": True,
                            "allowEmptyValue": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": {
                        "200": {"description": "the WSDL, addressed to this URL", "content": xml},
                        **error_responses(MethodNotAllowed),
                    },
                },
                "post": {
                    "summary": "SOAP 1.1 receiveRequest(requestPayload): a VNSW Envelope",
                    "operationId": f"{self.name}.receiveRequest",
                    "requestBody": {"required": True, "content": xml},
                    "responses": {
                        "200": {
                            "description": "receiveResponse: the function-99 acknowledgement or the function-00 "
                            "error list (ErrorCode: the gateway's code)",
                            "content": xml,
                        },
                        "500": {
                            "description": "SOAP fault with detail/nsw:error: soap:Client for malformed SOAP, "
                            "soap:Server when the gateway could not take the message (resend)",
                            "content": xml,
                        },
                    },
                },
            }
        }

    @staticmethod
    def recipient(party: str, config: Config) -> dict[str, str]:
        """The ``To`` block for ``party`` when its envelope is unreadable (its ``identities.vnsw``)."""
        settings = config.parties.get(party)

        def code(name: str) -> str:
            return settings.identity("vnsw", name, party) if settings is not None else party

        vnsw = code("identity")
        return {
            "name": vnsw,
            "identity": vnsw,
            "countryCode": "VN",
            "ministryCode": code("ministryCode"),
            "organizationCode": code("organizationCode"),
            "unitCode": vnsw,
        }

    def envelope_for(self, header: VnswHeader, party: str) -> SubmissionEnvelope:
        """The broker envelope of a VNSW message from the authenticated ``party`` (the broker holds ``From`` to
        it), the dossier as reference."""
        key = f"{header.document_type}/{header.type}/{header.function}"
        document_type = (
            self.document_types.get(key) or self.document_types.get(header.document_type) or header.document_type
        )
        return SubmissionEnvelope(
            sender=PartyId(party),
            message_id=header.message_id,
            document_type=document_type,
            conversation_id=header.reference,
            reference=header.reference,
            procedure=header.document_type,
            format="vnsw",
        )

    async def receive(self, intake: Intake, party: str, payload: bytes) -> bytes:
        """Submit one VNSW Envelope for ``party``; the function-99 or function-00 answer."""
        header: VnswHeader | None = None
        try:
            if not payload.strip():
                raise XmlMalformed("requestPayload is empty", field="requestPayload")
            header = read_header(parse_xml(payload, limits=intake.config.gateway.parser_limits))
            envelope = self.envelope_for(header, party)
            result = await intake.submit(PartyId(party), envelope, payload)
        except (XmlError, NswError) as exc:
            if exc.origin is not Origin.CLIENT:
                log.warning("incident %s: VNSW message from %s not taken: %s", exc.incident_id, party, exc)
                raise _GatewaySide(exc) from exc
            if exc.field in _HEADER_FIELDS:
                exc.field = _HEADER_FIELDS[exc.field]
            log.info("incident %s: VNSW message from %s refused: %s", exc.incident_id, party, exc)
            intake.refused(exc, party, self.name)
            return error_envelope(header, [exc], identity=self.identity, recipient=self.recipient(party, intake.config))
        except Exception as exc:  # never an unanswered ministry call: a coded Server fault
            error = GatewayError(f"internal error: {type(exc).__name__}", field="requestPayload")
            log.exception("incident %s", error.incident_id)
            raise _GatewaySide(error) from exc
        if result.ack.error:
            err = result.ack.error
            cls = ERROR_CODES.get(err.get("code", ""), GatewayError)
            where = _HEADER_FIELDS.get(err.get("field") or "", err.get("field"))
            what = f"{where}: {err.get('message')}" if where else str(err.get("message"))
            issues = err.get("issues") or []
            pairs = [(cls.code, what)] + [
                (i.get("code", cls.code), f"{i.get('path')}: {i.get('message')}") for i in issues[1:]
            ]
            return error_envelope(header, pairs, identity=self.identity)
        return ack_envelope(header, identity=self.identity)
