"""Hardening of the delivery path: every attempt ends in a recorded outcome,
memory stays bounded whatever a receiver sends, and a deleted endpoint
leaves nothing pending."""

from __future__ import annotations

import asyncio
import gzip
import threading
import zlib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from producer import Producer, signing
from producer.errors import InvalidStateError, NotFoundError
from producer.maintenance import Maintenance, cancel_orphaned_deliveries
from producer.models import EndpointRow
from producer.outcomes import Outcomes
from producer.sealing import SecretBox, generate_key
from producer.transport import Request, Response, Transport, TransportConfig
from producer.types import Delivery
from tests.helpers.api import assert_error
from tests.helpers.processes import start_worker
from tests.helpers.receiver import LocalServer, Receiver
from tests.helpers.waiting import wait_for_status, wait_until

SCHEDULE = [0, 600, 600]
"""Attempt 1 now, attempt 2 ten minutes (±20 %) after it fails."""


# -- helpers -----------------------------------------------------------------------


def _plant(producer: Producer, endpoint_id: str, **columns: Any) -> None:
    """Write endpoint columns straight into the database, around every check."""
    with producer.store.transaction() as s:
        row = s.get(EndpointRow, endpoint_id)
        assert row is not None
        for name, value in columns.items():
            setattr(row, name, value)


def _only_delivery(producer: Producer, message_id: str, endpoint_id: str) -> Delivery:
    [delivery] = producer.list_deliveries(message_id=message_id, endpoint_id=endpoint_id).data
    return delivery


def _wait_attempted(producer: Producer, delivery_id: str) -> Delivery:
    wait_until(
        lambda: producer.get_delivery(delivery_id).attempt_count >= 1,
        what=f"an attempt of {delivery_id}",
    )
    return producer.get_delivery(delivery_id)


def _assert_failed_on_schedule(producer: Producer, delivery: Delivery, cause: str) -> None:
    """One recorded attempt failed with ``internal_error: <cause>...`` on one
    line, and the delivery waits for its next attempt as the schedule says."""
    [attempt] = producer.list_attempts(delivery.id)
    assert attempt.error is not None
    assert attempt.error.startswith(f"internal_error: {cause}"), attempt.error
    assert "\n" not in attempt.error
    assert not attempt.succeeded and attempt.response_status is None
    assert delivery.status == "pending" and delivery.attempt_count == 1
    assert delivery.last_error == attempt.error
    assert delivery.next_attempt_at is not None and delivery.last_attempt_at is not None
    wait = (delivery.next_attempt_at - delivery.last_attempt_at).total_seconds()
    assert 0.8 * SCHEDULE[1] - 1 <= wait <= 1.2 * SCHEDULE[1] + 1


def _good_and_bad(producer: Producer, receiver: Receiver) -> str:
    """A healthy endpoint (on ``/good``) and the one a test breaks, both on
    ``SCHEDULE``; returns the id of the one to break."""
    producer.create_endpoint(receiver.url("/good"), retry_schedule=SCHEDULE)
    return producer.create_endpoint(receiver.url("/bad"), retry_schedule=SCHEDULE).id


def _deliver_two_messages(producer: Producer, receiver: Receiver, bad: str) -> list[Delivery]:
    """Two messages through a real worker: the good endpoint gets both, and
    each of the bad endpoint's deliveries has been attempted once."""
    messages = [producer.send("a.b", {"i": i}) for i in range(2)]
    with producer.start_worker_thread():
        receiver.wait_for(2, path="/good")
        bad_deliveries = [
            _wait_attempted(producer, _only_delivery(producer, m.id, bad).id) for m in messages
        ]
    return bad_deliveries


