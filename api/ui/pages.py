"""The pages under ``/ui``: sign-in, endpoints, deliveries, messages, actions.

Every page reads one page of a paginated library call (or a fixed handful of
calls per listed item), so pages stay fast whatever the size of the log.
Library calls block, so routes are plain functions FastAPI runs in its
thread pool; only the test send, which waits on the network, is async.

(No ``from __future__ import annotations`` here: FastAPI reads the route
signatures at definition time, and they name dependencies local to
:func:`create_ui_router`.)
"""

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import RedirectResponse

from api.ui.charts import bar_chart, hour_window, hourly_counts
from api.ui.rendering import SECURITY_HEADERS, PageRoute, SignInRequired, UiError, templates
from api.ui.tokens import ExpiredToken, Session, Signer, TokenError, resolve_secret
from producer.errors import NotFoundError
from producer.producer import Producer
from producer.validation import redact_headers

__all__ = ["LOGIN_COOKIE", "SESSION_COOKIE", "SESSION_LIFETIME", "create_ui_router"]

SESSION_COOKIE = "webhooks_ui_session"
LOGIN_COOKIE = "webhooks_ui_login"
SESSION_LIFETIME = timedelta(hours=8)
"""How long a sign-in with an API key lasts (portal sessions last as long as their link)."""

PAGE_SIZE = 25
_MAX_FORM_BYTES = 64 * 1024
_STATIC_DIR = Path(__file__).parent / "static"
_STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
_DELIVERY_STATUSES = ("pending", "sending", "succeeded", "failed", "cancelled")
_NOTICES = {
    "retried": "The delivery is queued to be sent again now.",
    "enabled": "The endpoint is enabled; deliveries held for it go out now.",
    "disabled": "The endpoint is disabled; its deliveries wait until it is enabled again.",
    "recovered": "{count} failed deliveries are queued to be sent again.",
}

Text = Annotated[str | None, Query(max_length=200)]


def _blank_to_none(value: str | None) -> str | None:
    return value.strip() or None if value is not None else None


