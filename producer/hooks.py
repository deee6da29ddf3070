"""Callbacks a host registers on a producer, and the events they receive.

A wake-up after each committed send (the worker's signal to claim now),
operational events (``endpoint.failing``, ``endpoint.disabled``,
``endpoint.recovered``, ``delivery.exhausted``), one call per recorded
attempt (for metrics) and one per worker claim (liveness). Callbacks may be
added and removed from any thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = ["AttemptObservation", "Hooks", "OperationalEvent"]

log = logging.getLogger("producer")

C = TypeVar("C", bound=Callable[..., Any])


@dataclass(frozen=True)
class OperationalEvent:
    """Something an operator wants to hear of, about one tenant's endpoint or delivery."""

    type: str
    tenant: str
    data: dict[str, Any] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        """What callbacks and the operations tenant receive: the data and the tenant."""
        return {**self.data, "tenant": self.tenant}


@dataclass(frozen=True)
class AttemptObservation:
    """What metrics learn of one recorded attempt."""

    outcome: str
    """``succeeded``, ``retry`` or ``failed``."""
    duration_ms: float
    status_code: int | None
    """The receiver's HTTP status; None when no answer came (timeout, refused, ...)."""
    endpoint_id: str
    tenant: str

    @property
    def status_class(self) -> str:
        """``2xx`` … ``5xx`` of the answer, or ``none`` without one."""
        return f"{self.status_code // 100}xx" if self.status_code else "none"


class Hooks:
    """The registered callbacks of one producer."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wake: list[Callable[[], object]] = []
        self._events: list[Callable[[str, dict[str, Any]], None]] = []
        self._attempts: list[Callable[[str, float], None]] = []
        self._observers: list[Callable[[Sequence[AttemptObservation]], None]] = []
        self._claims: list[Callable[[str, int], None]] = []

    def on_send(self, callback: Callable[[], object]) -> Callable[[], None]:
        """Call ``callback()`` after each committed send; returns its remover."""
        return self._add(self._wake, callback)

    def on_event(self, callback: Callable[[str, dict[str, Any]], None]) -> Callable[[], None]:
        """Call ``callback(event_type, data)`` per operational event; returns its remover."""
        return self._add(self._events, callback)

    def on_attempt(self, callback: Callable[[str, float], None]) -> Callable[[], None]:
        """Call ``callback(outcome, duration_ms)`` per recorded attempt; returns its remover."""
        return self._add(self._attempts, callback)

    def on_attempts(
        self, callback: Callable[[Sequence[AttemptObservation]], None]
    ) -> Callable[[], None]:
        """Call ``callback(observations)`` per recorded batch of attempts; returns its remover."""
        return self._add(self._observers, callback)

    def on_claim(self, callback: Callable[[str, int], None]) -> Callable[[], None]:
        """Call ``callback(worker, claimed)`` after each claim a worker makes
        (``claimed`` may be 0); returns its remover."""
        return self._add(self._claims, callback)

    def _add(self, callbacks: list[C], callback: C) -> Callable[[], None]:
        """Add ``callback``; the returned remover may be called any number of times."""
        with self._lock:
            callbacks.append(callback)

        def remove() -> None:
            with self._lock:
                if callback in callbacks:
                    callbacks.remove(callback)

        return remove

    def _snapshot(self, callbacks: list[C]) -> list[C]:
        with self._lock:
            return list(callbacks)

    def wake(self) -> None:
        """Tell the workers of this process that something was sent."""
        for callback in self._snapshot(self._wake):
            callback()

    def emit(self, events: Iterable[OperationalEvent]) -> None:
        """Hand operational events to the callbacks; a failing callback is
        logged and does not keep the others from hearing of it."""
        callbacks = self._snapshot(self._events)
        for event in events:
            for callback in callbacks:
                try:
                    callback(event.type, event.payload())
                except Exception:
                    log.exception("operational event callback failed for %s", event.type)

    def attempted(self, observations: Sequence[AttemptObservation]) -> None:
        """Report each recorded attempt."""
        for callback in self._snapshot(self._attempts):
            for o in observations:
                callback(o.outcome, o.duration_ms)
        for observer in self._snapshot(self._observers):
            observer(observations)

    def claimed(self, worker: str, count: int) -> None:
        """Report that ``worker`` claimed ``count`` deliveries (a sign of life)."""
        for callback in self._snapshot(self._claims):
            callback(worker, count)
