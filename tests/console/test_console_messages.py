"""The console's messages, dead letters and partners pages: the search with its filters and cursor, a message's
page and its evidence downloads, attacker-controlled text rendered inert, the dead-letter replay after a
server-side confirmation (journaled under the operator, refused without the CSRF token or the ``act`` role), and
a failing partner's breaker and backlog.

A real gateway on 127.0.0.1 with a real loopback partner, logged in through a one-time link; the store-backed
pages run on each store (SQLite and PostgreSQL).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import lxml.html
import pytest
from multidict import CIMultiDictProxy

from gateway.api import Gateway
from gateway.journal import OPERATOR, OperatorAction
from gateway.store.base import MessageQuery
from helpers.admin import OPERATORS
from helpers.console import ConsoleClient, log_in
from helpers.gateway import Receiver, doc, eventually, make_config, submit
from helpers.stores import STORE_PARAMS, store_settings

SCRIPT = "<script>alert(1)</script>"
HOSTILE = f'<Doc xmlns="urn:x{SCRIPT.replace("<", "&lt;").replace(">", "&gt;")}"><No>1</No></Doc>'.encode()
"""Not well-formed: its namespace is no URI, and the parser's error names it, ``<script>`` and all."""


@dataclass
class Desk:
    """A running gateway, the partner behind its destination ``TH``, and the ``ops`` operator logged in."""

    gw: Gateway
    partner: Receiver
    http: aiohttp.ClientSession
    ops: ConsoleClient


async def _desk(gw: Gateway, partner: Receiver) -> AsyncIterator[Desk]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        yield Desk(gw, partner, http, await log_in(gw, http, "ops"))


@pytest.fixture(params=STORE_PARAMS)
async def desk(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Desk]:
    """The gateway on each store, named by its configuration (so that ``console_link`` reaches the same one)."""
    async with AsyncExitStack() as stack:
        extra: dict[str, Any] = {"operators": OPERATORS, **await store_settings(stack, request.param)}
        partner = await Receiver().start()
        stack.push_async_callback(partner.stop)
        config = make_config(tmp_path, {"TH": partner.url}, extra=extra, retry={"max_attempts": 1000})
        gw = await stack.enter_async_context(Gateway(config))
        async for d in _desk(gw, partner):
            yield d


def _ids(page: lxml.html.HtmlElement) -> list[str]:
    return [str(v) for v in page.xpath("//table[@id='messages']/tbody/tr[@data-id]/@data-id")]


def _text(page: lxml.html.HtmlElement, element_id: str) -> str:
    [element] = page.xpath(f"//*[@id='{element_id}']")
    return str(element.text_content()).strip()


def _local(moment: float) -> str:
    """``moment`` as a ``datetime-local`` input sends it (UTC)."""
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S")


async def _download(desk: Desk, path: str) -> tuple[int, bytes, CIMultiDictProxy[str]]:
    async with desk.http.get(f"{desk.gw.url}{path}") as r:
        return r.status, await r.read(), r.headers


async def _acknowledged(gw: Gateway, message_id: str) -> None:
    async def done() -> bool:
        record = await gw.store.get(message_id)
        return record is not None and record.state.value == "ACKNOWLEDGED"

    await eventually(done)


