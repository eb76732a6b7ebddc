"""The registry's query path at scale: customs' checks against an index of ``--documents`` issued documents.

    .venv/bin/python benchmarks/registry_check.py [--documents 1000000] [--checks 5000] [--concurrency 8]
        [--stores sqlite,postgresql] [--dsn postgresql://postgres@127.0.0.1:5432/test] [--no-journal] [--json out]

For each store the index is bulk-loaded directly (SQLite ``executemany`` in one transaction, PostgreSQL ``COPY``
into a fresh schema dropped afterwards; not through intake): one permit per document, one goods line each, for
``documents / 4`` enterprises and 2,000 HS codes. Then ``--checks`` checks (half of goods some document covers,
half of random enterprise and HS code pairs, mostly not covered) run in a closed loop of ``--concurrency``
tasks through what ``POST /v1/registry/check`` does after parsing the request:
:meth:`Store.registry_candidates` (the ``registry_lines_check`` index on holder and HS code: O(log n)),
:func:`gateway.registry.check_lines`, and the query's ``OPERATOR`` journal entry (``--no-journal`` leaves it out).

Printed per store, one JSON object per line: ``documents``, ``load_s``, ``checks``, ``checks_per_s``, ``p50_ms``,
``p99_ms``, ``covered`` (the share of checks covered), ``journal`` and ``load_average`` (``os.getloadavg()`` before
and after).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.journal import OperatorAction  # noqa: E402
from gateway.registry import CheckLine, check_lines  # noqa: E402
from gateway.store.base import Store  # noqa: E402

HS_CODES = [f"{chapter:02d}{i:06d}" for chapter in range(1, 41) for i in range(50)]
"""2,000 eight-digit codes in 40 chapters."""
PROCEDURE = "BNNPTNT0600011"
CHUNK = 50_000


def enterprises(documents: int) -> int:
    return max(1, documents // 4)


def chunks(documents: int) -> Iterator[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]]:
    """The document and line rows of the index (ids from 1), :data:`CHUNK` documents at a time."""
    now = time.time()
    docs: list[tuple[Any, ...]] = []
    lines: list[tuple[Any, ...]] = []
    for i, (holder, hs_code) in enumerate(pairs(documents), start=1):
        docs.append(
            (
                i,
                PROCEDURE,
                f"QT-{i:08d}",
                "MARD",
                None,
                holder,
                "issued",
                now - 86400,
                now + 180 * 86400,
                None,
                "m",
                now,
            )
        )
        lines.append((i, 1, holder, hs_code, "100", "TNE", "0"))
        if len(docs) == CHUNK:
            yield docs, lines
            docs, lines = [], []
    if docs:
        yield docs, lines


def pairs(documents: int, seed: int = 7) -> Iterator[tuple[str, str]]:
    """The ``(holder, hs_code)`` of each document's line, as :func:`chunks` makes them."""
    rnd = random.Random(seed)
    for _ in range(documents):
        holder = f"E{rnd.randrange(enterprises(documents)):09d}"
        yield holder, rnd.choice(HS_CODES)


_DOC_COLUMNS = (
    "id",
    "doc_type",
    "number",
    "issuer",
    "issuing_country",
    "holder",
    "status",
    "valid_from",
    "valid_until",
    "supersedes",
    "message",
    "updated_at",
)
_LINE_COLUMNS = ("document", "line", "holder", "hs_code", "quantity", "unit", "drawn")


async def load_sqlite(path: Path, documents: int) -> float:
    from gateway.store.sqlite import SqliteStore

    store = SqliteStore(path)
    await store.open()  # creates and migrates the file
    await store.close()
    started = time.perf_counter()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous = OFF")
    with conn:
        for docs, lines in chunks(documents):
            conn.executemany(
                f"INSERT INTO registry_documents ({','.join(_DOC_COLUMNS)}) VALUES ({','.join('?' * 12)})", docs
            )
            conn.executemany(
                f"INSERT INTO registry_lines ({','.join(_LINE_COLUMNS)}) VALUES ({','.join('?' * 7)})", lines
            )
    conn.execute("ANALYZE")
    conn.close()
    return time.perf_counter() - started


