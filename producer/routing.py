"""Which endpoints get a message: event type name and pattern rules (pure)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from producer.errors import ValidationError

__all__ = ["EVENT_TYPE_NAME", "matches", "validate_event_type_name", "validate_patterns"]

EVENT_TYPE_NAME = re.compile(r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$")
MAX_NAME_LENGTH = 128


def validate_event_type_name(name: str, field: str = "event_type") -> str:
    """Return ``name`` if it is a valid event type name, else raise ValidationError."""
    if not isinstance(name, str) or not name:
        raise ValidationError.for_field(field, "must be a non-empty string")
    if len(name) > MAX_NAME_LENGTH:
        raise ValidationError.for_field(field, f"must be at most {MAX_NAME_LENGTH} characters")
    if not EVENT_TYPE_NAME.match(name):
        raise ValidationError.for_field(
            field, f"{name!r} is not a valid name (dot-separated words of letters, digits, _)"
        )
    return name


def validate_patterns(patterns: Iterable[str] | None, *, limit: int = 100) -> list[str]:
    """Validate endpoint subscription patterns: ``name``, ``prefix.*`` or ``*``.

    Returns them de-duplicated in their given order. An empty list means
    "every event type".
    """
    result: list[str] = []
    for index, pattern in enumerate(patterns or []):
        field = f"event_types[{index}]"
        if not isinstance(pattern, str):
            raise ValidationError.for_field(field, "must be a string")
        if pattern != "*":
            validate_event_type_name(pattern[:-2] if pattern.endswith(".*") else pattern, field)
        if pattern not in result:
            result.append(pattern)
    if len(result) > limit:
        raise ValidationError.for_field("event_types", f"at most {limit} patterns are allowed")
    return result


def matches(patterns: Sequence[str], event_type: str) -> bool:
    """Whether an endpoint subscribed to ``patterns`` receives ``event_type``.

    No patterns or ``*`` match everything; ``invoice.*`` matches every name
    below ``invoice`` (``invoice.paid``, ``invoice.line.added``) but not
    ``invoice`` itself; any other pattern matches exactly.
    """
    if not patterns:
        return True
    for pattern in patterns:
        if pattern == "*" or pattern == event_type:
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False
