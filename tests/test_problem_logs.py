"""Delivery problems in the service's log: one line each, rate-limited.

The limiter and the lines' wording are tested with a fake clock; the rest
through a real worker delivering to the local receiver, reading the log
records pytest captures.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest

from producer import Producer
from producer.outcomes import host_of
from producer.payloads import format_timestamp
from producer.problem_log import FIELDS, Admitted, Problem, ProblemLimiter
from tests.helpers.clock import START, FakeClock
from tests.helpers.receiver import Receiver
from tests.helpers.waiting import wait_for_status, wait_until

EP = ("ep_1", "attempt_failed")

# -- the limiter ---------------------------------------------------------------------


def test_the_first_problem_of_an_endpoint_is_written():
    assert ProblemLimiter().admit(EP, START) == Admitted(suppressed=0, since=None)


def test_more_problems_of_the_endpoint_within_its_window_are_held_back():
    limiter, clock = ProblemLimiter(per_key_seconds=60), FakeClock()
    limiter.admit(EP, clock())
    clock.advance(59)
    assert limiter.admit(EP, clock()) is None


def test_the_first_line_after_the_window_counts_those_held_back_since_the_first_of_them():
    limiter, clock = ProblemLimiter(per_key_seconds=60), FakeClock()
    limiter.admit(EP, clock())
    clock.advance(3)
    first_held_back = clock()
    for _ in range(57):
        assert limiter.admit(EP, clock()) is None
        clock.advance(1)
    assert limiter.admit(EP, clock()) == Admitted(suppressed=57, since=first_held_back)
    clock.advance(60)
    assert limiter.admit(EP, clock()) == Admitted(suppressed=0, since=None)


def test_each_endpoint_and_kind_of_problem_has_its_own_window():
    limiter = ProblemLimiter()
    limiter.admit(("ep_1", "attempt_failed"), START)
    assert limiter.admit(("ep_2", "attempt_failed"), START) is not None
    assert limiter.admit(("ep_1", "endpoint_disabled"), START) is not None


def test_the_overall_budget_holds_back_lines_of_many_endpoints():
    limiter = ProblemLimiter(burst=3, lines_per_second=0.5)
    written = [limiter.admit((f"ep_{n}", "attempt_failed"), START) for n in range(5)]
    assert [w is not None for w in written] == [True, True, True, False, False]


def test_the_overall_budget_refills_with_time():
    limiter, clock = ProblemLimiter(burst=1, lines_per_second=0.5), FakeClock()
    limiter.admit(("ep_1", "attempt_failed"), clock())
    clock.advance(1)
    assert limiter.admit(("ep_2", "attempt_failed"), clock()) is None
    clock.advance(1)
    assert limiter.admit(("ep_3", "attempt_failed"), clock()) is not None


def test_a_problem_held_back_by_the_budget_is_counted_in_its_endpoint_next_line():
    limiter, clock = ProblemLimiter(burst=1, lines_per_second=0.5), FakeClock()
    second = ("ep_2", "attempt_failed")
    limiter.admit(("ep_1", "attempt_failed"), clock())
    assert limiter.admit(second, clock()) is None
    clock.advance(2)
    assert limiter.admit(second, clock()) == Admitted(suppressed=1, since=START)


def test_a_clock_set_back_keeps_windows_closed_and_the_budget_whole():
    limiter, clock = ProblemLimiter(burst=2), FakeClock()
    limiter.admit(EP, clock())
    clock.advance(-3600)
    assert limiter.admit(EP, clock()) is None
    assert limiter.admit(("ep_2", "attempt_failed"), clock()) is not None


def test_endpoints_that_went_quiet_are_forgotten():
    limiter, clock = ProblemLimiter(per_key_seconds=60, burst=10_000), FakeClock()
    for n in range(1000):
        limiter.admit((f"ep_{n}", "attempt_failed"), clock())
    failing = ("ep_failing", "attempt_failed")
    limiter.admit(failing, clock())
    assert limiter.admit(failing, clock()) is None  # one held back: it must be remembered
    clock.advance(61)
    for n in range(1000, 1030):
        limiter.admit((f"ep_{n}", "attempt_failed"), clock())
    assert len(limiter) == 31
    assert limiter.admit(failing, clock()) == Admitted(suppressed=1, since=START)


@pytest.mark.parametrize(
    "limits",
    [{"per_key_seconds": -1}, {"burst": 0}, {"lines_per_second": 0}],
)
def test_limits_that_make_no_sense_are_refused(limits):
    with pytest.raises(ValueError):
        ProblemLimiter(**limits)


# -- what a line says ------------------------------------------------------------------


def _failed(**changes) -> Problem:
    return Problem(
        **{
            "kind": "attempt_failed",
            "endpoint_id": "ep_1",
            "tenant": "acme",
            "host": "hooks.acme.example",
            "delivery_id": "dlv_1",
            "attempt": 2,
            "status_code": 500,
            "next_attempt_at": START + timedelta(minutes=5),
            **changes,
        }
    )


def test_a_failed_attempt_names_the_endpoint_tenant_host_answer_and_next_attempt():
    assert _failed().message() == (
        "endpoint ep_1 (tenant acme, hooks.acme.example): attempt 2 of delivery dlv_1 "
        "failed: HTTP 500; next attempt at 2026-11-22T10:05:00Z"
    )


def test_a_failed_attempt_without_an_answer_names_the_error():
    problem = _failed(status_code=None, error="timeout")
    assert "failed: timeout; next attempt" in problem.message()


def test_the_last_attempt_says_it_gave_up_and_why():
    problem = _failed(attempt=8, next_attempt_at=None, reason="exhausted")
    assert problem.message().endswith("failed: HTTP 500; giving up: no attempts left")


def test_a_refused_destination_says_it_is_not_retried_and_why():
    problem = Problem(
        "destination_blocked",
        "ep_1",
        "acme",
        host="10.0.0.1",
        delivery_id="dlv_1",
        attempt=1,
        error="blocked_destination: 10.0.0.1 is a private address",
        reason="blocked_destination",
    )
    assert problem.message() == (
        "endpoint ep_1 (tenant acme, 10.0.0.1): delivery dlv_1 refused, not retried: "
        "blocked_destination: 10.0.0.1 is a private address"
    )


@pytest.mark.parametrize(
    ("reason", "why"),
    [("gone", "its receiver answered 410 Gone"), ("failing", "it kept failing")],
)
def test_a_disabled_endpoint_says_why(reason, why):
    problem = Problem("endpoint_disabled", "ep_1", "acme", reason=reason)
    assert problem.message().startswith(f"endpoint ep_1 (tenant acme) disabled: {why}")


def test_a_line_after_a_quiet_spell_counts_those_held_back():
    since = START + timedelta(seconds=3)
    assert (
        _failed()
        .message(Admitted(57, since))
        .endswith("(and 57 more failures since 2026-11-22T10:00:03Z)")
    )
    assert (
        _failed()
        .message(Admitted(1, since))
        .endswith("(and 1 more failure since 2026-11-22T10:00:03Z)")
    )


def test_every_line_carries_every_field_as_json():
    fields = _failed(status_code=None, error="timeout").fields(Admitted(3, START))
    assert tuple(fields) == FIELDS
    assert json.loads(json.dumps(fields)) == {
        "problem": "attempt_failed",
        "endpoint_id": "ep_1",
        "tenant": "acme",
        "host": "hooks.acme.example",
        "delivery_id": "dlv_1",
        "attempt": 2,
        "status_code": None,
        "error": "timeout",
        "next_attempt_at": "2026-11-22T10:05:00.000Z",
        "reason": None,
        "suppressed": 3,
        "suppressed_since": "2026-11-22T10:00:00.000Z",
    }


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://hooks.acme.example/in", "hooks.acme.example"),
        ("http://127.0.0.1:8080/in", "127.0.0.1:8080"),
        ("https://user:secret@hooks.acme.example/in", "hooks.acme.example"),
        ("http://[::1]:9000/", "[::1]:9000"),
        ("http://hooks.acme.example:99999/", None),
    ],
)
def test_a_line_names_the_host_of_the_url_and_never_its_credentials(url, host):
    assert host_of(url) == host


# -- through a real worker -------------------------------------------------------------


def _lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "producer.outcomes"]


@pytest.fixture
def problems(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.WARNING, logger="producer.outcomes")
    return caplog


def test_a_failed_attempt_is_one_warning_line_with_its_fields(
    make_producer, clock, receiver: Receiver, problems
):
    producer = make_producer(clock=clock)
    endpoint = producer.create_endpoint(receiver.script("/down", [500]), tenant="acme")
    message = producer.send("invoice.paid", {"n": 1}, tenant="acme")
    with producer.start_worker_thread():
        wait_until(lambda: _lines(problems), what="a problem line")
    [line] = _lines(problems)
    [delivery] = producer.list_deliveries(message_id=message.id).data
    [attempt] = producer.list_attempts(delivery.id)
    assert line.levelname == "WARNING"
    assert (line.problem, line.endpoint_id, line.tenant, line.delivery_id) == (
        "attempt_failed",
        endpoint.id,
        "acme",
        delivery.id,
    )
    assert (line.host, line.status_code, line.error, line.attempt) == (
        f"127.0.0.1:{receiver.port}",
        500,
        None,
        1,
    )
    assert line.next_attempt_at == format_timestamp(attempt.next_attempt_at)
    assert "HTTP 500; next attempt at" in line.getMessage()


def test_a_successful_delivery_writes_no_line(make_producer, receiver: Receiver, problems):
    producer = make_producer()
    producer.create_endpoint(receiver.url("/up"))
    message = producer.send("invoice.paid", {"n": 1})
    [delivery] = producer.list_deliveries(message_id=message.id).data
    with producer.start_worker_thread():
        wait_for_status(producer, delivery.id, "succeeded")
    assert _lines(problems) == []


def test_a_dead_endpoint_gets_one_line_a_minute_and_the_next_counts_the_rest(
    make_producer, clock, receiver: Receiver, problems
):
    producer = make_producer(clock=clock)
    endpoint = producer.create_endpoint(receiver.script("/dead", [500] * 6), retry_schedule=[0])
    first = [producer.send("invoice.paid", {"n": n}) for n in range(5)]
    with producer.start_worker_thread():
        for message in first:
            [delivery] = producer.list_deliveries(message_id=message.id).data
            wait_for_status(producer, delivery.id, "failed")
    # The worker has stopped: every result it made is recorded and logged.
    [line] = _lines(problems)
    assert line.endpoint_id == endpoint.id and line.reason == "exhausted"
    assert line.getMessage().endswith("giving up: no attempts left")

    clock.advance(61)
    producer.send("invoice.paid", {"n": 5})
    with producer.start_worker_thread():
        wait_until(lambda: len(_lines(problems)) == 2, what="the line after the window")
    later = _lines(problems)[1]
    assert (later.suppressed, later.suppressed_since) == (4, format_timestamp(START))
    assert later.getMessage().endswith("(and 4 more failures since 2026-11-22T10:00:00Z)")


def test_an_endpoint_answering_410_gets_a_line_for_the_attempt_and_an_error_line_for_the_disable(
    make_producer, receiver: Receiver, problems
):
    producer = make_producer()
    endpoint = producer.create_endpoint(receiver.script("/gone", [410]), tenant="acme")
    producer.send("invoice.paid", {"n": 1}, tenant="acme")
    with producer.start_worker_thread():
        wait_until(lambda: len(_lines(problems)) == 2, what="two problem lines")
    attempt, disabled = _lines(problems)
    assert attempt.getMessage().endswith("HTTP 410; giving up: the receiver answered 410 Gone")
    assert disabled.levelname == "ERROR"
    assert (disabled.problem, disabled.endpoint_id, disabled.reason) == (
        "endpoint_disabled",
        endpoint.id,
        "gone",
    )
    assert disabled.getMessage() == (
        f"endpoint {endpoint.id} (tenant acme, 127.0.0.1:{receiver.port}) disabled: "
        "its receiver answered 410 Gone"
    )


def test_a_refused_destination_is_one_line_and_nothing_is_sent(
    make_producer, receiver: Receiver, problems
):
    # Made while loopback was open; the worker runs where it is closed again.
    endpoint = make_producer().create_endpoint(receiver.url("/in"))
    closed = make_producer(allowed_cidrs=[])
    message = closed.send("invoice.paid", {"n": 1})
    [delivery] = closed.list_deliveries(message_id=message.id).data
    with closed.start_worker_thread():
        wait_until(lambda: _lines(problems), what="a problem line")
    [line] = _lines(problems)
    assert (line.problem, line.endpoint_id, line.delivery_id) == (
        "destination_blocked",
        endpoint.id,
        delivery.id,
    )
    assert line.error.startswith("blocked_destination: 127.0.0.1")
    assert "WEBHOOKS_ALLOWED_CIDRS" in line.getMessage()
    assert closed.get_delivery(delivery.id).status == "failed"
    assert receiver.received() == []


def test_a_failed_test_send_writes_no_line(make_producer, receiver: Receiver, problems):
    producer = make_producer()
    endpoint = producer.create_endpoint(receiver.script("/down", [500]))
    assert producer.test_endpoint(endpoint.id).status_code == 500
    assert _lines(problems) == []


def test_an_endpoint_disabled_by_the_health_check_gets_an_error_line(
    make_producer, clock, receiver: Receiver, problems
):
    producer: Producer = make_producer(
        clock=clock, disable_after_failures=1, disable_after_seconds=3600
    )
    endpoint = producer.create_endpoint(receiver.script("/down", [500]), retry_schedule=[0])
    message = producer.send("invoice.paid", {"n": 1})
    [delivery] = producer.list_deliveries(message_id=message.id).data
    with producer.start_worker_thread():
        wait_for_status(producer, delivery.id, "failed")
    clock.advance(3601)
    assert producer.evaluate_endpoint_health() == 1
    disabled = _lines(problems)[-1]
    assert (disabled.levelname, disabled.problem, disabled.reason) == (
        "ERROR",
        "endpoint_disabled",
        "failing",
    )
    assert disabled.endpoint_id == endpoint.id
