"""Sending from the pages: a test event of a chosen type with editable
data, and a replay of everything an endpoint was sent since a time, after
a confirmation that says how many deliveries it will queue (and offers to
run it as a background job, ticked for large windows). Both need the
``operate`` capability.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from fastapi import APIRouter, Response
from starlette.concurrency import run_in_threadpool

from api.ui.catalog import example_payload, live_event_types
from api.ui.forms import Text, blank_to_none, input_time, parse_json, parse_time
from api.ui.jobs import job_redirect
from api.ui.navigation import back
from api.ui.rendering import PageRoute, UiError
from api.ui.sessions import CheckedForm, Visit, VisitDep, requires
from producer.errors import NotFoundError, PayloadTooLargeError, ValidationError
from producer.ping import DEFAULT_VERSION as TEST_VERSION
from producer.types import Attempt, Endpoint

__all__ = ["BACKGROUND_FROM", "DEFAULT_TEST_EVENT", "router", "test_attempt"]

router = APIRouter(route_class=PageRoute, dependencies=[requires("operate")])

DEFAULT_TEST_EVENT = "webhook.test"
"""What the endpoint page's one-click test sends (as the REST API's test does)."""

BACKGROUND_FROM = 1000
"""Deliveries from which the replay confirmation ticks "run in the background":
a replay that large would keep the browser waiting for its answer."""


def test_attempt(visit: Visit, endpoint: Endpoint, delivery_id: str | None) -> Attempt | None:
    """The attempt of the test send ``delivery_id`` to ``endpoint``, if it is one."""
    if delivery_id is None:
        return None
    try:
        delivery = visit.producer.get_delivery(delivery_id, tenant=visit.tenant)
    except NotFoundError:
        return None  # purged since, or an address edited by hand: nothing to show
    if delivery.endpoint_id != endpoint.id:
        return None
    attempts = visit.producer.list_attempts(delivery.id, tenant=visit.tenant)
    tests = [a for a in attempts if a.trigger == "test"]
    return tests[-1] if tests else None


def _test_page(
    visit: Visit,
    endpoint: Endpoint,
    event_type: str,
    data: str | None,
    *,
    errors: dict[str, str] | None = None,
    attempt: Attempt | None = None,
) -> Response:
    """The test-send form for ``event_type``, its data as typed (else the
    catalog's example), with the errors of the last try or its answer."""
    catalog = live_event_types(visit.producer)
    if data is None:
        known = next((e for e in catalog if e.name == event_type), None)
        # In the version the test message is made in, so its schema accepts it.
        version = endpoint.version or TEST_VERSION
        example = example_payload(known, version) if known else {"hello": "world"}
        data = json.dumps(example, indent=2, ensure_ascii=False)
    context = {
        "endpoint": endpoint,
        "event_types": [DEFAULT_TEST_EVENT, *(e.name for e in catalog)],
        "event_type": event_type,
        "data": data,
        "errors": errors or {},
        "test_attempt": attempt,
    }
    return visit.render("test_send.html", context, status_code=422 if errors else 200)


@router.get("/endpoints/{endpoint_id}/test", name="ui_endpoint_test_form")
def test_form(visit: VisitDep, endpoint_id: str, event_type: Text = None) -> Response:
    """Choose an event type and edit its example data, to send as a test."""
    endpoint = visit.producer.get_endpoint(endpoint_id, tenant=visit.tenant)
    return _test_page(visit, endpoint, blank_to_none(event_type) or DEFAULT_TEST_EVENT, None)


@router.post("/endpoints/{endpoint_id}/test", name="ui_endpoint_test")
async def endpoint_test(visit: VisitDep, form: CheckedForm, endpoint_id: str) -> Response:
    """Send a test event now. From the endpoint page (no data), the default
    event, then that page with the receiver's answer; from the test form,
    its event and data, then the form again with the answer beneath."""
    if "data" not in form:
        result = await visit.producer.atest_endpoint(endpoint_id, tenant=visit.tenant)
        return back(
            visit.request, "ui_endpoint", {"endpoint_id": endpoint_id}, test=result.delivery_id
        )
    # Library calls block: off the event loop, as FastAPI runs plain handlers.
    endpoint = await run_in_threadpool(
        visit.producer.get_endpoint, endpoint_id, tenant=visit.tenant
    )
    event_type = form.get("event_type", "").strip() or DEFAULT_TEST_EVENT
    errors: dict[str, str] = {}
    delivery_id = None
    try:
        data = parse_json(form["data"])
        result = await visit.producer.atest_endpoint(
            endpoint.id, event_type=event_type, data=data, tenant=visit.tenant
        )
        delivery_id = result.delivery_id
    except ValueError as exc:  # no JSON: not sent
        errors["data"] = str(exc)
    except (ValidationError, PayloadTooLargeError) as exc:
        field = exc.details[0].get("field", "") if exc.details else ""
        errors["event_type" if field == "event_type" else "data"] = exc.message

    def answer() -> Response:
        attempt = test_attempt(visit, endpoint, delivery_id)
        return _test_page(visit, endpoint, event_type, form["data"], errors=errors, attempt=attempt)

    return await run_in_threadpool(answer)


def _window(since: str | None, until: str | None) -> tuple[datetime, datetime | None]:
    """The replay window of a form: ``since`` is needed, ``until`` is not."""
    since_at = parse_time(since, "since")
    if since_at is None:
        raise UiError(422, "Invalid input", "since: give the time to send again from")
    return since_at, parse_time(until, "until")


@router.get("/endpoints/{endpoint_id}/replay", name="ui_endpoint_replay_confirm")
def confirm_replay(
    visit: VisitDep, endpoint_id: str, since: Text = None, until: Text = None
) -> Response:
    """How many deliveries sending again everything since ``since`` queues:
    one for each message the endpoint would get and has none of, and each
    failed one, counted without queuing anything; then a button that does."""
    endpoint = visit.producer.get_endpoint(endpoint_id, tenant=visit.tenant)
    if blank_to_none(since) is None:
        since = input_time(visit.producer.clock() - timedelta(days=1))
    since_at, until_at = _window(since, until)
    counts = visit.producer.replay_endpoint(
        endpoint.id,
        since=since_at,
        until=until_at,
        include_failed=True,
        tenant=visit.tenant,
        dry_run=True,
    )
    context = {
        "endpoint": endpoint,
        "since": input_time(since_at),
        "until": input_time(until_at) if until_at else "",
        "since_at": since_at,
        "until_at": until_at,
        "counts": counts,
        "total": counts.created + counts.requeued,
        "background": counts.created + counts.requeued >= BACKGROUND_FROM,
    }
    return visit.render("replay.html", context)


@router.post("/endpoints/{endpoint_id}/replay", name="ui_endpoint_replay")
def replay(visit: VisitDep, form: CheckedForm, endpoint_id: str) -> Response:
    """Queue, due now, what the confirmation counted (counted again: the log
    may have moved on since); with ``background`` ticked, in a job whose
    page is shown next."""
    since_at, until_at = _window(form.get("since"), form.get("until"))
    if form.get("background") == "on":
        job = visit.producer.start_replay(
            endpoint_id, since=since_at, until=until_at, include_failed=True, tenant=visit.tenant
        )
        return job_redirect(visit, job)
    result = visit.producer.replay_endpoint(
        endpoint_id, since=since_at, until=until_at, include_failed=True, tenant=visit.tenant
    )
    count = result.created + result.requeued
    return back(
        visit.request, "ui_endpoint", {"endpoint_id": endpoint_id}, done="replayed", count=count
    )
