"""The ship-call view (:mod:`gateway.shipcalls`) of the HTTP API:

* ``GET /v1/ship-calls/{reference}`` for a party: the call's agent, or a party answering for one of its agencies
  (any version's reference names the call); any other party gets ``SHIP_CALL_UNKNOWN``, as for a call that does not
  exist, so that nobody learns of another agent's calls;
* ``GET /v1/admin/ship-calls/{reference}`` for an operator with the ``read`` role.

Both answer the overall status, the current version, each agency's answer (and the version of the part it
answered for) and the history, oldest first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web
from pydantic import Field

from gateway.errors import NotAuthorized, ShipCallUnknown
from gateway.openapi import error_responses, json_content
from gateway.wire import WireModel, json_reply

if TYPE_CHECKING:
    from gateway.api import Gateway

__all__ = ["ShipCallView", "ship_call_paths", "ship_call_routes"]


class AgencyView(WireModel):
    agency: str = Field(description="the destination the agency receives at")
    party: str = Field(description="the party that answers for it")
    required: bool = Field(description="whether the procedure needs its agreement")
    part_version: str | None = Field(description="the version of the call its current part came with")
    answer: str | None = Field(description="accepted | accepted_with_conditions | refused; null: not yet answered")
    reasons: list[str]
    conditions: list[str]
    answered_at: str | None


class VersionView(WireModel):
    reference: str
    message: str = Field(description="the gateway id of the message that declared it")
    at: str


class EventView(WireModel):
    at: str
    event: str = Field(description="submitted | amended | answered")
    status: str = Field(description="the overall status after it")
    version: str | None
    party: str
    agency: str | None
    message: str
    detail: dict[str, Any] | None = None


class ShipCallView(WireModel):
    reference: str = Field(description="the call: its first version's reference")
    procedure: str
    agent: str
    on_behalf_of: str | None
    status: str = Field(description="SUBMITTED, PENDING_AGENCIES, or the procedure's granted / conditional / refused")
    version: str = Field(description="the reference of the current version")
    updated_at: str
    agencies: list[AgencyView]
    versions: list[VersionView]
    history: list[EventView]


def ship_call_routes(gateway: Gateway) -> list[web.RouteDef]:
    """The two routes of the module docstring."""
    from gateway.admin import OPERATOR
    from gateway.api import PARTY

    async def for_party(request: web.Request) -> web.Response:
        reference = request.match_info["reference"]
        record = await gateway.store.ship_call(reference)
        if record is None or not record.involves(request[PARTY]):
            raise ShipCallUnknown(f"no ship call {reference} of yours", field="reference")
        return json_reply(ShipCallView.model_validate(record.to_dict()))

    async def for_operator(request: web.Request) -> web.Response:
        operator = request[OPERATOR]
        if "read" not in gateway.config.operators[operator].roles:
            raise NotAuthorized(f"operator {operator} lacks the 'read' role", field="Authorization")
        reference = request.match_info["reference"]
        record = await gateway.store.ship_call(reference)
        if record is None:
            raise ShipCallUnknown(f"no ship call {reference}", field="reference")
        return json_reply(ShipCallView.model_validate(record.to_dict()))

    return [
        web.get("/v1/ship-calls/{reference}", for_party),
        web.get("/v1/admin/ship-calls/{reference}", for_operator),
    ]


def ship_call_paths() -> dict[str, Any]:
    """The path items of :func:`ship_call_routes`, for :func:`gateway.openapi.build_document`."""
    reference = [{"name": "reference", "in": "path", "required": True, "schema": {"type": "string"}}]
    answer = {"description": "the call, its agencies' answers and its history", "content": json_content(ShipCallView)}
    return {
        "/v1/ship-calls/{reference}": {
            "get": {
                "summary": "A ship call of the agent, or of an agency it was routed to: status, answers, history",
                "operationId": "shipCall",
                "tags": ["ship-calls"],
                "parameters": reference,
                "responses": {"200": answer, **error_responses(ShipCallUnknown)},
            }
        },
        "/v1/admin/ship-calls/{reference}": {
            "get": {
                "summary": "Any ship call (operator, read role): status, answers, history",
                "operationId": "adminShipCall",
                "tags": ["operator"],
                "parameters": reference,
                "responses": {"200": answer, **error_responses(ShipCallUnknown, NotAuthorized)},
            }
        },
    }
