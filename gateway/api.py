"""The HTTP API (aiohttp) and :class:`Gateway`, which assembles store, broker, delivery and API.

Endpoints:

* ``POST /v1/messages``: submit (body: the document; headers ``X-Message-Id``,
  ``X-Document-Type``, optional ``X-Sender``, ``X-Conversation-Id``,
  ``X-Reference``, ``X-Destination``, ``X-Procedure``, ``X-Format``,
  ``X-On-Behalf-Of`` for intermediaries). 202 with
  the acknowledgement once durably stored; 200 with the *original*
  acknowledgement (and ``X-Duplicate: true``) for a resubmission of the same
  ``X-Message-Id``, whatever its body; 409 ``DUPLICATE_CONTENT`` for a signed
  document this sender already had accepted under another ``X-Message-Id`` (a
  replay), ``{"error": {..., "details": {"original": {"id", "message_id",
  "state"}}}}`` naming that message and its current state, nothing stored or
  queued; a rejection answers its error's status with
  ``{"error": {...}, "ack": {...}}``.
* ``GET /v1/messages/{id}``: state, deliveries and timestamped history.
* ``GET /v1/messages?document_type=&state=&conversation=&reference=&since=&until=&limit=``.
* ``GET /healthz``, ``GET /readyz`` (the store's checks, each ``ok`` or ``failed: ...``, 503 ``not ready`` when
  one failed; with the security defaults the configuration weakens), ``GET /metrics``
  (Prometheus; a ``[gateway.metrics]`` scrape token unless ``public = true``), ``GET /openapi.json``: the OpenAPI 3.1
  document of this configuration, core routes and inbound endpoints' (:mod:`gateway.openapi`).

Parties authenticate with ``Authorization: Bearer <token>`` (per-party API
tokens from the configuration); a party submits only as itself, only the
document types it is configured for, and reads only the messages it sent;
an intermediary submits only for the enterprises it is delegated for.
Every error reply is ``{"error": {"code", "message", "origin", "incident_id", "field"?}}``, an unknown path
(``PATH_NOT_FOUND``) and a wrong method (``METHOD_NOT_ALLOWED``, with ``Allow``) included. Every JSON body is
built through a model of :mod:`gateway.wire`; times are RFC 3339 UTC strings (``2026-12-03T06:30:00.123456Z``).
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from cryptography import x509

from gateway.broker import Broker
from gateway.config import Config
from gateway.delivery import Clock, DeliveryEngine, SystemClock
from gateway.errors import (
    ERROR_CODES,
    CredentialsMalformed,
    GatewayError,
    MessageNotFound,
    MethodNotAllowed,
    NotAuthenticated,
    NotAuthorized,
    NswError,
    PathNotFound,
    RequestInvalid,
    StoreError,
    StoreUnavailable,
    XmlTooLarge,
)
from gateway.metrics import Metrics
from gateway.model import PartyId, State, SubmissionEnvelope
from gateway.openapi import build_document, undocumented_operations
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
from gateway.transport import Listener, body_deadline
from gateway.wire import Ack, Health, MessageStatus, Readiness, Rejection, SearchResult, error_reply, json_reply

__all__ = ["Gateway", "build_app", "DOCUMENT"]

log = logging.getLogger("nswgw.api")

PARTY: web.RequestKey[str] = web.RequestKey("party", str)
GATEWAY: web.AppKey[Gateway] = web.AppKey("gateway")
DOCUMENT: web.AppKey[dict[str, Any]] = web.AppKey("openapi", dict)
"""The OpenAPI document of an application built by :func:`build_app`."""

_PUBLIC = frozenset({"/healthz", "/readyz", "/openapi.json"})


@web.middleware
async def _errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except StoreError as exc:
        log.error("incident %s: %s %s refused: %s", exc.incident_id, request.method, request.path, exc)
        return error_reply(exc)
    except NswError as exc:
        log.info("incident %s: %s", exc.incident_id, exc)
        return error_reply(exc)
    except web.HTTPRequestEntityTooLarge as exc:
        return error_reply(XmlTooLarge(exc.text or "request body too large", field="body"))
    except web.HTTPMethodNotAllowed as exc:
        allow = sorted(m for m in exc.allowed_methods if m != "HEAD")
        return error_reply(MethodNotAllowed(f"{request.method} is not served at {request.path}", allow=allow))
    except web.HTTPNotFound:
        return error_reply(PathNotFound(f"no endpoint at {request.path} (see /openapi.json)", field="path"))
    except web.HTTPException:
        raise
    except Exception as exc:
        error = GatewayError(f"internal error: {type(exc).__name__}")
        log.exception("incident %s", error.incident_id)
        return error_reply(error)


@web.middleware
async def _auth(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    if request.path in _PUBLIC:
        return await handler(request)
    # inbound endpoints that authenticate their callers themselves (AS4: WS-Security signature)
    if any(request.path in ep.public_paths() for ep in request.app[GATEWAY].inbound):
        return await handler(request)
    config = request.app[GATEWAY].config
    if request.path == "/metrics":
        scrape = config.gateway.metrics
        if scrape.public:
            return await handler(request)
        token = _bearer(request)
        if scrape.matches(token):
            return await handler(request)
        if config.party_for_token(token) is not None:
            raise NotAuthorized(
                "a party token does not open /metrics; use a [gateway.metrics] token", field="Authorization"
            )
        raise NotAuthenticated("the token matches no [gateway.metrics] scrape token", field="Authorization")
    subject = _client_subject(request)
    by_certificate = config.party_for_certificate(subject) if subject is not None else None
    if "Authorization" in request.headers or by_certificate is None:
        if subject is not None and by_certificate is None and "Authorization" not in request.headers:
            raise NotAuthenticated(f"the TLS client certificate {subject} authenticates no party", field="certificate")
        party = config.party_for_token(_bearer(request))
        if party is None:
            raise NotAuthenticated("the token matches no configured party", field="Authorization")
        if by_certificate is not None and by_certificate != party:
            raise NotAuthorized(
                f"the bearer token is {party}'s, the TLS client certificate {by_certificate}'s", field="Authorization"
            )
    else:
        party = by_certificate
    request[PARTY] = party
    return await handler(request)


def _client_subject(request: web.Request) -> str | None:
    """The RFC 4514 subject of the connection's TLS client certificate (verified in the handshake against
    ``gateway.tls.client_ca``), if it presented one."""
    transport = request.transport
    tls = transport.get_extra_info("ssl_object") if transport is not None else None
    der = tls.getpeercert(binary_form=True) if tls is not None else None
    if not der:
        return None
    return x509.load_der_x509_certificate(der).subject.rfc4514_string()


def _bearer(request: web.Request) -> str:
    """The token of the request's ``Authorization: Bearer <token>`` header."""
    header = request.headers.get("Authorization", "")
    if any(not " " <= c <= "~" for c in header):
        # aiohttp hands bytes that are not UTF-8 over as surrogates: never echoed, never hashed
        raise CredentialsMalformed(
            "the Authorization header holds bytes that are not visible ASCII", field="Authorization"
        )
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise NotAuthenticated("an Authorization: Bearer <token> header is required", field="Authorization")
    if " " in token:
        raise CredentialsMalformed("a bearer token holds no spaces", field="Authorization")
    return token


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
    ack = Ack.of(result.ack)
    if ack.error is not None:
        cls = ERROR_CODES.get(ack.error.code, GatewayError)
        return json_reply(Rejection(error=ack.error, ack=ack), status=cls.http_status)
    headers = {"Location": f"/v1/messages/{result.ack.id}"}
    if not result.created:
        headers["X-Duplicate"] = "true"
    return json_reply(ack, status=202 if result.created else 200, headers=headers)


