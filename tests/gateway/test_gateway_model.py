"""The message and delivery state machines: only the transitions of TRANSITIONS can happen."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.errors import InvalidTransition, PartnerRejected, PartnerUnavailable, RequestInvalid, XmlMalformed
from gateway.model import (
    TRANSITIONS,
    Delivery,
    Message,
    PartyId,
    State,
    SubmissionEnvelope,
    gateway_message_id,
    overall_state,
)


def envelope(mid: str = "M-1", **kw: str) -> SubmissionEnvelope:
    return SubmissionEnvelope(sender=PartyId("MOIT"), message_id=mid, document_type="eco.form_d", **kw)


def queued_delivery() -> Delivery:
    m = Message.receive(envelope(), at=1.0).verify(at=2.0).map(at=3.0).enqueue(at=4.0)
    return Delivery.create(m, "TH", b"<x/>", content_type="application/xml", at=4.0, ttl=10.0)


def test_happy_path_records_timestamped_history() -> None:
    m = Message.receive(envelope(), at=1.0).verify(at=2.0).map(at=3.0).enqueue(at=4.0)
    assert [t.to_state for t in m.history] == [State.RECEIVED, State.VERIFIED, State.MAPPED, State.QUEUED]
    assert [t.at for t in m.history] == [1.0, 2.0, 3.0, 4.0]
    d = (
        Delivery.create(m, "TH", b"<x/>", content_type="application/xml", at=4.0, ttl=10.0)
        .delivered(at=5.0)
        .acknowledged(b"ok", at=5.5)
    )
    assert d.state is State.ACKNOWLEDGED and d.attempts == 1 and d.receipt == b"ok"
    assert [t.to_state for t in d.history] == [State.QUEUED, State.DELIVERED, State.ACKNOWLEDGED]


def test_rejection_keeps_the_coded_error() -> None:
    m = Message.receive(envelope(), at=1.0).reject(XmlMalformed("bad", field="line 1"), at=2.0)
    assert m.state is State.REJECTED
    assert m.error is not None and m.error["code"] == "XML_MALFORMED" and m.error["field"] == "line 1"
    assert m.history[-1].code == "XML_MALFORMED"


def test_skipping_verification_is_impossible() -> None:
    with pytest.raises(InvalidTransition) as err:
        Message.receive(envelope(), at=1.0).map(at=2.0)
    assert err.value.code == "STATE_TRANSITION_INVALID"


def test_rejected_message_cannot_be_queued() -> None:
    m = Message.receive(envelope(), at=1.0).reject(XmlMalformed("bad"), at=2.0)
    with pytest.raises(InvalidTransition):
        m.enqueue(at=3.0)


def test_unqueued_message_gets_no_delivery() -> None:
    with pytest.raises(InvalidTransition) as err:
        Delivery.create(Message.receive(envelope(), at=1.0), "TH", b"", content_type="application/xml", at=1.0, ttl=1.0)
    assert err.value.code == "STATE_TRANSITION_INVALID"


def test_acknowledged_delivery_is_final() -> None:
    d = queued_delivery().delivered(at=5.0).acknowledged(b"", at=5.0)
    for event in (
        lambda: d.delivered(at=6.0),
        lambda: d.dead(PartnerRejected("x"), at=6.0),
        lambda: d.replay(at=6.0, ttl=1.0),
        lambda: d.attempt_failed(PartnerUnavailable("x"), at=6.0),
    ):
        with pytest.raises(InvalidTransition):
            event()


def test_state_has_no_setter() -> None:
    m = Message.receive(envelope(), at=1.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.history = ()  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        queued_delivery().state = State.ACKNOWLEDGED  # type: ignore[misc]


def test_failed_attempt_then_retry_then_dead_then_replay() -> None:
    d = queued_delivery().attempt_failed(PartnerUnavailable("503"), at=5.0).retry_at(6.0, at=5.0)
    assert d.state is State.QUEUED and d.attempts == 1 and d.next_attempt_at == 6.0
    assert d.last_error is not None and d.last_error["code"] == "PARTNER_UNAVAILABLE"
    d = d.attempt_failed(PartnerUnavailable("503"), at=7.0).dead(PartnerUnavailable("ttl"), at=7.0)
    assert d.state is State.DEAD and d.attempts == 2
    r = d.replay(at=100.0, ttl=5.0)
    assert r.state is State.QUEUED and r.attempts == 0 and r.deadline == 105.0 and r.message_id == d.message_id


def test_bad_envelope_fields_are_named() -> None:
    with pytest.raises(RequestInvalid) as err:
        envelope("has space")
    assert err.value.code == "REQUEST_INVALID" and err.value.field == "X-Message-Id"
    with pytest.raises(RequestInvalid) as err:
        SubmissionEnvelope(sender=PartyId("MOIT"), message_id="M", document_type="")
    assert err.value.field == "X-Document-Type"


def test_gateway_id_is_stable_per_sender_and_message_id() -> None:
    assert gateway_message_id("MOIT", "1") == envelope("1").gateway_id
    assert gateway_message_id("MOIT", "1") != gateway_message_id("MARD", "1")


def test_overall_state_is_the_least_advanced_delivery() -> None:
    assert overall_state(State.REJECTED, []) is State.REJECTED
    assert overall_state(State.QUEUED, [State.ACKNOWLEDGED, State.QUEUED]) is State.QUEUED
    assert overall_state(State.QUEUED, [State.ACKNOWLEDGED, State.DEAD]) is State.DEAD
    assert overall_state(State.QUEUED, [State.ACKNOWLEDGED]) is State.ACKNOWLEDGED


EVENTS = ["delivered", "acknowledged", "failed", "retry", "dead", "replay"]


@given(st.lists(st.sampled_from(EVENTS), max_size=30))
def test_any_event_sequence_follows_the_transition_table(events: list[str]) -> None:
    """Prerequisite: a queued delivery. Predicate: whatever events arrive, every recorded step is in TRANSITIONS."""
    d = queued_delivery()
    for i, event in enumerate(events):
        at = 10.0 + i
        actions = {
            "delivered": lambda: d.delivered(at=at),
            "acknowledged": lambda: d.acknowledged(b"", at=at),
            "failed": lambda: d.attempt_failed(PartnerUnavailable("x"), at=at),
            "retry": lambda: d.retry_at(at + 1, at=at),
            "dead": lambda: d.dead(PartnerUnavailable("x"), at=at),
            "replay": lambda: d.replay(at=at, ttl=1.0),
        }
        before = d.state
        try:
            d = actions[event]()
        except InvalidTransition:
            assert d.state is before
            continue
        assert d.state in TRANSITIONS[before]
    for step in d.history[1:]:
        assert step.to_state in TRANSITIONS[step.from_state]
