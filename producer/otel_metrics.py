"""The Prometheus figures of :mod:`producer.metrics` as OpenTelemetry metrics.

For deployments that collect metrics with OpenTelemetry rather than by
scraping: the same observations (attempts by outcome and status class, their
duration, the busiest endpoints and tenants, worker claims, operational
events) and the same database figures (lag, due deliveries, deliveries by
status, disabled endpoints), under dotted names. ``webhooks serve`` and
``webhooks worker`` start it with ``WEBHOOKS_OTEL`` on; a host application
calls :meth:`OtelMetrics.start` with its own meter provider set.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from producer.hooks import AttemptObservation
from producer.metrics import OUTCOMES, BusiestCounts
from producer.producer import Producer
from producer.tracing import INSTRUMENTATION_NAME, configured_exporters

if TYPE_CHECKING:
    from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation

__all__ = ["OtelMetrics", "configure_meter_provider"]

# The database figures are read once per collection, not once per instrument.
_SNAPSHOT_SECONDS = 1.0


class OtelMetrics:
    """OpenTelemetry instruments observing one producer between ``start()`` and ``close()``."""

    def __init__(self, producer: Producer, meter_provider: MeterProvider | None = None) -> None:
        """Instruments of ``meter_provider``, or of the global one."""
        from opentelemetry import metrics

        self._producer = producer
        meter = metrics.get_meter(INSTRUMENTATION_NAME, meter_provider=meter_provider)
        self._attempts = meter.create_counter(
            "webhooks.attempts", unit="{attempt}", description="Attempts by outcome and status."
        )
        self._duration = meter.create_histogram(
            "webhooks.attempt.duration", unit="s", description="Duration of attempts by outcome."
        )
        self._events = meter.create_counter(
            "webhooks.operational_events", unit="{event}", description="Operational events."
        )
        top_n = producer.settings.metrics_top_n
        self._by_endpoint = BusiestCounts(top_n)
        self._by_tenant = BusiestCounts(top_n)
        self._claims: dict[str, float] = {}
        self._lock = threading.Lock()
        self._snapshot: tuple[float, dict[str, Any] | None] = (-_SNAPSHOT_SECONDS, None)
        for name, unit, description, figures in (
            (
                "webhooks.queue.lag",
                "s",
                "Seconds since the oldest due delivery fell due.",
                self._lag,
            ),
            ("webhooks.deliveries.due", "{delivery}", "Pending deliveries due now.", self._due),
            ("webhooks.deliveries", "{delivery}", "Deliveries by status.", self._deliveries),
            ("webhooks.endpoints.disabled", "{endpoint}", "Disabled endpoints.", self._disabled),
            ("webhooks.database.up", "1", "Whether the database answered.", self._database_up),
            (
                "webhooks.worker.last_claim",
                "s",
                "Unix time of each worker's last claim.",
                self._last_claims,
            ),
        ):
            meter.create_observable_gauge(
                name, callbacks=[figures], unit=unit, description=description
            )
        for label, counts in (("endpoint", self._by_endpoint), ("tenant", self._by_tenant)):
            meter.create_observable_counter(
                f"webhooks.{label}.attempts",
                callbacks=[self._busiest(label, counts)],
                unit="{attempt}",
                description=f"Attempts of the {top_n} busiest {label}s, the rest as other.",
            )
        self._removers: list[Callable[[], None]] = []

    def start(self) -> OtelMetrics:
        """Observe the producer's attempts, claims and events (again, after ``close()``)."""
        if not self._removers:
            hooks = self._producer.context.hooks
            self._removers = [
                hooks.on_attempts(self._observe),
                hooks.on_claim(self._claimed),
                hooks.on_event(lambda event, _data: self._events.add(1, {"event": event})),
            ]
        return self

    def close(self) -> None:
        """Stop observing the producer."""
        for remove in self._removers:
            remove()
        self._removers = []

    # -- observations --------------------------------------------------------------

    def _observe(self, observations: Sequence[AttemptObservation]) -> None:
        for o in observations:
            seconds = o.duration_ms / 1000
            self._attempts.add(1, {"outcome": o.outcome, "status_class": o.status_class})
            self._duration.record(seconds, {"outcome": o.outcome})
            self._by_endpoint.add(o.endpoint_id, o.outcome, seconds)
            self._by_tenant.add(o.tenant, o.outcome, seconds)

    def _claimed(self, worker: str, _claimed: int) -> None:
        with self._lock:
            self._claims[worker] = time.time()

    # -- collected ---------------------------------------------------------------------

    def _figures(self) -> dict[str, Any] | None:
        """The database figures, read at most once a second; None while it is down."""
        with self._lock:
            at, snapshot = self._snapshot
            if time.monotonic() - at >= _SNAPSHOT_SECONDS:
                try:
                    snapshot = self._producer.metrics_snapshot()
                except Exception:
                    snapshot = None  # reported as webhooks.database.up 0
                self._snapshot = (time.monotonic(), snapshot)
            return snapshot

    def _gauge(self, key: str, options: CallbackOptions) -> Iterable[Observation]:
        from opentelemetry.metrics import Observation

        figures = self._figures()
        return [Observation(figures[key])] if figures is not None else []

    def _lag(self, options: CallbackOptions) -> Iterable[Observation]:
        return self._gauge("queue_lag_seconds", options)

    def _due(self, options: CallbackOptions) -> Iterable[Observation]:
        return self._gauge("queue_depth", options)

    def _disabled(self, options: CallbackOptions) -> Iterable[Observation]:
        return self._gauge("endpoints_disabled", options)

    def _deliveries(self, options: CallbackOptions) -> Iterable[Observation]:
        from opentelemetry.metrics import Observation

        figures = self._figures()
        if figures is None:
            return []
        return [Observation(n, {"status": s}) for s, n in figures["deliveries"].items()]

    def _database_up(self, options: CallbackOptions) -> Iterable[Observation]:
        from opentelemetry.metrics import Observation

        return [Observation(0 if self._figures() is None else 1)]

    def _last_claims(self, options: CallbackOptions) -> Iterable[Observation]:
        from opentelemetry.metrics import Observation

        with self._lock:
            return [Observation(at, {"worker": w}) for w, at in self._claims.items()]

    @staticmethod
    def _busiest(
        label: str, counts: BusiestCounts
    ) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            from opentelemetry.metrics import Observation

            return [
                Observation(row[index], {label: key, "outcome": outcome})
                for key, row in counts.report().items()
                for index, outcome in enumerate(OUTCOMES)
            ]

        return observe


def configure_meter_provider() -> MeterProvider:
    """Set the global meter provider from the standard ``OTEL_*`` variables
    (``OTEL_METRICS_EXPORTER``, ``OTEL_METRIC_EXPORT_INTERVAL``, the resource's
    and each exporter's own), for the processes ``webhooks`` runs."""
    try:
        from opentelemetry import metrics
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from opentelemetry.sdk.resources import Resource
    except ImportError:
        raise RuntimeError(
            "WEBHOOKS_OTEL needs the OpenTelemetry SDK: pip install 'webhook-producer[otel]'"
        ) from None
    readers = [
        PeriodicExportingMetricReader(exporter)
        for exporter in configured_exporters(
            "OTEL_METRICS_EXPORTER", "opentelemetry_metrics_exporter"
        )
    ]
    provider = MeterProvider(metric_readers=readers, resource=Resource.create())
    metrics.set_meter_provider(provider)
    return provider
