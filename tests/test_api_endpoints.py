"""REST API: /v1/endpoints — registration, reading, changes, secrets, health,
test sends, recovery and statistics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.helpers.api import TIMESTAMP, assert_error, create_endpoint, send

UNKNOWN = "ep_01JD0000000000000000000000"


# -- create --------------------------------------------------------------------


def test_create_returns_201_with_every_field_and_the_secret(api):
    response = api.admin.post(
        "/v1/endpoints",
        json={
            "url": "https://example.com/hooks",
            "description": "billing",
            "tenant": "acme",
            "event_types": ["invoice.paid", "user.*"],
            "version": "2",
            "headers": {"X-Team": "billing"},
            "signature_scheme": "v1",
            "rate_limit_per_second": 5,
            "ordering": "fifo",
            "retry_schedule": [1, 10],
            "timeout_seconds": 3,
            "max_in_flight": 2,
            "metadata": {"owner": "ops"},
        },
    )
    assert response.status_code == 201
    body = response.json()
    assert body["id"].startswith("ep_")
    assert body["secret"].startswith("whsec_")
    expected = {
        "url": "https://example.com/hooks",
        "description": "billing",
        "tenant": "acme",
        "event_types": ["invoice.paid", "user.*"],
        "version": "2",
        "headers": {"X-Team": "billing"},
        "signature_scheme": "v1",
        "rate_limit_per_second": 5,
        "ordering": "fifo",
        "retry_schedule": [1, 10],
        "timeout_seconds": 3,
        "max_in_flight": 2,
        "metadata": {"owner": "ops"},
        "status": "enabled",
        "disabled_reason": None,
        "disabled_at": None,
        "failing_since": None,
        "consecutive_failures": 0,
    }
    assert {k: body[k] for k in expected} == expected
    assert TIMESTAMP.match(body["created_at"]) and TIMESTAMP.match(body["updated_at"])


def test_create_needs_only_a_url_and_applies_defaults(api):
    body = create_endpoint(api.admin)
    assert body["tenant"] == "default"
    assert body["event_types"] == [] and body["headers"] == {} and body["metadata"] == {}
    assert body["signature_scheme"] == "v1" and body["ordering"] == "unordered"
    assert body["retry_schedule"] is None and body["version"] is None


def test_create_keeps_a_given_secret(api):
    secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = create_endpoint(api.admin, secret=secret)
    assert body["secret"] == secret


def test_create_with_v1a_exposes_a_public_key_under_secret(api):
    body = create_endpoint(api.admin, signature_scheme="v1a")
    secret = api.admin.get(f"/v1/endpoints/{body['id']}/secret").json()
    assert secret["public_key"].startswith("whpk_")


def test_create_without_url_is_422_naming_the_field(api):
    assert_error(
        api.admin.post("/v1/endpoints", json={}), 422, "validation_error", field="body.url"
    )


def test_create_with_a_bad_url_is_422_naming_the_field(api):
    response = api.admin.post("/v1/endpoints", json={"url": "ftp://example.com"})
    assert_error(response, 422, "validation_error", field="body.url")


def test_create_with_an_unknown_field_is_422_naming_it(api):
    response = api.admin.post("/v1/endpoints", json={"url": "https://x.test", "colour": "red"})
    assert_error(response, 422, "validation_error", field="body.colour")


def test_create_with_a_bad_ordering_is_422(api):
    response = api.admin.post("/v1/endpoints", json={"url": "https://x.test", "ordering": "lifo"})
    assert_error(response, 422, "validation_error", field="body.ordering")


def test_create_with_a_bad_pattern_is_422(api):
    response = api.admin.post(
        "/v1/endpoints", json={"url": "https://x.test", "event_types": ["a.*.b"]}
    )
    assert_error(response, 422, "validation_error")


def test_create_with_a_reserved_header_is_422_naming_it(api):
    response = api.admin.post(
        "/v1/endpoints", json={"url": "https://x.test", "headers": {"webhook-id": "x"}}
    )
    assert_error(response, 422, "validation_error", field="body.headers.webhook-id")


def test_create_with_malformed_json_is_400(api):
    response = api.admin.post(
        "/v1/endpoints", content=b'{"url": ', headers={"content-type": "application/json"}
    )
    assert_error(response, 400, "bad_request")


def test_create_with_a_json_array_body_is_422(api):
    assert_error(api.admin.post("/v1/endpoints", json=[1, 2]), 422, "validation_error")


# -- read ----------------------------------------------------------------------


def test_get_returns_the_endpoint_without_its_secret(api):
    created = create_endpoint(api.admin)
    response = api.admin.get(f"/v1/endpoints/{created['id']}")
    assert response.status_code == 200
    body = response.json()
    assert "secret" not in body
    assert body == {k: v for k, v in created.items() if k != "secret"}


def test_get_redacts_sensitive_header_values(api):
    created = create_endpoint(
        api.admin,
        headers={"Authorization": "Bearer s3", "X-Api-Key": "k", "X-Team": "billing"},
    )
    body = api.admin.get(f"/v1/endpoints/{created['id']}").json()
    assert body["headers"] == {
        "Authorization": "[redacted]",
        "X-Api-Key": "[redacted]",
        "X-Team": "billing",
    }


def test_get_unknown_endpoint_is_404(api):
    assert_error(api.admin.get(f"/v1/endpoints/{UNKNOWN}"), 404, "not_found")


def test_list_is_newest_first_and_paginates_with_a_cursor(api):
    ids = [create_endpoint(api.admin, f"https://x.test/{i}")["id"] for i in range(5)]
    first = api.admin.get("/v1/endpoints", params={"limit": 2}).json()
    assert [e["id"] for e in first["data"]] == ids[::-1][:2]
    assert first["next_cursor"]
    second = api.admin.get("/v1/endpoints", params={"limit": 2, "cursor": first["next_cursor"]})
    assert [e["id"] for e in second.json()["data"]] == ids[::-1][2:4]
    last = api.admin.get(
        "/v1/endpoints", params={"limit": 2, "cursor": second.json()["next_cursor"]}
    ).json()
    assert [e["id"] for e in last["data"]] == ids[:1]
    assert last["next_cursor"] is None


def test_list_filters_by_tenant_and_status(api):
    acme = create_endpoint(api.admin, tenant="acme")
    create_endpoint(api.admin, tenant="globex")
    off = create_endpoint(api.admin, tenant="acme")
    api.admin.post(f"/v1/endpoints/{off['id']}/disable")
    by_tenant = api.admin.get("/v1/endpoints", params={"tenant": "acme"}).json()["data"]
    assert {e["id"] for e in by_tenant} == {acme["id"], off["id"]}
    both = api.admin.get("/v1/endpoints", params={"tenant": "acme", "status": "enabled"})
    assert [e["id"] for e in both.json()["data"]] == [acme["id"]]


def test_list_hides_secrets(api):
    create_endpoint(api.admin)
    [item] = api.admin.get("/v1/endpoints").json()["data"]
    assert "secret" not in item


@pytest.mark.parametrize("limit", [0, 251, "many"])
def test_list_rejects_a_limit_outside_1_to_250(api, limit):
    response = api.admin.get("/v1/endpoints", params={"limit": limit})
    assert_error(response, 422, "validation_error", field="query.limit")


def test_list_rejects_an_unknown_status(api):
    response = api.admin.get("/v1/endpoints", params={"status": "asleep"})
    assert_error(response, 422, "validation_error", field="query.status")


def test_list_rejects_a_foreign_cursor(api):
    response = api.admin.get("/v1/endpoints", params={"cursor": "msg_01JD0000000000000000000000"})
    assert_error(response, 422, "validation_error", field="query.cursor")


# -- update and delete -----------------------------------------------------------


def test_patch_changes_only_the_fields_sent(api):
    created = create_endpoint(api.admin, description="old", event_types=["a.b"])
    response = api.admin.patch(
        f"/v1/endpoints/{created['id']}", json={"description": "new", "rate_limit_per_second": 2}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["description"] == "new" and body["rate_limit_per_second"] == 2
    assert body["event_types"] == ["a.b"] and body["url"] == created["url"]
    assert "secret" not in body


def test_patch_with_null_resets_a_nullable_field(api):
    created = create_endpoint(api.admin, version="2", retry_schedule=[1, 2])
    body = api.admin.patch(
        f"/v1/endpoints/{created['id']}", json={"version": None, "retry_schedule": None}
    ).json()
    assert body["version"] is None and body["retry_schedule"] is None


def test_patch_with_null_url_is_422_naming_the_field(api):
    created = create_endpoint(api.admin)
    response = api.admin.patch(f"/v1/endpoints/{created['id']}", json={"url": None})
    assert_error(response, 422, "validation_error", field="body.url")


def test_patch_with_a_bad_value_is_422_naming_the_field(api):
    created = create_endpoint(api.admin)
    response = api.admin.patch(f"/v1/endpoints/{created['id']}", json={"max_in_flight": 0})
    assert_error(response, 422, "validation_error", field="body.max_in_flight")


def test_patch_cannot_change_the_tenant(api):
    created = create_endpoint(api.admin)
    response = api.admin.patch(f"/v1/endpoints/{created['id']}", json={"tenant": "other"})
    assert_error(response, 422, "validation_error", field="body.tenant")


def test_patch_unknown_endpoint_is_404(api):
    assert_error(api.admin.patch(f"/v1/endpoints/{UNKNOWN}", json={}), 404, "not_found")


def test_delete_answers_204_and_the_endpoint_is_gone(api):
    created = create_endpoint(api.admin)
    response = api.admin.delete(f"/v1/endpoints/{created['id']}")
    assert response.status_code == 204 and response.content == b""
    assert_error(api.admin.get(f"/v1/endpoints/{created['id']}"), 404, "not_found")


def test_delete_cancels_pending_deliveries(api):
    created = create_endpoint(api.admin)
    message = send(api.admin)
    api.admin.delete(f"/v1/endpoints/{created['id']}")
    [delivery] = api.admin.get("/v1/deliveries", params={"message_id": message["id"]}).json()[
        "data"
    ]
    assert delivery["status"] == "cancelled"


def test_delete_unknown_endpoint_is_404(api):
    assert_error(api.admin.delete(f"/v1/endpoints/{UNKNOWN}"), 404, "not_found")


# -- secrets ---------------------------------------------------------------------


def test_secret_returns_the_create_secret(api):
    created = create_endpoint(api.admin)
    response = api.admin.get(f"/v1/endpoints/{created['id']}/secret")
    assert response.status_code == 200
    assert response.json() == {"secret": created["secret"], "public_key": None, "previous": []}


def test_secret_of_unknown_endpoint_is_404(api):
    assert_error(api.admin.get(f"/v1/endpoints/{UNKNOWN}/secret"), 404, "not_found")


def test_rotate_returns_a_new_secret_and_keeps_the_old_one_for_the_grace_period(api):
    created = create_endpoint(api.admin)
    response = api.admin.post(
        f"/v1/endpoints/{created['id']}/secret/rotate", json={"grace_period_seconds": 3600}
    )
    assert response.status_code == 200
    new = response.json()["secret"]
    assert new.startswith("whsec_") and new != created["secret"]
    secret = api.admin.get(f"/v1/endpoints/{created['id']}/secret").json()
    assert secret["secret"] == new
    [previous] = secret["previous"]
    expires = datetime.fromisoformat(previous["expires_at"])
    assert TIMESTAMP.match(previous["expires_at"])
    assert timedelta(minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=1)


def test_rotate_without_a_body_uses_the_defaults(api):
    created = create_endpoint(api.admin)
    response = api.admin.post(f"/v1/endpoints/{created['id']}/secret/rotate")
    assert response.status_code == 200
    assert len(api.admin.get(f"/v1/endpoints/{created['id']}/secret").json()["previous"]) == 1


def test_rotate_to_a_given_secret(api):
    created = create_endpoint(api.admin)
    secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    response = api.admin.post(
        f"/v1/endpoints/{created['id']}/secret/rotate", json={"secret": secret}
    )
    assert response.json() == {"secret": secret}


def test_rotate_with_a_bad_grace_period_is_422_naming_it(api):
    created = create_endpoint(api.admin)
    response = api.admin.post(
        f"/v1/endpoints/{created['id']}/secret/rotate", json={"grace_period_seconds": -1}
    )
    assert_error(response, 422, "validation_error", field="body.grace_period_seconds")


def test_rotate_unknown_endpoint_is_404(api):
    assert_error(api.admin.post(f"/v1/endpoints/{UNKNOWN}/secret/rotate"), 404, "not_found")


# -- enable and disable ----------------------------------------------------------


def test_disable_marks_the_endpoint_manually_disabled(api):
    created = create_endpoint(api.admin)
    response = api.admin.post(f"/v1/endpoints/{created['id']}/disable")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "disabled" and body["disabled_reason"] == "manual"
    assert TIMESTAMP.match(body["disabled_at"])


def test_enable_clears_the_disabled_state(api):
    created = create_endpoint(api.admin)
    api.admin.post(f"/v1/endpoints/{created['id']}/disable")
    body = api.admin.post(f"/v1/endpoints/{created['id']}/enable").json()
    assert body["status"] == "enabled"
    assert body["disabled_reason"] is None and body["disabled_at"] is None


@pytest.mark.parametrize("action", ["enable", "disable"])
def test_enable_and_disable_of_unknown_endpoint_are_404(api, action):
    assert_error(api.admin.post(f"/v1/endpoints/{UNKNOWN}/{action}"), 404, "not_found")


# -- test sends ------------------------------------------------------------------


def test_test_send_answers_with_the_receivers_response(api, receiver):
    created = create_endpoint(api.admin, receiver.url("/hooks"))
    response = api.admin.post(
        f"/v1/endpoints/{created['id']}/test", json={"data": {"hello": "world"}}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["succeeded"] is True and body["status_code"] == 200
    assert body["response_body"] == "status 200" and body["error"] is None
    assert body["duration_ms"] > 0
    assert body["delivery_id"].startswith("dlv_") and body["message_id"].startswith("msg_")
    [request] = receiver.received()
    request.verify(created["secret"])


def test_test_send_without_a_body_sends_webhook_test(api, receiver):
    created = create_endpoint(api.admin, receiver.url("/hooks"))
    assert api.admin.post(f"/v1/endpoints/{created['id']}/test").status_code == 200
    [request] = receiver.received()
    assert b'"type":"webhook.test"' in request.body


def test_test_send_reaches_a_disabled_endpoint(api, receiver):
    created = create_endpoint(api.admin, receiver.url("/hooks"))
    api.admin.post(f"/v1/endpoints/{created['id']}/disable")
    body = api.admin.post(f"/v1/endpoints/{created['id']}/test").json()
    assert body["succeeded"] is True


def test_test_send_reports_a_failing_receiver(api, receiver):
    created = create_endpoint(api.admin, receiver.script("/down", [503]))
    body = api.admin.post(f"/v1/endpoints/{created['id']}/test").json()
    assert body["succeeded"] is False and body["status_code"] == 503


def test_test_send_with_a_bad_event_type_is_422(api):
    created = create_endpoint(api.admin)
    response = api.admin.post(f"/v1/endpoints/{created['id']}/test", json={"event_type": "a..b"})
    assert_error(response, 422, "validation_error", field="body.event_type")


def test_test_send_to_unknown_endpoint_is_404(api):
    assert_error(api.admin.post(f"/v1/endpoints/{UNKNOWN}/test"), 404, "not_found")


# -- recovery and stats ------------------------------------------------------------


def test_recover_requeues_failed_deliveries_of_the_window(api, receiver):
    created = create_endpoint(api.admin, receiver.script("/down", [500, 500]))
    since = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    for _ in range(2):
        api.admin.post(f"/v1/endpoints/{created['id']}/test")
    response = api.admin.post(f"/v1/endpoints/{created['id']}/recover", json={"since": since})
    assert response.status_code == 202
    assert response.json() == {"requeued": 2}
    statuses = {
        d["status"]
        for d in api.admin.get("/v1/deliveries", params={"endpoint_id": created["id"]}).json()[
            "data"
        ]
    }
    assert statuses == {"pending"}


def test_recover_outside_the_window_requeues_nothing(api):
    created = create_endpoint(api.admin)
    response = api.admin.post(
        f"/v1/endpoints/{created['id']}/recover",
        json={"since": "2020-01-01T00:00:00Z", "until": "2020-01-02T00:00:00Z"},
    )
    assert response.json() == {"requeued": 0}


def test_recover_without_since_is_422_naming_it(api):
    created = create_endpoint(api.admin)
    response = api.admin.post(f"/v1/endpoints/{created['id']}/recover", json={})
    assert_error(response, 422, "validation_error", field="body.since")


def test_recover_with_a_naive_timestamp_is_422(api):
    created = create_endpoint(api.admin)
    response = api.admin.post(
        f"/v1/endpoints/{created['id']}/recover", json={"since": "2026-01-01T00:00:00"}
    )
    assert_error(response, 422, "validation_error", field="body.since")


def test_recover_unknown_endpoint_is_404(api):
    response = api.admin.post(
        f"/v1/endpoints/{UNKNOWN}/recover", json={"since": "2026-01-01T00:00:00Z"}
    )
    assert_error(response, 404, "not_found")


def test_stats_count_deliveries_and_latency(api, receiver):
    created = create_endpoint(api.admin, receiver.script("/hooks", [200, 500]))
    for _ in range(2):
        api.admin.post(f"/v1/endpoints/{created['id']}/test")
    send(api.admin)
    response = api.admin.get(f"/v1/endpoints/{created['id']}/stats")
    assert response.status_code == 200
    body = response.json()
    assert (body["succeeded"], body["failed"], body["pending"]) == (1, 1, 1)
    assert body["success_rate"] == 0.5
    assert body["latency_ms"]["p50"] > 0 and body["latency_ms"]["p95"] > 0


def test_stats_of_an_idle_endpoint_have_no_rate_or_latency(api):
    created = create_endpoint(api.admin)
    body = api.admin.get(f"/v1/endpoints/{created['id']}/stats").json()
    assert body == {
        "succeeded": 0,
        "failed": 0,
        "pending": 0,
        "success_rate": None,
        "latency_ms": {"p50": None, "p95": None},
    }


def test_stats_accept_a_window(api):
    created = create_endpoint(api.admin)
    send(api.admin)
    response = api.admin.get(
        f"/v1/endpoints/{created['id']}/stats",
        params={"since": "2020-01-01T00:00:00Z", "until": "2020-01-02T00:00:00+00:00"},
    )
    assert response.json()["pending"] == 0


def test_stats_with_a_bad_timestamp_is_422_naming_it(api):
    created = create_endpoint(api.admin)
    response = api.admin.get(f"/v1/endpoints/{created['id']}/stats", params={"since": "yesterday"})
    assert_error(response, 422, "validation_error", field="query.since")


def test_stats_of_unknown_endpoint_is_404(api):
    assert_error(api.admin.get(f"/v1/endpoints/{UNKNOWN}/stats"), 404, "not_found")


@pytest.mark.parametrize(
    "field",
    ["retry_schedule", "rate_limit_per_second", "timeout_seconds", "max_in_flight"],
)
def test_booleans_are_not_taken_for_numbers(api, field):
    value = [True] if field == "retry_schedule" else True
    response = api.admin.post("/v1/endpoints", json={"url": "https://r.example/h", field: value})
    assert_error(response, 422, "validation_error")
    assert response.json()["error"]["details"][0]["field"].startswith(f"body.{field}")
