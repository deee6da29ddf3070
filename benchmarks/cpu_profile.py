"""Where a delivery's CPU time goes: signing, JSON, HTTP client, store,
event loop and bookkeeping, per delivery.

Two runs of the same work (N events to one endpoint, sent with ``send_many``,
then delivered by a worker in this process to the fast local receiver):

1. unprofiled: the CPU time this process spends per delivery (the figure);
2. under ``cProfile`` timing each thread's own CPU time (waiting costs
   nothing), every thread of the worker included: how that time splits by
   the code it ran, each function's own time counted once in one category
   (a built-in's, or a general helper's, in its callers' categories). The
   profiler slows calls unevenly, so the split is given as shares, applied to
   the unprofiled figure.

On PostgreSQL (``--database postgresql://…``, a server on this machine) it
also measures the database's own CPU time per delivery, summed over the
server's processes from ``/proc`` (so run it on an otherwise idle server), and
projects how many deliveries per second one PostgreSQL core carries when the
workers run on other machines.

Run: ``python benchmarks/cpu_profile.py [--events 5000] [--database URL]``
(``WEBHOOKS_TRANSPORT=aiohttp`` for the other transport).
Everything stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path

from sqlalchemy import create_engine, text
from throughput import LOCAL, ReceiverProcess, drain, fill

from producer import Producer
from producer.service import settle_heap

CATEGORIES: list[tuple[str, tuple[str, ...]]] = [
    # (category, fragments of a function's file or built-in name), first match wins
    ("signing", ("producer/signing.py", "hmac.py", "_hashlib", "hashlib", "base64", "nacl")),
    ("JSON", ("json/", "_json", "producer/payloads.py")),
    (
        "HTTP client",
        (
            "httpx/",
            "httpcore/",
            "h11/",
            "aiohttp/",
            "yarl/",
            "multidict/",
            "propcache/",
            "aiohappyeyeballs/",
            "producer/transport_aiohttp.py",
            "anyio/",
            "sniffio",
            "ssl",
            "_socket",
            "socket.py",
            "producer/transport.py",
            "producer/destinations.py",
            "ipaddress.py",
        ),
    ),
    (
        "store",
        (
            "sqlalchemy/",
            "sqlite3",
            "psycopg",
            "producer/store.py",
            "producer/queue.py",
            "producer/models.py",
            "producer/db.py",
        ),
    ),
    ("event loop", ("asyncio/", "selectors.py", "select.epoll", "concurrent/", "threading.py")),
    ("bookkeeping", ("producer/",)),
]


GENERIC_FILES = ("contextlib.py", "typing.py", "functools.py", "abc.py", "enum.py", "weakref")
"""General-purpose library code: its time belongs to whoever called it."""
SPECIFIC_BUILTINS = ("sqlite3", "_hashlib", "_json", "_socket", "_ssl", "select.epoll")
"""Built-ins that belong to a category of their own; other built-ins' time goes to their callers."""

Function = tuple[str, int, str]


def category(file: str, name: str) -> str:
    where = f"{file}:{name}"
    for label, fragments in CATEGORIES:
        if any(fragment in where for fragment in fragments):
            return label
    return "other"


def _generic(function: Function) -> bool:
    file, _, name = function
    if file == "~":
        return not any(fragment in name for fragment in SPECIFIC_BUILTINS)
    return any(fragment in file for fragment in GENERIC_FILES)


def attribute(stats: dict[Function, tuple]) -> dict[str, float]:
    """Own time per category; a built-in's or generic helper's own time goes
    to its callers' categories, in proportion to the time each call took."""
    memo: dict[Function, dict[str, float]] = {}

    def shares(function: Function, seen: frozenset[Function]) -> dict[str, float]:
        if function in memo:
            return memo[function]
        if not _generic(function) or function in seen or function not in stats:
            result = {category(function[0], function[2]): 1.0}
        else:
            callers = stats[function][4]
            total = sum(row[2] for row in callers.values()) or 1.0
            result = defaultdict(float)
            for caller, row in callers.items():
                for label, share in shares(caller, seen | {function}).items():
                    result[label] += share * row[2] / total
            if not result:
                result = {"other": 1.0}
        memo[function] = result
        return result

    seconds: dict[str, float] = defaultdict(float)
    for function, row in stats.items():
        for label, share in shares(function, frozenset()).items():
            seconds[label] += share * row[2]  # own time
    return seconds


