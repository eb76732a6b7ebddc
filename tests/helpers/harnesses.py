"""Every adapter's harness by alias: the behaviour suite (tests/adapters/test_adapters_behaviour.py) runs each
built-in adapter against its own; an alias of ``gateway.ports.BUILTIN_ADAPTERS`` without one fails the suite."""

from __future__ import annotations

from helpers.adapters import CORE_HARNESSES, Harness
from helpers.ippc import IppcHubHarness

HARNESSES: dict[str, type[Harness]] = {h.alias: h for h in (*CORE_HARNESSES, IppcHubHarness)}
"""Alias → harness."""
