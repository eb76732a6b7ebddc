"""The operator API of disclosures (:mod:`gateway.disclosures`), served under ``/v1/admin/``:

* ``GET /v1/admin/disclosures?destination=&subscription=&message=&since=&until=&limit=&cursor=`` (role ``read``):
  the deliveries that carried only some data elements of a message, newest first (then by their order of
  recording): which message went to which destination under which subscription and legal basis, the fields
  configured and those actually disclosed, the SHA-256 of the delivered bytes, when, and the seq of the
  ``DISCLOSED`` journal entry. ``destination`` must be a configured destination (``UNKNOWN_DESTINATION``);
  ``since`` / ``until`` take ISO 8601 or seconds since the epoch; paged by cursor like the message search (an
  answer that filled ``limit`` carries ``next_cursor``; pass it as ``cursor`` for the next, older page, which
  neither repeats nor skips a disclosure). Every parameter is checked (``REQUEST_INVALID`` naming it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web
from pydantic import Field

from gateway.disclosures import DisclosureQuery, StoredDisclosure
from gateway.errors import NotAuthorized, RequestInvalid, UnknownDestination
from gateway.openapi import STORE_ERRORS, error_responses, json_content
from gateway.wire import Timestamp, WireModel, json_reply

if TYPE_CHECKING:
    from gateway.api import Gateway

__all__ = ["DisclosureView", "Disclosures", "disclosure_paths", "disclosure_query", "disclosure_routes"]

Require = Callable[[web.Request, "Gateway", str], str]


class DisclosureView(WireModel):
    message: str = Field(description="the gateway id of the message", examples=["0f8c1a2b3c4d5e6f"])
    destination: str = Field(description="the recipient destination", examples=["MARKET-SURVEILLANCE"])
    subscription: str | None = Field(description="the subscription it was made for; null: the destination's fields")
    legal_basis: str | None = Field(
        description="the legal basis configured for it", examples=["Decree 98/2020/ND-CP, Art. 5"]
    )
    fields: list[str] = Field(description="the harmonized paths the recipient may see", examples=[["permit.number"]])
    disclosed: list[str] = Field(description="those of fields the message carried: what was delivered")
    sha256: str = Field(description="SHA-256 (hex) of the delivered bytes")
    at: Timestamp = Field(description="when the delivery was queued")
    sender: str
    document_type: str
    journal_seq: int | None = Field(description="the seq of its DISCLOSED journal entry (null once archived)")

    @classmethod
    def of(cls, stored: StoredDisclosure) -> DisclosureView:
        d = stored.disclosure
        return cls(
            message=d.message_id,
            destination=d.destination,
            subscription=d.subscription,
            legal_basis=d.legal_basis,
            fields=list(d.fields),
            disclosed=list(d.disclosed),
            sha256=d.sha256,
            at=datetime.fromtimestamp(d.at, UTC),
            sender=d.sender,
            document_type=d.document_type,
            journal_seq=stored.journal_seq,
        )


class Disclosures(WireModel):
    disclosures: list[DisclosureView]
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next (older) page; null on the last page (opaque)"
    )


def _instant(query: Mapping[str, str], name: str) -> float | None:
    value = query.get(name)
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise RequestInvalid(
            f"{name} must be an ISO 8601 date-time (2026-12-02T09:30:00Z) or seconds since the epoch: {value!r}",
            field=name,
        ) from None
    return (moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)).timestamp()


def _cursor(value: str | None) -> tuple[float, int] | None:
    if value is None:
        return None
    at, _, seq = value.partition(",")
    try:
        return float(at), int(seq)
    except ValueError:
        raise RequestInvalid(f"cursor must be the next_cursor of a previous page: {value!r}", field="cursor") from None


def disclosure_query(q: Mapping[str, str], destinations: Mapping[str, Any]) -> DisclosureQuery:
    """The store query the parameters of ``GET /v1/admin/disclosures`` ask for, each checked."""
    destination = q.get("destination")
    if destination is not None and destination not in destinations:
        raise UnknownDestination(f"no destination {destination!r}", field="destination")
    try:
        limit = int(q.get("limit", "100"))
    except ValueError:
        raise RequestInvalid("limit must be an integer from 1 to 1000", field="limit") from None
    if not 1 <= limit <= 1000:
        raise RequestInvalid("limit must be an integer from 1 to 1000", field="limit")
    return DisclosureQuery(
        destination=destination,
        subscription=q.get("subscription"),
        message=q.get("message"),
        since=_instant(q, "since"),
        until=_instant(q, "until"),
        after=_cursor(q.get("cursor")),
        limit=limit,
    )


def next_cursor(page: list[StoredDisclosure], query: DisclosureQuery) -> str | None:
    """The ``cursor`` of the page after ``page``, or None when it is the last."""
    if not page or len(page) < query.limit:
        return None
    last = page[-1]
    return f"{last.disclosure.at!r},{last.seq}"


def disclosure_routes(gateway: Gateway, require: Require) -> list[web.RouteDef]:
    """The route of the module docstring; ``require`` checks the operator's role."""

    async def disclosures(request: web.Request) -> web.Response:
        require(request, gateway, "read")
        query = disclosure_query(request.query, gateway.config.destinations)
        page = await gateway.store.disclosures(query)
        return json_reply(
            Disclosures(disclosures=[DisclosureView.of(s) for s in page], next_cursor=next_cursor(page, query))
        )

    return [web.get("/v1/admin/disclosures", disclosures)]


def disclosure_paths() -> dict[str, Any]:
    """The path item of :func:`disclosure_routes`, for :func:`gateway.openapi.build_document`."""
    instant = {"type": "string", "examples": ["2026-12-03T06:30:00Z", "1796279400"]}
    parameters = [
        {"name": "destination", "in": "query", "schema": {"type": "string"}},
        {"name": "subscription", "in": "query", "schema": {"type": "string"}},
        {"name": "message", "in": "query", "schema": {"type": "string"}, "description": "a gateway message id"},
        {"name": "since", "in": "query", "schema": instant, "description": "ISO 8601 or seconds since the epoch"},
        {"name": "until", "in": "query", "schema": instant, "description": "ISO 8601 or seconds since the epoch"},
        {"name": "cursor", "in": "query", "schema": {"type": "string"}, "description": "next_cursor of a page"},
        {
            "name": "limit",
            "in": "query",
            "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
        },
    ]
    return {
        "/v1/admin/disclosures": {
            "get": {
                "summary": "Operator: the deliveries that carried only some data elements of a message, newest"
                " first (cursor-paged)",
                "operationId": "adminDisclosures",
                "tags": ["operator"],
                "parameters": parameters,
                "responses": {
                    "200": {"description": "a page of disclosures", "content": json_content(Disclosures)},
                    **error_responses(NotAuthorized, RequestInvalid, UnknownDestination, *STORE_ERRORS),
                },
            }
        }
    }
