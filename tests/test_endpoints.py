"""Endpoint registration, updates, secrets, enable/disable, deletion."""

import time
from datetime import timedelta

import pytest
from standardwebhooks.webhooks import Webhook

from producer import NotFoundError, Producer, ValidationError
from producer.signing import build_headers

URL = "https://receiver.example/hooks"


def test_create_generates_a_secret_and_returns_it_once(producer):
    endpoint = producer.create_endpoint(URL, tenant="acme")
    assert endpoint.secret is not None and endpoint.secret.startswith("whsec_")
    assert endpoint.status == "enabled" and endpoint.consecutive_failures == 0
    assert endpoint.id.startswith("ep_")
    assert producer.get_endpoint(endpoint.id).secret is None
    assert producer.get_endpoint_secret(endpoint.id).secret == endpoint.secret


def test_given_secret_is_validated(producer):
    with pytest.raises(ValidationError) as info:
        producer.create_endpoint(URL, secret="not-a-secret")
    assert info.value.details[0]["field"] == "secret"


def test_v1a_endpoints_expose_a_public_key(producer):
    endpoint = producer.create_endpoint(URL, signature_scheme="v1a")
    secret = producer.get_endpoint_secret(endpoint.id)
    assert secret.secret.startswith("whsk_")
    assert secret.public_key is not None and secret.public_key.startswith("whpk_")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("url", "ftp://x.example/"),
        ("url", "https://user:pass@x.example/"),
        ("url", "https:///nohost"),
        ("url", "https://x.example/" + "a" * 3000),
        ("event_types", ["bad pattern"]),
        ("headers", {"webhook-id": "x"}),
        ("headers", {"X-Ok": "line\r\nbreak"}),
        ("ordering", "random"),
        ("retry_schedule", []),
        ("rate_limit_per_second", -1),
        ("version", ""),
        ("signature_scheme", "v9"),
    ],
)
def test_bad_fields_are_refused_with_the_field_named(producer, field, value):
    with pytest.raises(ValidationError) as info:
        producer.create_endpoint(**{"url": URL, field: value})
    assert info.value.details[0]["field"].split(".")[0].split("[")[0] == field
    assert producer.list_endpoints().data == []


def test_tenant_scoping_hides_other_tenants_endpoints(producer):
    endpoint = producer.create_endpoint(URL, tenant="acme")
    with pytest.raises(NotFoundError):
        producer.get_endpoint(endpoint.id, tenant="other")
    assert producer.get_endpoint(endpoint.id, tenant="acme").id == endpoint.id
    assert producer.list_endpoints(tenant="other").data == []


def test_update_changes_only_the_given_fields(producer):
    endpoint = producer.create_endpoint(URL, description="old", event_types=["a.b"])
    updated = producer.update_endpoint(endpoint.id, description="new", version="2")
    assert updated.description == "new"
    assert updated.version == "2"
    assert updated.event_types == ["a.b"]
    assert producer.update_endpoint(endpoint.id, version=None).version is None


def test_list_is_newest_first_and_paginates(producer):
    ids = [producer.create_endpoint(URL, tenant="acme").id for _ in range(5)]
    first = producer.list_endpoints(limit=2)
    assert [e.id for e in first.data] == ids[::-1][:2]
    second = producer.list_endpoints(limit=2, cursor=first.next_cursor)
    third = producer.list_endpoints(limit=2, cursor=second.next_cursor)
    assert [e.id for e in second.data + third.data] == ids[::-1][2:]
    assert third.next_cursor is None


def test_list_filters_by_status(producer):
    a = producer.create_endpoint(URL)
    b = producer.create_endpoint(URL)
    producer.disable_endpoint(b.id)
    assert [e.id for e in producer.list_endpoints(status="enabled").data] == [a.id]
    assert [e.id for e in producer.list_endpoints(status="disabled").data] == [b.id]


