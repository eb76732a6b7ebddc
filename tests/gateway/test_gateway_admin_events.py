"""``GET /v1/admin/events``: the gateway's lifecycle events as Server-Sent Events for monitoring consumers.

A real gateway on 127.0.0.1 with a real loopback partner; an aiohttp client reads the ``text/event-stream`` line by
line as a monitoring consumer would. Events come from real submissions and from ``gateway.events.publish``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import gateway.admin
from gateway.api import Gateway
from gateway.events import Event
from helpers.admin import OPERATORS, OPS, VIEWER
from helpers.gateway import TOKENS, Receiver, doc, eventually, make_config, submit


@dataclass
class Sse:
    """One item of an event stream: an event (``name``, ``id``, ``data``) or a comment."""

    name: str | None = None
    id: str | None = None
    data: Any = None
    comments: list[str] = field(default_factory=list)


class Stream:
    """Reads an open ``text/event-stream`` response item by item (per the SSE format: blank-line separated)."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response

    async def next(self, timeout: float = 10.0) -> Sse | None:
        """The next item; ``None`` at the end of the stream."""
        item = Sse()
        seen = False
        async with asyncio.timeout(timeout):
            while True:
                raw = await self.response.content.readline()
                if not raw:
                    return item if seen else None
                line = raw.decode("utf-8").rstrip("\n")
                if line == "":
                    if seen:
                        return item
                    continue
                seen = True
                key, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if key == "":
                    item.comments.append(value)
                elif key == "event":
                    item.name = value
                elif key == "id":
                    item.id = value
                elif key == "data":
                    item.data = json.loads(value)

    async def event(self, timeout: float = 10.0) -> Sse:
        """The next event, skipping comments."""
        while True:
            item = await self.next(timeout)
            assert item is not None, "the stream ended"
            if item.name is not None:
                return item


