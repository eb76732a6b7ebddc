"""A simulated IPPC ePhyto hub on 127.0.0.1: the ``DeliveryService`` operations of the hub's WSDL
(``adapters/ippc/wsdl/ippc-ephyto-hub-DeliveryService.wsdl``) written by hand with lxml, not with zeep, so that the
gateway's zeep client (strict schema checking of every answer) tests its requests and our answers against the WSDL.

Operations: ``DeliverEnvelope``, ``GetEnvelopeTrackingInfo``, ``GetUnderDeliveryEnvelope``,
``PULLImportEnvelope``, ``AcknowledgeEnvelopeReceipt``, ``AcknowledgeFailedEnvelopeReceipt``; ``GET ?wsdl``
serves the WSDL. Requests must carry the ``SOAPAction`` the WSDL's binding names.

Failure states: ``pending_polls`` (tracking answers ``PendingDelivery`` that many times per envelope before
``final``), ``final`` (``Delivered``, ``FailedDelivery``, ``DeliveredNotReadable``...) with ``reason``,
``unavailable`` (the next N requests get HTTP 503), ``faults`` (operation names answered with a
``HubWebException`` SOAP fault), ``ack_failures`` (the next N acknowledgements get HTTP 503).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

from aiohttp import web
from lxml import etree

from adapters.ippc.hub import HEADER_FIELDS, HUB_NS, SERVICE_NS, hub_wsdl_path
from gateway.ports import Adapter
from helpers.adapters import Harness
from helpers.gateway import eventually

SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
ACTION = "http://ephyto.ippc.int/IDeliveryService/"


def _h(name: str) -> str:
    return f"{{{HUB_NS}}}{name}"


def _s(name: str) -> str:
    return f"{{{SERVICE_NS}}}{name}"


class SimulatedHub:
    """The hub: envelopes delivered to it (``delivered``), imports waiting for us (``imports``), what it was asked."""

    def __init__(
        self,
        *,
        pending_polls: int = 0,
        final: str = "Delivered",
        reason: str | None = None,
        unavailable: int = 0,
        faults: tuple[str, ...] = (),
        ack_failures: int = 0,
    ) -> None:
        self.pending_polls = pending_polls
        self.final = final
        self.reason = reason
        self.unavailable = unavailable
        self.faults = set(faults)
        self.ack_failures = ack_failures
        self.delivered: dict[str, dict[str, str]] = {}
        """hubDeliveryNumber → the envelope's fields (``Content`` included) as delivered."""
        self.imports: dict[str, dict[str, str]] = {}
        """hubDeliveryNumber → an envelope waiting for us (removed once acknowledged)."""
        self.acknowledged: list[str] = []
        self.failed: list[tuple[str, str]] = []
        """``(hubDeliveryNumber, message)`` of each AcknowledgeFailedEnvelopeReceipt."""
        self.calls: Counter[str] = Counter()
        """Operation → requests answered (503s and faults included)."""
        self.tracked: Counter[str] = Counter()
        """hubDeliveryNumber → GetEnvelopeTrackingInfo calls."""
        self._count = 0
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.changed = asyncio.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hub/DeliveryService"

    async def start(self) -> SimulatedHub:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.add_routes([web.post("/hub/DeliveryService", self._handle), web.get("/hub/DeliveryService", self._wsdl)])
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SimulatedHub:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def add_import(
        self, content: bytes, *, sender: str = "TH", to: str = "VN", number: str = "", certificate: str = "TH-1"
    ) -> str:
        """Queue an envelope for us; its hubDeliveryNumber."""
        self._count += 1
        number = number or f"HUB-IN-{self._count:04d}"
        self.imports[number] = {
            "From": sender,
            "To": to,
            "CertificateType": "851",
            "CertificateStatus": "70",
            "NPPOCertificateNumber": certificate,
            "hubDeliveryNumber": number,
            "HUBTrackingInfo": "PendingDelivery",
            "Content": content.decode("utf-8"),
        }
        return number

    async def _wsdl(self, request: web.Request) -> web.Response:
        return web.Response(body=Path(hub_wsdl_path()).read_bytes(), content_type="text/xml")

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        root = etree.fromstring(raw, etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True))
        assert root.tag == f"{{{SOAP11}}}Envelope", root.tag
        body = root.find(f"{{{SOAP11}}}Body")
        assert body is not None, "a SOAP Envelope without Body"
        call = next(c for c in body if isinstance(c.tag, str))
        assert etree.QName(call).namespace == SERVICE_NS, call.tag
        operation = etree.QName(call).localname
        self.calls[operation] += 1
        self.changed.set()
        action = request.headers.get("SOAPAction", "").strip('"')
        assert action == ACTION + operation, (operation, action)
        if self.unavailable > 0:
            self.unavailable -= 1
            return web.Response(status=503, text="hub maintenance")
        if operation in self.faults:
            return self._fault(f"{operation} refused by the hub")
        handler = {
            "DeliverEnvelope": self._deliver,
            "GetEnvelopeTrackingInfo": self._tracking,
            "GetUnderDeliveryEnvelope": self._under_delivery,
            "PULLImportEnvelope": self._pull,
            "AcknowledgeEnvelopeReceipt": self._acknowledge,
            "AcknowledgeFailedEnvelopeReceipt": self._acknowledge_failed,
        }.get(operation)
        if handler is None:
            return self._fault(f"operation {operation} is not simulated")
        return handler(call)

    # ------------------------------------------------------------------ operations

    def _deliver(self, call: etree._Element) -> web.Response:
        env = call.find(_s("env"))
        assert env is not None, "DeliverEnvelope without env"
        fields = {etree.QName(c).localname: c.text or "" for c in env if isinstance(c.tag, str)}
        assert all(etree.QName(c).namespace == HUB_NS for c in env if isinstance(c.tag, str))
        for name in ("From", "To", "CertificateType", "CertificateStatus", "NPPOCertificateNumber", "Content"):
            if not fields.get(name):
                return self._fault(f"the envelope has no {name}")
        self._count += 1
        number = f"HUB-{self._count:04d}"
        self.delivered[number] = {**fields, "hubDeliveryNumber": number, "pending": str(self.pending_polls)}
        return self._answer("DeliverEnvelopeResponse", "DeliverEnvelopeResult", self._header(number, "PendingDelivery"))

    def _state(self, number: str) -> tuple[str, str | None]:
        envelope = self.delivered.get(number)
        if envelope is None:
            return "EnvelopeNotExists", None
        pending = int(envelope["pending"])
        if pending > 0:
            envelope["pending"] = str(pending - 1)
            return "PendingDelivery", None
        return self.final, self.reason

    def _tracking(self, call: etree._Element) -> web.Response:
        number = call.findtext(_s("hubTrackingNumber")) or ""
        self.tracked[number] += 1
        state, reason = self._state(number)
        header = self._header(number, state, reason)
        return self._answer("GetEnvelopeTrackingInfoResponse", "GetEnvelopeTrackingInfoResult", header)

    def _under_delivery(self, call: etree._Element) -> web.Response:
        result = etree.Element(_s("GetUnderDeliveryEnvelopeResult"))
        for envelope in self.imports.values():
            result.append(self._fields("EnvelopeHeader", envelope))
        return self._respond("GetUnderDeliveryEnvelopeResponse", result)

    def _pull(self, call: etree._Element) -> web.Response:
        result = etree.Element(_s("PULLImportEnvelopesResult"))
        for envelope in self.imports.values():
            result.append(self._fields("Envelope", envelope, content=True))
        return self._respond("PULLImportEnvelopeResponse", result)

    def _acknowledge(self, call: etree._Element) -> web.Response:
        number = call.findtext(_s("hubTrackingNumber")) or ""
        if self.ack_failures > 0:
            self.ack_failures -= 1
            return web.Response(status=503, text="hub maintenance")
        if self.imports.pop(number, None) is None:
            return self._fault(f"no envelope {number} under delivery")
        self.acknowledged.append(number)
        return self._respond("AcknowledgeEnvelopeReceiptResponse", None)

    def _acknowledge_failed(self, call: etree._Element) -> web.Response:
        number = call.findtext(_s("hubTrackingNumber")) or ""
        if self.imports.pop(number, None) is None:
            return self._fault(f"no envelope {number} under delivery")
        self.failed.append((number, call.findtext(_s("message")) or ""))
        return self._respond("AcknowledgeFailedEnvelopeReceiptResponse", None)

    # ------------------------------------------------------------------ answers

    def _header(self, number: str, state: str, reason: str | None = None) -> dict[str, str]:
        envelope = self.delivered.get(number, {})
        header = {name: envelope.get(name, "") for name in HEADER_FIELDS[:5]}
        header["CertificateType"] = header["CertificateType"] or "0"
        header["CertificateStatus"] = header["CertificateStatus"] or "0"
        header["hubDeliveryNumber"] = number
        header["HUBTrackingInfo"] = state
        if reason is not None:
            header["hubDeliveryErrorMessage"] = reason
        return header

    def _fields(self, tag: str, values: dict[str, str], *, content: bool = False) -> etree._Element:
        """An element of the HUB.Entities ``EnvelopeHeader`` (or ``Envelope``) type, fields in schema order."""
        element = etree.Element(_h(tag))
        for name in HEADER_FIELDS + (("Content",) if content else ()):
            if name in values:
                etree.SubElement(element, _h(name)).text = values[name]
        return element

    def _answer(self, response: str, result: str, header: dict[str, str]) -> web.Response:
        element = self._fields(result, header)
        element.tag = _s(result)
        return self._respond(response, element)

    def _respond(self, response: str, result: etree._Element | None) -> web.Response:
        root = etree.Element(f"{{{SOAP11}}}Envelope", nsmap={"soap": SOAP11})
        body = etree.SubElement(root, f"{{{SOAP11}}}Body")
        wrapper = etree.SubElement(body, _s(response), nsmap={"ns2": SERVICE_NS, "ns1": HUB_NS})
        if result is not None:
            wrapper.append(result)
        return self._xml(root, 200)

    def _fault(self, message: str) -> web.Response:
        root = etree.Element(f"{{{SOAP11}}}Envelope", nsmap={"soap": SOAP11})
        fault = etree.SubElement(etree.SubElement(root, f"{{{SOAP11}}}Body"), f"{{{SOAP11}}}Fault")
        etree.SubElement(fault, "faultcode").text = "soap:Server"
        etree.SubElement(fault, "faultstring").text = message
        exception = etree.SubElement(
            etree.SubElement(fault, "detail"), _s("HubWebException"), nsmap={"ns2": SERVICE_NS}
        )
        etree.SubElement(exception, _s("message")).text = message
        return self._xml(root, 500)

    @staticmethod
    def _xml(root: etree._Element, status: int) -> web.Response:
        return web.Response(
            body=etree.tostring(root, xml_declaration=True, encoding="UTF-8"),
            status=status,
            content_type="text/xml",
            charset="utf-8",
        )


