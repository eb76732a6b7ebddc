"""VNSW ministry SOAP (SOAP 1.1, the Envelope carried as a string), both directions.

* :mod:`adapters.vnsw_soap.inbound`: :class:`VnswSoapEndpoint`, inbound endpoint ``vnsw-soap``:
  ``receiveRequest(requestPayload)`` answered synchronously with the function-99 acknowledgement or the
  function-00 error list; serves its WSDL (``wsdl/vnsw_receive.wsdl``) at ``?wsdl``;
* :mod:`adapters.vnsw_soap.outbound`: :class:`VnswSoapAdapter`, adapter ``vnsw-soap``: a zeep client calling a
  ministry's ``receiveRequest(officeCode, documentType, requestPayload)`` (``wsdl/vnsw_gateway.wsdl``);
* :mod:`adapters.vnsw_soap.envelope`: reading the VNSW header, writing the 99/00 answers.
"""

from adapters.vnsw_soap.envelope import (
    NSW_IDENTITY,
    AckAnswer,
    VnswHeader,
    ack_envelope,
    error_envelope,
    read_answer,
    read_header,
)
from adapters.vnsw_soap.inbound import VnswSoapEndpoint, read_soap_request, soap_fault, soap_response
from adapters.vnsw_soap.outbound import VnswSoapAdapter, translate_error

__all__ = [
    "NSW_IDENTITY",
    "AckAnswer",
    "VnswHeader",
    "VnswSoapAdapter",
    "VnswSoapEndpoint",
    "ack_envelope",
    "error_envelope",
    "read_answer",
    "read_header",
    "read_soap_request",
    "soap_fault",
    "soap_response",
    "translate_error",
]
