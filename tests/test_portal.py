"""The self-service portal through FastAPI's test client, on SQLite and on
PostgreSQL: what portal links allow, the endpoint form and its errors, the
event catalog, test sends of chosen events, replays, embedding and theming.

tests/test_portal_browser.py drives the same pages in a real browser.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html import unescape
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import ValidationError as SettingsError

from api.ui.appearance import Appearance, security_headers
from api.ui.catalog import event_type_choices, example_from_schema, schema_fields
from api.ui.endpoint_form import EndpointForm, error_field
from api.ui.forms import FormData
from api.ui.pages import SESSION_COOKIE
from api.ui.tokens import Signer
from producer import Producer
from producer.settings import Settings
from tests.helpers.receiver import Receiver
from tests.helpers.ui import SECRET, add_catalog, build_app, csrf_of, open_portal, sign_in

# -- fixtures -------------------------------------------------------------------


@pytest.fixture
def client(producer: Producer) -> Iterator[TestClient]:
    """A browser-like client of the UI app over a producer with the test catalog."""
    add_catalog(producer)
    with TestClient(build_app(producer)) as c:
        yield c


def _portal(client: TestClient, admin_key: str, *capabilities: str) -> str:
    """Open a portal link of acme with ``capabilities``; returns the CSRF token."""
    return open_portal(client, admin_key, "acme", capabilities=list(capabilities))


@pytest.fixture
def manager(client: TestClient, admin_key: str) -> tuple[TestClient, str]:
    """The client in a portal session of acme that may manage, and its CSRF token."""
    return client, _portal(client, admin_key, "manage", "operate")


def _errors(html: str) -> dict[str, str]:
    """The error shown beside each field of a form page."""
    found = re.findall(r'class="field-error" id="error-([^"]+)">([^<]*)<', html)
    return {name: unescape(text) for name, text in found}


def _create(client: TestClient, csrf: str, **fields: Any) -> Any:
    return client.post("/ui/endpoints/new", data={"csrf": csrf, **fields})


# -- portal links and their capabilities ------------------------------------------


def _link(client: TestClient, admin_key: str, body: dict[str, Any]) -> Any:
    return client.post(
        "/v1/portal-links", json=body, headers={"Authorization": f"Bearer {admin_key}"}
    )


def test_a_link_grants_read_and_operate_unless_told_otherwise(
    client: TestClient, admin_key: str
) -> None:
    assert _link(client, admin_key, {"tenant": "acme"}).json()["capabilities"] == [
        "read",
        "operate",
    ]
    chosen = _link(client, admin_key, {"tenant": "acme", "capabilities": ["manage"]})
    # Who may act on something may see it.
    assert chosen.json()["capabilities"] == ["read", "manage"]


@pytest.mark.parametrize(
    ("capabilities", "field"),
    [
        (["read", "admin"], "body.capabilities.1"),
        ("manage", "body.capabilities"),
        (["read", "read", "read", "read"], "body.capabilities"),
    ],
)
def test_a_link_with_an_unknown_capability_is_a_validation_error(
    client: TestClient, admin_key: str, capabilities: Any, field: str
) -> None:
    response = _link(client, admin_key, {"tenant": "acme", "capabilities": capabilities})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"][0]["field"] == field


def test_a_link_made_before_capabilities_keeps_its_meaning(
    producer: Producer, client: TestClient
) -> None:
    endpoint = producer.create_endpoint("http://127.0.0.1:9/acme", tenant="acme")
    # What a link looked like before links carried capabilities.
    expires = int((datetime.now(UTC) + timedelta(hours=1)).timestamp())
    token = Signer(SECRET).sign("portal", {"tenant": "acme", "exp": expires})
    client.get(f"/ui/portal?token={token}")
    page = client.get(f"/ui/endpoints/{endpoint.id}")
    assert 'id="send-test"' in page.text and 'id="edit"' not in page.text
    csrf = csrf_of(page.text)
    disabled = client.post(f"/ui/endpoints/{endpoint.id}/disable", data={"csrf": csrf})
    assert disabled.status_code == 200 and "endpoint is disabled" in disabled.text
    deleted = client.post(f"/ui/endpoints/{endpoint.id}/delete", data={"csrf": csrf})
    assert deleted.status_code == 403
    assert producer.get_endpoint(endpoint.id).status == "disabled"


def test_a_forged_capability_list_invalidates_the_link(client: TestClient) -> None:
    expires = int((datetime.now(UTC) + timedelta(hours=1)).timestamp())
    token = Signer(SECRET).sign("portal", {"tenant": "acme", "exp": expires, "caps": ["root"]})
    assert client.get(f"/ui/portal?token={token}").status_code == 403
    assert SESSION_COOKIE not in client.cookies


def _routes(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, set[str]]]:
    """The full path and methods of every route, those of included routers too."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield prefix + route.path, route.methods
        elif hasattr(route, "original_router"):  # FastAPI keeps included routers whole
            inner = prefix + route.include_context.prefix
            yield from _routes(route.original_router.routes, inner)


