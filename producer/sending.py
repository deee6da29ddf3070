"""Sending: a message and one delivery per matching endpoint, in one transaction.

Also idempotency (a key replays the first request's message) and rendering:
:func:`render` is the one way a message becomes the bytes an endpoint
receives (converted to the version it pins, checked against that version's
schema, size-limited), used by ``send``, by a resend to an endpoint that
never had the message, and by the test send.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from producer.context import Context
from producer.errors import IdempotencyConflictError, PayloadTooLargeError, ValidationError
from producer.filters import evaluate
from producer.ids import new_id
from producer.models import MessageRow
from producer.payloads import compact_json, default_version, render_envelope, validate_data
from producer.queue import Job
from producer.routing import (
    MAX_MESSAGE_CHANNELS,
    matches,
    parsed_filter,
    shares_channel,
    validate_channels,
    validate_event_type_name,
)
from producer.store import DuplicateIdempotencyKey
from producer.types import DEFAULT_TENANT, Message, snapshot
from producer.validation import validate_json, validate_tenant, validate_text, validate_version

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

__all__ = [
    "Draft",
    "SendRequest",
    "asend",
    "body_for",
    "message_data",
    "message_of",
    "queueing",
    "render",
    "schemas_of",
    "send",
    "send_batch",
    "send_in",
]

MAX_ENDPOINT_IDS = 1000
# Where a transaction of our own collects the ids of the deliveries it queues.
_QUEUED = "webhooks.queued"


@dataclass(frozen=True)
class Draft:
    """What a message says, before it is rendered for an endpoint."""

    id: str
    event_type: str
    version: str
    created_at: datetime
    data: Any
    schemas: Mapping[str, Any]
    """The event type's JSON Schemas by version (empty for an unregistered type)."""


def render(ctx: Context, draft: Draft, version: str) -> bytes:
    """The envelope of ``draft`` in ``version``: its data converted along the
    registered converters when the versions differ, validated against that
    version's schema, and no larger than ``max_payload_bytes``."""
    data = draft.data
    if version != draft.version:
        data = ctx.converters.convert(draft.event_type, data, draft.version, version)
    if version in draft.schemas:
        validate_data(draft.schemas[version], data, event_type=draft.event_type, version=version)
    payload = render_envelope(draft.id, draft.event_type, version, draft.created_at, data)
    limit = ctx.settings.max_payload_bytes
    if len(payload) > limit:
        raise PayloadTooLargeError(
            f"the payload is {len(payload)} bytes, more than the limit of {limit} bytes"
        )
    return payload


def body_for(ctx: Context, draft: Draft, endpoint_version: str | None) -> bytes | None:
    """The body stored on a delivery: None when the endpoint reads the
    message's own version (the message's payload is sent), else its rendering."""
    if endpoint_version is None or endpoint_version == draft.version:
        return None
    return render(ctx, draft, endpoint_version)


def schemas_of(ctx: Context, s: Session, event_type: str) -> dict[str, Any]:
    """The JSON Schemas of an event type by version ({} when unregistered)."""
    rules = ctx.store.event_type_rules(s, event_type)
    return rules[1] if rules is not None else {}


# -- send ------------------------------------------------------------------------


@dataclass(frozen=True)
class SendRequest:
    """One event a caller asks to send to a tenant's matching endpoints."""

    event_type: str
    data: Any
    tenant: str | None = None
    version: str | None = None
    """The version ``data`` is in; default: the newest with a schema, else ``"1"``."""
    idempotency_key: str | None = None
    endpoint_ids: Sequence[str] | None = None
    """Send only to these of the tenant's endpoints."""
    channels: Sequence[str] | None = None
    """The channels it is sent on: endpoints subscribed to channels get it
    only when they share one."""


