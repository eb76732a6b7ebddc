"""Replays: the same signed document submitted again under another message id is a duplicate of its content.

A real gateway on 127.0.0.1 verifying the dev PKI's signatures, a real loopback partner, and each store
(SQLite and PostgreSQL). The header message id is unsigned on REST; what the sender's signature covers is not.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from adapters.filedrop import FileDropInbox, atomic_write
from adapters.vnsw_soap import VnswSoapEndpoint
from gateway.api import Gateway
from gateway.model import Delivery, Message, PartyId, SubmissionAck, SubmissionEnvelope, gateway_message_id
from gateway.store import Store
from gateway.store.base import MessageQuery
from gateway.store.sqlite import SqliteStore
from helpers.adapters import call_vnsw_endpoint, vnsw_envelope
from helpers.gateway import Receiver, dev_trust, eventually, make_config, submit
from helpers.stores import STORE_PARAMS, STORES
from signing.dev.pki import DevPki
from signing.keys import SoftwareSigner
from signing.policy import SigningProfile
from signing.sign import sign_document
from signing.xml import parse_xml

ECO = b'<Eco xmlns="urn:test:eco" kind="form-d" no="VN-SG-26-00042"><Exporter>Minh Phu Seafood JSC</Exporter></Eco>'
OTHER_ECO = ECO.replace(b"00042", b"00043")


def moit(pki: DevPki) -> SoftwareSigner:
    p = pki.party("moit")
    return SoftwareSigner(p.key, p.cert, [pki.issuing_cert])


def rewrapped(signed: bytes) -> bytes:
    """The same signed document, serialized otherwise: still verifies, other bytes. A comment before the root,
    the root's attributes in another order, the SignatureValue's base64 folded over two lines, a newline after."""
    swapped = signed.replace(b'kind="form-d" no="VN-SG-26-00042"', b'no="VN-SG-26-00042" kind="form-d"')
    value = re.search(rb"<ds:SignatureValue>([^<]+)</ds:SignatureValue>", swapped)
    assert value is not None and swapped != signed
    folded = value.group(1)[:40] + b"\n" + value.group(1)[40:]
    body = swapped.replace(value.group(1), folded)
    head, _, rest = body.partition(b"?>")
    return head + b"?>\n<!-- resent -->\n" + rest + b"\n"


@pytest.fixture(params=STORE_PARAMS)
async def rig(
    request: pytest.FixtureRequest, tmp_path: Path, dev_pki: DevPki
) -> AsyncIterator[tuple[Gateway, aiohttp.ClientSession, Receiver]]:
    th = await Receiver().start()
    config = make_config(
        tmp_path,
        {"TH": th.url},
        routes=[{"document_type": "eco.form_d", "to": ["TH"]}],
        parties={name: {"trust": dev_trust(dev_pki, name.lower())} for name in ("MOIT", "MARD", "TRADER")},
        gateway={"verification": "signature"},
    )
    try:
        async with Gateway(config, store=STORES[request.param](tmp_path)) as gw, aiohttp.ClientSession() as s:
            yield gw, s, th
    finally:
        await th.stop()


async def _acknowledged(gw: Gateway, gid: str) -> None:
    async def done() -> bool:
        record = await gw.store.get(gid)
        return record is not None and record.state.value == "ACKNOWLEDGED"

    await eventually(done)


async def _stored(gw: Gateway) -> list[str]:
    return sorted(r.message.envelope.message_id for r in await gw.store.search(MessageQuery(sender="MOIT")))


async def test_same_signed_document_under_a_new_message_id_is_refused_naming_the_original_and_not_delivered(
    rig: Any, dev_pki: DevPki
) -> None:
    gw, s, th = rig
    signed = sign_document(ECO, moit(dev_pki))
    status, ack = await submit(s, gw.url, "MOIT", "ECO-1", "eco.form_d", signed)
    assert status == 202, ack
    await _acknowledged(gw, ack["id"])
    status, body = await submit(s, gw.url, "MOIT", "ECO-1-AGAIN", "eco.form_d", signed)
    assert status == 409, body
    error = body["error"]
    assert error["code"] == "DUPLICATE_CONTENT" and error["origin"] == "client" and error["field"] == "body"
    assert error["details"] == {"original": {"id": ack["id"], "message_id": "ECO-1", "state": "ACKNOWLEDGED"}}
    assert "ack" not in body
    # nothing stored under the replay's id, nothing delivered again
    replay = gateway_message_id("MOIT", "ECO-1-AGAIN")
    async with s.get(f"{gw.url}/v1/messages/{replay}", headers={"Authorization": "Bearer moit-token"}) as r:
        assert r.status == 404 and (await r.json())["error"]["code"] == "MESSAGE_NOT_FOUND"
    assert await _stored(gw) == ["ECO-1"]
    assert len(th.requests) == 1
    assert gw.metrics.value("nswgw_messages_rejected_total", code="DUPLICATE_CONTENT") == 1


async def test_rewrapped_signed_document_under_a_new_message_id_is_still_a_duplicate(rig: Any, dev_pki: DevPki) -> None:
    gw, s, th = rig
    signed = sign_document(ECO, moit(dev_pki))
    status, ack = await submit(s, gw.url, "MOIT", "ECO-2", "eco.form_d", signed)
    assert status == 202, ack
    status, body = await submit(s, gw.url, "MOIT", "ECO-2-REWRAPPED", "eco.form_d", rewrapped(signed))
    assert status == 409 and body["error"]["code"] == "DUPLICATE_CONTENT", body
    assert body["error"]["details"]["original"]["id"] == ack["id"]
    await _acknowledged(gw, ack["id"])
    assert await _stored(gw) == ["ECO-2"] and len(th.requests) == 1


async def test_same_content_signed_again_by_the_sender_under_a_new_message_id_is_a_duplicate(
    rig: Any, dev_pki: DevPki
) -> None:
    """A fresh signature (another SignatureValue, KeyInfo without the chain) over the same content."""
    gw, s, _ = rig
    p = dev_pki.party("moit")
    status, ack = await submit(s, gw.url, "MOIT", "ECO-3", "eco.form_d", sign_document(ECO, moit(dev_pki)))
    assert status == 202, ack
    again = sign_document(ECO, SoftwareSigner(p.key, p.cert, []))
    status, body = await submit(s, gw.url, "MOIT", "ECO-3-RESIGNED", "eco.form_d", again)
    assert status == 409 and body["error"]["code"] == "DUPLICATE_CONTENT", body
    assert body["error"]["details"]["original"]["message_id"] == "ECO-3"


async def test_different_signed_content_under_the_same_message_id_gets_the_original_acknowledgement(
    rig: Any, dev_pki: DevPki
) -> None:
    gw, s, th = rig
    status, ack = await submit(s, gw.url, "MOIT", "ECO-4", "eco.form_d", sign_document(ECO, moit(dev_pki)))
    assert status == 202, ack
    other = sign_document(OTHER_ECO, moit(dev_pki))
    async with s.post(
        f"{gw.url}/v1/messages",
        data=other,
        headers={"Authorization": "Bearer moit-token", "X-Message-Id": "ECO-4", "X-Document-Type": "eco.form_d"},
    ) as r:
        assert r.status == 200 and r.headers["X-Duplicate"] == "true"
        assert json.loads(await r.read()) == ack
    await _acknowledged(gw, ack["id"])
    assert await _stored(gw) == ["ECO-4"] and len(th.requests) == 1


async def test_same_signed_document_under_the_same_message_id_is_the_plain_duplicate(rig: Any, dev_pki: DevPki) -> None:
    gw, s, _ = rig
    signed = sign_document(ECO, moit(dev_pki))
    status, ack = await submit(s, gw.url, "MOIT", "ECO-5", "eco.form_d", signed)
    assert status == 202
    async with s.post(
        f"{gw.url}/v1/messages",
        data=signed,
        headers={"Authorization": "Bearer moit-token", "X-Message-Id": "ECO-5", "X-Document-Type": "eco.form_d"},
    ) as r:
        assert r.status == 200 and r.headers["X-Duplicate"] == "true"
        assert json.loads(await r.read()) == ack


async def test_concurrent_submissions_of_one_signed_document_under_several_ids_queue_exactly_one(
    rig: Any, dev_pki: DevPki
) -> None:
    gw, s, th = rig
    signed = sign_document(ECO, moit(dev_pki))
    answers = await asyncio.gather(
        *(submit(s, gw.url, "MOIT", f"ECO-RACE-{i}", "eco.form_d", signed) for i in range(8))
    )
    accepted = [body for status, body in answers if status == 202]
    refused = [body for status, body in answers if status == 409]
    assert len(accepted) == 1 and len(refused) == 7, answers
    winner = accepted[0]
    assert all(b["error"]["code"] == "DUPLICATE_CONTENT" for b in refused)
    assert {b["error"]["details"]["original"]["id"] for b in refused} == {winner["id"]}
    await _acknowledged(gw, winner["id"])
    assert await _stored(gw) == [winner["message_id"]]
    assert len(th.requests) == 1


async def test_unsigned_identical_bodies_under_two_ids_are_two_messages(tmp_path: Path) -> None:
    """Content duplicates are a property of signed documents: without a signature there is no issued document
    to replay, and identical unsigned bodies (well-formed mode) stay separate messages."""
    th = await Receiver().start()
    try:
        config = make_config(tmp_path, {"TH": th.url}, routes=[{"document_type": "eco.form_d", "to": ["TH"]}])
        async with Gateway(config) as gw, aiohttp.ClientSession() as s:
            first = await submit(s, gw.url, "MOIT", "U-1", "eco.form_d", ECO)
            second = await submit(s, gw.url, "MOIT", "U-2", "eco.form_d", ECO)
            await eventually(lambda: len(th.requests) == 2)
    finally:
        await th.stop()
    assert first[0] == 202 and second[0] == 202 and first[1]["id"] != second[1]["id"]


# ------------------------------------------------------------------------------------------ the stores


def _queued(mid: str, digest: str | None, *, sender: str = "MOIT") -> tuple[Message, list[Delivery], SubmissionAck]:
    env = SubmissionEnvelope(sender=PartyId(sender), message_id=mid, document_type="eco.form_d")
    m = Message.receive(env, at=100.0).verify(at=100.0).map(at=100.0).enqueue(at=100.0)
    m = replace(m, content_digest=digest)
    ds = [Delivery.create(m, "TH", f"<m>{mid}</m>".encode(), content_type="application/xml", at=100.0, ttl=50.0)]
    return m, ds, SubmissionAck(m.id, sender, mid, m.state, 100.0, ("TH",))


async def test_store_refuses_a_second_message_with_the_senders_content_digest_and_writes_nothing(
    store: Store,
) -> None:
    m1, ds1, ack1 = _queued("D-1", "sha256:aa")
    assert await store.accept(m1, b"<p/>", ds1, ack1) == (ack1, True)
    m2, ds2, ack2 = _queued("D-2", "sha256:aa")
    original, created = await store.accept(m2, b"<p/>", ds2, ack2)
    assert not created and original == ack1 and original.id != m2.id
    assert await store.get(m2.id) is None
    assert [d.message_id for d in await store.claim("TH", owner="w", limit=10, now=200.0, lease=5.0)] == [m1.id]


async def test_store_keeps_content_digests_per_sender_and_ignores_messages_without_one(store: Store) -> None:
    m1, ds1, ack1 = _queued("D-1", "sha256:bb")
    m2, ds2, ack2 = _queued("D-1", "sha256:bb", sender="MARD")  # another sender, the same content
    m3, ds3, ack3 = _queued("D-3", None)
    m4, ds4, ack4 = _queued("D-4", None)
    for m, ds, ack in ((m1, ds1, ack1), (m2, ds2, ack2), (m3, ds3, ack3), (m4, ds4, ack4)):
        assert await store.accept(m, b"<p/>", ds, ack) == (ack, True)


async def test_store_same_id_wins_over_same_content_when_both_match(store: Store) -> None:
    m1, ds1, ack1 = _queued("D-1", "sha256:cc")
    m2, ds2, ack2 = _queued("D-2", "sha256:dd")
    await store.accept(m1, b"<p/>", ds1, ack1)
    await store.accept(m2, b"<p/>", ds2, ack2)
    m3, ds3, ack3 = _queued("D-2", "sha256:cc")  # the id of D-2, the content of D-1
    assert await store.accept(m3, b"<p/>", ds3, ack3) == (ack2, False)


async def test_store_concurrent_accepts_of_one_digest_under_two_ids_create_exactly_one(store: Store) -> None:
    attempts = [_queued(f"R-{i}", "sha256:ee") for i in range(6)]
    results = await asyncio.gather(*(store.accept(m, b"<p/>", ds, ack) for m, ds, ack in attempts))
    created = [ack for ack, fresh in results if fresh]
    assert len(created) == 1
    assert {ack.id for ack, _ in results} == {created[0].id}


# ------------------------------------------------------------------------------------------ other entry points


async def test_signed_document_dropped_as_a_file_after_its_rest_submission_goes_to_error_with_DUPLICATE_CONTENT(
    tmp_path: Path, dev_pki: DevPki
) -> None:
    """The file drop names a file by its bytes (``sha256:...``): a re-wrapped copy is another id, same content."""
    th = await Receiver().start()
    config = make_config(
        tmp_path,
        {"TH": th.url},
        routes=[{"document_type": "eco.form_d", "to": ["TH"]}],
        parties={name: {"trust": dev_trust(dev_pki, name.lower())} for name in ("MOIT", "MARD", "TRADER")},
        gateway={"verification": "signature"},
    )
    gw = Gateway(config)
    drop = tmp_path / "drop"
    gw.inbound.append(
        FileDropInbox(
            "moit-drop",
            options={"path": str(drop), "party": "MOIT", "document_type": "eco.form_d", "interval": 0.05},
        )
    )
    signed = sign_document(ECO, moit(dev_pki))
    try:
        async with gw, aiohttp.ClientSession() as s:
            status, ack = await submit(s, gw.url, "MOIT", "ECO-7", "eco.form_d", signed)
            assert status == 202, ack
            atomic_write(drop / "inbox", "eco-7.xml", rewrapped(signed))
            await eventually(lambda: (drop / "error" / "eco-7.xml.error.json").exists())
            await _acknowledged(gw, ack["id"])
            stored = await _stored(gw)
    finally:
        await th.stop()
    sidecar = json.loads((drop / "error" / "eco-7.xml.error.json").read_bytes())
    assert sidecar["file"] == "eco-7.xml" and sidecar["error"]["code"] == "DUPLICATE_CONTENT"
    original = sidecar["error"]["details"]["original"]
    assert original["id"] == ack["id"] and original["message_id"] == "ECO-7"
    assert stored == ["ECO-7"] and len(th.requests) == 1


# ------------------------------------------------------------------------------------------ migration 4

_OLD_ROW = {
    "id": "old-1",
    "sender": "MOIT",
    "message_id": "OLD-1",
    "document_type": "eco.form_d",
    "conversation": "OLD-1",
    "format": "xml",
    "intake_state": "QUEUED",
    "received_at": 1.0,
    "ack": json.dumps({"id": "old-1", "sender": "MOIT", "message_id": "OLD-1", "state": "QUEUED", "received_at": 1.0}),
    "payload": b"<old/>",
}


async def _digest_is_unique_per_sender_after_the_upgrade(store: Store) -> None:
    old = await store.get("old-1")
    assert old is not None and old.message.envelope.message_id == "OLD-1"  # kept, without a digest
    m1, ds1, ack1 = _queued("NEW-1", "sha256:ff")
    m2, ds2, ack2 = _queued("NEW-2", "sha256:ff")
    assert await store.accept(m1, b"<p/>", ds1, ack1) == (ack1, True)
    assert await store.accept(m2, b"<p/>", ds2, ack2) == (ack1, False)


async def test_sqlite_file_at_version_3_is_upgraded_to_content_digests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.store import migrations

    path = tmp_path / "gw.db"
    with monkeypatch.context() as m:  # the file as a gateway that knew migrations 1 to 3 left it
        m.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:3])
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            migrations.upgrade_sqlite(conn, where=str(path))
            row = {**_OLD_ROW, "state": "QUEUED"}
            conn.execute(
                f"INSERT INTO messages ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", tuple(row.values())
            )
        finally:
            conn.close()
    store = SqliteStore(path, synchronous="NORMAL")
    await store.open()
    try:
        await _digest_is_unique_per_sender_after_the_upgrade(store)
    finally:
        await store.close()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == migrations.LATEST >= 4
        assert conn.execute("SELECT content_digest FROM messages WHERE id = 'old-1'").fetchone() == (None,)
        index = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'messages_content_dedup'").fetchone()[0]
        assert "UNIQUE" in index and "(sender, content_digest)" in index
    finally:
        conn.close()


@pytest.mark.postgres
async def test_postgresql_database_at_version_3_is_upgraded_to_content_digests(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncpg

    from gateway.store import migrations
    from gateway.store.postgres import PostgresStore, upgrade_schema
    from helpers.postgres import fresh_schema

    async with fresh_schema(migrate=False) as dsn:
        with monkeypatch.context() as m:  # the database as a gateway that knew migrations 1 to 3 left it
            m.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:3])
            conn = await asyncpg.connect(dsn)
            try:
                await migrations.upgrade(conn)
                marks = ", ".join(f"${i}" for i in range(1, len(_OLD_ROW) + 1))
                await conn.execute(f"INSERT INTO messages ({', '.join(_OLD_ROW)}) VALUES ({marks})", *_OLD_ROW.values())
            finally:
                await conn.close()
        assert [m.version for m in await upgrade_schema(dsn)] == list(range(4, migrations.LATEST + 1))
        store = PostgresStore(dsn, pool_size=4)
        await store.open()
        try:
            await _digest_is_unique_per_sender_after_the_upgrade(store)
        finally:
            await store.close()


async def test_signed_vnsw_envelope_sent_on_soap_after_its_rest_submission_is_answered_with_a_00_DUPLICATE_CONTENT(
    tmp_path: Path, dev_pki: DevPki
) -> None:
    """MARD's signed envelope first posted on REST (under an X-Message-Id of its own), then to the SOAP endpoint,
    which takes the envelope's messageId: the function-00 error list names the original."""
    th = await Receiver().start()
    config = make_config(
        tmp_path,
        {"TH": th.url},
        routes=[{"document_type": "sps.permit", "to": ["TH"]}],
        parties={
            "MOIT": {"trust": dev_trust(dev_pki, "moit")},
            "TRADER": {"trust": dev_trust(dev_pki, "trader")},
            "MARD": {"trust": dev_trust(dev_pki, "mard"), "verify": {"profile": "vnsw-legacy"}, "format": "vnsw"},
        },
        gateway={"verification": "signature"},
    )
    gw = Gateway(config)
    gw.inbound.append(VnswSoapEndpoint("vnsw", options={"document_types": {"BNNPTNT0600011": "sps.permit"}}))
    p = dev_pki.party("mard")
    signed = sign_document(
        vnsw_envelope("vn-replay-1"),
        SoftwareSigner(p.key, p.cert, [dev_pki.issuing_cert]),
        SigningProfile.vnsw_legacy(),
    )
    try:
        async with gw, aiohttp.ClientSession() as s:
            async with s.post(
                f"{gw.url}/v1/messages",
                data=signed,
                headers={
                    "Authorization": "Bearer mard-token",
                    "X-Message-Id": "REST-1",
                    "X-Document-Type": "sps.permit",
                    "X-Format": "vnsw",
                },
            ) as r:
                assert r.status == 202, await r.text()
                ack = await r.json()
            answer = await asyncio.to_thread(
                call_vnsw_endpoint, f"{gw.url}/vnsw/soap", "mard-token", signed.decode("utf-8")
            )
            await _acknowledged(gw, ack["id"])
            stored = [r.message.envelope.message_id for r in await gw.store.search(MessageQuery(sender="MARD"))]
    finally:
        await th.stop()
    root = parse_xml(answer.encode("utf-8"))
    assert root.findtext("Header/Subject/function") == "00"
    errors = [(e.findtext("ErrorCode"), e.findtext("ErrorName") or "") for e in root.iterfind(".//ErrorList/Error")]
    assert [code for code, _ in errors] == ["DUPLICATE_CONTENT"]
    assert "'REST-1'" in errors[0][1] and ack["id"] in errors[0][1]
    assert stored == ["REST-1"] and len(th.requests) == 1
