"""The web UI under test: a bare app holding its routers, signing in, and
endpoints made to fail by a real worker."""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.errors import install_error_handlers
from api.ui import create_portal_router, create_ui_router
from producer import Endpoint, Producer
from tests.helpers.receiver import Receiver
from tests.helpers.waiting import wait_for_status, wait_until

SECRET = b"ui-test-secret-0123456789abcdef"
"""The secret the UI signs sessions and portal links with in :func:`build_app`."""

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def build_app(producer: Producer, secret: bytes | None = SECRET) -> FastAPI:
    """An app with the UI and the portal-link routers and the API's error
    handlers (``api.create_app`` includes the same routers with its own secret)."""
    app = FastAPI()
    app.state.producer = producer  # the API's key authentication reads it here
    install_error_handlers(app)
    app.include_router(create_ui_router(producer, secret=secret))
    app.include_router(create_portal_router(producer, secret=secret))
    return app


def csrf_of(html: str) -> str:
    """The CSRF token carried by the forms of a page."""
    match = CSRF.search(html)
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


def sign_in(client: TestClient, key: str) -> str:
    """Sign in with an API key; returns the CSRF token of the new session."""
    form = client.get("/ui/login")
    response = client.post(
        "/ui/login", data={"csrf": csrf_of(form.text), "api_key": key, "next": ""}
    )
    assert response.status_code == 200, response.text
    return csrf_of(response.text)


def failed_by_worker(producer: Producer, receiver: Receiver, tenant: str) -> tuple[Endpoint, str]:
    """An endpoint whose one delivery was refused (HTTP 500) with no retry
    left, so the endpoint is failing; returns it and the delivery id."""
    endpoint = producer.create_endpoint(
        receiver.script(f"/{tenant}/fail", [500]),
        tenant=tenant,
        retry_schedule=[0],
        description=f"{tenant} billing",
    )
    message = producer.send("invoice.paid", {"invoice": "in_1"}, tenant=tenant)
    [delivery] = producer.list_deliveries(message_id=message.id).data
    with producer.start_worker_thread():
        wait_for_status(producer, delivery.id, "failed")
    return producer.get_endpoint(endpoint.id), delivery.id


def retrying_by_worker(producer: Producer, receiver: Receiver, tenant: str) -> tuple[Endpoint, str]:
    """An endpoint that never succeeded: its one delivery was refused (HTTP
    500) once and waits an hour for its next attempt; returns it and the
    delivery id."""
    endpoint = producer.create_endpoint(
        receiver.script(f"/{tenant}/down", [500]), tenant=tenant, retry_schedule=[0, 3600]
    )
    message = producer.send("invoice.paid", {"invoice": "in_2"}, tenant=tenant)
    [delivery] = producer.list_deliveries(message_id=message.id).data
    with producer.start_worker_thread():
        # The attempt and the delivery's return to the queue are one commit.
        wait_until(lambda: producer.list_attempts(delivery.id), what="the first attempt")
    return producer.get_endpoint(endpoint.id), delivery.id


INVOICE_PAID_SCHEMA = {
    "type": "object",
    "properties": {
        "invoice": {"type": "string", "description": "The invoice's id."},
        "amount": {"type": "integer", "minimum": 1, "description": "In cents."},
        "currency": {"type": "string", "enum": ["EUR", "USD"]},
        "customer": {
            "type": "object",
            "properties": {"email": {"type": "string", "format": "email"}},
        },
    },
    "required": ["invoice", "amount"],
}


def add_catalog(producer: Producer) -> None:
    """The event catalog of the UI tests: ``invoice.paid`` (a schema in
    versions 1 and 2, an example in 1), ``invoice.voided`` (no schema) and
    ``user.created`` (a schema with ``examples``)."""
    producer.create_event_type(
        "invoice.paid",
        description="An invoice was paid in full.",
        schemas={"1": INVOICE_PAID_SCHEMA, "2": INVOICE_PAID_SCHEMA},
        examples={"1": {"invoice": "in_42", "amount": 1999, "currency": "EUR"}},
    )
    producer.create_event_type("invoice.voided", description="An invoice was voided.")
    producer.create_event_type(
        "user.created",
        description="A user signed up.",
        schemas={"1": {"type": "object", "examples": [{"user": "u_1", "plan": "free"}]}},
    )


def open_portal(client: TestClient, admin_key: str, tenant: str, **link: Any) -> str:
    """Open a portal link of ``tenant`` (``capabilities`` etc. in ``link``)
    in ``client``; returns the CSRF token of the new session."""
    response = client.post(
        "/v1/portal-links",
        json={"tenant": tenant, **link},
        headers={"Authorization": f"Bearer {admin_key}"},
    )
    assert response.status_code == 201, response.text
    client.get(response.json()["url"])
    return csrf_of(client.get("/ui/endpoints").text)
