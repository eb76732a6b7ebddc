"""The console's certificates of origin (``/console/origin``, apart from the X.509 ``/console/certificates``): the
e-C/Os the gateway carried with their status, filtered, and one e-C/O's history with links to its messages; in
English and Vietnamese; refused to an operator without the ``read`` role.

A real gateway on 127.0.0.1 on each store (SQLite and PostgreSQL), MOIT issuing over REST to a loopback TH and the
Thai side notifying back; logged in through a one-time link, read with lxml and, once, in the system Chromium
driven by Playwright (no console error, no uncaught exception)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import lxml.html
import pytest
from playwright.async_api import ConsoleMessage, async_playwright

from gateway.api import Gateway
from gateway.commands import console_link
from helpers.console import CHROMIUM, CHROMIUM_ARGS, ConsoleClient, log_in
from helpers.eco import TOKENS, certificate, notification, submit, th_config
from helpers.gateway import Receiver, eventually
from helpers.stores import STORE_PARAMS, store_settings

OPERATORS = {
    "ops": {"tokens": ["ops-token"], "roles": ["read"]},
    "actor": {"tokens": ["actor-token"], "roles": ["act"]},
}


@dataclass
class Desk:
    gw: Gateway
    http: aiohttp.ClientSession
    ops: ConsoleClient
    ids: dict[str, str]


async def _submit(gw: Gateway, http: aiohttp.ClientSession, party: str, mid: str, doc_type: str, body: bytes) -> str:
    status, reply = await submit(http, gw.url, TOKENS[party], mid, doc_type, body)
    assert status == 202, reply
    return str(reply["id"])


async def _seed(gw: Gateway, http: aiohttp.ClientSession) -> dict[str, str]:
    """Two e-C/Os delivered to TH: the first received and utilized, the second rejected; the gateway ids."""
    ids = {
        "CO-1": await _submit(gw, http, "MOIT", "CO-1", "eco.form_d", certificate("VN-TH-26-00001")),
        "CO-2": await _submit(gw, http, "MOIT", "CO-2", "eco.form_d", certificate("VN-TH-26-00002")),
    }

    async def delivered() -> bool:
        both = [await gw.store.certificate("VN", n) for n in ("VN-TH-26-00001", "VN-TH-26-00002")]
        return all(r is not None and r.status == "delivered" for r in both)

    await eventually(delivered)
    notices = [
        ("N-1", notification("received", "VN-TH-26-00001")),
        ("N-2", notification("utilized", "VN-TH-26-00001", DeclarationID="TH-IMP-7", DeclarationDate="2026-12-04")),
        ("N-3", notification("rejected", "VN-TH-26-00002", ReasonCode="RVC", Reason="RVC below 40%")),
    ]
    for mid, body in notices:
        ids[mid] = await _submit(gw, http, "TH-ASW", mid, "eco.form_d.notification", body)
    return ids


@pytest.fixture(params=STORE_PARAMS)
async def desk(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Desk]:
    """The gateway on each store, named by its configuration (so that ``console_link`` reaches the same one)."""
    async with AsyncExitStack() as stack:
        extra: dict[str, Any] = {"operators": OPERATORS, **await store_settings(stack, request.param)}
        partner, moit_box = await Receiver().start(), await Receiver().start()
        stack.push_async_callback(partner.stop)
        stack.push_async_callback(moit_box.stop)
        config = th_config(tmp_path, partner.url, moit_box.url, extra=extra)
        gw = await stack.enter_async_context(Gateway(config))
        http = await stack.enter_async_context(aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)))
        ids = await _seed(gw, http)
        yield Desk(gw, http, await log_in(gw, http, "ops"), ids)


def _rows(page: lxml.html.HtmlElement) -> list[tuple[str, str]]:
    return [
        (str(tr.get("data-number")), str(tr.get("data-status")))
        for tr in page.xpath("//table[@id='origin-certificates']/tbody/tr[@data-number]")
    ]


async def test_the_origin_page_lists_each_e_co_with_its_status_and_filters_by_status(desk: Desk) -> None:
    status, page = await desk.ops.page("/console/origin")
    assert status == 200
    assert _rows(page) == [("VN-TH-26-00002", "rejected"), ("VN-TH-26-00001", "utilized")]  # latest change first
    assert page.xpath("string(//nav/a[@aria-current='page'])") == "Certificates of origin"
    assert page.xpath("//nav/a[@href='/console/origin']") and page.xpath("//nav/a[@href='/console/certificates']")
    _, utilized = await desk.ops.page("/console/origin?status=utilized")
    assert _rows(utilized) == [("VN-TH-26-00001", "utilized")]
    _, by_party = await desk.ops.page("/console/origin?party=TH-ASW&issuing_country=VN")
    assert len(_rows(by_party)) == 2
    _, none = await desk.ops.page("/console/origin?issuing_country=TH")
    assert _rows(none) == []


async def test_an_e_cos_page_shows_its_history_and_links_each_carrying_message(desk: Desk) -> None:
    status, page = await desk.ops.page("/console/origin/VN/VN-TH-26-00001")
    assert status == 200
    assert page.xpath("string(//dd[@id='status']/@data-status)") == "utilized"
    assert page.xpath("string(//dd[@id='issuer'])") == "MOIT"
    steps = [str(s) for s in page.xpath("//table[@id='history']/tbody/tr/@data-step")]
    assert steps == ["issued", "delivered", "received", "utilized"]
    assert "declaration_number: TH-IMP-7" in page.xpath("string(//table[@id='history']/tbody/tr[4])")
    links = [str(h) for h in page.xpath("//ul[@id='messages']/li/a/@href")]
    assert links == [f"/console/messages/{desk.ids[m]}" for m in ("CO-1", "N-1", "N-2")]
    for link in links:
        code, _ = await desk.ops.page(link)
        assert code == 200


async def test_an_e_co_the_gateway_did_not_carry_is_the_error_page_with_message_not_found(desk: Desk) -> None:
    status, page = await desk.ops.page("/console/origin/VN/VN-NOPE-1")
    assert (status, page.xpath("string(//*[@id='error-code'])").strip()) == (404, "MESSAGE_NOT_FOUND")


async def test_an_operator_without_the_read_role_is_refused_the_origin_pages(desk: Desk) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other:
        _, link = await console_link(desk.gw.config, "actor", desk.gw.url, now=desk.gw.clock.now)
        async with other.get(link) as r:
            assert r.status == 403  # the overview it lands on needs the read role too
        actor = ConsoleClient(desk.gw, other, "actor")
        for path in ("/console/origin", "/console/origin/VN/VN-TH-26-00001"):
            status, page = await actor.page(path)
            assert (status, page.xpath("string(//*[@id='error-code'])").strip()) == (403, "AUTH_FORBIDDEN"), path
            assert not page.xpath("//table[@id='origin-certificates']") and not page.xpath("//table[@id='history']")


async def test_the_origin_pages_render_in_vietnamese(desk: Desk) -> None:
    async with desk.http.get(f"{desk.gw.url}/console/language?to=vi&next=%2Fconsole%2Forigin") as r:
        assert r.status == 200
    _, listing = await desk.ops.page("/console/origin")
    _, detail = await desk.ops.page("/console/origin/VN/VN-TH-26-00002")
    assert {str(listing.get("lang")), str(detail.get("lang"))} == {"vi"}
    assert listing.xpath("string(//h1)") == "Giấy chứng nhận xuất xứ"
    assert "bị từ chối" in listing.xpath("string(//table[@id='origin-certificates']/tbody)")
    assert "bị từ chối" in detail.xpath("string(//table[@id='history']/tbody)")


@pytest.mark.browser
async def test_an_operator_finds_the_rejected_e_co_in_chromium_and_reads_its_reason(desk: Desk, tmp_path: Path) -> None:
    errors: list[str] = []

    def console_error(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    _, link = await console_link(desk.gw.config, "ops", desk.gw.url, now=desk.gw.clock.now)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await (await browser.new_context(locale="en-GB")).new_page()
            page.on("console", console_error)
            page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
            await page.goto(link)
            await page.goto(f"{desk.gw.url}/console/origin")
            async with page.expect_navigation():
                await page.select_option("select[name=status]", "rejected")
                await page.click("#filters button[type=submit]")
            rows = page.locator("#origin-certificates tbody tr[data-number]")
            assert await rows.count() == 1
            async with page.expect_navigation():
                await rows.first.locator("a").click()
            assert page.url.endswith("/console/origin/VN/VN-TH-26-00002")
            assert (await page.locator("#status").inner_text()).strip() == "rejected"
            assert "RVC below 40%" in await page.locator("#history tr[data-step=rejected]").inner_text()
            await page.screenshot(path=str(tmp_path / "origin-detail.png"), full_page=True)
        finally:
            await browser.close()
    assert errors == []
