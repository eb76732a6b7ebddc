"""Test rig for the operator API and for ``nswgw serve`` run as a process: operators, a gateway file, the process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp

from gateway.api import Gateway
from gateway.config import Config
from gateway.store import Store
from helpers.gateway import TOKENS, Receiver

OPS = "ops-token"
VIEWER = "viewer-token"
OPERATORS = {"ops": {"tokens": [OPS]}, "viewer": {"tokens": [VIEWER], "roles": ["read"]}}
"""``[operators]``: ``ops`` may read and act, ``viewer`` only read."""
NEW_PARTY = '[parties.NEWCO]\ntokens = ["newco-token"]\ndocument_types = ["eco.form_d"]\n'
"""A party to add to :func:`gateway_toml`'s file (``extra``), for reloads."""


class Rig:
    """A running gateway, a client session and the partner behind destination ``TH``."""

    def __init__(self, gw: Gateway, session: aiohttp.ClientSession, partner: Receiver) -> None:
        self.gw, self.session, self.partner = gw, session, partner

    async def call(
        self, method: str, path: str, token: str | None = OPS, body: Any = None
    ) -> tuple[int, dict[str, Any]]:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        async with self.session.request(method, f"{self.gw.url}{path}", headers=headers, json=body) as r:
            return r.status, json.loads(await r.read())


@contextlib.asynccontextmanager
async def running(config: Callable[[Receiver], Config], store: Store | None = None) -> AsyncIterator[Rig]:
    """A :class:`Rig` on the gateway ``config`` makes for a new partner (on ``store``, by default the one the
    configuration names); the partner is stopped afterwards."""
    partner = await Receiver().start()
    try:
        async with Gateway(config(partner), store=store) as gw, aiohttp.ClientSession() as session:
            yield Rig(gw, session, partner)
    finally:
        await partner.stop()


def gateway_toml(
    tmp_path: Path, partner: str, *, port: int = 0, extra: str = "", routes: str = "TH", destination: str = ""
) -> str:
    """A gateway file: SQLite in ``tmp_path``, operator ``ops``, party MOIT (``eco.form_d``, unchecked), destination
    ``TH`` at ``partner`` (``destination``: more of its keys, e.g. ``[destinations.TH.retry]``), every document
    routed to ``routes``; ``extra`` is added after the parties."""
    return f"""
[gateway]
port = {port}
poll_interval = 0.05
verification = "well-formed"
signing = "off"
[gateway.metrics]
public = true
[store]
url = "sqlite:///{tmp_path / "gw.db"}"
synchronous = "NORMAL"
[operators.ops]
tokens = ["{OPS}"]
[parties.MOIT]
tokens = ["{TOKENS["MOIT"]}"]
document_types = ["eco.form_d"]
{extra}
[destinations.TH]
url = "{partner}"
{destination}
[[routes]]
document_type = "*"
to = ["{routes}"]
[document_types."eco.form_d"]
unchecked = true
"""


async def serve(path: Path, *options: str) -> tuple[asyncio.subprocess.Process, str]:
    """``nswgw serve --config PATH --port 0 OPTIONS...`` as a process, once it listens; and its URL."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.commands",
        "serve",
        "--config",
        str(path),
        "--port",
        "0",
        *options,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
    url = re.search(r"listening on (http://\S+)", line)
    if url is None:
        process.kill()
        await process.communicate()
        raise AssertionError(f"nswgw serve did not start: {line!r}")
    return process, url.group(1)


async def stop(process: asyncio.subprocess.Process) -> list[str]:
    """Terminate ``process`` (if it still runs) and wait for it; the lines it wrote on stderr."""
    if process.returncode is None:
        process.terminate()
    _, err = await asyncio.wait_for(process.communicate(), 60)
    return err.decode().splitlines()
