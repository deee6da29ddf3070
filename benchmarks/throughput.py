"""Delivery throughput, latency and memory, against a local receiver.

Measured in one run, so the figures compare on the same machine:

(a) the raw client ceiling of each transport (httpx: one client per in-flight
    slot; aiohttp: one session), signing every request, no store; and a bare
    ``aiohttp.ClientSession`` for reference;
(b) end to end on SQLite with each transport (``WEBHOOKS_TRANSPORT``): N
    events sent, then a worker delivers them until every delivery has
    succeeded, at the raw runs' concurrency; and a fan-out case (events x
    endpoints);
with the ratios that matter (aiohttp e2e / httpx e2e, aiohttp e2e / raw
aiohttp), plus send()-to-receipt latency at a light steady load; then
``webhooks serve`` on SQLite (``api_latency.py``): API latency with its worker
busy, ``POST /v1/messages``-to-receipt latency, and the events/s the API
accepts from 1 and from 32 concurrent clients; and the peak RSS of a worker
process working through a large backlog.

Run: ``python benchmarks/throughput.py [--events 20000] [--rss-backlog 100000]
[--transports httpx,aiohttp] [--api-requests 300]``. Everything stays on
127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from producer import Producer
from producer.outcomes import Outcomes
from producer.service import settle_heap
from producer.signing import build_headers, generate_secret
from producer.transport import Request, Transport, TransportConfig
from producer.worker import Worker

try:
    import aiohttp

    from producer.transport_aiohttp import AiohttpTransport
except ImportError:  # the aiohttp extra is not installed: httpx figures only
    aiohttp = None  # type: ignore[assignment]

HERE = Path(__file__).resolve().parent
LOCAL = ["127.0.0.0/8"]  # the receiver runs on this machine; the guard closes it by default


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ReceiverProcess:
    """The fast receiver in its own process (so it does not share our GIL)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "fast_receiver.py"), str(self.port)],
            stdout=subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        self.proc.stdout.readline()
        self.url = f"http://127.0.0.1:{self.port}/hooks"

    def stats(self) -> dict:
        return httpx.get(f"http://127.0.0.1:{self.port}/stats", timeout=30).json()

    def reset(self) -> None:
        httpx.request("DELETE", f"http://127.0.0.1:{self.port}/stats", timeout=30)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait()


BODY = json.dumps({"id": "msg_x", "type": "a.b", "data": {"pad": "x" * 800}}).encode()


def _signed(secret: str, slot: int, i: int) -> dict[str, str]:
    return {
        "content-type": "application/json",
        **build_headers([secret], f"msg_{slot}_{i}", int(time.time()), BODY),
    }


async def raw_ceiling(url: str, requests: int, slots: int, kind: str = "httpx") -> float:
    """Requests/s of the bare transport ``kind`` with ``slots`` concurrent senders."""
    config = TransportConfig(max_connections_per_client=1)
    transport = AiohttpTransport(config) if kind == "aiohttp" else Transport(config)
    secret = generate_secret()
    per_slot = requests // slots

    async def sender(slot: int) -> None:
        for i in range(per_slot):
            request = Request(url, _signed(secret, slot, i), BODY, pool_key=f"ep#{slot}")
            response = await transport.send(request)
            assert response.status_code == 200, response

    started = time.perf_counter()
    await asyncio.gather(*(sender(s) for s in range(slots)))
    elapsed = time.perf_counter() - started
    await transport.aclose()
    return per_slot * slots / elapsed


async def bare_aiohttp(url: str, requests: int, slots: int) -> float:
    """Requests/s of one plain ``aiohttp.ClientSession``, signing each request:
    the library's own ceiling, without our transport around it."""
    secret = generate_secret()
    per_slot = requests // slots
    async with aiohttp.ClientSession() as session:

        async def sender(slot: int) -> None:
            for i in range(per_slot):
                headers = _signed(secret, slot, i)
                async with session.post(url, data=BODY, headers=headers) as response:
                    await response.read()
                    assert response.status == 200, response

        started = time.perf_counter()
        await asyncio.gather(*(sender(s) for s in range(slots)))
        elapsed = time.perf_counter() - started
    return per_slot * slots / elapsed


