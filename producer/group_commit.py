"""Group commit: the writes of concurrent callers share one transaction.

SQLite has one writer. When many threads send at once (API requests, a
host's request handlers), each transaction of its own queues for the write
lock, and much of what a send costs is taking the lock, beginning and
committing. Here the first caller to arrive becomes the *leader*: it takes
every call waiting at that moment, its own included, runs each in a
savepoint of one transaction, commits, and hands each caller its own result
or error. Callers that arrive meanwhile wait for the next leader, one of
them. A lone caller leads at once and pays nothing extra.

Each caller is answered only after the commit that holds its writes, so a
returned send is as durable as with a transaction of its own; a call that
raises rolls back its own savepoint, and the others commit. Each call runs in
its caller's context variables (the current span of a trace, among others).
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Generic, TypeVar

from sqlalchemy.orm import Session

__all__ = ["MAX_GROUP", "GroupCommit", "InterruptedGroup"]

T = TypeVar("T")

MAX_GROUP = 64
"""Calls per transaction at most: bounds how long one transaction holds the lock."""


class InterruptedGroup(RuntimeError):
    """The transaction holding this call was interrupted before it committed."""


class _Call(Generic[T]):
    __slots__ = ("context", "done", "error", "result", "work")

    def __init__(self, work: Callable[[Session], T]) -> None:
        self.work = work
        self.context = contextvars.copy_context()
        self.done = False
        self.result: T | None = None
        self.error: BaseException | None = None


class GroupCommit:
    """Runs the ``work(session)`` calls of many threads in shared transactions."""

    def __init__(
        self,
        transaction: Callable[[], AbstractContextManager[Session]],
        *,
        after_commit: Callable[[], None] | None = None,
        max_group: int = MAX_GROUP,
    ) -> None:
        """``transaction()`` opens one transaction; ``after_commit`` runs
        once per committed group (to wake the workers, say)."""
        self._transaction = transaction
        self._after_commit = after_commit
        self._max_group = max_group
        self._changed = threading.Condition()
        self._waiting: list[_Call[Any]] = []
        self._leading = False
        self.groups = 0
        """Transactions committed so far."""

    @property
    def waiting(self) -> int:
        """Calls waiting for a transaction (the one being committed excluded)."""
        with self._changed:
            return len(self._waiting)

    def run(self, work: Callable[[Session], T]) -> T:
        """``work(session)`` in a transaction shared with concurrent calls:
        its result once committed, or what it raised."""
        call: _Call[T] = _Call(work)
        with self._changed:
            self._waiting.append(call)
            while self._leading and not call.done:
                self._changed.wait()
            lead = not call.done
            if lead:
                self._leading = True
        if lead:
            self._lead()
        if call.error is not None:
            raise call.error
        return call.result  # type: ignore[return-value]

    def _lead(self) -> None:
        with self._changed:
            group = self._waiting[: self._max_group]
            del self._waiting[: self._max_group]
        try:
            self._commit(group)
        finally:
            with self._changed:
                for call in group:
                    call.done = True
                self._leading = False
                self._changed.notify_all()

    def _commit(self, group: list[_Call[Any]]) -> None:
        try:
            with self._transaction() as s:
                for call in group:
                    _run_in_savepoint(s, call)
        except Exception as error:
            # The transaction itself failed: nothing of the group was kept.
            for call in group:
                if call.error is None:
                    call.error = error
            return
        except BaseException:
            for call in group:
                if call.error is None:
                    call.error = InterruptedGroup("interrupted before it committed")
            raise
        self.groups += 1
        if self._after_commit is not None:
            self._after_commit()


def _run_in_savepoint(s: Session, call: _Call[Any]) -> None:
    savepoint = s.begin_nested()
    try:
        call.result = call.context.run(call.work, s)
        savepoint.commit()
    except Exception as error:
        call.error = error
        call.result = None
        savepoint.rollback()
