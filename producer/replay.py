"""Replay: what an endpoint missed over a window, and bulk retries.

``replay_endpoint`` creates a delivery for every message of a window that
the endpoint would get if it were sent now (its patterns, channels and
filter) and has none of, for instance messages sent before it subscribed
or while its filter refused them; with ``include_failed`` it also requeues
the failed ones. ``retry_deliveries`` requeues the deliveries the log's
filters select. Both work in batches, one short transaction each, so memory
stays bounded and workers start on the first batch while the rest is
done; running either again creates nothing new for what is already queued.
With ``dry_run`` they walk the same batches and count what they would do,
writing nothing.

Each batch is a function of a session and a cursor (:func:`replay_batch`,
:func:`requeue_batch`), so a persisted job (:mod:`producer.jobs`) can run
the very same steps and save its cursor in the batch's own transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from producer.context import Context
from producer.errors import ValidationError
from producer.ids import new_id
from producer.models import DeliveryRow, EndpointRow, MessageRow
from producer.routing import receives, validate_event_type_name
from producer.sending import Draft, body_for, message_data, schemas_of
from producer.store import DeliveryFilter
from producer.types import ReplayResult, snapshot
from producer.validation import validate_aware

__all__ = [
    "REPLAY_BATCH",
    "RETRY_BATCH",
    "Batch",
    "ReplayWindow",
    "check_retry",
    "replay_batch",
    "replay_endpoint",
    "replay_window",
    "requeue_batch",
    "retry_deliveries",
]

REPLAY_BATCH = 500
"""Messages looked at per transaction: bounds memory by their payloads."""
RETRY_BATCH = 1000
"""Deliveries requeued per transaction."""
RETRYABLE = ("failed", "succeeded")


@dataclass(frozen=True)
class ReplayWindow:
    """What a replay looks at, checked: an endpoint's messages of ``[since, until)``."""

    endpoint_id: str
    since: datetime
    until: datetime | None
    event_types: list[str] | None
    """Exact event type names, or None for all."""
    tenant: str | None
    """The caller's tenant: another tenant's endpoint is not found."""

    def failed(self) -> DeliveryFilter:
        """The endpoint's failed deliveries of the window (``include_failed``)."""
        return DeliveryFilter(
            since=self.since, until=self.until, endpoint_id=self.endpoint_id, status="failed"
        )


@dataclass(frozen=True)
class Batch:
    """What one batch did (or, in a dry run, would do)."""

    looked_at: int
    """Messages scanned, or deliveries selected."""
    changed: int
    """Deliveries created, or requeued."""
    after: str | None
    """The cursor of the next batch; None when this one was the last."""


def replay_window(
    endpoint_id: str,
    *,
    since: datetime,
    until: datetime | None,
    event_types: Sequence[str] | None,
    tenant: str | None,
) -> ReplayWindow:
    """A replay's window, validated (ValidationError naming the field otherwise)."""
    validate_aware(since, "since")
    validate_aware(until, "until")
    if since is None:
        raise ValidationError.for_field("since", "is required")
    if until is not None and until <= since:
        raise ValidationError.for_field("until", "must be later than since")
    return ReplayWindow(endpoint_id, since, until, _event_types(event_types), tenant)


def replay_endpoint(
    ctx: Context,
    endpoint_id: str,
    *,
    since: datetime,
    until: datetime | None,
    event_types: Sequence[str] | None,
    include_failed: bool,
    tenant: str | None,
    progress: Callable[[int], None] | None = None,
    batch: int = REPLAY_BATCH,
    dry_run: bool = False,
) -> ReplayResult:
    """Deliver to an endpoint every message created in ``[since, until)``
    (of ``event_types``, when given) that it would get now and has no
    delivery of; with ``include_failed``, requeue its failed deliveries of
    the window too. ``progress(n)`` is called with the messages looked at
    (then the deliveries requeued) of each batch. With ``dry_run``, the
    counts are what it would create and requeue; nothing is written."""
    window = replay_window(
        endpoint_id, since=since, until=until, event_types=event_types, tenant=tenant
    )
    created = _drive(
        ctx,
        lambda s, after: replay_batch(ctx, s, window, after=after, limit=batch, dry_run=dry_run),
        progress=progress,
        count=lambda b: b.looked_at,
        dry_run=dry_run,
    )
    requeued = 0
    if include_failed:
        requeued = _drive(
            ctx,
            lambda s, after: requeue_batch(
                ctx,
                s,
                window.failed(),
                window.event_types,
                tenant=tenant,
                after=after,
                limit=batch,
                dry_run=dry_run,
            ),
            progress=progress,
            count=lambda b: b.changed,
            dry_run=dry_run,
        )
    return ReplayResult(created=created, requeued=requeued)


def replay_batch(
    ctx: Context,
    s: Session,
    window: ReplayWindow,
    *,
    after: str | None,
    limit: int,
    dry_run: bool = False,
) -> Batch:
    """In the session ``s``: the deliveries of the next ``limit`` messages
    of the window (past the message id ``after``) that the endpoint would
    get and has none of, created (counted only, in a dry run)."""
    # Locked for real: two replays of one endpoint take turns, so neither
    # creates a delivery the other has just made.
    endpoint = ctx.store.get_endpoint(s, window.endpoint_id, tenant=window.tenant, lock=not dry_run)
    rows = ctx.store.messages_without_delivery(
        s, endpoint, window.since, window.until, window.event_types, after=after, limit=limit
    )
    wanted: list[tuple[MessageRow, Any]] = []
    for row in rows:
        data = message_data(row.payload)
        if receives(
            endpoint.event_types,
            endpoint.channels,
            endpoint.filter,
            event_type=row.event_type,
            message_channels=row.channels,
            data=data,
        ):
            wanted.append((row, data))
    if not dry_run and wanted:
        s.add_all(_deliveries(ctx, s, endpoint, wanted))
        ctx.store.notify_due(s)
    return Batch(len(rows), len(wanted), rows[-1].id if len(rows) == limit else None)


