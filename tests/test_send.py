"""send(): one message, one delivery per matching endpoint, in one transaction."""

import json

import pytest

from producer import (
    ConversionError,
    IdempotencyConflictError,
    PayloadTooLargeError,
    SchemaValidationError,
    ValidationError,
)

URL = "https://receiver.example/hooks"


def test_send_fans_out_to_every_matching_endpoint_of_the_tenant(producer):
    exact = producer.create_endpoint(URL, tenant="acme", event_types=["invoice.paid"])
    prefix = producer.create_endpoint(URL, tenant="acme", event_types=["invoice.*"])
    star = producer.create_endpoint(URL, tenant="acme", event_types=["*"])
    every = producer.create_endpoint(URL, tenant="acme")
    producer.create_endpoint(URL, tenant="acme", event_types=["user.*"])
    producer.create_endpoint(URL, tenant="other")

    message = producer.send("invoice.paid", {"id": "in_1"}, tenant="acme")

    assert message.deliveries == 4
    page = producer.list_deliveries(message_id=message.id)
    assert {d.endpoint_id for d in page.data} == {exact.id, prefix.id, star.id, every.id}
    assert {d.status for d in page.data} == {"pending"}


def test_disabled_endpoints_get_held_deliveries(producer):
    endpoint = producer.create_endpoint(URL, tenant="acme")
    producer.disable_endpoint(endpoint.id)
    message = producer.send("invoice.paid", {}, tenant="acme")
    [delivery] = producer.list_deliveries(message_id=message.id).data
    assert delivery.endpoint_id == endpoint.id
    assert delivery.status == "pending"


def test_deleted_endpoints_get_nothing(producer):
    endpoint = producer.create_endpoint(URL, tenant="acme")
    producer.delete_endpoint(endpoint.id)
    assert producer.send("invoice.paid", {}, tenant="acme").deliveries == 0


def test_endpoint_ids_restrict_the_fan_out(producer):
    first = producer.create_endpoint(URL, tenant="acme")
    producer.create_endpoint(URL, tenant="acme")
    message = producer.send("a.b", {}, tenant="acme", endpoint_ids=[first.id])
    assert [d.endpoint_id for d in producer.list_deliveries(message_id=message.id).data] == [
        first.id
    ]


def test_endpoint_ids_of_another_tenant_are_refused(producer):
    theirs = producer.create_endpoint(URL, tenant="other")
    with pytest.raises(ValidationError, match="unknown endpoint"):
        producer.send("a.b", {}, tenant="acme", endpoint_ids=[theirs.id])
    assert producer.list_messages().data == []


def test_payload_is_the_exact_signed_envelope(producer):
    message = producer.send("invoice.paid", {"amount": 10}, tenant="acme")
    envelope = json.loads(message.payload)
    assert envelope == {
        "id": message.id,
        "type": "invoice.paid",
        "version": "1",
        "timestamp": envelope["timestamp"],
        "data": {"amount": 10},
    }
    assert b", " not in message.payload and b": " not in message.payload
    assert producer.get_message(message.id).payload == message.payload


def test_same_idempotency_key_and_body_returns_the_first_message(producer):
    producer.create_endpoint(URL, tenant="acme")
    first = producer.send("a.b", {"x": 1}, tenant="acme", idempotency_key="k1")
    again = producer.send("a.b", {"x": 1}, tenant="acme", idempotency_key="k1")
    assert again.id == first.id
    assert again.deliveries == 1
    assert len(producer.list_deliveries().data) == 1


def test_same_idempotency_key_with_another_body_is_a_conflict(producer):
    producer.send("a.b", {"x": 1}, tenant="acme", idempotency_key="k1")
    with pytest.raises(IdempotencyConflictError):
        producer.send("a.b", {"x": 2}, tenant="acme", idempotency_key="k1")
    assert len(producer.list_messages().data) == 1


def test_idempotency_keys_are_per_tenant(producer):
    a = producer.send("a.b", {"x": 1}, tenant="acme", idempotency_key="k1")
    b = producer.send("a.b", {"x": 2}, tenant="other", idempotency_key="k1")
    assert a.id != b.id


def test_payload_above_the_limit_is_refused(database_url):
    from producer import Producer

    small = Producer(database_url, auto_migrate=True, max_payload_bytes=2048)
    with pytest.raises(PayloadTooLargeError, match="limit of 2048 bytes"):
        small.send("a.b", {"blob": "x" * 4096})
    assert small.list_messages().data == []
    small.close()


