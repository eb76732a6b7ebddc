"""What the ship-call bookkeeping costs at intake: the unsigned example topology
(gateway/examples/ship-calls-unsigned.toml) with and without its ``[ship_calls]`` rules.

    .venv/bin/python benchmarks/ship_calls.py [--calls 100] [--stores sqlite,postgresql]
        [--dsn postgresql://postgres@127.0.0.1:5432/test]

Per store, two gateways in this process with loopback partner servers: ``tracked`` (the example as it is) and
``plain`` (the same parties, destinations with their ``fields`` and routes, no ``[ship_calls]``: the same
documents are then ordinary messages). For each of ``--calls`` calls the agent declares it (one HTTP submission,
projected to five agencies), then the five agencies answer at once (five concurrent submissions on one call: on
``tracked`` they contend for its revision and are planned again until each commits). Printed, one JSON object per
line: per gateway and kind the p50 and p99 acceptance latency (HTTP round trip) in ms, and the ratios tracked /
plain, with ``load_average`` before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import tempfile
import time
import tomllib
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from gateway.api import Gateway  # noqa: E402
from gateway.config import LogSettings, parse_config  # noqa: E402
from gateway.dev.shipcall import (  # noqa: E402
    AGENCY_TOKENS,
    AGENT_TOKEN,
    SHIPOWNER,
    Inbox,
    decision,
    example_config_text,
    ship_call,
)
from gateway.logs import configure_logging  # noqa: E402

AGENCIES = ("PORT", "BORDER", "HEALTH", "CUSTOMS", "QUARANTINE")
_RULES = re.compile(r"^\[ship_calls\.[^\]]+\][^\n]*\n(?:[^\[\n][^\n]*\n)*", re.MULTILINE)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _run(kind: str, store: str, calls: int, tracked: bool) -> dict[str, list[float]]:
    async with AsyncExitStack() as stack:
        names = (*AGENCIES, "AGENT-BOX")
        inboxes = {name: await Inbox().start() for name in names}
        for inbox in inboxes.values():
            stack.push_async_callback(inbox.stop)
        text = example_config_text({9201 + i: inboxes[n].url for i, n in enumerate(names)}, store)
        if not tracked:
            text = _RULES.sub("", text)
            assert "[ship_calls." not in text
        gw = await stack.enter_async_context(Gateway(parse_config(tomllib.loads(text))))
        http = await stack.enter_async_context(aiohttp.ClientSession())

        async def post(token: str, mid: str, doc_type: str, body: bytes, **headers: str) -> float:
            h = {"Authorization": f"Bearer {token}", "X-Message-Id": mid, "X-Document-Type": doc_type, **headers}
            h["Content-Type"] = "application/json"
            start = time.perf_counter()
            async with http.post(f"{gw.url}/v1/messages", data=body, headers=h) as r:
                await r.read()
                if r.status != 202:
                    raise RuntimeError(f"{kind} {mid}: {r.status}")
            return (time.perf_counter() - start) * 1000

        declared: list[float] = []
        answered: list[float] = []
        for n in range(calls):
            reference = f"SGN-2026-{n:05d}"
            headers = {"X-On-Behalf-Of": SHIPOWNER, "X-Procedure": "arrival"}
            declared.append(await post(AGENT_TOKEN, f"SC-{n}", "ship.call", ship_call(reference), **headers))
            answered += await asyncio.gather(
                *(
                    post(AGENCY_TOKENS[a], f"D-{a}-{n}", "ship.call.decision", decision(reference, "accepted"))
                    for a in AGENCIES
                )
            )
        return {"declaration": declared, "decision": answered}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--stores", default="sqlite")
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    configure_logging(LogSettings(level="ERROR", format="text"))
    for kind in args.stores.split(","):
        results: dict[str, dict[str, list[float]]] = {}
        load = [os.getloadavg()[0]]
        for tracked in (False, True):
            with tempfile.TemporaryDirectory() as tmp:
                if kind == "sqlite":
                    store = f'[store]\nurl = "sqlite:///{Path(tmp) / "gw.db"}"\nsynchronous = "NORMAL"'
                    results["tracked" if tracked else "plain"] = await _run(kind, store, args.calls, tracked)
                else:
                    import asyncpg

                    from gateway.store.postgres import upgrade_schema

                    schema = f"bench_ship_calls_{os.getpid()}_{int(tracked)}"
                    dsn = f"{args.dsn}{'&' if '?' in args.dsn else '?'}search_path={schema}"
                    conn = await asyncpg.connect(args.dsn)
                    try:
                        await conn.execute(f"CREATE SCHEMA {schema}")
                    finally:
                        await conn.close()
                    await upgrade_schema(dsn)
                    store = f'[store]\nkind = "postgresql"\ndsn = "{dsn}"\npool_size = 8'
                    try:
                        results["tracked" if tracked else "plain"] = await _run(kind, store, args.calls, tracked)
                    finally:
                        conn = await asyncpg.connect(args.dsn)
                        try:
                            await conn.execute(f"DROP SCHEMA {schema} CASCADE")
                        finally:
                            await conn.close()
        load.append(os.getloadavg()[0])
        line: dict[str, Any] = {"store": kind, "calls": args.calls, "load_average": load}
        for gateway_kind, by_kind in results.items():
            for what, values in by_kind.items():
                line[f"{gateway_kind}_{what}_p50_ms"] = round(statistics.median(values), 2)
                line[f"{gateway_kind}_{what}_p99_ms"] = round(_percentile(values, 0.99), 2)
        for what in ("declaration", "decision"):
            line[f"ratio_{what}_p50"] = round(line[f"tracked_{what}_p50_ms"] / line[f"plain_{what}_p50_ms"], 2)
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
