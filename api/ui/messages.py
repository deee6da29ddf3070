"""The message pages: the list of sent events, and one event with its deliveries."""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.ui.forms import Text, blank_to_none, parse_time
from api.ui.navigation import PAGE_SIZE, pager
from api.ui.rendering import PageRoute
from api.ui.sessions import VisitDep

__all__ = ["router"]

router = APIRouter(route_class=PageRoute)


@router.get("/messages", name="ui_messages")
def messages(
    visit: VisitDep,
    event_type: Text = None,
    tenant: Text = None,
    since: Text = None,
    until: Text = None,
    cursor: Text = None,
) -> Response:
    """Messages, newest first, filtered by event type, tenant and time."""
    event_type, tenant, cursor = map(blank_to_none, (event_type, tenant, cursor))
    page = visit.producer.list_messages(
        tenant=visit.tenant if visit.tenant is not None else tenant,
        event_type=event_type,
        since=parse_time(since, "since"),
        until=parse_time(until, "until"),
        limit=PAGE_SIZE,
        cursor=cursor,
    )
    return visit.render(
        "messages.html",
        {
            "messages": page.data,
            "filters": {
                "event_type": event_type or "",
                "tenant": tenant or "",
                "since": since or "",
                "until": until or "",
            },
            **pager(visit.request, page.next_cursor, cursor),
        },
    )


@router.get("/messages/{message_id}", name="ui_message")
def message_page(visit: VisitDep, message_id: str, cursor: Text = None) -> Response:
    """One message: its envelope and the deliveries it fanned out to."""
    message = visit.producer.get_message(message_id, tenant=visit.tenant)
    deliveries = visit.producer.list_deliveries(
        message_id=message.id, tenant=visit.tenant, limit=PAGE_SIZE, cursor=blank_to_none(cursor)
    )
    return visit.render(
        "message.html",
        {
            "message": message,
            "deliveries": deliveries.data,
            **pager(visit.request, deliveries.next_cursor, cursor),
        },
    )
