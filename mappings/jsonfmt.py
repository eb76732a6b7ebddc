"""The ``json`` format: the harmonized model itself, for REST clients.

The JSON body is :class:`~mappings.model.TradeMessage` serialized by pydantic (decimals as strings,
timestamps as ISO 8601 with offset); ``None`` fields are left out. ``TradeMessage.model_json_schema()``
is its JSON Schema.
"""

from __future__ import annotations

from pydantic import ValidationError

from gateway.errors import ValidationFailed, ValidationIssue
from gateway.model import CertificateAct
from mappings.model import TradeMessage
from mappings.registry import MessageFormat, certificate_act, loc_to_path, register

__all__ = ["JsonFormat"]


class JsonFormat(MessageFormat):
    """The harmonized model as JSON."""

    name = "json"
    media_type = "application/json"
    description = "The harmonized data set as JSON (pydantic serialization of TradeMessage), for REST clients."

    def parse(self, data: bytes) -> TradeMessage:
        try:
            return TradeMessage.model_validate_json(data)
        except ValidationError as exc:
            issues = []
            for e in exc.errors():
                code = "JSON_INVALID" if e["type"] == "json_invalid" else "MODEL_INVALID"
                issues.append(ValidationIssue(loc_to_path(e["loc"]), code, e["msg"]))
            raise ValidationFailed(issues) from None

    def certificate(self, data: bytes) -> CertificateAct | None:
        """:func:`~mappings.registry.certificate_act` of the message (harmonized paths); ``None`` when it cannot
        be read (:meth:`parse` reports why)."""
        try:
            return certificate_act(self.read(data))
        except ValidationFailed:
            return None

    def emit(self, msg: TradeMessage) -> bytes:
        return msg.model_dump_json(indent=2, exclude_none=True).encode("utf-8") + b"\n"


register(JsonFormat)
