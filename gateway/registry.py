"""The registry of issued documents: every permit, licence, quarantine result, certificate of origin and SPS
certificate the gateway accepted, indexed by its harmonized key fields, and the draw-down of quantity-limited
documents by customs' utilization reports.

What a document does to the registry is a :data:`RegistryAct` (:meth:`gateway.ports.Mapper.issued`): an
:class:`IssuedAct` (a document issued, amended or cancelled) or a :class:`UtilizationAct` (customs drew quantities
of a declaration on documents). :meth:`gateway.store.base.Store.accept` records it in the same transaction as the
message, or refuses it (nothing at all is stored) with the :class:`~gateway.errors.RegistryRefusal` that
:func:`issued_refusal` and :func:`plan_draws` decide, identically on both stores. A refused message indexes
nothing. The full document stays in the store as the message's payload; the index names the message.

A document's status is computed at query time (:func:`status_at`) from what was recorded and its validity:
``valid``, ``amended`` (valid in its amended form), ``cancelled``, ``superseded`` (a certificate of origin
replaced by an amendment, as the certificate's own lifecycle in ``certificates`` says), ``expired`` (its
``valid_until`` has passed) or ``not_yet_valid``. Only ``valid`` and ``amended`` documents cover goods.

Quantities are compared in the document line's unit; ``KGM``/``TNE``/``GRM`` and ``LTR``/``MTQ`` convert into each
other, other units only match themselves.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from gateway.errors import (
    NotAuthorized,
    RegistryDeclarationConflict,
    RegistryDocumentCancelled,
    RegistryDocumentExpired,
    RegistryDocumentUnknown,
    RegistryNotCovered,
    RegistryNotIssuer,
    RegistryQuantityExceeded,
    RegistryRefusal,
)

__all__ = [
    "ROLES",
    "Role",
    "Action",
    "COVERING",
    "RegistryLine",
    "IssuedAct",
    "DrawLine",
    "UtilizationAct",
    "RegistryAct",
    "RegistryDocument",
    "DocumentLine",
    "RegistryQuery",
    "CheckLine",
    "LineVerdict",
    "Draw",
    "DrawTarget",
    "registry_act",
    "status_at",
    "convert",
    "hs_prefixes",
    "issued_refusal",
    "plan_draws",
    "check_lines",
    "effective_status_sql",
    "CERTIFICATE_JOIN",
    "DOCUMENT_COLUMNS",
    "LINE_COLUMNS",
    "document_of",
    "line_of",
    "query_sql",
    "check_sql",
    "query_digest",
]

Role = Literal["check", "all", "issued", "own", "utilize"]
ROLES: tuple[Role, ...] = ("check", "all", "issued", "own", "utilize")
"""What a party may do with the registry (``[parties.NAME] registry = [...]``): ``check`` goods of a declaration,
list ``all`` documents (customs), those it ``issued`` (a ministry), an enterprise's ``own`` through its delegated
intermediary (``X-On-Behalf-Of``), and ``utilize``: submit ``registry.utilization`` reports that draw quantities
down (customs)."""

COVERING = frozenset({"valid", "amended"})
"""The statuses of a document that covers goods."""

Action = Literal["issued", "amended", "cancelled"]


@dataclass(frozen=True)
class RegistryLine:
    """One goods line of an issued document: its HS code and the quantity it allows (``None``: not limited)."""

    hs_code: str
    quantity: Decimal | None = None
    unit: str | None = None


@dataclass(frozen=True)
class IssuedAct:
    """A document issued, amended or cancelled, by its harmonized key fields. The issuer is the submitting party
    (the store takes it from the message)."""

    action: Action
    doc_type: str
    """The ministry procedure code of a permit or licence (``BNNPTNT0600011``), else the UN/EDIFACT 1001 code of
    the document (``861`` certificate of origin, ``851`` phytosanitary certificate)."""
    number: str
    path: str
    """Where the message names the document's number (the field a refusal names)."""
    holder: str = ""
    """The identifier of the enterprise that holds the document (declarant, consignee or exporter); ``""``: none."""
    issuing_country: str | None = None
    valid_from: float | None = None
    valid_until: float | None = None
    lines: tuple[RegistryLine, ...] = ()
    supersedes: str | None = None
    """The number of the document this one replaces (an amended certificate of origin names its original)."""