class ThreadProfiles:
    """cProfile in this thread and in every thread started while enabled
    (the worker's database thread, heartbeats)."""

    def __init__(self) -> None:
        self.profiles: list[cProfile.Profile] = []

    def __enter__(self) -> ThreadProfiles:
        def start_in_thread(*_: object) -> None:
            sys.setprofile(None)
            profile = cProfile.Profile(time.thread_time)
            self.profiles.append(profile)
            profile.enable()

        threading.setprofile(start_in_thread)
        self._main = cProfile.Profile(time.thread_time)
        self.profiles.append(self._main)
        self._main.enable()
        return self

    def __exit__(self, *_: object) -> None:
        self._main.disable()
        threading.setprofile(None)  # type: ignore[arg-type]

    def split(self) -> dict[str, float]:
        """Seconds of own time per category, over every thread."""
        seconds: dict[str, float] = defaultdict(float)
        for profile in self.profiles:
            stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
            for label, value in attribute(stats).items():
                seconds[label] += value
        return seconds


def postgres_cpu() -> float:
    """CPU seconds the PostgreSQL server's processes have used so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() not in ("postgres", "postmaster"):
                continue
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue  # gone meanwhile
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def fresh_database(database: str | None, label: str) -> tuple[str, object]:
    """A new database URL and what drops it (a PostgreSQL database, or an SQLite file)."""
    if database is None or database.startswith("sqlite"):
        folder = tempfile.mkdtemp(prefix="webhooks-bench-profile-")
        return f"sqlite:///{folder}/{label}.db", None
    admin = create_engine(database, isolation_level="AUTOCOMMIT")
    name = f"webhooks_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    return admin.url.set(database=name).render_as_string(hide_password=False), (admin, name)


def drop(handle: object) -> None:
    if handle is None:
        return
    admin, name = handle  # type: ignore[misc]
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def run(
    url: str, database: str | None, events: int, profiled: bool
) -> tuple[float, float, float, dict[str, float]]:
    """CPU µs of this process per delivery, deliveries/s, the database's CPU µs
    per delivery (PostgreSQL) and the profile split (when ``profiled``)."""
    db_url, handle = fresh_database(database, "profiled" if profiled else "plain")
    producer = Producer(db_url, auto_migrate=True, allowed_cidrs=LOCAL)
    try:
        producer.create_endpoint(url)
        settle_heap()  # as ``webhooks worker`` does once it is ready
        fill(producer, events)
        server = postgres_cpu() if handle is not None else 0.0
        cpu = time.process_time()
        profiles = ThreadProfiles()
        if profiled:
            with profiles:
                rate = asyncio.run(drain(producer, events))
        else:
            rate = asyncio.run(drain(producer, events))
        used = time.process_time() - cpu
        server_used = postgres_cpu() - server if handle is not None else 0.0
    finally:
        producer.close()
        drop(handle)
    per = 1e6 / events
    return used * per, rate, server_used * per, profiles.split() if profiled else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5_000)
    parser.add_argument("--database", help="postgresql://… (a server on this machine)")
    args = parser.parse_args()

    receiver = ReceiverProcess()
    try:
        run(receiver.url, args.database, min(args.events, 500), False)  # warm-up
        cpu, rate, server, _ = run(receiver.url, args.database, args.events, False)
        _, _, _, split = run(receiver.url, args.database, args.events, True)
    finally:
        receiver.close()

    kind = "SQLite" if not args.database or args.database.startswith("sqlite") else "PostgreSQL"
    transport = os.environ.get("WEBHOOKS_TRANSPORT") or "httpx"
    print(f"{args.events} events, 1 endpoint, {kind}, {transport}: {rate:.0f} deliveries/s")
    print(f"CPU per delivery in the worker's process: {cpu:.0f} µs, of which (profile shares):")
    total = sum(split.values()) or 1.0
    for label in [c for c, _ in CATEGORIES] + ["other"]:
        share = split.get(label, 0.0) / total
        print(f"  {label:<12} {share:6.1%} {share * cpu:8.0f} µs")
    if kind == "PostgreSQL":
        print(f"PostgreSQL's own CPU per delivery: {server:.0f} µs")
        if server > 0:
            print(
                f"  one PostgreSQL core carries about {1e6 / server:,.0f} deliveries/s"
                " with the workers on other machines"
            )


if __name__ == "__main__":
    main()
