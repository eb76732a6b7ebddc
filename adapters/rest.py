"""REST/JSON for modern ministry systems and data intermediaries.

Submitting and status are the gateway API itself (:mod:`gateway.api`): ``POST /v1/messages`` takes
harmonized JSON (``Content-Type: application/json``, ``X-Format: json``) or native XML (``X-Format: vnsw``,
``form-d``, ``sps``, ``xml``); ``GET /v1/messages/{id}`` answers state, deliveries and history. This module
adds the two ways results come back:

**Webhook** (:class:`WebhookAdapter`, adapter ``webhook``; connection string: the receiver's HTTPS URL).
Each result is POSTed as JSON::

    {"message_id": <gateway id>, "sender", "document_type", "conversation", "reference",
     "content_type", "payload": <base64 of the document>}

plus ``"on_behalf_of"`` (and the header ``X-On-Behalf-Of``) with the enterprise's id when an intermediary
(``sender``) submitted the message for one;

signed with the gateway's key as a **detached JWS** (RFC 7515, appendix F: compact serialization with an
empty payload part) over the exact body bytes, in the header ``X-NSW-Signature``. The protected header
carries ``alg`` (``ES256``/``ES384``/``RS256``/``PS256`` from the key), ``x5t#S256`` (the SHA-256 thumbprint
of the gateway's certificate), ``nsw-mid`` (the message id) and ``iat``. Receivers check it with
:func:`verify_webhook`. The key sits behind :class:`signing.keys.Signer`: ``options.signer`` is a Signer or,
in TOML, ``{ p12 = "path", password_env = "VAR" }`` / ``{ key = "path", cert = "path" }``
(:func:`adapters.options.signer_from_options`). Retries, backoff, circuit breaker and dead letters are the
normal delivery engine's: the same message id goes out on every attempt; status handling and the receipt
(``{"message_id": ...}``) are the ``http`` adapter's.

**Polling** (:class:`MailboxAdapter`, adapter ``mailbox``, + :class:`ResultsEndpoint`, inbound endpoint
``poll``). The adapter stores each result durably (atomic file write) in the destination's mailbox
directory (connection string ``file:///var/nsw/mailbox/MARD``; ``options.party``: the party that polls
it); the delivery is acknowledged once the result is on disk. The party then

* ``GET /v1/results`` → ``{"results": [{"id", "sender", "document_type", "reference", "content_type",
  "on_behalf_of", "stored_at" (RFC 3339 UTC), "payload" (base64)}]}``: every result not yet acknowledged, oldest first
  (``?limit=``);
* ``POST /v1/results/{id}/ack`` → ``{"id", "acknowledged": true}``: moves it to ``acked/``; a result is
  listed again and again until it is acknowledged, so a poller that crashes before processing loses
  nothing. Acknowledging twice is harmless; an unknown id is ``MESSAGE_NOT_FOUND``.

Options (validated at config load; relative paths are relative to the configuration file):

* ``webhook`` (:class:`WebhookOptions`): ``signer`` (required), ``max_connections`` (default 8);
* ``mailbox`` (:class:`MailboxOptions`): ``party``, the party that polls the mailbox;
* ``poll`` endpoint (:class:`ResultsOptions`): ``path`` (default ``/v1/results``).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pydantic import BaseModel, ConfigDict, Field

from adapters.filedrop import _fsync_dir, atomic_write, drop_directory
from adapters.http import HttpAdapter, HttpOptions
from adapters.options import SignerOption, signer_from_options
from gateway.errors import (
    ConfigError,
    MessageNotFound,
    PartnerRejected,
    PartnerUnavailable,
    RequestInvalid,
    SignatureMalformed,
    SignatureValueInvalid,
)
from gateway.openapi import error_responses, json_content
from gateway.ports import Adapter, AdapterState, InboundEndpoint, Intake, OutboundMessage, Receipt
from gateway.wire import Timestamp, WireModel, json_reply
from signing.algorithms import ECDSA_SHA256, ECDSA_SHA384, RSA_PSS_SHA256, RSA_SHA256, SignatureAlgorithm
from signing.keys import Signer, default_algorithm_for, verify_raw

__all__ = [
    "SIGNATURE_HEADER",
    "WebhookAdapter",
    "WebhookOptions",
    "MailboxAdapter",
    "MailboxOptions",
    "ResultsEndpoint",
    "ResultsOptions",
    "PolledResult",
    "ResultsListing",
    "ResultAcknowledged",
    "sign_detached",
    "verify_webhook",
    "webhook_body",
]

SIGNATURE_HEADER = "X-NSW-Signature"

_JWS_ALGS: dict[str, SignatureAlgorithm] = {
    "ES256": ECDSA_SHA256,
    "ES384": ECDSA_SHA384,
    "RS256": RSA_SHA256,
    "PS256": RSA_PSS_SHA256,
}
_ALG_NAMES = {v.uri: k for k, v in _JWS_ALGS.items()}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def thumbprint(certificate: x509.Certificate) -> str:
    """``x5t#S256``: base64url SHA-256 of the certificate's DER."""
    return _b64url(hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).digest())


