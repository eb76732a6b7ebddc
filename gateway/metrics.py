"""Prometheus metrics of one gateway instance (text exposition format 0.0.4), without global state.

Counters ``nswgw_messages_received_total{sender}``,
``nswgw_messages_rejected_total{code}``, ``nswgw_deliveries_total{destination}``
(receipt verified), ``nswgw_delivery_retries_total{destination}``,
``nswgw_dead_letters_total{destination}``,
``nswgw_conversations_held_total{destination}`` (a dead delivery holding up later
messages of its conversation); histogram
``nswgw_delivery_latency_seconds{destination}`` (queued → receipt verified,
per partner); gauge ``nswgw_circuit_open{destination}``.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass, field

__all__ = ["Metrics", "LATENCY_BUCKETS"]

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


@dataclass
class _Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    total: float = 0.0
    n: int = 0
    samples: list[float] = field(default_factory=list)

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(LATENCY_BUCKETS, value)] += 1
        self.total += value
        self.n += 1
        if len(self.samples) < 200_000:
            self.samples.append(value)


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
    """The counters and histograms of one gateway; rendered by ``GET /metrics``."""

    def __init__(self) -> None:
        self.received: dict[str, int] = defaultdict(int)
        self.rejected: dict[str, int] = defaultdict(int)
        self.delivered: dict[str, int] = defaultdict(int)
        self.retries: dict[str, int] = defaultdict(int)
        self.dead: dict[str, int] = defaultdict(int)
        self.circuit_open: dict[str, int] = defaultdict(int)
        self.conversations_held: dict[str, int] = defaultdict(int)
        self.latency: dict[str, _Histogram] = defaultdict(_Histogram)

    def observe_latency(self, destination: str, seconds: float) -> None:
        self.latency[destination].observe(max(0.0, seconds))

    def percentile(self, destination: str | None, q: float) -> float | None:
        """The q-quantile (0..1) of the recorded latencies of one destination (or all)."""
        hists = [self.latency[destination]] if destination else list(self.latency.values())
        values = sorted(v for h in hists for v in h.samples)
        if not values:
            return None
        return values[min(len(values) - 1, int(q * len(values)))]

    def render(self) -> str:
        lines: list[str] = []

        def counter(name: str, help_: str, label: str, values: dict[str, int], kind: str = "counter") -> None:
            lines.append(f"# HELP {name} {help_}")
            lines.append(f"# TYPE {name} {kind}")
            for key, value in sorted(values.items()):
                lines.append(f'{name}{{{label}="{_esc(key)}"}} {value}')

        counter("nswgw_messages_received_total", "Messages accepted and durably stored.", "sender", self.received)
        counter("nswgw_messages_rejected_total", "Submissions rejected, by error code.", "code", self.rejected)
        counter("nswgw_deliveries_total", "Deliveries whose receipt was verified.", "destination", self.delivered)
        counter("nswgw_delivery_retries_total", "Failed attempts scheduled for a retry.", "destination", self.retries)
        counter("nswgw_dead_letters_total", "Deliveries moved to the dead-letter queue.", "destination", self.dead)
        counter(
            "nswgw_conversations_held_total",
            "Dead deliveries that hold up later messages of their conversation.",
            "destination",
            self.conversations_held,
        )
        counter(
            "nswgw_circuit_open",
            "1 while the destination's circuit breaker is open.",
            "destination",
            self.circuit_open,
            kind="gauge",
        )
        name = "nswgw_delivery_latency_seconds"
        lines.append(f"# HELP {name} Time from queuing to a verified receipt, per destination.")
        lines.append(f"# TYPE {name} histogram")
        for dest, h in sorted(self.latency.items()):
            cumulative = 0
            for bound, count in zip(LATENCY_BUCKETS, h.counts[:-1], strict=True):
                cumulative += count
                lines.append(f'{name}_bucket{{destination="{_esc(dest)}",le="{bound}"}} {cumulative}')
            lines.append(f'{name}_bucket{{destination="{_esc(dest)}",le="+Inf"}} {h.n}')
            lines.append(f'{name}_sum{{destination="{_esc(dest)}"}} {h.total}')
            lines.append(f'{name}_count{{destination="{_esc(dest)}"}} {h.n}')
        return "\n".join(lines) + "\n"
