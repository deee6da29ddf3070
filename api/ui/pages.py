"""``create_ui_router``: the pages under ``/ui``, assembled.

The pages themselves live one module per resource (:mod:`~api.ui.signin`,
:mod:`~api.ui.endpoints`, :mod:`~api.ui.deliveries`, :mod:`~api.ui.messages`,
and :mod:`~api.ui.assets` for the static files); this module only puts them
under ``/ui`` with the :class:`~api.ui.context.Ui` they work with.

Every page reads one page of a paginated library call (or a fixed handful of
calls per listed item), so pages stay fast whatever the size of the log.
Library calls block, so handlers are plain functions FastAPI runs in its
thread pool; only the test send, which waits on the network, is async.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from api.dependencies import EdgeChecks
from api.ui import assets, deliveries, endpoints, messages, signin
from api.ui.context import Ui
from api.ui.sessions import LOGIN_COOKIE, SESSION_COOKIE, SESSION_LIFETIME
from api.ui.tokens import Signer, resolve_secret
from producer.producer import Producer

__all__ = ["LOGIN_COOKIE", "SESSION_COOKIE", "SESSION_LIFETIME", "create_ui_router"]


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
    for module in (signin, assets, endpoints, deliveries, messages):
        router.include_router(module.router, prefix="/ui")
    return router
