"""Breakers and conversations against real loopback partners, on an injected clock: invalid receipts open the
breaker, jittered probes escape a partner flapping with the breaker's period, and a dead conversation head
either holds its conversation (alerting, then ``CONVERSATION_BLOCKED``) or is stepped over."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gateway.api import Gateway
from gateway.config import BreakerSettings
from gateway.delivery import DestinationWorker
from gateway.model import State
from gateway.store import Store
from helpers.gateway import Receiver, doc, eventually, make_config, submit
from helpers.stores import STORE_PARAMS, STORES


class FakeClock:
    """Time that moves only when the test moves it."""

    def __init__(self) -> None:
        self.t = 1000.0

    def now(self) -> float:
        return self.t

    def monotonic(self) -> float:
        return self.t

    def not_before(self, at: float) -> None:
        self.t = max(self.t, at)

    async def sleep(self, seconds: float) -> None:
        self.t += seconds


class FlappingReceiver(Receiver):
    """Down (503) for the first half of every ``period`` of the injected clock, counted from ``base``, up after."""

    def __init__(self, clock: FakeClock, period: float, **kw: Any) -> None:
        super().__init__(**kw)
        self.clock = clock
        self.period = period
        self.base = clock.t
        self.phases: list[str] = []

    def down(self, t: float) -> bool:
        return (t - self.base) % self.period < self.period / 2

    async def _handle(self, request: web.Request) -> web.Response:
        self.mode = "down" if self.down(self.clock.t) else "ok"
        self.phases.append(self.mode)
        return await super()._handle(request)


class RejectingReceiver(Receiver):
    """Rejects (400) the documents in ``reject``, once ``gate`` is set; accepts the others."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.reject: set[bytes] = set()
        self.gate = asyncio.Event()

    async def _handle(self, request: web.Request) -> web.Response:
        rejected = await request.read() in self.reject
        if rejected:
            await self.gate.wait()
        self.mode = "reject" if rejected else "ok"
        return await super()._handle(request)


@pytest.fixture
async def receivers() -> AsyncIterator[list[Receiver]]:
    started: list[Receiver] = []
    yield started
    for r in started:
        await r.stop()


@pytest.fixture(params=STORE_PARAMS)
def store_factory(request: pytest.FixtureRequest) -> Callable[[Path], Store]:
    return STORES[request.param]


async def _state(gw: Gateway, gateway_id: str) -> State:
    record = await gw.store.get(gateway_id)
    assert record is not None
    return record.state


def _worker(gw: Gateway, name: str = "TH") -> DestinationWorker:
    return gw.engine.workers[name]


# --------------------------------------------------------------------------- invalid receipts


async def test_partner_answering_receipts_for_another_message_opens_the_breaker(
    tmp_path: Path, receivers: list[Receiver]
) -> None:
    """Prerequisite: TH answers every delivery 200 with a receipt for another message id. Predicate: after
    ``failure_threshold`` such answers the breaker is open (``circuits_open()``, ``/readyz``, the gauge) and nothing
    more is sent; the message is not lost: once TH answers properly, the probe delivers it, once."""
    th = await Receiver(mode="bad-receipt").start()
    receivers.append(th)
    clock = FakeClock()
    config = make_config(
        tmp_path, {"TH": th.url}, breaker={"failure_threshold": 3, "reset_timeout": 60.0}, retry={"ttl": 1e6}
    )
    async with Gateway(config, clock=clock, rng=random.Random(1)) as gw, aiohttp.ClientSession() as s:
        _, ack = await submit(s, gw.url, "MOIT", "M-1", "eco.form_d", doc(1))
        worker = _worker(gw)
        for n in range(1, 4):  # each failed attempt waits out its backoff on the injected clock
            await eventually(lambda n=n: len(th.requests) == n and not worker.inflight)  # type: ignore[misc]
            clock.t += 1.0
            gw.engine.wake()
        assert gw.engine.circuits_open() == ["TH"]
        async with s.get(f"{gw.url}/readyz") as r:
            ready = await r.json()
        record = await gw.store.get(ack["id"])
        assert record is not None
        [d] = record.deliveries
        assert d.state is State.QUEUED and d.attempts == 3
        assert d.last_error is not None and d.last_error["code"] == "PARTNER_RECEIPT_INVALID"
        assert ready["circuits_open"] == ["TH"]
        assert gw.metrics.value("nswgw_circuit_open", destination="TH") == 1
        assert len(th.requests) == 3  # nothing was sent while open

        th.mode = "ok"
        probe_at = worker.breaker.probe_at
        assert probe_at is not None
        clock.t = probe_at
        gw.engine.wake()
        await eventually(lambda: _acknowledged(gw, ack["id"]))
        assert gw.engine.circuits_open() == []
    assert th.processed == [ack["id"]]
    assert {r["id"] for r in th.requests} == {ack["id"]}


