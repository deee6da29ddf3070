"""Waiting for something another thread or process does, with a deadline.

Poll, never sleep a fixed time: each helper returns as soon as the condition
holds and fails the test with what it waited for once the deadline passes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

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
