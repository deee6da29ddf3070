"""``webhooks listen``: a local receiver for trying a setup.

It accepts ``POST`` on any path, prints a readable report of every webhook it
gets and says whether the signature verifies. A request whose signature does
not verify is answered ``401`` so the sender records a failed attempt, just as
a strict receiver would.
"""

from __future__ import annotations

import json
import signal
import socket
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import datetime
from typing import Any

from producer.errors import SignatureVerificationError
from producer.signing import verify

__all__ = ["MAX_PRINTED_BODY", "ASGIApp", "create_listener_app", "run_listener"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
"""The ASGI 3 application signature."""

MAX_PRINTED_BODY = 4096
"""Bytes of the (pretty-printed) body shown in a report; the rest is cut off."""


def create_listener_app(
    secret: str | None, *, out: Callable[[str], None] = print, tolerance: int = 300
) -> ASGIApp:
    """A pure ASGI app that reports each webhook it receives through ``out``.

    ``POST`` on any path is accepted; other methods get ``405``. Each request is
    reported as several lines: time, method and path, ``webhook-id``,
    ``webhook-timestamp``, the event ``type`` from the JSON body when there is
    one, the signature verdict and the body, pretty-printed when it is JSON and
    cut after :data:`MAX_PRINTED_BODY` bytes.

    With ``secret`` (a ``whsec_`` secret, or a ``whpk_``/``whsk_`` key for
    ``v1a``) every signature is checked against it, allowing ``tolerance``
    seconds of clock difference: a valid request is answered ``200
    {"ok": true}``, an invalid one ``401 {"ok": false, "error": "<reason>"}`` so
    that the sender records the attempt as failed. Without ``secret`` nothing
    is checked and every ``POST`` gets ``200``.
    """

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return  # websockets are not part of webhook delivery
        if scope.get("method") != "POST":
            await _respond(
                send, 405, {"ok": False, "error": "only POST is accepted"}, [(b"allow", b"POST")]
            )
            return
        body = await _read_body(receive)
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in scope.get("headers", [])
        }
        status = 200
        reply: dict[str, Any] = {"ok": True}
        if secret is None:
            verdict = "not checked (no --secret)"
        else:
            try:
                verify(secret, headers, body, tolerance=tolerance)
                verdict = "valid"
            except SignatureVerificationError as exc:
                verdict = f"INVALID ({exc.message})"
                status, reply = 401, {"ok": False, "error": exc.message}
        out(_report(scope, headers, body, verdict))
        await _respond(send, status, reply)

    return app


async def _lifespan(receive: Receive, send: Send) -> None:
    # Nothing to set up; answering keeps uvicorn from warning that the
    # protocol is unsupported.
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


async def _respond(
    send: Send,
    status: int,
    reply: dict[str, Any],
    extra_headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    payload = json.dumps(reply).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        *(extra_headers or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def _header(headers: dict[str, str], name: str) -> str:
    """``webhook-<name>`` or its older ``svix-`` form, ``-`` when absent."""
    return headers.get(f"webhook-{name}") or headers.get(f"svix-{name}") or "-"


def _report(scope: Scope, headers: dict[str, str], body: bytes, verdict: str) -> str:
    """The multi-line text printed for one request."""
    event_type: str | None = None
    try:
        parsed = json.loads(body)
    except ValueError:  # not JSON, or not UTF-8: print it as text
        text = body.decode("utf-8", errors="replace")
    else:
        text = json.dumps(parsed, indent=2, ensure_ascii=False)
        if isinstance(parsed, dict) and isinstance(parsed.get("type"), str):
            event_type = parsed["type"]
    encoded = text.encode()
    if len(encoded) > MAX_PRINTED_BODY:
        # Cut on bytes, then drop a split trailing character rather than print garbage.
        text = encoded[:MAX_PRINTED_BODY].decode("utf-8", errors="ignore")
        text += f"\n… (cut after {MAX_PRINTED_BODY} bytes; {len(body)} bytes received)"
    received = datetime.now().astimezone().isoformat(sep=" ", timespec="seconds")
    lines = [
        f"── {received}  {scope.get('method', 'POST')} {scope.get('path', '/')}",
        f"  webhook-id: {_header(headers, 'id')}",
        f"  webhook-timestamp: {_header(headers, 'timestamp')}",
    ]
    if event_type is not None:
        lines.append(f"  type: {event_type}")
    lines.append(f"  signature: {verdict}")
    lines.append("  body:" if body else "  body: (empty)")
    lines.extend("    " + line for line in text.splitlines())
    return "\n".join(lines)


def run_listener(sock: socket.socket, secret: str | None) -> None:
    """Serve the listener with uvicorn on ``sock`` (bound and listening) until
    interrupted (SIGINT, Ctrl-C: a normal end).

    Prints one line first saying where it listens and whether signatures are
    checked, then one report per request.
    """
    import uvicorn  # imported here so the CLI starts fast when not listening

    host, port = sock.getsockname()[:2]
    shown_host = f"[{host}]" if ":" in host else host
    checked = "checked with the given secret" if secret is not None else "not checked"
    app = create_listener_app(secret, out=lambda text: print(text, flush=True))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))

    def stop(_signum: int, _frame: object) -> None:
        server.should_exit = True

    # Ctrl-C is how a listener is stopped, also when it comes as soon as the
    # line below is out, before uvicorn handles the signal itself (uvicorn
    # then stops before serving); after its graceful shutdown uvicorn raises
    # the signal again, which lands here too: no traceback, status 0.
    previous = signal.signal(signal.SIGINT, stop)
    try:
        print(f"Listening on http://{shown_host}:{port} — signatures {checked}", flush=True)
        server.run(sockets=[sock])
    finally:
        signal.signal(signal.SIGINT, previous)