async def test_the_search_filters_by_sender_state_code_and_time_and_pages_by_the_cursor(desk: Desk) -> None:
    ids = {}
    for i in range(3):
        ids[f"moit-{i}"] = (await submit(desk.http, desk.gw.url, "MOIT", f"moit-{i}", "eco.form_d", doc(i)))[1]["id"]
    for i in range(2):
        ids[f"mard-{i}"] = (await submit(desk.http, desk.gw.url, "MARD", f"mard-{i}", "sps.permit", doc(i)))[1]["id"]
    status, refused = await submit(desk.http, desk.gw.url, "MOIT", "bad-1", "eco.form_d", b"<Doc><No>1</Doc>")
    assert (status, refused["error"]["code"]) == (400, "XML_MALFORMED")
    rejected = refused["ack"]["id"]

    status, page = await desk.ops.page("/console/messages")
    assert status == 200
    assert sorted(_ids(page)) == sorted([*ids.values(), rejected])
    _, page = await desk.ops.page("/console/messages?sender=MARD&state=&code=&since=&until=")
    assert sorted(_ids(page)) == sorted([ids["mard-0"], ids["mard-1"]])
    _, page = await desk.ops.page("/console/messages?state=REJECTED")
    assert _ids(page) == [rejected]
    _, page = await desk.ops.page("/console/messages?code=XML_MALFORMED&sender=MOIT")
    assert _ids(page) == [rejected]
    [code] = page.xpath("//tr[@data-id=$id]/td[contains(@class, 'code')]", id=rejected)
    assert code.text_content().strip() == "XML_MALFORMED"
    _, page = await desk.ops.page("/console/messages?document_type=sps.permit&destination=TH")
    assert sorted(_ids(page)) == sorted([ids["mard-0"], ids["mard-1"]])

    now = desk.gw.clock.now()
    _, page = await desk.ops.page(f"/console/messages?since={_local(now + 3600)}")
    assert _ids(page) == []
    _, page = await desk.ops.page(f"/console/messages?until={_local(now - 3600)}")
    assert _ids(page) == []
    _, page = await desk.ops.page(f"/console/messages?since={_local(now - 3600)}&until={_local(now + 3600)}")
    assert len(_ids(page)) == 6
    status, page = await desk.ops.page("/console/messages?since=yesterday")
    assert (status, _text(page, "error-code")) == (400, "REQUEST_INVALID")

    seen: list[str] = []
    path: str | None = "/console/messages?limit=4"
    pages = 0
    while path is not None:
        _, page = await desk.ops.page(path)
        seen += _ids(page)
        older = page.xpath("//a[@id='older']/@href")
        path = str(older[0]) if older else None
        pages += 1
    assert pages == 2
    assert sorted(seen) == sorted([*ids.values(), rejected])  # neither repeated nor skipped


async def test_a_rejected_messages_page_shows_its_code_and_the_excerpt_downloads_byte_for_byte(desk: Desk) -> None:
    body = b"<Doc><No>1</Doc>"
    _, refused = await submit(desk.http, desk.gw.url, "MOIT", "bad-2", "eco.form_d", body)
    mid = refused["ack"]["id"]
    status, page = await desk.ops.page(f"/console/messages/{mid}")
    assert status == 200
    assert (_text(page, "state"), _text(page, "error-code")) == ("REJECTED", "XML_MALFORMED")
    assert _text(page, "sender-message-id") == "bad-2"
    assert "XML_MALFORMED" in [c.text_content() for c in page.xpath("//section[@id='intake']//li//span[@class='code']")]
    assert page.xpath("//*[@id='no-deliveries']")
    assert _text(page, "payload-sha256") == hashlib.sha256(body).hexdigest()
    status, data, headers = await _download(desk, f"/console/messages/{mid}/evidence")
    assert (status, data) == (200, body)
    assert headers["Content-Type"] == "application/octet-stream"
    assert headers["Content-Disposition"] == f'attachment; filename="{mid}-rejected-excerpt.bin"'
    assert headers["X-Content-Type-Options"] == "nosniff"


