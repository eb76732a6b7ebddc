"""The operator API under ``/v1/admin/``: for ``[operators.NAME]`` credentials only (never a party's).

Operations (JSON; instants are RFC 3339 UTC strings; every error is coded like the rest of the API):

* ``GET /v1/admin/messages?sender=&destination=&state=&document_type=&code=&since=&until=&limit=&cursor=``:
  messages of every party, newest first (then by id). Every filter is the store's: ``destination`` (a delivery
  to it) and ``code`` (the error code of the message or the last error of any of its deliveries) included. Paged
  by cursor: an answer that filled ``limit`` carries ``next_cursor`` (opaque: the arrival time and id of its last
  message); pass it as ``cursor`` for the next, older page, which neither repeats nor skips a message, not even
  one that arrived at the same instant.
* ``GET /v1/admin/messages/{id}``: the full record: history, every delivery with its attempts and last error,
  and the SHA-256 of each delivered payload and of its verified receipt. The store keeps neither the accepted
  payload's digest on the message row (it is in the journal's ``ACCEPTED`` entry) nor who signed it.
* ``GET /v1/admin/messages/{id}/evidence``: the message's signed evidence bundle (ZIP, gateway/evidence.py,
  docs/evidence.md), the same as ``nswgw evidence``.
* ``GET /v1/admin/dead-letters?destination=`` and ``POST /v1/admin/dead-letters/replay`` with
  ``{"ids": [...]}`` (gateway ids) or ``{"destination": "TH"}`` (all of its dead letters):
  :func:`gateway.actions.replay_dead_letters` (the replays and their journal record in one transaction), answered
  with what was replayed, the action's id and its journal entry's seq.
* ``GET /v1/admin/actions?operator=&since=&limit=``: the operator actions recorded in the journal, newest first,
  each with its record (operator, action, targets, detail) and its entry's seq.
* ``GET /v1/admin/partners``: per destination, the breaker's state and consecutive failures, the backlog (and
  when its oldest delivery was queued) and dead-letter counts from the store, the last verified receipt and the
  last failed attempt (with its code) in the deliveries' history the store keeps (every node's, across
  restarts), and delivery latency percentiles estimated from the ``nswgw_delivery_latency_seconds`` histogram.
* ``GET /v1/admin/certificates``: every configured certificate (:func:`gateway.security.certificate_inventory`)
  with subject, issuer, serial, SHA-256 fingerprint, notAfter and days left.
* ``GET /v1/admin/origin-certificates?issuing_country=&status=&party=&limit=&cursor=``: the certificates of origin
  (e-C/O) the gateway carried, latest status change first (then by country and number), each with its issuer,
  status and ``href``; ``party`` is the issuer or a party in its history (a notifier, a destination that
  receipted it). Paged by cursor like the message search (a certificate whose status moves while an operator
  pages moves to the front: it shows on the first page again, not on a later one).
* ``GET /v1/admin/origin-certificates/{country}/{number}``: one e-C/O's status and history, as its issuer reads
  them at ``GET /v1/certificates/...``, and links to the messages that carried its acts
  (``MESSAGE_NOT_FOUND`` for one the gateway did not carry). Apart from ``/v1/admin/certificates``, the X.509
  inventory.
* ``GET /v1/admin/events?events=accepted,delivered``: the lifecycle events this gateway publishes
  (:data:`gateway.events.EVENT_NAMES`, all of them without ``events``) as Server-Sent Events
  (``text/event-stream``): ``id: N`` (numbered per stream from 1), ``event: NAME`` and ``data:`` the event's JSON
  (:meth:`gateway.events.Event.to_dict`); a ``: keepalive`` comment after :data:`EVENTS_KEEPALIVE` quiet seconds;
  ``event: dropped`` (``{"dropped": N, "total": M}``) before the next event when this stream fell more than
  :data:`EVENTS_BUFFER` events behind and lost the oldest. The stream ends when the gateway stops.
* ``GET /v1/admin/disclosures?destination=&subscription=&message=&since=&until=&limit=&cursor=``: the deliveries
  that carried only some data elements of a message, with their legal basis (:mod:`gateway.disclosures_api`).

``read`` operators may call the ``GET`` operations, ``act`` operators also the ``POST`` ones
(``AUTH_FORBIDDEN`` otherwise). Every action (a replay, a reload, a refused reload too) is written to the
journal with the operator's name, as an ``OPERATOR`` entry whose evidence is the action's record
(:class:`gateway.journal.OperatorAction`), and logged (logger ``nswgw.admin``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from aiohttp import web
from cryptography.hazmat.primitives import hashes
from pydantic import Field, ValidationError

from gateway.actions import reload_action, replay
from gateway.config import Config, load_config
from gateway.disclosures_api import disclosure_paths, disclosure_routes
from gateway.errors import (
    ConfigError,
    MessageNotFound,
    NotAuthorized,
    NswError,
    ReloadRefused,
    RequestInvalid,
    StoreCorrupt,
    UnknownDestination,
)
from gateway.events import EVENT_NAMES, Event
from gateway.journal import OperatorAction
from gateway.metrics import LATENCY_BUCKETS
from gateway.model import Delivery, State
from gateway.openapi import STORE_ERRORS, error_responses, json_content
from gateway.reference_api import reference_paths, reference_routes
from gateway.security import certificate_inventory
from gateway.store.base import (
    CertificateQuery,
    CertificateRecord,
    CertificateSummary,
    DestinationStats,
    MessageQuery,
    MessageRecord,
)
from gateway.wire import CertificateStatus, Error, MessageStatus, Timestamp, WireModel, json_reply, state_and_limit

if TYPE_CHECKING:
    from pathlib import Path

    from gateway.api import Gateway

__all__ = [
    "ADMIN_PREFIX",
    "OPERATOR",
    "RELOADABLE",
    "EVENTS_KEEPALIVE",
    "EVENTS_BUFFER",
    "admin_routes",
    "admin_paths",
    "delivery_evidence",
    "message_query",
    "next_cursor",
    "origin_certificate_detail",
    "origin_certificate_query",
    "origin_certificates_page",
    "partner_views",
    "reload",
]

log = logging.getLogger("nswgw.admin")

ADMIN_PREFIX = "/v1/admin/"
OPERATOR: web.RequestKey[str] = web.RequestKey("operator", str)
"""The name of the ``[operators.NAME]`` a ``/v1/admin/`` request authenticated as."""

_PERCENTILES = (0.5, 0.95, 0.99)
RELOADABLE = frozenset({"parties", "routes", "document_types", "operators", "subscriptions"})
"""The sections a reload applies without a restart (parties with their tokens and trust, routes, the document
types they name, operators, subscriptions); a change anywhere else is ``RELOAD_REFUSED`` naming the keys."""
EVENTS_KEEPALIVE = 15.0
"""Seconds without an event after which ``GET /v1/admin/events`` writes a ``: keepalive`` comment, so proxies
keep an idle stream open and the gateway notices a client that went away."""
EVENTS_BUFFER = 1000
"""Events an event stream holds for a client that reads slower than they are published; beyond, the oldest are
dropped (and counted to the client)."""


# ---------------------------------------------------------------------------------------------- wire models


class AdminSearchResult(WireModel):
    """``GET /v1/admin/messages``: matching messages of every party, newest first."""

    messages: list[MessageStatus]
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next (older) page; null on the last page (opaque)",
        examples=["1796279400.123456"],
    )


class DeliveryEvidence(WireModel):
    """What the store holds of one delivery's bytes."""

    destination: str
    payload_sha256: str = Field(description="SHA-256 hex of the bytes delivered (mapped and signed)")
    receipt_sha256: str | None = Field(description="SHA-256 hex of the verified receipt; null before one")


