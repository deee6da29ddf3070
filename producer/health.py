"""Endpoint health: consecutive failures, probing and auto-disable (pure).

Given an endpoint's health state and the outcomes of its latest attempts in
order, :func:`apply_outcomes` returns the new state and the operational events
that the change produces. The store loads and saves the state; the worker
emits the events.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal

__all__ = [
    "HealthEvent",
    "HealthRules",
    "HealthState",
    "Outcome",
    "apply_outcomes",
    "evaluate_disable",
    "is_probing",
]

HealthEventType = Literal["endpoint.failing", "endpoint.disabled", "endpoint.recovered"]


@dataclass(frozen=True)
class HealthRules:
    """Thresholds from the settings."""

    probe_after_failures: int = 5
    disable_after_seconds: float = 5 * 24 * 3600
    disable_after_failures: int = 10


@dataclass(frozen=True)
class HealthState:
    """What is stored on the endpoint row."""

    status: str
    disabled_reason: str | None
    disabled_at: datetime | None
    failing_since: datetime | None
    consecutive_failures: int


@dataclass(frozen=True)
class HealthEvent:
    """An operational event: ``endpoint.failing``, ``.disabled`` or ``.recovered``."""

    type: HealthEventType
    data: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """One finished attempt, as far as endpoint health is concerned."""

    at: datetime
    succeeded: bool
    gone: bool = False


def is_probing(consecutive_failures: int, rules: HealthRules) -> bool:
    """A failing endpoint is probed, not hammered: one delivery in flight."""
    return consecutive_failures >= rules.probe_after_failures


def apply_outcomes(
    state: HealthState, outcomes: list[Outcome], rules: HealthRules, now: datetime
) -> tuple[HealthState, list[HealthEvent]]:
    """Fold attempt outcomes (oldest first) into the health state.

    Any success resets the failure count. A ``410 Gone`` disables at once
    (reason ``gone``). Otherwise the endpoint is disabled (reason
    ``failing``) once it has failed continuously for ``disable_after_seconds``
    with at least ``disable_after_failures`` consecutive failed attempts.
    """
    events: list[HealthEvent] = []
    for outcome in outcomes:
        if outcome.succeeded:
            if state.consecutive_failures >= rules.probe_after_failures:
                events.append(
                    HealthEvent(
                        "endpoint.recovered",
                        {"after_failures": state.consecutive_failures},
                    )
                )
            state = replace(state, consecutive_failures=0, failing_since=None)
            continue
        failures = state.consecutive_failures + 1
        state = replace(
            state,
            consecutive_failures=failures,
            failing_since=state.failing_since or outcome.at,
        )
        if failures == rules.probe_after_failures:
            events.append(
                HealthEvent(
                    "endpoint.failing",
                    {"consecutive_failures": failures, "failing_since": state.failing_since},
                )
            )
        if outcome.gone and state.status == "enabled":
            state = replace(state, status="disabled", disabled_reason="gone", disabled_at=now)
            events.append(HealthEvent("endpoint.disabled", {"reason": "gone"}))
    state, more = evaluate_disable(state, rules, now)
    return state, events + more


def evaluate_disable(
    state: HealthState, rules: HealthRules, now: datetime
) -> tuple[HealthState, list[HealthEvent]]:
    """Disable a continuously failing endpoint once both thresholds are met."""
    if (
        state.status == "enabled"
        and state.failing_since is not None
        and state.consecutive_failures >= rules.disable_after_failures
        and now - state.failing_since >= timedelta(seconds=rules.disable_after_seconds)
    ):
        state = replace(state, status="disabled", disabled_reason="failing", disabled_at=now)
        return state, [
            HealthEvent(
                "endpoint.disabled",
                {"reason": "failing", "consecutive_failures": state.consecutive_failures},
            )
        ]
    return state, []
