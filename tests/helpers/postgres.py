"""The real PostgreSQL server of the tests (127.0.0.1:5432, database ``test``; ``scripts/test`` starts it).

Every test works in a schema of its own (``search_path`` in the DSN), created with the store's migrations
and dropped afterwards, so parallel or repeated runs never see each other's rows.
Override the server with ``NSWGW_TEST_PG=postgresql://USER@HOST:PORT/DB``.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest

from gateway.store.postgres import PostgresStore, upgrade_schema

__all__ = ["PG_DSN", "dsn_for", "create_schema", "drop_schema", "fresh_schema", "IsolatedPostgresStore"]

PG_DSN = os.environ.get("NSWGW_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def dsn_for(schema: str) -> str:
    return f"{PG_DSN}{'&' if '?' in PG_DSN else '?'}search_path={schema}"


async def _admin(sql: str) -> None:
    try:
        conn = await asyncpg.connect(PG_DSN, timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.skip(f"the test PostgreSQL server {PG_DSN} is not reachable ({exc}); scripts/test starts it")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def create_schema(*, migrate: bool = True) -> tuple[str, str]:
    """A new empty schema (migrated unless ``migrate=False``): ``(schema, dsn)``."""
    schema = f"nswgw_t_{uuid.uuid4().hex[:12]}"
    await _admin(f'CREATE SCHEMA "{schema}"')
    dsn = dsn_for(schema)
    if migrate:
        await upgrade_schema(dsn)
    return schema, dsn


async def drop_schema(schema: str) -> None:
    await _admin(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@asynccontextmanager
async def fresh_schema(*, migrate: bool = True) -> AsyncIterator[str]:
    """``async with fresh_schema() as dsn``: a migrated schema of its own, dropped at the end."""
    schema, dsn = await create_schema(migrate=migrate)
    try:
        yield dsn
    finally:
        await drop_schema(schema)


class IsolatedPostgresStore(PostgresStore):
    """A :class:`PostgresStore` in a fresh migrated schema, created at ``open()`` and dropped at ``close()``."""

    def __init__(self, **options: object) -> None:
        super().__init__(dsn_for("unset"), **options)  # type: ignore[arg-type]
        self.schema: str | None = None

    async def open(self) -> None:
        if self.schema is None:
            self.schema, self.dsn = await create_schema()
            self.name = self.dsn
        await super().open()

    async def close(self) -> None:
        try:
            await super().close()
        finally:
            if self.schema is not None:
                schema, self.schema = self.schema, None
                await asyncio.shield(drop_schema(schema))