def _post_routes(client: TestClient) -> list[str]:
    """Every POST route of the UI that acts on something (not signing in or out)."""
    routes = client.app.routes  # type: ignore[attr-defined]
    posts = {path for path, methods in _routes(routes) if "POST" in methods}
    return sorted(p for p in posts if p.startswith("/ui/") and p not in ("/ui/login", "/ui/logout"))


# What each POST route needs, besides what allows seeing the page it is on.
NEEDS = {
    "/ui/endpoints/new": "manage",
    "/ui/endpoints/{endpoint_id}/edit": "manage",
    "/ui/endpoints/{endpoint_id}/delete": "manage",
    "/ui/endpoints/{endpoint_id}/secret": "manage",
    "/ui/endpoints/{endpoint_id}/test": "operate",
    "/ui/endpoints/{endpoint_id}/enable": "operate",
    "/ui/endpoints/{endpoint_id}/disable": "operate",
    "/ui/endpoints/{endpoint_id}/rotate-secret": "operate",
    "/ui/endpoints/{endpoint_id}/recover": "operate",
    "/ui/endpoints/{endpoint_id}/replay": "operate",
    "/ui/deliveries/{delivery_id}/retry": "operate",
    "/ui/deliveries/retry": "operate",
}


def test_every_post_route_is_listed_with_the_capability_it_needs(client: TestClient) -> None:
    assert sorted(_post_routes(client)) == sorted(NEEDS)


@pytest.mark.parametrize("granted", [["read"], ["read", "operate"], ["read", "manage"]])
def test_every_post_route_refuses_a_session_without_its_capability(
    producer: Producer, receiver: Receiver, client: TestClient, admin_key: str, granted: list[str]
) -> None:
    endpoint = producer.create_endpoint(receiver.url("/acme"), tenant="acme")
    delivery_id = producer.test_endpoint(endpoint.id).delivery_id
    before = (producer.get_endpoint(endpoint.id), producer.get_delivery(delivery_id))
    csrf = _portal(client, admin_key, *granted)
    form = {
        "csrf": csrf,
        "url": receiver.url("/changed"),
        "since": "2026-01-01T00:00",
        "data": "{}",
    }
    for path, needed in NEEDS.items():
        if needed in granted:
            continue
        url = path.format(endpoint_id=endpoint.id, delivery_id=delivery_id)
        response = client.post(url, data=form)
        assert response.status_code == 403, url
        assert "Not allowed" in response.text and needed in response.text
    assert (producer.get_endpoint(endpoint.id), producer.get_delivery(delivery_id)) == before
    assert len(producer.list_endpoints().data) == 1


def test_pages_hide_what_a_read_only_session_cannot_do(
    producer: Producer, receiver: Receiver, client: TestClient, admin_key: str
) -> None:
    endpoint = producer.create_endpoint(receiver.url("/acme"), tenant="acme")
    delivery_id = producer.test_endpoint(endpoint.id).delivery_id
    _portal(client, admin_key, "read")
    for path in ("/ui/endpoints", f"/ui/endpoints/{endpoint.id}", f"/ui/deliveries/{delivery_id}"):
        page = client.get(path).text
        # The only form that posts is signing out.
        assert page.count('method="post"') == 1, path
        assert "New endpoint" not in page and "read only" in page
    for path in (
        "/ui/endpoints/new",
        f"/ui/endpoints/{endpoint.id}/edit",
        f"/ui/endpoints/{endpoint.id}/test",
        f"/ui/endpoints/{endpoint.id}/replay",
    ):
        assert client.get(path).status_code == 403, path


