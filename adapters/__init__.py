"""Pluggable adapters per ministry and ASEAN partner (VNSW SOAP, REST/JSON, AS4, file drop, IPPC ePhyto hub).

Contract and registries: the core's ports, :mod:`gateway.ports` (outbound :class:`~gateway.ports.Adapter`, alias
table ``BUILTIN_ADAPTERS``, entry points ``nsw.adapters``; inbound :class:`~gateway.ports.InboundEndpoint`,
``BUILTIN_INBOUND``, entry points ``nsw.inbound``, configured as ``[inbound.NAME]``).

Each adapter and endpoint class declares its options as ``Options``, a frozen pydantic model documented in its
module (``HttpOptions``, ``As4Options``, ``FileDropInboxOptions``...); ``[destinations.NAME.options]`` and
``[inbound.NAME.options]`` are validated against it when the configuration is loaded, relative paths relative to
the configuration file. Field types shared by several adapters (keys, trust stores, certificates):
:mod:`adapters.options`; what the zeep-based SOAP adapters share (TLS transport, ``wsdl`` option, error
translation): :mod:`adapters.soap`.

Aliases, each with its outbound adapter and inbound endpoint:

``http``/``https``
    out: :mod:`adapters.http` POST to the partner; in: the gateway API ``POST /v1/messages``
``vnsw-soap``
    out: :mod:`adapters.vnsw_soap.outbound` zeep ``receiveRequest(officeCode, documentType, requestPayload)``;
    in: :mod:`adapters.vnsw_soap.inbound` SOAP 1.1 ``receiveRequest(requestPayload)`` + ``?wsdl``
``webhook``
    out: :mod:`adapters.rest` signed JSON POST (detached JWS); in: none
``mailbox`` / ``poll``
    out: :mod:`adapters.rest` durable per-party mailbox; in: ``GET /v1/results``, ``POST /v1/results/{id}/ack``
``filedrop``
    out: :mod:`adapters.filedrop` atomic write to ``outbox/``; in: watched ``inbox/`` → ``processed/`` / ``error/``
``as4``
    out: :mod:`adapters.as4` ebMS 3.0; in: :class:`adapters.as4.As4Receiver`
``ippc-hub`` (entry points ``nsw.adapters`` / ``nsw.inbound``)
    out: :mod:`adapters.ippc.outbound` zeep ``DeliverEnvelope`` of an SPS certificate to the IPPC ePhyto hub, then
    ``GetEnvelopeTrackingInfo`` until ``Delivered`` (the receipt) or ``FailedDelivery``; in:
    :mod:`adapters.ippc.inbound` polls ``PULLImportEnvelope``, acknowledges each import after durable acceptance
"""