class MessageRecordView(WireModel):
    """``GET /v1/admin/messages/{id}``: the message as a party sees it, plus the digests of what was delivered."""

    message: MessageStatus
    evidence: list[DeliveryEvidence]
    signer: str | None = Field(
        description="who signed the submission; null: the store does not keep the verified signer (the journal's "
        "ACCEPTED entry holds the accepted payload's SHA-256)"
    )


class DeadLetter(WireModel):
    """One delivery in the dead-letter queue."""

    id: str = Field(description="the gateway id of the message")
    destination: str
    sender: str
    document_type: str
    conversation: str
    attempts: int
    last_error: dict[str, Any] | None
    queued_at: Timestamp
    deadline: Timestamp


class DeadLetters(WireModel):
    dead_letters: list[DeadLetter]


class ReplayRequest(WireModel):
    """``POST /v1/admin/dead-letters/replay``: the messages (gateway ids) or the destination whose dead letters go
    back to their outboxes (fresh attempts and time-to-live, same message id)."""

    ids: list[str] | None = Field(default=None, examples=[["0f8c1a2b3c4d5e6f"]])
    destination: str | None = Field(default=None, examples=["TH"])


class ReplayResult(WireModel):
    replayed: list[DeadLetter]
    operator: str
    action: str = Field(description="the id of the recorded action (GET /v1/admin/actions)", examples=["op-3f2a…"])
    journal_seq: int = Field(description="the seq of its OPERATOR journal entry")


class Percentiles(WireModel):
    """Estimated from the histogram's buckets (linear within a bucket, as Prometheus' ``histogram_quantile``)."""

    p50: float | None
    p95: float | None
    p99: float | None


class PartnerFailure(WireModel):
    """A failed delivery attempt: the partner was unavailable, refused the message or answered no valid receipt."""

    at: Timestamp
    code: str = Field(examples=["PARTNER_UNAVAILABLE"])
    message: str | None = Field(description="the error's message", examples=["http://th.example/inbox answered 503"])


class Partner(WireModel):
    """One destination as the gateway sees it now."""

    destination: str
    breaker: str = Field(description="closed, open or half-open", examples=["closed"])
    consecutive_failures: int
    pending: int = Field(description="deliveries not final yet (queued, awaiting a retry or a receipt)")
    oldest_pending: Timestamp | None = Field(
        description="when the oldest of them was queued; null: none is pending",
        examples=["2026-12-03T06:29:41.000000Z"],
    )
    dead: int = Field(description="deliveries in the dead-letter queue")
    delivered: int = Field(description="deliveries whose receipt was verified since this gateway started")
    last_success: Timestamp | None = Field(
        description="when a receipt of this destination was last verified, by any node (from the deliveries' "
        "history the store keeps); null: none",
        examples=["2026-12-03T06:30:00.123456Z"],
    )
    last_failure: PartnerFailure | None = Field(
        description="the last failed attempt to deliver to this destination, by any node (from the deliveries' "
        "history the store keeps); null: none",
        examples=[
            {
                "at": "2026-12-03T06:29:58.000000Z",
                "code": "PARTNER_UNAVAILABLE",
                "message": "http://th.example/inbox answered 503",
            }
        ],
    )
    latency_seconds: Percentiles = Field(description="queued → verified receipt, since this gateway started")


