"""Secrets never reach a log, and custom header values are sealed at rest.

Endpoint secrets and custom header values (``Authorization``, API keys) are
credentials. A failing statement must not put them in a log: not through
SQLAlchemy's bound parameters, nor through PostgreSQL's DETAIL line, which
quotes the failing row. Every log record of every logger, at DEBUG, is
scanned for the values the test used.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select, text, update
from sqlalchemy.exc import DBAPIError

from producer.models import EndpointRow
from producer.sealing import PREFIX, generate_key
from tests.helpers.api import Api, assert_error

SECRET = "whsec_" + "U2VjcmV0TWFya2VyMDAwMDAwMDAwMDAwMDAwMDA="
AUTHORIZATION = "Bearer header-marker-authorization-7f3a"
API_KEY = "header-marker-api-key-91c2"
HEADERS = {"Authorization": AUTHORIZATION, "X-Api-Key": API_KEY}
MARKERS = (SECRET, AUTHORIZATION, API_KEY)


def _texts(records: Iterable[logging.LogRecord]) -> Iterable[str]:
    """Everything a handler could write of each record."""
    for record in records:
        yield record.getMessage()
        yield repr(record.args)
        if record.exc_info and record.exc_info[1] is not None:
            yield "".join(traceback.format_exception(record.exc_info[1]))


def _leaked(texts: Iterable[str]) -> list[str]:
    return [marker for text_ in texts for marker in MARKERS if marker in text_]


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every logger, at DEBUG (SQLAlchemy's statement log included)."""
    caplog.set_level(logging.DEBUG)
    return caplog


def test_a_unique_violation_logs_no_secret_or_header_value(producer, debug_logs):
    endpoint = producer.create_endpoint("https://example.com/hooks", secret=SECRET, headers=HEADERS)
    table = EndpointRow.__table__
    with producer.store.transaction() as s:
        row = dict(s.execute(select(table).where(table.c.id == endpoint.id)).mappings().one())

    with pytest.raises(DBAPIError) as raised, producer.store.transaction() as s:
        s.execute(insert(table), [{**row, "secret": SECRET, "headers": HEADERS}])

    logging.getLogger("test").error("insert failed", exc_info=raised.value)
    assert _leaked(_texts(debug_logs.records)) == []
    assert _leaked(["".join(traceback.format_exception(raised.value))]) == []


def test_a_not_null_violation_logs_no_secret_or_header_value(producer, debug_logs):
    # On PostgreSQL the error's DETAIL quotes the whole failing row.
    endpoint = producer.create_endpoint("https://example.com/hooks")

    with pytest.raises(DBAPIError) as raised, producer.store.transaction() as s:
        s.execute(
            update(EndpointRow)
            .where(EndpointRow.id == endpoint.id)
            .values(secret=SECRET, headers=HEADERS, url=None)
        )

    logging.getLogger("test").error("update failed", exc_info=raised.value)
    assert _leaked(_texts(debug_logs.records)) == []


def test_a_database_error_behind_the_api_logs_no_secret_or_header_value(
    producer, database_url, debug_logs
):
    api = Api(producer)
    _refuse_endpoint_inserts(producer, database_url)
    client = TestClient(
        api.app,
        headers={"Authorization": f"Bearer {api.admin_key}"},
        raise_server_exceptions=False,
    )
    debug_logs.clear()

    response = client.post(
        "/v1/endpoints",
        json={"url": "https://example.com/hooks", "secret": SECRET, "headers": HEADERS},
    )

    assert_error(response, 500, "internal_error")
    assert _leaked([response.text]) == []
    assert any(r.levelno >= logging.ERROR for r in debug_logs.records), "nothing was logged"
    assert _leaked(_texts(debug_logs.records)) == []