async def load_postgres(dsn: str, documents: int) -> float:
    import asyncpg

    from gateway.store.migrations import upgrade

    conn = await asyncpg.connect(dsn)
    try:
        await upgrade(conn)
        started = time.perf_counter()
        for docs, lines in chunks(documents):
            await conn.copy_records_to_table("registry_documents", records=docs, columns=_DOC_COLUMNS)
            await conn.copy_records_to_table("registry_lines", records=lines, columns=_LINE_COLUMNS)
        await conn.execute("SELECT setval(pg_get_serial_sequence('registry_documents', 'id'), $1)", documents)
        await conn.execute("ANALYZE registry_documents; ANALYZE registry_lines")
        return time.perf_counter() - started
    finally:
        await conn.close()


async def run_checks(store: Store, documents: int, checks: int, concurrency: int, journal: bool) -> dict[str, Any]:
    rnd = random.Random(11)
    picked = set(rnd.sample(range(documents), min(documents, checks // 2)))
    work = [pair for i, pair in enumerate(pairs(documents)) if i in picked]  # goods that have a permit
    work += [(f"E{rnd.randrange(enterprises(documents)):09d}", rnd.choice(HS_CODES)) for _ in range(checks - len(work))]
    rnd.shuffle(work)
    latencies: list[float] = []
    covered = 0

    async def one(holder: str, hs_code: str) -> None:
        nonlocal covered
        started = time.perf_counter()
        line = CheckLine(hs_code, Decimal(1), "TNE")
        found = await store.registry_candidates(holder, [hs_code])
        (verdict,) = check_lines([line], found, at=time.time())
        if journal:
            await store.record_operator_action(
                OperatorAction.new(
                    "party:CUSTOMS",
                    "registry-check",
                    at=time.time(),
                    targets=[{"enterprise": holder, "declaration": "BENCH"}],
                    detail={"results": len(verdict.documents), "covered": verdict.covered},
                )
            )
        latencies.append(time.perf_counter() - started)
        covered += verdict.covered

    async def worker(items: list[tuple[str, str]]) -> None:
        for holder, hs_code in items:
            await one(holder, hs_code)

    started = time.perf_counter()
    await asyncio.gather(*(worker(work[i::concurrency]) for i in range(concurrency)))
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "checks": checks,
        "checks_per_s": round(checks / elapsed, 1),
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 3),
        "covered": round(covered / checks, 4),
    }


async def bench(kind: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    before = os.getloadavg()
    store: Store
    schema: str | None = None
    if kind == "sqlite":
        from gateway.store.sqlite import SqliteStore

        path = tmp / "registry.db"
        load_s = await load_sqlite(path, args.documents)
        store = SqliteStore(path)
    else:
        import asyncpg

        from gateway.store.postgres import PostgresStore

        schema = f"nswgw_bench_{uuid.uuid4().hex[:10]}"
        admin = await asyncpg.connect(args.dsn)
        await admin.execute(f'CREATE SCHEMA "{schema}"')
        await admin.close()
        dsn = f"{args.dsn}{'&' if '?' in args.dsn else '?'}search_path={schema}"
        load_s = await load_postgres(dsn, args.documents)
        store = PostgresStore(dsn, pool_size=max(4, args.concurrency))
    try:
        await store.open()
        try:
            result = await run_checks(store, args.documents, args.checks, args.concurrency, not args.no_journal)
        finally:
            await store.close()
    finally:
        if schema is not None:
            import asyncpg

            admin = await asyncpg.connect(args.dsn)
            await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
            await admin.close()
    return {
        "store": kind,
        "documents": args.documents,
        "load_s": round(load_s, 2),
        **result,
        "concurrency": args.concurrency,
        "journal": not args.no_journal,
        "load_average": {"before": list(before), "after": list(os.getloadavg())},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=1_000_000)
    parser.add_argument("--checks", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--dsn", default=os.environ.get("NSWGW_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--no-journal", action="store_true", help="leave each check's journal entry out")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="nswgw-registry-") as tmp:
        for kind in [s.strip() for s in args.stores.split(",") if s.strip()]:
            result = asyncio.run(bench(kind, args, Path(tmp)))
            print(json.dumps(result), flush=True)
            results.append(result)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