class Partners(WireModel):
    partners: list[Partner]


class CertificateView(WireModel):
    party: str = Field(description="the party or destination whose trust names it; `gateway` for its own")
    role: str = Field(examples=["pinned"])
    field: str = Field(description="the configuration key naming the file", examples=["parties.MOIT.trust.pinned[0]"])
    subject: str
    issuer: str
    serial: str = Field(description="hex")
    sha256: str = Field(description="SHA-256 fingerprint of the DER, hex")
    not_after: Timestamp
    days_left: float


class Certificates(WireModel):
    certificates: list[CertificateView]


CO_STATUSES = ("issued", "delivered", "amended", "cancelled", "received", "utilized", "rejected")
"""The statuses a certificate of origin can be in (the ``status`` filter of ``GET /v1/admin/origin-certificates``)."""


class OriginCertificateSummary(WireModel):
    """One certificate of origin (e-C/O) the gateway carried, as the operators' list shows it."""

    issuing_country: str = Field(examples=["VN"])
    number: str = Field(examples=["VN-TH-26-00001"])
    issuer: str = Field(description="the party that issued it", examples=["MOIT"])
    status: str = Field(examples=["utilized"])
    updated_at: Timestamp = Field(description="when its status last moved")
    href: str = Field(description="its status, history and carrying messages")


class OriginCertificates(WireModel):
    """``GET /v1/admin/origin-certificates``: matching e-C/Os, latest status change first."""

    certificates: list[OriginCertificateSummary]
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next page; null on the last page (opaque)",
        examples=["1796279400.123456,VN,VN-TH-26-00001"],
    )


class CarryingMessage(WireModel):
    """A message that carried an act on the certificate (in the order of its history)."""

    id: str = Field(description="the gateway id of the message")
    href: str = Field(description="its record in the operator API")


class OriginCertificateDetail(WireModel):
    """``GET /v1/admin/origin-certificates/{country}/{number}``: an e-C/O's status and history (as its issuer sees
    them at ``GET /v1/certificates/...``) and links to the messages that carried it."""

    certificate: CertificateStatus
    messages: list[CarryingMessage]


class ReloadResult(WireModel):
    """``POST /v1/admin/reload``: the configuration file was valid and is running now."""

    config: str = Field(description="the file read", examples=["/etc/nswgw/gateway.toml"])
    changed: list[str] = Field(description="the sections that differ from before", examples=[["parties"]])
    operator: str


class ActionView(WireModel):
    """One operator action as its ``OPERATOR`` journal entry's record holds it."""

    id: str = Field(description="the action's id, the message_id of its journal entry", examples=["op-3f2a…"])
    operator: str = Field(description="the operator's name, `cli:<OS user>` or `signal:SIGHUP`", examples=["ops"])
    action: str = Field(examples=["replay"])
    at: Timestamp
    targets: list[dict[str, str]] = Field(
        description="`{message, destination}` per delivery replayed; `{section}` per configuration section changed",
        examples=[[{"message": "0f8c1a2b3c4d5e6f", "destination": "TH"}]],
    )
    detail: dict[str, Any] = Field(
        description="`outcome` (applied or refused; a refused one with its `code`, `field` and `message`) and the "
        "parameters",
        examples=[{"outcome": "applied", "replayed": 1, "ids": ["0f8c1a2b3c4d5e6f"]}],
    )
    journal_seq: int | None = Field(description="the seq of its journal entry")


class Actions(WireModel):
    """``GET /v1/admin/actions``: operator actions, newest first."""

    actions: list[ActionView]


# ---------------------------------------------------------------------------------------------- handlers


def _dead_letter(d: Delivery) -> DeadLetter:
    return DeadLetter(
        id=d.message_id,
        destination=d.destination,
        sender=d.sender,
        document_type=d.document_type,
        conversation=d.conversation,
        attempts=d.attempts,
        last_error=d.last_error,
        queued_at=_at(d.queued_at),
        deadline=_at(d.deadline),
    )


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _instant(query: Mapping[str, str], name: str) -> float | None:
    value = query.get(name)
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise RequestInvalid(
            f"{name} must be an ISO 8601 date-time (2026-12-02T09:30:00Z): {value!r}", field=name
        ) from None
    return (moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)).timestamp()


def _next_cursor(record: MessageRecord) -> str:
    """The cursor of the page after the one ``record`` ends: its exact ``received_at`` and its id."""
    return f"{record.message.received_at!r},{record.message.id}"


def _cursor(value: str | None) -> tuple[float, str] | None:
    """The ``(received_at, id)`` a :func:`_next_cursor` holds."""
    if value is None:
        return None
    at, _, message = value.partition(",")
    try:
        moment = float(at)
    except ValueError:
        moment = math.nan
    if not math.isfinite(moment) or not message:
        raise RequestInvalid(f"cursor must be the next_cursor of a previous page: {value!r}", field="cursor")
    return moment, message


def _co_href(country: str, number: str) -> str:
    return f"/v1/admin/origin-certificates/{quote(country, safe='')}/{quote(number, safe='')}"