@dataclass(frozen=True)
class DrawLine:
    """One line of a utilization report: ``quantity`` of goods ``hs_code`` declared against a document."""

    doc_type: str
    number: str
    hs_code: str
    quantity: Decimal
    unit: str
    path: str
    """Where the report states the line (``RegistryUtilization/Line[2]``, 1-based like XPath)."""


@dataclass(frozen=True)
class UtilizationAct:
    """Customs' report of a declaration drawing on quantity-limited documents."""

    declaration: str
    enterprise: str
    at: float | None
    """When the declaration was registered (``None``: when the report is received); validity is judged then."""
    lines: tuple[DrawLine, ...]


RegistryAct = IssuedAct | UtilizationAct


@dataclass(frozen=True)
class DocumentLine:
    line: int
    hs_code: str
    quantity: Decimal | None
    unit: str | None
    drawn: Decimal

    @property
    def remaining(self) -> Decimal | None:
        return None if self.quantity is None else self.quantity - self.drawn


@dataclass(frozen=True)
class RegistryDocument:
    """An indexed document as the store holds it; :attr:`recorded` is its stored status (``issued``, ``amended``,
    ``cancelled``, ``superseded``), :func:`status_at` what it is at a given instant."""

    id: int
    doc_type: str
    number: str
    issuer: str
    issuing_country: str | None
    holder: str
    recorded: str
    valid_from: float | None
    valid_until: float | None
    message: str
    updated_at: float
    lines: tuple[DocumentLine, ...] = ()

    def status(self, at: float) -> str:
        return status_at(self.recorded, self.valid_from, self.valid_until, at)


@dataclass(frozen=True)
class RegistryQuery:
    """A search of the index; ``None`` fields do not filter. ``status`` is judged at ``at``."""

    at: float
    doc_type: str | None = None
    number: str | None = None
    holder: str | None = None
    issuer: str | None = None
    status: str | None = None
    hs_code: str | None = None
    limit: int = 100
    before: int | None = None
    """The cursor: only documents indexed before the one with this id (the last of the previous page)."""


def registry_act(act: RegistryAct, party: str, roles: Sequence[str]) -> RegistryAct:
    """``act`` of a document ``party`` submitted, whose registry roles are ``roles``: a utilization report only
    from a party with the ``utilize`` role (``AUTH_FORBIDDEN`` naming ``parties.NAME.registry``)."""
    if isinstance(act, UtilizationAct) and "utilize" not in roles:
        raise NotAuthorized(
            f"{party} may not report utilizations to the registry (it has no registry role utilize)",
            field=f"parties.{party}.registry",
        )
    return act


def status_at(recorded: str, valid_from: float | None, valid_until: float | None, at: float) -> str:
    """The status of a document recorded as ``recorded`` at the instant ``at``."""
    if recorded in ("cancelled", "superseded"):
        return recorded
    if valid_until is not None and at > valid_until:
        return "expired"
    if valid_from is not None and at < valid_from:
        return "not_yet_valid"
    return "amended" if recorded == "amended" else "valid"


_FACTORS: dict[str, tuple[str, Decimal]] = {
    "KGM": ("mass", Decimal(1)),
    "TNE": ("mass", Decimal(1000)),
    "GRM": ("mass", Decimal("0.001")),
    "LTR": ("volume", Decimal(1)),
    "MTQ": ("volume", Decimal(1000)),
}


def convert(quantity: Decimal, unit: str, into: str) -> Decimal | None:
    """``quantity`` in ``unit`` expressed in ``into``; ``None`` when the units do not convert."""
    if unit == into:
        return quantity
    a, b = _FACTORS.get(unit), _FACTORS.get(into)
    if a is None or b is None or a[0] != b[0]:
        return None
    return quantity * a[1] / b[1]


def hs_prefixes(hs_code: str) -> list[str]:
    """The codes a document line may name to cover goods ``hs_code``: its chapter-heading (4 digits) and every
    longer prefix up to the code itself (a document issued at heading level covers each subheading)."""
    return [hs_code[:n] for n in range(4, len(hs_code) + 1)] or [hs_code]


_VERB = {"issued": "issue", "amended": "amend", "cancelled": "cancel"}


