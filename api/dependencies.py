"""Parameters shared by the routes: the producer, the caller, list paging,
and the filters the message and delivery lists share."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, TypedDict

from fastapi import Depends, Query, Request
from pydantic import AwareDatetime

from api.auth import Principal, current_principal, require_admin
from producer.errors import NotFoundError, ValidationError
from producer.producer import Producer

__all__ = [
    "Admin",
    "Caller",
    "Cursor",
    "EdgeChecks",
    "Limit",
    "LogFilters",
    "LogFiltersDep",
    "LogQuery",
    "ProducerDep",
    "Since",
    "TenantFilter",
    "Until",
    "get_producer",
    "refuse_nul",
]


async def refuse_nul(request: Request) -> None:
    """A router dependency: no path or query parameter may hold a NUL.

    PostgreSQL refuses NUL in any text it is asked to compare, while SQLite
    simply finds nothing; checking here makes both answer alike: a path id
    with a NUL names nothing (404), a query filter with one is invalid (422).
    """
    for name, value in request.path_params.items():
        if isinstance(value, str) and "\x00" in value:
            raise NotFoundError(f"{name} {value!r} not found")
    for name, value in request.query_params.multi_items():
        if "\x00" in value or "\x00" in name:
            raise ValidationError.for_field(name, "must not contain NUL characters")


EdgeChecks = Depends(refuse_nul)
"""Put in every API and UI router's ``dependencies``."""


async def get_producer(request: Request) -> Producer:
    """The producer the app was created with."""
    producer: Producer = request.app.state.producer
    return producer


ProducerDep = Annotated[Producer, Depends(get_producer)]
Caller = Annotated[Principal, Depends(current_principal)]
Admin = Annotated[Principal, Depends(require_admin)]
Limit = Annotated[int, Query(ge=1, le=250, description="Page size, 1-250.")]
Cursor = Annotated[
    str | None, Query(description="The `next_cursor` of the previous page.", max_length=200)
]
Since = Annotated[AwareDatetime | None, Query(description="RFC 3339 with a timezone; inclusive.")]
Until = Annotated[AwareDatetime | None, Query(description="RFC 3339 with a timezone; exclusive.")]
TenantFilter = Annotated[str | None, Query(max_length=128)]
"""``?tenant=``: list one tenant's (a tenant key sees only its own anyway)."""


class LogQuery(TypedDict):
    """The keyword arguments of ``Producer.list_messages`` and
    ``Producer.list_deliveries`` that :class:`LogFilters` fills in."""

    event_type: str | None
    tenant: str | None
    since: datetime | None
    until: datetime | None
    limit: int
    cursor: str | None


@dataclass(frozen=True)
class LogFilters:
    """The query parameters the message and delivery lists share: the event
    type, the tenant, the creation window ``[since, until)`` and the page."""

    event_type: Annotated[str | None, Query(max_length=128)] = None
    tenant: TenantFilter = None
    since: Since = None
    until: Until = None
    limit: Limit = 50
    cursor: Cursor = None

    def query(self, caller: Principal) -> LogQuery | None:
        """The list's arguments as ``caller`` may ask; None when the filters
        ask for a tenant the caller cannot see, so the list is empty."""
        if not caller.sees_tenant(self.tenant):
            return None
        return LogQuery(
            event_type=self.event_type,
            tenant=caller.scope(self.tenant),
            since=self.since,
            until=self.until,
            limit=self.limit,
            cursor=self.cursor,
        )


LogFiltersDep = Annotated[LogFilters, Depends()]
