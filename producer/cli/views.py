"""What ``--json`` prints of each library value: the shapes the REST API
returns, so a script reads the same fields from either."""

from __future__ import annotations

import dataclasses
from typing import Any

from producer.types import Attempt, Delivery, Endpoint, Message

__all__ = ["attempt_view", "delivery_view", "endpoint_view", "message_view", "result"]


def endpoint_view(endpoint: Endpoint) -> dict[str, Any]:
    """An endpoint as ``GET /v1/endpoints/{id}``: sensitive header values
    redacted, no secret."""
    from producer.validation import redact_headers

    view = dataclasses.asdict(endpoint)
    del view["secret"]
    view["headers"] = redact_headers(endpoint.headers)
    return view


def message_view(message: Message, *, payload: bool = False) -> dict[str, Any]:
    """A message as the message list shows it; with ``payload``, as
    ``GET /v1/messages/{id}`` (the envelope receivers get)."""
    view = {
        "id": message.id,
        "event_type": message.event_type,
        "tenant": message.tenant,
        "version": message.version,
        "created_at": message.created_at,
        "deliveries": message.deliveries,
        "idempotency_key": message.idempotency_key,
        "channels": message.channels,
        "skipped": message.skipped,
    }
    if payload:
        view["payload"] = message.envelope
    return view


def delivery_view(delivery: Delivery) -> dict[str, Any]:
    """A delivery as ``GET /v1/deliveries/{id}`` (the same fields)."""
    return dataclasses.asdict(delivery)


def attempt_view(attempt: Attempt) -> dict[str, Any]:
    """An attempt as ``GET /v1/deliveries/{id}/attempts``: its request and
    response grouped."""
    response = None
    if attempt.response_status is not None:
        response = {
            "status_code": attempt.response_status,
            "headers": attempt.response_headers or {},
            "body": attempt.response_body,
            "truncated": attempt.response_truncated,
        }
    return {
        "id": attempt.id,
        "delivery_id": attempt.delivery_id,
        "number": attempt.number,
        "trigger": attempt.trigger,
        "started_at": attempt.started_at,
        "duration_ms": attempt.duration_ms,
        "request": {"url": attempt.request_url, "headers": attempt.request_headers},
        "response": response,
        "error": attempt.error,
        "succeeded": attempt.succeeded,
        "next_attempt_at": attempt.next_attempt_at,
    }


def result(status_code: int | None, error: str | None) -> str:
    """An attempt's outcome in a table cell: the status code, else the error."""
    if status_code is not None:
        return str(status_code)
    return error or ""
