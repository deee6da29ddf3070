"""The JSON shapes of the REST API: request bodies and responses.

Response models are built from the library's value objects with their
``of(...)`` constructors; every timestamp goes out as RFC 3339 UTC with
milliseconds (``2026-11-22T10:00:00.000Z``).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    field_validator,
)

from producer.payloads import format_timestamp
from producer.types import (
    Attempt,
    Delivery,
    Endpoint,
    EndpointSecret,
    EndpointStats,
    EventType,
    Message,
    TestResult,
)
from producer.validation import redact_headers

__all__ = [
    "AttemptOut",
    "AttemptRequestOut",
    "AttemptResponseOut",
    "DeliveryOut",
    "EndpointCreate",
    "EndpointCreated",
    "EndpointOut",
    "EndpointSecretOut",
    "EndpointStatsOut",
    "EndpointUpdate",
    "ErrorBody",
    "ErrorDetail",
    "ErrorResponse",
    "EventTypeCreate",
    "EventTypeOut",
    "EventTypeUpdate",
    "HealthOut",
    "LatencyOut",
    "MessageCreate",
    "MessageDetailOut",
    "MessageOut",
    "PageOut",
    "PreviousSecretOut",
    "RecoverOut",
    "RecoverRequest",
    "ResendRequest",
    "RetryRequest",
    "RotateSecretOut",
    "RotateSecretRequest",
    "TestRequest",
    "TestResultOut",
]

ItemT = TypeVar("ItemT")

_TS_EXAMPLE = "2026-11-22T10:00:00.000Z"


def _ts(value: datetime | None) -> str | None:
    return format_timestamp(value) if value is not None else None


class _Request(BaseModel):
    """Request bodies reject unknown fields, so a typo is a 422 naming it."""

    model_config = ConfigDict(extra="forbid")


# -- errors and pages ----------------------------------------------------------


class ErrorDetail(BaseModel):
    """One problem with the request, usually about one field."""

    field: str | None = Field(default=None, examples=["body.url"])
    message: str = Field(examples=["scheme must be http or https"])
    schema_path: list[str | int] | None = Field(
        default=None, description="For data rejected by a JSON Schema: the failing keyword's path."
    )


class ErrorBody(BaseModel):
    """A stable machine-readable ``code``, a sentence, and per-field details."""

    code: str = Field(examples=["not_found"])
    message: str = Field(examples=["endpoint ep_01JD0000000000000000000000 not found"])
    details: list[ErrorDetail] = Field(default_factory=list)


class ErrorResponse(BaseModel):
    """The shape of every error the API returns."""

    error: ErrorBody


class PageOut(BaseModel, Generic[ItemT]):
    """One page of a newest-first list; pass ``next_cursor`` as ``?cursor=``."""

    data: list[ItemT]
    next_cursor: str | None = Field(examples=[None])


# -- endpoints -----------------------------------------------------------------

_ENDPOINT_EXAMPLE: dict[str, Any] = {
    "url": "https://example.com/hooks",
    "description": "Billing events",
    "tenant": "acme",
    "event_types": ["invoice.paid", "user.*"],
    "version": "2",
    "headers": {"X-Team": "billing"},
    "signature_scheme": "v1",
    "rate_limit_per_second": None,
    "ordering": "unordered",
    "retry_schedule": None,
    "metadata": {},
}


class EndpointCreate(_Request):
    """A receiver URL to register; only ``url`` is required."""

    model_config = ConfigDict(json_schema_extra={"examples": [_ENDPOINT_EXAMPLE]})

    url: str
    description: str = ""
    tenant: str | None = Field(
        default=None, description="Ignored for tenant keys: forced to the key's tenant."
    )
    event_types: list[str] | None = Field(
        default=None, description="Patterns (`invoice.paid`, `user.*`, `*`); empty = every type."
    )
    version: str | None = None
    headers: dict[str, str] | None = None
    secret: str | None = Field(default=None, description="Generated when absent.")
    signature_scheme: Literal["v1", "v1a", "t-v1-hex"] = "v1"
    rate_limit_per_second: StrictFloat | None = None
    ordering: Literal["unordered", "fifo"] = "unordered"
    retry_schedule: list[StrictFloat] | None = Field(
        default=None, description="Delays in seconds between attempts; null = the default."
    )
    timeout_seconds: StrictFloat | None = None
    max_in_flight: StrictInt | None = None
    metadata: dict[str, Any] | None = None


_NOT_NULLABLE = ("url", "signature_scheme", "ordering")


class EndpointUpdate(_Request):
    """Fields to change; absent fields keep their value, ``null`` resets a nullable one."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"event_types": ["invoice.*"], "rate_limit_per_second": 5}]}
    )

    url: str | None = None
    description: str | None = None
    event_types: list[str] | None = None
    version: str | None = None
    headers: dict[str, str] | None = None
    signature_scheme: Literal["v1", "v1a", "t-v1-hex"] | None = None
    rate_limit_per_second: StrictFloat | None = None
    ordering: Literal["unordered", "fifo"] | None = None
    retry_schedule: list[StrictFloat] | None = None
    timeout_seconds: StrictFloat | None = None
    max_in_flight: StrictInt | None = None
    metadata: dict[str, Any] | None = None

    # Field validators run only on values the client sent, so an explicit
    # null is caught while an absent field is left alone.
    @field_validator(*_NOT_NULLABLE)
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("cannot be null")
        return value

    def changes(self) -> dict[str, Any]:
        """Only the fields the client sent, explicit nulls included."""
        return self.model_dump(exclude_unset=True)


