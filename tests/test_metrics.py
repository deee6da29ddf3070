"""Prometheus metrics: the queue lag and due count, attempts by status class,
bounded per-endpoint and per-tenant series, and worker liveness."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from producer.metrics import OTHER, BusiestCounts
from tests.helpers.api import Api
from tests.helpers.waiting import wait_until

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(client: TestClient) -> Samples:
    """The scraped metrics, by sample name and sorted labels."""
    response = client.get("/metrics")
    assert response.status_code == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def lag(client: TestClient) -> float:
    return samples(client)[("webhooks_queue_lag_seconds", ())]


def due(client: TestClient) -> float:
    return samples(client)[("webhooks_deliveries_due", ())]


@pytest.fixture
def held(make_producer, clock, receiver):
    """A producer on a fake clock with one endpoint and no worker running:
    whatever is sent stays due until a worker starts."""
    producer = make_producer(clock=clock)
    producer.create_endpoint(receiver.url("/hooks"))
    return producer


def test_lag_is_zero_with_nothing_due(api):
    assert lag(api.anonymous) == 0
    assert due(api.anonymous) == 0


def test_lag_grows_while_deliveries_are_held_back_and_drops_to_zero_once_sent(
    held, clock, receiver
):
    api = Api(held)
    held.send("invoice.paid", {"n": 1})
    clock.advance(30)
    held.send("invoice.paid", {"n": 2})
    assert lag(api.anonymous) == 30
    assert due(api.anonymous) == 2
    clock.advance(45)
    assert lag(api.anonymous) == 75
    with held.start_worker_thread():
        receiver.wait_for(2)
        wait_until(lambda: due(api.anonymous) == 0, what="the queue to empty")
    assert lag(api.anonymous) == 0


def test_lag_leaves_out_deliveries_of_disabled_endpoints(held, clock):
    api = Api(held)
    held.send("invoice.paid", {"n": 1})
    clock.advance(60)
    [endpoint] = held.list_endpoints().data
    held.disable_endpoint(endpoint.id)
    assert lag(api.anonymous) == 0
    assert due(api.anonymous) == 0


def test_lag_counts_from_when_a_delivery_fell_due_not_when_it_was_sent(held, clock):
    api = Api(held)
    held.send("invoice.paid", {"n": 1})
    [delivery] = held.list_deliveries().data
    clock.advance(600)
    with held.store.transaction() as s:
        # As a retry would be: due again five minutes ago.
        row = held.store.get_delivery(s, delivery.id, tenant=None)
        row.next_attempt_at = clock.now - timedelta(minutes=5)
    assert lag(api.anonymous) == 300


def test_attempts_are_counted_by_outcome_and_status_class(api, producer, receiver):
    producer.create_endpoint(receiver.script("/flaky", [503]), retry_schedule=[0, 0])
    producer.send("invoice.paid", {"n": 1})
    retried = ("webhooks_attempts_total", (("outcome", "retry"), ("status_class", "5xx")))
    succeeded = ("webhooks_attempts_total", (("outcome", "succeeded"), ("status_class", "2xx")))
    with producer.start_worker_thread():
        wait_until(lambda: samples(api.anonymous).get(succeeded) == 1, what="the success counted")
    assert samples(api.anonymous)[retried] == 1


def test_attempts_without_an_answer_have_status_class_none(api, producer, receiver):
    producer.create_endpoint("http://127.0.0.1:1/closed", retry_schedule=[0, 3600])
    producer.send("invoice.paid", {"n": 1})
    key = ("webhooks_attempts_total", (("outcome", "retry"), ("status_class", "none")))
    with producer.start_worker_thread():
        wait_until(lambda: samples(api.anonymous).get(key) == 1, what="the failure counted")


def test_only_the_busiest_endpoints_and_tenants_get_series_of_their_own(make_producer, receiver):
    producer = make_producer(metrics_top_n=1)
    api = Api(producer)
    busy = producer.create_endpoint(receiver.url("/busy"), tenant="acme")
    quiet = producer.create_endpoint(receiver.url("/quiet"), tenant="globex")
    for n in range(3):
        producer.send("invoice.paid", {"n": n}, tenant="acme")
    producer.send("invoice.paid", {"n": 9}, tenant="globex")
    with producer.start_worker_thread():
        receiver.wait_for(4)
        other = (
            "webhooks_endpoint_attempts_total",
            (("endpoint", OTHER), ("outcome", "succeeded")),
        )
        wait_until(
            lambda: samples(api.anonymous).get(other) == 1,
            what="the quiet endpoint counted as other",
        )
    values = samples(api.anonymous)
    succeeded = ("outcome", "succeeded")
    assert values[("webhooks_endpoint_attempts_total", (("endpoint", busy.id), succeeded))] == 3
    assert values[("webhooks_tenant_attempts_total", (succeeded, ("tenant", "acme")))] == 3
    assert values[("webhooks_tenant_attempts_total", (succeeded, ("tenant", OTHER)))] == 1
    assert values[("webhooks_endpoint_attempt_duration_seconds_count", (("endpoint", OTHER),))] == 1
    assert not [key for key in values if ("endpoint", quiet.id) in key[1]]


def test_busiest_counts_add_up_to_every_attempt():
    counts = BusiestCounts(top_n=2)
    for key, n in {"a": 5, "b": 1, "c": 3, "d": 2}.items():
        for _ in range(n):
            counts.add(key, "succeeded", 0.5)
    report = counts.report()
    assert set(report) == {"a", "c", OTHER}
    assert report[OTHER][0] == 3
    assert sum(row[0] for row in report.values()) == 11
    assert sum(row[-1] for row in report.values()) == 5.5


def test_busiest_counts_report_no_other_while_every_key_has_a_series():
    counts = BusiestCounts(top_n=2)
    counts.add("a", "failed", 1)
    assert counts.report() == {"a": [0, 0, 1, 1]}


def test_busiest_counts_keep_their_memory_bounded():
    counts = BusiestCounts(top_n=1)
    for n in range(200):
        counts.add(f"ep{n}", "succeeded", 0)
    report = counts.report()
    assert len(counts._counts) == 50
    assert sum(row[0] for row in report.values()) == 200


def test_each_worker_reports_when_it_last_claimed(api, producer):
    before = time.time()
    with producer.start_worker_thread():
        wait_until(
            lambda: any(
                name == "webhooks_worker_last_claim_timestamp_seconds" and value >= before
                for (name, _), value in samples(api.anonymous).items()
            ),
            what="a claim reported",
        )
