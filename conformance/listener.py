"""The kit as receiver: an HTTP endpoint on which the party under test delivers, held for the cases.

Every request that arrives is queued as an :class:`Incoming` and *held open* until a case answers it
(``incoming.respond(...)``): a case takes the next message that matches what it waits for
(:meth:`Listener.next`), decides the answer (a receipt, a 503, a receipt for another message) and looks at
what the party does next. Requests no case claims are answered 503 when the listener closes, so the
party keeps them for a later delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web

from conformance.model import Exchange
from conformance.runner import CaseContext, PrerequisiteUnmet
from conformance.settings import RunOptions

__all__ = ["Incoming", "Listener", "listening", "require_target"]


@dataclass
class Incoming:
    """One request the party sent to the kit."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    answer: asyncio.Future[web.Response] = field(repr=False)

    def respond(
        self,
        ctx: CaseContext | None,
        status: int = 200,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        *,
        note: str = "",
    ) -> None:
        if ctx is not None:
            ctx.record(Exchange.of("sent", f"HTTP {status}", headers or {}, body, note))
        if not self.answer.done():
            self.answer.set_result(web.Response(status=status, body=body, headers=dict(headers or {})))


class Listener:
    """``async with Listener(host, port, paths) as l``; ``l.url`` is its base URL."""

    def __init__(self, host: str, port: int, paths: tuple[str, ...]) -> None:
        self.host, self.port, self.paths = host, port, paths
        self._pending: list[Incoming] = []
        self._claimed: list[Incoming] = []
        self._arrived = asyncio.Condition()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        incoming = Incoming(
            request.method, request.path, dict(request.headers), body, asyncio.get_running_loop().create_future()
        )
        async with self._arrived:
            self._pending.append(incoming)
            self._arrived.notify_all()
        return await incoming.answer

    async def next(
        self,
        ctx: CaseContext,
        wait: float,
        match: Callable[[Incoming], bool] = lambda m: True,
        *,
        what: str = "a message from the party",
        required: bool = True,
    ) -> Incoming | None:
        """The first held request that ``match`` accepts (recorded in ``ctx``); unmet/None after ``wait`` s."""
        loop = asyncio.get_running_loop()
        end = loop.time() + wait
        async with self._arrived:
            while True:
                for m in self._pending:
                    if match(m):
                        self._pending.remove(m)
                        self._claimed.append(m)
                        ctx.record(Exchange.of("received", f"{m.method} {m.path}", m.headers, m.body))
                        return m
                left = end - loop.time()
                if left <= 0:
                    if required:
                        raise PrerequisiteUnmet(f"{what} did not arrive within {wait:g} s")
                    return None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._arrived.wait(), left)

    async def __aenter__(self) -> Listener:
        app = web.Application(client_max_size=256 * 1024 * 1024)
        for path in self.paths:
            app.router.add_post(path, self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for m in (*self._pending, *self._claimed):
            m.respond(None, 503, b"the conformance kit has stopped", {"Retry-After": "60"})
        self._pending.clear()
        self._claimed.clear()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()


def require_target(options: RunOptions, *, token: bool) -> None:
    """As sender the kit needs the target URL (and, for token-authenticated profiles, the party's token)."""
    if options.role != "sender":
        return
    if not options.target:
        raise PrerequisiteUnmet("no target URL (--target)")
    if token and not options.settings.token:
        raise PrerequisiteUnmet("no API token for the kit's party (settings 'token')")


@asynccontextmanager
async def listening(options: RunOptions, path: str) -> AsyncIterator[Listener | None]:
    """As receiver, a :class:`Listener` on ``path`` for the party to send to; as sender, ``None``."""
    if options.role != "receiver":
        yield None
        return
    async with Listener(options.listen_host, options.listen_port, (path,)) as listener:
        print(f"conformance kit listening on {listener.url}{path}", file=sys.stderr, flush=True)
        yield listener
