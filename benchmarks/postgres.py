"""End-to-end throughput on PostgreSQL with 1 and 2 worker processes.

For each worker count: a fresh database, N events to 10 endpoints sent with
``send_many``, then ``webhooks worker`` processes deliver them to a local
receiver until every delivery has succeeded. The raw client ceiling is
measured in the same run.

Run: ``python benchmarks/postgres.py [--events 2000] [--url postgresql://…/postgres]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import uuid

from sqlalchemy import create_engine, text

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from throughput import ReceiverProcess, raw_ceiling

from producer import Producer


def run(
    admin_url: str, receiver: ReceiverProcess, events: int, endpoints: int, workers: int
) -> float:
    name = f"webhooks_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    producer = Producer(url, auto_migrate=True, allowed_cidrs=["127.0.0.0/8"])
    try:
        for _ in range(endpoints):
            producer.create_endpoint(receiver.url)
        for start in range(0, events, 1000):
            stop = min(events, start + 1000)
            producer.send_many(
                [("invoice.paid", {"i": i, "pad": "x" * 800}) for i in range(start, stop)]
            )
        env = {**os.environ, "WEBHOOKS_DATABASE_URL": url, "WEBHOOKS_ALLOWED_CIDRS": "127.0.0.0/8"}
        started = time.perf_counter()
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "producer.cli", "worker"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(workers)
        ]
        total = events * endpoints
        while True:
            time.sleep(0.1)
            with producer.engine.connect() as conn:
                done = conn.execute(
                    text("select count(*) from webhook_deliveries where status = 'succeeded'")
                ).scalar_one()
            if done >= total:
                break
        elapsed = time.perf_counter() - started
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait()
        return total / elapsed
    finally:
        producer.close()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--endpoints", type=int, default=10)
    parser.add_argument("--url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    receiver = ReceiverProcess()
    try:
        ceiling = asyncio.run(raw_ceiling(receiver.url, 6_400, 64))
        print(f"raw client ceiling, 64 in flight, one process: {ceiling:8.0f} req/s")
        total = args.events * args.endpoints
        for workers in (1, 2):
            rate = run(args.url, receiver, args.events, args.endpoints, workers)
            print(
                f"PostgreSQL, {workers} worker process(es), {total} deliveries: "
                f"{rate:8.0f} deliveries/s (ratio to one-process ceiling {rate / ceiling:.2f})"
            )
    finally:
        receiver.close()


if __name__ == "__main__":
    main()
