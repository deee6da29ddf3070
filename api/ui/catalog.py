"""The event catalog: every event type that can be sent, with its
description, versions, JSON Schema and an example payload; and the choices
of event types the endpoint form and the test send offer.

An example is the event type's own for that version when it has one, else
the first of the schema's ``examples``, else one made from the schema
(:func:`example_from_schema`): enough to show the shape of the data and to
start a test send from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Response

from api.ui.rendering import PageRoute
from api.ui.sessions import VisitDep
from producer.producer import Producer
from producer.types import EventType

__all__ = [
    "CatalogEntry",
    "Choice",
    "SchemaField",
    "event_type_choices",
    "example_from_schema",
    "example_payload",
    "live_event_types",
    "router",
    "schema_fields",
]

router = APIRouter(route_class=PageRoute)

MAX_CATALOG = 500
"""Most event types a page reads: far more than a product documents."""
_PAGE = 100
_MAX_DEPTH = 8
# What a made-up string looks like for the common JSON Schema formats.
_FORMAT_EXAMPLES = {
    "date-time": "2026-01-31T12:00:00Z",
    "date": "2026-01-31",
    "time": "12:00:00Z",
    "email": "someone@example.com",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "uuid": "123e4567-e89b-12d3-a456-426614174000",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "hostname": "example.com",
}


def live_event_types(producer: Producer) -> list[EventType]:
    """The event types that can be sent (not archived), in name order."""
    found: list[EventType] = []
    cursor = None
    while len(found) < MAX_CATALOG:
        page = producer.list_event_types(limit=_PAGE, cursor=cursor)
        found.extend(page.data)
        cursor = page.next_cursor
        if cursor is None:
            break
    return found[:MAX_CATALOG]


def example_from_schema(schema: Any, depth: int = 0) -> Any:
    """A value that fits ``schema`` in the common cases: its ``const``,
    ``default``, first example or enum value, else one built from its type
    (every property of an object, one item of an array)."""
    if not isinstance(schema, dict) or depth > _MAX_DEPTH:
        return None
    for key in ("const", "default"):
        if key in schema:
            return schema[key]
    for key in ("examples", "enum"):
        if isinstance(schema.get(key), list) and schema[key]:
            return schema[key][0]
    for key in ("oneOf", "anyOf", "allOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            return example_from_schema(schema[key][0], depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and "properties" in schema):
        properties = schema.get("properties")
        if not isinstance(properties, dict):
            return {}
        return {name: example_from_schema(sub, depth + 1) for name, sub in properties.items()}
    if kind == "array":
        return [example_from_schema(schema.get("items", {}), depth + 1)]
    return _scalar(kind, schema)


def _scalar(kind: Any, schema: dict[str, Any]) -> Any:
    if kind == "string":
        return _FORMAT_EXAMPLES.get(str(schema.get("format")), "string")
    if kind == "integer":
        return int(schema.get("minimum", 0))
    if kind == "number":
        return schema.get("minimum", 0.0)
    if kind == "boolean":
        return True
    return None


def example_payload(event_type: EventType, version: str | None = None) -> Any:
    """The example data of ``event_type`` in ``version`` (default: its newest
    version); ``{}`` for a type without schema or example."""
    versions = _versions(event_type)
    if version is None or version not in versions:
        version = versions[-1] if versions else None
    if version is None:
        return {}
    if version in event_type.examples:
        return event_type.examples[version]
    example = example_from_schema(event_type.schemas.get(version, {}))
    return {} if example is None else example


def _versions(event_type: EventType) -> list[str]:
    """The versions an event type documents, oldest first (numbers in number order)."""
    names = set(event_type.schemas) | set(event_type.examples)
    return sorted(names, key=lambda v: (0, int(v), v) if v.isdigit() else (1, 0, v))


@dataclass(frozen=True)
class SchemaField:
    """One property of a schema as a row of the catalog's table."""

    path: str
    type: str
    required: bool
    notes: str


def schema_fields(schema: Any, prefix: str = "", depth: int = 0) -> list[SchemaField]:
    """The properties of an object schema, nested ones by dotted path
    (``items[]`` for those of an array's items), for reading at a glance."""
    if not isinstance(schema, dict) or depth > _MAX_DEPTH:
        return []
    if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        return schema_fields(schema["items"], prefix + "[]", depth + 1)
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return []
    required = schema.get("required")
    if not isinstance(required, list):
        required = []
    rows: list[SchemaField] = []
    for name, sub in properties.items():
        path = f"{prefix}.{name}" if prefix else str(name)
        sub = sub if isinstance(sub, dict) else {}
        rows.append(SchemaField(path, _type_of(sub), name in required, _notes(sub)))
        rows.extend(schema_fields(sub, path, depth + 1))
    return rows


def _type_of(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        return " or ".join(str(k) for k in kind)
    if kind == "array" and isinstance(schema.get("items"), dict):
        return f"array of {_type_of(schema['items'])}"
    if kind is None and "properties" in schema:
        return "object"
    return str(kind) if kind else "any"


def _notes(schema: dict[str, Any]) -> str:
    notes = [str(schema["description"])] if schema.get("description") else []
    if isinstance(schema.get("enum"), list):
        notes.append("one of " + ", ".join(repr(v) for v in schema["enum"]))
    if schema.get("format"):
        notes.append(f"format {schema['format']}")
    for key, word in (("minimum", "at least"), ("maximum", "at most")):
        if key in schema:
            notes.append(f"{word} {schema[key]}")
    return " · ".join(notes)


@dataclass(frozen=True)
class CatalogEntry:
    """One event type as the catalog shows it: each version with its schema
    and example, newest first."""

    event_type: EventType
    versions: list[tuple[str, Any, list[SchemaField], Any]]
    """``(version, schema or None, its fields, example)``."""

    @classmethod
    def of(cls, event_type: EventType) -> CatalogEntry:
        """The catalog entry of a library event type."""
        versions = []
        for v in reversed(_versions(event_type)):
            schema = event_type.schemas.get(v)
            versions.append((v, schema, schema_fields(schema), example_payload(event_type, v)))
        return cls(event_type, versions)


@dataclass(frozen=True)
class Choice:
    """One checkbox of the endpoint form: a pattern and whether it is a
    whole group (``prefix.*``)."""

    pattern: str
    group: bool


def event_type_choices(event_types: list[EventType]) -> list[Choice]:
    """Every event type, each preceded by the ``prefix.*`` groups it is the
    first of, in name order: ``invoice.*``, ``invoice.paid``, ``invoice.voided``."""
    choices: list[Choice] = []
    seen: set[str] = set()
    for event_type in sorted(event_types, key=lambda e: e.name):
        parts = event_type.name.split(".")
        for depth in range(1, len(parts)):
            group = ".".join(parts[:depth]) + ".*"
            if group not in seen:
                seen.add(group)
                choices.append(Choice(group, True))
        choices.append(Choice(event_type.name, False))
    return choices


@router.get("/event-types", name="ui_event_types")
def catalog(visit: VisitDep) -> Response:
    """Every event type that can be sent, with what its data looks like."""
    entries = [CatalogEntry.of(e) for e in live_event_types(visit.producer)]
    return visit.render("event_types.html", {"entries": entries})
