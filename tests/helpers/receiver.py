"""Real HTTP servers on 127.0.0.1 for tests that need a socket, not a mock.

Two helpers:

- :class:`LocalServer` runs any ASGI app under uvicorn in a background thread
  (for odd servers: endless bodies, answers that never finish, ...)::

      with LocalServer(app) as base_url:
          ...  # base_url is "http://127.0.0.1:<port>"

- :class:`Receiver` is a webhook receiver built on it. It records every
  request and answers according to a per-path script:

  - ``receiver.script("/flaky", [500, 500, 200])``: those statuses in turn,
    then 200;
  - ``receiver.hang("/stuck")``: never answer (until the server stops);
  - ``receiver.slow("/slow", 0.5)``: answer 200 after a pause;
  - any other path: 200.

Signatures are checked by the tests with the third-party ``standardwebhooks``
package, never with the code under test.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import uvicorn
from standardwebhooks.webhooks import Webhook


class LocalServer:
    """Serve an ASGI app on 127.0.0.1 with uvicorn in a background thread.

    The port is picked by binding a socket to port 0 and handing that very
    socket to uvicorn, so no other process can take it in between.
    :meth:`start` returns the base URL; :meth:`stop` shuts down without
    waiting for requests that never finish. Usable as a context manager,
    which yields the base URL.
    """

    def __init__(self, app: Any, *, startup_timeout: float = 10) -> None:
        self.app = app
        self.startup_timeout = startup_timeout
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``, without a trailing slash."""
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str = "/") -> str:
        """The absolute URL of ``path`` on this server."""
        return self.base_url + path

    def start(self) -> str:
        """Start serving and wait until the server accepts connections."""
        if self._server is not None:
            raise RuntimeError("server already started")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # As a real server: answers go out at once, not after a delayed ACK.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(("127.0.0.1", 0))
        self._socket = sock
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="off",
            # Hanging test requests must not hold up the shutdown for long.
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + self.startup_timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("server thread exited during startup")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("server did not start in time")
            time.sleep(0.01)
        return self.base_url

    def stop(self) -> None:
        """Stop serving; requests still in progress are dropped."""
        if self._server is not None:
            self._server.should_exit = True
            self._server.force_exit = True
        if self._thread is not None:
            self._thread.join(10)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class Received:
    """One request as the receiver saw it."""

    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)

    @property
    def webhook_id(self) -> str:
        """The ``webhook-id`` header."""
        return self.headers["webhook-id"]

    def verify(self, secret: str) -> None:
        """Verify with the standardwebhooks package against the real clock."""
        Webhook(secret).verify(self.body, self.headers)

    def signed_with(self, secret: str) -> bool:
        """Whether one of the v1 signatures was made with ``secret``, whatever
        the timestamp (for tests on a fake clock)."""
        when = datetime.fromtimestamp(int(self.headers["webhook-timestamp"]), UTC)
        expected = Webhook(secret).sign(self.webhook_id, when, self.body.decode())
        return expected in self.headers["webhook-signature"].split(" ")


class Receiver:
    """Records deliveries; answers by script. Use as a context manager."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self._scripts: dict[str, deque[int]] = defaultdict(deque)
        self._hanging: set[str] = set()
        self._slow: dict[str, float] = {}
        self._active: dict[str, int] = defaultdict(int)
        self.max_concurrent: dict[str, int] = defaultdict(int)
        self._cond = threading.Condition()
        self._server: LocalServer | None = None
        self.port = 0

    # -- behaviour ---------------------------------------------------------------

    def script(self, path: str, statuses: list[int]) -> str:
        """Answer ``path`` with these statuses in turn, then 200; returns its URL."""
        self._scripts[path].extend(statuses)
        return self.url(path)

    def hang(self, path: str) -> str:
        """Never answer ``path``; returns its URL."""
        self._hanging.add(path)
        return self.url(path)

    def slow(self, path: str, seconds: float) -> str:
        """Answer ``path`` with 200 after ``seconds``; returns its URL."""
        self._slow[path] = seconds
        return self.url(path)

    def url(self, path: str = "/") -> str:
        """The absolute URL of ``path`` on this receiver."""
        return f"http://127.0.0.1:{self.port}{path}"

    # -- inspection --------------------------------------------------------------

    def received(self, path: str | None = None) -> list[Received]:
        """The requests received so far (to ``path``, if given)."""
        with self._cond:
            return [r for r in self.requests if path is None or r.path == path]

    def wait_for(
        self, count: int, *, path: str | None = None, timeout: float = 20
    ) -> list[Received]:
        """Block until ``count`` requests (to ``path``) arrived; fail after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                got = [r for r in self.requests if path is None or r.path == path]
                if len(got) >= count:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} requests, got {len(got)}")
                self._cond.wait(left)

    # -- ASGI --------------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path = scope["path"]
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        with self._cond:
            self.requests.append(Received(path, headers, body))
            self._cond.notify_all()
            status = self._scripts[path].popleft() if self._scripts[path] else 200
            self._active[path] += 1
            self.max_concurrent[path] = max(self.max_concurrent[path], self._active[path])
        try:
            if path in self._hanging:
                await asyncio.sleep(3600)
            if path in self._slow:
                await asyncio.sleep(self._slow[path])
        finally:
            with self._cond:
                self._active[path] -= 1
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"text/plain")],
            }
        )
        await send({"type": "http.response.body", "body": f"status {status}".encode()})

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> Receiver:
        """Serve the recording receiver; returns ``self``."""
        return self.start_app(self)

    def start_app(self, app: Any) -> Receiver:
        """Serve ``app`` instead of the recording receiver (for odd servers)."""
        self._server = LocalServer(app)
        self._server.start()
        self.port = self._server.port
        return self

    def stop(self) -> None:
        """Stop the server; requests still hanging are dropped."""
        if self._server is not None:
            self._server.stop()

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
