"""Validation of a harmonized :class:`~mappings.model.TradeMessage`: code lists and business rules.

:func:`validate` walks the whole message and returns every violation as a
:class:`~gateway.errors.ValidationIssue` (path, code, message); :func:`check` raises one
:class:`~gateway.errors.ValidationFailed` carrying all of them. Nothing stops at the first issue.

Paths are dotted field names with 0-based list indexes (``goods[3].origin_criterion``).
:data:`ISSUE_CODES` is the one documented table of issue codes (also printed by ``nswgw dictionary``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from pydantic import BaseModel

from gateway.errors import ValidationFailed, ValidationIssue
from mappings.codes import CODE_LISTS
from mappings.model import CertificateNoticeKind, CustomsResponseStatus, TradeMessage

__all__ = [
    "ISSUE_CODES",
    "FORM_D_MAX_ITEMS",
    "RVC_MINIMUM",
    "OriginCriterion",
    "parse_origin_criterion",
    "validate",
    "check",
    "issue_table_markdown",
]

ISSUE_CODES: dict[str, str] = {
    # code lists (mappings.codes)
    "COUNTRY_UNKNOWN": "Not an ISO 3166-1 alpha-2 country code.",
    "CURRENCY_UNKNOWN": "Not an ISO 4217 currency code.",
    "UNIT_UNKNOWN": "Not a UN/ECE Recommendation 20 unit code.",
    "LOCODE_INVALID": "Not a UN/LOCODE (2-letter ISO country + 3 characters A-Z, 2-9).",
    "HS_CODE_INVALID": "Not an HS code of 6 to 10 digits.",
    # origin criteria
    "ORIGIN_CRITERION_INVALID": "Origin criterion outside the grammar WO | CC | CTH | CTSH | SP | RVC nn% | PC nn%.",
    "ORIGIN_RVC_NOT_INTEGER": "The RVC or PC percentage is not a whole number.",
    "ORIGIN_RVC_BELOW_MINIMUM": "RVC below the ATIGA minimum of 40%.",
    "ORIGIN_PC_OUT_OF_RANGE": "Partial cumulation (PC) outside 20% to 39%.",
    # ATIGA Form D
    "FORM_D_TOO_MANY_ITEMS": "An ATIGA Form D carries at most 50 goods items.",
    "FORM_D_NO_ITEMS": "An ATIGA Form D carries at least one goods item.",
    "FORM_D_NUMBER_REQUIRED": "The certificate number (document.number) is required.",
    "FORM_D_ISSUE_DATE_REQUIRED": "The certificate issue date (document.issue_date) is required.",
    "FORM_D_EXPORTER_REQUIRED": "The exporter's name is required.",
    "FORM_D_CONSIGNEE_REQUIRED": "The consignee's name is required.",
    "FORM_D_DESCRIPTION_REQUIRED": "Each goods item needs a description of goods.",
    "FORM_D_HS_CODE_REQUIRED": "Each goods item needs an HS code.",
    "FORM_D_ORIGIN_CRITERION_REQUIRED": "Each goods item needs an origin criterion.",
    "FORM_D_INVOICE_NUMBER_REQUIRED": "Each goods item needs the number of its invoice.",
    "FORM_D_INVOICE_DATE_REQUIRED": "Each goods item needs the date of its invoice.",
    "FORM_D_INVOICE_AFTER_ISSUE": "The invoice date is after the certificate's issue date.",
    "FORM_D_FOB_REQUIRED": "The FOB value is required when the origin criterion is RVC.",
    "GOODS_SEQUENCE_DUPLICATE": "Two goods items carry the same sequence number.",
    "FORM_D_NOTICE_DECLARATION_REQUIRED": "A utilization notification names the import declaration (number, date).",
    "FORM_D_NOTICE_REASON_REQUIRED": "A rejection notification states its reason (code or text).",
    # ASEAN Customs Declaration Document (ACDD), its Customs Response and cancellation
    "ACDD_MANDATORY_MISSING": "A mandatory parameter of an ACDD, Customs Response or cancellation is missing (path).",
    "ACDD_RESPONSE_REASON_REQUIRED": "A Customs Response that rejects or queries a declaration states the reason.",
    "ACDD_MESSAGE_KIND_UNCLEAR": (
        "The harmonized message carries none, or several, of customs_declaration, customs_response and cancellation "
        "data: no one ACDD message can be written from it."
    ),
    # reading and writing native formats
    "MODEL_INVALID": "A value does not fit the harmonized model (type, length, sign, unknown field).",
    "JSON_INVALID": "The input is not well-formed JSON.",
    "ROOT_UNEXPECTED": "The XML root element is not the one the format expects.",
    "MESSAGE_TYPE_UNKNOWN": "No mapping is registered for this procedure, message type and function.",
    "NATIVE_VALUE_INVALID": "A native element's text cannot be read as its declared type (number, date, flag).",
    "NATIVE_REQUIRED_MISSING": "A value the native format requires is missing from the harmonized message.",
    "MESSAGE_FUNCTION_CONFLICT": (
        "The harmonized data contradicts what the native message function states (a rejection sent as an acceptance)."
    ),
    "SCHEMA_INVALID": "The document does not validate against the format's XSD.",
    # policy lists (gateway.reference): the version in force at the submission's time
    "GOODS_PROHIBITED": (
        "A goods item's HS code is on a prohibited-goods reference list in force at the submission's time (the "
        "message names the list and its version)."
    ),
}
"""Every issue code reported by the mappings, with its meaning. Codes are stable; never reuse one."""

FORM_D_MAX_ITEMS = 50
RVC_MINIMUM = 40
PC_RANGE = (20, 39)

_CRITERION = re.compile(r"^(WO|CC|CTH|CTSH|SP)$|^(RVC|PC)\s*([0-9]+(?:[.,][0-9]+)?)\s*%$")


@dataclass(frozen=True)
class OriginCriterion:
    """A parsed origin criterion: ``kind`` (WO, CC, CTH, CTSH, SP, RVC, PC) and, for RVC/PC, ``percent``."""

    kind: str
    percent: Decimal | None = None


def parse_origin_criterion(text: str) -> OriginCriterion | None:
    """Parse an origin criterion (``"RVC 45%"`` -> RVC, 45); None when outside the grammar."""
    m = _CRITERION.match(text.strip().upper())
    if m is None:
        return None
    if m.group(1):
        return OriginCriterion(m.group(1))
    return OriginCriterion(m.group(2), Decimal(m.group(3).replace(",", ".")))


@functools.cache
def _fields(model: type[BaseModel]) -> tuple[tuple[str, str | None], ...]:
    """Each field of ``model`` with the code list it declares (None: none), read once per model class."""
    out = []
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        code_list = extra.get("code_list")
        out.append((name, str(code_list) if code_list else None))
    return tuple(out)


def _walk(model: BaseModel, prefix: str) -> Iterator[tuple[str, str, object]]:
    """Yield (path, code_list, value) for every populated field that declares a code list."""
    for name, code_list in _fields(type(model)):
        value = getattr(model, name)
        if value is None:
            continue
        if isinstance(value, BaseModel):
            yield from _walk(value, f"{prefix}.{name}" if prefix else name)
        elif isinstance(value, tuple):
            path = f"{prefix}.{name}" if prefix else name
            for i, item in enumerate(value):
                if isinstance(item, BaseModel):
                    yield from _walk(item, f"{path}[{i}]")
                elif code_list:
                    yield f"{path}[{i}]", code_list, item
        elif code_list:
            yield (f"{prefix}.{name}" if prefix else name), code_list, value


def _code_list_issues(msg: TradeMessage) -> Iterator[ValidationIssue]:
    for path, name, value in _walk(msg, ""):
        if name == "ORIGIN_CRITERION":
            yield from _criterion_issues(path, str(value))
            continue
        code_list = CODE_LISTS[name]
        if not code_list.check(str(value)):
            yield ValidationIssue(path, code_list.issue_code, f"{value!r} is not a valid {code_list.description}")


def _criterion_issues(path: str, text: str) -> Iterator[ValidationIssue]:
    crit = parse_origin_criterion(text)
    if crit is None:
        yield ValidationIssue(
            path, "ORIGIN_CRITERION_INVALID", f"{text!r} is not WO, CC, CTH, CTSH, SP, RVC nn% or PC nn%"
        )
        return
    if crit.percent is None:
        return
    if crit.percent != crit.percent.to_integral_value():
        yield ValidationIssue(
            path, "ORIGIN_RVC_NOT_INTEGER", f"{crit.kind} percentage {crit.percent} is not a whole number"
        )
        return
    if crit.kind == "RVC" and crit.percent < RVC_MINIMUM:
        yield ValidationIssue(path, "ORIGIN_RVC_BELOW_MINIMUM", f"RVC {crit.percent}% is below {RVC_MINIMUM}%")
    if crit.kind == "PC" and not PC_RANGE[0] <= crit.percent <= PC_RANGE[1]:
        yield ValidationIssue(
            path, "ORIGIN_PC_OUT_OF_RANGE", f"PC {crit.percent}% is outside {PC_RANGE[0]}% to {PC_RANGE[1]}%"
        )


def _form_d_issues(msg: TradeMessage) -> Iterator[ValidationIssue]:
    doc = msg.document
    if doc is None or not doc.number:
        yield ValidationIssue("document.number", "FORM_D_NUMBER_REQUIRED", "certificate number is required")
    issue_date = doc.issue_date if doc is not None else None
    if issue_date is None:
        yield ValidationIssue("document.issue_date", "FORM_D_ISSUE_DATE_REQUIRED", "certificate issue date is required")
    if msg.parties.exporter is None or not msg.parties.exporter.name:
        yield ValidationIssue("parties.exporter.name", "FORM_D_EXPORTER_REQUIRED", "exporter name is required")
    if msg.parties.consignee is None or not msg.parties.consignee.name:
        yield ValidationIssue("parties.consignee.name", "FORM_D_CONSIGNEE_REQUIRED", "consignee name is required")
    if not msg.goods:
        yield ValidationIssue("goods", "FORM_D_NO_ITEMS", "a Form D needs at least one goods item")
    if len(msg.goods) > FORM_D_MAX_ITEMS:
        yield ValidationIssue(
            "goods",
            "FORM_D_TOO_MANY_ITEMS",
            f"{len(msg.goods)} goods items; a Form D carries at most {FORM_D_MAX_ITEMS}",
        )
    for i, item in enumerate(msg.goods):
        at = f"goods[{i}]"
        if not item.description:
            yield ValidationIssue(
                f"{at}.description", "FORM_D_DESCRIPTION_REQUIRED", "description of goods is required"
            )
        if not item.hs_code:
            yield ValidationIssue(f"{at}.hs_code", "FORM_D_HS_CODE_REQUIRED", "HS code is required")
        if not item.origin_criterion:
            yield ValidationIssue(
                f"{at}.origin_criterion", "FORM_D_ORIGIN_CRITERION_REQUIRED", "origin criterion is required"
            )
        else:
            crit = parse_origin_criterion(item.origin_criterion)
            if crit is not None and crit.kind == "RVC" and item.fob_value is None:
                yield ValidationIssue(
                    f"{at}.fob_value", "FORM_D_FOB_REQUIRED", "FOB value is required with an RVC criterion"
                )
        if not item.invoice_number:
            yield ValidationIssue(
                f"{at}.invoice_number", "FORM_D_INVOICE_NUMBER_REQUIRED", "invoice number is required"
            )
        if item.invoice_date is None:
            yield ValidationIssue(f"{at}.invoice_date", "FORM_D_INVOICE_DATE_REQUIRED", "invoice date is required")
        elif issue_date is not None and item.invoice_date > issue_date.date():
            yield ValidationIssue(
                f"{at}.invoice_date",
                "FORM_D_INVOICE_AFTER_ISSUE",
                f"invoice date {item.invoice_date} is after the issue date {issue_date.date()}",
            )


def _sequence_issues(msg: TradeMessage) -> Iterator[ValidationIssue]:
    seen: set[int] = set()
    for i, item in enumerate(msg.goods):
        if item.sequence is None:
            continue
        if item.sequence in seen:
            yield ValidationIssue(
                f"goods[{i}].sequence", "GOODS_SEQUENCE_DUPLICATE", f"sequence {item.sequence} repeats"
            )
        seen.add(item.sequence)


def _mandatory(path: str, what: str) -> ValidationIssue:
    return ValidationIssue(path, "ACDD_MANDATORY_MISSING", f"{what} is mandatory")


def _acdd_issues(msg: TradeMessage) -> Iterator[ValidationIssue]:
    """The ACDD's mandatory parameters, each reported at its own path."""
    declaration = msg.customs_declaration
    if declaration is None or not declaration.number:
        yield _mandatory("customs_declaration.number", "the declaration (permit) number")
    exporter, consignee, agent = msg.parties.exporter, msg.parties.consignee, msg.parties.declarant
    if exporter is None or not exporter.identifier:
        yield _mandatory("parties.exporter.identifier", "the exporter's identifier")
    if exporter is None or not exporter.name:
        yield _mandatory("parties.exporter.name", "the exporter's name")
    if consignee is None or not consignee.name:
        yield _mandatory("parties.consignee.name", "the consignee's name")
    if consignee is None or consignee.address is None:
        yield _mandatory("parties.consignee.address", "the consignee's address")
    elif not consignee.address.line1:
        yield _mandatory("parties.consignee.address.line1", "the consignee's address line")
    if agent is None or not agent.identifier:
        yield _mandatory("parties.declarant.identifier", "the declaring agent's identifier")
    if agent is None or not agent.name:
        yield _mandatory("parties.declarant.name", "the declaring agent's name")
    transport = msg.transport
    if transport is None or transport.departure_date is None:
        yield _mandatory("transport.departure_date", "the departure date")
    if transport is None or not transport.border_mode:
        yield _mandatory("transport.border_mode", "the outward mode of transport")
    if transport is None or transport.port_of_discharge is None or not transport.port_of_discharge.code:
        yield _mandatory("transport.port_of_discharge.code", "the port of discharge (UN/LOCODE)")
    if not msg.goods:
        yield _mandatory("goods", "at least one goods item")
    for i, item in enumerate(msg.goods):
        at = f"goods[{i}]"
        if item.sequence is None:
            yield _mandatory(f"{at}.sequence", "the item serial number")
        if not item.hs_code:
            yield _mandatory(f"{at}.hs_code", "the HS code")
        if not item.quantities:
            yield _mandatory(f"{at}.quantities", "the quantity and its unit")
        if not item.origin_country:
            yield _mandatory(f"{at}.origin_country", "the country of origin")


