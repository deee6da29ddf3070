"""Endpoint health rules, table-tested (pure: no database, no clock, no worker).

The rules here: probing starts at ``probe_after_failures`` consecutive
failures, 3; an endpoint is disabled once it has failed for 3600 s AND at
least 5 times in a row.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from producer.health import (
    HealthEvent,
    HealthRules,
    HealthState,
    Outcome,
    apply_outcomes,
    evaluate_disable,
    is_probing,
)

RULES = HealthRules(probe_after_failures=3, disable_after_seconds=3600, disable_after_failures=5)
NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
EARLIER = NOW - timedelta(seconds=60)
HEALTHY = HealthState(
    status="enabled",
    disabled_reason=None,
    disabled_at=None,
    failing_since=None,
    consecutive_failures=0,
)


def failing(failures: int, since: datetime = EARLIER) -> HealthState:
    """An enabled endpoint with ``failures`` failed attempts in a row since ``since``."""
    return replace(HEALTHY, consecutive_failures=failures, failing_since=since)


def failed(at: datetime = NOW) -> Outcome:
    return Outcome(at=at, succeeded=False)


def succeeded(at: datetime = NOW) -> Outcome:
    return Outcome(at=at, succeeded=True)


def gone(at: datetime = NOW) -> Outcome:
    return Outcome(at=at, succeeded=False, gone=True)


# -- is_probing ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failures", "probing"),
    [(0, False), (2, False), (3, True), (4, True), (100, True)],
)
def test_probing_starts_at_exactly_probe_after_failures(failures, probing):
    assert is_probing(failures, RULES) is probing


# -- successes -----------------------------------------------------------------------


@pytest.mark.parametrize("failures", [0, 1, 2, 3, 7])
def test_a_success_resets_the_failure_count_and_failing_since(failures):
    state, _ = apply_outcomes(failing(failures), [succeeded()], RULES, NOW)
    assert state == HEALTHY


@pytest.mark.parametrize("failures", [0, 1, 2])
def test_a_success_before_probing_began_reports_nothing(failures):
    _, events = apply_outcomes(failing(failures), [succeeded()], RULES, NOW)
    assert events == []


@pytest.mark.parametrize("failures", [3, 4, 9])
def test_a_success_once_probing_began_reports_recovery_after_the_streak(failures):
    _, events = apply_outcomes(failing(failures), [succeeded()], RULES, NOW)
    assert events == [HealthEvent("endpoint.recovered", {"after_failures": failures})]


def test_a_success_does_not_enable_a_disabled_endpoint():
    disabled = replace(
        failing(4), status="disabled", disabled_reason="failing", disabled_at=EARLIER
    )
    state, _ = apply_outcomes(disabled, [succeeded()], RULES, NOW)
    assert (state.status, state.disabled_reason, state.disabled_at) == (
        "disabled",
        "failing",
        EARLIER,
    )


# -- failures ------------------------------------------------------------------------


def test_a_first_failure_starts_failing_since_at_its_attempt_time():
    state, _ = apply_outcomes(HEALTHY, [failed(at=EARLIER)], RULES, NOW)
    assert (state.consecutive_failures, state.failing_since) == (1, EARLIER)


def test_a_further_failure_counts_and_keeps_the_first_failing_since():
    first = NOW - timedelta(seconds=600)
    state, _ = apply_outcomes(failing(1, since=first), [failed()], RULES, NOW)
    assert (state.consecutive_failures, state.failing_since) == (2, first)


@pytest.mark.parametrize(
    ("failures_before", "reports_failing"),
    [(0, False), (1, False), (2, True), (3, False), (4, False)],
)
def test_the_failing_event_comes_at_exactly_probe_after_failures(failures_before, reports_failing):
    _, events = apply_outcomes(failing(failures_before), [failed()], RULES, NOW)
    expected = [
        HealthEvent("endpoint.failing", {"consecutive_failures": 3, "failing_since": EARLIER})
    ]
    assert events == (expected if reports_failing else [])


def test_a_streak_of_failures_reports_failing_once():
    _, events = apply_outcomes(HEALTHY, [failed()] * 4, RULES, NOW)
    assert [event.type for event in events] == ["endpoint.failing"]


def test_outcomes_fold_in_order_so_a_success_between_failures_restarts_the_count():
    state, events = apply_outcomes(
        HEALTHY, [failed(), failed(), succeeded(), failed(), failed()], RULES, NOW
    )
    assert state.consecutive_failures == 2
    assert events == []


# -- 410 Gone ------------------------------------------------------------------------


def test_gone_disables_an_enabled_endpoint_at_once_with_reason_gone():
    state, events = apply_outcomes(HEALTHY, [gone()], RULES, NOW)
    assert (state.status, state.disabled_reason, state.disabled_at) == ("disabled", "gone", NOW)
    assert events == [HealthEvent("endpoint.disabled", {"reason": "gone"})]


def test_gone_counts_as_a_failure():
    state, _ = apply_outcomes(HEALTHY, [gone(at=EARLIER)], RULES, NOW)
    assert (state.consecutive_failures, state.failing_since) == (1, EARLIER)


@pytest.mark.parametrize("reason", ["manual", "failing", "gone"])
def test_gone_leaves_an_already_disabled_endpoint_as_it_was(reason):
    disabled = replace(HEALTHY, status="disabled", disabled_reason=reason, disabled_at=EARLIER)
    state, events = apply_outcomes(disabled, [gone()], RULES, NOW)
    assert (state.status, state.disabled_reason, state.disabled_at) == (
        "disabled",
        reason,
        EARLIER,
    )
    assert events == []


# -- disabling a failing endpoint ----------------------------------------------------


@pytest.mark.parametrize(
    ("failures", "seconds_failing"),
    [(5, 3600), (5, 86_400), (40, 3600)],
)
def test_evaluate_disable_disables_once_both_thresholds_are_met(failures, seconds_failing):
    since = NOW - timedelta(seconds=seconds_failing)
    state, events = evaluate_disable(failing(failures, since=since), RULES, NOW)
    assert (state.status, state.disabled_reason, state.disabled_at) == ("disabled", "failing", NOW)
    assert events == [
        HealthEvent("endpoint.disabled", {"reason": "failing", "consecutive_failures": failures})
    ]


@pytest.mark.parametrize(
    ("failures", "seconds_failing"),
    [
        (4, 3600),  # long enough, one failure short
        (4, 86_400),
        (5, 3599),  # enough failures, one second short
        (40, 60),
        (4, 3599),  # neither
    ],
)
def test_evaluate_disable_does_not_disable_with_only_one_threshold_met(failures, seconds_failing):
    before = failing(failures, since=NOW - timedelta(seconds=seconds_failing))
    assert evaluate_disable(before, RULES, NOW) == (before, [])


def test_evaluate_disable_needs_a_failing_since():
    before = replace(HEALTHY, consecutive_failures=5)
    assert evaluate_disable(before, RULES, NOW) == (before, [])


@pytest.mark.parametrize("reason", ["manual", "gone", "failing"])
def test_evaluate_disable_leaves_a_disabled_endpoint_alone(reason):
    before = replace(
        failing(50, since=NOW - timedelta(days=30)),
        status="disabled",
        disabled_reason=reason,
        disabled_at=EARLIER,
    )
    assert evaluate_disable(before, RULES, NOW) == (before, [])


def test_a_failure_that_meets_both_thresholds_disables_after_the_failing_event():
    rules = replace(RULES, disable_after_failures=3)
    long_ago = NOW - timedelta(seconds=3600)
    state, events = apply_outcomes(failing(2, since=long_ago), [failed()], rules, NOW)
    assert (state.status, state.disabled_reason) == ("disabled", "failing")
    assert events == [
        HealthEvent("endpoint.failing", {"consecutive_failures": 3, "failing_since": long_ago}),
        HealthEvent("endpoint.disabled", {"reason": "failing", "consecutive_failures": 3}),
    ]


def test_no_outcomes_still_disable_an_endpoint_failing_past_both_thresholds():
    state, events = apply_outcomes(failing(5, since=NOW - timedelta(seconds=3600)), [], RULES, NOW)
    assert state.status == "disabled"
    assert [event.type for event in events] == ["endpoint.disabled"]


def test_a_failure_short_of_the_time_threshold_does_not_disable():
    state, events = apply_outcomes(failing(10, since=EARLIER), [failed()], RULES, NOW)
    assert (state.status, state.consecutive_failures) == ("enabled", 11)
    assert events == []
