"""The operator API of the policy reference lists (:mod:`gateway.reference`), served under ``/v1/admin/``:

* ``GET /v1/admin/reference-lists`` (role ``read``): every list, its owner and purpose, the version in force now
  and every version with its effective instant, digest and publisher;
* ``GET /v1/admin/reference-lists/{name}`` (``read``): one list with its versions and their entries
  (``REFERENCE_LIST_UNKNOWN`` for a name never published);
* ``POST /v1/admin/reference-lists/{name}/versions`` (``act``): publish the next version, as JSON
  (``{"owner", "purpose", "effective_from", "entries": [{"code", "note"}]}``) or as a ``ReferenceList`` document
  (``application/xml``), recorded as a ``reference-publish`` ``OPERATOR`` journal entry
  (:func:`gateway.reference.publish_by_operator`: the version and its record in one transaction) and announced
  as ``reference_list_published``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web
from pydantic import Field, ValidationError

from gateway.errors import (
    NotAuthorized,
    ReferenceListInvalid,
    ReferenceListNotOwner,
    ReferenceListUnknown,
    StoreContended,
)
from gateway.openapi import STORE_ERRORS, error_responses, json_content
from gateway.reference import (
    Purpose,
    ReferenceDraft,
    ReferenceEntry,
    ReferenceVersion,
    in_force,
    iso,
    publish_by_operator,
)
from gateway.wire import WireModel, json_reply

if TYPE_CHECKING:
    from gateway.api import Gateway

__all__ = ["reference_routes", "reference_paths", "ReferenceListView", "ReferenceLists", "ReferencePublished"]

Require = Callable[[web.Request, "Gateway", str], str]


class ReferenceEntryView(WireModel):
    code: str = Field(description="an HS code prefix, 2 to 10 digits", examples=["0302"])
    note: str = ""


class ReferenceVersionView(WireModel):
    version: int
    effective_from: str = Field(
        description="ISO 8601 UTC: in force from this instant", examples=["2027-01-01T00:00:00Z"]
    )
    digest: str = Field(description="SHA-256 of the version's canonical content")
    publisher: str = Field(description="the owner party (via message) or the operator")
    via: str = Field(description="message (a signed reference.list document) or operator")
    message: str | None = Field(description="the gateway id of the publishing message, or the operator action")
    published_at: str
    entries: list[ReferenceEntryView] = Field(default_factory=list)

    @classmethod
    def of(cls, v: ReferenceVersion) -> ReferenceVersionView:
        return cls(
            version=v.version,
            effective_from=iso(v.effective_from),
            digest=v.digest,
            publisher=v.publisher,
            via=v.via,
            message=v.message,
            published_at=iso(v.published_at),
            entries=[ReferenceEntryView(code=e.code, note=e.note) for e in v.entries],
        )


class ReferenceListView(WireModel):
    name: str = Field(examples=["import-prohibited.moit"])
    owner: str = Field(examples=["MOIT"])
    purpose: str = Field(description="prohibited (refuses the goods) or inspection (flags them)")
    in_force: int | None = Field(description="the version in force now (null: none yet)")
    versions: list[ReferenceVersionView]


class ReferenceLists(WireModel):
    lists: list[ReferenceListView]


class ReferencePublishRequest(WireModel):
    owner: str
    purpose: Purpose
    effective_from: str = Field(description="ISO 8601 with its UTC offset", examples=["2027-01-01T00:00:00+07:00"])
    entries: list[ReferenceEntryView]


class ReferencePublished(WireModel):
    list: ReferenceListView
    version: int
    operator: str
    action: str = Field(description="the id of the recorded action (GET /v1/admin/actions)")
    journal_seq: int = Field(description="the seq of its OPERATOR journal entry")


def _view(gateway: Gateway, versions: list[ReferenceVersion]) -> ReferenceListView:
    current = in_force(versions, gateway.clock.now())
    return ReferenceListView(
        name=versions[0].name,
        owner=versions[-1].owner,
        purpose=versions[-1].purpose,
        in_force=current.version if current is not None else None,
        versions=[ReferenceVersionView.of(v) for v in versions],
    )


def _draft(name: str, body: bytes, content_type: str) -> ReferenceDraft:
    """The version a request body states, for the list ``name`` of its path."""
    from mappings.reference import parse_code, parse_effective, parse_name, read_reference_list

    if content_type in ("application/xml", "text/xml"):
        draft = read_reference_list(body)
        if draft.name != name:
            raise ReferenceListInvalid(f"the document publishes {draft.name}, not {name}", field="ReferenceList/Name")
        return draft
    parse_name(name, field="name")
    try:
        req = ReferencePublishRequest.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "body"
        raise ReferenceListInvalid(f"the body is not a list version: {first['msg']}", field=field) from None
    entries = tuple(
        ReferenceEntry(parse_code(e.code, field=f"entries[{i}].code"), e.note) for i, e in enumerate(req.entries)
    )
    return ReferenceDraft(
        name=name,
        owner=req.owner,
        purpose=req.purpose,
        effective_from=parse_effective(req.effective_from, field="effective_from"),
        entries=entries,
    )


def reference_routes(gateway: Gateway, require: Require) -> list[web.RouteDef]:
    """The routes of the module docstring; ``require`` checks the operator's role and returns the operator."""

    async def lists(request: web.Request) -> web.Response:
        require(request, gateway, "read")
        by_name: dict[str, list[ReferenceVersion]] = {}
        for v in await gateway.store.reference_versions():
            by_name.setdefault(v.name, []).append(v)
        return json_reply(ReferenceLists(lists=[_view(gateway, vs) for _, vs in sorted(by_name.items())]))

    async def one(request: web.Request) -> web.Response:
        require(request, gateway, "read")
        name = request.match_info["name"]
        versions = await gateway.store.reference_versions(name)
        if not versions:
            raise ReferenceListUnknown(f"no reference list {name!r}", field="name")
        return json_reply(_view(gateway, versions))

    async def publish(request: web.Request) -> web.Response:
        operator = require(request, gateway, "act")
        name = request.match_info["name"]
        draft = _draft(name, await request.read(), request.content_type)
        stored, entry = await publish_by_operator(
            gateway.store, draft, operator=operator, at=gateway.clock.now(), parties=gateway.config.parties
        )
        await gateway.references.announce(stored)
        versions = await gateway.store.reference_versions(name)
        return json_reply(
            ReferencePublished(
                list=_view(gateway, versions),
                version=stored.version,
                operator=operator,
                action=entry.message_id,
                journal_seq=entry.seq,
            ),
            status=201,
        )

    return [
        web.get("/v1/admin/reference-lists", lists),
        web.get("/v1/admin/reference-lists/{name}", one),
        web.post("/v1/admin/reference-lists/{name}/versions", publish),
    ]


