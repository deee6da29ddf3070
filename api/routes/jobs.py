"""``/v1/jobs``: replays and bulk retries running in the background, and their progress."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.dependencies import Caller, Cursor, EdgeChecks, Limit, ProducerDep, TenantFilter
from api.errors import route_errors
from api.schemas.common import PageOut
from api.schemas.jobs import JobOut
from producer.types import JobKind, JobStatus

__all__ = ["router"]

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], dependencies=[EdgeChecks])


@router.get("", responses=route_errors(), summary="List jobs")
def list_jobs(
    producer: ProducerDep,
    caller: Caller,
    tenant: TenantFilter = None,
    kind: JobKind | None = None,
    status: JobStatus | None = None,
    endpoint_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> PageOut[JobOut]:
    """Jobs, newest first. A tenant key lists only its own tenant's."""
    if not caller.sees_tenant(tenant):
        return PageOut[JobOut](data=[], next_cursor=None)
    page = producer.list_jobs(
        tenant=caller.scope(tenant),
        kind=kind,
        status=status,
        endpoint_id=endpoint_id,
        limit=limit,
        cursor=cursor,
    )
    return PageOut[JobOut].of(page, JobOut.of)


@router.get("/{job_id}", responses=route_errors(404), summary="Get a job")
def get_job(job_id: str, producer: ProducerDep, caller: Caller) -> JobOut:
    """A job and how far it got; another tenant's job is 404 like any unknown id."""
    return JobOut.of(producer.get_job(job_id, tenant=caller.tenant))