def sign_detached(body: bytes, signer: Signer, *, claims: dict[str, Any] | None = None) -> str:
    """A compact detached JWS (``header..signature``) over ``body``."""
    algorithm = default_algorithm_for(signer.certificate)
    name = _ALG_NAMES.get(algorithm.uri)
    if name is None:
        raise ConfigError(f"no JWS algorithm for {algorithm.uri}", field="options.signer")
    header = {"alg": name, "x5t#S256": thumbprint(signer.certificate), **(claims or {})}
    protected = _b64url(json.dumps(header, separators=(",", ":"), sort_keys=True).encode())
    signature = signer.sign(f"{protected}.{_b64url(body)}".encode("ascii"), algorithm)
    return f"{protected}..{_b64url(signature)}"


def verify_webhook(body: bytes, signature: str, certificate: x509.Certificate) -> dict[str, Any]:
    """Check a webhook's detached JWS against the gateway's certificate; the protected header.

    ``SIG_MALFORMED`` for a header that is not a detached compact JWS or names an algorithm outside
    ES256/ES384/RS256/PS256 (never ``none`` or HMAC), ``SIG_SIGNATURE_INVALID`` when the body or header was
    altered or another key signed it.
    """
    parts = signature.split(".")
    if len(parts) != 3 or parts[1] != "":
        raise SignatureMalformed("not a detached compact JWS (header..signature)", field=SIGNATURE_HEADER)
    try:
        header = json.loads(_unb64url(parts[0]))
        raw_signature = _unb64url(parts[2])
    except ValueError as exc:
        raise SignatureMalformed(f"undecodable JWS: {exc}", field=SIGNATURE_HEADER) from exc
    alg = header.get("alg") if isinstance(header, dict) else None
    algorithm = _JWS_ALGS.get(alg) if isinstance(alg, str) else None
    if algorithm is None:
        raise SignatureMalformed(
            f"JWS algorithm {header.get('alg') if isinstance(header, dict) else None!r} is not accepted",
            field=f"{SIGNATURE_HEADER}.alg",
        )
    if header.get("x5t#S256") != thumbprint(certificate):
        raise SignatureValueInvalid("the JWS names another certificate", field=f"{SIGNATURE_HEADER}.x5t#S256")
    if not verify_raw(certificate, raw_signature, f"{parts[0]}.{_b64url(body)}".encode("ascii"), algorithm):
        raise SignatureValueInvalid("the webhook body or its JWS header was altered", field=SIGNATURE_HEADER)
    return header


def webhook_body(message: OutboundMessage) -> bytes:
    """The JSON a webhook receives for ``message``."""
    return json.dumps(
        {
            "message_id": message.message_id,
            "sender": message.sender,
            "document_type": message.document_type,
            "conversation": message.conversation,
            "reference": message.reference,
            "content_type": message.content_type,
            **({"on_behalf_of": message.on_behalf_of} if message.on_behalf_of else {}),
            "payload": base64.b64encode(message.payload).decode("ascii"),
        },
        separators=(",", ":"),
    ).encode()


