"""The IPPC ePhyto hub's SOAP service (``DeliveryService``) as both ``ippc-hub`` adapters call it.

* :class:`HubClient`: a zeep client built from the packaged WSDL (``wsdl/ippc-ephyto-hub-DeliveryService.wsdl``,
  document/literal SOAP 1.1; its sources in ``wsdl/SOURCES.md``) and addressed to the configured URL, never to
  the address the WSDL names. zeep runs synchronously on a ``requests`` session (TLS per
  :class:`~adapters.options.TlsOptions`) in a worker thread, with ``forbid_dtd``/``forbid_entities``/
  ``forbid_external`` on and strict schema checking of every answer. The operations used:
  ``DeliverEnvelope``, ``GetEnvelopeTrackingInfo``, ``PULLImportEnvelope``, ``AcknowledgeEnvelopeReceipt``,
  ``AcknowledgeFailedEnvelopeReceipt``.
* :class:`HubHeader`: an ``EnvelopeHeader`` as the hub answers it (:meth:`HubHeader.to_xml`: the receipt kept for
  a delivery); :class:`HubEnvelope`: a pulled import, header and ``Content``.
* :func:`translate_error`: every zeep / requests / socket failure as a gateway error
  (:func:`adapters.soap.translate_soap_error`, naming "the IPPC hub at URL"). A SOAP fault
  (``HubWebException``), a 4xx, forbidden XML or a call the WSDL does not allow are
  :class:`~gateway.errors.PartnerRejected` (never retried; ``details.hub_message`` carries the hub's
  ``HubWebException/message``); connection failures, timeouts, 5xx/408/425/429 and unreadable answers are
  :class:`~gateway.errors.PartnerUnavailable` (retried).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any

from lxml import etree

from adapters.options import TlsOptions, client_ssl_context
from adapters.soap import SoapService, translate_soap_error
from gateway.errors import PartnerRejected, PartnerUnavailable
from signing.xml import serialize

__all__ = [
    "HUB_NS",
    "SERVICE_NS",
    "HUB_WSDL",
    "HEADER_FIELDS",
    "TRACKING_STATES",
    "HubClient",
    "HubEnvelope",
    "HubHeader",
    "hub_wsdl_path",
    "translate_error",
]

HUB_NS = "http://ephyto.ippc.int/HUB.Entities"
"""Namespace of the hub's envelope types (``Envelope``, ``EnvelopeHeader``)."""
SERVICE_NS = "http://ephyto.ippc.int/"
"""Namespace of the service's operations and of ``HubWebException``."""
HUB_WSDL = "ippc-ephyto-hub-DeliveryService.wsdl"
TRACKING_STATES = (
    "PendingDelivery",
    "Delivered",
    "FailedDelivery",
    "EnvelopeNotExists",
    "DeliveredWithWarnings",
    "DeliveredNotReadable",
)
"""The values of ``HUBTrackingInfo`` the WSDL declares."""
HEADER_FIELDS = (
    "From",
    "To",
    "CertificateType",
    "CertificateStatus",
    "NPPOCertificateNumber",
    "hubDeliveryNumber",
    "HUBTrackingInfo",
    "hubDeliveryErrorMessage",
)
"""The elements of an ``EnvelopeHeader``, in the order the WSDL declares them."""


def hub_wsdl_path() -> str:
    """The packaged WSDL of the hub's ``DeliveryService``."""
    return str(resources.files("adapters.ippc").joinpath("wsdl", HUB_WSDL))


