"""Database operations of the library's resources, behind named methods.

The store takes and returns rows and plain values; it knows nothing of HTTP,
signing or retry rules. Each method works inside the session it is given, so
the caller decides the transaction (the producer's own, or the host
application's for the outbox); :meth:`Store.transaction` opens one. The
delivery worker's claim, lease and finish queries are in :mod:`producer.queue`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, fields
from datetime import datetime
from functools import lru_cache
from typing import Any, Protocol, TypeVar

from sqlalchemy import (
    Select,
    Text,
    bindparam,
    case,
    cast,
    func,
    literal_column,
    null,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from producer.db import READ_ONLY
from producer.errors import NotFoundError, ValidationError
from producer.health import HealthState
from producer.models import (
    ApiKeyRow,
    AttemptRow,
    Base,
    DeliveryRow,
    EndpointChannelRow,
    EndpointRouteRow,
    EndpointRow,
    EventTypeRow,
    JobRow,
    MessageRow,
    table_of,
)
from producer.routing import ANY_CHANNEL, candidate_patterns
from producer.types import DELIVERY_STATUSES, snapshot
from producer.validation import validate_aware

__all__ = [
    "DeliveryFilter",
    "DuplicateIdempotencyKey",
    "MessageFilter",
    "Store",
    "health_of",
    "set_health",
]


NOTIFY_CHANNEL = "webhooks_due"

MAX_PAGE_SIZE = 250


@dataclass(frozen=True)
class MessageFilter:
    """Filters of the message log; every one given combines with the others.
    ``since`` is inclusive and ``until`` exclusive, on the creation time."""

    tenant: str | None = None
    event_type: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def __post_init__(self) -> None:
        validate_aware(self.since, "since")
        validate_aware(self.until, "until")

    def apply(self, stmt: Select[Any], model: Any) -> Select[Any]:
        """``stmt`` narrowed to the rows of ``model`` these filters let through."""
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if f.name == "since":
                stmt = stmt.where(model.created_at >= value)
            elif f.name == "until":
                stmt = stmt.where(model.created_at < value)
            else:
                stmt = stmt.where(getattr(model, f.name) == value)
        return stmt


@dataclass(frozen=True)
class DeliveryFilter(MessageFilter):
    """Filters of the delivery log: those of messages, and by message,
    endpoint and status."""

    message_id: str | None = None
    endpoint_id: str | None = None
    status: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.status is not None and self.status not in DELIVERY_STATUSES:
            raise ValidationError.for_field(
                "status", f"must be one of {', '.join(DELIVERY_STATUSES)}"
            )


def health_of(row: EndpointRow) -> HealthState:
    """The health fields of an endpoint row."""
    return snapshot(HealthState, row)


def set_health(row: EndpointRow, state: HealthState, now: datetime) -> None:
    """Write a health state to an endpoint row (``updated_at`` only if it changed)."""
    if health_of(row) != state:
        for f in fields(state):
            setattr(row, f.name, getattr(state, f.name))
        row.updated_at = now


class DuplicateIdempotencyKey(Exception):
    """Raised by :meth:`Store.insert_message` when another transaction stored
    a message with the same tenant and idempotency key first."""


def _check_limit(limit: int) -> int:
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValidationError.for_field("limit", f"must be between 1 and {MAX_PAGE_SIZE}")
    return limit


def _check_cursor(cursor: object, prefix: str) -> None:
    if not isinstance(cursor, str) or not cursor.startswith(prefix) or len(cursor) > 40:
        raise ValidationError.for_field("cursor", "is not a cursor of this list")


class _Listed(Protocol):
    """A row of a paged list: its id is the cursor."""

    @property
    def id(self) -> str: ...


ListedT = TypeVar("ListedT", bound=_Listed)


def _trimmed(rows: list[ListedT], limit: int) -> tuple[list[ListedT], str | None]:
    """A page of at most ``limit`` of ``rows`` (one more was asked for) and the
    cursor of the next page: the id of its last row, if there is a next page."""
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, rows[-1].id
    return rows, None


@lru_cache(maxsize=64)
def _equal_page_statement(
    model: type[Base], equal: tuple[str, ...], live: bool, after: bool
) -> Select[Any]:
    """The statement of :meth:`Store.equal_page` for one set of filters: each
    column of ``equal`` equal to the parameter of its name, ``deleted_at``
    null if ``live``, ``id`` below ``after`` past a cursor; newest first, at
    most ``limit`` rows."""
    columns = table_of(model).c
    stmt = select(model)
    if live:
        stmt = stmt.where(columns.deleted_at.is_(None))
    for name in equal:
        stmt = stmt.where(columns[name] == bindparam(name))
    if after:
        stmt = stmt.where(columns.id < bindparam("after"))
    return stmt.order_by(columns.id.desc()).limit(bindparam("limit"))


# Statements of every send, every recorded batch and every health check,
# built once with bound parameters and run as plain Core: building a
# statement and its cache key costs more than SQLite takes to run it.
_routes = table_of(EndpointRouteRow)
_endpoints = table_of(EndpointRow)
_PING = select(_endpoints.c.id).limit(1)
# The tenant is matched in the index only (its rows carry the endpoint's):
# with a condition on the endpoints' tenant too, PostgreSQL without
# statistics yet (a new table) scans every endpoint of the tenant and probes
# the index for each.
_RECEIVING_COLUMNS = (_endpoints.c.id, _endpoints.c.version, cast(_endpoints.c.filter, Text))
_RECEIVES = (
    _endpoints.c.id.in_(
        select(_routes.c.endpoint_id).where(
            _routes.c.tenant == bindparam("b_tenant"),
            _routes.c.pattern.in_(bindparam("b_patterns", expanding=True)),
            _routes.c.channel.in_(bindparam("b_channels", expanding=True)),
        )
    ),
    _endpoints.c.deleted_at.is_(None),
)
_event_types = table_of(EventTypeRow)
_EVENT_TYPE_RULES = select(_event_types.c.archived_at, _event_types.c.schemas).where(
    _event_types.c.name == bindparam("b_name")
)
# Both in one round trip: the event type's row (part 0, if registered), then
# the receiving endpoints (part 1), in id order.
_RULES_AND_RECEIVING = union_all(
    _EVENT_TYPE_RULES.add_columns(
        literal_column("0").label("part"), null().label("id"), null(), null()
    ),
    select(null(), null(), literal_column("1"), *_RECEIVING_COLUMNS).where(*_RECEIVES),
).order_by(text("part"), text("id"))
_INSERT_MESSAGE = table_of(MessageRow).insert()
_INSERT_DELIVERY = table_of(DeliveryRow).insert()


@lru_cache(maxsize=8)
def _message_with_delivery(
    message_columns: tuple[str, ...], delivery_columns: tuple[str, ...]
) -> Any:
    """An insert of a delivery whose message is inserted by a CTE of the same
    statement (PostgreSQL: the foreign key is checked at the statement's end,
    once both rows exist). Parameters: the message's columns prefixed ``m_``,
    the delivery's ``d_``. Built once per set of columns, so its compiled form
    is cached like any other statement's."""
    message = _INSERT_MESSAGE.values({c: bindparam(f"m_{c}") for c in message_columns})
    return _INSERT_DELIVERY.values({c: bindparam(f"d_{c}") for c in delivery_columns}).add_cte(
        message.cte("new_message")
    )


