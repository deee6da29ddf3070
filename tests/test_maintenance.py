"""Periodic maintenance: lease reclaim, retention purge, health evaluation,
and the worker's patience with a database that errs transiently."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.exc import OperationalError

from producer import Producer
from producer.models import DeliveryRow
from producer.outcomes import Outcomes
from producer.worker import Worker
from tests.helpers.clock import START

URL = "https://r.example/h"


def _lease_all(producer: Producer, seconds: float) -> None:
    now, queue = producer.clock(), producer.context.queue
    with producer.store.transaction() as s:
        ids = [r.id for r in queue.due_candidates(s, now=now, limit=100, exclude_endpoints=[])]
        queue.mark_sending(
            s, ids, owner="gone-worker", lease_expires_at=now + timedelta(seconds=seconds), now=now
        )


def test_expired_leases_go_back_to_the_queue(database_url, clock):
    producer = Producer(database_url, clock=clock, auto_migrate=True)
    producer.create_endpoint(URL)
    producer.send("a.b", {})
    _lease_all(producer, 60)
    assert producer.reclaim_expired_leases() == 0  # still leased
    clock.advance(61)
    assert producer.reclaim_expired_leases() == 1
    [delivery] = producer.list_deliveries().data
    assert delivery.status == "pending" and delivery.next_attempt_at == clock.now


def test_purge_drops_old_finished_messages_and_attempts_but_never_pending(database_url, clock):
    producer = Producer(database_url, clock=clock, auto_migrate=True, retention_days=30)
    endpoint = producer.create_endpoint(URL)
    finished = producer.send("a.b", {"old": True})
    pending = producer.send("a.b", {"old": True, "pending": True})
    [done] = producer.list_deliveries(message_id=finished.id).data
    with producer.store.transaction() as s:
        producer.store.get_delivery(s, done.id, tenant=None).status = "succeeded"
    clock.advance(31 * 86400)
    recent = producer.send("a.b", {"new": True})

    producer.purge_expired()

    kept = {m.id for m in producer.list_messages().data}
    assert kept == {pending.id, recent.id}
    assert producer.get_endpoint(endpoint.id).id == endpoint.id


def test_purge_catches_up_in_one_run_whatever_the_backlog(database_url, clock):
    producer = Producer(database_url, clock=clock, auto_migrate=True, retention_days=30)
    producer.create_endpoint(URL)
    producer.send_many([("a.b", {"n": n}) for n in range(7)])
    with producer.store.transaction() as s:
        s.execute(update(DeliveryRow).values(status="succeeded"))
    clock.advance(31 * 86400)

    assert producer.purge_expired(batch=3) == (0, 7)
    assert producer.list_messages().data == []


def test_health_check_disables_an_endpoint_failing_past_the_thresholds(database_url, clock):
    producer = Producer(
        database_url,
        clock=clock,
        auto_migrate=True,
        disable_after_failures=3,
        disable_after_seconds=3600,
    )
    endpoint = producer.create_endpoint(URL)
    with producer.store.transaction() as s:
        row = producer.store.get_endpoint(s, endpoint.id)
        row.consecutive_failures = 5
        row.failing_since = clock.now
    events: list[str] = []
    producer.on_event(lambda kind, data: events.append(kind))
    assert producer.evaluate_endpoint_health() == 0  # failing, but not for long enough
    clock.advance(3601)
    assert producer.evaluate_endpoint_health() == 1
    ep = producer.get_endpoint(endpoint.id)
    assert (ep.status, ep.disabled_reason) == ("disabled", "failing")
    assert events == ["endpoint.disabled"]


def test_worker_retries_transient_database_errors(database_url):
    producer = Producer(database_url, auto_migrate=True)
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise OperationalError("select 1", {}, Exception("server closed the connection"))
        return "answered"

    async def go() -> str:
        worker = Worker(producer.context, Outcomes(producer.context))
        try:
            return await worker._db(flaky)
        finally:
            await worker.transport.aclose()

    assert asyncio.run(go()) == "answered" and len(calls) == 3


def test_metrics_snapshot_counts_deliveries_queue_and_disabled_endpoints(database_url):
    producer = Producer(database_url, auto_migrate=True)
    a = producer.create_endpoint(URL)
    b = producer.create_endpoint(URL)
    producer.send("a.b", {})
    producer.disable_endpoint(b.id)
    snapshot = producer.metrics_snapshot()
    assert snapshot.pop("queue_lag_seconds") >= 0  # on the real clock: how long this took
    assert snapshot == {
        "deliveries": {"pending": 2},
        "queue_depth": 1,  # the disabled endpoint's delivery is held, not due
        "endpoints_disabled": 1,
    }
    assert producer.get_endpoint(a.id).status == "enabled"


def test_hourly_counts_group_finished_deliveries_by_creation_hour(database_url, clock):
    producer = Producer(database_url, clock=clock, auto_migrate=True)
    endpoint = producer.create_endpoint(URL)
    outcomes = [("succeeded", 0), ("failed", 0), ("succeeded", 3700), ("pending", 3700)]
    for status, offset in outcomes:
        clock.now = START + timedelta(seconds=offset)
        message = producer.send("a.b", {})
        [delivery] = producer.list_deliveries(message_id=message.id).data
        with producer.store.transaction() as s:
            producer.store.get_delivery(s, delivery.id, tenant=None).status = status
    start = START
    counts = producer.endpoint_hourly_counts(
        endpoint.id, since=start, until=start + timedelta(hours=3)
    )
    assert [(c.hour, c.succeeded, c.failed) for c in counts] == [
        (start, 1, 1),
        (start + timedelta(hours=1), 1, 0),
    ]


def test_success_rates_of_several_endpoints_in_one_call(database_url):
    producer = Producer(database_url, auto_migrate=True)
    good = producer.create_endpoint(URL)
    idle = producer.create_endpoint(URL, event_types=["other.*"])
    for status in ("succeeded", "succeeded", "failed"):
        message = producer.send("a.b", {})
        [delivery] = producer.list_deliveries(message_id=message.id).data
        with producer.store.transaction() as s:
            producer.store.get_delivery(s, delivery.id, tenant=None).status = status
    rates = producer.endpoint_success_rates([good.id, idle.id])
    assert (rates[good.id].succeeded, rates[good.id].failed) == (2, 1)
    assert rates[good.id].success_rate == 2 / 3
    assert rates[idle.id].success_rate is None
