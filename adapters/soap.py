"""What the adapters that call a partner's SOAP service with zeep share (``vnsw-soap``, ``ippc-hub``).

* :class:`SoapService`: a partner's service called with zeep, on a ``requests`` session, in a worker thread,
  every driver failure translated.
* :class:`TlsHttpAdapter`: the ``requests`` transport that carries the destination's ``ssl.SSLContext``
  (:func:`adapters.options.client_ssl_context`) on every HTTPS connection zeep opens.
* :func:`relative_to_config`: the validator of a ``wsdl`` option (a file relative to the configuration file).
* :func:`translate_soap_error`: the gateway error of a zeep / requests / socket failure; each adapter names its
  partner in the messages its own way. A SOAP fault, a 4xx, forbidden XML (a DTD, entities, an external
reference), a call the WSDL does not allow and an invalid URL are :class:`~gateway.errors.PartnerRejected`
(never retried); connection failures, timeouts, 5xx/408/425/429 and unreadable answers are
:class:`~gateway.errors.PartnerUnavailable` (retried). Every message names the partner by
:func:`~gateway.ports.public_endpoint` and carries the driver's text without credentials.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import requests
import zeep
import zeep.exceptions as zx
from pydantic import ValidationInfo
from zeep.transports import Transport

from gateway.errors import GatewayError, PartnerRejected, PartnerUnavailable
from gateway.ports import public_endpoint, without_credentials

__all__ = [
    "DRIVER_ERRORS",
    "RETRY_STATUSES",
    "SoapService",
    "TlsHttpAdapter",
    "relative_to_config",
    "translate_soap_error",
]

DRIVER_ERRORS = (zx.Error, requests.exceptions.RequestException, OSError)
"""What a zeep call on a ``requests`` session raises: the exceptions :func:`translate_soap_error` maps."""
RETRY_STATUSES = frozenset({408, 425, 429})
"""HTTP statuses below 500 that are still worth a retry."""


class TlsHttpAdapter(requests.adapters.HTTPAdapter):
    """``requests``' transport with the destination's ``ssl.SSLContext`` on every HTTPS connection."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self._context = context
        super().__init__()

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        host, pool = super().build_connection_pool_key_attributes(request, verify, cert)
        return host, {**pool, "ssl_context": self._context}


