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

from collections.abc import Mapping
from importlib import resources
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from adapters.options import TlsOptions, client_ssl_context
from adapters.soap import SoapService, relative_to_config, translate_soap_error
from adapters.vnsw_soap.envelope import read_answer, read_header
from gateway.errors import (
    NswError,
    PartnerRejected,
    PartnerUnavailable,
    ReceiptInvalid,
    RequestInvalid,
)
from gateway.ports import Adapter, AdapterState, OutboundMessage, Receipt, public_endpoint
from signing.xml import parse_xml

__all__ = ["VnswSoapAdapter", "VnswSoapOptions", "translate_error", "GATEWAY_WSDL"]

GATEWAY_WSDL = "vnsw_gateway.wsdl"


def _wsdl_path(name: str) -> str:
    return str(resources.files("adapters.vnsw_soap").joinpath("wsdl", name))


def translate_error(exc: BaseException, url: str) -> PartnerUnavailable | PartnerRejected:
    """The gateway error for a zeep / requests / socket failure while calling ``url``."""
    return translate_soap_error(exc, url, partner="{url}", url_kind="ministry", client="the vnsw-soap adapter")


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
        return relative_to_config(value, info)


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
        self._soap = SoapService(
            url,
            wsdl=self.wsdl,
            ssl_context=client_ssl_context(self.options.tls),
            timeout=self.timeout,
            translate=translate_error,
            strict=self.strict,
            headers=self.options.headers,
        )

    async def open(self) -> None:
        self._soap.open()

    async def close(self) -> None:
        self._soap.close()

    async def deliver(self, message: OutboundMessage) -> Receipt:
        await self.open()
        try:
            text = message.payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RequestInvalid("a VNSW requestPayload must be UTF-8 text", field="requestPayload") from exc
        header = read_header(parse_xml(message.payload))
        document_type = self.options.document_type or header.document_type or message.document_type
        result = await self._soap.call(
            "receiveRequest", officeCode=self.office_code, documentType=document_type, requestPayload=text
        )
        return self._receipt(result, message, header.reference)

    def _receipt(self, result: Any, message: OutboundMessage, reference: str) -> Receipt:
        answer = result
        if not isinstance(answer, str):  # a WSDL with a wrapper: take its first field
            values = list(answer.__values__.values()) if hasattr(answer, "__values__") else []
            answer = values[0] if values else None
        if not isinstance(answer, str) or not answer.strip():
            raise ReceiptInvalid(f"{public_endpoint(self.url)} answered no responsePayload", field="responsePayload")
        raw = answer.encode("utf-8")
        try:
            ack = read_answer(parse_xml(raw))
        except NswError as exc:
            raise ReceiptInvalid(
                f"{public_endpoint(self.url)} answered an unreadable acknowledgement: {exc}",
                field=f"responsePayload{exc.field if (exc.field or '').startswith('/') else ''}",
            ) from exc
        if ack.function == "00":
            errors = [{"code": c, "name": n} for c, n in ack.errors]
            first = f"{errors[0]['code']} {errors[0]['name']}" if errors else "no error listed"
            raise PartnerRejected(
                f"{public_endpoint(self.url)} refused the message (function 00): {first}",
                field="responsePayload/Envelope/Body/Content/ErrorList",
                details={"errors": errors},
            )
        if ack.function != "99":
            raise ReceiptInvalid(
                f"{public_endpoint(self.url)} answered function {ack.function!r}, not 99 or 00",
                field="responsePayload/Envelope/Header/Subject/function",
            )
        acknowledged = message.message_id if ack.reference == reference else None
        return Receipt(message_id=acknowledged, raw=raw, status=200)
