"""benchmarks/registry_check.py runs on both stores with a small index and prints every field it reports; it is a
script that prints numbers, so this checks what it reports, not speed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.postgres import PG_DSN

pytestmark = [pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[2]
FIELDS = {
    "store",
    "documents",
    "load_s",
    "checks",
    "checks_per_s",
    "p50_ms",
    "p99_ms",
    "covered",
    "concurrency",
    "journal",
    "load_average",
}


def test_the_registry_check_benchmark_reports_rates_and_latencies_on_both_stores(tmp_path: Path) -> None:
    out = tmp_path / "registry.json"
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "registry_check.py"),
            *("--documents", "400", "--checks", "60", "--concurrency", "4", "--dsn", PG_DSN, "--json", str(out)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    printed = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    assert [r["store"] for r in printed] == ["sqlite", "postgresql"]
    for result in printed:
        assert set(result) == FIELDS
        assert (result["documents"], result["checks"]) == (400, 60)
        assert result["checks_per_s"] > 0 and result["p99_ms"] >= result["p50_ms"] > 0
        assert 0.4 <= result["covered"] <= 1  # half of the checks are of goods a document covers
        assert set(result["load_average"]) == {"before", "after"}
    assert json.loads(out.read_text()) == printed
