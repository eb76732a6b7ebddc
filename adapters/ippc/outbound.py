"""``ippc-hub`` outbound: deliver SPS certificates to the IPPC ePhyto hub and track them until delivered.

Connection string: the hub's ``DeliveryService`` URL (``https://hub.ephytoexchange.org/hub/DeliveryService``;
UAT: ``https://uat-hub.ephytoexchange.org/hub/DeliveryService``).

::

    [destinations.IPPC]
    adapter = "ippc-hub"
    url = "https://hub.ephytoexchange.org/hub/DeliveryService"
    timeout = 60
    options = { nppo = "VN", tls = { client_certificate = "keys/nppo-vn.pem" } }

Options (:class:`IppcHubOptions`, validated at config load):

* ``nppo`` (required): our NPPO's country code (ISO 3166-1 alpha-2), the envelope's ``From``;
* ``tls`` (:class:`~adapters.options.TlsOptions`): the hub authenticates NPPOs by their client certificate
  (``client_certificate``/``client_key``), ``ca_bundle``, ``minimum_version``;
* ``operation_timeout``: seconds for one SOAP call (default: the destination's ``timeout``);
* ``tracking_interval`` (default 5 s): seconds between two ``GetEnvelopeTrackingInfo`` calls within one attempt;
* ``tracking_ttl`` (default 30 days): how long the hub's envelope number of a message is remembered;
* ``wsdl``: the WSDL to build the client from (default: the packaged one, :mod:`adapters.ippc.hub`).

Features: ``deliver``, ``receipt``. The payload is a UN/CEFACT ``SPSCertificate`` (what the ``sps`` mapping
emits); its ``SPSExchangedDocument`` gives ``NPPOCertificateNumber`` (``ID``), ``CertificateType``
(``TypeCode``) and ``CertificateStatus`` (``StatusCode``), its ``SPSConsignment/ImportSPSCountry/ID`` the
envelope's ``To``; the certificate travels as the envelope's ``Content`` (``DeliverEnvelope``). A payload
without them is :class:`~gateway.errors.RequestInvalid` naming the element (never retried).

The hub delivers asynchronously. The envelope number it answers (``hubDeliveryNumber``) is kept in the
destination's :class:`~gateway.ports.AdapterState` under the gateway's message id before anything else happens,
so a later attempt, on this node or another, asks the hub about that envelope instead of delivering it again.
Each attempt asks ``GetEnvelopeTrackingInfo`` every ``tracking_interval`` for as long as the destination's
``timeout`` allows:

* ``Delivered`` / ``DeliveredWithWarnings``: the receipt (the hub's ``EnvelopeHeader``, kept as the delivery's
  receipt, :meth:`~adapters.ippc.hub.HubHeader.to_xml`);
* ``FailedDelivery`` / ``DeliveredNotReadable``: :class:`~gateway.errors.PartnerRejected` with the hub's
  ``hubDeliveryErrorMessage`` (``details.reason``, ``details.tracking``, ``details.hub_delivery_number``):
  dead-lettered;
* ``PendingDelivery`` still when the attempt's time is up: :class:`~gateway.errors.PartnerUnavailable`, so the
  gateway's retry policy asks again later (the message dies at its time-to-live if the hub never settles);
* ``EnvelopeNotExists``: the remembered number is forgotten and the attempt is
  :class:`~gateway.errors.PartnerUnavailable`: the next one delivers the envelope again.

A ``DeliverEnvelope`` whose answer is lost (a timeout after the hub took it) cannot be told from one the hub
never saw: its retry delivers a second envelope, which the hub numbers anew. Errors: :mod:`adapters.ippc.hub`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from lxml import etree
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from adapters.ippc.hub import HubClient, HubHeader
from adapters.options import TlsOptions
from adapters.soap import relative_to_config
from gateway.errors import PartnerRejected, PartnerUnavailable, ReceiptInvalid, RequestInvalid
from gateway.ports import Adapter, AdapterState, OutboundMessage, Receipt, public_endpoint
from signing.xml import parse_xml

__all__ = ["IppcHubAdapter", "IppcHubOptions", "CertificateFacts", "certificate_facts"]

_SPS = "urn:un:unece:uncefact:data:standard:SPSCertificate:17"
_RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:21"
_DELIVERED = frozenset({"Delivered", "DeliveredWithWarnings"})
_FAILED = frozenset({"FailedDelivery", "DeliveredNotReadable"})


class IppcHubOptions(BaseModel):
    """``[destinations.NAME.options]`` of the ``ippc-hub`` adapter."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    nppo: str = Field(pattern=r"^[A-Z]{2}$")
    """Our NPPO's country code (ISO 3166-1 alpha-2): the ``From`` of every envelope."""
    tls: TlsOptions = TlsOptions()
    """TLS towards the hub: the NPPO's client certificate, CA bundle, minimum version."""
    operation_timeout: float | None = Field(None, gt=0)
    """Seconds for one SOAP call (default: the destination's ``timeout``)."""
    tracking_interval: float = Field(5.0, gt=0)
    """Seconds between two ``GetEnvelopeTrackingInfo`` calls within one delivery attempt."""
    tracking_ttl: float = Field(30 * 86400.0, gt=0)
    """Seconds the hub's envelope number of a message is remembered (longer than the destination's retry
    time-to-live, or a late attempt delivers again)."""
    wsdl: str | None = None
    """The WSDL: a file (relative to the configuration file) or a URL (default: the packaged one)."""

    @field_validator("wsdl")
    @classmethod
    def _relative_to_config(cls, value: str | None, info: ValidationInfo) -> str | None:
        return relative_to_config(value, info)


