"""Periodic maintenance jobs, run by APScheduler beside the worker.

- reclaim expired leases (a crashed worker's deliveries go back to the queue),
- evaluate endpoint health (disable endpoints failing past the thresholds),
- purge attempts and finished messages past the retention period.

Each job does its database work in a thread; a failing run is logged and the
next one tries again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

if TYPE_CHECKING:
    from producer.producer import Producer

__all__ = ["Maintenance"]

log = logging.getLogger("producer.scheduler")


class Maintenance:
    """The periodic jobs of one worker process."""

    def __init__(self, producer: Producer) -> None:
        self.producer = producer
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        settings = producer.settings
        lease_check = max(1.0, min(settings.lease_seconds / 2, 15.0))
        self._add(producer.reclaim_expired_leases, lease_check, "reclaim-leases")
        self._add(
            producer.evaluate_endpoint_health,
            settings.maintenance_interval_seconds,
            "endpoint-health",
        )
        self._add(producer.purge_expired, 3600.0, "purge")

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
        """Stop the jobs (running ones are not awaited)."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
