"""Store faults at the real HTTP entry point on 127.0.0.1: a full disk, a damaged file, a dropped database
connection. Each is refused with its code, status and ``Retry-After`` (never ``GATEWAY_INTERNAL``), logged at
ERROR with the incident id the client got, reported by ``/readyz`` naming the failed check, and loses nothing
that was acknowledged.

The full disk is a real one: an 8 MiB tmpfs mounted for the test (the tests run as root); the damaged file is a
stopped store's file with one page overwritten; the dropped connection is ``pg_terminate_backend`` on the
store's sessions while a loopback TCP proxy in front of PostgreSQL refuses new connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import aiohttp
import asyncpg
import pytest

from gateway.api import Gateway
from gateway.config import Config
from gateway.errors import StoreCorrupt
from gateway.store.postgres import PostgresStore
from helpers.disk import fill, mounted_tmpfs
from helpers.gateway import TOKENS, Receiver, doc, make_config, submit
from helpers.postgres import PG_DSN, PgProxy, create_schema, drop_schema, pg_proxy

FORM_D = "eco.form_d"


def _get_headers(party: str = "MOIT") -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[party]}"}


def _logged(caplog: pytest.LogCaptureFixture, incident: str) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.levelno >= logging.ERROR and r.name in ("nswgw.store", "nswgw.api") and incident in r.getMessage()
    ]


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 8 MiB file system (tmpfs; room for the schema and a WAL of SQLite's 1000 checkpoint pages), unmounted
    afterwards."""
    with mounted_tmpfs(tmp_path / "disk", "8m") as where:
        yield where


def _sqlite_config(tmp_path: Path, db: Path, receiver: Receiver, **store: Any) -> Config:
    config = make_config(tmp_path, {"TH": receiver.url})
    settings = config.store.model_copy(update={"url": f"sqlite:///{db}", **store})
    return config.model_copy(update={"store": settings})