class _Exploding(httpx.AsyncBaseTransport):
    """A transport failing in a way no one planned for."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise KeyError("no such thing")


# -- 1. every attempt ends in a recorded outcome --------------------------------------


def test_a_signing_failure_is_a_failed_attempt_on_the_retry_schedule(
    producer, receiver, monkeypatch
):
    bad = _good_and_bad(producer, receiver)
    bad_secret = producer.get_endpoint_secret(bad).secret
    real = signing.build_headers

    def build_headers(secrets: list[str], *args: Any, **kwargs: Any) -> dict[str, str]:
        if secrets[0] == bad_secret:
            raise RuntimeError("signing broke\nover two lines")
        return real(secrets, *args, **kwargs)

    monkeypatch.setattr(signing, "build_headers", build_headers)

    for delivery in _deliver_two_messages(producer, receiver, bad):
        _assert_failed_on_schedule(producer, delivery, "RuntimeError: signing broke over two")
    assert receiver.received("/bad") == []


def test_an_unexpected_transport_exception_is_a_failed_attempt_on_the_retry_schedule(
    producer, receiver
):
    bad = _good_and_bad(producer, receiver)
    producer.transport_factory = lambda key: _Exploding() if key.startswith(bad) else None

    for delivery in _deliver_two_messages(producer, receiver, bad):
        _assert_failed_on_schedule(producer, delivery, "KeyError: 'no such thing'")


def test_a_stored_header_value_that_cannot_be_encoded_is_a_failed_attempt(producer, receiver):
    bad = _good_and_bad(producer, receiver)
    _plant(producer, bad, headers={"x-note": "café ☕"})

    for delivery in _deliver_two_messages(producer, receiver, bad):
        _assert_failed_on_schedule(producer, delivery, "UnicodeEncodeError: ")
    assert receiver.received("/bad") == []


def test_a_stored_url_host_that_cannot_be_encoded_is_a_failed_attempt(producer, receiver):
    bad = _good_and_bad(producer, receiver)
    # "xn--zz" is not a valid A-label: encoding the host raises IDNAError.
    _plant(producer, bad, url="http://xn--zz.example/hooks")

    for delivery in _deliver_two_messages(producer, receiver, bad):
        _assert_failed_on_schedule(producer, delivery, "IDNAError: ")


def test_a_stored_retry_schedule_that_is_not_usable_falls_back_to_the_default(producer, receiver):
    endpoint = producer.create_endpoint(receiver.script("/down", [500]))
    _plant(producer, endpoint.id, retry_schedule=["soon", None])
    message = producer.send("a.b", {})
    delivery_id = _only_delivery(producer, message.id, endpoint.id).id
    with producer.start_worker_thread():
        delivery = _wait_attempted(producer, delivery_id)
    assert delivery.status == "pending" and delivery.last_status_code == 500
    assert delivery.next_attempt_at is not None  # the default schedule's 5 s


def test_an_exception_escaping_an_attempt_is_still_recorded_by_the_worker(
    producer, receiver, monkeypatch
):
    # Guards the worker itself: whatever a future change to `deliver` lets
    # through, the delivery ends in a recorded attempt, not a stuck lease.
    import producer.worker as worker_module

    bad = _good_and_bad(producer, receiver)
    real = worker_module.deliver

    async def deliver(ctx: Any, transport: Any, job: Any, *, pool_key: str) -> Any:
        if job.endpoint_id == bad:
            raise ZeroDivisionError("a new bug")
        return await real(ctx, transport, job, pool_key=pool_key)

    monkeypatch.setattr(worker_module, "deliver", deliver)

    for delivery in _deliver_two_messages(producer, receiver, bad):
        _assert_failed_on_schedule(producer, delivery, "ZeroDivisionError: a new bug")


def test_a_secret_that_cannot_be_opened_fails_its_own_deliveries_not_the_claim(producer, receiver):
    bad = _good_and_bad(producer, receiver)
    # Sealed with a key this producer does not hold (a key removed too early).
    foreign = SecretBox([generate_key()])
    _plant(producer, bad, secret=foreign.seal(signing.generate_secret()))

    for delivery in _deliver_two_messages(producer, receiver, bad):
        _assert_failed_on_schedule(producer, delivery, "WebhooksError: endpoint secrets are")
    assert receiver.received("/bad") == []
    result = producer.test_endpoint(bad)
    assert not result.succeeded and result.error.startswith("internal_error: WebhooksError")


def test_a_result_the_database_refuses_is_recorded_as_an_internal_error(
    producer, receiver, monkeypatch
):
    # Guards the recorder: a batch that cannot be written is written result
    # by result, and the one that cannot be written at all becomes a failed
    # attempt instead of a lease the worker's heartbeat would renew forever.
    import producer.outcomes as outcomes_module

    bad = _good_and_bad(producer, receiver)
    real = outcomes_module.attempt_record

    def attempt_record(result: Any) -> Any:
        if result.job.endpoint_id == bad and result.response.status_code is not None:
            raise ValueError("the database refused this row")
        return real(result)

    monkeypatch.setattr(outcomes_module, "attempt_record", attempt_record)

    for delivery in _deliver_two_messages(producer, receiver, bad):
        _assert_failed_on_schedule(producer, delivery, "ValueError: the database refused")
    assert len(receiver.received("/good")) == 2


def test_a_test_send_reports_an_unencodable_header_instead_of_raising(producer, receiver):
    endpoint = producer.create_endpoint(receiver.url("/bad"))
    _plant(producer, endpoint.id, headers={"x-note": "café"})

    result = producer.test_endpoint(endpoint.id)

    assert not result.succeeded and result.status_code is None
    assert result.error is not None and result.error.startswith("internal_error: UnicodeEncode")
    delivery = producer.get_delivery(result.delivery_id)
    assert (delivery.status, delivery.attempt_count) == ("failed", 1)


def test_the_test_send_api_answers_with_the_failure_not_a_500(api, receiver):
    endpoint = api.producer.create_endpoint(receiver.url("/bad"))
    _plant(api.producer, endpoint.id, headers={"x-note": "café"})

    response = api.admin.post(f"/v1/endpoints/{endpoint.id}/test")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["succeeded"] is False
    assert body["error"].startswith("internal_error: UnicodeEncodeError: ")


def test_an_exception_escaping_a_test_send_is_still_answered_and_recorded(
    producer, receiver, monkeypatch
):
    import producer.ping as ping

    async def deliver(*args: Any, **kwargs: Any) -> Any:
        raise ZeroDivisionError("a new bug")

    monkeypatch.setattr(ping, "deliver", deliver)
    endpoint = producer.create_endpoint(receiver.url("/h"))

    result = producer.test_endpoint(endpoint.id)

    assert result.error == "internal_error: ZeroDivisionError: a new bug"
    assert producer.get_delivery(result.delivery_id).status == "failed"


async def _nul_answer(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "http.response.start", "status": 500, "headers": []})
    await send({"type": "http.response.body", "body": b"bad \x00 byte"})


def test_an_answer_holding_a_nul_character_is_recorded(producer):
    # PostgreSQL text cannot hold NUL: unsanitised, one such answer failed the
    # whole batch's record and left every delivery in it leased.
    with LocalServer(_nul_answer) as base_url:
        endpoint = producer.create_endpoint(base_url + "/h", retry_schedule=SCHEDULE)
        message = producer.send("a.b", {})
        delivery_id = _only_delivery(producer, message.id, endpoint.id).id
        with producer.start_worker_thread():
            delivery = _wait_attempted(producer, delivery_id)
    [attempt] = producer.list_attempts(delivery_id)
    assert attempt.response_body == "bad \ufffd byte"
    assert (delivery.status, delivery.last_status_code) == ("pending", 500)


# -- 6. bounded memory whatever the receiver sends ------------------------------------


def test_no_custom_header_can_ask_for_a_compressed_answer(producer, receiver):
    endpoint = producer.create_endpoint(receiver.url("/h"))
    _plant(producer, endpoint.id, headers={"Accept-Encoding": "gzip, br", "x-other": "kept"})
    producer.send("a.b", {})
    with producer.start_worker_thread():
        [request] = receiver.wait_for(1, path="/h")
    assert request.headers["accept-encoding"] == "identity"
    assert request.headers["x-other"] == "kept"


URL = "https://receiver.example/hooks"


def _send(transport: Transport, headers: dict[str, str] | None = None) -> Response:
    async def go() -> Response:
        try:
            return await transport.send(Request(URL, headers or {}, b"{}"))
        finally:
            await transport.aclose()

    return asyncio.run(go())


@respx.mock
def test_the_transport_sends_identity_whatever_the_request_headers_say():
    route = respx.post(URL).respond(204)
    _send(Transport(), {"ACCEPT-ENCODING": "gzip", "accept-encoding": "br"})
    assert route.calls.last.request.headers.get_list("accept-encoding") == ["identity"]


def _answering(status: int, body: bytes, encoding: str, **config: Any) -> Transport:
    """A transport whose receiver answers ``body`` as sent, labelled ``encoding``."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            status, stream=httpx.ByteStream(body), headers={"content-encoding": encoding}
        )

    return Transport(
        TransportConfig(**config), transport_factory=lambda _: httpx.MockTransport(handler)
    )


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [
        ("gzip", gzip.compress),
        ("x-gzip", gzip.compress),
        ("deflate", zlib.compress),
    ],
)
def test_a_compressed_answer_is_inflated_only_up_to_the_limit(encoding, compress):
    bomb = compress(b"z" * (8 << 20))
    response = _send(_answering(200, bomb, encoding, max_response_bytes=1000))
    assert (response.body, response.truncated) == ("z" * 1000, True)


