"""REST API: building the app, the error shape everywhere, the OpenAPI document."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api import Principal, create_app
from producer import Producer, __version__
from tests.helpers.api import assert_error
from tests.helpers.browser import needs_chromium
from tests.helpers.receiver import LocalServer

# -- create_app --------------------------------------------------------------------


def test_the_app_exposes_its_producer(producer):
    assert create_app(producer).state.producer is producer


def test_create_app_builds_a_producer_from_settings(tmp_path):
    app = create_app(database_url=f"sqlite:///{tmp_path / 'hooks.db'}", auto_migrate=True)
    with TestClient(app) as client:
        assert isinstance(app.state.producer, Producer)
        assert client.get("/v1/health").json()["status"] == "ok"


# -- errors ------------------------------------------------------------------------


def test_an_unknown_route_is_404_in_the_error_shape(api):
    assert_error(api.admin.get("/v1/nothing-here"), 404, "not_found")


def test_a_wrong_method_is_405_in_the_error_shape(api):
    assert_error(api.admin.put("/v1/endpoints"), 405, "method_not_allowed")


def test_an_unexpected_failure_is_500_internal_error(producer):
    def broken_auth() -> Principal:
        raise RuntimeError("the host's auth backend fell over")

    client = TestClient(create_app(producer, auth=broken_auth), raise_server_exceptions=False)
    response = client.get("/v1/endpoints")
    error = assert_error(response, 500, "internal_error")
    assert "fell over" not in error["message"]


def test_a_body_that_is_not_json_is_400(api):
    response = api.admin.post(
        "/v1/messages", content=b"not json", headers={"content-type": "application/json"}
    )
    assert_error(response, 400, "bad_request")


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_a_json_body_sent_as_another_type_is_400_saying_so(api, content_type):
    headers = {"content-type": content_type} if content_type else {}
    body = b'{"url": "https://r.example/h"}'
    response = api.admin.post("/v1/endpoints", content=body, headers=headers)
    error = assert_error(response, 400, "bad_request")
    assert "Content-Type: application/json" in error["message"]
    assert (content_type or "no Content-Type") in error["message"]
    assert api.admin.get("/v1/endpoints").json()["data"] == []


@pytest.mark.parametrize("path", ["/", "/v1"])
def test_the_root_and_v1_link_to_the_api_docs_and_ui(api, path):
    response = api.anonymous.get(path)
    assert response.status_code == 200
    links = response.json()
    assert links["docs"].endswith("/docs") and links["ui"].endswith("/ui")
    assert links["api"].endswith("/v1") and api.anonymous.get(links["docs"]).status_code == 200


def test_validation_errors_name_every_bad_field(api):
    response = api.admin.post(
        "/v1/endpoints", json={"url": 5, "ordering": "lifo", "max_in_flight": "many"}
    )
    error = assert_error(response, 422, "validation_error")
    assert {d["field"] for d in error["details"]} == {
        "body.url",
        "body.ordering",
        "body.max_in_flight",
    }


# -- OpenAPI -------------------------------------------------------------------------

ROUTES = {
    ("post", "/v1/endpoints"),
    ("get", "/v1/endpoints"),
    ("get", "/v1/endpoints/{endpoint_id}"),
    ("patch", "/v1/endpoints/{endpoint_id}"),
    ("delete", "/v1/endpoints/{endpoint_id}"),
    ("get", "/v1/endpoints/{endpoint_id}/secret"),
    ("post", "/v1/endpoints/{endpoint_id}/secret/rotate"),
    ("post", "/v1/endpoints/{endpoint_id}/disable"),
    ("post", "/v1/endpoints/{endpoint_id}/enable"),
    ("post", "/v1/endpoints/{endpoint_id}/test"),
    ("post", "/v1/endpoints/{endpoint_id}/recover"),
    ("post", "/v1/endpoints/{endpoint_id}/replay"),
    ("post", "/v1/deliveries/retry"),
    ("get", "/v1/jobs"),
    ("get", "/v1/jobs/{job_id}"),
    ("post", "/v1/filters/test"),
    ("get", "/v1/endpoints/{endpoint_id}/stats"),
    ("post", "/v1/event-types"),
    ("get", "/v1/event-types"),
    ("get", "/v1/event-types/{name}"),
    ("patch", "/v1/event-types/{name}"),
    ("delete", "/v1/event-types/{name}"),
    ("post", "/v1/messages"),
    ("get", "/v1/messages"),
    ("get", "/v1/messages/{message_id}"),
    ("post", "/v1/messages/{message_id}/resend"),
    ("get", "/v1/deliveries"),
    ("get", "/v1/deliveries/{delivery_id}"),
    ("get", "/v1/deliveries/{delivery_id}/attempts"),
    ("post", "/v1/deliveries/{delivery_id}/retry"),
    ("get", "/v1/health"),
    ("get", "/v1/stats"),
    ("post", "/v1/portal-links"),
    ("get", "/metrics"),
}
UNAUTHENTICATED = {("get", "/v1/health"), ("get", "/metrics")}


@pytest.fixture
def openapi(api) -> dict:
    response = api.anonymous.get("/openapi.json")
    assert response.status_code == 200
    return response.json()


def test_openapi_names_the_project_and_its_version(openapi):
    assert openapi["info"]["title"] == "webhook-producer"
    assert openapi["info"]["version"] == __version__


def test_openapi_lists_every_route(openapi):
    listed = {(method, path) for path, ops in openapi["paths"].items() for method in ops}
    assert listed == ROUTES


def test_openapi_documents_the_error_shape_of_every_authenticated_route(openapi):
    for method, path in ROUTES - UNAUTHENTICATED:
        responses = openapi["paths"][path][method]["responses"]
        assert responses["401"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorResponse"
        }, (method, path)
        assert "HTTPValidationError" not in str(responses), (method, path)


def test_openapi_documents_404_on_every_route_with_an_id(openapi):
    for method, path in ROUTES:
        if "{" in path:
            assert "404" in openapi["paths"][path][method]["responses"], (method, path)


def test_openapi_schemas_carry_examples(openapi):
    schemas = openapi["components"]["schemas"]
    for name in ("EndpointCreate", "EndpointOut", "MessageCreate", "DeliveryOut", "AttemptOut"):
        assert schemas[name].get("examples"), name


# -- /docs and /ui work offline ---------------------------------------------------------


_LINK = re.compile(r"""(?:src|href)="([^"]*)"|\burl: '([^']*)'""")


