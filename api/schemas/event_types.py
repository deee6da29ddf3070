"""Event types: the global catalogue of event names, schemas and examples."""

from __future__ import annotations

from typing import Any

from api.schemas.common import TS_EXAMPLE, Changes, LibraryView, RequestBody, example

__all__ = ["EventTypeCreate", "EventTypeOut", "EventTypeUpdate"]

_EVENT_TYPE_EXAMPLE: dict[str, Any] = {
    "name": "invoice.paid",
    "description": "An invoice was paid.",
    "schemas": {"1": {"type": "object", "required": ["invoice"]}},
    "examples": {"1": {"invoice": "in_1"}},
}


class EventTypeCreate(RequestBody):
    """A named kind of event, with optional JSON Schemas and examples per version."""

    model_config = example(_EVENT_TYPE_EXAMPLE)

    name: str
    description: str = ""
    schemas: dict[str, dict[str, Any]] | None = None
    examples: dict[str, Any] | None = None


class EventTypeUpdate(Changes):
    """Fields to change; absent fields keep their value."""

    model_config = example({"description": "An invoice was paid in full."})

    description: str | None = None
    schemas: dict[str, dict[str, Any]] | None = None
    examples: dict[str, Any] | None = None


class EventTypeOut(LibraryView):
    """An event type; archived types can no longer be sent."""

    model_config = example(
        {
            **_EVENT_TYPE_EXAMPLE,
            "archived": False,
            "created_at": TS_EXAMPLE,
            "updated_at": TS_EXAMPLE,
        }
    )

    name: str
    description: str
    schemas: dict[str, Any]
    examples: dict[str, Any]
    archived: bool
    created_at: str
    updated_at: str
