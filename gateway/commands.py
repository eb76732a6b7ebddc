"""``nswgw serve``, ``nswgw check-config``, ``nswgw dlq list|replay``, ``nswgw log verify`` (and ``nswgw demo``).

``check-config`` validates a configuration file without starting anything: every mistake (adapter and
endpoint options included) is listed in one ``CONFIG_INVALID`` with its dotted field path, exit 2.

Every command takes ``--config FILE`` (default ``nswgw.toml``). ``dlq`` and
``log`` open the store next to a running gateway safely (SQLite WAL allows
it); they never touch the running gateway's leases.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import signal
import sys
import time
from collections.abc import Sequence

from gateway.config import Config, load_config
from gateway.delivery import replay
from gateway.journal import JournalEntry, verify_chain
from gateway.store import Store, store_from_settings

__all__ = ["register", "main"]

SWITCH_INTERVAL = 0.001
"""Seconds a thread may hold the GIL while another waits for it, in ``nswgw serve`` (Python's default: 0.005)."""


def _config(args: argparse.Namespace) -> Config:
    return load_config(args.config)


def _store(config: Config) -> Store:
    return store_from_settings(config.store)


# ---------------------------------------------------------------------------- check-config


def cmd_check_config(args: argparse.Namespace) -> int:
    config = _config(args)
    summary = {
        "config": str(args.config),
        "valid": True,
        "parties": sorted(config.parties),
        "destinations": {name: dest.adapter for name, dest in config.destinations.items()},
        "inbound": {name: inbound.endpoint for name, inbound in config.inbound.items()},
    }
    if args.json:
        print(json.dumps(summary))
    else:
        print(
            f"{args.config}: valid ({len(config.parties)} parties, {len(config.destinations)} destinations, "
            f"{len(config.routes)} routes, {len(config.inbound)} inbound endpoints)"
        )
    return 0


# ---------------------------------------------------------------------------- serve


async def _serve(config: Config) -> None:
    from gateway.api import Gateway

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with Gateway(config) as gw:
        # Everything built at start (modules, config, schemas, key material) stays: keep it out of the
        # cyclic collector's way, so that full collections under load scan only what traffic created.
        gc.collect()
        gc.freeze()
        # Signature work runs in threads; the event loop must get the GIL back quickly to answer the
        # database and the partners (the default 5 ms hand-over shows up directly as queueing latency).
        sys.setswitchinterval(SWITCH_INTERVAL)
        weakened = gw.config.weakened
        print(f"nswgw listening on {gw.url}" + (f" (weakened: {', '.join(weakened)})" if weakened else ""), flush=True)
        await stop.wait()
    print("nswgw stopped", flush=True)


def cmd_serve(args: argparse.Namespace) -> int:
    config = _config(args)
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    if overrides:
        config = config.model_copy(update={"gateway": config.gateway.model_copy(update=overrides)})
    asyncio.run(_serve(config))
    return 0


# ---------------------------------------------------------------------------- dlq


async def _dlq_list(config: Config, destination: str | None) -> list[dict[str, object]]:
    async with _store(config) as store:
        dead = await store.dead_letters(destination=destination)
    return [
        {
            "id": d.message_id,
            "destination": d.destination,
            "sender": d.sender,
            "document_type": d.document_type,
            "attempts": d.attempts,
            "error": (d.last_error or {}).get("code"),
            "detail": (d.last_error or {}).get("message"),
        }
        for d in dead
    ]


def cmd_dlq_list(args: argparse.Namespace) -> int:
    rows = asyncio.run(_dlq_list(_config(args), args.destination))
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
        return 0
    if not rows:
        print("dead-letter queue is empty")
        return 0
    print(f"{'id':34} {'destination':12} {'attempts':>8}  error")
    for r in rows:
        print(f"{r['id']!s:34} {r['destination']!s:12} {r['attempts']!s:>8}  {r['error']}: {r['detail']}")
    return 0


async def _dlq_replay(config: Config, destination: str | None, message_id: str | None) -> int:
    async with _store(config) as store:
        return len(await replay(store, config, now=time.time(), destination=destination, message_id=message_id))


def cmd_dlq_replay(args: argparse.Namespace) -> int:
    n = asyncio.run(_dlq_replay(_config(args), args.destination, args.message))
    print(f"replayed {n} message(s)")
    return 0


# ---------------------------------------------------------------------------- log


async def _journal(config: Config) -> list[JournalEntry]:
    entries: list[JournalEntry] = []
    async with _store(config) as store:
        while True:
            page = await store.journal(after=entries[-1].seq if entries else 0)
            if not page:
                break
            entries.extend(page)
    return entries


def cmd_log_verify(args: argparse.Namespace) -> int:
    report = verify_chain(asyncio.run(_journal(_config(args))))
    if args.json:
        print(
            json.dumps(
                {
                    "ok": report.ok,
                    "entries": report.entries,
                    "head_seq": report.head_seq,
                    "head_hash": report.head_hash,
                    "problems": [str(p) for p in report.problems],
                }
            )
        )
    elif report.ok:
        print(f"message log OK: {report.entries} entries, head {report.head_seq} {report.head_hash}")
    else:
        print(f"message log BROKEN: {len(report.problems)} problem(s) in {report.entries} entries", file=sys.stderr)
        for p in report.problems:
            print(f"  {p}", file=sys.stderr)
    return 0 if report.ok else 1


# ---------------------------------------------------------------------------- registration


def register(subparsers: argparse._SubParsersAction) -> None:
    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", default="nswgw.toml", help="configuration file (TOML)")
        p.add_argument("--json", action="store_true", help="machine-readable output and errors")

    serve = subparsers.add_parser("serve", help="run the gateway (HTTP API and delivery workers)")
    common(serve)
    serve.add_argument("--host", help="override [gateway].host")
    serve.add_argument("--port", type=int, help="override [gateway].port (0: any free port)")
    serve.set_defaults(handler=cmd_serve)

    check = subparsers.add_parser(
        "check-config", help="validate the configuration (options included); list every mistake, exit 2"
    )
    common(check)
    check.set_defaults(handler=cmd_check_config)

    dlq = subparsers.add_parser("dlq", help="the dead-letter queue")
    dlq_sub = dlq.add_subparsers(dest="dlq_command", metavar="ACTION", required=True)
    lst = dlq_sub.add_parser("list", help="list dead letters")
    common(lst)
    lst.add_argument("--destination")
    lst.set_defaults(handler=cmd_dlq_list)
    rep = dlq_sub.add_parser("replay", help="send dead letters again (same message id, fresh attempts and TTL)")
    common(rep)
    rep.add_argument("--destination")
    rep.add_argument("--message", help="only this gateway message id")
    rep.set_defaults(handler=cmd_dlq_replay)

    log = subparsers.add_parser("log", help="the tamper-evident message log")
    log_sub = log.add_subparsers(dest="log_command", metavar="ACTION", required=True)
    ver = log_sub.add_parser("verify", help="check the hash chain; exit 1 if any entry was edited or removed")
    common(ver)
    ver.set_defaults(handler=cmd_log_verify)


def main(argv: Sequence[str] | None = None) -> int:
    """Run only the gateway's commands (``python -m gateway.commands ...``)."""
    from gateway.cli import report_error
    from gateway.errors import NswError

    parser = argparse.ArgumentParser(prog="nswgw")
    register(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except NswError as exc:
        report_error(exc, as_json=getattr(args, "json", False))
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
