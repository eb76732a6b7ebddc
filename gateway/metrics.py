"""Prometheus metrics of one gateway instance, on its own ``prometheus_client`` registry (no global state).

The family names and labels are public interface: the alert rules (``deploy/prometheus/nswgw-alerts.yml``) and
the dashboard (``deploy/grafana/nswgw-dashboard.json``) depend on them.

=============================================================  =====================================================
Family                                                         Meaning
=============================================================  =====================================================
``nswgw_messages_received_total{sender}``                      messages accepted and durably stored
``nswgw_messages_rejected_total{code}``                        submissions rejected, by error code
``nswgw_rejections_total{code,sender}``                        every refusal: submissions and requests refused at
                                                               the API (``AUTH_*``, ``REQUEST_*``,
                                                               ``XML_TOO_LARGE``...; ``sender=""`` before a party
                                                               is authenticated)
``nswgw_deliveries_total{destination}``                        deliveries whose receipt was verified
``nswgw_delivery_retries_total{destination}``                  failed attempts scheduled for a retry
``nswgw_dead_letters_total{destination}``                      deliveries moved to the dead-letter queue
``nswgw_delivery_failures_total{destination,code,outcome}``    failed attempts by error code, ``outcome`` ``retry``
                                                               or ``dead``
``nswgw_conversations_held_total{destination}``                dead deliveries holding up later messages of their
                                                               conversation
``nswgw_circuit_open{destination}``                            1 while the destination's breaker is not closed
``nswgw_delivery_latency_seconds{destination}``                histogram: queued → receipt verified, per partner
``nswgw_dossier_latency_seconds{document_type}``               histogram: submission → the last verified receipt
                                                               of the message (buckets bracket the 3 s target)
``nswgw_outbox_pending{destination}``                          deliveries not yet final (queued, failed awaiting a
                                                               retry, delivered awaiting the receipt)
``nswgw_outbox_oldest_age_seconds{destination}``               age of the oldest of them (0 when none)
``nswgw_dead_letter_queue_depth{destination}``                 deliveries in the dead-letter queue now (goes down
                                                               on replay)
``nswgw_http_requests_total{route,status}``                    HTTP requests by route template (``unmatched`` for
                                                               no route) and status
``nswgw_http_request_duration_seconds{route}``                 histogram of their durations
``nswgw_certificate_expiry_timestamp_seconds``                 ``{party,role,serial}``: notAfter of every
                                                               configured certificate
                                                               (``role``: ``signing``, ``tls``, ``client_ca``,
                                                               ``anchor``,
                                                               ``pinned``, ``intermediate``,
                                                               ``receipt_anchor``, ``receipt_pinned``,
                                                               ``receipt_intermediate``)
``nswgw_ready``                                                1 while every readiness check of ``/readyz`` passes
``nswgw_readiness_check{check}``                               1 per passing check, 0 per failing one
``nswgw_build_info{version}``                                  1, labelled with the package version
``process_*``, ``python_info``                                 ``prometheus_client``'s process and platform
                                                               collectors
=============================================================  =====================================================

The store-derived gauges (backlog, oldest age, DLQ depth) and readiness are computed at scrape time: the
``/metrics`` handler awaits the store query, hands the result to :meth:`Metrics.observe_outboxes` and
:meth:`Metrics.observe_readiness`, then renders.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

__all__ = ["Metrics", "OutboxGauges", "LATENCY_BUCKETS", "DOSSIER_BUCKETS", "HTTP_BUCKETS"]

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
DOSSIER_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 3600.0)
"""Submission → last verified receipt: fine around the 3-second target, coarse for the retries of an outage."""
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(frozen=True)
class OutboxGauges:
    """One destination's outbox as the store counts it at scrape time."""

    pending: int
    """Deliveries not final yet (``QUEUED``, ``FAILED``, ``DELIVERED``)."""
    oldest_queued_at: float | None
    """The earliest ``queued_at`` among them (None: none pending)."""
    dead: int
    """Deliveries in the dead-letter queue."""


