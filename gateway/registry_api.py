"""The party API of the registry of issued documents (:mod:`gateway.registry`), authorized by each party's
``registry`` roles (``[parties.NAME] registry = [...]``, checked at load):

* ``POST /v1/registry/check`` (role ``check``: customs at clearance): ``{"enterprise", "declaration_reference",
  "goods": [{"hs_code", "quantity", "unit"}], "at"}`` → ``200`` with, per goods line, the documents found for its HS
  code and enterprise (type, number, issuer, status, remaining quantity, validity) and whether one covers it; a line
  that is not covered carries a ``REGISTRY_NOT_COVERED`` error naming it (``goods[2].hs_code``) and its ``reason``
  (``no_document``, ``expired``, ``not_yet_valid``, ``cancelled``, ``superseded``, ``quantity_exhausted``,
  ``unit_mismatch``). A check is an answer, not a refusal: it is ``200`` whether or not the goods are covered
  (``covered`` says); only a malformed request is an error (``REQUEST_INVALID`` naming the field).
* ``GET /v1/registry/documents`` (``all``: every document; ``issued``: those the party issued; ``own`` with
  ``X-On-Behalf-Of``: those its enterprise holds), filtered by ``doc_type``, ``number``, ``enterprise``, ``issuer``,
  ``status``, ``hs_code``, newest first, ``limit`` and ``cursor`` (the ``next_cursor`` of the previous page).
* ``GET /v1/registry/documents/{doc_type}/{number}``: one document the party may see, with its lines and draws
  (``REGISTRY_DOCUMENT_UNKNOWN`` when there is none it may see).

A party without the role is ``AUTH_FORBIDDEN`` naming ``parties.NAME.registry``. Every query is journaled as an
``OPERATOR`` entry (action ``registry-check``, ``registry-documents`` or ``registry-document`` by ``party:NAME``)
whose record names what was asked (the key fields and the SHA-256 of the whole request) and how many results it had.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from aiohttp import web
from pydantic import Field, ValidationError

from gateway.errors import (
    DelegationMissing,
    NotAuthorized,
    RegistryDocumentUnknown,
    RegistryNotCovered,
    RequestInvalid,
)
from gateway.journal import OperatorAction
from gateway.openapi import error_responses, json_content
from gateway.registry import (
    CheckLine,
    DocumentLine,
    LineVerdict,
    RegistryDocument,
    RegistryQuery,
    check_lines,
    query_digest,
)
from gateway.wire import WireModel, json_reply

if TYPE_CHECKING:
    from gateway.api import Gateway

__all__ = ["registry_routes", "registry_paths"]

STATUSES = ("valid", "amended", "cancelled", "superseded", "expired", "not_yet_valid")
_HS = re.compile(r"^[0-9]{4,10}$")
_MAX_LIMIT = 1000


def _iso(at: float | None) -> str | None:
    if at is None:
        return None
    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")


class GoodsLine(WireModel):
    hs_code: str = Field(description="HS code of the declared goods, 4 to 10 digits", examples=["01022910"])
    quantity: str | None = Field(None, description="declared quantity (a decimal)", examples=["2.5"])
    unit: str | None = Field(None, description="UN/ECE Rec 20 unit of the quantity", examples=["TNE"])


class CheckRequest(WireModel):
    enterprise: str = Field(description="tax or registration number of the declaring enterprise", min_length=1)
    declaration_reference: str = Field(description="the customs declaration being cleared", min_length=1)
    goods: list[GoodsLine] = Field(min_length=1, max_length=999)
    at: str | None = Field(None, description="ISO 8601 with its offset: judge validity then (default: now)")


class DocumentLineView(WireModel):
    line: int
    hs_code: str
    quantity: str | None = Field(description="the quantity the document allows (null: not limited)")
    unit: str | None
    drawn: str
    remaining: str | None


class DocumentView(WireModel):
    doc_type: str = Field(description="procedure code of a permit, else UN/EDIFACT 1001 code", examples=["861"])
    number: str
    issuer: str = Field(description="the party that issued it")
    issuing_country: str | None
    holder: str = Field(description="the enterprise that holds it")
    status: str = Field(description=" | ".join(STATUSES))
    valid_from: str | None
    valid_until: str | None
    message: str = Field(description="the gateway id of the message that carried it (GET /v1/messages/{id})")
    updated_at: str
    lines: list[DocumentLineView]

    @classmethod
    def of(cls, document: RegistryDocument, at: float) -> DocumentView:
        return cls(
            doc_type=document.doc_type,
            number=document.number,
            issuer=document.issuer,
            issuing_country=document.issuing_country,
            holder=document.holder,
            status=document.status(at),
            valid_from=_iso(document.valid_from),
            valid_until=_iso(document.valid_until),
            message=document.message,
            updated_at=_iso(document.updated_at) or "",
            lines=[_line_view(line) for line in document.lines],
        )


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format(value.normalize(), "f")


def _line_view(line: DocumentLine) -> DocumentLineView:
    return DocumentLineView(
        line=line.line,
        hs_code=line.hs_code,
        quantity=_text(line.quantity),
        unit=line.unit,
        drawn=_text(line.drawn) or "0",
        remaining=_text(line.remaining),
    )


class DrawView(WireModel):
    declaration: str
    line: int
    quantity: str
    message: str
    at: str


class DocumentDetail(WireModel):
    document: DocumentView
    draws: list[DrawView]


class DocumentList(WireModel):
    documents: list[DocumentView]
    next_cursor: str | None = Field(description="pass as cursor for the next page (null: this is the last)")


class Found(WireModel):
    doc_type: str
    number: str
    issuer: str
    status: str
    line: int
    hs_code: str
    remaining: str | None = Field(description="what is left to draw, in unit (null: not limited)")
    unit: str | None
    valid_until: str | None
    remaining_days: float | None = Field(description="days of validity left at the check (null: open-ended)")
    message: str


class LineError(WireModel):
    code: str = Field(examples=[RegistryNotCovered.code])
    field: str = Field(examples=["goods[2].hs_code"])
    reason: str = Field(
        description="no_document | expired | not_yet_valid | cancelled | superseded | "
        "quantity_exhausted | unit_mismatch"
    )
    message: str


class LineAnswer(WireModel):
    line: int = Field(description="index in goods, from 0")
    hs_code: str
    covered: bool
    covered_by: dict[str, str] | None = Field(description='{"doc_type", "number"} of the covering document')
    documents: list[Found]
    error: LineError | None


class CheckAnswer(WireModel):
    covered: bool = Field(description="every goods line is covered")
    enterprise: str
    declaration_reference: str
    at: str
    goods: list[LineAnswer]
    journal_seq: int = Field(description="the seq of the query's journal entry")


def _roles(gateway: Gateway, party: str) -> tuple[str, ...]:
    settings = gateway.config.parties.get(party)
    return settings.registry if settings is not None else ()


def _forbidden(party: str, needs: str) -> NotAuthorized:
    return NotAuthorized(
        f"{party} has no registry role {needs}", field=f"parties.{party}.registry", details={"needs": needs}
    )


def _scope(request: web.Request, gateway: Gateway, party: str) -> tuple[str | None, str | None]:
    """``(holder, issuer)`` the party's reads are limited to (``None``: not limited)."""
    roles = _roles(gateway, party)
    enterprise = request.headers.get("X-On-Behalf-Of")
    if enterprise is not None:
        if "own" not in roles:
            raise _forbidden(party, "own")
        settings = gateway.config.parties[party]
        if not settings.delegated(enterprise):
            raise DelegationMissing(f"{party} is not delegated for {enterprise}", field="X-On-Behalf-Of")
        return enterprise, None
    if "all" in roles:
        return None, None
    if "issued" in roles:
        return None, party
    if "own" in roles:
        raise DelegationMissing(
            f"{party} reads its enterprises' documents: name the enterprise in X-On-Behalf-Of", field="X-On-Behalf-Of"
        )
    raise _forbidden(party, "all, issued or own")


