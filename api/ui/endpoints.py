"""The endpoint pages: the list, one endpoint with its health and
deliveries, and the actions taken on it (enable, disable, secret rotation,
recovery of failed deliveries; test sends and replays are in
:mod:`~api.ui.sends`, creating and editing in :mod:`~api.ui.manage`)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.ui.charts import bar_chart, hour_window, hourly_counts
from api.ui.forms import Text, blank_to_none, input_time, one_of, parse_time
from api.ui.navigation import PAGE_SIZE, back, notice, pager
from api.ui.rendering import PageRoute, UiError
from api.ui.sends import test_attempt
from api.ui.sessions import CheckedForm, VisitDep, requires
from producer.endpoints import MAX_REASON
from producer.types import DELIVERY_STATUSES, ENDPOINT_STATUSES
from producer.validation import redact_headers

__all__ = ["router"]

router = APIRouter(route_class=PageRoute)
OPERATE = requires("operate")


@router.get("/endpoints", name="ui_endpoints")
def endpoints(
    visit: VisitDep,
    status: Text = None,
    tenant: Text = None,
    cursor: Text = None,
    done: Text = None,
) -> Response:
    """Endpoints, newest first, with their success rate over the last day."""
    status, tenant, cursor = map(blank_to_none, (status, tenant, cursor))
    status = one_of("status", status, ENDPOINT_STATUSES)
    scope = visit.tenant if visit.tenant is not None else tenant
    page = visit.producer.list_endpoints(
        tenant=scope, status=status, limit=PAGE_SIZE, cursor=cursor
    )
    # One grouped query for the whole page, not one per endpoint.
    stats = visit.producer.endpoint_success_rates([e.id for e in page.data])
    rows = [(endpoint, stats[endpoint.id]) for endpoint in page.data]
    return visit.render(
        "endpoints.html",
        {
            "rows": rows,
            "statuses": ENDPOINT_STATUSES,
            "filters": {"status": status or "", "tenant": tenant or ""},
            **pager(visit.request, page.next_cursor, cursor),
            "notice": notice(done, None),
        },
    )


@router.get("/endpoints/{endpoint_id}", name="ui_endpoint")
def endpoint_page(
    visit: VisitDep,
    endpoint_id: str,
    status: Text = None,
    event_type: Text = None,
    since: Text = None,
    until: Text = None,
    cursor: Text = None,
    done: Text = None,
    count: Annotated[int | None, Query(ge=0)] = None,
    test: Text = None,
) -> Response:
    """One endpoint: settings, the last day's statistics and hourly chart, and
    its deliveries (filtered); after a test send (``test``: its delivery),
    what the receiver answered."""
    status, event_type, cursor = map(blank_to_none, (status, event_type, cursor))
    status = one_of("status", status, DELIVERY_STATUSES)
    since_at, until_at = parse_time(since, "since"), parse_time(until, "until")
    producer, tenant = visit.producer, visit.tenant
    endpoint = producer.get_endpoint(endpoint_id, tenant=tenant)
    now = producer.clock()
    stats = producer.endpoint_stats(endpoint.id, tenant=tenant)
    window_since, window_until = hour_window(now)
    counts = hourly_counts(
        producer, endpoint.id, since=window_since, until=window_until, tenant=tenant
    )
    deliveries = producer.list_deliveries(
        endpoint_id=endpoint.id,
        tenant=tenant,
        status=status,
        event_type=event_type,
        since=since_at,
        until=until_at,
        limit=PAGE_SIZE,
        cursor=cursor,
    )
    return visit.render(
        "endpoint.html",
        {
            "endpoint": endpoint,
            "headers": redact_headers(endpoint.headers),
            "stats": stats,
            "chart": bar_chart(counts),
            "deliveries": deliveries.data,
            "statuses": DELIVERY_STATUSES,
            "filters": {
                "status": status or "",
                "event_type": event_type or "",
                "since": since or "",
                "until": until or "",
            },
            **pager(visit.request, deliveries.next_cursor, cursor),
            "notice": notice(done, count),
            "test_attempt": test_attempt(visit, endpoint, blank_to_none(test)),
            "recover_since": input_time(now - timedelta(days=1)),
        },
    )


@router.post("/endpoints/{endpoint_id}/enable", name="ui_endpoint_enable", dependencies=[OPERATE])
def endpoint_enable(visit: VisitDep, form: CheckedForm, endpoint_id: str) -> Response:
    """Resume delivering to the endpoint."""
    visit.producer.enable_endpoint(endpoint_id, tenant=visit.tenant)
    return back(visit.request, "ui_endpoint", {"endpoint_id": endpoint_id}, done="enabled")


@router.post("/endpoints/{endpoint_id}/disable", name="ui_endpoint_disable", dependencies=[OPERATE])
def endpoint_disable(visit: VisitDep, form: CheckedForm, endpoint_id: str) -> Response:
    """Stop delivering to the endpoint, for the reason given (else ``manual``)."""
    reason = form.get("reason", "").strip() or "manual"
    if len(reason) > MAX_REASON:
        raise UiError(422, "Invalid input", f"reason: at most {MAX_REASON} characters")
    visit.producer.disable_endpoint(endpoint_id, tenant=visit.tenant, reason=reason)
    return back(visit.request, "ui_endpoint", {"endpoint_id": endpoint_id}, done="disabled")


@router.post(
    "/endpoints/{endpoint_id}/rotate-secret", name="ui_endpoint_rotate", dependencies=[OPERATE]
)
def endpoint_rotate(visit: VisitDep, form: CheckedForm, endpoint_id: str) -> Response:
    """Make a new signing secret and show it, once."""
    new_secret = visit.producer.rotate_endpoint_secret(endpoint_id, tenant=visit.tenant)
    # Shown in this response only: it is not stored anywhere the UI can
    # read it back, and the page is marked no-store.
    return visit.render("secret.html", {"secret": new_secret, "endpoint_id": endpoint_id})


@router.post("/endpoints/{endpoint_id}/recover", name="ui_endpoint_recover", dependencies=[OPERATE])
def endpoint_recover(visit: VisitDep, form: CheckedForm, endpoint_id: str) -> Response:
    """Queue again every failed delivery of the endpoint created in the window given."""
    since_at = parse_time(form.get("since"), "since")
    if since_at is None:
        raise UiError(422, "Invalid input", "since: give the start of the window to recover")
    until_at = parse_time(form.get("until"), "until")
    count = visit.producer.recover_endpoint(
        endpoint_id, since=since_at, until=until_at, tenant=visit.tenant
    )
    return back(
        visit.request, "ui_endpoint", {"endpoint_id": endpoint_id}, done="recovered", count=count
    )