@dataclass(frozen=True)
class CertificateFacts:
    """What the hub's envelope header says about an SPS certificate."""

    number: str
    type_code: int
    status_code: int
    importer: str


def _text(root: etree._Element, path: str, where: str) -> str:
    found = root.findtext(path, namespaces={"rsm": _SPS, "ram": _RAM})
    if not found or not found.strip():
        raise RequestInvalid(f"the SPS certificate has no {where}", field=where)
    return found.strip()


def _code(root: etree._Element, path: str, where: str) -> int:
    text = _text(root, path, where)
    if not text.isdigit() or len(text) > 9:
        raise RequestInvalid(f"{where} must be a number for the IPPC hub, not {text[:20]!r}", field=where)
    return int(text)


def certificate_facts(payload: bytes) -> CertificateFacts:
    """The envelope header fields of a UN/CEFACT ``SPSCertificate``; :class:`RequestInvalid` naming the missing or
    malformed element (``XML_*`` for a payload that is not XML)."""
    root = parse_xml(payload)
    if root.tag != f"{{{_SPS}}}SPSCertificate":
        raise RequestInvalid(f"the IPPC hub carries SPS certificates, not {root.tag!s}", field="/SPSCertificate")
    doc = "rsm:SPSExchangedDocument"
    importer = _text(
        root, "rsm:SPSConsignment/ram:ImportSPSCountry/ram:ID", "/SPSCertificate/SPSConsignment/ImportSPSCountry/ID"
    )
    return CertificateFacts(
        number=_text(root, f"{doc}/ram:ID", "/SPSCertificate/SPSExchangedDocument/ID"),
        type_code=_code(root, f"{doc}/ram:TypeCode", "/SPSCertificate/SPSExchangedDocument/TypeCode"),
        status_code=_code(root, f"{doc}/ram:StatusCode", "/SPSCertificate/SPSExchangedDocument/StatusCode"),
        importer=importer,
    )


