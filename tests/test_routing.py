"""Which endpoints receive which event types (pure rules)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from producer.errors import ValidationError
from producer.routing import matches, validate_event_type_name, validate_patterns


@pytest.mark.parametrize(
    ("patterns", "event_type", "expected"),
    [
        ([], "invoice.paid", True),
        (["*"], "anything.at.all", True),
        (["invoice.paid"], "invoice.paid", True),
        (["invoice.paid"], "invoice.created", False),
        (["invoice.*"], "invoice.paid", True),
        (["invoice.*"], "invoice.line.added", True),
        (["invoice.*"], "invoice", False),
        (["invoice.*"], "invoices.paid", False),
        (["user.created", "invoice.*"], "user.created", True),
        (["user.created", "invoice.*"], "user.deleted", False),
    ],
)
def test_pattern_matching(patterns, event_type, expected):
    assert matches(patterns, event_type) is expected


@pytest.mark.parametrize("name", ["invoice.paid", "a", "user_1.created_2", "A.B.C"])
def test_valid_event_type_names_are_accepted(name):
    assert validate_event_type_name(name) == name


@pytest.mark.parametrize("name", ["", ".a", "a.", "a..b", "a b", "a-b", "a.*", "x" * 129, "é"])
def test_invalid_event_type_names_are_refused(name):
    with pytest.raises(ValidationError):
        validate_event_type_name(name)


def test_patterns_are_validated_and_deduplicated():
    assert validate_patterns(["user.*", "*", "user.*", "invoice.paid"]) == [
        "user.*",
        "*",
        "invoice.paid",
    ]


@pytest.mark.parametrize("bad", [["user.**"], ["*.user"], ["user*"], [""], [1]])
def test_bad_patterns_name_the_failing_index(bad):
    with pytest.raises(ValidationError) as info:
        validate_patterns(bad)
    assert info.value.details[0]["field"] == "event_types[0]"


def test_too_many_patterns_are_refused():
    with pytest.raises(ValidationError):
        validate_patterns([f"t{i}" for i in range(5)], limit=4)


_word = st.from_regex(r"[A-Za-z0-9_]{1,8}", fullmatch=True)
_names = st.lists(_word, min_size=1, max_size=4).map(".".join)


@given(name=_names)
def test_a_name_matches_itself_the_star_and_no_patterns(name):
    assert matches([name], name) and matches(["*"], name) and matches([], name)


@given(prefix=_names, rest=_names)
def test_a_prefix_pattern_matches_every_name_below_it_only(prefix, rest):
    assert matches([prefix + ".*"], f"{prefix}.{rest}")
    assert not matches([prefix + ".*"], prefix)


@given(pattern=_names, name=_names)
def test_an_exact_pattern_matches_only_the_same_name(pattern, name):
    assert matches([pattern], name) == (pattern == name)


@given(value=st.text(max_size=40))
def test_any_string_is_either_a_valid_pattern_or_a_validation_error(value):
    try:
        assert validate_patterns([value]) == [value]
    except ValidationError as exc:
        assert exc.details[0]["field"] == "event_types[0]"
