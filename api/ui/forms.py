"""Reading what the pages send: URL-encoded forms and query-string text."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import Depends, Query, Request
from pydantic import AfterValidator

from api.ui.rendering import UiError

__all__ = [
    "FormData",
    "FormFields",
    "Text",
    "blank_to_none",
    "form_fields",
    "input_time",
    "one_of",
    "parse_json",
    "parse_time",
]

_MAX_FORM_BYTES = 64 * 1024
# A form may list every event type of the catalog as a checkbox.
_MAX_FORM_FIELDS = 1000


def _no_nul(value: str | None) -> str | None:
    # PostgreSQL refuses NUL where SQLite finds nothing: refused on both.
    if value is not None and "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


Text = Annotated[str | None, Query(max_length=200), AfterValidator(_no_nul)]
"""A query-string field of a page's filter form (never holding a NUL)."""


class FormData(dict[str, str]):
    """The fields of a posted form, by name (the last value of a repeated
    one), and every value of a repeated field (checkboxes) by :meth:`getlist`."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        super().__init__(pairs)
        self._pairs = pairs

    def getlist(self, name: str) -> list[str]:
        """Every value sent for ``name``, in order."""
        return [value for key, value in self._pairs if key == name]


async def form_fields(request: Request) -> FormData:
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
        text = bytes(body).decode()
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=_MAX_FORM_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise UiError(400, "Bad form", "The form could not be read.") from None
    for name, value in pairs:
        if "\x00" in name or "\x00" in value:
            raise UiError(422, "Invalid input", f"{name}: must not contain NUL characters")
    return FormData(pairs)


FormFields = Annotated[FormData, Depends(form_fields)]


def blank_to_none(value: str | None) -> str | None:
    """A filter field as typed: None when empty or only spaces."""
    return value.strip() or None if value is not None else None


def one_of(field: str, value: str | None, choices: Sequence[str]) -> str | None:
    """``value`` if it is one of ``choices`` (or None); a 422 page otherwise."""
    if value is None or value in choices:
        return value
    allowed = " or ".join(choices) if len(choices) == 2 else "one of " + ", ".join(choices)
    raise UiError(422, "Invalid input", f"{field} must be {allowed}")


def parse_time(value: str | None, field: str) -> datetime | None:
    """A ``datetime-local`` input value (or RFC 3339); times without a zone are UTC."""
    value = blank_to_none(value)
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise UiError(
            422, "Invalid input", f"{field}: {value!r} is not a date and time like 2026-11-22T10:00"
        ) from None
    try:
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except OverflowError:
        # 9999-12-31T23:59-23:59 is a valid string but no instant in UTC.
        raise UiError(
            422, "Invalid input", f"{field}: {value!r} falls outside the years 1-9999 in UTC"
        ) from None


def parse_json(text: str) -> Any:
    """The JSON typed in a text area; ValueError saying where it is not JSON."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"is not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None


def input_time(value: datetime) -> str:
    """The value of a ``datetime-local`` input for ``value``, in UTC."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")
