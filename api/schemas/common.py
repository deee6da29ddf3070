"""What every resource's schemas share: the error shape, the page shape, and
the bases request bodies and responses are built on.

Every timestamp goes out as RFC 3339 UTC with milliseconds
(``2026-11-22T10:00:00.000Z``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any, Generic, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from producer.errors import ValidationError
from producer.payloads import format_timestamp
from producer.types import Page
from producer.validation import validate_json

__all__ = [
    "READ_DEPTH",
    "TS_EXAMPLE",
    "Changes",
    "ErrorBody",
    "ErrorDetail",
    "ErrorResponse",
    "LibraryView",
    "PageOut",
    "RequestBody",
    "example",
    "readable_json",
]

ItemT = TypeVar("ItemT")

TS_EXAMPLE = "2026-11-22T10:00:00.000Z"
"""The timestamp the documented examples show."""


def example(value: dict[str, Any]) -> ConfigDict:
    """A model configuration that documents ``value`` as the schema's example."""
    return ConfigDict(json_schema_extra={"examples": [value]})


class RequestBody(BaseModel):
    """Request bodies reject unknown fields, so a typo is a 422 naming it.

    Every field, whatever its type, is checked as JSON first: nested at most
    ``MAX_JSON_DEPTH`` levels and without NUL characters (which PostgreSQL
    refuses and SQLite keeps), so each body answers the same on both
    databases and whatever is stored can be read back.
    """

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _storable(cls, value: Any, info: ValidationInfo) -> Any:
        try:
            return validate_json(value, info.field_name or "body")
        except ValidationError as exc:
            # A ValueError becomes pydantic's 422 naming ``body.<field>``.
            raise ValueError(exc.details[0]["message"]) from None


class Changes(RequestBody):
    """A partial update: absent fields keep their value."""

    def changes(self) -> dict[str, Any]:
        """Only the fields the client sent, explicit nulls included."""
        return self.model_dump(exclude_unset=True)


class LibraryView(BaseModel):
    """A response that mirrors a library value field for field.

    The library's value objects and the API's responses use the same names,
    so a response reads each of its fields from the value; only timestamps
    change form on the way. A subclass overrides :meth:`fields_of` for the
    few fields that differ.
    """

    @classmethod
    def fields_of(cls, value: Any) -> dict[str, Any]:
        """This model's fields, read from the same-named attributes of ``value``."""
        return {name: _wire(getattr(value, name)) for name in cls.model_fields}

    @classmethod
    def of(cls, value: Any) -> Self:
        """The response for a library value."""
        return cls(**cls.fields_of(value))


def _wire(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_timestamp(value)
    return readable_json(value) if isinstance(value, dict | list) else value


READ_DEPTH = 128
"""How deeply a stored JSON value is returned as JSON: twice the input limit
(``MAX_JSON_DEPTH``), so whatever is accepted today reads back unchanged, and
well below the ~255 levels where response serialisation gives up."""


def readable_json(value: Any, depth: int = 0) -> Any:
    """A stored JSON value as it can be serialised in a response.

    Rows written before input depth was limited may nest deeper than any
    serialiser allows; past :data:`READ_DEPTH` levels the rest of such a
    value is returned as its JSON text, so the row stays readable (and nothing is lost) instead of
    failing every list that contains it.
    """
    if not isinstance(value, dict | list):
        return value
    if depth >= READ_DEPTH:
        try:
            return json.dumps(value, separators=(",", ":"))
        except (RecursionError, TypeError, ValueError):
            return "[too deeply nested to show]"
    if isinstance(value, dict):
        return {key: readable_json(child, depth + 1) for key, child in value.items()}
    return [readable_json(child, depth + 1) for child in value]


# -- errors and pages ----------------------------------------------------------


class ErrorDetail(BaseModel):
    """One problem with the request, usually about one field."""

    field: str | None = Field(default=None, examples=["body.url"])
    message: str = Field(examples=["scheme must be http or https"])
    schema_path: list[str | int] | None = Field(
        default=None, description="For data rejected by a JSON Schema: the failing keyword's path."
    )


class ErrorBody(BaseModel):
    """A stable machine-readable ``code``, a sentence, and per-field details."""

    code: str = Field(examples=["not_found"])
    message: str = Field(examples=["endpoint ep_01JD0000000000000000000000 not found"])
    details: list[ErrorDetail] = Field(default_factory=list)


class ErrorResponse(BaseModel):
    """The shape of every error the API returns."""

    error: ErrorBody


class PageOut(BaseModel, Generic[ItemT]):
    """One page of a newest-first list; pass ``next_cursor`` as ``?cursor=``."""

    data: list[ItemT]
    next_cursor: str | None = Field(examples=[None])

    @classmethod
    def of(cls, page: Page[Any], item: Callable[[Any], ItemT]) -> Self:
        """The response for a library page, each value turned into a response by ``item``."""
        return cls(data=[item(value) for value in page.data], next_cursor=page.next_cursor)
