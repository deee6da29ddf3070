"""``create_portal_router``: the ``POST /v1/portal-links`` route of the REST
API (:mod:`api.routes.portal_links`), signing links with the UI's secret."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from api.routes import portal_links
from api.schemas.portal_links import MAX_TTL_SECONDS, PortalLinkRequest, PortalLinkResponse
from api.ui.tokens import Signer, resolve_secret
from producer.producer import Producer

__all__ = ["MAX_TTL_SECONDS", "PortalLinkRequest", "PortalLinkResponse", "create_portal_router"]


def create_portal_router(
    producer: Producer, *, secret: bytes | None = None, public_url: str | None = None
) -> APIRouter:
    """The ``POST /v1/portal-links`` route (admin API keys only).

    ``secret`` must be the one of :func:`create_ui_router` (both resolve the
    same default). ``public_url`` is the base URL the links start with, for
    apps behind a proxy that rewrites the host; by default the request's own.
    """
    signer = Signer(resolve_secret(producer, secret))
    links = portal_links.PortalLinks(producer, signer, public_url)
    router = APIRouter(dependencies=[Depends(links.attach)])
    router.include_router(portal_links.router)
    return router
