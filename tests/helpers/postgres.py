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
from contextlib import asynccontextmanager, suppress
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from gateway.store.postgres import PostgresStore, upgrade_schema

__all__ = [
    "PG_DSN",
    "dsn_for",
    "create_schema",
    "drop_schema",
    "fresh_schema",
    "IsolatedPostgresStore",
    "PgProxy",
    "pg_proxy",
]

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


class PgProxy:
    """A TCP proxy on 127.0.0.1 in front of the test PostgreSQL server, for outages a gateway must live through.

    * :meth:`refuse`: new connections are refused (the server is down); :meth:`start` accepts them again;
    * :meth:`cut`: a network cut. Every open connection is dropped (the server sees its sessions end, as when a
      firewall or NAT forgets the flows) and new connections hang unanswered, as a lost SYN does, until
      :meth:`heal`, which closes those that waited.

    :meth:`through` rewrites a DSN to reach the server through the proxy.
    """

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self.cutting = False
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self._open: set[asyncio.StreamWriter] = set()
        self._healed = asyncio.Event()

    def through(self, dsn: str) -> str:
        parts = urlsplit(dsn)
        netloc = parts.netloc.rsplit("@", 1)
        host = f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def refuse(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()

    def cut(self) -> None:
        self.cutting = True
        self._healed.clear()
        for writer in list(self._open):
            writer.transport.abort()

    def heal(self) -> None:
        self.cutting = False
        self._healed.set()

    async def stop(self) -> None:
        self.heal()
        await self.refuse()
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cutting:  # unanswered until the cut heals, then dropped
            await self._healed.wait()
            writer.transport.abort()
            return
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self._open.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                self._open.discard(dst)
                with suppress(OSError, RuntimeError):
                    dst.close()

        for task in (asyncio.create_task(pipe(reader, up_writer)), asyncio.create_task(pipe(up_reader, writer))):
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)


@asynccontextmanager
async def pg_proxy() -> AsyncIterator[PgProxy]:
    """``async with pg_proxy() as proxy``: a started :class:`PgProxy` in front of :data:`PG_DSN`, stopped at the end."""
    target = urlsplit(PG_DSN)
    proxy = PgProxy(target.hostname or "127.0.0.1", target.port or 5432)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.stop()
