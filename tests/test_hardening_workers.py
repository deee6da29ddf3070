"""Fairness and liveness of the worker.

- One tenant cannot starve the others: a tenant whose endpoints hang holds at
  most its share of a worker's slots (``worker_tenant_share``), and its
  deliveries are not leased past what that share can send.
- A live worker renews its leases; a lease that stopped being renewed
  belongs to a dead worker and holds nothing back.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from producer.models import DeliveryRow
from tests.helpers.waiting import wait_until

HANGING_ENDPOINTS = 4
CAP = 4  # CAP x HANGING_ENDPOINTS = 16 > the worker's 8 slots


@pytest.mark.slow
def test_a_tenant_with_hanging_endpoints_does_not_delay_another_tenant(make_producer, receiver):
    producer = make_producer(worker_concurrency=8, request_timeout=60)
    for i in range(HANGING_ENDPOINTS):
        producer.create_endpoint(receiver.hang(f"/hang{i}"), tenant="a", max_in_flight=CAP)
    producer.create_endpoint(receiver.url("/fast"), tenant="b")

    with producer.start_worker_thread():
        producer.send_many([("a.b", {"i": i}) for i in range(200)], tenant="a")
        # Tenant a holds its share of the slots: half of 8.
        wait_until(lambda: len(receiver.received()) >= 4, what="tenant a's requests hanging")
        latencies = []
        for i in range(20):
            sent_at = time.monotonic()
            producer.send("a.b", {"i": i}, tenant="b")
            arrived = receiver.wait_for(i + 1, path="/fast", timeout=30)[i]
            latencies.append(arrived.at - sent_at)
        hanging = len(receiver.received()) - len(receiver.received("/fast"))

    assert sorted(latencies)[18] < 1.0, latencies  # p95 of 20
    assert hanging == 4


def test_a_live_worker_renews_its_leases(make_producer, receiver):
    producer = make_producer(lease_seconds=2)
    producer.create_endpoint(receiver.hang("/hang"))
    producer.send("a.b", {"n": 1})

    with producer.start_worker_thread():
        receiver.wait_for(1)
        [leased] = producer.list_deliveries(status="sending").data
        first = _lease_of(producer, leased.id)
        # Renewed every half second; a lease left alone would lapse after 2 s.
        wait_until(
            lambda: (_lease_of(producer, leased.id) or first) > first + timedelta(seconds=2),
            what="the lease renewed past its first term",
        )


def test_an_expired_lease_of_another_worker_does_not_hold_its_endpoint(make_producer, clock):
    producer = make_producer(clock=clock)
    endpoint = producer.create_endpoint("https://example.com/hooks")
    producer.send_many([("a.b", {"i": i}) for i in range(2)])
    queue, now = producer.context.queue, clock()
    with producer.store.transaction() as s:
        [first, _] = queue.due_candidates(s, now=now, limit=10, exclude_endpoints=[])
        queue.mark_sending(
            s, [first.id], owner="dead", lease_expires_at=now + timedelta(seconds=5), now=now
        )

    with producer.store.transaction() as s:
        live = queue.sending_counts(s, exclude_owner="me", now=now)
        leased = queue.endpoints_leased_by_others(s, {endpoint.id}, owner="me", now=now)
        later = now + timedelta(seconds=6)
        expired = queue.sending_counts(s, exclude_owner="me", now=later)
        expired_leased = queue.endpoints_leased_by_others(s, {endpoint.id}, owner="me", now=later)

    assert (live, leased) == ({endpoint.id: 1}, {endpoint.id})
    assert (expired, expired_leased) == ({}, set())


def _lease_of(producer, delivery_id):
    with producer.store.transaction() as s:
        return s.get(DeliveryRow, delivery_id).lease_expires_at
