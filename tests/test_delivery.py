"""The delivery engine end to end: a worker, a real receiver on 127.0.0.1,
signatures checked with the standardwebhooks package."""

from __future__ import annotations

import itertools
import json
import time
from datetime import timedelta

import pytest

from producer import Producer
from tests.helpers.waiting import start_idle_worker, wait_until


def statuses(producer: Producer, **filters: object) -> list[str]:
    return [d.status for d in producer.list_deliveries(limit=250, **filters).data]  # type: ignore[arg-type]


def test_events_reach_the_receiver_signed_and_are_logged(producer, receiver):
    endpoint = producer.create_endpoint(receiver.url("/hooks"), headers={"X-Team": "billing"})
    with producer.start_worker_thread():
        messages = [producer.send("invoice.paid", {"n": i}) for i in range(3)]
        got = receiver.wait_for(3)
        wait_until(lambda: statuses(producer) == ["succeeded"] * 3, what="3 succeeded")

    by_id = {r.webhook_id: r for r in got}
    for message in messages:
        request = by_id[message.id]
        request.verify(endpoint.secret)
        assert request.body == message.payload
        assert request.headers["content-type"] == "application/json"
        assert request.headers["user-agent"].startswith("webhook-producer/")
        assert request.headers["webhook-version"] == "1"
        assert request.headers["x-team"] == "billing"
        [delivery] = producer.list_deliveries(message_id=message.id).data
        [attempt] = producer.list_attempts(delivery.id)
        assert (attempt.number, attempt.trigger, attempt.succeeded) == (1, "scheduled", True)
        assert attempt.response_status == 200 and attempt.response_body == "status 200"
        assert attempt.request_headers["webhook-signature"].startswith("v1,")
        assert attempt.request_url == receiver.url("/hooks")
        assert delivery.attempt_count == 1 and delivery.last_status_code == 200


def test_failing_receiver_is_retried_on_the_schedule_until_it_succeeds(
    make_producer, clock, receiver
):
    producer = make_producer(clock=clock)
    endpoint = producer.create_endpoint(receiver.script("/flaky", [500, 503]))
    with producer.start_worker_thread():
        message = producer.send("invoice.paid", {"n": 1})
        receiver.wait_for(1)
        wait_until(lambda: len(_attempts(producer, message.id)) == 1, what="attempt 1")
        time.sleep(0.2)
        assert len(receiver.received()) == 1, "retried before the schedule said so"

        clock.advance(6)  # past 5 s + 20 % jitter
        receiver.wait_for(2)
        wait_until(lambda: len(_attempts(producer, message.id)) == 2, what="attempt 2")
        clock.advance(361)  # past 5 min + 20 %
        receiver.wait_for(3)
        wait_until(lambda: statuses(producer) == ["succeeded"], what="success")
        producer.close()

    attempts = _attempts(producer, message.id)
    assert [(a.number, a.response_status, a.succeeded) for a in attempts] == [
        (1, 500, False),
        (2, 503, False),
        (3, 200, True),
    ]
    waits = [(a.next_attempt_at - a.started_at).total_seconds() for a in attempts[:2]]
    assert 4 <= waits[0] <= 6 and 240 <= waits[1] <= 360
    assert attempts[2].next_attempt_at is None
    assert all(r.signed_with(endpoint.secret) for r in receiver.received())
    assert {r.webhook_id for r in receiver.received()} == {message.id}


def test_gone_fails_the_delivery_and_disables_the_endpoint(producer, receiver):
    endpoint = producer.create_endpoint(receiver.script("/gone", [410]))
    events: list[str] = []
    producer.on_event(lambda kind, data: events.append(kind))
    with producer.start_worker_thread():
        producer.send("a.b", {})
        wait_until(lambda: statuses(producer) == ["failed"], what="failed")
        producer.send("a.b", {"second": True})
        time.sleep(0.3)
    ep = producer.get_endpoint(endpoint.id)
    assert (ep.status, ep.disabled_reason) == ("disabled", "gone")
    assert "endpoint.disabled" in events
    assert sorted(statuses(producer)) == ["failed", "pending"]  # the second one is held
    assert len(receiver.received()) == 1