def fill(producer: Producer, events: int) -> None:
    data = {"pad": "x" * 800}
    for start in range(0, events, 1000):
        producer.send_many(
            [("invoice.paid", {**data, "i": i}) for i in range(start, min(events, start + 1000))]
        )


async def drain(producer: Producer, expected: int) -> float:
    """Run a worker until ``expected`` deliveries are recorded; deliveries/s."""
    worker = Worker(producer.context, Outcomes(producer.context))
    started = time.perf_counter()
    task = asyncio.create_task(worker.run())
    while worker.delivered < expected:
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - started
    worker.stop()
    await task
    return expected / elapsed


def end_to_end(
    url: str, events: int, endpoints: int, db_dir: str, name: str, kind: str = "httpx"
) -> tuple[float, float]:
    producer = Producer(
        f"sqlite:///{db_dir}/{name}-{kind}.db",
        auto_migrate=True,
        allowed_cidrs=LOCAL,
        transport=kind,
    )
    for _ in range(endpoints):
        producer.create_endpoint(url)
    settle_heap()  # as ``webhooks worker`` does once it is ready
    started = time.perf_counter()
    fill(producer, events)
    send_rate = events / (time.perf_counter() - started)
    rate = asyncio.run(drain(producer, events * endpoints))
    left = producer.list_deliveries(status="pending", limit=1).data
    assert not left, "deliveries left pending"
    producer.close()
    return rate, send_rate


def latency(
    receiver: ReceiverProcess, db_dir: str, count: int, interval: float
) -> tuple[float, float]:
    """send()-to-receipt latency (ms) at a steady light load, worker in a thread."""
    producer = Producer(f"sqlite:///{db_dir}/latency.db", auto_migrate=True, allowed_cidrs=LOCAL)
    producer.create_endpoint(receiver.url)
    receiver.reset()
    sent: dict[str, float] = {}
    with producer.start_worker_thread():
        time.sleep(0.5)
        for i in range(count):
            at = time.time()
            message = producer.send("invoice.paid", {"i": i})
            sent[message.id] = at
            time.sleep(interval)
        time.sleep(1)
    arrivals = receiver.stats()["arrivals"]
    producer.close()
    delays = sorted((arrivals[m] - t) * 1000 for m, t in sent.items() if m in arrivals)
    assert len(delays) == count, f"{count - len(delays)} events did not arrive"
    return statistics.median(delays), delays[int(len(delays) * 0.99) - 1]