def _deliveries(
    ctx: Context, s: Session, endpoint: EndpointRow, wanted: list[tuple[MessageRow, Any]]
) -> list[DeliveryRow]:
    """New deliveries, due now, of these messages (and their data) to ``endpoint``."""
    now = ctx.clock()
    schemas: dict[str, dict[str, Any]] = {}
    deliveries: list[DeliveryRow] = []
    for row, data in wanted:
        if row.event_type not in schemas:
            schemas[row.event_type] = schemas_of(ctx, s, row.event_type)
        draft = snapshot(Draft, row, data=data, schemas=schemas[row.event_type])
        deliveries.append(
            DeliveryRow(
                id=new_id("dlv"),
                message_id=row.id,
                endpoint_id=endpoint.id,
                tenant=endpoint.tenant,
                event_type=row.event_type,
                status="pending",
                payload=body_for(ctx, draft, endpoint.version),
                attempt_count=0,
                next_attempt_at=now,
                next_trigger="manual",
                created_at=now,
                updated_at=now,
            )
        )
    return deliveries


def requeue_batch(
    ctx: Context,
    s: Session,
    filters: DeliveryFilter,
    event_types: Sequence[str] | None,
    *,
    tenant: str | None,
    after: str | None,
    limit: int,
    dry_run: bool = False,
) -> Batch:
    """In the session ``s``: the next ``limit`` deliveries ``filters`` select
    (past the delivery id ``after``) back to pending, due now (counted
    only, in a dry run), re-checking that ``tenant`` may see
    ``filters.endpoint_id``."""
    if filters.endpoint_id is not None and tenant is not None:
        ctx.store.get_endpoint(s, filters.endpoint_id, tenant=tenant)
    count, last = ctx.store.requeue_deliveries(
        s, filters, event_types, ctx.clock(), after=after, limit=limit, dry_run=dry_run
    )
    if count and not dry_run:
        ctx.store.notify_due(s)
    return Batch(count, count, last)


def retry_deliveries(
    ctx: Context,
    filters: DeliveryFilter,
    *,
    force: bool,
    progress: Callable[[int], None] | None = None,
    batch: int = RETRY_BATCH,
    dry_run: bool = False,
) -> int:
    """Requeue, due now, every delivery the log's ``filters`` select whose
    endpoint is not deleted; returns how many (would be, with ``dry_run``).
    ``filters.status`` is ``failed`` when not given; ``succeeded`` ones need
    ``force``. ``progress(n)`` is called with the count of each batch."""
    scoped = check_retry(ctx, filters, force=force)
    return _drive(
        ctx,
        lambda s, after: requeue_batch(
            ctx, s, scoped, None, tenant=None, after=after, limit=batch, dry_run=dry_run
        ),
        progress=progress,
        count=lambda b: b.changed,
        dry_run=dry_run,
    )


def check_retry(ctx: Context, filters: DeliveryFilter, *, force: bool) -> DeliveryFilter:
    """The filters of a bulk retry, checked, with the status made explicit."""
    status = filters.status or "failed"
    if status not in RETRYABLE:
        raise ValidationError.for_field("status", "only failed or succeeded deliveries are retried")
    if status == "succeeded" and not force:
        raise ValidationError.for_field("force", "must be true to send succeeded deliveries again")
    if filters.endpoint_id is not None and filters.tenant is not None:
        # A tenant's caller naming another tenant's endpoint gets the
        # answer of any unknown endpoint.
        with ctx.store.transaction() as s:
            ctx.store.get_endpoint(s, filters.endpoint_id, tenant=filters.tenant)
    return DeliveryFilter(
        filters.tenant,
        filters.event_type,
        filters.since,
        filters.until,
        filters.message_id,
        filters.endpoint_id,
        status=status,
    )


def _drive(
    ctx: Context,
    step: Callable[[Session, str | None], Batch],
    *,
    progress: Callable[[int], None] | None,
    count: Callable[[Batch], int],
    dry_run: bool,
) -> int:
    """Run ``step`` batch after batch, one transaction each (a read-only
    one in a dry run: it waits for no writer), until the last; returns the
    deliveries changed. Workers wake after each batch that changed some, so
    they start while the rest is done."""
    total = 0
    after: str | None = None
    while True:
        with ctx.store.reading() if dry_run else ctx.store.transaction() as s:
            done = step(s, after)
        if done.changed and not dry_run:
            ctx.hooks.wake()
        total += done.changed
        if progress is not None and count(done):
            progress(count(done))
        if done.after is None:
            return total
        after = done.after


def _event_types(names: Sequence[str] | None) -> list[str] | None:
    if names is None:
        return None
    if isinstance(names, str):
        raise ValidationError.for_field("event_types", "must be a list of event type names")
    return [
        validate_event_type_name(name, f"event_types[{index}]") for index, name in enumerate(names)
    ]