def reference_paths() -> dict[str, Any]:
    """The path items of :func:`reference_routes`, for :func:`gateway.openapi.build_document`."""
    forbidden = error_responses(NotAuthorized)
    name = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
    return {
        "/v1/admin/reference-lists": {
            "get": {
                "summary": "Operator: the policy reference lists, their versions and the version in force now",
                "operationId": "adminReferenceLists",
                "tags": ["operator"],
                "responses": {
                    "200": {"description": "every list", "content": json_content(ReferenceLists)},
                    **forbidden,
                },
            }
        },
        "/v1/admin/reference-lists/{name}": {
            "get": {
                "summary": "Operator: one reference list with every version and its entries",
                "operationId": "adminReferenceList",
                "tags": ["operator"],
                "parameters": [name],
                "responses": {
                    "200": {"description": "the list", "content": json_content(ReferenceListView)},
                    **error_responses(NotAuthorized, ReferenceListUnknown),
                },
            }
        },
        "/v1/admin/reference-lists/{name}/versions": {
            "post": {
                "summary": "Operator (act): publish the next version of a reference list (journaled)",
                "operationId": "adminReferenceListPublish",
                "tags": ["operator"],
                "parameters": [name],
                "requestBody": {
                    "required": True,
                    "content": {
                        **json_content(ReferencePublishRequest),
                        "application/xml": {"schema": {"type": "string", "description": "a ReferenceList document"}},
                    },
                },
                "responses": {
                    "201": {"description": "the version stored", "content": json_content(ReferencePublished)},
                    **error_responses(
                        NotAuthorized, ReferenceListInvalid, ReferenceListNotOwner, StoreContended, *STORE_ERRORS
                    ),
                },
            }
        },
    }