class _ScrapeGauges(Collector):
    """The gauges refreshed just before each scrape (store backlog, readiness), rendered from the last values."""

    def __init__(self) -> None:
        self.outboxes: dict[str, OutboxGauges] = {}
        self.now = 0.0
        self.checks: dict[str, str] | None = None

    def collect(self) -> Iterator[Metric]:
        pending = GaugeMetricFamily(
            "nswgw_outbox_pending",
            "Deliveries not final yet (queued, awaiting a retry or a receipt).",
            labels=["destination"],
        )
        oldest = GaugeMetricFamily(
            "nswgw_outbox_oldest_age_seconds",
            "Age of the oldest delivery not final yet (0 when none).",
            labels=["destination"],
        )
        depth = GaugeMetricFamily(
            "nswgw_dead_letter_queue_depth", "Deliveries in the dead-letter queue now.", labels=["destination"]
        )
        for name, outbox in sorted(self.outboxes.items()):
            pending.add_metric([name], outbox.pending)
            age = 0.0 if outbox.oldest_queued_at is None else max(0.0, self.now - outbox.oldest_queued_at)
            oldest.add_metric([name], age)
            depth.add_metric([name], outbox.dead)
        yield pending
        yield oldest
        yield depth
        if self.checks is not None:
            ready = GaugeMetricFamily("nswgw_ready", "1 while every readiness check of /readyz passes.")
            ready.add_metric([], float(all(v == "ok" for v in self.checks.values())))
            yield ready
            check = GaugeMetricFamily(
                "nswgw_readiness_check", "1 per passing readiness check, 0 per failing one.", labels=["check"]
            )
            for name, result in sorted(self.checks.items()):
                check.add_metric([name], float(result == "ok"))
            yield check


