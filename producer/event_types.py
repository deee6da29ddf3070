"""Event types: the catalogue of what can be sent, with schemas and examples."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from producer.context import Context
from producer.errors import ConflictError, NotFoundError, ValidationError
from producer.models import EventTypeRow
from producer.payloads import check_schema, validate_data
from producer.routing import validate_event_type_name
from producer.types import EventType, Page, snapshot
from producer.validation import validate_json, validate_text, validate_version

__all__ = ["archive", "create", "event_type_of", "get", "list_", "update"]

_CHANGEABLE = frozenset({"description", "schemas", "examples"})


def create(
    ctx: Context,
    name: str,
    *,
    description: str,
    schemas: Mapping[str, Any] | None,
    examples: Mapping[str, Any] | None,
) -> EventType:
    """Register an event type, or unarchive an archived one of that name."""
    validate_event_type_name(name, "name")
    description = validate_text(description, "description")
    schemas_, examples_ = _checked_docs(schemas, examples)
    now = ctx.clock()
    with ctx.store.transaction() as s:
        row = ctx.store.get_event_type(s, name)
        if row is not None and row.archived_at is None:
            raise ConflictError(f"event type {name} already exists")
        if row is None:
            row = EventTypeRow(name=name, created_at=now)
            s.add(row)
        row.description = description or ""
        row.schemas = schemas_
        row.examples = examples_
        row.updated_at = now
        row.archived_at = None
        s.flush()
        return event_type_of(row)


def get(ctx: Context, name: str) -> EventType:
    """An event type by name (archived ones too)."""
    with ctx.store.reading() as s:
        return event_type_of(_row(ctx, s, name))


def list_(
    ctx: Context, *, include_archived: bool, limit: int, cursor: str | None
) -> Page[EventType]:
    """Event types in name order."""
    with ctx.store.reading() as s:
        rows, next_cursor = ctx.store.list_event_types(
            s, include_archived=include_archived, limit=limit, cursor=cursor
        )
        return Page([event_type_of(r) for r in rows], next_cursor)


def update(ctx: Context, name: str, changes: Mapping[str, Any]) -> EventType:
    """Change ``description``, ``schemas`` or ``examples``."""
    unknown = set(changes) - _CHANGEABLE
    if unknown:
        raise ValidationError.for_field(sorted(unknown)[0], "cannot be changed")
    now = ctx.clock()
    with ctx.store.transaction() as s:
        row = _row(ctx, s, name)
        schemas, examples = _checked_docs(
            changes.get("schemas", row.schemas), changes.get("examples", row.examples)
        )
        if "description" in changes:
            row.description = validate_text(changes["description"], "description") or ""
        row.schemas, row.examples, row.updated_at = schemas, examples, now
        s.flush()
        return event_type_of(row)


def archive(ctx: Context, name: str) -> EventType:
    """Archive an event type: it can no longer be sent."""
    now = ctx.clock()
    with ctx.store.transaction() as s:
        row = _row(ctx, s, name)
        if row.archived_at is None:
            row.archived_at = now
            row.updated_at = now
        s.flush()
        return event_type_of(row)


def _row(ctx: Context, s: Any, name: str) -> EventTypeRow:
    # No name holds a NUL, and PostgreSQL would refuse the query: not found,
    # as on SQLite.
    row = None if "\x00" in name else ctx.store.get_event_type(s, name)
    if row is None:
        raise NotFoundError(f"event type {name} not found")
    return row


def _checked_docs(
    schemas: Mapping[str, Any] | None, examples: Mapping[str, Any] | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Valid JSON Schemas per version, and examples that match their schema."""
    # Bounded depth and no NUL, checked first: the schema checks recurse.
    schemas_ = dict(validate_json(schemas, "schemas") or {})
    examples_ = dict(validate_json(examples, "examples") or {})
    for version, schema in schemas_.items():
        validate_version(version, f"schemas.{version}")
        check_schema(schema, f"schemas.{version}")
    for version, example in examples_.items():
        validate_version(version, f"examples.{version}")
        if version in schemas_:
            validate_data(schemas_[version], example, event_type="example", version=version)
    return schemas_, examples_


def event_type_of(row: EventTypeRow) -> EventType:
    """The public snapshot of an event type row."""
    return snapshot(EventType, row, archived=row.archived_at is not None)
