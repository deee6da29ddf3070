"""The Prometheus figures as OpenTelemetry metrics, read with an in-memory reader."""

from __future__ import annotations

import time

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from producer.metrics import OTHER
from producer.otel_metrics import OtelMetrics
from tests.helpers.waiting import wait_until


@pytest.fixture
def reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
def observe(reader):
    """Starts OtelMetrics on a producer, read by ``reader``."""
    started: list[OtelMetrics] = []

    def start(producer) -> OtelMetrics:
        metrics = OtelMetrics(producer, MeterProvider(metric_readers=[reader])).start()
        started.append(metrics)
        return metrics

    yield start
    for metrics in started:
        metrics.close()


def points(reader: InMemoryMetricReader) -> dict[str, list[tuple[dict, float]]]:
    """Each metric's data points as ``(attributes, value)``."""
    found: dict[str, list[tuple[dict, float]]] = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                found[metric.name] = [
                    (dict(p.attributes or {}), getattr(p, "value", getattr(p, "count", None)))
                    for p in metric.data.data_points
                ]
    return found


def test_the_lag_and_due_deliveries_are_gauges(make_producer, clock, receiver, reader, observe):
    producer = make_producer(clock=clock)
    observe(producer)
    producer.create_endpoint(receiver.url("/held"))
    producer.send("invoice.paid", {"n": 1})
    clock.advance(42)
    found = points(reader)
    assert found["webhooks.queue.lag"] == [({}, 42)]
    assert found["webhooks.deliveries.due"] == [({}, 1)]
    assert found["webhooks.deliveries"] == [({"status": "pending"}, 1)]
    assert found["webhooks.database.up"] == [({}, 1)]


def test_attempts_are_counted_by_outcome_status_class_and_endpoint(
    make_producer, receiver, reader, observe
):
    producer = make_producer(metrics_top_n=1)
    observe(producer)
    endpoint = producer.create_endpoint(
        receiver.script("/flaky", [503]), retry_schedule=[0, 0], event_types=["invoice.*"]
    )
    producer.create_endpoint(receiver.url("/other"), event_types=["other.*"])
    producer.send("invoice.paid", {"n": 1})
    producer.send("other.thing", {"n": 2})
    with producer.start_worker_thread():
        receiver.wait_for(3)
        wait_until(
            lambda: sum(v for _, v in points(reader).get("webhooks.attempts", [])) == 3,
            what="three attempts counted",
        )
    found = points(reader)
    assert ({"outcome": "retry", "status_class": "5xx"}, 1) in found["webhooks.attempts"]
    assert ({"outcome": "succeeded", "status_class": "2xx"}, 2) in found["webhooks.attempts"]
    by_endpoint = found["webhooks.endpoint.attempts"]
    assert ({"endpoint": endpoint.id, "outcome": "succeeded"}, 1) in by_endpoint
    assert ({"endpoint": OTHER, "outcome": "succeeded"}, 1) in by_endpoint
    durations = dict((a["outcome"], n) for a, n in found["webhooks.attempt.duration"])
    assert durations == {"retry": 1, "succeeded": 2}


def test_each_worker_reports_its_last_claim(producer, reader, observe):
    observe(producer)
    before = time.time()
    with producer.start_worker_thread():
        wait_until(
            lambda: any(
                v >= before for _, v in points(reader).get("webhooks.worker.last_claim", [])
            ),
            what="a claim reported",
        )


def test_closed_metrics_observe_nothing_more(producer, receiver, reader, observe):
    observe(producer).close()
    producer.create_endpoint(receiver.url("/ok"))
    producer.send("invoice.paid", {"n": 1})
    with producer.start_worker_thread():
        receiver.wait_for(1)
    assert "webhooks.attempts" not in points(reader)
