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
* ``GET /v1/ship-calls/{reference}`` (the call's agent and agencies; operators at ``/v1/admin/ship-calls/...``):
  a ship call's overall status, each agency's answer and the history (:mod:`gateway.shipcalls_api`).
* ``GET /healthz``, ``GET /readyz`` (the store's checks, each ``ok`` or ``failed: ...``, 503 ``not ready`` when
  one failed; with the security defaults the configuration weakens), ``GET /metrics``
  (:mod:`gateway.metrics`: text format 0.0.4 or OpenMetrics by ``Accept``; outbox gauges and readiness counted at
  each scrape; a ``[gateway.metrics]`` scrape token unless ``public = true``, decided in ``_authorize_scrape``;
  every request counted by route template and status), ``GET /openapi.json``: the OpenAPI 3.1
  document of this configuration, core routes and inbound endpoints' (:mod:`gateway.openapi`).
* ``/v1/admin/*``: the operator API (:mod:`gateway.admin`), for ``[operators.NAME]`` credentials only (bearer
  token or TLS client certificate); an operator token also scrapes ``/metrics`` and opens no party endpoint.

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
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography import x509

from gateway import __version__
from gateway.admin import ADMIN_PREFIX, OPERATOR, admin_routes
from gateway.archive import Archiver
from gateway.audit import Anchoring, require_sound_journal
from gateway.broker import Broker
from gateway.clock import Clock, SystemClock
from gateway.config import Config
from gateway.console import CONSOLE_PREFIX, console_routes
from gateway.cpu import CpuThreads
from gateway.delivery import DeliveryEngine
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
from gateway.events import Event, EventBus
from gateway.intake_pool import ProcessIntake
from gateway.metrics import Metrics, OutboxGauges
from gateway.model import PartyId, State, SubmissionEnvelope
from gateway.openapi import build_document, undocumented_operations
from gateway.periodic import Periodic
from gateway.ports import (
    Adapter,
    DeliverySigner,
    InboundEndpoint,
    Intake,
    Mapper,
    ReceiptVerifier,
    RegistryMapper,
    StoreAdapterState,
    Verifier,
    resolve_inbound,
)
from gateway.reference import ReferenceData
from gateway.security import (
    build_adapter,
    build_receipts,
    build_signer,
    build_verifier,
    certificate_inventory,
    key_ring,
)
from gateway.store import Store, store_from_settings
from gateway.store.base import DestinationStats, MessageQuery
from gateway.timestamps import JournalTimestamping
from gateway.transport import Listener, body_deadline, read_body
from gateway.wire import (
    Ack,
    CertificateStatus,
    Health,
    MessageStatus,
    Readiness,
    Rejection,
    SearchResult,
    error_reply,
    json_reply,
    state_and_limit,
)

__all__ = ["Gateway", "build_app", "DOCUMENT"]

log = logging.getLogger("nswgw.api")
access = logging.getLogger("nswgw.access")
lifecycle = logging.getLogger("nswgw.gateway")

CERTIFICATE_CHECK_INTERVAL = 86400.0
"""Seconds between two announcements of the certificates expiring soon (``certificate_expiring``)."""

PARTY: web.RequestKey[str] = web.RequestKey("party", str)
REFUSAL: web.RequestKey[NswError] = web.RequestKey("refusal", NswError)
"""The coded error a request was answered with (for its access-log line)."""
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
        request[REFUSAL] = exc
        log.error(
            "incident %s: %s %s refused: %s",
            exc.incident_id,
            request.method,
            request.path,
            exc,
            extra={"code": exc.code, "incident_id": exc.incident_id},
        )
        fields = {"code": exc.code, "incident_id": exc.incident_id, "route": _route(request)}
        request.app[GATEWAY].events.publish(Event("store_fault", request.app[GATEWAY].clock.now(), fields))
        return error_reply(exc)
    except NswError as exc:
        request[REFUSAL] = exc
        log.info("incident %s: %s", exc.incident_id, exc, extra={"code": exc.code, "incident_id": exc.incident_id})
        if exc.http_status < 500 and not isinstance(exc, MessageNotFound):
            request.app[GATEWAY].announce_refusal(
                exc, request.get(PARTY) or request.get(OPERATOR, ""), _route(request), request
            )
        return error_reply(exc)
    except web.HTTPRequestEntityTooLarge as exc:
        too_large = XmlTooLarge(exc.text or "request body too large", field="body")
        request[REFUSAL] = too_large
        log.info(
            "incident %s: %s %s refused: %s",
            too_large.incident_id,
            request.method,
            request.path,
            too_large,
            extra={"code": too_large.code, "incident_id": too_large.incident_id},
        )
        request.app[GATEWAY].announce_refusal(too_large, request.get(PARTY, ""), _route(request), request)
        for endpoint in request.app[GATEWAY].inbound:  # a SOAP fault, an ebMS error signal...
            answer = endpoint.refusal(request, too_large)
            if answer is not None:
                return answer
        return error_reply(too_large)
    except web.HTTPMethodNotAllowed as exc:
        allow = sorted(m for m in exc.allowed_methods if m != "HEAD")
        return error_reply(MethodNotAllowed(f"{request.method} is not served at {request.path}", allow=allow))
    except web.HTTPNotFound:
        return error_reply(PathNotFound(f"no endpoint at {request.path} (see /openapi.json)", field="path"))
    except web.HTTPException:
        raise
    except Exception as exc:
        error = GatewayError(f"internal error: {type(exc).__name__}")
        request[REFUSAL] = error
        log.exception(
            "incident %s: %s %s failed",
            error.incident_id,
            request.method,
            request.path,
            extra={"code": error.code, "incident_id": error.incident_id},
        )
        return error_reply(error)


def _route(request: web.Request) -> str:
    """The route template a request matched (``unmatched`` when none did): bounded whatever clients send."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def _requests(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """``nswgw_http_requests_total`` and ``nswgw_http_request_duration_seconds`` by route template, and one
    ``nswgw.access`` line per request: method, route, path, status, party or operator, duration, and the code and
    incident id of a coded error answer. Never a header value, a credential or a body."""
    route = _route(request)
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        duration = time.perf_counter() - started
        request.app[GATEWAY].metrics.http_request(route, status, duration)
        if access.isEnabledFor(logging.INFO):
            fields: dict[str, object] = {
                "method": request.method,
                "route": route,
                "path": request.rel_url.path,
                "status": status,
                "party": request.get(PARTY) or request.get(OPERATOR) or "",
                "duration_seconds": round(duration, 6),
                "remote": request.remote or "",
            }
            refusal = request.get(REFUSAL)
            if refusal is not None:
                fields["code"], fields["incident_id"] = refusal.code, refusal.incident_id
            access.info("%s %s %d", request.method, request.rel_url.path, status, extra=fields)


@web.middleware
async def _refusals(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """``nswgw_rejections_total`` for a request refused before the broker answers it (authentication, a malformed
    request, an oversized body, an unknown path...): by code, and by party once one is authenticated."""
    code: str | None = None
    try:
        return await handler(request)
    except NswError as exc:
        code = exc.code if exc.http_status < 500 else None
        raise
    except web.HTTPRequestEntityTooLarge:
        code = XmlTooLarge.code
        raise
    except web.HTTPMethodNotAllowed:
        code = MethodNotAllowed.code
        raise
    except web.HTTPNotFound:
        code = PathNotFound.code
        raise
    finally:
        if code is not None:
            request.app[GATEWAY].metrics.refused(code, request.get(PARTY, ""))


@web.middleware
async def _auth(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    if request.path in _PUBLIC:
        return await handler(request)
    if request.app[GATEWAY].config.gateway.console.enabled and _console_path(request.path):
        return await handler(request)  # the console's own login and session cookie (gateway.console)
    # inbound endpoints that authenticate their callers themselves (AS4: WS-Security signature)
    if any(request.path in ep.public_paths() for ep in request.app[GATEWAY].inbound):
        return await handler(request)
    config = request.app[GATEWAY].config
    if request.path == "/metrics":
        _authorize_scrape(request, config)
        return await handler(request)
    subject = _client_subject(request)
    if request.path.startswith(ADMIN_PREFIX):
        request[OPERATOR] = _operator(request, config, subject)
        return await handler(request)
    by_certificate = config.party_for_certificate(subject) if subject is not None else None
    if "Authorization" in request.headers or by_certificate is None:
        if subject is not None and by_certificate is None and "Authorization" not in request.headers:
            if config.operator_for_certificate(subject) is not None:
                raise NotAuthorized(
                    f"{subject} is an operator's certificate: it opens /v1/admin/ only", field="certificate"
                )
            raise NotAuthenticated(f"the TLS client certificate {subject} authenticates no party", field="certificate")
        token = _bearer(request)
        party = config.party_for_token(token)
        if party is None and config.operator_for_token(token) is not None:
            raise NotAuthorized(
                "an operator token opens /v1/admin/ and /metrics only, no party endpoint", field="Authorization"
            )
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


def _console_path(path: str) -> bool:
    return path == "/" or path == CONSOLE_PREFIX or path.startswith(CONSOLE_PREFIX + "/")


def _operator(request: web.Request, config: Config, subject: str | None) -> str:
    """The operator a ``/v1/admin/`` request authenticates as (bearer token, else TLS client certificate); a party's
    credentials are ``AUTH_FORBIDDEN`` there, none at all ``AUTH_REQUIRED``."""
    if "Authorization" not in request.headers and subject is not None:
        operator = config.operator_for_certificate(subject)
        if operator is not None:
            return operator
        if config.party_for_certificate(subject) is not None:
            raise NotAuthorized(f"{subject} is a party's certificate: /v1/admin/ is for operators", field="certificate")
        raise NotAuthenticated(f"the TLS client certificate {subject} authenticates no operator", field="certificate")
    token = _bearer(request)
    operator = config.operator_for_token(token)
    if operator is not None:
        return operator
    if config.party_for_token(token) is not None:
        raise NotAuthorized(
            "a party token does not open /v1/admin/; use an [operators.NAME] token", field="Authorization"
        )
    raise NotAuthenticated("the token matches no configured operator", field="Authorization")


def _authorize_scrape(request: web.Request, config: Config) -> None:
    """Who may read ``GET /metrics`` (its series name parties and destinations): anyone with ``public = true``,
    else a ``[gateway.metrics]`` scrape token or an operator's token. The one place that decides it."""
    scrape = config.gateway.metrics
    if scrape.public:
        return
    token = _bearer(request)
    if scrape.matches(token) or config.operator_for_token(token) is not None:
        return
    if config.party_for_token(token) is not None:
        raise NotAuthorized(
            "a party token does not open /metrics; use a [gateway.metrics] token", field="Authorization"
        )
    raise NotAuthenticated("the token matches no [gateway.metrics] scrape token", field="Authorization")


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
    # no name holds the body here: the intake frees it once it is parsed (body_deadline leaves it unread)
    result = await gw.broker.submit(party, envelope, await read_body(request, gw.config.gateway.body_timeout))
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


async def _certificate(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    country, number = request.match_info["issuing_country"], request.match_info["number"]
    record = await gw.store.certificate(country, number)
    if record is None or record.issuer != request[PARTY]:
        raise MessageNotFound(f"no certificate of origin {country} {number} issued by you", field="number")
    return json_reply(CertificateStatus.of(record))


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
    state, limit = state_and_limit(q)
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
    checks = await gw.readiness()
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
    await gw.refresh_metrics()
    body, content_type = gw.metrics.exposition(request.headers.get("Accept"))
    return web.Response(body=body, headers={"Content-Type": content_type})


def _outbox(stats: DestinationStats) -> OutboxGauges:
    return OutboxGauges(
        pending=stats.pending, oldest_queued_at=stats.oldest_pending, dead=stats.counts.get(State.DEAD, 0)
    )


async def _openapi(request: web.Request) -> web.Response:
    return web.json_response(request.app[DOCUMENT])


def _redacted(url: str) -> str:
    """A store URL without its password (``postgresql://user:***@host/db``)."""
    scheme, sep, rest = url.partition("://")
    credentials, at, where = rest.rpartition("@")
    if not sep or not at or ":" not in credentials:
        return url
    return f"{scheme}://{credentials.split(':', 1)[0]}:***@{where}"


def registry_routes(gateway: Gateway) -> list[web.RouteDef]:
    """The registry API's routes (:mod:`gateway.registry_api`)."""
    from gateway.registry_api import registry_routes as routes

    return routes(gateway)


def ship_call_routes(gateway: Gateway) -> list[web.RouteDef]:
    """The ship-call view's routes (:mod:`gateway.shipcalls_api`)."""
    from gateway.shipcalls_api import ship_call_routes as routes

    return routes(gateway)


def build_app(gateway: Gateway) -> web.Application:
    settings = gateway.config.gateway
    app = web.Application(
        middlewares=[
            _requests,
            _errors,
            _refusals,
            _auth,
            body_deadline(settings.body_timeout, own_body=frozenset({_submit})),
        ],
        client_max_size=settings.max_message_bytes,
    )
    app[GATEWAY] = gateway
    app.router.add_post("/v1/messages", _submit)
    app.router.add_get("/v1/messages", _search)
    app.router.add_get("/v1/messages/{id}", _get)
    app.router.add_get("/v1/certificates/{issuing_country}/{number}", _certificate)
    app.add_routes(registry_routes(gateway))
    app.add_routes(ship_call_routes(gateway))
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/openapi.json", _openapi)
    app.add_routes(admin_routes(gateway))
    if settings.console.enabled:
        app.add_routes(console_routes(gateway))
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
    caller hands one in (tests, benchmarks). Each adapter it builds gets its durable state in the store as
    ``state=`` (:meth:`adapter_state`: namespace ``destination:NAME``), each inbound endpoint likewise
    (``inbound:NAME``).
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
        self.events = EventBus()
        self.metrics = Metrics(version=__version__, destinations=config.destinations)
        self._certificates = certificate_inventory(config)
        self.metrics.certificates((c.party, c.role, c.serial, c.not_after) for c in self._certificates)
        self._certificate_watch = Periodic(
            "certificate expiry",
            CERTIFICATE_CHECK_INTERVAL,
            self._announce_expiring,
            log=log,
            failure="could not announce the expiring certificates",
        )
        self.store = store or store_from_settings(config.store)
        built_intake = verifier is None and mapper is None and signer is None  # a pool's workers build their own
        mapper = mapper or RegistryMapper()
        given = dict(adapters or {})
        self.cpu = CpuThreads(config.gateway.cpu_threads)
        """The threads of intake (without ``intake_processes``) and of signed-receipt verification."""
        self.engine = DeliveryEngine(
            config,
            self.store,
            clock=self.clock,
            metrics=self.metrics,
            receipts=receipts or build_receipts(config),
            adapters={
                name: given.get(name) or build_adapter(name, dest, state=self.adapter_state(f"destination:{name}"))
                for name, dest in config.destinations.items()
            },
            legacy_content_types={name: mapper.media_type(dest.format) for name, dest in config.destinations.items()},
            rng=rng,
            events=self.events,
            cpu=self.cpu,
        )
        self.store.on_work(self.engine.wake)
        anchor = config.journal.anchor
        self.anchoring = Anchoring(
            self.store,
            Path(anchor) if anchor is not None else None,
            interval=config.journal.anchor_interval,
            now=self.clock.now,
        )
        self.timestamping = JournalTimestamping(
            self.store,
            config.journal.timestamp,
            now=self.clock.now,
            publish=lambda name, fields: self.events.publish(Event(name, self.clock.now(), fields)),
        )
        self.archiver = (
            Archiver(self.store, config, key_ring(config), now=self.clock.now)
            if config.retention.interval is not None
            else None
        )
        self.references = ReferenceData(self.store, self.events, self.clock)
        """The policy reference lists, their versions kept in memory (see :mod:`gateway.reference`)."""
        processes = config.gateway.intake_processes
        intake = (
            ProcessIntake(
                config,
                processes,
                references=lambda: (self.references.head, self.references.versions),
                now=self.clock.now,
            )
            if processes and built_intake
            else None
        )
        self.broker = Broker(
            config,
            self.store,
            verifier=verifier or build_verifier(config),
            mapper=mapper,
            signer=signer or build_signer(config),
            clock=self.clock,
            metrics=self.metrics,
            events=self.events,
            on_accepted=self.engine.wake,
            intake_gate=self.timestamping.check_intake,
            references=self.references,
            intake=intake,
            cpu=self.cpu,
        )
        self.serve_http = serve_http
        self.listener: Listener | None = None
        """The HTTP listener while the gateway runs (``serve_http``): its ``limits`` count connections per client."""
        self.port: int | None = None
        self.inbound: list[InboundEndpoint] = [
            resolve_inbound(s.endpoint, field=f"inbound.{name}.endpoint")(
                name, options=s.options, state=self.adapter_state(f"inbound:{name}")
            )
            for name, s in config.inbound.items()
        ]
        """The endpoints of the ``[inbound.NAME]`` sections, in order (a caller may append more before start)."""
        self.intake = Intake(
            submit=self.broker.submit,
            party_of=lambda request: PartyId(request[PARTY]),
            store=self.store,
            config=config,
            refused=self._endpoint_refused,
            destination_state=lambda name: self.adapter_state(f"destination:{name}"),
        )
        self.config_file: tuple[Path, Config] | None = None
        """The file the configuration came from and what it held when loaded (command-line overrides such as
        ``--port`` apply on top): what ``POST /v1/admin/reload`` and SIGHUP read again and compare with."""
        self._own_verifier = verifier is None
        self._started = False

    @staticmethod
    def intake_broker(config: Config, *, clock: Clock) -> tuple[Broker, ReferenceData]:
        """The broker of an intake worker process (``[gateway] intake_processes``) and its reference data, built
        from ``config`` as this gateway builds its own: configured verifier, mapper and signer. Its store is never
        opened (a worker runs only the verification, mapping and signing of a submission); the gateway process
        sends the reference versions in force with each submission."""
        store = store_from_settings(config.store)
        references = ReferenceData(store, EventBus(), clock)
        broker = Broker(
            config,
            store,
            verifier=build_verifier(config),
            mapper=RegistryMapper(),
            signer=build_signer(config),
            clock=clock,
            metrics=Metrics(version=__version__, destinations=config.destinations),
            events=references.events,
            on_accepted=lambda destinations: None,
            references=references,
        )
        return broker, references

    def reconfigure(self, config: Config) -> None:
        """Run with ``config`` from now on: a configuration whose ``parties``, ``routes``, ``document_types`` or
        ``operators`` differ from the running one's, and nothing else (:func:`gateway.admin.reload`). The broker
        authorizes, verifies and routes with it from the next submission; a verifier handed in by a caller is
        kept. Inbound endpoints keep the configuration they were started with."""
        verifier = build_verifier(config) if self._own_verifier else self.broker.verifier
        inventory = certificate_inventory(config)
        self.config = config
        self.engine.config = config
        self.broker.reconfigure(config, verifier)
        self._certificates = inventory
        self.metrics.certificates((c.party, c.role, c.serial, c.not_after) for c in inventory)
        self.announce_expiring_certificates()

    def announce_expiring_certificates(self) -> list[str]:
        """Publish ``certificate_expiring`` for every configured certificate whose notAfter is within
        ``[gateway.logging] certificate_warning_days`` (or past); the configuration keys of those announced."""
        now = self.clock.now()
        horizon = self.config.gateway.logging.certificate_warning_days * 86400
        announced = []
        for c in self._certificates:
            if c.not_after - now <= horizon:
                fields = {
                    "party": c.party,
                    "role": c.role,
                    "serial": c.serial,
                    "field": c.field,
                    "subject": c.certificate.subject.rfc4514_string(),
                    "not_after": datetime.fromtimestamp(c.not_after, UTC).isoformat(),
                    "days_left": round((c.not_after - now) / 86400, 2),
                }
                self.events.publish(Event("certificate_expiring", now, fields))
                announced.append(c.field)
        return announced

    async def _announce_expiring(self) -> None:
        self.announce_expiring_certificates()

    def announce_refusal(self, error: NswError, party: str, route: str, request: web.Request | None = None) -> None:
        """Publish ``rejected`` for a request refused with ``error`` before the broker stored anything."""
        fields: dict[str, object] = {
            "code": error.code,
            "incident_id": error.incident_id,
            "route": route,
            "sender": party,
        }
        if error.field is not None:
            fields["field"] = error.field
        claimed = request.headers.get("X-Message-Id") if request is not None else None
        if claimed:
            fields["sender_message_id"] = claimed[:200]
        self.events.publish(Event("rejected", self.clock.now(), fields))

    def _endpoint_refused(self, error: NswError, party: str, endpoint: str) -> None:
        """:attr:`Intake.refused`: an inbound endpoint answered ``error`` itself."""
        if error.http_status < 500:
            self.metrics.refused(error.code, party)
        self.announce_refusal(error, party, endpoint)

    def adapter_state(self, namespace: str) -> StoreAdapterState:
        """The durable records of one destination's adapter (``destination:NAME``) or one inbound endpoint
        (``inbound:NAME``) in this gateway's store, expiring on the gateway's clock."""
        return StoreAdapterState(self.store, namespace, now=self.clock.now)

    @property
    def url(self) -> str:
        scheme = "https" if self.config.gateway.tls is not None else "http"
        return f"{scheme}://{self.config.gateway.host}:{self.port}"

    async def readiness(self) -> dict[str, str]:
        """The checks of ``/readyz`` (the store's and the journal anchoring's), each ``ok`` or ``failed: ...``;
        also the ``nswgw_ready`` gauges."""
        checks = await self.store.health() | await self.anchoring.checks() | self.timestamping.checks()
        self.metrics.observe_readiness(checks)
        return checks

    async def refresh_metrics(self) -> None:
        """Bring the scrape-time gauges up to date: outboxes from the store (one grouped query), readiness,
        breakers. A store fault leaves the outbox gauges as they were and reports ``nswgw_ready`` 0."""
        try:
            stats = await self.store.stats()
        except NswError as exc:
            log.error("metrics: cannot count the outboxes: %s", exc)
        else:
            self.metrics.observe_outboxes({s.destination: _outbox(s) for s in stats}, now=self.clock.now())
        await self.readiness()
        open_ = set(self.engine.circuits_open())
        for name in self.engine.workers:
            self.metrics.circuit(name, open_=name in open_)

    async def start(self) -> None:
        await self.store.open()
        try:
            base = await self.store.journal_base()
            verified = await require_sound_journal(self.store, self.anchoring.load(), start=(base.seq, base.hash))
            self.anchoring.start((verified.head_seq, verified.head_hash))
            await self.timestamping.start()
            head = await self.store.journal_head()
            if head is not None:  # a wall clock gone back across a restart: never earlier than what is stored
                self.clock.not_before(head.at)
            if self.archiver is not None:
                self.archiver.start()
            await self.store.recover(now=self.clock.now())
            await self.references.refresh()  # versions stored from now on are announced (gateway.reference)
            await self.broker.intake.start()
            await self.engine.start()
            for endpoint in self.inbound:
                await endpoint.start(self.intake)
            if self.serve_http:
                self.listener = Listener(build_app(self), self.config.gateway)
                self.port = await self.listener.start()
            if self.config.weakened:
                log.warning("security weakened by configuration: %s", ", ".join(self.config.weakened))
            self.announce_expiring_certificates()
            self._certificate_watch.start()
        except BaseException:
            await self.stop()
            raise
        self._started = True
        lifecycle.info(
            "nswgw %s started%s",
            __version__,
            f" on {self.url}" if self.serve_http else "",
            extra={
                "event": "started",
                "version": __version__,
                "url": self.url if self.serve_http else None,
                "store": _redacted(self.config.store.url),
                "node": self.engine.owner,
                "parties": ",".join(sorted(self.config.parties)),
                "destinations": ",".join(f"{n}={d.adapter}" for n, d in self.config.destinations.items()),
                "endpoints": ",".join(f"{n}={i.endpoint}" for n, i in self.config.inbound.items()),
                "weakened": ",".join(self.config.weakened),
            },
        )

    async def stop(self) -> None:
        await self._certificate_watch.stop()
        self.events.close()  # event streams end, so the listener's shutdown does not wait for them
        listener, self.listener = self.listener, None
        if listener is not None:
            await listener.stop()
        for endpoint in self.inbound:
            await endpoint.stop()
        try:
            if self.archiver is not None:
                await self.archiver.stop()  # a round in progress is cut off: its bundle is redone next time
            await self.engine.stop()  # records or releases every delivery its workers hold
            await self.timestamping.stop()
            await self.anchoring.stop()  # anchors the head the engine's last records left
        finally:
            await self.broker.intake.stop()
            self.cpu.close()
            await self.store.close()
            if self._started:
                self._started = False
                lifecycle.info("nswgw stopped", extra={"event": "stopped", "node": self.engine.owner})

    async def __aenter__(self) -> Gateway:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
