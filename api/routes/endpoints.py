"""``/v1/endpoints``: receiver URLs, their secrets, health and test sends."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Response

from api.blocking import quick_read
from api.dependencies import (
    Caller,
    Cursor,
    EdgeChecks,
    Limit,
    ProducerDep,
    Since,
    TenantFilter,
    Until,
)
from api.errors import route_errors
from api.schemas.common import PageOut
from api.schemas.endpoints import (
    EndpointCreate,
    EndpointCreated,
    EndpointOut,
    EndpointSecretOut,
    EndpointStatsOut,
    EndpointUpdate,
    RecoverOut,
    RecoverRequest,
    ReplayOut,
    ReplayRequest,
    RotateSecretOut,
    RotateSecretRequest,
    TestRequest,
    TestResultOut,
)
from api.schemas.jobs import JobOut
from producer.types import EndpointStatus

__all__ = ["router"]

router = APIRouter(prefix="/v1/endpoints", tags=["endpoints"], dependencies=[EdgeChecks])


@router.post("", status_code=201, responses=route_errors(400, 413), summary="Register an endpoint")
def create_endpoint(body: EndpointCreate, producer: ProducerDep, caller: Caller) -> EndpointCreated:
    """Register a receiver URL. The response is the only one carrying ``secret``
    besides ``GET /secret``. A tenant key's endpoint belongs to its tenant."""
    endpoint = producer.create_endpoint(
        body.url, tenant=caller.scope(body.tenant), **body.settings()
    )
    return EndpointCreated.of(endpoint)