def origin_certificate_query(q: Mapping[str, str]) -> CertificateQuery:
    """The store search an operator's e-C/O list asks for: ``issuing_country``, ``status`` (one of
    :data:`CO_STATUSES`), ``party`` (the issuer or a party in the history), ``cursor`` (a ``next_cursor``) and
    ``limit``, each checked (``REQUEST_INVALID`` naming it)."""
    _, limit = state_and_limit({k: v for k, v in q.items() if k == "limit"})
    status = q.get("status")
    if status is not None and status not in CO_STATUSES:
        raise RequestInvalid(f"unknown status {status!r}; one of {', '.join(CO_STATUSES)}", field="status")
    after: tuple[float, str, str] | None = None
    cursor = q.get("cursor")
    if cursor is not None:
        parts = cursor.split(",", 2)
        try:
            moment = float(parts[0])
        except ValueError:
            moment = math.nan
        if len(parts) != 3 or not math.isfinite(moment) or not parts[1] or not parts[2]:
            raise RequestInvalid(f"cursor must be the next_cursor of a previous page: {cursor!r}", field="cursor")
        after = (moment, parts[1], parts[2])
    return CertificateQuery(
        issuing_country=q.get("issuing_country"), status=status, party=q.get("party"), after=after, limit=limit
    )


def origin_certificates_page(page: Sequence[CertificateSummary], query: CertificateQuery) -> OriginCertificates:
    """The answer of ``GET /v1/admin/origin-certificates`` for ``page``, found by ``query``."""
    last = page[-1] if page and len(page) == query.limit else None
    return OriginCertificates(
        certificates=[
            OriginCertificateSummary(
                issuing_country=c.issuing_country,
                number=c.number,
                issuer=c.issuer,
                status=c.status,
                updated_at=_at(c.updated_at),
                href=_co_href(c.issuing_country, c.number),
            )
            for c in page
        ],
        next_cursor=f"{last.updated_at!r},{last.issuing_country},{last.number}" if last is not None else None,
    )


def origin_certificate_detail(record: CertificateRecord) -> OriginCertificateDetail:
    """The answer of ``GET /v1/admin/origin-certificates/{country}/{number}`` for ``record``."""
    return OriginCertificateDetail(
        certificate=CertificateStatus.of(record),
        messages=[CarryingMessage(id=m, href=f"/v1/admin/messages/{m}") for m in record.messages],
    )


def delivery_evidence(record: MessageRecord) -> list[DeliveryEvidence]:
    """The SHA-256 of each delivery's delivered bytes and of its verified receipt, in the record's order."""
    return [
        DeliveryEvidence(
            destination=d.destination,
            payload_sha256=hashlib.sha256(d.payload).hexdigest(),
            receipt_sha256=hashlib.sha256(d.receipt).hexdigest() if d.receipt is not None else None,
        )
        for d in record.deliveries
    ]


def message_query(q: Mapping[str, str]) -> MessageQuery:
    """The store search an operator's message search asks for: ``sender``, ``destination``, ``document_type``,
    ``state``, ``code``, ``since`` and ``until`` (ISO 8601, UTC without an offset), ``cursor`` (a
    :func:`next_cursor`) and ``limit``, each checked (``REQUEST_INVALID`` naming it)."""
    state, limit = state_and_limit(q)
    return MessageQuery(
        sender=q.get("sender"),
        destination=q.get("destination"),
        document_type=q.get("document_type"),
        state=State(state) if state else None,
        code=q.get("code"),
        since=_instant(q, "since"),
        until=_instant(q, "until"),
        after=_cursor(q.get("cursor")),
        limit=limit,
    )


def next_cursor(page: Sequence[MessageRecord], query: MessageQuery) -> str | None:
    """The ``cursor`` of the page after ``page`` (found by ``query``), or None when ``page`` is the last."""
    return _next_cursor(page[-1]) if page and len(page) == query.limit else None


def _event_names(value: str | None) -> frozenset[str] | None:
    """The ``events`` filter of an event stream (comma-separated names); ``None``: every event."""
    if value is None:
        return None
    names = frozenset(n.strip() for n in value.split(","))
    unknown = sorted(names - EVENT_NAMES)
    if unknown:
        raise RequestInvalid(
            f"events names no event {', '.join(map(repr, unknown))}; the events are {', '.join(sorted(EVENT_NAMES))}",
            field="events",
        )
    return names


def _sse(event: str, data: Mapping[str, Any], *, number: int | None = None) -> bytes:
    """One Server-Sent Event; the data is one line of JSON."""
    head = f"id: {number}\n" if number is not None else ""
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"{head}event: {event}\ndata: {body}\n\n".encode()


def _quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """``histogram_quantile`` over cumulative ``(upper bound, count)`` buckets (the last one ``+Inf``)."""
    total = buckets[-1][1] if buckets else 0.0
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == float("inf"):
                return lower
            return lower + (bound - lower) * ((rank - below) / (count - below) if count > below else 0.0)
        lower, below = bound, count
    return lower


def _require(request: web.Request, gateway: Gateway, role: str) -> str:
    operator = request[OPERATOR]
    if role not in gateway.config.operators[operator].roles:
        raise NotAuthorized(f"operator {operator} lacks the {role!r} role", field="Authorization")
    return operator


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _differences(old: Any, new: Any, path: str) -> list[str]:
    """The dotted keys at which two dumped configurations differ (a table: key by key; anything else whole)."""
    if isinstance(old, dict) and isinstance(new, dict):
        found: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            found += _differences(old.get(key), new.get(key), f"{path}.{key}" if path else str(key))
        return found
    return [] if old == new else [path]


