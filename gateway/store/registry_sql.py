"""The registry of issued documents (:mod:`gateway.registry`) in both stores: what :meth:`Store.accept` writes for a
:data:`~gateway.registry.RegistryAct` and the reads of the registry API, one function per dialect over the same SQL
(``mark(n)`` is the n-th parameter's placeholder: ``?`` for SQLite, ``$n`` for PostgreSQL).

SQLite has one writer, so a utilization reads the lines it draws on and updates them in the one write transaction.
PostgreSQL locks the document and its lines (``SELECT ... FOR UPDATE``) before anything is written and refuses
(raising, by the store's contract, before any write of the operation) or draws within the same transaction: two
declarations, on one node or on several, can never both take the last tonne.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from gateway.model import Message
from gateway.registry import (
    CERTIFICATE_JOIN,
    DOCUMENT_COLUMNS,
    LINE_COLUMNS,
    Draw,
    DrawTarget,
    IssuedAct,
    RegistryAct,
    RegistryDocument,
    RegistryQuery,
    check_sql,
    document_of,
    issued_refusal,
    line_of,
    plan_draws,
    query_sql,
)

__all__ = [
    "DrawRecord",
    "sqlite_record",
    "sqlite_find",
    "sqlite_document",
    "sqlite_candidates",
    "pg_prepare",
    "pg_apply",
    "pg_find",
    "pg_document",
    "pg_candidates",
]

DrawRecord = tuple[str, int, str, str, float]
"""``(declaration, line, quantity, message, at)`` of one draw on a document."""


def _q(n: int) -> str:
    return "?"


def _d(n: int) -> str:
    return f"${n}"


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format(value.normalize(), "f")


_BY_KEY = (
    f"SELECT {DOCUMENT_COLUMNS} FROM registry_documents AS d{CERTIFICATE_JOIN}"
    " WHERE d.doc_type = {a} AND d.number = {b}"
)
_LINES = f"SELECT {LINE_COLUMNS} FROM registry_lines AS l WHERE l.document = {{a}} ORDER BY l.line"


def _key_sql(mark: Any, lock: str = "") -> str:
    return _BY_KEY.format(a=mark(1), b=mark(2)) + lock


def _lines_sql(mark: Any, lock: str = "") -> str:
    return _LINES.format(a=mark(1)) + lock


def _line_rows(act: IssuedAct, holder: str, carried: dict[int, str]) -> list[tuple[Any, ...]]:
    return [
        (i, holder, line.hs_code, _text(line.quantity), line.unit, carried.get(i, "0"))
        for i, line in enumerate(act.lines, start=1)
    ]


def _document_values(act: IssuedAct, sender: str, message: Message) -> tuple[Any, ...]:
    status = {"issued": "issued", "amended": "amended", "cancelled": "cancelled"}[act.action]
    return (
        act.doc_type,
        act.number,
        sender,
        act.issuing_country,
        act.holder,
        status,
        act.valid_from,
        act.valid_until,
        act.supersedes,
        message.id,
        message.history[-1].at,
    )


_INSERT_DOCUMENT = (
    "INSERT INTO registry_documents (doc_type, number, issuer, issuing_country, holder, status, valid_from,"
    " valid_until, supersedes, message, updated_at) VALUES ({marks})"
)
_UPDATE_DOCUMENT = (
    "UPDATE registry_documents SET issuing_country = {m[0]}, holder = {m[1]}, status = {m[2]}, valid_from = {m[3]},"
    " valid_until = {m[4]}, supersedes = {m[5]}, message = {m[6]}, updated_at = {m[7]} WHERE id = {m[8]}"
)
_CANCEL_DOCUMENT = (
    "UPDATE registry_documents SET status = 'cancelled', message = {m[0]}, updated_at = {m[1]} WHERE id = {m[2]}"
)
_INSERT_LINE = "INSERT INTO registry_lines (document, line, holder, hs_code, quantity, unit, drawn) VALUES ({marks})"


def _marks(mark: Any, n: int) -> list[str]:
    return [mark(i) for i in range(1, n + 1)]


# ------------------------------------------------------------------------------------------------------------ SQLite


def _sqlite_document(conn: sqlite3.Connection, doc_type: str, number: str) -> RegistryDocument | None:
    row = conn.execute(_key_sql(_q), (doc_type, number)).fetchone()
    if row is None:
        return None
    lines = [line_of(r) for r in conn.execute(_lines_sql(_q), (row[0],))]
    return document_of(row, lines)


def sqlite_record(conn: sqlite3.Connection, act: RegistryAct, message: Message) -> None:
    """Record ``act`` of the accepted ``message`` (its message row already written in this transaction), or raise
    its refusal (the caller's savepoint undoes the message)."""
    sender, at = message.envelope.sender, message.history[-1].at
    if isinstance(act, IssuedAct):
        existing = _sqlite_document(conn, act.doc_type, act.number)
        refusal = issued_refusal(act, sender, existing.issuer if existing is not None else None)
        if refusal is not None:
            raise refusal
        if existing is not None and act.action == "cancelled":
            conn.execute(_CANCEL_DOCUMENT.format(m=["?"] * 3), (message.id, at, existing.id))
            return
        values = _document_values(act, sender, message)
        if existing is None:
            cursor = conn.execute(_INSERT_DOCUMENT.format(marks=",".join(["?"] * len(values))), values)
            assert cursor.lastrowid is not None  # a row was just inserted
            document, carried = cursor.lastrowid, {}
        else:
            conn.execute(_UPDATE_DOCUMENT.format(m=["?"] * 9), (*values[3:], existing.id))
            document = existing.id
            carried = {line.line: _text(line.drawn) or "0" for line in existing.lines}
            conn.execute("DELETE FROM registry_lines WHERE document = ?", (document,))
        conn.executemany(
            _INSERT_LINE.format(marks=",".join(["?"] * 7)),
            [(document, *row) for row in _line_rows(act, act.holder, carried)],
        )
        return
    targets: list[DrawTarget] = []
    for line in act.lines:
        found = _sqlite_document(conn, line.doc_type, line.number)
        drawn: dict[int, Decimal] = {}
        if found is not None:
            drawn = {
                int(r[0]): Decimal(r[1])
                for r in conn.execute(
                    "SELECT line, quantity FROM registry_draws WHERE document = ? AND declaration = ?",
                    (found.id, act.declaration),
                )
            }
        targets.append(DrawTarget(found, drawn))
    _sqlite_draws(conn, plan_draws(act, targets, at=message.received_at), act.declaration, message)


def _sqlite_draws(conn: sqlite3.Connection, draws: Sequence[Draw], declaration: str, message: Message) -> None:
    at = message.history[-1].at
    for draw in draws:
        conn.execute(
            "UPDATE registry_lines SET drawn = ? WHERE document = ? AND line = ?",
            (_text(draw.drawn), draw.document, draw.line),
        )
        conn.execute(
            "INSERT INTO registry_draws (document, line, declaration, quantity, message, at) VALUES (?,?,?,?,?,?)",
            (draw.document, draw.line, declaration, _text(draw.quantity), message.id, at),
        )


def _sqlite_with_lines(conn: sqlite3.Connection, rows: Sequence[Sequence[Any]]) -> list[RegistryDocument]:
    if not rows:
        return []
    ids = [r[0] for r in rows]
    by: dict[int, list[Any]] = {i: [] for i in ids}
    for chunk in range(0, len(ids), 500):
        part = ids[chunk : chunk + 500]
        for r in conn.execute(
            f"SELECT {LINE_COLUMNS} FROM registry_lines AS l WHERE l.document IN ({','.join('?' * len(part))})"
            " ORDER BY l.document, l.line",
            part,
        ):
            by[int(r[0])].append(line_of(r))
    return [document_of(r, by[r[0]]) for r in rows]


def sqlite_find(conn: sqlite3.Connection, query: RegistryQuery) -> list[RegistryDocument]:
    sql, params = query_sql(query, _q)
    return _sqlite_with_lines(conn, conn.execute(sql, params).fetchall())


def sqlite_document(
    conn: sqlite3.Connection, doc_type: str, number: str
) -> tuple[RegistryDocument, list[DrawRecord]] | None:
    found = _sqlite_document(conn, doc_type, number)
    if found is None:
        return None
    draws = conn.execute(
        "SELECT declaration, line, quantity, message, at FROM registry_draws WHERE document = ? ORDER BY at, line",
        (found.id,),
    ).fetchall()
    return found, [(r[0], int(r[1]), r[2], r[3], float(r[4])) for r in draws]


def sqlite_candidates(conn: sqlite3.Connection, holder: str, hs_codes: Sequence[str]) -> list[list[RegistryDocument]]:
    """Per HS code, the documents of ``holder`` with a line for it (or a heading of it)."""
    found: list[list[RegistryDocument]] = []
    for hs_code in hs_codes:
        sql, params = check_sql(holder, hs_code, _q)
        ids = [r[0] for r in conn.execute(sql, params)]
        if not ids:
            found.append([])
            continue
        rows = conn.execute(
            f"SELECT {DOCUMENT_COLUMNS} FROM registry_documents AS d{CERTIFICATE_JOIN}"
            f" WHERE d.id IN ({','.join('?' * len(ids))}) ORDER BY d.id",
            ids,
        ).fetchall()
        found.append(_sqlite_with_lines(conn, rows))
    return found


# -------------------------------------------------------------------------------------------------------- PostgreSQL


async def _pg_document(conn: Any, doc_type: str, number: str, *, lock: bool) -> RegistryDocument | None:
    row = await conn.fetchrow(_key_sql(_d, " FOR UPDATE OF d" if lock else ""), doc_type, number)
    if row is None:
        return None
    lines = [line_of(r) for r in await conn.fetch(_lines_sql(_d, " FOR UPDATE" if lock else ""), row[0])]
    return document_of(tuple(row), lines)


async def pg_prepare(conn: Any, act: RegistryAct, message: Message) -> tuple[RegistryDocument | None, list[Draw]]:
    """Read and lock what ``act`` writes, and decide it: the indexed document an issued act replaces, or the draws
    of a utilization; raises the refusal before anything is written."""
    sender = message.envelope.sender
    if isinstance(act, IssuedAct):
        existing = await _pg_document(conn, act.doc_type, act.number, lock=True)
        refusal = issued_refusal(act, sender, existing.issuer if existing is not None else None)
        if refusal is not None:
            raise refusal
        return existing, []
    targets: list[DrawTarget] = []
    for line in act.lines:
        found = await _pg_document(conn, line.doc_type, line.number, lock=True)
        drawn: dict[int, Decimal] = {}
        if found is not None:
            drawn = {
                int(r[0]): Decimal(r[1])
                for r in await conn.fetch(
                    "SELECT line, quantity FROM registry_draws WHERE document = $1 AND declaration = $2",
                    found.id,
                    act.declaration,
                )
            }
        targets.append(DrawTarget(found, drawn))
    return None, plan_draws(act, targets, at=message.received_at)


async def pg_apply(
    conn: Any, act: RegistryAct, prepared: tuple[RegistryDocument | None, list[Draw]], message: Message
) -> None:
    """Write what :func:`pg_prepare` decided for ``act`` of the accepted ``message``."""
    existing, draws = prepared
    at = message.history[-1].at
    if isinstance(act, IssuedAct):
        if existing is not None and act.action == "cancelled":
            await conn.execute(_CANCEL_DOCUMENT.format(m=_marks(_d, 3)), message.id, at, existing.id)
            return
        values = _document_values(act, message.envelope.sender, message)
        if existing is None:
            document = await conn.fetchval(
                _INSERT_DOCUMENT.format(marks=",".join(_marks(_d, len(values)))) + " RETURNING id", *values
            )
            carried: dict[int, str] = {}
        else:
            await conn.execute(_UPDATE_DOCUMENT.format(m=_marks(_d, 9)), *values[3:], existing.id)
            document = existing.id
            carried = {line.line: _text(line.drawn) or "0" for line in existing.lines}
            await conn.execute("DELETE FROM registry_lines WHERE document = $1", document)
        rows = [(document, *row) for row in _line_rows(act, act.holder, carried)]
        if rows:
            await conn.executemany(_INSERT_LINE.format(marks=",".join(_marks(_d, 7))), rows)
        return
    for draw in draws:
        await conn.execute(
            "UPDATE registry_lines SET drawn = $1 WHERE document = $2 AND line = $3",
            _text(draw.drawn),
            draw.document,
            draw.line,
        )
        await conn.execute(
            "INSERT INTO registry_draws (document, line, declaration, quantity, message, at)"
            " VALUES ($1, $2, $3, $4, $5, $6)",
            draw.document,
            draw.line,
            act.declaration,
            _text(draw.quantity),
            message.id,
            at,
        )


async def _pg_with_lines(conn: Any, rows: Sequence[Any]) -> list[RegistryDocument]:
    if not rows:
        return []
    ids = [r[0] for r in rows]
    by: dict[int, list[Any]] = {i: [] for i in ids}
    for r in await conn.fetch(
        f"SELECT {LINE_COLUMNS} FROM registry_lines AS l WHERE l.document = ANY($1::bigint[])"
        " ORDER BY l.document, l.line",
        ids,
    ):
        by[int(r[0])].append(line_of(r))
    return [document_of(tuple(r), by[r[0]]) for r in rows]


async def pg_find(conn: Any, query: RegistryQuery) -> list[RegistryDocument]:
    sql, params = query_sql(query, _d)
    return await _pg_with_lines(conn, await conn.fetch(sql, *params))


async def pg_document(conn: Any, doc_type: str, number: str) -> tuple[RegistryDocument, list[DrawRecord]] | None:
    found = await _pg_document(conn, doc_type, number, lock=False)
    if found is None:
        return None
    draws = await conn.fetch(
        "SELECT declaration, line, quantity, message, at FROM registry_draws WHERE document = $1 ORDER BY at, line",
        found.id,
    )
    return found, [(r[0], int(r[1]), r[2], r[3], float(r[4])) for r in draws]


async def pg_candidates(conn: Any, holder: str, hs_codes: Sequence[str]) -> list[list[RegistryDocument]]:
    found: list[list[RegistryDocument]] = []
    for hs_code in hs_codes:
        sql, params = check_sql(holder, hs_code, _d)
        ids = [r[0] for r in await conn.fetch(sql, *params)]
        if not ids:
            found.append([])
            continue
        rows = await conn.fetch(
            f"SELECT {DOCUMENT_COLUMNS} FROM registry_documents AS d{CERTIFICATE_JOIN}"
            " WHERE d.id = ANY($1::bigint[]) ORDER BY d.id",
            ids,
        )
        found.append(await _pg_with_lines(conn, rows))
    return found
