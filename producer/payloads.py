"""Versioned payloads: the envelope, JSON Schema checks and version converters.

Everything here is pure: values in, values out. The envelope is serialised
once to compact JSON; those exact bytes are stored and signed on every attempt.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import jsonschema
from jsonschema.exceptions import SchemaError

from producer.errors import ConversionError, SchemaValidationError, ValidationError

__all__ = [
    "Converter",
    "ConverterRegistry",
    "check_schema",
    "default_version",
    "format_timestamp",
    "render_envelope",
    "validate_data",
]

Converter = Callable[[Any], Any]
"""A function turning the ``data`` of one payload version into another's."""


def format_timestamp(value: datetime) -> str:
    """RFC 3339 UTC with milliseconds, e.g. ``2026-11-22T10:00:00.123Z``."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def compact_json(value: Any) -> bytes:
    """Compact, UTF-8 JSON bytes (no spaces after separators)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def render_envelope(
    message_id: str, event_type: str, version: str, timestamp: datetime, data: Any
) -> bytes:
    """The bytes a receiver gets: ``{"id","type","version","timestamp","data"}``."""
    try:
        return compact_json(
            {
                "id": message_id,
                "type": event_type,
                "version": version,
                "timestamp": format_timestamp(timestamp),
                "data": data,
            }
        )
    except (TypeError, ValueError) as exc:
        raise ValidationError.for_field("data", f"is not JSON-serialisable: {exc}") from exc


def default_version(schemas: Mapping[str, Any]) -> str:
    """The version a message gets when the sender names none: the newest
    version with a schema (numeric versions compare as numbers), else ``"1"``."""
    if not schemas:
        return "1"
    return max(schemas, key=lambda v: (0, int(v), v) if v.isdigit() else (1, 0, v))


def check_schema(schema: Any, field: str) -> None:
    """Raise ValidationError unless ``schema`` is a valid JSON Schema."""
    if not isinstance(schema, dict):
        raise ValidationError.for_field(field, "must be a JSON Schema object")
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        raise ValidationError.for_field(
            field, f"is not a valid JSON Schema: {exc.message}"
        ) from exc


def validate_data(schema: Mapping[str, Any], data: Any, *, event_type: str, version: str) -> None:
    """Validate ``data`` against ``schema``; the error names the failing path."""
    validator_cls = jsonschema.validators.validator_for(schema)
    error = jsonschema.exceptions.best_match(validator_cls(schema).iter_errors(data))
    if error is None:
        return
    path = "data" + "".join(
        f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.absolute_path
    )
    raise SchemaValidationError(
        f"{path}: {error.message} (schema of {event_type} version {version})",
        details=[{"field": path, "message": error.message, "schema_path": list(error.schema_path)}],
    )


class ConverterRegistry:
    """Converters between payload versions, registered by the host application.

    A converter is registered for one event type (or ``"*"`` for all) and one
    pair of versions. To render a message for an endpoint pinned to another
    version, the shortest chain of converters is used (``3 → 2 → 1``).
    """

    def __init__(self) -> None:
        self._edges: dict[str, dict[str, dict[str, Converter]]] = {}

    def register(
        self, event_type: str, from_version: str, to_version: str, func: Converter
    ) -> None:
        """Register ``func`` to turn ``from_version`` data into ``to_version`` data."""
        if from_version == to_version:
            raise ValueError("a converter needs two different versions")
        self._edges.setdefault(event_type, {}).setdefault(str(from_version), {})[
            str(to_version)
        ] = func

    def _neighbours(self, event_type: str, version: str) -> dict[str, Converter]:
        merged = dict(self._edges.get("*", {}).get(version, {}))
        merged.update(self._edges.get(event_type, {}).get(version, {}))
        return merged

    def path(self, event_type: str, from_version: str, to_version: str) -> list[Converter]:
        """The shortest chain of converters, or raise ConversionError."""
        if from_version == to_version:
            return []
        previous: dict[str, tuple[str, Converter]] = {}
        queue = deque([from_version])
        seen = {from_version}
        while queue:
            version = queue.popleft()
            for target, func in self._neighbours(event_type, version).items():
                if target in seen:
                    continue
                seen.add(target)
                previous[target] = (version, func)
                if target == to_version:
                    chain: list[Converter] = []
                    node = target
                    while node != from_version:
                        node, step = previous[node]
                        chain.append(step)
                    return chain[::-1]
                queue.append(target)
        raise ConversionError(
            f"no converter from version {from_version} to version {to_version} "
            f"of {event_type}; register one with Producer.register_converter()",
            details=[{"field": "version", "message": f"{from_version} -> {to_version}"}],
        )

    def reaches(self, event_type: str, from_version: str, to_version: str) -> bool:
        """Whether a chain of converters turns ``from_version`` data of
        ``event_type`` into ``to_version`` data."""
        try:
            self.path(event_type, from_version, to_version)
        except ConversionError:
            return False
        return True

    def convert(self, event_type: str, data: Any, from_version: str, to_version: str) -> Any:
        """Convert ``data`` along the shortest chain; a failing converter raises
        ConversionError naming the versions."""
        for func in self.path(event_type, from_version, to_version):
            try:
                data = func(data)
            except Exception as exc:
                raise ConversionError(
                    f"converter of {event_type} from version {from_version} to "
                    f"{to_version} failed: {exc!r}"
                ) from exc
        return data