def _reloaded(gateway: Gateway) -> tuple[Path, Config, list[str]]:
    """The configuration file read again and checked for :func:`reload`: its path, what it holds, the
    :data:`RELOADABLE` sections that differ from the running ones."""
    if gateway.config_file is None:
        raise ReloadRefused("this gateway was not started from a configuration file", field="config")
    path, loaded = gateway.config_file
    fresh = load_config(path)
    fixed = _differences(
        loaded.model_dump(mode="json", exclude=set(RELOADABLE)),
        fresh.model_dump(mode="json", exclude=set(RELOADABLE)),
        "",
    )
    if fixed:
        raise ReloadRefused(
            f"{path} changes {', '.join(fixed)}: only a restart applies that (a reload applies "
            f"{', '.join(sorted(RELOADABLE))})",
            field=fixed[0],
            details={"keys": fixed},
        )
    running = gateway.config
    changed = [
        k
        for k in sorted(RELOADABLE)
        if _differences(running.model_dump(mode="json", include={k}), fresh.model_dump(mode="json", include={k}), "")
    ]
    return path, fresh, changed


def _latency(gateway: Gateway, destination: str) -> Percentiles:
    """Queued → verified receipt percentiles of ``destination`` from this gateway's latency histogram."""
    name = "nswgw_delivery_latency_seconds_bucket"
    buckets = [
        (bound, gateway.metrics.value(name, destination=destination, le=repr(bound))) for bound in LATENCY_BUCKETS
    ]
    buckets.append((float("inf"), gateway.metrics.value(name, destination=destination, le="+Inf")))
    p50, p95, p99 = (_quantile(q, buckets) for q in _PERCENTILES)
    return Percentiles(p50=p50, p95=p95, p99=p99)


async def partner_views(gateway: Gateway) -> list[Partner]:
    """Every destination of ``gateway`` as ``GET /v1/admin/partners`` shows it (and the console's partners page):
    its breaker, its backlog and dead letters from the store's counts, its last outcomes from the store's history
    (:meth:`Store.outcomes`), its latency percentiles from the metrics."""
    stats = {s.destination: s for s in await gateway.store.stats()}
    outcomes = {o.destination: o for o in await gateway.store.outcomes(tuple(gateway.engine.workers))}
    out = []
    for name, worker in gateway.engine.workers.items():
        counts = stats.get(name, DestinationStats(name, {}))
        outcome = outcomes.get(name)
        succeeded = outcome.last_success if outcome is not None else None
        failed = outcome.last_failure if outcome is not None else None
        oldest = counts.oldest_pending
        out.append(
            Partner(
                destination=name,
                breaker=worker.breaker.state,
                consecutive_failures=worker.breaker.failures,
                pending=counts.pending,
                oldest_pending=_at(oldest) if oldest is not None else None,
                dead=counts.counts.get(State.DEAD, 0),
                delivered=int(gateway.metrics.value("nswgw_deliveries_total", destination=name)),
                last_success=_at(succeeded) if succeeded is not None else None,
                last_failure=(
                    PartnerFailure(at=_at(failed.at), code=failed.code or "", message=failed.detail)
                    if failed is not None
                    else None
                ),
                latency_seconds=_latency(gateway, name),
            )
        )
    return out


async def reload(gateway: Gateway, operator: str) -> ReloadResult:
    """Read the gateway's configuration file again and run with its ``parties``, ``routes``, ``document_types``
    and ``operators`` (:data:`RELOADABLE`). An invalid file is ``CONFIG_INVALID`` with every error; a change
    anywhere else (compared with the file as it was loaded) is ``RELOAD_REFUSED`` naming the keys; in both cases
    the running configuration is kept.

    Every attempt is a ``reload`` action of ``operator`` in the journal (:func:`gateway.actions.reload_action`):
    a refused one with its code, then the error is raised (a store fault writing it is logged, the refusal
    raised); an applied one naming the changed sections, written before the new configuration runs (a store
    fault writing it is raised and the running configuration kept)."""
    at = gateway.clock.now()
    try:
        path, fresh, changed = _reloaded(gateway)
    except NswError as refusal:
        where = str(gateway.config_file[0]) if gateway.config_file is not None else None
        try:
            await gateway.store.record_operator_action(reload_action(operator, at=at, config=where, refused=refusal))
        except NswError as fault:
            log.error("operator %s: the refused reload could not be written to the journal: %s", operator, fault)
        raise
    await gateway.store.record_operator_action(reload_action(operator, at=at, config=str(path), changed=changed))
    running = gateway.config
    sections = {
        "parties": fresh.parties,
        "routes": fresh.routes,
        "document_types": fresh.document_types,
        "operators": fresh.operators,
        "subscriptions": fresh.subscriptions,
    }
    updated: Config = running.model_copy(update=sections)
    gateway.reconfigure(updated)
    gateway.config_file = (path, fresh)
    log.info("operator %s reloaded %s: %s", operator, path, ", ".join(changed) or "nothing changed")
    fields = {"operator": operator, "config": str(path), "changed": ",".join(changed)}
    gateway.events.publish(Event("config_reloaded", gateway.clock.now(), fields))
    return ReloadResult(config=str(path), changed=changed, operator=operator)


