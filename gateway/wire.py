"""The JSON bodies the HTTP API answers with, as frozen pydantic models.

The handlers of :mod:`gateway.api` (and of the inbound endpoints) build every JSON answer through one of these
models, and :mod:`gateway.openapi` generates the document's ``components.schemas`` from the same models, so the
answer and its description cannot drift apart. Unknown keys are refused (``extra="forbid"``): a field added to
a core ``to_dict`` without being added here fails loudly instead of going out undocumented.

Inside the core, instants are float seconds since the epoch; on the wire every instant is an RFC 3339 / ISO 8601
UTC string with microseconds (``2026-12-03T06:30:00.123456Z``, :data:`Timestamp`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, WithJsonSchema
from pydantic.json_schema import SkipJsonSchema

from gateway.errors import ERROR_CODES, MethodNotAllowed, NswError, Origin, RequestInvalid
from gateway.model import CertificateAction, State, SubmissionAck
from gateway.store.base import CertificateRecord, MessageRecord

__all__ = [
    "state_and_limit",
    "Timestamp",
    "iso_utc",
    "WireModel",
    "Issue",
    "ErrorDetail",
    "Error",
    "Ack",
    "Rejection",
    "HistoryEntry",
    "DeliveryStatus",
    "MessageStatus",
    "SearchResult",
    "CertificateEventEntry",
    "CertificateStatus",
    "Health",
    "Readiness",
    "json_reply",
    "error_reply",
]


def iso_utc(seconds: float) -> str:
    """``seconds`` since the epoch as an RFC 3339 UTC string with microseconds (``2026-12-03T06:30:00.123456Z``)."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _to_datetime(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    return value


def _serialize(value: datetime) -> str:
    moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


Timestamp = Annotated[
    datetime,
    BeforeValidator(_to_datetime),
    PlainSerializer(_serialize, return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$",
            "description": "RFC 3339 / ISO 8601 instant in UTC, with microseconds",
            "examples": ["2026-12-03T06:30:00.123456Z"],
        }
    ),
]
"""An instant: built from float seconds since the epoch (or a datetime), answered as an RFC 3339 UTC string."""


class WireModel(BaseModel):
    """Base of the API's bodies: frozen, unknown keys refused; optional keys are left out when not given."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    def to_json(self) -> dict[str, Any]:
        """The JSON value (keys given as ``None`` stay ``null``; optional keys never given are left out)."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)


def _code_enum(schema: dict[str, Any]) -> None:
    schema["enum"] = sorted(ERROR_CODES)


def _drop_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def _optional(description: str | None = None) -> Any:
    """A key left out of the answer when it has no value (never ``null``)."""
    return Field(default=None, description=description, json_schema_extra=_drop_default)


class Issue(WireModel):
    """One validation violation (``VALIDATION_FAILED``)."""

    path: str
    code: str
    message: str


class ErrorDetail(WireModel):
    """A coded error (:meth:`gateway.errors.NswError.to_dict`)."""

    code: str = Field(json_schema_extra=_code_enum, description="stable error code (docs/errors.md)")
    message: str
    origin: Origin = Field(description="who is at fault")
    incident_id: str = Field(description="echoed in the gateway's log")
    field: str | SkipJsonSchema[None] = _optional("the header, parameter or element at fault")
    details: dict[str, Any] | SkipJsonSchema[None] = _optional()
    issues: list[Issue] | SkipJsonSchema[None] = _optional("VALIDATION_FAILED: every issue")


class Error(WireModel):
    """Every error answer: ``{"error": {...}}``."""

    error: ErrorDetail

    @classmethod
    def of(cls, exc: NswError) -> Error:
        return cls.model_validate({"error": exc.to_dict()})


class Ack(WireModel):
    """The acknowledgement of a durably stored submission (again, unchanged, for a duplicate)."""

    id: str = Field(description="the gateway id of the message")
    sender: str
    message_id: str
    state: State
    received_at: Timestamp
    destinations: list[str]
    error: ErrorDetail | SkipJsonSchema[None] = _optional("present when REJECTED")
    on_behalf_of: str | SkipJsonSchema[None] = _optional("the enterprise an intermediary submitted for")

    @classmethod
    def of(cls, ack: SubmissionAck) -> Ack:
        return cls.model_validate(ack.to_dict())


class Rejection(WireModel):
    """A stored submission that was rejected: its error and its acknowledgement."""

    error: ErrorDetail
    ack: Ack


class HistoryEntry(WireModel):
    """One timestamped transition of the message or of one of its deliveries."""

    from_state: State | None = Field(alias="from")
    to: State
    at: Timestamp
    destination: str | None = Field(description="the delivery's destination; null for intake transitions")
    code: str | None = Field(description="the error code that caused it")
    detail: str | None


class DeliveryStatus(WireModel):
    """The message on its way to one destination."""

    destination: str
    state: State
    attempts: int
    last_error: ErrorDetail | None
    content_type: str | None = Field(
        description="the media type it is delivered with; null for a delivery queued by an earlier version, which "
        "goes out with the media type of the destination's format"
    )
    queued_at: Timestamp
    next_attempt_at: Timestamp
    deadline: Timestamp = Field(description="after this instant an undelivered message goes to the dead letters")


