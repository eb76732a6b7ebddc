"""The rows of the ``disclosures`` table (migration 18) for both stores: what :meth:`Store.accept` inserts with
each :class:`~gateway.disclosures.Disclosure`, and the query of :meth:`Store.disclosures`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from gateway.disclosures import DISCLOSED, Disclosure, DisclosureQuery, StoredDisclosure

__all__ = ["INSERT", "disclosure_query_sql", "insert_values", "stored"]

INSERT = "INSERT INTO disclosures (message, destination, subscription, at, record) VALUES ({marks})"
"""The insert of one disclosure; ``{marks}`` is five placeholders of the dialect."""


def insert_values(d: Disclosure) -> tuple[Any, ...]:
    """The values of :data:`INSERT` for ``d`` (its record as the journal digests it)."""
    return (d.message_id, d.destination, d.subscription, d.at, d.record())


def disclosure_query_sql(query: DisclosureQuery, mark: Callable[[int], str]) -> tuple[str, list[Any]]:
    """The ``SELECT`` of a page of :meth:`Store.disclosures` (``seq``, ``record`` and the seq of the
    ``DISCLOSED`` journal entry) and its parameters; ``mark(n)`` is the dialect's n-th placeholder (from 1)."""
    where: list[str] = []
    params: list[Any] = []

    def bind(value: Any) -> str:
        params.append(value)
        return mark(len(params))

    if query.destination is not None:
        where.append(f"d.destination = {bind(query.destination)}")
    if query.subscription is not None:
        where.append(f"d.subscription = {bind(query.subscription)}")
    if query.message is not None:
        where.append(f"d.message = {bind(query.message)}")
    if query.since is not None:
        where.append(f"d.at >= {bind(query.since)}")
    if query.until is not None:
        where.append(f"d.at < {bind(query.until)}")
    if query.after is not None:
        at, seq = query.after
        where.append(f"(d.at < {bind(at)} OR (d.at = {bind(at)} AND d.seq < {bind(seq)}))")
    sql = (
        "SELECT d.seq, d.record, (SELECT j.seq FROM journal AS j WHERE j.message = d.message"
        f" AND j.destination = d.destination AND j.kind = '{DISCLOSED}') FROM disclosures AS d"
        + (" WHERE " + " AND ".join(where) if where else "")
        + f" ORDER BY d.at DESC, d.seq DESC LIMIT {bind(query.limit)}"
    )
    return sql, params


def stored(rows: Sequence[Any]) -> list[StoredDisclosure]:
    """The disclosures of the rows of :func:`disclosure_query_sql`."""
    return [
        StoredDisclosure(int(r[0]), Disclosure.from_record(bytes(r[1])), None if r[2] is None else int(r[2]))
        for r in rows
    ]