@dataclass(frozen=True)
class HubHeader:
    """An ``EnvelopeHeader`` of the hub (``From``/``To``: NPPO country codes)."""

    from_: str
    to: str
    certificate_type: int
    certificate_status: int
    certificate_number: str
    hub_number: str | None
    """``hubDeliveryNumber``: the hub's id of the envelope (its tracking number)."""
    tracking: str | None
    """``HUBTrackingInfo``: one of :data:`TRACKING_STATES`, or None when the hub left it out."""
    error_message: str | None
    """``hubDeliveryErrorMessage``: why a delivery failed."""

    @classmethod
    def of(cls, value: Any) -> HubHeader:
        """The header of a zeep ``EnvelopeHeader`` (or ``Envelope``) value."""
        return cls(
            from_=str(value["From"] or ""),
            to=str(value["To"] or ""),
            certificate_type=int(value["CertificateType"] or 0),
            certificate_status=int(value["CertificateStatus"] or 0),
            certificate_number=str(value["NPPOCertificateNumber"] or ""),
            hub_number=value["hubDeliveryNumber"],
            tracking=value["HUBTrackingInfo"],
            error_message=value["hubDeliveryErrorMessage"],
        )

    def to_xml(self) -> bytes:
        """The header as an ``EnvelopeHeader`` element of the hub's namespace (what a delivery keeps as receipt)."""
        root = etree.Element(f"{{{HUB_NS}}}EnvelopeHeader", nsmap={"hub": HUB_NS})
        values = (
            self.from_,
            self.to,
            str(self.certificate_type),
            str(self.certificate_status),
            self.certificate_number,
            self.hub_number,
            self.tracking,
            self.error_message,
        )
        for name, text in zip(HEADER_FIELDS, values, strict=True):
            if text is not None:
                etree.SubElement(root, f"{{{HUB_NS}}}{name}").text = text
        return serialize(root)


@dataclass(frozen=True)
class HubEnvelope:
    """An import pulled from the hub: its header and ``Content`` (the certificate as text)."""

    header: HubHeader
    content: str


def translate_error(exc: BaseException, url: str) -> PartnerUnavailable | PartnerRejected:
    """The gateway error for a zeep / requests / socket failure while calling the hub at ``url``."""
    return translate_soap_error(
        exc,
        url,
        partner="the IPPC hub at {url}",
        url_kind="IPPC hub",
        client="the IPPC hub client",
        fault_message=(f"{{{SERVICE_NS}}}message", "hub_message"),
    )


class HubClient(SoapService):
    """The hub's ``DeliveryService`` at ``url`` (a :class:`~adapters.soap.SoapService`, strict, every failure
    translated by :func:`translate_error`)."""

    def __init__(
        self, url: str, *, wsdl: str | None, tls: TlsOptions, timeout: float, tls_field: str = "options.tls"
    ) -> None:
        super().__init__(
            url,
            wsdl=wsdl or hub_wsdl_path(),
            ssl_context=client_ssl_context(tls, field=tls_field),
            timeout=timeout,
            translate=translate_error,
        )

    async def deliver(self, envelope: dict[str, Any]) -> HubHeader | None:
        """``DeliverEnvelope(env)``: the header the hub answers (None: it answered none)."""
        result = await self.call("DeliverEnvelope", env=envelope)
        return None if result is None else HubHeader.of(result)

    async def tracking(self, number: str) -> HubHeader | None:
        """``GetEnvelopeTrackingInfo(hubTrackingNumber)``: the envelope's header with its delivery state."""
        result = await self.call("GetEnvelopeTrackingInfo", hubTrackingNumber=number)
        return None if result is None else HubHeader.of(result)

    async def pull(self) -> list[HubEnvelope]:
        """``PULLImportEnvelope()``: every envelope the hub holds for us, not yet acknowledged."""
        result = await self.call("PULLImportEnvelope")
        if result is None:
            items = []
        elif isinstance(result, list):  # zeep answers a one-field array type as the list of its items
            items = result
        else:
            items = result["Envelope"] or []
        return [HubEnvelope(HubHeader.of(item), str(item["Content"] or "")) for item in items if item is not None]

    async def acknowledge(self, number: str) -> None:
        """``AcknowledgeEnvelopeReceipt(hubTrackingNumber)``: the import is ours; the hub marks it delivered."""
        await self.call("AcknowledgeEnvelopeReceipt", hubTrackingNumber=number)

    async def acknowledge_failed(self, number: str, message: str) -> None:
        """``AcknowledgeFailedEnvelopeReceipt(hubTrackingNumber, message)``: the import was refused (the exporting
        NPPO sees ``FailedDelivery`` with ``message``)."""
        await self.call("AcknowledgeFailedEnvelopeReceipt", hubTrackingNumber=number, message=message)