def _linked(html: str) -> list[str]:
    """Every address a page loads or links to: ``src``, ``href`` and Swagger UI's ``url``."""
    return [a or b for a, b in _LINK.findall(html)]


def test_the_docs_page_loads_swagger_ui_from_the_app_itself(api):
    response = api.anonymous.get("/docs")
    assert response.status_code == 200 and "SwaggerUIBundle" in response.text
    linked = _linked(response.text)
    assert sorted(linked) == [
        "/docs/assets/favicon-32x32.png",
        "/docs/assets/swagger-ui-bundle.js",
        "/docs/assets/swagger-ui.css",
        "/openapi.json",
    ]
    assert "https://" not in response.text and "http://" not in response.text


@pytest.mark.parametrize(
    ("name", "media_type", "least"),
    [
        ("swagger-ui-bundle.js", "text/javascript", 500_000),
        ("swagger-ui.css", "text/css", 50_000),
        ("favicon-32x32.png", "image/png", 100),
    ],
)
def test_the_swagger_ui_files_are_served_by_the_app(api, name, media_type, least):
    response = api.anonymous.get(f"/docs/assets/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(media_type)
    assert len(response.content) >= least


def test_the_docs_page_tells_swagger_ui_not_to_call_its_public_validator(api):
    assert '"validatorUrl": null' in api.anonymous.get("/docs").text


@pytest.mark.parametrize(
    "path", ["/docs/assets/index.html", "/docs/assets/swagger-initializer.js", "/redoc"]
)
def test_nothing_else_of_the_docs_is_served(api, path):
    assert_error(api.anonymous.get(path), 404, "not_found")


def test_the_docs_of_a_mounted_app_point_below_its_mount_path(producer):
    host = FastAPI()
    host.mount("/hooks", create_app(producer))
    page = TestClient(host).get("/hooks/docs")
    assert page.status_code == 200
    assert all(link.startswith("/hooks/") for link in _linked(page.text)), _linked(page.text)
    assert TestClient(host).get("/hooks/docs/assets/swagger-ui.css").status_code == 200


def test_the_ui_loads_no_outside_asset(api):
    page = api.anonymous.get("/ui/login")
    assert page.status_code == 200
    linked = _linked(page.text)
    assert any(link.startswith("/ui/static/") for link in linked)
    # Paths of the app, or a place on the page itself (the skip link's "#main").
    assert all(link.startswith(("/", "#")) and not link.startswith("//") for link in linked), linked


@pytest.mark.slow
@needs_chromium
def test_the_docs_render_in_a_browser_that_reaches_nothing_but_the_app(browser, tmp_path):
    # SQLite only: the page does not depend on the database.
    producer = Producer(f"sqlite:///{tmp_path / 'webhooks.db'}", auto_migrate=True)
    outside: list[str] = []

    def only_the_app(route: Any) -> None:
        if route.request.url.startswith(base_url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    with LocalServer(create_app(producer)) as base_url:
        page = browser.new_page()
        page.route("**/*", only_the_app)
        page.goto(f"{base_url}/docs")
        page.locator(".opblock").first.wait_for()
        assert page.locator(".opblock").count() >= 20
        assert page.locator(".errors-wrapper").count() == 0
        page.close()
    producer.close()
    assert outside == []
