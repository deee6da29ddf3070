"""The library's public value objects: what its methods take and return.

They are frozen snapshots, detached from any database session.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar, get_args

__all__ = [
    "DELIVERY_STATUSES",
    "ENDPOINT_STATUSES",
    "JOB_KINDS",
    "JOB_STATUSES",
    "ApiKey",
    "Attempt",
    "Delivery",
    "DeliveryStatus",
    "Endpoint",
    "EndpointSecret",
    "EndpointStats",
    "EndpointStatus",
    "EventType",
    "FailingEndpoint",
    "HourlyActivity",
    "HourlyCount",
    "Job",
    "JobKind",
    "JobStatus",
    "Message",
    "Overview",
    "Page",
    "PreviousSecret",
    "ReplayResult",
    "TestResult",
    "snapshot",
]

T = TypeVar("T")

DeliveryStatus = Literal["pending", "sending", "succeeded", "failed", "cancelled"]
"""Where a delivery stands: ``pending`` (waiting for its next attempt),
``sending`` (leased to a worker), ``succeeded``, ``failed`` (retries
exhausted or refused) or ``cancelled`` (its endpoint was deleted)."""
DELIVERY_STATUSES: tuple[DeliveryStatus, ...] = get_args(DeliveryStatus)
"""Every delivery status, in the order above: the one list that API schemas,
UI filters and metrics use."""
EndpointStatus = Literal["enabled", "disabled"]
"""Whether an endpoint gets deliveries: ``enabled``, or ``disabled`` (by hand,
or automatically when failing or gone)."""
ENDPOINT_STATUSES: tuple[EndpointStatus, ...] = get_args(EndpointStatus)
DEFAULT_TENANT = "default"


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a newest-first list; pass ``next_cursor`` to get the next."""

    data: list[T]
    next_cursor: str | None


@dataclass(frozen=True)
class Endpoint:
    """A receiver URL registered by a tenant, with its delivery settings and health."""

    id: str
    tenant: str
    url: str
    description: str
    event_types: list[str]
    version: str | None
    headers: dict[str, str]
    signature_scheme: str
    rate_limit_per_second: float | None
    ordering: str
    retry_schedule: list[float] | None
    timeout_seconds: float | None
    max_in_flight: int | None
    metadata: dict[str, Any]
    forward_traceparent: bool
    """Whether attempts carry the W3C ``traceparent`` of their span (when traced)."""
    channels: list[str]
    """The channels it subscribes to; empty: messages of any channel or none."""
    filter: dict[str, Any] | None
    """The payload filter the message data must pass (``producer.filters``)."""
    proxy_url: str | None
    """The egress proxy of its requests (a password shown as ``***``); None:
    ``WEBHOOKS_EGRESS_PROXY``, if set."""
    auth: dict[str, str] | None
    """How requests authenticate: the type and its non-secret fields."""
    tls: dict[str, Any] | None
    """The client certificate presented (subject, fingerprint, expiry), never its key."""
    status: EndpointStatus
    disabled_reason: str | None
    disabled_at: datetime | None
    failing_since: datetime | None
    consecutive_failures: int
    created_at: datetime
    updated_at: datetime
    secret: str | None = None
    """Set only on the value returned by ``create_endpoint``."""


@dataclass(frozen=True)
class PreviousSecret:
    """A rotated-out secret that still signs until ``expires_at``."""

    expires_at: datetime


@dataclass(frozen=True)
class EndpointSecret:
    """An endpoint's current signing secret (and public key for ``v1a``)."""

    secret: str
    public_key: str | None
    previous: list[PreviousSecret] = field(default_factory=list)


@dataclass(frozen=True)
class EventType:
    """A named kind of event with optional JSON Schemas and examples per version."""

    name: str
    description: str
    schemas: dict[str, Any]
    examples: dict[str, Any]
    archived: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Message:
    """An event as sent: ``payload`` holds the exact envelope bytes."""

    id: str
    tenant: str
    event_type: str
    version: str
    created_at: datetime
    payload: bytes
    idempotency_key: str | None
    deliveries: int
    channels: list[str]
    """The channels it was sent on."""
    skipped: dict[str, int]
    """Endpoints it matched that got no delivery, by reason: ``{"filter": 2}``."""

    @property
    def envelope(self) -> dict[str, Any]:
        """The envelope decoded from ``payload``."""
        return json.loads(self.payload)


@dataclass(frozen=True)
class Delivery:
    """One message to one endpoint and where it stands."""

    id: str
    message_id: str
    endpoint_id: str
    event_type: str
    tenant: str
    status: DeliveryStatus
    attempt_count: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime


