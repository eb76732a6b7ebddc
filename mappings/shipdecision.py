"""The ``ship-decision`` format: an agency's decision on a ship call as signed XML (docs/ship-calls.md).

A port authority, border guard, health or customs office answers a ship call with a ``ShipCallDecision``
document in the namespace :data:`NAMESPACE`, validated against the XSD written for this gateway
(``mappings/schemas/shipcall/ship-decision-1.xsd``). Being XML, it carries an enveloped XMLDSig signature that
the intake verifies like that of every other XML format; the harmonized JSON of a decision carries none.

========================  =====================================  ==========================================
native element            harmonized path                        notes
========================  =====================================  ==========================================
``TypeCode``              ``document.type_code``                 the document type's code (``FAL-DEC``)
``Call``                  ``ship_call_decision.call``            the version of the call decided on
``Answer``                ``ship_call_decision.answer``          ``accepted``, ``accepted_with_conditions``,
                                                                 ``refused``
``DecidedAt``             ``ship_call_decision.decided_at``      optional, ISO 8601 with offset
``Reason`` (repeated)     ``ship_call_decision.reasons``         why the call was refused
``Condition`` (repeated)  ``ship_call_decision.conditions``      the conditions of an acceptance
========================  =====================================  ==========================================

Reading is lenient (namespaces ignored, unknown elements skipped, empty elements absent); writing is strict
(``TypeCode``, ``Call`` and ``Answer`` are required, then the XSD). Which decision answers which delivery of a
version is the transport's business (the decision's ``X-Reference``, :mod:`gateway.shipcalls`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from lxml import etree

from gateway.errors import ValidationFailed, ValidationIssue
from mappings.model import TradeMessage
from mappings.registry import MessageFormat, build_message, register
from mappings.xmlformat import assert_valid, load_schema, local_name, parse_root, to_bytes

__all__ = ["NAMESPACE", "ROOT", "XSD", "ShipDecisionFormat"]

NAMESPACE = "urn:nswgw:ship-call:decision:1"
ROOT = "ShipCallDecision"
XSD = "shipcall/ship-decision-1.xsd"
_SINGLE = (("TypeCode", "type_code"), ("Call", "call"), ("Answer", "answer"), ("DecidedAt", "decided_at"))
_REPEATED = (("Reason", "reasons"), ("Condition", "conditions"))


def _q(tag: str) -> str:
    return f"{{{NAMESPACE}}}{tag}"


def _text(el: etree._Element) -> str | None:
    text = (el.text or "").strip()
    return text or None


class ShipDecisionFormat(MessageFormat):
    """An agency's decision on a ship call (``ShipCallDecision``, namespace :data:`NAMESPACE`)."""

    name = "ship-decision"
    media_type = "application/xml"
    description = "An agency's decision on a ship call (accepted, with conditions, refused), signed XML."

    def parse(self, data: bytes) -> TradeMessage:
        root = parse_root(data)
        if local_name(root) != ROOT:
            issue = ValidationIssue(
                f"/{local_name(root)}", "ROOT_UNEXPECTED", f"the {self.name} root element is {ROOT}"
            )
            raise ValidationFailed([issue])
        single: dict[str, str] = {}
        repeated: dict[str, list[str]] = {key: [] for _, key in _REPEATED}
        names = dict(_SINGLE)
        lists = dict(_REPEATED)
        for child in root:
            if not isinstance(child.tag, str):
                continue
            tag, text = local_name(child), _text(child)
            if text is None:
                continue
            if tag in names:
                single.setdefault(names[tag], text)
            elif tag in lists:
                repeated[lists[tag]].append(text)
        decision: dict[str, Any] = {k: v for k, v in single.items() if k != "type_code"}
        decision.update({k: tuple(v) for k, v in repeated.items() if v})
        if "decided_at" in decision:
            decision["decided_at"] = _datetime(decision["decided_at"], f"/{ROOT}/DecidedAt")
        message: dict[str, Any] = {"ship_call_decision": decision}
        if "type_code" in single:
            message["document"] = {"type_code": single["type_code"]}
        return build_message(message)

    def emit(self, msg: TradeMessage) -> bytes:
        decision = msg.ship_call_decision
        code = msg.document.type_code if msg.document is not None else None
        issues: list[ValidationIssue] = []
        for path, value in (
            ("document.type_code", code),
            ("ship_call_decision.call", decision.call if decision is not None else None),
            ("ship_call_decision.answer", decision.answer if decision is not None else None),
        ):
            if not value:
                issues.append(ValidationIssue(path, "NATIVE_REQUIRED_MISSING", f"{self.name} requires {path}"))
        if issues or decision is None:
            raise ValidationFailed(issues)
        root = etree.Element(_q(ROOT), nsmap={None: NAMESPACE})
        etree.SubElement(root, _q("TypeCode")).text = code
        etree.SubElement(root, _q("Call")).text = decision.call
        etree.SubElement(root, _q("Answer")).text = decision.answer.value if decision.answer is not None else None
        if decision.decided_at is not None:
            at = decision.decided_at
            etree.SubElement(root, _q("DecidedAt")).text = (at if at.tzinfo else at.replace(tzinfo=dt.UTC)).isoformat()
        for reason in decision.reasons:
            etree.SubElement(root, _q("Reason")).text = reason
        for condition in decision.conditions:
            etree.SubElement(root, _q("Condition")).text = condition
        assert_valid(load_schema(XSD), root)
        return to_bytes(root)

    def mapping_table(self) -> list[tuple[str, str]]:
        return [
            (f"/{ROOT}/{tag}", "document.type_code" if key == "type_code" else f"ship_call_decision.{key}")
            for tag, key in (*_SINGLE, *_REPEATED)
        ]


def _datetime(text: str, where: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationFailed(
            [ValidationIssue(where, "MODEL_INVALID", f"{text!r} is not an ISO 8601 date-time")]
        ) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


register(ShipDecisionFormat)
