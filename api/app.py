"""``create_app``: the management API as a FastAPI application."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from swagger_ui_bundle import swagger_ui_path

from api.auth import Principal, current_principal
from api.errors import install_error_handlers
from api.limits import BodySizeLimit
from api.routes import deliveries, endpoints, event_types, filters, jobs, messages, operations
from api.ui import create_portal_router, create_ui_router
from producer import __version__
from producer.metrics import Metrics
from producer.producer import Producer
from producer.tracing import instrument_app

__all__ = ["BODY_LIMIT_FACTOR", "create_app", "openapi_document"]

BODY_LIMIT_FACTOR = 4
"""Request bodies above this many times ``max_payload_bytes`` are refused
unread: the envelope limit applies to the data, and the rest of a request
(other fields, JSON escaping) never needs this much room."""

_DOCS_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
"""The Swagger UI files ``/docs`` loads, served from the installed
distribution. Only these: the distribution's own ``index.html`` would load
the public petstore example."""

_DESCRIPTION = """\
Manage webhook endpoints, event types, messages and the delivery log.

Authenticate with `Authorization: Bearer <api key>`. An admin key sees every
tenant; a tenant key sees only its tenant, creates in it, and gets 404 for
anything else. Event types are global: any key reads them, only admin keys
change them (403 otherwise). Errors are always
`{"error": {"code", "message", "details"}}`.
"""


def create_app(
    producer: Producer | None = None,
    *,
    auth: Callable[..., Principal] | None = None,
    **settings: Any,
) -> FastAPI:
    """Build the REST API over ``producer`` (or over ``Producer(**settings)``).

    ``auth`` replaces API-key authentication: a FastAPI dependency (it may
    declare its own dependencies) that returns a ``Principal`` or raises.
    The producer is available as ``app.state.producer``. A producer built
    here is closed when the app shuts down.
    """
    owned = producer is None
    the_producer = producer if producer is not None else Producer(**settings)
    app_metrics = Metrics(the_producer)
    # Observing starts now, not in the lifespan: an app mounted inside a host
    # application never runs its own lifespan.
    app_metrics.start()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        app_metrics.start()
        yield
        app_metrics.close()
        if owned:
            the_producer.close()

    app = FastAPI(
        title="webhook-producer",
        version=__version__,
        description=_DESCRIPTION,
        lifespan=lifespan,
        # The stock pages load Swagger UI and ReDoc from a CDN; /docs is
        # served below from local files so it works offline.
        docs_url=None,
        redoc_url=None,
    )
    app.state.producer = the_producer
    app.state.metrics = app_metrics
    if auth is not None:
        # Overriding the one dependency every route resolves the caller with
        # lets FastAPI wire the host's function, sub-dependencies included.
        app.dependency_overrides[current_principal] = auth
    install_error_handlers(app)
    app.add_middleware(
        BodySizeLimit, max_bytes=BODY_LIMIT_FACTOR * the_producer.settings.max_payload_bytes
    )
    for module in (endpoints, event_types, messages, deliveries, jobs, filters, operations):
        app.include_router(module.router)
    app.include_router(create_portal_router(the_producer))
    app.include_router(create_ui_router(the_producer))
    _install_docs(app)
    instrument_app(app, the_producer.context.tracing)
    return app


def _install_docs(app: FastAPI) -> None:
    """Serve the interactive reference at ``/docs`` with Swagger UI's own files."""

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - API reference",
            swagger_js_url=request.url_for("docs_asset", name="swagger-ui-bundle.js").path,
            swagger_css_url=request.url_for("docs_asset", name="swagger-ui.css").path,
            swagger_favicon_url=request.url_for("docs_asset", name="favicon-32x32.png").path,
            # Swagger UI would otherwise send the document to its public
            # validator and show the verdict as a badge.
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get("/docs/assets/{name}", name="docs_asset", include_in_schema=False)
    async def docs_asset(name: str) -> FileResponse:
        media_type = _DOCS_ASSETS.get(name)
        if media_type is None:
            raise HTTPException(status_code=404)
        return FileResponse(swagger_ui_path / name, media_type=media_type)


def openapi_document() -> dict[str, Any]:
    """The API's OpenAPI document, without touching any configured database.

    The document depends on the routes only, so it is built over a producer
    on an in-memory SQLite database.
    """
    producer = Producer("sqlite://")
    try:
        return create_app(producer).openapi()
    finally:
        producer.close()