def test_timeout_is_recorded_and_retried_no_sooner_than_a_minute(producer, receiver):
    producer.create_endpoint(receiver.hang("/stuck"), timeout_seconds=0.5)
    with producer.start_worker_thread():
        message = producer.send("a.b", {})
        wait_until(lambda: len(_attempts(producer, message.id)) == 1, what="attempt")
    [attempt] = _attempts(producer, message.id)
    assert attempt.error == "timeout" and attempt.response_status is None
    assert (attempt.next_attempt_at - attempt.started_at).total_seconds() >= 60
    assert statuses(producer) == ["pending"]


def test_a_hanging_endpoint_does_not_delay_a_healthy_one(make_producer, receiver):
    producer = make_producer(worker_concurrency=32)
    producer.create_endpoint(receiver.hang("/stuck"), event_types=["slow.*"], timeout_seconds=10)
    healthy = producer.create_endpoint(receiver.url("/fast"), event_types=["fast.*"])
    with producer.start_worker_thread():
        for i in range(30):
            producer.send("slow.event", {"i": i})
        receiver.wait_for(10, path="/stuck")  # the hanging endpoint's slots are full
        started = time.monotonic()
        for i in range(20):
            producer.send("fast.event", {"i": i})
        receiver.wait_for(20, path="/fast", timeout=5)
        elapsed = time.monotonic() - started
        assert len(receiver.received("/stuck")) == 10  # capped at 10 in flight
        wait_until(
            lambda: statuses(producer, endpoint_id=healthy.id) == ["succeeded"] * 20,
            what="healthy endpoint done",
        )
    assert elapsed < 5


def test_rotated_secret_signs_with_both_secrets_during_the_grace_period(producer, receiver):
    endpoint = producer.create_endpoint(receiver.url("/hooks"))
    new_secret = producer.rotate_endpoint_secret(endpoint.id, grace_period_seconds=3600)
    with producer.start_worker_thread():
        producer.send("a.b", {})
        [request] = receiver.wait_for(1)
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    request.verify(endpoint.secret)
    request.verify(new_secret)


def test_exhausted_schedule_fails_the_delivery_and_reports_it(producer, receiver):
    producer.create_endpoint(receiver.script("/down", [500] * 10), retry_schedule=[0, 0])
    events: list[tuple[str, dict]] = []
    producer.on_event(lambda kind, data: events.append((kind, data)))
    with producer.start_worker_thread():
        message = producer.send("a.b", {})
        wait_until(lambda: statuses(producer) == ["failed"], what="failed")
    assert len(receiver.received()) == 2
    exhausted = [data for kind, data in events if kind == "delivery.exhausted"]
    assert exhausted and exhausted[0]["message_id"] == message.id


def test_fifo_endpoint_receives_messages_in_creation_order(producer, receiver):
    producer.create_endpoint(
        receiver.script("/fifo", [500]), ordering="fifo", retry_schedule=[0, 0.2, 0.2]
    )
    sent = [producer.send("a.b", {"i": i}).id for i in range(15)]
    with producer.start_worker_thread():
        receiver.wait_for(16)
        wait_until(lambda: statuses(producer) == ["succeeded"] * 15, what="all delivered")
    order = [r.webhook_id for r in receiver.received()]
    # The first message failed once and was retried before any later one went out.
    assert order == [sent[0], *sent]