def admin_routes(gateway: Gateway) -> list[web.RouteDef]:
    """The routes of the operator API, bound to ``gateway``."""

    async def search(request: web.Request) -> web.Response:
        _require(request, gateway, "read")
        query = message_query(request.query)
        page = await gateway.store.search(query)
        return json_reply(
            AdminSearchResult(messages=[MessageStatus.of(r) for r in page], next_cursor=next_cursor(page, query))
        )

    async def record(request: web.Request) -> web.Response:
        _require(request, gateway, "read")
        found = await gateway.store.get(request.match_info["id"])
        if found is None:
            raise MessageNotFound(f"no message {request.match_info['id']}", field="id")
        return json_reply(
            MessageRecordView(message=MessageStatus.of(found), evidence=delivery_evidence(found), signer=None)
        )

    async def dead_letters(request: web.Request) -> web.Response:
        _require(request, gateway, "read")
        destination = request.query.get("destination")
        if destination is not None and destination not in gateway.config.destinations:
            raise UnknownDestination(f"no destination {destination!r}", field="destination")
        found = await gateway.store.dead_letters(destination=destination)
        return json_reply(DeadLetters(dead_letters=[_dead_letter(d) for d in found]))

    async def replay_dead(request: web.Request) -> web.Response:
        operator = _require(request, gateway, "act")
        try:
            body = ReplayRequest.model_validate_json(await request.read())
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "body"
            raise RequestInvalid(
                f'the body must be {{"ids": [...]}} or {{"destination": ...}}: {first["msg"]}', field=field
            ) from None
        done, entry = await replay(gateway, operator, ids=body.ids, destination=body.destination)
        return json_reply(
            ReplayResult(
                replayed=[_dead_letter(d) for d in done],
                operator=operator,
                action=entry.message_id,
                journal_seq=entry.seq,
            )
        )

    async def partners(request: web.Request) -> web.Response:
        _require(request, gateway, "read")
        return json_reply(Partners(partners=await partner_views(gateway)))

    async def certificates(request: web.Request) -> web.Response:
        _require(request, gateway, "read")
        now = gateway.clock.now()
        out = [
            CertificateView(
                party=c.party,
                role=c.role,
                field=c.field,
                subject=c.certificate.subject.rfc4514_string(),
                issuer=c.certificate.issuer.rfc4514_string(),
                serial=c.serial,
                sha256=c.certificate.fingerprint(hashes.SHA256()).hex(),
                not_after=_at(c.not_after),
                days_left=round((c.not_after - now) / 86400, 2),
            )
            for c in certificate_inventory(gateway.config)
        ]
        return json_reply(Certificates(certificates=out))

    async def origin_certificates(request: web.Request) -> web.Response:
        _require(request, gateway, "read")
        query = origin_certificate_query(request.query)
        return json_reply(origin_certificates_page(await gateway.store.certificates(query), query))

    async def origin_certificate(request: web.Request) -> web.Response:
        _require(request, gateway, "read")
        country, number = request.match_info["country"], request.match_info["number"]
        found = await gateway.store.certificate(country, number)
        if found is None:
            raise MessageNotFound(f"the gateway carried no certificate of origin {country} {number}", field="number")
        return json_reply(origin_certificate_detail(found))

    async def events(request: web.Request) -> web.StreamResponse:
        _require(request, gateway, "read")
        wanted = _event_names(request.query.get("events"))
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )
        sent = reported = 0
        # subscribed before the headers go out: a client that has them misses no later event
        async with gateway.events.subscribe(buffer=EVENTS_BUFFER) as subscription:
            await response.prepare(request)
            try:
                while True:
                    try:
                        async with asyncio.timeout(EVENTS_KEEPALIVE):
                            event = await anext(subscription)
                    except TimeoutError:
                        await response.write(b": keepalive\n\n")
                        continue
                    except StopAsyncIteration:
                        break
                    if subscription.dropped > reported:
                        lost = {"dropped": subscription.dropped - reported, "total": subscription.dropped}
                        await response.write(_sse("dropped", lost))
                        reported = subscription.dropped
                    if wanted is None or event.name in wanted:
                        sent += 1
                        await response.write(_sse(event.name, event.to_dict(), number=sent))
                await response.write_eof()
            except ConnectionResetError:
                log.debug("operator %s closed the event stream after %d event(s)", request[OPERATOR], sent)
        return response

    async def reload_config(request: web.Request) -> web.Response:
        operator = _require(request, gateway, "act")
        try:
            result = await reload(gateway, operator)
        except ConfigError as exc:
            log.warning("operator %s: reload refused, the running configuration is kept: %s", operator, exc)
            return json_reply(Error.of(exc), status=422)
        except ReloadRefused as exc:
            log.warning("operator %s: reload refused, the running configuration is kept: %s", operator, exc)
            raise
        return json_reply(result)

    async def actions(request: web.Request) -> web.Response:
        _require(request, gateway, "read")
        q = request.query
        _, limit = state_and_limit(q)
        found = await gateway.store.operator_actions(
            operator=q.get("operator"), since=_instant(q, "since"), limit=limit
        )
        out = []
        for recorded in found:
            try:
                action = OperatorAction.from_record(recorded.record)
            except ValueError as exc:
                raise StoreCorrupt(
                    f"the record of operator action {recorded.id} is damaged ({exc}); run `nswgw log verify`",
                    field="actions",
                ) from exc
            out.append(
                ActionView(
                    id=action.id,
                    operator=action.operator,
                    action=action.action,
                    at=_at(action.at),
                    targets=list(action.targets),
                    detail=action.detail,
                    journal_seq=recorded.seq,
                )
            )
        return json_reply(Actions(actions=out))

    async def evidence(request: web.Request) -> web.Response:
        from gateway.evidence import MEDIA_TYPE, build_bundle, party_trust
        from gateway.security import key_ring

        _require(request, gateway, "read")
        message_id = request.match_info["id"]
        if await gateway.store.get(message_id) is None:  # before the key is loaded: a gateway may have none
            raise MessageNotFound(f"no message {message_id}", field="id")
        senders, receivers = party_trust(gateway.config)
        bundle = await build_bundle(
            gateway.store,
            key_ring(gateway.config),
            message_id,
            now=gateway.clock.now(),
            senders=senders,
            receivers=receivers,
        )
        return web.Response(
            body=bundle,
            content_type=MEDIA_TYPE,
            headers={"Content-Disposition": f'attachment; filename="evidence-{message_id}.zip"'},
        )

    return [
        web.post("/v1/admin/reload", reload_config),
        web.get("/v1/admin/actions", actions),
        web.get("/v1/admin/messages", search),
        web.get("/v1/admin/messages/{id}", record),
        web.get("/v1/admin/messages/{id}/evidence", evidence),
        web.get("/v1/admin/dead-letters", dead_letters),
        web.post("/v1/admin/dead-letters/replay", replay_dead),
        web.get("/v1/admin/partners", partners),
        web.get("/v1/admin/certificates", certificates),
        web.get("/v1/admin/origin-certificates", origin_certificates),
        web.get("/v1/admin/origin-certificates/{country}/{number}", origin_certificate),
        web.get("/v1/admin/events", events),
        *reference_routes(gateway, _require),
        *disclosure_routes(gateway, _require),
    ]


