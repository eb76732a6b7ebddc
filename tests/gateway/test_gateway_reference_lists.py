"""Policy as versioned reference data, on both stores: a ministry publishes a version of its list (a
``reference.list`` document through intake, or an operator through ``POST /v1/admin/reference-lists/{name}/versions``
and ``nswgw reference load``); validation uses the version in force at each submission's ``received_at`` and names
it; the operator API lists the versions; every publication is journaled and announced."""

from __future__ import annotations

import asyncio
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
from gateway.events import Event
from gateway.reference import ReferenceDraft, ReferenceEntry, publish_by_operator
from helpers.clock import HeldClock
from helpers.gateway import TOKENS, Receiver, make_config
from helpers.stores import STORE_PARAMS, STORES
from mappings.reference import NS, ROOT

ROOT_DIR = Path(__file__).resolve().parents[2]
SAMPLE = (ROOT_DIR / "samples" / "form_d_two_items.xml").read_bytes()  # two goods items, HS 030617
OPS = "ops-token"
T = datetime(2027, 1, 1, tzinfo=UTC).timestamp()
"""The instant the published versions take effect."""
MICRO = 1e-6


def reference_list(
    name: str = "import-prohibited.moit",
    *,
    owner: str = "MOIT",
    purpose: str = "prohibited",
    effective: str = "2027-01-01T07:00:00+07:00",
    codes: tuple[str, ...] = ("0306",),
    extra: str = "",
) -> bytes:
    entries = "".join(f"<Entry><Code>{c}</Code><Note>crustaceans</Note></Entry>" for c in codes)
    return (
        f'<ReferenceList xmlns="{NS}"><Name>{name}</Name><Owner>{owner}</Owner><Purpose>{purpose}</Purpose>'
        f"<EffectiveFrom>{effective}</EffectiveFrom>{extra}{entries}</ReferenceList>"
    ).encode()


