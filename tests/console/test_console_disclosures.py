"""The console's disclosures (``/console/disclosures``): what each agency received of which message, under which
legal basis, filtered and in English and Vietnamese; refused to an operator without the ``read`` role.

A real gateway on 127.0.0.1 on each store (SQLite and PostgreSQL), MOIT submitting import permits in the harmonized
JSON format over REST, routed to a loopback customs and subscribed by a loopback market-surveillance agency; logged
in through a one-time link, read with lxml and, once, in the system Chromium driven by Playwright (no console error,
no uncaught exception)."""

from __future__ import annotations

import json
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
from gateway.model import State
from helpers.console import CHROMIUM, CHROMIUM_ARGS, ConsoleClient, log_in
from helpers.gateway import TOKENS, Receiver, eventually, make_config
from helpers.stores import STORE_PARAMS, store_settings

OPERATORS = {
    "ops": {"tokens": ["ops-token"], "roles": ["read"]},
    "actor": {"tokens": ["actor-token"], "roles": ["act"]},
}
LEGAL_BASIS = "Nghị định 98/2020/NĐ-CP, Điều 5"
FIELDS = ["permit.number", "goods.hs_code"]


def _permit(number: str, hs_code: str) -> bytes:
    return json.dumps(
        {
            "parties": {"consignee": {"name": "Cong ty TNHH Nhap Khau Sao Mai", "identifier": "0312345678"}},
            "goods": [{"hs_code": hs_code, "description": "Laptop computers"}],
            "permit": {"number": number},
        }
    ).encode()


@dataclass
class Desk:
    gw: Gateway
    http: aiohttp.ClientSession
    ops: ConsoleClient
    ids: dict[str, str]


@pytest.fixture(params=STORE_PARAMS)
async def desk(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Desk]:
    async with AsyncExitStack() as stack:
        extra: dict[str, Any] = {
            "operators": OPERATORS,
            "subscriptions": {
                "MARKET-SURVEILLANCE": {
                    "destination": "MS",
                    "legal_basis": LEGAL_BASIS,
                    "document_types": ["sps.permit"],
                    "hs_chapters": ["84"],
                    "fields": FIELDS,
                }
            },
            **await store_settings(stack, request.param),
        }
        customs = await stack.enter_async_context(Receiver())
        ms = await stack.enter_async_context(Receiver())
        config = make_config(
            tmp_path,
            {"CUSTOMS": customs.url, "MS": ms.url},
            routes=[{"to": ["CUSTOMS"]}],
            parties={"MOIT": {"document_types": ["sps.permit"], "format": "json"}},
            per_destination={"MS": {"format": "json"}, "CUSTOMS": {"format": "json"}},
            extra=extra,
        )
        gw = await stack.enter_async_context(Gateway(config))
        http = await stack.enter_async_context(aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)))
        ids = {}
        for mid, number, hs in (("P-1", "GP-1", "84713020"), ("P-2", "GP-2", "01022900"), ("P-3", "GP-3", "85171300")):
            headers = {
                "Authorization": f"Bearer {TOKENS['MOIT']}",
                "X-Message-Id": mid,
                "X-Document-Type": "sps.permit",
                "Content-Type": "application/json",
            }
            async with http.post(f"{gw.url}/v1/messages", data=_permit(number, hs), headers=headers) as r:
                assert r.status == 202
                ids[mid] = str((await r.json())["id"])

        async def delivered() -> bool:
            records = [await gw.store.get(i) for i in ids.values()]
            return all(r is not None and r.state is State.ACKNOWLEDGED for r in records)

        await eventually(delivered)
        yield Desk(gw, http, await log_in(gw, http, "ops"), ids)


def _rows(page: lxml.html.HtmlElement) -> list[tuple[str, str, str]]:
    return [
        (str(tr.get("data-message")), str(tr.get("data-destination")), str(tr.get("data-subscription")))
        for tr in page.xpath("//table[@id='disclosures']/tbody/tr[@data-message]")
    ]


async def test_the_disclosures_page_lists_what_the_agency_received_under_which_legal_basis(desk: Desk) -> None:
    status, page = await desk.ops.page("/console/disclosures")
    assert status == 200
    assert _rows(page) == [(desk.ids["P-1"], "MS", "MARKET-SURVEILLANCE")]  # chapter 01 is not the agency's
    assert page.xpath("string(//nav/a[@aria-current='page'])") == "Disclosures"
    row = page.xpath("//table[@id='disclosures']/tbody/tr[@data-message]")[0]
    assert row.xpath("string(td[@class='legal-basis'])") == LEGAL_BASIS
    assert row.xpath("string(td[contains(@class, 'disclosed')])") == ", ".join(FIELDS)
    assert row.xpath("string(td/a/@href)") == f"/console/messages/{desk.ids['P-1']}"
    _, by_destination = await desk.ops.page("/console/disclosures?destination=MS&subscription=MARKET-SURVEILLANCE")
    assert len(_rows(by_destination)) == 1
    _, none = await desk.ops.page(f"/console/disclosures?message={desk.ids['P-2']}")
    assert _rows(none) == []
    status, error = await desk.ops.page("/console/disclosures?destination=NOPE")
    assert (status, error.xpath("string(//*[@id='error-code'])").strip()) == (422, "DESTINATION_UNKNOWN")


async def test_an_operator_without_the_read_role_is_refused_the_disclosures_page(desk: Desk) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other:
        _, link = await console_link(desk.gw.config, "actor", desk.gw.url, now=desk.gw.clock.now)
        async with other.get(link) as r:
            assert r.status == 403
        status, page = await ConsoleClient(desk.gw, other, "actor").page("/console/disclosures")
        assert (status, page.xpath("string(//*[@id='error-code'])").strip()) == (403, "AUTH_FORBIDDEN")
        assert not page.xpath("//table[@id='disclosures']")


async def test_the_disclosures_page_renders_in_vietnamese(desk: Desk) -> None:
    async with desk.http.get(f"{desk.gw.url}/console/language?to=vi&next=%2Fconsole%2Fdisclosures") as r:
        assert r.status == 200
    _, page = await desk.ops.page("/console/disclosures")
    assert str(page.get("lang")) == "vi"
    assert page.xpath("string(//h1)") == "Dữ liệu đã chia sẻ"
    assert "Căn cứ pháp lý" in page.xpath("string(//table[@id='disclosures']/thead)")


@pytest.mark.browser
async def test_an_operator_filters_the_disclosures_in_chromium_and_opens_the_message(
    desk: Desk, tmp_path: Path
) -> None:
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
            await page.goto(f"{desk.gw.url}/console/disclosures")
            async with page.expect_navigation():
                await page.select_option("select[name=destination]", "MS")
                await page.click("#filters button[type=submit]")
            rows = page.locator("#disclosures tbody tr[data-message]")
            assert await rows.count() == 1
            assert LEGAL_BASIS in await rows.first.inner_text()
            async with page.expect_navigation():
                await rows.first.locator("a").click()
            assert page.url.endswith(f"/console/messages/{desk.ids['P-1']}")
            await page.screenshot(path=str(tmp_path / "disclosures.png"), full_page=True)
        finally:
            await browser.close()
    assert errors == []
