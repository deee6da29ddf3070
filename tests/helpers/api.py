"""Helpers for the REST API tests: clients per principal and error checks."""

from __future__ import annotations

import re
from typing import Any

import httpx
from fastapi.testclient import TestClient

from api import create_app
from producer import Producer

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
"""How the API writes a timestamp: UTC, milliseconds, a ``Z``."""


class Api:
    """One app over a producer, with a client per kind of caller."""

    def __init__(self, producer: Producer, **app_options: Any) -> None:
        self.producer = producer
        self.app = create_app(producer, **app_options)
        _, self.admin_key = producer.create_api_key(name="admin")
        self.admin = self.client(self.admin_key)
        self.anonymous = self.client(None)

    def client(self, key: str | None) -> TestClient:
        """A client sending ``key`` as its bearer token (none for None)."""
        headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
        return TestClient(self.app, headers=headers)

    def tenant(self, tenant: str) -> TestClient:
        """A client holding a fresh key of ``tenant``."""
        _, key = self.producer.create_api_key(tenant=tenant, name=tenant)
        return self.client(key)


def assert_error(
    response: httpx.Response, status: int, code: str, *, field: str | None = None
) -> dict[str, Any]:
    """Check the one error shape, its status and code (and a named field)."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "details"}, error
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"], error
    assert isinstance(error["details"], list), error
    if field is not None:
        assert field in [d.get("field") for d in error["details"]], error
    return error


def create_endpoint(
    client: TestClient, url: str = "https://example.com/hooks", **fields: Any
) -> dict:
    """Create an endpoint through the API; returns its JSON."""
    response = client.post("/v1/endpoints", json={"url": url, **fields})
    assert response.status_code == 201, response.text
    return response.json()


def send(
    client: TestClient, event_type: str = "invoice.paid", data: Any = None, **fields: Any
) -> dict:
    """Send a message through the API; returns its JSON."""
    body = {"event_type": event_type, "data": data if data is not None else {"n": 1}, **fields}
    response = client.post("/v1/messages", json=body)
    assert response.status_code == 202, response.text
    return response.json()


def page_through(client: TestClient, path: str, limit: int, **params: Any) -> list[list[dict]]:
    """Every page of a list, following ``next_cursor``."""
    pages: list[list[dict]] = []
    cursor: str | None = None
    while True:
        query = {"limit": limit, **params, **({"cursor": cursor} if cursor else {})}
        response = client.get(path, params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body["data"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
