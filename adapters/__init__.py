"""Pluggable adapters per ministry and ASEAN partner (VNSW SOAP, REST/JSON, AS4, file drop).

Contract and registries: :mod:`adapters.base` (outbound :class:`~adapters.base.Adapter`, alias table
``BUILTIN_ADAPTERS``, entry points ``nsw.adapters``; inbound :class:`~adapters.base.InboundEndpoint`,
``BUILTIN_INBOUND``, entry points ``nsw.inbound``, configured as ``[inbound.NAME]``).

| alias | outbound adapter | inbound endpoint |
|---|---|---|
| ``http``/``https`` | :mod:`adapters.http` POST to the partner | the gateway API ``POST /v1/messages`` |
| ``vnsw-soap`` | :mod:`adapters.vnsw_soap.outbound` zeep ``receiveRequest(officeCode, documentType, requestPayload)`` | :mod:`adapters.vnsw_soap.inbound` SOAP 1.1 ``receiveRequest(requestPayload)`` + ``?wsdl`` |
| ``webhook`` | :mod:`adapters.rest` signed JSON POST (detached JWS) | |
| ``mailbox`` / ``poll`` | :mod:`adapters.rest` durable per-party mailbox | ``GET /v1/results``, ``POST /v1/results/{id}/ack`` |
| ``filedrop`` | :mod:`adapters.filedrop` atomic write to ``outbox/`` | watched ``inbox/`` → ``processed/`` / ``error/`` |
| ``as4`` | :mod:`adapters.as4` ebMS 3.0 | :class:`adapters.as4.As4Receiver` |
"""
