"""The store behaviour suite: run against every Store implementation (SQLite and PostgreSQL, see STORES)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from dataclasses import replace
from pathlib import Path

import pytest

from gateway.errors import InvalidTransition, PartnerRejected, PartnerUnavailable
from gateway.journal import verify_chain
from gateway.model import Delivery, Message, PartyId, State, SubmissionAck, SubmissionEnvelope
from gateway.store import MessageQuery, Store, open_store
from gateway.store.sqlite import SqliteStore
from helpers.gateway import eventually


def queued(
    mid: str,
    destinations: tuple[str, ...] = ("TH",),
    *,
    at: float = 100.0,
    conversation: str | None = None,
    sender: str = "MOIT",
    content_types: dict[str, str] | None = None,
    on_behalf_of: str | None = None,
    ttl: float = 50.0,
) -> tuple[Message, list[Delivery], SubmissionAck]:
    env = SubmissionEnvelope(
        sender=PartyId(sender),
        message_id=mid,
        document_type="eco.form_d",
        conversation_id=conversation,
        on_behalf_of=on_behalf_of,
    )
    m = Message.receive(env, at=at).verify(at=at).map(at=at).enqueue(at=at)
    types = content_types or {}
    ds = [
        Delivery.create(m, d, f"<m>{mid}</m>".encode(), content_type=types.get(d, "application/xml"), at=at, ttl=ttl)
        for d in destinations
    ]
    ack = SubmissionAck(m.id, sender, mid, m.state, at, destinations)
    return m, ds, ack


async def accept(store: Store, mid: str, **kw: object) -> SubmissionAck:
    m, ds, ack = queued(mid, **kw)  # type: ignore[arg-type]
    stored, created = await store.accept(m, b"<raw/>", ds, ack)
    assert created
    return stored


async def test_duplicate_submission_returns_the_original_ack_and_adds_no_delivery(store: Store) -> None:
    first = await accept(store, "M-1")
    m, ds, ack = queued("M-1", at=999.0)
    again, created = await store.accept(m, b"<other/>", ds, ack)
    assert not created and again == first
    claimed = await store.claim("TH", owner="w", limit=10, now=1000.0, lease=10)
    assert [d.message_id for d in claimed] == [first.id]


async def test_same_message_id_from_another_sender_is_a_different_message(store: Store) -> None:
    a = await accept(store, "M-1")
    b = await accept(store, "M-1", sender="MARD")
    assert a.id != b.id


async def test_fan_out_puts_one_entry_in_each_outbox(store: Store) -> None:
    ack = await accept(store, "M-1", destinations=("TH", "CUSTOMS"))
    for dest in ("TH", "CUSTOMS"):
        [d] = await store.claim(dest, owner="w", limit=10, now=200.0, lease=10)
        assert d.message_id == ack.id and d.destination == dest


async def test_content_type_of_each_delivery_survives_claim_retry_lookup_and_dead_letter(store: Store) -> None:
    types = {"REST": "application/json", "TH": "application/xml"}
    ack = await accept(store, "M-1", destinations=("REST", "TH"), content_types=types)
    [rest] = await store.claim("REST", owner="w", limit=10, now=110.0, lease=10)
    [th] = await store.claim("TH", owner="w", limit=10, now=110.0, lease=10)
    assert (rest.content_type, th.content_type) == ("application/json", "application/xml")
    await store.record(
        rest.attempt_failed(PartnerUnavailable("503"), at=111.0).retry_at(112.0, at=111.0), owner="w", now=111.0
    )
    [again] = await store.claim("REST", owner="w", limit=10, now=113.0, lease=1)
    assert again.content_type == "application/json"
    await store.record(again.released("handed back", at=114.0), owner="w", now=114.0)
    record = await store.get(ack.id)
    assert record is not None
    assert {d.destination: d.content_type for d in record.deliveries} == types
    assert len(await store.expire("REST", now=151.0, code="PARTNER_UNAVAILABLE", detail="ttl")) == 1
    [dead] = await store.dead_letters(destination="REST")
    assert dead.content_type == "application/json"


async def test_large_and_small_payloads_come_back_byte_for_byte_from_claim_lookup_and_dead_letter(
    store: Store,
) -> None:
    large = bytes(range(256)) * (3 * 4096 + 7)  # above the 1 MiB that SQLite writes and reads by blob I/O
    m, [d], ack = queued("M-LARGE", content_types={"TH": "application/pdf"}, on_behalf_of="0101234567")
    assert (await store.accept(m, large, [replace(d, payload=large)], ack))[1]
    small = await accept(store, "M-SMALL")
    assert [await store.message_payload(i) for i in (ack.id, small.id)] == [large, b"<raw/>"]
    claimed = await store.claim("TH", owner="w", limit=10, now=110.0, lease=10)
    assert [(c.payload, c.content_type, c.on_behalf_of) for c in claimed] == [
        (large, "application/pdf", "0101234567"),
        (b"<m>M-SMALL</m>", "application/xml", None),
    ]
    for c in claimed:
        await store.record(c.released("handed back", at=111.0), owner="w", now=111.0)
    claimed = await store.claim("TH", owner="w", limit=10, now=112.0, lease=10)
    assert [c.payload for c in claimed] == [large, b"<m>M-SMALL</m>"]
    for c in claimed:
        await store.record(c.released("handed back", at=113.0), owner="w", now=113.0)
    record = await store.get(ack.id)
    assert record is not None and [x.payload for x in record.deliveries] == [large]
    expired = await store.expire("TH", now=151.0, code="PARTNER_UNAVAILABLE", detail="ttl")
    assert [x.payload for x in expired] == [large, b"<m>M-SMALL</m>"]
    assert [x.payload for x in await store.dead_letters(destination="TH")] == [large, b"<m>M-SMALL</m>"]


async def test_enterprise_a_delivery_was_relayed_for_survives_claim_lookup_and_dead_letter(store: Store) -> None:
    relayed = await accept(store, "M-1", sender="BROKER", on_behalf_of="0300000001")
    await accept(store, "M-2")
    claimed = {d.message_id: d for d in await store.claim("TH", owner="w", limit=10, now=110.0, lease=10)}
    assert [d.on_behalf_of for d in claimed.values()] == ["0300000001", None]
    for d in claimed.values():
        await store.record(d.released("handed back", at=111.0), owner="w", now=111.0)
    record = await store.get(relayed.id)
    assert record is not None and [d.on_behalf_of for d in record.deliveries] == ["0300000001"]
    assert len(await store.expire("TH", now=151.0, code="PARTNER_UNAVAILABLE", detail="ttl")) == 2
    dead = {d.message_id: d.on_behalf_of for d in await store.dead_letters(destination="TH")}
    assert dead[relayed.id] == "0300000001"


async def _claim_when_a_lease_ends(store: Store, owner: str) -> list[Delivery]:
    """Claim (in real time) until something is handed out: leases run by the store's clock (SQLite: the ``now``
    its one node gives; PostgreSQL: the database's), so these tests wait for real leases to end."""
    taken: list[Delivery] = []

    async def claimed() -> bool:
        taken.extend(await store.claim("TH", owner=owner, limit=10, now=time.time(), lease=600))
        return bool(taken)

    await eventually(claimed, limit=30)
    return taken


