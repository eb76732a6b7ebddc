"""Delivery against real loopback partners: receipts, retries, outages, TTL, DLQ, breakers, bulkheads, order."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from adapters.http import HttpAdapter, translate_error
from gateway.actions import replay_dead_letters
from gateway.api import Gateway
from gateway.config import BreakerSettings, RetryPolicy
from gateway.delivery import Backoff, CircuitBreaker
from gateway.errors import ConfigError, NswError, PartnerError, PartnerRejected, PartnerUnavailable, ReceiptInvalid
from gateway.model import Delivery, Message, PartyId, State, SubmissionEnvelope
from gateway.ports import OutboundMessage, adapter_names, resolve_adapter
from helpers.gateway import Receiver, doc, eventually, make_config, submit


@pytest.fixture
async def receivers() -> AsyncIterator[dict[str, Receiver]]:
    started: dict[str, Receiver] = {}
    yield started
    for r in started.values():
        await r.stop()


async def start(receivers: dict[str, Receiver], name: str, **kw: object) -> Receiver:
    r = await Receiver(**kw).start()  # type: ignore[arg-type]
    receivers[name] = r
    return r


async def states(gw: Gateway, ids: list[str]) -> list[State]:
    out = []
    for i in ids:
        rec = await gw.store.get(i)
        assert rec is not None
        out.append(rec.state)
    return out


async def all_in(gw: Gateway, ids: list[str], state: State) -> bool:
    return all(s is state for s in await states(gw, ids))


async def test_issued_eco_fans_out_and_is_acknowledged_by_each_receiver(tmp_path: Path, receivers) -> None:
    th = await start(receivers, "TH")
    customs = await start(receivers, "CUSTOMS")
    config = make_config(
        tmp_path,
        {"TH": th.url, "CUSTOMS": customs.url},
        routes=[{"document_type": "eco.form_d", "to": ["TH", "CUSTOMS"]}],
    )
    async with Gateway(config) as gw, aiohttp.ClientSession() as s:
        status, ack = await submit(s, gw.url, "MOIT", "ECO-1", "eco.form_d", doc(1), X_Conversation_Id="C-1")
        assert status == 202 and ack["state"] == "QUEUED" and ack["destinations"] == ["TH", "CUSTOMS"]
        await eventually(lambda: all_in(gw, [ack["id"]], State.ACKNOWLEDGED))
        record = await gw.store.get(ack["id"])
    assert th.processed == customs.processed == [ack["id"]]
    headers = th.requests[0]["headers"]
    assert headers["X-Sender"] == "MOIT" and headers["X-Document-Type"] == "eco.form_d"
    assert headers["X-Conversation-Id"] == "C-1"
    assert th.requests[0]["body"] == doc(1)
    assert record is not None and all(d.receipt for d in record.deliveries)
    kinds = [e.kind for e in await _journal(config)]
    assert kinds.count("ACCEPTED") == 1 and kinds.count("DELIVERED") == 2


async def test_json_xml_and_same_format_destinations_of_one_message_each_get_their_content_type(
    tmp_path: Path, receivers
) -> None:
    """Prerequisite: one harmonized JSON submission routed to a ``json``, a ``form-d`` and a ``same`` destination.
    Predicate: each partner receives the Content-Type of the format the broker mapped its payload to (``same``:
    the submitted format, JSON), and the stored deliveries carry it."""
    from helpers.mappings import form_d
    from mappings.registry import get

    rest, th, echo = [await start(receivers, n) for n in ("REST", "TH", "ECHO")]
    config = make_config(
        tmp_path,
        {"REST": rest.url, "TH": th.url, "ECHO": echo.url},
        per_destination={"REST": {"format": "json"}, "TH": {"format": "form-d"}, "ECHO": {"format": "same"}},
    )
    body = get("json").emit(form_d())
    async with Gateway(config) as gw, aiohttp.ClientSession() as s:
        status, ack = await submit(
            s, gw.url, "MOIT", "ECO-J1", "eco.form_d", body, X_Format="json", Content_Type="application/json"
        )
        assert status == 202 and sorted(ack["destinations"]) == ["ECHO", "REST", "TH"]
        await eventually(lambda: all_in(gw, [ack["id"]], State.ACKNOWLEDGED))
        record = await gw.store.get(ack["id"])
    sent = {name: r.requests[0]["headers"]["Content-Type"] for name, r in (("REST", rest), ("TH", th), ("ECHO", echo))}
    assert sent == {"REST": "application/json", "TH": "application/xml", "ECHO": "application/json"}
    get("form-d").parse(th.requests[0]["body"])
    assert json.loads(rest.requests[0]["body"]) == json.loads(echo.requests[0]["body"])
    assert record is not None
    assert {d.destination: d.content_type for d in record.deliveries} == sent


async def _journal(config):  # type: ignore[no-untyped-def]
    from gateway.store import open_store

    async with open_store(config.store.url) as store:
        return await store.journal()


async def test_partner_outage_then_recovery_delivers_in_conversation_order(tmp_path: Path, receivers) -> None:
    """Prerequisite: TH answers 503 to its first 25 requests. Predicate: every message arrives, once, in order,
    with the same message id on every retry."""
    th = await start(receivers, "TH", fail_first=25)
    config = make_config(tmp_path, {"TH": th.url}, concurrency=4)
    async with Gateway(config) as gw, aiohttp.ClientSession() as s:
        ids: dict[str, list[str]] = {}
        for n in range(30):
            conv = f"C-{n % 3}"
            _, ack = await submit(s, gw.url, "MOIT", f"M-{n}", "eco.form_d", doc(n), X_Conversation_Id=conv)
            ids.setdefault(conv, []).append(ack["id"])
        every = [i for v in ids.values() for i in v]
        await eventually(lambda: all_in(gw, every, State.ACKNOWLEDGED))
        retries = gw.metrics.value("nswgw_delivery_retries_total", destination="TH")
    assert sorted(th.processed) == sorted(every) and len(th.processed) == 30
    for conv_ids in ids.values():
        assert [i for i in th.processed if i in conv_ids] == conv_ids
    failed_ids = {r["id"] for r in th.requests[:25]}
    assert failed_ids <= set(every)
    assert retries == 25


async def test_partner_down_past_ttl_ends_in_dlq_and_replays_cleanly(tmp_path: Path, receivers) -> None:
    th = await start(receivers, "TH", mode="down")
    config = make_config(tmp_path, {"TH": th.url}, retry={"ttl": 0.3, "initial": 0.02, "max_wait": 0.05})
    async with Gateway(config) as gw, aiohttp.ClientSession() as s:
        acks = [
            (await submit(s, gw.url, "MOIT", f"M-{n}", "eco.form_d", doc(n), X_Conversation_Id="C"))[1]
            for n in range(3)
        ]
        ids = [a["id"] for a in acks]
        await eventually(lambda: all_in(gw, ids, State.DEAD))
        dead = await gw.store.dead_letters(destination="TH")
        assert [d.message_id for d in dead] == ids
        assert dead[0].last_error is not None and dead[0].last_error["code"] == "PARTNER_UNAVAILABLE"
        for d in dead[1:]:  # held behind the dead head, which they name
            assert d.last_error is not None and d.last_error["code"] == "CONVERSATION_BLOCKED"
            assert d.last_error["details"]["head"] == ids[0]
        th.mode = "ok"
        replayed, _ = await replay_dead_letters(gw.store, config, now=gw.clock.now(), operator="test", destination="TH")
        gw.engine.wake()
        assert len(replayed) == 3
        await eventually(lambda: all_in(gw, ids, State.ACKNOWLEDGED))
        record = await gw.store.get(ids[0])
    assert th.processed == ids
    assert record is not None
    steps = [t.to_state for t in record.history if t.destination == "TH"]
    assert steps[-4:] == [State.DEAD, State.QUEUED, State.DELIVERED, State.ACKNOWLEDGED]
    assert {r["id"] for r in th.requests} == set(ids)


async def test_rejecting_partner_is_not_retried(tmp_path: Path, receivers) -> None:
    th = await start(receivers, "TH", mode="reject")
    config = make_config(tmp_path, {"TH": th.url})
    async with Gateway(config) as gw, aiohttp.ClientSession() as s:
        _, ack = await submit(s, gw.url, "MOIT", "M-1", "eco.form_d", doc(1))
        await eventually(lambda: all_in(gw, [ack["id"]], State.DEAD))
        [dead] = await gw.store.dead_letters()
    assert len(th.requests) == 1
    assert dead.last_error is not None and dead.last_error["code"] == "PARTNER_REJECTED"
    assert dead.attempts == 1


async def test_receipt_for_another_message_is_not_an_acknowledgement(tmp_path: Path, receivers) -> None:
    th = await start(receivers, "TH", mode="bad-receipt")
    config = make_config(tmp_path, {"TH": th.url}, retry={"max_attempts": 3})
    async with Gateway(config) as gw, aiohttp.ClientSession() as s:
        _, ack = await submit(s, gw.url, "MOIT", "M-1", "eco.form_d", doc(1))
        await eventually(lambda: all_in(gw, [ack["id"]], State.DEAD))
        record = await gw.store.get(ack["id"])
    assert len(th.requests) == 3
    assert record is not None
    d = record.deliveries[0]
    assert d.last_error is not None and d.last_error["code"] == "PARTNER_RECEIPT_INVALID" and d.attempts == 3
    assert State.DELIVERED in [t.to_state for t in d.history] and State.ACKNOWLEDGED not in [
        t.to_state for t in d.history
    ]


async def test_dead_partner_does_not_hold_up_the_others(tmp_path: Path, receivers) -> None:
    """Bulkhead: with TH down (and retrying), every CUSTOMS delivery still completes."""
    th = await start(receivers, "TH", mode="down")
    customs = await start(receivers, "CUSTOMS")
    config = make_config(
        tmp_path, {"TH": th.url, "CUSTOMS": customs.url}, concurrency=2, routes=[{"to": ["TH", "CUSTOMS"]}]
    )
    async with Gateway(config) as gw, aiohttp.ClientSession() as s:
        ids = [(await submit(s, gw.url, "MOIT", f"M-{n}", "eco.form_d", doc(n)))[1]["id"] for n in range(20)]

        async def customs_done() -> bool:
            return len(customs.processed) == 20

        await eventually(customs_done)
        recs = [await gw.store.get(i) for i in ids]
    assert sorted(customs.processed) == sorted(ids)
    assert th.processed == []
    for rec in recs:
        assert rec is not None
        by_dest = {d.destination: d.state for d in rec.deliveries}
        assert by_dest["CUSTOMS"] is State.ACKNOWLEDGED and by_dest["TH"] is not State.ACKNOWLEDGED


class FakeClock:
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


def test_circuit_opens_after_threshold_then_lets_one_probe_through() -> None:
    clock = FakeClock()
    b = CircuitBreaker(BreakerSettings(failure_threshold=3, reset_timeout=10, jitter=0), clock)
    assert b.allowance(4) == 4
    for _ in range(3):
        b.failure()
    assert b.state == "open" and b.allowance(4) == 0
    clock.t += 10
    assert b.state == "half-open" and b.allowance(4) == 1 and b.allowance(4) == 0
    b.failure()
    assert b.state == "open" and b.allowance(4) == 0
    clock.t += 10
    assert b.allowance(4) == 1
    b.success()
    assert b.state == "closed" and b.allowance(4) == 4


def _delivery(attempts: int, queued_at: float = 0.0) -> Delivery:
    m = Message.receive(SubmissionEnvelope(sender=PartyId("MOIT"), message_id="M", document_type="d"), at=0.0)
    m = m.verify(at=0.0).map(at=0.0).enqueue(at=0.0)
    d = Delivery.create(m, "TH", b"", content_type="application/xml", at=queued_at, ttl=100.0)
    for _ in range(attempts):
        d = d.attempt_failed(PartnerUnavailable("x"), at=0.0).retry_at(0.0, at=0.0)
    return d


def test_backoff_is_exponential_with_jitter_and_stops_at_attempts_or_ttl() -> None:
    random.seed(7)
    policy = RetryPolicy(max_attempts=5, ttl=100.0, initial=1.0, max_wait=6.0, jitter=0.5)
    b = Backoff(policy, (PartnerUnavailable, ReceiptInvalid))
    err = PartnerUnavailable("503")
    waits = [b.next_attempt(_delivery(n), err, now=10.0) for n in (1, 2, 3, 4)]
    assert all(w is not None for w in waits)
    delays = [w - 10.0 for w in waits if w is not None]
    for delay, base in zip(delays, (1.0, 2.0, 4.0, 6.0), strict=False):
        assert base <= delay <= base + 0.5 or (base == 6.0 and delay == 6.0)
    assert b.next_attempt(_delivery(5), err, now=10.0) is None  # max attempts
    assert b.next_attempt(_delivery(1), err, now=100.0) is None  # time-to-live
    assert b.next_attempt(_delivery(1), PartnerRejected("400"), now=10.0) is None  # never retried


def test_every_aiohttp_error_is_translated_at_the_adapter_boundary() -> None:
    """Fails when aiohttp grows an exception type the HTTP adapter would leave unmapped."""

    def subclasses(cls: type) -> set[type]:
        out = set()
        for sub in cls.__subclasses__():
            out |= {sub} | subclasses(sub)
        return out

    import aiohttp.client_exceptions as ce

    for cls in subclasses(aiohttp.ClientError) | {aiohttp.ClientError, asyncio.TimeoutError, ConnectionResetError}:
        exc = cls.__new__(cls)
        if isinstance(exc, aiohttp.ClientResponseError):
            exc.status = 502
        translated = translate_error(exc, "http://x")
        assert isinstance(translated, PartnerError) and isinstance(translated, NswError), cls
    assert ce  # the module whose classes were checked


def test_status_codes_map_to_retry_or_reject() -> None:
    def response_error(status: int) -> aiohttp.ClientResponseError:
        e = aiohttp.ClientResponseError.__new__(aiohttp.ClientResponseError)
        e.status = status
        return e

    assert translate_error(response_error(503), "u").code == "PARTNER_UNAVAILABLE"
    assert translate_error(response_error(429), "u").code == "PARTNER_UNAVAILABLE"
    assert translate_error(response_error(400), "u").code == "PARTNER_REJECTED"
    assert translate_error(response_error(404), "u").code == "PARTNER_REJECTED"


async def test_unreachable_partner_is_unavailable_not_a_driver_error() -> None:
    async with HttpAdapter("http://127.0.0.1:9/inbox", timeout=2) as adapter:
        with pytest.raises(PartnerUnavailable) as err:
            await adapter.deliver(OutboundMessage("m", b"<x/>", "MOIT", "d", "c"))
    assert isinstance(err.value.__cause__, aiohttp.ClientError)


async def test_large_payload_arrives_whole_with_its_length_and_again_after_a_redirect() -> None:
    from aiohttp import web

    payload = bytes(range(256)) * 12289  # about 3 MiB: many slices of the adapter's writes
    seen: list[tuple[str, str | None, str | None, bytes]] = []

    async def inbox(request: web.Request) -> web.Response:
        body = await request.read()
        seen.append(
            (request.path, request.headers.get("Content-Length"), request.headers.get("Transfer-Encoding"), body)
        )
        if request.path == "/moved":
            raise web.HTTPTemporaryRedirect("/inbox")
        return web.json_response({"message_id": request.headers["X-Message-Id"]})

    app = web.Application(client_max_size=2 * len(payload))
    app.router.add_post("/{name}", inbox)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/moved"
        async with HttpAdapter(url, timeout=10) as adapter:
            receipt = await adapter.deliver(OutboundMessage("m-large", payload, "MOIT", "d", "c"))
    finally:
        await runner.cleanup()
    assert receipt.message_id == "m-large"
    assert [(path, length, chunked, body == payload) for path, length, chunked, body in seen] == [
        ("/moved", str(len(payload)), None, True),
        ("/inbox", str(len(payload)), None, True),
    ]


def test_unknown_adapter_suggests_the_right_name() -> None:
    assert "http" in adapter_names()
    assert resolve_adapter("http") is HttpAdapter
    with pytest.raises(ConfigError) as err:
        resolve_adapter("htpp", field="destinations.TH.adapter")
    assert err.value.code == "CONFIG_INVALID" and err.value.field == "destinations.TH.adapter"
    assert "did you mean 'http'" in err.value.message
