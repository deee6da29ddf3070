"""Background jobs from the pages: a bulk retry of what the delivery log's
filters select, after a confirmation that counts it, and the jobs' pages
(a list, and one job that reloads itself until it is finished).

Starting a retry needs the ``operate`` capability; seeing jobs needs only
what seeing the log does. A tenant's session sees its tenant's jobs only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TypedDict

from fastapi import APIRouter, Response
from fastapi.responses import RedirectResponse

from api.ui.forms import Text, blank_to_none, input_time, one_of, parse_time
from api.ui.navigation import PAGE_SIZE, pager
from api.ui.rendering import PageRoute
from api.ui.sessions import CheckedForm, Visit, VisitDep, requires
from producer.replay import RETRYABLE
from producer.types import JOB_KINDS, JOB_STATUSES, Endpoint, Job

__all__ = ["NEEDS_FORCE", "RetryFilters", "Selection", "job_redirect", "router"]

router = APIRouter(route_class=PageRoute)
OPERATE = requires("operate")

NEEDS_FORCE = "These deliveries succeeded; tick the box to send them again anyway."
"""Why confirming a retry of succeeded deliveries without the box ticked did nothing."""

UNFINISHED = ("queued", "running")
"""Job statuses whose page reloads itself to show the progress."""


class Selection(TypedDict):
    """The keyword arguments of ``retry_deliveries`` and ``start_retry`` that
    select the deliveries."""

    status: str
    event_type: str | None
    endpoint_id: str | None
    tenant: str | None
    since: datetime | None
    until: datetime | None


@dataclass(frozen=True)
class RetryFilters:
    """The delivery log's filters a bulk retry selects by, as typed in the
    form (the text the inputs show again) and read (the values the library
    gets)."""

    status: str
    event_type: str | None
    endpoint_id: str | None
    tenant: str | None
    since_at: datetime | None
    until_at: datetime | None

    @classmethod
    def read(cls, visit: Visit, fields: dict[str, str | None]) -> RetryFilters:
        """The filters of a query string or form; a tenant's session is
        held to its tenant whatever ``tenant`` says."""
        text = {name: blank_to_none(fields.get(name)) for name in _FIELDS}
        status = one_of("status", text["status"] or "failed", RETRYABLE) or "failed"
        return cls(
            status=status,
            event_type=text["event_type"],
            endpoint_id=text["endpoint_id"],
            tenant=visit.tenant if visit.tenant is not None else text["tenant"],
            since_at=parse_time(text["since"], "since"),
            until_at=parse_time(text["until"], "until"),
        )

    def library(self) -> Selection:
        """What the library selects the deliveries by."""
        return Selection(
            status=self.status,
            event_type=self.event_type,
            endpoint_id=self.endpoint_id,
            tenant=self.tenant,
            since=self.since_at,
            until=self.until_at,
        )

    def inputs(self) -> dict[str, str]:
        """The values of the form's inputs (empty for a filter not given)."""
        return {
            "status": self.status,
            "event_type": self.event_type or "",
            "endpoint_id": self.endpoint_id or "",
            "tenant": self.tenant or "",
            "since": input_time(self.since_at) if self.since_at else "",
            "until": input_time(self.until_at) if self.until_at else "",
        }


_FIELDS = ("status", "event_type", "endpoint_id", "tenant", "since", "until")


def job_redirect(visit: Visit, job: Job) -> RedirectResponse:
    """Post/redirect/get to the page of a job just started."""
    return RedirectResponse(visit.request.url_for("ui_job", job_id=job.id).path, status_code=303)


def _endpoint(visit: Visit, endpoint_id: str | None) -> Endpoint | None:
    """The endpoint a filter names (another tenant's is the 404 page)."""
    if endpoint_id is None:
        return None
    return visit.producer.get_endpoint(endpoint_id, tenant=visit.tenant)


def _confirm_page(
    visit: Visit, filters: RetryFilters, *, refusal: str | None = None, status_code: int = 200
) -> Response:
    """How many deliveries the retry requeues, counted without writing."""
    endpoint = _endpoint(visit, filters.endpoint_id)
    # Counted as if forced: the page says how many succeeded ones the box sends.
    total = visit.producer.retry_deliveries(**filters.library(), force=True, dry_run=True)
    context = {
        "filters": filters,
        "inputs": filters.inputs(),
        "statuses": RETRYABLE,
        "endpoint": endpoint,
        "total": total,
        "refusal": refusal,
    }
    return visit.render("retry_confirm.html", context, status_code=status_code)


@router.get("/deliveries/retry", name="ui_retry_confirm", dependencies=[OPERATE])
def confirm_retry(
    visit: VisitDep,
    status: Text = None,
    event_type: Text = None,
    endpoint_id: Text = None,
    tenant: Text = None,
    since: Text = None,
    until: Text = None,
) -> Response:
    """The filters of a bulk retry, how many deliveries they select, and a
    button that requeues them in a background job."""
    fields = {
        "status": status,
        "event_type": event_type,
        "endpoint_id": endpoint_id,
        "tenant": tenant,
        "since": since,
        "until": until,
    }
    return _confirm_page(visit, RetryFilters.read(visit, fields))


@router.post("/deliveries/retry", name="ui_retry", dependencies=[OPERATE])
def start_retry(visit: VisitDep, form: CheckedForm) -> Response:
    """Start the retry the confirmation counted (the job counts again as it
    goes: the log may have moved on), then show its page."""
    filters = RetryFilters.read(visit, dict(form))
    force = form.get("force") == "on"
    if filters.status == "succeeded" and not force:
        return _confirm_page(visit, filters, refusal=NEEDS_FORCE, status_code=409)
    job = visit.producer.start_retry(**filters.library(), force=force)
    return job_redirect(visit, job)


@router.get("/jobs", name="ui_jobs")
def jobs(
    visit: VisitDep,
    kind: Text = None,
    status: Text = None,
    tenant: Text = None,
    cursor: Text = None,
) -> Response:
    """Replays and bulk retries, newest first, with how far each got."""
    kind, status, tenant, cursor = map(blank_to_none, (kind, status, tenant, cursor))
    kind = one_of("kind", kind, JOB_KINDS)
    status = one_of("status", status, JOB_STATUSES)
    page = visit.producer.list_jobs(
        tenant=visit.tenant if visit.tenant is not None else tenant,
        kind=kind,
        status=status,
        limit=PAGE_SIZE,
        cursor=cursor,
    )
    return visit.render(
        "jobs.html",
        {
            "jobs": page.data,
            "kinds": JOB_KINDS,
            "statuses": JOB_STATUSES,
            "filters": {"kind": kind or "", "status": status or "", "tenant": tenant or ""},
            **pager(visit.request, page.next_cursor, cursor),
        },
    )


@router.get("/jobs/{job_id}", name="ui_job")
def job_page(visit: VisitDep, job_id: str) -> Response:
    """One job: what it selects, how far it got, and how it ended; the page
    reloads itself every two seconds until the job is finished."""
    job = visit.producer.get_job(job_id, tenant=visit.tenant)
    context = {"job": job, "finished": job.status not in UNFINISHED}
    return visit.render("job.html", context)