class EndpointOut(BaseModel):
    """A registered endpoint with its delivery settings and health."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "ep_01JD0000000000000000000000",
                    **_ENDPOINT_EXAMPLE,
                    "timeout_seconds": None,
                    "max_in_flight": None,
                    "status": "enabled",
                    "disabled_reason": None,
                    "disabled_at": None,
                    "failing_since": None,
                    "consecutive_failures": 0,
                    "created_at": _TS_EXAMPLE,
                    "updated_at": _TS_EXAMPLE,
                }
            ]
        }
    )

    id: str
    url: str
    description: str
    tenant: str
    event_types: list[str]
    version: str | None
    headers: dict[str, str] = Field(description="Sensitive values read back as `[redacted]`.")
    signature_scheme: str
    rate_limit_per_second: float | None
    ordering: str
    retry_schedule: list[float] | None
    timeout_seconds: float | None
    max_in_flight: int | None
    metadata: dict[str, Any]
    status: Literal["enabled", "disabled"]
    disabled_reason: str | None = Field(description="null, manual, failing or gone.")
    disabled_at: str | None
    failing_since: str | None
    consecutive_failures: int
    created_at: str
    updated_at: str

    @classmethod
    def fields_of(cls, endpoint: Endpoint) -> dict[str, Any]:
        """The response fields of a library endpoint (without its secret)."""
        return {
            "id": endpoint.id,
            "url": endpoint.url,
            "description": endpoint.description,
            "tenant": endpoint.tenant,
            "event_types": endpoint.event_types,
            "version": endpoint.version,
            "headers": redact_headers(endpoint.headers),
            "signature_scheme": endpoint.signature_scheme,
            "rate_limit_per_second": endpoint.rate_limit_per_second,
            "ordering": endpoint.ordering,
            "retry_schedule": endpoint.retry_schedule,
            "timeout_seconds": endpoint.timeout_seconds,
            "max_in_flight": endpoint.max_in_flight,
            "metadata": endpoint.metadata,
            "status": endpoint.status,
            "disabled_reason": endpoint.disabled_reason,
            "disabled_at": _ts(endpoint.disabled_at),
            "failing_since": _ts(endpoint.failing_since),
            "consecutive_failures": endpoint.consecutive_failures,
            "created_at": format_timestamp(endpoint.created_at),
            "updated_at": format_timestamp(endpoint.updated_at),
        }

    @classmethod
    def of(cls, endpoint: Endpoint) -> EndpointOut:
        """The response for a library endpoint."""
        return cls(**cls.fields_of(endpoint))


class EndpointCreated(EndpointOut):
    """The create response: the only endpoint response that carries the secret."""

    secret: str = Field(examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"])

    @classmethod
    def of(cls, endpoint: Endpoint) -> EndpointCreated:
        """The create response for a freshly created library endpoint."""
        if endpoint.secret is None:
            raise ValueError("only a freshly created endpoint carries its secret")
        return cls(**cls.fields_of(endpoint), secret=endpoint.secret)


class PreviousSecretOut(BaseModel):
    """A rotated-out secret that still signs until ``expires_at``."""

    expires_at: str = Field(examples=[_TS_EXAMPLE])


class EndpointSecretOut(BaseModel):
    """The current signing secret, the ``whpk_`` public key for ``v1a``, and
    when the previous secrets stop signing."""

    secret: str = Field(examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"])
    public_key: str | None = Field(examples=[None])
    previous: list[PreviousSecretOut]

    @classmethod
    def of(cls, secret: EndpointSecret) -> EndpointSecretOut:
        """The response for a library secret."""
        return cls(
            secret=secret.secret,
            public_key=secret.public_key,
            previous=[
                PreviousSecretOut(expires_at=format_timestamp(p.expires_at))
                for p in secret.previous
            ],
        )


class RotateSecretRequest(_Request):
    """Optionally the new secret, and how long the old one keeps signing."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"grace_period_seconds": 86400}]})

    secret: str | None = None
    grace_period_seconds: StrictFloat = 86400


