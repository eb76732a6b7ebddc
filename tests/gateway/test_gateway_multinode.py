"""Multi-node test: three gateway processes on one PostgreSQL database, one of them SIGKILLed again and again.

Prerequisite: a fresh migrated schema on the real PostgreSQL server; three ``nswgw serve`` subprocesses
(``[store] kind = "postgresql"``, different ports, lease 2 s) delivering to one real loopback receiver that
deduplicates by message id and records the order it processes messages in; senders that submit each
conversation's messages one after the other, spread over the three nodes, and resubmit (same message id,
to the next node) until they get an acknowledgement; node 0 SIGKILLed and restarted repeatedly meanwhile.
Predicate: every acknowledged message was processed exactly once by the deduplicating receiver (none lost,
none twice), in submission order within each conversation, and the journal is one intact hash chain.
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
from helpers.postgres import fresh_schema

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

NODES = 3
CONVERSATIONS = 24
PER_CONVERSATION = 8
KILLS = 8


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(tmp_path: Path, dsn: str, receiver: Receiver) -> Path:
    path = tmp_path / "multinode.toml"
    path.write_text(f"""
[gateway]
poll_interval = 0.2
lease_seconds = 2
verification = "well-formed"   # unsigned test documents
signing = "off"
[store]
kind = "postgresql"
dsn = "{dsn}"
pool_size = 6
[parties.MOIT]
tokens = ["{TOKENS["MOIT"]}"]
document_types = ["eco.form_d"]
[destinations.DEDUP]
url = "{receiver.url}"
concurrency = 8
timeout = 1
[destinations.DEDUP.retry]
max_attempts = 1000
ttl = 3600
initial = 0.01
max_wait = 0.1
jitter = 0.02
[[routes]]
document_type = "eco.form_d"
to = ["DEDUP"]
[document_types."eco.form_d"]
unchecked = true               # opaque test documents
""")
    return path


class Node:
    def __init__(self, config: Path, port: int, log: Path) -> None:
        self.config, self.port, self.log = config, port, log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, session: aiohttp.ClientSession) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gateway.commands",
                    "serve",
                    "--config",
                    str(self.config),
                    "--port",
                    str(self.port),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.config.parent,
            )

        async def healthy() -> bool:
            assert self.proc is not None and self.proc.poll() is None, self.log.read_text()[-3000:]
            try:
                async with session.get(f"{self.url}/healthz") as r:
                    return r.status == 200
            except aiohttp.ClientError:
                return False

        await eventually(healthy, limit=30, step=0.05)

    async def kill(self, sig: int = signal.SIGKILL) -> int:
        assert self.proc is not None
        os.kill(self.proc.pid, sig)
        rc = await asyncio.to_thread(self.proc.wait, 30)
        self.proc = None
        return rc


async def _conversation(
    session: aiohttp.ClientSession, nodes: list[Node], c: int, accepted: dict[str, tuple[str, int]]
) -> None:
    for k in range(PER_CONVERSATION):
        attempt = 0
        while True:
            node = nodes[(c + k + attempt) % len(nodes)]
            attempt += 1
            try:
                async with session.post(
                    f"{node.url}/v1/messages",
                    data=doc(f"{c}-{k}", 300),
                    headers={
                        "Authorization": f"Bearer {TOKENS['MOIT']}",
                        "X-Message-Id": f"MN-{c}-{k}",
                        "X-Document-Type": "eco.form_d",
                        "X-Conversation-Id": f"CONV-{c}",
                    },
                    timeout=aiohttp.ClientTimeout(total=5),
                ) as r:
                    if r.status in (200, 202):
                        accepted[(await r.json())["id"]] = (f"CONV-{c}", k)
                        break
            except (TimeoutError, aiohttp.ClientError):
                pass
            await asyncio.sleep(0.02)


async def test_three_nodes_on_one_database_deliver_exactly_once_in_conversation_order_while_one_is_killed(
    tmp_path: Path,
) -> None:
    rng = random.Random(20261123)
    receiver = Receiver(dedup=True)
    order: list[tuple[str, str]] = []  # (conversation, gateway id) as first processed
    original = receiver._handle

    async def recording(request):  # type: ignore[no-untyped-def]
        before = len(receiver.processed)
        response = await original(request)
        if len(receiver.processed) > before:
            order.append((request.headers["X-Conversation-Id"], receiver.processed[-1]))
        return response

    receiver._handle = recording  # type: ignore[method-assign]
    await receiver.start()
    accepted: dict[str, tuple[str, int]] = {}
    async with fresh_schema() as dsn:
        config = _config(tmp_path, dsn, receiver)
        nodes = [Node(config, _free_port(), tmp_path / f"node{i}.log") for i in range(NODES)]
        try:
            async with aiohttp.ClientSession() as session:
                await asyncio.gather(*(n.start(session) for n in nodes))
                senders = [
                    asyncio.create_task(_conversation(session, nodes, c, accepted)) for c in range(CONVERSATIONS)
                ]
                kills = 0
                for _ in range(KILLS):
                    await asyncio.sleep(rng.uniform(0.2, 0.8))
                    await nodes[0].kill()
                    kills += 1
                    await nodes[0].start(session)
                await asyncio.wait_for(asyncio.gather(*senders), 60)  # bounded
                ids = set(accepted)
                await eventually(lambda: ids <= set(receiver.processed), limit=45)
                for n in nodes:
                    assert await n.kill(signal.SIGTERM) == 0  # graceful stops
            verified = await asyncio.to_thread(main, ["log", "verify", "--config", str(config)])
        finally:
            for n in nodes:
                if n.proc is not None:
                    await n.kill()
            await receiver.stop()

    print(
        f"kills={kills} accepted={len(accepted)} requests={len(receiver.requests)} processed={len(receiver.processed)}"
    )
    assert kills == KILLS
    assert len(accepted) == CONVERSATIONS * PER_CONVERSATION
    assert sorted(receiver.processed) == sorted(ids)  # exactly once: none missing, none twice
    for c in range(CONVERSATIONS):
        seen = [accepted[mid][1] for conv, mid in order if conv == f"CONV-{c}"]
        assert seen == list(range(PER_CONVERSATION)), f"CONV-{c} delivered out of order: {seen}"
    assert verified == 0
