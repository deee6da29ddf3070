"""``POST /v1/portal-links``: a host application asks for a link that opens
the UI scoped to one tenant (its customer), signed and expiring.

The route answers in the REST API's error shape on its own, so it behaves
the same whichever exception handlers the including app installed.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic import ValidationError as PydanticValidationError

from api.errors import error_body
from api.ui.tokens import Signer, resolve_secret
from producer.errors import ValidationError as LibraryValidationError
from producer.payloads import format_timestamp
from producer.producer import Producer
from producer.validation import validate_tenant

__all__ = ["MAX_TTL_SECONDS", "PortalLinkRequest", "PortalLinkResponse", "create_portal_router"]

MAX_TTL_SECONDS = 7 * 24 * 3600
_MAX_BODY_BYTES = 16 * 1024
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


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


def _error(status_code: int, code: str, message: str, **kwargs: Any) -> JSONResponse:
    return JSONResponse(
        error_body(code, message, kwargs.get("details")),
        status_code=status_code,
        headers=kwargs.get("headers"),
    )


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
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": PortalLinkRequest.model_json_schema()}},
            }
        },
        responses={401: {"description": "Missing or unknown API key."}, 403: {}, 422: {}},
    )
    async def create_portal_link(request: Request) -> Response:
        """A signed URL opening the UI for one tenant until ``expires_at``.

        The link grants what a tenant API key grants in the UI: hand it only
        to that tenant's users.
        """
        authorization = request.headers.get("authorization", "")
        scheme, _, plain = authorization.partition(" ")
        if scheme.lower() != "bearer" or not plain.strip():
            return _error(
                401,
                "unauthorized",
                "an API key is required: Authorization: Bearer <key>",
                headers=_CHALLENGE,
            )
        key = await run_in_threadpool(producer.authenticate, plain.strip())
        if key is None:
            return _error(401, "unauthorized", "the API key is not valid", headers=_CHALLENGE)
        if not key.is_admin:
            return _error(403, "forbidden", "portal links can only be created with an admin key")

        body = await request.body()
        if len(body) > _MAX_BODY_BYTES:
            return _error(413, "payload_too_large", "the request body is too large")
        try:
            data = json.loads(body)
        except ValueError:
            return _error(400, "bad_request", "the request body is not valid JSON")
        try:
            link = PortalLinkRequest.model_validate(data)
        except PydanticValidationError as exc:
            details = [
                {
                    "field": ".".join(["body", *(str(p) for p in e["loc"])]),
                    "message": str(e["msg"]).removeprefix("Value error, "),
                }
                for e in exc.errors()
            ]
            first = details[0]
            return _error(
                422,
                "validation_error",
                f"{first['field']}: {first['message']}",
                details=details,
            )

        expires_at = producer.clock() + timedelta(seconds=link.ttl_seconds)
        token = signer.portal_token(link.tenant, expires_at)
        base = (public_url or str(request.base_url)).rstrip("/")
        payload = PortalLinkResponse(
            url=f"{base}/ui/portal?token={token}",
            # The token holds whole seconds; report the instant it really ends.
            expires_at=format_timestamp(expires_at.replace(microsecond=0)),
        )
        return JSONResponse(payload.model_dump(), status_code=201)

    return router
