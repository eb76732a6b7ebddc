"""``nswgw conformance run|list|pki``: the onboarding kit's command line.

* ``run --profile P --target URL [--as sender|receiver] --report DIR [--settings kit.toml]``: run every
  case of a profile; writes ``junit.xml``, ``report.json`` and ``report.html`` into DIR; exit 0 only if
  every case passed, 1 otherwise (2 for a configuration error, with its code).
* ``list [--profile P]``: the cases with their prerequisite and predicate.
* ``pki DIR``: prepare the kit's certificates (valid, expired, revoked, wrong usage, other CA).
"""

from __future__ import annotations

import argparse
import asyncio
import json

from conformance.model import Outcome
from conformance.pki import prepare_pki
from conformance.registry import cases, get_profile, profiles
from conformance.report import write_reports
from conformance.runner import run_profile
from conformance.settings import RunOptions, load_settings

__all__ = ["register"]


def cmd_run(args: argparse.Namespace) -> int:
    get_profile(args.profile)
    settings = load_settings(args.settings, token=args.token, pki=args.pki)
    options = RunOptions(
        target=args.target or "",
        role=args.role,
        settings=settings,
        listen_host=args.listen_host,
        listen_port=args.listen_port,
        wait=args.wait,
        case_timeout=args.case_timeout,
    )
    only = tuple(args.case or ())
    report = asyncio.run(run_profile(args.profile, options, only=only))
    paths = write_reports(report, args.report)
    if args.json:
        print(
            json.dumps(
                report.to_dict()["counts"] | {"passed": report.passed, "reports": {k: str(v) for k, v in paths.items()}}
            )
        )
    else:
        not_run = [r.case.id for r in report.results if r.outcome is Outcome.NOT_RUN]
        for r in report.results:
            if r.outcome is Outcome.NOT_RUN:
                continue
            code = f" [{r.error_code}]" if r.error_code else ""
            reason = f": {r.reason}" if r.reason else ""
            print(f"{r.outcome.value:7} {r.case.id} {r.case.title}{code}{reason}")
        if not_run:  # one line, not the preflight's reason once per case (the reports carry it per case)
            print(f"NOT_RUN {len(not_run)} case(s), the preflight did not pass: {', '.join(not_run)}")
        c = report.counts()
        print(
            f"{report.profile}: {c['PASS']} passed, {c['FAIL']} failed, {c['ERROR']} errors, {c['NOT_RUN']} not run; "
            f"reports in {args.report}"
        )
    return 0 if report.passed else 1


def cmd_list(args: argparse.Namespace) -> int:
    selected = cases(args.profile) if args.profile else cases()
    if args.json:
        print(json.dumps([c.to_dict() for c in selected], ensure_ascii=False, indent=2))
        return 0
    current = None
    for c in selected:
        if c.profile != current:
            current = c.profile
            print(f"{current}: {get_profile(current).title}")
        print(
            f"  {c.id} [{c.role}, {c.severity.value}] {c.title}\n      Prerequisite: {c.prerequisite}\n"
            f"      Predicate: {c.predicate}"
        )
    return 0


def cmd_pki(args: argparse.Namespace) -> int:
    kit = prepare_pki(args.directory, tuple(args.party or ("nsw-gateway",)), key_kind=args.key_type, force=args.force)
    print(f"kit PKI in {kit.directory}: trust {kit.pki.root_cert_path} and {kit.pki.crl_path} for the kit's party")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    conf = subparsers.add_parser("conformance", help="the onboarding kit: prove a party speaks the protocols")
    sub = conf.add_subparsers(dest="conformance_command", metavar="ACTION", required=True)
    names = [p.name for p in profiles()]

    run = sub.add_parser("run", help="run a profile's cases against a party and write the reports")
    run.add_argument("--profile", required=True, choices=names)
    run.add_argument(
        "--target", help="base URL of the party's endpoint (kit as sender; as receiver, where asw-formd notifies)"
    )
    run.add_argument(
        "--as",
        dest="role",
        choices=("sender", "receiver"),
        default="sender",
        help="the kit's role: send to the target, or receive from the party",
    )
    run.add_argument("--report", required=True, metavar="DIR", help="directory for junit.xml, report.json, report.html")
    run.add_argument("--settings", metavar="FILE", help="the kit's settings (TOML): credentials, PKI, limits")
    run.add_argument("--token", help="override the settings' API token")
    run.add_argument("--pki", help="override the settings' PKI directory")
    run.add_argument("--case", action="append", metavar="ID", help="run only this case (repeatable)")
    run.add_argument("--listen-host", default="127.0.0.1", help="as receiver: address to listen on")
    run.add_argument("--listen-port", type=int, default=0, help="as receiver: port to listen on")
    run.add_argument("--wait", type=float, default=60.0, help="as receiver: seconds to wait for each message")
    run.add_argument("--case-timeout", type=float, default=120.0, help="seconds before a hung case is an ERROR")
    run.add_argument("--json", action="store_true", help="machine-readable summary and errors")
    run.set_defaults(handler=cmd_run)

    lst = sub.add_parser("list", help="list the cases (id, prerequisite, predicate)")
    lst.add_argument("--profile", choices=names)
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(handler=cmd_list)

    pki = sub.add_parser("pki", help="prepare the kit's certificates (valid, expired, revoked, wrong usage, other CA)")
    pki.add_argument("directory")
    pki.add_argument("--party", action="append", help="also issue a certificate for this party (repeatable)")
    pki.add_argument("--key-type", default="rsa2048", choices=("rsa2048", "rsa3072", "p256", "p384"))
    pki.add_argument("--force", action="store_true", help="replace an existing PKI in DIRECTORY")
    pki.set_defaults(handler=cmd_pki)
