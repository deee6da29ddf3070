"""Every error as ``{"error": {"code", "message", "details"}}``.

Library exceptions map to HTTP statuses by class (:func:`status_for`, which
the UI's error pages use too, so a page and the API agree); FastAPI's own errors
(validation, unknown route, wrong method) are reshaped to the same body so a
client has one thing to parse.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import Match, Route

from api.schemas.common import ErrorResponse
from producer.errors import (
    ConflictError,
    NotFoundError,
    PayloadTooLargeError,
    ValidationError,
    WebhooksError,
)

__all__ = ["ApiError", "error_body", "install_error_handlers", "route_errors", "status_for"]

log = logging.getLogger("api")

# Checked in order: the first matching class wins, so subclasses come first.
_STATUS_BY_CLASS: tuple[tuple[type[WebhooksError], int], ...] = (
    (ValidationError, 422),
    (PayloadTooLargeError, 413),
    (NotFoundError, 404),
    (ConflictError, 409),
)

_CODE_BY_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "throttled",
    503: "unavailable",
}

_DESCRIPTIONS = {
    400: "Malformed request (invalid JSON).",
    401: "Missing or unknown API key.",
    403: "The API key may not do this (an admin key is needed).",
    404: "Unknown, or belonging to another tenant.",
    409: "Conflicts with the resource's current state.",
    413: "Payload too large.",
    422: "Invalid field; `details` name it.",
    503: "The database is unreachable.",
}


class ApiError(Exception):
    """An error raised by the API layer itself (auth, permissions, limits)."""

    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code or _CODE_BY_STATUS.get(status_code, "error")
        self.message = message
        self.headers = dict(headers or {})


def error_body(
    code: str, message: str, details: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The JSON body of an error response."""
    return {"error": {"code": code, "message": message, "details": details or []}}


def route_errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` of a route that needs an API key: 401 and 422,
    which every such route can answer, and the given ``statuses``."""
    return {
        status: {"model": ErrorResponse, "description": _DESCRIPTIONS.get(status, "Error.")}
        for status in sorted({401, 422, *statuses})
    }


def status_for(exc: WebhooksError) -> int:
    """The HTTP status of a library error, for the API's JSON errors and the
    UI's error pages alike: by class (a subclass answers as its base, so an
    ``InvalidStateError`` is a 409 like any ``ConflictError``), else 500."""
    for cls, status in _STATUS_BY_CLASS:
        if isinstance(exc, cls):
            return status
    # A bare WebhooksError reports a server-side condition (say, a database
    # schema older than the code), never something wrong with the request.
    return 500


def _locate(field: str, request: Request) -> str:
    """Prefix a library field name with where the client sent it, as request
    validation does (``body.url``, ``query.cursor``), so that a client reads
    one naming whichever layer found the problem."""
    name = re.split(r"[.\[]", field, maxsplit=1)[0]
    if name in request.query_params:
        return f"query.{field}"
    if request.method in ("POST", "PUT", "PATCH"):
        return f"body.{field}"
    return field


async def _webhooks_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, WebhooksError)
    status = status_for(exc)
    if status == 500:
        log.error("server-side library error on %s %s: %s", request.method, request.url.path, exc)
    details = [
        {**d, "field": _locate(d["field"], request)} if isinstance(d.get("field"), str) else d
        for d in exc.details
    ]
    return JSONResponse(error_body(exc.code, exc.message, details), status_code=status)


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse(
        error_body(exc.code, exc.message), status_code=exc.status_code, headers=exc.headers
    )


def _field(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


def _message(error: Mapping[str, Any]) -> str:
    # Pydantic prefixes the text of a ValueError raised in a validator.
    return str(error.get("msg", "is invalid")).removeprefix("Value error, ")


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    bad_json = [e for e in errors if e.get("type") == "json_invalid"]
    if bad_json:
        reason = (bad_json[0].get("ctx") or {}).get("error", "")
        message = f"the request body is not valid JSON: {reason}".rstrip(": ")
        return JSONResponse(error_body("bad_request", message), status_code=400)
    if _body_not_json(request, errors):
        # FastAPI reads a body as JSON only when it says it is; otherwise the
        # client would hear that its object "should be a valid dictionary".
        sent = request.headers.get("content-type") or "no Content-Type"
        message = f"send the request body as JSON with Content-Type: application/json (got {sent})"
        return JSONResponse(error_body("bad_request", message), status_code=400)
    details = [{"field": _field(tuple(e.get("loc", ()))), "message": _message(e)} for e in errors]
    first = details[0] if details else {"field": "request", "message": "is invalid"}
    message = f"{first['field']}: {first['message']}"
    return JSONResponse(error_body("validation_error", message, details), status_code=422)


def _body_not_json(request: Request, errors: list[Any]) -> bool:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    is_json = media_type == "application/json" or media_type.endswith("+json")
    return not is_json and any(tuple(e.get("loc", ()))[:1] == ("body",) for e in errors)


async def _http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    headers = dict(exc.headers or {})
    if status == 404:
        message = f"no route matches {request.url.path}"
    elif status == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
        # The router names only the first route that matched the path; a path
        # served by several routes (GET and POST) supports all their methods.
        headers["Allow"] = ", ".join(_methods_of(request))
    else:
        message = str(exc.detail)
    return JSONResponse(
        error_body(_CODE_BY_STATUS.get(status, "error"), message),
        status_code=status,
        headers=headers or None,
    )


def _methods_of(request: Request) -> list[str]:
    methods: set[str] = set()
    for route in request.app.router.routes:
        if isinstance(route, Route) and route.methods:
            match, _ = route.matches({**request.scope, "method": next(iter(route.methods))})
            if match == Match.FULL:
                methods |= route.methods
    return sorted(methods)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse(
        error_body("internal_error", "an unexpected error occurred; it has been logged"),
        status_code=500,
    )


def install_error_handlers(app: FastAPI) -> None:
    """Make every error response of ``app`` use the one error shape."""
    app.add_exception_handler(WebhooksError, _webhooks_error)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_exception)
    app.add_exception_handler(Exception, _unexpected)
