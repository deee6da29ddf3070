"""The queue half of the store: claim, lease, finish and release deliveries.

Every query the delivery worker makes, behind named methods that take the
caller's session and return typed rows, so the worker never reads a raw
result tuple. Endpoint and message queries for the rest of the library live
in :mod:`producer.store`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from sqlalchemy import Integer, Select, and_, bindparam, case, exists, func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from producer.credentials import open_credentials
from producer.errors import internal_error
from producer.models import AttemptRow, DeliveryRow, EndpointRow, MessageRow, table_of
from producer.types import Attempt, DeliveryStatus

__all__ = [
    "Candidate",
    "DeliveryUpdate",
    "EndpointLimits",
    "Job",
    "OpenSecrets",
    "Queue",
    "Taker",
]


class Candidate(NamedTuple):
    """A due delivery and what the claim needs to know of its endpoint."""

    id: str
    endpoint_id: str
    tenant: str
    max_in_flight: int | None
    ordering: str
    consecutive_failures: int
    timeout_seconds: float | None


class EndpointLimits(NamedTuple):
    """What caps the deliveries of one endpoint in flight at once."""

    max_in_flight: int | None
    ordering: str
    consecutive_failures: int


@dataclass(frozen=True)
class Job:
    """A leased delivery with everything its next attempt needs."""

    delivery_id: str
    message_id: str
    endpoint_id: str
    tenant: str
    event_type: str
    attempt_number: int
    trigger: str
    body: bytes
    """The delivery's own rendering, or else the message's envelope."""
    version: str
    url: str
    headers: dict[str, str]
    scheme: str
    timeout_seconds: float | None
    retry_schedule: list[float] | None
    rate_limit_per_second: float | None
    secrets: list[str]
    """Plain secrets to sign with: the current one, then those in their grace period."""
    trace_context: dict[str, str] | None = None
    """The W3C trace context of the message's ``send`` span, when it was traced."""
    forward_traceparent: bool = False
    """Whether the endpoint gets the attempt's ``traceparent``."""
    proxy_url: str | None = None
    """The endpoint's own egress proxy (opened), if it has one."""
    auth: dict[str, str] | None = None
    """How the receiver authenticates requests (opened), if it does."""
    tls: dict[str, str] | None = None
    """The client certificate and key (opened) the receiver asks for, if any."""
    unusable: str | None = None
    """Why this delivery cannot be sent (its secrets or headers could not be
    opened); its attempt then fails with this error without a request."""


class Taker(Protocol):
    """A worker of this process that takes deliveries straight from the
    transaction of the send that queued them (``producer.worker.Worker``)."""

    def take_over(self, s: Session, delivery_ids: Sequence[str]) -> list[Job]:
        """Lease what it can start now of ``delivery_ids`` in ``s``: their jobs."""
        ...

    def hand_over(self, jobs: list[Job]) -> None:
        """Start the jobs once their transaction committed."""
        ...

    def give_back(self, jobs: list[Job]) -> None:
        """Forget the jobs of a transaction that rolled back."""
        ...


@dataclass(frozen=True)
class DeliveryUpdate:
    """A delivery's state after an attempt by the worker ``owner``."""

    delivery_id: str
    owner: str
    status: DeliveryStatus
    next_attempt_at: datetime | None
    attempted_at: datetime
    status_code: int | None
    error: str | None


# Job's fields by name; the sealed secrets come last.
_JOB_COLUMNS = (
    DeliveryRow.id.label("delivery_id"),
    DeliveryRow.message_id,
    DeliveryRow.endpoint_id,
    DeliveryRow.tenant,
    DeliveryRow.event_type,
    (DeliveryRow.attempt_count + 1).label("attempt_number"),
    DeliveryRow.next_trigger.label("trigger"),
    func.coalesce(DeliveryRow.payload, MessageRow.payload).label("body"),
    case((DeliveryRow.payload.is_not(None), EndpointRow.version), else_=MessageRow.version).label(
        "version"
    ),
    EndpointRow.url,
    EndpointRow.headers,
    EndpointRow.signature_scheme.label("scheme"),
    EndpointRow.timeout_seconds,
    EndpointRow.retry_schedule,
    EndpointRow.rate_limit_per_second,
    MessageRow.trace_context,
    EndpointRow.forward_traceparent,
    EndpointRow.proxy_url,
    EndpointRow.auth,
    EndpointRow.tls,
    EndpointRow.secret,
    EndpointRow.previous_secrets,
)
OpenSecrets = Callable[[str, list[Any]], list[str]]
"""``(sealed current secret, stored previous secrets) -> plain live secrets``."""

