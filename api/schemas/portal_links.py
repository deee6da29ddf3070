"""Portal links: a signed, expiring URL that opens the UI for one tenant."""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator

from api.schemas.common import RequestBody
from producer.errors import ValidationError as LibraryValidationError
from producer.validation import validate_tenant

__all__ = ["MAX_TTL_SECONDS", "PortalLinkRequest", "PortalLinkResponse"]

MAX_TTL_SECONDS = 7 * 24 * 3600


class PortalLinkRequest(RequestBody):
    """Which tenant the link opens the UI for, and for how long."""

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
