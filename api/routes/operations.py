"""Operational routes: the health check and Prometheus metrics (no key
needed), and the service overview (an admin key)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.blocking import quick_read
from api.dependencies import Admin, EdgeChecks, ProducerDep, Since, Until
from api.errors import route_errors
from api.schemas.operations import HealthOut, StatsOut
from producer.metrics import Metrics

__all__ = ["router"]

router = APIRouter(tags=["operations"], dependencies=[EdgeChecks])


@router.get(
    "/v1/health",
    response_model=HealthOut,
    responses={503: {"model": HealthOut, "description": "The database is unreachable."}},
    summary="Health check",
)
async def health(producer: ProducerDep) -> JSONResponse:
    """``ok`` when the database answers a query; 503 otherwise. No key needed."""
    try:
        # The one blocking step (in place on SQLite, in a thread otherwise);
        # the rest is answered in place (no model to validate).
        await quick_read(producer, producer.check_database)
    except Exception:
        # Any failure to query means "not healthy"; the reason belongs in the
        # database's own logs, not in an unauthenticated response.
        return JSONResponse(_DOWN, status_code=503)
    return JSONResponse(_UP)


_UP = HealthOut(status="ok", database="ok").model_dump()
_DOWN = HealthOut(status="unavailable", database="unavailable").model_dump()


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text."}},
    summary="Prometheus metrics",
)
def metrics(request: Request) -> Response:
    """Prometheus text exposition of this app's registry. No key needed."""
    app_metrics: Metrics = request.app.state.metrics
    return Response(generate_latest(app_metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/v1/stats", responses=route_errors(403), summary="Service overview")
def stats(
    producer: ProducerDep, admin: Admin, since: Since = None, until: Until = None
) -> StatsOut:
    """Attempts, success rate and throughput over the window (default: the
    last 24 hours, at most 31 days), the ten endpoints with the most failed
    attempts, each hour's attempts and longest first-attempt wait, and the
    queue lag and due deliveries now. Every tenant's: an admin key only."""
    return StatsOut.of(producer.overview(since=since, until=until))


@router.get("/", include_in_schema=False)
@router.get("/v1", include_in_schema=False)
def index(request: Request) -> dict[str, str]:
    """Where things are, for whoever opens the service's address first."""
    base = str(request.base_url).rstrip("/")
    return {
        "api": f"{base}/v1",
        "docs": f"{base}/docs",
        "openapi": f"{base}/openapi.json",
        "ui": f"{base}/ui",
        "health": f"{base}/v1/health",
    }