def _refuse_endpoint_inserts(producer, database_url: str) -> None:
    """A trigger that makes every endpoint insert fail inside the database
    (on PostgreSQL with a NOT NULL violation, whose DETAIL quotes the row)."""
    with producer.engine.begin() as conn:
        if database_url.startswith("sqlite"):
            conn.execute(
                text(
                    "CREATE TRIGGER refuse BEFORE INSERT ON webhook_endpoints "
                    "BEGIN SELECT RAISE(ABORT, 'refused'); END"
                )
            )
        else:
            conn.execute(
                text(
                    "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
                    "$$ BEGIN NEW.url := NULL; RETURN NEW; END $$"
                )
            )
            conn.execute(
                text(
                    "CREATE TRIGGER refuse BEFORE INSERT ON webhook_endpoints "
                    "FOR EACH ROW EXECUTE FUNCTION refuse()"
                )
            )


# -- custom header values at rest ------------------------------------------------------


def _stored_headers(producer, endpoint_id: str) -> dict[str, str]:
    with producer.engine.connect() as conn:
        return conn.execute(
            select(EndpointRow.headers).where(EndpointRow.id == endpoint_id)
        ).scalar_one()


def test_header_values_are_sealed_at_rest_when_keys_are_set(make_producer):
    producer = make_producer(encryption_keys=[generate_key()])

    endpoint = producer.create_endpoint("https://example.com/hooks", headers=HEADERS)

    stored = _stored_headers(producer, endpoint.id)
    assert set(stored) == set(HEADERS)
    assert all(value.startswith(PREFIX) for value in stored.values())
    assert _leaked([repr(stored)]) == []
    assert producer.get_endpoint(endpoint.id).headers == HEADERS


def test_header_values_changed_by_an_update_are_sealed(make_producer):
    producer = make_producer(encryption_keys=[generate_key()])
    endpoint = producer.create_endpoint("https://example.com/hooks")

    updated = producer.update_endpoint(endpoint.id, headers=HEADERS)

    assert updated.headers == HEADERS
    assert _leaked([repr(_stored_headers(producer, endpoint.id))]) == []


def test_sealed_header_values_reach_the_receiver(make_producer, receiver):
    producer = make_producer(encryption_keys=[generate_key()])
    producer.create_endpoint(receiver.url("/hooks"), headers=HEADERS)

    with producer.start_worker_thread():
        producer.send("invoice.paid", {"n": 1})
        [request] = receiver.wait_for(1)

    assert request.headers["authorization"] == AUTHORIZATION
    assert request.headers["x-api-key"] == API_KEY


def test_the_api_reads_back_sealed_headers_as_before(make_producer):
    producer = make_producer(encryption_keys=[generate_key()])
    api = Api(producer)
    headers = {**HEADERS, "X-Team": "billing"}
    created = api.admin.post(
        "/v1/endpoints", json={"url": "https://example.com/hooks", "headers": headers}
    )
    assert created.status_code == 201, created.text

    read = api.admin.get(f"/v1/endpoints/{created.json()['id']}").json()

    assert read["headers"] == {
        "Authorization": "[redacted]",
        "X-Api-Key": "[redacted]",
        "X-Team": "billing",
    }


def test_reencrypt_seals_header_values_stored_before_keys_were_set(make_producer):
    plain = make_producer()
    endpoint = plain.create_endpoint("https://example.com/hooks", headers=HEADERS)
    assert _stored_headers(plain, endpoint.id) == HEADERS  # stored as they are, no keys
    keyed = make_producer(encryption_keys=[generate_key()])
    assert keyed.get_endpoint(endpoint.id).headers == HEADERS  # legacy values open as is

    keyed.reencrypt_secrets()

    assert _leaked([repr(_stored_headers(keyed, endpoint.id))]) == []
    assert keyed.get_endpoint(endpoint.id).headers == HEADERS


def test_reencrypt_reseals_header_values_under_the_new_key(make_producer):
    old_key, new_key = generate_key(), generate_key()
    first = make_producer(encryption_keys=[old_key])
    endpoint = first.create_endpoint("https://example.com/hooks", headers=HEADERS)
    both = make_producer(encryption_keys=[new_key, old_key])

    both.reencrypt_secrets()

    only_new = make_producer(encryption_keys=[new_key])
    assert only_new.get_endpoint(endpoint.id).headers == HEADERS
