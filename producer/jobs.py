"""Jobs: replays and bulk retries run in the background by the workers.

A job is a row of ``webhook_jobs``: what to do (a replay of an endpoint's
window, or a bulk retry of what the log's filters select), where it stands,
and how far it got. :class:`JobRunner`, started by each worker process's
maintenance, claims one unfinished job under a lease and runs it in
batches, the same batches as the synchronous calls of :mod:`producer.replay`.
Each batch's deliveries, the job's counts and its cursor (the last id
done) commit in one transaction, so a runner that dies loses nothing and
repeats nothing: once its lease expires, another runner resumes from the
cursor. On PostgreSQL the job row is locked while a batch runs, so two
runners never run one job at the same time.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from producer.context import Context
from producer.errors import ValidationError, WebhooksError
from producer.ids import new_id
from producer.models import JobRow
from producer.replay import (
    REPLAY_BATCH,
    Batch,
    ReplayWindow,
    check_retry,
    replay_batch,
    replay_window,
    requeue_batch,
)
from producer.store import DeliveryFilter
from producer.types import JOB_KINDS, JOB_STATUSES, Job, Page, snapshot

__all__ = ["JobRunner", "get", "list_", "start_replay", "start_retry"]

log = logging.getLogger("producer.jobs")

NEXT_PHASE = {"messages": "failed", "failed": None, "deliveries": None}
"""The step after each one; a replay goes on to ``failed`` only with ``include_failed``."""


# -- starting and reading --------------------------------------------------------------


def start_replay(
    ctx: Context,
    endpoint_id: str,
    *,
    since: datetime,
    until: datetime | None,
    event_types: Sequence[str] | None,
    include_failed: bool,
    tenant: str | None,
    dry_run: bool = False,
) -> Job:
    """Queue a replay of an endpoint's window (see
    :func:`producer.replay.replay_endpoint`); the input is checked now."""
    window = replay_window(
        endpoint_id, since=since, until=until, event_types=event_types, tenant=tenant
    )
    _check_flag(include_failed, "include_failed")
    with ctx.store.transaction() as s:
        endpoint = ctx.store.get_endpoint(s, endpoint_id, tenant=tenant)
        options = {"event_types": window.event_types, "include_failed": include_failed}
        return _queue(
            ctx,
            s,
            kind="replay",
            tenant=endpoint.tenant,
            endpoint_id=endpoint.id,
            since=window.since,
            until=window.until,
            options=options,
            dry_run=dry_run,
            phase="messages",
        )


def start_retry(
    ctx: Context, filters: DeliveryFilter, *, force: bool, dry_run: bool = False
) -> Job:
    """Queue a bulk retry of what the log's ``filters`` select (see
    :func:`producer.replay.retry_deliveries`); the input is checked now."""
    scoped = check_retry(ctx, filters, force=force)
    with ctx.store.transaction() as s:
        options = {"status": scoped.status, "event_type": scoped.event_type, "force": force}
        return _queue(
            ctx,
            s,
            kind="retry",
            tenant=scoped.tenant,
            endpoint_id=scoped.endpoint_id,
            since=scoped.since,
            until=scoped.until,
            options=options,
            dry_run=dry_run,
            phase="deliveries",
        )


def _queue(ctx: Context, s: Session, *, dry_run: bool, **fields: Any) -> Job:
    _check_flag(dry_run, "dry_run")
    now = ctx.clock()
    row = JobRow(
        id=new_id("job"),
        status="queued",
        dry_run=dry_run,
        cursor=None,
        scanned=0,
        created=0,
        requeued=0,
        created_at=now,
        updated_at=now,
        **fields,
    )
    s.add(row)
    s.flush()
    return job_of(row)


def get(ctx: Context, job_id: str, *, tenant: str | None) -> Job:
    """A job; with ``tenant`` set, another tenant's (or an admin's) is NotFoundError."""
    with ctx.store.reading() as s:
        return job_of(ctx.store.get_job(s, job_id, tenant=tenant))


def list_(
    ctx: Context,
    *,
    tenant: str | None,
    kind: str | None,
    status: str | None,
    endpoint_id: str | None,
    limit: int,
    cursor: str | None,
) -> Page[Job]:
    """Jobs, newest first, optionally of one tenant, kind, status and endpoint."""
    _check_choice(kind, JOB_KINDS, "kind")
    _check_choice(status, JOB_STATUSES, "status")
    with ctx.store.reading() as s:
        rows, next_cursor = ctx.store.list_jobs(
            s,
            tenant=tenant,
            kind=kind,
            status=status,
            endpoint_id=endpoint_id,
            limit=limit,
            cursor=cursor,
        )
        return Page([job_of(r) for r in rows], next_cursor)


def job_of(row: JobRow) -> Job:
    """The public snapshot of a job row."""
    return snapshot(Job, row)


def _check_flag(value: Any, field: str) -> None:
    if not isinstance(value, bool):
        raise ValidationError.for_field(field, "must be true or false")


def _check_choice(value: str | None, choices: Sequence[str], field: str) -> None:
    if value is not None and value not in choices:
        raise ValidationError.for_field(field, f"must be one of {', '.join(choices)}")


# -- running -------------------------------------------------------------------------


class JobRunner:
    """Runs unfinished jobs one batch per transaction, in a thread of its own.

    The worker's maintenance calls :meth:`poke` periodically; it starts the
    thread when none is running, which works until no job is left (or
    :meth:`stop`). Tests drive :meth:`claim` and :meth:`step` directly.
    """

    def __init__(self, ctx: Context, *, owner: str | None = None, batch: int = REPLAY_BATCH):
        self.ctx = ctx
        self.owner = owner or f"{socket.gethostname()[:24]}:{os.getpid()}:{new_id('j')[-8:]}"
        self.batch = batch
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        # poke (the scheduler's thread) and stop (the worker's) take turns:
        # stop never sees a thread made but not started yet.
        self._starting = threading.Lock()

    def poke(self) -> None:
        """Start working through the unfinished jobs, unless already at it."""
        with self._starting:
            if self._stopping.is_set() or (self._thread is not None and self._thread.is_alive()):
                return
            self._thread = threading.Thread(target=self._main, name="webhooks-jobs", daemon=True)
            self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop after the batch under way, handing its job back (its lease
        released for the next runner), and wait up to ``timeout`` seconds."""
        with self._starting:
            self._stopping.set()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _main(self) -> None:
        try:
            self.run_due()
        except Exception:
            log.exception("running jobs failed; the next poke tries again")

    def run_due(self) -> int:
        """Run jobs until none can be claimed or :meth:`stop`; returns how
        many this call took to their end (or lost to another runner)."""
        ended = 0
        while not self._stopping.is_set():
            job_id = self.claim()
            if job_id is None:
                break
            while self.step(job_id):
                if self._stopping.is_set():
                    self.release(job_id)
                    return ended
            ended += 1
        return ended

    def claim(self) -> str | None:
        """Lease the oldest job nobody else is running; returns its id, or None."""
        now = self.ctx.clock()
        with self.ctx.store.transaction() as s:
            row = self.ctx.store.claimable_job(s, self.owner, now)
            if row is None:
                return None
            row.status = "running"
            row.lease_owner = self.owner
            row.lease_expires_at = self._lease_end(now)
            row.started_at = row.started_at or now
            row.updated_at = now
            return row.id

    def step(self, job_id: str) -> bool:
        """Run one batch of a job this runner holds; returns whether there
        is more to do. A job another runner has taken over is left alone;
        an error the input is to blame for fails it."""
        try:
            with self.ctx.store.transaction() as s:
                row = self.ctx.store.get_job(s, job_id, lock=True)
                if row.status != "running" or row.lease_owner != self.owner:
                    return False
                done = self._batch(s, row)
                self._advance(row, done)
                more = row.status == "running"
        except WebhooksError as exc:
            self._finish(job_id, "failed", str(exc))
            return False
        if done.changed and not row.dry_run:
            self.ctx.hooks.wake()
        return more

    def release(self, job_id: str) -> None:
        """Give a held job back: any runner may resume it at once."""
        with self.ctx.store.transaction() as s:
            row = self.ctx.store.get_job(s, job_id, lock=True)
            if row.lease_owner == self.owner:
                row.lease_owner = None
                row.lease_expires_at = None
                row.updated_at = self.ctx.clock()

    def _batch(self, s: Session, row: JobRow) -> Batch:
        if row.phase == "messages":
            return replay_batch(
                self.ctx, s, _window(row), after=row.cursor, limit=self.batch, dry_run=row.dry_run
            )
        if row.phase == "failed":
            window = _window(row)
            filters, event_types, tenant = window.failed(), window.event_types, row.tenant
        else:
            filters, event_types, tenant = _retry_filters(row), None, None
        return requeue_batch(
            self.ctx,
            s,
            filters,
            event_types,
            tenant=tenant,
            after=row.cursor,
            limit=self.batch,
            dry_run=row.dry_run,
        )

    def _advance(self, row: JobRow, done: Batch) -> None:
        """Count a batch on its job and move the cursor, in the batch's transaction."""
        now = self.ctx.clock()
        if row.phase == "messages":
            row.scanned += done.looked_at
            row.created += done.changed
        else:
            row.requeued += done.changed
        row.cursor = done.after
        row.updated_at = now
        row.lease_expires_at = self._lease_end(now)
        if done.after is not None:
            return
        following = NEXT_PHASE[row.phase]
        if following == "failed" and not row.options.get("include_failed"):
            following = None
        if following is None:
            _close(row, "succeeded", None, now)
        else:
            row.phase = following

    def _finish(self, job_id: str, status: str, error: str | None) -> None:
        with self.ctx.store.transaction() as s:
            row = self.ctx.store.get_job(s, job_id, lock=True)
            if row.lease_owner == self.owner and row.status == "running":
                _close(row, status, error, self.ctx.clock())

    def _lease_end(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.ctx.settings.lease_seconds)


def _close(row: JobRow, status: str, error: str | None, now: datetime) -> None:
    row.status = status
    row.error = error
    row.finished_at = now
    row.updated_at = now
    row.lease_owner = None
    row.lease_expires_at = None


def _window(row: JobRow) -> ReplayWindow:
    assert row.endpoint_id is not None and row.since is not None
    return ReplayWindow(
        row.endpoint_id, row.since, row.until, row.options.get("event_types"), row.tenant
    )


def _retry_filters(row: JobRow) -> DeliveryFilter:
    return DeliveryFilter(
        row.tenant,
        row.options.get("event_type"),
        row.since,
        row.until,
        None,
        row.endpoint_id,
        status=row.options.get("status") or "failed",
    )