def issued_refusal(act: IssuedAct, sender: str, issuer: str | None) -> RegistryRefusal | None:
    """Why the store refuses ``act`` from ``sender`` on a document indexed as issued by ``issuer`` (``None``: not
    indexed), both stores: a document of the same type and number indexed by another party."""
    if issuer is not None and issuer != sender:
        return RegistryNotIssuer(
            f"{act.doc_type} {act.number} was issued by {issuer}: {sender} cannot {_VERB[act.action]} it"
            if act.action != "issued"
            else f"{act.doc_type} {act.number} was already issued by {issuer}",
            field=act.path,
            details={"doc_type": act.doc_type, "number": act.number},
        )
    return None


@dataclass(frozen=True)
class DrawTarget:
    """What the store read, locked, for one line of a utilization: the document it names (``None``: not indexed)
    and the quantities the declaration already drew on each of its lines."""

    document: RegistryDocument | None
    drawn_by_declaration: Mapping[int, Decimal] = field(default_factory=dict)


@dataclass(frozen=True)
class Draw:
    """One draw to record: ``quantity`` (in the document line's unit) on line ``line`` of document ``document``,
    leaving ``drawn`` drawn on it in all."""

    document: int
    line: int
    quantity: Decimal
    drawn: Decimal


def _pick_line(document: RegistryDocument, hs_code: str, unit: str) -> DocumentLine | None:
    prefixes = set(hs_prefixes(hs_code))
    best: DocumentLine | None = None
    for line in document.lines:
        if line.hs_code not in prefixes:
            continue
        if line.unit is not None and convert(Decimal(1), unit, line.unit) is None:
            continue
        if best is None or len(line.hs_code) > len(best.hs_code):
            best = line
    return best


def plan_draws(act: UtilizationAct, targets: Sequence[DrawTarget], *, at: float) -> list[Draw]:
    """The draws ``act`` makes, given what the store read for each of its lines (``targets``, in order), or the
    refusal (raised) of the first line that cannot draw, both stores: a document not indexed
    (``REGISTRY_DOCUMENT_UNKNOWN``), cancelled or superseded (``REGISTRY_DOCUMENT_CANCELLED``), expired or not yet
    valid at the declaration (``REGISTRY_DOCUMENT_EXPIRED``), held by another enterprise or without a line for the
    goods and unit (``REGISTRY_NOT_COVERED``), a remaining quantity too small (``REGISTRY_QUANTITY_EXCEEDED``), a
    declaration that already drew another quantity on that line (``REGISTRY_DECLARATION_CONFLICT``). A line the
    declaration already drew with the same quantity draws nothing again."""
    when = act.at if act.at is not None else at
    pending: dict[tuple[int, int], Decimal] = {}
    draws: list[Draw] = []
    for draw_line, target in zip(act.lines, targets, strict=True):
        said = f"{draw_line.doc_type} {draw_line.number}"
        details: dict[str, Any] = {"doc_type": draw_line.doc_type, "number": draw_line.number}
        document = target.document
        if document is None:
            raise RegistryDocumentUnknown(
                f"the registry holds no document {said}", field=f"{draw_line.path}/Number", details=details
            )
        status = document.status(when)
        if status in ("cancelled", "superseded"):
            raise RegistryDocumentCancelled(
                f"{said} is {status}", field=f"{draw_line.path}/Number", details={**details, "status": status}
            )
        if status not in COVERING:
            raise RegistryDocumentExpired(
                f"{said} is {status.replace('_', ' ')} at the declaration",
                field=f"{draw_line.path}/Number",
                details={**details, "status": status, "valid_until": document.valid_until},
            )
        if document.holder != act.enterprise:
            raise RegistryNotCovered(
                f"{said} is not held by {act.enterprise}", field=f"{draw_line.path}/Number", details=details
            )
        line = _pick_line(document, draw_line.hs_code, draw_line.unit)
        if line is None:
            raise RegistryNotCovered(
                f"{said} has no line for HS {draw_line.hs_code} in {draw_line.unit}",
                field=f"{draw_line.path}/HsCode",
                details=details,
            )
        quantity = draw_line.quantity
        if line.unit is not None:
            converted = convert(quantity, draw_line.unit, line.unit)
            assert converted is not None  # _pick_line chose a line whose unit converts
            quantity = converted
        already = target.drawn_by_declaration.get(line.line)
        if already is not None:
            if already != quantity:
                raise RegistryDeclarationConflict(
                    f"declaration {act.declaration} already drew {already} {line.unit or ''} on {said}".rstrip(),
                    field=f"{draw_line.path}/Quantity",
                    details={**details, "drawn": str(already), "requested": str(quantity)},
                )
            continue
        key = (document.id, line.line)
        drawn = pending.get(key, line.drawn)
        if line.quantity is not None and drawn + quantity > line.quantity:
            raise RegistryQuantityExceeded(
                f"{said} line {line.line} has {line.quantity - drawn} {line.unit or ''} left, {quantity} requested",
                field=f"{draw_line.path}/Quantity",
                details={
                    **details,
                    "remaining": str(line.quantity - drawn),
                    "requested": str(quantity),
                    "unit": line.unit,
                },
            )
        pending[key] = drawn + quantity
        draws.append(Draw(document.id, line.line, quantity, drawn + quantity))
    return draws