SPS_NS = "urn:un:unece:uncefact:data:standard:SPSCertificate:17"
RAM_NS = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:21"


def sps_certificate(number: str, *, importer: str = "TH") -> bytes:
    """The smallest SPSCertificate the hub's envelope needs: ``ID`` ``number``, type 851, status 70, ``importer``."""
    return (
        f'<rsm:SPSCertificate xmlns:rsm="{SPS_NS}" xmlns:ram="{RAM_NS}"><rsm:SPSExchangedDocument>'
        f"<ram:ID>{number}</ram:ID><ram:TypeCode>851</ram:TypeCode><ram:StatusCode>70</ram:StatusCode>"
        "</rsm:SPSExchangedDocument><rsm:SPSConsignment><ram:ImportSPSCountry>"
        f"<ram:ID>{importer}</ram:ID></ram:ImportSPSCountry></rsm:SPSConsignment></rsm:SPSCertificate>"
    ).encode()


class IppcHubHarness(Harness):
    """The adapter behaviour suite's partner side for ``ippc-hub``: a :class:`SimulatedHub`. ``down``: every
    request answered 503; ``reject``: ``DeliverEnvelope`` answered with a ``HubWebException`` fault; ``receive``:
    an import queued at the hub, pulled by :class:`~adapters.ippc.IppcHubSource` and acknowledged."""

    alias = "ippc-hub"
    document_type = "sps.permit"
    party = "MARD"

    async def start(self) -> None:
        self.hub = await SimulatedHub().start()

    async def stop(self) -> None:
        await self.hub.stop()

    def adapter(self) -> Adapter:
        from adapters.ippc import IppcHubAdapter

        return IppcHubAdapter(self.hub.url, timeout=5, options={"nppo": "VN", "tracking_interval": 0.02})

    def payload(self, message_id: str) -> bytes:
        return sps_certificate(message_id)

    def set_mode(self, mode: str) -> None:
        self.hub.unavailable = 10**6 if mode == "down" else 0
        self.hub.faults = {"DeliverEnvelope"} if mode == "reject" else set()

    def processed(self) -> list[str]:
        return [envelope["NPPOCertificateNumber"] for envelope in self.hub.delivered.values()]

    def inbound(self) -> list[Any]:
        from adapters.ippc import IppcHubSource

        options = {"url": self.hub.url, "nppo": "VN", "party": self.party, "document_type": self.document_type}
        return [IppcHubSource("ippc", options={**options, "format": "xml", "poll_interval": 0.05})]

    async def receive(self, gw: Any, message_id: str) -> str:
        from gateway.model import gateway_message_id

        self.hub.add_import(sps_certificate(message_id, importer="VN"), number=message_id)
        await eventually(lambda: message_id in self.hub.acknowledged)
        return gateway_message_id(self.party, message_id)