class WebhookOptions(HttpOptions):
    """``[destinations.NAME.options]`` of the ``webhook`` adapter (also ``max_connections``, as ``http``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True, arbitrary_types_allowed=True)

    signer: SignerOption
    """The gateway's key the JWS is signed with: a :class:`~signing.keys.Signer`, or
    ``{ p12 = "path", password_env = "VAR" }`` / ``{ key = "path", cert = "path" }``."""


class WebhookAdapter(HttpAdapter):
    """POSTs each result as signed JSON (detached JWS in ``X-NSW-Signature``) to the party's URL."""

    scheme: ClassVar[str] = "webhook"
    recoverable = HttpAdapter.recoverable
    Options: ClassVar[type[BaseModel]] = WebhookOptions
    options: WebhookOptions

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 30.0,
        options: BaseModel | Mapping[str, Any] | None = None,
        state: AdapterState | None = None,
    ) -> None:
        super().__init__(url, timeout=timeout, options=options, state=state)
        self.signer: Signer = signer_from_options(self.options.signer, field="options.signer")

    async def deliver(self, message: OutboundMessage) -> Receipt:
        body = webhook_body(message)
        jws = sign_detached(body, self.signer, claims={"nsw-mid": message.message_id, "iat": int(time.time())})
        signed = OutboundMessage(
            message_id=message.message_id,
            payload=body,
            sender=message.sender,
            document_type=message.document_type,
            conversation=message.conversation,
            reference=message.reference,
            content_type="application/json",
            headers={**message.headers, SIGNATURE_HEADER: jws},
            on_behalf_of=message.on_behalf_of,
        )
        return await super().deliver(signed)


# --------------------------------------------------------------------------- polling


class MailboxOptions(BaseModel):
    """``[destinations.NAME.options]`` of the ``mailbox`` adapter."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    party: str | None = Field(None, min_length=1)
    """The party that polls this mailbox (``GET /v1/results`` of the ``poll`` endpoint)."""


class MailboxAdapter(Adapter):
    """Stores each result durably in a per-party mailbox directory, to be polled and acknowledged."""

    scheme: ClassVar[str] = "mailbox"
    recoverable = Adapter.recoverable
    Options: ClassVar[type[BaseModel]] = MailboxOptions
    options: MailboxOptions

    async def deliver(self, message: OutboundMessage) -> Receipt:
        try:
            root = drop_directory(self.url)
        except ConfigError as exc:
            raise PartnerRejected(exc.message, field="url") from exc
        meta = {
            "id": message.message_id,
            "sender": message.sender,
            "document_type": message.document_type,
            "conversation": message.conversation,
            "reference": message.reference,
            "content_type": message.content_type,
            "on_behalf_of": message.on_behalf_of,
            "stored_at": time.time(),
        }
        record = json.dumps({**meta, "payload": base64.b64encode(message.payload).decode("ascii")}).encode()
        pending = root / "pending"
        try:
            await asyncio.to_thread(_store, root, pending, f"{message.message_id}.json", record)
        except OSError as exc:
            raise PartnerUnavailable(f"cannot store in mailbox {root}: {exc.strerror or exc}", field="mailbox") from exc
        return Receipt(message_id=message.message_id, raw=json.dumps({"mailbox": str(root)}).encode())


def _store(root: Path, pending: Path, name: str, record: bytes) -> None:
    if (root / "acked" / name).exists():
        return  # a retry of a result the party already acknowledged: do not hand it out again
    pending.mkdir(parents=True, exist_ok=True)
    atomic_write(pending, name, record)


class PolledResult(WireModel):
    """One result waiting in a party's mailbox."""

    id: str = Field(description="the gateway id of the result message")
    sender: str
    document_type: str
    conversation: str | None
    reference: str | None
    content_type: str | None
    on_behalf_of: str | None = Field(
        None, description="the enterprise an intermediary (sender) submitted the result for"
    )
    stored_at: Timestamp
    payload: str = Field(description="the document, base64")


