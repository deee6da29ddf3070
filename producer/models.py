"""The database schema: typed SQLAlchemy 2 models.

Table names carry a ``webhook_`` prefix so the tables can live in a host
application's own database beside its tables (the outbox case).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "ApiKeyRow",
    "AttemptRow",
    "Base",
    "DeliveryRow",
    "EndpointChannelRow",
    "EndpointRouteRow",
    "EndpointRow",
    "EventTypeRow",
    "JobRow",
    "MessageRow",
    "UTCDateTime",
    "table_of",
]


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend.

    SQLite has no timezone support and returns naive values; this type stores
    UTC and always hands back aware datetimes so comparisons never mix kinds.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of the webhook tables."""

    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON, list[Any]: JSON}


class EndpointRow(Base):
    """A receiver URL registered by a tenant."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(128))
    url: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    event_types: Mapped[list[Any]] = mapped_column(JSON, default=list)
    version: Mapped[str | None] = mapped_column(String(32))
    headers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    signature_scheme: Mapped[str] = mapped_column(String(16), default="v1")
    secret: Mapped[str] = mapped_column(Text)
    # [{"secret": ..., "expires_at": iso8601}] — older secrets still signing
    # during a rotation's grace period.
    previous_secrets: Mapped[list[Any]] = mapped_column(JSON, default=list)
    rate_limit_per_second: Mapped[float | None] = mapped_column(Float)
    ordering: Mapped[str] = mapped_column(String(16), default="unordered")
    retry_schedule: Mapped[list[Any] | None] = mapped_column(JSON)
    timeout_seconds: Mapped[float | None] = mapped_column(Float)
    max_in_flight: Mapped[int | None] = mapped_column(Integer)
    # Whether attempts carry the W3C ``traceparent`` of their span.
    forward_traceparent: Mapped[bool] = mapped_column(Boolean, default=False)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    # The channels it subscribes to (none: every channel), as read back; the
    # routing query reads their copy in ``webhook_endpoint_channels``.
    channels: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # A payload filter (producer.filters) the message data must pass; None: all pass.
    filter: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # producer.credentials: the egress proxy (sealed, it may hold a password),
    # receiver authentication and client TLS, their secret fields sealed.
    proxy_url: Mapped[str | None] = mapped_column(Text)
    auth: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    tls: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="enabled")
    disabled_reason: Mapped[str | None] = mapped_column(String(16))
    disabled_at: Mapped[datetime | None]
    failing_since: Mapped[datetime | None]
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    deleted_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_webhook_endpoints_tenant_id", "tenant", "id"),)


class EndpointChannelRow(Base):
    """One channel an endpoint subscribes to: the index of routing by channel.

    A table rather than a JSON column, so that "shares a channel with the
    message" is a primary-key probe on SQLite and PostgreSQL alike.
    """

    __tablename__ = "webhook_endpoint_channels"

    endpoint_id: Mapped[str] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), primary_key=True
    )
    channel: Mapped[str] = mapped_column(String(64), primary_key=True)


class EndpointRouteRow(Base):
    """One way a live endpoint is reached: an event type pattern of it
    (``*`` when it has none) and a channel it subscribes to (``""`` when it
    subscribes to none: any message). The index routing looks messages up in.

    A message of ``invoice.paid`` sent on ``eu`` reaches the endpoints with
    a row of one of its candidate patterns (``invoice.paid``,
    ``invoice.*``, ``*``) and of channel ``""`` or ``eu``: one index range
    per pair rather than a match against every endpoint of the tenant. An
    endpoint has a row per pattern and channel (at most the limits of both
    multiplied, in practice a few).
    """

    __tablename__ = "webhook_endpoint_routes"

    tenant: Mapped[str] = mapped_column(String(128), primary_key=True)
    pattern: Mapped[str] = mapped_column(String(130), primary_key=True)
    channel: Mapped[str] = mapped_column(String(64), primary_key=True)
    endpoint_id: Mapped[str] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), primary_key=True
    )

    __table_args__ = (Index("ix_webhook_endpoint_routes_endpoint", "endpoint_id"),)


class JobRow(Base):
    """A replay or bulk retry run in the background by the workers, batch by
    batch, its cursor saved with each batch's deliveries."""

    __tablename__ = "webhook_jobs"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    # None: an admin's bulk retry over every tenant.
    tenant: Mapped[str | None] = mapped_column(String(128))
    endpoint_id: Mapped[str | None] = mapped_column(String(40))
    since: Mapped[datetime | None]
    until: Mapped[datetime | None]
    # What else selects the work: event types, include_failed, status, force.
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    # The step under way and the last id it finished (None: from the start).
    phase: Mapped[str] = mapped_column(String(16))
    cursor: Mapped[str | None] = mapped_column(String(40))
    scanned: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[int] = mapped_column(Integer, default=0)
    requeued: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_webhook_jobs_tenant_id", "tenant", "id"),
        # The runners' claim: unfinished jobs, oldest first.
        Index("ix_webhook_jobs_status_id", "status", "id"),
    )


