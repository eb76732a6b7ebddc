"""The IPPC ePhyto hub (``ippc-hub``), both directions: SPS certificates out, imports in.

* :mod:`adapters.ippc.outbound`: :class:`IppcHubAdapter`, adapter ``ippc-hub``: ``DeliverEnvelope`` of an SPS
  certificate, then ``GetEnvelopeTrackingInfo`` until ``Delivered`` (the receipt) or ``FailedDelivery``
  (dead-lettered with the hub's reason); ``PendingDelivery`` is retried, the hub's envelope number kept in the
  destination's state so a retry never delivers twice;
* :mod:`adapters.ippc.inbound`: :class:`IppcHubSource`, inbound endpoint ``ippc-hub``: pulls the imports
  addressed to us (``PULLImportEnvelope``), submits each as a configured party, acknowledges
  (``AcknowledgeEnvelopeReceipt``) only after the broker's durable acceptance;
* :mod:`adapters.ippc.hub`: the zeep client of the packaged WSDL (``wsdl/``, sources in ``wsdl/SOURCES.md``) and
  the translation of its errors.
"""

from adapters.ippc.hub import HubClient, HubEnvelope, HubHeader, translate_error
from adapters.ippc.inbound import IppcHubSource, IppcHubSourceOptions
from adapters.ippc.outbound import IppcHubAdapter, IppcHubOptions, certificate_facts

__all__ = [
    "HubClient",
    "HubEnvelope",
    "HubHeader",
    "IppcHubAdapter",
    "IppcHubOptions",
    "IppcHubSource",
    "IppcHubSourceOptions",
    "certificate_facts",
    "translate_error",
]