@router.get("", responses=route_errors(), summary="List endpoints")
async def list_endpoints(
    producer: ProducerDep,
    caller: Caller,
    tenant: TenantFilter = None,
    status: EndpointStatus | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> PageOut[EndpointOut]:
    """Endpoints, newest first. A tenant key lists only its own tenant's."""
    if not caller.sees_tenant(tenant):
        return PageOut[EndpointOut](data=[], next_cursor=None)
    page = await quick_read(
        producer,
        producer.list_endpoints,
        tenant=caller.scope(tenant),
        status=status,
        limit=limit,
        cursor=cursor,
    )
    return PageOut[EndpointOut].of(page, EndpointOut.of)


@router.get("/{endpoint_id}", responses=route_errors(404), summary="Get an endpoint")
def get_endpoint(endpoint_id: str, producer: ProducerDep, caller: Caller) -> EndpointOut:
    """One endpoint; sensitive custom header values read back as ``[redacted]``."""
    return EndpointOut.of(producer.get_endpoint(endpoint_id, tenant=caller.tenant))


@router.patch("/{endpoint_id}", responses=route_errors(400, 404, 413), summary="Update an endpoint")
def update_endpoint(
    endpoint_id: str, body: EndpointUpdate, producer: ProducerDep, caller: Caller
) -> EndpointOut:
    """Change the fields sent; ``null`` resets a nullable one. Switching to or
    from ``v1a`` generates a new secret (the key kinds differ)."""
    endpoint = producer.update_endpoint(endpoint_id, tenant=caller.tenant, **body.changes())
    return EndpointOut.of(endpoint)


@router.delete(
    "/{endpoint_id}",
    status_code=204,
    response_class=Response,
    responses=route_errors(404),
    summary="Delete an endpoint",
)
def delete_endpoint(endpoint_id: str, producer: ProducerDep, caller: Caller) -> Response:
    """Delete an endpoint; its pending deliveries become ``cancelled``."""
    producer.delete_endpoint(endpoint_id, tenant=caller.tenant)
    return Response(status_code=204)


@router.get("/{endpoint_id}/secret", responses=route_errors(404), summary="Get the signing secret")
def get_endpoint_secret(
    endpoint_id: str, producer: ProducerDep, caller: Caller
) -> EndpointSecretOut:
    """The current secret, the public key (``v1a``) and the expiry of rotated-out secrets."""
    return EndpointSecretOut.of(producer.get_endpoint_secret(endpoint_id, tenant=caller.tenant))


@router.post(
    "/{endpoint_id}/secret/rotate",
    responses=route_errors(400, 404),
    summary="Rotate the signing secret",
)
def rotate_endpoint_secret(
    endpoint_id: str,
    producer: ProducerDep,
    caller: Caller,
    body: Annotated[RotateSecretRequest | None, Body()] = None,
) -> RotateSecretOut:
    """Replace the secret; the old one keeps signing for the grace period, so
    receivers can switch without missing a delivery."""
    body = body or RotateSecretRequest()
    secret = producer.rotate_endpoint_secret(
        endpoint_id,
        tenant=caller.tenant,
        secret=body.secret,
        grace_period_seconds=body.grace_period_seconds,
    )
    return RotateSecretOut(secret=secret)


@router.post("/{endpoint_id}/disable", responses=route_errors(404), summary="Disable an endpoint")
def disable_endpoint(endpoint_id: str, producer: ProducerDep, caller: Caller) -> EndpointOut:
    """Stop delivering; deliveries wait as ``pending`` until it is enabled."""
    return EndpointOut.of(producer.disable_endpoint(endpoint_id, tenant=caller.tenant))


@router.post("/{endpoint_id}/enable", responses=route_errors(404), summary="Enable an endpoint")
def enable_endpoint(endpoint_id: str, producer: ProducerDep, caller: Caller) -> EndpointOut:
    """Resume delivering; clears the failure state and releases held deliveries."""
    return EndpointOut.of(producer.enable_endpoint(endpoint_id, tenant=caller.tenant))


@router.post(
    "/{endpoint_id}/test", responses=route_errors(400, 404, 413), summary="Send a test event"
)
async def send_test_event(
    endpoint_id: str,
    producer: ProducerDep,
    caller: Caller,
    body: Annotated[TestRequest | None, Body()] = None,
) -> TestResultOut:
    """Send one event now and answer with what the receiver said. Works on a
    disabled endpoint too; logged with trigger ``test`` and never retried."""
    body = body or TestRequest()
    result = await producer.atest_endpoint(
        endpoint_id, event_type=body.event_type, data=body.data, tenant=caller.tenant
    )
    return TestResultOut.of(result)


@router.post(
    "/{endpoint_id}/recover",
    status_code=202,
    responses=route_errors(400, 404),
    summary="Requeue failed deliveries",
)
def recover_endpoint(
    endpoint_id: str, body: RecoverRequest, producer: ProducerDep, caller: Caller
) -> RecoverOut:
    """Every ``failed`` delivery of the endpoint created in ``[since, until)``
    goes back to ``pending``, due now."""
    count = producer.recover_endpoint(
        endpoint_id, since=body.since, until=body.until, tenant=caller.tenant
    )
    return RecoverOut(requeued=count)


@router.post(
    "/{endpoint_id}/replay",
    status_code=202,
    responses=route_errors(400, 404),
    summary="Replay what an endpoint missed",
)
def replay_endpoint(
    endpoint_id: str, body: ReplayRequest, producer: ProducerDep, caller: Caller
) -> ReplayOut | JobOut:
    """A delivery, due now, for every message created in ``[since, until)``
    that the endpoint would get if it were sent now (event types, channels,
    filter) and has no delivery of; ``include_failed`` also requeues its
    failed ones. Runs in batches and answers when done; running it again
    creates nothing new. ``dry_run`` answers the counts it would reach,
    writing nothing. With ``background`` the answer is a job, at once, that
    the workers run (see ``/v1/jobs``)."""
    window: dict[str, Any] = {
        "since": body.since,
        "until": body.until,
        "event_types": body.event_types,
        "include_failed": body.include_failed,
        "tenant": caller.tenant,
        "dry_run": body.dry_run,
    }
    if body.background:
        return JobOut.of(producer.start_replay(endpoint_id, **window))
    return ReplayOut.of(producer.replay_endpoint(endpoint_id, **window))


@router.get("/{endpoint_id}/stats", responses=route_errors(404), summary="Delivery statistics")
def endpoint_stats(
    endpoint_id: str,
    producer: ProducerDep,
    caller: Caller,
    since: Since = None,
    until: Until = None,
) -> EndpointStatsOut:
    """Counts, success rate and attempt latency; the window defaults to the last 24 hours."""
    stats = producer.endpoint_stats(endpoint_id, since=since, until=until, tenant=caller.tenant)
    return EndpointStatsOut.of(stats)
