"""Routing by channels and payload filters: who gets a message, in one transaction."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from producer import IdempotencyConflictError, ValidationError

URL = "https://receiver.example/hooks"


def receivers(producer, message) -> set[str]:
    return {d.endpoint_id for d in producer.list_deliveries(message_id=message.id).data}


# -- channels ------------------------------------------------------------------------


def test_an_endpoint_with_channels_gets_only_messages_sharing_one(producer):
    store7 = producer.create_endpoint(URL, tenant="acme", channels=["store-7"])
    eu = producer.create_endpoint(URL, tenant="acme", channels=["eu", "us"])
    every = producer.create_endpoint(URL, tenant="acme")

    message = producer.send("order.placed", {}, tenant="acme", channels=["store-7", "apac"])

    assert receivers(producer, message) == {store7.id, every.id}
    assert message.channels == ["store-7", "apac"]
    assert eu.channels == ["eu", "us"]


def test_a_message_without_channels_reaches_only_endpoints_without_channels(producer):
    producer.create_endpoint(URL, tenant="acme", channels=["eu"])
    every = producer.create_endpoint(URL, tenant="acme")

    message = producer.send("order.placed", {}, tenant="acme")

    assert receivers(producer, message) == {every.id}


def test_channels_combine_with_event_type_patterns(producer):
    producer.create_endpoint(URL, tenant="acme", channels=["eu"], event_types=["user.*"])
    orders = producer.create_endpoint(URL, tenant="acme", channels=["eu"], event_types=["order.*"])

    message = producer.send("order.placed", {}, tenant="acme", channels=["eu"])

    assert receivers(producer, message) == {orders.id}


def test_explicit_endpoint_ids_still_need_a_shared_channel(producer):
    eu = producer.create_endpoint(URL, tenant="acme", channels=["eu"])
    us = producer.create_endpoint(URL, tenant="acme", channels=["us"])

    message = producer.send(
        "order.placed", {}, tenant="acme", channels=["eu"], endpoint_ids=[eu.id, us.id]
    )

    assert receivers(producer, message) == {eu.id}


def test_changing_an_endpoints_channels_changes_what_it_gets(producer):
    endpoint = producer.create_endpoint(URL, tenant="acme", channels=["eu"])
    producer.update_endpoint(endpoint.id, channels=["us"])

    assert receivers(producer, producer.send("o.p", {}, tenant="acme", channels=["eu"])) == set()
    assert receivers(producer, producer.send("o.p", {}, tenant="acme", channels=["us"])) == {
        endpoint.id
    }
    assert producer.update_endpoint(endpoint.id, channels=None).channels == []
    assert receivers(producer, producer.send("o.p", {}, tenant="acme")) == {endpoint.id}


@pytest.mark.parametrize(
    ("channels", "field"),
    [
        (["ok", "has space"], "channels[1]"),
        (["-leading-dash"], "channels[0]"),
        (["x" * 65], "channels[0]"),
        ([""], "channels[0]"),
        ([7], "channels[0]"),
        ("eu", "channels"),
        ([f"c{i}" for i in range(11)], "channels"),
    ],
)
def test_a_message_with_invalid_channels_is_refused(producer, channels, field):
    with pytest.raises(ValidationError) as caught:
        producer.send("order.placed", {}, tenant="acme", channels=channels)
    assert caught.value.details[0]["field"] == field


def test_an_endpoint_may_subscribe_to_at_most_100_channels(producer):
    producer.create_endpoint(URL, channels=[f"c{i}" for i in range(100)])
    with pytest.raises(ValidationError, match="at most 100"):
        producer.create_endpoint(URL, channels=[f"c{i}" for i in range(101)])


def test_channels_are_part_of_the_idempotent_request(producer):
    first = producer.send("o.p", {}, tenant="acme", channels=["eu"], idempotency_key="k")
    again = producer.send("o.p", {}, tenant="acme", channels=["eu"], idempotency_key="k")
    assert again.id == first.id
    with pytest.raises(IdempotencyConflictError):
        producer.send("o.p", {}, tenant="acme", channels=["us"], idempotency_key="k")


# -- payload filters -------------------------------------------------------------------


def test_a_filtered_message_creates_no_delivery_and_counts_the_skip(producer):
    big = producer.create_endpoint(URL, tenant="acme", filter={"amount": {"$gte": 100}})
    producer.create_endpoint(URL, tenant="acme", filter={"currency": "USD"})
    every = producer.create_endpoint(URL, tenant="acme")

    message = producer.send("invoice.paid", {"amount": 120, "currency": "EUR"}, tenant="acme")

    assert receivers(producer, message) == {big.id, every.id}
    assert message.deliveries == 2
    assert message.skipped == {"filter": 1}
    assert producer.get_message(message.id).skipped == {"filter": 1}


def test_a_message_no_filter_refused_records_no_skips(producer):
    producer.create_endpoint(URL, tenant="acme", filter={"amount": {"$gte": 100}})
    message = producer.send("invoice.paid", {"amount": 120}, tenant="acme")
    assert producer.get_message(message.id).skipped == {}


def test_an_endpoint_not_matching_the_event_type_is_not_counted_as_skipped(producer):
    producer.create_endpoint(URL, tenant="acme", event_types=["user.*"], filter={"x": 1})
    message = producer.send("invoice.paid", {"x": 2}, tenant="acme")
    assert message.skipped == {}


def test_an_invalid_filter_is_refused_at_create_naming_the_path(producer):
    with pytest.raises(ValidationError) as caught:
        producer.create_endpoint(URL, filter={"$or": [{"amount": {"$gt": [1]}}]})
    assert caught.value.details[0]["field"] == "filter.$or[0].amount.$gt"


def test_an_invalid_filter_is_refused_at_update_and_the_old_one_stays(producer):
    endpoint = producer.create_endpoint(URL, filter={"amount": 1})
    with pytest.raises(ValidationError) as caught:
        producer.update_endpoint(endpoint.id, filter={"amount": {"$near": 1}})
    assert caught.value.details[0]["field"] == "filter.amount.$near"
    assert producer.get_endpoint(endpoint.id).filter == {"amount": 1}


def test_a_filter_is_removed_by_updating_it_to_none(producer):
    endpoint = producer.create_endpoint(URL, tenant="acme", filter={"amount": 1})
    assert producer.update_endpoint(endpoint.id, filter=None).filter is None
    message = producer.send("invoice.paid", {"amount": 2}, tenant="acme")
    assert receivers(producer, message) == {endpoint.id}


def test_test_filter_answers_whether_a_payload_passes(producer):
    assert producer.test_filter({"a.b": {"$in": [1, 2]}}, {"a": {"b": 2}}) is True
    assert producer.test_filter({"a.b": {"$in": [1, 2]}}, {"a": {"b": 3}}) is False
    with pytest.raises(ValidationError):
        producer.test_filter({"a": {"$bad": 1}}, {})


# -- the outbox path -------------------------------------------------------------------


def test_channels_and_filters_route_a_send_in_the_callers_transaction(producer):
    eu_big = producer.create_endpoint(
        URL, tenant="acme", channels=["eu"], filter={"amount": {"$gt": 100}}
    )
    producer.create_endpoint(URL, tenant="acme", channels=["us"])
    producer.create_endpoint(URL, tenant="acme", channels=["eu"], filter={"amount": {"$lt": 10}})

    with Session(producer.engine) as session, session.begin():
        message = producer.send(
            "invoice.paid", {"amount": 500}, tenant="acme", channels=["eu"], session=session
        )

    assert receivers(producer, message) == {eu_big.id}
    assert producer.get_message(message.id).skipped == {"filter": 1}


def test_a_rolled_back_outbox_send_leaves_no_message_of_a_channel(producer):
    producer.create_endpoint(URL, tenant="acme", channels=["eu"])
    with Session(producer.engine) as session:
        session.begin()
        producer.send("invoice.paid", {}, tenant="acme", channels=["eu"], session=session)
        session.rollback()
    assert producer.list_messages(tenant="acme").data == []