class Metrics:
    """The metrics of one gateway; rendered by ``GET /metrics`` (:meth:`exposition`).

    Every change goes through a method named after the event; :meth:`value` reads one sample back."""

    def __init__(self, *, version: str = "", destinations: Iterable[str] = ()) -> None:
        """``version``: the ``nswgw_build_info`` label; ``destinations``: the configured ones, whose series start
        at 0 (so that ``rate()`` and the alert rules see them from the first scrape)."""
        self.registry = CollectorRegistry()
        r = self.registry
        self._received = Counter(
            "nswgw_messages_received", "Messages accepted and durably stored.", ["sender"], registry=r
        )
        self._rejected = Counter(
            "nswgw_messages_rejected", "Submissions rejected, by error code.", ["code"], registry=r
        )
        self._rejections = Counter(
            "nswgw_rejections",
            "Refusals by error code and sender: rejected submissions and requests refused at the API"
            ' (sender "" when no party was authenticated).',
            ["code", "sender"],
            registry=r,
        )
        self._delivered = Counter(
            "nswgw_deliveries", "Deliveries whose receipt was verified.", ["destination"], registry=r
        )
        self._retries = Counter(
            "nswgw_delivery_retries", "Failed attempts scheduled for a retry.", ["destination"], registry=r
        )
        self._dead = Counter(
            "nswgw_dead_letters", "Deliveries moved to the dead-letter queue.", ["destination"], registry=r
        )
        self._failures = Counter(
            "nswgw_delivery_failures",
            "Failed delivery attempts by error code; outcome retry or dead.",
            ["destination", "code", "outcome"],
            registry=r,
        )
        self._held = Counter(
            "nswgw_conversations_held",
            "Dead deliveries that hold up later messages of their conversation.",
            ["destination"],
            registry=r,
        )
        self._circuit = Gauge(
            "nswgw_circuit_open",
            "1 while the destination's circuit breaker is not closed.",
            ["destination"],
            registry=r,
        )
        self._latency = Histogram(
            "nswgw_delivery_latency_seconds",
            "Time from queuing to a verified receipt, per destination.",
            ["destination"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._dossier = Histogram(
            "nswgw_dossier_latency_seconds",
            "Time from submission to the last verified receipt of the message, per document type.",
            ["document_type"],
            buckets=DOSSIER_BUCKETS,
            registry=r,
        )
        self._http = Counter(
            "nswgw_http_requests", "HTTP requests by route template and status.", ["route", "status"], registry=r
        )
        self._http_duration = Histogram(
            "nswgw_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template.",
            ["route"],
            buckets=HTTP_BUCKETS,
            registry=r,
        )
        self._expiry = Gauge(
            "nswgw_certificate_expiry_timestamp_seconds",
            "notAfter of each configured certificate, seconds since the epoch.",
            ["party", "role", "serial"],
            registry=r,
        )
        Info("nswgw_build", "The gateway's build.", registry=r).info({"version": version})
        self._scrape = _ScrapeGauges()
        r.register(self._scrape)
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        for name in destinations:
            for family in (self._delivered, self._retries, self._dead, self._held):
                family.labels(name)
            self._circuit.labels(name).set(0)
            self._scrape.outboxes[name] = OutboxGauges(0, None, 0)

    # ------------------------------------------------------------------ intake

    def accepted(self, sender: str) -> None:
        self._received.labels(sender).inc()

    def submission_rejected(self, code: str) -> None:
        """A submission refused by the broker (``nswgw_messages_rejected_total``)."""
        self._rejected.labels(code).inc()

    def refused(self, code: str, sender: str) -> None:
        """A refusal answered to ``sender`` (``""``: not authenticated), at the API or by the broker."""
        self._rejections.labels(code, sender).inc()

    # ------------------------------------------------------------------ delivery

    def delivered(self, destination: str, latency: float) -> None:
        self._delivered.labels(destination).inc()
        self._latency.labels(destination).observe(max(0.0, latency))

    def retry_scheduled(self, destination: str, code: str) -> None:
        self._retries.labels(destination).inc()
        self._failures.labels(destination, code, "retry").inc()

    def dead_lettered(self, destination: str, code: str, count: int = 1) -> None:
        self._dead.labels(destination).inc(count)
        self._failures.labels(destination, code, "dead").inc(count)

    def conversation_held(self, destination: str) -> None:
        self._held.labels(destination).inc()

    def circuit(self, destination: str, *, open_: bool) -> None:
        self._circuit.labels(destination).set(int(open_))

    def dossier_completed(self, document_type: str, seconds: float) -> None:
        """A message's last delivery got its verified receipt ``seconds`` after its submission."""
        self._dossier.labels(document_type).observe(max(0.0, seconds))

    # ------------------------------------------------------------------ HTTP, certificates, scrape time

    def http_request(self, route: str, status: int, seconds: float) -> None:
        self._http.labels(route, str(status)).inc()
        self._http_duration.labels(route).observe(max(0.0, seconds))

    def certificates(self, expiries: Iterable[tuple[str, str, str, float]]) -> None:
        """Set the expiry gauges: ``(party, role, serial, not_after)`` per configured certificate."""
        self._expiry.clear()
        for party, role, serial, not_after in expiries:
            self._expiry.labels(party, role, serial).set(not_after)

    def observe_outboxes(self, outboxes: Mapping[str, OutboxGauges], *, now: float) -> None:
        """The outboxes as the store counts them now (a configured destination absent from ``outboxes`` keeps
        its series, at 0)."""
        self._scrape.outboxes = {name: OutboxGauges(0, None, 0) for name in self._scrape.outboxes} | dict(outboxes)
        self._scrape.now = now

    def observe_readiness(self, checks: Mapping[str, str]) -> None:
        """The readiness checks of ``/readyz`` (``"ok"`` or ``"failed: ..."`` by name)."""
        self._scrape.checks = dict(checks)

    def exposition(self, accept: str | None = None) -> tuple[bytes, str]:
        """The registry rendered in the format ``accept`` asks for (OpenMetrics when it names
        ``application/openmetrics-text``, else text format 0.0.4), with its content type."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type

    def render(self) -> str:
        """The registry in text format 0.0.4."""
        return self.exposition()[0].decode()

    def value(self, name: str, **labels: str) -> float:
        """One sample (``nswgw_deliveries_total``, ``destination="TH"``); 0 when it has not been recorded."""
        found = self.registry.get_sample_value(name, labels)
        return 0.0 if found is None else found
