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

from api.schemas.portal_links import ALL_CAPABILITIES, Capability
from api.ui.context import Ui, UiDep
from api.ui.forms import FormData, FormFields
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
    "forget_cookie",
    "requires",
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


def set_cookie(
    ui: Ui, request: Request, response: Response, name: str, value: str, max_age: int
) -> None:
    """Set one of the UI's cookies: script-proof, HTTPS-only over HTTPS, and
    same-site only, unless the UI may be framed by another site over HTTPS.

    A browser withholds ``SameSite=Strict`` cookies from a frame whose parent
    is another site, so an embedded portal would lose its session on every
    click. There the cookie is ``SameSite=None; Secure; Partitioned``: sent
    in that frame, kept apart from the same UI opened elsewhere (browsers
    that block third-party cookies allow partitioned ones), and the forms
    stay protected by their CSRF token.
    """
    https = request.url.scheme == "https"
    cross_site = https and ui.appearance.embeddable
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=cookie_path(request),
        httponly=True,
        samesite="none" if cross_site else "strict",
        secure=https,
    )
    if cross_site:
        _partitioned(response)


def _partitioned(response: Response) -> None:
    """Mark the cookie just set ``Partitioned`` (Starlette can only on
    Python 3.14 and later, where ``http.cookies`` knows the attribute)."""
    for index in range(len(response.raw_headers) - 1, -1, -1):
        name, value = response.raw_headers[index]
        if name == b"set-cookie":
            response.raw_headers[index] = (name, value + b"; Partitioned")
            return


def forget_cookie(ui: Ui, request: Request, response: Response, name: str) -> None:
    """Delete one of the UI's cookies (with the attributes it was set with:
    a partitioned cookie is deleted only by a partitioned answer)."""
    set_cookie(ui, request, response, name, "", max_age=0)


def start_session(
    ui: Ui,
    request: Request,
    response: Response,
    tenant: str | None,
    via: str,
    expires_at: datetime,
    capabilities: frozenset[Capability] = ALL_CAPABILITIES,
) -> None:
    """Sign the browser in (as admin when ``tenant`` is None) until
    ``expires_at``, to do what ``capabilities`` allow."""
    token = ui.signer.session_token(tenant, via, expires_at, capabilities)
    max_age = max(int((expires_at - ui.producer.clock()).total_seconds()), 1)
    set_cookie(ui, request, response, SESSION_COOKIE, token, max_age)


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


def checked_form(ui: UiDep, session: SessionDep, form: FormFields) -> FormData:
    """The fields of a form posted from a page of the current session (CSRF-checked)."""
    if not ui.signer.check_csrf(session.id, form.get("csrf")):
        raise UiError(
            403,
            "Form expired",
            "This form did not come from your current session. Reload the page and retry.",
        )
    return form


CheckedForm = Annotated[FormData, Depends(checked_form)]


def requires(capability: Capability) -> Any:
    """A route dependency refusing (403) a session that may not do what
    ``capability`` allows: pages hide what a session cannot do, and every
    route that does it checks again, whatever the browser sends."""

    def check(session: SessionDep) -> None:
        if not session.can(capability):
            raise UiError(
                403,
                "Not allowed",
                f"This portal link does not allow that (it lacks “{capability}”). "
                "Ask for a link that does where you got this one.",
            )

    return Depends(check)