def send(ctx: Context, requests: Sequence[SendRequest], session: Session | None) -> list[Message]:
    """Send events in one transaction, all or none: in the caller's ``session``
    (workers wake when it commits) or in a transaction of our own.

    One event without a session is group-committed: concurrent callers of
    this process share a transaction (see :func:`send_batch`).
    """
    if session is None:
        if len(requests) == 1:
            return [ctx.sends.submit(requests[0], lambda batch: send_batch(ctx, batch))]
        with queueing(ctx, ctx.hooks.wake) as s:
            return [send_in(ctx, s, r) for r in requests]
    messages = [send_in(ctx, session, r) for r in requests]
    _wake_after_commit(ctx, session)
    return messages


@contextmanager
def queueing(ctx: Context, wake: Callable[[], object]) -> Iterator[Session]:
    """A transaction of our own for sends.

    What it queues goes straight to this process's worker when that worker
    can start it at once (``Worker.take_over``: no claim has to find it).
    Whatever is left wakes the workers: those of other processes through a
    notification in the transaction (PostgreSQL), and ``wake()`` is called
    once it committed.
    """
    taker = ctx.taker
    queued: list[str] = []
    taken: list[Job] = []
    try:
        with ctx.store.transaction() as s:
            s.info[_QUEUED] = queued
            yield s
            if taker is not None and queued:
                taken = taker.take_over(s, queued)
            if len(taken) < len(queued):
                ctx.store.notify_due(s)
    except BaseException:
        if taker is not None and taken:
            taker.give_back(taken)
        raise
    if taker is not None and taken:
        taker.hand_over(taken)
    if len(taken) < len(queued):
        wake()


def send_batch(
    ctx: Context, requests: list[SendRequest], *, wake: Callable[[], object] | None = None
) -> list[Message | BaseException]:
    """The events of concurrent callers in one transaction of our own, each
    independent of the others: an event that fails (bad input, an idempotency
    conflict, a statement the database refused) is rolled back to its
    savepoint and fails its own caller only. When the commit fails, every
    caller of the batch fails with it: nothing of the batch was kept.

    Once committed, ``wake()`` (default: wake this process's workers) is
    called if the batch queued deliveries its worker did not take over
    (see :func:`queueing`).
    """
    with queueing(ctx, wake or ctx.hooks.wake) as s:
        if len(requests) == 1:  # nothing to isolate it from: no savepoint
            return [send_in(ctx, s, requests[0])]
        outcomes: list[Message | BaseException] = []
        for request in requests:
            try:
                with s.begin_nested():
                    outcomes.append(send_in(ctx, s, request))
            except Exception as exc:
                outcomes.append(exc)
        return outcomes


async def asend(ctx: Context, request: SendRequest, session: AsyncSession | None) -> Message:
    """``send`` from async code: inside the caller's ``AsyncSession``, or in a
    transaction of our own, group-committed with concurrent sends: on the
    event loop for a local database (SQLite, a write of about a
    millisecond), in a thread otherwise."""
    if session is None:
        if ctx.local_database:
            loop = asyncio.get_running_loop()
            # Woken at the loop's next turn: the callers of the batch resume
            # (and answer theirs) before the worker claims.
            message: Message = await ctx.loop_sends.submit(
                request,
                lambda batch: send_batch(ctx, batch, wake=lambda: loop.call_soon(ctx.hooks.wake)),
            )
            return message
        [message] = await asyncio.to_thread(send, ctx, [request], None)
        return message
    message = await session.run_sync(lambda s: send_in(ctx, s, request))
    _wake_after_commit(ctx, session.sync_session)
    return message


def _wake_after_commit(ctx: Context, session: Session) -> None:
    event.listen(session, "after_commit", lambda _s: ctx.hooks.wake(), once=True)


