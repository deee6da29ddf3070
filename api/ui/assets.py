"""The UI's stylesheet and script, served from memory under ``/ui/static``,
and the host's theme over them (``/ui/theme.css``).

Pages link them with ``?v=<static_version()>`` so a browser that cached an
older copy fetches the new one after an upgrade.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from fastapi import APIRouter, Request, Response

from api.ui.appearance import Appearance
from api.ui.rendering import RENDERER_STATE, PageRoute, UiError

__all__ = ["router", "static_files", "static_version"]

STATIC_DIR = Path(__file__).parent / "static"
_MEDIA_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}

router = APIRouter(route_class=PageRoute)


@cache
def static_files() -> dict[str, tuple[bytes, str]]:
    """Each served file's name, body and media type."""
    files = {}
    for path in sorted(STATIC_DIR.iterdir()):
        if path.suffix in _MEDIA_TYPES:
            files[path.name] = (path.read_bytes(), _MEDIA_TYPES[path.suffix])
    return files


@cache
def static_version() -> str:
    """A short digest of every served file: it changes when any of them does."""
    bodies = b"".join(body for body, _ in static_files().values())
    return hashlib.sha256(bodies).hexdigest()[:12]


@router.get("/theme.css", name="ui_theme")
def theme(request: Request) -> Response:
    """The host's theme over the built-in stylesheet (see :mod:`api.ui.appearance`)."""
    appearance: Appearance = getattr(request.state, RENDERER_STATE).appearance
    return Response(
        appearance.stylesheet,
        media_type=_MEDIA_TYPES[".css"],
        headers={"Cache-Control": "max-age=3600"},
    )


@router.get("/static/{name}", name="ui_static")
def static_file(name: str) -> Response:
    """One static file, cacheable for an hour."""
    if name not in static_files():
        raise UiError(404, "Not found", "There is no such file.")
    body, media_type = static_files()[name]
    return Response(body, media_type=media_type, headers={"Cache-Control": "max-age=3600"})