def test_every_combination_of_filters_pages_through_exactly_its_endpoints(producer):
    # Each set of filters has a statement of its own, built once and reused
    # with new values: every set, run twice with other values, pages through
    # exactly the live endpoints it names, newest first.
    made = []
    for i in range(12):
        tenant = ("acme", "globex", "initech")[i % 3]
        endpoint = producer.create_endpoint(URL, tenant=tenant)
        if i % 4 == 1:
            producer.disable_endpoint(endpoint.id, tenant=tenant)
        if i == 6:
            producer.delete_endpoint(endpoint.id, tenant=tenant)
            continue
        made.append((endpoint.id, tenant, "disabled" if i % 4 == 1 else "enabled"))
    for tenant in (None, "acme", "globex"):
        for status in (None, "enabled", "disabled"):
            expected = [
                id_ for id_, t, s in reversed(made) if tenant in (None, t) and status in (None, s)
            ]
            seen, cursor = [], None
            while True:
                page = producer.list_endpoints(tenant=tenant, status=status, limit=2, cursor=cursor)
                seen += [e.id for e in page.data]
                if (cursor := page.next_cursor) is None:
                    break
            assert seen == expected, (tenant, status)


def test_bad_cursor_and_limit_are_validation_errors(producer):
    with pytest.raises(ValidationError):
        producer.list_endpoints(cursor="msg_nope")
    with pytest.raises(ValidationError):
        producer.list_endpoints(limit=251)


def test_disable_then_enable_clears_the_failure_state(producer):
    endpoint = producer.create_endpoint(URL)
    disabled = producer.disable_endpoint(endpoint.id)
    assert (disabled.status, disabled.disabled_reason) == ("disabled", "manual")
    assert disabled.disabled_at is not None
    enabled = producer.enable_endpoint(endpoint.id)
    assert (enabled.status, enabled.disabled_reason, enabled.disabled_at) == ("enabled", None, None)


def test_delete_cancels_pending_deliveries_and_hides_the_endpoint(producer):
    endpoint = producer.create_endpoint(URL)
    message = producer.send("a.b", {})
    producer.delete_endpoint(endpoint.id)
    with pytest.raises(NotFoundError):
        producer.get_endpoint(endpoint.id)
    [delivery] = producer.list_deliveries(message_id=message.id).data
    assert delivery.status == "cancelled"


def test_rotation_keeps_the_old_secret_signing_for_the_grace_period(database_url, clock):
    producer = Producer(database_url, auto_migrate=True, clock=clock)
    endpoint = producer.create_endpoint(URL)
    old = endpoint.secret
    new = producer.rotate_endpoint_secret(endpoint.id, grace_period_seconds=3600)
    assert new != old
    info = producer.get_endpoint_secret(endpoint.id)
    assert info.secret == new
    assert [p.expires_at for p in info.previous] == [clock.now + timedelta(seconds=3600)]

    row_secrets = _live_secrets(producer, endpoint.id)
    assert row_secrets == [new, old]
    headers = build_headers(row_secrets, "msg_1", int(time.time()), b"{}")
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):  # a receiver on either secret accepts the delivery
        Webhook(secret).verify(b"{}", headers)

    clock.advance(3601)
    assert _live_secrets(producer, endpoint.id) == [new]
    assert producer.get_endpoint_secret(endpoint.id).previous == []
    producer.close()


def test_rotation_without_grace_drops_the_old_secret_at_once(producer):
    endpoint = producer.create_endpoint(URL)
    new = producer.rotate_endpoint_secret(endpoint.id, grace_period_seconds=0)
    assert _live_secrets(producer, endpoint.id) == [new]


def test_rotation_to_a_given_secret_validates_it(producer):
    endpoint = producer.create_endpoint(URL)
    with pytest.raises(ValidationError):
        producer.rotate_endpoint_secret(endpoint.id, secret="whsec_!!")


def _live_secrets(producer, endpoint_id):
    with producer.store.transaction() as s:
        return producer.live_secrets(producer.store.get_endpoint(s, endpoint_id))


@pytest.mark.parametrize("reason", ["", "x" * 17, "bad\x00", 3])
def test_disable_refuses_a_reason_the_log_cannot_keep(producer, reason):
    endpoint = producer.create_endpoint("https://r.example/h")
    with pytest.raises(ValidationError) as caught:
        producer.disable_endpoint(endpoint.id, reason=reason)
    assert "reason" in str(caught.value)
    assert producer.get_endpoint(endpoint.id).status == "enabled"