async def _get(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    record = await gw.store.get(request.match_info["id"])
    if record is None or record.message.envelope.sender != request[PARTY]:
        raise MessageNotFound(f"no message {request.match_info['id']}", field="id")
    return json_reply(MessageStatus.of(record))


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
    return json_reply(SearchResult(messages=[MessageStatus.of(r) for r in records]))


async def _healthz(request: web.Request) -> web.Response:
    return json_reply(Health(status="ok"))


async def _readyz(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    checks = await gw.store.health()
    failed = sorted(name for name, result in checks.items() if result != "ok")
    body = Readiness(
        status="not ready" if failed else "ready",
        checks=checks,
        circuits_open=gw.engine.circuits_open(),
        weakened=list(gw.config.weakened),
    )
    if failed:
        log.error("not ready: %s", "; ".join(f"{name} {checks[name]}" for name in failed))
        return json_reply(body, status=503, headers={"Retry-After": str(StoreUnavailable.retry_after)})
    return json_reply(body)


async def _metrics(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    return web.Response(
        text=gw.metrics.render(), content_type="text/plain", charset="utf-8", headers={"X-Prometheus-Format": "0.0.4"}
    )


async def _openapi(request: web.Request) -> web.Response:
    return web.json_response(request.app[DOCUMENT])


def build_app(gateway: Gateway) -> web.Application:
    settings = gateway.config.gateway
    app = web.Application(
        middlewares=[_errors, _auth, body_deadline(settings.body_timeout)], client_max_size=settings.max_message_bytes
    )
    app[GATEWAY] = gateway
    app.router.add_post("/v1/messages", _submit)
    app.router.add_get("/v1/messages", _search)
    app.router.add_get("/v1/messages/{id}", _get)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/openapi.json", _openapi)
    app.add_routes([r for ep in gateway.inbound for r in ep.routes(gateway.intake)])
    document = build_document(gateway.inbound)
    app[DOCUMENT] = document
    for path, method in undocumented_operations(app, document):
        log.warning("%s %s is served but not described in /openapi.json", method.upper(), path)
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
        rng: random.Random | None = None,
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
            legacy_content_types={name: mapper.media_type(dest.format) for name, dest in config.destinations.items()},
            rng=rng,
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
        self.listener: Listener | None = None
        """The HTTP listener while the gateway runs (``serve_http``): its ``limits`` count connections per client."""
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
        scheme = "https" if self.config.gateway.tls is not None else "http"
        return f"{scheme}://{self.config.gateway.host}:{self.port}"

    async def start(self) -> None:
        await self.store.open()
        try:
            await self.store.recover(now=self.clock.now())
            await self.engine.start()
            for endpoint in self.inbound:
                await endpoint.start(self.intake)
            if self.serve_http:
                self.listener = Listener(build_app(self), self.config.gateway)
                self.port = await self.listener.start()
            if self.config.weakened:
                log.warning("security weakened by configuration: %s", ", ".join(self.config.weakened))
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        listener, self.listener = self.listener, None
        if listener is not None:
            await listener.stop()
        for endpoint in self.inbound:
            await endpoint.stop()
        try:
            await self.engine.stop()  # records or releases every delivery its workers hold
        finally:
            await self.store.close()

    async def __aenter__(self) -> Gateway:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
