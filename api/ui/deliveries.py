"""The delivery page (its attempts and payload) and retrying a delivery."""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.ui.forms import Text
from api.ui.navigation import back, notice
from api.ui.rendering import PageRoute
from api.ui.sessions import CheckedForm, Visit, VisitDep, requires
from producer.errors import NotFoundError

__all__ = ["router"]

router = APIRouter(route_class=PageRoute)

NEEDS_FORCE = "This delivery succeeded; tick “force” to send it again."
"""Why a retry without ``force`` of a succeeded delivery changed nothing."""


@router.get("/deliveries/{delivery_id}", name="ui_delivery")
def delivery_page(visit: VisitDep, delivery_id: str, done: Text = None) -> Response:
    """One delivery: where it stands, the payload sent, and every attempt."""
    return _page(visit, delivery_id, notice=notice(done, None))


def _page(
    visit: Visit,
    delivery_id: str,
    *,
    notice: str | None = None,
    refusal: str | None = None,
    status_code: int = 200,
) -> Response:
    producer, tenant = visit.producer, visit.tenant
    delivery = producer.get_delivery(delivery_id, tenant=tenant)
    attempts = producer.list_attempts(delivery.id, tenant=tenant)
    payload = producer.get_delivery_payload(delivery.id, tenant=tenant)
    try:
        endpoint = producer.get_endpoint(delivery.endpoint_id, tenant=tenant)
    except NotFoundError:
        endpoint = None  # deleted since; its log stays readable
    return visit.render(
        "delivery.html",
        {
            "delivery": delivery,
            "attempts": attempts,
            "payload": payload,
            "endpoint": endpoint,
            "notice": notice,
            "refusal": refusal,
        },
        status_code=status_code,
    )


@router.post(
    "/deliveries/{delivery_id}/retry",
    name="ui_delivery_retry",
    dependencies=[requires("operate")],
)
def delivery_retry(visit: VisitDep, form: CheckedForm, delivery_id: str) -> Response:
    """Send the delivery again now (a succeeded one only with ``force`` ticked)."""
    force = form.get("force") == "on"
    delivery = visit.producer.get_delivery(delivery_id, tenant=visit.tenant)
    if delivery.status == "succeeded" and not force:
        # Said on the page, next to the box to tick, rather than left to the
        # browser's validation bubble or a bare error page.
        return _page(visit, delivery_id, refusal=NEEDS_FORCE, status_code=409)
    visit.producer.retry_delivery(delivery_id, tenant=visit.tenant, force=force)
    return back(visit.request, "ui_delivery", {"delivery_id": delivery_id}, done="retried")