@dataclass(frozen=True)
class CheckLine:
    hs_code: str
    quantity: Decimal | None
    unit: str | None


@dataclass(frozen=True)
class LineVerdict:
    """The answer for one goods line: the documents found for its HS code and enterprise (each with its status and
    what remains), and whether one of them covers it; otherwise ``reason`` says why not."""

    covered: bool
    documents: tuple[tuple[RegistryDocument, DocumentLine, str], ...]
    covered_by: tuple[str, str] | None = None
    reason: str | None = None
    message: str | None = None


_REASON_ORDER = ("quantity_exhausted", "unit_mismatch", "not_yet_valid", "expired", "cancelled", "superseded")


def check_lines(
    lines: Sequence[CheckLine], found: Sequence[Sequence[RegistryDocument]], *, at: float
) -> list[LineVerdict]:
    """Whether each goods line is covered by one of the documents ``found`` for it (in order), at ``at``; quantities
    that earlier lines of the same declaration take from a document are not available to later ones."""
    used: dict[tuple[int, int], Decimal] = {}
    verdicts: list[LineVerdict] = []
    for goods, documents in zip(lines, found, strict=True):
        prefixes = set(hs_prefixes(goods.hs_code))
        rows: list[tuple[RegistryDocument, DocumentLine, str]] = []
        covered_by: tuple[str, str] | None = None
        reasons: set[str] = set()
        for document in documents:
            status = document.status(at)
            for line in document.lines:
                if line.hs_code not in prefixes:
                    continue
                rows.append((document, line, status))
                if covered_by is not None:
                    continue
                if status not in COVERING:
                    reasons.add(status)
                    continue
                if goods.quantity is None or line.quantity is None:
                    covered_by = (document.doc_type, document.number)
                    continue
                need = convert(goods.quantity, goods.unit or "", line.unit or "")
                if need is None:
                    reasons.add("unit_mismatch")
                    continue
                key = (document.id, line.line)
                left = line.quantity - line.drawn - used.get(key, Decimal(0))
                if need > left:
                    reasons.add("quantity_exhausted")
                    continue
                used[key] = used.get(key, Decimal(0)) + need
                covered_by = (document.doc_type, document.number)
        if covered_by is not None:
            verdicts.append(LineVerdict(True, tuple(rows), covered_by))
            continue
        reason = next((r for r in _REASON_ORDER if r in reasons), "no_document")
        messages = {
            "no_document": f"no document covers HS {goods.hs_code} for this enterprise",
            "quantity_exhausted": "the remaining quantity of every document for it is too small",
            "unit_mismatch": "the documents for it state quantities in another unit",
            "not_yet_valid": "the documents for it are not valid yet",
            "expired": "the documents for it have expired",
            "cancelled": "the documents for it were cancelled",
            "superseded": "the documents for it were replaced by an amendment",
        }
        verdicts.append(LineVerdict(False, tuple(rows), None, reason, messages[reason]))
    return verdicts


def effective_status_sql() -> str:
    """The recorded status of a row ``d`` of ``registry_documents``, a certificate of origin's taken from its own
    lifecycle (``c``: its ``certificates`` row, joined by :data:`CERTIFICATE_JOIN`)."""
    return (
        "CASE WHEN c.status = 'cancelled' THEN 'cancelled' WHEN c.status = 'amended' THEN 'superseded'"
        " ELSE d.status END"
    )