def test_an_api_key_session_may_do_everything(
    producer: Producer, client: TestClient, admin_key: str
) -> None:
    csrf = sign_in(client, admin_key)
    response = _create(client, csrf, tenant="globex", url="http://127.0.0.1:9/globex")
    assert response.status_code == 201
    [endpoint] = producer.list_endpoints().data
    assert endpoint.tenant == "globex"


# -- the endpoint form -------------------------------------------------------------


def test_a_portal_user_creates_an_endpoint_for_their_tenant_and_sees_its_secret_once(
    producer: Producer, manager: tuple[TestClient, str]
) -> None:
    client, csrf = manager
    form = client.get("/ui/endpoints/new").text
    assert 'value="invoice.*"' in form and 'value="user.created"' in form
    assert 'name="tenant"' not in form  # a tenant's session creates for its own
    response = client.post(
        "/ui/endpoints/new",
        data={
            "csrf": csrf,
            "tenant": "globex",
            "url": "http://127.0.0.1:9/hooks",
            "description": "Billing",
            "event_types": ["invoice.voided", "user.created"],
            "more_event_types": "order.shipped, refund.*",
            "version": "1",
            "headers": "X-Team: billing\n\nAuthorization: Bearer t0k",
            "rate_limit_per_second": "2.5",
            "ordering": "fifo",
            "timeout_seconds": "4",
            "channels": "eu, store-7",
            "filter": '{"amount": {"$gte": 100}}',
        },
    )
    assert response.status_code == 201, _errors(response.text)
    [endpoint] = producer.list_endpoints().data
    secret = producer.get_endpoint_secret(endpoint.id).secret
    assert secret in response.text and response.headers["cache-control"] == "no-store"
    assert (endpoint.tenant, endpoint.url, endpoint.description) == (
        "acme",
        "http://127.0.0.1:9/hooks",
        "Billing",
    )
    assert endpoint.event_types == ["invoice.voided", "user.created", "order.shipped", "refund.*"]
    assert endpoint.version == "1" and endpoint.ordering == "fifo"
    assert endpoint.headers == {"X-Team": "billing", "Authorization": "Bearer t0k"}
    assert (endpoint.rate_limit_per_second, endpoint.timeout_seconds) == (2.5, 4.0)
    assert endpoint.channels == ["eu", "store-7"]
    assert endpoint.filter == {"amount": {"$gte": 100}}
    # Not on the endpoint's page afterwards.
    assert secret not in client.get(f"/ui/endpoints/{endpoint.id}").text


def test_all_events_subscribes_to_every_event_type(
    producer: Producer, manager: tuple[TestClient, str]
) -> None:
    client, csrf = manager
    response = _create(client, csrf, url="http://127.0.0.1:9/x", event_types=["*", "invoice.*"])
    assert response.status_code == 201
    assert producer.list_endpoints().data[0].event_types == []


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"url": "ftp://x"}, "url", "scheme must be http or https"),
        ({"url": "http://10.0.0.1/x"}, "url", "destination refused: 10.0.0.1 is a private"),
        ({"rate_limit_per_second": "fast"}, "rate_limit_per_second", "must be a number"),
        ({"timeout_seconds": "-1"}, "timeout_seconds", ""),
        ({"filter": "{nope"}, "filter", "is not JSON: Expecting property name"),
        ({"filter": '{"$or": [{"a": {"$gt": []}}]}'}, "filter", "filter.$or[0].a.$gt: must be"),
        ({"headers": "Content-Type: text/plain"}, "headers", "headers.Content-Type: is set by"),
        ({"headers": "no colon here"}, "headers", "line 1 is not “Name: value”"),
        ({"more_event_types": "name!"}, "more_event_types", "event_types[0]: 'name!' is not"),
        (
            {"event_types": ["invoice.paid"], "more_event_types": "name!"},
            "more_event_types",
            "event_types[1]: 'name!' is not",
        ),
        ({"event_types": ["invoice.paid", "forged!"]}, "event_types", "event_types[1]: "),
        ({"channels": "a b !"}, "channels", ""),
        ({"ordering": "random"}, "ordering", "must be 'unordered' or 'fifo'"),
        ({"version": "v 2"}, "version", ""),
    ],
)
def test_the_form_shows_each_error_beside_its_field(
    producer: Producer,
    manager: tuple[TestClient, str],
    fields: dict[str, Any],
    field: str,
    message: str,
) -> None:
    client, csrf = manager
    typed = {"url": "http://127.0.0.1:9/hooks", "description": "kept as typed", **fields}
    response = _create(client, csrf, **typed)
    assert response.status_code == 422
    errors = _errors(response.text)
    assert list(errors) == [field]
    assert errors[field].startswith(message)
    # The control says which text describes it, and that it is invalid.
    control = re.search(rf'<[^>]+id="f-{field}"[^>]*>', response.text)
    assert control is not None
    assert f"error-{field}" in control.group(0)
    if field != "event_types":  # a group of checkboxes is described, not marked invalid
        assert 'aria-invalid="true"' in control.group(0)
    assert 'value="kept as typed"' in response.text
    assert producer.list_endpoints().data == []


