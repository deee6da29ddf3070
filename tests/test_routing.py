"""Which endpoints receive which event types: the pure rules, and the routing index."""

import pytest
from alembic import command
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from producer import Producer
from producer.db import _alembic_config, migrate
from producer.errors import ValidationError
from producer.models import EndpointRouteRow
from producer.routing import (
    candidate_patterns,
    matches,
    parsed_filter,
    validate_event_type_name,
    validate_patterns,
)
from tests.helpers.postgres import create_database, drop_database, require_postgres
from tests.helpers.producers import LOOPBACK

URL = "https://receiver.example/hooks"


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


# -- the routing index -------------------------------------------------------------------

_patterns = st.one_of(st.just("*"), _names, _names.map(lambda name: name + ".*"))


def test_the_candidate_patterns_of_a_name_run_from_itself_to_the_star():
    assert candidate_patterns("a.b.c") == ["a.b.c", "a.b.*", "a.*", "*"]
    assert candidate_patterns("a") == ["a", "*"]


@given(pattern=_patterns, name=_names)
def test_a_pattern_is_a_candidate_of_exactly_the_names_it_matches(pattern, name):
    assert (pattern in candidate_patterns(name)) == matches([pattern], name)


def test_a_stored_filter_is_parsed_once_and_shared():
    text = '{"store": {"$in": [7, 8]}}'
    assert parsed_filter(text) == {"store": {"$in": [7, 8]}}
    assert parsed_filter(str(text)) is parsed_filter("".join(text))
    assert parsed_filter(None) is None and parsed_filter("null") is None


def routes_of(producer, endpoint_id) -> set[tuple[str, str]]:
    with producer.context.store.transaction() as s:
        rows = s.scalars(
            select(EndpointRouteRow).where(EndpointRouteRow.endpoint_id == endpoint_id)
        )
        return {(r.pattern, r.channel) for r in rows}


def test_the_routing_index_follows_endpoint_changes(producer):
    endpoint = producer.create_endpoint(URL, tenant="acme")
    assert routes_of(producer, endpoint.id) == {("*", "")}

    producer.update_endpoint(endpoint.id, event_types=["order.*", "user.created"])
    assert routes_of(producer, endpoint.id) == {("order.*", ""), ("user.created", "")}
    producer.update_endpoint(endpoint.id, channels=["eu", "us"])
    assert routes_of(producer, endpoint.id) == {
        (p, c) for p in ("order.*", "user.created") for c in ("eu", "us")
    }
    assert producer.send("order.placed", {}, tenant="acme", channels=["us"]).deliveries == 1
    assert producer.send("order.placed", {}, tenant="acme", channels=["apac"]).deliveries == 0
    assert producer.send("user.deleted", {}, tenant="acme", channels=["eu"]).deliveries == 0

    producer.delete_endpoint(endpoint.id)
    assert routes_of(producer, endpoint.id) == set()
    assert producer.send("order.placed", {}, tenant="acme", channels=["us"]).deliveries == 0


def test_routing_by_index_keeps_tenants_apart(producer):
    producer.create_endpoint(URL, tenant="acme", event_types=["order.*"])
    other = producer.create_endpoint(URL, tenant="other", event_types=["order.*"])

    message = producer.send("order.placed", {}, tenant="other")

    [delivery] = producer.list_deliveries(message_id=message.id).data
    assert message.deliveries == 1 and delivery.endpoint_id == other.id


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request, tmp_path):
    """An empty database, not migrated yet."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    require_postgres()
    url = create_database()
    yield url
    drop_database(url)


def test_migration_0004_indexes_the_endpoints_already_there(empty_database_url):
    producer = Producer(empty_database_url, **LOOPBACK)
    plain = producer.create_endpoint(URL, tenant="acme")
    routed = producer.create_endpoint(
        URL, tenant="acme", event_types=["order.*"], channels=["eu", "us"]
    )
    gone = producer.create_endpoint(URL, tenant="acme")
    producer.delete_endpoint(gone.id)
    config = _alembic_config()
    with producer.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0003")
    migrate(producer.engine)

    assert routes_of(producer, plain.id) == {("*", "")}
    assert routes_of(producer, routed.id) == {("order.*", "eu"), ("order.*", "us")}
    assert routes_of(producer, gone.id) == set()
    assert producer.send("order.placed", {}, tenant="acme", channels=["eu"]).deliveries == 2
    producer.close()