class IppcHubAdapter(Adapter):
    """Delivers SPS certificates through the IPPC ePhyto hub; the hub's ``Delivered`` state is the receipt."""

    scheme: ClassVar[str] = "ippc-hub"
    recoverable = Adapter.recoverable
    Options: ClassVar[type[BaseModel]] = IppcHubOptions
    options: IppcHubOptions

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 30.0,
        options: BaseModel | Mapping[str, Any] | None = None,
        state: AdapterState | None = None,
    ) -> None:
        super().__init__(url, timeout=timeout, options=options, state=state)
        self.hub = HubClient(
            url, wsdl=self.options.wsdl, tls=self.options.tls, timeout=self.options.operation_timeout or timeout
        )

    async def open(self) -> None:
        self.hub.open()

    async def close(self) -> None:
        self.hub.close()

    async def deliver(self, message: OutboundMessage) -> Receipt:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        stored = await self.state.get(message.message_id)
        if stored is not None:
            number = stored.decode("utf-8")
            header = await self.hub.tracking(number)
        else:
            number, header = await self._deliver(message)
        interval = self.options.tracking_interval
        while True:
            receipt = await self._settled(header, number, message)
            if receipt is not None:
                return receipt
            if loop.time() + interval > deadline:
                raise PartnerUnavailable(
                    f"the IPPC hub at {public_endpoint(self.url)} has not delivered envelope {number} yet "
                    "(PendingDelivery)",
                    field="HUBTrackingInfo",
                    details={"hub_delivery_number": number, "tracking": "PendingDelivery"},
                )
            await asyncio.sleep(interval)
            header = await self.hub.tracking(number)

    async def _deliver(self, message: OutboundMessage) -> tuple[str, HubHeader | None]:
        """``DeliverEnvelope`` the certificate; the hub's envelope number, remembered before it is tracked."""
        facts = certificate_facts(message.payload)
        try:
            content = message.payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RequestInvalid("the IPPC hub's envelope Content must be UTF-8 text", field="Content") from exc
        header = await self.hub.deliver(
            {
                "From": self.options.nppo,
                "To": facts.importer,
                "CertificateType": facts.type_code,
                "CertificateStatus": facts.status_code,
                "NPPOCertificateNumber": facts.number,
                "Content": content,
            }
        )
        if header is None or not header.hub_number:
            raise ReceiptInvalid(
                f"the IPPC hub at {public_endpoint(self.url)} answered DeliverEnvelope without a hubDeliveryNumber",
                field="DeliverEnvelopeResult/hubDeliveryNumber",
            )
        await self.state.put(message.message_id, header.hub_number.encode("utf-8"), ttl=self.options.tracking_ttl)
        return header.hub_number, header

    async def _settled(self, header: HubHeader | None, number: str, message: OutboundMessage) -> Receipt | None:
        """The receipt of a delivered envelope, None while it is pending; raises for a failed or unknown one."""
        tracking = header.tracking if header is not None else None
        shown = public_endpoint(self.url)
        if header is not None and tracking in _DELIVERED:
            return Receipt(message_id=message.message_id, raw=header.to_xml(), status=200)
        if header is not None and tracking in _FAILED:
            reason = header.error_message or "no reason given"
            raise PartnerRejected(
                f"the IPPC hub at {shown} could not deliver envelope {number} to {header.to or '?'} "
                f"({tracking}): {reason}",
                field="HUBTrackingInfo",
                details={"hub_delivery_number": number, "tracking": tracking, "reason": header.error_message},
            )
        if tracking == "PendingDelivery":
            return None
        if tracking == "EnvelopeNotExists":
            await self.state.delete(message.message_id)
            raise PartnerUnavailable(
                f"the IPPC hub at {shown} knows no envelope {number}: it is delivered again",
                field="HUBTrackingInfo",
                details={"hub_delivery_number": number, "tracking": tracking},
            )
        raise ReceiptInvalid(
            f"the IPPC hub at {shown} answered no delivery state for envelope {number}",
            field="HUBTrackingInfo",
            details={"hub_delivery_number": number},
        )
