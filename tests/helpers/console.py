"""Test rig for the operator console: a logged-in browser-like client (cookie jar) of a running gateway."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp
import lxml.html

from gateway.api import Gateway
from gateway.commands import console_link


@dataclass
class ConsoleClient:
    """An aiohttp session holding a console session cookie of ``gw`` (one-time link of ``operator``)."""

    gw: Gateway
    session: aiohttp.ClientSession
    operator: str

    async def page(self, path: str, **kwargs: Any) -> tuple[int, lxml.html.HtmlElement]:
        """GET ``path`` (redirects followed): the status and the parsed page."""
        async with self.session.get(f"{self.gw.url}{path}", **kwargs) as r:
            return r.status, lxml.html.fromstring(await r.text())

    async def post(self, path: str, form: dict[str, Any]) -> tuple[int, lxml.html.HtmlElement]:
        async with self.session.post(f"{self.gw.url}{path}", data=form) as r:
            return r.status, lxml.html.fromstring(await r.text())

    async def csrf(self, path: str = "/console/certificates") -> str:
        """The session's CSRF token, as a page's forms carry it."""
        _, page = await self.page(path)
        [token] = {str(v) for v in page.xpath("//form[@method='post']/input[@name='csrf']/@value")}
        return token


async def log_in(gw: Gateway, session: aiohttp.ClientSession, operator: str = "ops") -> ConsoleClient:
    """Open the one-time login link of ``operator`` in ``session`` (whose cookie jar must be ``unsafe=True`` for
    127.0.0.1) and check that it landed logged in."""
    _, link = await console_link(gw.config, operator, gw.url, now=gw.clock.now)
    async with session.get(link) as r:
        assert r.status in (200, 404), await r.text()  # the overview, once it exists
        assert any(c.key == "nswgw_console" for c in session.cookie_jar), "no session cookie set"
    return ConsoleClient(gw, session, operator)


CHROMIUM = "/usr/bin/chromium"
"""The system Chromium (Debian ``chromium``, which scripts/test installs): Playwright drives it, never a download."""
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
"""Offline and quiet: nothing the browser does reaches beyond 127.0.0.1."""
