"""The retry policy, table-tested (pure: no clock, no database, no randomness)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from producer.errors import ValidationError
from producer.retry import (
    DEFAULT_SCHEDULE,
    AttemptOutcome,
    Decision,
    RetryPolicy,
    parse_retry_after,
    validate_schedule,
)

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
POLICY = RetryPolicy()


def decide(
    status: int | None = None,
    error: str | None = None,
    attempt: int = 1,
    retry_after: str | None = None,
    rand: float = 0.5,
    policy: RetryPolicy = POLICY,
) -> Decision:
    outcome = AttemptOutcome(status_code=status, error=error, retry_after=retry_after)
    return policy.decide(outcome, attempt, now=NOW, rand=lambda: rand)


def http_date(seconds_from_now: float) -> str:
    return format_datetime(NOW + timedelta(seconds=seconds_from_now), usegmt=True)


def test_default_schedule_is_eight_attempts_standard_webhooks_style():
    assert DEFAULT_SCHEDULE == (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
    assert RetryPolicy().max_attempts == 8


@pytest.mark.parametrize(
    ("status", "error", "succeeded", "timed_out"),
    [
        (200, None, True, False),
        (299, None, True, False),
        (300, None, False, False),
        (500, None, False, False),
        (200, "connection_error: ReadError: reset", False, False),
        (None, "timeout", False, True),
        (None, None, False, False),
    ],
)
def test_outcome_properties(status, error, succeeded, timed_out):
    outcome = AttemptOutcome(status_code=status, error=error, retry_after=None)
    assert (outcome.succeeded, outcome.timed_out) == (succeeded, timed_out)


@pytest.mark.parametrize(
    ("status", "error", "attempt", "expected"),
    [
        # 2xx succeeds, whatever the attempt number.
        (200, None, 1, Decision("succeeded")),
        (201, None, 8, Decision("succeeded")),
        (204, None, 3, Decision("succeeded")),
        (299, None, 1, Decision("succeeded")),
        # 410 Gone fails at once and disables the endpoint.
        (410, None, 1, Decision("failed", reason="gone", disable_endpoint=True)),
        (410, None, 8, Decision("failed", reason="gone", disable_endpoint=True)),
        # A refused destination is never retried.
        (
            None,
            "blocked_destination: 10.0.0.1 is private",
            1,
            Decision("failed", reason="blocked_destination"),
        ),
        # Everything else is retried while the schedule lasts...
        (500, None, 1, Decision("retry", delay=5)),
        (502, None, 2, Decision("retry", delay=300)),
        (404, None, 3, Decision("retry", delay=1800)),
        (400, None, 4, Decision("retry", delay=7200)),
        (301, None, 5, Decision("retry", delay=18000)),
        (302, None, 6, Decision("retry", delay=36000)),
        (199, None, 7, Decision("retry", delay=36000)),
        (None, "connection_error: ConnectError: refused", 2, Decision("retry", delay=300)),
        (None, "timeout", 3, Decision("retry", delay=1800)),
        # ...and fails as exhausted after the eighth attempt.
        (500, None, 8, Decision("failed", reason="exhausted")),
        (302, None, 8, Decision("failed", reason="exhausted")),
        (429, None, 8, Decision("failed", reason="exhausted")),
        (None, "timeout", 8, Decision("failed", reason="exhausted")),
        (
            None,
            "connection_error: ConnectError: refused",
            9,
            Decision("failed", reason="exhausted"),
        ),
    ],
)
def test_decision_table(status, error, attempt, expected):
    assert decide(status, error, attempt) == expected


@pytest.mark.parametrize(
    ("attempt", "expected"),
    [(1, 5), (2, 300), (3, 1800), (4, 7200), (5, 18000), (6, 36000), (7, 36000)],
)
def test_delay_follows_the_schedule_at_mid_jitter(attempt, expected):
    assert decide(500, attempt=attempt, rand=0.5).delay == pytest.approx(expected)


@pytest.mark.parametrize(("rand", "factor"), [(0.0, 0.8), (0.25, 0.9), (0.5, 1.0), (1.0, 1.2)])
def test_jitter_spreads_the_delay_by_twenty_percent(rand, factor):
    assert decide(500, attempt=3, rand=rand).delay == pytest.approx(1800 * factor)


@pytest.mark.parametrize("rand", [0.0, 0.5, 1.0])
def test_without_jitter_the_delay_is_exact(rand):
    policy = RetryPolicy(jitter=0)
    assert decide(500, attempt=2, rand=rand, policy=policy).delay == 300


def test_default_randomness_stays_within_the_jitter_bounds():
    outcome = AttemptOutcome(status_code=500, error=None, retry_after=None)
    delays = [POLICY.decide(outcome, 3, now=NOW).delay for _ in range(200)]
    assert all(1440 <= d <= 2160 for d in delays)
    assert len(set(delays)) > 1


@pytest.mark.parametrize(
    ("schedule", "attempt", "expected"),
    [
        ([0, 1, 2], 1, Decision("retry", delay=1)),
        ([0, 1, 2], 2, Decision("retry", delay=2)),
        ([0, 1, 2], 3, Decision("failed", reason="exhausted")),
        ([0], 1, Decision("failed", reason="exhausted")),
        ((0, 0.25), 1, Decision("retry", delay=0.25)),
    ],
)
def test_custom_schedule_is_used_and_exhausts_at_its_length(schedule, attempt, expected):
    policy = RetryPolicy.from_schedule(schedule)
    assert decide(500, attempt=attempt, policy=policy) == expected


def test_from_schedule_none_is_the_default_policy():
    assert RetryPolicy.from_schedule(None) == RetryPolicy()
    assert RetryPolicy.from_schedule([1, 2]).schedule == (1.0, 2.0)


@pytest.mark.parametrize(
    ("status", "retry_after", "attempt", "expected"),
    [
        # Honoured on 503 and 429 when longer than the schedule...
        (503, "120", 1, 120),
        (429, "120", 1, 120),
        (503, http_date(900), 1, 900),
        (429, http_date(900), 1, 900),
        # ...never shortening it...
        (503, "1", 3, 1800),
        (503, http_date(-3600), 3, 1800),
        # ...bounded to a day...
        (503, "99999999", 1, 86400),
        (503, http_date(10 * 86400), 1, 86400),
        # Unparsable values are ignored.
        (503, "soon", 2, 300),
        (503, "-5", 2, 300),
        # Other statuses ignore it.
        (500, "600", 1, 5),
        (302, "600", 1, 5),
    ],
)
def test_retry_after(status, retry_after, attempt, expected):
    decision = decide(status, attempt=attempt, retry_after=retry_after)
    assert decision.action == "retry"
    assert decision.delay == pytest.approx(expected)


def test_bound_on_retry_after_is_configurable():
    policy = RetryPolicy(max_retry_after=600)
    assert decide(503, retry_after="3600", policy=policy).delay == 600
    # The bound limits the receiver's wish, not the schedule's own delay.
    assert decide(503, attempt=3, retry_after="3600", policy=policy).delay == 1800


@pytest.mark.parametrize(
    ("status", "error", "attempt", "retry_after", "expected"),
    [
        # After a 429 or a timeout the receiver gets at least a minute...
        (429, None, 1, None, 60),
        (None, "timeout", 1, None, 60),
        (429, None, 1, "10", 60),
        # ...a longer schedule delay or Retry-After still wins...
        (429, None, 2, None, 300),
        (None, "timeout", 3, None, 1800),
        (429, None, 1, "120", 120),
        # ...and other failures keep the schedule's short early retries.
        (503, None, 1, None, 5),
        (500, None, 1, None, 5),
        (None, "connection_error: ConnectError: refused", 1, None, 5),
    ],
)
def test_throttle_floor(status, error, attempt, retry_after, expected):
    assert decide(status, error, attempt, retry_after=retry_after).delay == pytest.approx(expected)


def test_throttle_floor_applies_after_jitter():
    assert decide(429, attempt=2, rand=0.0).delay == pytest.approx(240)
    assert decide(None, "timeout", attempt=1, rand=1.0).delay == pytest.approx(60)


def test_throttle_floor_is_configurable():
    assert decide(429, policy=RetryPolicy(throttle_floor=0)).delay == 5


def test_attempt_numbers_are_one_based():
    with pytest.raises(ValueError):
        decide(500, attempt=0)


@pytest.mark.parametrize("jitter", [-0.1, 1.5])
def test_jitter_out_of_range_is_refused(jitter):
    with pytest.raises(ValueError):
        RetryPolicy(jitter=jitter)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("   ", None),
        ("30", 30.0),
        (" 30 ", 30.0),
        ("0", 0.0),
        ("1.5", None),
        ("-5", None),
        ("garbage", None),
        ("\u0663", None),  # an Arabic-Indic digit is not an HTTP delay
        ("Sun, 22 Nov 2026 10:01:00 GMT", 60.0),
        ("Sun, 22 Nov 2026 09:00:00 GMT", 0.0),
        ("Sun, 22 Nov 2026 10:01:00 -0000", 60.0),
        ("Sun, 22 Nov 2026 11:01:00 +0100", 60.0),
    ],
)
def test_parse_retry_after(value, expected):
    assert parse_retry_after(value, NOW) == expected


def test_parse_retry_after_accepts_a_naive_now_as_utc():
    assert parse_retry_after("Sun, 22 Nov 2026 10:01:00 GMT", NOW.replace(tzinfo=None)) == 60.0


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ([], "retry_schedule"),
        ("5,10", "retry_schedule"),
        (5, "retry_schedule"),
        ({"a": 1}, "retry_schedule"),
        ([0] * 51, "retry_schedule"),
        ([-1], "retry_schedule[0]"),
        ([0, "5"], "retry_schedule[1]"),
        ([True], "retry_schedule[0]"),
        ([None], "retry_schedule[0]"),
        ([float("nan")], "retry_schedule[0]"),
        ([float("inf")], "retry_schedule[0]"),
        ([0, 7 * 24 * 3600 + 1], "retry_schedule[1]"),
    ],
)
def test_bad_schedules_are_refused(bad, field):
    with pytest.raises(ValidationError) as info:
        validate_schedule(bad)
    assert info.value.details[0]["field"] == field


@pytest.mark.parametrize(
    ("good", "expected"),
    [
        ([0, 5, 60], (0.0, 5.0, 60.0)),
        ((1.5,), (1.5,)),
        ([0] * 50, (0.0,) * 50),
        ([7 * 24 * 3600], (604800.0,)),
    ],
)
def test_good_schedules_are_normalised_to_floats(good, expected):
    assert validate_schedule(good) == expected
