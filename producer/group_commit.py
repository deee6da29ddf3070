"""Group commit: the items of concurrent callers written in one transaction.

A caller of :meth:`GroupCommit.submit` joins a queue. The caller at its head
leads: it takes every item queued so far (up to ``max_batch``), runs them
together, hands each follower its own outcome, and leaves; the next caller
in the queue then leads the next batch. Nobody is answered before the run
that holds its item has returned, so when ``run`` commits, every answer
comes after the commit that made it durable.

A lone caller leads a batch of one at once, on its own thread: no other
thread is involved and nothing waits, so sends one at a time cost what they
cost before. Batches form only when callers overlap, which is exactly when a
shared transaction saves work.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["GroupCommit", "LoopGroupCommit", "Run"]

T = TypeVar("T")
R = TypeVar("R")

Run = Callable[[list[T]], Sequence[R | BaseException]]
"""Runs a batch: one outcome per item, its result or the exception its caller raises."""


class _Ticket(Generic[T, R]):
    __slots__ = ("done", "item", "outcome")

    def __init__(self, item: T) -> None:
        self.item = item
        self.done = False
        self.outcome: R | BaseException | None = None


class GroupCommit(Generic[T, R]):
    """Runs concurrent callers' items in batches, one batch at a time.

    ``run`` gets the items of a batch in arrival order and returns one
    outcome per item, in the same order: a result, or an exception that only
    that item's caller raises. If ``run`` itself raises, every caller of the
    batch raises that exception (nothing of the batch was written). All
    callers of one group pass the same ``run``.
    """

    def __init__(self, max_batch: int = 64) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.max_batch = max_batch
        self._changed = threading.Condition()
        self._queue: deque[_Ticket[T, R]] = deque()

    def submit(self, item: T, run: Run[T, R]) -> R:
        """``item``'s result, once the batch holding it has run."""
        ticket: _Ticket[T, R] = _Ticket(item)
        batch: list[_Ticket[T, R]] = []
        with self._changed:
            self._queue.append(ticket)
            while not ticket.done and self._queue[0] is not ticket:
                self._changed.wait()
            if not ticket.done:  # at the head: this caller leads what is queued
                batch = [self._queue[i] for i in range(min(len(self._queue), self.max_batch))]
        if batch:
            self._lead(batch, run)
        return _unwrap(ticket)

    def _lead(self, batch: list[_Ticket[T, R]], run: Run[T, R]) -> None:
        try:
            outcomes: Sequence[R | BaseException] = run([t.item for t in batch])
            if len(outcomes) != len(batch):
                raise RuntimeError(f"run gave {len(outcomes)} outcomes for {len(batch)} items")
        except BaseException as exc:  # every caller of the batch learns of it
            outcomes = [exc] * len(batch)
        with self._changed:
            for ticket, outcome in zip(batch, outcomes, strict=True):
                ticket.outcome = outcome
                ticket.done = True
                self._queue.popleft()
            self._changed.notify_all()


def _unwrap(ticket: _Ticket[T, R]) -> R:
    outcome = ticket.outcome
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome  # type: ignore[return-value]


class LoopGroupCommit(Generic[T, R]):
    """Group commit for the coroutines of an event loop, run on the loop.

    Every caller that reaches :meth:`submit` in the same turn of the loop
    joins one batch, which a callback scheduled behind them runs in place:
    no thread, no trip back to the loop. Meant for a local database (SQLite),
    whose writes take about a millisecond: less than handing them to a thread
    while the loop is busy. The outcomes are as for :class:`GroupCommit`.
    """

    def __init__(self, max_batch: int = 64) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.max_batch = max_batch
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._scheduled = False

    async def submit(self, item: T, run: Run[T, R]) -> R:
        """``item``'s result, once the batch holding it has run."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._run, run)
        return await future

    def _run(self, run: Run[T, R]) -> None:
        batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
        if self._pending:  # the rest go in the next turn, behind whoever is ready
            asyncio.get_running_loop().call_soon(self._run, run)
        else:
            self._scheduled = False
        try:
            outcomes: Sequence[R | BaseException] = run([item for item, _ in batch])
            if len(outcomes) != len(batch):
                raise RuntimeError(f"run gave {len(outcomes)} outcomes for {len(batch)} items")
        except Exception as exc:  # every caller of the batch learns of it
            outcomes = [exc] * len(batch)
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if future.done():  # its caller was cancelled; the item was still written
                continue
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
