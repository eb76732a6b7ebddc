"""Shared fixtures (the development PKI and the real OCSP responder, tests/helpers/ocsp.py; the ``store`` fixture
on both store kinds, tests/helpers/stores.py) and the CI rule that nothing is skipped there."""

from __future__ import annotations

import os

import pytest

pytest_plugins = ["helpers.ocsp", "helpers.stores"]

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """In CI (``CI=true``) a skipped test is a missing set-up step: report it as a failure, never a skip."""
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where every test must run: {report.longrepr}"