_WITH_FAILURES = select(_endpoints.c.id).where(
    _endpoints.c.id.in_(bindparam("b_ids", expanding=True)), _endpoints.c.consecutive_failures > 0
)


class Store:
    """All queries of the webhook tables."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        # SQLite has one writer and every transaction here takes the write
        # lock up front. Threads of this process queue on a Python lock, which
        # wakes the next one at once, rather than on SQLite's busy handler,
        # which polls with sleeps of up to 100 ms.
        self._lock: AbstractContextManager[object] = (
            threading.Lock() if engine.dialect.name == "sqlite" else nullcontext()
        )
        # Reads take neither: on SQLite a deferred transaction reads a WAL
        # snapshot beside the writer (see producer.db), on PostgreSQL the
        # transaction is READ ONLY, so a write slipped into a read fails there.
        read_options = {READ_ONLY: True}
        if engine.dialect.name == "postgresql":
            read_options["postgresql_readonly"] = True
        self._read_sessions = sessionmaker(
            engine.execution_options(**read_options), expire_on_commit=False
        )

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session in a transaction, committed on success, rolled back on error."""
        with self._lock, self._sessions.begin() as session:
            yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A session in a read-only transaction: one consistent snapshot that
        never waits for a writer (the worker's batches, other API calls)."""
        with self._read_sessions.begin() as session:
            yield session

    # -- pagination ----------------------------------------------------------

    def page(
        self,
        session: Session,
        stmt: Select[ListedT],
        id_column: Any,
        *,
        limit: int,
        cursor: str | None,
        prefix: str,
    ) -> tuple[list[ListedT], str | None]:
        """Keyset pagination on a time-sortable id column, newest first.

        The cursor is the id of the last row of the previous page.
        """
        _check_limit(limit)
        if cursor is not None:
            _check_cursor(cursor, prefix)
            stmt = stmt.where(id_column < cursor)
        rows = list(session.scalars(stmt.order_by(id_column.desc()).limit(limit + 1)))
        return _trimmed(rows, limit)

    def equal_page(
        self,
        session: Session,
        model: type[ListedT],
        equal: Mapping[str, object],
        *,
        live: bool = False,
        limit: int,
        cursor: str | None,
        prefix: str,
    ) -> tuple[list[ListedT], str | None]:
        """What :meth:`page` gives, for a list filtered only by columns equal to
        values (``equal``, where a None value filters nothing) and, with
        ``live``, by rows not deleted. Its statement is built once for each
        set of filters, with bound parameters: building a statement and its
        cache key costs more than SQLite takes to run it."""
        _check_limit(limit)
        if cursor is not None:
            _check_cursor(cursor, prefix)
        values = {name: value for name, value in equal.items() if value is not None}
        stmt = _equal_page_statement(model, tuple(values), live, cursor is not None)
        rows: list[ListedT] = list(
            session.scalars(stmt, {**values, "after": cursor, "limit": limit + 1})
        )
        return _trimmed(rows, limit)

    # -- endpoints -----------------------------------------------------------

    def _one(
        self,
        session: Session,
        model: Any,
        row_id: str,
        what: str,
        *,
        tenant: str | None,
        lock: bool = False,
        extra: tuple[Any, ...] = (),
    ) -> Any:
        """The row of ``model`` with this id (and ``tenant``, when given), or NotFoundError."""
        if "\x00" in row_id:
            # PostgreSQL refuses NUL in text it compares; SQLite finds nothing.
            raise NotFoundError(f"{what} {row_id!r} not found")
        stmt = select(model).where(model.id == row_id, *extra)
        if tenant is not None:
            stmt = stmt.where(model.tenant == tenant)
        if lock:
            stmt = stmt.with_for_update()
        row = session.scalars(stmt).first()
        if row is None:
            raise NotFoundError(f"{what} {row_id} not found")
        return row

    def get_endpoint(
        self, session: Session, endpoint_id: str, *, tenant: str | None = None, lock: bool = False
    ) -> EndpointRow:
        """An endpoint that is not deleted, optionally scoped to ``tenant``."""
        live = (EndpointRow.deleted_at.is_(None),)
        row: EndpointRow = self._one(
            session, EndpointRow, endpoint_id, "endpoint", tenant=tenant, lock=lock, extra=live
        )
        return row

    def list_endpoints(
        self,
        session: Session,
        *,
        tenant: str | None,
        status: str | None,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[EndpointRow], str | None]:
        """Endpoints, newest first."""
        return self.equal_page(
            session,
            EndpointRow,
            {"tenant": tenant, "status": status},
            live=True,
            limit=limit,
            cursor=cursor,
            prefix="ep_",
        )

    def all_endpoints(self, session: Session) -> list[EndpointRow]:
        """Every endpoint row, deleted ones included (for re-encryption)."""
        return list(session.scalars(select(EndpointRow).order_by(EndpointRow.id)))

    def endpoints_of_tenant(
        self, session: Session, tenant: str, endpoint_ids: Sequence[str] | None = None
    ) -> list[EndpointRow]:
        """Every live endpoint of a tenant (enabled or disabled), oldest first."""
        stmt = select(EndpointRow).where(
            EndpointRow.tenant == tenant, EndpointRow.deleted_at.is_(None)
        )
        if endpoint_ids is not None:
            stmt = stmt.where(EndpointRow.id.in_(list(endpoint_ids)))
        return list(session.scalars(stmt.order_by(EndpointRow.id)))

    def rules_and_receiving(
        self, session: Session, name: str, tenant: str, channels: Sequence[str]
    ) -> tuple[tuple[bool, dict[str, Any]] | None, list[tuple[str, str | None, str | None]]]:
        """What a send of an event of type ``name`` needs, in one query: the
        type's :meth:`event_type_rules`, and ``(id, version, filter)`` of the
        live endpoints of a tenant that get it when sent on ``channels``, in
        id order: those with a pattern matching the event type and subscribed
        to no channel or to one of ``channels``, found by ranges of the
        routing index (``webhook_endpoint_routes``). Only the payload filter
        is left to the caller, as its stored JSON text (see
        :func:`producer.routing.parsed_filter`)."""
        params = {
            "b_name": name,
            "b_tenant": tenant,
            "b_patterns": candidate_patterns(name),
            "b_channels": [ANY_CHANNEL, *channels],
        }
        rules = None
        routes = []
        found = session.connection().execute(_RULES_AND_RECEIVING, params)
        for archived_at, schemas, part, endpoint_id, version, filter_ in found:
            if part == 0:
                rules = (archived_at is not None, dict(schemas or {}))
            else:
                routes.append((endpoint_id, version, filter_))
        return rules, routes

    def set_endpoint_channels(
        self, session: Session, endpoint_id: str, channels: Sequence[str]
    ) -> None:
        """Make ``channels`` the routing index of an endpoint's channels."""
        session.execute(
            table_of(EndpointChannelRow)
            .delete()
            .where(EndpointChannelRow.endpoint_id == endpoint_id)
        )
        session.add_all(EndpointChannelRow(endpoint_id=endpoint_id, channel=c) for c in channels)
        session.flush()

    def set_endpoint_routes(self, session: Session, row: EndpointRow) -> None:
        """Make the routing index of an endpoint match its row: a row per
        pattern (``*`` for none) and channel (``""`` for none) while it
        lives, none once deleted."""
        session.execute(
            table_of(EndpointRouteRow).delete().where(EndpointRouteRow.endpoint_id == row.id)
        )
        if row.deleted_at is None:
            session.add_all(
                EndpointRouteRow(tenant=row.tenant, pattern=p, channel=c, endpoint_id=row.id)
                for p in list(dict.fromkeys(row.event_types or [])) or ["*"]
                for c in list(dict.fromkeys(row.channels or [])) or [ANY_CHANNEL]
            )
        session.flush()

    def cancel_pending_deliveries(self, session: Session, endpoint_id: str, now: datetime) -> int:
        """Mark every pending delivery of an endpoint ``cancelled``."""
        result = session.execute(
            update(DeliveryRow)
            .where(DeliveryRow.endpoint_id == endpoint_id, DeliveryRow.status == "pending")
            .values(status="cancelled", next_attempt_at=None, updated_at=now)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    # -- event types ---------------------------------------------------------

    def get_event_type(self, session: Session, name: str) -> EventTypeRow | None:
        """An event type by name (archived ones included), or None."""
        return session.get(EventTypeRow, name)

    def event_type_rules(self, session: Session, name: str) -> tuple[bool, dict[str, Any]] | None:
        """What a send needs of an event type: whether it is archived, and its
        JSON Schemas by version; None when it is not registered. One light
        read, no entity loaded."""
        row = session.connection().execute(_EVENT_TYPE_RULES, {"b_name": name}).first()
        return None if row is None else (row[0] is not None, dict(row[1] or {}))

    def list_event_types(
        self,
        session: Session,
        *,
        include_archived: bool,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[EventTypeRow], str | None]:
        """Event types in name order (a catalogue reads best alphabetically)."""
        _check_limit(limit)
        stmt = select(EventTypeRow)
        if not include_archived:
            stmt = stmt.where(EventTypeRow.archived_at.is_(None))
        if cursor is not None:
            stmt = stmt.where(EventTypeRow.name > cursor)
        rows = list(session.scalars(stmt.order_by(EventTypeRow.name).limit(limit + 1)))
        if len(rows) > limit:
            rows = rows[:limit]
            return rows, rows[-1].name
        return rows, None

    # -- messages ------------------------------------------------------------

    def message_by_idempotency_key(
        self, session: Session, tenant: str, key: str
    ) -> MessageRow | None:
        """The message stored earlier under this tenant's idempotency key."""
        return session.scalars(
            select(MessageRow).where(MessageRow.tenant == tenant, MessageRow.idempotency_key == key)
        ).first()

    def insert_message(
        self,
        session: Session,
        message: Mapping[str, Any],
        deliveries: Sequence[Mapping[str, Any]],
    ) -> None:
        """Insert a message and its deliveries, each given as its values by
        column (a Core insert: no ORM objects to build; columns left out take
        their defaults).

        With an idempotency key the insert runs in a savepoint, so losing a
        race to a concurrent sender raises :class:`DuplicateIdempotencyKey`
        and leaves the caller's transaction usable.
        """
        connection = session.connection()
        key = message.get("idempotency_key")
        if key is None and len(deliveries) == 1 and connection.dialect.name == "postgresql":
            # The usual send, one delivery: one statement and one round trip.
            [delivery] = deliveries
            statement = _message_with_delivery(tuple(message), tuple(delivery))
            connection.execute(
                statement,
                {f"m_{k}": v for k, v in message.items()}
                | {f"d_{k}": v for k, v in delivery.items()},
            )
            return
        if key is None:
            connection.execute(_INSERT_MESSAGE, message)
        else:
            try:
                with session.begin_nested():
                    connection.execute(_INSERT_MESSAGE, message)
            except IntegrityError as exc:
                raise DuplicateIdempotencyKey(key) from exc
        if deliveries:
            connection.execute(_INSERT_DELIVERY, list(deliveries))

    def get_message(self, session: Session, message_id: str, *, tenant: str | None) -> MessageRow:
        """A message by id, optionally scoped to ``tenant``."""
        row: MessageRow = self._one(session, MessageRow, message_id, "message", tenant=tenant)
        return row

    def count_deliveries(self, session: Session, message_ids: Sequence[str]) -> dict[str, int]:
        """Number of deliveries per message id."""
        if not message_ids:
            return {}
        rows = session.execute(
            select(DeliveryRow.message_id, func.count())
            .where(DeliveryRow.message_id.in_(list(message_ids)))
            .group_by(DeliveryRow.message_id)
        )
        return {message_id: count for message_id, count in rows}

    def list_messages(
        self, session: Session, filters: MessageFilter, *, limit: int, cursor: str | None
    ) -> tuple[list[MessageRow], str | None]:
        """Messages, newest first, filtered."""
        stmt = filters.apply(select(MessageRow), MessageRow)
        return self.page(session, stmt, MessageRow.id, limit=limit, cursor=cursor, prefix="msg_")

    # -- deliveries and attempts ---------------------------------------------

    def get_delivery(
        self, session: Session, delivery_id: str, *, tenant: str | None, lock: bool = False
    ) -> DeliveryRow:
        """A delivery by id, optionally scoped to ``tenant``."""
        row: DeliveryRow = self._one(
            session, DeliveryRow, delivery_id, "delivery", tenant=tenant, lock=lock
        )
        return row

    def list_deliveries(
        self,
        session: Session,
        filters: DeliveryFilter,
        *,
        limit: int = 50,
        cursor: str | None = None,
    ) -> tuple[list[DeliveryRow], str | None]:
        """The delivery log, newest first."""
        stmt = filters.apply(select(DeliveryRow), DeliveryRow)
        return self.page(session, stmt, DeliveryRow.id, limit=limit, cursor=cursor, prefix="dlv_")

    def list_attempts(self, session: Session, delivery_id: str) -> list[AttemptRow]:
        """Every attempt of a delivery, oldest first."""
        return list(
            session.scalars(
                select(AttemptRow)
                .where(AttemptRow.delivery_id == delivery_id)
                .order_by(AttemptRow.number)
            )
        )

    # -- API keys ------------------------------------------------------------

    def api_key_by_hash(self, session: Session, key_hash: str) -> ApiKeyRow | None:
        """A live (not revoked) API key by the hash of its plain text."""
        return session.scalars(
            select(ApiKeyRow).where(ApiKeyRow.key_hash == key_hash, ApiKeyRow.revoked_at.is_(None))
        ).first()

    def ping(self, session: Session) -> None:
        """Read one row of a table of ours (at most): the database file opens
        and holds the schema. Constant time, whatever the backlog."""
        session.execute(_PING).first()

    def count_api_keys(self, session: Session, *, admin_only: bool = False) -> int:
        """How many live API keys exist (admin keys only, if asked)."""
        stmt = select(func.count()).select_from(ApiKeyRow).where(ApiKeyRow.revoked_at.is_(None))
        if admin_only:
            stmt = stmt.where(ApiKeyRow.tenant.is_(None))
        return int(session.scalar(stmt) or 0)

    def get_api_key(self, session: Session, key_id: str, *, lock: bool = False) -> ApiKeyRow:
        """An API key by id, revoked or not."""
        row: ApiKeyRow = self._one(session, ApiKeyRow, key_id, "api key", tenant=None, lock=lock)
        return row

    def live_api_keys(self, session: Session) -> list[ApiKeyRow]:
        """Every API key not revoked, newest first."""
        return list(
            session.scalars(
                select(ApiKeyRow)
                .where(ApiKeyRow.revoked_at.is_(None))
                .order_by(ApiKeyRow.id.desc())
            )
        )

    # -- waking workers ------------------------------------------------------

    @property
    def row_locks(self) -> bool:
        """Whether the database has row locks (PostgreSQL) rather than one
        writer at a time (SQLite)."""
        return self.engine.dialect.name == "postgresql"

    def notify_due(self, session: Session) -> None:
        """Wake idle workers of other processes when this transaction commits
        (PostgreSQL ``NOTIFY``; a no-op elsewhere, where polling finds the work)."""
        if self.row_locks:
            session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": NOTIFY_CHANNEL})

    # -- endpoint health -----------------------------------------------------

    def endpoints_for_update(
        self, session: Session, endpoint_ids: Sequence[str]
    ) -> list[EndpointRow]:
        """Endpoint rows, locked on PostgreSQL, in id order (no deadlocks)."""
        if not endpoint_ids:
            return []
        stmt = (
            select(EndpointRow)
            .where(EndpointRow.id.in_(sorted(endpoint_ids)))
            .order_by(EndpointRow.id)
        )
        if self.row_locks:
            stmt = stmt.with_for_update()
        return list(session.scalars(stmt))

    def endpoints_with_failures(self, session: Session, endpoint_ids: Sequence[str]) -> set[str]:
        """Which of these endpoints have a failure streak."""
        if not endpoint_ids:
            return set()
        return set(
            session.connection().execute(_WITH_FAILURES, {"b_ids": list(endpoint_ids)}).scalars()
        )

    def failing_endpoints(self, session: Session) -> list[EndpointRow]:
        """Enabled endpoints with a failure streak (for the periodic health check)."""
        return list(
            session.scalars(
                select(EndpointRow).where(
                    EndpointRow.status == "enabled",
                    EndpointRow.failing_since.is_not(None),
                    EndpointRow.deleted_at.is_(None),
                )
            )
        )

    # -- figures ---------------------------------------------------------------

    def delivery_counts(self, session: Session) -> dict[str, int]:
        """Every delivery counted by status."""
        rows = session.execute(
            select(DeliveryRow.status, func.count()).group_by(DeliveryRow.status)
        )
        return {status: n for status, n in rows}

    def disabled_endpoint_count(self, session: Session) -> int:
        """Live endpoints that are disabled."""
        return int(
            session.scalar(
                select(func.count())
                .select_from(EndpointRow)
                .where(EndpointRow.status == "disabled", EndpointRow.deleted_at.is_(None))
            )
            or 0
        )

    # -- retention and recovery ------------------------------------------------

    def purge(self, session: Session, before: datetime, *, batch: int = 5000) -> tuple[int, int]:
        """Delete attempts older than ``before`` and messages older than
        ``before`` none of whose deliveries is still pending or sending.

        Returns ``(attempts, messages)`` deleted.
        """
        old_attempts = select(AttemptRow.id).where(AttemptRow.started_at < before).limit(batch)
        deleted = session.execute(
            table_of(AttemptRow).delete().where(AttemptRow.id.in_(old_attempts.scalar_subquery()))
        )
        attempts = deleted.rowcount  # type: ignore[attr-defined]
        unfinished = select(DeliveryRow.message_id).where(
            DeliveryRow.status.in_(("pending", "sending"))
        )
        old_messages = list(
            session.scalars(
                select(MessageRow.id)
                .where(MessageRow.created_at < before, MessageRow.id.not_in(unfinished))
                .limit(batch)
            )
        )
        if old_messages:
            delivery_ids = select(DeliveryRow.id).where(DeliveryRow.message_id.in_(old_messages))
            session.execute(
                table_of(AttemptRow).delete().where(AttemptRow.delivery_id.in_(delivery_ids))
            )
            session.execute(
                table_of(DeliveryRow).delete().where(DeliveryRow.message_id.in_(old_messages))
            )
            session.execute(table_of(MessageRow).delete().where(MessageRow.id.in_(old_messages)))
        return int(attempts or 0), len(old_messages)

    def messages_without_delivery(
        self,
        session: Session,
        endpoint: EndpointRow,
        since: datetime,
        until: datetime | None,
        event_types: Sequence[str] | None,
        *,
        after: str | None,
        limit: int,
    ) -> list[MessageRow]:
        """The first ``limit`` messages (in id order, past ``after``) of the
        endpoint's tenant created in ``[since, until)``, of ``event_types``
        when given, that the endpoint has no delivery of."""
        delivered = select(DeliveryRow.id).where(
            DeliveryRow.message_id == MessageRow.id, DeliveryRow.endpoint_id == endpoint.id
        )
        stmt = select(MessageRow).where(
            MessageRow.tenant == endpoint.tenant,
            MessageRow.created_at >= since,
            ~delivered.exists(),
        )
        if until is not None:
            stmt = stmt.where(MessageRow.created_at < until)
        if event_types is not None:
            stmt = stmt.where(MessageRow.event_type.in_(list(event_types)))
        if after is not None:
            stmt = stmt.where(MessageRow.id > after)
        return list(session.scalars(stmt.order_by(MessageRow.id).limit(limit)))

    def requeue_deliveries(
        self,
        session: Session,
        filters: DeliveryFilter,
        event_types: Sequence[str] | None,
        now: datetime,
        *,
        after: str | None,
        limit: int,
        dry_run: bool = False,
    ) -> tuple[int, str | None]:
        """The first ``limit`` deliveries (in id order, past ``after``) that
        ``filters`` let through, of ``event_types`` when given, and whose
        endpoint is not deleted, back to pending, due now (trigger ``manual``);
        with ``dry_run``, only counted.

        Returns how many were requeued and the last id looked at, the
        ``after`` of the next batch (None when none were left).
        """
        live = select(EndpointRow.id).where(
            EndpointRow.id == DeliveryRow.endpoint_id, EndpointRow.deleted_at.is_(None)
        )
        stmt = filters.apply(select(DeliveryRow.id), DeliveryRow).where(live.exists())
        if event_types is not None:
            stmt = stmt.where(DeliveryRow.event_type.in_(list(event_types)))
        if after is not None:
            stmt = stmt.where(DeliveryRow.id > after)
        ids = list(session.scalars(stmt.order_by(DeliveryRow.id).limit(limit)))
        if not ids:
            return 0, None
        last = ids[-1] if len(ids) == limit else None
        if dry_run:
            return len(ids), last
        result = session.execute(
            update(DeliveryRow)
            # Still in the status asked for: a worker or a retry may have moved it.
            .where(DeliveryRow.id.in_(ids), DeliveryRow.status == filters.status)
            .values(status="pending", next_attempt_at=now, next_trigger="manual", updated_at=now)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount), last  # type: ignore[attr-defined]

    # -- jobs --------------------------------------------------------------------

    def get_job(
        self, session: Session, job_id: str, *, tenant: str | None = None, lock: bool = False
    ) -> JobRow:
        """A job by id, optionally scoped to ``tenant``."""
        row: JobRow = self._one(session, JobRow, job_id, "job", tenant=tenant, lock=lock)
        return row

    def list_jobs(
        self,
        session: Session,
        *,
        tenant: str | None,
        kind: str | None,
        status: str | None,
        endpoint_id: str | None,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[JobRow], str | None]:
        """Jobs, newest first, filtered."""
        return self.equal_page(
            session,
            JobRow,
            {"tenant": tenant, "kind": kind, "status": status, "endpoint_id": endpoint_id},
            limit=limit,
            cursor=cursor,
            prefix="job_",
        )

    def claimable_job(self, session: Session, owner: str, now: datetime) -> JobRow | None:
        """The oldest unfinished job nobody else holds a live lease on, locked
        (on PostgreSQL, skipping jobs another runner is claiming)."""
        stmt = (
            select(JobRow)
            .where(
                JobRow.status.in_(("queued", "running")),
                JobRow.lease_owner.is_(None)
                | (JobRow.lease_owner == owner)
                | (JobRow.lease_expires_at <= now),
            )
            .order_by(JobRow.id)
            .limit(1)
        )
        if self.row_locks:
            stmt = stmt.with_for_update(skip_locked=True)
        return session.scalars(stmt).first()

    # -- stats -------------------------------------------------------------------

    def delivery_status_counts(
        self, session: Session, endpoint_ids: Sequence[str], since: datetime, until: datetime
    ) -> dict[str, dict[str, int]]:
        """Deliveries of endpoints created in a window, counted by status, in
        one query: ``{endpoint_id: {status: n}}``."""
        rows = session.execute(
            select(DeliveryRow.endpoint_id, DeliveryRow.status, func.count())
            .where(
                DeliveryRow.endpoint_id.in_(list(endpoint_ids)),
                DeliveryRow.created_at >= since,
                DeliveryRow.created_at < until,
            )
            .group_by(DeliveryRow.endpoint_id, DeliveryRow.status)
        )
        counts: dict[str, dict[str, int]] = {e: {} for e in endpoint_ids}
        for endpoint_id, status, n in rows:
            counts[endpoint_id][status] = n
        return counts

    def hourly_outcomes(
        self, session: Session, endpoint_id: str, since: datetime, until: datetime
    ) -> list[tuple[str, str, int]]:
        """``(hour, status, count)`` of an endpoint's finished deliveries, and
        of its unfinished ones already attempted (retrying), by creation hour;
        ``hour`` is ``YYYY-MM-DD HH`` (UTC)."""
        if self.engine.dialect.name == "sqlite":
            hour = func.strftime("%Y-%m-%d %H", DeliveryRow.created_at)
        else:
            hour = func.to_char(func.timezone("UTC", DeliveryRow.created_at), "YYYY-MM-DD HH24")
        rows = session.execute(
            select(hour, DeliveryRow.status, func.count())
            .where(
                DeliveryRow.endpoint_id == endpoint_id,
                DeliveryRow.status.in_(("succeeded", "failed"))
                | (
                    DeliveryRow.status.in_(("pending", "sending")) & (DeliveryRow.attempt_count > 0)
                ),
                DeliveryRow.created_at >= since,
                DeliveryRow.created_at < until,
            )
            .group_by(hour, DeliveryRow.status)
        )
        return [(h, status, n) for h, status, n in rows]

    def attempt_latencies(
        self, session: Session, endpoint_id: str, since: datetime, until: datetime
    ) -> list[float]:
        """Durations (ms) of an endpoint's attempts started in a window (newest 100,000)."""
        return list(
            session.scalars(
                select(AttemptRow.duration_ms)
                .join(DeliveryRow, DeliveryRow.id == AttemptRow.delivery_id)
                .where(
                    DeliveryRow.endpoint_id == endpoint_id,
                    AttemptRow.started_at >= since,
                    AttemptRow.started_at < until,
                )
                .order_by(AttemptRow.started_at.desc())
                .limit(100_000)
            )
        )

    # -- the service overview -------------------------------------------------

    def attempt_totals(self, session: Session, since: datetime, until: datetime) -> tuple[int, int]:
        """``(attempts, succeeded)`` started in a window, test sends left out."""
        total, succeeded = session.execute(
            select(func.count(), func.count().filter(AttemptRow.succeeded.is_(True))).where(
                AttemptRow.started_at >= since,
                AttemptRow.started_at < until,
                AttemptRow.trigger != "test",
            )
        ).one()
        return int(total), int(succeeded)

    def most_failing_endpoints(
        self, session: Session, since: datetime, until: datetime, limit: int
    ) -> list[tuple[str, str, str, int, int]]:
        """``(endpoint id, tenant, url, failed, attempts)`` of the endpoints
        with the most failed attempts started in a window, most first."""
        failed = func.count().filter(AttemptRow.succeeded.is_(False))
        rows = session.execute(
            select(EndpointRow.id, EndpointRow.tenant, EndpointRow.url, failed, func.count())
            .select_from(AttemptRow)
            .join(DeliveryRow, DeliveryRow.id == AttemptRow.delivery_id)
            .join(EndpointRow, EndpointRow.id == DeliveryRow.endpoint_id)
            .where(
                AttemptRow.started_at >= since,
                AttemptRow.started_at < until,
                AttemptRow.trigger != "test",
            )
            .group_by(EndpointRow.id, EndpointRow.tenant, EndpointRow.url)
            .having(failed > 0)
            .order_by(failed.desc(), EndpointRow.id)
            .limit(limit)
        )
        return [(e, t, u, int(f), int(n)) for e, t, u, f, n in rows]

    def hourly_attempts(
        self, session: Session, since: datetime, until: datetime
    ) -> list[tuple[str, int, int, float | None]]:
        """``(hour, succeeded, failed, longest first-attempt wait in seconds)``
        of the attempts started in a window, by start hour ``YYYY-MM-DD HH`` (UTC)."""
        if self.engine.dialect.name == "sqlite":
            hour = func.strftime("%Y-%m-%d %H", AttemptRow.started_at)
            wait = (
                func.julianday(AttemptRow.started_at) - func.julianday(DeliveryRow.created_at)
            ) * 86400.0
        else:
            hour = func.to_char(func.timezone("UTC", AttemptRow.started_at), "YYYY-MM-DD HH24")
            wait = func.extract("epoch", AttemptRow.started_at - DeliveryRow.created_at)
        first_wait = func.max(case((AttemptRow.number == 1, wait), else_=None))
        rows = session.execute(
            select(
                hour,
                func.count().filter(AttemptRow.succeeded.is_(True)),
                func.count().filter(AttemptRow.succeeded.is_(False)),
                first_wait,
            )
            .join(DeliveryRow, DeliveryRow.id == AttemptRow.delivery_id)
            .where(
                AttemptRow.started_at >= since,
                AttemptRow.started_at < until,
                AttemptRow.trigger != "test",
            )
            .group_by(hour)
        )
        return [(h, int(ok), int(bad), None if w is None else float(w)) for h, ok, bad, w in rows]