def _parse_time(value: str | None, field: str) -> datetime | None:
    """A ``datetime-local`` input value (or RFC 3339); times without a zone are UTC."""
    value = _blank_to_none(value)
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise UiError(
            422, "Invalid input", f"{field}: {value!r} is not a date and time like 2026-11-22T10:00"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _input_time(value: datetime) -> str:
    """The value of a ``datetime-local`` input for ``value``, in UTC."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


def _safe_next(target: str | None, base: str, default: str) -> str:
    """Where to go after signing in: only a page of this UI, never another site."""
    if target and "\\" not in target and (target == base or target.startswith(base + "/")):
        return target
    return default


def _load_static() -> dict[str, tuple[bytes, str]]:
    files = {}
    for path in sorted(_STATIC_DIR.iterdir()):
        if path.suffix in _STATIC_TYPES:
            files[path.name] = (path.read_bytes(), _STATIC_TYPES[path.suffix])
    return files


async def _form_fields(request: Request) -> dict[str, str]:
    """The fields of a URL-encoded form (the only kind the pages send)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise UiError(415, "Unsupported form", "Forms must be sent URL-encoded.")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_FORM_BYTES:
            raise UiError(413, "Too large", "The form is too large.")
    try:
        pairs = parse_qsl(bytes(body).decode(), keep_blank_values=True, max_num_fields=50)
    except (UnicodeDecodeError, ValueError):
        raise UiError(400, "Bad form", "The form could not be read.") from None
    return dict(pairs)


FormFields = Annotated[dict[str, str], Depends(_form_fields)]


def create_ui_router(producer: Producer, *, secret: bytes | None = None) -> APIRouter:
    """The web UI: pages under ``/ui`` over ``producer``.

    ``secret`` signs session cookies, portal links and CSRF tokens; it must be
    the one given to :func:`create_portal_router` (both default to the
    producer's ``ui_secret`` setting when there is one, else to random bytes
    shared by the routers of this producer in this process, so sessions end
    when the process restarts).
    """
    signer = Signer(resolve_secret(producer, secret))
    static = _load_static()
    static_version = hashlib.sha256(b"".join(body for body, _ in static.values())).hexdigest()[:12]
    router = APIRouter(prefix="/ui", route_class=PageRoute, include_in_schema=False)

    # -- sessions and forms ------------------------------------------------------

    def current_session(request: Request) -> Session:
        token = request.cookies.get(SESSION_COOKIE)
        if not token:
            raise SignInRequired
        try:
            return signer.session(token, producer.clock())
        except TokenError:
            raise SignInRequired from None

    SessionDep = Annotated[Session, Depends(current_session)]

    def checked_form(session: SessionDep, form: FormFields) -> dict[str, str]:
        if not signer.check_csrf(session.id, form.get("csrf")):
            raise UiError(
                403,
                "Form expired",
                "This form did not come from your current session. Reload the page and retry.",
            )
        return form

    CheckedForm = Annotated[dict[str, str], Depends(checked_form)]

    def render(
        request: Request,
        session: Session | None,
        name: str,
        context: dict[str, Any],
        *,
        status_code: int = 200,
    ) -> Response:
        context = {
            **context,
            "session": session,
            "csrf": signer.csrf_token(session.id) if session is not None else "",
            "static_version": static_version,
        }
        return templates.TemplateResponse(
            request, name, context, status_code=status_code, headers=SECURITY_HEADERS
        )

    def cookie_path(request: Request) -> str:
        return request.url_for("ui_home").path

    def start_session(
        request: Request, response: Response, tenant: str | None, via: str, expires_at: datetime
    ) -> None:
        token = signer.session_token(tenant, via, expires_at)
        response.set_cookie(
            SESSION_COOKIE,
            token,
            max_age=max(int((expires_at - producer.clock()).total_seconds()), 1),
            path=cookie_path(request),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )

    def notice(done: str | None, count: int | None) -> str | None:
        text = _NOTICES.get(done or "")
        return text.format(count=count or 0) if text else None

    def page_url(request: Request, **params: str | None) -> str:
        """This page with query parameters replaced (None drops one)."""
        query = dict(request.query_params)
        query.pop("done", None)
        query.pop("count", None)
        for key, value in params.items():
            if value is None:
                query.pop(key, None)
            else:
                query[key] = value
        return request.url.path + ("?" + urlencode(query) if query else "")

    def pager(request: Request, next_cursor: str | None, cursor: str | None) -> dict[str, Any]:
        """Links to the next (older) page and back to the first (newest)."""
        return {
            "next_url": page_url(request, cursor=next_cursor) if next_cursor else None,
            "first_url": page_url(request, cursor=None) if cursor else None,
        }

    # -- sign-in -------------------------------------------------------------------

    @router.get("", name="ui_home")
    def home(request: Request) -> Response:
        return RedirectResponse(request.url_for("ui_endpoints").path, status_code=303)

    @router.get("/login", name="ui_login")
    def login_form(request: Request, next: Text = None) -> Response:
        nonce = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(16)
        response = render(
            request,
            None,
            "login.html",
            {"next": next or "", "login_csrf": signer.csrf_token("login:" + nonce), "error": None},
        )
        # The nonce ties the sign-in form to this browser (login CSRF).
        response.set_cookie(
            LOGIN_COOKIE,
            nonce,
            max_age=3600,
            path=cookie_path(request),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    @router.post("/login", name="ui_login_submit")
    def login(request: Request, form: FormFields) -> Response:
        nonce = request.cookies.get(LOGIN_COOKIE)
        if not nonce or not signer.check_csrf("login:" + nonce, form.get("csrf")):
            raise UiError(
                403,
                "Form expired",
                "The sign-in form has expired or cookies are blocked. Reload it and retry.",
            )
        key = producer.authenticate(form.get("api_key", "").strip())
        if key is None:
            return render(
                request,
                None,
                "login.html",
                {
                    "next": form.get("next", ""),
                    "login_csrf": signer.csrf_token("login:" + nonce),
                    "error": "That API key is not valid.",
                },
                status_code=401,
            )
        target = _safe_next(
            form.get("next"), cookie_path(request), request.url_for("ui_endpoints").path
        )
        response = RedirectResponse(target, status_code=303)
        start_session(request, response, key.tenant, "key", producer.clock() + SESSION_LIFETIME)
        response.delete_cookie(LOGIN_COOKIE, path=cookie_path(request))
        return response

    @router.post("/logout", name="ui_logout")
    def logout(request: Request, form: CheckedForm) -> Response:
        response = RedirectResponse(request.url_for("ui_login").path, status_code=303)
        response.delete_cookie(SESSION_COOKIE, path=cookie_path(request))
        return response

    @router.get("/portal", name="ui_portal")
    def portal(request: Request, token: Annotated[str, Query(max_length=4096)] = "") -> Response:
        try:
            tenant, expires_at = signer.portal(token, producer.clock())
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
        response = render(request, None, "portal.html", {"target": target, "tenant": tenant})
        start_session(request, response, tenant, "portal", expires_at)
        return response

    @router.get("/static/{name}", name="ui_static")
    def static_file(name: str) -> Response:
        if name not in static:
            raise UiError(404, "Not found", "There is no such file.")
        body, media_type = static[name]
        return Response(body, media_type=media_type, headers={"Cache-Control": "max-age=3600"})

    # -- endpoints -------------------------------------------------------------------

    @router.get("/endpoints", name="ui_endpoints")
    def endpoints(
        request: Request,
        session: SessionDep,
        status: Text = None,
        tenant: Text = None,
        cursor: Text = None,
    ) -> Response:
        status, tenant, cursor = map(_blank_to_none, (status, tenant, cursor))
        if status not in (None, "enabled", "disabled"):
            raise UiError(422, "Invalid input", "status must be enabled or disabled")
        scope = session.tenant if session.tenant is not None else tenant
        page = producer.list_endpoints(tenant=scope, status=status, limit=PAGE_SIZE, cursor=cursor)
        # One grouped query for the whole page, not one per endpoint.
        stats = producer.endpoint_success_rates([e.id for e in page.data])
        rows = [(endpoint, stats[endpoint.id]) for endpoint in page.data]
        return render(
            request,
            session,
            "endpoints.html",
            {
                "rows": rows,
                "filters": {"status": status or "", "tenant": tenant or ""},
                **pager(request, page.next_cursor, cursor),
            },
        )

    @router.get("/endpoints/{endpoint_id}", name="ui_endpoint")
    def endpoint_page(
        request: Request,
        session: SessionDep,
        endpoint_id: str,
        status: Text = None,
        event_type: Text = None,
        since: Text = None,
        until: Text = None,
        cursor: Text = None,
        done: Text = None,
        count: Annotated[int | None, Query(ge=0)] = None,
    ) -> Response:
        status, event_type, cursor = map(_blank_to_none, (status, event_type, cursor))
        if status is not None and status not in _DELIVERY_STATUSES:
            choices = ", ".join(_DELIVERY_STATUSES)
            raise UiError(422, "Invalid input", f"status must be one of {choices}")
        since_at, until_at = _parse_time(since, "since"), _parse_time(until, "until")
        endpoint = producer.get_endpoint(endpoint_id, tenant=session.tenant)
        now = producer.clock()
        stats = producer.endpoint_stats(endpoint.id, tenant=session.tenant)
        window_since, window_until = hour_window(now)
        counts = hourly_counts(
            producer, endpoint.id, since=window_since, until=window_until, tenant=session.tenant
        )
        deliveries = producer.list_deliveries(
            endpoint_id=endpoint.id,
            tenant=session.tenant,
            status=status,
            event_type=event_type,
            since=since_at,
            until=until_at,
            limit=PAGE_SIZE,
            cursor=cursor,
        )
        return render(
            request,
            session,
            "endpoint.html",
            {
                "endpoint": endpoint,
                "headers": redact_headers(endpoint.headers),
                "stats": stats,
                "chart": bar_chart(counts.hours),
                "deliveries": deliveries.data,
                "statuses": _DELIVERY_STATUSES,
                "filters": {
                    "status": status or "",
                    "event_type": event_type or "",
                    "since": since or "",
                    "until": until or "",
                },
                **pager(request, deliveries.next_cursor, cursor),
                "notice": notice(done, count),
                "recover_since": _input_time(now - timedelta(days=1)),
            },
        )

    @router.post("/endpoints/{endpoint_id}/test", name="ui_endpoint_test")
    async def endpoint_test(
        request: Request, session: SessionDep, form: CheckedForm, endpoint_id: str
    ) -> Response:
        result = await producer.atest_endpoint(endpoint_id, tenant=session.tenant)
        fragment = request.headers.get("x-requested-with") == "fetch"
        context = {"result": result, "endpoint_id": endpoint_id}
        return render(request, session, "test_result.html" if fragment else "test.html", context)

    @router.post("/endpoints/{endpoint_id}/enable", name="ui_endpoint_enable")
    def endpoint_enable(
        request: Request, session: SessionDep, form: CheckedForm, endpoint_id: str
    ) -> Response:
        producer.enable_endpoint(endpoint_id, tenant=session.tenant)
        return _back(request, "ui_endpoint", {"endpoint_id": endpoint_id}, done="enabled")

    @router.post("/endpoints/{endpoint_id}/disable", name="ui_endpoint_disable")
    def endpoint_disable(
        request: Request, session: SessionDep, form: CheckedForm, endpoint_id: str
    ) -> Response:
        reason = form.get("reason", "").strip()[:200] or "manual"
        producer.disable_endpoint(endpoint_id, tenant=session.tenant, reason=reason)
        return _back(request, "ui_endpoint", {"endpoint_id": endpoint_id}, done="disabled")

    @router.post("/endpoints/{endpoint_id}/rotate-secret", name="ui_endpoint_rotate")
    def endpoint_rotate(
        request: Request, session: SessionDep, form: CheckedForm, endpoint_id: str
    ) -> Response:
        new_secret = producer.rotate_endpoint_secret(endpoint_id, tenant=session.tenant)
        # Shown in this response only: it is not stored anywhere the UI can
        # read it back, and the page is marked no-store.
        return render(
            request, session, "secret.html", {"secret": new_secret, "endpoint_id": endpoint_id}
        )

    @router.post("/endpoints/{endpoint_id}/recover", name="ui_endpoint_recover")
    def endpoint_recover(
        request: Request, session: SessionDep, form: CheckedForm, endpoint_id: str
    ) -> Response:
        since_at = _parse_time(form.get("since"), "since")
        if since_at is None:
            raise UiError(422, "Invalid input", "since: give the start of the window to recover")
        until_at = _parse_time(form.get("until"), "until")
        count = producer.recover_endpoint(
            endpoint_id, since=since_at, until=until_at, tenant=session.tenant
        )
        return _back(
            request, "ui_endpoint", {"endpoint_id": endpoint_id}, done="recovered", count=count
        )

    # -- deliveries ----------------------------------------------------------------

    @router.get("/deliveries/{delivery_id}", name="ui_delivery")
    def delivery_page(
        request: Request, session: SessionDep, delivery_id: str, done: Text = None
    ) -> Response:
        delivery = producer.get_delivery(delivery_id, tenant=session.tenant)
        attempts = producer.list_attempts(delivery.id, tenant=session.tenant)
        payload = producer.get_delivery_payload(delivery.id, tenant=session.tenant)
        try:
            endpoint = producer.get_endpoint(delivery.endpoint_id, tenant=session.tenant)
        except NotFoundError:
            endpoint = None  # deleted since; its log stays readable
        return render(
            request,
            session,
            "delivery.html",
            {
                "delivery": delivery,
                "attempts": attempts,
                "payload": payload,
                "endpoint": endpoint,
                "notice": notice(done, None),
            },
        )

    @router.post("/deliveries/{delivery_id}/retry", name="ui_delivery_retry")
    def delivery_retry(
        request: Request, session: SessionDep, form: CheckedForm, delivery_id: str
    ) -> Response:
        producer.retry_delivery(delivery_id, tenant=session.tenant, force=form.get("force") == "on")
        return _back(request, "ui_delivery", {"delivery_id": delivery_id}, done="retried")

    # -- messages --------------------------------------------------------------------

    @router.get("/messages", name="ui_messages")
    def messages(
        request: Request,
        session: SessionDep,
        event_type: Text = None,
        tenant: Text = None,
        since: Text = None,
        until: Text = None,
        cursor: Text = None,
    ) -> Response:
        event_type, tenant, cursor = map(_blank_to_none, (event_type, tenant, cursor))
        scope = session.tenant if session.tenant is not None else tenant
        page = producer.list_messages(
            tenant=scope,
            event_type=event_type,
            since=_parse_time(since, "since"),
            until=_parse_time(until, "until"),
            limit=PAGE_SIZE,
            cursor=cursor,
        )
        return render(
            request,
            session,
            "messages.html",
            {
                "messages": page.data,
                "filters": {
                    "event_type": event_type or "",
                    "tenant": tenant or "",
                    "since": since or "",
                    "until": until or "",
                },
                **pager(request, page.next_cursor, cursor),
            },
        )

    @router.get("/messages/{message_id}", name="ui_message")
    def message_page(
        request: Request, session: SessionDep, message_id: str, cursor: Text = None
    ) -> Response:
        message = producer.get_message(message_id, tenant=session.tenant)
        deliveries = producer.list_deliveries(
            message_id=message.id,
            tenant=session.tenant,
            limit=PAGE_SIZE,
            cursor=_blank_to_none(cursor),
        )
        return render(
            request,
            session,
            "message.html",
            {
                "message": message,
                "deliveries": deliveries.data,
                **pager(request, deliveries.next_cursor, cursor),
            },
        )

    return router


def _back(
    request: Request, name: str, path_params: dict[str, str], **query: str | int
) -> RedirectResponse:
    """Post/redirect/get: after an action, show the page it was taken on."""
    url = request.url_for(name, **path_params).path
    return RedirectResponse(f"{url}?{urlencode(query)}", status_code=303)
