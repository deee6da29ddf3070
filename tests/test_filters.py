"""Payload filters: the language (table), its checks, and properties over any JSON."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from producer.errors import ValidationError
from producer.filters import evaluate, validate_filter

ORDER = {
    "store": 7,
    "region": "eu",
    "total": 42.5,
    "paid": True,
    "note": None,
    "customer": {"country": "FR", "tags": ["vip", "new"]},
    "items": [{"sku": "A-1", "qty": 2}, {"sku": "B-2", "qty": 1}],
}

CASES: list[tuple[dict[str, Any], bool]] = [
    ({}, True),
    ({"store": 7}, True),
    ({"store": 7.0}, True),
    ({"store": 8}, False),
    ({"store": "7"}, False),
    ({"paid": True}, True),
    ({"paid": 1}, False),
    ({"note": None}, True),
    ({"missing": None}, False),
    ({"customer.country": "FR"}, True),
    ({"customer.tags": ["vip", "new"]}, True),
    ({"customer.tags.0": "vip"}, True),
    ({"customer.tags.5": "vip"}, False),
    ({"items.1.sku": "B-2"}, True),
    ({"items.sku": "B-2"}, False),
    ({"customer": {"country": "FR", "tags": ["vip", "new"]}}, True),
    ({"store": {"$eq": 7}}, True),
    ({"store": {"$ne": 7}}, False),
    ({"missing": {"$ne": 7}}, True),
    ({"total": {"$gt": 42}}, True),
    ({"total": {"$gt": 42.5}}, False),
    ({"total": {"$gte": 42.5}}, True),
    ({"total": {"$lt": 50, "$gt": 40}}, True),
    ({"total": {"$lte": 42}}, False),
    ({"region": {"$gt": "ap"}}, True),
    ({"region": {"$gt": 1}}, False),
    ({"paid": {"$gt": 0}}, False),
    ({"missing": {"$lt": 1}}, False),
    ({"region": {"$in": ["eu", "us"]}}, True),
    ({"region": {"$in": ["us"]}}, False),
    ({"missing": {"$in": [None]}}, False),
    ({"region": {"$nin": ["us"]}}, True),
    ({"region": {"$nin": ["eu"]}}, False),
    ({"missing": {"$nin": ["eu"]}}, True),
    ({"note": {"$exists": True}}, True),
    ({"missing": {"$exists": True}}, False),
    ({"missing": {"$exists": False}}, True),
    ({"$and": [{"store": 7}, {"region": "eu"}]}, True),
    ({"$and": [{"store": 7}, {"region": "us"}]}, False),
    ({"$or": [{"store": 8}, {"region": "eu"}]}, True),
    ({"$or": [{"store": 8}, {"region": "us"}]}, False),
    ({"$not": {"store": 7}}, False),
    ({"$not": {"store": 8}}, True),
    ({"store": 7, "region": "us"}, False),
    ({"$not": {"$or": [{"region": "us"}, {"total": {"$gt": 100}}]}}, True),
]


@pytest.mark.parametrize(("filter_", "expected"), CASES, ids=[str(c[0]) for c in CASES])
def test_a_filter_matches_the_order_as_the_table_says(filter_: dict[str, Any], expected: bool):
    assert evaluate(validate_filter(filter_), ORDER) is expected


@pytest.mark.parametrize("data", [None, 7, "eu", [1, 2], True, {}])
def test_a_path_into_data_that_is_not_an_object_finds_nothing(data: Any):
    assert evaluate({"store": {"$exists": True}}, data) is False
    assert evaluate({"store": {"$ne": 7}}, data) is True


INVALID: list[tuple[Any, str]] = [
    ([], "filter"),
    ("store = 7", "filter"),
    ({"$xor": []}, "filter.$xor"),
    ({"$and": []}, "filter.$and"),
    ({"$and": {"store": 7}}, "filter.$and"),
    ({"$or": [{"store": 7}, 3]}, "filter.$or[1]"),
    ({"$not": [{"store": 7}]}, "filter.$not"),
    ({"total": {"$gt": [1]}}, "filter.total.$gt"),
    ({"total": {"$lt": None}}, "filter.total.$lt"),
    ({"region": {"$in": "eu"}}, "filter.region.$in"),
    ({"region": {"$exists": 1}}, "filter.region.$exists"),
    ({"region": {"$regex": "e.*"}}, "filter.region.$regex"),
    ({"region": {"$eq": "eu", "x": 1}}, "filter.region"),
    ({"a..b": 1}, "filter.a..b"),
    ({"a.$b": 1}, "filter.a.$b"),
    ({"$or": [{"$and": [{"x": {"$gt": {}}}]}]}, "filter.$or[0].$and[0].x.$gt"),
]


@pytest.mark.parametrize(("filter_", "field"), INVALID, ids=[str(c[0]) for c in INVALID])
def test_an_invalid_filter_is_refused_naming_the_failing_path(filter_: Any, field: str):
    with pytest.raises(ValidationError) as caught:
        validate_filter(filter_)
    assert caught.value.details[0]["field"] == field


def test_a_filter_nested_too_deeply_is_refused():
    deep: dict[str, Any] = {"store": 7}
    for _ in range(10):
        deep = {"$not": deep}
    with pytest.raises(ValidationError, match="deeper"):
        validate_filter(deep)


def test_a_filter_too_large_is_refused():
    with pytest.raises(ValidationError, match="bytes"):
        validate_filter({"region": {"$in": ["x" * 100] * 100}})


# -- properties --------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(["a", "b", "0", "c"]), children, max_size=4)
    ),
    max_leaves=20,
)
paths = st.lists(st.sampled_from(["a", "b", "0", "1", "c"]), min_size=1, max_size=3).map(".".join)
conditions = (
    json_values
    | st.fixed_dictionaries({"$eq": json_values})
    | st.fixed_dictionaries({"$ne": json_values})
    | st.tuples(
        st.sampled_from(["$gt", "$gte", "$lt", "$lte"]),
        st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=3),
    ).map(lambda t: {t[0]: t[1]})
    | st.tuples(st.sampled_from(["$in", "$nin"]), st.lists(json_values, max_size=3)).map(
        lambda t: {t[0]: t[1]}
    )
    | st.booleans().map(lambda b: {"$exists": b})
)
filters = st.recursive(
    st.dictionaries(paths, conditions, max_size=3),
    lambda children: (
        st.tuples(st.sampled_from(["$and", "$or"]), st.lists(children, min_size=1, max_size=3)).map(
            lambda t: {t[0]: t[1]}
        )
        | children.map(lambda f: {"$not": f})
    ),
    max_leaves=6,
)


@settings(max_examples=300)
@given(filters, json_values)
def test_a_valid_filter_never_raises_on_any_json_value(filter_: dict[str, Any], data: Any):
    checked = validate_filter(filter_)
    assert isinstance(evaluate(checked, data), bool)


@settings(max_examples=300)
@given(filters, json_values)
def test_not_inverts_a_filter(filter_: dict[str, Any], data: Any):
    checked = validate_filter({"$not": filter_})
    assert evaluate(checked, data) is not evaluate(filter_, data)


@given(json_values)
def test_the_empty_filter_matches_every_json_value(data: Any):
    assert evaluate({}, data) is True
