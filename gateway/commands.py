"""``nswgw serve``, ``check-config``, ``dlq list|replay``, ``log verify``, ``archive [verify]``, ``console-url`` (and
``demo``).

``log verify`` walks the whole message log: the hash chain, the digest of every stored payload and receipt
against its entry, the anchors of ``[journal] anchor`` (entries cut off the end) and the database's own
integrity check; each problem is listed, exit 1.

``archive`` moves finished messages past their retention into signed bundles in ``[retention] archive_dir`` and
prunes them and their journal prefix; ``archive verify BUNDLE... [--trust CERT]`` checks bundles offline
(signature, member digests, journal chain and links, payloads against their entries), each problem coded,
exit 1 (gateway/archive.py, gateway/README.md "Retention and archiving").

``check-config`` validates a configuration file without starting anything: every mistake (adapter and
endpoint options included) is listed in one ``CONFIG_INVALID`` with its dotted field path, exit 2.

Every command takes ``--config FILE`` (default ``nswgw.toml``). ``dlq`` and
``log`` open the store next to a running gateway safely (SQLite WAL allows
it); they never touch the running gateway's leases.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import json
import logging
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from gateway.config import Config, load_config
from gateway.errors import NswError
from gateway.journal import JournalReport, read_anchors
from gateway.store import Store, store_from_settings
from gateway.timestamps import TimestampInfo, TimestampReport

__all__ = ["register", "main"]

log = logging.getLogger("nswgw.cli")

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


async def _serve(config: Config, source: tuple[Path, Config] | None = None) -> None:
    """Serve until SIGTERM or SIGINT; SIGHUP reloads ``source`` (the file and what it held at start) as
    ``POST /v1/admin/reload`` does, recorded in the journal as operator ``signal:SIGHUP``."""
    from gateway.actions import SIGNAL_OPERATOR
    from gateway.admin import reload
    from gateway.api import Gateway
    from gateway.memory import release_large_buffers

    # large short-lived buffers (a big submission's copies) go back to the system when freed
    release_large_buffers()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with Gateway(config) as gw:
        gw.config_file = source

        reloads: set[asyncio.Task[None]] = set()

        async def reload_on_signal() -> None:
            try:
                result = await reload(gw, SIGNAL_OPERATOR)
            except NswError as exc:
                log.warning(
                    "SIGHUP: reload refused, the running configuration is kept: %s",
                    exc,
                    extra={"code": exc.code, "field": exc.field, "incident_id": exc.incident_id},
                )
            else:
                print(f"nswgw reloaded {result.config}: {', '.join(result.changed) or 'nothing changed'}", flush=True)

        def hangup() -> None:
            task = loop.create_task(reload_on_signal(), name="reload")
            reloads.add(task)
            task.add_done_callback(reloads.discard)

        loop.add_signal_handler(signal.SIGHUP, hangup)
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
        await asyncio.gather(*reloads)  # a reload under way finishes (and is journaled) before the store closes
    print("nswgw stopped", flush=True)


def cmd_serve(args: argparse.Namespace) -> int:
    from gateway.logs import configure_logging

    loaded = config = _config(args)
    overrides: dict[str, object] = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    logging_overrides = {k: v for k, v in (("level", args.log_level), ("format", args.log_format)) if v is not None}
    if logging_overrides:
        overrides["logging"] = config.gateway.logging.model_copy(update=logging_overrides)
    if overrides:
        config = config.model_copy(update={"gateway": config.gateway.model_copy(update=overrides)})
    configure_logging(config.gateway.logging)
    asyncio.run(_serve(config, (Path(args.config), loaded)))
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
    """Replay as :func:`gateway.actions.replay_dead_letters`, recorded in the journal as operator
    ``cli:<OS user>``."""
    from gateway.actions import cli_operator, replay_dead_letters

    async with _store(config) as store:
        done, _ = await replay_dead_letters(
            store,
            config,
            now=time.time(),
            operator=cli_operator(),
            ids=[message_id] if message_id is not None else None,
            destination=destination,
        )
    return len(done)


def cmd_dlq_replay(args: argparse.Namespace) -> int:
    n = asyncio.run(_dlq_replay(_config(args), args.destination, args.message))
    print(f"replayed {n} message(s)")
    return 0


# ---------------------------------------------------------------------------- log


async def _log_verify_timestamps(config: Config, store: Store) -> TimestampReport | None:
    """Every stored RFC 3161 token verified against its entry (``None``: no ``[journal.timestamp]`` and no tokens)."""
    from gateway.journal import JournalProblem
    from gateway.timestamps import verify_stored_timestamps
    from signing.keys import load_certificates

    settings = config.journal.timestamp
    if settings is None:
        stored = await store.timestamps()
        if not stored:
            return None
        problems = tuple(
            JournalProblem(s.seq, "timestamp-unverified (no [journal.timestamp] anchors configured)") for s in stored
        )
        return TimestampReport(len(stored), {}, problems)
    tsa_anchors = [c for path in settings.anchors for c in load_certificates(path)]
    entries: dict[int, str] = {}
    after = (await store.journal_base()).seq
    while page := await store.journal(after=after, limit=10_000):
        entries.update((e.seq, e.hash) for e in page)
        after = page[-1].seq
    return await verify_stored_timestamps(store, tsa_anchors, entries)


async def _log_verify(
    config: Config, anchor: str | None, evidence: bool
) -> tuple[JournalReport, TimestampReport | None]:
    from gateway.audit import audit_store

    path = anchor or config.journal.anchor
    anchors = read_anchors(path) if path is not None else []
    async with _store(config) as store:
        base = await store.journal_base()
        report = await audit_store(
            store, anchors=anchors, evidence=evidence, integrity=evidence, start=(base.seq, base.hash)
        )
        stamps = await _log_verify_timestamps(config, store)
    if stamps is None:
        return report, None
    return dataclasses.replace(report, problems=report.problems + stamps.problems), stamps


def cmd_log_verify(args: argparse.Namespace) -> int:
    config = _config(args)
    report, stamps = asyncio.run(_log_verify(config, args.anchor, not args.chain_only))
    if args.json:
        print(
            json.dumps(
                {
                    "ok": report.ok,
                    "entries": report.entries,
                    "head_seq": report.head_seq,
                    "head_hash": report.head_hash,
                    "anchored": bool(args.anchor or config.journal.anchor),
                    "problems": [str(p) for p in report.problems],
                    "timestamps": None
                    if stamps is None
                    else {
                        "tokens": stamps.tokens,
                        "existed_by": {
                            str(seq): {"gen_time": i.gen_time.isoformat(), "serial": i.serial, "tsa": i.tsa_subject}
                            for seq, i in stamps.covered.items()
                        },
                    },
                }
            )
        )
    elif report.ok:
        checked = "chain" if args.chain_only else "chain, evidence digests, store integrity"
        anchored = ", anchors" if args.anchor or config.journal.anchor else " (no anchor file: truncation unchecked)"
        print(
            f"message log OK: {report.entries} entries, head {report.head_seq} {report.head_hash};"
            f" checked {checked}{anchored}"
        )
        if stamps is not None:
            _print_existed_by(stamps)
    else:
        print(f"message log BROKEN: {len(report.problems)} problem(s) in {report.entries} entries", file=sys.stderr)
        for p in report.problems:
            print(f"  {p}", file=sys.stderr)
    return 0 if report.ok else 1


def _print_existed_by(stamps: TimestampReport) -> None:
    """One line per run of consecutive entries covered by the same earliest token."""
    print(f"timestamps: {stamps.tokens} token(s) verified")
    runs: list[tuple[int, int, TimestampInfo]] = []
    for seq, info in sorted(stamps.covered.items()):
        if runs and runs[-1][2] == info and runs[-1][1] == seq - 1:
            runs[-1] = (runs[-1][0], seq, info)
        else:
            runs.append((seq, seq, info))
    for first, last, info in runs:
        which = f"entry {first}" if first == last else f"entries {first}-{last}"
        print(f"  {which} existed by {info.gen_time.isoformat()} (TSA serial {info.serial}, {info.tsa_subject})")


# ---------------------------------------------------------------------------- archive


def _instant(text: str) -> float:
    from datetime import UTC, datetime

    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 instant: {text!r}") from exc
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


async def _archive(config: Config, before: float | None, dry_run: bool) -> list[object]:
    from gateway.actions import cli_operator
    from gateway.archive import ArchiveRun, archive
    from gateway.journal import OperatorAction
    from gateway.security import key_ring

    signer = key_ring(config)
    runs: list[ArchiveRun] = []
    async with _store(config) as store:
        while True:
            run = await archive(store, config, signer, now=time.time(), before=before, dry_run=dry_run)
            if run.bundle is None:
                break
            runs.append(run)
            if dry_run:
                break
        if runs and not dry_run:  # once, after the rounds: a new entry would hold back the next round's prefix
            action = OperatorAction.new(
                cli_operator(),
                "archive",
                at=time.time(),
                targets=[{"bundle": str(r.bundle)} for r in runs],
                detail={
                    "messages": sum(r.messages for r in runs),
                    "journal": f"{runs[0].first_seq}..{runs[-1].last_seq}",
                    "before": before,
                },
            )
            await store.record_operator_action(action)
    return list(runs)


def cmd_archive(args: argparse.Namespace) -> int:
    from gateway.archive import ArchiveRun

    runs = [r for r in asyncio.run(_archive(_config(args), args.before, args.dry_run)) if isinstance(r, ArchiveRun)]
    if args.json:
        print(json.dumps([{**r.__dict__, "bundle": str(r.bundle), "dry_run": args.dry_run} for r in runs]))
        return 0
    if not runs:
        print("nothing to archive")
    for run in runs:
        verb = "would write" if args.dry_run else ("pruned (bundle already written)" if run.reused else "archived")
        print(
            f"{verb} {run.bundle}: {run.messages} message(s), journal entries {run.first_seq}..{run.last_seq}"
            f" ({run.entries})"
        )
    return 0


def cmd_archive_verify(args: argparse.Namespace) -> int:
    from pathlib import Path

    from cryptography import x509

    from gateway.archive import verify_bundles
    from gateway.errors import ConfigError
    from gateway.security import key_ring

    trust: list[x509.Certificate] = []
    for path in args.trust or ():
        try:
            trust.extend(x509.load_pem_x509_certificates(Path(path).read_bytes()))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"trusted certificate {path} cannot be read: {exc}", field="--trust") from exc
    if not trust:
        if not Path(args.config).exists():
            raise ConfigError("give --trust CERT or a --config with the gateway's signing key", field="--trust")
        trust.append(key_ring(_config(args)).certificate)
    problems = verify_bundles([Path(b) for b in args.bundles], trust=trust)
    if args.json:
        print(json.dumps({"ok": not problems, "problems": [p.to_dict() for p in problems]}))
    elif not problems:
        print(f"archive OK: {len(args.bundles)} bundle(s)")
    else:
        print(f"archive BROKEN: {len(problems)} problem(s)", file=sys.stderr)
        for p in problems:
            print(f"  {p.code} {p.field}: {p}", file=sys.stderr)
    return 1 if problems else 0


# ---------------------------------------------------------------------------- console-url


async def console_link(
    config: Config, operator: str | None, base: str | None, *, now: Callable[[], float] = time.time
) -> tuple[str, str]:
    """A one-time console login link for ``operator`` (the only configured one when None), stored in the
    gateway's store so that the running gateway (any node) redeems it, expiring on ``now`` (the gateway's clock:
    the wall clock); the operator and the link."""
    from gateway.console.sessions import Sessions
    from gateway.errors import ConfigError

    if not config.operators:
        raise ConfigError("the configuration names no [operators.NAME]: nobody may log in", field="operators")
    if operator is None:
        if len(config.operators) > 1:
            raise ConfigError(
                f"name one of the operators with --operator: {', '.join(sorted(config.operators))}", field="--operator"
            )
        [operator] = config.operators
    elif operator not in config.operators:
        raise ConfigError(
            f"no operator {operator!r}; the operators are {', '.join(sorted(config.operators))}", field="--operator"
        )
    if base is None:
        scheme = "https" if config.gateway.tls is not None else "http"
        base = f"{scheme}://{config.gateway.host}:{config.gateway.port}"
    async with _store(config) as store:
        token = await Sessions(store, config.gateway.console, now=now).issue_link(operator)
    return operator, f"{base.rstrip('/')}/console/login?token={token}"


def cmd_console_url(args: argparse.Namespace) -> int:
    config = _config(args)
    operator, link = asyncio.run(console_link(config, args.operator, args.url))
    minutes = config.gateway.console.login_link_ttl / 60
    print(link)
    print(f"one-time login for operator {operator}, valid {minutes:g} min", file=sys.stderr)
    return 0


# ---------------------------------------------------------------------------- registration


def register(subparsers: argparse._SubParsersAction) -> None:
    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", default="nswgw.toml", help="configuration file (TOML)")
        p.add_argument("--json", action="store_true", help="machine-readable output and errors")

    serve = subparsers.add_parser("serve", help="run the gateway (HTTP API and delivery workers)")
    common(serve)
    serve.add_argument("--host", help="override [gateway].host")
    serve.add_argument("--port", type=int, help="override [gateway].port (0: any free port)")
    serve.add_argument(
        "--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="override [gateway.logging].level"
    )
    serve.add_argument("--log-format", choices=["json", "text"], help="override [gateway.logging].format")
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
    ver = log_sub.add_parser(
        "verify",
        help="check the hash chain, each entry's stored evidence, the anchors and the database; exit 1 on any problem",
    )
    common(ver)
    ver.add_argument("--anchor", help="the anchor file to check against (default: [journal] anchor)")
    ver.add_argument(
        "--chain-only", action="store_true", help="check only the chain and the anchors (not payloads nor the database)"
    )
    ver.set_defaults(handler=cmd_log_verify)

    arc = subparsers.add_parser(
        "archive",
        help="move finished messages older than their retention into a signed bundle in [retention] archive_dir,"
        " then prune them (and their journal prefix) from the store",
    )
    common(arc)
    arc.add_argument("--before", type=_instant, help="only messages received before this ISO 8601 instant")
    arc.add_argument("--dry-run", action="store_true", help="show what would be archived; write and prune nothing")
    arc.set_defaults(handler=cmd_archive)
    arc_sub = arc.add_subparsers(dest="archive_command", metavar="ACTION")
    averify = arc_sub.add_parser(
        "verify",
        help="check bundles: manifest signature and signer, member digests, journal chain and links, payload"
        " digests; exit 1 on any problem",
    )
    common(averify)
    averify.add_argument("bundles", nargs="+", metavar="BUNDLE")
    averify.add_argument(
        "--trust", action="append", help="PEM certificate the manifests must be signed with (default: [signing] key)"
    )
    averify.set_defaults(handler=cmd_archive_verify)

    link = subparsers.add_parser(
        "console-url", help="print a one-time login link to the operator console of the gateway of --config"
    )
    common(link)
    link.add_argument("--operator", help="the [operators.NAME] to log in as (default: the only one)")
    link.add_argument(
        "--url", help="the gateway's base URL as the browser reaches it (default: from [gateway] host, port, tls)"
    )
    link.set_defaults(handler=cmd_console_url)


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