async def test_an_acknowledged_messages_evidence_and_its_deliverys_payload_and_receipt_download_exactly(
    desk: Desk,
) -> None:
    body = doc("evidence", size=2000)
    _, ack = await submit(desk.http, desk.gw.url, "MOIT", "good-1", "eco.form_d", body, X_Reference="earlier-1")
    await _acknowledged(desk.gw, ack["id"])
    record = await desk.gw.store.get(ack["id"])
    assert record is not None
    (delivery,) = record.deliveries
    assert delivery.receipt is not None

    status, page = await desk.ops.page(f"/console/messages/{ack['id']}")
    assert status == 200
    assert (_text(page, "state"), _text(page, "sender"), _text(page, "reference")) == (
        "ACKNOWLEDGED",
        "MOIT",
        "earlier-1",
    )
    assert _text(page, "conversation") == "good-1"
    assert "unknown" in _text(page, "signer")  # verification = "well-formed": nobody signed it
    assert _text(page, "payload-sha256") == hashlib.sha256(body).hexdigest()
    [section] = page.xpath("//section[@data-destination='TH']")
    assert (
        section.xpath(".//*[contains(@class, 'delivered-sha256')]")[0].text
        == hashlib.sha256(delivery.payload).hexdigest()
    )
    assert (
        section.xpath(".//*[contains(@class, 'receipt-sha256')]")[0].text
        == hashlib.sha256(delivery.receipt).hexdigest()
    )
    assert [li.xpath("string(strong)") for li in section.xpath(".//ol/li")][-1] == "ACKNOWLEDGED"

    status, data, headers = await _download(desk, f"/console/messages/{ack['id']}/evidence")
    assert (status, data, headers["Content-Type"]) == (200, body, "application/octet-stream")
    assert headers["Content-Disposition"] == f'attachment; filename="{ack["id"]}-accepted.bin"'
    status, data, headers = await _download(desk, f"/console/messages/{ack['id']}/deliveries/TH/payload")
    assert (status, data, headers["X-Content-Type-Options"]) == (200, delivery.payload, "nosniff")
    status, data, _ = await _download(desk, f"/console/messages/{ack['id']}/deliveries/TH/receipt")
    assert (status, data) == (200, delivery.receipt)
    status, page = await desk.ops.page(f"/console/messages/{ack['id']}/deliveries/XX/payload")
    assert (status, _text(page, "error-code")) == (404, "MESSAGE_NOT_FOUND")


async def test_an_unknown_message_is_the_error_page_with_message_not_found(desk: Desk) -> None:
    for path in ("/console/messages/nope", "/console/messages/nope/evidence"):
        status, page = await desk.ops.page(path)
        assert (status, _text(page, "error-code")) == (404, "MESSAGE_NOT_FOUND")


async def test_a_script_in_a_refused_submission_renders_inert_on_the_search_and_the_message_page(desk: Desk) -> None:
    status, refused = await submit(desk.http, desk.gw.url, "MOIT", "hostile-1", "eco.form_d", HOSTILE)
    assert (status, refused["error"]["code"]) == (400, "XML_MALFORMED")
    assert SCRIPT in refused["error"]["message"]
    mid = refused["ack"]["id"]
    async with desk.http.get(f"{desk.gw.url}/console/messages/{mid}") as r:
        assert r.status == 200
        html = await r.text()
    assert SCRIPT not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    page = lxml.html.fromstring(html)
    assert SCRIPT in _text(page, "error-message")
    assert SCRIPT in page.xpath("string(//section[@id='intake']//li[contains(@class, 'bad')]/div)")
    assert [s.get("src") for s in page.xpath("//script")] == ["/console/static/console.js"]
    # The headers a sender chooses cannot carry markup at all: such a submission is refused and not stored.
    status, invalid = await submit(desk.http, desk.gw.url, "MOIT", SCRIPT, "eco.form_d", doc(1), X_Reference=SCRIPT)
    assert (status, invalid["error"]["code"]) == (400, "REQUEST_INVALID")
    assert [r.message.envelope.message_id for r in await desk.gw.store.search(MessageQuery())] == ["hostile-1"]


async def _dead(desk: Desk, *names: str) -> list[str]:
    desk.partner.mode = "reject"
    ids = [(await submit(desk.http, desk.gw.url, "MOIT", n, "eco.form_d", doc(n)))[1]["id"] for n in names]

    async def all_dead() -> bool:
        return len(await desk.gw.store.dead_letters()) == len(ids)

    await eventually(all_dead)
    desk.partner.mode = "ok"
    return ids


def _rows(page: lxml.html.HtmlElement, table: str) -> list[str]:
    return [str(v) for v in page.xpath(f"//table[@id='{table}']/tbody/tr[@data-id]/@data-id")]


