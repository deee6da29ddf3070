"""Input validation at the edges (issue "Hardening II").

Whatever is accepted can be read back; the same input gets the same answer on
SQLite and PostgreSQL; dates, custom headers and destination URLs that could
never work are refused when they are given, with a 422 naming the field.
Every test runs on both databases, through the real API and the library.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from api.schemas.common import RequestBody
from producer import Producer
from producer.destinations import DestinationPolicy, ip_literal
from producer.errors import NotFoundError, ValidationError
from producer.models import EndpointRow, EventTypeRow, MessageRow
from producer.validation import MAX_JSON_DEPTH, validate_headers, validate_json, validate_url
from tests.helpers.api import Api, assert_error, create_endpoint, send
from tests.helpers.ui import build_app, sign_in


def nested(levels: int) -> dict[str, Any]:
    """An object ``levels`` objects deep: ``{"a": {"a": ... {}}}``."""
    value: dict[str, Any] = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


TOO_DEEP = nested(MAX_JSON_DEPTH + 1)
LEGACY_DEPTH = 300
"""Deeper than response serialisation can go (about 255 levels)."""


# -- 2. nesting: refused at input ----------------------------------------------------


def test_json_nested_up_to_the_limit_is_accepted():
    assert validate_json(nested(MAX_JSON_DEPTH), "data") == nested(MAX_JSON_DEPTH)


def test_json_nested_beyond_the_limit_is_refused_naming_the_field():
    with pytest.raises(ValidationError) as caught:
        validate_json([TOO_DEEP], "data")
    assert caught.value.details[0]["field"] == "data"


def test_json_depth_check_survives_documents_deeper_than_the_recursion_limit():
    very_deep: list[Any] = []
    for _ in range(100_000):
        very_deep = [very_deep]
    with pytest.raises(ValidationError):
        validate_json(very_deep, "data")


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/endpoints", {"url": "https://example.com/h", "metadata": TOO_DEEP}, "body.metadata"),
        ("/v1/messages", {"event_type": "invoice.paid", "data": TOO_DEEP}, "body.data"),
        ("/v1/event-types", {"name": "deep.one", "examples": {"1": TOO_DEEP}}, "body.examples"),
        (
            "/v1/event-types",
            {"name": "deep.one", "schemas": {"1": TOO_DEEP}},
            "body.schemas",
        ),
    ],
)
def test_api_refuses_too_deep_json_and_stores_nothing(api, path, body, field):
    assert_error(api.admin.post(path, json=body), 422, "validation_error", field=field)
    assert api.admin.get(path).json()["data"] == []


def test_api_refuses_too_deep_json_in_an_update(api):
    endpoint = create_endpoint(api.admin, metadata={"team": "billing"})
    response = api.admin.patch(f"/v1/endpoints/{endpoint['id']}", json={"metadata": TOO_DEEP})
    assert_error(response, 422, "validation_error", field="body.metadata")
    assert api.admin.get(f"/v1/endpoints/{endpoint['id']}").json()["metadata"] == {
        "team": "billing"
    }


def test_api_refuses_too_deep_json_in_a_test_send(api):
    endpoint = create_endpoint(api.admin)
    response = api.admin.post(f"/v1/endpoints/{endpoint['id']}/test", json={"data": TOO_DEEP})
    assert_error(response, 422, "validation_error", field="body.data")


@pytest.mark.parametrize(
    "call",
    [
        lambda p: p.create_endpoint("https://example.com/h", metadata=TOO_DEEP),
        lambda p: p.send("invoice.paid", TOO_DEEP),
        lambda p: p.create_event_type("deep.one", examples={"1": TOO_DEEP}),
        lambda p: p.create_event_type("deep.one", schemas={"1": TOO_DEEP}),
    ],
    ids=["endpoint metadata", "message data", "event type examples", "event type schemas"],
)
def test_library_refuses_too_deep_json(producer, call):
    with pytest.raises(ValidationError, match="levels deep"):
        call(producer)


def _operations(api: Api) -> list[tuple[str, str, dict[str, Any]]]:
    """Every documented operation: (method, path, operation)."""
    paths = api.app.openapi()["paths"]
    return [(m.upper(), p, op) for p, ops in paths.items() for m, op in ops.items()]


def _parameters(operation: dict[str, Any], where: str) -> list[dict[str, Any]]:
    return [p for p in operation.get("parameters", []) if p["in"] == where]


def _subclasses(cls: type) -> set[type]:
    found = set(cls.__subclasses__())
    for sub in list(found):
        found |= _subclasses(sub)
    return found


def test_every_request_body_checks_its_json(api):
    """Closes the class: every documented body is a RequestBody, so a body
    added later inherits the depth and NUL checks."""
    checked = {cls.__name__ for cls in _subclasses(RequestBody)}
    bodies = set()
    for _, _, operation in _operations(api):
        text = json.dumps(operation.get("requestBody", {}))
        bodies |= set(re.findall(r"#/components/schemas/(\w+)", text))
    assert bodies and bodies <= checked, bodies - checked


# -- 2. nesting: rows stored before the limit stay readable ---------------------------


def _legacy_rows(producer: Producer) -> dict[str, str]:
    """An endpoint, an event type and a message written through the library,
    then made deeper than any response can nest, as before the limit."""
    endpoint = producer.create_endpoint("https://example.com/h", tenant="acme")
    producer.create_event_type("invoice.paid")
    message = producer.send("invoice.paid", {"n": 1}, tenant="acme")
    deep = nested(LEGACY_DEPTH)
    envelope = json.loads(producer.get_message(message.id).payload)
    envelope["data"] = deep
    with producer.engine.begin() as db:
        db.execute(update(EndpointRow).values(metadata_=deep))
        db.execute(update(EventTypeRow).values(examples={"1": deep}, schemas={"1": deep}))
        db.execute(update(MessageRow).values(payload=json.dumps(envelope).encode()))
    return {"endpoint": endpoint.id, "message": message.id}


def test_api_lists_and_gets_rows_nested_deeper_than_the_limit(api):
    ids = _legacy_rows(api.producer)
    for path in (
        "/v1/endpoints",
        f"/v1/endpoints/{ids['endpoint']}",
        "/v1/event-types",
        "/v1/event-types/invoice.paid",
        "/v1/messages",
        f"/v1/messages/{ids['message']}",
    ):
        response = api.admin.get(path)
        assert response.status_code == 200, (path, response.text)


def test_api_returns_the_too_deep_part_of_a_stored_value_as_its_json_text(api):
    ids = _legacy_rows(api.producer)
    metadata = api.admin.get(f"/v1/endpoints/{ids['endpoint']}").json()["metadata"]
    levels = 0
    while isinstance(metadata, dict):
        metadata, levels = metadata["a"], levels + 1
    assert isinstance(metadata, str) and levels < LEGACY_DEPTH
    assert json.loads(metadata) == nested(LEGACY_DEPTH - levels)


def test_ui_shows_rows_nested_deeper_than_the_limit(producer):
    ids = _legacy_rows(producer)
    _, key = producer.create_api_key(name="admin")
    client = TestClient(build_app(producer))
    sign_in(client, key)
    for path in ("/ui/endpoints", f"/ui/endpoints/{ids['endpoint']}", "/ui/messages"):
        response = client.get(path)
        assert response.status_code == 200, (path, response.text[-500:])
    assert client.get(f"/ui/messages/{ids['message']}").status_code == 200


# -- 3. NUL characters: the same answer on both databases ----------------------------

URL = "https://e.example/h"
KEY = "body.idempotency_key"


def test_every_path_id_with_a_nul_is_not_found(api):
    """Closes the class for paths: every operation with a path parameter."""
    checked = 0
    for method, path, operation in _operations(api):
        if not _parameters(operation, "path"):
            continue
        response = api.admin.request(method, re.sub(r"\{[^}]+\}", "a%00b", path))
        assert_error(response, 404, "not_found")
        checked += 1
    assert checked >= 15


def test_every_query_filter_with_a_nul_is_invalid(api):
    """Closes the class for query strings: every query parameter of every operation."""
    checked = 0
    for method, path, operation in _operations(api):
        for param in _parameters(operation, "query"):
            url = re.sub(r"\{[^}]+\}", "missing", path)
            response = api.admin.request(method, url, params={param["name"]: "a\x00b"})
            assert_error(response, 422, "validation_error", field=f"query.{param['name']}")
            checked += 1
    assert checked >= 10


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (
            "/v1/endpoints",
            {"url": URL, "description": "a\x00"},
            "body.description",
        ),
        ("/v1/endpoints", {"url": URL, "tenant": "a\x00"}, "body.tenant"),
        (
            "/v1/endpoints",
            {"url": URL, "metadata": {"k": "\x00"}},
            "body.metadata",
        ),
        ("/v1/endpoints", {"url": URL, "metadata": {"\x00": 1}}, "body.metadata"),
        (
            "/v1/endpoints",
            {"url": URL, "event_types": ["a\x00"]},
            "body.event_types",
        ),
        (
            "/v1/endpoints",
            {"url": URL, "headers": {"X-A": "\x00"}},
            "body.headers",
        ),
        ("/v1/messages", {"event_type": "a.b", "data": {"k": "a\x00"}}, "body.data"),
        ("/v1/messages", {"event_type": "a\x00", "data": {}}, "body.event_type"),
        ("/v1/messages", {"event_type": "a.b", "data": {}, "tenant": "\x00"}, "body.tenant"),
        (
            "/v1/messages",
            {"event_type": "a.b", "data": {}, "idempotency_key": "\x00"},
            "body.idempotency_key",
        ),
        ("/v1/event-types", {"name": "a.b", "description": "\x00"}, "body.description"),
        ("/v1/event-types", {"name": "a.b", "examples": {"1": "\x00"}}, "body.examples"),
    ],
)
def test_body_strings_with_a_nul_are_refused_naming_the_field(api, path, body, field):
    assert_error(api.admin.post(path, json=body), 422, "validation_error", field=field)
    assert api.admin.get(path).json()["data"] == []


@pytest.mark.parametrize(
    "call",
    [
        lambda p: p.send("invoice.paid", {"k": "\x00"}),
        lambda p: p.send("invoice.paid", {}, idempotency_key="k\x00"),
        lambda p: p.send("invoice.paid", {}, endpoint_ids=["ep_\x00"]),
        lambda p: p.create_endpoint("https://e.example/h", metadata={"k": "\x00"}),
        lambda p: p.create_event_type("a.b", description="\x00"),
        lambda p: p.create_event_type("a.b", examples={"1": {"k": "\x00"}}),
    ],
)
def test_library_refuses_nul_in_what_it_stores(producer, call):
    with pytest.raises(ValidationError, match="NUL"):
        call(producer)


def test_library_event_type_with_a_nul_in_its_name_is_not_found(producer):
    from producer.errors import NotFoundError

    with pytest.raises(NotFoundError):
        producer.get_event_type("a\x00b")


def test_ui_filters_and_forms_with_a_nul_are_refused(producer):
    _, key = producer.create_api_key(name="admin")
    client = TestClient(build_app(producer))
    sign_in(client, key)
    for path in ("/ui/endpoints", "/ui/messages"):
        assert client.get(path, params={"tenant": "a\x00"}).status_code == 422
    assert client.post("/ui/login", data={"csrf": "\x00", "api_key": key}).status_code == 422


def test_ui_pages_of_an_id_with_a_nul_are_not_found(producer):
    _, key = producer.create_api_key(name="admin")
    client = TestClient(build_app(producer))
    sign_in(client, key)
    for path in ("/ui/endpoints/ep_a%00", "/ui/deliveries/dlv_a%00", "/ui/messages/msg_a%00"):
        assert client.get(path).status_code == 404, path


def test_library_lookups_of_an_id_with_a_nul_are_not_found(producer):
    for lookup in (producer.get_endpoint, producer.get_message, producer.get_delivery):
        with pytest.raises(NotFoundError):
            lookup("x_a\x00b")


# -- 4. dates out of range ----------------------------------------------------------

OUT_OF_RANGE = ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59"]


@pytest.mark.parametrize("when", OUT_OF_RANGE)
@pytest.mark.parametrize("name", ["since", "until"])
def test_list_filters_out_of_range_are_refused_naming_the_field(api, when, name):
    endpoint = create_endpoint(api.admin)
    for path in ("/v1/messages", "/v1/deliveries", f"/v1/endpoints/{endpoint['id']}/stats"):
        response = api.admin.get(path, params={name: when})
        assert_error(response, 422, "validation_error", field=f"query.{name}")


@pytest.mark.parametrize("when", OUT_OF_RANGE)
@pytest.mark.parametrize("name", ["since", "until"])
def test_recover_window_out_of_range_is_refused_naming_the_field(api, when, name):
    endpoint = create_endpoint(api.admin)
    body = {"since": "2026-11-22T10:00:00Z", name: when}
    response = api.admin.post(f"/v1/endpoints/{endpoint['id']}/recover", json=body)
    assert_error(response, 422, "validation_error", field=f"body.{name}")


def test_every_date_query_parameter_is_checked(api):
    """Closes the class: every query parameter documented as a date-time."""
    checked = 0
    endpoint = create_endpoint(api.admin)
    for method, path, operation in _operations(api):
        for param in _parameters(operation, "query"):
            if '"date-time"' not in json.dumps(param["schema"]):
                continue
            url = path.replace("{endpoint_id}", endpoint["id"])
            response = api.admin.request(method, url, params={param["name"]: OUT_OF_RANGE[0]})
            assert_error(response, 422, "validation_error", field=f"query.{param['name']}")
            checked += 1
    assert checked >= 6


@pytest.mark.parametrize("when", OUT_OF_RANGE)
def test_library_refuses_dates_out_of_range(producer, when):
    from datetime import datetime

    with pytest.raises(ValidationError, match="out of range"):
        producer.list_messages(since=datetime.fromisoformat(when))


@pytest.mark.parametrize("when", OUT_OF_RANGE)
def test_ui_date_filters_out_of_range_are_refused(producer, when):
    endpoint = producer.create_endpoint("https://e.example/h")
    _, key = producer.create_api_key(name="admin")
    client = TestClient(build_app(producer))
    sign_in(client, key)
    for path in ("/ui/messages", f"/ui/endpoints/{endpoint.id}"):
        for name in ("since", "until"):
            response = client.get(path, params={name: when})
            assert response.status_code == 422, (path, name)
            assert name in response.text


# -- 7. custom headers --------------------------------------------------------------

FRAMING = [
    "Transfer-Encoding",
    "Content-Length",
    "Connection",
    "Upgrade",
    "Expect",
    "Host",
    "TE",
    "Trailer",
    "Accept-Encoding",
    "Keep-Alive",
    "Proxy-Authorization",
    "Proxy-Connection",
    "webhook-signature",
    "Webhook-Id",
    "svix-signature",
    "Content-Type",
    "Content-Encoding",
]


@pytest.mark.parametrize("name", FRAMING)
def test_headers_that_frame_or_sign_the_request_are_refused(name):
    with pytest.raises(ValidationError, match="cannot be overridden"):
        validate_headers({name: "x"})


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("a\tb", "control"),
        ("a\x7fb", "control"),
        ("a\x85b", "control"),
        ("a\x01", "control"),
        ("a\rb", "control"),
        ("caf\u00e9", "ASCII"),
        ("\u2603", "ASCII"),
        (" padded", "space"),
        ("padded ", "space"),
        ("enc:gAAAA", "must not start with 'enc:'"),
    ],
)
def test_header_values_that_cannot_be_sent_as_given_are_refused(value, why):
    with pytest.raises(ValidationError, match=why):
        validate_headers({"X-Team": value})


def test_an_ordinary_header_value_is_kept():
    assert validate_headers({"X-Team": "billing team; v=1"}) == {"X-Team": "billing team; v=1"}


@pytest.mark.parametrize(("name", "value"), [("Transfer-Encoding", "chunked"), ("X-A", "é")])
def test_api_refuses_bad_custom_headers_at_create_and_update(api, name, value):
    response = api.admin.post("/v1/endpoints", json={"url": URL, "headers": {name: value}})
    assert_error(response, 422, "validation_error", field=f"body.headers.{name}")
    endpoint = create_endpoint(api.admin, headers={"X-A": "ok"})
    response = api.admin.patch(f"/v1/endpoints/{endpoint['id']}", json={"headers": {name: value}})
    assert_error(response, 422, "validation_error", field=f"body.headers.{name}")
    assert api.admin.get(f"/v1/endpoints/{endpoint['id']}").json()["headers"] == {"X-A": "ok"}


# -- 11. IP literals in every spelling, hosts that cannot be encoded -----------------

LOOPBACK_SPELLINGS = [
    "127.1",
    "2130706433",
    "0x7f000001",
    "0x7F.0.0.1",
    "0177.0.0.1",
    "0177.1",
    "127.0.0.1.",
    "127.000.000.001",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
    "[::1]",
]


@pytest.mark.parametrize("host", [h.strip("[]") for h in LOOPBACK_SPELLINGS])
def test_every_spelling_of_loopback_reads_as_loopback(host):
    ip = ip_literal(host)
    assert ip is not None
    assert (getattr(ip, "ipv4_mapped", None) or ip).is_loopback


@pytest.mark.parametrize(
    ("host", "address"),
    [("10.1", "10.0.0.1"), ("0xa9fea9fe", "169.254.169.254"), ("192.168.257", "192.168.1.1")],
)
def test_shortened_forms_read_as_inet_aton_does(host, address):
    assert str(ip_literal(host)) == address


@pytest.mark.parametrize(
    "host", ["example.com", "1.2.3.4.5", "256.1.1.1", "08.0.0.1", "0x", "4294967296", "a.1"]
)
def test_host_names_are_not_ip_literals(host):
    assert ip_literal(host) is None


@pytest.mark.parametrize("host", [*LOOPBACK_SPELLINGS, "0x0a.1", "167772161", "0xa9.254.169.254"])
def test_ip_literals_in_any_spelling_are_refused_at_registration(database_url, host):
    producer = Producer(database_url, auto_migrate=True)
    try:
        with pytest.raises(ValidationError) as caught:
            producer.create_endpoint(f"http://{host}:8080/hooks")
        assert caught.value.details[0]["field"] == "url"
        assert producer.list_endpoints().data == []
    finally:
        producer.close()


def test_allowed_cidrs_open_every_spelling_of_an_allowed_address():
    policy = DestinationPolicy.from_settings(["127.0.0.0/8"], https_only=False)
    for host in ("127.1", "2130706433", "0x7f.0.0.1"):
        policy.check_url(f"http://{host}/hooks")
    with pytest.raises(ValidationError):
        policy.check_url("http://0xa.1/hooks")


def test_api_refuses_a_shortened_loopback_at_create_and_update(make_producer):
    api = Api(make_producer(allowed_cidrs=[]))
    response = api.admin.post("/v1/endpoints", json={"url": "http://127.1/hooks"})
    assert_error(response, 422, "validation_error", field="body.url")
    endpoint = create_endpoint(api.admin)
    response = api.admin.patch(f"/v1/endpoints/{endpoint['id']}", json={"url": "http://0x7f.1/"})
    assert_error(response, 422, "validation_error", field="body.url")


@pytest.mark.parametrize(
    "url",
    ["http://a_\u00e9.example/h", "http://\u0661a.example/h", "http://xn--\u00e9.example/h"],
)
def test_urls_whose_host_cannot_be_idna_encoded_are_refused(url):
    with pytest.raises(ValidationError, match="cannot be encoded"):
        validate_url(url)


def test_an_internationalised_host_is_accepted():
    assert validate_url("https://b\u00fccher.example/h") == "https://b\u00fccher.example/h"


def test_api_refuses_a_host_that_cannot_be_encoded(api):
    response = api.admin.post("/v1/endpoints", json={"url": "http://a_\u00e9.example/h"})
    assert_error(response, 422, "validation_error", field="body.url")
    assert api.admin.get("/v1/endpoints").json()["data"] == []


def test_sending_after_all_this_still_works(api):
    """The checks refuse only what they should: an ordinary flow passes."""
    create_endpoint(api.admin, metadata=nested(MAX_JSON_DEPTH), headers={"X-Team": "a b"})
    send(api.admin, data={"deep": nested(MAX_JSON_DEPTH - 2)})
