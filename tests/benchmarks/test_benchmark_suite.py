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
            "--rss-sizes",
            "256KiB",
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
    [rss] = report["peak_rss"]
    assert rss["document"] == "256KiB" and 0 < rss["payload_bytes"] <= 256 * 1024
    assert rss["peak_rss_bytes"] > 0 and rss["growth_ratio"] == round(rss["growth_bytes"] / rss["payload_bytes"], 2)
    assert "peak RSS of one fresh gateway per submission" in run.stdout


def test_peak_rss_reports_each_sizes_growth_as_json_lines_and_a_table(tmp_path: Path) -> None:
    out = tmp_path / "rss.json"
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "peak_rss.py"), "--sizes", "64KiB,256KiB", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    lines = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    assert [r["document"] for r in lines] == ["64KiB", "256KiB"]
    assert json.loads(out.read_text()) == lines
    for r in lines:
        assert r["peak_rss_bytes"] >= r["baseline_rss_bytes"] > 0 and r["payload_bytes"] > 0
        assert r["growth_bytes"] == r["peak_rss_bytes"] - r["baseline_rss_bytes"]
        assert len(r["load_average"]) == 3 and r["seconds_to_delivery"] > 0
    assert "x payload" in run.stdout and "load average at the end" in run.stdout


def test_peak_rss_after_a_warm_up_on_postgresql_names_its_mode_in_each_result_and_the_table(tmp_path: Path) -> None:
    out = tmp_path / "rss.json"
    rss = [sys.executable, str(ROOT / "benchmarks" / "peak_rss.py"), "--sizes", "128KiB", "--json", str(out)]
    run = subprocess.run(
        [*rss, "--warm", "--verification", "off", "--store", "postgresql", "--dsn", PG_DSN],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    [r] = json.loads(out.read_text())
    assert (r["document"], r["verification"], r["store"], r["warm"]) == ("128KiB", "off", "postgresql", True)
    assert r["peak_rss_bytes"] >= r["baseline_rss_bytes"] > 0 and r["growth_ratio"] >= 0
    assert "(verification off, postgresql store, warm; target: growth <= 2x payload)" in run.stdout


def test_peak_rss_refuses_a_size_above_the_gateways_limit_naming_the_option(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "peak_rss.py"), "--sizes", "32MiB"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode != 0
    assert "--sizes: 32MiB is outside 64KiB..16MiB (the gateway's limit)" in run.stderr


def test_unknown_document_size_is_refused_naming_the_option(tmp_path: Path) -> None:
    run = subprocess.run(
        [*SUITE, "--sizes", "16KB", "--json", str(tmp_path / "r.json")], capture_output=True, text=True, timeout=120
    )
    assert run.returncode != 0
    assert "--sizes: unknown document size 16KB; known: 8KB, 100KB" in run.stderr
    assert not (tmp_path / "r.json").exists()
