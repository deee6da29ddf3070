"""Parameters shared by the routes: the producer, the caller, list paging."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request
from pydantic import AwareDatetime

from api.auth import Principal, current_principal, require_admin
from producer.producer import Producer

__all__ = [
    "Admin",
    "Caller",
    "Cursor",
    "Limit",
    "ProducerDep",
    "Since",
    "Until",
    "get_producer",
]


def get_producer(request: Request) -> Producer:
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