CERTIFICATE_JOIN = (
    " LEFT JOIN certificates AS c ON d.doc_type = '861' AND c.issuing_country = d.issuing_country"
    " AND c.number = d.number"
)
DOCUMENT_COLUMNS = (
    "d.id, d.doc_type, d.number, d.issuer, d.issuing_country, d.holder, "
    + effective_status_sql()
    + ", d.valid_from, d.valid_until, d.message, d.updated_at"
)
"""The columns :func:`document_of` reads, in order."""
LINE_COLUMNS = "l.document, l.line, l.hs_code, l.quantity, l.unit, l.drawn"


def document_of(row: Sequence[Any], lines: Sequence[DocumentLine] = ()) -> RegistryDocument:
    """A :class:`RegistryDocument` from a row of :data:`DOCUMENT_COLUMNS`."""
    return RegistryDocument(
        id=int(row[0]),
        doc_type=row[1],
        number=row[2],
        issuer=row[3],
        issuing_country=row[4],
        holder=row[5],
        recorded=row[6],
        valid_from=row[7],
        valid_until=row[8],
        message=row[9],
        updated_at=row[10],
        lines=tuple(lines),
    )


def line_of(row: Sequence[Any]) -> DocumentLine:
    """A :class:`DocumentLine` from a row of :data:`LINE_COLUMNS` (quantities are stored as decimal text)."""
    return DocumentLine(
        line=int(row[1]),
        hs_code=row[2],
        quantity=Decimal(row[3]) if row[3] is not None else None,
        unit=row[4],
        drawn=Decimal(row[5]),
    )


def query_sql(query: RegistryQuery, mark: Callable[[int], str]) -> tuple[str, list[Any]]:
    """The ``SELECT`` of a search of the index and its parameters, both stores (``mark(n)``: the n-th parameter's
    placeholder), newest first."""
    params: list[Any] = []

    def bind(value: Any) -> str:
        params.append(value)
        return mark(len(params))

    status = effective_status_sql()
    where: list[str] = []
    for column, value in (
        ("d.doc_type", query.doc_type),
        ("d.number", query.number),
        ("d.holder", query.holder),
        ("d.issuer", query.issuer),
    ):
        if value is not None:
            where.append(f"{column} = {bind(value)}")
    if query.before is not None:
        where.append(f"d.id < {bind(query.before)}")
    if query.hs_code is not None:
        where.append(
            "EXISTS (SELECT 1 FROM registry_lines AS l WHERE l.document = d.id"
            f" AND l.hs_code LIKE {bind(query.hs_code + '%')})"
        )
    if query.status is not None:
        if query.status in ("cancelled", "superseded"):
            where.append(f"({status}) = {bind(query.status)}")
        else:
            live = f"({status}) IN ('issued', 'amended')"
            if query.status == "expired":
                where.append(f"{live} AND d.valid_until < {bind(query.at)}")
            elif query.status == "not_yet_valid":
                where.append(
                    f"{live} AND d.valid_from > {bind(query.at)}"
                    f" AND (d.valid_until IS NULL OR d.valid_until >= {bind(query.at)})"
                )
            else:
                recorded = "issued" if query.status == "valid" else "amended"
                where.append(
                    f"({status}) = {bind(recorded)} AND (d.valid_until IS NULL OR d.valid_until >= {bind(query.at)})"
                    f" AND (d.valid_from IS NULL OR d.valid_from <= {bind(query.at)})"
                )
    sql = f"SELECT {DOCUMENT_COLUMNS} FROM registry_documents AS d{CERTIFICATE_JOIN}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY d.id DESC LIMIT {bind(query.limit)}"
    return sql, params


def check_sql(holder: str, hs_code: str, mark: Callable[[int], str]) -> tuple[str, list[Any]]:
    """The ``SELECT`` of the documents of ``holder`` with a line for ``hs_code`` (or a heading of it): the index
    ``registry_lines_check`` on ``(holder, hs_code)`` finds them in O(log n)."""
    prefixes = hs_prefixes(hs_code)
    params: list[Any] = [holder, *prefixes]
    marks = ", ".join(mark(i + 2) for i in range(len(prefixes)))
    sql = f"SELECT DISTINCT l.document FROM registry_lines AS l WHERE l.holder = {mark(1)} AND l.hs_code IN ({marks})"
    return sql, params


def query_digest(asked: Mapping[str, Any]) -> str:
    """The SHA-256 (hex) of a query's canonical JSON, kept in its journal record."""
    body = json.dumps(asked, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(body.encode("utf-8")).hexdigest()
