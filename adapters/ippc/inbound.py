"""``ippc-hub`` inbound: pull the imports the IPPC ePhyto hub holds for us into the gateway.

Configured as ``[inbound.NAME] endpoint = "ippc-hub"`` with options (:class:`IppcHubSourceOptions`, validated at
config load)::

    [inbound.ippc]
    endpoint = "ippc-hub"

    [inbound.ippc.options]
    url = "https://hub.ephytoexchange.org/hub/DeliveryService"
    nppo = "VN"
    party = "IPPC-HUB"
    document_type = "sps.phyto"
    tls = { client_certificate = "keys/nppo-vn.pem" }

* ``url`` (required): the hub's ``DeliveryService`` URL;
* ``nppo`` (required): our NPPO's country code (ISO 3166-1 alpha-2); an envelope addressed to another ``To`` is
  acknowledged as failed, never taken;
* ``party`` (required): the gateway party (a ``[parties]`` name) the hub's envelopes are submitted as;
* ``document_type`` (required): the document type they are submitted with (``sps.phyto``), one ``party`` may
  send;
* ``format`` (default ``sps``): the format they are submitted in (the ``sps`` mapping validates them);
* ``poll_interval`` (default 60 s): seconds between two pulls;
* ``timeout`` (default 30 s): seconds for one SOAP call;
* ``tls``, ``wsdl``: as for the outbound adapter (:mod:`adapters.ippc.outbound`).

No routes: a background task (:meth:`IppcHubSource.start`) pulls every ``poll_interval``
(``PULLImportEnvelope``: every envelope the hub holds for us, not yet acknowledged) and submits each through the
broker's intake as ``party``, with the hub's envelope number (``hubDeliveryNumber``) as message id and
``<From>:<NPPOCertificateNumber>`` as conversation (a replacement certificate is ordered after the one it
replaces). Only once the broker has durably taken an envelope is it acknowledged:

* accepted (new or a duplicate): ``AcknowledgeEnvelopeReceipt``;
* refused, stored as rejected or refused before it was stored (a client error: ``VALIDATION_FAILED``,
  ``XML_MALFORMED``, ``AUTH_FORBIDDEN``...): ``AcknowledgeFailedEnvelopeReceipt`` with ``CODE: message``, so the
  exporting NPPO sees ``FailedDelivery``;
* the gateway could not take it (``STORE_UNAVAILABLE``...): no acknowledgement; the next pull brings it again.

A crash, a stop or a failed acknowledgement between acceptance and acknowledgement leaves the envelope at the
hub: the next pull submits it again, the broker answers it as a duplicate of the same message id (nothing is
stored or delivered twice) and it is acknowledged then. A failed pull or acknowledgement is logged and retried
at the next poll. Errors: :mod:`adapters.ippc.hub`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from adapters.ippc.hub import HubClient, HubEnvelope
from adapters.options import TlsOptions
from adapters.soap import relative_to_config
from gateway.config import Config
from gateway.errors import ConfigError, NswError, Origin, PartnerError, RequestInvalid
from gateway.model import PartyId, SubmissionEnvelope
from gateway.ports import AdapterState, InboundEndpoint, Intake

__all__ = ["IppcHubSource", "IppcHubSourceOptions"]

log = logging.getLogger("nswgw.ippc")


class IppcHubSourceOptions(BaseModel):
    """``[inbound.NAME.options]`` of the ``ippc-hub`` endpoint."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    url: str = Field(pattern=r"^https?://[^/\s]+")
    """The hub's ``DeliveryService`` URL."""
    nppo: str = Field(pattern=r"^[A-Z]{2}$")
    """Our NPPO's country code (ISO 3166-1 alpha-2): the ``To`` of the envelopes taken."""
    party: str = Field(min_length=1)
    """The gateway party (a ``[parties]`` name) the hub's envelopes are submitted as."""
    document_type: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
    """The document type the hub's envelopes are submitted with."""
    format: str = Field("sps", pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
    """The format they are submitted in (``sps``: UN/CEFACT SPSCertificate)."""
    poll_interval: float = Field(60.0, gt=0)
    """Seconds between two pulls."""
    timeout: float = Field(30.0, gt=0)
    """Seconds for one SOAP call."""
    tls: TlsOptions = TlsOptions()
    """TLS towards the hub: the NPPO's client certificate, CA bundle, minimum version."""
    wsdl: str | None = None
    """The WSDL: a file (relative to the configuration file) or a URL (default: the packaged one)."""

    @field_validator("wsdl")
    @classmethod
    def _relative_to_config(cls, value: str | None, info: ValidationInfo) -> str | None:
        return relative_to_config(value, info)


class IppcHubSource(InboundEndpoint):
    """Pulls the hub's imports for us, submits each as the configured party, acknowledges what was taken."""

    scheme: ClassVar[str] = "ippc-hub"
    Options: ClassVar[type[BaseModel]] = IppcHubSourceOptions
    options: IppcHubSourceOptions

    def __init__(
        self,
        name: str = "ippc",
        *,
        options: BaseModel | Mapping[str, Any] | None = None,
        state: AdapterState | None = None,
    ) -> None:
        super().__init__(name, options=options, state=state)
        self.hub = HubClient(
            self.options.url,
            wsdl=self.options.wsdl,
            tls=self.options.tls,
            timeout=self.options.timeout,
            tls_field=f"inbound.{name}.options.tls",
        )
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def check_config(cls, options: BaseModel, config: Config, *, field: str) -> None:
        assert isinstance(options, IppcHubSourceOptions)
        party = config.parties.get(options.party)
        if party is None:
            raise ConfigError(
                f"party {options.party!r} is not configured; known parties: {', '.join(sorted(config.parties))}",
                field=f"{field}.party",
            )
        if not party.may_send(options.document_type):  # else every import would be refused back to the hub
            raise ConfigError(
                f"party {options.party!r} may not send {options.document_type!r} (parties.{options.party}."
                "document_types)",
                field=f"{field}.document_type",
            )

    async def start(self, intake: Intake) -> None:
        self.hub.open()
        self._task = asyncio.create_task(self._run(intake), name=f"ippc-hub pull {self.name}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self.hub.close()

    async def _run(self, intake: Intake) -> None:
        while True:
            try:
                await self.poll(intake)
            except NswError as exc:
                log.warning("incident %s: pulling from the IPPC hub failed: %s", exc.incident_id, exc)
            except Exception:  # noqa: BLE001 - a bug in one round must not end the pulling
                log.exception("pulling from the IPPC hub failed")
            await asyncio.sleep(self.options.poll_interval)

    async def poll(self, intake: Intake) -> int:
        """Pull once and take every envelope; how many were acknowledged (as received or as failed)."""
        acknowledged = 0
        for envelope in await self.hub.pull():
            if await self.take(intake, envelope):
                acknowledged += 1
        return acknowledged

    def envelope_for(self, envelope: HubEnvelope) -> SubmissionEnvelope:
        """The broker envelope of a pulled import (:class:`RequestInvalid` for a hub number that is no message
        id)."""
        header = envelope.header
        fields: dict[str, Any] = {
            "sender": PartyId(self.options.party),
            "message_id": header.hub_number or "",
            "document_type": self.options.document_type,
            "format": self.options.format,
        }
        try:
            return SubmissionEnvelope(**fields, conversation_id=f"{header.from_}:{header.certificate_number}")
        except RequestInvalid as exc:
            if exc.field != "X-Conversation-Id":
                raise
            return SubmissionEnvelope(**fields)  # a certificate number that is no conversation id: its own

    async def take(self, intake: Intake, envelope: HubEnvelope) -> bool:
        """Submit one pulled envelope and acknowledge it once the broker has taken it; whether it was
        acknowledged."""
        number = envelope.header.hub_number
        party = self.options.party
        if not number:
            log.warning("the IPPC hub sent an envelope without hubDeliveryNumber: it cannot be acknowledged")
            return False
        try:
            if envelope.header.to != self.options.nppo:
                raise RequestInvalid(
                    f"envelope {number} is addressed to {envelope.header.to!r}, not to {self.options.nppo}",
                    field="EnvelopeHeader/To",
                )
            result = await intake.submit(PartyId(party), self.envelope_for(envelope), envelope.content.encode("utf-8"))
        except NswError as exc:
            if exc.origin is not Origin.CLIENT:
                log.warning("incident %s: IPPC envelope %s not taken, pulled again: %s", exc.incident_id, number, exc)
                return False
            log.info("incident %s: IPPC envelope %s refused: %s", exc.incident_id, number, exc)
            intake.refused(exc, party, self.name)
            return await self._acknowledge(number, f"{exc.code}: {exc.message}")
        error = result.ack.error
        if error is not None:
            return await self._acknowledge(number, f"{error.get('code')}: {error.get('message')}")
        return await self._acknowledge(number, None)

    async def _acknowledge(self, number: str, failure: str | None) -> bool:
        try:
            if failure is None:
                await self.hub.acknowledge(number)
            else:
                await self.hub.acknowledge_failed(number, failure[:1000])
        except PartnerError as exc:
            log.warning("incident %s: IPPC envelope %s taken, acknowledgement failed: %s", exc.incident_id, number, exc)
            return False
        return True