async def test_a_replay_of_selected_dead_letters_is_confirmed_then_delivered_and_journaled_by_the_operator(
    desk: Desk,
) -> None:
    ids = await _dead(desk, "dead-0", "dead-1", "dead-2")
    status, page = await desk.ops.page("/console/dead-letters")
    assert status == 200
    assert sorted(_rows(page, "dead-letters")) == sorted(ids)
    assert {c.text for c in page.xpath("//td/span[contains(@class, 'cause-code')]")} == {"PARTNER_REJECTED"}
    [csrf] = page.xpath("//form[@id='dead-letters-form']/input[@name='csrf']/@value")

    chosen = ids[:2]
    status, page = await desk.ops.post("/console/dead-letters/confirm", {"csrf": csrf, "id": chosen})
    assert status == 200
    assert _rows(page, "to-replay") == chosen
    assert sorted(str(v) for v in page.xpath("//form[@id='confirm-form']/input[@name='id']/@value")) == sorted(chosen)
    assert len(await desk.gw.store.dead_letters()) == 3  # a confirmation page replays nothing

    form = [(str(i.get("name")), str(i.get("value"))) for i in page.xpath("//form[@id='confirm-form']/input")]
    async with desk.gw.events.subscribe() as events:
        async with desk.http.post(f"{desk.gw.url}/console/dead-letters/replay", data=form) as r:
            assert r.status == 200
            assert r.url.path.startswith("/console/dead-letters/replays/op-")
            result = lxml.html.fromstring(await r.text())
        replayed = []
        async with asyncio.timeout(30):
            while len(replayed) < len(chosen):
                event = await anext(events)
                if event.name == "replayed":
                    replayed.append((event.fields["message_id"], event.fields["operator"]))
    assert sorted(replayed) == sorted((m, "ops") for m in chosen)  # published as the operator API does
    assert _text(result, "replayed-by") == "ops"
    assert sorted(_rows(result, "replayed")) == sorted(chosen)
    for mid in chosen:
        await _acknowledged(desk.gw, mid)
    assert [desk.partner.processed.count(m) for m in ids] == [1, 1, 0]  # the partner got the two replayed ones
    _, result = await desk.ops.page(r.url.path)
    assert [b.text for b in result.xpath("//table[@id='replayed']//span[contains(@class, 'state')]")] == [
        "ACKNOWLEDGED",
        "ACKNOWLEDGED",
    ]
    assert [str(h) for h in result.xpath("//table[@id='replayed']//a/@href")] == [
        f"/console/messages/{m}" for m in chosen
    ]

    [recorded] = await desk.gw.store.operator_actions(operator="ops")
    action = OperatorAction.from_record(recorded.record)
    assert (action.action, action.id, _text(result, "action-id")) == ("replay", r.url.path.rsplit("/", 1)[1], action.id)
    assert sorted(t["message"] for t in action.targets) == sorted(chosen)
    [entry] = [e for e in await desk.gw.store.journal() if e.kind == OPERATOR]
    assert (entry.seq, entry.message_id, _text(result, "journal-seq")) == (recorded.seq, action.id, str(recorded.seq))

    _, page = await desk.ops.page("/console/dead-letters")
    assert _rows(page, "dead-letters") == [ids[2]]
    status, page = await desk.ops.post("/console/dead-letters/confirm", {"csrf": csrf, "one": ids[2], "id": ids[:1]})
    assert _rows(page, "to-replay") == [ids[2]]  # a row's own button replays that row only


async def test_a_replay_post_without_the_csrf_token_is_refused_and_replays_nothing(desk: Desk) -> None:
    ids = await _dead(desk, "dead-x")
    for path in ("/console/dead-letters/confirm", "/console/dead-letters/replay"):
        for form in ({"id": ids}, {"id": ids, "csrf": "forged"}):
            status, page = await desk.ops.post(path, form)
            assert (status, _text(page, "error-code")) == (403, "CSRF_INVALID")
    assert [d.message_id for d in await desk.gw.store.dead_letters()] == ids
    assert await desk.gw.store.operator_actions() == []


