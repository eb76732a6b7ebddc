"""HTTP(S) push adapter: POST each message to the partner's URL.

Connection string: the endpoint URL, ``http://host:port/path`` or ``https://...``.

Features: ``deliver`` (one POST per attempt), ``receipt`` (the response is
the receiver's receipt). Per destination one aiohttp session with its own
connection pool (``options.max_connections``, default 8), so a slow partner
never holds another's sockets.

Options (:class:`HttpOptions`, ``[destinations.NAME.options]``):

* ``max_connections`` (default 8): connections to the partner at once;
* ``tls`` (:class:`~adapters.options.TlsOptions`, for ``https://``): ``ca_bundle`` (whom to trust for the
  partner's server certificate; default the system's), ``client_certificate``/``client_key``
  (``client_key_password_env``) presented to the partner, ``minimum_version`` (``"1.2"``, default, or ``"1.3"``).
  A bundle or key that does not load is a ``CONFIG_INVALID`` at start naming the option
  (``destinations.TH.options.tls.client_certificate``); a failed handshake is ``PARTNER_UNAVAILABLE``.

Request: the payload as the body (``Content-Type`` from the message) and the
headers ``X-Message-Id`` (the gateway id, identical on every retry),
``X-Sender``, ``X-Document-Type``, ``X-Conversation-Id``, for replies and
amendments ``X-Reference``, and, for a message an intermediary (``X-Sender``)
submitted for an enterprise, ``X-On-Behalf-Of`` with the enterprise's id (the
gateway has checked that the document names it).

Receipt: a 2xx answer whose JSON body has ``message_id`` (and optionally
``duplicate: true``), or, for a non-JSON body, an ``X-Receipt-For`` header.

Errors: connection failures, timeouts, broken payloads, 408, 425, 429 and
5xx are :class:`~gateway.errors.PartnerUnavailable` (retried); any other
non-2xx status is :class:`~gateway.errors.PartnerRejected` (final).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any, ClassVar

import aiohttp
from pydantic import BaseModel, ConfigDict, Field

from adapters.options import TlsOptions, client_ssl_context
from gateway.errors import GatewayError, PartnerRejected, PartnerUnavailable
from gateway.ports import Adapter, AdapterState, OutboundMessage, Receipt, public_endpoint, without_credentials

__all__ = ["HttpAdapter", "HttpOptions", "translate_error"]

_RETRY_STATUSES = frozenset({408, 425, 429})
_MAX_RECEIPT = 1024 * 1024


def _describe(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001 - a half-built driver exception's __str__ can raise anything; it must not hide the real failure
        text = ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def translate_error(exc: BaseException, url: str) -> PartnerUnavailable | PartnerRejected:
    """The gateway error for an aiohttp/asyncio failure while talking to ``url``."""
    shown, what = public_endpoint(url), without_credentials(_describe(exc), url)  # stored, logged, shown: no secret
    if isinstance(exc, aiohttp.ClientResponseError):
        status = exc.status
        if status >= 500 or status in _RETRY_STATUSES:
            return PartnerUnavailable(f"{shown} answered {status}", field="http.status", details={"status": status})
        return PartnerRejected(f"{shown} answered {status}", field="http.status", details={"status": status})
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return PartnerUnavailable(f"{shown} did not answer in time", field="http.timeout")
    if isinstance(exc, aiohttp.InvalidURL):
        return PartnerRejected(f"invalid partner URL {shown}: {what}", field="url")
    if isinstance(exc, (aiohttp.ClientError, OSError)):
        return PartnerUnavailable(f"{shown}: {what}", field="http")
    raise GatewayError(f"unexpected {what} from the HTTP adapter", field="http") from exc


class HttpOptions(BaseModel):
    """``[destinations.NAME.options]`` of the ``http``/``https`` adapter."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    max_connections: int = Field(8, ge=1, le=1024)
    """Connections to the partner at once (the destination's own pool)."""
    tls: TlsOptions = TlsOptions()
    """TLS towards the partner (``https://``): CA bundle, client certificate, minimum version."""


class HttpAdapter(Adapter):
    """POSTs messages to a partner over HTTP(S); the response is the receipt."""

    scheme: ClassVar[str] = "http"
    recoverable = Adapter.recoverable
    Options: ClassVar[type[BaseModel]] = HttpOptions
    options: HttpOptions

    _session: aiohttp.ClientSession | None = None

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 30.0,
        options: BaseModel | Mapping[str, Any] | None = None,
        state: AdapterState | None = None,
    ) -> None:
        super().__init__(url, timeout=timeout, options=options, state=state)
        self._ssl = client_ssl_context(self.options.tls)

    async def open(self) -> None:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self.options.max_connections, ssl=self._ssl)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=self.timeout)
            )

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def deliver(self, message: OutboundMessage) -> Receipt:
        await self.open()
        assert self._session is not None
        headers = {
            "Content-Type": message.content_type,
            "X-Message-Id": message.message_id,
            "X-Sender": message.sender,
            "X-Document-Type": message.document_type,
            "X-Conversation-Id": message.conversation,
            **message.headers,
        }
        if message.reference:
            headers["X-Reference"] = message.reference
        if message.on_behalf_of:
            headers["X-On-Behalf-Of"] = message.on_behalf_of
        try:
            data = _SlicedPayload(message.payload, content_type=message.content_type)
            async with self._session.post(self.url, data=data, headers=headers) as response:
                body = await response.content.read(_MAX_RECEIPT)
                if response.status >= 300:
                    response.raise_for_status()
                    raise aiohttp.ClientResponseError(
                        response.request_info, response.history, status=response.status, message=response.reason or ""
                    )
                return _receipt(response.status, response.headers, body)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise translate_error(exc, self.url) from exc


_SLICE = 64 * 1024
"""Bytes of the payload handed to the connection at a time."""


class _SlicedPayload(aiohttp.payload.Payload):
    """The payload written to the connection in :data:`_SLICE`-byte views of the one stored ``bytes``, each
    awaited (the writer drains above 64 KiB): the transport buffers at most a slice, never a copy of the whole
    (aiohttp's ``bytes`` body is sliced to its length and then buffered whole by the transport). Reusable on a
    redirect."""

    _autoclose = True

    def __init__(self, value: bytes, *, content_type: str) -> None:
        super().__init__(value, content_type=content_type)
        self._bytes = value
        self._size = len(value)

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return self._bytes.decode(encoding, errors)

    async def as_bytes(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return self._bytes

    async def write(self, writer: aiohttp.abc.AbstractStreamWriter) -> None:
        await self.write_with_length(writer, None)

    async def write_with_length(self, writer: aiohttp.abc.AbstractStreamWriter, content_length: int | None) -> None:
        view = memoryview(self._bytes)
        if content_length is not None:
            view = view[:content_length]
        for start in range(0, len(view), _SLICE):
            await writer.write(view[start : start + _SLICE])


def _receipt(status: int, headers: aiohttp.typedefs.LooseHeaders, body: bytes) -> Receipt:
    get = getattr(headers, "get", lambda *_: None)
    message_id = get("X-Receipt-For")
    duplicate = False
    if body[:1] in (b"{", b" ", b"\n"):
        try:
            doc = json.loads(body)
        except ValueError:
            doc = None
        if isinstance(doc, dict):
            message_id = doc.get("message_id", message_id)
            duplicate = bool(doc.get("duplicate", False))
    return Receipt(
        message_id=message_id if isinstance(message_id, str) else None, raw=body, status=status, duplicate=duplicate
    )
