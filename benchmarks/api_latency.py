"""API latency with the worker running, and event-to-receipt latency.

Starts ``webhooks serve`` (the API and a worker in one process, as a user
runs it) on SQLite or PostgreSQL, an endpoint pointing at the fast local
receiver, and a background sender posting ``--rate`` events/s through the
API so the worker is busy all along. Then, over keep-alive connections, one
request at a time:

- ``GET /v1/health`` and ``GET /v1/endpoints``: reads, which must not wait
  for the worker's write transactions;
- ``POST /v1/messages``: the time to an accepted (committed) event, and the
  time from the start of that request to the receiver reading the delivery
  (the receiver notes when each ``webhook-id`` arrives).

Prints p50 and p99 in milliseconds; then the ingestion rate: events/s
``POST /v1/messages`` accepts from each number of concurrent keep-alive
clients in ``--clients``. Run: ``python benchmarks/api_latency.py
[--requests 400] [--rate 50] [--clients 1,32] [--seconds 10] [--database URL]``.
Everything stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
from throughput import LOCAL, ReceiverProcess, free_port

from producer import Producer


@contextmanager
def service(database_url: str) -> Iterator[tuple[str, str]]:
    """``webhooks serve`` on a free port: its base URL and an admin key."""
    producer = Producer(database_url, auto_migrate=True, allowed_cidrs=LOCAL)
    _, key = producer.create_api_key(name="bench")
    producer.close()
    port = free_port()
    env = {
        **os.environ,
        "WEBHOOKS_DATABASE_URL": database_url,
        "WEBHOOKS_ALLOWED_CIDRS": ",".join(LOCAL),
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "producer.cli",
            "serve",
            "--port",
            str(port),
            "--log-level",
            "error",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        else:
            raise RuntimeError("the service did not start")
        yield base, key
    finally:
        proc.terminate()
        proc.wait(30)


def timed(call: Callable[[], httpx.Response], count: int) -> list[float]:
    """Milliseconds of ``count`` calls, one after the other."""
    durations = []
    for _ in range(count):
        started = time.perf_counter()
        response = call()
        durations.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return durations


def percentiles(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered), ordered[max(int(len(ordered) * 0.99) - 1, 0)]


def background_sender(base: str, key: str, rate: float, stop: threading.Event) -> None:
    """POST ``rate`` events/s of another type until ``stop``: the worker's load."""
    with httpx.Client(base_url=base, headers={"authorization": f"Bearer {key}"}) as client:
        while not stop.is_set():
            client.post("/v1/messages", json={"event_type": "load.tick", "data": {}})
            stop.wait(1 / rate)


def ingestion(base: str, key: str, clients: int, seconds: float) -> float:
    """Events/s accepted by ``POST /v1/messages`` from ``clients`` concurrent
    keep-alive clients (one thread each) over ``seconds``."""
    counts = [0] * clients
    stop = threading.Event()

    def post(index: int) -> None:
        headers = {"authorization": f"Bearer {key}"}
        with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
            while not stop.is_set():
                body = {"event_type": "invoice.paid", "data": {"client": index}}
                client.post("/v1/messages", json=body).raise_for_status()
                counts[index] += 1

    threads = [threading.Thread(target=post, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.perf_counter() - started)


def measure(
    receiver: ReceiverProcess,
    database: str,
    *,
    requests: int,
    rate: float,
    clients: list[int],
    seconds: float,
) -> tuple[dict[str, list[float]], dict[int, float]]:
    """Latencies (ms) by request, and events/s accepted by each number of
    concurrent clients, from one ``webhooks serve`` on ``database``."""
    with service(database) as (base, key):
        headers = {"authorization": f"Bearer {key}"}
        with httpx.Client(base_url=base, headers=headers) as client:
            client.post("/v1/endpoints", json={"url": receiver.url}).raise_for_status()
            stop = threading.Event()
            load = threading.Thread(
                target=background_sender, args=(base, key, rate, stop), daemon=True
            )
            load.start()
            time.sleep(1)
            results = {
                "GET /v1/health": timed(lambda: client.get("/v1/health"), requests),
                "GET /v1/endpoints": timed(lambda: client.get("/v1/endpoints"), requests),
            }
            receiver.reset()
            started: dict[str, float] = {}
            posts = []
            for i in range(requests):
                at_wall, at = time.time(), time.perf_counter()
                response = client.post(
                    "/v1/messages", json={"event_type": "invoice.paid", "data": {"i": i}}
                )
                posts.append((time.perf_counter() - at) * 1000)
                response.raise_for_status()
                started[response.json()["id"]] = at_wall
                time.sleep(1 / rate)
            time.sleep(2)
            stop.set()
            load.join()
        arrivals = receiver.stats()["arrivals"]
        accepted = {n: ingestion(base, key, n, seconds) for n in clients}
    receipts = [(arrivals[m] - t) * 1000 for m, t in started.items() if m in arrivals]
    if len(receipts) < len(started):
        print(f"warning: {len(started) - len(receipts)} events had not arrived")
    results["POST /v1/messages"] = posts
    results["POST to receipt"] = receipts
    return results, accepted


def report(
    database: str, rate: float, results: dict[str, list[float]], accepted: dict[int, float]
) -> None:
    kind = "SQLite" if database.startswith("sqlite") else "PostgreSQL"
    print(f"{kind}, worker running, {rate:.0f} background events/s, ms")
    print(f"{'':<20} {'p50':>8} {'p99':>8}")
    for label, values in results.items():
        p50, p99 = percentiles(values)
        print(f"{label:<20} {p50:8.1f} {p99:8.1f}")
    for clients, rate_ in accepted.items():
        print(f"ingestion: {rate_:.0f} events/s accepted from {clients} concurrent clients")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--rate", type=float, default=50.0, help="background events/s")
    parser.add_argument("--database", help="a database URL (default: a new SQLite file)")
    parser.add_argument(
        "--clients", default="1,32", help="concurrent ingestion clients, comma-separated"
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="each ingestion run's length")
    args = parser.parse_args()

    receiver = ReceiverProcess()
    database = args.database or f"sqlite:///{tempfile.mkdtemp(prefix='webhooks-bench-api-')}/w.db"
    try:
        results, accepted = measure(
            receiver,
            database,
            requests=args.requests,
            rate=args.rate,
            clients=[int(n) for n in args.clients.split(",")],
            seconds=args.seconds,
        )
    finally:
        receiver.close()
    report(database, args.rate, results, accepted)


if __name__ == "__main__":
    main()
