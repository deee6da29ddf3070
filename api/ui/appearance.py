"""How the UI presents itself to the host product it is part of: the name at
the top of its pages, its accent colour, and which sites may show it in a
frame (``WEBHOOKS_UI_BRAND_NAME``, ``WEBHOOKS_UI_ACCENT_COLOR``,
``WEBHOOKS_UI_FRAME_ANCESTORS``).

The settings validate their values (an accent colour is ``#rgb`` or
``#rrggbb``, an ancestor an origin), and they are checked again here, so
nothing but a colour reaches the stylesheet and nothing but origins the
``Content-Security-Policy`` header.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["DEFAULT_BRAND", "Appearance", "security_headers"]

DEFAULT_BRAND = "Webhooks"
_COLOUR = re.compile(r"#(?:[0-9a-fA-F]{3}){1,2}")
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.\-]+(?::[0-9]{1,5})?")
_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'self'; object-src 'none'"
)


def security_headers(frame_ancestors: Sequence[str] = ()) -> dict[str, str]:
    """The headers of every page: no shared caching, a strict content policy,
    and framing by the ``frame_ancestors`` origins only (by nobody when empty)."""
    headers = {
        # Pages show one tenant's data: never keep them in a shared cache.
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
    }
    if frame_ancestors:
        # X-Frame-Options cannot name origins; frame-ancestors supersedes it.
        headers["Content-Security-Policy"] = (
            f"{_POLICY}; frame-ancestors {' '.join(frame_ancestors)}"
        )
    else:
        headers["Content-Security-Policy"] = f"{_POLICY}; frame-ancestors 'none'"
        headers["X-Frame-Options"] = "DENY"
    return headers


@dataclass(frozen=True)
class Appearance:
    """The host product's name and colour, and the origins that may frame the UI."""

    brand: str = DEFAULT_BRAND
    accent_color: str | None = None
    frame_ancestors: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.accent_color is not None and not _COLOUR.fullmatch(self.accent_color):
            raise ValueError(f"{self.accent_color!r} is not a colour like #2f5bea")
        for origin in self.frame_ancestors:
            if not _ORIGIN.fullmatch(origin):
                raise ValueError(f"{origin!r} is not an origin like https://app.example.com")

    @classmethod
    def of(cls, settings: Any) -> Appearance:
        """The appearance the producer's settings ask for."""
        return cls(
            brand=settings.ui_brand_name or DEFAULT_BRAND,
            accent_color=settings.ui_accent_color,
            frame_ancestors=tuple(settings.ui_frame_ancestors),
        )

    @property
    def embeddable(self) -> bool:
        """Whether some other site may show the UI in a frame."""
        return bool(self.frame_ancestors)

    @property
    def headers(self) -> dict[str, str]:
        """The security headers of every page of this UI."""
        return security_headers(self.frame_ancestors)

    @property
    def stylesheet(self) -> str:
        """The theme stylesheet: the accent colour over the built-in one."""
        if self.accent_color is None:
            return "/* the built-in accent colour */\n"
        return f":root {{ --accent: {self.accent_color}; }}\n"

    @property
    def version(self) -> str:
        """Changes with the stylesheet, so browsers fetch a changed one."""
        return hashlib.sha256(self.stylesheet.encode()).hexdigest()[:12]