class MessageStatus(WireModel):
    """A message's state, deliveries, replies and history (``GET /v1/messages/{id}``)."""

    id: str
    sender: str
    on_behalf_of: str | None
    message_id: str
    document_type: str
    conversation_id: str
    reference: str | None
    state: State
    received_at: Timestamp
    error: ErrorDetail | None
    deliveries: list[DeliveryStatus]
    replies: list[str] = Field(description="gateway ids of the messages that reference this one")
    history: list[HistoryEntry]

    @classmethod
    def of(cls, record: MessageRecord) -> MessageStatus:
        return cls.model_validate(record.to_dict())


class SearchResult(WireModel):
    """``GET /v1/messages``: the party's matching messages, newest first."""

    messages: list[MessageStatus]


CertificateStep = Literal[CertificateAction, "delivered"]
"""A step of a certificate's history: an act, or ``delivered`` (a receipt for the delivery of the message that
issued or amended it)."""


class CertificateEventEntry(WireModel):
    """One step of a certificate of origin's history."""

    status: CertificateStep = Field(
        description="the act (issued, amended, cancelled; received, utilized, rejected, verification_request and "
        "verification_answer notifications) or delivered (a receipt of the issuing or amending message)"
    )
    at: Timestamp
    message: str = Field(description="gateway id of the message that carried it (the delivered one, for delivered)")
    party: str = Field(description="the party that sent the act, or the destination that acknowledged the delivery")
    detail: dict[str, str] = Field(
        description="what a notification says (declaration_number, declaration_date, reason_code, reason, "
        "request_id, notifying_country, notified_at) or, for an amendment, amended_by (the amending number)"
    )


class CertificateStatus(WireModel):
    """A certificate of origin the party issued: its status and history
    (``GET /v1/certificates/{issuing_country}/{number}``)."""

    issuing_country: str
    number: str
    issuer: str
    status: Literal["issued", "delivered", "amended", "cancelled", "received", "utilized", "rejected"]
    messages: list[str] = Field(description="gateway ids of the messages that carried its acts, in order")
    history: list[CertificateEventEntry] = Field(description="oldest first")

    @classmethod
    def of(cls, record: CertificateRecord) -> CertificateStatus:
        return cls.model_validate(
            {
                "issuing_country": record.issuing_country,
                "number": record.number,
                "issuer": record.issuer,
                "status": record.status,
                "messages": list(record.messages),
                "history": [
                    {"status": e.status, "at": e.at, "message": e.message, "party": e.party, "detail": e.detail}
                    for e in record.history
                ],
            }
        )


class Health(WireModel):
    status: Literal["ok"]


class Readiness(WireModel):
    """``GET /readyz``: 200 when every check passed, else 503 (``status: "not ready"``)."""

    status: Literal["ready", "not ready"]
    checks: dict[str, str] = Field(
        description="each check the store ran (`write`: a write probe rolled back, `free_space` (SQLite): free bytes "
        "on the store's filesystem at least `[store] min_free_bytes`, `integrity`: SQLite `PRAGMA quick_check` "
        "(cached) or a PostgreSQL query, `journal`: the journal head readable) → `ok` or `failed: <reason>`"
    )
    circuits_open: list[str] = Field(description="destinations whose circuit breaker is not closed")
    weakened: list[str] = Field(
        description="security defaults this configuration turns off (`verification=well-formed`, `signing=off`, "
        "`metrics=public`, `parties.X.trust.any_signer` for a trust section accepting any certificate of its "
        "anchors); empty when none is"
    )


def json_reply(body: WireModel, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """The aiohttp answer carrying ``body``."""
    return web.json_response(body.to_json(), status=status, headers=headers)


def error_reply(exc: NswError, *, headers: dict[str, str] | None = None) -> web.Response:
    """The coded JSON answer of ``exc`` at its HTTP status (with ``Allow`` for ``METHOD_NOT_ALLOWED``, ``Retry-After``
    for an error that says when to resend)."""
    if isinstance(exc, MethodNotAllowed):
        headers = {"Allow": ", ".join(exc.allow), **(headers or {})}
    if exc.retry_after is not None:
        headers = {"Retry-After": str(exc.retry_after), **(headers or {})}
    return json_reply(Error.of(exc), status=exc.http_status, headers=headers)


def state_and_limit(q: Mapping[str, str]) -> tuple[str | None, int]:
    """The ``state`` and ``limit`` parameters of a message search, checked (``REQUEST_INVALID`` naming each)."""
    state = q.get("state")
    if state is not None and state not in State.__members__:
        raise RequestInvalid(f"unknown state {state!r}; one of {', '.join(State.__members__)}", field="state")
    try:
        limit = int(q.get("limit", "100"))
    except ValueError:
        raise RequestInvalid("limit must be an integer from 1 to 1000", field="limit") from None
    if not 1 <= limit <= 1000:
        raise RequestInvalid(f"limit must be an integer from 1 to 1000: {limit}", field="limit")
    return state, limit
