"""Multi-node PostgreSQL scaling of the journal: gateway and PostgreSQL CPU per message at 1, 2 and 4 nodes.

    .venv/bin/python benchmarks/pg_journal.py [--messages 600] [--rounds 2] [--modes sealed,inline]
        [--json out.json]

Each case is :func:`run_suite.run_case` (real ``nswgw serve`` nodes on one fresh schema of the database at
``--dsn``, the suite's 8 KB signed e-C/O, a closed loop of ``--concurrency`` submissions round-robin over the
nodes). The journal mode (``[store] journal``: ``sealed``, entries chained after commit by one sealer at a time;
``inline``, chained at commit under the journal lock) is written into each case's configuration. The cases run
**interleaved** (every mode at 1 node, then every mode at 2 nodes, ...; ``--rounds`` times), so the modes are
compared within the same minutes of a shared machine.

``--store-only`` runs the store alone instead (``--store-messages`` per case): one process per node, each a
:class:`~gateway.store.postgres.PostgresStore` whose loops (``--concurrency`` in all, spread over the nodes) accept
an 8 KB message and then claim and acknowledge one delivery; no HTTP, no crypto. Its CPU is the node processes', and
PostgreSQL's is that of the nodes' own backends (by ``application_name``), so other work on the server is left out.

Printed per mode: the median over the rounds of gateway CPU ms/msg (all node processes) and PostgreSQL CPU ms/msg
(every ``postgres`` process, from ``/proc``), msg/s, and the growth ratios 2/1 and 4/1 of both CPU figures (the
goal: gateway at most 1.10, PostgreSQL at most 1.20 at 4 nodes), with the load average before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import run_suite  # noqa: E402


def _with_journal_mode(mode: str) -> None:
    """Make :func:`run_suite.write_config` write ``journal = MODE`` into ``[store]`` (``default``: as it is)."""
    original = _ORIGINAL_WRITE_CONFIG

    def write_config(directory: Path, store: str, dsn: str | None, receiver_port: int, verification: str) -> Path:
        path = original(directory, store, dsn, receiver_port, verification)
        if mode != "default":
            text = path.read_text()
            path.write_text(text.replace("[store]\n", f'[store]\njournal = "{mode}"\n', 1))
        return path

    run_suite.write_config = write_config


_ORIGINAL_WRITE_CONFIG = run_suite.write_config


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    nodes = [int(n) for n in args.nodes.split(",")]
    per_case = run_suite.messages_per_case(args.messages)
    docs: dict[str, list[bytes]] = {"8KB": []}
    floor = {"8KB": 0.0}
    if not args.store_only:
        docs, floor = run_suite.make_documents({"8KB": 8 * 1024}, per_case * len(modes) * len(nodes) * args.rounds)
    loads = [os.getloadavg()[0]]
    runs: list[dict[str, Any]] = []
    # each case takes its own slice of the documents (a document is never submitted twice)
    offset = 0
    with tempfile.TemporaryDirectory(prefix="nswgw-pgj-") as tmp:
        for r in range(args.rounds):
            for n in nodes:
                for mode in modes:
                    _with_journal_mode(mode)
                    work = Path(tmp) / f"r{r}-{mode}"
                    work.mkdir(exist_ok=True)
                    chunk = docs["8KB"][offset : offset + per_case]
                    offset += per_case
                    if args.store_only:
                        result = await _store_case(args, mode, n, f"r{r}{mode}{n}")
                    else:
                        result = await run_suite.run_case("postgresql", n, "8KB", chunk, floor["8KB"], args, work)
                    result["mode"], result["round"], result["load_1min"] = mode, r, os.getloadavg()[0]
                    runs.append(result)
                    print(
                        f"  round {r} {mode} x{n}: {result['msg_per_s']} msg/s, gateway {result['cpu_ms_per_msg']}"
                        f" ms/msg, PG {result['postgres_cpu_ms_per_msg']} ms/msg, load {result['load_1min']:.2f}"
                        + (f", {result['writes_per_commit']} writes/commit" if "writes_per_commit" in result else ""),
                        file=sys.stderr,
                        flush=True,
                    )
    loads.append(os.getloadavg()[0])
    summary: dict[str, Any] = {}
    for mode in modes:
        rows = {}
        for n in nodes:
            mine = [x for x in runs if x["mode"] == mode and x["nodes"] == n]
            rows[n] = {
                "msg_per_s": round(statistics.median(x["msg_per_s"] for x in mine), 1),
                "gateway_cpu_ms_per_msg": round(statistics.median(x["cpu_ms_per_msg"] for x in mine), 3),
                "postgres_cpu_ms_per_msg": round(statistics.median(x["postgres_cpu_ms_per_msg"] for x in mine), 3),
            }
        one = rows[nodes[0]]
        growth = {
            n: {
                "gateway": round(rows[n]["gateway_cpu_ms_per_msg"] / one["gateway_cpu_ms_per_msg"], 3),
                "postgres": round(rows[n]["postgres_cpu_ms_per_msg"] / one["postgres_cpu_ms_per_msg"], 3),
            }
            for n in nodes
        }
        summary[mode] = {"by_nodes": rows, "growth_over_1_node": growth}
    return {"load_average_1min": {"before": loads[0], "after": loads[1]}, "summary": summary, "runs": runs}


# ---------------------------------------------------------------------------- --store-only: the store alone


def _store_node(
    dsn: str, name: str, mode: str, workers: int, messages: int, ready: Any, go: Any, done: Any, out: Any
) -> None:
    """One node process: a :class:`PostgresStore` (``journal = mode``) whose ``workers`` loops each accept one 8 KB
    message and then claim and acknowledge one delivery, ``messages`` in all; reports its CPU seconds."""
    import time

    from gateway.model import Delivery, Message, PartyId, SubmissionAck, SubmissionEnvelope
    from gateway.store.postgres import PostgresStore

    async def run() -> None:
        store = PostgresStore(dsn, pool_size=8, node_name=name, journal=mode)
        await store.open()
        left = [messages]

        async def worker(w: int) -> None:
            owner = f"{name}-{w}"
            while left[0] > 0:
                left[0] -= 1
                now = time.time()
                mid = f"{name}-{left[0]}"
                env = SubmissionEnvelope(sender=PartyId("MOIT"), message_id=mid, document_type="eco.form_d")
                m = Message.receive(env, at=now).verify(at=now).map(at=now).enqueue(at=now)
                body = b"<doc>" + os.urandom(4096).hex().encode() + b"</doc>"
                d = Delivery.create(m, "TH", body, content_type="application/xml", at=now, ttl=3600.0)
                await store.accept(m, body, [d], SubmissionAck(m.id, "MOIT", mid, m.state, now, ("TH",)))
                # a fresh clock: another worker's delivery is due from the moment it was accepted
                while not (got := await store.claim("TH", owner=owner, limit=1, now=time.time() + 1, lease=60)):
                    await asyncio.sleep(0.001)
                await store.record(got[0].delivered(at=now).acknowledged(b"<r/>", at=now), owner=owner, now=now)

        ready.put(name)
        await asyncio.to_thread(go.wait)
        cpu0, t0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(workers)))
        out.put((name, time.process_time() - cpu0, time.perf_counter() - t0, store.commit_stats))
        await asyncio.to_thread(done.wait)  # the parent reads the backends' CPU before the connections close
        await store.close()

    asyncio.run(run())


async def _store_case(args: argparse.Namespace, mode: str, nodes: int, tag: str) -> dict[str, Any]:
    import multiprocessing

    import asyncpg

    schema, dsn = await run_suite.create_schema(args.dsn, "nswgw_pgj")
    ctx = multiprocessing.get_context("spawn")
    ready, out, go, done = ctx.Queue(), ctx.Queue(), ctx.Event(), ctx.Event()
    names = [f"pgj-{tag}-{i}" for i in range(nodes)]
    per_node = args.store_messages // nodes
    procs = [
        ctx.Process(
            target=_store_node,
            args=(dsn, n, mode, max(1, args.concurrency // nodes), per_node, ready, go, done, out),
        )
        for i, n in enumerate(names)
    ]
    try:
        for p in procs:
            p.start()
        for _ in procs:
            await asyncio.to_thread(ready.get, True, 120)
        before = run_suite._postgres_cpu()
        go.set()
        results = [await asyncio.to_thread(out.get, True, 600) for _ in procs]
        admin = await asyncpg.connect(args.dsn)
        try:
            pids = [
                r[0]
                for r in await admin.fetch("SELECT pid FROM pg_stat_activity WHERE application_name = ANY($1)", names)
            ]
        finally:
            await admin.close()
        after = run_suite._postgres_cpu()
        pg = sum(after.get(pid, 0.0) - before.get(pid, 0.0) for pid in pids)
        done.set()
        for p in procs:
            await asyncio.to_thread(p.join, 60)
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
        await run_suite.drop_schema(args.dsn, schema)
    total = per_node * nodes
    wall = max(r[2] for r in results)
    batches = sum(r[3][0] for r in results)
    return {
        "mode": mode,
        "nodes": nodes,
        "messages": total,
        "msg_per_s": round(total / wall, 1),
        "cpu_ms_per_msg": round(sum(r[1] for r in results) / total * 1000, 3),
        "postgres_cpu_ms_per_msg": round(pg / total * 1000, 3),
        "writes_per_commit": round(sum(r[3][1] for r in results) / max(1, batches), 2),
    }


def print_report(report: dict[str, Any]) -> None:
    load = report["load_average_1min"]
    print(f"\nPostgreSQL journal scaling, load average (1 min) {load['before']:.2f} before, {load['after']:.2f} after")
    print(f"{'mode':8} {'nodes':>5} {'msg/s':>8} {'gw ms/msg':>10} {'PG ms/msg':>10} {'gw x1':>6} {'PG x1':>6}")
    for mode, s in report["summary"].items():
        for n, row in s["by_nodes"].items():
            g = s["growth_over_1_node"][n]
            print(
                f"{mode:8} {n:>5} {row['msg_per_s']:>8} {row['gateway_cpu_ms_per_msg']:>10} "
                f"{row['postgres_cpu_ms_per_msg']:>10} {g['gateway']:>6} {g['postgres']:>6}"
            )
    print("gw x1 / PG x1: CPU per message relative to one node of the same mode (goal at 4 nodes: <= 1.10 / 1.20)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--messages", type=int, default=600, help="messages per peak run")
    p.add_argument("--concurrency", type=int, default=32, help="submissions in flight in the peak run")
    p.add_argument("--rounds", type=int, default=2, help="times every (nodes, mode) case is run, interleaved")
    p.add_argument("--nodes", default="1,2,4", help="node counts, comma-separated (the first is the baseline)")
    p.add_argument("--modes", default="sealed,inline", help="[store] journal modes, comma-separated ('default')")
    p.add_argument("--dsn", default=os.environ.get("NSWGW_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test"))
    p.add_argument("--verification", default="signature", choices=["signature", "well-formed", "off"])
    p.add_argument("--json", default=None, help="write the results here")
    p.add_argument(
        "--store-only",
        action="store_true",
        help="node processes running the store alone (accept, claim, acknowledge; no HTTP, no crypto); PostgreSQL"
        " CPU of the nodes' own backends only",
    )
    p.add_argument("--store-messages", type=int, default=4000, help="--store-only: messages per case, all nodes")
    args = p.parse_args(argv)
    report = asyncio.run(main_async(args))
    print_report(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
