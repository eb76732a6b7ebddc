"""The console in a real browser: the system Chromium (Debian ``chromium``) driven by Playwright, against the demo
topology running (:func:`gateway.dev.demo.living_demo`: the ministries' trickle, a flaky TH, rejected submissions
and dead letters at MARD's inbox), as a person would use it: log in by the one-time link, read the pages, act.

Every page visited must render its key elements with no console error and no uncaught exception (a refused
script or style, a CSP violation, shows up there); a screenshot of each goes to ``$NSWGW_ARTEFACTS`` (else the
test's ``artefacts`` directory, printed)."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from playwright.async_api import Browser, ConsoleMessage, Dialog, Page, Response, async_playwright

from gateway.api import Gateway
from gateway.commands import console_link
from gateway.dev.demo import ENTERPRISES, TOKENS, LivingDemo, living_demo
from gateway.model import State
from gateway.store.base import MessageQuery
from helpers.console import CHROMIUM, CHROMIUM_ARGS
from helpers.gateway import eventually

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]


@pytest.fixture
def artefacts(tmp_path: Path) -> Path:
    directory = Path(os.environ.get("NSWGW_ARTEFACTS") or tmp_path / "artefacts")
    directory.mkdir(parents=True, exist_ok=True)
    print(f"console screenshots: {directory}")
    return directory


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def demo(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LivingDemo]:
    """The demo running (for every test of the module) fast enough that a few seconds show a rejection and a dead
    letter."""
    async with living_demo(
        store_dir=tmp_path_factory.mktemp("demo"),
        rate=(6.0, 8.0),
        flaky_seconds=2.0,
        flaky_every=8.0,
        reject_every=3,
        bad_every=5,
        seed=16,
    ) as running:
        store = running.gateway.store

        async def eventful() -> bool:
            rejected = await store.search(MessageQuery(state=State.REJECTED, limit=1))
            return bool(rejected and await store.dead_letters(destination="MARD", limit=1))

        await eventually(eventful, limit=60, step=0.2)
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


@dataclass
class Tab:
    """A browser tab that records its console errors, uncaught exceptions and dialogs, and screenshots pages."""

    page: Page
    base: str
    artefacts: Path
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def watch(self) -> None:
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))
        self.page.on("dialog", self._dialog)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text}")

    async def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        await dialog.dismiss()

    async def log_in(self, gw: Gateway, operator: str = "ops") -> Response:
        """Open a one-time login link of ``operator``, as ``nswgw console-url`` prints it."""
        _, link = await console_link(gw.config, operator, gw.url, now=gw.clock.now)
        response = await self.page.goto(link)
        assert response is not None
        return response

    async def visit(self, path: str, shot: str) -> Response:
        """Open ``path`` (a page of the console): answered 200 with no console error; screenshot ``shot``.png."""
        self.errors.clear()
        response = await self.page.goto(f"{self.base}{path}")
        assert response is not None and response.status == 200, (path, response and response.status)
        await self.page.wait_for_load_state("load")
        await self.shoot(shot)
        assert self.errors == [], (path, self.errors)
        return response

    async def shoot(self, name: str) -> None:
        await self.page.screenshot(path=str(self.artefacts / f"{name}.png"), full_page=True)

    async def text(self, selector: str) -> str:
        return (await self.page.locator(selector).inner_text()).strip()


@pytest_asyncio.fixture(loop_scope="module")
async def tab(browser: Browser, demo: LivingDemo, artefacts: Path) -> AsyncIterator[Tab]:
    context = await browser.new_context(viewport={"width": 1360, "height": 900}, locale="en-GB")
    page = await context.new_page()
    watched = Tab(page=page, base=demo.gateway.url, artefacts=artefacts)
    watched.watch()
    try:
        yield watched
    finally:
        await context.close()


async def test_the_one_time_link_logs_the_operator_in_and_sets_only_a_strict_http_only_cookie(
    tab: Tab, demo: LivingDemo
) -> None:
    await tab.log_in(demo.gateway)
    assert "token=" not in tab.page.url, "the one-time token stayed in the address bar"
    cookies = {c["name"]: c for c in await tab.page.context.cookies()}
    session = cookies["nswgw_console"]
    assert (session["httpOnly"], session["sameSite"], session["path"]) == (True, "Strict", "/console")
    assert await tab.page.evaluate("document.cookie") == "", "a console cookie is readable by scripts"
    await tab.visit("/console/certificates", "certificates")
    assert await tab.text("#operator") == "ops"


async def test_the_login_page_renders_and_an_operator_token_on_its_form_logs_in(tab: Tab, demo: LivingDemo) -> None:
    await tab.visit("/console/login?next=%2Fconsole%2Fcertificates", "login")
    await tab.page.fill("input[name=token]", demo.topology.config.operators["ops"].tokens[0])
    async with tab.page.expect_navigation():
        await tab.page.click("form[action='/console/login'] button[type=submit]")
    assert tab.page.url == f"{demo.gateway.url}/console/certificates"
    assert await tab.text("#operator") == "ops"


async def test_the_certificates_page_shows_each_demo_certificates_expiry(tab: Tab, demo: LivingDemo) -> None:
    await tab.log_in(demo.gateway)
    await tab.visit("/console/certificates", "certificates")
    moit = demo.topology.pki.party("moit").cert
    rows = tab.page.locator("#certificates tbody tr", has_text=moit.subject.rfc4514_string())
    assert await rows.count() >= 1
    row = rows.first
    expiry = moit.not_valid_after_utc.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    assert await row.locator("td", has_text=expiry).count() == 1, await row.inner_text()
    now = demo.gateway.clock.now()
    days = (moit.not_valid_after_utc.timestamp() - now) / 86400
    assert int((await row.locator("td.days").inner_text()).strip()) == round(days)
    assert await row.get_attribute("class") in ("ok", "warn", "bad")


async def test_a_post_without_the_csrf_token_is_refused_CSRF_INVALID_and_the_session_stays(
    tab: Tab, demo: LivingDemo
) -> None:
    await tab.log_in(demo.gateway)
    await tab.visit("/console/certificates", "certificates")
    await tab.page.locator("form[action='/console/logout'] input[name=csrf]").evaluate("input => input.remove()")
    async with tab.page.expect_navigation() as navigation:
        await tab.page.click("form[action='/console/logout'] button[type=submit]")
    response = await navigation.value
    assert response is not None and response.status == 403
    assert await tab.text("#error-code") == "CSRF_INVALID"
    await tab.shoot("csrf-refused")
    await tab.visit("/console/certificates", "certificates-after-refusal")
    assert await tab.text("#operator") == "ops", "the refused logout ended the session"


async def test_the_error_page_of_a_refused_login_link_renders_without_console_errors(
    tab: Tab, demo: LivingDemo
) -> None:
    tab.errors.clear()
    response = await tab.page.goto(f"{demo.gateway.url}/console/login?token=not-a-link")
    assert response is not None and response.status == 401
    assert re.search(r"\S", await tab.text("p[role=alert]"))
    await tab.shoot("login-link-refused")
    assert [e for e in tab.errors if "401" not in e] == [], tab.errors


async def test_the_overview_draws_the_flow_map_of_the_demos_parties_and_refreshes_it_live(
    tab: Tab, demo: LivingDemo
) -> None:
    await tab.log_in(demo.gateway)
    assert tab.page.url == f"{demo.gateway.url}/console/"
    await tab.visit("/console/", "overview")
    flow_map = tab.page.locator("#flow-map svg")
    for sender in ("MOIT", "MARD", "BROKER"):
        assert await flow_map.locator(f"#node-sender-{sender}").count() == 1, sender
    for destination in ("TH", "ID", "CUSTOMS", "MARD"):
        assert await flow_map.locator(f"#node-destination-{destination}").count() == 1, destination
    assert await flow_map.locator("#node-sender-BROKER").get_attribute("data-kind") == "intermediary"
    assert int(await flow_map.locator("#edge-sender-MOIT").get_attribute("data-volume") or 0) > 0
    assert int(await flow_map.locator("#edge-sender-MOIT").get_attribute("data-errors") or 0) > 0, "no rejection"
    assert await tab.page.locator("#weak-senders tr[data-sender=MOIT] [data-code=SIG_MISSING]").count() == 1
    assert await tab.page.locator("#weak-destinations tr[data-destination=MARD]").count() == 1
    await tab.page.wait_for_selector("#live[data-refreshed]", state="attached", timeout=15_000)
    assert await tab.page.locator("#live #flow-map svg #node-sender-MOIT").count() == 1, "the refresh lost the map"
    await tab.shoot("overview-refreshed")
    assert tab.errors == [], tab.errors


async def test_an_operator_finds_a_rejected_message_and_reads_its_code(tab: Tab, demo: LivingDemo) -> None:
    await tab.log_in(demo.gateway)
    await tab.visit("/console/messages", "messages")
    await tab.page.select_option("#filters select[name=state]", "REJECTED")
    async with tab.page.expect_navigation():
        await tab.page.click("#filters button[type=submit]")
    rows = tab.page.locator("#messages tbody tr.message")
    assert await rows.count() >= 1
    assert set(await rows.locator("td.code").all_inner_texts()) == {"SIG_MISSING"}
    await tab.shoot("messages-rejected")
    first = rows.first
    gateway_id = await first.get_attribute("data-id")
    async with tab.page.expect_navigation():
        await first.locator("a").first.click()
    assert tab.page.url == f"{demo.gateway.url}/console/messages/{gateway_id}"
    assert await tab.text("#state") == "REJECTED"
    assert await tab.text("#error-code") == "SIG_MISSING"
    assert await tab.text("#sender") == "MOIT"
    await tab.visit(f"/console/messages/{gateway_id}", "message-rejected")


async def test_an_operator_replays_a_dead_letter_after_confirming_and_sees_it_delivered(
    tab: Tab, demo: LivingDemo
) -> None:
    await tab.log_in(demo.gateway)
    await tab.visit("/console/dead-letters?destination=MARD", "dead-letters")
    row = tab.page.locator("#dead-letters tr.dead-letter[data-destination=MARD]").first
    gateway_id = await row.get_attribute("data-id")
    assert gateway_id
    assert await row.locator(".cause-code").inner_text() == "PARTNER_REJECTED"
    async with tab.page.expect_navigation():
        await row.locator("button.replay-one").click()
    assert [await r.get_attribute("data-id") for r in await tab.page.locator("#to-replay tr.dead-letter").all()] == [
        gateway_id
    ]
    await tab.shoot("dead-letters-confirm")
    assert tab.errors == [], tab.errors
    async with tab.page.expect_navigation():
        await tab.page.click("#confirm")
    assert "/console/dead-letters/replays/" in tab.page.url
    assert await tab.text("#replayed-by") == "ops"
    result = tab.page.url.removeprefix(demo.gateway.url)

    async def delivered() -> bool:
        await tab.page.goto(f"{demo.gateway.url}{result}")
        return await tab.text(f"#replayed tr.replayed[data-id='{gateway_id}'] .state") == "ACKNOWLEDGED"

    await eventually(delivered, limit=30, step=0.5)
    await tab.visit(result, "dead-letters-replayed")
    await tab.visit(f"/console/messages/{gateway_id}", "message-replayed")
    mard = tab.page.locator("section.delivery[data-destination=MARD] h2 .badge")
    assert (await mard.inner_text()).strip() == "ACKNOWLEDGED"
    await tab.visit("/console/dead-letters?destination=MARD", "dead-letters-after-replay")
    assert await tab.page.locator(f"#dead-letters tr.dead-letter[data-id='{gateway_id}']").count() == 0


SCRIPT = "<script>alert('xss')</script><img src=x onerror=alert(2)>"
"""Attacker-controlled text: what a submission makes the gateway echo in its rejection (a namespace URI)."""


async def test_a_script_in_a_rejected_submissions_error_text_renders_inert_on_every_page_showing_it(
    tab: Tab, demo: LivingDemo
) -> None:
    from xml.sax.saxutils import quoteattr

    body = f"<x:AnimalConsignmentRegistration xmlns:x={quoteattr(SCRIPT)}>1</x:AnimalConsignmentRegistration>"
    headers = {  # the broker: the demo's trickle never has it rejected, so this is its last rejection
        "Authorization": f"Bearer {TOKENS['BROKER']}",
        "X-Message-Id": "XSS-1",
        "X-Document-Type": "sps.registration",
        "X-On-Behalf-Of": ENTERPRISES[0],
        "Content-Type": "application/xml",
    }
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{demo.gateway.url}/v1/messages", data=body.encode(), headers=headers) as r:
            answer = await r.json()
    assert SCRIPT in answer["error"]["message"], answer
    gateway_id = answer["ack"]["id"]
    await tab.log_in(demo.gateway)
    await tab.visit(f"/console/messages/{gateway_id}", "message-script")
    assert SCRIPT in await tab.text("#error-message"), "the text is not shown as text"
    assert await tab.page.locator("main script, main img").count() == 0
    await tab.visit("/console/messages?sender=BROKER&state=REJECTED&code=XML_MALFORMED", "messages-script")
    assert await tab.page.locator(f"#messages tr[data-id='{gateway_id}']").count() == 1
    await tab.visit("/console/", "overview-script")
    assert SCRIPT in await tab.text("#weak-senders tr[data-sender=BROKER] .error-text")
    assert await tab.page.locator("main script, main img").count() == 0
    assert tab.dialogs == [], f"a script ran: {tab.dialogs}"


@pytest.mark.parametrize(
    ("path", "key"),
    [
        ("/console/partners", "#partners tbody tr.partner[data-destination=TH]"),
        ("/console/procedures", "#procedures tbody tr[data-document-type='eco.form_d']"),
        ("/console/messages", "#messages tbody tr.message"),
        ("/console/certificates", "#certificates tbody tr"),
        ("/console/dead-letters", "#dead-letters tbody tr.dead-letter"),
        ("/console/", "#flow-map svg"),
        ("/console/language?to=vi&next=%2Fconsole%2Fpartners", "#partners tbody tr.partner[data-destination=MARD]"),
    ],
)
async def test_each_page_renders_its_key_elements_without_console_errors(
    tab: Tab, demo: LivingDemo, path: str, key: str
) -> None:
    await tab.log_in(demo.gateway)
    shot = re.sub(r"[^a-z0-9]+", "-", path.removeprefix("/console").lower()).strip("-") or "overview"
    await tab.visit(path, f"page-{shot}")
    assert await tab.page.locator(key).count() >= 1, (path, key)
    assert await tab.page.locator("nav a[aria-current=page]").count() == 1


async def test_the_reference_lists_page_shows_each_version_and_the_one_in_force_in_both_languages(
    tab: Tab, demo: LivingDemo
) -> None:
    from gateway.reference import ReferenceDraft, ReferenceEntry, publish_by_operator

    gw = demo.gateway
    now = gw.clock.now()
    name = "import-prohibited.moit"
    for effective in (now - 3600, now + 86400):  # one in force, one published ahead of its effective date
        draft = ReferenceDraft(name, "MOIT", "prohibited", effective, (ReferenceEntry("9999", "none traded"),))
        await publish_by_operator(gw.store, draft, operator="ops", at=now, parties=gw.config.parties)
    await tab.log_in(gw)
    await tab.visit("/console/reference-lists", "reference-lists")
    rows = tab.page.locator(f"#reference-lists tbody tr[data-list='{name}']")
    assert await rows.count() == 2
    assert await tab.text(f"#reference-lists tr[data-list='{name}'][data-version='1'] .in-force") == "✓"
    assert await tab.text(f"#reference-lists tr[data-list='{name}'][data-version='2'] .in-force") == "not yet in force"
    assert await tab.page.locator("nav a[aria-current=page]").count() == 1
    await tab.visit("/console/language?to=vi&next=%2Fconsole%2Freference-lists", "reference-lists-vi")
    assert await tab.text("main h1") == "Danh mục tham chiếu"
    assert await tab.text(f"#reference-lists tr[data-list='{name}'][data-version='2'] .in-force") == "chưa có hiệu lực"