async def _acknowledged(gw: Gateway, gateway_id: str) -> bool:
    return await _state(gw, gateway_id) is State.ACKNOWLEDGED


# --------------------------------------------------------------------------- jittered probes


async def _probes_until_delivered(tmp_path: Path, receivers: list[Receiver], *, jitter: float, limit: int) -> int:
    """Deliver one message to a partner that flaps with the breaker's reset period, moving the injected clock
    straight to each probe; returns how many probes it took (``limit + 1`` if it never got through)."""
    period = 8.0
    clock = FakeClock()
    th = await FlappingReceiver(clock, period).start()
    receivers.append(th)
    config = make_config(
        tmp_path,
        {"TH": th.url},
        breaker={"failure_threshold": 1, "reset_timeout": period, "jitter": jitter},
        retry={"ttl": 1e6, "max_attempts": 1000},
    )
    async with Gateway(config, clock=clock, rng=random.Random(20261203)) as gw, aiohttp.ClientSession() as s:
        _, ack = await submit(s, gw.url, "MOIT", "M-1", "eco.form_d", doc(1))
        worker = _worker(gw)
        await eventually(lambda: len(th.requests) == 1 and not worker.inflight)
        assert th.phases == ["down"]  # the first attempt lands at the start of a down phase
        for probe in range(1, limit + 1):
            probe_at = worker.breaker.probe_at
            assert probe_at is not None
            clock.t = probe_at
            gw.engine.wake()
            await eventually(lambda p=probe: len(th.requests) == p + 1 and not worker.inflight)  # type: ignore[misc]
            if th.phases[-1] == "ok":
                await eventually(lambda: _acknowledged(gw, ack["id"]))
                assert th.processed == [ack["id"]]
                assert {r["id"] for r in th.requests} == {ack["id"]}
                return probe
        assert await _state(gw, ack["id"]) is State.QUEUED
        return limit + 1


async def test_probes_without_jitter_lock_onto_the_down_phase_of_a_partner_flapping_with_the_reset_period(
    tmp_path: Path, receivers: list[Receiver]
) -> None:
    assert await _probes_until_delivered(tmp_path, receivers, jitter=0.0, limit=12) == 13


async def test_jittered_probes_get_through_to_a_partner_flapping_with_the_reset_period(
    tmp_path: Path, receivers: list[Receiver]
) -> None:
    """Prerequisite: the partner is down for the first half of every reset period; ``jitter = 0.2``, a fixed seed.
    Predicate: a probe lands in an up phase within 12 probes and the message is delivered once."""
    assert await _probes_until_delivered(tmp_path, receivers, jitter=0.2, limit=12) <= 12


def test_every_open_period_is_drawn_afresh_within_the_jitter() -> None:
    clock = FakeClock()
    from gateway.delivery import CircuitBreaker

    b = CircuitBreaker(BreakerSettings(failure_threshold=1, reset_timeout=10, jitter=0.2), clock, random.Random(5))
    spans = []
    for _ in range(50):
        b.failure()
        probe_at = b.probe_at
        assert probe_at is not None
        spans.append(probe_at - clock.t)
        clock.t = probe_at
        assert b.allowance(4) == 1
    assert all(8.0 <= span <= 12.0 for span in spans)
    assert len(set(spans)) == 50


@pytest.mark.parametrize("jitter", [-0.1, 1.0, "lots"])
def test_breaker_jitter_outside_0_to_1_is_a_config_error(jitter: object) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        BreakerSettings(jitter=jitter)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- dead conversation heads


