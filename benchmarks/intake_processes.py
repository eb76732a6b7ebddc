"""Threads against intake worker processes (``[gateway] intake_processes``) on the full path, in one run.

    .venv/bin/python benchmarks/intake_processes.py [--processes 0,2] [--threads 1,2,6] [--sizes 8192,102400]
        [--rounds 1]
        [--suite-json benchmarks/results.json] [--readme] [full_path.py options: --messages, --latency-messages ...]

Each round runs :func:`full_path.run` once per (size, processes), with intake in threads once per ``--threads``
value (``[gateway] cpu_threads``), the processes varying fastest, so that the cases compared sit next to each other
in time (the machine's load moves CPU time by 1.5x; each case carries its own floor, measured before and after it,
and its load average). Every result is an object of ``full_path.py``'s schema (``nswgw-full-path/1``, with
``intake_processes`` and ``cpu_threads``); ``--suite-json`` stores the list as ``full_path_cases`` in
``benchmarks/results.json`` (and the last default-configuration 8 KB case as ``full_path``), ``--readme`` rewrites
the README's full-path table from the list (:func:`full_path.readme_rows`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import full_path


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(full_path.ROOT))
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    full_path.add_arguments(p)
    p.add_argument("--processes", default="0,2", help="comma-separated intake_processes values to compare")
    p.add_argument(
        "--threads",
        default="",
        help="comma-separated cpu_threads values to compare with intake in threads (default: the gateway's)",
    )
    p.add_argument("--sizes", default="8192,102400", help="comma-separated document sizes in bytes")
    p.add_argument("--rounds", type=int, default=1, help="times to run the whole set, interleaved")
    p.add_argument("--json", default=None, help="write the list of results here")
    p.add_argument("--suite-json", default=None, help="store the list as full_path_cases in this results file")
    p.add_argument("--readme", action="store_true", help="regenerate the README's full-path table from the list")
    args = p.parse_args(argv)
    from gateway.config import GatewaySettings

    defaults = GatewaySettings()
    thread_counts = [int(n) for n in args.threads.split(",") if n] or [defaults.cpu_threads]
    cases: list[tuple[int, int]] = []  # (intake_processes, cpu_threads): every thread count, then each pool
    for processes in (int(n) for n in args.processes.split(",")):
        cases += [(0, t) for t in thread_counts] if processes == 0 else [(processes, defaults.cpu_threads)]
    results: list[dict[str, Any]] = []
    for _ in range(args.rounds):
        for size in (int(s) for s in args.sizes.split(",")):
            for processes, threads in cases:
                overrides = {"size": size, "intake_processes": processes, "cpu_threads": threads}
                result = asyncio.run(full_path.run(argparse.Namespace(**{**vars(args), **overrides})))
                print("\n".join(full_path.table_lines(result)), flush=True)
                results.append(result)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    if args.suite_json:
        suite = Path(args.suite_json)
        report = json.loads(suite.read_text()) if suite.exists() else {}
        report["full_path_cases"] = results
        chosen = [
            r
            for r in results
            if (r["intake_processes"], r["cpu_threads"]) == (defaults.intake_processes, defaults.cpu_threads)
            and r["document_bytes"] < 16 * 1024
        ]
        if chosen:
            report["full_path"] = chosen[-1]
        suite.write_text(json.dumps(report, indent=2) + "\n")
    if args.readme and not full_path.update_readme(results):
        raise SystemExit(f"README.md has no {full_path.README_BEGIN} ... {full_path.README_END} block")
    return 0


if __name__ == "__main__":
    sys.exit(main())
