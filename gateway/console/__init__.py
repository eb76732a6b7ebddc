"""The operator console at ``/console``: server-rendered pages for ``[operators.NAME]``, served by the gateway.

No separate server and nothing fetched from outside (ministry networks are closed): the Jinja2 templates
(``templates/``), the stylesheet and the one small script (``static/``) are in the package. Every page reads
with JavaScript off; the script only refreshes the live parts.

**Login.** ``nswgw console-url`` (and ``nswgw demo --serve``) prints a one-time link
``/console/login?token=...``; opening it sets the session cookie and redirects to the overview, so the token
leaves the address bar. An operator may also log in with an ``[operators]`` token on the login form.
Sessions and links are in the store (:mod:`gateway.console.sessions`), so they hold on every node.

**Protection.** The session cookie ``nswgw_console`` is HttpOnly, SameSite=Strict, ``Path=/console`` (and
Secure over HTTPS). Every POST form carries the session's CSRF token (field ``csrf``; the login form a
double-submit token of its own); without it the POST is refused ``CSRF_INVALID`` (403). Every answer carries a
strict Content-Security-Policy (no inline script or style, nothing from another origin), ``nosniff``,
``no-referrer``, ``frame-ancestors 'none'`` and ``no-store``. Templates autoescape everything (message contents are
the senders', hence attacker-controlled); none marks anything safe.

**Pages** (each a module of :mod:`gateway.console.pages` with its routes and its ``LABELS``): overview (the flow
map and the weak points), messages (search, a message's timeline, its evidence), dead letters (replay after
confirmation), partners, procedures, certificates of origin (``/console/origin``: the e-C/Os carried, their status
and history), disclosures (``/console/disclosures``: what each agency received of which message, under which
legal basis), certificates (X.509). Roles are the operator API's: ``read`` for the pages,
``act`` for replays.

**Languages**: English and Vietnamese (:mod:`gateway.console.i18n`), per operator by the ``nswgw_lang`` cookie
(``/console/language?to=vi``); the default is ``[gateway.console] language``.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from importlib import resources
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import jinja2
from aiohttp import web

from gateway.console.i18n import LABELS, LANGUAGES, Translator
from gateway.console.sessions import ConsoleSession, Sessions
from gateway.errors import CsrfInvalid, NotAuthorized, NswError

if TYPE_CHECKING:
    from gateway.api import Gateway

__all__ = ["CONSOLE_PREFIX", "Console", "console_routes", "build_labels"]

CONSOLE_PREFIX = "/console"
SESSION_COOKIE = "nswgw_console"
LANGUAGE_COOKIE = "nswgw_lang"
LOGIN_COOKIE = "nswgw_login"
"""The double-submit CSRF token of the login form (before there is a session)."""

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
STATIC_FILES = {"console.css": "text/css", "console.js": "text/javascript"}
"""The files under ``/console/static/``: nothing else is served from there."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PageHandler = Callable[[web.Request, ConsoleSession], Awaitable[web.StreamResponse]]

_R = TypeVar("_R", bound=web.StreamResponse)
_SESSION: web.RequestKey[ConsoleSession] = web.RequestKey("console_session", ConsoleSession)


def build_labels() -> dict[str, tuple[str, str]]:
    """Every label of the console: the frame's and each page module's."""
    from gateway.console import pages

    merged = dict(LABELS)
    for module in pages.MODULES:
        for key, value in module.LABELS.items():
            if key in merged and merged[key] != value:
                raise ValueError(f"console label {key!r} is defined twice, differently")
            merged[key] = value
    return merged


