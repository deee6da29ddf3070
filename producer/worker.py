"""The delivery worker: claim due deliveries, send them, record the outcome.

One loop claims batches of due deliveries under a lease (respecting each
endpoint's in-flight cap, FIFO order and probing state), sends them
concurrently over pooled HTTP clients, and hands each result to a recorder
that writes attempts and delivery states in batched transactions. Database
work runs in a thread so the event loop only ever waits on sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
from collections import Counter, defaultdict, deque
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session
from tenacity import (
    AsyncRetrying,
    before_sleep_log,
    retry_if_exception,
    stop_never,
    wait_exponential,
)

from producer.context import Context
from producer.delivery import DeliveryResult, deliver, failed_attempt
from producer.endpoints import live_secrets
from producer.health import is_probing
from producer.ids import new_id
from producer.maintenance import Maintenance, reclaim_expired_leases
from producer.outcomes import Outcomes
from producer.queue import Candidate, EndpointLimits, Job
from producer.store import NOTIFY_CHANNEL
from producer.tracing import batch_span
from producer.transport import Transport

__all__ = ["BackgroundWorker", "Worker", "release_deliveries", "run_worker"]

log = logging.getLogger("producer.worker")

# How many rounds of an endpoint's in-flight cap a worker leases ahead: one
# claim then feeds several requests per slot.
PREFETCH_ROUNDS = 5
# The limits assumed for an endpoint that vanished since its deliveries were
# leased: one at a time until its leases run out.
_GONE = EndpointLimits(max_in_flight=None, ordering="fifo", consecutive_failures=0)
T = TypeVar("T")


def _transient(exc: BaseException) -> bool:
    """Database errors worth retrying: lost connections, locks, restarts."""
    if isinstance(exc, OperationalError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


@dataclass
class _Slot:
    """Where a running delivery sits: its endpoint and its client slot."""

    endpoint_id: str
    index: int


class Worker:
    """Delivers pending deliveries until stopped.

    Use :meth:`Producer.run_worker` (async) or
    :meth:`Producer.start_worker_thread` (sync apps) rather than this class
    directly.
    """

    def __init__(
        self, ctx: Context, outcomes: Outcomes, *, transport: Transport | None = None
    ) -> None:
        self.ctx = ctx
        self.outcomes = outcomes
        settings = ctx.settings
        self.settings = settings
        self.owner = f"{socket.gethostname()[:24]}:{os.getpid()}:{new_id('w')[-8:]}"
        self.transport = transport or ctx.new_transport()
        self.rules = ctx.health_rules
        self._tasks: dict[asyncio.Task[None], tuple[Job, _Slot]] = {}
        self._in_flight: defaultdict[str, set[int]] = defaultdict(set)
        self._results: list[DeliveryResult] = []
        self._signal = asyncio.Event()
        self._results_ready = asyncio.Event()
        self._stopping = asyncio.Event()
        self._rate_next: dict[str, float] = {}
        self._queues: defaultdict[str, deque[Job]] = defaultdict(deque)
        self._caps: dict[str, int] = {}
        self._failures: dict[str, int] = {}
        # Leased deliveries held at once (queued + in flight).
        self._max_leased = PREFETCH_ROUNDS * settings.worker_concurrency
        # Slots one tenant may hold, and deliveries it may have leased: the
        # rest of the slots and of the lease budget stay for other tenants.
        self._tenant_slots = max(1, int(settings.worker_tenant_share * settings.worker_concurrency))
        self._tenant_in_flight: Counter[str] = Counter()
        # Deliveries held (queued or in flight) per endpoint and per tenant,
        # and in all. Senders of other threads read and reserve them when
        # they hand deliveries over (take_over), hence the lock.
        self._held_lock = threading.Lock()
        self._held_endpoints: Counter[str] = Counter()
        self._held_tenants: Counter[str] = Counter()
        self._held_count = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._releases: set[asyncio.Task[int]] = set()
        self._heartbeat_task: asyncio.Task[None] | None = None
        # One thread for all of this worker's database work: claims and
        # records never wait on each other's locks (SQLite has one writer).
        self._db_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="webhooks-db")
        self._inline_db = ctx.local_database
        # Whether the last claim left no due delivery behind (see _claim).
        self._drained = False
        self.delivered = 0

    # -- public ------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the worker to stop claiming and shut down gracefully."""
        self._stopping.set()
        self._signal.set()

    def wake(self) -> None:
        """Claim now instead of at the next poll (called after each send)."""
        self._signal.set()

    async def run(self) -> None:
        """Run until :meth:`stop`; in-flight work is finished or released."""
        loop = self._loop = asyncio.get_running_loop()
        remove = self.ctx.hooks.on_send(lambda: loop.call_soon_threadsafe(self._signal.set))
        recorder = asyncio.create_task(self._recorder(), name="webhooks-recorder")
        listener = (
            asyncio.create_task(self._listen(), name="webhooks-listen")
            if self.ctx.queue.row_locks
            else None
        )
        self._heartbeat_task = asyncio.create_task(self._heartbeat(), name="webhooks-heartbeat")
        stop_answering = self._answer_doorbell(loop)
        try:
            await self._db(reclaim_expired_leases, self.ctx)
            if self.ctx.taker is None and self.settings.worker_take_over:
                self.ctx.taker = self
            await self._claim_loop()
        finally:
            if self.ctx.taker is self:
                self.ctx.taker = None
            remove()
            stop_answering()
            if listener is not None:
                listener.cancel()
                await asyncio.gather(listener, return_exceptions=True)
            await self._shutdown(recorder)

    def _answer_doorbell(self, loop: asyncio.AbstractEventLoop) -> Callable[[], None]:
        """Wake when a sender of another process rings (SQLite); returns what
        stops answering. Without a doorbell, or when its socket cannot be
        made, polling alone finds the work."""
        doorbell = self.ctx.doorbell
        if doorbell is None:
            return lambda: None
        try:
            listener = doorbell.listen()
        except OSError as error:
            log.warning("no wake-ups from other processes (%s); polling only", error)
            return lambda: None

        def rung() -> None:
            doorbell.drain(listener)
            self._signal.set()

        def stop() -> None:
            loop.remove_reader(listener.fileno())
            doorbell.close_listener(listener)

        loop.add_reader(listener.fileno(), rung)
        return stop

    async def _listen(self) -> None:
        """Wake on PostgreSQL notifications from senders in other processes;
        reconnect whenever the connection drops (polling covers the gap)."""
        import psycopg

        url = self.ctx.engine.url.set(drivername="postgresql")
        conninfo = url.render_as_string(hide_password=False)
        async for attempt in AsyncRetrying(
            retry=retry_if_exception(lambda e: isinstance(e, psycopg.Error | OSError)),
            wait=wait_exponential(multiplier=0.2, max=5),
            stop=stop_never,
            before_sleep=before_sleep_log(log, logging.WARNING),
        ):
            with attempt:
                conn = await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
                async with conn:
                    await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    self._signal.set()  # work may have arrived while we were away
                    async for _ in conn.notifies():
                        self._signal.set()

    async def _heartbeat(self) -> None:
        """Renew this worker's leases while it lives: a lease that stops being
        renewed marks a dead worker, whose deliveries other workers take over."""
        while True:
            await asyncio.sleep(self.settings.lease_seconds / 4)
            try:
                # Its own thread: a renewal never waits behind claims and records.
                await asyncio.to_thread(self._renew_leases)
            except Exception:
                log.exception("renewing leases failed; trying again at the next beat")

    def _renew_leases(self) -> int:
        until = self.ctx.clock() + timedelta(seconds=self.settings.lease_seconds)
        with self.ctx.store.transaction() as s:
            return self.ctx.queue.renew_leases(s, self.owner, until)

    # -- claiming ------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        settings = self.settings
        while not self._stopping.is_set():
            room = self._max_leased - self._held_count
            requested = min(room, settings.worker_batch_size)
            claimed: list[Job] = []
            if requested > 0:
                self._signal.clear()
                with batch_span(
                    self.ctx.tracing, "webhooks.claim", {"webhooks.requested": requested}
                ) as span:
                    claimed, caps, self._drained = await self._db(
                        self._claim, requested, self._local_busy(), self._local_tenants()
                    )
                    if span is not None:
                        span.set_attribute("webhooks.claimed", len(claimed))
                self.ctx.hooks.claimed(self.owner, len(claimed))
                self._caps.update(caps)
                held = self._held()
                # A lease that lapsed under load may have come back to us:
                # the delivery is sent once, by the job already held.
                fresh = [job for job in claimed if job.delivery_id not in held]
                self._hold(fresh)
                for job in fresh:
                    self._queues[job.endpoint_id].append(job)
                self._dispatch()
            if requested > 0 and len(claimed) >= requested:
                continue  # more may be due right now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._signal.wait(), settings.worker_poll_interval)

    def _local_busy(self) -> dict[str, int]:
        """Deliveries this worker holds per endpoint (a snapshot for the claim,
        which runs in another thread)."""
        with self._held_lock:
            return dict(self._held_endpoints)

    def _held(self) -> set[str]:
        """The deliveries this worker holds, queued or in flight."""
        held = {job.delivery_id for queue in self._queues.values() for job in queue}
        held.update(job.delivery_id for job, _ in self._tasks.values())
        return held

    def _local_tenants(self) -> Counter[str]:
        """Deliveries this worker holds per tenant (a snapshot for the claim)."""
        with self._held_lock:
            return Counter(self._held_tenants)

    def _hold(self, jobs: Sequence[Job | Candidate]) -> None:
        with self._held_lock:
            self._count_held(jobs, 1)

    def _let_go(self, jobs: Sequence[Job | Candidate]) -> None:
        with self._held_lock:
            self._count_held(jobs, -1)

    def _count_held(self, jobs: Sequence[Job | Candidate], step: int) -> None:
        for job in jobs:
            self._held_endpoints[job.endpoint_id] += step
            if not self._held_endpoints[job.endpoint_id]:
                del self._held_endpoints[job.endpoint_id]
            self._held_tenants[job.tenant] += step
            if not self._held_tenants[job.tenant]:
                del self._held_tenants[job.tenant]
        self._held_count += step * len(jobs)

    def _cap(self, max_in_flight: int | None, ordering: str, failures: int) -> int:
        """How many deliveries of one endpoint may be in flight at once."""
        if ordering == "fifo" or is_probing(failures, self.rules):
            return 1
        return max_in_flight or self.settings.max_in_flight_per_endpoint

    def _claim(
        self, limit: int, local: dict[str, int], tenants: Counter[str]
    ) -> tuple[list[Job], dict[str, int], bool]:
        """Lease due deliveries, a few rounds of each endpoint's in-flight cap
        and of each tenant's share of the slots.

        Leasing a little ahead of the cap lets one claim feed many requests
        (a transaction per delivery would halve throughput), while bounding
        how long a leased delivery can wait in memory. A tenant's deliveries
        are not leased past what its share can send soon, so a tenant whose
        endpoints hang cannot fill the worker with work it cannot start.

        Also says whether the claim took every due delivery it could see (none
        left for a cap, a share, FIFO order or the batch size): then a slot
        coming free has nothing to claim, and only a send, a notification or
        the poll brings new work.
        """
        store, queue = self.ctx.store, self.ctx.queue
        now = self.ctx.clock()
        with store.transaction() as s:
            # An endpoint is served by one worker at a time: whoever holds
            # leases on it keeps it. In-flight caps, FIFO order and rate limits
            # then hold across all workers without a database write per request.
            others = queue.sending_counts(s, exclude_owner=self.owner, now=now)
            limits = queue.endpoint_limits(s, list(local))
            full = [
                e for e, n in local.items() if n >= self._prefetch(self._cap(*limits.get(e, _GONE)))
            ]
            tenant_budget = PREFETCH_ROUNDS * self._tenant_slots
            spent = [t for t, n in tenants.items() if n >= tenant_budget]
            rows = queue.due_candidates(
                s,
                now=now,
                limit=limit,
                exclude_endpoints=[*others, *full],
                exclude_tenants=spent,
            )
            drained = len(rows) < limit and not full and not spent
            if rows and queue.row_locks:
                # Two workers may both have seen an endpoint as free: lock the
                # endpoint rows (skipping ones another claim holds) and look
                # again, now that every earlier claim has committed.
                mine = queue.lock_endpoints(s, {r.endpoint_id for r in rows})
                mine -= queue.endpoints_leased_by_others(s, mine, owner=self.owner, now=now)
                rows = [r for r in rows if r.endpoint_id in mine]
            heads = queue.fifo_heads(s, list({r.endpoint_id for r in rows if r.ordering == "fifo"}))
            chosen, caps = self._choose(rows, local, tenants, heads, ahead=True)
            drained = drained and len(chosen) == len(rows)  # else some wait for a slot or the line
            return self._lease(s, [r.id for r in chosen], now), caps, drained

    def _choose(
        self,
        rows: list[Candidate],
        local: dict[str, int],
        tenants: Counter[str],
        heads: dict[str, str],
        *,
        ahead: bool,
    ) -> tuple[list[Candidate], dict[str, int]]:
        """The candidates this worker may lease on top of what it holds
        (``local`` per endpoint, ``tenants`` per tenant), in order, and the
        in-flight cap of their endpoints: within each endpoint's cap and each
        tenant's share of the slots, a few rounds of both when leasing
        ``ahead``, else only what can start now; for a FIFO endpoint, only its
        oldest unfinished delivery (``heads``)."""
        busy: defaultdict[str, int] = defaultdict(int, local)
        tenant_busy = Counter(tenants)
        tenant_budget = (PREFETCH_ROUNDS if ahead else 1) * self._tenant_slots
        chosen: list[Candidate] = []
        caps: dict[str, int] = {}
        for row in rows:
            cap = self._cap(row.max_in_flight, row.ordering, row.consecutive_failures)
            if (
                busy[row.endpoint_id] >= (self._prefetch(cap) if ahead else cap)
                or tenant_busy[row.tenant] >= tenant_budget
                or (row.ordering == "fifo" and heads.get(row.endpoint_id) != row.id)
            ):
                continue
            busy[row.endpoint_id] += 1
            tenant_busy[row.tenant] += 1
            chosen.append(row)
            caps[row.endpoint_id] = cap
        return chosen, caps

    def _lease(
        self, s: Session, delivery_ids: list[str], now: datetime, *, unserved_only: bool = False
    ) -> list[Job]:
        """Lease deliveries to this worker in ``s``: their jobs (see
        ``Queue.lease`` for ``unserved_only``).

        A short lease, renewed by the heartbeat for as long as this worker
        lives (however long the deliveries wait here or their requests take):
        a worker that dies stops holding its endpoints soon.
        """
        return self.ctx.queue.lease(
            s,
            delivery_ids,
            partial(live_secrets, self.ctx, now),
            self.ctx.secret_box.open,
            owner=self.owner,
            lease_expires_at=now + timedelta(seconds=self.settings.lease_seconds),
            now=now,
            unserved_only=unserved_only,
        )

    @staticmethod
    def _prefetch(cap: int) -> int:
        return 1 if cap == 1 else PREFETCH_ROUNDS * cap

    # -- hand-over from senders of this process --------------------------------------

    def take_over(self, s: Session, delivery_ids: Sequence[str]) -> list[Job]:
        """Lease to this worker, in the sender's transaction ``s``, those of
        the deliveries it just queued that the worker can start at once:
        their jobs. No claim is then needed to find them.

        Only while nothing older waits for a worker (the last claim left no
        due delivery behind), so a fresh event never overtakes a backlog; and
        only what a claim would lease and the worker could start now: free
        slots, the endpoint's cap, the tenant's share, FIFO order, and no
        other worker serving the endpoint. The rest stay queued for any
        worker. The reservation is made at once: the sender passes the jobs
        to :meth:`hand_over` once ``s`` commits, or to :meth:`give_back`.
        """
        if self._stopping.is_set() or not self._drained or not delivery_ids:
            return []
        if self._held_count >= self.settings.worker_concurrency:
            return []
        queue, now = self.ctx.queue, self.ctx.clock()
        rows = queue.due_among(s, delivery_ids, now=now)  # their endpoints locked on PostgreSQL
        fifo = list({r.endpoint_id for r in rows if r.ordering == "fifo"})
        heads = queue.fifo_heads(s, fifo)
        with self._held_lock:
            room = self.settings.worker_concurrency - self._held_count
            chosen, caps = self._choose(
                rows, dict(self._held_endpoints), Counter(self._held_tenants), heads, ahead=False
            )
            chosen = chosen[: max(room, 0)]
            self._count_held(chosen, 1)
        try:
            # Not those of an endpoint another worker serves, which stay queued.
            jobs = self._lease(s, [r.id for r in chosen], now, unserved_only=True)
        except BaseException:
            self._let_go(chosen)
            raise
        if len(jobs) < len(chosen):
            leased = {job.delivery_id for job in jobs}
            self._let_go([r for r in chosen if r.id not in leased])
        if len(jobs) < len(delivery_ids):
            self._drained = False  # the rest wait in the queue: claim before taking more
        # One dict update: atomic for the worker's thread, which reads it.
        self._caps.update({job.endpoint_id: caps[job.endpoint_id] for job in jobs})
        return jobs

    def hand_over(self, jobs: list[Job]) -> None:
        """Start the jobs of :meth:`take_over` once their transaction
        committed (from any thread). Should the worker have stopped
        meanwhile, they go back to the queue."""
        if not jobs:
            return
        loop = self._loop
        try:
            if loop is None:
                raise RuntimeError("the worker never ran")
            loop.call_soon_threadsafe(self._take, jobs)
        except RuntimeError:  # its loop has closed
            self._let_go(jobs)
            release_deliveries(self.ctx, [j.delivery_id for j in jobs], self.owner)

    def give_back(self, jobs: list[Job]) -> None:
        """Forget the jobs of :meth:`take_over` whose transaction rolled back."""
        self._let_go(jobs)

    def _take(self, jobs: list[Job]) -> None:
        if self._stopping.is_set():
            self._let_go(jobs)
            ids = [job.delivery_id for job in jobs]
            release = asyncio.create_task(self._db(release_deliveries, self.ctx, ids, self.owner))
            self._releases.add(release)
            release.add_done_callback(self._releases.discard)
            return
        for job in jobs:
            self._queues[job.endpoint_id].append(job)
        # At the next turn: a sender on this loop (the API) first answers
        # its callers, whose callbacks are scheduled behind this one.
        asyncio.get_running_loop().call_soon(self._dispatch)

    # -- sending -------------------------------------------------------------------

    def _dispatch(self) -> None:
        """Start queued deliveries while their endpoints and tenants have free slots."""
        limit = self.settings.worker_concurrency
        for endpoint_id in list(self._queues):
            queue = self._queues[endpoint_id]
            cap = self._caps.get(endpoint_id, 1)
            if self._failures.get(endpoint_id, 0) >= self.rules.probe_after_failures:
                cap = 1  # started failing since the claim: probe, do not hammer
            while (
                queue
                and len(self._in_flight[endpoint_id]) < cap
                and len(self._tasks) < limit
                and self._tenant_in_flight[queue[0].tenant] < self._tenant_slots
            ):
                self._start(queue.popleft())
            if not queue:
                del self._queues[endpoint_id]

    def _start(self, job: Job) -> None:
        used = self._in_flight[job.endpoint_id]
        index = next(i for i in range(len(used) + 1) if i not in used)
        used.add(index)
        self._tenant_in_flight[job.tenant] += 1
        slot = _Slot(job.endpoint_id, index)
        task = asyncio.create_task(self._send(job, slot))
        self._tasks[task] = (job, slot)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        job, slot = self._tasks.pop(task)
        self._let_go([job])
        self._tenant_in_flight[job.tenant] -= 1
        if not self._tenant_in_flight[job.tenant]:
            del self._tenant_in_flight[job.tenant]
        self._in_flight[slot.endpoint_id].discard(slot.index)
        if not self._in_flight[slot.endpoint_id]:
            del self._in_flight[slot.endpoint_id]
        self._dispatch()
        if not self._drained and len(self._queues.get(slot.endpoint_id, ())) < self._caps.get(
            slot.endpoint_id, 1
        ):
            self._signal.set()  # this endpoint's queue runs low: claim more
        if not task.cancelled() and task.exception() is not None:
            log.error("delivery task failed", exc_info=task.exception())

    async def _send(self, job: Job, slot: _Slot) -> None:
        try:
            if job.rate_limit_per_second:
                await self._rate_limit(job.endpoint_id, job.rate_limit_per_second)
            result = await deliver(
                self.ctx, self.transport, job, pool_key=f"{slot.endpoint_id}#{slot.index}"
            )
        except Exception as exc:
            # Every leased delivery ends in a recorded outcome; an unrecorded
            # one would stay `sending` and fail again after every lease.
            log.exception("delivery %s failed outside its attempt", job.delivery_id)
            result = failed_attempt(self.ctx, job, exc)
        if result.decision.action == "succeeded":
            self._failures.pop(job.endpoint_id, None)
        elif job.trigger != "test":
            self._failures[job.endpoint_id] = self._failures.get(job.endpoint_id, 0) + 1
        self._results.append(result)
        self._results_ready.set()

    async def _rate_limit(self, endpoint_id: str, per_second: float) -> None:
        """Space requests to an endpoint by ``1 / per_second``, measured on the
        actual start times: after a stall of the event loop, waiting requests
        do not all go at once to catch up."""
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            ready_at = self._rate_next.get(endpoint_id, now)
            if now >= ready_at:
                self._rate_next[endpoint_id] = now + 1.0 / per_second
                return
            await asyncio.sleep(ready_at - now)

    # -- recording -----------------------------------------------------------------

    async def _recorder(self) -> None:
        while True:
            await self._results_ready.wait()
            # A short pause lets concurrent results share one transaction; the
            # delay is invisible to receivers (the request has been made). A
            # one-at-a-time endpoint (FIFO, probing) waits for the record
            # before its next delivery may be claimed, so it goes at once.
            urgent = any(self._caps.get(r.job.endpoint_id) == 1 for r in self._results)
            if not urgent and len(self._results) < self.settings.worker_batch_size:
                await asyncio.sleep(0.025)
            await self._flush()

    async def _flush(self) -> None:
        self._results_ready.clear()
        if not self._results:
            return
        batch, self._results = self._results, []
        try:
            with batch_span(self.ctx.tracing, "webhooks.record", {"webhooks.results": len(batch)}):
                await self._db(self.outcomes.record, batch, self.owner)
        except Exception:
            log.exception("recording %d results failed; recording them one by one", len(batch))
            for result in batch:
                await self._record_alone(result)
        self.delivered += len(batch)
        if any(self._caps.get(r.job.endpoint_id) == 1 for r in batch):
            # The next one in line can be claimed now (also a retry due at
            # once, which no claim could have seen before this record).
            self._signal.set()

    async def _record_alone(self, result: DeliveryResult) -> None:
        """Record one result whose batch failed. Should the result itself be
        what the database refuses, its attempt is recorded as an internal
        error (retried on the schedule); failing that, the delivery is given
        back to the queue: a live worker's heartbeat would otherwise keep
        renewing the lease of a delivery it no longer tracks."""
        try:
            await self._db(self.outcomes.record, [result], self.owner)
            return
        except Exception as exc:
            log.exception("recording the attempt of %s failed", result.job.delivery_id)
            fallback = failed_attempt(self.ctx, result.job, exc)
        try:
            await self._db(self.outcomes.record, [fallback], self.owner)
        except Exception:
            log.exception("giving %s back to the queue unrecorded", result.job.delivery_id)
            await self._db(release_deliveries, self.ctx, [result.job.delivery_id], self.owner)

    # -- shutdown ------------------------------------------------------------------

    async def _shutdown(self, recorder: asyncio.Task[None]) -> None:
        tasks = list(self._tasks)
        if tasks:
            await asyncio.wait(tasks, timeout=self.settings.shutdown_grace_seconds)
        unfinished = [(t, job) for t, (job, _) in list(self._tasks.items()) if not t.done()]
        for task, _ in unfinished:
            task.cancel()
        if unfinished:
            await asyncio.gather(*(t for t, _ in unfinished), return_exceptions=True)
        # Leases are renewed until the last request ended; what is left is
        # released below or recorded.
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
            await asyncio.gather(self._heartbeat_task, return_exceptions=True)
        recorder.cancel()
        await asyncio.gather(recorder, return_exceptions=True)
        await self._flush()
        released = [job.delivery_id for _, job in unfinished]
        released += [job.delivery_id for queue in self._queues.values() for job in queue]
        self._queues.clear()
        if released:
            await self._db(release_deliveries, self.ctx, released, self.owner)
        if self._releases:  # jobs handed over while stopping
            await asyncio.gather(*self._releases, return_exceptions=True)
        await self.transport.aclose()
        self._db_thread.shutdown(wait=False)

    # -- database access -----------------------------------------------------------

    async def _db(self, func: Callable[..., T], *args: Any) -> T:
        """Run blocking database work in a thread, retrying transient errors
        (a restarted or unreachable database) until it answers again."""
        async for attempt in AsyncRetrying(
            retry=retry_if_exception(_transient),
            wait=wait_exponential(multiplier=0.1, max=5),
            stop=stop_never,
            before_sleep=before_sleep_log(log, logging.WARNING),
            reraise=True,
        ):
            with attempt:
                if self._inline_db:
                    return func(*args)
                loop = asyncio.get_running_loop()
                return await loop.run_in_executor(self._db_thread, func, *args)
        raise AssertionError("unreachable")


