"""The registry of issued documents end to end, on both stores, through the real HTTP API: MARD issues a quarantine
permit (10 t of live cattle for enterprise 0101234567), customs' check of a declaration finds it, customs'
``registry.utilization`` reports draw it down (a report beyond what remains is ``REGISTRY_QUANTITY_EXCEEDED`` and
stores nothing; twenty concurrent reports of 1 t each leave exactly ten accepted), a ministry sees only what it
issued, an enterprise through its intermediary only its own, parties without the role are refused, and every query
is an ``OPERATOR`` journal entry of a chain that still verifies."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import jsonschema
import pytest

from gateway.api import Gateway
from gateway.audit import audit_store
from gateway.errors import NswError
from gateway.journal import OPERATOR, OperatorAction
from gateway.registry import RegistryQuery
from gateway.store.postgres import PostgresStore
from helpers.gateway import Receiver, make_config
from helpers.postgres import PG_DSN, fresh_schema
from helpers.stores import STORE_PARAMS, STORES
from mappings.issued import NS

ENTERPRISE, OTHER = "0101234567", "0309876543"
TOKENS = {
    "MARD": "mard-token",
    "MOIT": "moit-token",
    "CUSTOMS": "customs-token",
    "BROKER": "broker-token",
    "TRADER": "trader-token",
}
QUARANTINE = "BNNPTNT0600011"
CATTLE = "01022910"


def permit(
    number: str,
    *,
    holder: str = ENTERPRISE,
    lines: tuple[tuple[str, str, str], ...] = ((CATTLE, "10", "TNE"),),
    decision: str = "issued",
    procedure: str = QUARANTINE,
    valid_until: str = "2099-06-30T00:00:00+07:00",
    status: str | None = None,
) -> bytes:
    """A harmonized (``json``) permit decision of ``procedure`` for ``holder`` with goods ``(hs, quantity, unit)``."""
    document: dict[str, Any] = {"number": number, "issue_date": "2026-12-01T08:00:00+07:00"}
    if status is not None:
        document["status_code"] = status
    return json.dumps(
        {
            "document": document,
            "parties": {"declarant": {"name": "Cong ty A", "identifier": holder}},
            "goods": [
                {"sequence": i + 1, "description": "goods", "hs_code": hs, "quantities": [{"value": q, "unit": u}]}
                for i, (hs, q, u) in enumerate(lines)
            ],
            "permit": {
                "procedure_code": procedure,
                "number": number,
                "decision": decision,
                "decision_date": "2026-12-01T08:00:00+07:00",
                "valid_until": valid_until,
            },
        }
    ).encode()


def utilization(
    declaration: str, number: str, quantity: str, *, unit: str = "TNE", hs: str = CATTLE, enterprise: str = ENTERPRISE
) -> bytes:
    return (
        f'<RegistryUtilization xmlns="{NS}"><Declaration>{declaration}</Declaration>'
        f"<Enterprise>{enterprise}</Enterprise><Line><DocumentType>{QUARANTINE}</DocumentType>"
        f"<Number>{number}</Number><HsCode>{hs}</HsCode><Quantity>{quantity}</Quantity><Unit>{unit}</Unit></Line>"
        "</RegistryUtilization>"
    ).encode()


@dataclass
class Rig:
    gw: Gateway
    session: aiohttp.ClientSession

    async def issue(self, party: str, message_id: str, body: bytes) -> tuple[int, dict[str, Any]]:
        return await self._post(party, message_id, "sps.permit", body, "json", "application/json")

    async def utilize(self, message_id: str, body: bytes, party: str = "CUSTOMS") -> tuple[int, dict[str, Any]]:
        return await self._post(party, message_id, "registry.utilization", body, "xml", "application/xml")

    async def _post(
        self, party: str, message_id: str, document_type: str, body: bytes, fmt: str, content_type: str
    ) -> tuple[int, dict[str, Any]]:
        headers = {
            "Authorization": f"Bearer {TOKENS[party]}",
            "X-Message-Id": message_id,
            "X-Document-Type": document_type,
            "X-Format": fmt,
            "Content-Type": content_type,
        }
        async with self.session.post(f"{self.gw.url}/v1/messages", data=body, headers=headers) as r:
            return r.status, json.loads(await r.read())

    async def check(self, party: str, body: Any) -> tuple[int, dict[str, Any]]:
        headers = {"Authorization": f"Bearer {TOKENS[party]}", "Content-Type": "application/json"}
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        async with self.session.post(f"{self.gw.url}/v1/registry/check", data=data, headers=headers) as r:
            return r.status, json.loads(await r.read())

    async def get(self, party: str, path: str, **headers: str) -> tuple[int, dict[str, Any]]:
        h = {"Authorization": f"Bearer {TOKENS[party]}", **headers}
        async with self.session.get(f"{self.gw.url}{path}", headers=h) as r:
            return r.status, json.loads(await r.read())

    async def remaining(self, number: str) -> str:
        status, body = await self.get("CUSTOMS", f"/v1/registry/documents/{QUARANTINE}/{number}")
        assert status == 200, body
        return str(body["document"]["lines"][0]["remaining"])


def goods(hs: str = CATTLE, quantity: str | None = "6", unit: str | None = "TNE") -> dict[str, Any]:
    line: dict[str, Any] = {"hs_code": hs}
    if quantity is not None:
        line["quantity"] = quantity
    if unit is not None:
        line["unit"] = unit
    return line


def declaration(*lines: dict[str, Any], enterprise: str = ENTERPRISE, ref: str = "104567890123") -> dict[str, Any]:
    return {"enterprise": enterprise, "declaration_reference": ref, "goods": list(lines)}


@pytest.fixture(params=STORE_PARAMS)
async def rig(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Rig]:
    nsw = await Receiver().start()
    config = make_config(
        tmp_path,
        {"NSW": nsw.url},
        parties={
            "MARD": {"registry": ["issued"]},
            "MOIT": {"document_types": ["sps.permit"], "registry": ["issued"]},
            "CUSTOMS": {
                "tokens": [TOKENS["CUSTOMS"]],
                "document_types": ["registry.utilization"],
                "registry": ["check", "all", "utilize"],
            },
            "BROKER": {
                "tokens": [TOKENS["BROKER"]],
                "kind": "intermediary",
                "on_behalf_of": [ENTERPRISE],
                "registry": ["own"],
            },
            "TRADER": {"document_types": ["registry.utilization"]},
        },
        document_types={"registry.utilization": {"roots": [f"{{{NS}}}RegistryUtilization"]}},
    )
    try:
        async with Gateway(config, store=STORES[request.param](tmp_path)) as gw, aiohttp.ClientSession() as session:
            yield Rig(gw, session)
    finally:
        await nsw.stop()


async def test_a_quarantine_permit_issued_by_mard_covers_the_declaration_customs_checks(rig: Rig) -> None:
    status, ack = await rig.issue("MARD", "P-1", permit("QT-2026-001"))
    assert status == 202, ack

    status, answer = await rig.check("CUSTOMS", declaration(goods(quantity="6"), goods(hs="03021100")))
    assert status == 200, answer
    assert answer["covered"] is False
    first, second = answer["goods"]
    assert first["covered"] is True and first["error"] is None
    assert first["covered_by"] == {"doc_type": QUARANTINE, "number": "QT-2026-001"}
    (found,) = first["documents"]
    assert (found["issuer"], found["status"], found["remaining"], found["unit"]) == ("MARD", "valid", "10", "TNE")
    assert found["message"] == ack["id"] and found["valid_until"] == "2099-06-29T17:00:00Z"
    assert found["remaining_days"] > 0
    assert second["covered"] is False and second["documents"] == []
    assert second["error"]["code"] == "REGISTRY_NOT_COVERED"
    assert (second["error"]["field"], second["error"]["reason"]) == ("goods[1].hs_code", "no_document")

    # another enterprise's declaration of the same goods is not covered by this enterprise's permit
    status, answer = await rig.check("CUSTOMS", declaration(goods(), enterprise=OTHER))
    assert status == 200 and answer["goods"][0]["error"]["reason"] == "no_document"


async def test_a_declaration_beyond_the_remaining_quantity_is_refused_and_stores_nothing(rig: Rig) -> None:
    await rig.issue("MARD", "P-2", permit("QT-2026-002"))
    status, first = await rig.utilize("U-1", utilization("DECL-1", "QT-2026-002", "6"))
    assert status == 202, first
    assert await rig.remaining("QT-2026-002") == "4"

    status, refused = await rig.utilize("U-2", utilization("DECL-2", "QT-2026-002", "5"))
    assert status == 409, refused
    assert refused["error"]["code"] == "REGISTRY_QUANTITY_EXCEEDED"
    assert refused["error"]["field"] == "RegistryUtilization/Line[1]/Quantity"
    assert await rig.get("CUSTOMS", "/v1/messages?limit=100") == (200, {"messages": [await message(rig, first["id"])]})
    assert await rig.remaining("QT-2026-002") == "4"

    # the same declaration reported again (a resend under a new id) draws nothing more; another quantity conflicts
    status, again = await rig.utilize("U-3", utilization("DECL-1", "QT-2026-002", "6"))
    assert status == 202, again
    assert await rig.remaining("QT-2026-002") == "4"
    status, conflict = await rig.utilize("U-4", utilization("DECL-1", "QT-2026-002", "3"))
    assert status == 409 and conflict["error"]["code"] == "REGISTRY_DECLARATION_CONFLICT", conflict

    # kilograms draw on tonnes; the check now finds 4 t left
    status, kilos = await rig.utilize("U-5", utilization("DECL-5", "QT-2026-002", "1500", unit="KGM"))
    assert status == 202, kilos
    assert await rig.remaining("QT-2026-002") == "2.5"
    status, answer = await rig.check("CUSTOMS", declaration(goods(quantity="3")))
    line = answer["goods"][0]
    assert line["covered"] is False and line["documents"][0]["remaining"] == "2.5"
    assert (line["error"]["reason"], line["error"]["field"]) == ("quantity_exhausted", "goods[0].quantity")
    status, detail = await rig.get("CUSTOMS", f"/v1/registry/documents/{QUARANTINE}/QT-2026-002")
    assert [(d["declaration"], d["quantity"]) for d in detail["draws"]] == [("DECL-1", "6"), ("DECL-5", "1.5")]


async def message(rig: Rig, gateway_id: str) -> dict[str, Any]:
    status, body = await rig.get("CUSTOMS", f"/v1/messages/{gateway_id}")
    assert status == 200, body
    return body


async def test_twenty_concurrent_declarations_of_one_tonne_draw_exactly_ten_tonnes(rig: Rig) -> None:
    await rig.issue("MARD", "P-3", permit("QT-2026-003"))
    results = await asyncio.gather(
        *(rig.utilize(f"C-{i}", utilization(f"DECL-C{i}", "QT-2026-003", "1")) for i in range(20))
    )
    statuses = sorted(status for status, _ in results)
    assert statuses == [202] * 10 + [409] * 10, results
    assert {body["error"]["code"] for status, body in results if status == 409} == {"REGISTRY_QUANTITY_EXCEEDED"}
    assert await rig.remaining("QT-2026-003") == "0"
    status, detail = await rig.get("CUSTOMS", f"/v1/registry/documents/{QUARANTINE}/QT-2026-003")
    assert len(detail["draws"]) == 10 and detail["document"]["lines"][0]["drawn"] == "10"


async def test_unknown_cancelled_and_expired_documents_are_refused_with_their_codes(rig: Rig) -> None:
    status, unknown = await rig.utilize("U-10", utilization("DECL-10", "QT-NONE", "1"))
    assert (status, unknown["error"]["code"]) == (404, "REGISTRY_DOCUMENT_UNKNOWN"), unknown
    assert unknown["error"]["field"] == "RegistryUtilization/Line[1]/Number"

    await rig.issue("MARD", "P-4", permit("QT-2026-004"))
    status, cancelled = await rig.issue("MARD", "P-4C", permit("QT-2026-004", status="1"))
    assert status == 202, cancelled
    status, refused = await rig.utilize("U-11", utilization("DECL-11", "QT-2026-004", "1"))
    assert (status, refused["error"]["code"]) == (409, "REGISTRY_DOCUMENT_CANCELLED"), refused
    status, answer = await rig.check("CUSTOMS", declaration(goods(quantity="1")))
    assert answer["goods"][0]["error"]["reason"] == "cancelled"

    await rig.issue("MARD", "P-5", permit("QT-2020-005", holder=OTHER, valid_until="2021-01-01T00:00:00+07:00"))
    status, refused = await rig.utilize("U-12", utilization("DECL-12", "QT-2020-005", "1", enterprise=OTHER))
    assert (status, refused["error"]["code"]) == (409, "REGISTRY_DOCUMENT_EXPIRED"), refused
    status, answer = await rig.check("CUSTOMS", declaration(goods(quantity="1"), enterprise=OTHER))
    assert answer["goods"][0]["error"]["reason"] == "expired"
    assert answer["goods"][0]["documents"][0]["status"] == "expired"

    # another party cannot amend MARD's permit
    status, stolen = await rig.issue("MOIT", "M-1", permit("QT-2026-004", decision="amended"))
    assert (status, stolen["error"]["code"], stolen["error"]["field"]) == (403, "REGISTRY_NOT_ISSUER", "permit.number")


async def test_an_amendment_replaces_the_lines_and_keeps_what_was_drawn(rig: Rig) -> None:
    await rig.issue("MARD", "P-6", permit("QT-2026-006"))
    await rig.utilize("U-20", utilization("DECL-20", "QT-2026-006", "4"))
    status, ack = await rig.issue(
        "MARD", "P-6A", permit("QT-2026-006", decision="amended", lines=((CATTLE, "12", "TNE"),))
    )
    assert status == 202, ack
    status, detail = await rig.get("CUSTOMS", f"/v1/registry/documents/{QUARANTINE}/QT-2026-006")
    assert detail["document"]["status"] == "amended" and detail["document"]["message"] == ack["id"]
    assert (detail["document"]["lines"][0]["quantity"], detail["document"]["lines"][0]["remaining"]) == ("12", "8")


async def test_a_ministry_sees_only_what_it_issued_and_customs_sees_all(rig: Rig) -> None:
    await rig.issue("MARD", "P-7", permit("QT-2026-007"))
    await rig.issue("MOIT", "M-7", permit("IL-2026-007", procedure="BCT0800001", holder=OTHER))
    status, mard = await rig.get("MARD", "/v1/registry/documents")
    assert status == 200 and [d["number"] for d in mard["documents"]] == ["QT-2026-007"], mard
    status, forbidden = await rig.get("MARD", "/v1/registry/documents?issuer=MOIT")
    assert (status, forbidden["error"]["code"], forbidden["error"]["field"]) == (403, "AUTH_FORBIDDEN", "issuer")
    status, hidden = await rig.get("MARD", "/v1/registry/documents/BCT0800001/IL-2026-007")
    assert (status, hidden["error"]["code"]) == (404, "REGISTRY_DOCUMENT_UNKNOWN")

    status, page = await rig.get("CUSTOMS", "/v1/registry/documents?limit=1")
    assert [d["number"] for d in page["documents"]] == ["IL-2026-007"] and page["next_cursor"], page
    status, rest = await rig.get("CUSTOMS", f"/v1/registry/documents?limit=1&cursor={page['next_cursor']}")
    assert [d["number"] for d in rest["documents"]] == ["QT-2026-007"]
    status, by_hs = await rig.get("CUSTOMS", "/v1/registry/documents?hs_code=0102&status=valid")
    assert [d["number"] for d in by_hs["documents"]] == ["IL-2026-007", "QT-2026-007"]
    status, expired = await rig.get("CUSTOMS", "/v1/registry/documents?status=expired")
    assert expired["documents"] == []
    status, bad = await rig.get("CUSTOMS", "/v1/registry/documents?status=gone")
    assert (status, bad["error"]["code"], bad["error"]["field"]) == (400, "REQUEST_INVALID", "status")


async def test_an_enterprise_sees_only_its_own_documents_through_its_intermediary(rig: Rig) -> None:
    await rig.issue("MARD", "P-8", permit("QT-2026-008"))
    await rig.issue("MARD", "P-9", permit("QT-2026-009", holder=OTHER))
    status, own = await rig.get("BROKER", "/v1/registry/documents", **{"X-On-Behalf-Of": ENTERPRISE})
    assert status == 200 and [d["number"] for d in own["documents"]] == ["QT-2026-008"], own
    status, one = await rig.get(
        "BROKER", f"/v1/registry/documents/{QUARANTINE}/QT-2026-008", **{"X-On-Behalf-Of": ENTERPRISE}
    )
    assert status == 200 and one["document"]["holder"] == ENTERPRISE
    status, hidden = await rig.get(
        "BROKER", f"/v1/registry/documents/{QUARANTINE}/QT-2026-009", **{"X-On-Behalf-Of": ENTERPRISE}
    )
    assert (status, hidden["error"]["code"]) == (404, "REGISTRY_DOCUMENT_UNKNOWN")
    status, other = await rig.get("BROKER", "/v1/registry/documents", **{"X-On-Behalf-Of": OTHER})
    assert (status, other["error"]["code"], other["error"]["field"]) == (
        403,
        "AUTH_DELEGATION_MISSING",
        "X-On-Behalf-Of",
    )
    status, unnamed = await rig.get("BROKER", "/v1/registry/documents")
    assert (status, unnamed["error"]["code"], unnamed["error"]["field"]) == (
        403,
        "AUTH_DELEGATION_MISSING",
        "X-On-Behalf-Of",
    )


async def test_parties_without_the_registry_role_are_refused(rig: Rig) -> None:
    status, body = await rig.check("TRADER", declaration(goods()))
    assert (status, body["error"]["code"], body["error"]["field"]) == (403, "AUTH_FORBIDDEN", "parties.TRADER.registry")
    status, body = await rig.check("MARD", declaration(goods()))
    assert (status, body["error"]["code"]) == (403, "AUTH_FORBIDDEN")
    status, body = await rig.get("TRADER", "/v1/registry/documents")
    assert (status, body["error"]["code"], body["error"]["field"]) == (403, "AUTH_FORBIDDEN", "parties.TRADER.registry")
    status, body = await rig.get("MARD", "/v1/registry/documents", **{"X-On-Behalf-Of": ENTERPRISE})
    assert (status, body["error"]["code"]) == (403, "AUTH_FORBIDDEN")

    await rig.issue("MARD", "P-10", permit("QT-2026-010"))
    status, body = await rig.utilize("T-1", utilization("DECL-T", "QT-2026-010", "1"), party="TRADER")
    assert (status, body["error"]["code"], body["error"]["field"]) == (403, "AUTH_FORBIDDEN", "parties.TRADER.registry")
    assert await rig.remaining("QT-2026-010") == "10"


async def test_a_malformed_check_is_refused_naming_the_field(rig: Rig) -> None:
    cases: list[tuple[Any, str]] = [
        (declaration(goods(), goods(hs="12")), "goods[1].hs_code"),
        ({"declaration_reference": "D", "goods": [goods()]}, "enterprise"),
        (declaration(goods(unit=None)), "goods[0].unit"),
        (declaration(goods(quantity="-1")), "goods[0].quantity"),
        ({**declaration(goods()), "at": "tomorrow"}, "at"),
        ({**declaration(), "goods": []}, "goods"),
        (b"{not json", "body"),
    ]
    for body, field in cases:
        status, answer = await rig.check("CUSTOMS", body)
        assert (status, answer["error"]["code"], answer["error"]["field"]) == (400, "REQUEST_INVALID", field), body


async def test_a_refused_permit_indexes_nothing(rig: Rig) -> None:
    broken = json.loads(permit("QT-2026-011"))
    broken["goods"][0]["hs_code"] = "not-a-code"
    status, ack = await rig.issue("MARD", "P-11", json.dumps(broken).encode())
    assert status == 422 and ack["error"]["code"] == "VALIDATION_FAILED", ack
    status, body = await rig.get("CUSTOMS", "/v1/registry/documents")
    assert body["documents"] == []


async def test_every_query_is_journaled_and_the_journal_verifies(rig: Rig) -> None:
    await rig.issue("MARD", "P-12", permit("QT-2026-012"))
    await rig.check("CUSTOMS", declaration(goods()))
    await rig.get("MARD", "/v1/registry/documents?status=valid")
    await rig.get("BROKER", f"/v1/registry/documents/{QUARANTINE}/QT-2026-012", **{"X-On-Behalf-Of": ENTERPRISE})
    entries = await rig.gw.store.journal()
    base = await rig.gw.store.journal_base()
    report = await audit_store(rig.gw.store, anchors=[], evidence=True, integrity=True, start=(base.seq, base.hash))
    assert report.ok, report.problems  # what nswgw log verify checks: the chain and each entry's evidence
    operator = [e for e in entries if e.kind == OPERATOR]
    recorded = await rig.gw.store.operator_actions(ids=[e.message_id for e in operator])
    actions = [OperatorAction.from_record(r.record) for r in recorded]
    assert all(r.seq is not None for r in recorded)
    asked = sorted((a.operator, a.action, a.detail["results"]) for a in actions)
    assert asked == [
        ("party:BROKER", "registry-document", 1),
        ("party:CUSTOMS", "registry-check", 1),
        ("party:MARD", "registry-documents", 1),
    ]
    (check,) = [a for a in actions if a.action == "registry-check"]
    assert check.targets == ({"enterprise": ENTERPRISE, "declaration": "104567890123"},)
    assert check.detail["covered"] is True and len(check.detail["digest"]) == 64


def _answers_as_documented(document: dict[str, Any], template: str, method: str, status: int, body: Any) -> None:
    """The status is listed for the operation and the JSON body matches that status' schema in ``document``."""
    operation = document["paths"][template][method]
    assert str(status) in operation["responses"], (template, status, body)
    schema = operation["responses"][str(status)]["content"]["application/json"]["schema"]
    validator = jsonschema.Draft202012Validator({**schema, "components": document["components"]})
    validator.validate(body)


