"""Where pages lead: paging links, the notice after an action, the redirect
that shows it, and where to go after signing in."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import RedirectResponse

__all__ = ["PAGE_SIZE", "back", "notice", "page_url", "pager", "safe_next"]

PAGE_SIZE = 25
"""Rows per list page: each page reads one page of a paginated library call."""

_NOTICES = {
    "retried": "The delivery is queued to be sent again now.",
    "enabled": "The endpoint is enabled; deliveries held for it go out now.",
    "disabled": "The endpoint is disabled; its deliveries wait until it is enabled again.",
    "updated": "The endpoint's settings are saved.",
    "deleted": "The endpoint is deleted; deliveries waiting for it are cancelled.",
}

# Query parameters that report what the last action did: the page shows
# them once, and links from it leave them out.
_ONE_SHOT = ("done", "count", "test")


def page_url(request: Request, **params: str | None) -> str:
    """This page with query parameters replaced (None drops one)."""
    query = dict(request.query_params)
    for key in _ONE_SHOT:
        query.pop(key, None)
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


def back(
    request: Request, name: str, path_params: dict[str, str], **query: str | int
) -> RedirectResponse:
    """Post/redirect/get: after an action, show the page it was taken on.

    ``done`` in ``query`` names the action, for :func:`notice` to report.
    """
    url = request.url_for(name, **path_params).path
    return RedirectResponse(f"{url}?{urlencode(query)}", status_code=303)


def notice(done: str | None, count: int | None) -> str | None:
    """The sentence confirming the action ``done`` (see :func:`back`), if any."""
    if done == "replayed":
        if not count:
            return "There was nothing to send again; nothing was queued."
        return f"{count} deliver{'y is' if count == 1 else 'ies are'} queued to be sent again."
    if done == "recovered":
        if not count:
            return "No failed deliveries were created in that window; nothing was queued."
        if count == 1:
            return "1 failed delivery is queued to be sent again."
        return f"{count} failed deliveries are queued to be sent again."
    return _NOTICES.get(done or "")


def safe_next(target: str | None, base: str, default: str) -> str:
    """Where to go after signing in: only a page of this UI, never another site."""
    if target and "\\" not in target and (target == base or target.startswith(base + "/")):
        return target
    return default
