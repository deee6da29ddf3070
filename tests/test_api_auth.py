"""REST API: authentication, tenant isolation and host-provided auth."""

from __future__ import annotations

from typing import Annotated

import pytest
from cachetools import TTLCache
from fastapi import Depends, Header, HTTPException
from sqlalchemy import event

from api import Principal
from producer import Producer
from producer.context import KEY_CACHE_SECONDS
from tests.helpers.api import Api, assert_error, create_endpoint, send

ROUTES = [
    ("GET", "/v1/endpoints"),
    ("POST", "/v1/endpoints"),
    ("GET", "/v1/endpoints/ep_x"),
    ("PATCH", "/v1/endpoints/ep_x"),
    ("DELETE", "/v1/endpoints/ep_x"),
    ("GET", "/v1/endpoints/ep_x/secret"),
    ("POST", "/v1/endpoints/ep_x/secret/rotate"),
    ("POST", "/v1/endpoints/ep_x/disable"),
    ("POST", "/v1/endpoints/ep_x/enable"),
    ("POST", "/v1/endpoints/ep_x/test"),
    ("POST", "/v1/endpoints/ep_x/recover"),
    ("GET", "/v1/endpoints/ep_x/stats"),
    ("GET", "/v1/event-types"),
    ("POST", "/v1/event-types"),
    ("GET", "/v1/event-types/a.b"),
    ("PATCH", "/v1/event-types/a.b"),
    ("DELETE", "/v1/event-types/a.b"),
    ("GET", "/v1/messages"),
    ("POST", "/v1/messages"),
    ("GET", "/v1/messages/msg_x"),
    ("POST", "/v1/messages/msg_x/resend"),
    ("GET", "/v1/deliveries"),
    ("GET", "/v1/deliveries/dlv_x"),
    ("GET", "/v1/deliveries/dlv_x/attempts"),
    ("POST", "/v1/deliveries/dlv_x/retry"),
]


# -- keys ------------------------------------------------------------------------


def _key_reads(producer) -> list[str]:
    """Records each statement that reads the API key table."""
    reads: list[str] = []

    def seen(_conn, _cursor, statement, *_args) -> None:
        if "FROM webhook_api_keys" in statement:
            reads.append(statement)

    event.listen(producer.engine, "before_cursor_execute", seen)
    return reads


def test_a_key_used_a_moment_ago_is_not_read_again(api, producer):
    reads = _key_reads(producer)
    for _ in range(3):
        assert api.admin.get("/v1/endpoints").status_code == 200
    assert len(reads) == 1


def test_an_unknown_key_is_looked_up_every_time(api, producer):
    reads = _key_reads(producer)
    for _ in range(2):
        assert api.client("whk_not-a-key").get("/v1/endpoints").status_code == 401
    assert len(reads) == 2
    # ... so a key made meanwhile by another process works at once
    other = Producer(producer.engine.url.render_as_string(hide_password=False))
    _, plain = other.create_api_key(name="later")
    other.close()
    assert api.client(plain).get("/v1/endpoints").status_code == 200


def test_a_key_revoked_here_stops_at_once(api, producer):
    key, plain = producer.create_api_key(tenant="acme")
    assert api.client(plain).get("/v1/endpoints").status_code == 200
    producer.revoke_api_key(key.id)
    assert_error(api.client(plain).get("/v1/endpoints"), 401, "unauthorized")


def test_a_key_revoked_by_another_process_stops_within_the_cache_time(api, producer):
    now = [0.0]
    producer.context.live_keys = TTLCache(maxsize=16, ttl=KEY_CACHE_SECONDS, timer=lambda: now[0])
    key, plain = producer.create_api_key(tenant="acme")
    assert api.client(plain).get("/v1/endpoints").status_code == 200
    other = Producer(producer.engine.url.render_as_string(hide_password=False))
    other.revoke_api_key(key.id)
    other.close()

    now[0] = KEY_CACHE_SECONDS - 0.1
    assert api.client(plain).get("/v1/endpoints").status_code == 200
    now[0] = KEY_CACHE_SECONDS + 0.1
    assert_error(api.client(plain).get("/v1/endpoints"), 401, "unauthorized")


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_route_needs_a_key(api, method, path):
    response = api.anonymous.request(method, path)
    assert_error(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_route_refuses_a_wrong_key(api, method, path):
    response = api.client("whk_not-a-key").request(method, path)
    assert_error(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"


def test_a_non_bearer_scheme_is_401(api):
    response = api.anonymous.get(
        "/v1/endpoints", headers={"Authorization": f"Basic {api.admin_key}"}
    )
    assert_error(response, 401, "unauthorized")


def test_an_admin_key_sees_every_tenant(api):
    create_endpoint(api.admin, tenant="acme")
    create_endpoint(api.admin, tenant="globex")
    tenants = {e["tenant"] for e in api.admin.get("/v1/endpoints").json()["data"]}
    assert tenants == {"acme", "globex"}


# -- tenant keys -----------------------------------------------------------------


@pytest.fixture
def foreign(api) -> dict:
    """An endpoint, message and delivery of tenant globex."""
    endpoint = create_endpoint(api.admin, tenant="globex")
    message = send(api.admin, tenant="globex")
    [delivery] = api.admin.get("/v1/deliveries").json()["data"]
    return {"endpoint": endpoint["id"], "message": message["id"], "delivery": delivery["id"]}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v1/endpoints/{endpoint}", None),
        ("PATCH", "/v1/endpoints/{endpoint}", {"description": "mine now"}),
        ("DELETE", "/v1/endpoints/{endpoint}", None),
        ("GET", "/v1/endpoints/{endpoint}/secret", None),
        ("POST", "/v1/endpoints/{endpoint}/secret/rotate", {}),
        ("POST", "/v1/endpoints/{endpoint}/disable", None),
        ("POST", "/v1/endpoints/{endpoint}/enable", None),
        ("POST", "/v1/endpoints/{endpoint}/test", {}),
        ("POST", "/v1/endpoints/{endpoint}/recover", {"since": "2020-01-01T00:00:00Z"}),
        ("GET", "/v1/endpoints/{endpoint}/stats", None),
        ("GET", "/v1/messages/{message}", None),
        ("POST", "/v1/messages/{message}/resend", {"endpoint_id": "{endpoint}"}),
        ("GET", "/v1/deliveries/{delivery}", None),
        ("GET", "/v1/deliveries/{delivery}/attempts", None),
        ("POST", "/v1/deliveries/{delivery}/retry", {"force": True}),
    ],
)
def test_another_tenants_resource_is_404(api, foreign, method, path, body):
    if body is not None:
        body = {k: v.format(**foreign) if isinstance(v, str) else v for k, v in body.items()}
    response = api.tenant("acme").request(method, path.format(**foreign), json=body)
    assert_error(response, 404, "not_found")


