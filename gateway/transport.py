"""The gateway's HTTP listener: aiohttp's request handling behind limits on slow and greedy clients.

* **Header deadline**: a connection whose request head is not complete ``gateway.header_timeout`` seconds after
  it opened (or after the previous answer on it) is closed. aiohttp's keep-alive timer does exactly this (it
  closes a connection that is still waiting for a complete request when it fires), so the listener sets
  ``keepalive_timeout`` to ``header_timeout``; an idle keep-alive connection is therefore kept as long.
* **Body deadline**: :func:`body_deadline`, a middleware, reads each request body within ``gateway.body_timeout``
  (handlers then get it from aiohttp's cache), but for the handlers that read their own with :func:`read_body`
  under the same deadline (the submission: a body only the intake holds, freed once parsed); a body that does
  not arrive in time is answered ``REQUEST_TIMEOUT`` (408) and the connection is closed.
* **Connections per client**: :class:`ClientLimits` counts the open connections of each peer address; beyond
  ``gateway.max_connections_per_client`` a new connection is answered ``CONNECTION_LIMIT`` (429) and closed before
  any of its bytes are read.
* **HTTPS** (``[gateway.tls]``, :func:`server_ssl_context`): the gateway's certificate, the oldest TLS version
  accepted, and, with ``client_ca``, client certificates verified in the handshake (the API maps a verified
  certificate's subject to a party, ``parties.NAME.client_certificates``).
* **Malformed HTTP** (a control character in a header, an over-long line), which aiohttp's parser refuses before
  any handler runs, is answered with a coded ``REQUEST_MALFORMED`` (400) instead of aiohttp's text page.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import ssl
from collections import Counter
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any, cast

from aiohttp import web
from aiohttp.typedefs import Middleware

from gateway.config import GatewaySettings, ServerTlsSettings
from gateway.errors import (
    ConfigError,
    GatewayError,
    NswError,
    RequestMalformed,
    RequestTimeout,
    TooManyConnections,
)
from gateway.wire import Error, error_reply

__all__ = ["ClientLimits", "Listener", "body_deadline", "read_body", "server_ssl_context"]

log = logging.getLogger("nswgw.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ClientLimits:
    """Open connections per client address, admitted up to ``per_client`` each (``0``: no cap)."""

    def __init__(self, per_client: int) -> None:
        self.per_client = per_client
        self._open: Counter[str] = Counter()

    def admit(self, address: str) -> bool:
        if self.per_client and self._open[address] >= self.per_client:
            return False
        self._open[address] += 1
        return True

    def release(self, address: str) -> None:
        self._open[address] -= 1
        if self._open[address] <= 0:
            del self._open[address]

    def open(self, address: str) -> int:
        """Connections ``address`` holds open now."""
        return self._open[address]


def _raw_reply(error: NswError) -> bytes:
    """A whole HTTP/1.1 answer carrying ``error``'s coded body, closing the connection."""
    body = json.dumps(Error.of(error).to_json()).encode("utf-8")
    status = HTTPStatus(error.http_status)
    head = (
        f"HTTP/1.1 {status.value} {status.phrase}\r\nContent-Type: application/json; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class _Handler(web.RequestHandler):
    """aiohttp's connection handler, counted per client address and answering parser errors with a code."""

    def __init__(self, manager: web.Server, *, limits: ClientLimits, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._limits = limits
        self._address: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) else str(peer)
        if not self._limits.admit(address):
            error = TooManyConnections(
                f"{address} already holds {self._limits.per_client} open connections", field="connection"
            )
            log.warning("incident %s: %s", error.incident_id, error)
            stream = cast(asyncio.Transport, transport)
            stream.write(_raw_reply(error))
            stream.close()
            return
        self._address = address
        super().connection_made(transport)

    def connection_lost(self, exc: BaseException | None) -> None:
        address, self._address = self._address, None
        if address is None:
            return  # refused in connection_made: never handed to aiohttp
        self._limits.release(address)
        super().connection_lost(exc)

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:
            raise ConnectionError("an answer is already on its way; the connection is broken")
        error: NswError
        if status < 500:
            # The parser's message quotes the offending bytes (possibly a credential): only its kind is kept.
            kind = type(exc).__name__ if exc is not None else "error"
            error = RequestMalformed(f"the request is not well-formed HTTP/1.1 ({kind})", field="request")
            log.info("incident %s: %s", error.incident_id, error)
        else:
            error = GatewayError(f"internal error: {type(exc).__name__ if exc is not None else status}")
            log.error("incident %s: %s", error.incident_id, error, exc_info=exc)
        response = error_reply(error)
        response.force_close()
        return response


def server_ssl_context(tls: ServerTlsSettings, *, field: str = "gateway.tls") -> ssl.SSLContext:
    """The server-side ``ssl.SSLContext`` of ``[gateway.tls]``; a file that does not load is a ``CONFIG_INVALID``
    naming its key."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_3 if tls.minimum_version == "1.3" else ssl.TLSVersion.TLSv1_2
    password: str | None = None
    if tls.key_password_env is not None:
        password = os.environ.get(tls.key_password_env)
        if password is None:
            raise ConfigError(
                f"environment variable {tls.key_password_env} is not set", field=f"{field}.key_password_env"
            )
    try:
        context.load_cert_chain(tls.certificate, tls.key, password=password)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"cannot load the server certificate {tls.certificate}: {exc}", field=f"{field}.certificate"
        ) from exc
    if tls.client_ca is not None:
        try:
            context.load_verify_locations(tls.client_ca)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"cannot load the client CA {tls.client_ca}: {exc}", field=f"{field}.client_ca") from exc
        context.verify_mode = ssl.CERT_REQUIRED if tls.client_certificates == "required" else ssl.CERT_OPTIONAL
    return context


class Listener:
    """Serves ``app`` on ``settings.host``/``settings.port`` under the header and per-client limits of
    ``settings`` (the body deadline is the application's middleware, :func:`body_deadline`)."""

    def __init__(self, app: web.Application, settings: GatewaySettings) -> None:
        self.settings = settings
        self.limits = ClientLimits(settings.max_connections_per_client)
        self._ssl = server_ssl_context(settings.tls) if settings.tls is not None else None
        self._runner = web.AppRunner(app, access_log=None)
        self._server: asyncio.Server | None = None
        self.port: int | None = None

    async def start(self) -> int:
        """Listen; the port listened on."""
        await self._runner.setup()
        manager = self._runner.server
        assert manager is not None
        loop = asyncio.get_running_loop()
        limits, header_timeout = self.limits, self.settings.header_timeout

        def handler() -> _Handler:
            return _Handler(manager, loop=loop, limits=limits, access_log=None, keepalive_timeout=header_timeout)

        try:
            # a TLS handshake gets the header deadline too (the keep-alive timer starts once it is done)
            handshake = header_timeout if self._ssl is not None else None
            self._server = await loop.create_server(
                handler, self.settings.host, self.settings.port, ssl=self._ssl, ssl_handshake_timeout=handshake
            )
        except BaseException:
            await self._runner.cleanup()
            raise
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        if self._runner.server is not None:
            await self._runner.cleanup()
        if server is not None:
            await server.wait_closed()


async def read_body(request: web.Request, seconds: float) -> bytes:
    """The body of ``request``, read within ``seconds`` (else ``REQUEST_TIMEOUT``) and at most ``client_max_size``
    bytes (else aiohttp's ``HTTPRequestEntityTooLarge``), as one ``bytes`` that only the caller holds: aiohttp's
    ``request.read()`` keeps its result for the request's lifetime."""
    chunks: list[bytes] = []
    size, limit = 0, request.client_max_size
    try:
        async with asyncio.timeout(seconds):
            while chunk := await request.content.readany():
                size += len(chunk)
                if limit and size > limit:
                    raise web.HTTPRequestEntityTooLarge(limit, size)
                chunks.append(chunk)
    except TimeoutError:
        raise _late(seconds) from None
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _late(seconds: float) -> RequestTimeout:
    return RequestTimeout(f"the request body did not arrive within {seconds:g} s", field="body")


def body_deadline(seconds: float, *, own_body: frozenset[Handler] = frozenset()) -> Middleware:
    """A middleware reading every request body within ``seconds``, but for the route handlers in ``own_body``, which
    read theirs with :func:`read_body` under the same deadline (so that nothing else holds it); a body that does
    not arrive in time is answered ``REQUEST_TIMEOUT`` (408) and its connection closed."""

    @web.middleware
    async def _body(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            if request.body_exists and request.match_info.handler not in own_body:
                try:
                    async with asyncio.timeout(seconds):
                        await request.read()  # kept by aiohttp: the handler's request.read() returns it
                except TimeoutError:
                    raise _late(seconds) from None
            return await handler(request)
        except RequestTimeout as error:
            log.info("incident %s: %s", error.incident_id, error)
            response = error_reply(error)
            response.force_close()
            return response

    return _body
