"""The OpenAPI 3.1 document of a running gateway, served at ``GET /openapi.json``.

The document is built per application (:func:`build_document`) from the core operations of :mod:`gateway.api`
plus the path items each configured inbound endpoint describes (:meth:`gateway.ports.InboundEndpoint.openapi_paths`),
so it lists every route that configuration serves (:func:`undocumented_operations` finds any that it does not).

In a path item, a ``schema`` may be given as a pydantic model class (one of :mod:`gateway.wire`, or an endpoint's
own): the builder replaces it with a ``$ref`` and generates ``components.schemas`` from the models, in
serialization mode for answers and validation mode for request bodies. Error answers are described with
:func:`error_responses`, which takes the statuses from the error classes themselves (``http_status``) and names
their codes. Every operation also gets ``500`` (``GATEWAY_INTERNAL``), every authenticated operation ``401``
(``AUTH_REQUIRED``) and every operation with a request body ``413`` (``XML_TOO_LARGE``), as the API's
middleware answers them for any route.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from gateway.errors import (
    ERROR_CODES,
    ClientError,
    CredentialsMalformed,
    DuplicateContent,
    GatewayError,
    MessageNotFound,
    MethodNotAllowed,
    NotAuthenticated,
    NotAuthorized,
    NswError,
    RequestInvalid,
    RequestTimeout,
    StoreCorrupt,
    StoreFull,
    StoreSchemaOutdated,
    StoreUnavailable,
    XmlTooLarge,
)
from gateway.model import State
from gateway.wire import Ack, CertificateStatus, Error, Health, MessageStatus, Readiness, Rejection, SearchResult

if TYPE_CHECKING:
    from gateway.ports import InboundEndpoint

__all__ = [
    "OPENAPI_VERSION",
    "REF_TEMPLATE",
    "build_document",
    "core_paths",
    "error_responses",
    "json_content",
    "served_operations",
    "documented_operations",
    "undocumented_operations",
]

OPENAPI_VERSION = "3.1.0"
REF_TEMPLATE = "#/components/schemas/{model}"
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
STORE_ERRORS: tuple[type[NswError], ...] = (StoreUnavailable, StoreFull, StoreCorrupt, StoreSchemaOutdated)
"""What an operation that reads or writes the store can answer besides its own errors."""


def json_content(schema: Any) -> dict[str, Any]:
    """``{"application/json": {"schema": schema}}`` (``schema``: a model class or a JSON Schema)."""
    return {"application/json": {"schema": schema}}


def _concrete(cls: type[NswError]) -> list[type[NswError]]:
    """The coded classes ``cls`` stands for: itself when it has a code of its own, else its coded subclasses."""
    if "code" in cls.__dict__:
        return [cls]
    return [c for c in ERROR_CODES.values() if issubclass(c, cls)]


def error_responses(*errors: type[NswError], schema: Any = Error) -> dict[str, Any]:
    """Response objects for the errors an operation answers: one per HTTP status the classes carry, naming
    their codes, with the error body (or ``schema``) as JSON."""
    by_status: dict[int, set[str]] = {}
    resend: dict[int, set[str]] = {}
    for cls in errors:
        for concrete in _concrete(cls):
            by_status.setdefault(concrete.http_status, set()).add(concrete.code)
            if concrete.retry_after is not None:
                resend.setdefault(concrete.http_status, set()).add(concrete.code)
    responses: dict[str, Any] = {
        str(status): {"description": "coded error: " + ", ".join(sorted(codes)), "content": json_content(schema)}
        for status, codes in sorted(by_status.items())
    }
    for status, codes in resend.items():
        responses[str(status)]["headers"] = {
            "Retry-After": {
                "required": codes == by_status[status],
                "description": "seconds to wait before resending (" + ", ".join(sorted(codes)) + ")",
                "schema": {"type": "string", "pattern": "^[0-9]+$"},
            }
        }
    if MethodNotAllowed.code in by_status.get(MethodNotAllowed.http_status, ()):
        responses[str(MethodNotAllowed.http_status)]["headers"] = {
            "Allow": {"required": True, "description": "the methods served here", "schema": {"type": "string"}}
        }
    return responses


def _merge(responses: dict[str, Any], extra: Mapping[str, Any]) -> None:
    """Add ``extra`` responses; a status already described gets the extra media types and codes."""
    for status, response in extra.items():
        mine = responses.get(status)
        if mine is None:
            responses[status] = copy.deepcopy(dict(response))
            continue
        content = mine["content"] = dict(mine.get("content", {}))  # a copy: path items may share content objects
        for media, value in response.get("content", {}).items():
            content.setdefault(media, value)
        if response.get("description") and response["description"] not in mine.get("description", ""):
            mine["description"] = f"{mine.get('description', '')}; {response['description']}".lstrip("; ")


def _header(
    name: str, *, required: bool = False, max_length: int | None = None, description: str = ""
) -> dict[str, Any]:
    """A request header parameter (a string)."""
    schema: dict[str, Any] = {"type": "string"}
    if max_length is not None:
        schema["maxLength"] = max_length
    parameter: dict[str, Any] = {"name": name, "in": "header", "required": required, "schema": schema}
    if description:
        parameter["description"] = description
    return parameter


_SUBMIT_HEADERS: list[dict[str, Any]] = [
    _header("X-Message-Id", required=True, max_length=128),
    _header("X-Document-Type", required=True, max_length=64),
    _header("X-Sender", description="default: the authenticated party; must be it"),
    _header("X-Conversation-Id", description="default: the reference the document names, else X-Message-Id"),
    _header(
        "X-Reference",
        description="default: the dossier reference the document names (a VNSW envelope's "
        "Header/Subject/reference, harmonized JSON envelope.reference)",
    ),
    _header("X-Destination"),
    _header("X-Procedure"),
    _header(
        "X-Format",
        description="the payload's format (json, vnsw, form-d, sps, xml...); default: the party's configured format",
    ),
    _header("X-On-Behalf-Of", description="intermediaries: the enterprise submitted for"),
]

_INSTANT = {
    "type": "string",
    "description": "an ISO 8601 date-time (without an offset: UTC) or seconds since the epoch",
    "examples": ["2026-12-02T09:30:00Z", "1796203800"],
}

_LOCATION = {
    "description": "the message's status resource",
    "required": True,
    "schema": {"type": "string", "examples": ["/v1/messages/0f8c..."]},
}


def _submit_operation() -> dict[str, Any]:
    from mappings.model import TradeMessage

    rejected = {"oneOf": [Rejection, Error]}
    responses: dict[str, Any] = {
        "202": {
            "description": "accepted: durably stored (no X-Duplicate header)",
            "headers": {"Location": _LOCATION},
            "content": json_content(Ack),
        },
        "200": {
            "description": "duplicate: the original acknowledgement, nothing stored or delivered again",
            "headers": {
                "Location": _LOCATION,
                "X-Duplicate": {"required": True, "schema": {"type": "string", "const": "true"}},
            },
            "content": json_content(Ack),
        },
    }
    # a refusal before storing answers {"error"}; a stored rejection {"error", "ack"} (the same again on resubmission)
    _merge(responses, error_responses(ClientError, schema=rejected))
    responses[str(DuplicateContent.http_status)]["description"] += (
        " (a replay: the signed document was already accepted from this sender under another X-Message-Id;"
        " error.details.original names that message: id, message_id, state; nothing is stored or queued)"
    )
    _merge(responses, error_responses(*STORE_ERRORS))
    for status in ("401", "404", "405"):
        responses.pop(status, None)  # not answered by this operation (401 is added with the bearer check)
    return {
        "summary": "Submit a message; acknowledged once durably stored",
        "operationId": "submitMessage",
        "parameters": _SUBMIT_HEADERS,
        "requestBody": {
            "required": True,
            "description": "the document: native XML (X-Format vnsw, form-d, sps, xml) or the harmonized JSON "
            "(Content-Type: application/json, X-Format: json)",
            "content": {
                "application/xml": {"schema": {"type": "string"}},
                "text/xml": {"schema": {"type": "string"}},
                "application/json": {"schema": TradeMessage},
            },
        },
        "responses": responses,
    }


_CERTIFICATE_EXAMPLE: dict[str, Any] = {
    "issuing_country": "VN",
    "number": "VN-TH-26-0001234",
    "issuer": "MOIT",
    "status": "utilized",
    "messages": ["0f8c2d0a6b1e4c2f9d3a7b5e1c0f2a9d", "5b1e9c7d2a3f4e6b8c0d1e2f3a4b5c6d"],
    "history": [
        {
            "status": "issued",
            "at": "2026-12-03T02:00:00.000000Z",
            "message": "0f8c2d0a6b1e4c2f9d3a7b5e1c0f2a9d",
            "party": "MOIT",
            "detail": {},
        },
        {
            "status": "delivered",
            "at": "2026-12-03T02:00:01.250000Z",
            "message": "0f8c2d0a6b1e4c2f9d3a7b5e1c0f2a9d",
            "party": "TH",
            "detail": {},
        },
        {
            "status": "utilized",
            "at": "2026-12-05T08:30:00.000000Z",
            "message": "5b1e9c7d2a3f4e6b8c0d1e2f3a4b5c6d",
            "party": "TH-ASW",
            "detail": {"declaration_number": "A0012345678", "declaration_date": "2026-12-05"},
        },
    ],
}


def core_paths() -> dict[str, Any]:
    """The path items of the API's own routes (:func:`gateway.api.build_app`)."""
    public: list[Any] = []
    search_params: list[dict[str, Any]] = [
        {"name": "document_type", "in": "query", "schema": {"type": "string"}},
        {"name": "state", "in": "query", "schema": {"type": "string", "enum": [s.value for s in State]}},
        {"name": "conversation", "in": "query", "schema": {"type": "string"}},
        {"name": "reference", "in": "query", "schema": {"type": "string"}},
        {"name": "since", "in": "query", "schema": _INSTANT},
        {"name": "until", "in": "query", "schema": _INSTANT},
        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}},
    ]
    return {
        "/v1/messages": {
            "post": _submit_operation(),
            "get": {
                "summary": "Search the party's messages, newest first",
                "operationId": "searchMessages",
                "parameters": search_params,
                "responses": {
                    "200": {"description": "matching messages", "content": json_content(SearchResult)},
                    **error_responses(RequestInvalid, *STORE_ERRORS),
                },
            },
        },
        "/v1/messages/{id}": {
            "get": {
                "summary": "A message's state, deliveries, replies and history",
                "operationId": "getMessage",
                "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {
                    "200": {"description": "the message", "content": json_content(MessageStatus)},
                    **error_responses(MessageNotFound, *STORE_ERRORS),
                },
            }
        },
        "/v1/certificates/{issuing_country}/{number}": {
            "get": {
                "summary": "A certificate of origin the party issued: its status and history",
                "description": "The status of an e-C/O the gateway carried from this party: issued, delivered (a "
                "partner's receipt verified), received, utilized or rejected (notified by the importing side), "
                "amended or cancelled; verification requests and answers appear in the history. Another party's "
                "certificate, or one the gateway did not carry, is MESSAGE_NOT_FOUND.",
                "operationId": "getCertificate",
                "parameters": [
                    {
                        "name": "issuing_country",
                        "in": "path",
                        "required": True,
                        "description": "ISO 3166-1 alpha-2 code of the issuing country",
                        "schema": {"type": "string", "examples": ["VN"]},
                    },
                    {
                        "name": "number",
                        "in": "path",
                        "required": True,
                        "description": "the certificate's number",
                        "schema": {"type": "string", "examples": ["VN-TH-26-0001234"]},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "the certificate",
                        "content": {
                            "application/json": {
                                "schema": CertificateStatus,
                                "examples": {"utilized": {"value": _CERTIFICATE_EXAMPLE}},
                            }
                        },
                    },
                    **error_responses(MessageNotFound, *STORE_ERRORS),
                },
            }
        },
        "/healthz": {
            "get": {
                "summary": "Liveness",
                "operationId": "healthz",
                "security": public,
                "responses": {"200": {"description": "alive", "content": json_content(Health)}},
            }
        },
        "/readyz": {
            "get": {
                "summary": "Readiness: the store's checks (write, free space, integrity, journal head)",
                "operationId": "readyz",
                "security": public,
                "responses": {
                    "200": {"description": "ready: every check is ok", "content": json_content(Readiness)},
                    "503": {
                        "description": "not ready: checks names each failed check, with its reason (a store fault: "
                        + ", ".join(sorted(c.code for c in STORE_ERRORS))
                        + ")",
                        "headers": {
                            "Retry-After": {"required": True, "schema": {"type": "string", "pattern": "^[0-9]+$"}}
                        },
                        "content": json_content(Readiness),
                    },
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics (a [gateway.metrics] scrape token, unless public = true)",
                "operationId": "metrics",
                "responses": {
                    "200": {
                        "description": "Prometheus text format 0.0.4 (text/plain; version=0.0.4), or OpenMetrics"
                        " 1.0.0 when Accept names application/openmetrics-text",
                        "content": {
                            "text/plain": {"schema": {"type": "string"}},
                            "application/openmetrics-text": {"schema": {"type": "string"}},
                        },
                    },
                    **error_responses(NotAuthorized),
                },
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "operationId": "openapi",
                "security": public,
                "responses": {"200": {"description": "OpenAPI 3.1", "content": json_content({"type": "object"})}},
            }
        },
    }


