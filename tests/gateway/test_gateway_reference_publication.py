"""How a policy-list version is stored and announced, on both stores: a ``reference.list`` message's version is
stored in the transaction that accepts the message (a failure right after acceptance loses nothing), numbered
one after the other by two store nodes publishing at once, refused in that transaction to a second owner;
``nswgw reference load`` is journaled as its ``cli:`` operator and announced by the running gateway's next
reload; a submission validated under an old version names it at the HTTP API."""

from __future__ import annotations

import asyncio
import getpass
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.api import Gateway
from gateway.cli import main
from gateway.errors import ReferenceListNotOwner, StoreContended
from gateway.events import Event
from gateway.journal import OperatorAction
from gateway.model import Message, PartyId, SubmissionAck, SubmissionEnvelope
from gateway.reference import ReferenceDraft, ReferenceEntry, ReferenceVersion, message_version, publish_by_operator
from gateway.store import Store
from gateway.store.postgres import PostgresStore
from gateway.store.sqlite import SqliteStore
from helpers.clock import HeldClock
from helpers.gateway import TOKENS, Receiver, make_config
from helpers.stores import STORE_PARAMS, STORES
from mappings.reference import NS, ROOT

ROOT_DIR = Path(__file__).resolve().parents[2]
SAMPLE = (ROOT_DIR / "samples" / "form_d_two_items.xml").read_bytes()  # two goods items, HS 030617
OPS = "ops-token"
T = datetime(2027, 1, 1, tzinfo=UTC).timestamp()
"""The instant the first version takes effect."""
T2 = datetime(2027, 2, 1, tzinfo=UTC).timestamp()
"""The instant the second version takes effect."""
MICRO = 1e-6
LIST = "import-prohibited.moit"


class Crash(Exception):
    """What the test makes the gateway fail with right after the acceptance committed."""


def reference_list(
    name: str = LIST,
    *,
    owner: str = "MOIT",
    purpose: str = "prohibited",
    effective: str = "2027-01-01T00:00:00Z",
    codes: tuple[str, ...] = ("0306",),
) -> bytes:
    entries = "".join(f"<Entry><Code>{c}</Code></Entry>" for c in codes)
    return (
        f'<ReferenceList xmlns="{NS}"><Name>{name}</Name><Owner>{owner}</Owner><Purpose>{purpose}</Purpose>'
        f"<EffectiveFrom>{effective}</EffectiveFrom>{entries}</ReferenceList>"
    ).encode()


@dataclass
class Rig:
    gw: Gateway
    clock: HeldClock
    session: aiohttp.ClientSession
    events: list[Event]
    kind: str

    def published(self) -> list[Event]:
        return [e for e in self.events if e.name == "reference_list_published"]

    async def submit(
        self, party: str, message_id: str, document_type: str, body: bytes, *, fmt: str = "form-d", at: float
    ) -> tuple[int, dict[str, Any]]:
        self.clock.held = at
        h = {
            "Authorization": f"Bearer {TOKENS[party]}",
            "X-Message-Id": message_id,
            "X-Document-Type": document_type,
            "X-Format": fmt,
            "Content-Type": "application/xml",
        }
        try:
            async with self.session.post(f"{self.gw.url}/v1/messages", data=body, headers=h) as r:
                return r.status, json.loads(await r.read())
        finally:
            self.clock.held = None

    async def publish(self, party: str, message_id: str, body: bytes) -> tuple[int, dict[str, Any]]:
        return await self.submit(party, message_id, "reference.list", body, fmt="xml", at=T - 86400)

    async def admin(self, path: str) -> tuple[int, dict[str, Any]]:
        async with self.session.get(f"{self.gw.url}{path}", headers={"Authorization": f"Bearer {OPS}"}) as r:
            return r.status, json.loads(await r.read())

    async def message(self, party: str, gateway_id: str) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {TOKENS[party]}"}
        async with self.session.get(f"{self.gw.url}/v1/messages/{gateway_id}", headers=headers) as r:
            body: dict[str, Any] = json.loads(await r.read())
            assert r.status == 200, body
            return body

    def cli_config(self, tmp_path: Path) -> Path:
        """A configuration for ``nswgw`` on the gateway's own store."""
        if isinstance(self.gw.store, PostgresStore):
            store = f'kind = "postgresql"\ndsn = "{self.gw.store.dsn}"\n'
        else:
            store = f'url = "sqlite:///{tmp_path / "gw.db"}"\n'
        path = tmp_path / "cli.toml"
        path.write_text(
            '[gateway]\nverification = "well-formed"\nsigning = "off"\n\n'
            f'[store]\n{store}\n[parties.MOIT]\ntokens = ["moit-token"]\n'
            'document_types = ["reference.list"]\n\n[document_types."reference.list"]\n'
            f'roots = ["{ROOT}"]\n'
        )
        return path