async def test_the_registry_routes_answer_as_the_openapi_document_describes(rig: Rig) -> None:
    async with rig.session.get(f"{rig.gw.url}/openapi.json") as r:
        document = json.loads(await r.read())
    await rig.issue("MARD", "P-13", permit("QT-2026-013"))
    calls: list[tuple[str, str, tuple[int, dict[str, Any]]]] = [
        ("/v1/registry/check", "post", await rig.check("CUSTOMS", declaration(goods(), goods(hs="0302")))),
        ("/v1/registry/check", "post", await rig.check("CUSTOMS", declaration(goods(hs="1")))),
        ("/v1/registry/check", "post", await rig.check("TRADER", declaration(goods()))),
        ("/v1/registry/documents", "get", await rig.get("CUSTOMS", "/v1/registry/documents?limit=1")),
        ("/v1/registry/documents", "get", await rig.get("CUSTOMS", "/v1/registry/documents?limit=0")),
        ("/v1/registry/documents", "get", await rig.get("BROKER", "/v1/registry/documents")),
        (
            "/v1/registry/documents/{doc_type}/{number}",
            "get",
            await rig.get("MARD", f"/v1/registry/documents/{QUARANTINE}/QT-2026-013"),
        ),
        (
            "/v1/registry/documents/{doc_type}/{number}",
            "get",
            await rig.get("MARD", f"/v1/registry/documents/{QUARANTINE}/QT-NONE"),
        ),
    ]
    assert sorted({status for _, _, (status, _) in calls}) == [200, 400, 403, 404]
    for template, method, (status, body) in calls:
        _answers_as_documented(document, template, method, status, body)


