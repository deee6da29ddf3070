"""Deliveries (one message to one endpoint) and their attempts."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field, StrictBool

from api.schemas.common import TS_EXAMPLE, LibraryView, RequestBody, example
from producer.payloads import format_timestamp
from producer.types import Attempt, DeliveryStatus

__all__ = [
    "AttemptOut",
    "AttemptRequestOut",
    "AttemptResponseOut",
    "BulkRetryOut",
    "BulkRetryRequest",
    "DeliveryOut",
    "RetryRequest",
]


class DeliveryOut(LibraryView):
    """One message to one endpoint and where it stands."""

    model_config = example(
        {
            "id": "dlv_01JD0000000000000000000000",
            "message_id": "msg_01JD0000000000000000000000",
            "endpoint_id": "ep_01JD0000000000000000000000",
            "event_type": "invoice.paid",
            "tenant": "acme",
            "status": "pending",
            "attempt_count": 1,
            "next_attempt_at": TS_EXAMPLE,
            "last_attempt_at": TS_EXAMPLE,
            "last_status_code": 503,
            "last_error": None,
            "created_at": TS_EXAMPLE,
        }
    )

    id: str
    message_id: str
    endpoint_id: str
    event_type: str
    tenant: str
    status: DeliveryStatus
    attempt_count: int
    next_attempt_at: str | None
    last_attempt_at: str | None
    last_status_code: int | None
    last_error: str | None
    created_at: str


class AttemptRequestOut(BaseModel):
    """The request an attempt made (signature headers included: not secrets)."""

    url: str
    headers: dict[str, str]


class AttemptResponseOut(BaseModel):
    """What the receiver answered; ``body`` keeps at most 16 KiB."""

    status_code: int
    headers: dict[str, str]
    body: str | None
    truncated: bool


class AttemptOut(BaseModel):
    """One HTTP request of a delivery, with the response or the error."""

    model_config = example(
        {
            "id": "att_01JD0000000000000000000000",
            "delivery_id": "dlv_01JD0000000000000000000000",
            "number": 1,
            "trigger": "scheduled",
            "started_at": TS_EXAMPLE,
            "duration_ms": 41.7,
            "request": {
                "url": "https://example.com/hooks",
                "headers": {"webhook-id": "msg_01JD0000000000000000000000"},
            },
            "response": {
                "status_code": 503,
                "headers": {"content-type": "text/plain"},
                "body": "busy",
                "truncated": False,
            },
            "error": None,
            "succeeded": False,
            "next_attempt_at": TS_EXAMPLE,
        }
    )

    id: str
    delivery_id: str
    number: int
    trigger: Literal["scheduled", "manual", "test"]
    started_at: str
    duration_ms: float
    request: AttemptRequestOut
    response: AttemptResponseOut | None
    error: str | None = Field(
        description=(
            "null, timeout, connection_error: …, blocked_destination: …, proxy_error: …,"
            " auth_error: …"
        )
    )
    succeeded: bool
    next_attempt_at: str | None = Field(description="When the retry it scheduled is due, if any.")

    @classmethod
    def of(cls, attempt: Attempt) -> AttemptOut:
        """The response for a library attempt: its request and response grouped."""
        response = None
        if attempt.response_status is not None:
            response = AttemptResponseOut(
                status_code=attempt.response_status,
                headers=attempt.response_headers or {},
                body=attempt.response_body,
                truncated=attempt.response_truncated,
            )
        return cls(
            id=attempt.id,
            delivery_id=attempt.delivery_id,
            number=attempt.number,
            trigger=attempt.trigger,  # type: ignore[arg-type]
            started_at=format_timestamp(attempt.started_at),
            duration_ms=attempt.duration_ms,
            request=AttemptRequestOut(url=attempt.request_url, headers=attempt.request_headers),
            response=response,
            error=attempt.error,
            succeeded=attempt.succeeded,
            next_attempt_at=(
                format_timestamp(attempt.next_attempt_at)
                if attempt.next_attempt_at is not None
                else None
            ),
        )


class RetryRequest(RequestBody):
    """Retrying a succeeded delivery needs ``force``."""

    model_config = example({"force": True})

    force: bool = False


class BulkRetryRequest(RequestBody):
    """The delivery log's filters, selecting the deliveries to requeue; they combine."""

    model_config = example(
        {"status": "failed", "endpoint_id": "ep_01JD0000000000000000000000", "since": TS_EXAMPLE}
    )

    status: Literal["failed", "succeeded"] = Field(
        default="failed", description="`succeeded` needs `force`."
    )
    event_type: str | None = Field(default=None, max_length=128)
    endpoint_id: str | None = Field(default=None, max_length=64)
    tenant: str | None = Field(
        default=None, max_length=128, description="Ignored for tenant keys: their own."
    )
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None
    force: StrictBool = False
    dry_run: StrictBool = Field(
        default=False, description="Only count what would be requeued; nothing is written."
    )
    background: StrictBool = Field(
        default=False,
        description="Answer at once with a job the workers run; follow it at `GET /v1/jobs/{id}`.",
    )


class BulkRetryOut(BaseModel):
    """How many deliveries went back to ``pending``."""

    requeued: int = Field(examples=[37])
