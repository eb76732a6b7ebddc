"""Ship calls (:mod:`gateway.shipcalls`) in both stores: the compare-and-set :meth:`Store.accept` applies for a
:class:`~gateway.shipcalls.ShipCallAct` and the read of one call, one function per dialect over the same SQL.

The check (:func:`sqlite_check`, :func:`pg_check`) runs before anything of the operation is written, as the stores'
contract asks of a refusal: the call must still be at the revision the act was planned from (PostgreSQL locks its
row, ``FOR UPDATE``, to the end of the transaction, so that two nodes apply changes of one call one after the
other), else ``STORE_CONTENDED`` and the broker plans again. The write (:func:`sqlite_write`, :func:`pg_write`)
follows the message's own insert.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from gateway.errors import StoreContended
from gateway.shipcalls import AgencyPart, ShipCallAct, ShipCallEvent, ShipCallRecord, ShipCallVersion

__all__ = ["pg_check", "pg_read", "pg_write", "sqlite_check", "sqlite_read", "sqlite_write"]

_CALL_COLUMNS = (
    "reference, procedure, agent, on_behalf_of, status, version, current_version, revision, updated_at, agencies"
)
_FIND = "SELECT call FROM ship_call_versions WHERE reference = {0} LIMIT 1"
_CALL = f"SELECT {_CALL_COLUMNS} FROM ship_calls WHERE reference = {{0}}"
_VERSIONS = "SELECT reference, version, message, at FROM ship_call_versions WHERE call = {0} ORDER BY version"
_EVENTS = (
    "SELECT seq, at, kind, status, message, party, version, agency, detail FROM ship_call_events"
    " WHERE call = {0} ORDER BY seq"
)
_INSERT_CALL = (
    f"INSERT INTO ship_calls ({_CALL_COLUMNS}) VALUES ({{0}},{{1}},{{2}},{{3}},{{4}},{{5}},{{6}},{{7}},{{8}},{{9}})"
)
_UPDATE_CALL = (
    "UPDATE ship_calls SET status = {0}, version = {1}, current_version = {2}, revision = {3}, updated_at = {4},"
    " agencies = {5} WHERE reference = {6}"
)
_INSERT_VERSION = "INSERT INTO ship_call_versions (reference, call, version, message, at) VALUES ({0},{1},{2},{3},{4})"
_INSERT_EVENT = (
    "INSERT INTO ship_call_events (call, seq, at, kind, status, message, party, version, agency, detail)"
    " VALUES ({0},{1},{2},{3},{4},{5},{6},{7},{8},{9})"
)


def _sql(template: str, dialect: str) -> str:
    """``template`` with its placeholders ``{0}``, ``{1}``, ... (in the order they appear: SQLite's ``?`` bind in
    that order) for ``dialect``."""
    marks = ["?"] * 10 if dialect == "sqlite" else [f"${n}" for n in range(1, 11)]
    return template.format(*marks)


def _agencies_json(agencies: Sequence[AgencyPart]) -> str:
    return json.dumps(
        [
            {
                "agency": a.agency,
                "party": a.party,
                "required": a.required,
                "digest": a.digest,
                "version": a.version,
                "answer": a.answer,
                "reasons": list(a.reasons),
                "conditions": list(a.conditions),
                "answered_version": a.answered_version,
                "answered_at": a.answered_at,
                "answer_message": a.answer_message,
            }
            for a in agencies
        ],
        sort_keys=True,
    )


def _agencies(text: str) -> tuple[AgencyPart, ...]:
    return tuple(
        AgencyPart(
            agency=a["agency"],
            party=a["party"],
            required=a["required"],
            digest=a["digest"],
            version=a["version"],
            answer=a["answer"],
            reasons=tuple(a["reasons"]),
            conditions=tuple(a["conditions"]),
            answered_version=a["answered_version"],
            answered_at=a["answered_at"],
            answer_message=a["answer_message"],
        )
        for a in json.loads(text)
    )


def _record(call: Sequence[Any], versions: Sequence[Sequence[Any]], events: Sequence[Sequence[Any]]) -> ShipCallRecord:
    return ShipCallRecord(
        reference=call[0],
        procedure=call[1],
        agent=call[2],
        on_behalf_of=call[3],
        status=call[4],
        version=call[5],
        current=call[6],
        revision=call[7],
        updated_at=call[8],
        agencies=_agencies(call[9]),
        versions=tuple(ShipCallVersion(v[0], v[1], v[2], v[3]) for v in versions),
        events=tuple(
            ShipCallEvent(e[0], e[1], e[2], e[3], e[4], e[5], e[6], e[7], json.loads(e[8]) if e[8] else {})
            for e in events
        ),
    )


def _call_values(record: ShipCallRecord) -> tuple[Any, ...]:
    return (
        record.reference,
        record.procedure,
        record.agent,
        record.on_behalf_of,
        record.status,
        record.version,
        record.current,
        record.revision,
        record.updated_at,
        _agencies_json(record.agencies),
    )


def _update_values(record: ShipCallRecord) -> tuple[Any, ...]:
    return (
        record.status,
        record.version,
        record.current,
        record.revision,
        record.updated_at,
        _agencies_json(record.agencies),
        record.reference,
    )


def _event_values(record: ShipCallRecord, e: ShipCallEvent) -> tuple[Any, ...]:
    detail = json.dumps(dict(e.detail), sort_keys=True) if e.detail else None
    return (record.reference, e.seq, e.at, e.kind, e.status, e.message, e.party, e.version, e.agency, detail)


def _contended(act: ShipCallAct, found: int | None) -> StoreContended:
    said = "no such call" if found is None else f"revision {found}"
    return StoreContended(
        f"ship call {act.record.reference} changed while this change was planned (expected revision"
        f" {act.expected}, found {said})",
        field="ship_call",
    )


# ------------------------------------------------------------------ SQLite


def sqlite_read(conn: sqlite3.Connection, reference: str) -> ShipCallRecord | None:
    """The call of which ``reference`` is a version (its first one names the call)."""
    found = conn.execute(_sql(_FIND, "sqlite"), (reference,)).fetchone()
    if found is None:
        return None
    call = conn.execute(_sql(_CALL, "sqlite"), (found[0],)).fetchone()
    if call is None:
        return None
    versions = conn.execute(_sql(_VERSIONS, "sqlite"), (found[0],)).fetchall()
    events = conn.execute(_sql(_EVENTS, "sqlite"), (found[0],)).fetchall()
    return _record(call, versions, events)


def sqlite_check(conn: sqlite3.Connection, act: ShipCallAct) -> None:
    """``STORE_CONTENDED`` unless the call is still at the revision ``act`` was planned from."""
    row = conn.execute("SELECT revision FROM ship_calls WHERE reference = ?", (act.record.reference,)).fetchone()
    found = row[0] if row is not None else None
    if found != act.expected:
        raise _contended(act, found)


def sqlite_write(conn: sqlite3.Connection, act: ShipCallAct) -> None:
    record = act.record
    if act.expected is None:
        conn.execute(_sql(_INSERT_CALL, "sqlite"), _call_values(record))
    else:
        conn.execute(_sql(_UPDATE_CALL, "sqlite"), _update_values(record))
    for v in record.versions:
        conn.execute(_sql(_INSERT_VERSION, "sqlite"), (v.reference, record.reference, v.version, v.message, v.at))
    for e in record.events:
        conn.execute(_sql(_INSERT_EVENT, "sqlite"), _event_values(record, e))


# ------------------------------------------------------------------ PostgreSQL


async def pg_read(conn: Any, reference: str) -> ShipCallRecord | None:
    found = await conn.fetchval(_sql(_FIND, "pg"), reference)
    if found is None:
        return None
    call = await conn.fetchrow(_sql(_CALL, "pg"), found)
    if call is None:
        return None
    versions = await conn.fetch(_sql(_VERSIONS, "pg"), found)
    events = await conn.fetch(_sql(_EVENTS, "pg"), found)
    return _record(tuple(call), [tuple(v) for v in versions], [tuple(e) for e in events])


async def pg_check(conn: Any, act: ShipCallAct) -> None:
    """``STORE_CONTENDED`` unless the call is still at the revision ``act`` was planned from; its row stays locked
    to the end of the transaction."""
    found = await conn.fetchval("SELECT revision FROM ship_calls WHERE reference = $1 FOR UPDATE", act.record.reference)
    if found != act.expected:
        raise _contended(act, found)


async def pg_write(conn: Any, act: ShipCallAct) -> None:
    record = act.record
    if act.expected is None:
        await conn.execute(_sql(_INSERT_CALL, "pg"), *_call_values(record))
    else:
        await conn.execute(_sql(_UPDATE_CALL, "pg"), *_update_values(record))
    for v in record.versions:
        await conn.execute(_sql(_INSERT_VERSION, "pg"), v.reference, record.reference, v.version, v.message, v.at)
    for e in record.events:
        await conn.execute(_sql(_INSERT_EVENT, "pg"), *_event_values(record, e))
