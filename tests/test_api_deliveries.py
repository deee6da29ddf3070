"""REST API: /v1/deliveries — the delivery log, attempts and manual retries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.helpers.api import (
    TIMESTAMP,
    Api,
    assert_error,
    create_endpoint,
    page_through,
    send,
)

UNKNOWN = "dlv_01JD0000000000000000000000"


def send_test_event(api: Api, url: str) -> dict:
    """A test send through the API to ``url``; returns the test result."""
    endpoint = create_endpoint(api.admin, url)
    response = api.admin.post(f"/v1/endpoints/{endpoint['id']}/test")
    assert response.status_code == 200, response.text
    return response.json()


# -- the log ---------------------------------------------------------------------


def test_list_shows_every_field_of_a_delivery(api):
    endpoint = create_endpoint(api.admin, tenant="acme")
    message = send(api.admin, tenant="acme")
    response = api.admin.get("/v1/deliveries")
    assert response.status_code == 200
    [delivery] = response.json()["data"]
    assert delivery["id"].startswith("dlv_")
    assert {k: delivery[k] for k in ("message_id", "endpoint_id", "event_type", "tenant")} == {
        "message_id": message["id"],
        "endpoint_id": endpoint["id"],
        "event_type": "invoice.paid",
        "tenant": "acme",
    }
    assert delivery["status"] == "pending" and delivery["attempt_count"] == 0
    assert delivery["last_attempt_at"] is None and delivery["last_status_code"] is None
    assert delivery["last_error"] is None
    assert TIMESTAMP.match(delivery["created_at"]) and TIMESTAMP.match(delivery["next_attempt_at"])


def test_list_is_newest_first_and_paginates_with_a_cursor(api):
    create_endpoint(api.admin)
    ids = [send(api.admin)["id"] for _ in range(5)]
    pages = page_through(api.admin, "/v1/deliveries", 2)
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [d["message_id"] for p in pages for d in p] == ids[::-1]


def test_filters_combine(api):
    one = create_endpoint(api.admin, tenant="acme")
    two = create_endpoint(api.admin, tenant="acme")
    create_endpoint(api.admin, tenant="globex")
    wanted = send(api.admin, "invoice.paid", tenant="acme")
    send(api.admin, "user.created", tenant="acme")
    send(api.admin, "invoice.paid", tenant="globex")
    api.admin.delete(f"/v1/endpoints/{two['id']}")
    response = api.admin.get(
        "/v1/deliveries",
        params={
            "endpoint_id": one["id"],
            "event_type": "invoice.paid",
            "status": "pending",
            "tenant": "acme",
            "message_id": wanted["id"],
            "since": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
        },
    )
    [delivery] = response.json()["data"]
    assert delivery["endpoint_id"] == one["id"] and delivery["message_id"] == wanted["id"]


def test_filter_by_status(api):
    endpoint = create_endpoint(api.admin)
    send(api.admin)
    api.admin.delete(f"/v1/endpoints/{endpoint['id']}")
    assert api.admin.get("/v1/deliveries", params={"status": "pending"}).json()["data"] == []
    cancelled = api.admin.get("/v1/deliveries", params={"status": "cancelled"}).json()["data"]
    assert len(cancelled) == 1


def test_filter_by_time_window(api):
    create_endpoint(api.admin)
    send(api.admin)
    until = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    assert api.admin.get("/v1/deliveries", params={"until": until}).json()["data"] == []


def test_list_with_an_unknown_status_is_422_naming_it(api):
    response = api.admin.get("/v1/deliveries", params={"status": "lost"})
    assert_error(response, 422, "validation_error", field="query.status")


def test_list_with_a_naive_until_is_422_naming_it(api):
    response = api.admin.get("/v1/deliveries", params={"until": "2026-01-01T00:00:00"})
    assert_error(response, 422, "validation_error", field="query.until")


def test_list_with_a_bad_cursor_is_422(api):
    response = api.admin.get("/v1/deliveries", params={"cursor": "nonsense"})
    assert_error(response, 422, "validation_error", field="query.cursor")


def test_get_returns_the_delivery(api):
    create_endpoint(api.admin)
    send(api.admin)
    [listed] = api.admin.get("/v1/deliveries").json()["data"]
    response = api.admin.get(f"/v1/deliveries/{listed['id']}")
    assert response.status_code == 200 and response.json() == listed


def test_get_unknown_delivery_is_404(api):
    assert_error(api.admin.get(f"/v1/deliveries/{UNKNOWN}"), 404, "not_found")


# -- attempts --------------------------------------------------------------------


def test_attempts_show_request_and_response(api, receiver):
    result = send_test_event(api, receiver.url("/hooks"))
    response = api.admin.get(f"/v1/deliveries/{result['delivery_id']}/attempts")
    assert response.status_code == 200
    body = response.json()
    assert body["next_cursor"] is None
    [attempt] = body["data"]
    assert attempt["id"].startswith("att_") and attempt["delivery_id"] == result["delivery_id"]
    assert attempt["number"] == 1 and attempt["trigger"] == "test"
    assert attempt["succeeded"] is True and attempt["error"] is None
    assert TIMESTAMP.match(attempt["started_at"]) and attempt["duration_ms"] > 0
    assert attempt["request"]["url"] == receiver.url("/hooks")
    assert attempt["request"]["headers"]["webhook-id"] == result["message_id"]
    assert attempt["request"]["headers"]["webhook-signature"].startswith("v1,")
    assert attempt["response"] == {
        "status_code": 200,
        "headers": attempt["response"]["headers"],
        "body": "status 200",
        "truncated": False,
    }
    assert attempt["next_attempt_at"] is None


def test_an_attempt_without_a_response_has_null_response_and_an_error(api):
    # Nothing listens on port 9 of the loopback: the connection is refused.
    result = send_test_event(api, "http://127.0.0.1:9/hooks")
    [attempt] = api.admin.get(f"/v1/deliveries/{result['delivery_id']}/attempts").json()["data"]
    assert attempt["response"] is None
    assert attempt["error"].startswith("connection_error") and attempt["succeeded"] is False


def test_a_delivery_not_attempted_yet_has_no_attempts(api):
    create_endpoint(api.admin)
    send(api.admin)
    [delivery] = api.admin.get("/v1/deliveries").json()["data"]
    body = api.admin.get(f"/v1/deliveries/{delivery['id']}/attempts").json()
    assert body == {"data": [], "next_cursor": None}


def test_attempts_of_unknown_delivery_are_404(api):
    assert_error(api.admin.get(f"/v1/deliveries/{UNKNOWN}/attempts"), 404, "not_found")


# -- retry -----------------------------------------------------------------------


def test_retry_of_a_failed_delivery_makes_it_pending_and_due(api, receiver):
    result = send_test_event(api, receiver.script("/down", [500]))
    response = api.admin.post(f"/v1/deliveries/{result['delivery_id']}/retry")
    assert response.status_code == 202
    body = response.json()
    assert body["id"] == result["delivery_id"] and body["status"] == "pending"
    assert TIMESTAMP.match(body["next_attempt_at"])


def test_retry_of_a_succeeded_delivery_is_409_invalid_state(api, receiver):
    result = send_test_event(api, receiver.url("/hooks"))
    response = api.admin.post(f"/v1/deliveries/{result['delivery_id']}/retry")
    assert_error(response, 409, "invalid_state")


def test_retry_of_a_succeeded_delivery_with_force_is_202(api, receiver):
    result = send_test_event(api, receiver.url("/hooks"))
    response = api.admin.post(f"/v1/deliveries/{result['delivery_id']}/retry", json={"force": True})
    assert response.status_code == 202 and response.json()["status"] == "pending"


def test_retry_with_a_bad_force_is_422_naming_it(api):
    response = api.admin.post(f"/v1/deliveries/{UNKNOWN}/retry", json={"force": "please"})
    assert_error(response, 422, "validation_error", field="body.force")


def test_retry_of_unknown_delivery_is_404(api):
    assert_error(api.admin.post(f"/v1/deliveries/{UNKNOWN}/retry"), 404, "not_found")
