"""PostgreSQL's connection pool: a connection the server closed is replaced
before it is used, and a healthy one is handed out without a round trip."""

from __future__ import annotations

import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Connection, create_engine, event, text
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import NullPool

from producer import Producer
from producer.db import _refuse_closed_connection
from tests.helpers.producers import FAST

TRANSACTION = {"BEGIN", "COMMIT", "ROLLBACK"}
"""What the driver sends by itself around the statements the store runs."""


@pytest.fixture
def pg_producer(postgres_url: str) -> Iterator[Producer]:
    producer = Producer(postgres_url, **FAST)
    yield producer
    producer.close()


@contextmanager
def _beside(producer: Producer) -> Iterator[Connection]:
    """A connection of its own to the producer's database, outside its pool."""
    admin = create_engine(producer.context.store.engine.url, poolclass=NullPool)
    try:
        with admin.connect() as conn:
            yield conn
    finally:
        admin.dispose()


def _backend_pids(producer: Producer) -> set[int]:
    """The server processes of the pool's connections, found by the server."""
    with _beside(producer) as conn:
        return set(
            conn.execute(
                text(
                    "SELECT pid FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    " AND backend_type = 'client backend'"
                )
            ).scalars()
        )


def _terminate(producer: Producer, pids: set[int]) -> None:
    with _beside(producer) as conn:
        for pid in pids:
            assert conn.execute(text("SELECT pg_terminate_backend(:p, 5000)"), {"p": pid}).scalar()


def test_connections_the_server_closed_are_replaced_before_use(pg_producer: Producer) -> None:
    endpoint = pg_producer.create_endpoint("https://example.com/hook", tenant="acme")
    pg_producer.send("invoice.paid", {"n": 1}, tenant="acme")
    pooled = _backend_pids(pg_producer)
    assert pooled, "the pool holds no connection to terminate"

    _terminate(pg_producer, pooled)

    # Neither a read nor a write sees the dead connections: no error at all.
    assert pg_producer.get_endpoint(endpoint.id).url == "https://example.com/hook"
    message = pg_producer.send("invoice.paid", {"n": 2}, tenant="acme")
    assert message.deliveries == 1
    assert pooled.isdisjoint(_backend_pids(pg_producer))
    assert pg_producer.queue_depth() == 2


def test_a_healthy_pooled_connection_is_checked_out_without_a_round_trip(
    pg_producer: Producer,
) -> None:
    """Everything the client sends is a statement the store ran, or the
    transaction around it: no ping ahead of it."""
    engine = pg_producer.context.store.engine
    ran = 0  # statements the store ran
    with tempfile.TemporaryFile() as trace:

        def trace_new(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.pgconn.trace(trace.fileno())

        event.listen(engine, "connect", trace_new)

        def count_statement(*_: Any) -> None:
            nonlocal ran
            ran += 1

        event.listen(engine, "before_cursor_execute", count_statement)
        engine.dispose()  # every connection from now on is traced
        pg_producer.create_endpoint("https://example.com/hook")
        for n in range(5):
            pg_producer.send("invoice.paid", {"n": n})
            pg_producer.list_endpoints()
        trace.seek(0)
        # libpq's trace, one message a line: timestamp, direction (F: from the
        # client), length, type, contents. A statement ends with Sync (extended
        # protocol, which may skip Parse once prepared) or is one Query (simple).
        sent = [
            line.split("\t")[3:]
            for line in trace.read().decode().splitlines()
            if line.split("\t")[1:2] == ["F"]
        ]
    ends = [m for m in sent if m[0] in ("Sync", "Query")]
    control = [m for m in ends if m[0] == "Query" and m[1].strip(' "').split()[0] in TRANSACTION]
    assert len(ends) == ran + len(control), (len(ends), ran, len(control))
    assert ran > 10, "the trace caught too little to show anything"


def test_the_check_refuses_a_socket_with_something_to_read() -> None:
    """The decision itself, on a socket pair: a peer that wrote (an error
    before closing) or hung up makes the connection unusable."""

    class Pooled:
        closed = False

        def __init__(self, sock: socket.socket) -> None:
            self.sock = sock

        def fileno(self) -> int:
            return self.sock.fileno()

    ours, theirs = socket.socketpair()
    try:
        _refuse_closed_connection(Pooled(ours), None, None)  # nothing to read: kept
        theirs.sendall(b"E")
        with pytest.raises(DisconnectionError):
            _refuse_closed_connection(Pooled(ours), None, None)
    finally:
        ours.close()
        theirs.close()
    ours, theirs = socket.socketpair()
    theirs.close()
    try:
        with pytest.raises(DisconnectionError):
            _refuse_closed_connection(Pooled(ours), None, None)
    finally:
        ours.close()
    closed = Pooled(socket.socket())
    closed.closed = True
    with pytest.raises(DisconnectionError, match="closed"):
        _refuse_closed_connection(closed, None, None)
    closed.sock.close()
