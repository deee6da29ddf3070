"""Reads never wait for a writer: API reads and the worker's batches run side
by side (``Store.reading``), on SQLite (a WAL snapshot) and PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from producer import Producer

WAIT = 30.0
"""How long a test waits for something that, were reads blocked, would never happen."""


def test_reads_finish_while_a_write_transaction_is_open(producer: Producer) -> None:
    endpoint = producer.create_endpoint("https://example.com/hook", tenant="acme")
    reads_done = threading.Event()
    writer_inside = threading.Event()

    def hold_the_write_lock() -> None:
        with producer.context.store.transaction() as s:
            s.execute(
                text("UPDATE webhook_endpoints SET description = 'changing' WHERE id = :id"),
                {"id": endpoint.id},
            )
            writer_inside.set()
            # Held until the reads are done: were they queued behind this
            # transaction, neither side would ever finish.
            reads_done.wait(WAIT)

    writer = threading.Thread(target=hold_the_write_lock)
    writer.start()
    try:
        assert writer_inside.wait(WAIT)
        seen = producer.get_endpoint(endpoint.id)
        listed = producer.list_endpoints(tenant="acme").data
        depth = producer.queue_depth()
        finished_before_the_writer = writer.is_alive()
    finally:
        reads_done.set()
        writer.join(WAIT)
    assert finished_before_the_writer
    # The reads saw the last committed state, not the open transaction's change.
    assert seen.description == endpoint.description
    assert [e.id for e in listed] == [endpoint.id]
    assert depth == 0
    assert producer.get_endpoint(endpoint.id).description == "changing"


def test_a_read_sees_what_was_committed_before_it(producer: Producer) -> None:
    endpoint = producer.create_endpoint("https://example.com/hook")
    producer.update_endpoint(endpoint.id, description="renamed")
    assert producer.get_endpoint(endpoint.id).description == "renamed"


def test_a_write_after_reads_still_takes_the_write_lock(producer: Producer) -> None:
    """The connections reads used go back to the pool as writers."""
    endpoint = producer.create_endpoint("https://example.com/hook")
    for _ in range(5):
        producer.get_endpoint(endpoint.id)
    producer.update_endpoint(endpoint.id, description="after reads")
    assert producer.get_endpoint(endpoint.id).description == "after reads"


def test_postgresql_refuses_a_write_slipped_into_a_read(postgres_url: str) -> None:
    producer = Producer(postgres_url)
    try:
        endpoint = producer.create_endpoint("https://example.com/hook")
        with (
            pytest.raises(DBAPIError, match="read-only transaction"),
            producer.context.store.reading() as s,
        ):
            s.execute(
                text("UPDATE webhook_endpoints SET description = 'x' WHERE id = :id"),
                {"id": endpoint.id},
            )
        # The connection went back to the pool able to write again.
        producer.update_endpoint(endpoint.id, description="written")
        assert producer.get_endpoint(endpoint.id).description == "written"
    finally:
        producer.close()
