"""The console's frame: one-time login links, the login form, sessions, logout, CSRF, security headers, languages,
static files, and what is not the console's (parties' tokens, other origins' redirects)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import lxml.html
import pytest

from gateway.api import Gateway
from gateway.clock import SystemClock
from gateway.commands import console_link
from gateway.errors import ConfigError
from helpers.admin import OPERATORS, OPS, VIEWER
from helpers.console import log_in
from helpers.gateway import TOKENS, make_config


class SteppedClock(SystemClock):
    """The system clock moved ahead by :attr:`ahead` seconds (sessions and links expire on gateway time)."""

    ahead = 0.0

    def now(self) -> float:
        return super().now() + self.ahead


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[Gateway]:
    config = make_config(tmp_path, {"TH": "http://127.0.0.1:9/inbox"}, extra={"operators": OPERATORS})
    async with Gateway(config, clock=SteppedClock()) as gateway:
        yield gateway


def _jar() -> aiohttp.CookieJar:
    return aiohttp.CookieJar(unsafe=True)


async def _login_form(session: aiohttp.ClientSession, url: str) -> str:
    async with session.get(f"{url}/console/login") as r:
        assert r.status == 200
        page = lxml.html.fromstring(await r.text())
    [csrf] = page.xpath("//form[@action='/console/login']/input[@name='csrf']/@value")
    return str(csrf)


async def test_a_login_link_logs_in_once_sets_a_strict_session_cookie_and_leaves_the_address_bar(
    gw: Gateway,
) -> None:
    _, link = await console_link(gw.config, "ops", gw.url)
    async with aiohttp.ClientSession(cookie_jar=_jar()) as session:
        async with session.get(link, allow_redirects=False) as r:
            assert (r.status, r.headers["Location"]) == (303, "/console/")
            cookie = r.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console" in cookie
        async with session.get(f"{gw.url}/console/certificates") as r:
            page = lxml.html.fromstring(await r.text())
        assert r.status == 200 and page.get_element_by_id("operator").text == "ops"
    async with aiohttp.ClientSession(cookie_jar=_jar()) as other:
        async with other.get(link) as r:  # the same link again, from another browser
            page = lxml.html.fromstring(await r.text())
        assert r.status == 401 and "already used" in page.xpath("string(//p[@role='alert'])")
        assert not [c for c in other.cookie_jar if c.key == "nswgw_console"]


async def test_a_login_link_expires_after_its_time_to_live(gw: Gateway) -> None:
    _, link = await console_link(gw.config, "ops", gw.url)
    assert isinstance(gw.clock, SteppedClock)
    gw.clock.ahead = gw.config.gateway.console.login_link_ttl + 1
    async with aiohttp.ClientSession(cookie_jar=_jar()) as session:
        async with session.get(link, allow_redirects=False) as r:
            assert r.status == 401


async def test_the_login_form_takes_an_operator_token_never_a_partys_and_needs_its_csrf_token(gw: Gateway) -> None:
    async with aiohttp.ClientSession(cookie_jar=_jar()) as session:
        csrf = await _login_form(session, gw.url)
        form = {"csrf": csrf, "token": TOKENS["MOIT"]}
        async with session.post(f"{gw.url}/console/login", data=form, allow_redirects=False) as r:
            assert r.status == 401, "a party's token opened the console"
        csrf = await _login_form(session, gw.url)
        async with session.post(
            f"{gw.url}/console/login", data={"csrf": "forged", "token": OPS}, allow_redirects=False
        ) as r:
            page = lxml.html.fromstring(await r.text())
            assert (r.status, page.get_element_by_id("error-code").text) == (403, "CSRF_INVALID")
        form = {"csrf": csrf, "token": VIEWER, "next": "/console/certificates"}
        async with session.post(f"{gw.url}/console/login", data=form, allow_redirects=False) as r:
            assert (r.status, r.headers["Location"]) == (303, "/console/certificates")


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/v1/admin/messages", "/console\\x"])
async def test_a_login_never_sends_the_browser_outside_the_console(gw: Gateway, target: str) -> None:
    async with aiohttp.ClientSession(cookie_jar=_jar()) as session:
        csrf = await _login_form(session, gw.url)
        form = {"csrf": csrf, "token": OPS, "next": target}
        async with session.post(f"{gw.url}/console/login", data=form, allow_redirects=False) as r:
            assert (r.status, r.headers["Location"]) == (303, "/console/")


async def test_without_a_session_a_page_sends_to_the_login_and_a_post_is_CSRF_INVALID(gw: Gateway) -> None:
    async with aiohttp.ClientSession(cookie_jar=_jar()) as session:
        async with session.get(f"{gw.url}/console/certificates", allow_redirects=False) as r:
            assert (r.status, r.headers["Location"]) == (303, "/console/login?next=/console/certificates")
        async with session.post(f"{gw.url}/console/logout", data={}, allow_redirects=False) as r:
            page = lxml.html.fromstring(await r.text())
            assert (r.status, page.get_element_by_id("error-code").text) == (403, "CSRF_INVALID")


async def test_logout_needs_the_csrf_token_and_ends_the_session_everywhere(gw: Gateway) -> None:
    async with aiohttp.ClientSession(cookie_jar=_jar()) as session:
        client = await log_in(gw, session)
        cookie = next(c.value for c in session.cookie_jar if c.key == "nswgw_console")
        status, page = await client.post("/console/logout", {"csrf": "not-it"})
        assert (status, page.get_element_by_id("error-code").text) == (403, "CSRF_INVALID")
        assert (await client.page("/console/certificates"))[0] == 200, "a refused logout logged out"
        async with session.post(
            f"{gw.url}/console/logout", data={"csrf": await client.csrf()}, allow_redirects=False
        ) as r:
            assert (r.status, r.headers["Location"]) == (303, "/console/login")
    async with aiohttp.ClientSession(cookie_jar=_jar()) as stolen:  # the old cookie, replayed
        stolen.cookie_jar.update_cookies({"nswgw_console": cookie}, response_url=aiohttp.client.URL(gw.url))
        async with stolen.get(f"{gw.url}/console/certificates", allow_redirects=False) as r:
            assert r.status == 303


async def test_a_session_ends_at_its_timeout_and_when_its_operator_is_removed(gw: Gateway) -> None:
    async with aiohttp.ClientSession(cookie_jar=_jar()) as session:
        client = await log_in(gw, session)
        assert (await client.page("/console/certificates"))[0] == 200
        assert isinstance(gw.clock, SteppedClock)
        gw.clock.ahead = gw.config.gateway.console.session_timeout + 1
        async with session.get(f"{gw.url}/console/certificates", allow_redirects=False) as r:
            assert r.status == 303
        gw.clock.ahead = 0.0
        client = await log_in(gw, session, "viewer")
        gw.reconfigure(gw.config.model_copy(update={"operators": {"ops": gw.config.operators["ops"]}}))
        async with session.get(f"{gw.url}/console/certificates", allow_redirects=False) as r:
            assert r.status == 303, "a removed operator's session still opens pages"


async def test_every_answer_carries_a_strict_content_security_policy_and_no_referrer(gw: Gateway) -> None:
    async with aiohttp.ClientSession(cookie_jar=_jar()) as session:
        await log_in(gw, session)
        for path in ("/console/login", "/console/certificates", "/console/static/console.css"):
            async with session.get(f"{gw.url}{path}") as r:
                headers = r.headers
            csp = dict(part.strip().split(" ", 1) for part in headers["Content-Security-Policy"].split(";"))
            assert csp["default-src"] == "'none'" and csp["script-src"] == "'self'" and csp["style-src"] == "'self'"
            assert csp["frame-ancestors"] == "'none'" and csp["form-action"] == "'self'"
            assert (headers["Referrer-Policy"], headers["X-Content-Type-Options"]) == ("no-referrer", "nosniff")


async def test_only_the_consoles_own_static_files_are_served(gw: Gateway) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{gw.url}/console/static/console.js") as r:
            assert (r.status, r.content_type) == (200, "text/javascript")
        for name in ("..%2F__init__.py", "sessions.py", "%2E%2E%2Ftemplates%2Fbase.html"):
            async with session.get(f"{gw.url}/console/static/{name}") as r:
                assert r.status == 404, name


async def test_the_language_switch_shows_vietnamese_labels_and_stays_for_the_operator(gw: Gateway) -> None:
    async with aiohttp.ClientSession(cookie_jar=_jar()) as session:
        client = await log_in(gw, session)
        status, page = await client.page("/console/language?to=vi&next=%2Fconsole%2Fcertificates")
        assert status == 200 and page.get("lang") == "vi"
        assert page.xpath("string(//h1)") == "Chứng thư số"
        _, page = await client.page("/console/certificates")
        assert page.xpath("string(//nav/a[@aria-current='page'])") == "Chứng thư số"
        _, page = await client.page("/console/language?to=xx&next=%2Fconsole%2Fcertificates")
        assert page.get("lang") == "vi", "an unknown language changed the choice"


async def test_the_root_redirects_to_the_console_and_the_api_stays_token_only(gw: Gateway) -> None:
    async with aiohttp.ClientSession(cookie_jar=_jar()) as session:
        async with session.get(f"{gw.url}/", allow_redirects=False) as r:
            assert (r.status, r.headers["Location"]) == (303, "/console/")
        await log_in(gw, session)
        async with session.get(f"{gw.url}/v1/admin/messages") as r:  # the session cookie is not an API credential
            assert (r.status, (await r.json())["error"]["code"]) == (401, "AUTH_REQUIRED")


async def test_the_certificates_page_lists_each_certificate_nearest_expiry_first(tmp_path: Path, dev_pki) -> None:  # type: ignore[no-untyped-def]
    from helpers.gateway import dev_trust

    config = make_config(
        tmp_path,
        {"TH": "http://127.0.0.1:9/inbox"},
        parties={"MOIT": {"trust": dev_trust(dev_pki, "moit")}},
        extra={"operators": OPERATORS},
    )
    first = min(c.not_valid_after_utc.timestamp() for c in (dev_pki.root_cert, dev_pki.issuing_cert))
    async with Gateway(config, clock=SystemClock(wall=lambda: first - 10 * 86400)) as gateway:
        async with aiohttp.ClientSession(cookie_jar=_jar()) as session:
            client = await log_in(gateway, session)
            status, page = await client.page("/console/certificates")
    rows = page.xpath("//table[@id='certificates']/tbody/tr")
    assert status == 200 and len(rows) == 2
    nearest = rows[0]
    assert nearest.get("class") == "bad" and nearest.xpath("string(td[contains(@class,'days')])").strip() == "10"
    assert [r.get("data-field") for r in rows] != [None, None]


def test_nswgw_console_url_prints_a_link_the_running_gateway_redeems(tmp_path: Path) -> None:
    config_file = tmp_path / "gateway.toml"
    config_file.write_text(
        f"""
[gateway]
port = 8123
verification = "well-formed"
signing = "off"
[store]
url = "sqlite:///{tmp_path / "gw.db"}"
[operators.ops]
tokens = ["{OPS}"]
""",
        encoding="utf-8",
    )
    run = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "console-url", "--config", str(config_file)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("http://127.0.0.1:8123/console/login?token=") and len(run.stdout.strip()) > 80
    assert "operator ops" in run.stderr


async def test_console_url_names_the_operator_when_there_are_several_and_refuses_an_unknown_one(gw: Gateway) -> None:
    with pytest.raises(ConfigError) as several:
        await console_link(gw.config, None, gw.url)
    with pytest.raises(ConfigError) as unknown:
        await console_link(gw.config, "root", gw.url)
    assert (several.value.field, unknown.value.field) == ("--operator", "--operator")