def test_data_must_match_the_schema_of_its_version(producer):
    producer.create_event_type(
        "invoice.paid",
        schemas={
            "1": {
                "type": "object",
                "required": ["amount"],
                "properties": {"amount": {"type": "integer"}},
            }
        },
    )
    with pytest.raises(SchemaValidationError) as info:
        producer.send("invoice.paid", {"amount": "ten"})
    assert info.value.details[0]["field"] == "data.amount"
    assert producer.send("invoice.paid", {"amount": 10}).version == "1"


def test_archived_event_types_cannot_be_sent(producer):
    producer.create_event_type("old.event")
    producer.archive_event_type("old.event")
    with pytest.raises(ValidationError, match="archived"):
        producer.send("old.event", {})


def test_unregistered_event_types_can_be_sent(producer):
    assert producer.send("never.registered", {"ok": True}).event_type == "never.registered"


def test_invalid_event_type_name_is_refused(producer):
    with pytest.raises(ValidationError):
        producer.send("not a name", {})


def test_pinned_endpoints_receive_their_version_through_converters(producer):
    producer.create_event_type("order.created", schemas={"1": {}, "2": {}})
    producer.register_converter("order.created", "2", "1", lambda d: {"total": d["amount"]})
    v1 = producer.create_endpoint(URL, tenant="acme", version="1")
    latest = producer.create_endpoint(URL, tenant="acme")

    message = producer.send("order.created", {"amount": 7}, tenant="acme")

    assert message.version == "2"
    bodies = {
        d.endpoint_id: producer.get_delivery_payload(d.id)
        for d in producer.list_deliveries(message_id=message.id).data
    }
    assert json.loads(bodies[latest.id])["data"] == {"amount": 7}
    old = json.loads(bodies[v1.id])
    assert old["version"] == "1" and old["data"] == {"total": 7} and old["id"] == message.id


def test_missing_converter_fails_at_send_time_and_stores_nothing(producer):
    producer.create_endpoint(URL, tenant="acme", version="1")
    with pytest.raises(ConversionError, match="no converter"):
        producer.send("order.created", {"amount": 7}, tenant="acme", version="2")
    assert producer.list_messages().data == []


def _order_type_with_a_strict_v1(producer):
    """order.created: v2 is sent; v1 requires an integer ``total``, and the
    registered converter produces a string, which the v1 schema refuses."""
    producer.create_event_type(
        "order.created",
        schemas={
            "1": {
                "type": "object",
                "required": ["total"],
                "properties": {"total": {"type": "integer"}},
            },
            "2": {},
        },
    )
    producer.register_converter("order.created", "2", "1", lambda d: {"total": str(d["amount"])})


def test_send_validates_converted_data_against_the_pinned_version_schema(producer):
    _order_type_with_a_strict_v1(producer)
    producer.create_endpoint(URL, tenant="acme", version="1")
    with pytest.raises(SchemaValidationError) as info:
        producer.send("order.created", {"amount": 7}, tenant="acme")
    assert info.value.details[0]["field"] == "data.total"


def test_resend_to_a_pinned_endpoint_validates_converted_data_as_send_does(producer):
    _order_type_with_a_strict_v1(producer)
    message = producer.send("order.created", {"amount": 7}, tenant="acme")
    assert message.deliveries == 0
    pinned = producer.create_endpoint(URL, tenant="acme", version="1")

    with pytest.raises(SchemaValidationError) as info:
        producer.resend_message(message.id, pinned.id, tenant="acme")
    assert info.value.details[0]["field"] == "data.total"
    assert producer.list_deliveries(message_id=message.id).data == []


def test_resend_to_a_pinned_endpoint_sends_the_converted_version(producer):
    producer.create_event_type("order.created", schemas={"1": {}, "2": {}})
    producer.register_converter("order.created", "2", "1", lambda d: {"total": d["amount"]})
    message = producer.send("order.created", {"amount": 7}, tenant="acme")
    pinned = producer.create_endpoint(URL, tenant="acme", version="1")

    delivery = producer.resend_message(message.id, pinned.id, tenant="acme")

    body = json.loads(producer.get_delivery_payload(delivery.id))
    assert body["version"] == "1" and body["data"] == {"total": 7} and body["id"] == message.id


def test_send_many_writes_every_event_in_one_transaction(producer):
    producer.create_endpoint(URL, tenant="acme")
    messages = producer.send_many([("a.b", {"i": i}) for i in range(5)], tenant="acme")
    assert [m.deliveries for m in messages] == [1] * 5
    assert len(producer.list_messages(tenant="acme").data) == 5


def test_send_many_sends_nothing_when_one_event_is_invalid(producer):
    with pytest.raises(ValidationError):
        producer.send_many([("a.b", {}), ("not valid", {})])
    assert producer.list_messages().data == []