def worker_rss(url: str, db_dir: str, backlog: int) -> tuple[float, float, float]:
    """Peak RSS (MB) of a `webhooks worker` process with ``backlog`` pending deliveries."""
    database = f"sqlite:///{db_dir}/rss.db"
    producer = Producer(database, auto_migrate=True, allowed_cidrs=LOCAL)
    producer.create_endpoint(url)
    fill(producer, backlog)
    env = {**os.environ, "WEBHOOKS_DATABASE_URL": database, "WEBHOOKS_ALLOWED_CIDRS": "127.0.0.0/8"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "producer.cli", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    peak = 0.0
    started = time.perf_counter()
    done = False
    while not done and time.perf_counter() - started < 600:
        time.sleep(0.25)
        peak = max(peak, _rss_mb(proc.pid))
        done = not producer.list_deliveries(status="pending", limit=1).data and not (
            producer.list_deliveries(status="sending", limit=1).data
        )
    elapsed = time.perf_counter() - started
    proc.terminate()
    proc.wait()
    producer.close()
    return peak, elapsed, backlog / elapsed


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def compare_transports(receiver: ReceiverProcess, db_dir: str, args: argparse.Namespace) -> None:
    """Raw ceilings and end-to-end rates of each transport, in one run, and
    their ratios."""
    kinds = [k for k in args.transports.split(",") if k]
    if aiohttp is None and "aiohttp" in kinds:
        print("aiohttp is not installed (pip install 'webhook-producer[aiohttp]'): httpx only")
        kinds = [k for k in kinds if k != "aiohttp"]
    slots = 10  # one endpoint: its default in-flight cap
    fan_slots = 64  # the worker's default concurrency
    fan_total = args.fanout_events * args.fanout_endpoints
    raw: dict[str, float] = {}
    e2e: dict[str, float] = {}
    for kind in kinds:
        raw[kind] = asyncio.run(raw_ceiling(receiver.url, 5_000, slots, kind))
        print(f"(a) raw {kind} ceiling, {slots} in flight:{raw[kind]:15.0f} req/s")
        e2e[kind], send_rate = end_to_end(receiver.url, args.events, 1, db_dir, "single", kind)
        print(f"    send_many() into SQLite:{send_rate:26.0f} events/s")
        print(f"(b) e2e {kind}, {args.events} events, 1 endpoint:{e2e[kind]:8.0f} deliveries/s")
        print(f"    ratio b/a:{e2e[kind] / raw[kind]:40.2f}")
        fan_raw = asyncio.run(raw_ceiling(receiver.url, 6_400, fan_slots, kind))
        fan_rate, _ = end_to_end(
            receiver.url, args.fanout_events, args.fanout_endpoints, db_dir, "fanout", kind
        )
        print(f"(a) raw {kind} ceiling, {fan_slots} in flight:{fan_raw:15.0f} req/s")
        print(
            f"(b) fan-out {kind} {args.fanout_events} x {args.fanout_endpoints} = {fan_total}: "
            f"{fan_rate:8.0f} deliveries/s, ratio {fan_rate / fan_raw:.2f}"
        )
    if aiohttp is not None:
        bare = asyncio.run(bare_aiohttp(receiver.url, 6_400, fan_slots))
        print(f"bare aiohttp.ClientSession, {fan_slots} in flight:{bare:11.0f} req/s")
    if {"httpx", "aiohttp"} <= e2e.keys():
        print(f"aiohttp e2e / httpx e2e (1 endpoint):{e2e['aiohttp'] / e2e['httpx']:15.2f}")
        print(f"aiohttp e2e / raw aiohttp (1 endpoint):{e2e['aiohttp'] / raw['aiohttp']:13.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--fanout-events", type=int, default=2_000)
    parser.add_argument("--fanout-endpoints", type=int, default=10)
    parser.add_argument("--latency-events", type=int, default=300)
    parser.add_argument("--rss-backlog", type=int, default=100_000)
    parser.add_argument(
        "--api-requests", type=int, default=300, help="requests per API latency figure (0: none)"
    )
    parser.add_argument("--api-seconds", type=float, default=8.0, help="each ingestion run")
    parser.add_argument(
        "--transports", default="httpx,aiohttp", help="comma-separated: httpx, aiohttp"
    )
    args = parser.parse_args()

    receiver = ReceiverProcess()
    db_dir = tempfile.mkdtemp(prefix="webhooks-bench-")
    try:
        compare_transports(receiver, db_dir, args)

        if args.latency_events:
            p50, p99 = latency(receiver, db_dir, args.latency_events, 0.02)
            print(f"latency send()->receipt at ~50 events/s: p50 {p50:.1f} ms, p99 {p99:.1f} ms")

        if args.api_requests:
            from api_latency import measure, report

            database = f"sqlite:///{db_dir}/api.db"
            results, accepted = measure(
                receiver,
                database,
                requests=args.api_requests,
                rate=50.0,
                clients=[1, 32],
                seconds=args.api_seconds,
            )
            report(database, 50.0, results, accepted)

        if args.rss_backlog:
            peak, elapsed, rss_rate = worker_rss(receiver.url, db_dir, args.rss_backlog)
            print(
                f"worker RSS with {args.rss_backlog} pending deliveries: peak {peak:.0f} MB "
                f"(drained in {elapsed:.0f} s, {rss_rate:.0f}/s)"
            )
    finally:
        receiver.close()


if __name__ == "__main__":
    threading.excepthook = lambda a: print("thread error:", a.exc_value)
    main()
