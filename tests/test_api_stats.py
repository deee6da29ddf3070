"""GET /v1/stats: throughput, success rate, lag and failing endpoints of the
whole service over a window, for admins."""

from __future__ import annotations

from datetime import timedelta

import pytest

from producer.payloads import format_timestamp
from tests.helpers.api import Api, assert_error
from tests.helpers.waiting import wait_until


@pytest.fixture
def service(make_producer, clock):
    """A producer on a fake clock (frozen while its worker runs) and its API."""
    producer = make_producer(clock=clock)
    return producer, Api(producer)


def window(clock, hours: int = 3) -> dict[str, str]:
    """A window of ``hours`` up to an hour after the fake clock's now."""
    return {
        "since": format_timestamp(clock.now - timedelta(hours=hours - 1)),
        "until": format_timestamp(clock.now + timedelta(hours=1)),
    }


def deliver_all(producer, attempts: int) -> None:
    """Run a worker until ``attempts`` attempts are recorded."""
    with producer.start_worker_thread():
        wait_until(
            lambda: (
                sum(len(producer.list_attempts(d.id)) for d in producer.list_deliveries().data)
                >= attempts
            ),
            what=f"{attempts} attempts",
        )


def test_stats_need_an_admin_key(api):
    assert_error(api.tenant("acme").get("/v1/stats"), 403, "forbidden")
    assert_error(api.anonymous.get("/v1/stats"), 401, "unauthorized")


def test_stats_count_attempts_and_their_success_rate(service, clock, receiver):
    producer, api = service
    producer.create_endpoint(receiver.url("/ok"))
    producer.create_endpoint(receiver.script("/down", [500]), retry_schedule=[0, 3600])
    producer.send("invoice.paid", {"n": 1})
    producer.send("invoice.paid", {"n": 2})
    deliver_all(producer, 4)
    body = api.admin.get("/v1/stats", params=window(clock)).json()
    assert (body["attempts"], body["succeeded"], body["failed"]) == (4, 3, 1)
    assert body["success_rate"] == 0.75
    assert body["attempts_per_minute"] == 4 / (3 * 60)  # four attempts in a window of three hours


def test_stats_list_the_endpoints_with_most_failed_attempts_first(service, clock, receiver):
    producer, api = service
    producer.create_endpoint(receiver.url("/ok"), tenant="acme")
    worse = producer.create_endpoint(receiver.script("/worse", [500, 500]), tenant="acme")
    bad = producer.create_endpoint(receiver.script("/bad", [500]), tenant="globex")
    producer.send("invoice.paid", {"n": 1}, tenant="acme")
    producer.send("invoice.paid", {"n": 2}, tenant="acme")
    producer.send("invoice.paid", {"n": 3}, tenant="globex")
    deliver_all(producer, 5)
    failing = api.admin.get("/v1/stats", params=window(clock)).json()["failing_endpoints"]
    assert failing == [
        {
            "endpoint_id": worse.id,
            "tenant": "acme",
            "url": receiver.url("/worse"),
            "failed": 2,
            "attempts": 2,
        },
        {
            "endpoint_id": bad.id,
            "tenant": "globex",
            "url": receiver.url("/bad"),
            "failed": 1,
            "attempts": 1,
        },
    ]


def test_stats_give_every_hour_of_the_window_with_its_longest_first_wait(service, clock, receiver):
    producer, api = service
    producer.create_endpoint(receiver.url("/ok"))
    producer.send("invoice.paid", {"n": 1})
    clock.advance(90)
    deliver_all(producer, 1)
    hours = api.admin.get("/v1/stats", params=window(clock, hours=3)).json()["hours"]
    assert [h["hour"] for h in hours] == [
        "2026-11-22T08:00:00.000Z",
        "2026-11-22T09:00:00.000Z",
        "2026-11-22T10:00:00.000Z",
        "2026-11-22T11:00:00.000Z",
    ]
    assert hours[2] == {
        "hour": "2026-11-22T10:00:00.000Z",
        "succeeded": 1,
        "failed": 0,
        "max_wait_seconds": pytest.approx(90, abs=0.01),
    }
    assert hours[0] == {
        "hour": "2026-11-22T08:00:00.000Z",
        "succeeded": 0,
        "failed": 0,
        "max_wait_seconds": None,
    }


def test_stats_report_the_lag_now(service, clock, receiver):
    producer, api = service
    producer.create_endpoint(receiver.url("/ok"))
    producer.send("invoice.paid", {"n": 1})
    clock.advance(120)
    body = api.admin.get("/v1/stats").json()
    assert body["deliveries_due"] == 1
    assert body["queue_lag_seconds"] == 120
    assert body["attempts"] == 0 and body["success_rate"] is None


def test_stats_default_to_the_last_24_hours(service, clock):
    _, api = service
    body = api.admin.get("/v1/stats").json()
    assert body["since"] == "2026-11-21T10:00:00.000Z"
    assert body["until"] == "2026-11-22T10:00:00.000Z"
    assert len(body["hours"]) == 24


def test_stats_refuse_a_window_that_ends_before_it_starts(service, clock):
    _, api = service
    params = {"since": format_timestamp(clock.now), "until": format_timestamp(clock.now)}
    assert_error(
        api.admin.get("/v1/stats", params=params), 422, "validation_error", field="query.until"
    )


def test_stats_refuse_a_window_longer_than_31_days(service, clock):
    _, api = service
    params = {"since": format_timestamp(clock.now - timedelta(days=32))}
    assert_error(
        api.admin.get("/v1/stats", params=params), 422, "validation_error", field="query.since"
    )
