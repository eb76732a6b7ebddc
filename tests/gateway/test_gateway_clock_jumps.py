"""Wall-clock steps under a running gateway (real SQLite store, real loopback partner that deduplicates by
message id, real delivery engine and sleeps): the wall clock is injected into :class:`~gateway.clock.SystemClock`
and stepped by ±1 h. Gateway time does not follow the step, so no delivery is sent twice, none is
dead-lettered for a time-to-live it did not use, and an open breaker still closes; after a restart on a wall
clock gone back, gateway time resumes from the newest time in the store.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import aiohttp
import pytest

from gateway.api import Gateway
from gateway.clock import SystemClock
from gateway.config import Config
from gateway.model import State
from helpers.gateway import Receiver, doc, eventually, make_config, submit

FORM_D = "eco.form_d"
HOUR = 3600.0


class SteppedWall:
    """The machine's wall clock plus an offset the test steps."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def _config(tmp_path: Path, receiver: Receiver, **retry: float) -> Config:
    return make_config(
        tmp_path,
        {"TH": receiver.url},
        retry={"ttl": 60.0, "initial": 0.05, "max_wait": 0.2, **retry},
        breaker={"failure_threshold": 3, "reset_timeout": 0.5},
        gateway={"lease_seconds": 10.0},
        per_destination={"TH": {"timeout": 5.0}},
    )


async def _states(gw: Gateway, ids: list[str]) -> list[State]:
    records = [await gw.store.get(i) for i in ids]
    return [r.state for r in records if r is not None]


def _stepped(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "nswgw.clock" and text in r.getMessage()]


async def test_a_forward_step_during_a_slow_delivery_sends_it_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A +60 s step (beyond the 10 s lease) while the partner takes 2 s to answer: the lease does not run out, the
    delivery is not claimed and sent again."""
    caplog.set_level(logging.WARNING)
    wall = SteppedWall()
    async with Receiver(delay=2.0) as receiver:
        config = _config(tmp_path, receiver)
        async with Gateway(config, clock=SystemClock(wall=wall)) as gw, aiohttp.ClientSession() as session:
            status, body = await submit(session, gw.url, "MOIT", "SLOW-1", FORM_D, doc(1))
            assert status == 202
            await eventually(lambda: len(receiver.requests) == 1)
            wall.offset += 60.0

            async def acknowledged() -> bool:
                return await _states(gw, [body["id"]]) == [State.ACKNOWLEDGED]

            await eventually(acknowledged)
            assert [r["id"] for r in receiver.requests] == [body["id"]]
    assert _stepped(caplog, "the wall clock is +60.0 s off gateway time")


async def test_a_one_hour_forward_step_dead_letters_nothing_fresh(tmp_path: Path) -> None:
    """20 deliveries queued while the partner is down (time-to-live 60 s), then the wall clock jumps +1 h: none
    dies, all are delivered once, in order, when the partner is back."""
    wall = SteppedWall()
    async with Receiver(mode="down") as receiver:
        config = _config(tmp_path, receiver)
        async with Gateway(config, clock=SystemClock(wall=wall)) as gw, aiohttp.ClientSession() as session:
            ids = []
            for n in range(20):
                status, body = await submit(session, gw.url, "MOIT", f"M-{n}", FORM_D, doc(n), X_Conversation_Id="C")
                assert status == 202, body
                ids.append(body["id"])
            await eventually(lambda: len(receiver.requests) >= 3)
            wall.offset += HOUR
            receiver.mode = "ok"

            async def delivered() -> bool:
                return await _states(gw, ids) == [State.ACKNOWLEDGED] * 20

            await eventually(delivered)
            assert not await gw.store.dead_letters()
    assert receiver.processed == ids
    assert receiver.counts().most_common(1)[0][1] == 1


async def test_a_one_hour_backward_step_with_the_breaker_open_does_not_stall_delivery(tmp_path: Path) -> None:
    wall = SteppedWall()
    async with Receiver(mode="down") as receiver:
        config = _config(tmp_path, receiver)
        async with Gateway(config, clock=SystemClock(wall=wall)) as gw, aiohttp.ClientSession() as session:
            status, body = await submit(session, gw.url, "MOIT", "B-1", FORM_D, doc(1))
            assert status == 202
            worker = gw.engine.workers["TH"]
            await eventually(lambda: worker.breaker.state == "open")
            wall.offset -= HOUR
            receiver.mode = "ok"

            async def acknowledged() -> bool:
                return await _states(gw, [body["id"]]) == [State.ACKNOWLEDGED]

            await eventually(acknowledged)
            assert worker.breaker.state == "closed"
    assert receiver.processed == [body["id"]]


async def test_a_restart_on_a_wall_clock_gone_back_resumes_from_the_newest_stored_time(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Prerequisite: messages stored, one waiting for its retry (the partner was down), the gateway stopped.
    Predicate: restarted with the wall clock an hour back, the retry goes out at once (not an hour later), a new
    message is stamped no earlier than the stored ones, and a WARNING says the clock was behind."""
    caplog.set_level(logging.WARNING)
    async with Receiver(mode="down") as receiver:
        config = _config(tmp_path, receiver, initial=0.5, max_wait=0.5)
        async with Gateway(config) as gw, aiohttp.ClientSession() as session:
            status, first = await submit(session, gw.url, "MOIT", "R-1", FORM_D, doc(1))
            assert status == 202
            await eventually(lambda: len(receiver.requests) >= 1)
        receiver.mode = "ok"
        wall = SteppedWall()
        wall.offset = -HOUR
        async with Gateway(config, clock=SystemClock(wall=wall)) as gw, aiohttp.ClientSession() as session:

            async def acknowledged() -> bool:
                return await _states(gw, [first["id"]]) == [State.ACKNOWLEDGED]

            await eventually(acknowledged, limit=30)
            status, second = await submit(session, gw.url, "MOIT", "R-2", FORM_D, doc(2))
            assert status == 202
            old, new = await gw.store.get(first["id"]), await gw.store.get(second["id"])
            assert old is not None and new is not None
            assert new.message.received_at >= old.message.received_at
    assert _stepped(caplog, "behind the newest time in the store; gateway time goes on from there")


def test_the_clock_ignores_wall_steps_and_follows_the_monotonic_clock() -> None:
    wall, mono = [1_000_000.0], [50.0]
    clock = SystemClock(wall=lambda: wall[0], monotonic=lambda: mono[0])
    mono[0] += 5
    wall[0] += 5 + HOUR
    assert clock.now() == 1_000_005.0 and clock.monotonic() == 55.0
    wall[0] -= 2 * HOUR
    assert clock.now() == 1_000_005.0
    clock.not_before(1_000_100.0)
    assert clock.now() == 1_000_100.0
    clock.not_before(1_000_000.0)
    assert clock.now() == 1_000_100.0