async def test_claimed_delivery_is_not_handed_out_twice_until_its_lease_ends(store: Store) -> None:
    await accept(store, "M-1")
    await accept(store, "M-2")
    [long] = await store.claim("TH", owner="a", limit=1, now=time.time(), lease=600)
    [short] = await store.claim("TH", owner="a", limit=1, now=time.time(), lease=0.2)
    taken = await _claim_when_a_lease_ends(store, "b")
    assert [d.message_id for d in taken] == [short.message_id]  # the other lease has not ended: still a's
    assert long.message_id != short.message_id


async def test_amendment_waits_until_its_original_is_acknowledged(store: Store) -> None:
    await accept(store, "ORIG", conversation="C-1")
    await accept(store, "AMEND", conversation="C-1")
    await accept(store, "OTHER")
    claimed = await store.claim("TH", owner="w", limit=10, now=200.0, lease=10)
    assert [d.message_id for d in claimed] == [queued("ORIG")[0].id, queued("OTHER")[0].id]
    orig = claimed[0]
    # a failed attempt of the original still blocks the amendment
    await store.record(
        orig.attempt_failed(PartnerUnavailable("503"), at=201.0).retry_at(202.0, at=201.0), owner="w", now=201.0
    )
    assert [d.message_id for d in await store.claim("TH", owner="w", limit=10, now=203.0, lease=10)] == [
        orig.message_id
    ]
    await store.record(orig.delivered(at=204.0).acknowledged(b"r", at=204.0), owner="w", now=204.0)
    assert [d.message_id for d in await store.claim("TH", owner="w", limit=10, now=205.0, lease=10)] == [
        queued("AMEND")[0].id
    ]


