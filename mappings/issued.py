"""What a document does to the registry of issued documents (:mod:`gateway.registry`), from the harmonized model
alone, for every format; and the ``registry.utilization`` report customs sends to draw quantities down.

:func:`issued_act` reads any :class:`~mappings.model.TradeMessage`:

* a permit or licence decision (``permit.decision`` ``issued`` or ``amended`` with ``permit.number``: the MARD
  quarantine dispatches and pesticide licence, any ministry's decision in JSON) is issued or amended, as its type
  the procedure code (``permit.procedure_code``, else ``document.type_code``);
* a certificate of origin (``origin_certificate``, ``861``) is issued; an amendment is a new certificate that
  supersedes the one it names (the superseded one's status comes from the certificate's own lifecycle);
* any other document with a number and a UN/EDIFACT 1001 type code (an SPS certificate, ``851``) is issued;
* UN/EDIFACT 1225 status ``1`` (cancellation) cancels the document it is, ``5`` (replace) amends it.

Its holder is the first identifier of the declarant, consignee or exporter; its validity runs from
``permit.decision_date`` or ``document.issue_date`` to ``permit.valid_until`` (a certificate of origin without
one: a year from issue, as ATIGA Rule 9 has it). Each goods item with an HS code is a line (without one, a
native ``commodity_code`` of 4 to 10 digits stands in: the MARD dispatches name goods by it), limited to its
first unqualified quantity (else the first, else the net weight); an item without any is not limited.

The utilization report (namespace :data:`NS`, schema ``mappings/schemas/registry/utilization.xsd``)::

    <RegistryUtilization xmlns="urn:nsw-gateway:registry-utilization:1">
      <Declaration>104567890123</Declaration>
      <DeclarationDate>2026-12-04T09:00:00+07:00</DeclarationDate>   <!-- optional -->
      <Enterprise>0101234567</Enterprise>
      <Line><DocumentType>BNNPTNT0600011</DocumentType><Number>QT-2026-001</Number>
            <HsCode>01022910</HsCode><Quantity>2.5</Quantity><Unit>TNE</Unit></Line>
    </RegistryUtilization>

:func:`read_utilization` reads it into a :class:`~gateway.registry.UtilizationAct` or raises ``VALIDATION_FAILED``
with every schema issue.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

from lxml import etree

from gateway.errors import ValidationFailed, ValidationIssue
from gateway.registry import Action, DrawLine, IssuedAct, RegistryLine, UtilizationAct
from mappings.model import Decision, GoodsItem, TradeMessage
from mappings.xmlformat import load_schema, parse_root, schema_issues

__all__ = ["NS", "ROOT", "SCHEMA", "issued_act", "read_utilization", "is_utilization"]

NS = "urn:nsw-gateway:registry-utilization:1"
ROOT = f"{{{NS}}}RegistryUtilization"
SCHEMA = "registry/utilization.xsd"
_HS = re.compile(r"^[0-9]{4,10}$")
_CERTIFICATE_VALIDITY = dt.timedelta(days=365)
_CANCELLATION, _REPLACEMENT = "1", "5"


def _line(item: GoodsItem) -> RegistryLine | None:
    code = item.hs_code or (item.commodity_code if item.commodity_code and _HS.match(item.commodity_code) else None)
    if not code:
        return None
    quantity = next((q for q in item.quantities if not q.qualifier), item.quantities[0] if item.quantities else None)
    if quantity is not None:
        return RegistryLine(code, quantity.value, quantity.unit)
    if item.net_weight is not None:
        return RegistryLine(code, item.net_weight.value, item.net_weight.unit)
    return RegistryLine(code)


def _stamp(moment: dt.datetime | None) -> float | None:
    return moment.timestamp() if moment is not None else None


def issued_act(msg: TradeMessage) -> IssuedAct | None:
    """What ``msg`` does to the registry (the module docstring), or ``None`` when it is not an issued document (an
    application, a notification, a declaration) or does not name one fully."""
    document, permit, certificate = msg.document, msg.permit, msg.origin_certificate
    status = document.status_code if document is not None else None
    parties = msg.parties
    holder = next(
        (
            p.identifier
            for p in (parties.declarant, parties.consignee, parties.exporter)
            if p is not None and p.identifier
        ),
        "",
    )
    issued_on = document.issue_date if document is not None else None
    lines = tuple(line for line in (_line(item) for item in msg.goods) if line is not None)
    country = (document.issuing_country if document is not None else None) or (
        msg.transport.export_country if msg.transport is not None else None
    )
    if permit is not None and permit.number and permit.decision in (Decision.ISSUED, Decision.AMENDED):
        doc_type = permit.procedure_code or (document.type_code if document is not None else None)
        if not doc_type:
            return None
        action: Action = "amended" if permit.decision is Decision.AMENDED or status == _REPLACEMENT else "issued"
        return IssuedAct(
            "cancelled" if status == _CANCELLATION else action,
            doc_type,
            permit.number,
            "permit.number",
            holder=holder,
            issuing_country=country,
            valid_from=_stamp(permit.decision_date or issued_on),
            valid_until=_stamp(permit.valid_until),
            lines=lines,
        )
    if document is None or not document.number:
        return None
    if certificate is not None:
        if not country:
            return None
        until = issued_on + _CERTIFICATE_VALIDITY if issued_on is not None else None
        return IssuedAct(
            "issued",
            "861",
            document.number,
            "document.number",
            holder=holder,
            issuing_country=country,
            valid_from=_stamp(issued_on),
            valid_until=_stamp(until),
            lines=lines,
            supersedes=certificate.amends,
        )
    if not document.type_code or msg.customs_declaration is not None or msg.customs_response is not None:
        return None
    other: Action = "cancelled" if status == _CANCELLATION else "amended" if status == _REPLACEMENT else "issued"
    return IssuedAct(
        other,
        document.type_code,
        document.number,
        "document.number",
        holder=holder,
        issuing_country=country,
        valid_from=_stamp(issued_on),
        lines=lines,
    )


def is_utilization(root: etree._Element) -> bool:
    return root.tag == ROOT


def _text(element: etree._Element, name: str) -> str | None:
    child = element.find(f"{{{NS}}}{name}")
    return (child.text or "").strip() if child is not None else None


def read_utilization(raw: bytes) -> UtilizationAct | None:
    """The report ``raw`` states, ``None`` when it is no ``RegistryUtilization``; ``VALIDATION_FAILED`` with every
    schema issue when it is one that does not validate (XML that does not parse: the parser's ``XML_*`` codes)."""
    if NS.encode() not in raw:
        return None  # not one: other pass-through XML is not parsed a second time
    root = parse_root(raw)
    if not is_utilization(root):
        return None
    issues = schema_issues(load_schema(SCHEMA), root)
    if issues:
        raise ValidationFailed(issues)
    lines: list[DrawLine] = []
    for i, element in enumerate(root.findall(f"{{{NS}}}Line"), start=1):
        lines.append(
            DrawLine(
                doc_type=_text(element, "DocumentType") or "",
                number=_text(element, "Number") or "",
                hs_code=_text(element, "HsCode") or "",
                quantity=Decimal(_text(element, "Quantity") or "0"),
                unit=_text(element, "Unit") or "",
                path=f"RegistryUtilization/Line[{i}]",
            )
        )
    when = _text(root, "DeclarationDate")
    at = None
    if when:
        moment = dt.datetime.fromisoformat(when)
        if moment.tzinfo is None:
            raise ValidationFailed(
                [ValidationIssue("RegistryUtilization/DeclarationDate", "SCHEMA_INVALID", "needs its UTC offset")]
            )
        at = moment.timestamp()
    return UtilizationAct(
        declaration=_text(root, "Declaration") or "",
        enterprise=_text(root, "Enterprise") or "",
        at=at,
        lines=tuple(lines),
    )
