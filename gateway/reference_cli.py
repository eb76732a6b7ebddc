"""``nswgw reference load FILE`` and ``nswgw reference list``: the policy reference lists from the command line.

``load`` publishes a ``ReferenceList`` document (docs/reference-lists.md) as the next version of its list, in the
store the configuration names, as operator ``cli:<OS user>`` (:func:`gateway.reference.publish_by_operator`: a
``reference-publish`` action, an ``OPERATOR`` journal entry); a running gateway on that store loads it at its next
submission, uses it from the effective instant and announces it then (``reference_list_published``, once across
its nodes: :class:`gateway.reference.ReferenceData`).
``list`` prints every version.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from gateway.actions import cli_operator
from gateway.cli import read_input
from gateway.config import load_config
from gateway.reference import ReferenceVersion, iso, publish_by_operator
from gateway.store import store_from_settings

__all__ = ["register"]


async def _load(config_path: str, raw: bytes) -> tuple[ReferenceVersion, int]:
    from mappings.reference import read_reference_list

    config = load_config(config_path)
    draft = read_reference_list(raw)
    async with store_from_settings(config.store) as store:
        stored, entry = await publish_by_operator(
            store, draft, operator=cli_operator(), at=time.time(), parties=config.parties
        )
    return stored, entry.seq


async def _list(config_path: str) -> list[ReferenceVersion]:
    config = load_config(config_path)
    async with store_from_settings(config.store) as store:
        return await store.reference_versions()


def cmd_load(args: argparse.Namespace) -> int:
    stored, seq = asyncio.run(_load(args.config, read_input(args.file, field="FILE")))
    if args.json:
        print(json.dumps({**stored.to_dict(), "journal_seq": seq}))
    else:
        print(f"published {stored.label} ({len(stored.entries)} entries), effective from {iso(stored.effective_from)}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    versions = asyncio.run(_list(args.config))
    if args.json:
        print(json.dumps([v.to_dict() for v in versions]))
    for v in versions if not args.json else ():
        print(f"{v.label}\t{v.purpose}\t{iso(v.effective_from)}\t{v.digest[:16]}\t{v.publisher} ({v.via})")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    ref = subparsers.add_parser("reference", help="the policy reference lists (versioned, effective-dated)")
    sub = ref.add_subparsers(dest="reference_command", metavar="ACTION", required=True)
    for name, handler, text in (
        ("load", cmd_load, "publish a ReferenceList document as the next version of its list (journaled)"),
        ("list", cmd_list, "every version of every list"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("--config", default="nswgw.toml", help="configuration file (TOML)")
        p.add_argument("--json", action="store_true", help="machine-readable output and errors")
        if name == "load":
            p.add_argument("file", metavar="FILE", help="the ReferenceList document (- for stdin)")
        p.set_defaults(handler=handler)