@pytest.fixture(params=STORE_PARAMS)
async def rig(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Rig]:
    partner = await Receiver().start()
    clock = HeldClock()
    config = make_config(
        tmp_path,
        {"TH": partner.url},
        parties={
            "MOIT": {"document_types": ["eco.form_d", "reference.list"]},
            "MARD": {"document_types": ["reference.list"]},
        },
        document_types={"eco.form_d": {"codes": ["861"]}, "reference.list": {"roots": [ROOT]}},
        extra={"operators": {"ops": {"tokens": [OPS]}}},
    )
    try:
        async with (
            Gateway(config, store=STORES[request.param](tmp_path), clock=clock) as gw,
            aiohttp.ClientSession() as session,
        ):
            events: list[Event] = []
            original = gw.events.publish

            def record(event: Event) -> None:
                events.append(event)
                original(event)

            gw.events.publish = record  # type: ignore[method-assign]
            yield Rig(gw, clock, session, events, request.param)
    finally:
        await partner.stop()


async def test_a_failure_right_after_acceptance_loses_no_published_version(rig: Rig) -> None:
    """Prerequisite: the gateway fails (as a node that stops) the instant the acceptance of a ``reference.list``
    message returns, before any further step. Predicate: the version is in the store with the accepted message,
    listed and journaled; the node's next reload announces it once and validates under it."""
    store = rig.gw.broker.store
    accept = store.accept

    async def accept_then_crash(*args: Any, **kwargs: Any) -> tuple[SubmissionAck, bool]:
        stored = await accept(*args, **kwargs)
        if kwargs.get("reference") is not None:
            raise Crash("the node stops right after the acceptance committed")
        return stored

    store.accept = accept_then_crash  # type: ignore[method-assign]
    status, body = await rig.publish("MOIT", "RL-1", reference_list())
    assert status == 500 and body["error"]["code"] == "GATEWAY_INTERNAL", body
    (version,) = await rig.gw.store.reference_versions(LIST)
    assert (version.version, version.via, version.publisher) == (1, "message", "MOIT")
    record = await rig.gw.store.get(version.message or "")
    assert record is not None and record.message.envelope.message_id == "RL-1"
    assert record.message.state.value == "QUEUED" and record.message.error is None
    assert [e.kind for e in await rig.gw.store.journal() if e.message_id == version.message][:1] == ["ACCEPTED"]
    assert rig.published() == []  # the node stopped before announcing it
    store.accept = accept  # type: ignore[method-assign]

    status, again = await rig.publish("MOIT", "RL-1", reference_list())  # the sender resends: the original ack
    assert status == 200 and again["id"] == version.message, again
    code, listed = await rig.admin(f"/v1/admin/reference-lists/{LIST}")
    assert code == 200 and [(v["version"], v["message"]) for v in listed["versions"]] == [(1, version.message)]

    status, refused = await rig.submit("MOIT", "CO-1", "eco.form_d", SAMPLE, at=T)
    assert status == 422 and refused["error"]["details"]["reference_lists"] == [f"{LIST} v1"], refused
    assert [(e.fields["list"], e.fields["version"], e.fields["message"]) for e in rig.published()] == [
        (LIST, 1, version.message)
    ]


