"""Routing cost per send, and replay of a large window.

(a) Sends per second in a tenant of 1,000 endpoints, each meant for one
    store, routed four ways: by event type pattern only (how routing worked
    before channels and filters: every endpoint row is read and matched), by
    channel (the routing query narrows to the subscribers), by payload filter
    (every endpoint's filter is evaluated), and by channel and filter
    (10 regions of 100 stores). Each send reaches one endpoint.
(b) Replay of a window of 100,000 messages to an endpoint that had none of
    them: time, and the peak RSS of the process before and after.

Run: ``python benchmarks/routing.py [--sends 500] [--messages 100000]
[--database-url postgresql+psycopg://...]`` (SQLite in a temporary
directory by default). Nothing is delivered: no worker runs.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

from producer import Producer

LOCAL = ["127.0.0.0/8"]
URL = "http://127.0.0.1:9/hooks"
ENDPOINTS = 1000


def fresh(url: str) -> Producer:
    producer = Producer(url, auto_migrate=True, allowed_cidrs=LOCAL)
    if producer.engine.dialect.name == "postgresql":
        with producer.engine.begin() as conn:
            conn.execute(text("TRUNCATE webhook_endpoints, webhook_messages CASCADE"))
    return producer


def routing(url: str, sends: int) -> None:
    cases = {
        "patterns only (before)": (
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
    producer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sends", type=int, default=500)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--database-url", default=None, help="PostgreSQL; SQLite by default.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:

        def url(name: str) -> str:
            if args.database_url:
                return args.database_url
            return f"sqlite:///{Path(tmp) / name.replace(' ', '_')}.db"

        routing(url, args.sends)
        replay(url("replay"), args.messages)


if __name__ == "__main__":
    main()
