"""The service's problem lines: what one says, and how often one is written.

One line per delivery problem (a failed attempt, a refused destination, an
endpoint disabled), held to at most one line per endpoint and kind of
problem per window, and to an overall budget, so that a dead endpoint, or a
thousand of them, cannot flood an operator's terminal. A line written after
a quiet spell says how many like it were held back, and since when.

Pure: the caller passes the time of each problem; nothing here reads a
clock or writes a log.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from producer.payloads import format_timestamp

__all__ = ["FIELDS", "Admitted", "Problem", "ProblemKind", "ProblemLimiter"]

ProblemKind = Literal["attempt_failed", "destination_blocked", "endpoint_disabled"]

FIELDS = (
    "problem",
    "endpoint_id",
    "tenant",
    "host",
    "delivery_id",
    "attempt",
    "status_code",
    "error",
    "next_attempt_at",
    "reason",
    "suppressed",
    "suppressed_since",
)
"""The keys every problem line carries besides its message (``None`` where
they do not apply); ``--log-format json`` writes them as they are."""

_HELD_BACK: dict[str, tuple[str, str]] = {
    "attempt_failed": ("failure", "failures"),
    "destination_blocked": ("refused delivery", "refused deliveries"),
    "endpoint_disabled": ("disable", "disables"),
}
_GIVING_UP = {
    "exhausted": "no attempts left",
    "gone": "the receiver answered 410 Gone",
}
_DISABLED = {
    "gone": "its receiver answered 410 Gone",
    "failing": "it kept failing past the health thresholds",
}


@dataclass(frozen=True)
class Admitted:
    """A line may be written; ``suppressed`` lines like it were held back
    before it, the first of them at ``since``."""

    suppressed: int = 0
    since: datetime | None = None


@dataclass(frozen=True)
class Problem:
    """One delivery problem, as the operator reads it."""

    kind: ProblemKind
    endpoint_id: str
    tenant: str
    host: str | None = None
    delivery_id: str | None = None
    attempt: int | None = None
    status_code: int | None = None
    error: str | None = None
    next_attempt_at: datetime | None = None
    reason: str | None = None
    """Why it gave up on a delivery, or why the endpoint was disabled."""

    @property
    def key(self) -> Hashable:
        """What the per-window limit counts by: the endpoint and the kind."""
        return (self.endpoint_id, self.kind)

    def message(self, admitted: Admitted = Admitted()) -> str:
        """The line's text, ending with what was held back before it."""
        where = f"endpoint {self.endpoint_id} (tenant {self.tenant}"
        where += f", {self.host})" if self.host else ")"
        if self.kind == "endpoint_disabled":
            text = f"{where} disabled: {_DISABLED.get(self.reason or '', self.reason)}"
        elif self.kind == "destination_blocked":
            text = f"{where}: delivery {self.delivery_id} refused, not retried: {self.error}"
        else:
            answer = f"HTTP {self.status_code}" if self.error is None else self.error
            then = (
                f"next attempt at {_seconds(self.next_attempt_at)}"
                if self.next_attempt_at is not None
                else f"giving up: {_GIVING_UP.get(self.reason or '', self.reason)}"
            )
            text = (
                f"{where}: attempt {self.attempt} of delivery {self.delivery_id} "
                f"failed: {answer}; {then}"
            )
        if admitted.suppressed and admitted.since is not None:
            one, many = _HELD_BACK[self.kind]
            noun = one if admitted.suppressed == 1 else many
            text += f" (and {admitted.suppressed} more {noun} since {_seconds(admitted.since)})"
        return text

    def fields(self, admitted: Admitted = Admitted()) -> dict[str, Any]:
        """The line's :data:`FIELDS`, JSON-ready."""
        return {
            "problem": self.kind,
            "endpoint_id": self.endpoint_id,
            "tenant": self.tenant,
            "host": self.host,
            "delivery_id": self.delivery_id,
            "attempt": self.attempt,
            "status_code": self.status_code,
            "error": self.error,
            "next_attempt_at": _stamp(self.next_attempt_at),
            "reason": self.reason,
            "suppressed": admitted.suppressed,
            "suppressed_since": _stamp(admitted.since),
        }


def _seconds(value: datetime | None) -> str:
    return format_timestamp(value)[:19] + "Z" if value is not None else "?"


def _stamp(value: datetime | None) -> str | None:
    return format_timestamp(value) if value is not None else None


@dataclass
class _Window:
    last_line: datetime | None = None
    suppressed: int = 0
    since: datetime | None = None


_PRUNE_FLOOR = 1024
"""Keys tracked before the idle ones are forgotten (and then twice as many
as remain, so that pruning stays rare)."""


class ProblemLimiter:
    """Decides which problem lines are written.

    A key (an endpoint and a kind of problem) gets at most one line per
    ``per_key_seconds``. All keys together share a token bucket of
    ``burst`` lines, refilled at ``lines_per_second``. A problem held back
    by either limit is counted against its key and reported by that key's
    next line. Safe to call from several threads.
    """

    def __init__(
        self, *, per_key_seconds: float = 60, burst: int = 30, lines_per_second: float = 0.5
    ) -> None:
        if per_key_seconds < 0 or burst < 1 or lines_per_second <= 0:
            raise ValueError(
                "per_key_seconds must not be negative, burst must be at least 1 "
                "and lines_per_second must be positive"
            )
        self.per_key_seconds = per_key_seconds
        self.burst = burst
        self.lines_per_second = lines_per_second
        self._lock = threading.Lock()
        self._windows: dict[Hashable, _Window] = {}
        self._tokens = float(burst)
        self._refilled_at: datetime | None = None
        self._prune_at = _PRUNE_FLOOR

    def admit(self, key: Hashable, now: datetime) -> Admitted | None:
        """An :class:`Admitted` if a line for ``key`` may be written at ``now``,
        else ``None`` (and the problem is counted for the key's next line)."""
        with self._lock:
            self._refill(now)
            window = self._windows.setdefault(key, _Window())
            if not self._is_open(window, now) or self._tokens < 1:
                window.suppressed += 1
                window.since = window.since or now
                return None
            self._tokens -= 1
            admitted = Admitted(window.suppressed, window.since)
            window.last_line, window.suppressed, window.since = now, 0, None
            if len(self._windows) >= self._prune_at:
                self._prune(now)
            return admitted

    def __len__(self) -> int:
        """How many keys it keeps track of."""
        with self._lock:
            return len(self._windows)

    def _is_open(self, window: _Window, now: datetime) -> bool:
        if window.last_line is None:
            return True
        return (now - window.last_line).total_seconds() >= self.per_key_seconds

    def _refill(self, now: datetime) -> None:
        if self._refilled_at is not None:
            # max(): a clock set back must not drain the bucket.
            elapsed = max(0.0, (now - self._refilled_at).total_seconds())
            self._tokens = min(self.burst, self._tokens + elapsed * self.lines_per_second)
        self._refilled_at = now

    def _prune(self, now: datetime) -> None:
        # A key with nothing held back whose window has passed behaves exactly
        # like one never seen: forgetting it bounds memory by the endpoints
        # that are failing now, not by all that ever failed.
        self._windows = {
            key: w for key, w in self._windows.items() if w.suppressed or not self._is_open(w, now)
        }
        self._prune_at = max(_PRUNE_FLOOR, 2 * len(self._windows))
