"""The shipped alert rules and Grafana dashboard: ``promtool check rules``, ``promtool test rules`` (one scenario
per alert, in deploy/prometheus/nswgw-alerts.test.yml), and every metric name they use is one a running gateway
exports (checked against a real scrape)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.api import Gateway
from helpers.gateway import Receiver, doc, eventually, make_config, submit

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "nswgw-alerts.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "nswgw-alerts.test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "nswgw-dashboard.json"
ALERTS = {
    "NswgwPartnerCircuitOpen",
    "NswgwBacklogGrowing",
    "NswgwDeadLettersWaiting",
    "NswgwDossierLatencyHigh",
    "NswgwCertificateExpiring",
    "NswgwNotReady",
    "NswgwRejectionSpike",
}

pytestmark = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian package prometheus)")

_METRIC = re.compile(r"\b((?:nswgw|process|python)_[a-zA-Z0-9_]+)")


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=120, cwd=RULES.parent)


def test_alert_rules_pass_promtool_check_rules() -> None:
    checked = promtool("check", "rules", RULES.name)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 7 rules found" in checked.stdout


def test_every_alert_rule_passes_its_promtool_unit_test() -> None:
    tested = promtool("test", "rules", RULE_TESTS.name)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    covered = set(re.findall(r"alertname: (\w+)", RULE_TESTS.read_text()))
    defined = set(re.findall(r"- alert: (\w+)", RULES.read_text()))
    assert covered == defined == ALERTS


def _exported(text: str) -> set[str]:
    """Every sample name a scrape can carry: its samples', and for families without samples yet, their suffixes."""
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(f"{family.name}{suffix}" for suffix in ("_total", "_bucket", "_count", "_sum", "_info"))
        names.update(s.name for s in family.samples)
    return names


async def test_dashboard_and_alerts_use_only_metrics_a_running_gateway_exports(tmp_path: Path) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert len(dashboard["panels"]) >= 10 and all(exprs)
    th = await Receiver().start()
    try:
        async with Gateway(make_config(tmp_path, {"TH": th.url})) as gw, aiohttp.ClientSession() as s:
            await submit(s, gw.url, "MOIT", "ECO-1", "eco.form_d", doc(1))
            await eventually(lambda: gw.metrics.value("nswgw_deliveries_total", destination="TH") == 1)
            async with s.get(f"{gw.url}/metrics") as r:
                exported = _exported(await r.text())
    finally:
        await th.stop()
    used = {name for expr in exprs for name in _METRIC.findall(expr)}
    used_by_alerts = set(_METRIC.findall(RULES.read_text()))
    assert {"nswgw_outbox_pending", "nswgw_dossier_latency_seconds_bucket"} <= used
    assert sorted(used - exported) == [], "the dashboard uses metrics the gateway does not export"
    assert sorted(used_by_alerts - exported) == [], "the alert rules use metrics the gateway does not export"
