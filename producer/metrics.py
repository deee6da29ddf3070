"""Prometheus metrics of one process, in their own registry.

Database-backed figures (deliveries by status, queue depth, disabled
endpoints) are read at scrape time, so every process reports the same
numbers whichever process made the deliveries. Attempts (by outcome, status
class, endpoint and tenant), their latency, operational events and worker
liveness are observed in this process (its own workers' attempts and claims).
The API serves them at ``/metrics``; ``webhooks worker --metrics-port`` serves
a worker's.

Per-endpoint and per-tenant series exist only for the ``metrics_top_n``
busiest endpoints and tenants of the process; the others are summed under
the label value ``other``, so a service with many thousand endpoints still
exports a bounded number of series.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector

from producer.hooks import AttemptObservation
from producer.producer import Producer
from producer.types import DELIVERY_STATUSES

__all__ = ["OTHER", "BusiestCounts", "Metrics"]

OTHER = "other"
"""The label value that sums every endpoint or tenant outside the busiest N."""
OUTCOMES = ("succeeded", "retry", "failed")
# Keys counted one by one, per label, before newcomers go straight to
# ``other``: bounds the memory of a process that sees endless new endpoints.
_KEYS_PER_SERIES = 50


class _DatabaseCollector(Collector):
    """Reads queue figures from the database on each scrape."""

    def __init__(self, producer: Producer) -> None:
        self._producer = producer

    def collect(self) -> Iterator[Metric]:
        """Yield the scrape-time gauges; an unreachable database reports ``up 0``."""
        try:
            snapshot = self._producer.metrics_snapshot()
        except Exception:
            # A scrape must still answer while the database is down: that is
            # exactly when operators look at it.
            yield GaugeMetricFamily(
                "webhooks_database_up", "Whether the database answered the scrape.", value=0
            )
            return
        yield GaugeMetricFamily(
            "webhooks_database_up", "Whether the database answered the scrape.", value=1
        )
        yield GaugeMetricFamily(
            "webhooks_deliveries_due",
            "Pending deliveries due now on enabled endpoints.",
            value=snapshot["queue_depth"],
        )
        yield GaugeMetricFamily(
            "webhooks_queue_depth",
            "The same as webhooks_deliveries_due (kept for existing dashboards).",
            value=snapshot["queue_depth"],
        )
        yield GaugeMetricFamily(
            "webhooks_queue_lag_seconds",
            "Seconds since the oldest pending delivery due now fell due (0 when none is due).",
            value=snapshot["queue_lag_seconds"],
        )
        yield GaugeMetricFamily(
            "webhooks_endpoints_disabled",
            "Endpoints that are disabled (manually, failing or gone).",
            value=snapshot["endpoints_disabled"],
        )
        deliveries = GaugeMetricFamily(
            "webhooks_deliveries",
            "Deliveries in the database by status (outcome).",
            labels=["status"],
        )
        for status in DELIVERY_STATUSES:
            deliveries.add_metric([status], snapshot["deliveries"].get(status, 0))
        yield deliveries


class BusiestCounts:
    """Attempts per key (endpoint or tenant) by outcome, and their total
    duration, reported for the ``top_n`` busiest keys plus :data:`OTHER`.

    Counts are kept from the start of the process. An endpoint that becomes
    one of the busiest gets a series of its own holding all its attempts;
    one that drops out moves its count back into ``other``: summed over the
    label, every series always adds up to all the attempts made.
    """

    def __init__(self, top_n: int) -> None:
        self.top_n = top_n
        self._capacity = top_n * _KEYS_PER_SERIES
        self._lock = threading.Lock()
        self._counts: dict[str, list[float]] = {}
        """key -> attempts per outcome (in ``OUTCOMES`` order), then the seconds spent."""
        self._overflow = [0.0] * (len(OUTCOMES) + 1)

    def add(self, key: str, outcome: str, seconds: float) -> None:
        """Count one attempt of ``key``."""
        with self._lock:
            row = self._counts.get(key)
            if row is None:
                if len(self._counts) >= self._capacity:
                    row = self._overflow
                else:
                    row = self._counts[key] = [0.0] * (len(OUTCOMES) + 1)
            row[OUTCOMES.index(outcome)] += 1
            row[-1] += seconds

    def report(self) -> dict[str, list[float]]:
        """The busiest keys' figures and ``other``'s (present once anything is counted)."""
        with self._lock:
            ranked = sorted(self._counts.items(), key=lambda kv: -sum(kv[1][:-1]))
            overflow = list(self._overflow)
        report = {key: list(row) for key, row in ranked[: self.top_n]}
        rest = [overflow, *(row for _, row in ranked[self.top_n :])]
        if len(ranked) > self.top_n or any(overflow):
            report[OTHER] = [sum(column) for column in zip(*rest, strict=True)]
        return report


class _BusiestCollector(Collector):
    """Exports :class:`BusiestCounts` of endpoints and tenants at scrape time."""

    def __init__(self, endpoints: BusiestCounts, tenants: BusiestCounts) -> None:
        self._endpoints = endpoints
        self._tenants = tenants

    def collect(self) -> Iterator[Metric]:
        """Per-endpoint attempts and durations, per-tenant attempts."""
        for label, counts in (("endpoint", self._endpoints), ("tenant", self._tenants)):
            attempts = CounterMetricFamily(
                f"webhooks_{label}_attempts",
                f"Attempts made in this process per {label} (the busiest "
                f"{counts.top_n}, the rest as {OTHER}) and outcome.",
                labels=[label, "outcome"],
            )
            durations = SummaryMetricFamily(
                f"webhooks_{label}_attempt_duration_seconds",
                f"Duration of the attempts made in this process per {label} "
                f"(the busiest {counts.top_n}, the rest as {OTHER}).",
                labels=[label],
            )
            for key, row in counts.report().items():
                for index, outcome in enumerate(OUTCOMES):
                    attempts.add_metric([key, outcome], row[index])
                durations.add_metric([key], count_value=int(sum(row[:-1])), sum_value=row[-1])
            yield attempts
            yield durations


class Metrics:
    """A registry with the producer's metrics; observes the producer between
    ``start()`` and ``close()``."""

    def __init__(self, producer: Producer) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(_DatabaseCollector(producer))
        self._events = Counter(
            "webhooks_operational_events",
            "Operational events raised in this process (endpoint.failing, "
            "endpoint.disabled, endpoint.recovered, delivery.exhausted).",
            ["event"],
            registry=self.registry,
        )
        self._attempts = Histogram(
            "webhooks_attempt_duration_seconds",
            "Duration of delivery attempts made in this process, by outcome "
            "(succeeded, retry, failed).",
            ["outcome"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30),
            registry=self.registry,
        )
        self._status_classes = Counter(
            "webhooks_attempts",
            "Attempts made in this process by outcome and HTTP status class "
            "(2xx … 5xx, none: no answer).",
            ["outcome", "status_class"],
            registry=self.registry,
        )
        self._last_claim = Gauge(
            "webhooks_worker_last_claim_timestamp_seconds",
            "When each worker of this process last claimed (Unix time), "
            "whether or not anything was due: a stale value means a stuck worker.",
            ["worker"],
            registry=self.registry,
        )
        top_n = producer.settings.metrics_top_n
        self._by_endpoint = BusiestCounts(top_n)
        self._by_tenant = BusiestCounts(top_n)
        self.registry.register(_BusiestCollector(self._by_endpoint, self._by_tenant))
        self._producer = producer
        self._removers: list[Callable[[], None]] = []

    def start(self) -> None:
        """Observe the producer's events and attempts (again, after ``close()``)."""
        if self._removers:
            return
        self._removers = [
            self._producer.on_event(self._count_event),
            self._producer.on_attempt(self._observe_attempt),
            self._producer.context.hooks.on_attempts(self._observe_details),
            self._producer.context.hooks.on_claim(self._observe_claim),
        ]

    def _count_event(self, event_type: str, _data: dict[str, Any]) -> None:
        self._events.labels(event=event_type).inc()

    def _observe_attempt(self, outcome: str, duration_ms: float) -> None:
        self._attempts.labels(outcome=outcome).observe(duration_ms / 1000)

    def _observe_details(self, observations: Sequence[AttemptObservation]) -> None:
        for o in observations:
            self._status_classes.labels(outcome=o.outcome, status_class=o.status_class).inc()
            self._by_endpoint.add(o.endpoint_id, o.outcome, o.duration_ms / 1000)
            self._by_tenant.add(o.tenant, o.outcome, o.duration_ms / 1000)

    def _observe_claim(self, worker: str, _claimed: int) -> None:
        self._last_claim.labels(worker=worker).set(time.time())

    def close(self) -> None:
        """Stop observing the producer."""
        for remove in self._removers:
            remove()
        self._removers = []