class RotateSecretOut(BaseModel):
    """The new signing secret."""

    secret: str = Field(examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"])


class TestRequest(_Request):
    """What to send in a test event."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"event_type": "webhook.test", "data": {"hello": "world"}}]}
    )

    event_type: str = "webhook.test"
    data: Any = None


class TestResultOut(BaseModel):
    """What the receiver answered to a test event."""

    delivery_id: str = Field(examples=["dlv_01JD0000000000000000000000"])
    message_id: str = Field(examples=["msg_01JD0000000000000000000000"])
    succeeded: bool
    status_code: int | None = Field(examples=[200])
    duration_ms: float = Field(examples=[41.7])
    response_body: str | None = Field(examples=["ok"])
    error: str | None = Field(examples=[None])

    @classmethod
    def of(cls, result: TestResult) -> TestResultOut:
        """The response for a library test result."""
        return cls(
            delivery_id=result.delivery_id,
            message_id=result.message_id,
            succeeded=result.succeeded,
            status_code=result.status_code,
            duration_ms=result.duration_ms,
            response_body=result.response_body,
            error=result.error,
        )


class RecoverRequest(_Request):
    """The window of failed deliveries to requeue: ``[since, until)``."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"since": _TS_EXAMPLE}]})

    since: AwareDatetime
    until: AwareDatetime | None = None


class RecoverOut(BaseModel):
    """How many failed deliveries went back to ``pending``."""

    requeued: int = Field(examples=[12])


class LatencyOut(BaseModel):
    """Attempt latency percentiles in milliseconds (null without attempts)."""

    p50: float | None = Field(examples=[38.2])
    p95: float | None = Field(examples=[120.5])


class EndpointStatsOut(BaseModel):
    """Delivery counts, success rate and attempt latency over a window."""

    succeeded: int = Field(examples=[950])
    failed: int = Field(examples=[50])
    pending: int = Field(examples=[3])
    success_rate: float | None = Field(examples=[0.95])
    latency_ms: LatencyOut

    @classmethod
    def of(cls, stats: EndpointStats) -> EndpointStatsOut:
        """The response for library stats."""
        return cls(
            succeeded=stats.succeeded,
            failed=stats.failed,
            pending=stats.pending,
            success_rate=stats.success_rate,
            latency_ms=LatencyOut(p50=stats.latency_p50_ms, p95=stats.latency_p95_ms),
        )


# -- event types ---------------------------------------------------------------

_EVENT_TYPE_EXAMPLE: dict[str, Any] = {
    "name": "invoice.paid",
    "description": "An invoice was paid.",
    "schemas": {"1": {"type": "object", "required": ["invoice"]}},
    "examples": {"1": {"invoice": "in_1"}},
}


class EventTypeCreate(_Request):
    """A named kind of event, with optional JSON Schemas and examples per version."""

    model_config = ConfigDict(json_schema_extra={"examples": [_EVENT_TYPE_EXAMPLE]})

    name: str
    description: str = ""
    schemas: dict[str, dict[str, Any]] | None = None
    examples: dict[str, Any] | None = None


class EventTypeUpdate(_Request):
    """Fields to change; absent fields keep their value."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"description": "An invoice was paid in full."}]}
    )

    description: str | None = None
    schemas: dict[str, dict[str, Any]] | None = None
    examples: dict[str, Any] | None = None

    def changes(self) -> dict[str, Any]:
        """Only the fields the client sent."""
        return self.model_dump(exclude_unset=True)


class EventTypeOut(BaseModel):
    """An event type; archived types can no longer be sent."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **_EVENT_TYPE_EXAMPLE,
                    "archived": False,
                    "created_at": _TS_EXAMPLE,
                    "updated_at": _TS_EXAMPLE,
                }
            ]
        }
    )

    name: str
    description: str
    schemas: dict[str, Any]
    examples: dict[str, Any]
    archived: bool
    created_at: str
    updated_at: str

    @classmethod
    def of(cls, event_type: EventType) -> EventTypeOut:
        """The response for a library event type."""
        return cls(
            name=event_type.name,
            description=event_type.description,
            schemas=event_type.schemas,
            examples=event_type.examples,
            archived=event_type.archived,
            created_at=format_timestamp(event_type.created_at),
            updated_at=format_timestamp(event_type.updated_at),
        )


# -- messages ------------------------------------------------------------------


