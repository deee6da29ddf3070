"""An endpoint pinned to a payload version: refused at registration when a
matching event type's messages could not be converted to it.

The rule: every registered, unarchived event type the endpoint's patterns
match is checked from its default version (the newest with a schema, else
"1") along the converters registered now. Anything else (an older version
named by the sender, an event type registered or given a version later) is
checked at send time, as before.
"""

from __future__ import annotations

import pytest

from producer import ConversionError
from tests.helpers.api import Api, assert_error, create_endpoint

URL = "https://receiver.example/hooks"
TWO_VERSIONS = {"1": {}, "2": {}}


def _refusal(source: str, target: str, event_type: str = "invoice.paid") -> str:
    return (
        f"version: event type {event_type} has no conversion from version {source} to "
        f"{target}; register a converter (Producer.register_converter) or pin another version"
    )


def test_a_version_no_converter_reaches_is_refused_at_create(producer):
    producer.create_event_type("invoice.paid", schemas=TWO_VERSIONS)
    with pytest.raises(ConversionError) as info:
        producer.create_endpoint(URL, version="1")
    assert info.value.message == _refusal("2", "1")
    assert info.value.details[0]["field"] == "version"
    assert producer.list_endpoints().data == []


def test_a_version_no_converter_reaches_is_refused_at_update(producer):
    producer.create_event_type("invoice.paid", schemas=TWO_VERSIONS)
    endpoint = producer.create_endpoint(URL)
    with pytest.raises(ConversionError, match="no conversion from version 2 to 1"):
        producer.update_endpoint(endpoint.id, version="1")
    assert producer.get_endpoint(endpoint.id).version is None


def test_new_patterns_of_a_pinned_endpoint_are_checked_at_update(producer):
    producer.create_event_type("invoice.paid", schemas=TWO_VERSIONS)
    endpoint = producer.create_endpoint(URL, event_types=["user.*"], version="1")
    with pytest.raises(ConversionError, match=r"event type invoice\.paid"):
        producer.update_endpoint(endpoint.id, event_types=["invoice.*"])
    assert producer.get_endpoint(endpoint.id).event_types == ["user.*"]


def test_a_chain_of_converters_reaches_the_pinned_version(producer):
    producer.create_event_type("invoice.paid", schemas={"1": {}, "2": {}, "3": {}})
    producer.register_converter("invoice.paid", "3", "2", lambda d: d)
    producer.register_converter("invoice.paid", "2", "1", lambda d: d)
    assert producer.create_endpoint(URL, version="1").version == "1"


def test_a_converter_for_every_event_type_counts(producer):
    producer.create_event_type("invoice.paid", schemas=TWO_VERSIONS)
    producer.register_converter("*", "2", "1", lambda d: d)
    assert producer.create_endpoint(URL, version="1").version == "1"


def test_the_default_version_needs_no_converter(producer):
    producer.create_event_type("invoice.paid", schemas=TWO_VERSIONS)
    assert producer.create_endpoint(URL, version="2").version == "2"


def test_event_types_the_patterns_do_not_match_are_not_checked(producer):
    producer.create_event_type("invoice.paid", schemas=TWO_VERSIONS)
    endpoint = producer.create_endpoint(URL, event_types=["user.*"], version="1")
    assert endpoint.version == "1"


def test_an_endpoint_for_all_events_is_checked_against_every_event_type(producer):
    for name in ("invoice.paid", "invoice.voided", "user.created"):
        producer.create_event_type(name, schemas=TWO_VERSIONS)
    producer.register_converter("user.created", "2", "1", lambda d: d)
    with pytest.raises(ConversionError) as info:
        producer.create_endpoint(URL, version="1")
    assert info.value.message.startswith(
        "version: event type invoice.paid has no conversion from version 2 to 1 "
        "(and 1 more event type); "
    )


def test_an_event_type_without_schemas_is_sent_in_version_1_and_checked_from_it(producer):
    producer.create_event_type("user.created")
    with pytest.raises(ConversionError) as info:
        producer.create_endpoint(URL, version="2")
    assert info.value.message == _refusal("1", "2", "user.created")
    producer.register_converter("user.created", "1", "2", lambda d: d)
    assert producer.create_endpoint(URL, version="2").version == "2"


def test_archived_event_types_are_not_checked(producer):
    producer.create_event_type("invoice.paid", schemas=TWO_VERSIONS)
    producer.archive_event_type("invoice.paid")
    assert producer.create_endpoint(URL, version="1").version == "1"


def test_unregistered_event_types_are_not_checked(producer):
    endpoint = producer.create_endpoint(URL, event_types=["never.registered"], version="7")
    assert endpoint.version == "7"


def test_unpinning_is_always_accepted(producer):
    endpoint = producer.create_endpoint(URL, version="1")
    producer.create_event_type("invoice.paid", schemas=TWO_VERSIONS)
    assert producer.update_endpoint(endpoint.id, version=None).version is None


def test_changes_that_keep_version_and_patterns_are_not_checked(producer):
    """An endpoint accepted before its event type gained a version stays
    editable; the send of that type names the missing converter."""
    endpoint = producer.create_endpoint(URL, version="1")
    producer.create_event_type("invoice.paid", schemas=TWO_VERSIONS)
    assert producer.update_endpoint(endpoint.id, description="billing").description == "billing"
    with pytest.raises(ConversionError, match="no converter from version 2 to version 1"):
        producer.send("invoice.paid", {})


def test_the_api_refuses_an_unreachable_version_at_create_and_update(producer):
    producer.create_event_type("invoice.paid", schemas=TWO_VERSIONS)
    api = Api(producer)
    response = api.admin.post("/v1/endpoints", json={"url": URL, "version": "1"})
    error = assert_error(response, 422, "conversion_error", field="body.version")
    assert "event type invoice.paid has no conversion from version 2 to 1" in error["message"]
    endpoint = create_endpoint(api.admin, URL)
    response = api.admin.patch(f"/v1/endpoints/{endpoint['id']}", json={"version": "1"})
    assert_error(response, 422, "conversion_error", field="body.version")
    assert producer.get_endpoint(endpoint["id"]).version is None


def test_the_api_accepts_a_version_a_converter_reaches(producer):
    producer.create_event_type("invoice.paid", schemas=TWO_VERSIONS)
    producer.register_converter("invoice.paid", "2", "1", lambda d: d)
    body = create_endpoint(Api(producer).admin, URL, version="1")
    assert body["version"] == "1"
