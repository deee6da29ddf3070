"""The ``Producer`` facade: everything a host application calls.

Each method delegates to the module that holds its concern (see
``docs/architecture.md``); they share one :class:`~producer.context.Context`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from producer import (
    api_keys,
    delivery_log,
    endpoints,
    event_types,
    filters,
    jobs,
    maintenance,
    ping,
    replay,
    sending,
    stats,
    worker,
)
from producer.context import Clock, Context
from producer.db import create_db_engine, current_revision, head_revision, migrate
from producer.delivery import DeliveryResult
from producer.destinations import DestinationPolicy
from producer.errors import WebhooksError
from producer.models import EndpointRow
from producer.outcomes import Outcomes
from producer.payloads import Converter, ConverterRegistry
from producer.sealing import SecretBox
from producer.sending import SendRequest
from producer.settings import Settings
from producer.store import DeliveryFilter, MessageFilter, Store
from producer.types import (
    ApiKey,
    Attempt,
    Delivery,
    Endpoint,
    EndpointSecret,
    EndpointStats,
    EventType,
    HourlyCount,
    Job,
    Message,
    Overview,
    Page,
    ReplayResult,
    TestResult,
)

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["Producer"]


class Producer:
    """Register endpoints and event types, send events, inspect deliveries.

    ``Producer(database_url=None, **settings)``: settings not given here come
    from ``WEBHOOKS_*`` environment variables (see ``Settings``). Pass
    ``engine=`` to share the host application's SQLAlchemy engine.
    """

    def __init__(
        self,
        database_url: str | None = None,
        *,
        settings: Settings | None = None,
        engine: Engine | None = None,
        clock: Clock | None = None,
        **overrides: Any,
    ) -> None:
        if database_url is not None:
            overrides["database_url"] = database_url
        if settings is None:
            settings = Settings(**overrides)
        elif overrides:
            # Validated like the environment: a wrong type fails here, not later.
            settings = Settings.model_validate({**settings.model_dump(), **overrides})
        self._owns_engine = engine is None
        the_engine = engine if engine is not None else create_db_engine(settings)
        self.context = Context.build(settings, the_engine, clock)
        """What the facade, the worker and the maintenance jobs share."""
        self.settings: Settings = settings
        self.clock: Clock = self.context.clock
        self.engine: Engine = the_engine
        """The SQLAlchemy engine; on SQLite, make your own sessions from it for
        the outbox (it sets WAL mode, a busy timeout and immediate transactions)."""
        self.store: Store = self.context.store
        self.converters: ConverterRegistry = self.context.converters
        self.secret_box: SecretBox = self.context.secret_box
        self._outcomes = Outcomes(self.context)
        auto = settings.auto_migrate
        if auto is None:
            auto = the_engine.dialect.name == "sqlite"
        if auto:
            migrate(the_engine)

    # -- what the context holds ------------------------------------------------------

    @property
    def destinations(self) -> DestinationPolicy:
        """The destination guard; replace it (e.g. with a fake resolver) in tests."""
        return self.context.destinations

    @destinations.setter
    def destinations(self, policy: DestinationPolicy) -> None:
        self.context.destinations = policy

    @property
    def transport_factory(self) -> Callable[[str], Any] | None:
        """Optional ``pool_key -> httpx.AsyncBaseTransport`` used for delivery."""
        return self.context.transport_factory

    @transport_factory.setter
    def transport_factory(self, factory: Callable[[str], Any] | None) -> None:
        self.context.transport_factory = factory

    # -- lifecycle ------------------------------------------------------------------

    def migrate(self) -> None:
        """Apply the shipped database migrations (``webhooks db upgrade``)."""
        migrate(self.engine)

    def check_schema_version(self) -> None:
        """Raise WebhooksError when the database is not at this version's schema."""
        current, head = current_revision(self.engine), head_revision()
        if current != head:
            raise WebhooksError(
                f"the database schema is at {current or 'nothing'}, this version needs "
                f"{head}: run `webhooks db upgrade`"
            )

    def close(self) -> None:
        """Release the database connections (only of an engine we created)."""
        if self.context.doorbell is not None:
            self.context.doorbell.close()
        if self._owns_engine:
            self.engine.dispose()

    def on_send(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` after each committed send (the worker's wake-up).

        Returns a function that removes the callback.
        """
        return self.context.hooks.on_send(callback)

    def on_event(self, callback: Callable[[str, dict[str, Any]], None]) -> Callable[[], None]:
        """Register ``callback(event_type, data)`` for operational events:
        ``endpoint.failing``, ``endpoint.disabled``, ``endpoint.recovered`` and
        ``delivery.exhausted``. Returns a function that removes it."""
        return self.context.hooks.on_event(callback)

    def on_attempt(self, callback: Callable[[str, float], None]) -> Callable[[], None]:
        """Call ``callback(outcome, duration_ms)`` for every attempt recorded by
        this process; ``outcome`` is ``succeeded``, ``retry`` or ``failed``.
        Meant for metrics. Returns a function that removes it."""
        return self.context.hooks.on_attempt(callback)

    # -- event types ------------------------------------------------------------------

    def create_event_type(
        self,
        name: str,
        *,
        description: str = "",
        schemas: Mapping[str, Any] | None = None,
        examples: Mapping[str, Any] | None = None,
    ) -> EventType:
        """Register an event type; ``schemas`` maps a version to a JSON Schema.

        Re-creating an archived type unarchives it; an existing live type is a
        ConflictError.
        """
        return event_types.create(
            self.context, name, description=description, schemas=schemas, examples=examples
        )

    def get_event_type(self, name: str) -> EventType:
        """An event type by name (archived ones too)."""
        return event_types.get(self.context, name)

    def list_event_types(
        self, *, include_archived: bool = False, limit: int = 50, cursor: str | None = None
    ) -> Page[EventType]:
        """Event types in name order."""
        return event_types.list_(
            self.context, include_archived=include_archived, limit=limit, cursor=cursor
        )

    def update_event_type(self, name: str, **changes: Any) -> EventType:
        """Change ``description``, ``schemas`` or ``examples`` of an event type."""
        return event_types.update(self.context, name, changes)

    def archive_event_type(self, name: str) -> EventType:
        """Archive an event type: it can no longer be sent."""
        return event_types.archive(self.context, name)

    def register_converter(
        self, event_type: str, from_version: str, to_version: str, func: Converter
    ) -> None:
        """Teach the producer to turn ``from_version`` data into ``to_version`` data.

        Endpoints pinned to a version receive every message rendered in it,
        converted along the shortest chain of registered converters. Use
        ``"*"`` as event type for a converter that fits every type.
        """
        self.converters.register(event_type, str(from_version), str(to_version), func)

    def converter(
        self, event_type: str, from_version: str, to_version: str
    ) -> Callable[[Converter], Converter]:
        """Decorator form of ``register_converter``."""

        def decorate(func: Converter) -> Converter:
            self.register_converter(event_type, from_version, to_version, func)
            return func

        return decorate

    # -- endpoints ----------------------------------------------------------------------

    def create_endpoint(
        self,
        url: str,
        *,
        tenant: str | None = None,
        description: str = "",
        event_types: Iterable[str] | None = None,
        version: str | None = None,
        headers: Mapping[str, str] | None = None,
        secret: str | None = None,
        signature_scheme: str = "v1",
        rate_limit_per_second: float | None = None,
        ordering: str = "unordered",
        retry_schedule: Sequence[float] | None = None,
        timeout_seconds: float | None = None,
        max_in_flight: int | None = None,
        metadata: Mapping[str, Any] | None = None,
        forward_traceparent: bool = False,
        channels: Iterable[str] | None = None,
        filter: Mapping[str, Any] | None = None,
        proxy_url: str | None = None,
        auth: Mapping[str, str] | None = None,
        tls: Mapping[str, str] | None = None,
    ) -> Endpoint:
        """Register a receiver URL for a tenant.

        ``event_types`` empty or None subscribes to every type; patterns may end
        in ``.*`` or be ``*``. A secret is generated when none is given; the
        returned value is the only one that carries it (see
        ``get_endpoint_secret``). ``forward_traceparent`` sends each attempt's
        W3C trace context to the receiver when tracing is on (``otel``).

        ``channels`` (names of 1-64 letters, digits, ``_ . : -``; at most 100)
        restrict it to messages sent on one of them; ``filter`` (see
        ``producer.filters``) to messages whose data passes it. A malformed
        filter raises ValidationError naming the failing path.

        ``proxy_url`` (an egress proxy), ``auth`` (``basic``, ``bearer`` or
        ``oauth2_client_credentials``) and ``tls`` (a client certificate and
        key, an optional CA) are described in ``producer.credentials``; their
        secrets are sealed at rest and never returned.
        """
        fields = {
            "description": description,
            "event_types": event_types,
            "version": version,
            "headers": headers,
            "rate_limit_per_second": rate_limit_per_second,
            "ordering": ordering,
            "retry_schedule": retry_schedule,
            "timeout_seconds": timeout_seconds,
            "max_in_flight": max_in_flight,
            "metadata": metadata,
            "forward_traceparent": forward_traceparent,
            "channels": channels,
            "filter": filter,
            "proxy_url": proxy_url,
            "auth": auth,
            "tls": tls,
        }
        return endpoints.create(
            self.context,
            url,
            tenant=tenant,
            secret=secret,
            signature_scheme=signature_scheme,
            fields=fields,
        )

    def get_endpoint(self, endpoint_id: str, *, tenant: str | None = None) -> Endpoint:
        """An endpoint; with ``tenant`` set, another tenant's is NotFoundError."""
        return endpoints.get(self.context, endpoint_id, tenant=tenant)

    def list_endpoints(
        self,
        *,
        tenant: str | None = None,
        status: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[Endpoint]:
        """Endpoints, newest first, optionally of one tenant and status."""
        return endpoints.list_(
            self.context, tenant=tenant, status=status, limit=limit, cursor=cursor
        )

    def update_endpoint(
        self, endpoint_id: str, *, tenant: str | None = None, **changes: Any
    ) -> Endpoint:
        """Change endpoint fields (those of ``create_endpoint`` but tenant
        and secret). Switching to or from the ``v1a`` scheme generates a new
        secret, since the key kinds differ."""
        return endpoints.update(self.context, endpoint_id, tenant=tenant, changes=changes)

    def delete_endpoint(self, endpoint_id: str, *, tenant: str | None = None) -> None:
        """Delete an endpoint; its pending deliveries become ``cancelled``.

        The delivery log of the endpoint is kept (until retention purges it).
        """
        endpoints.delete(self.context, endpoint_id, tenant=tenant)

    def get_endpoint_secret(self, endpoint_id: str, *, tenant: str | None = None) -> EndpointSecret:
        """The current signing secret, its public key (v1a) and previous secrets' expiry."""
        return endpoints.get_secret(self.context, endpoint_id, tenant=tenant)

    def rotate_endpoint_secret(
        self,
        endpoint_id: str,
        *,
        tenant: str | None = None,
        secret: str | None = None,
        grace_period_seconds: float = 86400,
    ) -> str:
        """Replace the signing secret; the old one keeps signing for the grace
        period, so every delivery carries one signature per live secret."""
        return endpoints.rotate_secret(
            self.context,
            endpoint_id,
            tenant=tenant,
            secret=secret,
            grace_period_seconds=grace_period_seconds,
        )

    def live_secrets(self, endpoint: EndpointRow) -> list[str]:
        """The secrets a delivery to ``endpoint`` is signed with right now."""
        return endpoints.live_secrets(
            self.context, self.clock(), endpoint.secret, endpoint.previous_secrets
        )

    def reencrypt_secrets(self, *, progress: Callable[[int], None] | None = None) -> int:
        """Re-seal every endpoint secret with the first encryption key (after
        adding a new key in front); returns how many endpoints were updated.
        ``progress(1)`` is called as each endpoint is done."""
        return endpoints.reencrypt_secrets(self.context, progress=progress)

    def disable_endpoint(
        self, endpoint_id: str, *, tenant: str | None = None, reason: str = "manual"
    ) -> Endpoint:
        """Stop delivering to an endpoint; its deliveries wait, held as ``pending``."""
        return endpoints.disable(self.context, endpoint_id, tenant=tenant, reason=reason)

    def enable_endpoint(self, endpoint_id: str, *, tenant: str | None = None) -> Endpoint:
        """Resume an endpoint: clears its failure state; held deliveries go out."""
        return endpoints.enable(self.context, endpoint_id, tenant=tenant)

    # -- sending --------------------------------------------------------------------------

    def send(
        self,
        event_type: str,
        data: Any,
        *,
        tenant: str | None = None,
        version: str | None = None,
        idempotency_key: str | None = None,
        endpoint_ids: Sequence[str] | None = None,
        channels: Sequence[str] | None = None,
        session: Session | None = None,
    ) -> Message:
        """Send an event: store it and one delivery per matching endpoint.

        Matching endpoints are the tenant's endpoints (enabled or disabled)
        whose patterns match ``event_type``, restricted to ``endpoint_ids``
        when given; endpoints subscribed to channels get it only when they
        share one of ``channels`` (at most 10), and endpoints with a payload
        filter only when ``data`` passes it (``Message.skipped`` counts those
        it did not). Pass your own SQLAlchemy ``session`` to write inside your
        transaction (outbox): if you roll back, the event never existed.

        Raises ValidationError (bad name, archived type, data not matching the
        schema, no converter for an endpoint's pinned version),
        PayloadTooLargeError, and IdempotencyConflictError when the key was
        used before with another request.
        """
        request = SendRequest(
            event_type, data, tenant, version, idempotency_key, endpoint_ids, channels
        )
        [message] = sending.send(self.context, [request], session)
        return message

    def send_many(
        self,
        events: Iterable[tuple[str, Any]],
        *,
        tenant: str | None = None,
        session: Session | None = None,
    ) -> list[Message]:
        """Send many ``(event_type, data)`` events in one transaction.

        On PostgreSQL a commit waits for the WAL flush, so one transaction per
        event caps a producer at a few hundred events per second; batching
        lifts that. All or nothing: one invalid event sends none.
        """
        requests = [SendRequest(event_type, data, tenant) for event_type, data in events]
        return sending.send(self.context, requests, session)

    async def asend(
        self,
        event_type: str,
        data: Any,
        *,
        tenant: str | None = None,
        version: str | None = None,
        idempotency_key: str | None = None,
        endpoint_ids: Sequence[str] | None = None,
        channels: Sequence[str] | None = None,
        session: AsyncSession | None = None,
    ) -> Message:
        """The async twin of ``send``; ``session`` may be an ``AsyncSession``.

        Without a session, concurrent calls are group-committed; on SQLite
        the write runs on the event loop (about a millisecond, less than a
        trip to a thread), elsewhere in a thread."""
        request = SendRequest(
            event_type, data, tenant, version, idempotency_key, endpoint_ids, channels
        )
        return await sending.asend(self.context, request, session)

    @staticmethod
    def test_filter(filter: Mapping[str, Any], payload: Any) -> bool:
        """Whether ``payload`` (a message's data) passes an endpoint filter;
        ValidationError, naming the failing path, when the filter is malformed."""
        return filters.evaluate(filters.validate_filter(filter), payload)

    # -- messages, deliveries, attempts -------------------------------------------------------

    def get_message(self, message_id: str, *, tenant: str | None = None) -> Message:
        """A message with its exact payload."""
        return delivery_log.get_message(self.context, message_id, tenant=tenant)

    def list_messages(
        self,
        *,
        tenant: str | None = None,
        event_type: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[Message]:
        """Messages, newest first, filtered."""
        filters = MessageFilter(tenant=tenant, event_type=event_type, since=since, until=until)
        return delivery_log.list_messages(self.context, filters, limit=limit, cursor=cursor)

    def get_delivery(self, delivery_id: str, *, tenant: str | None = None) -> Delivery:
        """A delivery: one message to one endpoint."""
        return delivery_log.get_delivery(self.context, delivery_id, tenant=tenant)

    def list_deliveries(
        self,
        *,
        message_id: str | None = None,
        endpoint_id: str | None = None,
        status: str | None = None,
        event_type: str | None = None,
        tenant: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[Delivery]:
        """The delivery log, newest first; filters combine."""
        filters = DeliveryFilter(
            tenant, event_type, since, until, message_id, endpoint_id, status=status
        )
        return delivery_log.list_deliveries(self.context, filters, limit=limit, cursor=cursor)

    def get_delivery_payload(self, delivery_id: str, *, tenant: str | None = None) -> bytes:
        """The exact body this delivery sends: the message's envelope, or its
        rendering in the version the endpoint pins."""
        return delivery_log.get_delivery_payload(self.context, delivery_id, tenant=tenant)

    def list_attempts(self, delivery_id: str, *, tenant: str | None = None) -> list[Attempt]:
        """Every attempt of a delivery, oldest first."""
        return delivery_log.list_attempts(self.context, delivery_id, tenant=tenant)

    def retry_delivery(
        self, delivery_id: str, *, tenant: str | None = None, force: bool = False
    ) -> Delivery:
        """Put a delivery back in the queue, due now, with trigger ``manual``.

        A succeeded delivery needs ``force=True`` (else InvalidStateError); one
        in flight cannot be retried.
        """
        return delivery_log.retry_delivery(self.context, delivery_id, tenant=tenant, force=force)

    def resend_message(
        self, message_id: str, endpoint_id: str, *, tenant: str | None = None
    ) -> Delivery:
        """Send a message to one endpoint again, now (trigger ``manual``).

        Reuses the message's delivery to that endpoint, or creates one if the
        endpoint did not get the message (it was added later, say).
        """
        return delivery_log.resend_message(self.context, message_id, endpoint_id, tenant=tenant)

    def recover_endpoint(
        self,
        endpoint_id: str,
        *,
        since: datetime,
        until: datetime | None = None,
        tenant: str | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Requeue every ``failed`` delivery of an endpoint created in
        ``[since, until)``, due now; returns how many.

        Works in short transactions of a batch each; ``progress(n)`` is
        called with the count of each batch requeued.
        """
        return delivery_log.recover_endpoint(
            self.context, endpoint_id, since=since, until=until, tenant=tenant, progress=progress
        )

    def replay_endpoint(
        self,
        endpoint_id: str,
        *,
        since: datetime,
        until: datetime | None = None,
        event_types: Sequence[str] | None = None,
        include_failed: bool = False,
        tenant: str | None = None,
        progress: Callable[[int], None] | None = None,
        dry_run: bool = False,
    ) -> ReplayResult:
        """Deliver to an endpoint what it missed: a delivery, due now, for
        every message created in ``[since, until)`` (of ``event_types``, exact
        names, when given) that it would get if sent now (patterns, channels,
        filter) and has no delivery of. ``include_failed`` also requeues its
        failed deliveries of the window.

        Runs in batches, one short transaction each; ``progress(n)`` gets the
        messages looked at per batch (then the deliveries requeued). Running
        it again creates nothing new. With ``dry_run``, the counts are what
        it would create and requeue, and nothing is written.
        """
        return replay.replay_endpoint(
            self.context,
            endpoint_id,
            since=since,
            until=until,
            event_types=event_types,
            include_failed=include_failed,
            tenant=tenant,
            progress=progress,
            dry_run=dry_run,
        )

    def retry_deliveries(
        self,
        *,
        status: str | None = None,
        event_type: str | None = None,
        endpoint_id: str | None = None,
        tenant: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        force: bool = False,
        progress: Callable[[int], None] | None = None,
        dry_run: bool = False,
    ) -> int:
        """Requeue, due now (trigger ``manual``), every delivery the log's
        filters select; returns how many. ``status`` is ``failed`` by default;
        ``succeeded`` needs ``force=True``. Deliveries of deleted endpoints
        are left alone. Batched like ``recover_endpoint``. With ``dry_run``,
        the count is what it would requeue, and nothing is written."""
        filters = DeliveryFilter(tenant, event_type, since, until, None, endpoint_id, status)
        return replay.retry_deliveries(
            self.context, filters, force=force, progress=progress, dry_run=dry_run
        )

    # -- jobs ------------------------------------------------------------------------------------

    def start_replay(
        self,
        endpoint_id: str,
        *,
        since: datetime,
        until: datetime | None = None,
        event_types: Sequence[str] | None = None,
        include_failed: bool = False,
        tenant: str | None = None,
        dry_run: bool = False,
    ) -> Job:
        """``replay_endpoint`` as a background job: checks the input, queues
        the job and returns it at once. A worker process runs it batch by
        batch; ``get_job`` shows how far it got. A job whose worker dies is
        resumed by another where it stopped, creating nothing twice."""
        return jobs.start_replay(
            self.context,
            endpoint_id,
            since=since,
            until=until,
            event_types=event_types,
            include_failed=include_failed,
            tenant=tenant,
            dry_run=dry_run,
        )

    def start_retry(
        self,
        *,
        status: str | None = None,
        event_type: str | None = None,
        endpoint_id: str | None = None,
        tenant: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        force: bool = False,
        dry_run: bool = False,
    ) -> Job:
        """``retry_deliveries`` as a background job, like ``start_replay``."""
        filters = DeliveryFilter(tenant, event_type, since, until, None, endpoint_id, status)
        return jobs.start_retry(self.context, filters, force=force, dry_run=dry_run)

    def get_job(self, job_id: str, *, tenant: str | None = None) -> Job:
        """A job and its progress; with ``tenant``, another tenant's is NotFoundError."""
        return jobs.get(self.context, job_id, tenant=tenant)

    def list_jobs(
        self,
        *,
        tenant: str | None = None,
        kind: str | None = None,
        status: str | None = None,
        endpoint_id: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[Job]:
        """Jobs, newest first, optionally of one tenant, kind, status or endpoint."""
        return jobs.list_(
            self.context,
            tenant=tenant,
            kind=kind,
            status=status,
            endpoint_id=endpoint_id,
            limit=limit,
            cursor=cursor,
        )

    # -- stats ---------------------------------------------------------------------------------

    def endpoint_stats(
        self,
        endpoint_id: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        tenant: str | None = None,
    ) -> EndpointStats:
        """Delivery counts, success rate and attempt latency over a window
        (default: the last 24 hours)."""
        return stats.endpoint_stats(
            self.context, endpoint_id, since=since, until=until, tenant=tenant
        )

    def endpoint_success_rates(
        self,
        endpoint_ids: Sequence[str],
        *,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> dict[str, EndpointStats]:
        """Delivery counts and success rate of several endpoints in one query
        (default window: the last 24 hours); latencies are left out (None)."""
        return stats.endpoint_success_rates(self.context, endpoint_ids, since=since, until=until)

    def endpoint_hourly_counts(
        self,
        endpoint_id: str,
        *,
        since: datetime,
        until: datetime,
        tenant: str | None = None,
    ) -> list[HourlyCount]:
        """Succeeded, failed and retrying deliveries of an endpoint per
        creation hour in ``[since, until)``, oldest first (hours without any
        are left out)."""
        return stats.endpoint_hourly_counts(
            self.context, endpoint_id, since=since, until=until, tenant=tenant
        )

    def metrics_snapshot(self) -> dict[str, Any]:
        """Counts for monitoring: deliveries by status, due queue depth and
        disabled endpoints."""
        return stats.metrics_snapshot(self.context)

    def overview(self, *, since: datetime | None = None, until: datetime | None = None) -> Overview:
        """How delivery goes across every tenant in ``[since, until)`` (default:
        the last 24 hours, at most 31 days): attempts, success rate and
        throughput, the ten endpoints with the most failed attempts, the
        attempts and longest first-attempt wait of each hour, and the queue
        lag and due deliveries now."""
        return stats.overview(self.context, since=since, until=until)

    def queue_depth(self) -> int:
        """Pending deliveries due now on enabled endpoints."""
        return stats.queue_depth(self.context)

    @property
    def local_database(self) -> bool:
        """Whether the database is a local file (SQLite): a short read there
        costs less than handing it to a thread, and never waits for a writer."""
        return self.context.local_database

    def check_database(self) -> None:
        """Raise if the database does not answer a query (the health check)."""
        stats.database_answers(self.context)

    # -- test sends ----------------------------------------------------------------------------

    async def atest_endpoint(
        self,
        endpoint_id: str,
        *,
        event_type: str = "webhook.test",
        data: Any = None,
        tenant: str | None = None,
    ) -> TestResult:
        """Send a test event to one endpoint now and wait for its answer.

        Works on disabled endpoints too. The attempt is recorded in the log
        with trigger ``test`` and is never retried.
        """
        return await ping.send_test(
            self.context,
            self._outcomes,
            endpoint_id,
            event_type=event_type,
            data=data,
            tenant=tenant,
        )

    def test_endpoint(
        self,
        endpoint_id: str,
        *,
        event_type: str = "webhook.test",
        data: Any = None,
        tenant: str | None = None,
    ) -> TestResult:
        """Synchronous form of ``atest_endpoint`` (not from inside an event loop)."""
        return asyncio.run(
            self.atest_endpoint(endpoint_id, event_type=event_type, data=data, tenant=tenant)
        )

    # -- delivery engine --------------------------------------------------------------------------

    async def run_worker(self, *, stop: asyncio.Event | None = None) -> None:
        """Deliver webhooks until cancelled or until ``stop`` is set.

        Periodic maintenance (lease reclaim, health checks, retention) runs
        alongside on APScheduler.
        """
        await worker.run_worker(self.context, self._outcomes, stop=stop)

    def start_worker_thread(self) -> worker.BackgroundWorker:
        """Run the worker in a background thread (for synchronous apps).

        Returns a handle whose ``stop()`` shuts it down gracefully; also a
        context manager.
        """
        return worker.BackgroundWorker(lambda stop: self.run_worker(stop=stop)).start()

    def record_results(self, results: Sequence[DeliveryResult], owner: str) -> None:
        """Store attempts and each delivery's next state, update endpoint
        health, and raise operational events — in one transaction."""
        self._outcomes.record(results, owner)

    def release_deliveries(self, delivery_ids: Sequence[str], owner: str) -> int:
        """Give leased, unattempted deliveries back to the queue."""
        return worker.release_deliveries(self.context, delivery_ids, owner)

    def reclaim_expired_leases(self) -> int:
        """Return deliveries whose worker vanished to the queue, due now."""
        return maintenance.reclaim_expired_leases(self.context)

    def evaluate_endpoint_health(self) -> int:
        """Disable endpoints whose failure streak passed the thresholds even
        without a new attempt; returns how many were disabled."""
        return maintenance.evaluate_endpoint_health(self.context, self._outcomes)

    def purge_expired(
        self, *, batch: int = 5000, progress: Callable[[int], None] | None = None
    ) -> tuple[int, int]:
        """Delete attempts and finished messages older than the retention
        period; a message with a pending delivery is never deleted.

        Works in batches of ``batch`` rows, one short transaction each, until
        nothing old is left, so a busy database catches up in one run without
        holding locks for long. Returns ``(attempts, messages)`` deleted;
        ``progress(n)`` is called with the rows each batch deleted.
        """
        return maintenance.purge_expired(self.context, batch=batch, progress=progress)

    # -- API keys ---------------------------------------------------------------------------------

    def create_api_key(self, *, tenant: str | None = None, name: str = "") -> tuple[ApiKey, str]:
        """Create a management API key; returns it and its plain text (shown once).

        ``tenant`` None makes an admin key that sees every tenant.
        """
        return api_keys.create(self.context, tenant=tenant, name=name)

    def authenticate(self, plain: str) -> ApiKey | None:
        """The API key matching ``plain``, or None. A key found live is
        trusted for ``KEY_CACHE_SECONDS`` without reading it again; one
        revoked through this producer stops at once."""
        return api_keys.authenticate(self.context, plain)

    def remembered_key(self, plain: str) -> ApiKey | None:
        """The API key ``plain`` if :meth:`authenticate` found it live a
        moment ago, without reading the database (None: not remembered)."""
        return api_keys.remembered(self.context, plain)

    def has_admin_key(self) -> bool:
        """Whether at least one live admin key exists."""
        return api_keys.has_admin_key(self.context)

    def list_api_keys(self) -> list[ApiKey]:
        """Every API key not revoked, newest first; only their prefix is kept,
        never the plain key."""
        return api_keys.list_live(self.context)

    def revoke_api_key(self, key_id: str) -> ApiKey:
        """Revoke an API key: it authenticates no more (NotFoundError for an
        unknown id, InvalidStateError for a key already revoked)."""
        return api_keys.revoke(self.context, key_id)
