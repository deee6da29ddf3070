"""Blocking calls from async routes: where the store's short reads run."""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

from starlette.concurrency import run_in_threadpool

from producer.producer import Producer

__all__ = ["quick_read"]

P = ParamSpec("P")
T = TypeVar("T")


async def quick_read(
    producer: Producer, read: Callable[P, T], *args: P.args, **kwargs: P.kwargs
) -> T:
    """Run ``read``, a short read of the store, for an async route.

    On a local database (SQLite) it runs in place: a read there is a WAL
    snapshot of a file that never waits for the writer, and it takes less
    time than the trip to a worker thread and back (which, with the worker
    busy, also queues for the GIL). On a database across the network it runs
    in a thread, so the event loop never waits for a round trip.
    """
    if producer.local_database:
        return read(*args, **kwargs)
    return await run_in_threadpool(read, *args, **kwargs)