_table = table_of(DeliveryRow)
# Whether the delivery's endpoint was deleted (correlated to the updated row):
# a delivery that would go back to the queue is cancelled instead, since
# deleting only cancels what is pending at that moment, not what is in flight.
_ENDPOINT_DELETED = (
    select(EndpointRow.id)
    .where(EndpointRow.id == _table.c.endpoint_id, EndpointRow.deleted_at.is_not(None))
    .exists()
)
_RETRY_CANCELLED = and_(
    bindparam("b_status", type_=_table.c.status.type) == "pending", _ENDPOINT_DELETED
)
# Written for a whole batch in one executemany; only a delivery still leased
# to the same worker changes, so a worker that lost its lease cannot
# overwrite a newer state.
_FINISH = (
    _table.update()
    .where(
        _table.c.id == bindparam("b_id"),
        _table.c.status == "sending",
        _table.c.lease_owner == bindparam("b_owner"),
    )
    .values(
        status=case(
            (_RETRY_CANCELLED, "cancelled"), else_=bindparam("b_status", type_=_table.c.status.type)
        ),
        attempt_count=_table.c.attempt_count + 1,
        # Typed, or PostgreSQL reads a CASE of two NULLs as text.
        next_attempt_at=case(
            (_RETRY_CANCELLED, None),
            else_=bindparam("b_next", type_=_table.c.next_attempt_at.type),
        ),
        next_trigger="scheduled",
        last_attempt_at=bindparam("b_last"),
        last_status_code=bindparam("b_code"),
        last_error=bindparam("b_error"),
        lease_owner=None,
        lease_expires_at=None,
        updated_at=bindparam("b_last"),
    )
)

# The claim's statements, built once with bound parameters. Building a
# statement and its cache key anew each time costs more Python than SQLite
# takes to run it; and they run through the session's connection, as plain
# Core, skipping the ORM's execution layer (no entities are loaded).
_endpoints = table_of(EndpointRow)
_NOW = bindparam("b_now", type_=_table.c.lease_expires_at.type)


def _sending_counts(exclude_owner: bool) -> Select[Any]:
    stmt = select(_table.c.endpoint_id, func.count()).where(
        _table.c.status == "sending", _table.c.lease_expires_at >= _NOW
    )
    if exclude_owner:
        stmt = stmt.where(_table.c.lease_owner != bindparam("b_owner"))
    return stmt.group_by(_table.c.endpoint_id)


_SENDING_COUNTS = {True: _sending_counts(True), False: _sending_counts(False)}


