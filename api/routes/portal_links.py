"""``POST /v1/portal-links``: a host application asks for a link that opens
the UI scoped to one tenant (its customer), signed and expiring.

Part of the REST API: the same key authentication (or the host's own), the
same error shape. Links are signed with the UI's secret, so the router is
built by :func:`api.ui.create_portal_router`, which hands the route its
:class:`PortalLinks` the way the UI hands its pages their ``Ui``: a router
dependency (:meth:`PortalLinks.attach`) stores it in ``request.state``
before the route's own parameters are solved.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Protocol

from fastapi import APIRouter, Depends, Request

from api.dependencies import Admin, EdgeChecks
from api.errors import route_errors
from api.schemas.portal_links import Capability, PortalLinkRequest, PortalLinkResponse
from producer.payloads import format_timestamp
from producer.producer import Producer

__all__ = ["PortalLinkSigner", "PortalLinks", "router"]

router = APIRouter(tags=["portal"], dependencies=[EdgeChecks])


class PortalLinkSigner(Protocol):
    """Signs the token a portal link carries (the UI's ``Signer``)."""

    def portal_token(
        self, tenant: str, expires_at: datetime, capabilities: frozenset[Capability]
    ) -> str:
        """A token opening the UI for ``tenant`` until ``expires_at``, to do
        what ``capabilities`` allow."""
        ...


@dataclass(frozen=True, eq=False)
class PortalLinks:
    """What the route needs from whoever mounts it: the producer's clock, the
    signer, and the base URL links start with (None: the request's own)."""

    producer: Producer
    signer: PortalLinkSigner
    public_url: str | None = None

    def attach(self, request: Request) -> None:
        """A router dependency: make these the portal links the route issues."""
        request.state.webhooks_portal_links = self


def current_portal_links(request: Request) -> PortalLinks:
    """The :class:`PortalLinks` of the router serving ``request``."""
    links: PortalLinks = request.state.webhooks_portal_links
    return links


@router.post(
    "/v1/portal-links",
    status_code=201,
    summary="Create a tenant portal link",
    responses=route_errors(400, 403, 413),
)
def create_portal_link(
    link: PortalLinkRequest,
    request: Request,
    _admin: Admin,
    links: Annotated[PortalLinks, Depends(current_portal_links)],
) -> PortalLinkResponse:
    """A signed URL opening the UI for one tenant until ``expires_at``
    (admin keys only), to do what ``capabilities`` allow: by default see and
    operate its endpoints (`read`, `operate`); with `manage`, also create,
    change and delete them. Hand it only to that tenant's users.
    """
    expires_at = links.producer.clock() + timedelta(seconds=link.ttl_seconds)
    token = links.signer.portal_token(link.tenant, expires_at, frozenset(link.capabilities))
    base = (links.public_url or str(request.base_url)).rstrip("/")
    return PortalLinkResponse(
        url=f"{base}/ui/portal?token={token}",
        # The token holds whole seconds; report the instant it really ends.
        expires_at=format_timestamp(expires_at.replace(microsecond=0)),
        capabilities=link.capabilities,
    )
