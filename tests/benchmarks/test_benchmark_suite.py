"""The benchmark suite runs end to end (real nodes, real PostgreSQL, the loopback receiver) and reports every
figure the issue asks for; it is a script that prints numbers, so this checks what it reports, not speed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.postgres import PG_DSN

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SUITE = [sys.executable, str(ROOT / "benchmarks" / "run_suite.py")]


def test_quick_suite_on_8kb_reports_rates_latencies_cpu_and_targets_for_each_store(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    run = subprocess.run(
        [
            *SUITE,
            "--quick",
            "--sizes",
            "8KB",
            "--messages",
            "30",
            "--concurrency",
            "8",
            "--dsn",
            PG_DSN,
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["gateway_verification"] == "signature" and report["floor_us"]["8KB"] > 0
    cases = {(r["store"], r["nodes"], r["document"]): r for r in report["results"]}
    assert set(cases) == {("sqlite", 1, "8KB"), ("postgresql", 1, "8KB"), ("postgresql", 2, "8KB")}
    for r in cases.values():
        assert r["msg_per_s"] > 0 and r["ratio_to_floor"] > 0 and r["cpu_ms_per_msg"] > 0
        assert 0 < r["p50_ms"] <= r["p99_ms"] <= r["p999_ms"]
        assert r["bytes"] > 8 * 1024
    assert cases[("postgresql", 1, "8KB")]["postgres_cpu_ms_per_msg"] > 0
    assert set(report["targets"]) == {"8KB"}
    assert {"sqlite_meets_0.5", "pg_meets_1.6", "p99_meets_50ms"} <= set(report["targets"]["8KB"])
    assert "targets 8KB:" in run.stdout and "sqlite" in run.stdout


def test_unknown_document_size_is_refused_naming_the_option(tmp_path: Path) -> None:
    run = subprocess.run(
        [*SUITE, "--sizes", "16KB", "--json", str(tmp_path / "r.json")], capture_output=True, text=True, timeout=120
    )
    assert run.returncode != 0
    assert "--sizes: unknown document size 16KB; known: 8KB, 100KB" in run.stderr
    assert not (tmp_path / "r.json").exists()