def test_editing_keeps_redacted_header_values_and_changes_the_rest(
    producer: Producer, manager: tuple[TestClient, str]
) -> None:
    client, csrf = manager
    endpoint = producer.create_endpoint(
        "http://127.0.0.1:9/hooks",
        tenant="acme",
        event_types=["invoice.paid", "custom.thing"],
        headers={"Authorization": "Bearer s3cret", "X-Team": "billing"},
        filter={"amount": {"$gte": 1}},
    )
    form = client.get(f"/ui/endpoints/{endpoint.id}/edit").text
    assert "s3cret" not in form and "Authorization: [redacted]" in form
    assert re.search(r'value="invoice.paid" checked', form)
    assert 'value="custom.thing"' in form  # not in the catalog: in the free-text field
    headers = re.search(r'<textarea[^>]*id="f-headers"[^>]*>([^<]*)<', form)
    assert headers is not None
    response = client.post(
        f"/ui/endpoints/{endpoint.id}/edit",
        data={
            "csrf": csrf,
            "url": endpoint.url,
            "event_types": ["user.created"],
            "headers": headers.group(1).replace("billing", "payments"),
            "ordering": "unordered",
            "filter": "",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303
    edited = producer.get_endpoint(endpoint.id)
    assert edited.event_types == ["user.created"] and edited.filter is None
    assert edited.headers == {"Authorization": "Bearer s3cret", "X-Team": "payments"}
    page = client.get(response.headers["location"]).text
    assert "settings are saved" in page


def test_an_edit_the_library_refuses_changes_nothing(
    producer: Producer, manager: tuple[TestClient, str]
) -> None:
    client, csrf = manager
    endpoint = producer.create_endpoint("http://127.0.0.1:9/hooks", tenant="acme")
    response = client.post(
        f"/ui/endpoints/{endpoint.id}/edit",
        data={"csrf": csrf, "url": "http://10.1.2.3/x", "ordering": "unordered"},
    )
    assert response.status_code == 422
    assert _errors(response.text)["url"].startswith("destination refused")
    assert producer.get_endpoint(endpoint.id).url == endpoint.url


def test_forms_without_the_sessions_csrf_token_change_nothing(
    producer: Producer, manager: tuple[TestClient, str]
) -> None:
    client, _ = manager
    endpoint = producer.create_endpoint("http://127.0.0.1:9/hooks", tenant="acme")
    other_session = Signer(SECRET).csrf_token("another-session")
    for csrf in ("", other_session):
        assert _create(client, csrf, url="http://127.0.0.1:9/x").status_code == 403
        for action in ("edit", "delete", "secret"):
            data = {"csrf": csrf, "url": "http://127.0.0.1:9/y"}
            response = client.post(f"/ui/endpoints/{endpoint.id}/{action}", data=data)
            assert response.status_code == 403, action
            assert "Form expired" in response.text
    assert [e.url for e in producer.list_endpoints().data] == [endpoint.url]


def test_another_tenants_endpoint_is_not_found_by_any_management_route(
    producer: Producer, manager: tuple[TestClient, str]
) -> None:
    client, csrf = manager
    other = producer.create_endpoint("http://127.0.0.1:9/globex", tenant="globex")
    for action in ("edit", "delete", "secret", "test", "replay"):
        assert client.get(f"/ui/endpoints/{other.id}/{action}").status_code == 404, action
    for action in ("edit", "delete", "secret"):
        data = {"csrf": csrf, "url": "http://127.0.0.1:9/stolen", "ordering": "unordered"}
        response = client.post(f"/ui/endpoints/{other.id}/{action}", data=data)
        assert response.status_code == 404, action
        assert producer.get_endpoint_secret(other.id).secret not in response.text
    assert producer.get_endpoint(other.id).url == other.url


def test_revealing_the_secret_asks_first(
    producer: Producer, manager: tuple[TestClient, str]
) -> None:
    client, csrf = manager
    endpoint = producer.create_endpoint("http://127.0.0.1:9/hooks", tenant="acme")
    secret = producer.get_endpoint_secret(endpoint.id).secret
    confirm = client.get(f"/ui/endpoints/{endpoint.id}/secret")
    assert confirm.status_code == 200 and secret not in confirm.text
    assert "Reveal the signing secret?" in confirm.text
    revealed = client.post(f"/ui/endpoints/{endpoint.id}/secret", data={"csrf": csrf})
    assert secret in revealed.text and revealed.headers["cache-control"] == "no-store"


def test_deleting_asks_first_then_cancels_what_waits(
    producer: Producer, manager: tuple[TestClient, str]
) -> None:
    client, csrf = manager
    endpoint = producer.create_endpoint("http://127.0.0.1:9/hooks", tenant="acme")
    message = producer.send("invoice.paid", {"invoice": "in_1", "amount": 5}, tenant="acme")
    assert "Delete this endpoint?" in client.get(f"/ui/endpoints/{endpoint.id}/delete").text
    assert producer.list_endpoints().data  # asking deleted nothing
    response = client.post(f"/ui/endpoints/{endpoint.id}/delete", data={"csrf": csrf})
    assert response.status_code == 200 and "endpoint is deleted" in response.text
    assert producer.list_endpoints().data == []
    [delivery] = producer.list_deliveries(message_id=message.id).data
    assert delivery.status == "cancelled"


# -- form parsing, without a page ---------------------------------------------------


def test_error_paths_belong_to_the_form_field_they_start_with() -> None:
    assert error_field("filter.$or[1].amount.$gt") == "filter"
    assert error_field("event_types[2]") == "event_types"
    assert error_field("headers.X-Team") == "headers"
    assert error_field("secret") == ""


def test_the_form_reads_numbers_lists_and_json_or_says_what_is_wrong() -> None:
    form = EndpointForm.posted(
        FormData(
            [
                ("url", " http://x "),
                ("rate_limit_per_second", "1e3"),
                ("timeout_seconds", ""),
                ("channels", "a,b  c"),
                ("filter", "[1,"),
                ("event_types", "a.*"),
                ("more_event_types", "b c"),
            ]
        )
    )
    settings = form.settings()
    assert settings["url"] == "http://x"
    assert settings["rate_limit_per_second"] == 1000.0 and settings["timeout_seconds"] is None
    assert settings["channels"] == ["a", "b", "c"]
    assert settings["event_types"] == ["a.*", "b", "c"]
    assert "filter" not in settings
    assert form.errors == {"filter": "is not JSON: Expecting value (line 1, column 4)"}


# -- the event catalog -------------------------------------------------------------


def test_the_catalog_shows_every_live_event_type_with_schema_and_example(
    producer: Producer, manager: tuple[TestClient, str]
) -> None:
    client, _ = manager
    producer.create_event_type("legacy.thing", description="Gone.")
    producer.archive_event_type("legacy.thing")
    page = client.get("/ui/event-types").text
    for name in ("invoice.paid", "invoice.voided", "user.created"):
        assert f'id="type-{name}"' in page
    assert "legacy.thing" not in page
    assert "An invoice was paid in full." in page
    assert "customer.email" in page and "format email" in page  # the schema, readably
    assert "&#34;in_42&#34;" in page  # the example of version 1
    assert "&#34;someone@example.com&#34;" in page  # one made from version 2's schema
    assert "&#34;plan&#34;: &#34;free&#34;" in page  # the schema's own example
    # The endpoint form links to it.
    assert '/ui/event-types"' in client.get("/ui/endpoints/new").text


def test_examples_are_made_from_schemas() -> None:
    schema = {
        "type": "object",
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "n": {"type": "integer", "minimum": 3},
            "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}},
            "kind": {"const": "x"},
            "maybe": {"type": ["null", "boolean"]},
            "any": {"oneOf": [{"type": "number"}, {"type": "string"}]},
        },
    }
    assert example_from_schema(schema) == {
        "id": "123e4567-e89b-12d3-a456-426614174000",
        "n": 3,
        "tags": ["a"],
        "kind": "x",
        "maybe": True,
        "any": 0.0,
    }
    assert example_from_schema({"type": "object", "examples": [{"a": 1}]}) == {"a": 1}
    deep: dict[str, Any] = {"type": "object", "properties": {}}
    deep["properties"]["self"] = deep  # a schema that refers to itself ends, bounded
    assert example_from_schema(deep) is not None


def test_schema_fields_flatten_nested_objects_and_arrays() -> None:
    schema = {
        "type": "object",
        "required": ["lines"],
        "properties": {
            "lines": {
                "type": "array",
                "items": {"type": "object", "properties": {"sku": {"type": "string"}}},
            }
        },
    }
    rows = [(f.path, f.type, f.required) for f in schema_fields(schema)]
    assert rows == [("lines", "array of object", True), ("lines[].sku", "string", False)]


def test_groups_come_before_the_types_they_hold() -> None:
    class Named:
        def __init__(self, name: str) -> None:
            self.name = name

    choices = event_type_choices([Named("b.x"), Named("a.b.c"), Named("a.d")])  # type: ignore[list-item]
    assert [(c.pattern, c.group) for c in choices] == [
        ("a.*", True),
        ("a.b.*", True),
        ("a.b.c", False),
        ("a.d", False),
        ("b.*", True),
        ("b.x", False),
    ]


# -- test sends and replays ----------------------------------------------------------


def test_the_test_form_starts_from_the_catalogs_example(
    producer: Producer, manager: tuple[TestClient, str]
) -> None:
    client, _ = manager
    endpoint = producer.create_endpoint("http://127.0.0.1:9/hooks", tenant="acme")
    page = client.get(f"/ui/endpoints/{endpoint.id}/test?event_type=invoice.paid").text
    assert "&#34;in_42&#34;" in page
    assert re.search(r'<option value="invoice.paid" selected>', page)


def test_a_test_send_of_a_chosen_event_shows_the_receivers_answer(
    producer: Producer, receiver: Receiver, manager: tuple[TestClient, str]
) -> None:
    client, csrf = manager
    endpoint = producer.create_endpoint(receiver.script("/hooks", [202]), tenant="acme")
    data = '{"invoice": "in_7", "amount": 700}'
    response = client.post(
        f"/ui/endpoints/{endpoint.id}/test",
        data={"csrf": csrf, "event_type": "invoice.paid", "data": data},
    )
    assert response.status_code == 200
    assert "HTTP 202" in response.text and "Response headers" in response.text
    assert "status 202" in response.text  # the body the receiver answered
    assert "in_7" in response.text  # the data, as typed, to send again
    [received] = receiver.received("/hooks")
    assert b'"type":"invoice.paid"' in received.body and b'"in_7"' in received.body


@pytest.mark.parametrize(
    ("event_type", "data", "field", "message"),
    [
        ("invoice.paid", '{"invoice": "in_7"}', "data", "data: 'amount' is a required property"),
        ("invoice.paid", "{oops", "data", "is not JSON"),
        ("not a name", "{}", "event_type", "event_type: 'not a name' is not a valid name"),
    ],
)
def test_a_test_send_the_library_refuses_is_not_sent(
    producer: Producer,
    receiver: Receiver,
    manager: tuple[TestClient, str],
    event_type: str,
    data: str,
    field: str,
    message: str,
) -> None:
    client, csrf = manager
    endpoint = producer.create_endpoint(receiver.url("/hooks"), tenant="acme")
    response = client.post(
        f"/ui/endpoints/{endpoint.id}/test",
        data={"csrf": csrf, "event_type": event_type, "data": data},
    )
    assert response.status_code == 422
    assert _errors(response.text)[field].startswith(message)
    assert receiver.received() == []


def test_replay_says_how_many_deliveries_it_will_queue_then_queues_them(
    producer: Producer, receiver: Receiver, manager: tuple[TestClient, str]
) -> None:
    client, csrf = manager
    missed = producer.send("invoice.paid", {"invoice": "in_1", "amount": 1}, tenant="acme")
    endpoint = producer.create_endpoint(receiver.url("/hooks"), tenant="acme")
    producer.send("user.created", {"user": "u_1"}, tenant="acme")  # pending: not counted
    since = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    page = client.get(f"/ui/endpoints/{endpoint.id}/replay?since={since}")
    assert page.status_code == 200
    assert re.search(r'class="count">1</span>\s*delivery will be queued', page.text)
    assert producer.list_deliveries(message_id=missed.id).data == []  # counting queued nothing
    response = client.post(
        f"/ui/endpoints/{endpoint.id}/replay", data={"csrf": csrf, "since": since, "until": ""}
    )
    assert "1 delivery is queued to be sent again" in response.text
    [delivery] = producer.list_deliveries(message_id=missed.id).data
    assert delivery.endpoint_id == endpoint.id and delivery.status == "pending"


# -- embedding and theming -------------------------------------------------------------


def test_pages_may_not_be_framed_by_default(manager: tuple[TestClient, str]) -> None:
    client, _ = manager
    for path in ("/ui/endpoints", "/ui/login", "/ui/no-such-page"):
        response = client.get(path)
        assert response.headers["x-frame-options"] == "DENY", path
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"], path


def test_the_frame_ancestors_setting_lets_those_origins_frame_the_pages(
    make_producer: Any, admin_key: str
) -> None:
    producer = make_producer(ui_frame_ancestors="https://app.example.com,http://localhost:3000")
    with TestClient(build_app(producer)) as client:
        response = client.get("/ui/login")
    policy = response.headers["content-security-policy"]
    assert policy.endswith("frame-ancestors https://app.example.com http://localhost:3000")
    assert "x-frame-options" not in response.headers


def _session_cookie(response: Any) -> str:
    return next(
        v for k, v in response.headers.multi_items() if k == "set-cookie" and SESSION_COOKIE in v
    )


@pytest.mark.parametrize(
    ("ancestors", "base_url", "expected", "unexpected"),
    [
        ([], "https://testserver", ["SameSite=strict", "Secure"], ["Partitioned"]),
        (["https://app.example.com"], "http://testserver", ["SameSite=strict"], ["Secure"]),
        (
            ["https://app.example.com"],
            "https://testserver",
            ["SameSite=none", "Secure", "Partitioned", "HttpOnly"],
            ["strict"],
        ),
    ],
)
def test_an_embeddable_portal_over_https_keeps_its_session_in_a_cross_site_frame(
    make_producer: Any,
    ancestors: list[str],
    base_url: str,
    expected: list[str],
    unexpected: list[str],
) -> None:
    producer = make_producer(ui_frame_ancestors=ancestors)
    admin_key = producer.create_api_key(name="admin")[1]
    with TestClient(build_app(producer), base_url=base_url) as client:
        link = _link(client, admin_key, {"tenant": "acme"}).json()["url"]
        cookie = _session_cookie(client.get(link))
    for attribute in expected:
        assert attribute.lower() in cookie.lower(), cookie
    for attribute in unexpected:
        assert attribute.lower() not in cookie.lower(), cookie


@pytest.mark.parametrize(
    "origin",
    [
        "https://app.example.com/path",
        "https://app.example.com; script-src *",
        "*",
        "javascript:alert(1)",
        "'self'",
    ],
)
def test_frame_ancestors_must_be_origins(origin: str) -> None:
    with pytest.raises(SettingsError, match="is not an origin"):
        Settings(ui_frame_ancestors=origin)
    with pytest.raises(ValueError, match="is not an origin"):
        Appearance(frame_ancestors=(origin,))


@pytest.mark.parametrize("colour", ["red", "#12345", "#1234567", "#fff;}", "#fff} body{x:y", ""])
def test_the_accent_colour_must_be_a_hex_colour(colour: str) -> None:
    with pytest.raises(SettingsError):
        Settings(ui_accent_color=colour)
    with pytest.raises(ValueError, match="is not a colour"):
        Appearance(accent_color=colour)


def test_the_hosts_name_and_colour_theme_every_page(make_producer: Any) -> None:
    producer = make_producer(ui_brand_name="Acme <Cloud>", ui_accent_color="#E4572E")
    with TestClient(build_app(producer)) as client:
        page = client.get("/ui/login").text
        theme = re.search(r'href="(/ui/theme.css\?v=[0-9a-f]+)"', page)
        assert theme is not None
        css = client.get(theme.group(1))
    assert "Acme &lt;Cloud&gt;</a>" in page and "<title>Sign in · Acme &lt;Cloud&gt;" in page
    assert css.headers["content-type"].startswith("text/css")
    assert css.text == ":root { --accent: #E4572E; }\n"


def test_without_theme_settings_the_built_in_look_stays() -> None:
    appearance = Appearance()
    assert appearance.brand == "Webhooks" and "--accent" not in appearance.stylesheet
    assert appearance.headers == security_headers()
