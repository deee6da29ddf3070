"""Checks of user input shared by the library and the API (pure)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from producer.errors import ValidationError

__all__ = [
    "MAX_URL_LENGTH",
    "RESERVED_HEADERS",
    "validate_aware",
    "validate_headers",
    "validate_metadata",
    "validate_positive",
    "validate_tenant",
    "validate_url",
    "validate_version",
]

MAX_URL_LENGTH = 2048
MAX_HEADERS = 20
MAX_HEADER_VALUE = 4096
RESERVED_HEADERS = frozenset({"content-type", "user-agent", "host", "content-length"})
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
        if lower in RESERVED_HEADERS or lower.startswith(("webhook-", "svix-")):
            raise ValidationError.for_field(field, "is set by the sender and cannot be overridden")
        if not isinstance(value, str):
            raise ValidationError.for_field(field, "must be a string")
        if len(value) > MAX_HEADER_VALUE or any(ch in value for ch in "\r\n\0"):
            raise ValidationError.for_field(
                field, f"must be at most {MAX_HEADER_VALUE} characters without CR, LF or NUL"
            )
        result[name] = value
    return result


def is_sensitive_header(name: str) -> bool:
    """Header names whose values are redacted when read back."""
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
    """None, or a datetime that carries a timezone."""
    if value is not None and value.tzinfo is None:
        raise ValidationError.for_field(field, "must carry a timezone (UTC)")
    return value