def test_failing_endpoint_is_disabled_and_reported(make_producer, receiver):
    producer = make_producer(
        probe_after_failures=2, disable_after_failures=3, disable_after_seconds=0
    )
    endpoint = producer.create_endpoint(
        receiver.script("/bad", [500] * 3), retry_schedule=[0, 0, 0, 0]
    )
    events: list[str] = []
    producer.on_event(lambda kind, data: events.append(kind))
    with producer.start_worker_thread():
        producer.send("a.b", {})
        wait_until(lambda: producer.get_endpoint(endpoint.id).status == "disabled", what="disabled")
        ep = producer.get_endpoint(endpoint.id)
        assert ep.disabled_reason == "failing" and ep.consecutive_failures == 3
        assert statuses(producer) == ["pending"]  # held, not dropped
        producer.enable_endpoint(endpoint.id)
        wait_until(lambda: statuses(producer) == ["succeeded"], what="resumed")
    assert events == ["endpoint.failing", "endpoint.disabled"]
    assert producer.get_endpoint(endpoint.id).consecutive_failures == 0


def test_success_after_a_failure_streak_reports_recovery(make_producer, receiver):
    producer = make_producer(probe_after_failures=2)
    endpoint = producer.create_endpoint(
        receiver.script("/bad", [500] * 2), retry_schedule=[0, 0, 0]
    )
    events: list[str] = []
    producer.on_event(lambda kind, data: events.append(kind))
    with producer.start_worker_thread():
        producer.send("a.b", {})
        wait_until(lambda: statuses(producer) == ["succeeded"], what="succeeded")
    assert events == ["endpoint.failing", "endpoint.recovered"]
    ep = producer.get_endpoint(endpoint.id)
    assert ep.consecutive_failures == 0 and ep.failing_since is None


def test_operational_events_reach_the_operations_tenant(make_producer, receiver):
    producer = make_producer(operations_tenant="ops")
    ops = producer.create_endpoint(receiver.url("/ops"), tenant="ops")
    producer.create_endpoint(receiver.script("/gone", [410]), tenant="acme")
    with producer.start_worker_thread():
        producer.send("a.b", {}, tenant="acme")
        [request] = receiver.wait_for(1, path="/ops")
    request.verify(ops.secret)
    body = json.loads(request.body)
    assert body["type"] == "endpoint.disabled"
    assert body["data"]["tenant"] == "acme" and body["data"]["reason"] == "gone"


def test_manual_retry_makes_a_manual_attempt(producer, receiver):
    producer.create_endpoint(receiver.script("/once", [500]), retry_schedule=[0])
    with producer.start_worker_thread():
        message = producer.send("a.b", {})
        wait_until(lambda: statuses(producer) == ["failed"], what="failed")
        [delivery] = producer.list_deliveries(message_id=message.id).data
        producer.retry_delivery(delivery.id)
        wait_until(lambda: statuses(producer) == ["succeeded"], what="succeeded")
    assert [a.trigger for a in _attempts(producer, message.id)] == ["scheduled", "manual"]


def test_test_send_answers_synchronously_even_when_disabled(producer, receiver):
    endpoint = producer.create_endpoint(receiver.url("/hooks"))
    producer.disable_endpoint(endpoint.id)
    result = producer.test_endpoint(endpoint.id, data={"hello": "world"})
    assert result.succeeded and result.status_code == 200
    assert result.response_body == "status 200" and result.duration_ms > 0
    [request] = receiver.received()
    request.verify(endpoint.secret)
    assert json.loads(request.body)["type"] == "webhook.test"
    [attempt] = producer.list_attempts(result.delivery_id)
    assert attempt.trigger == "test"
    assert producer.get_delivery(result.delivery_id).status == "succeeded"


def test_failed_test_send_is_not_retried(producer, receiver):
    endpoint = producer.create_endpoint(receiver.script("/bad", [500]))
    result = producer.test_endpoint(endpoint.id)
    assert not result.succeeded and result.status_code == 500
    delivery = producer.get_delivery(result.delivery_id)
    assert delivery.status == "failed" and delivery.next_attempt_at is None
    assert producer.get_endpoint(endpoint.id).consecutive_failures == 0


