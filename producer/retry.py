"""The retry policy: given how an attempt ended, retry? when?

Everything here is pure: no I/O and no clock reads. The caller passes the
current time and, if it wants reproducible jitter, its own random source.

Default schedule, Standard Webhooks style: immediately, 5 s, 5 min, 30 min,
2 h, 5 h, 10 h, 10 h (eight attempts), each delay spread by ±20 % jitter so
that deliveries which failed together do not all come back together.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal

from producer.errors import ValidationError

__all__ = [
    "DEFAULT_SCHEDULE",
    "MAX_SCHEDULE_DELAY",
    "MAX_SCHEDULE_ENTRIES",
    "AttemptOutcome",
    "Decision",
    "RetryPolicy",
    "parse_retry_after",
    "validate_schedule",
]

DEFAULT_SCHEDULE: tuple[float, ...] = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
"""Delays in seconds before attempts 1..8; attempt 1 goes out immediately."""

MAX_SCHEDULE_DELAY: float = 7 * 24 * 3600
"""The longest delay an endpoint's own schedule may ask for (seven days)."""

MAX_SCHEDULE_ENTRIES = 50
"""The most attempts an endpoint's own schedule may ask for."""


@dataclass(frozen=True)
class AttemptOutcome:
    """How one attempt ended: a status code, or an error such as ``"timeout"``.

    ``error`` is ``None`` when an HTTP answer arrived; otherwise it is
    ``"timeout"``, ``"connection_error: ..."`` or ``"blocked_destination: ..."``.
    ``retry_after`` is the raw ``Retry-After`` header value, if any.
    """

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
    """What happens to the delivery after an attempt.

    ``delay`` (seconds until the next attempt) is set only when retrying;
    ``reason`` only when failing: ``"exhausted"``, ``"gone"`` or
    ``"blocked_destination"``. ``disable_endpoint`` asks the caller to stop
    sending to the endpoint altogether (the receiver answered 410 Gone).
    """

    action: Literal["succeeded", "retry", "failed"]
    delay: float | None = None
    reason: str | None = None
    disable_endpoint: bool = False


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait according to a ``Retry-After`` value, or ``None``.

    Accepts both forms HTTP allows: a whole number of seconds, or an HTTP date
    (taken relative to ``now``; a date in the past means "now", so 0). Anything
    unparsable is ignored rather than trusted.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    # isascii() keeps out digits of other scripts, which isdigit() accepts.
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    # HTTP dates are always GMT; a date without a zone is read that way too.
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


@dataclass(frozen=True)
class RetryPolicy:
    """Answers "retry? when?" after each attempt of a delivery.

    ``schedule[n]`` is the delay before attempt ``n + 1``, so a schedule of
    length ``k`` allows ``k`` attempts. ``jitter`` spreads each delay by up to
    that fraction either way. A ``Retry-After`` on 429/503 is honoured up to
    ``max_retry_after`` seconds, and after a 429 or a timeout the receiver gets
    at least ``throttle_floor`` seconds of rest.
    """

    schedule: tuple[float, ...] = DEFAULT_SCHEDULE
    jitter: float = 0.2
    max_retry_after: float = 86400
    throttle_floor: float = 60

    def __post_init__(self) -> None:
        # A jitter above 1 could make delays negative; catch it at construction.
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter must be between 0 and 1")
        if self.max_retry_after < 0 or self.throttle_floor < 0:
            raise ValueError("max_retry_after and throttle_floor must not be negative")

    @classmethod
    def from_schedule(cls, schedule: Sequence[float] | None) -> RetryPolicy:
        """The default policy, with an endpoint's own schedule if it has one.

        The schedule is not validated again here: it was checked by
        :func:`validate_schedule` when the endpoint was saved, and a worker
        must not fail on a stored value.
        """
        if schedule is None:
            return cls()
        return cls(schedule=tuple(float(delay) for delay in schedule))

    @property
    def max_attempts(self) -> int:
        """How many attempts the schedule allows in total."""
        return len(self.schedule)

    def delay_after(self, attempt_number: int, rand: Callable[[], float] = random.random) -> float:
        """The jittered scheduled delay after attempt ``attempt_number`` failed.

        ``rand`` returns a number in [0, 1]: 0 gives the shortest delay,
        0.5 the scheduled one, 1 the longest.
        """
        base = self.schedule[attempt_number]
        return max(0.0, base * (1 + self.jitter * (2 * rand() - 1)))

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
        refused by the network guard fails at once (retrying cannot help).
        Anything else (other statuses, 3xx included since redirects are not
        followed, timeouts, connection errors) is retried on the schedule
        until it is exhausted.
        """
        if attempt_number < 1:
            raise ValueError("attempt_number is 1-based")
        if outcome.succeeded:
            return Decision("succeeded")
        if outcome.error is None and outcome.status_code == 410:
            return Decision("failed", reason="gone", disable_endpoint=True)
        if outcome.error is not None and outcome.error.startswith("blocked_destination"):
            return Decision("failed", reason="blocked_destination")
        if attempt_number >= self.max_attempts:
            return Decision("failed", reason="exhausted")

        delay = self.delay_after(attempt_number, rand)
        if outcome.status_code in (429, 503):
            asked = parse_retry_after(outcome.retry_after, now)
            if asked is not None:
                # The receiver's wish can lengthen the wait, never shorten it,
                # and is capped so a bogus header cannot park a delivery forever.
                delay = max(delay, min(asked, self.max_retry_after))
        if outcome.status_code == 429 or outcome.timed_out:
            # A throttling or overloaded receiver should not get the
            # near-immediate early retries of the schedule.
            delay = max(delay, self.throttle_floor)
        return Decision("retry", delay=delay)


def validate_schedule(schedule: Any) -> tuple[float, ...]:
    """Check an endpoint's retry schedule and return it as a tuple of floats.

    It must be a list of 1 to 50 numbers of seconds, each from 0 to 7 days.
    Raises :class:`~producer.errors.ValidationError` for field
    ``retry_schedule`` (``retry_schedule[i]`` when one entry is at fault).
    """
    if isinstance(schedule, str | bytes) or not isinstance(schedule, Sequence):
        raise ValidationError.for_field("retry_schedule", "must be a list of delays in seconds")
    if not 1 <= len(schedule) <= MAX_SCHEDULE_ENTRIES:
        raise ValidationError.for_field(
            "retry_schedule", f"must hold 1 to {MAX_SCHEDULE_ENTRIES} delays"
        )
    result: list[float] = []
    for index, delay in enumerate(schedule):
        # bool is an int subclass, but True is not a number of seconds.
        if (
            isinstance(delay, bool)
            or not isinstance(delay, int | float)
            or not math.isfinite(delay)
            or not 0 <= delay <= MAX_SCHEDULE_DELAY
        ):
            raise ValidationError.for_field(
                f"retry_schedule[{index}]",
                f"must be a number of seconds from 0 to {int(MAX_SCHEDULE_DELAY)}",
            )
        result.append(float(delay))
    return tuple(result)
