"""``create_ui_router``: the pages under ``/ui``, assembled.

The pages themselves live one module per resource (:mod:`~api.ui.signin`,
:mod:`~api.ui.endpoints`, :mod:`~api.ui.manage`, :mod:`~api.ui.sends`,
:mod:`~api.ui.catalog`, :mod:`~api.ui.jobs`, :mod:`~api.ui.deliveries`,
:mod:`~api.ui.messages`, and :mod:`~api.ui.assets` for the static files);
this module only puts them under ``/ui`` with the :class:`~api.ui.context.Ui`
they work with, and answers every other address under ``/ui`` with the UI's own 404 page.

Every page reads one page of a paginated library call (or a fixed handful of
calls per listed item), so pages stay fast whatever the size of the log.
Library calls block, so handlers are plain functions FastAPI runs in its
thread pool; only the test send, which waits on the network, is async.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse

from api.dependencies import EdgeChecks
from api.ui import (
    assets,
    catalog,
    dashboard,
    deliveries,
    endpoints,
    jobs,
    manage,
    messages,
    sends,
    signin,
)
from api.ui.context import Ui
from api.ui.rendering import PageRoute, UiError
from api.ui.sessions import LOGIN_COOKIE, SESSION_COOKIE, SESSION_LIFETIME, visitor_session
from api.ui.tokens import Signer, resolve_secret
from producer.producer import Producer

__all__ = ["LOGIN_COOKIE", "SESSION_COOKIE", "SESSION_LIFETIME", "create_ui_router"]

_elsewhere = APIRouter(route_class=PageRoute)


# The session is read only for the error page to keep the visitor's navigation.
@_elsewhere.get("/{path:path}", name="ui_not_found", dependencies=[Depends(visitor_session)])
def not_found(request: Request) -> Response:
    """Any other address under ``/ui``: the 404 page, with the visitor's
    navigation. A trailing slash is dropped first, as the router would."""
    if request.url.path.endswith("/"):
        target = request.url.path.rstrip("/")
        if request.url.query:
            target += "?" + request.url.query
        return RedirectResponse(target, status_code=307)
    raise UiError(404, "Not found", "There is no page at this address.")


def create_ui_router(producer: Producer, *, secret: bytes | None = None) -> APIRouter:
    """The web UI: pages under ``/ui`` over ``producer``.

    ``secret`` signs session cookies, portal links and CSRF tokens; it must be
    the one given to :func:`create_portal_router` (both default to the
    producer's ``ui_secret`` setting when there is one, else to random bytes
    shared by the routers of this producer in this process, so sessions end
    when the process restarts).
    """
    ui = Ui(producer, Signer(resolve_secret(producer, secret)))
    router = APIRouter(include_in_schema=False, dependencies=[Depends(ui.attach), EdgeChecks])
    # manage before endpoints: /endpoints/new is no endpoint's id; jobs
    # before deliveries: /deliveries/retry is no delivery's.
    modules = (
        signin,
        assets,
        manage,
        endpoints,
        sends,
        catalog,
        jobs,
        deliveries,
        messages,
        dashboard,
    )
    for module in modules:
        router.include_router(module.router, prefix="/ui")
    # Last: it matches every path under /ui that no page did.
    router.include_router(_elsewhere, prefix="/ui")
    return router
