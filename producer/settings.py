"""One typed settings object, read from ``WEBHOOKS_*`` environment variables."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Configuration of a ``producer.Producer`` and of the service.

    Every field can be set with an environment variable named ``WEBHOOKS_`` plus
    the field name in upper case (``WEBHOOKS_DATABASE_URL``), or passed as a
    keyword argument to ``Producer(...)``, which wins over the environment.
    """

    # Attribute docstrings become field descriptions: the configuration
    # reference in the docs is generated from them.
    model_config = SettingsConfigDict(
        env_prefix="WEBHOOKS_", extra="forbid", use_attribute_docstrings=True
    )

    database_url: str = "sqlite:///./webhooks.db"
    """SQLAlchemy URL. ``postgresql://`` URLs use psycopg 3."""

    auto_migrate: bool | None = None
    """Apply migrations when the producer starts; unset: only on SQLite."""

    db_pool_size: int = Field(default=5, ge=1)
    """Connections kept open per process (PostgreSQL)."""
    db_max_overflow: int = Field(default=10, ge=0)
    """Extra connections a process may open under load (PostgreSQL)."""
    db_pool_timeout: float = Field(default=30.0, gt=0)
    """Seconds to wait for a free pooled connection before failing."""

    max_payload_bytes: int = Field(default=256 * 1024, ge=1024)
    """Largest serialised envelope accepted by ``send()``."""

    max_metadata_bytes: int = Field(default=16 * 1024, ge=0)
    """Largest endpoint ``metadata``, serialised as JSON."""
    max_event_type_patterns: int = Field(default=100, ge=1)
    """Most event type patterns one endpoint may subscribe to."""

    # Delivery engine.
    worker_batch_size: int = Field(default=100, ge=1)
    """Deliveries per claim and per recording transaction."""
    worker_concurrency: int = Field(default=64, ge=1)
    """Requests in flight per worker process."""
    worker_poll_interval: float = Field(default=1.0, gt=0)
    """Seconds between looks for due deliveries when nothing wakes the worker."""
    lease_seconds: float = Field(default=10.0, gt=0)
    """How long claimed deliveries stay leased without a heartbeat. A live worker
    renews its leases every quarter of this, so a killed worker's deliveries
    go to another worker within about this time."""
    worker_tenant_share: float = Field(default=0.5, gt=0, le=1)
    """Fraction of ``worker_concurrency`` one tenant may hold in flight in one
    worker (at least one slot), so a tenant with hanging endpoints cannot take
    every slot from the others."""
    worker_take_over: bool = True
    """Whether a running worker takes the deliveries of its own process's
    sends straight from their transaction when it can start them at once (no
    claim in between). On PostgreSQL that adds one to two milliseconds to each
    send and saves about two before the receiver gets the event."""
    shutdown_grace_seconds: float = Field(default=10.0, ge=0)
    """On shutdown, how long in-flight requests may finish before the rest is released."""
    connect_timeout: float = Field(default=5.0, gt=0)
    """Seconds to establish a connection to a receiver."""
    request_timeout: float = Field(default=15.0, gt=0)
    """Total seconds per attempt (an endpoint's ``timeout_seconds`` overrides it)."""
    max_in_flight_per_endpoint: int = Field(default=10, ge=1)
    """Default cap of concurrent requests to one endpoint (its ``max_in_flight`` overrides it)."""
    max_response_bytes: int = Field(default=16 * 1024, ge=0)
    """How much of a response body is read and kept in the attempt log."""
    http_clients: int = Field(default=256, ge=1)
    """Bound of the cache of per-endpoint HTTP clients."""
    transport: Literal["httpx", "aiohttp"] = "httpx"
    """The HTTP client deliveries are sent with. ``aiohttp`` (the ``aiohttp``
    extra) sends several times more requests per second per core, with the
    same timeouts, limits, destination guard, proxies and client certificates."""

    # Endpoint health.
    probe_after_failures: int = Field(default=5, ge=1)
    """After this many consecutive failures, one delivery in flight until one succeeds."""
    disable_after_seconds: float = Field(default=5 * 24 * 3600, ge=0)
    """Seconds an endpoint must fail without a success before it is disabled (5 days)."""
    disable_after_failures: int = Field(default=10, ge=1)
    """Consecutive failed attempts also required before it is disabled."""
    operations_tenant: str | None = None
    """Tenant whose endpoints receive ``endpoint.*``/``delivery.exhausted`` events."""

    # Maintenance.
    retention_days: float = Field(default=30, gt=0)
    """Days after which attempts, and messages with no delivery waiting, are deleted."""
    maintenance_interval_seconds: float = Field(default=60, gt=0)
    """Seconds between endpoint health evaluations."""

    # Destinations.
    # NoDecode: the variable is a comma-separated list, not JSON.
    allowed_cidrs: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Address ranges the destination guard lets through, e.g. ``127.0.0.0/8,::1/128``."""
    encryption_keys: Annotated[list[str], NoDecode] = Field(default_factory=list, repr=False)
    """Fernet keys sealing endpoint secrets at rest, newest first (comma-separated)."""
    https_only: bool = False
    """Refuse plain ``http://`` endpoints."""
    egress_proxy: str | None = None
    """An ``http://`` or ``https://`` proxy every delivery goes through (CONNECT
    for https receivers), e.g. one with fixed source addresses; an endpoint's
    ``proxy_url`` overrides it. The destination guard still checks each
    receiver, and the proxy is asked for the checked address."""

    # Observability.
    otel: bool = False
    """Trace sends, attempts and the worker's batches with OpenTelemetry
    (needs the ``otel`` extra). Spans go to the tracer provider the host
    application set; ``webhooks serve`` and ``webhooks worker`` set one from
    the standard ``OTEL_*`` variables. Off: nothing of OpenTelemetry is loaded."""
    metrics_top_n: int = Field(default=20, ge=1, le=1000)
    """Endpoints and tenants with series of their own in the per-endpoint and
    per-tenant metrics: the N busiest of the process; the rest are counted
    under ``other``, so the number of series stays bounded."""

    ui_secret: SecretStr | None = None
    """Signs web UI sessions and portal links (at least 16 characters). Without
    it each process makes a random one: sessions end on restart, and several
    API processes do not accept each other's links."""
    # NoDecode: the variable is a comma-separated list, not JSON.
    ui_frame_ancestors: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Origins allowed to show the web UI in a frame, e.g.
    ``https://app.example.com`` (comma-separated). Empty: no page may frame it.
    Set, and served over HTTPS, session cookies become ``SameSite=None;
    Secure; Partitioned`` so a cross-site frame keeps its session."""
    ui_brand_name: str | None = Field(default=None, min_length=1, max_length=60)
    """The name shown at the top of every UI page instead of "Webhooks"."""
    ui_accent_color: str | None = Field(default=None, pattern=r"^#(?:[0-9a-fA-F]{3}){1,2}$")
    """The UI's accent colour (links, buttons), as ``#rrggbb`` or ``#rgb``."""

    @field_validator("allowed_cidrs", "encryption_keys", "ui_frame_ancestors", mode="before")
    @classmethod
    def _split_cidrs(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("allowed_cidrs")
    @classmethod
    def _check_cidrs(cls, value: list[str]) -> list[str]:
        import ipaddress

        for cidr in value:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError as exc:
                raise ValueError(f"{cidr!r} is not a CIDR range: {exc}") from exc
        return value

    @field_validator("ui_frame_ancestors")
    @classmethod
    def _check_origins(cls, value: list[str]) -> list[str]:
        # An origin only: anything else would let a value add CSP directives.
        for origin in value:
            if not re.fullmatch(r"https?://[A-Za-z0-9.\-]+(?::[0-9]{1,5})?", origin):
                raise ValueError(
                    f"{origin!r} is not an origin like https://app.example.com "
                    "(scheme and host, an optional port, no path)"
                )
        return value

    @field_validator("egress_proxy")
    @classmethod
    def _check_proxy(cls, value: str | None) -> str | None:
        # Checked at start-up: a bad value would otherwise fail every attempt.
        if value is None or value == "":
            return None
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 -- raises for a bad port
        except ValueError as exc:
            raise ValueError(f"is not a valid URL: {exc}") from exc
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// proxy URL with a host")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError("must not have a path, query or fragment")
        return value

    @field_validator("encryption_keys")
    @classmethod
    def _check_keys(cls, value: list[str]) -> list[str]:
        from cryptography.fernet import Fernet

        for index, key in enumerate(value):
            try:
                Fernet(key.encode())
            except ValueError:
                raise ValueError(
                    f"key {index + 1} is not a Fernet key (make one with "
                    "`webhooks secrets generate-key`)"
                ) from None
        return value

    @field_validator("otel")
    @classmethod
    def _check_otel(cls, value: bool) -> bool:
        if value:
            try:
                import opentelemetry.trace  # noqa: F401
            except ImportError:
                raise ValueError(
                    "tracing needs OpenTelemetry: pip install 'webhook-producer[otel]'"
                ) from None
        return value

    @property
    def is_sqlite(self) -> bool:
        """Whether the configured database is an SQLite file (or memory)."""
        return self.database_url.startswith("sqlite")
