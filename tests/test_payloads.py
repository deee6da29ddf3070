"""Envelope rendering, JSON Schema checks and version converters (pure)."""

import json
from datetime import UTC, datetime

import pytest

from producer.errors import ConversionError, SchemaValidationError, ValidationError
from producer.payloads import (
    ConverterRegistry,
    check_schema,
    default_version,
    render_envelope,
    validate_data,
)

WHEN = datetime(2026, 11, 22, 10, 0, 0, 123456, tzinfo=UTC)


def test_envelope_is_compact_json_with_the_five_fields_in_order():
    body = render_envelope("msg_1", "invoice.paid", "2", WHEN, {"amount": 5, "note": "é"})
    assert (
        body
        == (
            '{"id":"msg_1","type":"invoice.paid","version":"2",'
            '"timestamp":"2026-11-22T10:00:00.123Z","data":{"amount":5,"note":"é"}}'
        ).encode()
    )


def test_envelope_refuses_data_that_is_not_json():
    with pytest.raises(ValidationError):
        render_envelope("msg_1", "a", "1", WHEN, {"x": object()})
    with pytest.raises(ValidationError):
        render_envelope("msg_1", "a", "1", WHEN, {"x": float("nan")})


@pytest.mark.parametrize(
    ("schemas", "expected"),
    [
        ({}, "1"),
        ({"1": {}}, "1"),
        ({"1": {}, "2": {}, "10": {}}, "10"),
        ({"2024-01": {}}, "2024-01"),
    ],
)
def test_default_version_is_the_newest_with_a_schema(schemas, expected):
    assert default_version(schemas) == expected


def test_schema_errors_name_the_failing_path():
    schema = {
        "type": "object",
        "properties": {
            "lines": {
                "type": "array",
                "items": {"type": "object", "properties": {"amount": {"type": "integer"}}},
            }
        },
    }
    with pytest.raises(SchemaValidationError) as info:
        validate_data(
            schema, {"lines": [{"amount": 1}, {"amount": "x"}]}, event_type="a", version="1"
        )
    assert info.value.details[0]["field"] == "data.lines[1].amount"
    assert "data.lines[1].amount" in str(info.value)


def test_invalid_json_schema_is_refused():
    with pytest.raises(ValidationError):
        check_schema({"type": "no-such-type"}, "schemas.1")


def test_converters_chain_along_the_shortest_path():
    registry = ConverterRegistry()
    registry.register("order.created", "3", "2", lambda d: {**d, "v2": True})
    registry.register("order.created", "2", "1", lambda d: {"legacy": d})
    registry.register("*", "3", "1", lambda d: {"direct": d})
    # A type-specific path beats nothing, but a direct wildcard edge is shorter.
    assert registry.convert("order.created", {"a": 1}, "3", "1") == {"direct": {"a": 1}}
    assert registry.convert("order.created", {"a": 1}, "3", "2") == {"a": 1, "v2": True}


def test_missing_converter_path_is_a_conversion_error():
    registry = ConverterRegistry()
    registry.register("order.created", "2", "1", lambda d: d)
    with pytest.raises(ConversionError, match="no converter from version 1 to version 2"):
        registry.convert("order.created", {}, "1", "2")


def test_reaches_tells_whether_a_chain_of_converters_exists():
    registry = ConverterRegistry()
    registry.register("order.created", "3", "2", lambda d: d)
    registry.register("*", "2", "1", lambda d: d)
    assert registry.reaches("order.created", "3", "1")
    assert registry.reaches("order.created", "2", "2")
    assert not registry.reaches("order.created", "1", "3")
    assert not registry.reaches("user.created", "3", "1")


def test_failing_converter_is_a_conversion_error():
    registry = ConverterRegistry()
    registry.register("a.b", "2", "1", lambda d: d["missing"])
    with pytest.raises(ConversionError, match="failed"):
        registry.convert("a.b", {}, "2", "1")


def test_envelope_round_trips_through_json():
    body = render_envelope("msg_1", "a.b", "1", WHEN, [1, {"x": None}])
    assert json.loads(body)["data"] == [1, {"x": None}]