class MessageCreate(_Request):
    """An event to send to every matching endpoint of the tenant."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "event_type": "invoice.paid",
                    "data": {"invoice": "in_1", "amount": 4200},
                    "tenant": "acme",
                    "version": "2",
                    "endpoint_ids": None,
                    "idempotency_key": None,
                }
            ]
        }
    )

    event_type: str
    data: Any
    tenant: str | None = Field(
        default=None, description="Ignored for tenant keys: forced to the key's tenant."
    )
    version: str | None = None
    endpoint_ids: list[str] | None = None
    idempotency_key: str | None = Field(
        default=None, description="Same as the `Idempotency-Key` header, which wins."
    )


class MessageOut(BaseModel):
    """A sent event and how many deliveries it fanned out to."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "msg_01JD0000000000000000000000",
                    "event_type": "invoice.paid",
                    "tenant": "acme",
                    "version": "2",
                    "created_at": _TS_EXAMPLE,
                    "deliveries": 2,
                    "idempotency_key": None,
                }
            ]
        }
    )

    id: str
    event_type: str
    tenant: str
    version: str
    created_at: str
    deliveries: int
    idempotency_key: str | None

    @classmethod
    def fields_of(cls, message: Message) -> dict[str, Any]:
        """The response fields of a library message (without its payload)."""
        return {
            "id": message.id,
            "event_type": message.event_type,
            "tenant": message.tenant,
            "version": message.version,
            "created_at": format_timestamp(message.created_at),
            "deliveries": message.deliveries,
            "idempotency_key": message.idempotency_key,
        }

    @classmethod
    def of(cls, message: Message) -> MessageOut:
        """The response for a library message."""
        return cls(**cls.fields_of(message))


class MessageDetailOut(MessageOut):
    """A message with ``payload``: the exact envelope receivers get."""

    payload: dict[str, Any] = Field(
        examples=[
            {
                "id": "msg_01JD0000000000000000000000",
                "type": "invoice.paid",
                "version": "2",
                "timestamp": _TS_EXAMPLE,
                "data": {"invoice": "in_1"},
            }
        ]
    )

    @classmethod
    def of(cls, message: Message) -> MessageDetailOut:
        """The response for a library message, envelope included."""
        return cls(**cls.fields_of(message), payload=json.loads(message.payload))


class ResendRequest(_Request):
    """The endpoint to send the message to again."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"endpoint_id": "ep_01JD0000000000000000000000"}]}
    )

    endpoint_id: str


# -- deliveries and attempts ---------------------------------------------------


class DeliveryOut(BaseModel):
    """One message to one endpoint and where it stands."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "dlv_01JD0000000000000000000000",
                    "message_id": "msg_01JD0000000000000000000000",
                    "endpoint_id": "ep_01JD0000000000000000000000",
                    "event_type": "invoice.paid",
                    "tenant": "acme",
                    "status": "pending",
                    "attempt_count": 1,
                    "next_attempt_at": _TS_EXAMPLE,
                    "last_attempt_at": _TS_EXAMPLE,
                    "last_status_code": 503,
                    "last_error": None,
                    "created_at": _TS_EXAMPLE,
                }
            ]
        }
    )

    id: str
    message_id: str
    endpoint_id: str
    event_type: str
    tenant: str
    status: Literal["pending", "sending", "succeeded", "failed", "cancelled"]
    attempt_count: int
    next_attempt_at: str | None
    last_attempt_at: str | None
    last_status_code: int | None
    last_error: str | None
    created_at: str

    @classmethod
    def of(cls, delivery: Delivery) -> DeliveryOut:
        """The response for a library delivery."""
        return cls(
            id=delivery.id,
            message_id=delivery.message_id,
            endpoint_id=delivery.endpoint_id,
            event_type=delivery.event_type,
            tenant=delivery.tenant,
            status=delivery.status,  # type: ignore[arg-type]
            attempt_count=delivery.attempt_count,
            next_attempt_at=_ts(delivery.next_attempt_at),
            last_attempt_at=_ts(delivery.last_attempt_at),
            last_status_code=delivery.last_status_code,
            last_error=delivery.last_error,
            created_at=format_timestamp(delivery.created_at),
        )


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

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "att_01JD0000000000000000000000",
                    "delivery_id": "dlv_01JD0000000000000000000000",
                    "number": 1,
                    "trigger": "scheduled",
                    "started_at": _TS_EXAMPLE,
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
                    "next_attempt_at": _TS_EXAMPLE,
                }
            ]
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
        description="null, timeout, connection_error: …, blocked_destination: …"
    )
    succeeded: bool
    next_attempt_at: str | None = Field(description="When the retry it scheduled is due, if any.")

    @classmethod
    def of(cls, attempt: Attempt) -> AttemptOut:
        """The response for a library attempt."""
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
            next_attempt_at=_ts(attempt.next_attempt_at),
        )


class RetryRequest(_Request):
    """Retrying a succeeded delivery needs ``force``."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"force": True}]})

    force: bool = False


# -- operations ----------------------------------------------------------------


class HealthOut(BaseModel):
    """Whether the service and its database answer."""

    status: Literal["ok", "unavailable"]
    database: Literal["ok", "unavailable"]
