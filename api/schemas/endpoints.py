"""Endpoints: registering and changing them, their secrets, test sends,
recovery of failed deliveries and statistics."""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    field_validator,
)

from api.schemas.common import TS_EXAMPLE, Changes, LibraryView, RequestBody, example
from producer.types import Endpoint, EndpointSecret, EndpointStats, EndpointStatus
from producer.validation import redact_headers

__all__ = [
    "EndpointCreate",
    "EndpointCreated",
    "EndpointOut",
    "EndpointSecretOut",
    "EndpointStatsOut",
    "EndpointUpdate",
    "LatencyOut",
    "PreviousSecretOut",
    "RecoverOut",
    "RecoverRequest",
    "ReplayOut",
    "ReplayRequest",
    "RotateSecretOut",
    "RotateSecretRequest",
    "TestRequest",
    "TestResultOut",
]

SignatureScheme = Literal["v1", "v1a", "t-v1-hex"]
Ordering = Literal["unordered", "fifo"]

_SECRET_EXAMPLE = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
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
    "forward_traceparent": False,
    "channels": ["store-7"],
    "filter": {"amount": {"$gte": 100}, "currency": {"$in": ["EUR", "USD"]}},
}
_CHANNELS_DESCRIPTION = (
    "Channel names (1-64 letters, digits, `_ . : -`; at most 100): the endpoint gets "
    "only messages sent on one of them. Empty = every message."
)
_FILTER_DESCRIPTION = (
    "A payload filter the message data must pass: dotted paths with values or "
    "`$eq $ne $gt $gte $lt $lte $in $nin $exists`, combined with `$and $or $not`. "
    "null = no filter."
)


_PROXY_DESCRIPTION = (
    "An `http://` or `https://` egress proxy (optionally `user:password@`) for this "
    "endpoint's requests, overriding WEBHOOKS_EGRESS_PROXY; read back with the "
    "password as `***`. null = the service's proxy, if any."
)
_AUTH_DESCRIPTION = (
    "How requests authenticate to the receiver: `{type: basic, username, password}`, "
    "`{type: bearer, token}` or `{type: oauth2_client_credentials, token_url, client_id, "
    "client_secret, scope?, client_auth?: basic|body}`. Secrets are sealed and never "
    "read back. null = none."
)
_TLS_DESCRIPTION = (
    "Mutual TLS: `{client_cert_pem, client_key_pem, ca_pem?}` (PEM; the CA, when given, "
    "is the only one trusted for the receiver). The key is sealed and never read back; "
    "a new object replaces the old one for the next attempt. null = none."
)


class EndpointCreate(RequestBody):
    """A receiver URL to register; only ``url`` is required."""

    model_config = example(_ENDPOINT_EXAMPLE)

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
    signature_scheme: SignatureScheme = "v1"
    rate_limit_per_second: StrictFloat | None = None
    ordering: Ordering = "unordered"
    retry_schedule: list[StrictFloat] | None = Field(
        default=None, description="Delays in seconds between attempts; null = the default."
    )
    timeout_seconds: StrictFloat | None = None
    max_in_flight: StrictInt | None = None
    metadata: dict[str, Any] | None = None
    forward_traceparent: StrictBool = Field(
        default=False,
        description="Send each attempt's W3C `traceparent` (and `tracestate`) to the "
        "receiver, when the service traces with OpenTelemetry.",
    )
    channels: list[str] | None = Field(default=None, description=_CHANNELS_DESCRIPTION)
    filter: dict[str, Any] | None = Field(default=None, description=_FILTER_DESCRIPTION)
    proxy_url: str | None = Field(default=None, description=_PROXY_DESCRIPTION)
    auth: dict[str, Any] | None = Field(default=None, description=_AUTH_DESCRIPTION)
    tls: dict[str, Any] | None = Field(default=None, description=_TLS_DESCRIPTION)

    def settings(self) -> dict[str, Any]:
        """The fields besides ``url`` and ``tenant`` (which a tenant key
        overrides), as keyword arguments of ``Producer.create_endpoint``."""
        return self.model_dump(exclude={"url", "tenant"})


class EndpointUpdate(Changes):
    """Fields to change; absent fields keep their value, ``null`` resets a nullable one."""

    model_config = example({"event_types": ["invoice.*"], "rate_limit_per_second": 5})

    url: str | None = None
    description: str | None = None
    event_types: list[str] | None = None
    version: str | None = None
    headers: dict[str, str] | None = None
    signature_scheme: SignatureScheme | None = None
    rate_limit_per_second: StrictFloat | None = None
    ordering: Ordering | None = None
    retry_schedule: list[StrictFloat] | None = None
    timeout_seconds: StrictFloat | None = None
    max_in_flight: StrictInt | None = None
    metadata: dict[str, Any] | None = None
    forward_traceparent: StrictBool | None = None
    channels: list[str] | None = Field(default=None, description=_CHANNELS_DESCRIPTION)
    filter: dict[str, Any] | None = Field(default=None, description=_FILTER_DESCRIPTION)
    proxy_url: str | None = Field(default=None, description=_PROXY_DESCRIPTION)
    auth: dict[str, Any] | None = Field(default=None, description=_AUTH_DESCRIPTION)
    tls: dict[str, Any] | None = Field(default=None, description=_TLS_DESCRIPTION)

    # Field validators run only on values the client sent, so an explicit
    # null is caught while an absent field is left alone.
    @field_validator("url", "signature_scheme", "ordering", "forward_traceparent")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("cannot be null")
        return value