def _customs_response_issues(msg: TradeMessage) -> Iterator[ValidationIssue]:
    response = msg.customs_response
    if response is None:
        return
    if not response.declaration_number:
        yield _mandatory("customs_response.declaration_number", "the number of the declaration answered")
    if response.status is None:
        yield _mandatory("customs_response.status", "the response status (accepted, rejected or query)")
    elif response.status is not CustomsResponseStatus.ACCEPTED and not response.reason:
        yield ValidationIssue(
            "customs_response.reason",
            "ACDD_RESPONSE_REASON_REQUIRED",
            f"a response of status {response.status.value} states its reason",
        )


def _cancellation_issues(msg: TradeMessage) -> Iterator[ValidationIssue]:
    if msg.cancellation is not None and not msg.cancellation.declaration_number:
        yield _mandatory("cancellation.declaration_number", "the number of the declaration cancelled")


def _certificate_notice_issues(msg: TradeMessage) -> Iterator[ValidationIssue]:
    notice = msg.certificate_notice
    if notice is None:
        return
    if notice.kind is CertificateNoticeKind.UTILIZED:
        named = {"declaration_number": notice.declaration_number, "declaration_date": notice.declaration_date}
        for path, what in (("declaration_number", "number"), ("declaration_date", "date")):
            if named[path] is None:
                yield ValidationIssue(
                    f"certificate_notice.{path}",
                    "FORM_D_NOTICE_DECLARATION_REQUIRED",
                    f"a utilization notification names the {what} of the import declaration",
                )
    if notice.kind is CertificateNoticeKind.REJECTED and not (notice.reason_code or notice.reason):
        yield ValidationIssue(
            "certificate_notice.reason",
            "FORM_D_NOTICE_REASON_REQUIRED",
            "a rejection notification states its reason code or text",
        )


def validate(msg: TradeMessage) -> list[ValidationIssue]:
    """Every code-list and business-rule violation of ``msg`` (empty when valid)."""
    issues = list(_code_list_issues(msg))
    issues.extend(_sequence_issues(msg))
    if msg.origin_certificate is not None:
        issues.extend(_form_d_issues(msg))
    if msg.customs_declaration is not None:
        issues.extend(_acdd_issues(msg))
    issues.extend(_customs_response_issues(msg))
    issues.extend(_cancellation_issues(msg))
    issues.extend(_certificate_notice_issues(msg))
    return issues


def check(msg: TradeMessage) -> TradeMessage:
    """Return ``msg`` when valid; raise :class:`ValidationFailed` with every issue otherwise."""
    issues = validate(msg)
    if issues:
        raise ValidationFailed(issues)
    return msg


def issue_table_markdown() -> str:
    """The issue-code table as Markdown."""
    rows = ["| code | meaning |", "|---|---|"]
    rows.extend(f"| `{code}` | {meaning} |" for code, meaning in ISSUE_CODES.items())
    return "\n".join(rows) + "\n"