def _instant(text: str | None, field: str, now: float) -> float:
    if text is None:
        return now
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise RequestInvalid(f"{field} must be an ISO 8601 date-time with its offset: {text!r}", field=field) from None
    if moment.tzinfo is None:
        raise RequestInvalid(f"{field} needs its UTC offset (Z or +07:00): {text!r}", field=field)
    return moment.timestamp()


def _check_request(body: bytes) -> CheckRequest:
    try:
        req = CheckRequest.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ""
        for part in first["loc"]:
            field += f"[{part}]" if isinstance(part, int) else (f".{part}" if field else str(part))
        raise RequestInvalid(f"the check request is malformed: {first['msg']}", field=field or "body") from None
    return req


def _check_lines(req: CheckRequest) -> list[CheckLine]:
    lines: list[CheckLine] = []
    for i, goods in enumerate(req.goods):
        if not _HS.match(goods.hs_code):
            raise RequestInvalid(f"{goods.hs_code!r} is not an HS code of 4 to 10 digits", field=f"goods[{i}].hs_code")
        quantity: Decimal | None = None
        if goods.quantity is not None:
            try:
                quantity = Decimal(goods.quantity)
            except InvalidOperation:
                quantity = None
            if quantity is None or not quantity.is_finite() or quantity <= 0:
                raise RequestInvalid(
                    f"{goods.quantity!r} is not a positive decimal", field=f"goods[{i}].quantity"
                ) from None
            if not goods.unit:
                raise RequestInvalid("a quantity needs its unit (UN/ECE Rec 20)", field=f"goods[{i}].unit")
        lines.append(CheckLine(goods.hs_code, quantity, goods.unit))
    return lines


