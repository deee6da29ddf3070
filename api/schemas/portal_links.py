"""Portal links: a signed, expiring URL that opens the UI for one tenant,
with what its users may do there."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator

from api.schemas.common import RequestBody
from producer.errors import ValidationError as LibraryValidationError
from producer.validation import validate_tenant

__all__ = [
    "ALL_CAPABILITIES",
    "CAPABILITIES",
    "DEFAULT_CAPABILITIES",
    "MAX_TTL_SECONDS",
    "Capability",
    "PortalLinkRequest",
    "PortalLinkResponse",
    "normalise_capabilities",
]

MAX_TTL_SECONDS = 7 * 24 * 3600

Capability = Literal["read", "operate", "manage"]
CAPABILITIES: tuple[Capability, ...] = ("read", "operate", "manage")
"""What a portal session may do: ``read`` its endpoints, messages, deliveries
and the event catalog; ``operate`` them (test sends, enable and disable,
secret rotation, recovery, replay, retries); ``manage`` them (create, edit,
delete endpoints and reveal their signing secret)."""
DEFAULT_CAPABILITIES: frozenset[Capability] = frozenset({"read", "operate"})
"""What a link made without ``capabilities`` grants: what every link granted
before links carried any, so links already handed out keep their meaning."""
ALL_CAPABILITIES: frozenset[Capability] = frozenset(CAPABILITIES)


def normalise_capabilities(capabilities: list[Capability]) -> list[Capability]:
    """Sorted as :data:`CAPABILITIES`, without repeats, ``read`` always in:
    a session that may act on something may see it."""
    chosen = {"read", *capabilities}
    return [c for c in CAPABILITIES if c in chosen]


class PortalLinkRequest(RequestBody):
    """Which tenant the link opens the UI for, for how long, and what its
    users may do."""

    tenant: str = Field(description="The only tenant the portal shows.")
    ttl_seconds: int = Field(
        default=3600,
        ge=60,
        le=MAX_TTL_SECONDS,
        strict=True,
        description="How long the link, and a session opened with it, lasts: 60 s to 7 days.",
    )
    capabilities: list[Capability] = Field(
        default_factory=lambda: sorted(DEFAULT_CAPABILITIES, key=CAPABILITIES.index),
        max_length=len(CAPABILITIES),
        description=(
            "What the link's users may do: `read` (see endpoints, the log and the event "
            "catalog; always included), `operate` (test sends, enable and disable, secret "
            "rotation, recovery, replay, retries) and `manage` (create, edit and delete "
            "endpoints, reveal a signing secret). Default: read and operate."
        ),
    )

    @field_validator("tenant")
    @classmethod
    def _tenant_name(cls, value: str) -> str:
        try:
            return validate_tenant(value)
        except LibraryValidationError as exc:
            # Pydantic reports a ValueError as an error of this field.
            raise ValueError(exc.details[0]["message"] if exc.details else exc.message) from exc

    @field_validator("capabilities")
    @classmethod
    def _normalised(cls, value: list[Capability]) -> list[Capability]:
        return normalise_capabilities(value)


class PortalLinkResponse(BaseModel):
    """A portal link: give ``url`` to the tenant's user."""

    url: str = Field(description="Opens /ui scoped to the tenant; hand it out as a secret.")
    expires_at: str = Field(description="RFC 3339 UTC.")
    capabilities: list[Capability] = Field(description="What the link's users may do.")