async def test_a_read_operator_sees_the_queue_without_buttons_and_its_replay_is_forbidden(desk: Desk) -> None:
    ids = await _dead(desk, "dead-v")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        viewer = await log_in(desk.gw, http, "viewer")
        status, page = await viewer.page("/console/dead-letters")
        assert status == 200
        assert _rows(page, "dead-letters") == ids
        assert page.xpath("//*[@id='read-only']")
        assert not page.xpath(
            "//button[contains(@class, 'replay-one')] | //*[@id='replay-selected'] | //input[@type='checkbox']"
        )
        csrf = await viewer.csrf("/console/dead-letters")
        for path in ("/console/dead-letters/confirm", "/console/dead-letters/replay"):
            status, page = await viewer.post(path, {"csrf": csrf, "id": ids})
            assert (status, _text(page, "error-code")) == (403, "AUTH_FORBIDDEN")
    assert [d.message_id for d in await desk.gw.store.dead_letters()] == ids
    assert await desk.gw.store.operator_actions() == []


async def test_the_partners_page_shows_a_failing_partners_open_breaker_backlog_and_last_failure(tmp_path: Path) -> None:
    partner = await Receiver(mode="down").start()
    config = make_config(
        tmp_path,
        {"TH": partner.url.replace("http://", "http://user:secret@") + "?key=hush"},
        breaker={"failure_threshold": 2, "reset_timeout": 3600.0},
        extra={"operators": OPERATORS},
    )
    try:
        async with Gateway(config) as gw:
            async for desk in _desk(gw, partner):
                for i in range(3):
                    await submit(desk.http, gw.url, "MOIT", f"out-{i}", "eco.form_d", doc(i))

                async def opened() -> bool:
                    _, page = await desk.ops.page("/console/partners")
                    return (
                        page.xpath(
                            "string(//tr[@data-destination='TH']//span[contains(@class, 'breaker')]/@data-state)"
                        )
                        == "open"
                    )

                await eventually(opened)
                for path in ("/console/partners", "/console/fragments/partners"):
                    status, page = await desk.ops.page(path)
                    assert status == 200
                    [row] = page.xpath("//tr[@data-destination='TH']")
                    assert "bad" in row.get("class")
                    cell = {
                        c: row.xpath(f"string(td[contains(@class, '{c}')])").strip()
                        for c in (
                            "pending",
                            "dead",
                            "delivered",
                            "oldest",
                            "adapter",
                            "endpoint",
                            "last-failure",
                            "latency",
                        )
                    }
                    assert (cell["pending"], cell["dead"], cell["delivered"]) == ("3", "0", "0")
                    assert cell["oldest"].endswith(" s")
                    assert (cell["adapter"], cell["endpoint"]) == ("http", partner.url)  # no user, password, query
                    assert "PARTNER_UNAVAILABLE" in cell["last-failure"]
                    assert cell["latency"] == "— / — / —"
                _, page = await desk.ops.page("/console/partners")
                assert page.xpath("//tbody[@data-live='/console/fragments/partners']")
    finally:
        await partner.stop()


async def test_the_messages_dead_letters_and_partners_pages_render_in_vietnamese(desk: Desk) -> None:
    [mid] = await _dead(desk, "dead-vi")
    async with desk.http.get(f"{desk.gw.url}/console/language?to=vi&next=%2Fconsole%2Fpartners") as r:
        assert r.status == 200
    csrf = await desk.ops.csrf("/console/dead-letters")
    pages = [
        await desk.ops.page("/console/messages"),
        await desk.ops.page(f"/console/messages/{mid}"),
        await desk.ops.page("/console/dead-letters"),
        await desk.ops.post("/console/dead-letters/confirm", {"csrf": csrf, "one": mid}),
        await desk.ops.page("/console/partners"),
    ]
    assert [status for status, _ in pages] == [200] * 5
    assert {str(page.get("lang")) for _, page in pages} == {"vi"}
    assert pages[2][1].xpath("string(//button[@id='replay-selected'])") == "Gửi lại các mục đã chọn"
    assert pages[4][1].xpath("string(//table[@id='partners']//th[2])") == "Cầu dao"
