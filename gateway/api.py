"""The HTTP API (aiohttp) and :class:`Gateway`, which assembles store, broker, delivery and API.

Endpoints:

* ``POST /v1/messages``: submit (body: the document; headers ``X-Message-Id``,
  ``X-Document-Type``, optional ``X-Sender``, ``X-Conversation-Id``,
  ``X-Reference``, ``X-Destination``, ``X-Procedure``, ``X-Format``,
  ``X-On-Behalf-Of`` for intermediaries). 202 with
  the acknowledgement once durably stored; 200 with the *original*
  acknowledgement for a duplicate; a rejection answers its error's status
  with ``{"error": {...}, "ack": {...}}``.
* ``GET /v1/messages/{id}``: state, deliveries and timestamped history.
* ``GET /v1/messages?document_type=&state=&conversation=&reference=&since=&until=&limit=``.
* ``GET /healthz``, ``GET /readyz``, ``GET /metrics`` (Prometheus), ``GET /openapi.json``.

Parties authenticate with ``Authorization: Bearer <token>`` (per-party API
tokens from the configuration); a party submits only as itself, only the
document types it is configured for, and reads only the messages it sent;
an intermediary submits only for the enterprises it is delegated for.
Every error reply is ``{"error": {"code", "message", "origin", "incident_id", "field"?}}``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from gateway.broker import Broker
from gateway.config import Config
from gateway.delivery import Clock, DeliveryEngine, SystemClock
from gateway.errors import (
    ERROR_CODES,
    GatewayError,
    MessageNotFound,
    NotAuthenticated,
    NswError,
    RequestInvalid,
    XmlTooLarge,
)
from gateway.metrics import Metrics
from gateway.model import PartyId, State, SubmissionEnvelope
from gateway.ports import (
    Adapter,
    DeliverySigner,
    InboundEndpoint,
    Intake,
    Mapper,
    ReceiptVerifier,
    RegistryMapper,
    Verifier,
    resolve_inbound,
)
from gateway.security import build_adapter, build_receipts, build_signer, build_verifier
from gateway.store import Store, store_from_settings
from gateway.store.base import MessageQuery

__all__ = ["Gateway", "build_app", "OPENAPI"]

log = logging.getLogger("nswgw.api")

PARTY: web.RequestKey[str] = web.RequestKey("party", str)
GATEWAY: web.AppKey[Gateway] = web.AppKey("gateway")

_PUBLIC = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.json"})


def _error_response(exc: NswError, **extra: Any) -> web.Response:
    return web.json_response({"error": exc.to_dict(), **extra}, status=exc.http_status)


@web.middleware
async def _errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except NswError as exc:
        log.info("incident %s: %s", exc.incident_id, exc)
        return _error_response(exc)
    except web.HTTPRequestEntityTooLarge as exc:
        return _error_response(XmlTooLarge(exc.text or "request body too large", field="body"))
    except web.HTTPException:
        raise
    except Exception as exc:
        error = GatewayError(f"internal error: {type(exc).__name__}")
        log.exception("incident %s", error.incident_id)
        return _error_response(error)


@web.middleware
async def _auth(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    if request.path in _PUBLIC:
        return await handler(request)
    # inbound endpoints that authenticate their callers themselves (AS4: WS-Security signature)
    if any(request.path in ep.public_paths() for ep in request.app[GATEWAY].inbound):
        return await handler(request)
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated("an Authorization: Bearer <token> header is required", field="Authorization")
    party = request.app[GATEWAY].config.party_for_token(token.strip())
    if party is None:
        raise NotAuthenticated("the token matches no configured party", field="Authorization")
    request[PARTY] = party
    return await handler(request)


def _envelope(request: web.Request, party: str) -> SubmissionEnvelope:
    h = request.headers
    settings = request.app[GATEWAY].config.parties.get(party)
    return SubmissionEnvelope(
        sender=PartyId(h.get("X-Sender", party)),
        message_id=h.get("X-Message-Id", ""),
        document_type=h.get("X-Document-Type", ""),
        conversation_id=h.get("X-Conversation-Id"),
        reference=h.get("X-Reference"),
        destination=h.get("X-Destination"),
        procedure=h.get("X-Procedure"),
        format=h.get("X-Format", settings.format if settings is not None else "xml"),
        on_behalf_of=h.get("X-On-Behalf-Of"),
    )


async def _submit(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    party = request[PARTY]
    envelope = _envelope(request, party)
    raw = await request.read()
    result = await gw.broker.submit(party, envelope, raw)
    body = result.ack.to_dict()
    if result.ack.error:
        cls = ERROR_CODES.get(result.ack.error.get("code", ""), GatewayError)
        return web.json_response({"error": result.ack.error, "ack": body}, status=cls.http_status)
    headers = {"Location": f"/v1/messages/{result.ack.id}"}
    if not result.created:
        headers["X-Duplicate"] = "true"
    return web.json_response(body, status=202 if result.created else 200, headers=headers)


async def _get(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    record = await gw.store.get(request.match_info["id"])
    if record is None or record.message.envelope.sender != request[PARTY]:
        raise MessageNotFound(f"no message {request.match_info['id']}", field="id")
    return web.json_response(record.to_dict())


def _instant(query: Mapping[str, str], name: str) -> float | None:
    """An ISO 8601 date-time (``2026-12-02T09:30:00+07:00``; without an offset it is UTC) or seconds since the
    epoch, as seconds since the epoch."""
    value = query.get(name)
    if value is None:
        return None
    with contextlib.suppress(ValueError):
        return float(value)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise RequestInvalid(
            f"{name} must be an ISO 8601 date-time (2026-12-02T09:30:00Z) or seconds since the epoch: {value!r}",
            field=name,
        ) from None
    return (moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)).timestamp()


async def _search(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    q = request.query
    state = q.get("state")
    if state is not None and state not in State.__members__:
        raise RequestInvalid(f"unknown state {state!r}; one of {', '.join(State.__members__)}", field="state")
    try:
        limit = int(q.get("limit", "100"))
    except ValueError:
        raise RequestInvalid("limit must be an integer from 1 to 1000", field="limit") from None
    if not 1 <= limit <= 1000:
        raise RequestInvalid(f"limit must be an integer from 1 to 1000: {limit}", field="limit")
    query = MessageQuery(
        sender=request[PARTY],
        document_type=q.get("document_type"),
        state=State(state) if state else None,
        conversation=q.get("conversation"),
        reference=q.get("reference"),
        since=_instant(q, "since"),
        until=_instant(q, "until"),
        limit=limit,
    )
    records = await gw.store.search(query)
    return web.json_response({"messages": [r.to_dict() for r in records]})


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _readyz(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    try:
        await gw.store.stats()
    except NswError as exc:
        return _error_response(exc)
    return web.json_response({"status": "ready", "circuits_open": gw.engine.circuits_open()})


async def _metrics(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    return web.Response(
        text=gw.metrics.render(), content_type="text/plain", charset="utf-8", headers={"X-Prometheus-Format": "0.0.4"}
    )


async def _openapi(request: web.Request) -> web.Response:
    return web.json_response(OPENAPI)


def build_app(gateway: Gateway) -> web.Application:
    app = web.Application(middlewares=[_errors, _auth], client_max_size=gateway.config.gateway.max_message_bytes)
    app[GATEWAY] = gateway
    app.router.add_post("/v1/messages", _submit)
    app.router.add_get("/v1/messages", _search)
    app.router.add_get("/v1/messages/{id}", _get)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/openapi.json", _openapi)
    app.add_routes([r for ep in gateway.inbound for r in ep.routes(gateway.intake)])
    return app


class Gateway:
    """A whole gateway: store, delivery engine, broker and HTTP API. ``async with Gateway(config) as gw``.

    The composition root: every collaborator of :class:`~gateway.broker.Broker` and
    :class:`~gateway.delivery.DeliveryEngine` is built here from the configuration (:mod:`gateway.security`
    for verifier, signer and receipts; the adapter registry for adapters and inbound endpoints), unless a
    caller hands one in (tests, benchmarks).
    """

    def __init__(
        self,
        config: Config,
        *,
        store: Store | None = None,
        verifier: Verifier | None = None,
        mapper: Mapper | None = None,
        signer: DeliverySigner | None = None,
        receipts: ReceiptVerifier | None = None,
        clock: Clock | None = None,
        adapters: Mapping[str, Adapter] | None = None,
        serve_http: bool = True,
    ) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.metrics = Metrics()
        self.store = store or store_from_settings(config.store)
        mapper = mapper or RegistryMapper()
        given = dict(adapters or {})
        self.engine = DeliveryEngine(
            config,
            self.store,
            clock=self.clock,
            metrics=self.metrics,
            receipts=receipts or build_receipts(config),
            adapters={name: given.get(name) or build_adapter(name, dest) for name, dest in config.destinations.items()},
            content_types={name: mapper.media_type(dest.format) for name, dest in config.destinations.items()},
        )
        self.store.on_work(self.engine.wake)
        self.broker = Broker(
            config,
            self.store,
            verifier=verifier or build_verifier(config),
            mapper=mapper,
            signer=signer or build_signer(config),
            clock=self.clock,
            metrics=self.metrics,
            on_accepted=self.engine.wake,
        )
        self.serve_http = serve_http
        self._runner: web.AppRunner | None = None
        self.port: int | None = None
        self.inbound: list[InboundEndpoint] = [
            resolve_inbound(s.endpoint, field=f"inbound.{name}.endpoint")(name, options=s.options)
            for name, s in config.inbound.items()
        ]
        """The endpoints of the ``[inbound.NAME]`` sections, in order (a caller may append more before start)."""
        self.intake = Intake(
            submit=self.broker.submit, party_of=lambda request: PartyId(request[PARTY]), store=self.store, config=config
        )

    @property
    def url(self) -> str:
        return f"http://{self.config.gateway.host}:{self.port}"

    async def start(self) -> None:
        await self.store.open()
        try:
            await self.store.recover(now=self.clock.now())
            await self.engine.start()
            for endpoint in self.inbound:
                await endpoint.start(self.intake)
            if self.serve_http:
                self._runner = web.AppRunner(build_app(self), access_log=None)
                await self._runner.setup()
                site = web.TCPSite(self._runner, self.config.gateway.host, self.config.gateway.port)
                await site.start()
                self.port = int(self._runner.addresses[0][1])
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        for endpoint in self.inbound:
            await endpoint.stop()
        await self.engine.stop()
        await self.store.close()

    async def __aenter__(self) -> Gateway:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def _schema_ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_HEADERS = [
    {"name": "X-Message-Id", "in": "header", "required": True, "schema": {"type": "string", "maxLength": 128}},
    {"name": "X-Document-Type", "in": "header", "required": True, "schema": {"type": "string"}},
    {"name": "X-Sender", "in": "header", "required": False, "schema": {"type": "string"}},
    {"name": "X-Conversation-Id", "in": "header", "required": False, "schema": {"type": "string"}},
    {"name": "X-Reference", "in": "header", "required": False, "schema": {"type": "string"}},
    {"name": "X-Destination", "in": "header", "required": False, "schema": {"type": "string"}},
    {"name": "X-Procedure", "in": "header", "required": False, "schema": {"type": "string"}},
    {
        "name": "X-Format",
        "in": "header",
        "required": False,
        "schema": {"type": "string", "description": "default: the party's configured format"},
    },
    {
        "name": "X-On-Behalf-Of",
        "in": "header",
        "required": False,
        "schema": {"type": "string", "description": "intermediaries: the enterprise submitted for"},
    },
]

_ERROR = {"description": "coded error", "content": {"application/json": {"schema": _schema_ref("Error")}}}

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "NSW interoperability gateway", "version": "1"},
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": {
                "type": "object",
                "properties": {
                    "error": {
                        "type": "object",
                        "required": ["code", "message", "origin", "incident_id"],
                        "properties": {
                            "code": {"type": "string", "enum": sorted(ERROR_CODES)},
                            "message": {"type": "string"},
                            "origin": {"type": "string"},
                            "incident_id": {"type": "string"},
                            "field": {"type": "string"},
                        },
                    }
                },
            },
            "Ack": {
                "type": "object",
                "required": ["id", "sender", "message_id", "state", "received_at", "destinations"],
                "properties": {
                    "id": {"type": "string"},
                    "sender": {"type": "string"},
                    "message_id": {"type": "string"},
                    "state": {"type": "string", "enum": [s.value for s in State]},
                    "received_at": {"type": "number"},
                    "destinations": {"type": "array", "items": {"type": "string"}},
                },
            },
            "Message": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "state": {"type": "string"},
                    "history": {"type": "array", "items": {"type": "object"}},
                    "deliveries": {"type": "array", "items": {"type": "object"}},
                },
            },
        },
    },
    "security": [{"bearer": []}],
    "paths": {
        "/v1/messages": {
            "post": {
                "summary": "Submit a message; acknowledged once durably stored",
                "parameters": _HEADERS,
                "requestBody": {"required": True, "content": {"application/xml": {"schema": {"type": "string"}}}},
                "responses": {
                    "202": {"description": "accepted", "content": {"application/json": {"schema": _schema_ref("Ack")}}},
                    "200": {
                        "description": "duplicate: the original acknowledgement",
                        "content": {"application/json": {"schema": _schema_ref("Ack")}},
                    },
                    "400": _ERROR,
                    "401": _ERROR,
                    "403": _ERROR,
                    "413": _ERROR,
                    "422": _ERROR,
                },
            },
            "get": {
                "summary": "Search the party's messages",
                "parameters": [
                    {"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
                    for n in ("document_type", "state", "conversation", "reference", "since", "until", "limit")
                ],
                "responses": {"200": {"description": "matching messages"}, "400": _ERROR, "401": _ERROR},
            },
        },
        "/v1/messages/{id}": {
            "get": {
                "summary": "A message's state, deliveries and history",
                "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {
                    "200": {
                        "description": "the message",
                        "content": {"application/json": {"schema": _schema_ref("Message")}},
                    },
                    "404": _ERROR,
                    "401": _ERROR,
                },
            }
        },
        "/healthz": {"get": {"security": [], "responses": {"200": {"description": "alive"}}}},
        "/readyz": {"get": {"security": [], "responses": {"200": {"description": "ready"}, "500": _ERROR}}},
        "/metrics": {"get": {"security": [], "responses": {"200": {"description": "Prometheus text format"}}}},
        "/openapi.json": {"get": {"security": [], "responses": {"200": {"description": "this document"}}}},
    },
}
