"""Logs and lifecycle events: the event bus, the JSON and text formats, ``nswgw serve --log-format``, and the events
each step of a message and of the gateway publishes."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import sys
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest

from gateway.api import Gateway
from gateway.clock import SystemClock
from gateway.config import LogSettings
from gateway.events import Event, EventBus, Subscription
from gateway.logs import JsonFormatter, TextFormatter, configure_logging
from helpers.admin import OPERATORS, OPS, gateway_toml, serve, stop
from helpers.gateway import TOKENS, Receiver, dev_trust, doc, eventually, make_config, submit
from signing.dev.pki import DevPki


def test_a_slow_subscriber_loses_the_oldest_events_and_counts_them() -> None:
    async def scenario() -> None:
        bus = EventBus()
        async with bus.subscribe(buffer=2) as subscription:
            for n in range(5):
                bus.publish(Event("accepted", 0.0, {"message_id": f"m{n}"}))
            assert subscription.dropped == 3
            first = await asyncio.wait_for(subscription.__anext__(), 5)
            second = await asyncio.wait_for(subscription.__anext__(), 5)
            assert [first.fields["message_id"], second.fields["message_id"]] == ["m3", "m4"]

    asyncio.run(scenario())


def test_a_published_event_is_logged_with_its_fields(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="nswgw.events")
    EventBus().publish(Event("store_fault", 0.0, {"destination": "TH", "code": "STORE_UNAVAILABLE"}))
    EventBus().publish(Event("dead_lettered", 0.0, {"message_id": "m1", "code": "X"}))
    fault, dead = [r for r in caplog.records if r.name == "nswgw.events"]
    assert (fault.levelname, fault.getMessage(), fault.__dict__["code"]) == (
        "ERROR",
        "store_fault",
        "STORE_UNAVAILABLE",
    )
    assert (dead.levelname, dead.getMessage(), dead.__dict__["message_id"]) == ("WARNING", "dead_lettered", "m1")
    assert Event("accepted", 0.0, {"message_id": "m1"}).to_dict() == {
        "event": "accepted",
        "at": "1970-01-01T00:00:00+00:00",
        "message_id": "m1",
    }


# ---------------------------------------------------------------------------------------------- formatters


def _record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord("nswgw.events", logging.INFO, __file__, 1, "accepted", None, None)
    record.__dict__.update(extra)
    return record


def test_a_json_line_carries_the_time_level_logger_message_and_every_structured_field() -> None:
    line = json.loads(JsonFormatter().format(_record(event="accepted", message_id="g1", attempt=2, when=object())))
    assert set(line) == {"ts", "level", "logger", "message", "event", "message_id", "attempt", "when"}
    assert (line["level"], line["logger"], line["message"], line["message_id"], line["attempt"]) == (
        "INFO",
        "nswgw.events",
        "accepted",
        "g1",
        2,
    )
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", line["ts"])
    assert line["when"].startswith("<object object")


def test_a_json_line_of_an_exception_carries_its_traceback() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("nswgw.api", logging.ERROR, __file__, 1, "incident %s", ("i1",), sys.exc_info())
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "incident i1"
    assert "Traceback" in line["exception"] and "ValueError: boom" in line["exception"]


def test_a_text_line_quotes_values_with_spaces_and_leaves_out_the_event_name() -> None:
    text = TextFormatter().format(_record(event="accepted", message_id="g1", field="X Sender", empty=""))
    assert text.endswith(' INFO nswgw.events accepted message_id=g1 field="X Sender" empty=""'), text


def test_configure_logging_writes_nswgw_at_its_level_and_other_libraries_from_warning() -> None:
    out = io.StringIO()
    root = logging.getLogger()
    saved = (root.level, list(root.handlers), logging.getLogger("nswgw").level)
    try:
        configure_logging(LogSettings(level="DEBUG", format="json"), stream=out)
        configure_logging(LogSettings(level="INFO", format="json"), stream=out)  # replaces, never doubles
        logging.getLogger("nswgw.delivery").info("kept")
        logging.getLogger("nswgw.delivery").debug("below the level")
        logging.getLogger("asyncio").info("another library's INFO")
        logging.getLogger("asyncio").warning("another library's WARNING")
    finally:
        for handler in list(root.handlers):
            if handler not in saved[1]:
                root.removeHandler(handler)
        root.setLevel(saved[0])
        logging.getLogger("nswgw").setLevel(saved[2])
    messages = [json.loads(line)["message"] for line in out.getvalue().splitlines()]
    assert messages == ["kept", "another library's WARNING"]


# ---------------------------------------------------------------------------------------------- nswgw serve


async def test_nswgw_serve_logs_json_lines_that_follow_a_submission_by_its_gateway_id(tmp_path: Path) -> None:
    """Predicate: with ``--log-format json`` every stderr line is one JSON object; the gateway id of an accepted
    submission is on its ``accepted``, ``delivered`` and ``receipt_verified`` events, in that order, with sender,
    sender's message id, destination and latency; an access line names route, status and party; the start-up
    line names version, store, parties and destinations; no line holds the bearer token."""
    partner = await Receiver().start()
    path = tmp_path / "gateway.toml"
    path.write_text(gateway_toml(tmp_path, partner.url), encoding="utf-8")
    process, url = await serve(path, "--log-format", "json", "--log-level", "INFO")
    try:
        async with aiohttp.ClientSession() as session:
            status, ack = await submit(session, url, "MOIT", "LOG-1", "eco.form_d", doc(1))
            assert status == 202, ack
            await eventually(lambda: partner.processed == [ack["id"]])
            await asyncio.sleep(0.2)  # the worker records the receipt after the partner answered
    finally:
        lines = await stop(process)
        await partner.stop()
    records = [json.loads(line) for line in lines]  # every line parses
    started = next(r for r in records if r.get("event") == "started")
    assert (started["logger"], started["parties"], started["destinations"]) == ("nswgw.gateway", "MOIT", "TH=http")
    assert started["store"].startswith("sqlite:///") and started["version"] and started["url"] == url
    steps = [r for r in records if r.get("message_id") == ack["id"]]
    assert [r["event"] for r in steps] == ["accepted", "delivered", "receipt_verified"]
    accepted, delivered, verified = steps
    assert (accepted["sender"], accepted["sender_message_id"], accepted["document_type"]) == (
        "MOIT",
        "LOG-1",
        "eco.form_d",
    )
    assert accepted["destinations"] == "TH" and accepted["latency_seconds"] >= 0
    assert (delivered["destination"], delivered["attempt"], verified["state"]) == ("TH", 1, "ACKNOWLEDGED")
    assert verified["latency_seconds"] >= delivered["latency_seconds"] > 0
    [post] = [r for r in records if r["logger"] == "nswgw.access" and r["method"] == "POST"]
    assert (post["route"], post["status"], post["party"]) == ("/v1/messages", 202, "MOIT")
    assert post["duration_seconds"] > 0
    assert records[-1]["event"] == "stopped"
    assert not [line for line in lines if TOKENS["MOIT"] in line]


async def test_a_refused_request_logs_its_code_field_and_incident_id_and_the_access_line_its_status(
    tmp_path: Path,
) -> None:
    """Predicate: a submission without ``X-Message-Id`` and one with an unknown token are answered with coded
    errors whose incident ids are on a ``rejected`` event (code, field, route) and on the access line, in text
    format too; the unknown token itself is never logged."""
    partner = await Receiver().start()
    path = tmp_path / "gateway.toml"
    path.write_text(gateway_toml(tmp_path, partner.url), encoding="utf-8")
    process, url = await serve(path, "--log-format", "text")
    try:
        async with aiohttp.ClientSession() as session:
            headers = {"Authorization": f"Bearer {TOKENS['MOIT']}", "X-Document-Type": "eco.form_d"}
            async with session.post(f"{url}/v1/messages", data=doc(1), headers=headers) as r:
                invalid = (r.status, (await r.json())["error"])
            headers = {"Authorization": "Bearer not-a-token-9f3c", "X-Message-Id": "A-1", "X-Document-Type": "x"}
            async with session.post(f"{url}/v1/messages", data=doc(1), headers=headers) as r:
                unknown = (r.status, (await r.json())["error"])
    finally:
        lines = await stop(process)
        await partner.stop()
    assert (invalid[0], invalid[1]["code"], unknown[0], unknown[1]["code"]) == (
        400,
        "REQUEST_INVALID",
        401,
        "AUTH_REQUIRED",
    ), (invalid, unknown)
    for error, status in ((invalid[1], 400), (unknown[1], 401)):
        mentions = [line for line in lines if error["incident_id"] in line]
        rejected = [line for line in mentions if " nswgw.events rejected " in line]
        assert len(rejected) == 1, mentions
        assert f"code={error['code']}" in rejected[0] and f"field={error['field']}" in rejected[0]
        assert "route=/v1/messages" in rejected[0]
        access = [line for line in mentions if " nswgw.access " in line]
        assert len(access) == 1 and f"status={status}" in access[0] and f"code={error['code']}" in access[0]
    assert not [line for line in lines if "not-a-token-9f3c" in line or TOKENS["MOIT"] in line]
    assert [line for line in lines if " nswgw.events rejected " in line and "sender_message_id=A-1" in line]


# ---------------------------------------------------------------------------------------------- events


async def _events_until(subscription: Subscription, wanted: Callable[[list[Event]], bool]) -> list[Event]:
    seen: list[Event] = []

    async def collect() -> None:
        async for event in subscription:
            seen.append(event)
            if wanted(seen):
                return

    await asyncio.wait_for(collect(), 30)
    return seen


async def test_a_delivery_retried_twice_publishes_each_retry_then_delivered_and_receipt_verified(
    tmp_path: Path,
) -> None:
    async with Receiver(fail_first=2) as partner:
        config = make_config(tmp_path, {"TH": partner.url})
        async with Gateway(config) as gw, aiohttp.ClientSession() as session:
            subscription = gw.events.subscribe()
            status, ack = await submit(session, gw.url, "MOIT", "R-1", "eco.form_d", doc(1))
            assert status == 202, ack
            seen = await _events_until(subscription, lambda s: s[-1].name == "receipt_verified")
    mine = [e for e in seen if e.fields.get("message_id") == ack["id"]]
    assert [e.name for e in mine] == ["accepted", "retry_scheduled", "retry_scheduled", "delivered", "receipt_verified"]
    retries = [e.fields for e in mine if e.name == "retry_scheduled"]
    assert [(r["attempt"], r["code"], r["destination"]) for r in retries] == [
        (1, "PARTNER_UNAVAILABLE", "TH"),
        (2, "PARTNER_UNAVAILABLE", "TH"),
    ]
    assert all(r["next_attempt_at"].endswith("+00:00") for r in retries)
    assert mine[-1].fields["attempt"] == 3 and "code" not in mine[-1].fields


async def test_a_rejecting_partner_dead_letters_and_an_operator_replay_is_published_with_the_operator(
    tmp_path: Path,
) -> None:
    async with Receiver(mode="reject") as partner:
        config = make_config(tmp_path, {"TH": partner.url}, extra={"operators": OPERATORS})
        async with Gateway(config) as gw, aiohttp.ClientSession() as session:
            subscription = gw.events.subscribe()
            status, ack = await submit(session, gw.url, "MOIT", "D-1", "eco.form_d", doc(1))
            seen = await _events_until(subscription, lambda s: s[-1].name == "dead_lettered")
            partner.mode = "ok"
            async with session.post(
                f"{gw.url}/v1/admin/dead-letters/replay",
                json={"ids": [ack["id"]]},
                headers={"Authorization": f"Bearer {OPS}"},
            ) as r:
                assert r.status == 200, await r.text()
            seen += await _events_until(subscription, lambda s: s[-1].name == "receipt_verified")
    names = [e.name for e in seen if e.fields.get("message_id") == ack["id"]]
    assert names == ["accepted", "dead_lettered", "replayed", "delivered", "receipt_verified"]
    dead = next(e.fields for e in seen if e.name == "dead_lettered")
    replayed = next(e.fields for e in seen if e.name == "replayed")
    assert (dead["code"], dead["state"], dead["attempt"]) == ("PARTNER_REJECTED", "DEAD", 1)
    assert (replayed["operator"], replayed["state"], replayed["destination"]) == ("ops", "QUEUED", "TH")


async def test_the_breaker_publishes_opened_half_open_and_closed(tmp_path: Path) -> None:
    async with Receiver(mode="down") as partner:
        config = make_config(
            tmp_path, {"TH": partner.url}, breaker={"failure_threshold": 2, "reset_timeout": 0.3, "jitter": 0.0}
        )
        async with Gateway(config) as gw, aiohttp.ClientSession() as session:
            subscription = gw.events.subscribe()
            await submit(session, gw.url, "MOIT", "B-1", "eco.form_d", doc(1))
            seen = await _events_until(subscription, lambda s: s[-1].name == "breaker_opened")
            partner.mode = "ok"
            seen += await _events_until(subscription, lambda s: s[-1].name == "breaker_closed")
    transitions = [(e.name, e.fields["destination"]) for e in seen if e.name.startswith("breaker_")]
    assert transitions == [("breaker_opened", "TH"), ("breaker_half_open", "TH"), ("breaker_closed", "TH")]
    opened = next(e.fields for e in seen if e.name == "breaker_opened")
    assert (opened["failures"], opened["open_seconds"]) == (2, 0.3)


async def test_a_certificate_within_the_warning_days_is_announced_at_start(tmp_path: Path, dev_pki: DevPki) -> None:
    """Predicate: with gateway time 10 days before the dev PKI's first CA certificate expires, starting announces
    it (party MOIT, ~10 days left), and announces nothing beyond the 30 warning days."""
    config = make_config(
        tmp_path, {"TH": "http://127.0.0.1:9/inbox"}, parties={"MOIT": {"trust": dev_trust(dev_pki, "moit")}}
    )
    expiry = {
        "anchor": dev_pki.root_cert.not_valid_after_utc.timestamp(),
        "intermediate": dev_pki.issuing_cert.not_valid_after_utc.timestamp(),
    }
    role, first = min(expiry.items(), key=lambda item: item[1])
    gateway = Gateway(config, clock=SystemClock(wall=lambda: first - 10 * 86400), serve_http=False)
    subscription = gateway.events.subscribe()
    async with gateway:
        published = subscription.pending()
    expiring = [e.fields for e in published if e.name == "certificate_expiring"]
    nearest = min(expiring, key=lambda f: float(f["days_left"]))
    assert (nearest["party"], nearest["role"]) == ("MOIT", role)
    assert 9.9 < nearest["days_left"] <= 10.0
    assert all(f["days_left"] <= 30 for f in expiring)
