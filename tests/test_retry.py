"""The retry policy, table-tested (pure: no clock, no database)."""

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from producer.errors import ValidationError
from producer.retry import (
    DEFAULT_SCHEDULE,
    AttemptOutcome,
    RetryPolicy,
    parse_retry_after,
    validate_schedule,
)

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
policy = RetryPolicy()


def decide(status=None, error=None, attempt=1, retry_after=None, rand=0.5, p=policy):
    outcome = AttemptOutcome(status_code=status, error=error, retry_after=retry_after)
    return p.decide(outcome, attempt, now=NOW, rand=lambda: rand)


def test_default_schedule_is_eight_attempts_standard_webhooks_style():
    assert DEFAULT_SCHEDULE == (0, 5, 300, 1800, 7200, 18000, 36000, 36000)


@pytest.mark.parametrize("status", [200, 201, 204, 299])
def test_2xx_succeeds(status):
    assert decide(status).action == "succeeded"


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (500, None),
        (502, None),
        (404, None),
        (400, None),
        (301, None),
        (302, None),
        (None, "timeout"),
        (None, "connection_error: ConnectError: refused"),
    ],
)
def test_everything_else_is_retried(status, error):
    decision = decide(status, error)
    assert decision.action == "retry" and not decision.disable_endpoint


def test_gone_fails_and_disables_the_endpoint():
    decision = decide(410)
    assert (decision.action, decision.reason, decision.disable_endpoint) == ("failed", "gone", True)


def test_blocked_destination_is_not_retried():
    decision = decide(error="blocked_destination: 10.0.0.1 is private")
    assert (decision.action, decision.reason) == ("failed", "blocked_destination")


@pytest.mark.parametrize(
    ("attempt", "expected"),
    [(1, 5), (2, 300), (3, 1800), (4, 7200), (5, 18000), (6, 36000), (7, 36000)],
)
def test_delay_follows_the_schedule_without_jitter(attempt, expected):
    assert decide(500, attempt=attempt, rand=0.5).delay == pytest.approx(expected)


@pytest.mark.parametrize(("rand", "factor"), [(0.0, 0.8), (0.5, 1.0), (0.999999, 1.2)])
def test_jitter_spreads_the_delay_by_twenty_percent(rand, factor):
    assert decide(500, attempt=3, rand=rand).delay == pytest.approx(1800 * factor, rel=1e-4)


def test_eighth_failure_exhausts_the_schedule():
    decision = decide(500, attempt=8)
    assert (decision.action, decision.reason) == ("failed", "exhausted")


def test_custom_schedule_is_used_and_exhausts_at_its_length():
    custom = RetryPolicy.from_schedule([0, 1, 2])
    assert decide(500, attempt=1, p=custom).delay == pytest.approx(1)
    assert decide(500, attempt=2, p=custom).delay == pytest.approx(2)
    assert decide(500, attempt=3, p=custom).action == "failed"


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_seconds_is_honoured_on_429_and_503(status):
    assert decide(status, attempt=1, retry_after="120").delay == pytest.approx(120)


def test_retry_after_http_date_is_honoured():
    when = format_datetime(NOW + timedelta(seconds=900), usegmt=True)
    assert decide(503, attempt=1, retry_after=when).delay == pytest.approx(900)


def test_retry_after_is_bounded():
    assert decide(503, attempt=1, retry_after="99999999").delay == pytest.approx(86400)


def test_retry_after_never_shortens_the_schedule():
    assert decide(503, attempt=3, retry_after="1").delay == pytest.approx(1800)


def test_retry_after_is_ignored_on_other_statuses():
    assert decide(500, attempt=1, retry_after="600").delay == pytest.approx(5)


@pytest.mark.parametrize(("status", "error"), [(429, None), (None, "timeout")])
def test_after_429_or_timeout_the_wait_is_at_least_a_minute(status, error):
    assert decide(status, error, attempt=1).delay == pytest.approx(60)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("30", 30.0),
        ("garbage", None),
        ("Sun, 22 Nov 2026 10:01:00 GMT", 60.0),
    ],
)
def test_parse_retry_after(value, expected):
    assert parse_retry_after(value, NOW) == expected


@pytest.mark.parametrize("bad", [[], "5,10", [-1], ["5"], [True], [8 * 24 * 3600], [0] * 51])
def test_bad_schedules_are_refused(bad):
    with pytest.raises(ValidationError):
        validate_schedule(bad)


def test_good_schedule_is_normalised_to_floats():
    assert validate_schedule([0, 5, 60]) == (0.0, 5.0, 60.0)