def _answer(i: int, goods: CheckLine, verdict: LineVerdict, at: float) -> LineAnswer:
    found = [
        Found(
            doc_type=document.doc_type,
            number=document.number,
            issuer=document.issuer,
            status=status,
            line=line.line,
            hs_code=line.hs_code,
            remaining=_text(line.remaining),
            unit=line.unit,
            valid_until=_iso(document.valid_until),
            remaining_days=round((document.valid_until - at) / 86400, 2) if document.valid_until is not None else None,
            message=document.message,
        )
        for document, line, status in verdict.documents
    ]
    error = None
    if not verdict.covered:
        error = LineError(
            code=RegistryNotCovered.code,
            field=f"goods[{i}].quantity" if verdict.reason == "quantity_exhausted" else f"goods[{i}].hs_code",
            reason=verdict.reason or "no_document",
            message=f"goods[{i}] (HS {goods.hs_code}): {verdict.message}",
        )
    covered_by = None
    if verdict.covered_by is not None:
        covered_by = {"doc_type": verdict.covered_by[0], "number": verdict.covered_by[1]}
    return LineAnswer(
        line=i, hs_code=goods.hs_code, covered=verdict.covered, covered_by=covered_by, documents=found, error=error
    )


async def _journal(
    gateway: Gateway, party: str, action: str, asked: Mapping[str, Any], key: Mapping[str, str], detail: dict[str, Any]
) -> int:
    """Record the query as an ``OPERATOR`` journal entry; returns its seq."""
    record = OperatorAction.new(
        f"party:{party}",
        action,
        at=gateway.clock.now(),
        targets=[dict(key)],
        detail={"outcome": "answered", "digest": query_digest(asked), **detail},
    )
    entry = await gateway.store.record_operator_action(record)
    return entry.seq


def _limit(query: Mapping[str, str]) -> int:
    text = query.get("limit", "100")
    if not text.isdigit() or not 1 <= int(text) <= _MAX_LIMIT:
        raise RequestInvalid(f"limit must be 1 to {_MAX_LIMIT}: {text!r}", field="limit")
    return int(text)


def registry_routes(gateway: Gateway) -> list[web.RouteDef]:
    """The routes of the module docstring (parties authenticate as on every party endpoint)."""
    from gateway.api import PARTY

    async def check(request: web.Request) -> web.Response:
        party = request[PARTY]
        if "check" not in _roles(gateway, party):
            raise _forbidden(party, "check")
        body = await request.read()
        req = _check_request(body)
        lines = _check_lines(req)
        at = _instant(req.at, "at", gateway.clock.now())
        found = await gateway.store.registry_candidates(req.enterprise, [line.hs_code for line in lines])
        verdicts = check_lines(lines, found, at=at)
        answers = [
            _answer(i, goods, verdict, at) for i, (goods, verdict) in enumerate(zip(lines, verdicts, strict=True))
        ]
        covered = all(v.covered for v in verdicts)
        seq = await _journal(
            gateway,
            party,
            "registry-check",
            req.model_dump(mode="json"),
            {"enterprise": req.enterprise, "declaration": req.declaration_reference},
            {
                "lines": len(lines),
                "covered": covered,
                "results": sum(len(a.documents) for a in answers),
                "not_covered": [a.line for a in answers if not a.covered],
            },
        )
        return json_reply(
            CheckAnswer(
                covered=covered,
                enterprise=req.enterprise,
                declaration_reference=req.declaration_reference,
                at=_iso(at) or "",
                goods=answers,
                journal_seq=seq,
            )
        )

    async def documents(request: web.Request) -> web.Response:
        party = request[PARTY]
        holder, issuer = _scope(request, gateway, party)
        q = request.query
        for name in ("enterprise", "issuer"):
            wanted, forced = q.get(name), holder if name == "enterprise" else issuer
            if wanted is not None and forced is not None and wanted != forced:
                raise NotAuthorized(f"{party} reads only the documents of {forced}", field=name)
        status = q.get("status")
        if status is not None and status not in STATUSES:
            raise RequestInvalid(f"status must be one of {', '.join(STATUSES)}: {status!r}", field="status")
        hs_code = q.get("hs_code")
        if hs_code is not None and not re.match(r"^[0-9]{2,10}$", hs_code):
            raise RequestInvalid(f"hs_code must be 2 to 10 digits: {hs_code!r}", field="hs_code")
        cursor = q.get("cursor")
        if cursor is not None and not cursor.isdigit():
            raise RequestInvalid(f"cursor {cursor!r} is not one this API gave", field="cursor")
        limit = _limit(q)
        now = gateway.clock.now()
        query = RegistryQuery(
            at=now,
            doc_type=q.get("doc_type"),
            number=q.get("number"),
            holder=holder or q.get("enterprise"),
            issuer=issuer or q.get("issuer"),
            status=status,
            hs_code=hs_code,
            limit=limit,
            before=int(cursor) if cursor is not None else None,
        )
        found = await gateway.store.registry_find(query)
        asked = {k: q[k] for k in sorted(q)} | {"on_behalf_of": request.headers.get("X-On-Behalf-Of")}
        key = {k: v for k, v in (("enterprise", query.holder), ("issuer", query.issuer)) if v is not None}
        await _journal(gateway, party, "registry-documents", asked, key, {"results": len(found)})
        next_cursor = str(found[-1].id) if len(found) == limit else None
        return json_reply(DocumentList(documents=[DocumentView.of(d, now) for d in found], next_cursor=next_cursor))

    async def one(request: web.Request) -> web.Response:
        party = request[PARTY]
        holder, issuer = _scope(request, gateway, party)
        doc_type, number = request.match_info["doc_type"], request.match_info["number"]
        stored = await gateway.store.registry_document(doc_type, number)
        visible = stored is not None and (holder is None or stored[0].holder == holder)
        visible = visible and (issuer is None or (stored is not None and stored[0].issuer == issuer))
        asked = {"doc_type": doc_type, "number": number, "on_behalf_of": request.headers.get("X-On-Behalf-Of")}
        await _journal(
            gateway,
            party,
            "registry-document",
            asked,
            {"doc_type": doc_type, "number": number},
            {"results": int(visible)},
        )
        if stored is None or not visible:
            raise RegistryDocumentUnknown(f"no document {doc_type} {number} you may see", field="number")
        document, draws = stored
        return json_reply(
            DocumentDetail(
                document=DocumentView.of(document, gateway.clock.now()),
                draws=[
                    DrawView(declaration=d, line=line, quantity=quantity, message=message, at=_iso(at) or "")
                    for d, line, quantity, message, at in draws
                ],
            )
        )

    return [
        web.post("/v1/registry/check", check),
        web.get("/v1/registry/documents", documents),
        web.get("/v1/registry/documents/{doc_type}/{number}", one),
    ]