async def _conversation_with_rejected_head(
    s: aiohttp.ClientSession, gw: Gateway, th: RejectingReceiver
) -> tuple[str, list[str]]:
    """ORIG, AMEND-1, AMEND-2 in conversation C-1; TH rejects ORIG (dead at once, never retried) once the
    followers are queued."""
    th.reject.add(doc(0))
    _, orig = await submit(s, gw.url, "MOIT", "ORIG", "eco.form_d", doc(0), X_Conversation_Id="C-1")
    followers = [
        (await submit(s, gw.url, "MOIT", f"AMEND-{n}", "eco.amendment", doc(n), X_Conversation_Id="C-1"))[1]["id"]
        for n in (1, 2)
    ]
    th.gate.set()  # the head dies only once its followers wait behind it
    gw.engine.wake()
    return orig["id"], followers


async def test_dead_conversation_head_holds_its_followers_alerts_and_they_expire_naming_it(
    tmp_path: Path,
    receivers: list[Receiver],
    store_factory: Callable[[Path], Store],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Prerequisite: ``conversation_on_dead = "hold"`` (the default); TH rejects the conversation's first message.
    Predicate: the followers are not sent; an ERROR names the conversation and the head and
    ``nswgw_conversations_held_total`` counts it; at their TTL they die with ``CONVERSATION_BLOCKED`` naming the
    head; replayed head first, all three arrive once, in order."""
    th = RejectingReceiver()
    await th.start()
    receivers.append(th)
    clock = FakeClock()
    config = make_config(tmp_path, {"TH": th.url}, retry={"ttl": 100.0})
    assert config.destinations["TH"].conversation_on_dead == "hold"
    caplog.set_level(logging.ERROR, logger="nswgw.delivery")
    async with (
        Gateway(config, clock=clock, store=store_factory(tmp_path)) as gw,
        aiohttp.ClientSession() as s,
    ):
        head, followers = await _conversation_with_rejected_head(s, gw, th)
        await eventually(lambda: gw.metrics.value("nswgw_conversations_held_total", destination="TH") == 1)
        assert await _state(gw, head) is State.DEAD
        alerts = [r for r in caplog.records if r.levelno == logging.ERROR and head in r.getMessage()]
        assert len(alerts) == 1 and "C-1" in alerts[0].getMessage()
        assert 'nswgw_conversations_held_total{destination="TH"} 1.0' in gw.metrics.render()
        # the worker goes on with other conversations, but not with the held one
        _, other = await submit(s, gw.url, "MOIT", "OTHER", "eco.form_d", doc(9))
        await eventually(lambda: _acknowledged(gw, other["id"]))
        assert [await _state(gw, f) for f in followers] == [State.QUEUED, State.QUEUED]
        assert {r["id"] for r in th.requests} == {head, other["id"]}

        clock.t += 101.0
        gw.engine.wake()
        await eventually(lambda: _all_dead(gw, followers))
        letters = await gw.store.dead_letters(destination="TH")
        assert [d.message_id for d in letters] == [head, *followers]
        assert letters[0].last_error is not None and letters[0].last_error["code"] == "PARTNER_REJECTED"
        for d in letters[1:]:
            assert d.last_error is not None and d.last_error["code"] == "CONVERSATION_BLOCKED"
            assert d.last_error["details"]["head"] == head

        from gateway.actions import replay_dead_letters

        th.reject.clear()
        replayed, _ = await replay_dead_letters(gw.store, config, now=clock.now(), operator="test", destination="TH")
        assert len(replayed) == 3
        gw.engine.wake()
        await eventually(lambda: _all_acknowledged(gw, [head, *followers]))
    assert th.processed == [other["id"], head, *followers]


async def test_conversation_head_dying_at_its_ttl_alerts_once_and_holds_its_follower(
    tmp_path: Path, receivers: list[Receiver], caplog: pytest.LogCaptureFixture
) -> None:
    """Prerequisite: ``hold``; TH is down; the head of C-1 is queued 50 s before its follower (TTL 100 s).
    Predicate: when the head reaches its TTL it dies with ``PARTNER_UNAVAILABLE`` and the same alert as a head
    dying of an error is raised once (ERROR naming C-1 and the head, ``nswgw_conversations_held_total`` 1); the
    follower dies at its own TTL with ``CONVERSATION_BLOCKED`` naming the head, without a second alert."""
    th = Receiver(mode="down")
    await th.start()
    receivers.append(th)
    clock = FakeClock()
    config = make_config(tmp_path, {"TH": th.url}, retry={"ttl": 100.0})
    caplog.set_level(logging.ERROR, logger="nswgw.delivery")
    async with Gateway(config, clock=clock) as gw, aiohttp.ClientSession() as s:
        _, head = await submit(s, gw.url, "MOIT", "ORIG", "eco.form_d", doc(0), X_Conversation_Id="C-1")
        await eventually(lambda: len(th.requests) >= 1)
        clock.t += 50.0
        _, follower = await submit(s, gw.url, "MOIT", "AMEND-1", "eco.amendment", doc(1), X_Conversation_Id="C-1")
        clock.t += 51.0
        gw.engine.wake()
        await eventually(lambda: gw.metrics.value("nswgw_conversations_held_total", destination="TH") == 1)
        [dead] = await gw.store.dead_letters(destination="TH")
        assert dead.message_id == head["id"] and dead.last_error is not None
        assert dead.last_error["code"] == "PARTNER_UNAVAILABLE"
        assert await _state(gw, follower["id"]) is State.QUEUED
        alerts = [
            r.getMessage() for r in caplog.records if r.levelno == logging.ERROR and "is held behind" in r.getMessage()
        ]
        assert len(alerts) == 1 and head["id"] in alerts[0] and "C-1" in alerts[0]

        clock.t += 50.0
        gw.engine.wake()
        await eventually(lambda: _all_dead(gw, [follower["id"]]))
        letters = await gw.store.dead_letters(destination="TH")
        assert letters[1].last_error is not None and letters[1].last_error["code"] == "CONVERSATION_BLOCKED"
        assert letters[1].last_error["details"]["head"] == head["id"]
        assert gw.metrics.value("nswgw_conversations_held_total", destination="TH") == 1
        again = [r for r in caplog.records if r.levelno == logging.ERROR and "is held behind" in r.getMessage()]
        assert len(again) == 1


async def test_dead_conversation_head_is_stepped_over_with_skip(
    tmp_path: Path,
    receivers: list[Receiver],
    store_factory: Callable[[Path], Store],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Prerequisite: ``conversation_on_dead = "skip"``; TH rejects the conversation's first message. Predicate: the
    followers are delivered after it, once each, in order; the head stays in the DLQ with its own code."""
    th = RejectingReceiver()
    await th.start()
    receivers.append(th)
    config = make_config(tmp_path, {"TH": th.url}, per_destination={"TH": {"conversation_on_dead": "skip"}})
    caplog.set_level(logging.WARNING, logger="nswgw.delivery")
    async with Gateway(config, store=store_factory(tmp_path)) as gw, aiohttp.ClientSession() as s:
        head, followers = await _conversation_with_rejected_head(s, gw, th)
        await eventually(lambda: _all_acknowledged(gw, followers))
        [dead] = await gw.store.dead_letters(destination="TH")
        held = gw.metrics.value("nswgw_conversations_held_total", destination="TH")
    assert dead.message_id == head and dead.last_error is not None
    assert dead.last_error["code"] == "PARTNER_REJECTED"
    assert th.processed == followers
    assert held == 0
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_conversation_on_dead_accepts_only_hold_or_skip(tmp_path: Path) -> None:
    from gateway.errors import ConfigError

    with pytest.raises((ConfigError, ValueError)):
        make_config(tmp_path, {"TH": "http://127.0.0.1:9/x"}, per_destination={"TH": {"conversation_on_dead": "drop"}})


async def _all_dead(gw: Gateway, ids: list[str]) -> bool:
    return all([await _state(gw, i) is State.DEAD for i in ids])


async def _all_acknowledged(gw: Gateway, ids: list[str]) -> bool:
    return all([await _state(gw, i) is State.ACKNOWLEDGED for i in ids])
