"""Maintenance: the periodic jobs beside each worker, run by APScheduler.

- reclaim expired leases (a crashed worker's deliveries go back to the queue),
- cancel pending deliveries of deleted endpoints that a race left behind,
- evaluate endpoint health (disable endpoints failing past the thresholds
  even when no new attempt comes),
- purge attempts and finished messages past the retention period,
- run background jobs (replays, bulk retries: :mod:`producer.jobs`) in a
  thread of their own, started when one is waiting.

Each job does its database work in a thread; a failing run is logged and the
next one tries again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from producer.context import Context
from producer.health import evaluate_disable
from producer.hooks import OperationalEvent
from producer.jobs import JobRunner
from producer.outcomes import Outcomes, disabled_problems, health_events_of
from producer.store import health_of, set_health

__all__ = [
    "Maintenance",
    "cancel_orphaned_deliveries",
    "evaluate_endpoint_health",
    "purge_expired",
    "reclaim_expired_leases",
]

log = logging.getLogger("producer.maintenance")

PURGE_INTERVAL_SECONDS = 3600.0
PURGE_BATCH = 5000
JOB_POLL_SECONDS = 0.25
"""The shortest wait before a queued background job is looked for."""
JOB_STOP_SECONDS = 5.0
"""How long shutdown waits for a background job's batch under way."""


def reclaim_expired_leases(ctx: Context) -> int:
    """Return deliveries whose worker vanished to the queue, due now."""
    with ctx.store.transaction() as s:
        count = ctx.queue.reclaim_expired_leases(s, ctx.clock())
    if count:
        log.warning("reclaimed %d deliveries from expired leases", count)
        ctx.hooks.wake()
    return count


def cancel_orphaned_deliveries(ctx: Context) -> int:
    """Cancel pending deliveries whose endpoint was deleted; returns how many.

    No worker claims them, so without this they would stay pending forever
    (and keep their message from being purged).
    """
    with ctx.store.transaction() as s:
        count = ctx.queue.cancel_orphaned(s, ctx.clock())
    if count:
        log.warning("cancelled %d pending deliveries of deleted endpoints", count)
    return count


def evaluate_endpoint_health(ctx: Context, outcomes: Outcomes) -> int:
    """Disable endpoints whose failure streak passed the thresholds; returns
    how many events that raised."""
    now = ctx.clock()
    events: list[OperationalEvent] = []
    with ctx.store.transaction() as s:
        for row in ctx.store.failing_endpoints(s):
            state, health_events = evaluate_disable(health_of(row), ctx.health_rules, now)
            if health_events:
                set_health(row, state, now)
                events += health_events_of(row, health_events)
        outcomes.send_operational(s, events)
    ctx.hooks.emit(events)
    outcomes.log_problems(disabled_problems(events))
    return len(events)


def purge_expired(
    ctx: Context,
    *,
    batch: int = PURGE_BATCH,
    progress: Callable[[int], None] | None = None,
) -> tuple[int, int]:
    """Delete attempts and finished messages older than the retention period,
    ``batch`` rows per short transaction until nothing old is left; returns
    ``(attempts, messages)`` deleted. ``progress(n)`` is called after each
    transaction with the attempts and messages it deleted."""
    before = ctx.clock() - timedelta(days=ctx.settings.retention_days)
    attempts = messages = 0
    while True:
        with ctx.store.transaction() as s:
            more_attempts, more_messages = ctx.store.purge(s, before, batch=batch)
        attempts += more_attempts
        messages += more_messages
        if progress is not None and (more_attempts or more_messages):
            progress(more_attempts + more_messages)
        if more_attempts < batch and more_messages < batch:
            return attempts, messages


class Maintenance:
    """The periodic jobs of one worker process."""

    def __init__(self, ctx: Context, outcomes: Outcomes) -> None:
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        settings = ctx.settings
        # Often against the lease, so a dead worker's deliveries return soon
        # after its heartbeat stops.
        lease_check = max(1.0, min(settings.lease_seconds / 4, 15.0))
        self._add(lambda: reclaim_expired_leases(ctx), lease_check, "reclaim-leases")
        self._add(
            lambda: cancel_orphaned_deliveries(ctx),
            settings.maintenance_interval_seconds,
            "cancel-orphans",
        )
        self._add(
            lambda: evaluate_endpoint_health(ctx, outcomes),
            settings.maintenance_interval_seconds,
            "endpoint-health",
        )
        self._add(lambda: purge_expired(ctx), PURGE_INTERVAL_SECONDS, "purge")
        self.jobs = JobRunner(ctx)
        self._add(
            self.jobs.poke, max(settings.worker_poll_interval, JOB_POLL_SECONDS), "background-jobs"
        )

    def _add(self, func: Callable[[], Any], seconds: float, name: str) -> None:
        async def job() -> None:
            try:
                await asyncio.to_thread(func)
            except Exception:
                log.exception("maintenance job %s failed; it runs again later", name)

        self.scheduler.add_job(
            job, "interval", seconds=seconds, id=name, name=name, max_instances=1, coalesce=True
        )

    def start(self) -> None:
        """Start the jobs on the running event loop."""
        self.scheduler.start()

    def shutdown(self) -> None:
        """Stop the jobs (running ones are not awaited; a background job
        stops after its batch under way, left for another worker)."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        self.jobs.stop(JOB_STOP_SECONDS)