def send_in(ctx: Context, s: Session, request: SendRequest) -> Message:
    """Store a message and its deliveries in the session ``s`` (in a
    ``webhooks.send`` span, whose trace context the message keeps, when traced)."""
    if ctx.tracing is None:
        return _store(ctx, s, request, None)
    with ctx.tracing.send_span(request.event_type, request.tenant or DEFAULT_TENANT) as span:
        message = _store(ctx, s, request, ctx.tracing.carrier(span))
        span.set_attributes(
            {"webhooks.message_id": message.id, "webhooks.deliveries": message.deliveries}
        )
        return message


def _store(
    ctx: Context, s: Session, request: SendRequest, trace_context: dict[str, str] | None
) -> Message:
    validate_json(request.data, "data")
    validate_json(request.endpoint_ids, "endpoint_ids")
    validate_text(request.idempotency_key, "idempotency_key")
    event_type, data, version = request.event_type, request.data, request.version
    idempotency_key, endpoint_ids = request.idempotency_key, request.endpoint_ids
    tenant = validate_tenant(request.tenant or DEFAULT_TENANT)
    validate_event_type_name(event_type)
    if version is not None:
        version = validate_version(version, "version")
    if endpoint_ids is not None:
        endpoint_ids = _check_ids(endpoint_ids)
    channels = validate_channels(request.channels, limit=MAX_MESSAGE_CHANNELS)
    request_hash: str | None = None
    if idempotency_key is not None:
        if not isinstance(idempotency_key, str) or not 1 <= len(idempotency_key) <= 256:
            raise ValidationError.for_field("idempotency_key", "must be 1-256 characters")
        request_hash = _request_hash(event_type, data, version, endpoint_ids, channels)
        existing = ctx.store.message_by_idempotency_key(s, tenant, idempotency_key)
        if existing is not None:
            return _replay(ctx, s, existing, request_hash)

    targets = None
    if endpoint_ids is None:  # its endpoints by the routing index, in the same query
        rules, routes = ctx.store.rules_and_receiving(s, event_type, tenant, channels)
        targets = [(i, version, parsed_filter(stored)) for i, version, stored in routes]
    else:
        rules = ctx.store.event_type_rules(s, event_type)
    archived, schemas = rules if rules is not None else (False, {})
    if archived:
        raise ValidationError.for_field("event_type", f"{event_type} is archived")
    now = ctx.clock()
    draft = Draft(
        id=new_id("msg"),
        event_type=event_type,
        version=version or default_version(schemas),
        created_at=now,
        data=data,
        schemas=schemas,
    )
    payload = render(ctx, draft, draft.version)

    bodies: dict[str | None, bytes | None] = {}
    deliveries: list[dict[str, Any]] = []  # by column: inserted as they are
    filtered = 0
    if targets is None:
        assert endpoint_ids is not None
        targets = _named_targets(ctx, s, tenant, event_type, channels, endpoint_ids)
    for endpoint_id, endpoint_version, filter_ in targets:
        if filter_ is not None and not evaluate(filter_, data):
            filtered += 1
            continue
        if endpoint_version not in bodies:  # each version is rendered once
            bodies[endpoint_version] = body_for(ctx, draft, endpoint_version)
        deliveries.append(
            {
                "id": new_id("dlv"),
                "message_id": draft.id,
                "endpoint_id": endpoint_id,
                "tenant": tenant,
                "event_type": event_type,
                "status": "pending",
                "payload": bodies[endpoint_version],
                "attempt_count": 0,
                "next_attempt_at": now,
                "next_trigger": "scheduled",
                "created_at": now,
                "updated_at": now,
            }
        )
    skipped = {"filter": filtered} if filtered else None
    message = {
        "id": draft.id,
        "tenant": tenant,
        "event_type": event_type,
        "version": draft.version,
        "payload": payload,
        "idempotency_key": idempotency_key,
        "request_hash": request_hash,
        "trace_context": trace_context,
        "channels": channels,
        "skipped": skipped,
        "created_at": now,
    }
    try:
        ctx.store.insert_message(s, message, deliveries)
    except DuplicateIdempotencyKey:
        assert idempotency_key is not None and request_hash is not None
        existing = ctx.store.message_by_idempotency_key(s, tenant, idempotency_key)
        if existing is None:  # the other transaction rolled back meanwhile
            raise IdempotencyConflictError(
                "a concurrent request with the same idempotency key failed; retry"
            ) from None
        return _replay(ctx, s, existing, request_hash)
    if deliveries:
        queued = s.info.get(_QUEUED)
        if queued is None:  # the caller's transaction: notify other processes with it
            ctx.store.notify_due(s)
        else:
            queued.extend(d["id"] for d in deliveries)
    return Message(
        id=draft.id,
        tenant=tenant,
        event_type=event_type,
        version=draft.version,
        created_at=now,
        payload=payload,
        idempotency_key=idempotency_key,
        deliveries=len(deliveries),
        channels=list(channels),
        skipped=dict(skipped or {}),
    )


