"""Managing endpoints from the pages: create, edit and delete one, and
reveal its signing secret. Every route needs the ``manage`` capability.

The form is checked by the library, as the REST API's requests are: its
errors come back beside the fields (see :mod:`api.ui.endpoint_form`), the
destination guard included.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.ui.catalog import event_type_choices, live_event_types
from api.ui.endpoint_form import EndpointForm
from api.ui.navigation import back
from api.ui.rendering import PageRoute
from api.ui.sessions import CheckedForm, Visit, VisitDep, requires
from producer.errors import ValidationError
from producer.types import Endpoint

__all__ = ["router"]

router = APIRouter(route_class=PageRoute, dependencies=[requires("manage")])


def _form_page(
    visit: Visit, form: EndpointForm, endpoint: Endpoint | None, *, status_code: int = 200
) -> Response:
    """The endpoint form (of ``endpoint``, or of a new one), ticked as ``form`` is."""
    event_types = live_event_types(visit.producer)
    versions = sorted({v for e in event_types for v in (*e.schemas, *e.examples)})
    context = {
        "form": form,
        "endpoint": endpoint,
        "choices": event_type_choices(event_types),
        "versions": versions,
    }
    return visit.render("endpoint_form.html", context, status_code=status_code)


def _catalog_names(visit: Visit) -> set[str]:
    return {c.pattern for c in event_type_choices(live_event_types(visit.producer))}


@router.get("/endpoints/new", name="ui_endpoint_new")
def new_endpoint(visit: VisitDep) -> Response:
    """The form of a new endpoint."""
    return _form_page(visit, EndpointForm.blank(), None)


@router.post("/endpoints/new", name="ui_endpoint_create")
def create_endpoint(visit: VisitDep, posted: CheckedForm) -> Response:
    """Register the endpoint of the form and show its signing secret, once;
    or the form again, with what is wrong beside each field."""
    form = EndpointForm.posted(posted)
    settings = form.settings()
    # An admin names the tenant; a tenant's session creates for its own.
    tenant = visit.tenant if visit.tenant is not None else (form.values["tenant"].strip() or None)
    if not form.errors:
        try:
            url = settings.pop("url")
            endpoint = visit.producer.create_endpoint(url, tenant=tenant, **settings)
        except ValidationError as exc:
            form.refused(exc)
    if form.errors:
        return _form_page(visit, form, None, status_code=422)
    # Shown in this response only; the page is marked no-store.
    context = {"endpoint": endpoint, "secret": endpoint.secret, "created": True}
    return visit.render("secret.html", context, status_code=201)


@router.get("/endpoints/{endpoint_id}/edit", name="ui_endpoint_edit")
def edit_endpoint(visit: VisitDep, endpoint_id: str) -> Response:
    """The form of an endpoint's settings."""
    endpoint = visit.producer.get_endpoint(endpoint_id, tenant=visit.tenant)
    return _form_page(visit, EndpointForm.of(endpoint, _catalog_names(visit)), endpoint)


@router.post("/endpoints/{endpoint_id}/edit", name="ui_endpoint_update")
def update_endpoint(visit: VisitDep, posted: CheckedForm, endpoint_id: str) -> Response:
    """Save the endpoint's settings as the form has them."""
    endpoint = visit.producer.get_endpoint(endpoint_id, tenant=visit.tenant)
    form = EndpointForm.posted(posted)
    settings = form.settings(endpoint)
    if not form.errors:
        try:
            visit.producer.update_endpoint(endpoint.id, tenant=visit.tenant, **settings)
        except ValidationError as exc:
            form.refused(exc)
    if form.errors:
        return _form_page(visit, form, endpoint, status_code=422)
    return back(visit.request, "ui_endpoint", {"endpoint_id": endpoint.id}, done="updated")


@router.get("/endpoints/{endpoint_id}/delete", name="ui_endpoint_delete_confirm")
def confirm_delete(visit: VisitDep, endpoint_id: str) -> Response:
    """Ask before deleting an endpoint."""
    endpoint = visit.producer.get_endpoint(endpoint_id, tenant=visit.tenant)
    return visit.render("confirm.html", {"endpoint": endpoint, "action": "delete"})


@router.post("/endpoints/{endpoint_id}/delete", name="ui_endpoint_delete")
def delete_endpoint(visit: VisitDep, posted: CheckedForm, endpoint_id: str) -> Response:
    """Delete the endpoint; its log stays until retention removes it."""
    visit.producer.delete_endpoint(endpoint_id, tenant=visit.tenant)
    return back(visit.request, "ui_endpoints", {}, done="deleted")


@router.get("/endpoints/{endpoint_id}/secret", name="ui_endpoint_secret_confirm")
def confirm_reveal(visit: VisitDep, endpoint_id: str) -> Response:
    """Ask before showing an endpoint's signing secret."""
    endpoint = visit.producer.get_endpoint(endpoint_id, tenant=visit.tenant)
    return visit.render("confirm.html", {"endpoint": endpoint, "action": "reveal"})


@router.post("/endpoints/{endpoint_id}/secret", name="ui_endpoint_secret")
def reveal_secret(visit: VisitDep, posted: CheckedForm, endpoint_id: str) -> Response:
    """Show the endpoint's current signing secret (the page is not cached)."""
    endpoint = visit.producer.get_endpoint(endpoint_id, tenant=visit.tenant)
    secret = visit.producer.get_endpoint_secret(endpoint.id, tenant=visit.tenant)
    context = {"endpoint": endpoint, "secret": secret.secret, "revealed": True}
    return visit.render("secret.html", context)