@pytest.mark.postgres
async def test_two_postgresql_nodes_drawing_at_once_never_both_take_the_last_tonne(tmp_path: Path) -> None:
    nsw = await Receiver().start()
    config = make_config(
        tmp_path,
        {"NSW": nsw.url},
        parties={
            "MARD": {"registry": ["issued"]},
            "CUSTOMS": {
                "tokens": [TOKENS["CUSTOMS"]],
                "document_types": ["registry.utilization"],
                "registry": ["check", "all", "utilize"],
            },
        },
        document_types={"registry.utilization": {"roots": [f"{{{NS}}}RegistryUtilization"]}},
    )
    try:
        async with (
            fresh_schema() as dsn,
            Gateway(config, store=PostgresStore(dsn, pool_size=4, node_name="a")) as a,
            Gateway(config, store=PostgresStore(dsn, pool_size=4, node_name="b")) as b,
            aiohttp.ClientSession() as session,
        ):
            first, second = Rig(a, session), Rig(b, session)
            status, ack = await first.issue("MARD", "P-N", permit("QT-2026-100"))
            assert status == 202, ack
            results = await asyncio.gather(
                *(
                    (first if i % 2 else second).utilize(f"N-{i}", utilization(f"DECL-N{i}", "QT-2026-100", "1"))
                    for i in range(20)
                )
            )
            assert sorted(status for status, _ in results) == [202] * 10 + [409] * 10, results
            assert await first.remaining("QT-2026-100") == "0" and await second.remaining("QT-2026-100") == "0"
    finally:
        await nsw.stop()


@pytest.mark.postgres
@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.registry_find(RegistryQuery(at=1.0, holder=ENTERPRISE, status="valid", hs_code="0102")),
        lambda s: s.registry_document(QUARANTINE, "QT-1"),
        lambda s: s.registry_candidates(ENTERPRISE, [CATTLE]),
    ],
    ids=["registry_find", "registry_document", "registry_candidates"],
)
async def test_a_registry_read_on_a_dropped_schema_is_a_coded_store_error(call: Any) -> None:
    async with fresh_schema() as dsn, PostgresStore(dsn, pool_size=2, writers=1) as store:
        admin = await asyncpg.connect(PG_DSN)
        try:
            await admin.execute(f'DROP SCHEMA "{dsn.rsplit("search_path=", 1)[1]}" CASCADE')
        finally:
            await admin.close()
        with pytest.raises(NswError) as failed:
            await call(store)
        assert failed.value.code in ("STORE_UNAVAILABLE", "GATEWAY_INTERNAL") and failed.value.__cause__ is not None
