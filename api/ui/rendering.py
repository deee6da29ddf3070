"""Templates, the HTML error pages and the route class that turns every
failure of a UI route into a page instead of JSON or a traceback."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates

from api.errors import status_for
from api.ui.appearance import security_headers
from api.ui.tokens import Session
from producer.errors import WebhooksError

__all__ = [
    "RENDERER_STATE",
    "SECURITY_HEADERS",
    "PageRenderer",
    "PageRoute",
    "SignInRequired",
    "UiError",
    "error_page",
    "remember_session",
    "templates",
]

log = logging.getLogger("api.ui")

TEMPLATE_DIR = Path(__file__).parent / "templates"

SECURITY_HEADERS = security_headers()
"""The headers of a page answered before the UI serving it is known: framed by nobody."""


def _timestamp(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _pretty_json(value: bytes | str | Any) -> str:
    """Indented JSON for reading; text that is not JSON is shown as it is."""
    if isinstance(value, bytes | str):
        try:
            value = json.loads(value)
        except ValueError:
            return value.decode(errors="replace") if isinstance(value, bytes) else value
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


templates = Jinja2Templates(directory=str(TEMPLATE_DIR))
templates.env.filters["ts"] = _timestamp
templates.env.filters["pct"] = _percent
templates.env.filters["pretty_json"] = _pretty_json


class UiError(Exception):
    """A failure shown to the user as a page with a title and a sentence."""

    def __init__(self, status_code: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.title = title
        self.message = message


class SignInRequired(Exception):
    """No valid session: pages redirect to the sign-in form."""


RENDERER_STATE = "webhooks_ui"
"""The ``request.state`` attribute holding the :class:`PageRenderer` of the
UI serving the request (set by :meth:`api.ui.context.Ui.attach`)."""

_SESSION_STATE = "webhooks_ui_session"


class PageRenderer(Protocol):
    """What renders the pages of one mounted UI (:class:`api.ui.context.Ui`)."""

    def render(
        self,
        request: Request,
        session: Session | None,
        name: str,
        context: dict[str, Any],
        *,
        status_code: int = 200,
    ) -> Response:
        """The template ``name`` as a page of ``session`` (None: signed out)."""
        ...


def remember_session(request: Request, session: Session) -> None:
    """Note the request's valid session, for an error page to keep its navigation."""
    setattr(request.state, _SESSION_STATE, session)


def error_page(request: Request, status_code: int, title: str, message: str) -> Response:
    """An HTML page explaining a failure, with the given status.

    A signed-in visitor keeps the navigation of their session (the admin's,
    or the one tenant's of a portal link), so a wrong turn is one click from
    the way back.
    """
    context = {"title": title, "message": message}
    renderer: PageRenderer | None = getattr(request.state, RENDERER_STATE, None)
    if renderer is not None:
        session = getattr(request.state, _SESSION_STATE, None)
        return renderer.render(request, session, "error.html", context, status_code=status_code)
    # Failed before the UI's router dependencies ran: a page without a session.
    return templates.TemplateResponse(
        request,
        "error.html",
        {**context, "session": None},
        status_code=status_code,
        headers=SECURITY_HEADERS,
    )


def _sign_in_redirect(request: Request) -> Response:
    target = request.url.path
    if request.url.query:
        target += "?" + request.url.query
    login = request.url_for("ui_login").path
    return RedirectResponse(f"{login}?next={quote(target, safe='/')}", status_code=303)


# The titles of the pages of library errors, by the status the API gives them.
_LIBRARY_ERROR_TITLES = {
    404: "Not found",
    409: "Not possible right now",
    413: "Too large",
    422: "Invalid input",
}


def _library_error(request: Request, exc: WebhooksError) -> Response:
    status = status_for(exc)
    if status == 404:
        message = "There is nothing here, or it belongs to a tenant you cannot see."
        return error_page(request, 404, _LIBRARY_ERROR_TITLES[404], message)
    if status in _LIBRARY_ERROR_TITLES:
        return error_page(request, status, _LIBRARY_ERROR_TITLES[status], exc.message)
    log.error("library error on %s %s: %s", request.method, request.url.path, exc)
    return error_page(request, status, "Server error", exc.message)


class PageRoute(APIRoute):
    """An APIRoute whose failures render HTML pages.

    The host app's exception handlers answer in JSON for the REST API; pages
    need their own answers, and a route class keeps them with the router
    wherever it is included.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap FastAPI's handler to turn exceptions into pages."""
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired:
                if request.method == "GET":
                    return _sign_in_redirect(request)
                return error_page(
                    request,
                    401,
                    "Signed out",
                    "Your session has ended. Sign in again, then repeat what you did.",
                )
            except UiError as exc:
                return error_page(request, exc.status_code, exc.title, exc.message)
            except WebhooksError as exc:
                return _library_error(request, exc)
            except RequestValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'is invalid')}"
                    for e in exc.errors()
                )
                return error_page(request, 422, "Invalid input", problems or "invalid request")
            except Exception:
                log.exception("unhandled error on %s %s", request.method, request.url.path)
                return error_page(
                    request, 500, "Server error", "Something went wrong; it has been logged."
                )

        return guarded