def _instant(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


class Console:
    """The console of one gateway: its templates, its sessions and the helpers every page uses."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.settings = gateway.config.gateway.console
        self.sessions = Sessions(gateway.store, self.settings, now=gateway.clock.now)
        self.labels = build_labels()
        self.env = jinja2.Environment(
            loader=jinja2.PackageLoader("gateway.console", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["instant"] = _instant
        self.env.filters["quote"] = lambda value: quote(str(value), safe="")

    # ------------------------------------------------------------------------------------------ answers

    def language(self, request: web.Request) -> str:
        chosen = request.cookies.get(LANGUAGE_COOKIE, "")
        return chosen if chosen in LANGUAGES else self.settings.language

    def render(
        self,
        request: web.Request,
        template: str,
        *,
        status: int = 200,
        session: ConsoleSession | None = None,
        **context: Any,
    ) -> web.Response:
        """``template`` rendered with the frame's context (translator, session, navigation) and ``context``."""
        language = self.language(request)
        page = self.env.get_template(template).render(
            t=Translator(self.labels, language),
            language=language,
            languages=LANGUAGES,
            session=session,
            path=request.path if request.path == f"{CONSOLE_PREFIX}/login" else request.path_qs,
            now=self.gateway.clock.now(),
            **context,
        )
        return self.secured(web.Response(text=page, status=status, content_type="text/html", charset="utf-8"))

    @staticmethod
    def secured(response: _R) -> _R:
        """``response`` with the console's security headers."""
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Cache-Control"] = "no-store"
        return response

    def refused(self, request: web.Request, error: NswError, session: ConsoleSession | None) -> web.Response:
        return self.render(request, "error.html", status=error.http_status, session=session, error=error)

    def redirect(self, location: str) -> web.HTTPSeeOther:
        response = web.HTTPSeeOther(location)
        self.secured(response)
        return response

    # ------------------------------------------------------------------------------------------ guards

    async def session_of(self, request: web.Request) -> ConsoleSession | None:
        """The request's live session, if its operator is still configured."""
        session_id = request.cookies.get(SESSION_COOKIE)
        if not session_id:
            return None
        session = await self.sessions.find(session_id)
        if session is None or session.operator not in self.gateway.config.operators:
            return None
        return session

    def page(self, role: str = "read") -> Callable[[PageHandler], Handler]:
        """A route handler from a page handler: a GET without a session is sent to the login page; a POST without
        a session or without the session's CSRF token (form field ``csrf``) is refused ``CSRF_INVALID``; an
        operator lacking ``role`` is refused ``AUTH_FORBIDDEN``; a coded error renders the error page."""

        def wrap(handler: PageHandler) -> Handler:
            async def guarded(request: web.Request) -> web.StreamResponse:
                session = await self.session_of(request)
                try:
                    if request.method == "POST":
                        form = await request.post()
                        sent = str(form.get("csrf", ""))
                        if session is None or not hmac.compare_digest(sent, session.csrf):
                            raise CsrfInvalid(
                                "this form does not carry the session's CSRF token: reload the page and try again",
                                field="csrf",
                            )
                    elif session is None:
                        raise self.redirect(f"{CONSOLE_PREFIX}/login?next={quote(request.path_qs, safe='')}")
                    assert session is not None
                    if role not in self.gateway.config.operators[session.operator].roles:
                        raise NotAuthorized(f"operator {session.operator} lacks the {role!r} role", field="role")
                    request[_SESSION] = session
                    return await handler(request, session)
                except NswError as error:
                    return self.refused(request, error, session)

            return guarded

        return wrap

    # ------------------------------------------------------------------------------------------ frame routes

    async def login_page(self, request: web.Request) -> web.StreamResponse:
        token = request.query.get("token")
        if token is not None:
            operator = await self.sessions.redeem(token)
            if operator is None or operator not in self.gateway.config.operators:
                return self._login_form(request, error="login.link_invalid", status=401)
            return await self._logged_in(request, operator)
        return self._login_form(request)

    def _login_form(self, request: web.Request, *, error: str | None = None, status: int = 200) -> web.Response:
        check = secrets.token_urlsafe(24)
        response = self.render(
            request, "login.html", status=status, error=error, login_csrf=check, next=_local(request.query.get("next"))
        )
        response.set_cookie(LOGIN_COOKIE, check, **self._cookie(max_age=600))
        return response

    async def login(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        sent = str(form.get("csrf", ""))
        expected = request.cookies.get(LOGIN_COOKIE, "")
        if not expected or not hmac.compare_digest(sent, expected):
            error = CsrfInvalid("the login form does not carry its CSRF token: reload it and try again", field="csrf")
            return self.refused(request, error, None)
        operator = self.gateway.config.operator_for_token(str(form.get("token", "")).strip())
        if operator is None:
            return self._login_form(request, error="login.failed", status=401)
        return await self._logged_in(request, operator, next_path=_local(str(form.get("next", ""))))

    async def _logged_in(self, request: web.Request, operator: str, *, next_path: str | None = None) -> web.Response:
        session = await self.sessions.open(operator)
        response = self.redirect(next_path or f"{CONSOLE_PREFIX}/")
        response.set_cookie(SESSION_COOKIE, session.id, **self._cookie(max_age=int(self.settings.session_timeout)))
        response.del_cookie(LOGIN_COOKIE, path=CONSOLE_PREFIX)
        raise response

    async def logout(self, request: web.Request, session: ConsoleSession) -> web.StreamResponse:
        await self.sessions.close(session.id)
        response = self.redirect(f"{CONSOLE_PREFIX}/login")
        response.del_cookie(SESSION_COOKIE, path=CONSOLE_PREFIX)
        raise response

    async def choose_language(self, request: web.Request) -> web.StreamResponse:
        chosen = request.query.get("to", "")
        response = self.redirect(_local(request.query.get("next")) or f"{CONSOLE_PREFIX}/")
        if chosen in LANGUAGES:
            response.set_cookie(LANGUAGE_COOKIE, chosen, **self._cookie(max_age=365 * 86400))
        raise response

    async def static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in STATIC_FILES:
            raise web.HTTPNotFound()
        body = resources.files("gateway.console").joinpath("static", name).read_bytes()
        response = web.Response(body=body, content_type=STATIC_FILES[name], charset="utf-8")
        self.secured(response)
        response.headers["Cache-Control"] = "max-age=3600"
        return response

    async def root(self, request: web.Request) -> web.StreamResponse:
        raise self.redirect(f"{CONSOLE_PREFIX}/")

    def _cookie(self, *, max_age: int) -> dict[str, Any]:
        return {
            "path": CONSOLE_PREFIX,
            "max_age": max_age,
            "httponly": True,
            "samesite": "Strict",
            "secure": self.gateway.config.gateway.tls is not None,
        }


def _local(value: str | None) -> str | None:
    """``value`` if it is a path of the console (where a login may send the browser back to), else None."""
    if value and value.startswith(f"{CONSOLE_PREFIX}/") and "//" not in value and "\\" not in value:
        return value
    return None


def console_routes(gateway: Gateway) -> list[web.RouteDef]:
    """Every route of the console of ``gateway`` (and ``/``, which redirects to it)."""
    from gateway.console import pages

    console = Console(gateway)
    routes = [
        web.get("/", console.root),
        web.get(CONSOLE_PREFIX, console.root),
        web.get(f"{CONSOLE_PREFIX}/login", console.login_page),
        web.post(f"{CONSOLE_PREFIX}/login", console.login),
        web.post(f"{CONSOLE_PREFIX}/logout", console.page()(console.logout)),
        web.get(f"{CONSOLE_PREFIX}/language", console.choose_language),
        web.get(CONSOLE_PREFIX + "/static/{name}", console.static),
    ]
    for module in pages.MODULES:
        routes += module.routes(console)
    return routes
