"""Replay of what an endpoint missed over a window, and bulk retries by the log's filters."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from producer import NotFoundError, ValidationError, replay
from producer.models import DeliveryRow
from tests.helpers.api import assert_error, create_endpoint, send
from tests.helpers.store import mark_failed

URL = "https://receiver.example/hooks"


@pytest.fixture
def timed(make_producer, clock):
    return make_producer(clock=clock)


def succeed(producer, delivery_ids) -> None:
    with producer.context.store.transaction() as s:
        s.execute(
            update(DeliveryRow)
            .where(DeliveryRow.id.in_(list(delivery_ids)))
            .values(status="succeeded", next_attempt_at=None)
        )


def deliveries_of(producer, endpoint_id):
    return {
        d.message_id: d for d in producer.list_deliveries(endpoint_id=endpoint_id, limit=250).data
    }


def test_replay_creates_deliveries_only_for_absent_messages_of_the_window(timed, clock):
    endpoint = timed.create_endpoint(URL, tenant="acme", event_types=["order.*"])
    before = timed.send("order.placed", {"n": 0}, tenant="acme")
    clock.advance(60)
    since = clock()
    delivered = timed.send("order.placed", {"n": 1}, tenant="acme")
    failed = timed.send("order.placed", {"n": 2}, tenant="acme")
    succeed(timed, [d.id for d in timed.list_deliveries(message_id=delivered.id).data])
    mark_failed(timed, [d.id for d in timed.list_deliveries(message_id=failed.id).data])
    # Messages it never had: sent while it was subscribed elsewhere.
    timed.update_endpoint(endpoint.id, event_types=["user.*"])
    absent = [timed.send("order.placed", {"n": n}, tenant="acme") for n in (3, 4)]
    timed.send("order.placed", {"n": 5}, tenant="other")
    timed.send("invoice.paid", {"n": 6}, tenant="acme")
    timed.update_endpoint(endpoint.id, event_types=["order.*"])
    clock.advance(60)
    until = clock()
    timed.update_endpoint(endpoint.id, event_types=["user.*"])
    timed.send("order.placed", {"n": 7}, tenant="acme")
    timed.update_endpoint(endpoint.id, event_types=["order.*"])

    result = timed.replay_endpoint(endpoint.id, since=since, until=until)

    assert (result.created, result.requeued) == (2, 0)
    got = deliveries_of(timed, endpoint.id)
    assert set(got) == {before.id, delivered.id, failed.id} | {m.id for m in absent}
    assert {got[m.id].status for m in absent} == {"pending"}
    assert got[delivered.id].status == "succeeded" and got[failed.id].status == "failed"


def test_replay_with_include_failed_requeues_the_failed_ones_too(timed, clock):
    endpoint = timed.create_endpoint(URL, tenant="acme")
    since = clock()
    failed = timed.send("order.placed", {}, tenant="acme")
    mark_failed(timed, [d.id for d in timed.list_deliveries(message_id=failed.id).data])

    result = timed.replay_endpoint(endpoint.id, since=since, include_failed=True)

    assert (result.created, result.requeued) == (0, 1)
    assert deliveries_of(timed, endpoint.id)[failed.id].status == "pending"


def test_running_a_replay_twice_creates_nothing_new(timed, clock):
    since = clock()
    messages = [timed.send("order.placed", {"n": n}, tenant="acme") for n in range(7)]
    endpoint = timed.create_endpoint(URL, tenant="acme")
    seen: list[int] = []

    first = timed.replay_endpoint(endpoint.id, since=since, progress=seen.append)
    second = timed.replay_endpoint(endpoint.id, since=since)

    assert (first.created, second.created) == (7, 0)
    assert set(deliveries_of(timed, endpoint.id)) == {m.id for m in messages}
    assert sum(seen) == 7


def test_replay_works_in_batches(timed, clock):
    since = clock()
    for n in range(5):
        timed.send("order.placed", {"n": n}, tenant="acme")
    endpoint = timed.create_endpoint(URL, tenant="acme")
    seen: list[int] = []

    created = replay.replay_endpoint(
        timed.context,
        endpoint.id,
        since=since,
        until=None,
        event_types=None,
        include_failed=False,
        tenant=None,
        progress=seen.append,
        batch=2,
    )

    assert created.created == 5 and seen == [2, 2, 1]


def test_replay_routes_as_of_now_channels_and_filter_included(timed, clock):
    since = clock()
    wanted = timed.send("order.placed", {"amount": 500}, tenant="acme", channels=["eu"])
    timed.send("order.placed", {"amount": 5}, tenant="acme", channels=["eu"])
    timed.send("order.placed", {"amount": 500}, tenant="acme", channels=["us"])
    endpoint = timed.create_endpoint(
        URL, tenant="acme", channels=["eu"], filter={"amount": {"$gte": 100}}
    )

    result = timed.replay_endpoint(endpoint.id, since=since)

    assert result.created == 1
    assert set(deliveries_of(timed, endpoint.id)) == {wanted.id}


def test_replay_can_be_limited_to_event_types(timed, clock):
    since = clock()
    order = timed.send("order.placed", {}, tenant="acme")
    timed.send("user.created", {}, tenant="acme")
    endpoint = timed.create_endpoint(URL, tenant="acme")

    result = timed.replay_endpoint(endpoint.id, since=since, event_types=["order.placed"])

    assert result.created == 1 and set(deliveries_of(timed, endpoint.id)) == {order.id}


def test_replay_renders_the_endpoints_pinned_version(timed, clock):
    timed.create_event_type(
        "order.placed",
        schemas={"1": {"type": "object"}, "2": {"type": "object"}},
    )
    timed.register_converter("order.placed", "2", "1", lambda data: {**data, "old": True})
    since = clock()
    message = timed.send("order.placed", {"n": 1}, tenant="acme", version="2")
    endpoint = timed.create_endpoint(URL, tenant="acme", version="1")

    timed.replay_endpoint(endpoint.id, since=since)

    [delivery] = timed.list_deliveries(endpoint_id=endpoint.id).data
    body = timed.get_delivery_payload(delivery.id)
    assert b'"old":true' in body and delivery.message_id == message.id


def test_replay_of_another_tenants_endpoint_is_not_found(timed, clock):
    endpoint = timed.create_endpoint(URL, tenant="acme")
    with pytest.raises(NotFoundError):
        timed.replay_endpoint(endpoint.id, since=clock(), tenant="other")


def test_replay_refuses_an_empty_window(timed, clock):
    endpoint = timed.create_endpoint(URL, tenant="acme")
    with pytest.raises(ValidationError, match="later than since"):
        timed.replay_endpoint(endpoint.id, since=clock(), until=clock() - timedelta(seconds=1))


def test_a_dry_run_counts_what_a_replay_would_do_and_writes_nothing(timed, clock):
    since = clock()
    timed.send("order.placed", {"amount": 500}, tenant="acme", channels=["eu"])
    timed.send("order.placed", {"amount": 5}, tenant="acme", channels=["eu"])
    timed.send("order.placed", {"amount": 500}, tenant="acme", channels=["us"])
    failed = timed.send("order.placed", {"amount": 700}, tenant="acme", channels=["eu"])
    endpoint = timed.create_endpoint(
        URL, tenant="acme", channels=["eu"], filter={"amount": {"$gte": 100}}
    )
    timed.resend_message(failed.id, endpoint.id)
    mark_failed(timed, [d.id for d in timed.list_deliveries(endpoint_id=endpoint.id).data])
    seen: list[int] = []

    dry = replay.replay_endpoint(
        timed.context,
        endpoint.id,
        since=since,
        until=None,
        event_types=None,
        include_failed=True,
        tenant="acme",
        progress=seen.append,
        batch=2,
        dry_run=True,
    )

    assert (dry.created, dry.requeued) == (1, 1) and seen == [2, 1, 1]
    assert {d.status for d in deliveries_of(timed, endpoint.id).values()} == {"failed"}
    real = timed.replay_endpoint(endpoint.id, since=since, include_failed=True)
    assert (real.created, real.requeued) == (dry.created, dry.requeued)


def test_a_dry_run_checks_its_input_like_a_replay(timed, clock):
    endpoint = timed.create_endpoint(URL, tenant="acme")
    with pytest.raises(NotFoundError):
        timed.replay_endpoint(endpoint.id, since=clock(), tenant="other", dry_run=True)
    with pytest.raises(ValidationError):
        timed.replay_endpoint(endpoint.id, since=clock(), event_types=["no spaces"], dry_run=True)


# -- bulk retry --------------------------------------------------------------------------


def test_a_dry_run_of_retry_deliveries_counts_them_and_requeues_nothing(timed):
    timed.create_endpoint(URL, tenant="acme")
    for _ in range(3):
        timed.send("order.placed", {}, tenant="acme")
    mark_failed(timed, [d.id for d in timed.list_deliveries(limit=250).data])

    assert timed.retry_deliveries(tenant="acme", dry_run=True) == 3

    assert {d.status for d in timed.list_deliveries(limit=250).data} == {"failed"}
    assert timed.retry_deliveries(tenant="acme") == 3


def test_retry_deliveries_requeues_the_failed_ones_the_filters_select(timed, clock):
    a = timed.create_endpoint(URL, tenant="acme")
    b = timed.create_endpoint(URL, tenant="acme")
    for _ in range(3):
        timed.send("order.placed", {}, tenant="acme")
    timed.send("user.created", {}, tenant="acme")
    every = [d.id for d in timed.list_deliveries(limit=250).data]
    mark_failed(timed, every)

    assert timed.retry_deliveries(endpoint_id=a.id, event_type="order.placed") == 3
    a_statuses = {
        d.status for d in timed.list_deliveries(endpoint_id=a.id, event_type="order.placed").data
    }
    assert a_statuses == {"pending"}
    assert {d.status for d in timed.list_deliveries(endpoint_id=b.id).data} == {"failed"}
    assert timed.retry_deliveries(endpoint_id=a.id, event_type="order.placed") == 0


def test_retry_deliveries_of_succeeded_ones_needs_force(timed):
    timed.create_endpoint(URL, tenant="acme")
    message = timed.send("order.placed", {}, tenant="acme")
    succeed(timed, [d.id for d in timed.list_deliveries(message_id=message.id).data])

    with pytest.raises(ValidationError) as caught:
        timed.retry_deliveries(status="succeeded")
    assert caught.value.details[0]["field"] == "force"
    assert timed.retry_deliveries(status="succeeded", force=True) == 1


def test_retry_deliveries_leaves_deleted_endpoints_and_other_tenants_alone(timed):
    gone = timed.create_endpoint(URL, tenant="acme")
    timed.create_endpoint(URL, tenant="other")
    timed.send("order.placed", {}, tenant="acme")
    timed.send("order.placed", {}, tenant="other")
    mark_failed(timed, [d.id for d in timed.list_deliveries(limit=250).data])
    timed.delete_endpoint(gone.id)

    assert timed.retry_deliveries(tenant="acme") == 0
    assert timed.retry_deliveries(tenant="other") == 1


def test_retry_deliveries_refuses_a_status_that_cannot_be_retried(timed):
    with pytest.raises(ValidationError) as caught:
        timed.retry_deliveries(status="pending")
    assert caught.value.details[0]["field"] == "status"


# -- the API's dry runs --------------------------------------------------------------------

SINCE = "2000-01-01T00:00:00Z"


def test_the_replay_route_answers_a_dry_run_without_writing(api):
    acme = api.tenant("acme")
    send(acme)
    send(acme)
    endpoint = create_endpoint(acme)
    path = f"/v1/endpoints/{endpoint['id']}/replay"

    dry = acme.post(path, json={"since": SINCE, "dry_run": True})

    assert dry.status_code == 202, dry.text
    assert dry.json() == {"created": 2, "requeued": 0}
    assert acme.post(path, json={"since": SINCE, "dry_run": True}).json() == dry.json()
    assert acme.post(path, json={"since": SINCE}).json() == {"created": 2, "requeued": 0}


def test_a_dry_run_of_the_replay_route_is_tenant_scoped_and_typed(api):
    endpoint = create_endpoint(api.tenant("acme"))
    path = f"/v1/endpoints/{endpoint['id']}/replay"
    other = api.tenant("other").post(path, json={"since": SINCE, "dry_run": True})
    assert_error(other, 404, "not_found")
    bad = api.admin.post(path, json={"since": SINCE, "dry_run": "yes"})
    assert_error(bad, 422, "validation_error", field="body.dry_run")


def test_the_bulk_retry_route_answers_a_dry_run_without_writing(api):
    acme = api.tenant("acme")
    create_endpoint(acme)
    send(acme)
    mark_failed(api.producer, [d.id for d in api.producer.list_deliveries().data])

    dry = acme.post("/v1/deliveries/retry", json={"dry_run": True})

    assert dry.status_code == 202 and dry.json() == {"requeued": 1}
    assert acme.post("/v1/deliveries/retry", json={}).json() == {"requeued": 1}
