"""Faults on the receiver's side and in the database: no event lost, no
delivery left in ``sending`` after its lease."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time

import pytest

from producer import Producer
from tests.helpers.producers import FAST
from tests.helpers.receiver import LocalServer
from tests.helpers.waiting import wait_until


async def _closes_mid_response(scope, receive, send):
    """Headers and half a body, then the connection is dropped."""
    await receive()
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"100")]}
    )
    await send({"type": "http.response.body", "body": b"x" * 10, "more_body": True})
    raise RuntimeError("receiver crashed mid-response")


async def _gigabyte(scope, receive, send):
    """Would send 1 GiB if anyone read it all."""
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    chunk = b"y" * (1 << 20)
    for _ in range(1024):
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def _never_ends(scope, receive, send):
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"...", "more_body": True})
    await asyncio.sleep(3600)


def _one_attempt(database_url: str, app, **endpoint: object):
    producer = Producer(database_url, **FAST)
    with LocalServer(app) as base_url:
        producer.create_endpoint(base_url + "/h", **endpoint)
        message = producer.send("a.b", {})
        with producer.start_worker_thread():
            wait_until(
                lambda: producer.list_deliveries(message_id=message.id).data[0].attempt_count >= 1,
                what="an attempt",
            )
    [delivery] = producer.list_deliveries(message_id=message.id).data
    return producer, delivery, producer.list_attempts(delivery.id)


def test_connection_closed_mid_response_is_an_error_and_retried(database_url):
    _, delivery, [attempt] = _one_attempt(database_url, _closes_mid_response)
    assert attempt.error is not None and attempt.error.startswith("connection_error: ")
    assert delivery.status == "pending" and delivery.next_attempt_at is not None


def test_a_gigabyte_answer_is_read_only_to_sixteen_kib(database_url):
    started = time.monotonic()
    _, delivery, [attempt] = _one_attempt(database_url, _gigabyte)
    assert delivery.status == "succeeded"
    assert attempt.response_truncated and len(attempt.response_body) == 16384
    assert time.monotonic() - started < 15


def test_an_answer_that_never_ends_times_out_and_is_not_stuck(database_url):
    _, delivery, [attempt] = _one_attempt(database_url, _never_ends, timeout_seconds=1)
    assert attempt.error == "timeout"
    assert delivery.status == "pending"  # back in the queue, not left in sending


@pytest.mark.slow
def test_a_locked_sqlite_database_delays_but_loses_nothing(tmp_path, receiver):
    path = tmp_path / "webhooks.db"
    producer = Producer(f"sqlite:///{path}", **FAST)
    producer.create_endpoint(receiver.url("/h"))
    sent = {m.id for m in producer.send_many([("a.b", {"i": i}) for i in range(200)])}
    locked = threading.Event()

    def hold_the_lock() -> None:
        # Another process's writer: holds the only write lock for 3 s.
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
        locked.set()
        time.sleep(3)
        conn.execute("COMMIT")
        conn.close()

    with producer.start_worker_thread():
        receiver.wait_for(20)
        holder = threading.Thread(target=hold_the_lock)
        holder.start()
        locked.wait()
        holder.join()
        receiver.wait_for(200, timeout=60)
        wait_until(
            lambda: (
                not producer.list_deliveries(status="pending", limit=1).data
                and not producer.list_deliveries(status="sending", limit=1).data
            ),
            what="all recorded",
        )
    received = {r.webhook_id for r in receiver.received()}
    assert received == sent
    assert len(producer.list_deliveries(status="succeeded", limit=250).data) == 200


@pytest.fixture(autouse=True)
def _quiet_server_errors(caplog):
    caplog.set_level("CRITICAL", logger="uvicorn.error")
