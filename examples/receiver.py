"""A webhook receiver to start from: verify, process each message once, answer fast.

Run it, point an endpoint at it, send an event, and list what it processed::

    python examples/receiver.py --port 9000 --secret whsec_... [--db received.db]

    # in another terminal; this machine's addresses are refused unless allowed
    export WEBHOOKS_ALLOWED_CIDRS=127.0.0.0/8
    webhooks serve &
    webhooks endpoints add http://127.0.0.1:9000/webhooks --secret whsec_...
    webhooks send order.created --data '{"order": 42}'
    curl http://127.0.0.1:9000/events

The secret may come from WEBHOOK_SECRET instead of --secret. Besides the
standard library it needs ``pip install starlette uvicorn standardwebhooks``.

What every receiver should do, and where this one does it:

1. Verify the signature over the raw body bytes before parsing anything: JSON
   parsed and serialised again is not what was signed (``receive``).
2. Process each message once. The sender retries until it gets a 2xx, so a
   response lost on its way back brings the same message again, with the same
   ``webhook-id``. Recording the id and applying the effect in one transaction
   turns the repeat into a no-op (``process_once``).
3. Answer quickly: the sender gives up on a slow answer and retries. Keep long
   work out of the request; do it later from what was stored.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
from contextlib import closing
from typing import Any

import uvicorn
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

SCHEMA = """
CREATE TABLE IF NOT EXISTS processed_webhooks (
    webhook_id TEXT PRIMARY KEY,
    processed_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id TEXT NOT NULL,
    type TEXT,
    data TEXT
);
"""


def process_once(db_path: str, webhook_id: str, event: dict[str, Any]) -> bool:
    """Record ``webhook_id`` and apply the event's effect in one transaction.

    Returns False, changing nothing, when ``webhook_id`` was processed before.
    """
    # closing() closes the connection; `with db` makes the block one transaction,
    # committed at its end, rolled back if it raises.
    with closing(sqlite3.connect(db_path)) as db, db:
        try:
            db.execute("INSERT INTO processed_webhooks (webhook_id) VALUES (?)", (webhook_id,))
        except sqlite3.IntegrityError:
            return False  # the primary key says: seen before, its effect is committed
        # The effect: a real receiver updates its own tables here. Should this
        # fail, the id above is rolled back with it, and the sender's retry gets
        # another chance instead of being mistaken for a duplicate.
        db.execute(
            "INSERT INTO events (webhook_id, type, data) VALUES (?, ?, ?)",
            (webhook_id, event.get("type"), json.dumps(event.get("data"))),
        )
        return True


def error(status: int, code: str, message: str) -> JSONResponse:
    """A JSON error with a code to match on and a sentence for people."""
    return JSONResponse({"error": code, "message": message}, status_code=status)


def create_app(secret: str, db_path: str) -> Starlette:
    """``POST /webhooks`` takes webhooks; ``GET /events`` lists the processed ones."""
    webhook = Webhook(secret)
    with closing(sqlite3.connect(db_path)) as db:
        db.executescript(SCHEMA)

    async def receive(request: Request) -> JSONResponse:
        body = await request.body()  # the exact bytes that were signed
        try:
            event = webhook.verify(body, dict(request.headers))
        except WebhookVerificationError as exc:
            return error(401, "invalid_signature", str(exc))
        except ValueError:
            # standardwebhooks raises plain ValueErrors, with messages meant for
            # programmers, for a garbled signature header or a body not UTF-8 JSON.
            return error(400, "malformed_webhook", "unreadable signature header or body")
        # sqlite3 blocks; a thread keeps the event loop free for other requests.
        first = await run_in_threadpool(process_once, db_path, request.headers["webhook-id"], event)
        # A duplicate gets a 2xx too: anything else makes the sender retry it.
        return JSONResponse({"status": "processed" if first else "duplicate"})

    def list_events(request: Request) -> JSONResponse:
        # A plain def: Starlette runs it in a thread, as sqlite3 blocks.
        with closing(sqlite3.connect(db_path)) as db:
            rows = db.execute("SELECT webhook_id, type, data FROM events ORDER BY id").fetchall()
        return JSONResponse(
            [{"webhook_id": i, "type": t, "data": json.loads(d)} for i, t, d in rows]
        )

    return Starlette(
        routes=[
            Route("/webhooks", receive, methods=["POST"]),
            Route("/events", list_events, methods=["GET"]),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="Receive, verify and dedupe webhooks.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument(
        "--secret",
        default=os.environ.get("WEBHOOK_SECRET"),
        help="the endpoint's whsec_ secret (default: $WEBHOOK_SECRET)",
    )
    parser.add_argument("--db", default="received.db", help="SQLite file (default: %(default)s)")
    args = parser.parse_args()
    if not args.secret:
        parser.error("pass --secret or set WEBHOOK_SECRET")
    uvicorn.run(create_app(args.secret, args.db), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
