"""Check that the claim and delivery-log queries use indexes on PostgreSQL.

Fills a fresh database with 100,000 deliveries (spread over 50 endpoints and
every status), runs the store's real queries once while capturing their SQL,
and prints ``EXPLAIN ANALYZE`` of each.

Run: ``python benchmarks/explain.py [postgresql://postgres@127.0.0.1:5432/postgres]``.
"""

from __future__ import annotations

import random
import sys
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import create_engine, event, insert, text

from producer import Producer
from producer.ids import new_id
from producer.models import DeliveryRow, MessageRow

ADMIN = (
    sys.argv[1] if len(sys.argv) > 1 else "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
ROWS = 100_000


def main() -> None:
    name = f"webhooks_explain_{uuid.uuid4().hex[:8]}"
    admin = create_engine(ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    try:
        run(url)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))


def run(url: str) -> None:
    producer = Producer(url, auto_migrate=True)
    endpoints = [producer.create_endpoint(f"https://r{i}.example/h").id for i in range(50)]
    now = datetime.now(UTC)
    statuses = ["succeeded"] * 80 + ["failed"] * 5 + ["pending"] * 14 + ["sending"]
    with producer.engine.begin() as conn:
        for start in range(0, ROWS, 10_000):
            messages, deliveries = [], []
            for i in range(start, start + 10_000):
                created = now - timedelta(seconds=ROWS - i)
                message_id = new_id("msg")
                messages.append(
                    {
                        "id": message_id,
                        "tenant": "default",
                        "event_type": f"t{i % 7}.x",
                        "version": "1",
                        "payload": b"{}",
                        "created_at": created,
                    }
                )
                status = random.choice(statuses)
                deliveries.append(
                    {
                        "id": new_id("dlv"),
                        "message_id": message_id,
                        "endpoint_id": random.choice(endpoints),
                        "tenant": "default",
                        "event_type": f"t{i % 7}.x",
                        "status": status,
                        "attempt_count": 1,
                        "next_attempt_at": created + timedelta(hours=1)
                        if status == "pending"
                        else None,
                        "next_trigger": "scheduled",
                        "lease_owner": "w" if status == "sending" else None,
                        "lease_expires_at": now if status == "sending" else None,
                        "created_at": created,
                        "updated_at": created,
                    }
                )
            conn.execute(insert(MessageRow), messages)
            conn.execute(insert(DeliveryRow), deliveries)
        conn.execute(text("ANALYZE"))

    captured: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT") and not executemany:
            captured.append((statement, parameters))

    store, queue = producer.store, producer.context.queue
    queries = {
        "claim: due deliveries": lambda s: queue.due_candidates(
            s, now=now, limit=100, exclude_endpoints=endpoints[:3]
        ),
        "claim: in flight per endpoint": lambda s: queue.sending_counts(
            s, exclude_owner="me", now=now
        ),
        "claim: FIFO heads": lambda s: queue.fifo_heads(s, endpoints[:5]),
        "log: endpoint, newest first": lambda s: store.list_deliveries(
            s, endpoint_id=endpoints[0], limit=50
        ),
        "log: status, newest first": lambda s: store.list_deliveries(s, status="failed", limit=50),
        "log: endpoint + status": lambda s: store.list_deliveries(
            s, endpoint_id=endpoints[0], status="failed", limit=50
        ),
        "log: one message": lambda s: store.list_deliveries(s, message_id="msg_x", limit=50),
        "lease reclaim (count)": lambda s: queue.due_count(s, now),
    }
    for title, query in queries.items():
        captured.clear()
        event.listen(producer.engine, "before_cursor_execute", capture)
        with store.transaction() as s:
            query(s)
        event.remove(producer.engine, "before_cursor_execute", capture)
        statement, parameters = captured[0]
        with producer.engine.connect() as conn:
            raw = conn.connection.dbapi_connection
            with raw.cursor() as cursor:
                cursor.execute(
                    "EXPLAIN ANALYZE "
                    + statement.replace(" FOR UPDATE OF webhook_deliveries SKIP LOCKED", ""),
                    parameters,
                )
                plan = [row[0] for row in cursor.fetchall()]
        print(f"\n== {title}")
        print("\n".join(plan))
    producer.close()


if __name__ == "__main__":
    main()
