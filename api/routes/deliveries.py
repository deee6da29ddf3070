"""``/v1/deliveries``: the delivery log, attempts and manual retries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query

from api.dependencies import Caller, EdgeChecks, LogFiltersDep, ProducerDep
from api.errors import route_errors
from api.schemas.common import PageOut
from api.schemas.deliveries import (
    AttemptOut,
    BulkRetryOut,
    BulkRetryRequest,
    DeliveryOut,
    RetryRequest,
)
from api.schemas.jobs import JobOut
from producer.types import DeliveryStatus

__all__ = ["router"]

router = APIRouter(prefix="/v1/deliveries", tags=["deliveries"], dependencies=[EdgeChecks])


@dataclass(frozen=True)
class DeliveryFilters:
    """The filters of the delivery list that the message list lacks.

    A dependency like :class:`~api.dependencies.LogFilters`, not parameters of
    the route: FastAPI checks dependencies before a route's own parameters,
    and this way the errors of several bad filters come in the documented
    order.
    """

    message_id: Annotated[str | None, Query(max_length=64)] = None
    endpoint_id: Annotated[str | None, Query(max_length=64)] = None
    status: DeliveryStatus | None = None


@router.get("", responses=route_errors(), summary="List deliveries")
def list_deliveries(
    producer: ProducerDep,
    caller: Caller,
    filters: Annotated[DeliveryFilters, Depends()],
    log: LogFiltersDep,
) -> PageOut[DeliveryOut]:
    """The delivery log, newest first; filters combine. A tenant key lists only its own."""
    query = log.query(caller)
    if query is None:
        return PageOut[DeliveryOut](data=[], next_cursor=None)
    page = producer.list_deliveries(
        message_id=filters.message_id,
        endpoint_id=filters.endpoint_id,
        status=filters.status,
        **query,
    )
    return PageOut[DeliveryOut].of(page, DeliveryOut.of)


@router.post(
    "/retry",
    status_code=202,
    responses=route_errors(400, 404),
    summary="Retry the deliveries a filter selects",
)
def retry_deliveries(
    body: BulkRetryRequest, producer: ProducerDep, caller: Caller
) -> BulkRetryOut | JobOut:
    """Every delivery the filters select (``failed`` ones by default) back
    to ``pending``, due now, with trigger ``manual``; deliveries of deleted
    endpoints are left alone. A tenant key requeues only its own tenant's
    (another tenant's filter selects nothing: ``requeued`` 0, and no job).
    With ``background`` the answer is a job the workers run (``/v1/jobs``)."""
    if not caller.sees_tenant(body.tenant):
        return BulkRetryOut(requeued=0)
    filters: dict[str, Any] = {
        "status": body.status,
        "event_type": body.event_type,
        "endpoint_id": body.endpoint_id,
        "tenant": caller.scope(body.tenant),
        "since": body.since,
        "until": body.until,
        "force": body.force,
        "dry_run": body.dry_run,
    }
    if body.background:
        return JobOut.of(producer.start_retry(**filters))
    return BulkRetryOut(requeued=producer.retry_deliveries(**filters))


@router.get("/{delivery_id}", responses=route_errors(404), summary="Get a delivery")
def get_delivery(delivery_id: str, producer: ProducerDep, caller: Caller) -> DeliveryOut:
    """One message to one endpoint and where it stands."""
    return DeliveryOut.of(producer.get_delivery(delivery_id, tenant=caller.tenant))


@router.get(
    "/{delivery_id}/attempts", responses=route_errors(404), summary="List a delivery's attempts"
)
def list_attempts(delivery_id: str, producer: ProducerDep, caller: Caller) -> PageOut[AttemptOut]:
    """Every attempt, oldest first, with request and response (bodies up to
    16 KiB). In the list shape of the API; one page holds them all, since a
    retry schedule bounds their number."""
    attempts = producer.list_attempts(delivery_id, tenant=caller.tenant)
    return PageOut[AttemptOut](data=[AttemptOut.of(a) for a in attempts], next_cursor=None)


@router.post(
    "/{delivery_id}/retry",
    status_code=202,
    responses=route_errors(400, 404, 409),
    summary="Retry a delivery",
)
def retry_delivery(
    delivery_id: str,
    producer: ProducerDep,
    caller: Caller,
    body: Annotated[RetryRequest | None, Body()] = None,
) -> DeliveryOut:
    """Back to ``pending``, due now, with trigger ``manual``. A ``succeeded``
    delivery needs ``{"force": true}`` (else 409 ``invalid_state``)."""
    force = body.force if body is not None else False
    return DeliveryOut.of(producer.retry_delivery(delivery_id, tenant=caller.tenant, force=force))
