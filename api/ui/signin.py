"""Signing in and out: with an API key on the sign-in form, or by opening a
portal link (``/ui/portal``), which signs in as one tenant."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse

from api.ui.context import UiDep
from api.ui.forms import FormFields, Text
from api.ui.navigation import safe_next
from api.ui.rendering import PageRoute, UiError
from api.ui.sessions import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    SESSION_LIFETIME,
    CheckedForm,
    SessionDep,
    cookie_path,
    forget_cookie,
    set_cookie,
    start_session,
)
from api.ui.tokens import ExpiredToken, TokenError

__all__ = ["router"]

router = APIRouter(route_class=PageRoute)


@router.get("", name="ui_home")
def home(request: Request) -> Response:
    """The UI's front door leads to the endpoints."""
    return RedirectResponse(request.url_for("ui_endpoints").path, status_code=303)


@router.get("/login", name="ui_login")
def login_form(request: Request, ui: UiDep, next: Text = None) -> Response:
    """The sign-in form, tied to this browser by a nonce cookie (against login CSRF)."""
    nonce = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(16)
    context = {"next": next or "", "login_csrf": ui.signer.csrf_token("login:" + nonce)}
    response = ui.render(request, None, "login.html", {**context, "error": None})
    set_cookie(ui, request, response, LOGIN_COOKIE, nonce, max_age=3600)
    return response


@router.post("/login", name="ui_login_submit")
def login(request: Request, ui: UiDep, form: FormFields) -> Response:
    """Sign in with an API key, then go where the visitor was headed."""
    nonce = request.cookies.get(LOGIN_COOKIE)
    if not nonce or not ui.signer.check_csrf("login:" + nonce, form.get("csrf")):
        raise UiError(
            403,
            "Form expired",
            "The sign-in form has expired or cookies are blocked. Reload it and retry.",
        )
    key = ui.producer.authenticate(form.get("api_key", "").strip())
    if key is None:
        context = {
            "next": form.get("next", ""),
            "login_csrf": ui.signer.csrf_token("login:" + nonce),
            "error": "That API key is not valid.",
        }
        return ui.render(request, None, "login.html", context, status_code=401)
    target = safe_next(form.get("next"), cookie_path(request), request.url_for("ui_endpoints").path)
    response = RedirectResponse(target, status_code=303)
    expires_at = ui.producer.clock() + SESSION_LIFETIME
    start_session(ui, request, response, key.tenant, "key", expires_at)
    forget_cookie(ui, request, response, LOGIN_COOKIE)
    return response


@router.post("/logout", name="ui_logout")
def logout(request: Request, ui: UiDep, session: SessionDep, form: CheckedForm) -> Response:
    """Sign out: the browser forgets the session cookie.

    Who came by a portal link has no API key for the sign-in form: they are
    told to open their link again instead."""
    if session.via == "portal":
        response = ui.render(request, None, "signed_out.html", {"tenant": session.tenant})
    else:
        response = RedirectResponse(request.url_for("ui_login").path, status_code=303)
    forget_cookie(ui, request, response, SESSION_COOKIE)
    return response


@router.get("/portal", name="ui_portal")
def portal(
    request: Request, ui: UiDep, token: Annotated[str, Query(max_length=4096)] = ""
) -> Response:
    """Open a portal link: a session for its tenant, lasting as long as the link."""
    try:
        grant = ui.signer.portal(token, ui.producer.clock())
    except ExpiredToken:
        raise UiError(
            401,
            "This link has expired",
            "Portal links work for a limited time. Ask for a new one where you got this link.",
        ) from None
    except TokenError:
        raise UiError(
            403,
            "This link is not valid",
            "The link is incomplete or has been altered. Copy the whole link, or ask for "
            "a new one.",
        ) from None
    target = request.url_for("ui_endpoints").path
    # A page that moves on by itself, rather than a redirect: browsers
    # withhold SameSite=Strict cookies for the rest of a navigation that
    # started on another site, which is where portal links are clicked.
    response = ui.render(request, None, "portal.html", {"target": target, "tenant": grant.tenant})
    start_session(
        ui, request, response, grant.tenant, "portal", grant.expires_at, grant.capabilities
    )
    return response