async def _dead_head_and_followers(store: Store) -> tuple[Delivery, list[str]]:
    """ORIG, AMEND-1, AMEND-2 in conversation C-1 to TH; ORIG claimed and rejected into the dead-letter queue."""
    await accept(store, "ORIG", conversation="C-1")
    await accept(store, "AMEND-1", conversation="C-1")
    await accept(store, "AMEND-2", conversation="C-1")
    [orig] = await store.claim("TH", owner="w", limit=10, now=200.0, lease=10)
    rejected = PartnerRejected("schema", field="TH")
    dead = orig.attempt_failed(rejected, at=201.0).dead(rejected, at=201.0)
    await store.record(dead, owner="w", now=201.0)
    return dead, [queued("AMEND-1")[0].id, queued("AMEND-2")[0].id]


async def test_dead_head_holds_its_conversation_and_followers_expire_naming_it(store: Store) -> None:
    dead, followers = await _dead_head_and_followers(store)
    assert await store.claim("TH", owner="w", limit=10, now=202.0, lease=10, on_dead="hold") == []
    assert await store.waiting_behind(dead) == 2
    assert len(await store.expire("TH", now=250.0, code="PARTNER_UNAVAILABLE", detail="ttl", on_dead="hold")) == 2
    letters = await store.dead_letters(destination="TH")
    assert [d.message_id for d in letters] == [dead.message_id, *followers]
    assert letters[0].last_error is not None and letters[0].last_error["code"] == "PARTNER_REJECTED"
    for d in letters[1:]:
        assert d.last_error is not None and d.last_error["code"] == "CONVERSATION_BLOCKED"
        assert d.last_error["details"] == {"head": dead.message_id, "conversation": "C-1"}
    assert await store.waiting_behind(dead) == 0


async def test_dead_head_is_stepped_over_with_skip_and_order_is_kept_after_it(store: Store) -> None:
    dead, followers = await _dead_head_and_followers(store)
    [first] = await store.claim("TH", owner="w", limit=10, now=202.0, lease=10, on_dead="skip")
    assert first.message_id == followers[0]  # the next head: one per conversation, still in order
    await store.record(first.delivered(at=203.0).acknowledged(b"r", at=203.0), owner="w", now=203.0)
    [second] = await store.claim("TH", owner="w", limit=10, now=204.0, lease=10, on_dead="skip")
    assert second.message_id == followers[1]
    await store.record(second.delivered(at=205.0).acknowledged(b"r", at=205.0), owner="w", now=205.0)
    assert await store.waiting_behind(dead) == 0


async def test_follower_expiring_with_skip_keeps_the_code_of_its_own_failure(store: Store) -> None:
    dead, followers = await _dead_head_and_followers(store)
    assert len(await store.expire("TH", now=250.0, code="PARTNER_UNAVAILABLE", detail="ttl", on_dead="skip")) == 2
    letters = await store.dead_letters(destination="TH")
    assert [d.last_error["code"] for d in letters if d.last_error] == [
        "PARTNER_REJECTED",
        "PARTNER_UNAVAILABLE",
        "PARTNER_UNAVAILABLE",
    ]


async def test_stale_worker_cannot_record_after_losing_its_lease(store: Store) -> None:
    await accept(store, "M-1")
    [d] = await store.claim("TH", owner="a", limit=1, now=time.time(), lease=0.1)
    [d2] = await _claim_when_a_lease_ends(store, "b")
    with pytest.raises(InvalidTransition) as err:
        await store.record(d.delivered(at=212.0).acknowledged(b"", at=212.0), owner="a", now=212.0)
    assert err.value.code == "STATE_TRANSITION_INVALID"
    await store.record(d2.delivered(at=212.0).acknowledged(b"", at=212.0), owner="b", now=212.0)
    with pytest.raises(InvalidTransition):  # and nobody can move it twice
        await store.record(d2.delivered(at=213.0).acknowledged(b"", at=213.0), owner="b", now=213.0)