def _named_targets(
    ctx: Context,
    s: Session,
    tenant: str,
    event_type: str,
    channels: Sequence[str],
    endpoint_ids: Sequence[str],
) -> list[tuple[str, str | None, Any]]:
    """``(id, version, payload filter)`` of those of ``endpoint_ids`` (each of
    which must be the tenant's) a message goes to by event type and channels,
    before their filters."""
    endpoints = ctx.store.endpoints_of_tenant(s, tenant, endpoint_ids)
    missing = sorted(set(endpoint_ids) - {e.id for e in endpoints})
    if missing:
        raise ValidationError.for_field(
            "endpoint_ids", f"unknown endpoint(s) of tenant {tenant}: {', '.join(missing)}"
        )
    return [
        (e.id, e.version, e.filter)
        for e in endpoints
        if matches(e.event_types, event_type) and shares_channel(e.channels, channels)
    ]


# -- idempotency -------------------------------------------------------------------


def _replay(ctx: Context, s: Session, existing: MessageRow, request_hash: str) -> Message:
    """The message stored under an idempotency key, if the request is the same."""
    if existing.request_hash != request_hash:
        raise IdempotencyConflictError(
            f"idempotency key {existing.idempotency_key!r} was already used "
            "with a different request",
            details=[{"field": "idempotency_key", "message": f"used by {existing.id}"}],
        )
    count = ctx.store.count_deliveries(s, [existing.id]).get(existing.id, 0)
    return message_of(existing, count)


def _request_hash(
    event_type: str,
    data: Any,
    version: str | None,
    endpoint_ids: Sequence[str] | None,
    channels: Sequence[str],
) -> str:
    request = {
        "event_type": event_type,
        "data": data,
        "version": version,
        "endpoint_ids": sorted(endpoint_ids) if endpoint_ids is not None else None,
    }
    if channels:  # absent otherwise: keys stored before channels existed keep their hash
        request["channels"] = sorted(channels)
    try:
        body = compact_json(request)
    except (TypeError, ValueError) as exc:
        raise ValidationError.for_field("data", f"is not JSON-serialisable: {exc}") from exc
    return hashlib.sha256(body).hexdigest()


def _check_ids(ids: Sequence[str]) -> list[str]:
    if isinstance(ids, str) or not all(isinstance(i, str) for i in ids):
        raise ValidationError.for_field("endpoint_ids", "must be a list of endpoint ids")
    if len(ids) > MAX_ENDPOINT_IDS:
        raise ValidationError.for_field("endpoint_ids", f"at most {MAX_ENDPOINT_IDS} ids")
    return list(dict.fromkeys(ids))


# -- snapshots ---------------------------------------------------------------------


def message_data(payload: bytes) -> Any:
    """The ``data`` of a stored envelope."""
    return json.loads(payload)["data"]


def message_of(row: MessageRow, deliveries: int) -> Message:
    """The public snapshot of a message row with its number of deliveries."""
    return snapshot(Message, row, deliveries=deliveries, skipped=dict(row.skipped or {}))