async def test_sqlite_on_a_full_disk_answers_507_STORE_FULL_and_loses_nothing_acknowledged(
    tmp_path: Path, tiny_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Prerequisite: a SQLite store on an 8 MiB file system, which a filler file then fills to the last byte.
    Predicate: submissions are answered 202 or ``507 STORE_FULL`` with ``Retry-After`` (never 500), each refusal
    logged at ERROR with its incident id; ``/readyz`` is 503 naming ``free_space``; once space is freed and the
    gateway restarted, every 202 is retrievable and every refused message id was never acknowledged."""
    caplog.set_level(logging.INFO)
    receiver = Receiver()
    await receiver.start()
    config = _sqlite_config(tmp_path, tiny_disk / "gw.db", receiver, min_free_bytes=1024 * 1024)
    accepted: dict[str, str] = {}
    refused: list[str] = []
    try:
        async with Gateway(config) as gw, aiohttp.ClientSession() as s:
            faults = gw.events.subscribe(buffer=10_000)
            for n in range(5):
                status, body = await submit(s, gw.url, "MOIT", f"BEFORE-{n}", FORM_D, doc(n, size=2000))
                assert status == 202, body
                accepted[f"BEFORE-{n}"] = body["id"]
            filler = fill(tiny_disk)
            for n in range(100):
                status, body = await submit(s, gw.url, "MOIT", f"FULL-{n}", FORM_D, doc(n, size=8000))
                if status == 202:
                    accepted[f"FULL-{n}"] = body["id"]
                    continue
                assert status == 507, body
                assert body["error"]["code"] == "STORE_FULL" and body["error"]["origin"] == "gateway"
                refused.append(f"FULL-{n}")
                if len(refused) == 1:
                    assert _logged(caplog, body["error"]["incident_id"]), "the refusal is not logged at ERROR"
                    first_incident = body["error"]["incident_id"]
            assert len(refused) > 50, f"the disk never filled: {len(accepted)} accepted"
            published = [e.fields for e in faults.pending() if e.name == "store_fault"]
            assert {"code": "STORE_FULL", "incident_id": first_incident, "route": "/v1/messages"} in published
            headers = {"Authorization": f"Bearer {TOKENS['MOIT']}", "X-Message-Id": "FULL-again"}
            async with s.post(
                f"{gw.url}/v1/messages", data=doc(1, size=8000), headers={**headers, "X-Document-Type": FORM_D}
            ) as r:
                assert r.status == 507 and r.headers["Retry-After"].isdigit() and int(r.headers["Retry-After"]) > 0
                refused.append("FULL-again")
            async with s.get(f"{gw.url}/readyz") as r:
                ready = await r.json()
                assert r.status == 503 and r.headers["Retry-After"].isdigit(), ready
            assert ready["status"] == "not ready"
            assert (
                ready["checks"]["free_space"].startswith("failed: ")
                and "min_free_bytes" in ready["checks"]["free_space"]
            )
        filler.unlink()
        async with Gateway(config) as gw, aiohttp.ClientSession() as s:
            for message_id, gateway_id in accepted.items():
                async with s.get(f"{gw.url}/v1/messages/{gateway_id}", headers=_get_headers()) as r:
                    assert r.status == 200, (message_id, await r.text())
                    assert (await r.json())["message_id"] == message_id
            for message_id in refused:  # never acknowledged: a resubmission is new, not a duplicate
                status, body = await submit(s, gw.url, "MOIT", message_id, FORM_D, doc(message_id))
                assert status == 202, body
            async with s.get(f"{gw.url}/readyz") as r:
                assert r.status == 200 and set((await r.json())["checks"].values()) == {"ok"}
    finally:
        await receiver.stop()


async def _stopped_store_with_messages(tmp_path: Path, receiver: Receiver, db: Path) -> tuple[Config, list[str]]:
    config = _sqlite_config(tmp_path, db, receiver)
    ids = []
    async with Gateway(config) as gw, aiohttp.ClientSession() as s:
        for n in range(20):
            status, body = await submit(s, gw.url, "MOIT", f"M-{n}", FORM_D, doc(n, size=3000))
            assert status == 202, body
            ids.append(body["id"])
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return config, ids


def _overwrite_page(db: Path, table: str) -> None:
    """Overwrite the root page of ``table`` in the stopped store's file with garbage."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0]
    with open(db, "r+b") as fh:
        fh.seek((root - 1) * page_size)
        fh.write(b"\xa5" * page_size)


async def test_a_sqlite_file_with_a_damaged_page_answers_STORE_CORRUPT_and_readyz_fails_integrity(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Prerequisite: a stopped store whose ``messages`` root page was overwritten with garbage.
    Predicate: the gateway starts (nothing it reads at start is damaged); reading and submitting are answered
    ``503 STORE_CORRUPT`` with ``Retry-After``, logged at ERROR; ``/readyz`` is 503 with ``integrity`` failed."""
    receiver = Receiver()
    await receiver.start()
    db = tmp_path / "store" / "gw.db"
    try:
        config, ids = await _stopped_store_with_messages(tmp_path, receiver, db)
        _overwrite_page(db, "messages")
        caplog.set_level(logging.INFO)
        async with Gateway(config) as gw, aiohttp.ClientSession() as s:
            async with s.get(f"{gw.url}/v1/messages/{ids[3]}", headers=_get_headers()) as r:
                body = await r.json()
                assert r.status == 503 and body["error"]["code"] == "STORE_CORRUPT", body
                assert r.headers["Retry-After"].isdigit()
            assert _logged(caplog, body["error"]["incident_id"])
            status, body = await submit(s, gw.url, "MOIT", "AFTER", FORM_D, doc("after"))
            assert (status, body["error"]["code"]) == (503, "STORE_CORRUPT")
            async with s.get(f"{gw.url}/readyz") as r:
                ready = await r.json()
                assert r.status == 503 and ready["status"] == "not ready"
            assert ready["checks"]["integrity"].startswith("failed: [STORE_CORRUPT]"), ready
    finally:
        await receiver.stop()


async def test_a_sqlite_file_that_is_not_a_database_is_refused_at_start_with_STORE_CORRUPT(tmp_path: Path) -> None:
    """Prerequisite: a stopped store whose file header was overwritten.
    Predicate: the gateway does not start: ``STORE_CORRUPT`` naming the file (never a bare sqlite3 error)."""
    receiver = Receiver()
    await receiver.start()
    db = tmp_path / "store" / "gw.db"
    try:
        config, _ = await _stopped_store_with_messages(tmp_path, receiver, db)
        with open(db, "r+b") as fh:
            fh.write(b"\xa5" * 100)
        with pytest.raises(StoreCorrupt) as err:
            await Gateway(config).start()
        assert str(db) in err.value.message and err.value.http_status == 503
    finally:
        await receiver.stop()


@pytest.fixture
async def proxied_dsn() -> AsyncIterator[tuple[str, PgProxy]]:
    schema, dsn = await create_schema()
    try:
        async with pg_proxy() as proxy:
            yield proxy.through(dsn), proxy
    finally:
        await drop_schema(schema)


@pytest.mark.postgres
async def test_postgresql_with_its_connections_killed_answers_503_STORE_UNAVAILABLE_and_recovers(
    tmp_path: Path, proxied_dsn: tuple[str, PgProxy], caplog: pytest.LogCaptureFixture
) -> None:
    """Prerequisite: a gateway on PostgreSQL through a loopback proxy; its sessions are killed with
    ``pg_terminate_backend`` while the proxy refuses new connections.
    Predicate: submitting and reading answer ``503 STORE_UNAVAILABLE`` with ``Retry-After``, logged at ERROR;
    ``/readyz`` is 503 with ``write`` failed; once connections are accepted again the gateway recovers on its own
    and the message acknowledged before the outage is there."""
    dsn, proxy = proxied_dsn
    node = f"faults-{uuid.uuid4().hex[:8]}"
    receiver = Receiver()
    await receiver.start()
    caplog.set_level(logging.INFO)
    store = PostgresStore(dsn, pool_size=4, node_name=node)
    try:
        async with Gateway(make_config(tmp_path, {"TH": receiver.url}), store=store) as gw:
            async with aiohttp.ClientSession() as s:
                status, before = await submit(s, gw.url, "MOIT", "BEFORE", FORM_D, doc(1))
                assert status == 202, before
                await proxy.refuse()
                admin = await asyncpg.connect(PG_DSN, timeout=10)
                try:
                    killed = await admin.fetchval(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
                        node,
                    )
                finally:
                    await admin.close()
                assert killed >= 1
                await asyncio.sleep(0.2)
                status, body = await submit(s, gw.url, "MOIT", "DURING", FORM_D, doc(2))
                assert (status, body["error"]["code"]) == (503, "STORE_UNAVAILABLE"), body
                assert _logged(caplog, body["error"]["incident_id"])
                async with s.get(f"{gw.url}/v1/messages/{before['id']}", headers=_get_headers()) as r:
                    assert r.status == 503 and r.headers["Retry-After"].isdigit()
                    assert (await r.json())["error"]["code"] == "STORE_UNAVAILABLE"
                async with s.get(f"{gw.url}/readyz") as r:
                    ready = await r.json()
                    assert r.status == 503 and ready["checks"]["write"].startswith("failed: [STORE_UNAVAILABLE]")
                await proxy.start()
                status, body = await submit(s, gw.url, "MOIT", "DURING", FORM_D, doc(2))
                assert status == 202, body
                async with s.get(f"{gw.url}/v1/messages/{before['id']}", headers=_get_headers()) as r:
                    assert r.status == 200 and (await r.json())["message_id"] == "BEFORE"
                async with s.get(f"{gw.url}/readyz") as r:
                    assert r.status == 200, await r.text()
    finally:
        await receiver.stop()


@pytest.mark.parametrize(
    ("failure", "code"),
    [
        (sqlite3.OperationalError("database or disk is full"), "STORE_FULL"),
        (sqlite3.DatabaseError("database disk image is malformed"), "STORE_CORRUPT"),
        (sqlite3.DatabaseError("file is not a database"), "STORE_CORRUPT"),
        (sqlite3.OperationalError("disk I/O error"), "STORE_UNAVAILABLE"),
        (sqlite3.OperationalError("database is locked"), "STORE_UNAVAILABLE"),
        (sqlite3.OperationalError("no such table: messages"), "GATEWAY_INTERNAL"),
        (PermissionError(13, "Permission denied"), "STORE_UNAVAILABLE"),
        (asyncpg.DiskFullError("could not extend file: No space left on device"), "STORE_FULL"),
        (asyncpg.DataCorruptedError("invalid page in block 7"), "STORE_CORRUPT"),
        (asyncpg.ConnectionDoesNotExistError("connection was closed"), "STORE_UNAVAILABLE"),
        (ConnectionRefusedError(111, "Connection refused"), "STORE_UNAVAILABLE"),
    ],
)
def test_every_store_driver_fault_is_translated_to_a_coded_error_at_the_boundary(
    failure: BaseException, code: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Prerequisite: a driver (or file system) exception as the store's driver raises it.
    Predicate: the store boundary gives a coded gateway error of the documented status, ``raise ... from`` the
    driver's, logged at ERROR with its incident id; a retryable one says when to resend (``Retry-After``)."""
    from gateway.errors import ERROR_CODES
    from gateway.store import postgres, sqlite

    caplog.set_level(logging.INFO)
    is_pg = isinstance(failure, asyncpg.PostgresError | asyncpg.InterfaceError | ConnectionRefusedError)
    error = (postgres.translate if is_pg else sqlite.translate)(failure, "the store")
    assert error.code == code and error.__cause__ is failure
    assert error.http_status == ERROR_CODES[code].http_status
    assert (error.retry_after is not None) is error.retryable
    assert _logged(caplog, error.incident_id)


async def test_a_vnsw_submission_on_a_full_store_is_a_server_fault_with_STORE_FULL_and_retry_after(
    tmp_path: Path,
) -> None:
    """Prerequisite: the VNSW SOAP endpoint in front of a store that is full.
    Predicate: a SOAP ``Server`` fault (the ministry resends) carrying ``STORE_FULL`` and ``Retry-After``."""
    from aiohttp import web
    from lxml import etree

    from adapters.vnsw_soap.inbound import VnswSoapEndpoint
    from gateway.broker import Submission
    from gateway.errors import StoreFull
    from gateway.model import PartyId, SubmissionEnvelope
    from gateway.ports import Intake
    from gateway.store.sqlite import SqliteStore
    from helpers.adapters import vnsw_envelope

    async def full(party: PartyId, envelope: SubmissionEnvelope, raw: bytes) -> Submission:
        raise StoreFull("database or disk is full", field="store.url")

    endpoint = VnswSoapEndpoint("vnsw")
    app = web.Application()
    config = make_config(tmp_path, {"CUSTOMS": "http://127.0.0.1:9/"})
    intake = Intake(
        submit=full, party_of=lambda request: PartyId("MARD"), store=SqliteStore(tmp_path / "s.db"), config=config
    )
    app.add_routes(endpoint.routes(intake))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    soap = "http://schemas.xmlsoap.org/soap/envelope/"
    request = (
        f'<soapenv:Envelope xmlns:soapenv="{soap}"><soapenv:Body>'
        '<ws:receiveRequest xmlns:ws="http://com/vnsw/ws/generated"><ws:requestPayload>'
        f"{escape(vnsw_envelope('m-full').decode())}</ws:requestPayload></ws:receiveRequest></soapenv:Body>"
        "</soapenv:Envelope>"
    )
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/vnsw/soap"
        async with (
            aiohttp.ClientSession() as s,
            s.post(url, data=request.encode(), headers={"Content-Type": "text/xml; charset=utf-8"}) as r,
        ):
            status, retry_after, body = r.status, r.headers.get("Retry-After"), await r.read()
    finally:
        await runner.cleanup()
    assert status == 500 and retry_after == str(StoreFull.retry_after)
    fault = etree.fromstring(body).find(f".//{{{soap}}}Fault")
    assert fault is not None and fault.findtext("faultcode") == "SOAP-ENV:Server"
    error = fault.find(".//{urn:nsw:gateway:error}error")
    assert error is not None and error.get("code") == "STORE_FULL"


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def test_the_readiness_checks_of_a_sound_store_pass_and_the_write_probe_leaves_nothing(
    kind: str, tmp_path: Path
) -> None:
    """Prerequisite: a sound, empty store (SQLite, or PostgreSQL in a schema of its own).
    Predicate: every check is ``ok`` (SQLite: ``write``, ``free_space``, ``integrity``, ``journal``; PostgreSQL the
    same but ``free_space``, which is the server's), and no message, journal entry or table is left by the probe."""
    from gateway.store import MessageQuery
    from gateway.store.base import Store
    from gateway.store.sqlite import SqliteStore
    from helpers.postgres import IsolatedPostgresStore

    store: Store = SqliteStore(tmp_path / "s.db") if kind == "sqlite" else IsolatedPostgresStore()
    async with store:
        for _ in range(2):
            checks = await store.health()
            expected = {"write", "integrity", "journal"} | ({"free_space"} if kind == "sqlite" else set())
            assert checks == dict.fromkeys(expected, "ok")
        assert await store.search(MessageQuery()) == [] and await store.journal() == []
    if kind == "sqlite":
        with contextlib.closing(sqlite3.connect(tmp_path / "s.db")) as conn:
            names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert "readiness_probe" not in names


async def test_an_as4_message_on_a_full_store_is_answered_503_with_STORE_FULL_and_resent_later(
    dev_pki: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Prerequisite: the gateway's AS4 endpoint in front of a store that is full; TH-ASW sends a signed message.
    Predicate: TH gets HTTP 503 naming ``STORE_FULL`` with ``Retry-After`` (no receipt: it resends later), and
    nothing is stored."""
    from gateway.errors import PartnerUnavailable, StoreFull
    from gateway.ports import OutboundMessage
    from gateway.store import MessageQuery
    from helpers.as4 import ACTION, GATEWAY, PARTNER, partner_options, sender_to, side

    monkeypatch.setenv("AS4_TEST_P12_PASSWORD", "changeit")
    options = {
        "party_id": GATEWAY,
        "signer": {"p12": str(dev_pki.party("nsw-gateway").p12_path), "password_env": "AS4_TEST_P12_PASSWORD"},
        "decryption_key": {
            "key": str(dev_pki.party("nsw-gateway").key_path),
            "cert": str(dev_pki.party("nsw-gateway").cert_path),
        },
        "partners": {PARTNER: partner_options(dev_pki, "TH")},
    }
    dest = await Receiver().start()
    config = make_config(
        tmp_path,
        {"DEST": dest.url},
        parties={"TH": {"tokens": ["th-token"], "document_types": ["eco.form_d"]}},
        routes=[{"document_type": "eco.form_d", "sender": "TH", "to": ["DEST"]}],
        extra={"inbound": {"asean": {"endpoint": "as4", "options": options}}},
    )
    us, th = side(dev_pki, "nsw-gateway", GATEWAY), side(dev_pki, "th-asw", PARTNER)

    async def full(*args: object, **kwargs: object) -> object:
        raise StoreFull("database or disk is full", field="store.url")

    try:
        async with Gateway(config) as gw:
            monkeypatch.setattr(gw.store, "accept", full)
            adapter = sender_to(f"{gw.url}/as4", th, us)
            message = OutboundMessage(
                message_id="TH-FULL-1", payload=b"<Doc/>", sender=PARTNER, document_type=ACTION, conversation="c-1"
            )
            outgoing = adapter._build(message, adapter.ebms_message_id(message))  # the bytes TH-ASW sends
            headers = {"Content-Type": outgoing.content_type, "MIME-Version": "1.0"}
            async with aiohttp.ClientSession() as s, s.post(f"{gw.url}/as4", data=outgoing.body, headers=headers) as r:
                status, retry_after, text = r.status, r.headers.get("Retry-After"), await r.text()
            async with adapter:
                with pytest.raises(PartnerUnavailable) as caught:  # TH-ASW's own adapter: retried, not rejected
                    await adapter.deliver(message)
            assert await gw.store.search(MessageQuery()) == []
    finally:
        await dest.stop()
    assert (status, retry_after) == (503, str(StoreFull.retry_after)) and text.startswith("STORE_FULL: "), text
    assert caught.value.details["status"] == 503, caught.value.details


@pytest.mark.parametrize(
    ("key", "value"),
    [("min_free_bytes", -1), ("min_free_bytes", "lots"), ("integrity_interval", 0), ("integrity_interval", "x")],
)
def test_a_bad_readiness_setting_is_a_config_error_naming_it(key: str, value: object) -> None:
    """Prerequisite: ``[store] min_free_bytes`` negative or not a number, ``integrity_interval`` not positive.
    Predicate: ``CONFIG_INVALID`` naming ``store.<key>``; the defaults are 64 MiB and 300 seconds."""
    from gateway.config import parse_config
    from gateway.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        parse_config({"gateway": {"signing": "off"}, "store": {key: value}})
    assert err.value.code == "CONFIG_INVALID" and err.value.field == f"store.{key}"
    store = parse_config({"gateway": {"signing": "off"}}).store
    assert (store.min_free_bytes, store.integrity_interval) == (64 * 1024 * 1024, 300.0)
