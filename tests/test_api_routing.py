"""The API of channels, payload filters, replay and bulk retry, tenant-scoped."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import update

from producer.models import DeliveryRow
from tests.helpers.api import assert_error, create_endpoint, send

SINCE = "2000-01-01T00:00:00Z"


def fail_all(producer) -> None:
    with producer.context.store.transaction() as s:
        s.execute(update(DeliveryRow).values(status="failed", next_attempt_at=None))


def test_channels_and_filter_are_set_read_and_changed(api):
    created = create_endpoint(api.admin, channels=["eu"], filter={"amount": {"$gt": 1}})
    assert created["channels"] == ["eu"] and created["filter"] == {"amount": {"$gt": 1}}

    patched = api.admin.patch(
        f"/v1/endpoints/{created['id']}", json={"channels": ["us"], "filter": None}
    )

    assert patched.status_code == 200, patched.text
    read = api.admin.get(f"/v1/endpoints/{created['id']}").json()
    assert read["channels"] == ["us"] and read["filter"] is None


def test_a_message_sent_on_channels_reports_them_and_its_skips(api):
    create_endpoint(api.admin, tenant="acme", channels=["eu"], filter={"amount": {"$gt": 100}})
    create_endpoint(api.admin, tenant="acme", channels=["eu"])

    message = send(api.admin, data={"amount": 5}, tenant="acme", channels=["eu"])

    assert message["deliveries"] == 1 and message["channels"] == ["eu"]
    read = api.admin.get(f"/v1/messages/{message['id']}").json()
    assert read["skipped"] == {"filter": 1}


def test_an_invalid_filter_is_422_naming_its_path(api):
    response = api.admin.post(
        "/v1/endpoints", json={"url": "https://example.com/h", "filter": {"a": {"$gt": {}}}}
    )
    assert_error(response, 422, "validation_error", field="body.filter.a.$gt")


def test_an_invalid_channel_is_422(api):
    response = api.admin.post(
        "/v1/messages", json={"event_type": "a.b", "data": {}, "channels": ["no spaces"]}
    )
    assert_error(response, 422, "validation_error", field="body.channels[0]")


def test_the_filter_test_route_answers_matches(api):
    client = api.tenant("acme")
    body = {
        "filter": {"customer.country": {"$in": ["FR"]}},
        "payload": {"customer": {"country": "FR"}},
    }
    assert client.post("/v1/filters/test", json=body).json() == {"matches": True}
    body["payload"] = {"customer": {}}
    assert client.post("/v1/filters/test", json=body).json() == {"matches": False}


def test_the_filter_test_route_refuses_a_bad_filter_and_an_anonymous_caller(api):
    bad = api.admin.post("/v1/filters/test", json={"filter": {"$nor": []}, "payload": {}})
    assert_error(bad, 422, "validation_error", field="body.filter.$nor")
    assert api.anonymous.post("/v1/filters/test", json={"filter": {}}).status_code == 401


def test_replay_creates_the_missing_deliveries_once(api):
    acme = api.tenant("acme")
    send(acme)
    send(acme)
    endpoint = create_endpoint(acme)

    first = acme.post(f"/v1/endpoints/{endpoint['id']}/replay", json={"since": SINCE})
    second = acme.post(f"/v1/endpoints/{endpoint['id']}/replay", json={"since": SINCE})

    assert first.status_code == 202, first.text
    assert first.json() == {"created": 2, "requeued": 0}
    assert second.json() == {"created": 0, "requeued": 0}


def test_replay_with_include_failed_requeues_them(api):
    acme = api.tenant("acme")
    endpoint = create_endpoint(acme)
    send(acme)
    fail_all(api.producer)

    response = acme.post(
        f"/v1/endpoints/{endpoint['id']}/replay", json={"since": SINCE, "include_failed": True}
    )

    assert response.json() == {"created": 0, "requeued": 1}


def test_replay_of_another_tenants_endpoint_is_404(api):
    endpoint = create_endpoint(api.tenant("acme"))
    response = api.tenant("other").post(
        f"/v1/endpoints/{endpoint['id']}/replay", json={"since": SINCE}
    )
    assert_error(response, 404, "not_found")


def test_bulk_retry_requeues_the_callers_tenants_failed_deliveries_only(api):
    acme, other = api.tenant("acme"), api.tenant("other")
    create_endpoint(acme)
    create_endpoint(other)
    send(acme)
    send(other)
    fail_all(api.producer)

    response = acme.post("/v1/deliveries/retry", json={"tenant": "other"})
    assert response.json() == {"requeued": 0}
    response = acme.post("/v1/deliveries/retry", json={})
    assert response.status_code == 202 and response.json() == {"requeued": 1}
    statuses = {d.tenant: d.status for d in api.producer.list_deliveries().data}
    assert statuses == {"acme": "pending", "other": "failed"}


def test_bulk_retry_of_another_tenants_endpoint_is_404(api):
    endpoint = create_endpoint(api.tenant("acme"))
    response = api.tenant("other").post(
        "/v1/deliveries/retry", json={"endpoint_id": endpoint["id"]}
    )
    assert_error(response, 404, "not_found")


def test_bulk_retry_by_an_admin_spans_tenants_within_the_window(api):
    create_endpoint(api.admin, tenant="acme")
    create_endpoint(api.admin, tenant="other")
    send(api.admin, tenant="acme")
    send(api.admin, tenant="other")
    fail_all(api.producer)
    future = datetime(2100, 1, 1, tzinfo=UTC).isoformat()

    assert api.admin.post("/v1/deliveries/retry", json={"since": future}).json() == {"requeued": 0}
    assert api.admin.post("/v1/deliveries/retry", json={}).json() == {"requeued": 2}


def test_bulk_retry_of_succeeded_deliveries_needs_force(api):
    response = api.admin.post("/v1/deliveries/retry", json={"status": "succeeded"})
    assert_error(response, 422, "validation_error", field="body.force")
