"""How fast the web UI's pages answer on a database with 100,000 deliveries.

Fills an SQLite file with N deliveries (and their messages and attempts)
spread over 20 endpoints, signs in, and times each page.

Run: ``python benchmarks/ui_pages.py [--deliveries 100000] [--postgres URL]``.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import insert

from api import create_app
from producer import Producer
from producer.ids import new_id
from producer.models import AttemptRow, DeliveryRow, MessageRow

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def fill(producer: Producer, deliveries: int, endpoints: list[str]) -> None:
    now = datetime.now(UTC)
    statuses = ["succeeded"] * 85 + ["failed"] * 10 + ["pending"] * 5
    with producer.engine.begin() as conn:
        for start in range(0, deliveries, 10_000):
            messages, rows, attempts = [], [], []
            for i in range(start, min(deliveries, start + 10_000)):
                created = now - timedelta(seconds=(deliveries - i) * 86400 / deliveries)
                message_id, delivery_id = new_id("msg"), new_id("dlv")
                status = random.choice(statuses)
                messages.append(
                    {
                        "id": message_id,
                        "tenant": "default",
                        "event_type": f"order.e{i % 5}",
                        "version": "1",
                        "payload": b'{"data":{}}',
                        "created_at": created,
                    }
                )
                rows.append(
                    {
                        "id": delivery_id,
                        "message_id": message_id,
                        "endpoint_id": random.choice(endpoints),
                        "tenant": "default",
                        "event_type": f"order.e{i % 5}",
                        "status": status,
                        "attempt_count": 1,
                        "next_attempt_at": created if status == "pending" else None,
                        "next_trigger": "scheduled",
                        "last_status_code": 500 if status == "failed" else 200,
                        "created_at": created,
                        "updated_at": created,
                    }
                )
                attempts.append(
                    {
                        "id": new_id("att"),
                        "delivery_id": delivery_id,
                        "number": 1,
                        "trigger": "scheduled",
                        "started_at": created,
                        "duration_ms": random.random() * 50,
                        "request_url": "https://r.example/h",
                        "request_headers": {},
                        "response_status": 500 if status == "failed" else 200,
                        "response_headers": {},
                        "response_body": "ok",
                        "response_truncated": False,
                        "error": None,
                        "succeeded": status == "succeeded",
                        "next_attempt_at": None,
                    }
                )
            conn.execute(insert(MessageRow), messages)
            conn.execute(insert(DeliveryRow), rows)
            conn.execute(insert(AttemptRow), attempts)


def timed(client: TestClient, path: str, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=100_000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    url = args.database_url or f"sqlite:///{tempfile.mkdtemp()}/ui.db"
    producer = Producer(url, auto_migrate=True)
    endpoints = [producer.create_endpoint(f"https://r{i}.example/h").id for i in range(20)]
    started = time.perf_counter()
    fill(producer, args.deliveries, endpoints)
    print(f"filled {args.deliveries} deliveries in {time.perf_counter() - started:.0f} s")
    _, key = producer.create_api_key()
    client = TestClient(create_app(producer))
    form = client.get("/ui/login")
    client.post(
        "/ui/login", data={"csrf": CSRF.search(form.text).group(1), "api_key": key, "next": ""}
    )
    delivery = producer.list_deliveries(endpoint_id=endpoints[0], limit=1).data[0]
    pages = {
        "endpoints list (20, with 24 h success rates)": "/ui/endpoints",
        "one endpoint (chart + newest deliveries)": f"/ui/endpoints/{endpoints[0]}",
        "one endpoint, failed only": f"/ui/endpoints/{endpoints[0]}?status=failed",
        "one delivery (attempts)": f"/ui/deliveries/{delivery.id}",
        "messages": "/ui/messages",
        "one message": f"/ui/messages/{delivery.message_id}",
    }
    for title, path in pages.items():
        print(f"{title:48s} {timed(client, path):7.1f} ms (median of 5)")
    producer.close()


if __name__ == "__main__":
    main()