class SoapService:
    """The SOAP service at ``url`` (never the address the WSDL names), called with zeep.

    zeep runs synchronously: the client is built once, on the first call, in the worker thread (the WSDL may be a
    URL), from ``wsdl`` with ``forbid_dtd``/``forbid_entities``/``forbid_external`` on and schema checking of
    answers as ``strict`` says, on a ``requests`` session with the destination's TLS (``ssl_context``) and the
    extra ``headers``. Each call runs in a worker thread with ``timeout`` seconds; a driver failure
    (:data:`DRIVER_ERRORS`) is raised as ``translate(exc, url)``.
    """

    def __init__(
        self,
        url: str,
        *,
        wsdl: str,
        ssl_context: ssl.SSLContext,
        timeout: float,
        translate: Callable[[BaseException, str], Exception],
        strict: bool = True,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.url = url
        self.wsdl = wsdl
        self.timeout = timeout
        self.strict = strict
        self._ssl = ssl_context
        self._translate = translate
        self._headers = dict(headers or {})
        self._session: requests.Session | None = None
        self._service: Any = None
        self._lock = threading.Lock()

    def open(self) -> None:
        if self._session is None:
            session = requests.Session()
            session.mount("https://", TlsHttpAdapter(self._ssl))
            session.headers.update(self._headers)
            self._session = session

    def close(self) -> None:
        session, self._session = self._session, None
        self._service = None
        if session is not None:
            session.close()

    def _client(self) -> Any:
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

    def _invoke(self, operation: str, arguments: dict[str, Any]) -> Any:
        return self._client()[operation](**arguments)

    async def call(self, operation: str, **arguments: Any) -> Any:
        """The answer of ``operation`` (a zeep value); the translated gateway error otherwise."""
        self.open()
        try:
            return await asyncio.to_thread(self._invoke, operation, arguments)
        except DRIVER_ERRORS as exc:
            raise self._translate(exc, self.url) from exc


def relative_to_config(value: str | None, info: ValidationInfo) -> str | None:
    """A WSDL option: a file path relative to the configuration file made absolute; a URL as it is."""
    base = (info.context or {}).get("base")
    if value is None or "://" in value or base is None or Path(value).is_absolute():
        return value
    return str((Path(base) / value).resolve())


def _describe(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001 - a half-built driver exception's __str__ can raise anything; it must not hide the real failure
        text = ""
    return f"{type(exc).__name__}: {text}"[:500] if text else type(exc).__name__


def _detail_text(fault: zx.Fault, tag: str) -> str | None:
    detail = getattr(fault, "detail", None)
    if detail is None or not isinstance(detail.tag, str):
        return None
    text = detail.findtext(f".//{tag}")
    return text[:500] if text else None


def translate_soap_error(
    exc: BaseException,
    url: str,
    *,
    partner: str,
    url_kind: str,
    client: str,
    fault_message: tuple[str, str] | None = None,
) -> PartnerUnavailable | PartnerRejected:
    """The gateway error for ``exc``, raised while calling the SOAP service at ``url``.

    ``partner`` names the partner in each message, ``{url}`` standing for its public endpoint (``"the IPPC hub
    at {url}"``); ``url_kind`` says whose URL an invalid one is (``"invalid {url_kind} URL ..."``); ``client``
    is what an exception no rule maps came from (a :class:`~gateway.errors.GatewayError`, raised, not
    returned). ``fault_message`` is (qualified tag, details key): the element of a SOAP fault's ``detail`` that
    carries the partner's own message, which then stands in the error message and under that key of
    ``details``.
    """
    at = partner.format(url=public_endpoint(url))
    what = without_credentials(_describe(exc), url)  # stored, logged, shown: no secret
    if isinstance(exc, zx.Fault):
        code = getattr(exc, "code", None)
        details: dict[str, object] = {"faultcode": str(code) if code else None}
        said = None
        if fault_message is not None:
            tag, key = fault_message
            said = _detail_text(exc, tag)
            details[key] = said
        message = said or str(getattr(exc, "message", None) or what)
        return PartnerRejected(
            f"{at} answered a SOAP fault: {without_credentials(message, url)}", field="soap:Fault", details=details
        )
    if isinstance(exc, zx.TransportError):
        status = getattr(exc, "status_code", 0) or 0
        if status >= 500 or status in RETRY_STATUSES or status == 0:
            return PartnerUnavailable(f"{at} answered {status}", field="http.status", details={"status": status})
        return PartnerRejected(f"{at} answered {status}", field="http.status", details={"status": status})
    if isinstance(exc, (zx.DTDForbidden, zx.EntitiesForbidden, zx.ExternalReferenceForbidden)):
        return PartnerRejected(f"{at} answered with forbidden XML: {what}", field="soap:Envelope")
    if isinstance(exc, (zx.XMLSyntaxError, zx.XMLParseError, zx.UnexpectedElementError, zx.IncompleteMessage)):
        return PartnerUnavailable(f"{at} answered an unreadable SOAP message: {what}", field="soap:Envelope")
    if isinstance(exc, zx.Error):  # ValidationError, LookupError, WsdlSyntaxError, NamespaceError, ...
        return PartnerRejected(f"{at}: {what}", field="wsdl")
    if isinstance(
        exc, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema)
    ):
        return PartnerRejected(f"invalid {url_kind} URL {public_endpoint(url)}: {what}", field="url")
    if isinstance(exc, requests.exceptions.Timeout):
        return PartnerUnavailable(f"{at} did not answer in time", field="soap.timeout")
    if isinstance(exc, (requests.exceptions.RequestException, TimeoutError, OSError)):
        return PartnerUnavailable(f"{at}: {what}", field="soap")
    raise GatewayError(f"unexpected {what} from {client}", field="soap") from exc
