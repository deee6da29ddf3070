"""``webhooks listen``: a local receiver to try a setup with.

It prints every webhook it gets and whether its signature verifies. A request
whose signature does not verify is answered ``401`` so the sender records a
failed attempt, just as a strict receiver would.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
from typing import Any

from producer.errors import SignatureVerificationError
from producer.signing import verify

__all__ = ["create_listener_app", "run_listener"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

MAX_PRINTED_BODY = 4096


def create_listener_app(
    secret: str | None, *, out: Callable[[str], None] = print, tolerance: int = 300
) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """An ASGI app that reports each request through ``out``.

    With ``secret`` (``whsec_``, or ``whpk_`` for v1a) each signature is
    checked: valid requests get ``200``, invalid ones ``401``.
    """

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if secret is None:
            verdict, status, reply = "not checked (no --secret)", 200, {"ok": True}
        else:
            try:
                verify(secret, headers, body, tolerance=tolerance)
                verdict, status, reply = "valid", 200, {"ok": True}
            except SignatureVerificationError as exc:
                verdict, status = f"INVALID ({exc.message})", 401
                reply = {"ok": False, "error": exc.message}
        out(_report(scope, headers, body, verdict))
        payload = json.dumps(reply).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    return app


def _report(scope: Scope, headers: dict[str, str], body: bytes, verdict: str) -> str:
    event_type = "-"
    try:
        parsed = json.loads(body)
        pretty = json.dumps(parsed, indent=2, ensure_ascii=False)
        if isinstance(parsed, dict):
            event_type = str(parsed.get("type", "-"))
    except ValueError:
        pretty = body.decode("utf-8", errors="replace")
    if len(pretty) > MAX_PRINTED_BODY:
        pretty = pretty[:MAX_PRINTED_BODY] + f"\n… ({len(body)} bytes in all)"
    now = datetime.now(UTC).strftime("%H:%M:%S")
    return "\n".join(
        [
            f"[{now}] {scope.get('method', 'POST')} {scope['path']}  type: {event_type}",
            f"  webhook-id: {headers.get('webhook-id', '-')}",
            f"  webhook-timestamp: {headers.get('webhook-timestamp', '-')}",
            f"  signature: {verdict}",
            *("  " + line for line in pretty.splitlines()),
        ]
    )


def run_listener(host: str, port: int, secret: str | None) -> None:
    """Serve the listener until interrupted."""
    import uvicorn

    checked = "checked with the given secret" if secret else "not checked"
    print(f"Listening on http://{host}:{port} — signatures {checked}", flush=True)
    app = create_listener_app(secret, out=lambda text: print(text, flush=True))
    uvicorn.run(app, host=host, port=port, log_level="warning")
