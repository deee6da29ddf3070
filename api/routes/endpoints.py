"""``/v1/endpoints``: receiver URLs, their secrets, health and test sends."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Query, Response

from api.dependencies import Caller, Cursor, Limit, ProducerDep, Since, Until
from api.errors import error_responses
from api.schemas import (
    EndpointCreate,
    EndpointCreated,
    EndpointOut,
    EndpointSecretOut,
    EndpointStatsOut,
    EndpointUpdate,
    PageOut,
    RecoverOut,
    RecoverRequest,
    RotateSecretOut,
    RotateSecretRequest,
    TestRequest,
    TestResultOut,
)

__all__ = ["router"]

router = APIRouter(prefix="/v1/endpoints", tags=["endpoints"])

_ONE = error_responses(401, 404, 422)


@router.post(
    "",
    status_code=201,
    response_model=EndpointCreated,
    responses=error_responses(400, 401, 413, 422),
    summary="Register an endpoint",
)
def create_endpoint(body: EndpointCreate, producer: ProducerDep, caller: Caller) -> EndpointCreated:
    """Register a receiver URL. The response is the only one carrying ``secret``
    besides ``GET /secret``. A tenant key's endpoint belongs to its tenant."""
    endpoint = producer.create_endpoint(
        body.url,
        tenant=caller.scope(body.tenant),
        description=body.description,
        event_types=body.event_types,
        version=body.version,
        headers=body.headers,
        secret=body.secret,
        signature_scheme=body.signature_scheme,
        rate_limit_per_second=body.rate_limit_per_second,
        ordering=body.ordering,
        retry_schedule=body.retry_schedule,
        timeout_seconds=body.timeout_seconds,
        max_in_flight=body.max_in_flight,
        metadata=body.metadata,
    )
    return EndpointCreated.of(endpoint)


@router.get(
    "",
    response_model=PageOut[EndpointOut],
    responses=error_responses(401, 422),
    summary="List endpoints",
)
def list_endpoints(
    producer: ProducerDep,
    caller: Caller,
    tenant: Annotated[str | None, Query(max_length=128)] = None,
    status: Literal["enabled", "disabled"] | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> PageOut[EndpointOut]:
    """Endpoints, newest first. A tenant key lists only its own tenant's."""
    if not caller.sees_tenant(tenant):
        return PageOut[EndpointOut](data=[], next_cursor=None)
    page = producer.list_endpoints(
        tenant=caller.scope(tenant), status=status, limit=limit, cursor=cursor
    )
    return PageOut[EndpointOut](
        data=[EndpointOut.of(e) for e in page.data], next_cursor=page.next_cursor
    )


@router.get("/{endpoint_id}", response_model=EndpointOut, responses=_ONE, summary="Get an endpoint")
def get_endpoint(endpoint_id: str, producer: ProducerDep, caller: Caller) -> EndpointOut:
    """One endpoint; sensitive custom header values read back as ``[redacted]``."""
    return EndpointOut.of(producer.get_endpoint(endpoint_id, tenant=caller.tenant))


@router.patch(
    "/{endpoint_id}",
    response_model=EndpointOut,
    responses=error_responses(400, 401, 404, 413, 422),
    summary="Update an endpoint",
)
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
    responses=error_responses(401, 404, 422),
    summary="Delete an endpoint",
)
def delete_endpoint(endpoint_id: str, producer: ProducerDep, caller: Caller) -> Response:
    """Delete an endpoint; its pending deliveries become ``cancelled``."""
    producer.delete_endpoint(endpoint_id, tenant=caller.tenant)
    return Response(status_code=204)


@router.get(
    "/{endpoint_id}/secret",
    response_model=EndpointSecretOut,
    responses=_ONE,
    summary="Get the signing secret",
)
def get_endpoint_secret(
    endpoint_id: str, producer: ProducerDep, caller: Caller
) -> EndpointSecretOut:
    """The current secret, the public key (``v1a``) and the expiry of rotated-out secrets."""
    return EndpointSecretOut.of(producer.get_endpoint_secret(endpoint_id, tenant=caller.tenant))


@router.post(
    "/{endpoint_id}/secret/rotate",
    response_model=RotateSecretOut,
    responses=error_responses(400, 401, 404, 422),
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


@router.post(
    "/{endpoint_id}/disable",
    response_model=EndpointOut,
    responses=_ONE,
    summary="Disable an endpoint",
)
def disable_endpoint(endpoint_id: str, producer: ProducerDep, caller: Caller) -> EndpointOut:
    """Stop delivering; deliveries wait as ``pending`` until it is enabled."""
    return EndpointOut.of(producer.disable_endpoint(endpoint_id, tenant=caller.tenant))


@router.post(
    "/{endpoint_id}/enable",
    response_model=EndpointOut,
    responses=_ONE,
    summary="Enable an endpoint",
)
def enable_endpoint(endpoint_id: str, producer: ProducerDep, caller: Caller) -> EndpointOut:
    """Resume delivering; clears the failure state and releases held deliveries."""
    return EndpointOut.of(producer.enable_endpoint(endpoint_id, tenant=caller.tenant))


@router.post(
    "/{endpoint_id}/test",
    response_model=TestResultOut,
    responses=error_responses(400, 401, 404, 413, 422),
    summary="Send a test event",
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
    response_model=RecoverOut,
    responses=error_responses(400, 401, 404, 422),
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


@router.get(
    "/{endpoint_id}/stats",
    response_model=EndpointStatsOut,
    responses=_ONE,
    summary="Delivery statistics",
)
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