@dataclass(frozen=True)
class Attempt:
    """One HTTP request of a delivery, with the response or the error."""

    id: str
    delivery_id: str
    number: int
    trigger: str
    started_at: datetime
    duration_ms: float
    request_url: str
    request_headers: dict[str, str]
    response_status: int | None
    response_headers: dict[str, str] | None
    response_body: str | None
    response_truncated: bool
    error: str | None
    succeeded: bool
    next_attempt_at: datetime | None


@dataclass(frozen=True)
class TestResult:
    """What a synchronous test send got back from the receiver."""

    delivery_id: str
    message_id: str
    succeeded: bool
    status_code: int | None
    duration_ms: float
    response_body: str | None
    error: str | None


@dataclass(frozen=True)
class ReplayResult:
    """What a replay of an endpoint's window did."""

    created: int
    """Deliveries created for messages the endpoint had none of."""
    requeued: int
    """Failed deliveries put back in the queue (with ``include_failed``)."""


JobKind = Literal["replay", "retry"]
"""What a job does: a ``replay`` of an endpoint's window, or a bulk ``retry``."""
JOB_KINDS: tuple[JobKind, ...] = get_args(JobKind)
JobStatus = Literal["queued", "running", "succeeded", "failed"]
"""Where a job stands: ``queued`` (no worker took it yet), ``running``,
``succeeded`` or ``failed`` (``error`` says why)."""
JOB_STATUSES: tuple[JobStatus, ...] = get_args(JobStatus)


@dataclass(frozen=True)
class Job:
    """A replay or bulk retry run by the workers in the background, and how far it got."""

    id: str
    kind: JobKind
    status: JobStatus
    tenant: str | None
    """The tenant whose deliveries it touches; None: an admin's retry over every tenant."""
    endpoint_id: str | None
    since: datetime | None
    until: datetime | None
    options: dict[str, Any]
    """The rest of what selects its work: ``event_types`` and
    ``include_failed`` of a replay; ``status``, ``event_type`` and ``force``
    of a retry."""
    dry_run: bool
    """Only counting: the counts are what it would do; nothing is written."""
    phase: str
    """The step under way: ``messages`` then ``failed`` for a replay,
    ``deliveries`` for a retry."""
    scanned: int
    """Messages of the window looked at so far."""
    created: int
    """Deliveries created so far."""
    requeued: int
    """Deliveries put back in the queue so far."""
    error: str | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True)
class EndpointStats:
    """Delivery counts and attempt latency of one endpoint over a window."""

    succeeded: int
    failed: int
    pending: int
    success_rate: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None


@dataclass(frozen=True)
class HourlyCount:
    """Deliveries of an endpoint created in one hour that succeeded, failed,
    or are still retrying after a failed attempt."""

    hour: datetime
    succeeded: int
    failed: int
    retrying: int = 0
    """Pending (or being sent) after at least one attempt."""


@dataclass(frozen=True)
class ApiKey:
    """A management API key (the plain key is shown once, at creation)."""

    id: str
    tenant: str | None
    name: str
    prefix: str
    created_at: datetime

    @property
    def is_admin(self) -> bool:
        """Admin keys see every tenant."""
        return self.tenant is None


@dataclass(frozen=True)
class FailingEndpoint:
    """An endpoint and its failed attempts over a window."""

    endpoint_id: str
    tenant: str
    url: str
    failed: int
    attempts: int


@dataclass(frozen=True)
class HourlyActivity:
    """The attempts of every endpoint started in one hour."""

    hour: datetime
    succeeded: int
    failed: int
    """Attempts that did not succeed (retried or given up)."""
    max_wait_seconds: float | None
    """The longest a first attempt in this hour waited after its message was
    sent: the queue lag of that hour (None without a first attempt)."""


@dataclass(frozen=True)
class Overview:
    """How delivery goes across all tenants: over a window, and right now."""

    since: datetime
    until: datetime
    attempts: int
    """Attempts started in the window (test sends left out)."""
    succeeded: int
    failed: int
    success_rate: float | None
    """``succeeded / attempts``; None without attempts."""
    attempts_per_minute: float
    """Throughput: attempts per minute over the window."""
    deliveries_due: int
    """Pending deliveries due now on enabled endpoints."""
    queue_lag_seconds: float
    """Seconds since the oldest of them fell due (0 when none is)."""
    failing_endpoints: list[FailingEndpoint]
    """The endpoints with the most failed attempts in the window, most first."""
    hours: list[HourlyActivity]
    """Every hour of the window, oldest first (hours without attempts at 0)."""


V = TypeVar("V")


def snapshot(cls: type[V], row: object, **values: Any) -> V:
    """A value of the dataclass ``cls`` read from a database row: each field
    not given in ``values`` comes from the row's attribute of the same name.
    Lists and dicts are copied, so the value shares nothing with the row."""
    for f in fields(cls):  # type: ignore[arg-type]
        if f.name not in values:
            value = getattr(row, f.name)
            values[f.name] = copy.copy(value) if isinstance(value, list | dict) else value
    return cls(**values)
