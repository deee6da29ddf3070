"""The web UI: a delivery log to look at and the tenant portal.

>>> from api.ui import create_portal_router, create_ui_router
>>> app.include_router(create_ui_router(producer, secret=ui_secret))
>>> app.include_router(create_portal_router(producer, secret=ui_secret))

Pages live under ``/ui`` (server-rendered, a little plain JavaScript); an
admin signs in there with an API key, a tenant API key or a portal link from
``POST /v1/portal-links`` shows one tenant only, allowing what its
capabilities say (read, operate, manage; see docs/portal.md). Give both
routers the same secret (at least 16 bytes), or none: then they share a
random one that lasts as long as the process, and every session ends on
restart.
"""

from api.ui.pages import create_ui_router
from api.ui.portal import create_portal_router

__all__ = ["create_portal_router", "create_ui_router"]
