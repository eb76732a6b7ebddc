"""End-to-end throughput and latency of the gateway on the demo topology (a script, not a test).

Runs ``gateway.demo.run_demo`` (real HTTP API, SQLite WAL store with group commit, real loopback partners,
fan-out to two destinations per e-C/O) twice: with verification on and with it switched off, and prints
messages/s, p50/p99 end-to-end latency (submission → receipt at the partner) and the ratio, so the
overhead of verification (and, once the signing layer is wired into gateway.ports, of signing) is visible.

    .venv/bin/python benchmarks/gateway_throughput.py [--messages 2000] [--size 8192] [--synchronous FULL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os

from gateway.demo import _pct, run_demo


def measure(messages: int, size: int, verification: str, synchronous: str) -> dict[str, float]:
    r = asyncio.run(run_demo(messages=messages, size=size, verification=verification, flaky_seconds=0.0,
                             progress=False, synchronous=synchronous))
    lat = r.all_latencies
    return {
        "messages": r.messages,
        "seconds": round(r.elapsed, 2),
        "msg_per_s": round(r.throughput, 1),
        "p50_ms": round((_pct(lat, 0.5) or 0) * 1000, 1),
        "p99_ms": round((_pct(lat, 0.99) or 0) * 1000, 1),
        "writes_per_commit": round(r.commits[1] / max(1, r.commits[0]), 1),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--messages", type=int, default=2000)
    p.add_argument("--size", type=int, default=8192, help="approximate bytes per e-C/O")
    p.add_argument("--synchronous", default="FULL", choices=["FULL", "NORMAL"])
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    on = measure(args.messages, args.size, "well-formed", args.synchronous)
    off = measure(args.messages, args.size, "off", args.synchronous)
    report = {"cores": os.cpu_count(), "size": args.size, "synchronous": args.synchronous,
              "verification_on": on, "verification_off": off,
              "overhead_ratio": round(off["msg_per_s"] / on["msg_per_s"], 2) if on["msg_per_s"] else None,
              "signing": "not wired yet (NullSigner in both runs)"}
    if args.json:
        print(json.dumps(report))
        return
    print(f"{args.messages} messages of ~{args.size} B, SQLite synchronous={args.synchronous}, {os.cpu_count()} cores")
    for name, m in (("verification on ", on), ("verification off", off)):
        print(f"  {name}: {m['msg_per_s']:7.1f} msg/s  p50 {m['p50_ms']:7.1f} ms  p99 {m['p99_ms']:7.1f} ms"
              f"  ({m['writes_per_commit']} writes/commit)")
    print(f"  overhead (off/on throughput): {report['overhead_ratio']}x; signing: {report['signing']}")


if __name__ == "__main__":
    main()