def _operations(paths: Mapping[str, Any]) -> Iterable[tuple[str, str, dict[str, Any]]]:
    for path, item in paths.items():
        for method, operation in item.items():
            if method in _METHODS:
                yield path, method, operation


def _collect(node: Any, mode: JsonSchemaMode, found: dict[tuple[type[BaseModel], JsonSchemaMode], None]) -> None:
    if isinstance(node, type) and issubclass(node, BaseModel):
        found[(node, mode)] = None
    elif isinstance(node, Mapping):
        for key, value in node.items():
            _collect(value, "validation" if key == "requestBody" else mode, found)
    elif isinstance(node, list | tuple):
        for value in node:
            _collect(value, mode, found)


def _resolve(node: Any, mode: JsonSchemaMode, refs: Mapping[Any, Any]) -> Any:
    if isinstance(node, type) and issubclass(node, BaseModel):
        return dict(refs[(node, mode)])
    if isinstance(node, Mapping):
        return {k: _resolve(v, "validation" if k == "requestBody" else mode, refs) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return [_resolve(v, mode, refs) for v in node]
    return node


def build_document(
    endpoints: Iterable[InboundEndpoint] = (), *, title: str = "NSW interoperability gateway"
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of an API serving the core routes and those of ``endpoints``."""
    from gateway.admin import admin_paths  # the operator API's module builds on this one's helpers
    from gateway.registry_api import registry_paths
    from gateway.shipcalls_api import ship_call_paths

    paths = core_paths() | admin_paths() | registry_paths() | ship_call_paths()
    for endpoint in endpoints:
        for path, item in copy.deepcopy(endpoint.openapi_paths()).items():
            mine = paths.setdefault(path, {})
            for method, operation in item.items():
                if method in _METHODS and method in mine:
                    raise ValueError(f"{method.upper()} {path} is described twice (inbound endpoint {endpoint.name})")
                mine[method] = operation
    for _, _, operation in _operations(paths):
        responses = operation.setdefault("responses", {})
        if operation.get("security") != []:
            _merge(responses, error_responses(NotAuthenticated, CredentialsMalformed))
        if "requestBody" in operation:
            _merge(responses, error_responses(XmlTooLarge, RequestTimeout))
        _merge(responses, error_responses(GatewayError))
        operation["responses"] = dict(sorted(responses.items()))
    found: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {}
    _collect(paths, "serialization", found)
    refs, definitions = models_json_schema(list(found), ref_template=REF_TEMPLATE)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": title,
            "version": "1",
            "description": 'Every error answer is {"error": {code, message, origin, incident_id, field?}}; '
            "the codes are listed in docs/errors.md. Times are RFC 3339 UTC strings.",
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": dict(sorted(definitions.get("$defs", {}).items())),
        },
        "security": [{"bearer": []}],
        "paths": _resolve(paths, "serialization", refs),
    }


def _template(canonical: str) -> str:
    """An aiohttp resource path as an OpenAPI path template (``{id:\\d+}`` → ``{id}``)."""
    return re.sub(r"\{(\w+):[^}]*\}", r"{\1}", canonical)


def _api(path: str) -> bool:
    """Whether ``path`` is the API's: the console's HTML pages (``/console``, and ``/`` redirecting there) are not."""
    return not (path == "/" or path == "/console" or path.startswith("/console/"))


def served_operations(app: web.Application) -> set[tuple[str, str]]:
    """``(path, method)`` of every API route ``app`` serves (the HEAD aiohttp adds to each GET left out; the
    console's pages are not API)."""
    return {
        (_template(route.resource.canonical), route.method.lower())
        for route in app.router.routes()
        if route.resource is not None and route.method != "HEAD" and _api(route.resource.canonical)
    }


def documented_operations(document: Mapping[str, Any]) -> set[tuple[str, str]]:
    """``(path, method)`` of every operation ``document`` describes."""
    return {(path, method) for path, method, _ in _operations(document.get("paths", {}))}


def undocumented_operations(app: web.Application, document: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Routes ``app`` serves that ``document`` does not describe."""
    return sorted(served_operations(app) - documented_operations(document))
