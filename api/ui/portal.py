"""``POST /v1/portal-links``: a host application asks for a link that opens
the UI scoped to one tenant (its customer), signed and expiring.

Part of the REST API: the same key authentication (or the host's own), the
same error shape.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.auth import Principal, require_admin
from api.errors import error_responses
from api.ui.tokens import Signer, resolve_secret
from producer.errors import ValidationError as LibraryValidationError
from producer.payloads import format_timestamp
from producer.producer import Producer
from producer.validation import validate_tenant

__all__ = ["MAX_TTL_SECONDS", "PortalLinkRequest", "PortalLinkResponse", "create_portal_router"]

MAX_TTL_SECONDS = 7 * 24 * 3600


class PortalLinkRequest(BaseModel):
    """Which tenant the link opens the UI for, and for how long."""

    model_config = ConfigDict(extra="forbid")

    tenant: str = Field(description="The only tenant the portal shows.")
    ttl_seconds: int = Field(
        default=3600,
        ge=60,
        le=MAX_TTL_SECONDS,
        strict=True,
        description="How long the link, and a session opened with it, lasts: 60 s to 7 days.",
    )

    @field_validator("tenant")
    @classmethod
    def _tenant_name(cls, value: str) -> str:
        try:
            return validate_tenant(value)
        except LibraryValidationError as exc:
            # Pydantic reports a ValueError as an error of this field.
            raise ValueError(exc.details[0]["message"] if exc.details else exc.message) from exc


class PortalLinkResponse(BaseModel):
    """A portal link: give ``url`` to the tenant's user."""

    url: str = Field(description="Opens /ui scoped to the tenant; hand it out as a secret.")
    expires_at: str = Field(description="RFC 3339 UTC.")


def create_portal_router(
    producer: Producer, *, secret: bytes | None = None, public_url: str | None = None
) -> APIRouter:
    """The ``POST /v1/portal-links`` route (admin API keys only).

    ``secret`` must be the one of :func:`create_ui_router` (both resolve the
    same default). ``public_url`` is the base URL the links start with, for
    apps behind a proxy that rewrites the host; by default the request's own.
    """
    signer = Signer(resolve_secret(producer, secret))
    router = APIRouter(tags=["portal"])

    @router.post(
        "/v1/portal-links",
        status_code=201,
        response_model=PortalLinkResponse,
        summary="Create a tenant portal link",
        responses=error_responses(400, 401, 403, 413, 422),
    )
    def create_portal_link(
        link: PortalLinkRequest,
        request: Request,
        _admin: Annotated[Principal, Depends(require_admin)],
    ) -> PortalLinkResponse:
        """A signed URL opening the UI for one tenant until ``expires_at``
        (admin keys only).

        The link grants what a tenant API key grants in the UI: hand it only
        to that tenant's users.
        """
        expires_at = producer.clock() + timedelta(seconds=link.ttl_seconds)
        token = signer.portal_token(link.tenant, expires_at)
        base = (public_url or str(request.base_url)).rstrip("/")
        return PortalLinkResponse(
            url=f"{base}/ui/portal?token={token}",
            # The token holds whole seconds; report the instant it really ends.
            expires_at=format_timestamp(expires_at.replace(microsecond=0)),
        )

    return router