def test_a_small_compressed_answer_is_read_whole():
    response = _send(_answering(200, gzip.compress(b"thanks"), "gzip"))
    assert (response.body, response.truncated) == ("thanks", False)


def test_a_corrupt_compressed_answer_keeps_its_status():
    response = _send(_answering(503, b"not gzip", "gzip"))
    assert (response.status_code, response.error, response.truncated) == (503, None, True)


def test_an_answer_in_an_unknown_encoding_is_kept_as_sent():
    response = _send(_answering(200, b"raw bytes", "br"))
    assert (response.body, response.truncated) == ("raw bytes", False)


@pytest.fixture(scope="session")
def gzip_bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1 GiB of zeros, gzip-compressed (about 1 MB), made once per session."""
    path = tmp_path_factory.mktemp("bomb") / "zeros.gz"
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(1 << 20)
    with path.open("wb") as f:
        for _ in range(1024):
            f.write(compressor.compress(zeros))
        f.write(compressor.flush())
    return path


class _BombServer:
    """Answers every request with the gzip bomb, whatever it asked for."""

    def __init__(self, bomb: Path) -> None:
        self.bomb = bomb.read_bytes()
        self.served = threading.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-encoding", b"gzip"), (b"content-type", b"text/plain")],
            }
        )
        step = 64 << 10
        for start in range(0, len(self.bomb), step):
            await send(
                {
                    "type": "http.response.body",
                    "body": self.bomb[start : start + step],
                    "more_body": True,
                }
            )
        await send({"type": "http.response.body", "body": b""})
        self.served.set()


def _memory_kib(pid: int, field: str) -> int:
    """``VmRSS`` or ``VmHWM`` (peak RSS) of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


