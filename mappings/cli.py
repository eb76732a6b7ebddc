"""``nswgw dictionary``, ``nswgw map`` and ``nswgw validate``.

* ``dictionary [--csv] [--mapping FORMAT] [-o FILE]``: the harmonized data dictionary (Markdown, or CSV)
  with WCO DM ids and the validation issue codes; with ``--mapping`` the declared mapping table of a format.
* ``map --from FORMAT --to FORMAT IN OUT``: read IN in one registered format, write OUT in another
  (``-`` is stdin/stdout). Exit 0; 1 with one ``path: [CODE] message`` line per issue on stderr when the
  message cannot be mapped.
* ``validate --format FORMAT IN [--json]``: read IN and check the harmonized rules. Exit 0 (prints ``OK``)
  or 1 with every coded issue.

* ``procedure scaffold --xsd FILE... --name NAME [--root ELEMENT] [-o DIR]``: a mapping-module skeleton
  from a ministry's XSDs (:mod:`mappings.scaffold`).

Unknown formats and unreadable XML escape as coded errors (exit 2, see :mod:`gateway.cli`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from gateway.cli import read_input, write_output
from gateway.errors import ValidationFailed, ValidationIssue
from mappings import dictionary, registry, scaffold

__all__ = ["register"]


def _report(issues: Sequence[ValidationIssue], as_json: bool) -> None:
    if as_json:
        print(json.dumps({"valid": False, "issues": [i.to_dict() for i in issues]}, ensure_ascii=False, indent=2))
        return
    for issue in issues:
        print(str(issue), file=sys.stderr)
    print(f"{len(issues)} issue(s)", file=sys.stderr)


def _mapping_markdown(name: str) -> str:
    fmt = registry.get(name)
    lines = [f"# Mapping table: {fmt.name}", "", fmt.description, "", "| native | harmonized |", "|---|---|"]
    lines.extend(f"| `{native}` | `{harmonized}` |" for native, harmonized in fmt.mapping_table())
    return "\n".join(lines) + "\n"


def _cmd_dictionary(args: argparse.Namespace) -> int:
    if args.mapping:
        text = _mapping_markdown(args.mapping)
    else:
        text = dictionary.to_csv() if args.csv else dictionary.to_markdown()
    write_output(args.output, text.encode("utf-8"))
    return 0


def _cmd_map(args: argparse.Namespace) -> int:
    source, target = registry.get(args.source), registry.get(args.target)
    try:
        out = target.emit(source.parse(read_input(args.input)))
    except ValidationFailed as exc:
        _report(exc.issues, False)
        return 1
    write_output(args.output, out)
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    fmt = registry.get(args.format)
    issues = fmt.validate(read_input(args.input))
    if issues:
        _report(issues, args.json)
        return 1
    print(json.dumps({"valid": True, "issues": []}) if args.json else "OK")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the mapping commands to ``nswgw``."""
    p = subparsers.add_parser("dictionary", help="print the harmonized data dictionary (WCO DM ids, issue codes)")
    p.add_argument("--csv", action="store_true", help="CSV instead of Markdown")
    p.add_argument("--mapping", metavar="FORMAT", help="print the mapping table of one format instead")
    p.add_argument("-o", "--output", default="-", help="output file (default: stdout)")
    p.set_defaults(handler=_cmd_dictionary)

    p = subparsers.add_parser("map", help="map a message from one format to another")
    p.add_argument("--from", dest="source", required=True, metavar="FORMAT", help="format of IN")
    p.add_argument("--to", dest="target", required=True, metavar="FORMAT", help="format of OUT")
    p.add_argument("input", metavar="IN", help="input file, - for stdin")
    p.add_argument("output", metavar="OUT", help="output file, - for stdout")
    p.set_defaults(handler=_cmd_map)

    p = subparsers.add_parser("validate", help="validate a message (exit 1 with every coded issue)")
    p.add_argument("--format", required=True, metavar="FORMAT", help="format of IN")
    p.add_argument("input", metavar="IN", help="input file, - for stdin")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=_cmd_validate)

    scaffold.register(subparsers)