def registry_paths() -> dict[str, Any]:
    """The path items of :func:`registry_routes`, for :func:`gateway.openapi.build_document`."""
    string = {"type": "string"}
    filters = [
        {"name": name, "in": "query", "required": False, "schema": string, "description": text}
        for name, text in (
            ("doc_type", "procedure code of a permit, else UN/EDIFACT 1001 code"),
            ("number", "document number"),
            ("enterprise", "holder enterprise"),
            ("issuer", "issuing party"),
            ("status", " | ".join(STATUSES)),
            ("hs_code", "HS code prefix of a line, 2 to 10 digits"),
            ("limit", f"1 to {_MAX_LIMIT} (default 100)"),
            ("cursor", "next_cursor of the previous page"),
        )
    ]
    behalf = {
        "name": "X-On-Behalf-Of",
        "in": "header",
        "required": False,
        "schema": string,
        "description": "an intermediary's enterprise (role own)",
    }
    return {
        "/v1/registry/check": {
            "post": {
                "summary": "Customs (check): are a declaration's goods covered by valid documents? (journaled)",
                "operationId": "registryCheck",
                "tags": ["registry"],
                "requestBody": {"required": True, "content": json_content(CheckRequest)},
                "responses": {
                    "200": {
                        "description": "per goods line: found documents, covered or not",
                        "content": json_content(CheckAnswer),
                    },
                    **error_responses(NotAuthorized, RequestInvalid),
                },
            }
        },
        "/v1/registry/documents": {
            "get": {
                "summary": "The indexed documents the party may see, newest first (journaled)",
                "operationId": "registryDocuments",
                "tags": ["registry"],
                "parameters": [*filters, behalf],
                "responses": {
                    "200": {"description": "a page of documents", "content": json_content(DocumentList)},
                    **error_responses(NotAuthorized, DelegationMissing, RequestInvalid),
                },
            }
        },
        "/v1/registry/documents/{doc_type}/{number}": {
            "get": {
                "summary": "One indexed document with its lines and draws (journaled)",
                "operationId": "registryDocument",
                "tags": ["registry"],
                "parameters": [
                    {"name": "doc_type", "in": "path", "required": True, "schema": string},
                    {"name": "number", "in": "path", "required": True, "schema": string},
                    behalf,
                ],
                "responses": {
                    "200": {"description": "the document", "content": json_content(DocumentDetail)},
                    **error_responses(NotAuthorized, DelegationMissing, RegistryDocumentUnknown),
                },
            }
        },
    }