@pytest.fixture
def worker_process(database_url: str, producer: Producer) -> Iterator[int]:
    """A ``webhooks worker`` process on the test's database (migrated by
    ``producer`` first); yields its pid."""
    proc = start_worker(database_url, lease_seconds="60", request_timeout="30")
    try:
        yield proc.pid
    finally:
        proc.terminate()
        proc.wait(15)


@pytest.mark.slow
def test_a_gzip_bomb_does_not_grow_the_worker(
    producer, gzip_bomb, worker_process, receiver, capsys
):
    # Warm up: the worker has sent, recorded and pooled before the baseline.
    producer.create_endpoint(receiver.url("/warm"))
    producer.send("warm.up", {})
    receiver.wait_for(1, path="/warm")
    wait_until(lambda: producer.list_deliveries(status="succeeded").data, what="warm-up recorded")
    baseline = _memory_kib(worker_process, "VmRSS")

    server = _BombServer(gzip_bomb)
    with LocalServer(server) as base_url:
        endpoint = producer.create_endpoint(base_url + "/bomb")
        message = producer.send("a.b", {})
        delivery_id = _only_delivery(producer, message.id, endpoint.id).id
        wait_for_status(producer, delivery_id, "succeeded", timeout=60)
    peak = _memory_kib(worker_process, "VmHWM")

    [attempt] = producer.list_attempts(delivery_id)
    # Zeros, inflated only to the limit (NUL is stored as U+FFFD).
    assert attempt.response_truncated and attempt.response_body == "\ufffd" * 16384
    growth_mib = (peak - baseline) / 1024
    with capsys.disabled():
        print(f"\n[gzip bomb] worker RSS {baseline / 1024:.1f} MiB, peak +{growth_mib:.1f} MiB")
    assert growth_mib < 50


