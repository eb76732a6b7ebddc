"""``nswgw``: the gateway's command line.

Each package contributes its sub-commands through a ``register(subparsers)``
function in its ``cli`` module, listed in :data:`COMMAND_MODULES`. A command
handler returns the process exit code. Any :class:`~gateway.errors.NswError`
escaping a handler is printed as ``CODE: message`` on stderr with exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from gateway.errors import ConfigError, NswError

__all__ = ["main", "build_parser", "COMMAND_MODULES", "read_input", "write_output", "report_error"]

COMMAND_MODULES: tuple[str, ...] = (
    "signing.cli",
    "gateway.commands",
    "gateway.reference_cli",
    "gateway.evidence",
    "mappings.cli",
    "conformance.cli",
    "gateway.db",
    "gateway.dev.partner",
    "gateway.dev.demo",
    "signing.dev.keys_cli",
    "signing.dev.bench",
)
"""Modules whose ``register(subparsers)`` adds sub-commands."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nswgw",
        description="National Single Window interoperability gateway",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def read_input(path: str, *, field: str = "IN") -> bytes:
    """The bytes of a command's input file (``-`` for stdin); CONFIG_INVALID naming it when unreadable."""
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}", field=field) from exc


def write_output(path: str | None, data: bytes, *, field: str = "OUT") -> None:
    """Write a command's output (``-`` or None for stdout); CONFIG_INVALID naming it when unwritable."""
    if path in (None, "-"):
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    try:
        Path(path).write_bytes(data)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}", field=field) from exc


def report_error(exc: NswError, *, as_json: bool = False) -> None:
    """Print a coded error the way every command does."""
    if as_json:
        print(json.dumps(exc.to_dict(), ensure_ascii=False), file=sys.stderr)
    else:
        where = f" ({exc.field})" if exc.field else ""
        print(f"{exc.code}{where}: {exc.message} [incident {exc.incident_id}]", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except NswError as exc:
        report_error(exc, as_json=getattr(args, "json", False))
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
