"""What every resource's schemas share: the error shape, the page shape, and
the bases request bodies and responses are built on.

Every timestamp goes out as RFC 3339 UTC with milliseconds
(``2026-11-22T10:00:00.000Z``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Generic, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from producer.payloads import format_timestamp
from producer.types import Page

__all__ = [
    "TS_EXAMPLE",
    "Changes",
    "ErrorBody",
    "ErrorDetail",
    "ErrorResponse",
    "LibraryView",
    "PageOut",
    "RequestBody",
    "example",
]

ItemT = TypeVar("ItemT")

TS_EXAMPLE = "2026-11-22T10:00:00.000Z"
"""The timestamp the documented examples show."""


def example(value: dict[str, Any]) -> ConfigDict:
    """A model configuration that documents ``value`` as the schema's example."""
    return ConfigDict(json_schema_extra={"examples": [value]})


class RequestBody(BaseModel):
    """Request bodies reject unknown fields, so a typo is a 422 naming it."""

    model_config = ConfigDict(extra="forbid")


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
    return format_timestamp(value) if isinstance(value, datetime) else value


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