def release_deliveries(ctx: Context, delivery_ids: Sequence[str], owner: str) -> int:
    """Give leased, unattempted deliveries back to the queue."""
    with ctx.store.transaction() as s:
        return ctx.queue.release(s, delivery_ids, owner, ctx.clock())


async def run_worker(ctx: Context, outcomes: Outcomes, *, stop: asyncio.Event | None) -> None:
    """A worker and its maintenance jobs, until cancelled or until ``stop`` is set."""
    worker = Worker(ctx, outcomes)
    maintenance = Maintenance(ctx, outcomes)
    maintenance.start()
    stopper = asyncio.create_task(stop.wait()) if stop is not None else None
    if stopper is not None:
        stopper.add_done_callback(lambda _t: worker.stop())
    try:
        await worker.run()
    finally:
        maintenance.shutdown()
        if stopper is not None:
            stopper.cancel()


class BackgroundWorker:
    """A worker running in its own thread and event loop, for synchronous apps."""

    def __init__(self, run: Callable[[asyncio.Event], Awaitable[None]]) -> None:
        """``run(stop)`` delivers until the event ``stop`` is set."""
        self._run = run
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name="webhooks-worker", daemon=True)

    def start(self) -> BackgroundWorker:
        """Start the thread; returns once the worker is running."""
        if not self._thread.is_alive():
            self._thread.start()
            self._ready.wait()
        return self

    def _main(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self._ready.set()
            await self._run(self._stop)

        try:
            asyncio.run(main())
        finally:
            self._ready.set()

    def stop(self, timeout: float | None = None) -> None:
        """Stop gracefully and wait for the thread to end."""
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)

    def __enter__(self) -> BackgroundWorker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
