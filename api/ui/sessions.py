"""Who is signed in: the session cookie, and the CSRF check of every form a
signed-in page posts.

Nothing is stored server-side (see :mod:`api.ui.tokens`): the cookie is the
session, and signing out deletes it from the browser.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, Request, Response

from api.ui.context import Ui, UiDep
from api.ui.forms import FormFields
from api.ui.rendering import SignInRequired, UiError, remember_session
from api.ui.tokens import Session, TokenError
from producer.producer import Producer

__all__ = [
    "LOGIN_COOKIE",
    "SESSION_COOKIE",
    "SESSION_LIFETIME",
    "CheckedForm",
    "SessionDep",
    "Visit",
    "VisitDep",
    "checked_form",
    "cookie_path",
    "current_session",
    "set_cookie",
    "start_session",
    "visitor_session",
]

SESSION_COOKIE = "webhooks_ui_session"
LOGIN_COOKIE = "webhooks_ui_login"
SESSION_LIFETIME = timedelta(hours=8)
"""How long a sign-in with an API key lasts (portal sessions last as long as their link)."""


def cookie_path(request: Request) -> str:
    """The path the UI's cookies are scoped to: where the UI is mounted."""
    return request.url_for("ui_home").path


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    """Set one of the UI's cookies: script-proof, same-site only, HTTPS-only over HTTPS."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=cookie_path(request),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def start_session(
    ui: Ui,
    request: Request,
    response: Response,
    tenant: str | None,
    via: str,
    expires_at: datetime,
) -> None:
    """Sign the browser in (as admin when ``tenant`` is None) until ``expires_at``."""
    token = ui.signer.session_token(tenant, via, expires_at)
    max_age = max(int((expires_at - ui.producer.clock()).total_seconds()), 1)
    set_cookie(request, response, SESSION_COOKIE, token, max_age)


def visitor_session(request: Request, ui: UiDep) -> Session | None:
    """The session of the request's cookie, or None when it holds no valid one."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    try:
        session = ui.signer.session(token, ui.producer.clock())
    except TokenError:
        return None
    remember_session(request, session)
    return session


def current_session(request: Request, ui: UiDep) -> Session:
    """The session of the request's cookie; pages without one send the visitor to sign in."""
    session = visitor_session(request, ui)
    if session is None:
        raise SignInRequired
    return session


SessionDep = Annotated[Session, Depends(current_session)]


@dataclass(frozen=True)
class Visit:
    """A request of a signed-in browser, as a page handler works with it: the
    request, the :class:`Ui` serving it and the session (a handler that asks
    for one sends visitors without a session to sign in)."""

    request: Request
    ui: UiDep
    session: SessionDep

    @property
    def producer(self) -> Producer:
        """The producer the UI shows."""
        return self.ui.producer

    @property
    def tenant(self) -> str | None:
        """The one tenant the session sees; None for an admin, who sees them all."""
        return self.session.tenant

    def render(self, name: str, context: dict[str, Any], *, status_code: int = 200) -> Response:
        """The template ``name`` as a page of this session."""
        return self.ui.render(self.request, self.session, name, context, status_code=status_code)


VisitDep = Annotated[Visit, Depends()]


def checked_form(ui: UiDep, session: SessionDep, form: FormFields) -> dict[str, str]:
    """The fields of a form posted from a page of the current session (CSRF-checked)."""
    if not ui.signer.check_csrf(session.id, form.get("csrf")):
        raise UiError(
            403,
            "Form expired",
            "This form did not come from your current session. Reload the page and retry.",
        )
    return form


CheckedForm = Annotated[dict[str, str], Depends(checked_form)]
