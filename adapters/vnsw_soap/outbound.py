"""``vnsw-soap`` outbound: call a ministry's VNSW gateway, ``receiveRequest(officeCode, documentType, requestPayload)``.

Connection string: the ministry's SOAP endpoint URL (``http://host:port/path``).

Options (:class:`VnswSoapOptions`, validated at config load):

* ``office_code`` (required): the ``officeCode`` the ministry expects (``BNN`` for MARD);
* ``document_type``: ``documentType`` to send; default: the payload's ``Subject/documentType``
  (the procedure code), else the message's document type;
* ``wsdl``: the WSDL to build the client from; default: the packaged
  ``wsdl/vnsw_gateway.wsdl`` (no network at start). A file path is relative to the configuration file; a
  URL (the ministry's own ``?wsdl``) is fetched on the first delivery through the same transport;
* ``strict`` (default ``true``): zeep's strict XML schema mode for the answer;
* ``headers``: extra HTTP headers (``Authorization`` for a ministry that wants one);
* ``tls`` (:class:`~adapters.options.TlsOptions`, for ``https://``): ``ca_bundle``, ``client_certificate``/
  ``client_key``, ``minimum_version``, as for the ``http`` adapter (the WSDL, when it is a URL, is fetched
  with the same settings).

Features: ``deliver``, ``receipt``: the synchronous answer's ``responsePayload`` is the receipt. A
function-99 answer that names the delivered envelope's ``Subject/reference`` acknowledges the message; a
function-00 answer is :class:`~gateway.errors.PartnerRejected` listing its ``ErrorCode``/``ErrorName`` pairs
(``details.errors``); an answer that is not a readable VNSW acknowledgement is
:class:`~gateway.errors.ReceiptInvalid` (retried). Business results come back later as separate inbound
calls (``adapters.vnsw_soap.inbound``), correlated by ``Subject/reference``.

``receiveRequest`` has no parameter for the enterprise an intermediary submitted a message for: the envelope
itself names it (the gateway checked that it does when it took the message in), so nothing else is sent.

zeep runs synchronously on a ``requests`` session in a worker thread: Settings
``forbid_dtd``/``forbid_entities``/``forbid_external`` on; zeep's transport carries the destination timeout.

Errors (translated at this boundary, :func:`translate_error`): a SOAP fault, a 4xx, an answer with a DTD or
entities, an operation the WSDL lacks are :class:`PartnerRejected` (never retried); connection failures,
timeouts, 5xx/408/429 and garbled answers are :class:`PartnerUnavailable` (retried).
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

import requests
import zeep
import zeep.exceptions as zx
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from zeep.transports import Transport

from adapters.options import TlsOptions, client_ssl_context
from adapters.vnsw_soap.envelope import read_answer, read_header
from gateway.errors import (
    GatewayError,
    NswError,
    PartnerRejected,
    PartnerUnavailable,
    ReceiptInvalid,
    RequestInvalid,
)
from gateway.ports import Adapter, AdapterState, OutboundMessage, Receipt
from signing.xml import parse_xml

__all__ = ["VnswSoapAdapter", "VnswSoapOptions", "translate_error", "GATEWAY_WSDL"]

GATEWAY_WSDL = "vnsw_gateway.wsdl"
_RETRY_STATUSES = frozenset({408, 425, 429})


def _wsdl_path(name: str) -> str:
    return str(resources.files("adapters.vnsw_soap").joinpath("wsdl", name))


def _describe(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001 - a half-built driver exception's __str__ can raise anything; it must not hide the real failure
        text = ""
    return f"{type(exc).__name__}: {text}"[:500] if text else type(exc).__name__


def translate_error(exc: BaseException, url: str) -> PartnerUnavailable | PartnerRejected:
    """The gateway error for a zeep / requests / socket failure while calling ``url``."""
    if isinstance(exc, zx.Fault):
        code = getattr(exc, "code", None)
        return PartnerRejected(
            f"{url} answered a SOAP fault: {getattr(exc, 'message', None) or _describe(exc)}",
            field="soap:Fault",
            details={"faultcode": str(code) if code else None},
        )
    if isinstance(exc, zx.TransportError):
        status = getattr(exc, "status_code", 0) or 0
        if status >= 500 or status in _RETRY_STATUSES or status == 0:
            return PartnerUnavailable(f"{url} answered {status}", field="http.status", details={"status": status})
        return PartnerRejected(f"{url} answered {status}", field="http.status", details={"status": status})
    if isinstance(exc, (zx.DTDForbidden, zx.EntitiesForbidden, zx.ExternalReferenceForbidden)):
        return PartnerRejected(f"{url} answered with forbidden XML: {_describe(exc)}", field="soap:Envelope")
    if isinstance(exc, (zx.XMLSyntaxError, zx.XMLParseError, zx.UnexpectedElementError, zx.IncompleteMessage)):
        return PartnerUnavailable(f"{url} answered an unreadable SOAP message: {_describe(exc)}", field="soap:Envelope")
    if isinstance(exc, zx.Error):  # ValidationError, LookupError, WsdlSyntaxError, NamespaceError, ...
        return PartnerRejected(f"{url}: {_describe(exc)}", field="wsdl")
    if isinstance(
        exc, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema)
    ):
        return PartnerRejected(f"invalid ministry URL {url}: {_describe(exc)}", field="url")
    if isinstance(exc, requests.exceptions.Timeout):
        return PartnerUnavailable(f"{url} did not answer in time", field="soap.timeout")
    if isinstance(exc, requests.exceptions.RequestException):
        return PartnerUnavailable(f"{url}: {_describe(exc)}", field="soap")
    if isinstance(exc, (TimeoutError, OSError)):
        return PartnerUnavailable(f"{url}: {_describe(exc)}", field="soap")
    raise GatewayError(f"unexpected {_describe(exc)} from the vnsw-soap adapter", field="soap") from exc


_DRIVER_ERRORS = (zx.Error, requests.exceptions.RequestException, OSError)


class VnswSoapOptions(BaseModel):
    """``[destinations.NAME.options]`` of the ``vnsw-soap`` adapter."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    office_code: str = Field(min_length=1)
    """The ``officeCode`` the ministry expects (``BNN`` for MARD)."""
    document_type: str | None = None
    """``documentType`` to send (default: the payload's ``Subject/documentType``, else the message's type)."""
    wsdl: str | None = None
    """The WSDL: a file (relative to the configuration file) or a URL (default: the packaged one)."""
    strict: bool = True
    """zeep's strict XML schema mode for the answer."""
    headers: dict[str, str] = Field(default_factory=dict)
    """Extra HTTP headers (``Authorization`` for a ministry that wants one)."""
    tls: TlsOptions = TlsOptions()
    """TLS towards the ministry (``https://``): CA bundle, client certificate, minimum version."""

    @field_validator("wsdl")
    @classmethod
    def _relative_to_config(cls, value: str | None, info: ValidationInfo) -> str | None:
        base = (info.context or {}).get("base")
        if value is None or "://" in value or base is None or Path(value).is_absolute():
            return value
        return str((Path(base) / value).resolve())