# ---------------------------------------------------------------------------------------------- OpenAPI


_INSTANT_PARAM = {"type": "string", "format": "date-time", "examples": ["2026-12-03T06:30:00Z"]}
_LIMIT_PARAM = {
    "name": "limit",
    "in": "query",
    "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
}
_EVENTS_EXAMPLE = (
    'id: 1\nevent: accepted\ndata: {"event":"accepted","at":"2026-12-03T06:30:00.123456+00:00",'
    '"message_id":"0f8c1a2b3c4d5e6f","sender":"MOIT","document_type":"eco.form_d"}\n\n'
    ": keepalive\n\n"
    'event: dropped\ndata: {"dropped":12,"total":12}\n\n'
    'id: 2\nevent: receipt_verified\ndata: {"event":"receipt_verified","at":"2026-12-03T06:30:01.502311+00:00",'
    '"message_id":"0f8c1a2b3c4d5e6f","destination":"TH","latency_seconds":1.38}\n\n'
)


def admin_paths() -> dict[str, Any]:
    """The path items of :func:`admin_routes`, for :func:`gateway.openapi.build_document`."""
    forbidden = error_responses(NotAuthorized)
    query = [
        {"name": "sender", "in": "query", "schema": {"type": "string"}},
        {"name": "destination", "in": "query", "schema": {"type": "string"}},
        {"name": "state", "in": "query", "schema": {"type": "string", "enum": [s.value for s in State]}},
        {"name": "document_type", "in": "query", "schema": {"type": "string"}},
        {"name": "code", "in": "query", "schema": {"type": "string"}, "description": "an error code of the message"},
        {"name": "since", "in": "query", "schema": _INSTANT_PARAM},
        {"name": "until", "in": "query", "schema": _INSTANT_PARAM},
        {"name": "cursor", "in": "query", "schema": {"type": "string"}, "description": "next_cursor of a page"},
        _LIMIT_PARAM,
    ]
    invalid = {
        "422": {
            "description": "coded error: CONFIG_INVALID (the file is invalid: details.errors lists every error; the "
            "running configuration is kept)",
            "content": json_content(Error),
        }
    }
    return {
        **reference_paths(),
        **disclosure_paths(),
        "/v1/admin/reload": {
            "post": {
                "summary": "Operator (act): reload parties, routes, document types, operators and subscriptions",
                "operationId": "adminReload",
                "tags": ["operator"],
                "responses": {
                    "200": {"description": "the new configuration runs", "content": json_content(ReloadResult)},
                    **invalid,
                    **error_responses(ReloadRefused, NotAuthorized),
                },
            }
        },
        "/v1/admin/messages": {
            "get": {
                "summary": "Operator: search the messages of every party, newest first (cursor-paged)",
                "operationId": "adminSearchMessages",
                "tags": ["operator"],
                "parameters": query,
                "responses": {
                    "200": {"description": "a page of messages", "content": json_content(AdminSearchResult)},
                    **error_responses(RequestInvalid, NotAuthorized, *STORE_ERRORS),
                },
            }
        },
        "/v1/admin/messages/{id}": {
            "get": {
                "summary": "Operator: a message's full record with the digests of what was delivered",
                "operationId": "adminGetMessage",
                "tags": ["operator"],
                "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {
                    "200": {"description": "the record", "content": json_content(MessageRecordView)},
                    **error_responses(MessageNotFound, NotAuthorized, *STORE_ERRORS),
                },
            }
        },
        "/v1/admin/messages/{id}/evidence": {
            "get": {
                "summary": "Operator: the signed evidence bundle of a message (ZIP, docs/evidence.md), as"
                " `nswgw evidence`",
                "operationId": "adminMessageEvidence",
                "tags": ["operator"],
                "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {
                    "200": {
                        "description": "the bundle",
                        "content": {
                            "application/vnd.etsi.asic-e+zip": {"schema": {"type": "string", "format": "binary"}}
                        },
                    },
                    **error_responses(MessageNotFound, NotAuthorized, ConfigError, *STORE_ERRORS),
                },
            }
        },
        "/v1/admin/dead-letters": {
            "get": {
                "summary": "Operator: the dead-letter queue, oldest first",
                "operationId": "adminDeadLetters",
                "tags": ["operator"],
                "parameters": [{"name": "destination", "in": "query", "schema": {"type": "string"}}],
                "responses": {
                    "200": {"description": "dead letters", "content": json_content(DeadLetters)},
                    **error_responses(UnknownDestination, NotAuthorized, *STORE_ERRORS),
                },
            }
        },
        "/v1/admin/dead-letters/replay": {
            "post": {
                "summary": "Operator (act): send dead letters again (same message id, fresh attempts and TTL)",
                "operationId": "adminReplay",
                "tags": ["operator"],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": ReplayRequest,
                            "examples": {
                                "some": {"value": {"ids": ["0f8c1a2b3c4d5e6f"]}},
                                "destination": {"value": {"destination": "TH"}},
                            },
                        }
                    },
                },
                "responses": {
                    "200": {"description": "what was replayed", "content": json_content(ReplayResult)},
                    **error_responses(
                        RequestInvalid, MessageNotFound, UnknownDestination, NotAuthorized, *STORE_ERRORS
                    ),
                },
            }
        },
        "/v1/admin/partners": {
            "get": {
                "summary": "Operator: per destination breaker, backlog, dead letters and latency percentiles",
                "operationId": "adminPartners",
                "tags": ["operator"],
                "responses": {
                    "200": {"description": "every destination", "content": json_content(Partners)},
                    **forbidden,
                    **error_responses(*STORE_ERRORS),
                },
            }
        },
        "/v1/admin/actions": {
            "get": {
                "summary": "Operator: the operator actions recorded in the journal, newest first",
                "operationId": "adminActions",
                "tags": ["operator"],
                "parameters": [
                    {"name": "operator", "in": "query", "schema": {"type": "string", "examples": ["ops"]}},
                    {"name": "since", "in": "query", "schema": _INSTANT_PARAM},
                    _LIMIT_PARAM,
                ],
                "responses": {
                    "200": {"description": "actions", "content": json_content(Actions)},
                    **error_responses(RequestInvalid, NotAuthorized, *STORE_ERRORS),
                },
            }
        },
        "/v1/admin/certificates": {
            "get": {
                "summary": "Operator: every configured certificate with its expiry",
                "operationId": "adminCertificates",
                "tags": ["operator"],
                "responses": {
                    "200": {"description": "the inventory", "content": json_content(Certificates)},
                    **forbidden,
                },
            }
        },
        "/v1/admin/origin-certificates": {
            "get": {
                "summary": "Operator: the certificates of origin (e-C/O) the gateway carried, latest status change"
                " first (cursor-paged)",
                "operationId": "adminOriginCertificates",
                "tags": ["operator"],
                "parameters": [
                    {"name": "issuing_country", "in": "query", "schema": {"type": "string", "examples": ["VN"]}},
                    {"name": "status", "in": "query", "schema": {"type": "string", "enum": list(CO_STATUSES)}},
                    {
                        "name": "party",
                        "in": "query",
                        "schema": {"type": "string", "examples": ["TH-ASW"]},
                        "description": "the issuer, or a party that notified about it or receipted it",
                    },
                    {"name": "cursor", "in": "query", "schema": {"type": "string"}, "description": "next_cursor"},
                    _LIMIT_PARAM,
                ],
                "responses": {
                    "200": {"description": "e-C/Os", "content": json_content(OriginCertificates)},
                    **error_responses(RequestInvalid, NotAuthorized, *STORE_ERRORS),
                },
            }
        },
        "/v1/admin/origin-certificates/{country}/{number}": {
            "get": {
                "summary": "Operator: one e-C/O's status, history and the messages that carried it",
                "operationId": "adminOriginCertificate",
                "tags": ["operator"],
                "parameters": [
                    {"name": "country", "in": "path", "required": True, "schema": {"type": "string"}},
                    {"name": "number", "in": "path", "required": True, "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": {"description": "the e-C/O", "content": json_content(OriginCertificateDetail)},
                    **error_responses(MessageNotFound, NotAuthorized, *STORE_ERRORS),
                },
            }
        },
        "/v1/admin/events": {
            "get": {
                "summary": "Operator: the gateway's lifecycle events as Server-Sent Events, until it stops",
                "operationId": "adminEvents",
                "tags": ["operator"],
                "parameters": [
                    {
                        "name": "events",
                        "in": "query",
                        "description": "comma-separated event names to send (default: all): "
                        + ", ".join(sorted(EVENT_NAMES)),
                        "schema": {"type": "string", "examples": ["accepted,delivered,dead_lettered"]},
                    }
                ],
                "responses": {
                    "200": {
                        "description": "a text/event-stream: per event `id: N` (numbered per stream), `event: NAME` "
                        "and `data: JSON` (`event`, `at` and the event's fields); `: keepalive` comments while "
                        f"quiet (every {EVENTS_KEEPALIVE:g} s); `event: dropped` with `dropped` and `total` when "
                        "this client fell behind and lost events",
                        "content": {"text/event-stream": {"schema": {"type": "string"}, "example": _EVENTS_EXAMPLE}},
                    },
                    **error_responses(RequestInvalid, NotAuthorized),
                },
            }
        },
    }