async def test_an_accepted_publication_names_its_message_in_the_listing_and_is_announced_once(rig: Rig) -> None:
    status, ack = await rig.publish("MOIT", "RL-1", reference_list())
    assert status == 202, ack
    code, listed = await rig.admin("/v1/admin/reference-lists")
    assert code == 200
    ((name, versions),) = [(x["name"], x["versions"]) for x in listed["lists"]]
    assert name == LIST and [(v["version"], v["via"], v["message"]) for v in versions] == [(1, "message", ack["id"])]
    accepted = [e for e in await rig.gw.store.journal() if e.message_id == ack["id"]]
    assert [e.kind for e in accepted][:1] == ["ACCEPTED"]
    assert (await rig.submit("MOIT", "CO-1", "eco.form_d", SAMPLE, at=T))[0] == 422  # a later reload
    assert [(e.fields["version"], e.fields["message"]) for e in rig.published()] == [(1, ack["id"])]


async def test_a_second_owner_publishing_a_taken_list_is_refused_and_nothing_is_stored(rig: Rig) -> None:
    """Prerequisite: MARD's ``reference.list`` of MOIT's list passes the node's check (its versions were loaded
    before MOIT published: the check in the store's transaction is the one that decides)."""
    assert (await rig.publish("MOIT", "RL-1", reference_list()))[0] == 202
    rig.gw.references.versions = {}  # as a node that has not reloaded since
    rig.gw.references.head = await rig.gw.store.reference_head()
    status, body = await rig.publish("MARD", "RL-2", reference_list(owner="MARD"))
    assert status == 403 and body["error"]["code"] == "REFERENCE_LIST_NOT_OWNER", body
    assert body["error"]["field"] == "ReferenceList/Owner" and body["error"]["details"]["owner"] == "MOIT"
    assert [v.publisher for v in await rig.gw.store.reference_versions(LIST)] == ["MOIT"]
    assert (await rig.publish("MARD", "RL-2", reference_list(owner="MARD")))[0] == 403  # not stored: refused again


@pytest.fixture(params=STORE_PARAMS)
async def nodes(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[Store, Store]]:
    """Two nodes of one store: two PostgreSQL stores on one schema, or two SQLite stores on one file."""
    first = STORES[request.param](tmp_path)
    await first.open()
    second: Store = (
        PostgresStore(first.dsn, pool_size=4, node_name="second-node")
        if isinstance(first, PostgresStore)
        else SqliteStore(tmp_path / "gw.db", synchronous="NORMAL")
    )
    await second.open()
    try:
        yield first, second
    finally:
        await second.close()
        await first.close()


def _publication(i: int, *, owner: str = "MOIT") -> tuple[Message, SubmissionAck, ReferenceVersion]:
    """An accepted ``reference.list`` message of ``owner`` and the version it publishes."""
    env = SubmissionEnvelope(sender=PartyId(owner), message_id=f"RL-{owner}-{i}", document_type="reference.list")
    at = T - 86400 + i
    m = Message.receive(env, at=at).verify(at=at).map(at=at).enqueue(at=at)
    draft = ReferenceDraft(LIST, owner, "prohibited", T + i, (ReferenceEntry(f"{i + 10}"),))
    version = message_version([draft], m)
    assert version is not None
    return m, SubmissionAck(m.id, env.sender, env.message_id, m.state, at, ()), version


async def test_two_store_nodes_publishing_one_list_at_once_number_its_versions_one_after_the_other(
    nodes: tuple[Store, Store],
) -> None:
    first, second = nodes
    publications = [_publication(i) for i in range(12)]
    operator = ReferenceDraft(LIST, "MOIT", "prohibited", T, (ReferenceEntry("01"),))
    accepted, added = await asyncio.gather(
        asyncio.gather(
            *(
                (first if i % 2 else second).accept(m, b"<ReferenceList/>", [], ack, reference=v)
                for i, (m, ack, v) in enumerate(publications)
            )
        ),
        asyncio.gather(
            *(
                (second if i % 2 else first).reference_add(
                    ReferenceVersion.of(
                        operator, publisher="ops", via="operator", message=f"op-{i}", published_at=T - 86400
                    )
                )
                for i in range(4)
            )
        ),
    )
    assert all(created for _, created in accepted) and len(added) == 4
    numbers = sorted([v.version for v in added])
    for store in (first, second):
        listed = await store.reference_versions(LIST)
        assert [v.version for v in listed] == list(range(1, 17))
        assert set(numbers) <= {v.version for v in listed if v.via == "operator"}
        by_message = {v.message: v for v in listed}
        assert {m.id for m, _, _ in publications} <= set(by_message)
        assert await store.reference_head() == listed[-1].seq
    for m, _, _ in publications:
        record = await second.get(m.id)
        assert record is not None and record.message.envelope.message_id == m.envelope.message_id


