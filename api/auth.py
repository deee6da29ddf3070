"""Who is calling: bearer API keys resolved to a ``Principal``.

An admin key (tenant None) sees every tenant; a tenant key sees only its own.
A host application can replace key auth with its own dependency returning a
Principal (``create_app(auth=...)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.blocking import quick_read
from api.errors import ApiError
from producer.producer import Producer

__all__ = ["Principal", "api_key_principal", "current_principal", "require_admin"]

_bearer = HTTPBearer(
    auto_error=False,
    description="A management API key: `Authorization: Bearer whk_…`.",
)
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


@dataclass(frozen=True)
class Principal:
    """The caller: ``tenant`` None for an admin, else the only tenant it sees."""

    tenant: str | None

    @property
    def is_admin(self) -> bool:
        """Admins see and manage every tenant."""
        return self.tenant is None

    def scope(self, requested: str | None) -> str | None:
        """The tenant a request acts on: a tenant key's own, whatever was
        asked; for an admin, what was asked (None: every tenant)."""
        return self.tenant if self.tenant is not None else requested

    def sees_tenant(self, requested: str | None) -> bool:
        """Whether a ``?tenant=`` list filter can match anything this caller sees."""
        return self.tenant is None or requested is None or requested == self.tenant


async def api_key_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """Resolve ``Authorization: Bearer <key>`` against the producer's API keys
    (a key used a moment ago is remembered: no database read, no thread)."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiError(
            401, "an API key is required: Authorization: Bearer <key>", headers=_CHALLENGE
        )
    producer: Producer = request.app.state.producer
    plain = credentials.credentials
    key = producer.remembered_key(plain) or await quick_read(producer, producer.authenticate, plain)
    if key is None:
        raise ApiError(401, "the API key is not valid", headers=_CHALLENGE)
    return Principal(tenant=key.tenant)


async def current_principal(
    principal: Annotated[Principal, Depends(api_key_principal)],
) -> Principal:
    """The caller of a route.

    Routes depend on this function rather than on key auth directly, so
    ``create_app(auth=...)`` can swap the whole resolution (with whatever
    dependencies the host's own function declares) in one place.
    """
    return principal


async def require_admin(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    """The caller, who must hold an admin key (403 for a tenant key)."""
    if not principal.is_admin:
        raise ApiError(403, "this needs an admin key; tenant keys may only read event types")
    return principal
