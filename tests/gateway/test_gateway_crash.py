"""Crash test: SIGKILL the gateway process at random points while it accepts and delivers; nothing is lost.

Prerequisite: a gateway subprocess (``python -m gateway.commands serve``) fanning every message out to two real
loopback receivers, one that deduplicates by message id and one that does not; senders that resubmit (same
message id) until they get an acknowledgement.
Predicate: after at least 20 SIGKILLs and a final restart, every acknowledged message was processed exactly once
by the deduplicating receiver and at least once by the other, and the message log's hash chain is intact.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from gateway.commands import main
from helpers.gateway import TOKENS, Receiver, doc, eventually

pytestmark = [pytest.mark.slow]

KILLS = 20
MESSAGES = 240
SENDERS = 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(tmp_path: Path, port: int, dedup: Receiver, plain: Receiver) -> Path:
    retry = "[destinations.{0}.retry]\nmax_attempts = 1000\nttl = 3600\ninitial = 0.01\nmax_wait = 0.1\njitter = 0.02\n"
    path = tmp_path / "crash.toml"
    path.write_text(f"""
[gateway]
port = {port}
poll_interval = 0.05
verification = "well-formed"   # unsigned test documents
signing = "off"
[store]
url = "sqlite:///crash.db"
synchronous = "FULL"
[parties.MOIT]
tokens = ["{TOKENS["MOIT"]}"]
document_types = ["eco.form_d"]
[destinations.DEDUP]
url = "{dedup.url}"
concurrency = 8
timeout = 5
{retry.format("DEDUP")}
[destinations.PLAIN]
url = "{plain.url}"
concurrency = 8
timeout = 5
{retry.format("PLAIN")}
[[routes]]
document_type = "eco.form_d"
to = ["DEDUP", "PLAIN"]
[document_types."eco.form_d"]
unchecked = true               # opaque test documents
""")
    return path


class GatewayProcess:
    def __init__(self, config: Path, port: int, log: Path) -> None:
        self.config, self.port, self.log = config, port, log
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self, session: aiohttp.ClientSession) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gateway.commands", "serve", "--config", str(self.config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.config.parent,
            )

        async def healthy() -> bool:
            assert self.proc is not None and self.proc.poll() is None, self.log.read_text()[-3000:]
            try:
                async with session.get(f"http://127.0.0.1:{self.port}/healthz") as r:
                    return r.status == 200
            except aiohttp.ClientError:
                return False

        await eventually(healthy, limit=60, step=0.05)

    async def kill(self, sig: int = signal.SIGKILL) -> int:
        assert self.proc is not None
        os.kill(self.proc.pid, sig)
        rc = await asyncio.to_thread(self.proc.wait, 60)
        self.proc = None
        return rc


async def _sender(session: aiohttp.ClientSession, port: int, numbers: list[int], accepted: dict[str, str]) -> None:
    for n in numbers:
        while True:
            try:
                async with session.post(
                    f"http://127.0.0.1:{port}/v1/messages",
                    data=doc(n, 200),
                    headers={
                        "Authorization": f"Bearer {TOKENS['MOIT']}",
                        "X-Message-Id": f"CRASH-{n}",
                        "X-Document-Type": "eco.form_d",
                    },
                    timeout=aiohttp.ClientTimeout(total=10),
                ) as r:
                    if r.status in (200, 202):
                        accepted[f"CRASH-{n}"] = (await r.json())["id"]
                        break
            except (TimeoutError, aiohttp.ClientError):
                pass
            await asyncio.sleep(0.02)


async def test_sigkill_at_random_points_loses_nothing_and_delivers_exactly_once_to_a_deduplicating_receiver(
    tmp_path: Path,
) -> None:
    rng = random.Random(20261123)
    dedup = await Receiver(dedup=True).start()
    plain = await Receiver(dedup=False).start()
    port = _free_port()
    config = _config(tmp_path, port, dedup, plain)
    gateway = GatewayProcess(config, port, tmp_path / "gateway.log")
    accepted: dict[str, str] = {}
    try:
        async with aiohttp.ClientSession() as session:
            numbers = list(range(MESSAGES))
            senders = [
                asyncio.create_task(_sender(session, port, numbers[i::SENDERS], accepted)) for i in range(SENDERS)
            ]
            kills = 0
            for _ in range(KILLS):
                await gateway.start(session)
                await asyncio.sleep(rng.uniform(0.05, 0.5))
                await gateway.kill()
                kills += 1
            await gateway.start(session)
            await asyncio.gather(*senders)
            ids = set(accepted.values())
            await eventually(lambda: ids <= set(dedup.processed) and ids <= set(plain.processed), limit=120)
            assert await gateway.kill(signal.SIGTERM) == 0  # a graceful stop
    finally:
        if gateway.proc is not None:
            await gateway.kill()
        await dedup.stop()
        await plain.stop()

    print(
        f"kills={kills} accepted={len(accepted)} plain-requests={len(plain.processed)} dedup-requests={len(dedup.requests)}"
    )
    assert kills >= 20
    assert len(accepted) == MESSAGES
    assert sorted(dedup.processed) == sorted(ids)  # exactly once, none missing, none extra
    plain_counts = plain.counts()
    assert set(plain_counts) == ids and min(plain_counts.values()) >= 1
    assert await asyncio.to_thread(main, ["log", "verify", "--config", str(config)]) == 0
