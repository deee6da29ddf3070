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

The figures are the server's: requests go through the standard library's
``http.client`` on keep-alive connections with ``TCP_NODELAY`` (httpx's own
work would add about a millisecond to each), and the background sender runs
in a process of its own, so the measuring thread shares its GIL with nobody.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from throughput import LOCAL, ReceiverProcess, free_port

from producer import Producer


@contextmanager
def service(database_url: str) -> Iterator[tuple[str, str]]:
    """``webhooks serve`` on a free port: its base URL and an admin key."""
    producer = Producer(database_url, auto_migrate=True, allowed_cidrs=LOCAL)
    if producer.list_endpoints(limit=1).data:
        # An earlier run's endpoints (receivers long gone) would keep the
        # worker busy retrying them, and the figures would measure that.
        producer.close()
        sys.exit(f"{database_url} holds endpoints already: give the benchmark an empty database")
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


class Client:
    """One keep-alive HTTP/1.1 connection with ``TCP_NODELAY``: as little
    client work per request as the standard library allows."""

    def __init__(self, base: str, key: str) -> None:
        host, port = base.removeprefix("http://").split(":")
        self.connection = http.client.HTTPConnection(host, int(port), timeout=60)
        self.connection.connect()
        assert self.connection.sock is not None
        self.connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.headers = {"authorization": f"Bearer {key}"}

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        headers = dict(self.headers)
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["content-type"] = "application/json"
        self.connection.request(method, path, body=payload, headers=headers)
        response = self.connection.getresponse()
        content = response.read()
        if response.status >= 400:
            raise RuntimeError(f"{method} {path}: {response.status} {content[:200]!r}")
        return response.status, content

    def close(self) -> None:
        self.connection.close()


def timed(call: Callable[[], object], count: int) -> list[float]:
    """Milliseconds of ``count`` calls, one after the other."""
    durations = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        durations.append((time.perf_counter() - started) * 1000)
    return durations


def percentiles(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered), ordered[max(int(len(ordered) * 0.99) - 1, 0)]


def background_sender(base: str, key: str, rate: float) -> None:
    """POST ``rate`` events/s of another type until killed: the worker's load
    (run in a process of its own: ``--background BASE KEY RATE``)."""
    client = Client(base, key)
    while True:
        client.request("POST", "/v1/messages", {"event_type": "load.tick", "data": {}})
        time.sleep(1 / rate)


def ingestion(base: str, key: str, clients: int, seconds: float) -> float:
    """Events/s accepted by ``POST /v1/messages`` from ``clients`` concurrent
    keep-alive clients (one thread each) over ``seconds``."""
    counts = [0] * clients
    stop = threading.Event()

    def post(index: int) -> None:
        client = Client(base, key)
        body = {"event_type": "invoice.paid", "data": {"client": index}}
        while not stop.is_set():
            client.request("POST", "/v1/messages", body)
            counts[index] += 1
        client.close()

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
        client = Client(base, key)
        client.request("POST", "/v1/endpoints", {"url": receiver.url})
        load = subprocess.Popen(
            [sys.executable, __file__, "--background", base, key, str(rate)],
            stdout=subprocess.DEVNULL,
        )
        try:
            time.sleep(1)
            results = {
                "GET /v1/health": timed(lambda: client.request("GET", "/v1/health"), requests),
                "GET /v1/endpoints": timed(
                    lambda: client.request("GET", "/v1/endpoints"), requests
                ),
            }
            receiver.reset()
            started: dict[str, float] = {}
            posts = []
            for i in range(requests):
                at_wall, at = time.time(), time.perf_counter()
                _, content = client.request(
                    "POST", "/v1/messages", {"event_type": "invoice.paid", "data": {"i": i}}
                )
                posts.append((time.perf_counter() - at) * 1000)
                started[json.loads(content)["id"]] = at_wall
                time.sleep(1 / rate)
            time.sleep(2)
        finally:
            load.terminate()
            load.wait()
            client.close()
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
    if sys.argv[1:2] == ["--background"]:
        base, key, rate = sys.argv[2:5]
        background_sender(base, key, float(rate))
        return
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
