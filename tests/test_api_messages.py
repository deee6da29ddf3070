"""REST API: /v1/messages — sending, idempotency, size limits, reading back, resending."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from producer import Producer
from tests.helpers.api import TIMESTAMP, Api, assert_error, create_endpoint, page_through, send

UNKNOWN = "msg_01JD0000000000000000000000"


@pytest.fixture
def small_api(make_producer: Callable[..., Producer]) -> Api:
    """An API whose producer accepts envelopes of at most 2 KiB."""
    return Api(make_producer(max_payload_bytes=2048))


# -- send ------------------------------------------------------------------------


def test_send_answers_202_with_the_message_and_its_fan_out(api):
    create_endpoint(api.admin, tenant="acme", event_types=["invoice.*"])
    create_endpoint(api.admin, tenant="acme", event_types=["user.*"])
    create_endpoint(api.admin, tenant="globex")
    response = api.admin.post(
        "/v1/messages",
        json={"event_type": "invoice.paid", "data": {"invoice": "in_1"}, "tenant": "acme"},
    )
    assert response.status_code == 202
    body = response.json()
    assert body["id"].startswith("msg_")
    assert (body["event_type"], body["tenant"], body["version"]) == ("invoice.paid", "acme", "1")
    assert body["deliveries"] == 1
    assert TIMESTAMP.match(body["created_at"])


def test_send_counts_disabled_endpoints_in_the_fan_out(api):
    endpoint = create_endpoint(api.admin)
    api.admin.post(f"/v1/endpoints/{endpoint['id']}/disable")
    assert send(api.admin)["deliveries"] == 1


def test_send_to_chosen_endpoints_only(api):
    chosen = create_endpoint(api.admin)
    create_endpoint(api.admin)
    body = send(api.admin, endpoint_ids=[chosen["id"]])
    assert body["deliveries"] == 1
    [delivery] = api.admin.get("/v1/deliveries", params={"message_id": body["id"]}).json()["data"]
    assert delivery["endpoint_id"] == chosen["id"]


def test_send_to_an_unknown_endpoint_id_is_422_naming_the_field(api):
    response = api.admin.post(
        "/v1/messages",
        json={"event_type": "a.b", "data": {}, "endpoint_ids": ["ep_01JD0000000000000000000000"]},
    )
    assert_error(response, 422, "validation_error", field="body.endpoint_ids")


def test_send_with_a_given_version(api):
    assert send(api.admin, version="2")["version"] == "2"


def test_send_without_event_type_is_422_naming_it(api):
    response = api.admin.post("/v1/messages", json={"data": {}})
    assert_error(response, 422, "validation_error", field="body.event_type")


def test_send_without_data_is_422_naming_it(api):
    response = api.admin.post("/v1/messages", json={"event_type": "a.b"})
    assert_error(response, 422, "validation_error", field="body.data")


def test_send_with_a_bad_event_type_name_is_422(api):
    response = api.admin.post("/v1/messages", json={"event_type": "a b", "data": {}})
    assert_error(response, 422, "validation_error", field="body.event_type")


def test_send_data_not_matching_the_schema_is_422_with_the_json_path(api):
    api.admin.post(
        "/v1/event-types",
        json={
            "name": "invoice.paid",
            "schemas": {
                "1": {
                    "type": "object",
                    "properties": {"lines": {"type": "array", "items": {"type": "integer"}}},
                }
            },
        },
    )
    response = api.admin.post(
        "/v1/messages", json={"event_type": "invoice.paid", "data": {"lines": [1, "two"]}}
    )
    error = assert_error(response, 422, "schema_validation_error", field="body.data.lines[1]")
    assert error["details"][0]["schema_path"]


def test_send_malformed_json_is_400(api):
    response = api.admin.post(
        "/v1/messages",
        content=b"{'single': 'quotes'}",
        headers={"content-type": "application/json"},
    )
    assert_error(response, 400, "bad_request")


def test_send_above_the_payload_limit_is_413(small_api):
    response = small_api.admin.post(
        "/v1/messages", json={"event_type": "a.b", "data": {"blob": "x" * 3000}}
    )
    assert_error(response, 413, "payload_too_large")


def test_a_body_far_above_the_limit_is_refused_unread(small_api):
    response = small_api.admin.post(
        "/v1/messages", json={"event_type": "a.b", "data": {"blob": "x" * 100_000}}
    )
    error = assert_error(response, 413, "payload_too_large")
    assert "request body" in error["message"]


def test_a_streamed_body_far_above_the_limit_is_refused(small_api):
    def chunks():
        yield b'{"event_type": "a.b", "data": "'
        for _ in range(100):
            yield b"x" * 1000
        yield b'"}'

    response = small_api.admin.post(
        "/v1/messages", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_error(response, 413, "payload_too_large")


# -- idempotency -------------------------------------------------------------------


def test_the_same_idempotency_key_and_body_return_the_first_message(api):
    create_endpoint(api.admin)
    headers = {"Idempotency-Key": "order-1"}
    body = {"event_type": "a.b", "data": {"n": 1}}
    first = api.admin.post("/v1/messages", json=body, headers=headers)
    again = api.admin.post("/v1/messages", json=body, headers=headers)
    assert again.status_code == 202 and again.json()["id"] == first.json()["id"]
    assert len(api.admin.get("/v1/deliveries").json()["data"]) == 1


def test_the_same_idempotency_key_with_another_body_is_409(api):
    headers = {"Idempotency-Key": "order-1"}
    api.admin.post("/v1/messages", json={"event_type": "a.b", "data": {"n": 1}}, headers=headers)
    response = api.admin.post(
        "/v1/messages", json={"event_type": "a.b", "data": {"n": 2}}, headers=headers
    )
    assert_error(response, 409, "idempotency_conflict")


def test_the_idempotency_key_may_be_a_body_field(api):
    first = send(api.admin, idempotency_key="order-1")
    again = send(api.admin, idempotency_key="order-1")
    assert again["id"] == first["id"] and again["idempotency_key"] == "order-1"


def test_the_header_and_the_field_name_the_same_key(api):
    first = send(api.admin, idempotency_key="order-1")
    response = api.admin.post(
        "/v1/messages",
        json={"event_type": "invoice.paid", "data": {"n": 1}},
        headers={"Idempotency-Key": "order-1"},
    )
    assert response.json()["id"] == first["id"]


def test_a_header_and_a_field_that_differ_are_422(api):
    response = api.admin.post(
        "/v1/messages",
        json={"event_type": "a.b", "data": {}, "idempotency_key": "one"},
        headers={"Idempotency-Key": "two"},
    )
    assert_error(response, 422, "validation_error", field="body.idempotency_key")


def test_an_overlong_idempotency_header_is_422(api):
    response = api.admin.post(
        "/v1/messages",
        json={"event_type": "a.b", "data": {}},
        headers={"Idempotency-Key": "k" * 300},
    )
    assert_error(response, 422, "validation_error", field="header.Idempotency-Key")


# -- read ------------------------------------------------------------------------


def test_get_returns_the_message_with_its_exact_envelope(api):
    sent = send(api.admin, data={"invoice": "in_1"})
    response = api.admin.get(f"/v1/messages/{sent['id']}")
    assert response.status_code == 200
    body = response.json()
    assert {k: body[k] for k in sent} == sent
    payload = api.producer.get_message(sent["id"]).payload
    assert body["payload"] == json.loads(payload)
    assert body["payload"]["data"] == {"invoice": "in_1"}
    assert body["payload"]["type"] == "invoice.paid" and body["payload"]["id"] == sent["id"]


def test_get_unknown_message_is_404(api):
    assert_error(api.admin.get(f"/v1/messages/{UNKNOWN}"), 404, "not_found")


def test_list_is_newest_first_and_paginates_with_a_cursor(api):
    ids = [send(api.admin)["id"] for _ in range(5)]
    pages = page_through(api.admin, "/v1/messages", 2)
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [m["id"] for p in pages for m in p] == ids[::-1]
    assert all("payload" not in m for p in pages for m in p)


def test_list_filters_by_event_type_and_tenant(api):
    wanted = send(api.admin, "invoice.paid", tenant="acme")
    send(api.admin, "invoice.paid", tenant="globex")
    send(api.admin, "user.created", tenant="acme")
    response = api.admin.get(
        "/v1/messages", params={"event_type": "invoice.paid", "tenant": "acme"}
    )
    assert [m["id"] for m in response.json()["data"]] == [wanted["id"]]


def test_list_filters_by_time_window(api):
    send(api.admin)
    now = datetime.now(UTC)
    past = api.admin.get(
        "/v1/messages", params={"until": (now - timedelta(hours=1)).isoformat()}
    ).json()
    recent = api.admin.get(
        "/v1/messages", params={"since": (now - timedelta(hours=1)).isoformat()}
    ).json()
    assert past["data"] == [] and len(recent["data"]) == 1


def test_list_with_a_bad_since_is_422_naming_it(api):
    response = api.admin.get("/v1/messages", params={"since": "2026-13-45"})
    assert_error(response, 422, "validation_error", field="query.since")


def test_list_with_a_bad_limit_is_422(api):
    response = api.admin.get("/v1/messages", params={"limit": 1000})
    assert_error(response, 422, "validation_error", field="query.limit")


# -- resend ----------------------------------------------------------------------


def test_resend_puts_the_delivery_back_in_the_queue(api):
    endpoint = create_endpoint(api.admin)
    sent = send(api.admin)
    response = api.admin.post(
        f"/v1/messages/{sent['id']}/resend", json={"endpoint_id": endpoint["id"]}
    )
    assert response.status_code == 202
    body = response.json()
    assert body["message_id"] == sent["id"] and body["endpoint_id"] == endpoint["id"]
    assert body["status"] == "pending"


def test_resend_to_an_endpoint_added_later_creates_its_delivery(api):
    sent = send(api.admin)
    endpoint = create_endpoint(api.admin)
    response = api.admin.post(
        f"/v1/messages/{sent['id']}/resend", json={"endpoint_id": endpoint["id"]}
    )
    assert response.status_code == 202
    assert response.json()["id"].startswith("dlv_")
    assert (
        len(api.admin.get("/v1/deliveries", params={"message_id": sent["id"]}).json()["data"]) == 1
    )


def test_resend_without_endpoint_id_is_422_naming_it(api):
    sent = send(api.admin)
    response = api.admin.post(f"/v1/messages/{sent['id']}/resend", json={})
    assert_error(response, 422, "validation_error", field="body.endpoint_id")


def test_resend_of_unknown_message_is_404(api):
    endpoint = create_endpoint(api.admin)
    response = api.admin.post(
        f"/v1/messages/{UNKNOWN}/resend", json={"endpoint_id": endpoint["id"]}
    )
    assert_error(response, 404, "not_found")


def test_resend_to_unknown_endpoint_is_404(api):
    sent = send(api.admin)
    response = api.admin.post(
        f"/v1/messages/{sent['id']}/resend", json={"endpoint_id": "ep_01JD0000000000000000000000"}
    )
    assert_error(response, 404, "not_found")
