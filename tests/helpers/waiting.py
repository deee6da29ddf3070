"""Waiting for something another thread or process does, with a deadline.

Poll, never sleep a fixed time: each helper returns as soon as the condition
holds and fails the test with what it waited for once the deadline passes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import text

from producer import Producer

T = TypeVar("T")


def wait_until(
    condition: Callable[[], object], *, timeout: float = 20, what: str = "condition"
) -> None:
    """Poll ``condition`` (typically a database read) until it is true."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def wait_for_value(
    fetch: Callable[[], T], predicate: Callable[[T], bool], timeout: float = 20
) -> T:
    """Call ``fetch`` until ``predicate`` holds for its value; return that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if predicate(value):
            return value
        assert time.monotonic() < deadline, f"gave up waiting; last value {value!r}"
        time.sleep(0.05)


def wait_for_status(producer: Producer, delivery_id: str, status: str, timeout: float = 20) -> None:
    """Block until a delivery reaches ``status`` (the worker runs in a thread)."""
    wait_until(
        lambda: producer.get_delivery(delivery_id).status == status,
        timeout=timeout,
        what=f"{delivery_id} to become {status}",
    )


def start_idle_worker(producer: Producer) -> tuple[Any, list[int]]:
    """Start ``producer``'s worker thread and return once it is idle: it has
    looked for work, and on PostgreSQL its listener is connected and the
    look that connecting makes ("work may have come meanwhile") is over too
    (unless it polls every half second or more often: then claims never
    pause). Returns the thread and a list that gets how many deliveries
    each later claim leased."""
    claims: list[int] = []
    producer.context.hooks.on_claim(lambda _worker, claimed: claims.append(claimed))
    thread = producer.start_worker_thread()
    wait_until(lambda: claims and producer.context.taker is not None, what="the first claim")
    if producer.engine.dialect.name == "postgresql":
        wait_until(lambda: _listening(producer), what="the worker's LISTEN")
    quiet = 0.5  # no claim for this long: idle (a worker that polls more often never is)
    if producer.context.settings.worker_poll_interval <= quiet:
        claims.clear()
        return thread, claims
    seen, quiet_since = len(claims), time.monotonic()
    while time.monotonic() - quiet_since < quiet:
        if len(claims) != seen:
            seen, quiet_since = len(claims), time.monotonic()
        time.sleep(0.02)
    claims.clear()
    return thread, claims


def _listening(producer: Producer) -> bool:
    query = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND query ILIKE 'LISTEN %'"
    )
    with producer.engine.connect() as connection:
        return bool(connection.execute(query).scalar())