def test_another_tenants_endpoint_is_left_untouched(api, foreign):
    acme = api.tenant("acme")
    acme.patch(f"/v1/endpoints/{foreign['endpoint']}", json={"description": "mine now"})
    acme.delete(f"/v1/endpoints/{foreign['endpoint']}")
    acme.post(f"/v1/endpoints/{foreign['endpoint']}/secret/rotate")
    endpoint = api.admin.get(f"/v1/endpoints/{foreign['endpoint']}").json()
    assert endpoint["description"] == "" and endpoint["status"] == "enabled"
    secret = api.admin.get(f"/v1/endpoints/{foreign['endpoint']}/secret").json()
    assert secret["previous"] == []


def test_a_tenant_key_reaches_its_own_resources(api):
    acme = api.tenant("acme")
    endpoint = create_endpoint(acme)
    message = send(acme)
    assert acme.get(f"/v1/endpoints/{endpoint['id']}").status_code == 200
    assert acme.get(f"/v1/messages/{message['id']}").status_code == 200
    [delivery] = acme.get("/v1/deliveries").json()["data"]
    assert acme.get(f"/v1/deliveries/{delivery['id']}").status_code == 200


def test_an_endpoint_created_with_a_tenant_key_belongs_to_its_tenant(api):
    body = create_endpoint(api.tenant("acme"), tenant="globex")
    assert body["tenant"] == "acme"


def test_a_message_sent_with_a_tenant_key_belongs_to_its_tenant(api):
    create_endpoint(api.admin, tenant="globex")
    body = send(api.tenant("acme"), tenant="globex")
    assert body["tenant"] == "acme" and body["deliveries"] == 0


@pytest.mark.parametrize("path", ["/v1/endpoints", "/v1/messages", "/v1/deliveries"])
def test_lists_show_only_the_keys_tenant(api, foreign, path):
    acme = api.tenant("acme")
    create_endpoint(acme)
    send(acme)
    data = acme.get(path).json()["data"]
    assert data and {item["tenant"] for item in data} == {"acme"}


@pytest.mark.parametrize("path", ["/v1/endpoints", "/v1/messages", "/v1/deliveries"])
def test_a_tenant_key_filtering_on_another_tenant_gets_nothing(api, foreign, path):
    response = api.tenant("acme").get(path, params={"tenant": "globex"})
    assert response.status_code == 200
    assert response.json() == {"data": [], "next_cursor": None}


def test_a_tenant_key_cannot_send_to_another_tenants_endpoint(api, foreign):
    response = api.tenant("acme").post(
        "/v1/messages",
        json={"event_type": "a.b", "data": {}, "endpoint_ids": [foreign["endpoint"]]},
    )
    assert_error(response, 422, "validation_error", field="body.endpoint_ids")


# -- host-provided auth ------------------------------------------------------------


def test_host_auth_replaces_api_keys(producer):
    def everyone_is_acme() -> Principal:
        return Principal(tenant="acme")

    api = Api(producer, auth=everyone_is_acme)
    create_endpoint(api.admin, tenant="globex")
    response = api.anonymous.get("/v1/endpoints")
    assert response.status_code == 200
    assert [e["tenant"] for e in response.json()["data"]] == ["acme"]


def _user_tenant(x_user: Annotated[str | None, Header()] = None) -> str:
    if x_user is None:
        raise HTTPException(401, "who are you?")
    return x_user


def _host_principal(tenant: Annotated[str, Depends(_user_tenant)]) -> Principal:
    return Principal(tenant=tenant)


def test_host_auth_may_use_its_own_dependencies(producer):
    api = Api(producer, auth=_host_principal)
    assert_error(api.anonymous.get("/v1/endpoints"), 401, "unauthorized")
    created = api.anonymous.post(
        "/v1/endpoints", json={"url": "https://x.test"}, headers={"X-User": "acme"}
    )
    assert created.json()["tenant"] == "acme"


def test_host_auth_returning_an_admin_principal_sees_everything(producer):
    api = Api(producer, auth=lambda: Principal(tenant=None))
    create_endpoint(api.admin, tenant="acme")
    create_endpoint(api.admin, tenant="globex")
    assert len(api.anonymous.get("/v1/endpoints").json()["data"]) == 2