@functools.cache
def _due_candidates(
    exclude_endpoints: bool, exclude_tenants: bool, row_locks: bool, among: bool = False
) -> Select[Any]:
    """Due deliveries of enabled endpoints, oldest first. With ``row_locks``
    a claim locks the deliveries it reads (``SKIP LOCKED``); ``among`` a
    sender's own deliveries (no other transaction sees them), it locks their
    endpoints instead, as ``Queue.lock_endpoints`` would."""
    stmt = (
        select(
            _table.c.id,
            _table.c.endpoint_id,
            _table.c.tenant,
            _endpoints.c.max_in_flight,
            _endpoints.c.ordering,
            _endpoints.c.consecutive_failures,
            _endpoints.c.timeout_seconds,
        )
        .join(_endpoints, _endpoints.c.id == _table.c.endpoint_id)
        .where(
            _table.c.status == "pending",
            _table.c.next_attempt_at <= _NOW,
            _endpoints.c.status == "enabled",
            _endpoints.c.deleted_at.is_(None),
        )
    )
    if exclude_endpoints:
        stmt = stmt.where(_table.c.endpoint_id.not_in(bindparam("b_endpoints", expanding=True)))
    if exclude_tenants:
        stmt = stmt.where(_table.c.tenant.not_in(bindparam("b_tenants", expanding=True)))
    if among:
        stmt = stmt.where(_table.c.id.in_(bindparam("b_ids", expanding=True)))
    # A sender's own deliveries, few, are taken in the order it queued them.
    order = (_table.c.next_attempt_at, _table.c.id) if among else (_table.c.next_attempt_at,)
    stmt = stmt.order_by(*order).limit(bindparam("b_limit", type_=Integer))
    if row_locks:
        stmt = stmt.with_for_update(of=_endpoints if among else _table, skip_locked=True)
    return stmt


_MARK_SENDING = (
    _table.update()
    .where(_table.c.id.in_(bindparam("b_ids", expanding=True)), _table.c.status == "pending")
    .values(
        status="sending",
        lease_owner=bindparam("b_owner"),
        lease_expires_at=bindparam("b_until", type_=_table.c.lease_expires_at.type),
        updated_at=bindparam("b_now", type_=_table.c.updated_at.type),
    )
)

_INSERT_ATTEMPT = table_of(AttemptRow).insert()

_LOCK_ENDPOINTS = (
    select(_endpoints.c.id)
    .where(_endpoints.c.id.in_(bindparam("b_ids", expanding=True)))
    .order_by(_endpoints.c.id)
    .with_for_update(skip_locked=True)
)


def _leased_by_others(deliveries: Any) -> Any:
    """Whether a row of ``deliveries`` (the table or an alias) is under the
    live lease of a worker other than ``b_owner``."""
    return and_(
        deliveries.c.status == "sending",
        deliveries.c.lease_owner != bindparam("b_owner"),
        deliveries.c.lease_expires_at >= _NOW,
    )


_LEASED_BY_OTHERS = (
    select(_table.c.endpoint_id)
    .where(
        _table.c.endpoint_id.in_(bindparam("b_ids", expanding=True)),
        _leased_by_others(_table),
    )
    .distinct()
)

_JOBS = (
    select(*_JOB_COLUMNS)
    .join(MessageRow, MessageRow.id == DeliveryRow.message_id)
    .join(EndpointRow, EndpointRow.id == DeliveryRow.endpoint_id)
    .where(DeliveryRow.id.in_(bindparam("b_ids", expanding=True)))
    .order_by(DeliveryRow.id)
)
# PostgreSQL leases and reads the jobs in one round trip (UPDATE ... FROM ...
# RETURNING); SQLite's RETURNING cannot name the joined tables.
_LEASE_RETURNING_JOBS = _MARK_SENDING.where(
    MessageRow.id == DeliveryRow.message_id, EndpointRow.id == DeliveryRow.endpoint_id
).returning(*_JOB_COLUMNS)
_held = _table.alias("held")
# Whether no other worker holds a live lease on the delivery's endpoint. In a
# statement run after the endpoint rows were locked, its snapshot sees every
# lease committed before: the re-check of a claim, in the lease itself.
_UNSERVED = ~exists().where(_held.c.endpoint_id == _table.c.endpoint_id, _leased_by_others(_held))
_LEASE_UNSERVED_RETURNING_JOBS = _LEASE_RETURNING_JOBS.where(_UNSERVED)
_MARK_SENDING_UNSERVED = _MARK_SENDING.where(_UNSERVED)
_JOBS_LEASED = _JOBS.where(
    DeliveryRow.status == "sending", DeliveryRow.lease_owner == bindparam("b_owner")
)


