"""Routing cost per send, and replay of a large window.

(a) Sends per second in a tenant of 1,000 endpoints, each meant for one
    store, routed four ways: by event type pattern only (the routing query
    looks the event type's candidate patterns up in the pattern index), by
    channel (the routing query narrows to the subscribers), by payload filter
    (every endpoint's filter is evaluated, each parsed once), and by channel
    and filter (10 regions of 100 stores). Each send reaches one endpoint.
(b) Replay of a window of 100,000 messages to an endpoint that had none of
    them: time, and the peak RSS of the process before and after; then the
    same window to another endpoint as a background job.

Run: ``python benchmarks/routing.py [--sends 500] [--messages 100000]
[--database sqlite|postgresql] [--database-url postgresql+psycopg://...]``.
SQLite runs in a temporary directory; ``--database postgresql`` creates a
database on ``--admin-url`` (local, user postgres, by default) and drops it
at the end. ``--messages 0`` skips (b). Nothing is delivered: no worker runs.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, text

from producer import Producer
from producer.jobs import JobRunner

LOCAL = ["127.0.0.0/8"]
URL = "http://127.0.0.1:9/hooks"
ENDPOINTS = 1000
ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def fresh(url: str) -> Producer:
    producer = Producer(url, auto_migrate=True, allowed_cidrs=LOCAL)
    if producer.engine.dialect.name == "postgresql":
        with producer.engine.begin() as conn:
            conn.execute(text("TRUNCATE webhook_endpoints, webhook_messages CASCADE"))
    return producer


def routing(url: Callable[[str], str], sends: int) -> None:
    cases = {
        "patterns only": (
            lambda i: {"event_types": [f"store{i}.*"]},
            lambda i: (f"store{i}.order", {"store": i}, None),
        ),
        "channels": (
            lambda i: {"channels": [f"store-{i}"]},
            lambda i: ("order.placed", {"store": i}, [f"store-{i}"]),
        ),
        "filters": (
            lambda i: {"filter": {"store": i}},
            lambda i: ("order.placed", {"store": i}, None),
        ),
        "channels and filters": (
            lambda i: {"channels": [f"region-{i % 10}"], "filter": {"store": i}},
            lambda i: ("order.placed", {"store": i}, [f"region-{i % 10}"]),
        ),
    }
    print(f"routing: {ENDPOINTS} endpoints in one tenant, {sends} sends each reaching one")
    for name, (endpoint, message) in cases.items():
        producer = fresh(url(name))
        for i in range(ENDPOINTS):
            producer.create_endpoint(URL, tenant="acme", **endpoint(i))
        start = time.perf_counter()
        for n in range(sends):
            event_type, data, channels = message(n % ENDPOINTS)
            sent = producer.send(event_type, data, tenant="acme", channels=channels)
            assert sent.deliveries == 1, (name, sent)
        elapsed = time.perf_counter() - start
        print(f"  {name:24} {sends / elapsed:8.0f} sends/s  ({elapsed / sends * 1000:.2f} ms each)")
        producer.close()


def replay(url: str, messages: int) -> None:
    producer = fresh(url)
    since = datetime.now(UTC)
    batch = [("order.placed", {"store": 7, "n": n}) for n in range(1000)]
    for _ in range(messages // 1000):
        producer.send_many(batch, tenant="acme")
    endpoint = producer.create_endpoint(URL, tenant="acme", channels=[], filter={"store": 7})
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    result = producer.replay_endpoint(endpoint.id, since=since)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    again = time.perf_counter()
    second = producer.replay_endpoint(endpoint.id, since=since)
    rerun = time.perf_counter() - again
    print(
        f"replay: {result.created} deliveries created from {messages} messages in "
        f"{elapsed:.1f} s ({messages / elapsed:.0f} messages/s); peak RSS {before / 1024:.0f} MiB "
        f"before, {after / 1024:.0f} MiB after; a second run created {second.created} "
        f"in {rerun:.1f} s"
    )
    job_replay(producer, since, messages)
    producer.close()


def job_replay(producer: Producer, since: datetime, messages: int) -> None:
    """The same window replayed to a second endpoint as a background job,
    run by a worker's job runner: each batch also saves the job's cursor."""
    endpoint = producer.create_endpoint(URL, tenant="acme", channels=[], filter={"store": 7})
    job = producer.start_replay(endpoint.id, since=since)
    start = time.perf_counter()
    JobRunner(producer.context).run_due()
    elapsed = time.perf_counter() - start
    done = producer.get_job(job.id)
    print(
        f"replay as a job: {done.status}, {done.created} deliveries created from "
        f"{done.scanned} messages in {elapsed:.1f} s ({messages / elapsed:.0f} messages/s)"
    )


@contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """The URL of a fresh PostgreSQL database, dropped afterwards."""
    name = f"webhooks_routing_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sends", type=int, default=500)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--admin-url", default=ADMIN_URL, help="Where --database makes one.")
    parser.add_argument("--database-url", default=None, help="An existing database to use.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.database_url is None and args.database == "postgresql":
            with postgres_database(args.admin_url) as made:
                run(lambda _name: made, args)
            return

        def url(name: str) -> str:
            if args.database_url:
                return str(args.database_url)
            return f"sqlite:///{Path(tmp) / name.replace(' ', '_')}.db"

        run(url, args)


def run(url: Callable[[str], str], args: argparse.Namespace) -> None:
    print(f"database: {url('probe').split(':')[0]}")
    routing(url, args.sends)
    if args.messages:
        replay(url("replay"), args.messages)


if __name__ == "__main__":
    main()