async def test_two_owners_publishing_a_new_list_at_once_on_two_nodes_leave_it_to_one_owner(
    nodes: tuple[Store, Store],
) -> None:
    first, second = nodes
    (m1, a1, v1), (m2, a2, v2) = _publication(1, owner="MOIT"), _publication(2, owner="MARD")
    outcomes = await asyncio.gather(
        first.accept(m1, b"<ReferenceList/>", [], a1, reference=v1),
        second.accept(m2, b"<ReferenceList/>", [], a2, reference=v2),
        return_exceptions=True,
    )
    refused = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(refused) == 1 and isinstance(refused[0], ReferenceListNotOwner), outcomes
    assert refused[0].code == "REFERENCE_LIST_NOT_OWNER" and refused[0].field == "ReferenceList/Owner"
    (stored,) = await first.reference_versions(LIST)
    loser = m2 if stored.owner == "MOIT" else m1
    assert stored.version == 1 and await second.get(loser.id) is None  # nothing of the refused one is stored


async def test_nswgw_reference_load_is_journaled_as_its_cli_operator_and_announced_by_the_running_gateway(
    rig: Rig, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Prerequisite: a gateway runs on the store; an operator loads a version with ``nswgw reference load``.
    Predicate: the load is an ``OPERATOR`` journal entry of ``cli:<user>`` listed by the operator API; the
    gateway's next reload announces it once and validates under it."""
    config = rig.cli_config(tmp_path)
    doc = tmp_path / "list.xml"
    doc.write_bytes(reference_list())
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["reference", "load", "--config", str(config), "--json", str(doc)]) == 0
    loaded = json.loads(capsys.readouterr().out)
    operator = f"cli:{getpass.getuser()}"
    assert (loaded["version"], loaded["via"], loaded["publisher"]) == (1, "operator", operator)

    code, actions = await rig.admin(f"/v1/admin/actions?operator={operator}")
    assert code == 200
    (action,) = [a for a in actions["actions"] if a["id"] == loaded["message"]]
    assert action["action"] == "reference-publish" and action["operator"] == operator
    assert action["targets"] == [{"list": LIST, "version": "1"}]
    journal = [e for e in await rig.gw.store.journal() if e.message_id == loaded["message"]]
    assert [(e.kind, e.seq) for e in journal] == [("OPERATOR", loaded["journal_seq"])]
    (stored,) = [a for a in await rig.gw.store.operator_actions(operator=operator)]
    assert OperatorAction.from_record(stored.record).operator == operator
    assert rig.published() == []  # nothing has made the gateway reload yet

    status, refused = await rig.submit("MOIT", "CO-1", "eco.form_d", SAMPLE, at=T)
    assert status == 422 and refused["error"]["details"]["reference_lists"] == [f"{LIST} v1"], refused
    assert [(e.fields["version"], e.fields["via"], e.fields["publisher"]) for e in rig.published()] == [
        (1, "operator", operator)
    ]
    assert (await rig.submit("MOIT", "CO-2", "eco.form_d", SAMPLE, at=T - MICRO))[0] == 202
    assert len(rig.published()) == 1  # announced once