@dataclass
class Rig:
    gw: Gateway
    clock: HeldClock
    session: aiohttp.ClientSession
    partner: Receiver
    events: list[Event]

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

    async def admin(self, method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
        headers = {"Authorization": f"Bearer {OPS}"}
        async with self.session.request(method, f"{self.gw.url}{path}", headers=headers, json=body) as r:
            return r.status, json.loads(await r.read())

    async def history(self, party: str, gateway_id: str) -> list[dict[str, Any]]:
        headers = {"Authorization": f"Bearer {TOKENS[party]}"}
        async with self.session.get(f"{self.gw.url}/v1/messages/{gateway_id}", headers=headers) as r:
            body = json.loads(await r.read())
            assert r.status == 200, body
            return list(body["history"])


def _config(tmp_path: Path, partner: Receiver) -> Any:
    return make_config(
        tmp_path,
        {"TH": partner.url},
        parties={
            "MOIT": {"document_types": ["eco.form_d", "reference.list"]},
            "MARD": {"document_types": ["reference.list"]},
        },
        document_types={"eco.form_d": {"codes": ["861"]}, "reference.list": {"roots": [ROOT]}},
        extra={"operators": {"ops": {"tokens": [OPS]}}},
    )


@pytest.fixture(params=STORE_PARAMS)
async def rig(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Rig]:
    partner = await Receiver().start()
    clock = HeldClock()
    try:
        async with (
            Gateway(_config(tmp_path, partner), store=STORES[request.param](tmp_path), clock=clock) as gw,
            aiohttp.ClientSession() as session,
        ):
            events: list[Event] = []
            original = gw.events.publish

            def record(event: Event) -> None:
                events.append(event)
                original(event)

            gw.events.publish = record  # type: ignore[method-assign]
            yield Rig(gw, clock, session, partner, events)
    finally:
        await partner.stop()


async def test_a_list_published_with_a_future_effective_date_changes_validation_exactly_from_that_instant(
    rig: Rig,
) -> None:
    status, ack = await rig.publish("MOIT", "RL-1", reference_list())
    assert status == 202, ack
    (published,) = [e for e in rig.events if e.name == "reference_list_published"]
    assert (published.fields["list"], published.fields["version"], published.fields["via"]) == (
        "import-prohibited.moit",
        1,
        "message",
    )

    status, before = await rig.submit("MOIT", "CO-1", "eco.form_d", SAMPLE, at=T - MICRO)
    assert status == 202, before
    status, at = await rig.submit("MOIT", "CO-2", "eco.form_d", SAMPLE, at=T)
    assert status == 422 and at["error"]["code"] == "VALIDATION_FAILED", at
    issues = at["error"]["issues"]
    assert [(i["path"], i["code"]) for i in issues] == [
        ("goods[0].hs_code", "GOODS_PROHIBITED"),
        ("goods[1].hs_code", "GOODS_PROHIBITED"),
    ]
    assert "import-prohibited.moit v1" in issues[0]["message"]
    assert at["error"]["details"]["reference_lists"] == ["import-prohibited.moit v1"]

    code, listed = await rig.admin("GET", "/v1/admin/reference-lists/import-prohibited.moit")
    assert code == 200 and listed["owner"] == "MOIT" and listed["in_force"] is None  # the system clock: before T
    (version,) = listed["versions"]
    assert (version["version"], version["effective_from"], version["publisher"], version["via"]) == (
        1,
        "2027-01-01T00:00:00Z",
        "MOIT",
        "message",
    )
    assert version["message"] == ack["id"] and len(version["digest"]) == 64
    assert [e.kind for e in await rig.gw.store.journal() if e.message_id == ack["id"]][:1] == ["ACCEPTED"]
    assert version["entries"] == [{"code": "0306", "note": "crustaceans"}]


async def test_the_old_version_still_applies_to_submissions_received_before_the_new_one_takes_effect(
    rig: Rig,
) -> None:
    assert (await rig.publish("MOIT", "RL-1", reference_list(effective="2027-01-01T00:00:00Z")))[0] == 202
    later = "2027-02-01T00:00:00Z"
    t2 = datetime(2027, 2, 1, tzinfo=UTC).timestamp()
    assert (await rig.publish("MOIT", "RL-2", reference_list(effective=later, codes=("0101",))))[0] == 202

    status, old = await rig.submit("MOIT", "CO-1", "eco.form_d", SAMPLE, at=t2 - MICRO)
    assert status == 422 and {i["code"] for i in old["error"]["issues"]} == {"GOODS_PROHIBITED"}
    assert old["error"]["details"]["reference_lists"] == ["import-prohibited.moit v1"]
    status, new = await rig.submit("MOIT", "CO-2", "eco.form_d", SAMPLE, at=t2)
    assert status == 202, new
    mapped = [h for h in await rig.history("MOIT", new["id"]) if h["to"] == "MAPPED"]
    assert mapped[0]["detail"] == "reference lists: import-prohibited.moit v2"


async def test_an_inspection_list_flags_the_goods_it_names_in_the_message_history(rig: Rig) -> None:
    doc = reference_list("inspection-required.mard", owner="MARD", purpose="inspection", codes=("030617",))
    assert (await rig.publish("MARD", "RL-1", doc))[0] == 202
    status, ack = await rig.submit("MOIT", "CO-1", "eco.form_d", SAMPLE, at=T)
    assert status == 202, ack
    mapped = [h for h in await rig.history("MOIT", ack["id"]) if h["to"] == "MAPPED"]
    assert mapped[0]["detail"] == (
        "reference lists: inspection-required.mard v1; inspection required: "
        "goods[0].hs_code: inspection-required.mard v1, goods[1].hs_code: inspection-required.mard v1"
    )


async def test_publication_by_a_non_owner_is_refused_with_the_code_naming_the_owner_element(rig: Rig) -> None:
    status, body = await rig.publish("MARD", "RL-1", reference_list(owner="MOIT"))
    assert status == 403 and body["error"]["code"] == "REFERENCE_LIST_NOT_OWNER", body
    assert body["error"]["field"] == "ReferenceList/Owner"
    assert (await rig.publish("MOIT", "RL-2", reference_list()))[0] == 202
    status, body = await rig.publish("MARD", "RL-3", reference_list(owner="MARD"))  # MOIT's list, claimed
    assert status == 403 and body["error"]["code"] == "REFERENCE_LIST_NOT_OWNER", body
    code, listed = await rig.admin("GET", "/v1/admin/reference-lists/import-prohibited.moit")
    assert code == 200 and [v["publisher"] for v in listed["versions"]] == ["MOIT"]


@pytest.mark.parametrize(
    ("document", "field"),
    [
        (reference_list(effective="2027-01-01T00:00:00"), "ReferenceList/EffectiveFrom"),
        (reference_list(effective="next tuesday"), "ReferenceList/EffectiveFrom"),
        (reference_list(codes=("03A6",)), "ReferenceList/Entry[1]/Code"),
        (reference_list(codes=("0306", "9")), "ReferenceList/Entry[2]/Code"),
        (reference_list(purpose="exempt"), "ReferenceList/Purpose"),
        (reference_list(name="Import Prohibited"), "ReferenceList/Name"),
        (reference_list(extra="<Colour>red</Colour>"), "ReferenceList/Colour"),
        (reference_list().replace(b"<Owner>MOIT</Owner>", b""), "ReferenceList/Owner"),
    ],
    ids=["no-offset", "not-a-date", "code-letters", "code-short", "purpose", "name", "unknown-element", "no-owner"],
)
async def test_a_bad_list_document_is_refused_with_the_element_named(rig: Rig, document: bytes, field: str) -> None:
    status, body = await rig.publish("MOIT", "RL-1", document)
    assert status == 422 and body["error"]["code"] == "REFERENCE_LIST_INVALID", body
    assert body["error"]["field"] == field
    code, listed = await rig.admin("GET", "/v1/admin/reference-lists")
    assert code == 200 and listed == {"lists": []}


async def test_an_operator_load_is_journaled_listed_and_used_from_its_effective_instant(rig: Rig) -> None:
    body = {
        "owner": "MOIT",
        "purpose": "prohibited",
        "effective_from": "2027-01-01T00:00:00Z",
        "entries": [{"code": "030617", "note": "shrimp"}],
    }
    status, published = await rig.admin("POST", "/v1/admin/reference-lists/import-prohibited.moit/versions", body)
    assert status == 201, published
    assert (published["version"], published["operator"]) == (1, "ops")
    code, actions = await rig.admin("GET", "/v1/admin/actions?operator=ops")
    assert code == 200
    (action,) = [a for a in actions["actions"] if a["id"] == published["action"]]
    assert action["action"] == "reference-publish"
    assert action["targets"] == [{"list": "import-prohibited.moit", "version": "1"}]
    journal = await rig.gw.store.journal()
    assert [e.kind for e in journal if e.message_id == published["action"]] == ["OPERATOR"]
    code, lists = await rig.admin("GET", "/v1/admin/reference-lists")
    assert code == 200 and [(x["name"], x["versions"][0]["via"]) for x in lists["lists"]] == [
        ("import-prohibited.moit", "operator")
    ]
    assert [e.fields["via"] for e in rig.events if e.name == "reference_list_published"] == ["operator"]

    assert (await rig.submit("MOIT", "CO-1", "eco.form_d", SAMPLE, at=T - MICRO))[0] == 202
    status, refused = await rig.submit("MOIT", "CO-2", "eco.form_d", SAMPLE, at=T)
    assert status == 422 and refused["error"]["issues"][0]["code"] == "GOODS_PROHIBITED"

    status, other = await rig.admin(
        "POST", "/v1/admin/reference-lists/import-prohibited.moit/versions", {**body, "owner": "MARD"}
    )
    assert status == 403 and other["error"]["code"] == "REFERENCE_LIST_NOT_OWNER"


async def test_a_version_stored_by_another_node_is_used_from_the_next_submission_without_restart(rig: Rig) -> None:
    """Prerequisite: a version written straight to the store (as another node, or ``nswgw reference load``, does).
    Predicate: the running gateway's next submission is validated under it."""
    draft = ReferenceDraft("import-prohibited.moit", "MOIT", "prohibited", T, (ReferenceEntry("03"),))
    await publish_by_operator(rig.gw.store, draft, operator="cli:test", at=T - 10, parties=["MOIT"])
    status, body = await rig.submit("MOIT", "CO-1", "eco.form_d", SAMPLE, at=T)
    assert status == 422 and body["error"]["details"]["reference_lists"] == ["import-prohibited.moit v1"]


def test_nswgw_reference_load_publishes_a_document_as_the_next_version(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "gw.db"
    config = tmp_path / "nswgw.toml"
    config.write_text(
        '[gateway]\nverification = "well-formed"\nsigning = "off"\n\n'
        f'[store]\nurl = "sqlite:///{db}"\n\n[parties.MOIT]\ntokens = ["moit-token"]\n'
        'document_types = ["reference.list"]\n\n[document_types."reference.list"]\n'
        f'roots = ["{ROOT}"]\n'
    )
    doc = tmp_path / "list.xml"
    doc.write_bytes(reference_list())
    assert main(["reference", "load", "--config", str(config), str(doc)]) == 0
    assert "published import-prohibited.moit v1 (1 entries)" in capsys.readouterr().out
    assert main(["reference", "load", "--config", str(config), "--json", str(doc)]) == 0
    loaded = json.loads(capsys.readouterr().out)
    assert (loaded["version"], loaded["via"]) == (2, "operator") and loaded["publisher"].startswith("cli:")
    doc.write_bytes(reference_list(owner="NOBODY"))
    assert main(["reference", "load", "--config", str(config), str(doc)]) == 2
    assert "REFERENCE_LIST_INVALID (ReferenceList/Owner)" in capsys.readouterr().err
    assert main(["reference", "list", "--config", str(config), "--json"]) == 0
    assert [v["version"] for v in json.loads(capsys.readouterr().out)] == [1, 2]


async def test_concurrent_publications_of_one_list_get_distinct_consecutive_versions(rig: Rig) -> None:
    drafts = [
        ReferenceDraft("import-prohibited.moit", "MOIT", "prohibited", T + i, (ReferenceEntry(f"0{i + 1}"),))
        for i in range(6)
    ]
    stored = await asyncio.gather(
        *(publish_by_operator(rig.gw.store, d, operator="ops", at=T, parties=["MOIT"]) for d in drafts)
    )
    assert sorted(v.version for v, _ in stored) == [1, 2, 3, 4, 5, 6]
    listed = await rig.gw.store.reference_versions("import-prohibited.moit")
    assert [v.version for v in listed] == [1, 2, 3, 4, 5, 6] and len({v.digest for v in listed}) == 6
    assert await rig.gw.store.reference_head() == listed[-1].seq
