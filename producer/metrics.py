"""Prometheus metrics of one process, in their own registry.

Database-backed figures (deliveries by status, queue depth, disabled
endpoints) are read at scrape time, so every process reports the same
numbers whichever process made the deliveries. Attempt latency and
operational events are observed in this process (its own worker's attempts).
The API serves them at ``/metrics``; ``webhooks worker --metrics-port`` serves
a worker's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from producer.producer import Producer
from producer.types import DELIVERY_STATUSES

__all__ = ["Metrics"]


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
            "webhooks_queue_depth",
            "Pending deliveries due now on enabled endpoints.",
            value=snapshot["queue_depth"],
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
        self._producer = producer
        self._removers: list[Callable[[], None]] = []

    def start(self) -> None:
        """Observe the producer's events and attempts (again, after ``close()``)."""
        if self._removers:
            return
        self._removers = [
            self._producer.on_event(self._count_event),
            self._producer.on_attempt(self._observe_attempt),
        ]

    def _count_event(self, event_type: str, _data: dict[str, Any]) -> None:
        self._events.labels(event=event_type).inc()

    def _observe_attempt(self, outcome: str, duration_ms: float) -> None:
        self._attempts.labels(outcome=outcome).observe(duration_ms / 1000)

    def close(self) -> None:
        """Stop observing the producer."""
        for remove in self._removers:
            remove()
        self._removers = []