class ResultsListing(WireModel):
    """``GET /v1/results``: the results not yet acknowledged, oldest first."""

    results: list[PolledResult]


class ResultAcknowledged(WireModel):
    """``POST /v1/results/{id}/ack``: the result is acknowledged (again harmlessly)."""

    id: str
    acknowledged: Literal[True]


class ResultsOptions(BaseModel):
    """``[inbound.NAME.options]`` of the ``poll`` endpoint."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    path: str = Field("/v1/results", pattern=r"^/")
    """Where the listing is mounted (``POST <path>/{id}/ack`` acknowledges)."""


class ResultsEndpoint(InboundEndpoint):
    """``GET /v1/results`` and ``POST /v1/results/{id}/ack`` over the mailboxes of the ``mailbox`` destinations."""

    scheme: ClassVar[str] = "poll"
    Options: ClassVar[type[BaseModel]] = ResultsOptions
    options: ResultsOptions

    def _mailbox(self, intake: Intake, party: str) -> Path:
        for dest in intake.config.destinations.values():
            if isinstance(dest.options, MailboxOptions) and dest.options.party == party:
                return drop_directory(dest.url)
        raise MessageNotFound(f"no result mailbox is configured for {party}", field="party")

    def routes(self, intake: Intake) -> list[Any]:
        prefix = self.options.path

        async def listing(request: web.Request) -> web.Response:
            box = self._mailbox(intake, intake.party_of(request))
            try:
                limit = int(request.query.get("limit", "100"))
            except ValueError:
                raise RequestInvalid("limit must be an integer", field="limit") from None
            results = await asyncio.to_thread(_list, box / "pending", max(1, min(limit, 1000)))
            return json_reply(ResultsListing.model_validate({"results": results}))

        async def ack(request: web.Request) -> web.Response:
            box = self._mailbox(intake, intake.party_of(request))
            rid = request.match_info["id"]
            if not rid or "/" in rid or rid.startswith("."):
                raise RequestInvalid(f"malformed result id {rid!r}", field="id")
            if not await asyncio.to_thread(_ack, box, f"{rid}.json"):
                raise MessageNotFound(f"no result {rid} in the mailbox", field="id")
            return json_reply(ResultAcknowledged(id=rid, acknowledged=True))

        return [web.get(prefix, listing), web.post(prefix + "/{id}/ack", ack)]

    def openapi_paths(self) -> dict[str, Any]:
        prefix = self.options.path
        return {
            prefix: {
                "get": {
                    "summary": "The party's results not yet acknowledged, oldest first",
                    "operationId": f"{self.name}.listResults",
                    "parameters": [
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
                        }
                    ],
                    "responses": {
                        "200": {"description": "pending results", "content": json_content(ResultsListing)},
                        **error_responses(RequestInvalid, MessageNotFound),
                    },
                }
            },
            prefix + "/{id}/ack": {
                "post": {
                    "summary": "Acknowledge a result: it is no longer listed",
                    "operationId": f"{self.name}.ackResult",
                    "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "responses": {
                        "200": {"description": "acknowledged", "content": json_content(ResultAcknowledged)},
                        **error_responses(RequestInvalid, MessageNotFound),
                    },
                }
            },
        }


def _list(pending: Path, limit: int) -> list[dict[str, Any]]:
    if not pending.is_dir():
        return []
    entries = sorted(
        (p for p in pending.glob("*.json") if not p.name.startswith(".")), key=lambda p: (p.stat().st_mtime_ns, p.name)
    )
    return [json.loads(p.read_bytes()) for p in entries[:limit]]


def _ack(root: Path, name: str) -> bool:
    acked = root / "acked"
    acked.mkdir(parents=True, exist_ok=True)
    source = root / "pending" / name
    if not source.exists():
        return (acked / name).exists()
    os.replace(source, acked / name)
    _fsync_dir(acked)
    return True
