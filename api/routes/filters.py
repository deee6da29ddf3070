"""``/v1/filters``: trying an endpoint's payload filter on a sample payload."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from api.auth import current_principal
from api.dependencies import EdgeChecks, ProducerDep
from api.errors import route_errors
from api.schemas.filters import FilterTest, FilterTestOut

__all__ = ["router"]

# Any valid key may call it (it reads and stores nothing), but only a key.
router = APIRouter(
    prefix="/v1/filters",
    tags=["filters"],
    dependencies=[EdgeChecks, Depends(current_principal)],
)


@router.post("/test", responses=route_errors(400), summary="Test a payload filter")
def test_filter(body: FilterTest, producer: ProducerDep) -> FilterTestOut:
    """Whether ``payload`` (a message's ``data``) passes ``filter``; a
    malformed filter is 422 with the failing path in ``details``."""
    return FilterTestOut(matches=producer.test_filter(body.filter, body.payload))
