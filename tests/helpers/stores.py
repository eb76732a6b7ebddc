"""Both store kinds for the tests that run against each: an embedded SQLite file, and a real PostgreSQL server
in a fresh schema per test (``postgres`` marker); the ``store`` fixture (a pytest plugin, loaded by
tests/conftest.py) runs each test that takes it on both."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from gateway.store import Store
from gateway.store.sqlite import SqliteStore
from helpers.postgres import IsolatedPostgresStore, fresh_schema

__all__ = ["STORES", "STORE_PARAMS", "store", "store_section", "store_settings"]

STORES: dict[str, Callable[[Path], Store]] = {
    "sqlite": lambda tmp: SqliteStore(tmp / "gw.db", synchronous="NORMAL"),
    "postgresql": lambda tmp: IsolatedPostgresStore(pool_size=4),
}
"""A new, unopened store of each kind, by name, given the test's ``tmp_path``."""

STORE_PARAMS = [
    pytest.param(name, marks=[pytest.mark.postgres] if name == "postgresql" else []) for name in sorted(STORES)
]
"""``params`` of a fixture parametrised over :data:`STORES` (the PostgreSQL one marked ``postgres``)."""


@pytest.fixture(params=STORE_PARAMS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """An open store of each kind in :data:`STORES`, closed after the test."""
    s = STORES[request.param](tmp_path)
    await s.open()
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture(params=STORE_PARAMS)
async def store_section(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    """The ``store`` table of a gateway configuration on each kind of :data:`STORES`: a SQLite file in the test's
    ``tmp_path``, or a fresh PostgreSQL schema dropped after the test."""
    async with AsyncExitStack() as stack:
        if request.param == "postgresql":
            yield await store_settings(stack, request.param)
        else:
            yield {"store": {"url": f"sqlite:///{tmp_path / 'gw.db'}", "synchronous": "NORMAL"}}


async def store_settings(stack: AsyncExitStack, kind: str) -> dict[str, Any]:
    """The configuration (a ``store`` table, or none: the default SQLite file) of a gateway on the store ``kind``
    of :data:`STORES`, for a gateway made from its configuration alone; a PostgreSQL schema is dropped when
    ``stack`` closes."""
    if kind == "postgresql":
        dsn = await stack.enter_async_context(fresh_schema())
        return {"store": {"kind": "postgresql", "dsn": dsn, "pool_size": 4}}
    return {}
