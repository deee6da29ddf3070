"""``/v1/deliveries``: the delivery log, attempts and manual retries."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Query

from api.dependencies import Caller, Cursor, Limit, ProducerDep, Since, Until
from api.errors import error_responses
from api.schemas import AttemptOut, DeliveryOut, PageOut, RetryRequest

__all__ = ["router"]

router = APIRouter(prefix="/v1/deliveries", tags=["deliveries"])

DeliveryStatus = Literal["pending", "sending", "succeeded", "failed", "cancelled"]


@router.get(
    "",
    response_model=PageOut[DeliveryOut],
    responses=error_responses(401, 422),
    summary="List deliveries",
)
def list_deliveries(
    producer: ProducerDep,
    caller: Caller,
    message_id: Annotated[str | None, Query(max_length=64)] = None,
    endpoint_id: Annotated[str | None, Query(max_length=64)] = None,
    status: DeliveryStatus | None = None,
    event_type: Annotated[str | None, Query(max_length=128)] = None,
    tenant: Annotated[str | None, Query(max_length=128)] = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> PageOut[DeliveryOut]:
    """The delivery log, newest first; filters combine. A tenant key lists only its own."""
    if not caller.sees_tenant(tenant):
        return PageOut[DeliveryOut](data=[], next_cursor=None)
    page = producer.list_deliveries(
        message_id=message_id,
        endpoint_id=endpoint_id,
        status=status,
        event_type=event_type,
        tenant=caller.scope(tenant),
        since=since,
        until=until,
        limit=limit,
        cursor=cursor,
    )
    return PageOut[DeliveryOut](
        data=[DeliveryOut.of(d) for d in page.data], next_cursor=page.next_cursor
    )


@router.get(
    "/{delivery_id}",
    response_model=DeliveryOut,
    responses=error_responses(401, 404, 422),
    summary="Get a delivery",
)
def get_delivery(delivery_id: str, producer: ProducerDep, caller: Caller) -> DeliveryOut:
    """One message to one endpoint and where it stands."""
    return DeliveryOut.of(producer.get_delivery(delivery_id, tenant=caller.tenant))


@router.get(
    "/{delivery_id}/attempts",
    response_model=PageOut[AttemptOut],
    responses=error_responses(401, 404, 422),
    summary="List a delivery's attempts",
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
    response_model=DeliveryOut,
    responses=error_responses(400, 401, 404, 409, 422),
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