class EventTypeRow(Base):
    """A named kind of event, with optional JSON Schemas per payload version."""

    __tablename__ = "webhook_event_types"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    description: Mapped[str] = mapped_column(Text, default="")
    schemas: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    examples: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    archived_at: Mapped[datetime | None]


class MessageRow(Base):
    """One event, sent once, fanned out to every matching endpoint."""

    __tablename__ = "webhook_messages"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(128))
    event_type: Mapped[str] = mapped_column(String(128))
    version: Mapped[str] = mapped_column(String(32))
    # The exact envelope bytes that are signed and sent on every attempt.
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    idempotency_key: Mapped[str | None] = mapped_column(String(256))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    # The W3C trace context of the send ({"traceparent": ...}) when traced:
    # the worker's attempt spans join the sender's trace.
    trace_context: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The channels it was sent on (routing.validate_channels).
    channels: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # How many matching endpoints got no delivery, by reason: {"filter": n}.
    skipped: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint("tenant", "idempotency_key", name="uq_webhook_messages_idempotency"),
        Index("ix_webhook_messages_tenant_id", "tenant", "id"),
        Index("ix_webhook_messages_event_type_id", "event_type", "id"),
    )


class DeliveryRow(Base):
    """One message to one endpoint: the unit the worker claims and retries."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    message_id: Mapped[str] = mapped_column(ForeignKey("webhook_messages.id", ondelete="CASCADE"))
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id"))
    tenant: Mapped[str] = mapped_column(String(128))
    event_type: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    # Set only when the endpoint pins a version other than the message's: the
    # converted envelope for that endpoint.
    payload: Mapped[bytes | None] = mapped_column(LargeBinary)
    attempt_count: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    next_trigger: Mapped[str] = mapped_column(String(16), default="scheduled")
    last_attempt_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (
        # The worker's due query: pending deliveries ordered by due time.
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        # Reclaiming expired leases.
        Index("ix_webhook_deliveries_lease", "status", "lease_expires_at"),
        # The delivery log: per endpoint / message / tenant, newest first.
        Index("ix_webhook_deliveries_endpoint_id", "endpoint_id", "id"),
        # FIFO heads and per-endpoint status filters.
        Index("ix_webhook_deliveries_endpoint_status", "endpoint_id", "status", "id"),
        Index("ix_webhook_deliveries_message_id", "message_id", "id"),
        # Replay: has this endpoint a delivery of this message?
        Index("ix_webhook_deliveries_message_endpoint", "message_id", "endpoint_id"),
        Index("ix_webhook_deliveries_tenant_id", "tenant", "id"),
        Index("ix_webhook_deliveries_status_id", "status", "id"),
    )


class AttemptRow(Base):
    """One HTTP request made for a delivery, with what came back."""

    __tablename__ = "webhook_attempts"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    delivery_id: Mapped[str] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE")
    )
    number: Mapped[int] = mapped_column(Integer)
    trigger: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime]
    duration_ms: Mapped[float] = mapped_column(Float)
    request_url: Mapped[str] = mapped_column(Text)
    request_headers: Mapped[dict[str, Any]] = mapped_column(JSON)
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_headers: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    response_body: Mapped[str | None] = mapped_column(Text)
    response_truncated: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(Text)
    succeeded: Mapped[bool] = mapped_column(Boolean)
    next_attempt_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_webhook_attempts_delivery", "delivery_id", "number"),
        # The service overview and retention read attempts by start time.
        Index("ix_webhook_attempts_started_at", "started_at"),
    )


class ApiKeyRow(Base):
    """A management API key, stored as a SHA-256 hash. ``tenant`` None = admin."""

    __tablename__ = "webhook_api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant: Mapped[str | None] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(200), default="")
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


def table_of(row: type[Base]) -> Table:
    """The table a mapped class is mapped to: its ``__table__``, typed as the
    :class:`~sqlalchemy.Table` it is, for Core statements."""
    table = row.__table__
    assert isinstance(table, Table)
    return table
