"""``nswgw db upgrade|status``: schema migrations of the PostgreSQL store.

``nswgw db upgrade --dsn postgresql://...`` (or ``--config FILE`` with ``[store] kind = "postgresql"``)
applies the pending migrations of :mod:`gateway.store.migrations`, each once, in order; running it from
several nodes at once is safe. ``nswgw db status`` prints the database's version and the version this
gateway needs (exit 1 while behind). A gateway refuses to start while its database is behind
(``STORE_SCHEMA_OUTDATED``).
"""

from __future__ import annotations

import argparse
import asyncio
import json

from gateway.errors import ConfigError
from gateway.store import migrations
from gateway.store.postgres import redact, schema_version, upgrade_schema

__all__ = ["register"]


def _dsn(args: argparse.Namespace) -> str:
    if args.dsn:
        dsn = str(args.dsn)
    else:
        from gateway.config import load_config

        store = load_config(args.config).store
        if store.kind != "postgresql" or not store.dsn:
            raise ConfigError(
                f'{args.config}: [store] is not kind = "postgresql" with a dsn; nothing to migrate'
                " (the SQLite store creates its schema itself)",
                field="store.kind",
            )
        dsn = str(store.dsn)
    if not dsn.startswith(("postgresql://", "postgres://")):
        raise ConfigError("--dsn must be a postgresql:// connection string", field="dsn")
    return dsn


def cmd_upgrade(args: argparse.Namespace) -> int:
    dsn = _dsn(args)
    applied = asyncio.run(upgrade_schema(dsn))
    if args.json:
        print(json.dumps({"store": redact(dsn), "applied": [m.version for m in applied], "version": migrations.LATEST}))
    elif applied:
        for m in applied:
            print(f"applied {m.version:04d} {m.name}")
        print(f"{redact(dsn)}: schema at version {migrations.LATEST}")
    else:
        print(f"{redact(dsn)}: schema already at version {migrations.LATEST}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    dsn = _dsn(args)
    version = asyncio.run(schema_version(dsn))
    todo = migrations.pending(version)
    if args.json:
        print(
            json.dumps(
                {
                    "store": redact(dsn),
                    "version": version,
                    "needed": migrations.LATEST,
                    "pending": [m.version for m in todo],
                }
            )
        )
    else:
        print(
            f"{redact(dsn)}: schema version {version}, this gateway needs {migrations.LATEST}"
            + (f"; pending: {', '.join(f'{m.version:04d} {m.name}' for m in todo)}" if todo else "")
        )
    return 1 if todo else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    db = subparsers.add_parser("db", help="schema migrations of the PostgreSQL store")
    sub = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    for name, handler, text in (
        ("upgrade", cmd_upgrade, "apply pending schema migrations"),
        ("status", cmd_status, "show the schema version (exit 1 while behind)"),
    ):
        p = sub.add_parser(name, help=text)
        where = p.add_mutually_exclusive_group()
        where.add_argument("--config", default="nswgw.toml", help="configuration file (TOML) with [store] dsn")
        where.add_argument("--dsn", help="postgresql://USER@HOST:PORT/DB[?search_path=SCHEMA]")
        p.add_argument("--json", action="store_true", help="machine-readable output and errors")
        p.set_defaults(handler=handler)
