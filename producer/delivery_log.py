"""The delivery log: messages, deliveries and attempts to read, and the
operator's actions on them (retry a delivery, resend a message to an
endpoint, recover an endpoint's failed deliveries)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from producer.context import Context
from producer.errors import InvalidStateError, NotFoundError
from producer.ids import new_id
from producer.models import AttemptRow, DeliveryRow
from producer.sending import Draft, body_for, message_data, message_of, schemas_of
from producer.store import DeliveryFilter, MessageFilter
from producer.types import Attempt, Delivery, Message, Page, snapshot

__all__ = [
    "attempt_of",
    "delivery_of",
    "get_delivery",
    "get_delivery_payload",
    "get_message",
    "list_attempts",
    "list_deliveries",
    "list_messages",
    "recover_endpoint",
    "resend_message",
    "retry_delivery",
]

RECOVER_BATCH = 1000
"""Failed deliveries requeued per transaction by ``recover_endpoint``."""


def get_message(ctx: Context, message_id: str, *, tenant: str | None) -> Message:
    """A message with its exact payload."""
    with ctx.store.reading() as s:
        row = ctx.store.get_message(s, message_id, tenant=tenant)
        count = ctx.store.count_deliveries(s, [row.id]).get(row.id, 0)
        return message_of(row, count)


def list_messages(
    ctx: Context, filters: MessageFilter, *, limit: int, cursor: str | None
) -> Page[Message]:
    """Messages, newest first, filtered."""
    with ctx.store.reading() as s:
        rows, next_cursor = ctx.store.list_messages(s, filters, limit=limit, cursor=cursor)
        counts = ctx.store.count_deliveries(s, [r.id for r in rows])
        return Page([message_of(r, counts.get(r.id, 0)) for r in rows], next_cursor)


def get_delivery(ctx: Context, delivery_id: str, *, tenant: str | None) -> Delivery:
    """A delivery: one message to one endpoint."""
    with ctx.store.reading() as s:
        return delivery_of(ctx.store.get_delivery(s, delivery_id, tenant=tenant))


def list_deliveries(
    ctx: Context, filters: DeliveryFilter, *, limit: int, cursor: str | None
) -> Page[Delivery]:
    """The delivery log, newest first."""
    with ctx.store.reading() as s:
        rows, next_cursor = ctx.store.list_deliveries(s, filters, limit=limit, cursor=cursor)
        return Page([delivery_of(r) for r in rows], next_cursor)


def get_delivery_payload(ctx: Context, delivery_id: str, *, tenant: str | None) -> bytes:
    """The exact body a delivery sends."""
    with ctx.store.reading() as s:
        row = ctx.store.get_delivery(s, delivery_id, tenant=tenant)
        if row.payload is not None:
            return row.payload
        return ctx.store.get_message(s, row.message_id, tenant=None).payload


def list_attempts(ctx: Context, delivery_id: str, *, tenant: str | None) -> list[Attempt]:
    """Every attempt of a delivery, oldest first."""
    with ctx.store.reading() as s:
        ctx.store.get_delivery(s, delivery_id, tenant=tenant)
        return [attempt_of(r) for r in ctx.store.list_attempts(s, delivery_id)]


# -- actions -----------------------------------------------------------------------


def retry_delivery(ctx: Context, delivery_id: str, *, tenant: str | None, force: bool) -> Delivery:
    """Put a delivery back in the queue, due now, with trigger ``manual``."""
    now = ctx.clock()
    with ctx.waking_transaction() as s:
        row = ctx.store.get_delivery(s, delivery_id, tenant=tenant, lock=True)
        try:
            ctx.store.get_endpoint(s, row.endpoint_id)
        except NotFoundError:
            # The delivery is still visible in the log; its endpoint is gone,
            # and a pending delivery to it would never be sent.
            raise InvalidStateError(
                f"delivery {delivery_id} cannot be retried: its endpoint was deleted"
            ) from None
        _check_not_sending(row)
        if row.status == "succeeded" and not force:
            raise InvalidStateError(
                f"delivery {delivery_id} already succeeded; pass force to send it again"
            )
        return _requeue(ctx, s, row, now)


def resend_message(
    ctx: Context, message_id: str, endpoint_id: str, *, tenant: str | None
) -> Delivery:
    """Send a message to one endpoint again now, reusing its delivery or
    creating one (rendered as ``send`` would) when the endpoint never had it."""
    now = ctx.clock()
    with ctx.waking_transaction() as s:
        message = ctx.store.get_message(s, message_id, tenant=tenant)
        endpoint = ctx.store.get_endpoint(s, endpoint_id, tenant=message.tenant)
        rows, _ = ctx.store.list_deliveries(
            s, DeliveryFilter(message_id=message.id, endpoint_id=endpoint.id), limit=1
        )
        if rows:
            row = rows[0]
            _check_not_sending(row)
        else:
            draft = snapshot(
                Draft,
                message,
                data=message_data(message.payload),
                schemas=schemas_of(ctx, s, message.event_type),
            )
            row = DeliveryRow(
                id=new_id("dlv"),
                message_id=message.id,
                endpoint_id=endpoint.id,
                tenant=message.tenant,
                event_type=message.event_type,
                payload=body_for(ctx, draft, endpoint.version),
                attempt_count=0,
                created_at=now,
            )
            s.add(row)
        return _requeue(ctx, s, row, now)


def recover_endpoint(
    ctx: Context,
    endpoint_id: str,
    *,
    since: datetime,
    until: datetime | None,
    tenant: str | None,
    progress: Callable[[int], None] | None = None,
    batch: int = RECOVER_BATCH,
) -> int:
    """Requeue every ``failed`` delivery of an endpoint created in
    ``[since, until)``, due now; returns how many.

    Works in batches of ``batch`` deliveries, one short transaction each,
    calling ``progress(n)`` after each: workers start on the first batch
    while the rest is requeued, and no lock is held for long.
    """
    failed = DeliveryFilter(since=since, until=until, endpoint_id=endpoint_id, status="failed")
    with ctx.store.transaction() as s:
        ctx.store.get_endpoint(s, endpoint_id, tenant=tenant)
    return requeue_matching(ctx, failed, tenant=tenant, progress=progress, batch=batch)


def requeue_matching(
    ctx: Context,
    filters: DeliveryFilter,
    event_types: Sequence[str] | None = None,
    *,
    tenant: str | None,
    progress: Callable[[int], None] | None = None,
    batch: int = RECOVER_BATCH,
) -> int:
    """Requeue, due now, every delivery of a live endpoint that ``filters``
    (and ``event_types``, when given) let through and that is still in
    ``filters.status``; returns how many.

    Works in batches of ``batch`` deliveries, one short transaction each
    (re-checking that ``tenant`` may see ``filters.endpoint_id``), calling
    ``progress(n)`` after each: workers start on the first batch while the
    rest is requeued, and no lock is held for long.
    """
    total = 0
    after: str | None = None
    while True:
        with ctx.store.transaction() as s:
            if filters.endpoint_id is not None and tenant is not None:
                ctx.store.get_endpoint(s, filters.endpoint_id, tenant=tenant)
            count, after = ctx.store.requeue_deliveries(
                s, filters, event_types, ctx.clock(), after=after, limit=batch
            )
            if count:
                ctx.store.notify_due(s)
        if count:
            ctx.hooks.wake()
            total += count
            if progress is not None:
                progress(count)
        if after is None:
            return total


def _check_not_sending(row: DeliveryRow) -> None:
    if row.status == "sending":
        raise InvalidStateError(f"delivery {row.id} is being sent right now")


def _requeue(ctx: Context, s: Session, row: DeliveryRow, now: datetime) -> Delivery:
    """Make a delivery pending, due ``now``, trigger ``manual``; wake workers on commit."""
    row.status = "pending"
    row.next_attempt_at = now
    row.next_trigger = "manual"
    row.updated_at = now
    ctx.store.notify_due(s)
    s.flush()
    return delivery_of(row)


# -- snapshots ---------------------------------------------------------------------


def delivery_of(row: DeliveryRow) -> Delivery:
    """The public snapshot of a delivery row."""
    return snapshot(Delivery, row)


def attempt_of(row: AttemptRow) -> Attempt:
    """The public snapshot of an attempt row."""
    return snapshot(Attempt, row)
