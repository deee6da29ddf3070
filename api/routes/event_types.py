"""``/v1/event-types``: the global catalogue of event names and schemas.

Event types are shared by every tenant: any key may read them, only an admin
key may create, change or archive them (a tenant key gets 403).
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.dependencies import Admin, Caller, Cursor, EdgeChecks, Limit, ProducerDep
from api.errors import route_errors
from api.schemas.common import PageOut
from api.schemas.event_types import EventTypeCreate, EventTypeOut, EventTypeUpdate

__all__ = ["router"]

router = APIRouter(prefix="/v1/event-types", tags=["event types"], dependencies=[EdgeChecks])


@router.post(
    "", status_code=201, responses=route_errors(400, 403, 409), summary="Create an event type"
)
def create_event_type(body: EventTypeCreate, producer: ProducerDep, admin: Admin) -> EventTypeOut:
    """Register an event type (admin key). Re-creating an archived type
    unarchives it; a live one with the same name is a 409."""
    event_type = producer.create_event_type(
        body.name, description=body.description, schemas=body.schemas, examples=body.examples
    )
    return EventTypeOut.of(event_type)


@router.get("", responses=route_errors(), summary="List event types")
def list_event_types(
    producer: ProducerDep,
    caller: Caller,
    include_archived: bool = False,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> PageOut[EventTypeOut]:
    """Event types in name order (the one list not ordered newest first)."""
    page = producer.list_event_types(include_archived=include_archived, limit=limit, cursor=cursor)
    return PageOut[EventTypeOut].of(page, EventTypeOut.of)


@router.get("/{name}", responses=route_errors(404), summary="Get an event type")
def get_event_type(name: str, producer: ProducerDep, caller: Caller) -> EventTypeOut:
    """One event type by name, archived ones included."""
    return EventTypeOut.of(producer.get_event_type(name))


@router.patch("/{name}", responses=route_errors(400, 403, 404), summary="Update an event type")
def update_event_type(
    name: str, body: EventTypeUpdate, producer: ProducerDep, admin: Admin
) -> EventTypeOut:
    """Change the description, schemas or examples (admin key)."""
    return EventTypeOut.of(producer.update_event_type(name, **body.changes()))


@router.delete(
    "/{name}",
    status_code=204,
    response_class=Response,
    responses=route_errors(403, 404),
    summary="Archive an event type",
)
def archive_event_type(name: str, producer: ProducerDep, admin: Admin) -> Response:
    """Archive an event type (admin key): it can no longer be sent, and it
    stays readable so old messages keep their meaning."""
    producer.archive_event_type(name)
    return Response(status_code=204)