class EndpointOut(LibraryView):
    """A registered endpoint with its delivery settings and health."""

    model_config = example(
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
            "created_at": TS_EXAMPLE,
            "updated_at": TS_EXAMPLE,
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
    forward_traceparent: bool
    channels: list[str]
    filter: dict[str, Any] | None
    proxy_url: str | None = Field(description="The endpoint's own proxy, password as `***`.")
    auth: dict[str, str] | None = Field(
        description="The type and non-secret fields (`username`, `token_url`, `client_id`, "
        "`scope`, `client_auth`); never a password, token or client secret."
    )
    tls: dict[str, Any] | None = Field(
        description="`{client_certificate: {subject, fingerprint_sha256, not_after}, ca}`; "
        "never the key."
    )
    status: EndpointStatus
    disabled_reason: str | None = Field(description="null, manual, failing or gone.")
    disabled_at: str | None
    failing_since: str | None
    consecutive_failures: int
    created_at: str
    updated_at: str

    @classmethod
    def fields_of(cls, value: Endpoint) -> dict[str, Any]:
        """The response fields of a library endpoint, sensitive header values redacted."""
        return {**super().fields_of(value), "headers": redact_headers(value.headers)}


class EndpointCreated(EndpointOut):
    """The create response: the only endpoint response that carries the secret."""

    secret: str = Field(examples=[_SECRET_EXAMPLE])

    @classmethod
    def of(cls, value: Endpoint) -> Self:
        """The create response for a freshly created library endpoint."""
        if value.secret is None:
            raise ValueError("only a freshly created endpoint carries its secret")
        return super().of(value)


class PreviousSecretOut(LibraryView):
    """A rotated-out secret that still signs until ``expires_at``."""

    expires_at: str = Field(examples=[TS_EXAMPLE])


class EndpointSecretOut(LibraryView):
    """The current signing secret, the ``whpk_`` public key for ``v1a``, and
    when the previous secrets stop signing."""

    secret: str = Field(examples=[_SECRET_EXAMPLE])
    public_key: str | None = Field(examples=[None])
    previous: list[PreviousSecretOut]

    @classmethod
    def fields_of(cls, value: EndpointSecret) -> dict[str, Any]:
        """The response fields of a library secret."""
        previous = [PreviousSecretOut.of(p) for p in value.previous]
        return {**super().fields_of(value), "previous": previous}


class RotateSecretRequest(RequestBody):
    """Optionally the new secret, and how long the old one keeps signing."""

    model_config = example({"grace_period_seconds": 86400})

    secret: str | None = None
    grace_period_seconds: StrictFloat = 86400


class RotateSecretOut(BaseModel):
    """The new signing secret."""

    secret: str = Field(examples=[_SECRET_EXAMPLE])


class TestRequest(RequestBody):
    """What to send in a test event."""

    model_config = example({"event_type": "webhook.test", "data": {"hello": "world"}})

    event_type: str = "webhook.test"
    data: Any = None


class TestResultOut(LibraryView):
    """What the receiver answered to a test event."""

    delivery_id: str = Field(examples=["dlv_01JD0000000000000000000000"])
    message_id: str = Field(examples=["msg_01JD0000000000000000000000"])
    succeeded: bool
    status_code: int | None = Field(examples=[200])
    duration_ms: float = Field(examples=[41.7])
    response_body: str | None = Field(examples=["ok"])
    error: str | None = Field(examples=[None])


class RecoverRequest(RequestBody):
    """The window of failed deliveries to requeue: ``[since, until)``."""

    model_config = example({"since": TS_EXAMPLE})

    since: AwareDatetime
    until: AwareDatetime | None = None


class RecoverOut(BaseModel):
    """How many failed deliveries went back to ``pending``."""

    requeued: int = Field(examples=[12])


class ReplayRequest(RequestBody):
    """The window of messages to replay: ``[since, until)`` on their creation time."""

    model_config = example(
        {
            "since": TS_EXAMPLE,
            "until": None,
            "event_types": ["invoice.paid"],
            "include_failed": True,
        }
    )

    since: AwareDatetime
    until: AwareDatetime | None = None
    event_types: list[str] | None = Field(
        default=None, description="Only messages of these event types (exact names)."
    )
    include_failed: StrictBool = Field(
        default=False, description="Also requeue the endpoint's failed deliveries of the window."
    )
    dry_run: StrictBool = Field(
        default=False,
        description="Only count what the replay would create and requeue; nothing is written.",
    )
    background: StrictBool = Field(
        default=False,
        description="Answer at once with a job the workers run; follow it at `GET /v1/jobs/{id}`.",
    )


class ReplayOut(LibraryView):
    """What the replay did (would do, in a dry run)."""

    created: int = Field(
        examples=[120], description="Deliveries created for messages the endpoint had none of."
    )
    requeued: int = Field(examples=[4], description="Failed deliveries back to `pending`.")


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
