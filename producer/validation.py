"""Checks of user input shared by the library and the API (pure)."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import httpx

from producer.errors import ValidationError
from producer.sealing import PREFIX as SEALED_PREFIX

__all__ = [
    "MAX_JSON_DEPTH",
    "MAX_URL_LENGTH",
    "RESERVED_HEADERS",
    "RESERVED_HEADER_PREFIXES",
    "validate_aware",
    "validate_headers",
    "validate_json",
    "validate_metadata",
    "validate_positive",
    "validate_tenant",
    "validate_text",
    "validate_url",
    "validate_version",
]

MAX_URL_LENGTH = 2048
MAX_HEADERS = 20
MAX_HEADER_VALUE = 4096
MAX_JSON_DEPTH = 64
"""How deeply JSON taken in may nest (objects and arrays): far beyond any real
payload, and far below where serialisers and parsers give up on recursion."""
RESERVED_HEADERS = frozenset(
    {
        # What the sender states about the body and itself.
        "content-type",
        "content-encoding",
        "user-agent",
        # Framing and connection handling: a custom value would let a tenant
        # smuggle a second request or desynchronise the connection.
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "upgrade",
        "expect",
        "te",
        "trailer",
        "accept-encoding",
    }
)
RESERVED_HEADER_PREFIXES = ("webhook-", "svix-", "proxy-")
"""Signature headers (``webhook-*`` and their ``svix-*`` aliases) and the
hop-by-hop ``proxy-*`` headers."""
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_TENANT = re.compile(r"^[A-Za-z0-9_.:\-]{1,128}$")
_SENSITIVE = ("authorization", "cookie", "token", "key", "secret", "password")


def validate_url(url: Any, *, https_only: bool = False) -> str:
    """A receiver URL: http(s), a host, no credentials, at most 2048 characters."""
    if not isinstance(url, str) or not url:
        raise ValidationError.for_field("url", "must be a non-empty string")
    if len(url) > MAX_URL_LENGTH:
        raise ValidationError.for_field("url", f"must be at most {MAX_URL_LENGTH} characters")
    if any(ch in url for ch in "\r\n\t ") or not url.isprintable():
        raise ValidationError.for_field("url", "must not contain whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValidationError.for_field("url", f"is not a valid URL: {exc}") from exc
    allowed = ("https",) if https_only else ("http", "https")
    if parts.scheme not in allowed:
        raise ValidationError.for_field("url", f"scheme must be {' or '.join(allowed)}")
    if not parts.hostname:
        raise ValidationError.for_field("url", "must include a host")
    if parts.username is not None or parts.password is not None:
        raise ValidationError.for_field("url", "must not contain credentials")
    if port == 0:
        raise ValidationError.for_field("url", "port 0 is not allowed")
    try:
        # The delivery sends through httpx, which IDNA-encodes the host: a
        # host it cannot encode would fail every attempt, so refuse it now.
        httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ValidationError.for_field("url", f"the host cannot be encoded: {exc}") from exc
    return url


def validate_headers(headers: Any) -> dict[str, str]:
    """Custom headers sent with every delivery of an endpoint."""
    if headers is None:
        return {}
    if not isinstance(headers, Mapping):
        raise ValidationError.for_field("headers", "must be an object of strings")
    if len(headers) > MAX_HEADERS:
        raise ValidationError.for_field("headers", f"at most {MAX_HEADERS} headers are allowed")
    result: dict[str, str] = {}
    for name, value in headers.items():
        field = f"headers.{name}"
        if not isinstance(name, str) or not _TOKEN.match(name):
            raise ValidationError.for_field(field, "is not a valid header name")
        lower = name.lower()
        if lower in RESERVED_HEADERS or lower.startswith(RESERVED_HEADER_PREFIXES):
            raise ValidationError.for_field(field, "is set by the sender and cannot be overridden")
        if not isinstance(value, str):
            raise ValidationError.for_field(field, "must be a string")
        _check_header_value(field, value)
        result[name] = value
    return result


def _check_header_value(field: str, value: str) -> None:
    """Refuse a value now that would fail, or be rewritten, on every attempt."""
    if len(value) > MAX_HEADER_VALUE:
        raise ValidationError.for_field(field, f"must be at most {MAX_HEADER_VALUE} characters")
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise ValidationError.for_field(field, "must not contain control characters")
    if value.startswith(SEALED_PREFIX):
        # Values are sealed at rest; one that looks sealed could not be told
        # apart from a sealed one when it is read back.
        raise ValidationError.for_field(field, f"must not start with {SEALED_PREFIX!r}")
    if not value.isascii():
        # httpx encodes header values as ASCII: anything else cannot be sent.
        raise ValidationError.for_field(field, "must be ASCII")
    if value != value.strip(" "):
        # HTTP strips them on the receiving side, so the value would not arrive as given.
        raise ValidationError.for_field(field, "must not start or end with a space")


@lru_cache(maxsize=512)
def is_sensitive_header(name: str) -> bool:
    """Header names whose values are redacted when read back.

    Remembered by name: every attempt's headers are redacted before they are
    logged, and their names are the same few each time.
    """
    lower = name.lower()
    return any(word in lower for word in _SENSITIVE)


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Headers with sensitive values replaced by ``"[redacted]"``."""
    return {k: ("[redacted]" if is_sensitive_header(k) else v) for k, v in headers.items()}