@dataclass
class Rig:
    gw: Gateway
    session: aiohttp.ClientSession
    partner: Receiver

    def stream(self, query: str = "", token: str = OPS) -> Any:
        return self.session.get(f"{self.gw.url}/v1/admin/events{query}", headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    partner = await Receiver().start()
    config = make_config(tmp_path, {"TH": partner.url}, extra={"operators": OPERATORS})
    try:
        async with Gateway(config) as gw, aiohttp.ClientSession() as session:
            yield Rig(gw, session, partner)
    finally:
        await partner.stop()


async def test_a_submission_and_a_published_event_reach_a_filtered_stream_numbered_with_their_json(
    rig: Rig,
) -> None:
    async with rig.stream("?events=accepted,breaker_opened") as r:
        assert r.status == 200
        assert r.headers["Content-Type"] == "text/event-stream"
        assert r.headers["Cache-Control"] == "no-cache"
        stream = Stream(r)
        rig.gw.events.publish(Event("delivered", 1796279400.0, {"destination": "TH"}))  # not asked for
        rig.gw.events.publish(Event("breaker_opened", 1796279400.5, {"destination": "TH", "failures": 3}))
        opened = await stream.event()
        assert (opened.id, opened.name) == ("1", "breaker_opened")
        assert opened.data == {
            "event": "breaker_opened",
            "at": "2026-12-03T06:30:00.500000+00:00",
            "destination": "TH",
            "failures": 3,
        }
        status, ack = await submit(rig.session, rig.gw.url, "MOIT", "ev-1", "eco.form_d", doc(1))
        assert status == 202
        accepted = await stream.event()
        assert (accepted.id, accepted.name) == ("2", "accepted")
        assert (accepted.data["event"], accepted.data["message_id"], accepted.data["sender"]) == (
            "accepted",
            ack["id"],
            "MOIT",
        )
        await eventually(lambda: ack["id"] in rig.partner.processed)
        rig.gw.events.publish(Event("breaker_opened", 1796279401.0, {"destination": "TH", "failures": 4}))
        # the delivery's own events (delivered, receipt_verified) were filtered out: the next one sent is this
        after = await stream.event()
        assert (after.id, after.name, after.data["failures"]) == ("3", "breaker_opened", 4)


async def test_an_unfiltered_stream_follows_a_message_from_acceptance_to_its_verified_receipt(rig: Rig) -> None:
    async with rig.stream(token=VIEWER) as r:
        assert r.status == 200
        stream = Stream(r)
        _, ack = await submit(rig.session, rig.gw.url, "MOIT", "ev-2", "eco.form_d", doc(2))
        names: list[str] = []
        ids: list[str | None] = []
        while "receipt_verified" not in names:
            item = await stream.event()
            if item.data.get("message_id") == ack["id"]:
                names.append(item.name or "")
            ids.append(item.id)
    assert names[0] == "accepted"
    assert names[-1] == "receipt_verified"
    assert ids == [str(n) for n in range(1, len(ids) + 1)]


async def test_an_unknown_event_name_is_REQUEST_INVALID_naming_events_and_a_party_token_is_refused(
    rig: Rig,
) -> None:
    async with rig.stream("?events=accepted,exploded") as r:
        body = await r.json()
        assert (r.status, body["error"]["code"], body["error"]["field"]) == (400, "REQUEST_INVALID", "events")
        assert "'exploded'" in body["error"]["message"]
    async with rig.stream("?events=") as r:
        assert (r.status, (await r.json())["error"]["field"]) == (400, "events")
    async with rig.stream(token=TOKENS["MOIT"]) as r:
        assert (r.status, (await r.json())["error"]["code"]) == (403, "AUTH_FORBIDDEN")


async def test_a_quiet_stream_sends_keepalive_comments(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gateway.admin, "EVENTS_KEEPALIVE", 0.05)
    async with rig.stream() as r:
        stream = Stream(r)
        first, second = await stream.next(), await stream.next()
        assert first is not None and second is not None
        assert (first.name, first.comments, second.comments) == (None, ["keepalive"], ["keepalive"])
        rig.gw.events.publish(Event("config_reloaded", 1796279400.0, {"operator": "ops"}))
        assert (await stream.event()).name == "config_reloaded"


async def test_a_client_that_falls_behind_is_told_how_many_events_it_lost(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gateway.admin, "EVENTS_BUFFER", 3)
    async with rig.stream() as r:
        stream = Stream(r)
        for n in range(10):  # no await in between: the stream cannot read any of them before the last
            rig.gw.events.publish(Event("store_fault", 1796279400.0 + n, {"n": n}))
        dropped = await stream.event()
        assert (dropped.name, dropped.id, dropped.data) == ("dropped", None, {"dropped": 7, "total": 7})
        kept = [await stream.event() for _ in range(3)]
        assert [(e.id, e.name, e.data["n"]) for e in kept] == [
            ("1", "store_fault", 7),
            ("2", "store_fault", 8),
            ("3", "store_fault", 9),
        ]
        rig.gw.events.publish(Event("store_fault", 1796279500.0, {"n": 10}))
        assert (await stream.event()).id == "4"  # nothing lost since: no second dropped notice


async def test_a_client_that_goes_away_leaves_no_subscription_behind(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gateway.admin, "EVENTS_KEEPALIVE", 0.05)
    async with rig.stream() as r:
        assert r.status == 200
        assert len(rig.gw.events._subscribers) == 1
    await eventually(lambda: not rig.gw.events._subscribers, limit=10)


async def test_open_streams_end_cleanly_when_the_gateway_stops(tmp_path: Path) -> None:
    partner = await Receiver().start()
    gw = Gateway(make_config(tmp_path, {"TH": partner.url}, extra={"operators": OPERATORS}))
    await gw.start()
    try:
        async with aiohttp.ClientSession() as session:
            rig = Rig(gw, session, partner)
            async with rig.stream() as first, rig.stream("?events=accepted") as second:
                streams = [Stream(first), Stream(second)]
                gw.events.publish(Event("accepted", 1796279400.0, {"message_id": "m"}))
                assert [(await s.event()).name for s in streams] == ["accepted", "accepted"]
                started = time.monotonic()
                stopping = asyncio.create_task(gw.stop())
                assert [await s.next() for s in streams] == [None, None]
                await asyncio.wait_for(stopping, 10)
                assert time.monotonic() - started < 5
    finally:
        if gw.listener is not None:
            await gw.stop()
        await partner.stop()
