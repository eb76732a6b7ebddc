"""The gateway event bus: subscribers see events, slow ones lose the oldest."""

from __future__ import annotations

import asyncio
import logging

import pytest

from gateway.events import Event, EventBus


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
    EventBus().publish(Event("dead_lettered", 0.0, {"message_id": "m1", "code": "X"}))
    [record] = [r for r in caplog.records if r.name == "nswgw.events"]
    assert (record.levelname, record.getMessage(), record.__dict__["message_id"]) == ("ERROR", "dead_lettered", "m1")
    assert Event("accepted", 0.0, {"message_id": "m1"}).to_dict() == {
        "event": "accepted",
        "at": "1970-01-01T00:00:00+00:00",
        "message_id": "m1",
    }