def test_recover_requeues_failed_deliveries_of_a_window(producer, receiver):
    endpoint = producer.create_endpoint(receiver.script("/down", [500, 500]), retry_schedule=[0])
    with producer.start_worker_thread():
        start = producer.clock() - timedelta(seconds=1)
        producer.send("a.b", {"i": 1})
        producer.send("a.b", {"i": 2})
        wait_until(lambda: statuses(producer) == ["failed", "failed"], what="failed")
        assert producer.recover_endpoint(endpoint.id, since=start) == 2
        wait_until(lambda: statuses(producer) == ["succeeded", "succeeded"], what="recovered")


def test_graceful_shutdown_releases_what_did_not_finish(make_producer, receiver):
    producer = make_producer(shutdown_grace_seconds=0.3)
    producer.create_endpoint(receiver.hang("/stuck"), timeout_seconds=30)
    worker = producer.start_worker_thread()
    message = producer.send("a.b", {})
    receiver.wait_for(1)
    worker.stop()
    [delivery] = producer.list_deliveries(message_id=message.id).data
    assert delivery.status == "pending" and delivery.attempt_count == 0


def test_probing_endpoint_gets_one_delivery_at_a_time(make_producer, receiver):
    producer = make_producer(probe_after_failures=1)
    receiver.script("/slow", [500] * 4)
    producer.create_endpoint(receiver.slow("/slow", 0.2), retry_schedule=[0] * 5)
    with producer.store.transaction() as s:
        producer.store.endpoints_of_tenant(s, "default")[0].consecutive_failures = 3
    with producer.start_worker_thread():
        for i in range(4):
            producer.send("a.b", {"i": i})
        got = receiver.wait_for(4, timeout=10)
    gaps = [b.at - a.at for a, b in itertools.pairwise(got)]
    assert all(gap >= 0.15 for gap in gaps), gaps


def _attempts(producer: Producer, message_id: str):
    [delivery] = producer.list_deliveries(message_id=message_id).data
    return producer.list_attempts(delivery.id)


def test_at_light_load_sends_reach_the_worker_without_a_claim(make_producer, receiver):
    """An idle worker of the sending process takes each send's delivery
    straight from the send's transaction: no claim runs (none in vain
    either, and on PostgreSQL no notification wakes one)."""
    producer = make_producer(worker_poll_interval=60)  # no polls in between
    producer.create_endpoint(receiver.url("/ok"))
    sends = 8
    thread, claims = start_idle_worker(producer)  # its first looks, before any send
    with thread:
        for i in range(sends):
            producer.send("invoice.paid", {"i": i})
            wait_until(lambda n=i + 1: len(receiver.received("/ok")) == n)
            time.sleep(0.05)  # the delivery's slot comes free meanwhile
    assert claims == []
    assert [d.status for d in producer.list_deliveries().data] == ["succeeded"] * sends


@pytest.mark.parametrize(
    ("settings", "endpoint"),
    [
        ({"worker_concurrency": 4, "worker_tenant_share": 0.25}, {}),  # a tenant's share
        ({}, {"max_in_flight": 2}),  # an endpoint's cap
        ({"worker_batch_size": 3}, {}),  # the batch size
    ],
    ids=["tenant-share", "endpoint-cap", "batch-size"],
)
def test_work_a_claim_left_behind_is_claimed_as_slots_free_without_waiting_for_a_poll(
    make_producer, receiver, settings, endpoint
):
    """The other side of claiming only when there is something to claim: what
    a limit kept out of one claim is claimed as soon as room frees, not at
    the next poll (an hour away here)."""
    producer = make_producer(worker_poll_interval=3600, **settings)
    producer.create_endpoint(receiver.url("/ok"), **endpoint)
    sends = 30
    producer.send_many([("invoice.paid", {"i": i}) for i in range(sends)])
    with producer.start_worker_thread():
        wait_until(lambda: len(receiver.received("/ok")) == sends, timeout=20)