# -- 9. deleted endpoints leave nothing pending ---------------------------------------


class _Gate:
    """A receiver that holds each request until the test opens the gate,
    then answers 500 (so the worker would schedule a retry)."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.opened = threading.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        self.arrived.set()
        while not self.opened.is_set():
            await asyncio.sleep(0.01)
        await send({"type": "http.response.start", "status": 500, "headers": []})
        await send({"type": "http.response.body", "body": b"try later"})


@pytest.fixture
def gate() -> Iterator[tuple[_Gate, str]]:
    """The gated receiver and its base URL."""
    app = _Gate()
    with LocalServer(app) as base_url:
        try:
            yield app, base_url
        finally:
            app.opened.set()


def test_a_delivery_in_flight_when_its_endpoint_is_deleted_ends_cancelled(producer, gate):
    app, base_url = gate
    endpoint = producer.create_endpoint(base_url + "/h", retry_schedule=SCHEDULE)
    message = producer.send("a.b", {})
    delivery_id = _only_delivery(producer, message.id, endpoint.id).id
    with producer.start_worker_thread():
        assert app.arrived.wait(20)
        producer.delete_endpoint(endpoint.id)
        assert producer.get_delivery(delivery_id).status == "sending"
        app.opened.set()
        wait_until(lambda: producer.get_delivery(delivery_id).attempt_count == 1, what="the record")
    delivery = producer.get_delivery(delivery_id)
    assert (delivery.status, delivery.next_attempt_at) == ("cancelled", None)
    assert [a.response_status for a in producer.list_attempts(delivery_id)] == [500]


def test_a_delivery_released_after_its_endpoint_is_deleted_ends_cancelled(producer, gate):
    app, base_url = gate
    endpoint = producer.create_endpoint(base_url + "/h")
    message = producer.send("a.b", {})
    delivery_id = _only_delivery(producer, message.id, endpoint.id).id
    worker = producer.start_worker_thread()
    try:
        assert app.arrived.wait(20)
        producer.delete_endpoint(endpoint.id)
    finally:
        worker.stop()  # the request never ends: the worker gives the delivery back
    delivery = producer.get_delivery(delivery_id)
    assert (delivery.status, delivery.attempt_count) == ("cancelled", 0)


def _lease(producer: Producer, delivery_id: str, seconds: float) -> None:
    now = producer.clock()
    with producer.store.transaction() as s:
        producer.context.queue.mark_sending(
            s,
            [delivery_id],
            owner="gone-worker",
            lease_expires_at=now + timedelta(seconds=seconds),
            now=now,
        )


def test_a_reclaimed_lease_of_a_deleted_endpoint_is_cancelled(database_url, clock):
    producer = Producer(database_url, clock=clock, auto_migrate=True)
    deleted = producer.create_endpoint("https://gone.example/h")
    live = producer.create_endpoint("https://live.example/h")
    message = producer.send("a.b", {})
    ids = [_only_delivery(producer, message.id, e.id).id for e in (deleted, live)]
    for delivery_id in ids:
        _lease(producer, delivery_id, 60)
    producer.delete_endpoint(deleted.id)
    clock.advance(61)

    assert producer.reclaim_expired_leases() == 2

    gone, kept = (producer.get_delivery(i) for i in ids)
    assert (gone.status, gone.next_attempt_at) == ("cancelled", None)
    assert (kept.status, kept.next_attempt_at) == ("pending", clock.now)


def test_a_released_lease_of_a_live_endpoint_keeps_its_due_time(database_url, clock):
    producer = Producer(database_url, clock=clock, auto_migrate=True)
    endpoint = producer.create_endpoint("https://live.example/h")
    message = producer.send("a.b", {})
    delivery_id = _only_delivery(producer, message.id, endpoint.id).id
    due = producer.get_delivery(delivery_id).next_attempt_at
    _lease(producer, delivery_id, 60)

    assert producer.release_deliveries([delivery_id], "gone-worker") == 1

    delivery = producer.get_delivery(delivery_id)
    assert (delivery.status, delivery.next_attempt_at) == ("pending", due)


def test_maintenance_cancels_a_pending_delivery_of_a_deleted_endpoint(database_url, clock):
    producer = Producer(database_url, clock=clock, auto_migrate=True)
    deleted = producer.create_endpoint("https://gone.example/h")
    live = producer.create_endpoint("https://live.example/h")
    message = producer.send("a.b", {})
    # Deleted around `delete_endpoint`, as a lost race would leave it.
    _plant(producer, deleted.id, deleted_at=clock.now)

    assert cancel_orphaned_deliveries(producer.context) == 1

    assert _only_delivery(producer, message.id, deleted.id).status == "cancelled"
    assert _only_delivery(producer, message.id, live.id).status == "pending"
    assert cancel_orphaned_deliveries(producer.context) == 0


def test_maintenance_schedules_the_orphan_check(producer):
    maintenance = Maintenance(producer.context, Outcomes(producer.context))
    job = maintenance.scheduler.get_job("cancel-orphans")
    assert job is not None
    assert job.trigger.interval == timedelta(seconds=producer.settings.maintenance_interval_seconds)


def test_a_delivery_of_a_deleted_endpoint_cannot_be_retried(producer):
    endpoint = producer.create_endpoint("https://gone.example/h")
    message = producer.send("a.b", {})
    delivery_id = _only_delivery(producer, message.id, endpoint.id).id
    producer.delete_endpoint(endpoint.id)

    with pytest.raises(InvalidStateError, match="endpoint was deleted"):
        producer.retry_delivery(delivery_id, force=True)
    assert producer.get_delivery(delivery_id).status == "cancelled"


def test_the_retry_api_refuses_a_delivery_of_a_deleted_endpoint(api):
    endpoint = api.producer.create_endpoint("https://gone.example/h")
    message = api.producer.send("a.b", {})
    delivery_id = _only_delivery(api.producer, message.id, endpoint.id).id
    api.producer.delete_endpoint(endpoint.id)

    response = api.admin.post(f"/v1/deliveries/{delivery_id}/retry")

    assert_error(response, 409, "invalid_state")


def test_a_message_cannot_be_resent_to_a_deleted_endpoint(producer):
    endpoint = producer.create_endpoint("https://gone.example/h")
    message = producer.send("a.b", {})
    producer.delete_endpoint(endpoint.id)

    with pytest.raises(NotFoundError):
        producer.resend_message(message.id, endpoint.id)
    assert _only_delivery(producer, message.id, endpoint.id).status == "cancelled"
