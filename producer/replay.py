"""Replay: what an endpoint missed over a window, and bulk retries.

``replay_endpoint`` creates a delivery for every message of a window that
the endpoint would get if it were sent now (its patterns, channels and
filter) and has none of, for instance messages sent before it subscribed
or while its filter refused them; with ``include_failed`` it also requeues
the failed ones. ``retry_deliveries`` requeues the deliveries the log's
filters select. Both work in batches, one short transaction each, so memory
stays bounded and workers start on the first batch while the rest is
done; running either again creates nothing new for what is already queued.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from producer.context import Context
from producer.delivery_log import requeue_matching
from producer.errors import ValidationError
from producer.ids import new_id
from producer.models import DeliveryRow
from producer.routing import receives, validate_event_type_name
from producer.sending import Draft, body_for, message_data, schemas_of
from producer.store import DeliveryFilter
from producer.types import ReplayResult, snapshot
from producer.validation import validate_aware

__all__ = ["REPLAY_BATCH", "RETRY_BATCH", "replay_endpoint", "retry_deliveries"]

REPLAY_BATCH = 500
"""Messages looked at per transaction: bounds memory by their payloads."""
RETRY_BATCH = 1000
"""Deliveries requeued per transaction."""
RETRYABLE = ("failed", "succeeded")


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
) -> ReplayResult:
    """Deliver to an endpoint every message created in ``[since, until)``
    (of ``event_types``, when given) that it would get now and has no
    delivery of; with ``include_failed``, requeue its failed deliveries of
    the window too. ``progress(n)`` is called with the messages looked at
    (then the deliveries requeued) of each batch."""
    since = _window(since, until)
    names = _event_types(event_types)
    created = 0
    after: str | None = None
    while True:
        now = ctx.clock()
        with ctx.store.transaction() as s:
            # Locked: two replays of one endpoint take turns, so neither
            # creates a delivery the other has just made.
            endpoint = ctx.store.get_endpoint(s, endpoint_id, tenant=tenant, lock=True)
            rows = ctx.store.messages_without_delivery(
                s, endpoint, since, until, names, after=after, limit=batch
            )
            schemas: dict[str, dict[str, Any]] = {}
            deliveries: list[DeliveryRow] = []
            for row in rows:
                data = message_data(row.payload)
                if not receives(
                    endpoint.event_types,
                    endpoint.channels,
                    endpoint.filter,
                    event_type=row.event_type,
                    message_channels=row.channels,
                    data=data,
                ):
                    continue
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
            s.add_all(deliveries)
            if deliveries:
                ctx.store.notify_due(s)
        if deliveries:
            ctx.hooks.wake()
        created += len(deliveries)
        if progress is not None:
            progress(len(rows))
        if len(rows) < batch:
            break
        after = rows[-1].id
    requeued = 0
    if include_failed:
        failed = DeliveryFilter(since=since, until=until, endpoint_id=endpoint_id, status="failed")
        requeued = requeue_matching(
            ctx, failed, names, tenant=tenant, progress=progress, batch=batch
        )
    return ReplayResult(created=created, requeued=requeued)


def retry_deliveries(
    ctx: Context,
    filters: DeliveryFilter,
    *,
    force: bool,
    progress: Callable[[int], None] | None = None,
    batch: int = RETRY_BATCH,
) -> int:
    """Requeue, due now, every delivery the log's ``filters`` select whose
    endpoint is not deleted; returns how many. ``filters.status`` is
    ``failed`` when not given; ``succeeded`` ones need ``force``.
    ``progress(n)`` is called with the count of each batch."""
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
    scoped = DeliveryFilter(
        filters.tenant,
        filters.event_type,
        filters.since,
        filters.until,
        filters.message_id,
        filters.endpoint_id,
        status=status,
    )
    return requeue_matching(ctx, scoped, tenant=None, progress=progress, batch=batch)


def _window(since: datetime, until: datetime | None) -> datetime:
    validate_aware(since, "since")
    validate_aware(until, "until")
    if since is None:
        raise ValidationError.for_field("since", "is required")
    if until is not None and until <= since:
        raise ValidationError.for_field("until", "must be later than since")
    return since


def _event_types(names: Sequence[str] | None) -> list[str] | None:
    if names is None:
        return None
    if isinstance(names, str):
        raise ValidationError.for_field("event_types", "must be a list of event type names")
    return [
        validate_event_type_name(name, f"event_types[{index}]") for index, name in enumerate(names)
    ]