class Queue:
    """Queries of the delivery queue; each works in the session it is given."""

    def __init__(self, engine: Engine) -> None:
        self.row_locks = engine.dialect.name == "postgresql"
        """Whether the database has row locks (PostgreSQL) rather than one
        writer at a time (SQLite)."""

    # -- claiming ------------------------------------------------------------

    def sending_counts(
        self, session: Session, *, exclude_owner: str | None, now: datetime
    ) -> dict[str, int]:
        """Deliveries in flight per endpoint under a live lease, leaving out one
        worker's own.

        An expired lease belongs to a worker that stopped renewing it (killed,
        or cut off from the database): it holds nothing back, and reclaiming
        returns its deliveries to the queue.
        """
        stmt = _SENDING_COUNTS[exclude_owner is not None]
        rows = session.connection().execute(stmt, {"b_now": now, "b_owner": exclude_owner})
        return {endpoint_id: n for endpoint_id, n in rows}

    def endpoint_limits(
        self, session: Session, endpoint_ids: Sequence[str]
    ) -> dict[str, EndpointLimits]:
        """The in-flight limits of each endpoint."""
        if not endpoint_ids:
            return {}
        rows = session.execute(
            select(
                EndpointRow.id,
                EndpointRow.max_in_flight,
                EndpointRow.ordering,
                EndpointRow.consecutive_failures,
            ).where(EndpointRow.id.in_(list(endpoint_ids)))
        )
        return {r.id: EndpointLimits(r[1], r[2], r[3]) for r in rows}

    def due_candidates(
        self,
        session: Session,
        *,
        now: datetime,
        limit: int,
        exclude_endpoints: Sequence[str],
        exclude_tenants: Sequence[str] = (),
    ) -> list[Candidate]:
        """Due pending deliveries of enabled endpoints, oldest due first.

        On PostgreSQL the rows are locked with ``FOR UPDATE SKIP LOCKED`` so
        concurrent workers never pick the same ones.
        """
        stmt = _due_candidates(bool(exclude_endpoints), bool(exclude_tenants), self.row_locks)
        params = {
            "b_now": now,
            "b_limit": limit,
            "b_endpoints": list(exclude_endpoints),
            "b_tenants": list(exclude_tenants),
        }
        return [Candidate(*row) for row in session.connection().execute(stmt, params)]

    def due_among(
        self, session: Session, delivery_ids: Sequence[str], *, now: datetime
    ) -> list[Candidate]:
        """Those of ``delivery_ids`` that are due, pending and of an enabled
        endpoint (what a claim could lease), oldest due first. On PostgreSQL
        their endpoints are locked as by :meth:`lock_endpoints`, and those
        another transaction holds are left out."""
        stmt = _due_candidates(False, False, self.row_locks, among=True)
        params = {"b_now": now, "b_limit": len(delivery_ids), "b_ids": list(delivery_ids)}
        return [Candidate(*row) for row in session.connection().execute(stmt, params)]

    def lock_endpoints(self, session: Session, endpoint_ids: set[str]) -> set[str]:
        """Lock endpoint rows for this transaction, skipping those locked by
        another; returns the ids locked."""
        if not endpoint_ids:
            return set()
        rows = session.connection().execute(_LOCK_ENDPOINTS, {"b_ids": sorted(endpoint_ids)})
        return {endpoint_id for (endpoint_id,) in rows}

    def endpoints_leased_by_others(
        self, session: Session, endpoint_ids: set[str], *, owner: str, now: datetime
    ) -> set[str]:
        """Which of these endpoints have deliveries under another worker's live lease."""
        if not endpoint_ids:
            return set()
        params = {"b_ids": sorted(endpoint_ids), "b_owner": owner, "b_now": now}
        rows = session.connection().execute(_LEASED_BY_OTHERS, params)
        return {endpoint_id for (endpoint_id,) in rows}

    def fifo_heads(self, session: Session, endpoint_ids: Sequence[str]) -> dict[str, str]:
        """The oldest unfinished delivery id of each FIFO endpoint."""
        if not endpoint_ids:
            return {}
        rows = session.execute(
            select(DeliveryRow.endpoint_id, func.min(DeliveryRow.id))
            .where(
                DeliveryRow.endpoint_id.in_(list(endpoint_ids)),
                DeliveryRow.status.in_(("pending", "sending")),
            )
            .group_by(DeliveryRow.endpoint_id)
        )
        return {endpoint_id: head for endpoint_id, head in rows}

    # -- leasing ---------------------------------------------------------------

    def mark_sending(
        self,
        session: Session,
        delivery_ids: Sequence[str],
        *,
        owner: str,
        lease_expires_at: datetime,
        now: datetime,
        unserved_only: bool = False,
    ) -> None:
        """Lease deliveries to a worker (``unserved_only``: see :meth:`lease`)."""
        session.connection().execute(
            _MARK_SENDING_UNSERVED if unserved_only else _MARK_SENDING,
            _lease_params(delivery_ids, owner, lease_expires_at, now),
        )

    def lease(
        self,
        session: Session,
        delivery_ids: Sequence[str],
        open_secrets: OpenSecrets,
        open_value: Callable[[str], str],
        *,
        owner: str,
        lease_expires_at: datetime,
        now: datetime,
        unserved_only: bool = False,
    ) -> list[Job]:
        """:meth:`mark_sending` then :meth:`jobs`, in one statement on
        PostgreSQL: the jobs of the deliveries leased, in id order.

        ``unserved_only`` leaves out the deliveries of endpoints another
        worker holds a live lease on (:meth:`endpoints_leased_by_others`,
        asked in the same statement on PostgreSQL: lock the endpoints first).
        """
        if not delivery_ids:
            return []
        connection = session.connection()
        if self.row_locks:
            stmt = _LEASE_UNSERVED_RETURNING_JOBS if unserved_only else _LEASE_RETURNING_JOBS
            params = _lease_params(delivery_ids, owner, lease_expires_at, now)
            jobs = [
                _job_of(row, open_secrets, open_value) for row in connection.execute(stmt, params)
            ]
            return sorted(jobs, key=lambda job: job.delivery_id)
        self.mark_sending(
            session,
            delivery_ids,
            owner=owner,
            lease_expires_at=lease_expires_at,
            now=now,
            unserved_only=unserved_only,
        )
        rows = connection.execute(_JOBS_LEASED, {"b_ids": list(delivery_ids), "b_owner": owner})
        return [_job_of(row, open_secrets, open_value) for row in rows]

    def renew_leases(self, session: Session, owner: str, until: datetime) -> int:
        """Extend every lease ``owner`` holds to ``until`` (a live worker's
        heartbeat); returns how many deliveries it holds."""
        result = session.execute(
            update(DeliveryRow)
            .where(DeliveryRow.status == "sending", DeliveryRow.lease_owner == owner)
            .values(lease_expires_at=until)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    def jobs(
        self,
        session: Session,
        delivery_ids: Sequence[str],
        open_secrets: OpenSecrets,
        open_value: Callable[[str], str],
    ) -> list[Job]:
        """Everything needed to send each delivery: endpoint settings, body,
        the secrets ``open_secrets`` makes of the stored ones, and the custom
        header values opened with ``open_value`` (they are sealed at rest)."""
        if not delivery_ids:
            return []
        rows = session.connection().execute(_JOBS, {"b_ids": list(delivery_ids)})
        return [_job_of(row, open_secrets, open_value) for row in rows]

    # -- finishing -------------------------------------------------------------

    def insert_attempts(self, session: Session, attempts: Sequence[Attempt]) -> None:
        """Insert attempt rows in one statement."""
        if attempts:
            session.connection().execute(_INSERT_ATTEMPT, [vars(a) for a in attempts])

    def finish_deliveries(self, session: Session, updates: Sequence[DeliveryUpdate]) -> None:
        """Write each delivery's state after an attempt, in one executemany."""
        if not updates:
            return
        params: list[dict[str, Any]] = [
            {
                "b_id": u.delivery_id,
                "b_owner": u.owner,
                "b_status": u.status,
                "b_next": u.next_attempt_at,
                "b_last": u.attempted_at,
                "b_code": u.status_code,
                "b_error": u.error,
            }
            for u in updates
        ]
        session.connection().execute(_FINISH, params)

    def release(
        self, session: Session, delivery_ids: Sequence[str], owner: str, now: datetime
    ) -> int:
        """Give leased deliveries back unattempted (graceful shutdown)."""
        if not delivery_ids:
            return 0
        result = session.execute(
            update(DeliveryRow)
            .where(
                DeliveryRow.id.in_(list(delivery_ids)),
                DeliveryRow.status == "sending",
                DeliveryRow.lease_owner == owner,
            )
            .values(
                status=case((_ENDPOINT_DELETED, "cancelled"), else_="pending"),
                next_attempt_at=case((_ENDPOINT_DELETED, None), else_=_table.c.next_attempt_at),
                lease_owner=None,
                lease_expires_at=None,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    def reclaim_expired_leases(self, session: Session, now: datetime) -> int:
        """Put deliveries whose worker vanished back in the queue, due now
        (cancelled instead when their endpoint was deleted meanwhile)."""
        result = session.execute(
            update(DeliveryRow)
            .where(DeliveryRow.status == "sending", DeliveryRow.lease_expires_at < now)
            .values(
                status=case((_ENDPOINT_DELETED, "cancelled"), else_="pending"),
                lease_owner=None,
                lease_expires_at=None,
                next_attempt_at=case((_ENDPOINT_DELETED, None), else_=now),
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    def cancel_orphaned(self, session: Session, now: datetime) -> int:
        """Cancel pending deliveries of deleted endpoints; returns how many.

        Deleting an endpoint cancels its pending deliveries, and finishing,
        releasing or reclaiming one of its in-flight deliveries cancels it;
        this catches any that a concurrent transaction still made pending.
        """
        result = session.execute(
            update(DeliveryRow)
            .where(DeliveryRow.status == "pending", _ENDPOINT_DELETED)
            .values(status="cancelled", next_attempt_at=None, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    # -- depth -------------------------------------------------------------------

    def due_count(self, session: Session, now: datetime) -> int:
        """Pending deliveries due now on enabled endpoints (the queue depth)."""
        return self.due_summary(session, now)[0]

    def due_summary(self, session: Session, now: datetime) -> tuple[int, datetime | None]:
        """How many pending deliveries are due now on enabled endpoints, and
        the earliest time one of them fell due (None when none is due)."""
        count, oldest = session.execute(
            select(func.count(), func.min(DeliveryRow.next_attempt_at))
            .select_from(DeliveryRow)
            .join(EndpointRow, EndpointRow.id == DeliveryRow.endpoint_id)
            .where(
                DeliveryRow.status == "pending",
                DeliveryRow.next_attempt_at <= now,
                EndpointRow.status == "enabled",
            )
        ).one()
        return int(count or 0), oldest


def _lease_params(
    delivery_ids: Sequence[str], owner: str, lease_expires_at: datetime, now: datetime
) -> dict[str, Any]:
    """The parameters of the statements that lease deliveries."""
    return {
        "b_ids": list(delivery_ids),
        "b_owner": owner,
        "b_until": lease_expires_at,
        "b_now": now,
    }


def _job_of(row: Any, open_secrets: OpenSecrets, open_value: Callable[[str], str]) -> Job:
    """The job of a row of ``_JOB_COLUMNS``, its sealed values opened."""
    fields = row._asdict()
    sealed, previous = fields.pop("secret"), fields.pop("previous_secrets")
    try:
        fields["headers"] = {name: open_value(v) for name, v in fields["headers"].items()}
        fields["secrets"] = open_secrets(sealed, previous)
        open_credentials(fields, open_value)
    except Exception as exc:
        # An endpoint whose values cannot be opened (a removed key, say)
        # fails its own deliveries, never the claim of everyone's.
        fields.update(
            headers={},
            secrets=[],
            proxy_url=None,
            auth=None,
            tls=None,
            unusable=internal_error(exc),
        )
    return Job(**fields)
