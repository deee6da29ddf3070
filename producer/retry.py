"""The retry policy: given how an attempt ended, retry? when? (pure).

Default schedule, Standard Webhooks style: immediately, 5 s, 5 min, 30 min,
2 h, 5 h, 10 h, 10 h — eight attempts — each delay with ±20 % jitter.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal

from tenacity import RetryCallState
from tenacity.wait import wait_base

from producer.errors import ValidationError

__all__ = [
    "DEFAULT_SCHEDULE",
    "AttemptOutcome",
    "Decision",
    "RetryPolicy",
    "parse_retry_after",
    "validate_schedule",
]

DEFAULT_SCHEDULE: tuple[float, ...] = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
MAX_DELAY = 7 * 24 * 3600
MAX_ENTRIES = 50


@dataclass(frozen=True)
class AttemptOutcome:
    """How one attempt ended: a status code, or an error such as ``timeout``."""

    status_code: int | None
    error: str | None = None
    retry_after: str | None = None

    @property
    def succeeded(self) -> bool:
        """A 2xx answer without a transport error."""
        return self.error is None and self.status_code is not None and 200 <= self.status_code < 300

    @property
    def timed_out(self) -> bool:
        """The request did not finish within its timeout."""
        return self.error == "timeout"


@dataclass(frozen=True)
class Decision:
    """What happens to the delivery after an attempt."""

    action: Literal["succeeded", "retry", "failed"]
    delay: float | None = None
    reason: str | None = None
    disable_endpoint: bool = False


class wait_schedule(wait_base):
    """A tenacity wait strategy over a table of delays with ±jitter.

    The delay before attempt ``n + 1`` is ``schedule[n]``; ``rand`` gives a
    number in [0, 1) that spreads it by up to ``jitter`` either way.
    """

    def __init__(self, schedule: Sequence[float], jitter: float, rand: Callable[[], float]) -> None:
        self.schedule = tuple(schedule)
        self.jitter = jitter
        self.rand = rand

    def __call__(self, retry_state: RetryCallState) -> float:
        base = self.schedule[min(retry_state.attempt_number, len(self.schedule) - 1)]
        return max(0.0, base * (1 + self.jitter * (2 * self.rand() - 1)))


def _state(attempt_number: int) -> RetryCallState:
    state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    state.attempt_number = attempt_number
    return state


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())


@dataclass(frozen=True)
class RetryPolicy:
    """Answers "retry? when?" after each attempt."""

    schedule: tuple[float, ...] = DEFAULT_SCHEDULE
    jitter: float = 0.2
    max_retry_after: float = 86400
    throttle_floor: float = 60

    @classmethod
    def from_schedule(cls, schedule: Sequence[float] | None) -> RetryPolicy:
        """The default policy with an endpoint's own schedule, if it has one."""
        return cls() if schedule is None else cls(schedule=tuple(float(s) for s in schedule))

    def decide(
        self,
        outcome: AttemptOutcome,
        attempt_number: int,
        *,
        now: datetime,
        rand: Callable[[], float] = random.random,
    ) -> Decision:
        """Decide after attempt ``attempt_number`` (1-based) ended with ``outcome``.

        2xx succeeds. 410 fails and disables the endpoint. A destination
        refused by the guard fails at once. Anything else — other statuses
        (3xx included), timeouts, connection errors — is retried on the
        schedule until it is exhausted.
        """
        if outcome.succeeded:
            return Decision("succeeded")
        if outcome.error is None and outcome.status_code == 410:
            return Decision("failed", reason="gone", disable_endpoint=True)
        if outcome.error is not None and outcome.error.startswith("blocked_destination"):
            return Decision("failed", reason="blocked_destination")
        if attempt_number >= len(self.schedule):
            return Decision("failed", reason="exhausted")
        delay = wait_schedule(self.schedule, self.jitter, rand)(_state(attempt_number))
        if outcome.status_code in (429, 503):
            asked = parse_retry_after(outcome.retry_after, now)
            if asked is not None:
                delay = max(delay, min(asked, self.max_retry_after))
        if outcome.status_code == 429 or outcome.timed_out:
            delay = max(delay, self.throttle_floor)
        return Decision("retry", delay=delay)


def validate_schedule(schedule: Any) -> tuple[float, ...]:
    """Check an endpoint's retry schedule (a list of delays in seconds)."""
    if isinstance(schedule, str | bytes) or not isinstance(schedule, Sequence):
        raise ValidationError.for_field("retry_schedule", "must be a list of delays in seconds")
    if not 1 <= len(schedule) <= MAX_ENTRIES:
        raise ValidationError.for_field("retry_schedule", f"must hold 1 to {MAX_ENTRIES} delays")
    result = []
    for index, delay in enumerate(schedule):
        if (
            isinstance(delay, bool)
            or not isinstance(delay, int | float)
            or not 0 <= delay <= MAX_DELAY
        ):
            raise ValidationError.for_field(
                f"retry_schedule[{index}]", f"must be a number of seconds from 0 to {MAX_DELAY}"
            )
        result.append(float(delay))
    return tuple(result)