class _TlsAdapter(requests.adapters.HTTPAdapter):
    """``requests``' transport with the destination's ``ssl.SSLContext`` on every HTTPS connection."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self._context = context
        super().__init__()

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        host, pool = super().build_connection_pool_key_attributes(request, verify, cert)
        return host, {**pool, "ssl_context": self._context}


class VnswSoapAdapter(Adapter):
    """Delivers VNSW envelopes to a ministry's SOAP gateway with zeep; the 99/00 answer is the receipt."""

    scheme: ClassVar[str] = "vnsw-soap"
    recoverable = Adapter.recoverable
    Options: ClassVar[type[BaseModel]] = VnswSoapOptions
    options: VnswSoapOptions

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 30.0,
        options: BaseModel | Mapping[str, Any] | None = None,
        state: AdapterState | None = None,
    ) -> None:
        super().__init__(url, timeout=timeout, options=options, state=state)
        self.office_code = self.options.office_code
        self.wsdl = self.options.wsdl or _wsdl_path(GATEWAY_WSDL)
        self.strict = self.options.strict
        self._ssl = client_ssl_context(self.options.tls)
        self._session: requests.Session | None = None
        self._service: Any = None
        self._lock = threading.Lock()

    async def open(self) -> None:
        if self._session is None:
            session = requests.Session()
            session.mount("https://", _TlsAdapter(self._ssl))
            session.headers.update(self.options.headers)
            self._session = session

    async def close(self) -> None:
        session, self._session = self._session, None
        self._service = None
        if session is not None:
            session.close()

    def _client(self) -> Any:
        """Build the zeep client once (the WSDL may be remote: this runs in the worker thread)."""
        with self._lock:
            if self._service is None:
                assert self._session is not None
                transport = Transport(session=self._session, timeout=self.timeout, operation_timeout=self.timeout)
                settings = zeep.Settings(
                    strict=self.strict, forbid_dtd=True, forbid_entities=True, forbid_external=True, force_https=False
                )
                client = zeep.Client(self.wsdl, transport=transport, settings=settings)
                binding = next(iter(client.wsdl.bindings))
                self._service = client.create_service(binding, self.url)
            return self._service

    def _call(self, document_type: str, payload: str) -> Any:
        service = self._client()
        return service.receiveRequest(officeCode=self.office_code, documentType=document_type, requestPayload=payload)

    async def deliver(self, message: OutboundMessage) -> Receipt:
        await self.open()
        try:
            text = message.payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RequestInvalid("a VNSW requestPayload must be UTF-8 text", field="requestPayload") from exc
        header = read_header(parse_xml(message.payload))
        document_type = self.options.document_type or header.document_type or message.document_type
        try:
            result = await asyncio.to_thread(self._call, document_type, text)
        except _DRIVER_ERRORS as exc:
            raise translate_error(exc, self.url) from exc
        return self._receipt(result, message, header.reference)

    def _receipt(self, result: Any, message: OutboundMessage, reference: str) -> Receipt:
        answer = result
        if not isinstance(answer, str):  # a WSDL with a wrapper: take its first field
            values = list(answer.__values__.values()) if hasattr(answer, "__values__") else []
            answer = values[0] if values else None
        if not isinstance(answer, str) or not answer.strip():
            raise ReceiptInvalid(f"{self.url} answered no responsePayload", field="responsePayload")
        raw = answer.encode("utf-8")
        try:
            ack = read_answer(parse_xml(raw))
        except NswError as exc:
            raise ReceiptInvalid(
                f"{self.url} answered an unreadable acknowledgement: {exc}",
                field=f"responsePayload{exc.field if (exc.field or '').startswith('/') else ''}",
            ) from exc
        if ack.function == "00":
            errors = [{"code": c, "name": n} for c, n in ack.errors]
            first = f"{errors[0]['code']} {errors[0]['name']}" if errors else "no error listed"
            raise PartnerRejected(
                f"{self.url} refused the message (function 00): {first}",
                field="responsePayload/Envelope/Body/Content/ErrorList",
                details={"errors": errors},
            )
        if ack.function != "99":
            raise ReceiptInvalid(
                f"{self.url} answered function {ack.function!r}, not 99 or 00",
                field="responsePayload/Envelope/Header/Subject/function",
            )
        acknowledged = message.message_id if ack.reference == reference else None
        return Receipt(message_id=acknowledged, raw=raw, status=200)
