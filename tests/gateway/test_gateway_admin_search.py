"""``GET /v1/admin/messages`` filtered by destination and error code in the store, paged exactly by cursor, and the
last success and failure of each partner in ``GET /v1/admin/partners``.

A real gateway on 127.0.0.1 with real loopback partners (one accepting, one refusing or down), on each store
(SQLite and PostgreSQL).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.api import Gateway
from gateway.store import Store
from gateway.store.base import MessageQuery
from gateway.store.postgres import PostgresStore
from gateway.store.sqlite import SqliteStore
from gateway.wire import iso_utc
from helpers.admin import OPS
from helpers.clock import HeldClock
from helpers.gateway import Receiver, doc, eventually, make_config, submit
from helpers.postgres import fresh_schema
from helpers.stores import STORE_PARAMS


@dataclass
class Rig:
    gw: Gateway
    session: aiohttp.ClientSession
    th: Receiver
    kh: Receiver

    async def get(self, path: str) -> tuple[int, dict[str, Any]]:
        async with self.session.get(f"{self.gw.url}{path}", headers={"Authorization": f"Bearer {OPS}"}) as r:
            return r.status, json.loads(await r.read())

    async def pages(self, query: str, limit: int) -> list[list[str]]:
        """The ``message_id`` of every message of a search, page by page, following ``next_cursor``."""
        out: list[list[str]] = []
        path = f"/v1/admin/messages?{query}&limit={limit}"
        cursor = None
        while True:
            status, body = await self.get(path if cursor is None else f"{path}&cursor={cursor}")
            assert status == 200, body
            out.append([m["message_id"] for m in body["messages"]])
            cursor = body["next_cursor"]
            if cursor is None:
                return out

    async def partner(self, name: str) -> dict[str, Any]:
        status, body = await self.get("/v1/admin/partners")
        assert status == 200
        return next(p for p in body["partners"] if p["destination"] == name)


@pytest.fixture(params=STORE_PARAMS)
async def reopenable(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Callable[[], Store]]:
    """A factory of stores over the same database: a restarted gateway finds what the first one stored."""
    if request.param == "sqlite":
        yield lambda: SqliteStore(tmp_path / "gw.db", synchronous="NORMAL")
    else:
        async with fresh_schema() as dsn:
            yield lambda: PostgresStore(dsn, pool_size=4)


@asynccontextmanager
async def running(
    tmp_path: Path, store: Store, th: Receiver, kh: Receiver, clock: HeldClock | None = None
) -> AsyncIterator[Rig]:
    config = make_config(
        tmp_path,
        {"TH": th.url, "KH": kh.url},
        routes=[{"document_type": "sps.permit", "to": ["TH", "KH"]}, {"document_type": "*", "to": ["TH"]}],
        retry={"max_attempts": 1000},
        extra={"operators": {"ops": {"tokens": [OPS]}}},
    )
    async with Gateway(config, store=store, clock=clock) as gw, aiohttp.ClientSession() as session:
        yield Rig(gw, session, th, kh)


@pytest.fixture
async def receivers() -> AsyncIterator[tuple[Receiver, Receiver]]:
    th, kh = await Receiver().start(), await Receiver(mode="reject").start()
    try:
        yield th, kh
    finally:
        await th.stop()
        await kh.stop()


async def _settled(rig: Rig, ids: list[str]) -> None:
    """Wait until every message is final: acknowledged by TH, dead at KH (which refuses)."""

    async def final() -> bool:
        for mid in ids:
            record = await rig.gw.store.get(mid)
            assert record is not None
            if any(d.state.value not in ("ACKNOWLEDGED", "DEAD") for d in record.deliveries):
                return False
        return True

    await eventually(final)


async def test_destination_and_code_filters_are_the_stores_and_pages_follow_them_exactly(
    reopenable: Callable[[], Store], receivers: tuple[Receiver, Receiver], tmp_path: Path
) -> None:
    th, kh = receivers
    async with running(tmp_path, reopenable(), th, kh) as rig:
        ids = []
        for i in range(5):  # interleaved: a page of KH messages spans messages that did not go there
            ids.append((await submit(rig.session, rig.gw.url, "MOIT", f"form-{i}", "eco.form_d", doc(i)))[1]["id"])
            if i % 2 == 0:
                permit = await submit(rig.session, rig.gw.url, "MARD", f"permit-{i}", "sps.permit", doc(i))
                ids.append(permit[1]["id"])
        status, refused = await submit(rig.session, rig.gw.url, "MOIT", "broken", "eco.form_d", b"<Doc>")
        assert (status, refused["error"]["code"]) == (400, "XML_MALFORMED")
        await _settled(rig, ids)

        permits = ["permit-4", "permit-2", "permit-0"]
        assert await rig.pages("destination=KH", 2) == [permits[:2], permits[2:]]
        assert await rig.pages("code=PARTNER_REJECTED", 1) == [[p] for p in permits] + [[]]
        assert await rig.pages("code=XML_MALFORMED", 10) == [["broken"]]
        th_all = await rig.pages("destination=TH", 3)
        newest_first = ["permit-4", "form-4", "form-3", "permit-2", "form-2", "form-1", "permit-0", "form-0"]
        assert [m for page in th_all for m in page] == newest_first
        assert [len(p) for p in th_all] == [3, 3, 2]
        assert await rig.pages("destination=TH&code=PARTNER_REJECTED&sender=MARD", 10) == [permits]
        assert await rig.pages("destination=KH&sender=MOIT", 10) == [[]]
        assert await rig.pages("code=NO_SUCH_CODE", 10) == [[]]
        assert await rig.pages("destination=KH&state=DEAD", 10) == [permits]

        status, body = await rig.get("/v1/admin/messages?cursor=yesterday")
        assert (status, body["error"]["code"], body["error"]["field"]) == (400, "REQUEST_INVALID", "cursor")
        status, body = await rig.get("/v1/admin/messages?cursor=1796279400.5")  # no id: not a next_cursor
        assert (status, body["error"]["code"], body["error"]["field"]) == (400, "REQUEST_INVALID", "cursor")


async def test_pages_neither_repeat_nor_skip_messages_that_arrived_at_the_same_instant(
    reopenable: Callable[[], Store], receivers: tuple[Receiver, Receiver], tmp_path: Path
) -> None:
    th, kh = receivers
    clock = HeldClock()
    async with running(tmp_path, reopenable(), th, kh, clock) as rig:
        clock.held = clock.now()
        ids = [
            (await submit(rig.session, rig.gw.url, "MOIT", f"same-{i}", "eco.form_d", doc(i)))[1]["id"]
            for i in range(5)
        ]
        clock.held = None
        later = (await submit(rig.session, rig.gw.url, "MOIT", "later", "eco.form_d", doc(9)))[1]["id"]
        records = await rig.gw.store.search(MessageQuery(sender="MOIT"))
        assert len({r.message.received_at for r in records if r.message.id in ids}) == 1
        by_id = {r.message.id: r.message.envelope.message_id for r in records}
        pages = await rig.pages("sender=MOIT", 2)
        flat = [m for page in pages for m in page]
        assert flat == [by_id[later]] + [by_id[i] for i in sorted(ids)]
        assert [len(p) for p in pages] == [2, 2, 2, 0]


async def test_partners_show_the_last_success_and_failure_from_the_store_across_a_restart(
    reopenable: Callable[[], Store], tmp_path: Path
) -> None:
    th, kh = await Receiver().start(), await Receiver(mode="down").start()
    try:
        async with running(tmp_path, reopenable(), th, kh) as rig:
            before = await rig.partner("KH")
            assert (before["last_success"], before["last_failure"]) == (None, None)
            _, ack = await submit(rig.session, rig.gw.url, "MARD", "p-1", "sps.permit", doc(1))

            async def kh_failed() -> bool:
                return (await rig.partner("KH"))["last_failure"] is not None

            await eventually(kh_failed)
            await eventually(lambda: ack["id"] in th.processed)

            async def th_succeeded() -> bool:
                return (await rig.partner("TH"))["last_success"] is not None

            await eventually(th_succeeded)
            down = await rig.partner("KH")
            assert down["last_success"] is None
            failure = down["last_failure"]
            assert failure["code"] == "PARTNER_UNAVAILABLE"
            assert failure["message"] == f"{kh.url} answered 503"
            assert (await rig.partner("TH"))["last_failure"] is None

            kh.mode = "ok"

            async def kh_succeeded() -> bool:
                return (await rig.partner("KH"))["last_success"] is not None

            await eventually(kh_succeeded)
            up = await rig.partner("KH")
            assert up["last_failure"]["code"] == "PARTNER_UNAVAILABLE"
            assert _instant(up["last_success"]) > _instant(up["last_failure"]["at"]) >= _instant(failure["at"])
            record = await rig.gw.store.get(ack["id"])
            assert record is not None
            (kh_delivery,) = [d for d in record.deliveries if d.destination == "KH"]
            assert up["last_success"] == iso_utc(kh_delivery.history[-1].at)
            assert up["last_failure"]["at"] == iso_utc(
                max(t.at for t in kh_delivery.history if t.to_state.value == "FAILED")
            )
            seen = {name: await rig.partner(name) for name in ("TH", "KH")}
        async with running(tmp_path, reopenable(), th, kh) as restarted:  # a new process on the same database
            for name in ("TH", "KH"):
                again = await restarted.partner(name)
                assert (again["last_success"], again["last_failure"]) == (
                    seen[name]["last_success"],
                    seen[name]["last_failure"],
                )
                assert again["delivered"] == 0  # the counter is this process's; the outcomes are the store's
    finally:
        await th.stop()
        await kh.stop()


def _instant(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()
