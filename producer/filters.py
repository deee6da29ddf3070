"""Payload filters: a small declarative JSON language over a message's data (pure).

A filter is a JSON object. Each key is a dotted path into the data
(``customer.country``, ``items.0.sku``: a segment of digits indexes an
array) with a condition, or a logical operator; the keys combine with AND,
and ``{}`` matches every message.

A condition is a value (the data there equals it, as JSON: ``1`` equals
``1.0``, ``true`` does not equal ``1``) or an object of operators, all of
which must hold: ``$eq``, ``$ne``, ``$gt``, ``$gte``, ``$lt``, ``$lte``
(numbers with numbers, strings with strings; other pairs do not match),
``$in``, ``$nin`` (a list of values) and ``$exists`` (true or false).
The logical operators are ``$and`` and ``$or`` (a non-empty list of
filters) and ``$not`` (a filter).

A path that leads nowhere matches only ``$ne``, ``$nin`` and
``$exists: false``. :func:`validate_filter` refuses a malformed filter
naming the failing path; :func:`evaluate` never raises on a valid filter,
whatever the data.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from producer.errors import ValidationError

__all__ = ["MAX_FILTER_BYTES", "MAX_FILTER_DEPTH", "evaluate", "validate_filter"]

MAX_FILTER_BYTES = 8192
"""The largest filter, as compact JSON."""
MAX_FILTER_DEPTH = 8
"""How deeply ``$and``, ``$or`` and ``$not`` may nest."""
MAX_PATH_LENGTH = 256

_LOGICAL = ("$and", "$or", "$not")
_COMPARISONS = ("$gt", "$gte", "$lt", "$lte")
_OPERATORS = ("$eq", "$ne", *_COMPARISONS, "$in", "$nin", "$exists")
_SEGMENT = re.compile(r"^[^$.][^.]*$")
_MISSING = object()


# -- validation ---------------------------------------------------------------------


def validate_filter(value: Any, field: str = "filter") -> dict[str, Any]:
    """Return ``value`` if it is a valid filter, else raise ValidationError
    whose field is the failing path (``filter.$or[1].amount.$gt``)."""
    try:
        size = len(json.dumps(value, separators=(",", ":"), allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValidationError.for_field(field, f"is not JSON: {exc}") from None
    if size > MAX_FILTER_BYTES:
        raise ValidationError.for_field(field, f"must be at most {MAX_FILTER_BYTES} bytes as JSON")
    _check_filter(value, field, 0)
    return value  # type: ignore[no-any-return]


def _check_filter(value: Any, at: str, depth: int) -> None:
    if not isinstance(value, dict):
        raise ValidationError.for_field(at, "must be an object of paths and operators")
    if depth > MAX_FILTER_DEPTH:
        raise ValidationError.for_field(at, f"nests deeper than {MAX_FILTER_DEPTH} levels")
    for key, condition in value.items():
        where = f"{at}.{key}"
        if key in ("$and", "$or"):
            if not isinstance(condition, list) or not condition:
                raise ValidationError.for_field(where, "must be a non-empty list of filters")
            for index, item in enumerate(condition):
                _check_filter(item, f"{where}[{index}]", depth + 1)
        elif key == "$not":
            _check_filter(condition, where, depth + 1)
        elif key.startswith("$"):
            raise ValidationError.for_field(
                where, f"is not a logical operator (one of {', '.join(_LOGICAL)})"
            )
        else:
            _check_path(key, where)
            _check_condition(condition, where)


def _check_path(path: str, at: str) -> None:
    if len(path) > MAX_PATH_LENGTH:
        raise ValidationError.for_field(at, f"a path must be at most {MAX_PATH_LENGTH} characters")
    if not all(_SEGMENT.match(segment) for segment in path.split(".")):
        raise ValidationError.for_field(
            at, "a path is dot-separated names, none empty or starting with $"
        )


def _check_condition(condition: Any, at: str) -> None:
    if not _is_operators(condition):
        if isinstance(condition, dict) and any(k.startswith("$") for k in condition):
            raise ValidationError.for_field(at, "mixes operators and plain keys")
        return  # a value to equal
    for op, operand in condition.items():
        where = f"{at}.{op}"
        if op in _COMPARISONS:
            if not _is_number(operand) and not isinstance(operand, str):
                raise ValidationError.for_field(where, "must be a number or a string")
        elif op in ("$in", "$nin"):
            if not isinstance(operand, list):
                raise ValidationError.for_field(where, "must be a list of values")
        elif op == "$exists":
            if not isinstance(operand, bool):
                raise ValidationError.for_field(where, "must be true or false")
        elif op not in ("$eq", "$ne"):
            raise ValidationError.for_field(
                where, f"is not an operator (one of {', '.join(_OPERATORS)})"
            )


def _is_operators(condition: Any) -> bool:
    return (
        isinstance(condition, dict)
        and bool(condition)
        and all(isinstance(k, str) and k.startswith("$") for k in condition)
    )


# -- evaluation ---------------------------------------------------------------------


def evaluate(filter_: Mapping[str, Any], data: Any) -> bool:
    """Whether ``data`` (any JSON value) passes a filter checked by
    :func:`validate_filter`."""
    for key, condition in filter_.items():
        if key == "$and":
            passed = all(evaluate(f, data) for f in condition)
        elif key == "$or":
            passed = any(evaluate(f, data) for f in condition)
        elif key == "$not":
            passed = not evaluate(condition, data)
        else:
            passed = _holds(condition, _lookup(data, key))
        if not passed:
            return False
    return True


def _lookup(data: Any, path: str) -> Any:
    """The value at a dotted path, or ``_MISSING``."""
    value = data
    for segment in path.split("."):
        if isinstance(value, dict):
            value = value.get(segment, _MISSING)
        elif isinstance(value, list) and segment.isdecimal() and segment.isascii():
            index = int(segment)
            value = value[index] if index < len(value) else _MISSING
        else:
            return _MISSING
        if value is _MISSING:
            return _MISSING
    return value


def _holds(condition: Any, value: Any) -> bool:
    if not _is_operators(condition):
        return value is not _MISSING and _equal(value, condition)
    return all(_operator(op, operand, value) for op, operand in condition.items())


def _operator(op: str, operand: Any, value: Any) -> bool:
    present = value is not _MISSING
    if op == "$exists":
        return present is operand
    if op == "$eq":
        return present and _equal(value, operand)
    if op == "$ne":
        return not (present and _equal(value, operand))
    if op == "$in":
        return present and any(_equal(value, o) for o in operand)
    if op == "$nin":
        return not (present and any(_equal(value, o) for o in operand))
    if not present:
        return False
    return _compare(op, value, operand)


def _compare(op: str, value: Any, operand: Any) -> bool:
    comparable = (_is_number(value) and _is_number(operand)) or (
        isinstance(value, str) and isinstance(operand, str)
    )
    if not comparable:
        return False
    if op == "$gt":
        return bool(value > operand)
    if op == "$gte":
        return bool(value >= operand)
    if op == "$lt":
        return bool(value < operand)
    return bool(value <= operand)


def _equal(a: Any, b: Any) -> bool:
    """JSON equality: numbers by value, booleans only with booleans."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and bool(a == b)


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and not (isinstance(value, float) and math.isnan(value))
    )
