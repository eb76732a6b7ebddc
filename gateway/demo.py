"""``nswgw demo``: the whole gateway on one machine, end to end, with a summary.

Starts, all on 127.0.0.1 and in a fresh temporary directory:

* the gateway (embedded SQLite store, HTTP API, delivery workers);
* simulated ministries that submit over the HTTP API: MOIT issuing e-C/O
  Form D (plus amendments in the same conversation), a trader registering an
  animal consignment with MARD, and MARD answering each registration with an
  animal-quarantine permit that references it;
* simulated receivers (real aiohttp servers): the ASEAN partners TH and ID,
  national customs, and MARD's inbox. TH is down (503) for the first few
  seconds, so its messages are retried and arrive after it recovers.

It prints a progress bar and a table: delivered, retried, dead and p50/p99
end-to-end latency (submission → receipt) per destination.

Signatures: verification is ``well-formed`` (hardened parser) and signing is
off until the signing layer is wired into :mod:`gateway.ports`.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from gateway.api import Gateway
from gateway.config import Config, parse_config
from gateway.model import State

__all__ = ["DemoResult", "run_demo", "eco_form_d", "register"]

TOKENS = {"MOIT": "demo-moit", "MARD": "demo-mard", "TRADER": "demo-trader"}


def eco_form_d(n: int, partner: str, *, amendment: bool = False, size: int = 0) -> bytes:
    """A plausible (unsigned) ASEAN e-C/O Form D, padded to about ``size`` bytes."""
    kind = "Amendment" if amendment else "Original"
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?>'
        f'<CertificateOfOrigin xmlns="urn:asean:atiga:eco:formd" Id="eco-{n}">'
        f"<ReferenceNo>VN-{n:08d}</ReferenceNo><Kind>{kind}</Kind>"
        f"<Exporter><Name>Saigon Seafood JSC</Name><Country>VN</Country></Exporter>"
        f"<Consignee><Country>{partner}</Country></Consignee>"
        f"<Goods><Item><HS>030389</HS><Description>Frozen pangasius fillets</Description>"
        f"<Criterion>WO</Criterion><Quantity unit=\"KGM\">{1000 + n}</Quantity></Item></Goods>"
    )
    pad = max(0, size - len(body) - 40)
    return (body + f"<Remarks>{'x' * pad}</Remarks></CertificateOfOrigin>").encode()


def registration(n: int) -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?><AnimalConsignmentRegistration Id="reg-{n}">'
            f"<Species>Bos taurus</Species><Head>{10 + n}</Head><Origin>AU</Origin></AnimalConsignmentRegistration>"
            ).encode()


def permit(n: int, reference: str) -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?><AnimalQuarantinePermit Id="permit-{n}">'
            f"<Registration>{reference}</Registration><Decision>granted</Decision></AnimalQuarantinePermit>").encode()


class _Partner:
    """A simulated receiver: deduplicates by message id and answers with a JSON receipt."""

    def __init__(self, name: str, *, down_for: float = 0.0, fail_first: int = 0) -> None:
        self.name = name
        self.fail_first = fail_first
        self.down_until = 0.0
        self.down_for = down_for
        self.arrivals: dict[str, float] = {}
        self.requests = 0
        self.on_message: Any = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/inbox"

    async def _handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.requests += 1
        if time.monotonic() < self.down_until or self.fail_first > 0:
            self.fail_first -= 1
            return web.Response(status=503, text="maintenance")
        mid = request.headers.get("X-Message-Id", "")
        duplicate = mid in self.arrivals
        if not duplicate:
            self.arrivals[mid] = time.monotonic()
            if self.on_message is not None:
                self.on_message(request.headers)
        return web.json_response({"message_id": mid, "duplicate": duplicate})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/inbox", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]
        self.down_until = time.monotonic() + self.down_for

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def demo_config(store_dir: Path, partners: dict[str, _Partner], *, verification: str = "well-formed",
                synchronous: str = "FULL", concurrency: int = 16) -> Config:
    retry = {"max_attempts": 30, "ttl": 120.0, "initial": 0.2, "max_wait": 1.0, "jitter": 0.2}
    return parse_config({
        "gateway": {"port": 0, "verification": verification, "poll_interval": 0.1},
        "store": {"url": f"sqlite:///{store_dir / 'gateway.db'}", "synchronous": synchronous},
        "parties": {
            "MOIT": {"name": "Ministry of Industry and Trade", "tokens": [TOKENS["MOIT"]],
                     "document_types": ["eco.form_d", "eco.form_d.amendment"]},
            "MARD": {"name": "Ministry of Agriculture and Rural Development", "tokens": [TOKENS["MARD"]],
                     "document_types": ["sps.animal_quarantine_permit"]},
            "TRADER": {"name": "Importer's customs broker", "tokens": [TOKENS["TRADER"]],
                       "document_types": ["sps.registration"]},
        },
        "destinations": {
            name: {"url": p.url, "concurrency": concurrency, "timeout": 10.0, "retry": retry,
                   "breaker": {"failure_threshold": 5, "reset_timeout": 0.5}}
            for name, p in partners.items()
        },
        "routes": [
            {"document_type": "eco.form_d", "destination": "TH", "to": ["TH", "CUSTOMS"]},
            {"document_type": "eco.form_d", "destination": "ID", "to": ["ID", "CUSTOMS"]},
            {"document_type": "eco.form_d.amendment", "destination": "TH", "to": ["TH", "CUSTOMS"]},
            {"document_type": "eco.form_d.amendment", "destination": "ID", "to": ["ID", "CUSTOMS"]},
            {"document_type": "sps.registration", "to": ["MARD"]},
            {"document_type": "sps.animal_quarantine_permit", "to": ["CUSTOMS"]},
        ],
    })


@dataclass
class DemoResult:
    messages: int
    elapsed: float
    deliveries: dict[str, int] = field(default_factory=dict)
    retries: dict[str, int] = field(default_factory=dict)
    dead: dict[str, int] = field(default_factory=dict)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    commits: tuple[int, int] = (0, 0)

    @property
    def all_latencies(self) -> list[float]:
        return [v for vs in self.latencies.values() for v in vs]

    @property
    def throughput(self) -> float:
        return self.messages / self.elapsed if self.elapsed else 0.0


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q * 100) - 1]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f} ms"


def summary_table(result: DemoResult) -> str:
    rows = [("destination", "delivered", "retried", "dead", "p50", "p99")]
    for name in sorted(result.deliveries):
        lat = result.latencies.get(name, [])
        rows.append((name, str(result.deliveries[name]), str(result.retries.get(name, 0)),
                     str(result.dead.get(name, 0)), _ms(_pct(lat, 0.5)), _ms(_pct(lat, 0.99))))
    total = result.all_latencies
    rows.append(("all", str(sum(result.deliveries.values())), str(sum(result.retries.values())),
                 str(sum(result.dead.values())), _ms(_pct(total, 0.5)), _ms(_pct(total, 0.99))))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for i, row in enumerate(rows):
        lines.append("  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths))))
        if i == 0 or i == len(rows) - 2:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


class _Progress:
    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.enabled, self.last = total, enabled, -1

    def show(self, done: int) -> None:
        if not self.enabled or done == self.last:
            return
        self.last = done
        width = 40
        filled = int(width * done / self.total) if self.total else width
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{self.total} deliveries acknowledged")
        sys.stderr.flush()

    def end(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


async def run_demo(*, messages: int = 300, size: int = 2048, verification: str = "well-formed",
                   flaky_seconds: float = 3.0, flaky_requests: int = 0, progress: bool = True, concurrency: int = 16,
                   synchronous: str = "FULL", store_dir: Path | None = None) -> DemoResult:
    """Push ``messages`` submissions through the demo topology and wait until every delivery is acknowledged."""
    partners = {"TH": _Partner("TH", down_for=flaky_seconds, fail_first=flaky_requests), "ID": _Partner("ID"), "CUSTOMS": _Partner("CUSTOMS"),
                "MARD": _Partner("MARD")}
    for p in partners.values():
        await p.start()
    tmp = tempfile.TemporaryDirectory(prefix="nswgw-demo-") if store_dir is None else None
    directory = Path(tmp.name) if tmp is not None else store_dir
    assert directory is not None
    submitted: dict[str, float] = {}
    expected: dict[str, tuple[str, ...]] = {}
    replies: list[asyncio.Task[None]] = []
    try:
        config = demo_config(directory, partners, verification=verification, synchronous=synchronous,
                             concurrency=concurrency)
        async with Gateway(config) as gw, aiohttp.ClientSession() as session:
            semaphore = asyncio.Semaphore(concurrency * 2)

            async def send(party: str, mid: str, doc_type: str, body: bytes, **headers: str) -> None:
                h = {"Authorization": f"Bearer {TOKENS[party]}", "X-Message-Id": mid, "X-Document-Type": doc_type,
                     "Content-Type": "application/xml", **headers}
                async with semaphore:
                    start = time.monotonic()
                    for _ in range(100):
                        async with session.post(f"{gw.url}/v1/messages", data=body, headers=h) as r:
                            ack = await r.json()
                            if r.status in (200, 202):
                                break
                        await asyncio.sleep(0.05)
                    else:
                        raise RuntimeError(f"demo submission {mid} refused: {ack}")
                submitted[ack["id"]] = start
                expected[ack["id"]] = tuple(ack["destinations"])

            def mard_issues_permit(headers: Any) -> None:
                ref = headers["X-Message-Id"]
                n = len(replies)
                replies.append(asyncio.create_task(
                    send("MARD", f"PERMIT-{n}", "sps.animal_quarantine_permit", permit(n, ref), **{"X-Reference": ref})))

            partners["MARD"].on_message = mard_issues_permit
            n_reg = max(1, messages // 10)
            n_eco = messages - 2 * n_reg
            jobs = []
            for n in range(n_eco):
                amend = n % 5 == 4  # every fifth e-C/O amends the one issued just before it
                original = n - 1 if amend else n
                partner = "TH" if original % 2 == 0 else "ID"
                conv = f"ECO-{original}"
                jobs.append(send("MOIT", f"ECO-{n}", "eco.form_d.amendment" if amend else "eco.form_d",
                                 eco_form_d(n, partner, amendment=amend, size=size),
                                 **{"X-Destination": partner, "X-Conversation-Id": conv}))
            jobs.extend(send("TRADER", f"REG-{n}", "sps.registration", registration(n)) for n in range(n_reg))
            started = time.monotonic()
            bar = _Progress(messages, progress)

            async def submit_all() -> None:
                await asyncio.gather(*jobs)

            submitter = asyncio.create_task(submit_all())
            total = 0
            while True:
                arrived = {name: p.arrivals for name, p in partners.items()}
                total = sum(1 for mid, dests in expected.items() if all(mid in arrived[d] for d in dests))
                bar.show(total)
                if submitter.done() and len(replies) >= n_reg and all(t.done() for t in replies) and \
                        len(expected) >= messages and total >= len(expected):
                    break
                if submitter.done() and submitter.exception() is not None:
                    raise submitter.exception()  # type: ignore[misc]
                await asyncio.sleep(0.05)
            elapsed = time.monotonic() - started
            bar.end()
            await submitter
            result = DemoResult(messages=len(expected), elapsed=elapsed, commits=getattr(gw.store, "commit_stats",
                                                                                          (0, 0)))
            for name, p in partners.items():
                lat = [p.arrivals[mid] - submitted[mid] for mid, dests in expected.items() if name in dests]
                result.latencies[name] = lat
                result.deliveries[name] = len(lat)
                result.retries[name] = gw.metrics.retries[name]
                result.dead[name] = gw.metrics.dead[name]
            stats = await gw.store.stats()
            for s in stats:
                assert s.counts.get(State.ACKNOWLEDGED, 0) == result.deliveries[s.destination]
        return result
    finally:
        for task in replies:
            task.cancel()
        await asyncio.gather(*replies, return_exceptions=True)
        for p in partners.values():
            await p.stop()
        if tmp is not None:
            tmp.cleanup()


def cmd_demo(args: Any) -> int:
    print(f"nswgw demo: {args.messages} messages; simulated MOIT, MARD and a trader; partners TH (down for "
          f"{args.flaky:.0f}s), ID, national customs and MARD's inbox, all on 127.0.0.1", flush=True)
    result = asyncio.run(run_demo(messages=args.messages, flaky_seconds=args.flaky, progress=not args.quiet))
    print(summary_table(result))
    print(f"{result.messages} messages end to end in {result.elapsed:.1f} s ({result.throughput:.0f} msg/s); "
          f"store: {result.commits[1]} writes in {result.commits[0]} commits")
    return 0


def register(subparsers: Any) -> None:
    demo = subparsers.add_parser("demo", help="run the gateway end to end with simulated ministries and partners")
    demo.add_argument("--messages", type=int, default=300, help="submissions to push through (default 300)")
    demo.add_argument("--flaky", type=float, default=3.0, help="seconds the TH partner is down at the start")
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    demo.set_defaults(handler=cmd_demo)