def validate_metadata(metadata: Any, *, max_bytes: int) -> dict[str, Any]:
    """Free-form JSON object kept with an endpoint, bounded in size."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise ValidationError.for_field("metadata", "must be an object")
    validate_json(metadata, "metadata")
    try:
        size = len(json.dumps(metadata, separators=(",", ":")).encode())
    except (TypeError, ValueError) as exc:
        raise ValidationError.for_field("metadata", f"is not JSON: {exc}") from exc
    if size > max_bytes:
        raise ValidationError.for_field("metadata", f"must be at most {max_bytes} bytes as JSON")
    return dict(metadata)


def validate_tenant(tenant: Any) -> str:
    """Tenant names: 1-128 of letters, digits, ``_ . : -``."""
    if not isinstance(tenant, str) or not _TENANT.match(tenant):
        raise ValidationError.for_field(
            "tenant", "must be 1-128 characters of letters, digits, '_', '.', ':' or '-'"
        )
    return tenant


def validate_version(value: Any, field: str) -> str:
    """A payload version: 1-32 printable characters (an integer is taken as text)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not 1 <= len(value) <= 32 or not value.isprintable():
        raise ValidationError.for_field(field, "a version is a string of 1-32 characters")
    return value


def validate_positive(value: Any, field: str, *, maximum: float) -> float | None:
    """None, or a number above 0 and at most ``maximum``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= maximum:
        raise ValidationError.for_field(field, f"must be a number above 0 and at most {maximum:g}")
    return float(value)


def validate_aware(value: datetime | None, field: str) -> datetime | None:
    """None, or a datetime that carries a timezone and exists in UTC (years
    1-9999 once its offset is applied: ``9999-12-31T23:59-23:59`` does not)."""
    if value is None:
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError.for_field(field, "must carry a timezone (UTC)")
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise ValidationError.for_field(
            field, "is out of range: it must fall within the years 1-9999 in UTC"
        ) from None
    return value


def validate_text(value: Any, field: str) -> Any:
    """``value`` unchanged, unless it is a string holding a NUL character.

    PostgreSQL text columns refuse NUL while SQLite keeps it, so it is refused
    here, the same on both databases."""
    if isinstance(value, str) and "\x00" in value:
        raise ValidationError.for_field(field, "must not contain NUL characters")
    return value


def validate_json(value: Any, field: str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``value`` unchanged if it nests objects and arrays at most ``max_depth``
    deep and no string or key in it holds a NUL character.

    Deeper documents are stored fine but cannot be read back by serialisers
    with recursion limits; NUL is refused by PostgreSQL's JSON and text types.
    Walked with an explicit stack, so a hostile document cannot exhaust
    Python's recursion limit here either."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            validate_text(item, field)
        elif isinstance(item, Mapping | list | tuple):
            if depth >= max_depth:
                raise ValidationError.for_field(
                    field, f"must not nest objects and arrays more than {max_depth} levels deep"
                )
            children = item.items() if isinstance(item, Mapping) else enumerate(item)
            for key, child in children:
                validate_text(key, field)
                stack.append((child, depth + 1))
    return value