async def test_a_submission_validated_under_an_old_version_names_that_version_at_the_http_api(rig: Rig) -> None:
    """Prerequisite: v1 of an inspection list and v1 of a prohibited list in force from T; v2 of each, stored
    already, in force from T2. Predicate: a submission received just before T2 names the v1s (the flags in its
    history, the refusal's details and issues), one received at T2 the v2s."""
    inspection = "inspection-required.mard"
    assert (await rig.publish("MARD", "RL-I1", reference_list(inspection, owner="MARD", purpose="inspection",
                                                                codes=("030617",))))[0] == 202  # fmt: skip
    assert (
        await rig.publish(
            "MARD",
            "RL-I2",
            reference_list(
                inspection, owner="MARD", purpose="inspection", effective="2027-02-01T00:00:00Z", codes=("0101",)
            ),
        )
    )[0] == 202
    status, old = await rig.submit("MOIT", "CO-1", "eco.form_d", SAMPLE, at=T2 - MICRO)
    assert status == 202, old
    (mapped,) = [h for h in (await rig.message("MOIT", old["id"]))["history"] if h["to"] == "MAPPED"]
    assert mapped["detail"] == (
        f"reference lists: {inspection} v1; inspection required: "
        f"goods[0].hs_code: {inspection} v1, goods[1].hs_code: {inspection} v1"
    )
    status, new = await rig.submit("MOIT", "CO-2", "eco.form_d", SAMPLE, at=T2)
    assert status == 202, new
    (mapped,) = [h for h in (await rig.message("MOIT", new["id"]))["history"] if h["to"] == "MAPPED"]
    assert mapped["detail"] == f"reference lists: {inspection} v2"

    assert (await rig.publish("MOIT", "RL-P1", reference_list()))[0] == 202
    assert (await rig.publish("MOIT", "RL-P2", reference_list(effective="2027-02-01T00:00:00Z", codes=("02",))))[
        0
    ] == 202
    status, refused = await rig.submit("MOIT", "CO-3", "eco.form_d", SAMPLE, at=T2 - MICRO)
    assert status == 422 and refused["error"]["code"] == "VALIDATION_FAILED", refused
    assert refused["error"]["details"]["reference_lists"] == [f"{LIST} v1", f"{inspection} v1"]
    assert [(i["path"], f"{LIST} v1" in i["message"]) for i in refused["error"]["issues"]] == [
        ("goods[0].hs_code", True),
        ("goods[1].hs_code", True),
    ]


async def test_operator_loads_on_two_nodes_at_once_store_each_version_with_the_record_that_names_it(
    nodes: tuple[Store, Store],
) -> None:
    """Prerequisite: six operator loads of one list at once, three through each node. Predicate: versions 1 to 6,
    each stored in one transaction with its ``reference-publish`` record, whose target names that version."""
    first, second = nodes
    drafts = [ReferenceDraft(LIST, "MOIT", "prohibited", T + i, (ReferenceEntry(f"{i + 10}"),)) for i in range(6)]
    published = await asyncio.gather(
        *(
            publish_by_operator(first if i % 2 else second, d, operator=f"ops-{i}", at=T, parties=["MOIT"])
            for i, d in enumerate(drafts)
        )
    )
    assert sorted(v.version for v, _ in published) == [1, 2, 3, 4, 5, 6]
    records = {a.id: OperatorAction.from_record(a.record) for a in await first.operator_actions(limit=100)}
    for stored, entry in published:
        assert stored.message is not None and entry.message_id == stored.message
        assert records[stored.message].targets == ({"list": LIST, "version": str(stored.version)},)
    assert [e.kind for e in await second.journal()].count("OPERATOR") == 6


async def test_an_operator_record_naming_a_number_another_publication_took_stores_neither(
    nodes: tuple[Store, Store],
) -> None:
    first, second = nodes
    draft = ReferenceDraft(LIST, "MOIT", "prohibited", T, (ReferenceEntry("03"),))
    await publish_by_operator(first, draft, operator="ops", at=T, parties=["MOIT"])
    stale = ReferenceVersion.of(draft, publisher="ops", via="operator", message="op-stale", published_at=T)
    action = OperatorAction.new("ops", "reference-publish", at=T, targets=[{"list": LIST, "version": "1"}])
    with pytest.raises(StoreContended) as refused:
        await second.record_operator_action(action, reference=stale.numbered(1, 0))
    assert refused.value.code == "STORE_CONTENDED" and refused.value.details["next"] == 2
    assert [v.version for v in await second.reference_versions(LIST)] == [1]
    assert action.id not in {a.id for a in await second.operator_actions(limit=100)}
    assert [e.kind for e in await first.journal()].count("OPERATOR") == 1
