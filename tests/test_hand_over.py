"""Sends hand their deliveries straight to the idle worker of their own
process (``Worker.take_over``): only what a claim would lease and the worker
can start at once, and nothing is lost when the worker stops or the send's
transaction fails."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from producer import Producer
from producer.models import DeliveryRow
from tests.helpers.waiting import start_idle_worker, wait_until


def leases(producer: Producer) -> list[tuple[str, str | None]]:
    """(status, lease owner) of every delivery, oldest first."""
    with producer.store.transaction() as s:
        rows = s.execute(
            select(DeliveryRow.status, DeliveryRow.lease_owner).order_by(DeliveryRow.id)
        ).all()
    return [(status, owner) for status, owner in rows]


def idle_worker(producer: Producer) -> Any:
    """Start ``producer``'s worker thread; returns it with its worker once
    that worker is idle (it takes sends over from then)."""
    thread, _ = start_idle_worker(producer)
    return thread, producer.context.taker


@pytest.mark.parametrize("limit", [{"max_in_flight": 1}, {"ordering": "fifo"}])
def test_a_send_hands_over_only_what_the_endpoint_may_start(make_producer, receiver, limit):
    producer = make_producer()
    producer.create_endpoint(receiver.slow("/slow", 0.5), **limit)
    thread, worker = idle_worker(producer)
    with thread:
        producer.send_many([("a.b", {"i": i}) for i in range(3)])
        # One starts at once; the others wait in the queue for its slot. (A
        # claim that was under way may lease one of them ahead, as claims do,
        # but not the last: a claim leases one ahead of an endpoint's cap of 1.)
        now = leases(producer)
        assert now[0] == ("sending", worker.owner)
        assert now[-1] == ("pending", None), now
        got = receiver.wait_for(3, timeout=10)
    arrived = [json.loads(r.body)["data"]["i"] for r in got]
    assert arrived == [0, 1, 2] if "ordering" in limit else sorted(arrived) == [0, 1, 2]
    assert receiver.max_concurrent["/slow"] == 1


def test_a_send_leaves_an_endpoint_another_worker_serves_to_it(make_producer, receiver):
    busy, idle = make_producer(), make_producer()
    busy.create_endpoint(receiver.slow("/slow", 1.0), max_in_flight=4)
    with busy.start_worker_thread():
        busy.send("a.b", {"i": 0})
        wait_until(lambda: leases(busy)[0][0] == "sending", what="the first delivery leased")
        [(_, other)] = leases(busy)
        thread, worker = idle_worker(idle)
        with thread:
            idle.send("a.b", {"i": 1})
            [_, (status, owner)] = leases(idle)
            assert owner != worker.owner, (status, owner)
            receiver.wait_for(2, timeout=10)
            wait_until(lambda: [s for s, _ in leases(idle)] == ["succeeded"] * 2)
    assert other != worker.owner


@pytest.mark.parametrize("when", ["stopping", "stopped"])
def test_deliveries_handed_to_a_worker_that_stops_go_back_to_the_queue(
    make_producer, receiver, when
):
    producer = make_producer()
    producer.create_endpoint(receiver.url("/ok"))
    thread, worker = idle_worker(producer)
    hand_over = worker.hand_over

    def late(jobs: list[Any]) -> None:
        if when == "stopping":
            worker.stop()  # the worker is still running when the jobs arrive
        else:
            thread.stop()  # its event loop has closed
        hand_over(jobs)

    worker.hand_over = late
    producer.send("a.b", {})
    thread.stop()
    assert leases(producer) == [("pending", None)]
    assert receiver.received() == []
    with producer.start_worker_thread():
        receiver.wait_for(1)


def test_a_failed_send_gives_its_deliveries_back(make_producer, receiver):
    """A transaction that fails after the worker took its deliveries over
    frees the worker's slots again: the next send is handed over too."""
    producer = make_producer(worker_concurrency=1, worker_poll_interval=60)
    producer.create_endpoint(receiver.url("/ok"))
    thread, worker = idle_worker(producer)
    take_over = worker.take_over

    def failing(s: Session, ids: Any) -> Any:
        jobs = take_over(s, ids)
        assert jobs  # taken: the failure below must give them back

        def commit_fails(_: Session) -> None:
            raise RuntimeError("the commit failed")

        event.listen(s, "before_commit", commit_fails, once=True)
        return jobs

    claims: list[int] = []
    producer.context.hooks.on_claim(lambda _worker, claimed: claims.append(claimed))
    with thread:
        worker.take_over = failing
        with pytest.raises(RuntimeError, match="the commit failed"):
            producer.send("a.b", {"i": 0})
        del worker.take_over
        producer.send("a.b", {"i": 1})
        [got] = receiver.wait_for(1)
    assert json.loads(got.body)["data"] == {"i": 1}
    assert claims == []  # handed over, not claimed: the failed send held no slot
    assert leases(producer) == [("succeeded", None)]


def test_without_take_over_the_worker_claims_what_is_sent(make_producer, receiver):
    producer = make_producer(worker_take_over=False, worker_poll_interval=60)
    producer.create_endpoint(receiver.url("/ok"))
    claims: list[int] = []
    producer.context.hooks.on_claim(lambda _worker, claimed: claims.append(claimed))
    with producer.start_worker_thread():
        wait_until(lambda: claims, what="the worker's first look")
        assert producer.context.taker is None
        producer.send("a.b", {})
        receiver.wait_for(1)
    assert 1 in claims  # woken by the send, it found the delivery by a claim
