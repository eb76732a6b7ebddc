"""The ``store`` fixture: each test that takes it runs on both store kinds (:data:`helpers.stores.STORES`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.store import Store
from helpers.stores import STORE_PARAMS, STORES


@pytest.fixture(params=STORE_PARAMS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    s = STORES[request.param](tmp_path)
    await s.open()
    try:
        yield s
    finally:
        await s.close()
