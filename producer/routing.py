"""Which endpoints get a message: event type names and patterns, channels (pure).

An endpoint gets a message when its patterns match the event type, it
subscribes to no channel or to one of the message's, and the message data
passes its payload filter (:mod:`producer.filters`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from producer.errors import ValidationError
from producer.filters import evaluate

__all__ = [
    "ANY_CHANNEL",
    "CHANNEL_NAME",
    "EVENT_TYPE_NAME",
    "MAX_ENDPOINT_CHANNELS",
    "MAX_MESSAGE_CHANNELS",
    "candidate_patterns",
    "matches",
    "parsed_filter",
    "receives",
    "shares_channel",
    "validate_channels",
    "validate_event_type_name",
    "validate_patterns",
]

EVENT_TYPE_NAME = re.compile(r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$")
MAX_NAME_LENGTH = 128
CHANNEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
"""A channel: 1-64 letters, digits, ``_ . : -``, starting with a letter or digit."""
MAX_MESSAGE_CHANNELS = 10
MAX_ENDPOINT_CHANNELS = 100
ANY_CHANNEL = ""
"""The channel of an endpoint subscribed to none, in the routing index."""
PARSED_FILTERS = 16384
"""How many parsed payload filters are kept (by their text) for routing."""


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


def candidate_patterns(event_type: str) -> list[str]:
    """Every pattern that matches ``event_type``: the name itself, ``prefix.*``
    for each of its proper prefixes, and ``*`` (``a.b.c``: ``a.b.c``,
    ``a.b.*``, ``a.*``, ``*``). Routing looks these up in an index of the
    endpoints' routes instead of matching every endpoint."""
    parts = event_type.split(".")
    prefixes = [".".join(parts[:n]) + ".*" for n in range(len(parts) - 1, 0, -1)]
    return [event_type, *prefixes, "*"]


@lru_cache(maxsize=PARSED_FILTERS)
def parsed_filter(stored: str | None) -> Any:
    """A payload filter from its stored JSON text (None: no filter), parsed
    once and shared by every send that reads the same text: a filter
    changes rarely, a send reads the filters of every endpoint it routes to.
    The value is shared: callers must not change it."""
    return None if stored is None else json.loads(stored)


def validate_channels(channels: Iterable[str] | None, *, limit: int) -> list[str]:
    """Return channel names de-duplicated in their given order, at most
    ``limit`` of them, else raise ValidationError (``channels[i]``)."""
    if isinstance(channels, str):
        raise ValidationError.for_field("channels", "must be a list of channel names")
    result: list[str] = []
    for index, channel in enumerate(channels or []):
        if not isinstance(channel, str) or not CHANNEL_NAME.match(channel):
            raise ValidationError.for_field(
                f"channels[{index}]",
                f"{channel!r} is not a channel name (1-64 letters, digits, _ . : -, "
                "starting with a letter or digit)",
            )
        if channel not in result:
            result.append(channel)
    if len(result) > limit:
        raise ValidationError.for_field("channels", f"at most {limit} channels are allowed")
    return result


def shares_channel(endpoint_channels: Sequence[str], message_channels: Sequence[str]) -> bool:
    """Whether an endpoint subscribed to ``endpoint_channels`` (none: every
    message) gets a message sent on ``message_channels``."""
    return not endpoint_channels or not set(endpoint_channels).isdisjoint(message_channels)


def receives(
    patterns: Sequence[str],
    endpoint_channels: Sequence[str],
    filter_: Mapping[str, Any] | None,
    *,
    event_type: str,
    message_channels: Sequence[str],
    data: Any,
) -> bool:
    """Whether an endpoint gets a message: patterns, channels and filter."""
    return (
        matches(patterns, event_type)
        and shares_channel(endpoint_channels, message_channels)
        and (filter_ is None or evaluate(filter_, data))
    )
