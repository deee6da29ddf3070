"""Event types: names, schemas per version, examples, archiving."""

import pytest

from producer import ConflictError, NotFoundError, ValidationError

SCHEMA = {"type": "object", "properties": {"amount": {"type": "integer"}}}


def test_create_and_get(producer):
    created = producer.create_event_type(
        "invoice.paid", description="Paid", schemas={"1": SCHEMA}, examples={"1": {"amount": 3}}
    )
    assert producer.get_event_type("invoice.paid") == created
    assert created.schemas == {"1": SCHEMA}
    assert not created.archived


def test_duplicate_names_conflict(producer):
    producer.create_event_type("invoice.paid")
    with pytest.raises(ConflictError):
        producer.create_event_type("invoice.paid")


def test_examples_must_match_their_schema(producer):
    with pytest.raises(ValidationError):
        producer.create_event_type(
            "invoice.paid", schemas={"1": SCHEMA}, examples={"1": {"amount": "x"}}
        )


def test_invalid_schemas_and_names_are_refused(producer):
    with pytest.raises(ValidationError):
        producer.create_event_type("invoice.paid", schemas={"1": {"type": 12}})
    with pytest.raises(ValidationError):
        producer.create_event_type("invoice paid")


def test_archive_hides_from_list_and_recreate_restores(producer):
    producer.create_event_type("a.b")
    producer.create_event_type("c.d")
    assert producer.archive_event_type("a.b").archived
    assert [t.name for t in producer.list_event_types().data] == ["c.d"]
    assert [t.name for t in producer.list_event_types(include_archived=True).data] == ["a.b", "c.d"]
    assert not producer.create_event_type("a.b").archived


def test_update_replaces_schemas(producer):
    producer.create_event_type("a.b", schemas={"1": SCHEMA})
    updated = producer.update_event_type("a.b", schemas={"1": SCHEMA, "2": {}}, description="x")
    assert set(updated.schemas) == {"1", "2"} and updated.description == "x"
    with pytest.raises(NotFoundError):
        producer.update_event_type("missing.type", description="x")


def test_list_paginates_by_name(producer):
    for name in ["e", "a", "c", "b", "d"]:
        producer.create_event_type(name)
    first = producer.list_event_types(limit=3)
    rest = producer.list_event_types(limit=3, cursor=first.next_cursor)
    assert [t.name for t in first.data + rest.data] == ["a", "b", "c", "d", "e"]
    assert rest.next_cursor is None