async def test_recover_releases_the_leases_of_a_crashed_run(store: Store) -> None:
    await accept(store, "M-1")
    await store.claim("TH", owner="dead-process", limit=1, now=200.0, lease=1000)
    assert await store.recover(now=201.0) == 1
    assert len(await store.claim("TH", owner="new", limit=1, now=201.0, lease=10)) == 1


async def test_expired_message_goes_to_the_dead_letter_queue(store: Store) -> None:
    ack = await accept(store, "M-1")
    assert len(await store.expire("TH", now=149.0, code="PARTNER_UNAVAILABLE", detail="ttl")) == 0
    assert len(await store.expire("TH", now=151.0, code="PARTNER_UNAVAILABLE", detail="ttl")) == 1
    [dead] = await store.dead_letters(destination="TH")
    assert dead.message_id == ack.id and dead.last_error is not None
    assert dead.last_error["code"] == "PARTNER_UNAVAILABLE"
    record = await store.get(ack.id)
    assert record is not None and record.state is State.DEAD
    assert [t.to_state for t in record.history] == [
        State.RECEIVED,
        State.VERIFIED,
        State.MAPPED,
        State.QUEUED,
        State.QUEUED,
        State.DEAD,
    ]


async def test_get_and_search_show_state_history_and_replies(store: Store) -> None:
    ack = await accept(store, "REG-1", sender="MARD")
    env = SubmissionEnvelope(
        sender=PartyId("MOIT"), message_id="PERMIT-1", document_type="eco.form_d", reference=ack.id
    )
    m = Message.receive(env, at=300.0).verify(at=300.0).map(at=300.0).enqueue(at=300.0)
    await store.accept(m, b"<p/>", [], SubmissionAck(m.id, "MOIT", "PERMIT-1", m.state, 300.0))
    record = await store.get(ack.id)
    assert record is not None
    assert record.replies == (m.id,)
    assert record.to_dict()["deliveries"][0]["state"] == "QUEUED"
    found = await store.search(MessageQuery(sender="MOIT"))
    assert [r.message.id for r in found] == [m.id]
    assert await store.search(MessageQuery(sender="MOIT", state=State.DEAD)) == []
    assert await store.get("nope") is None


async def test_journal_chains_every_accepted_and_delivered_message(store: Store) -> None:
    await accept(store, "M-1")
    await accept(store, "M-2")
    [d, _] = await store.claim("TH", owner="w", limit=2, now=200.0, lease=10)
    await store.record(d.delivered(at=201.0).acknowledged(b"ok", at=201.0), owner="w", now=201.0)
    entries = await store.journal()
    assert [e.kind for e in entries] == ["ACCEPTED", "ACCEPTED", "DELIVERED"]
    assert verify_chain(entries).ok


async def test_concurrent_writes_share_commits(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "g.db", synchronous="FULL")
    async with store:
        await asyncio.gather(*(accept(store, f"M-{i}") for i in range(300)))
        batches, operations = store.commit_stats
    assert operations == 300 and batches < operations


async def test_edited_or_removed_log_entry_is_detected(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "g.db")
    async with store:
        for i in range(5):
            await accept(store, f"M-{i}")
    with sqlite3.connect(tmp_path / "g.db") as conn:
        conn.execute("UPDATE journal SET digest = 'f00d' WHERE seq = 2")
    conn.close()
    async with store:
        report = verify_chain(await store.journal())
    assert [(p.seq, p.problem.split()[0]) for p in report.problems] == [(2, "edited")]
    with sqlite3.connect(tmp_path / "g.db") as conn:
        conn.execute("DELETE FROM journal WHERE seq = 4")
    conn.close()
    async with store:
        report = verify_chain(await store.journal())
    assert {p.problem.split()[0] for p in report.problems} == {"edited", "removed"}


def test_unknown_store_scheme_names_the_key() -> None:
    from gateway.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        open_store("mysql://x")
    assert err.value.field == "store.url"
