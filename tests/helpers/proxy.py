"""Small asyncio servers on 127.0.0.1 for the egress tests, each in its own thread.

- :class:`ConnectProxy`: an HTTP proxy that tunnels ``CONNECT host:port``
  and forwards absolute-URL requests, recording what it was asked
  (``proxy.asked``), optionally demanding ``Proxy-Authorization`` or
  refusing every tunnel with a chosen status. It connects to 127.0.0.1 only:
  whatever a test gets wrong, no request leaves the machine.
- :class:`TlsReceiver`: an HTTPS server answering 200 to every request,
  optionally requiring a client certificate, recording each request with the
  TLS server name (SNI) and the client certificate's subject.

Certificates come from ``trustme`` in the tests.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

ALLOWED_UPSTREAM = "127.0.0.1"


class _LoopThread:
    """An asyncio server on its own loop in a daemon thread."""

    def __init__(self) -> None:
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None

    async def _serve(self) -> asyncio.Server:  # pragma: no cover - overridden
        raise NotImplementedError

    def start(self) -> None:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._server = self._loop.run_until_complete(self._serve())
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("server did not start")

    def stop(self) -> None:
        if self._loop is None:
            return
        loop, server = self._loop, self._server

        async def shut() -> None:
            if server is not None:
                server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()
            loop.stop()

        asyncio.run_coroutine_threadsafe(shut(), loop)
        if self._thread is not None:
            self._thread.join(10)
        loop.close()
        self._loop = None

    def __enter__(self) -> Any:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class Asked:
    """One request the proxy got: ``CONNECT`` with its target, or a
    forwarded request with its absolute URL; the headers lower-cased."""

    method: str
    target: str
    headers: dict[str, str]


async def _read_head(reader: asyncio.StreamReader) -> tuple[str, dict[str, str]] | None:
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        return None
    first, *lines = raw.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return first, headers


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        # A pipe still open when the proxy's loop closed ends here at
        # garbage collection, with no loop left to close its transport on.
        with contextlib.suppress(RuntimeError):
            writer.close()


class ConnectProxy(_LoopThread):
    """A recording HTTP proxy on 127.0.0.1 (see the module docstring).

    ``refuse`` answers every request with that status instead;
    ``credentials`` (``"user:password"``) demands that Basic
    ``Proxy-Authorization`` (407 otherwise).
    """

    def __init__(self, *, refuse: int | None = None, credentials: str | None = None) -> None:
        super().__init__()
        self.refuse = refuse
        self.credentials = credentials
        self.asked: list[Asked] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _serve(self) -> asyncio.Server:
        return await asyncio.start_server(self._handle, "127.0.0.1", 0)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await _read_head(reader)
        if head is None:
            writer.close()
            return
        first, headers = head
        method, target, _ = first.split(" ", 2)
        self.asked.append(Asked(method, target, headers))
        status = self._refusal(headers)
        if status is None and method == "CONNECT":
            host, _, port = target.rpartition(":")
            await self._tunnel(host.strip("[]"), int(port), reader, writer)
        elif status is None:
            await self._forward(method, target, headers, reader, writer)
        else:
            writer.write(f"HTTP/1.1 {status} Refused\r\ncontent-length: 0\r\n\r\n".encode())
            await writer.drain()
            writer.close()

    def _refusal(self, headers: dict[str, str]) -> int | None:
        if self.refuse is not None:
            return self.refuse
        if self.credentials is not None:
            expected = "Basic " + base64.b64encode(self.credentials.encode()).decode()
            if headers.get("proxy-authorization") != expected:
                return 407
        return None

    async def _upstream(
        self, host: str, port: int, writer: asyncio.StreamWriter
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        if host != ALLOWED_UPSTREAM:
            writer.write(b"HTTP/1.1 502 Not Here\r\ncontent-length: 0\r\n\r\n")
            await writer.drain()
            writer.close()
            return None
        try:
            return await asyncio.open_connection(host, port)
        except OSError:
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n")
            writer.close()
            return None

    async def _tunnel(
        self, host: str, port: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        upstream = await self._upstream(host, port, writer)
        if upstream is None:
            return
        up_reader, up_writer = upstream
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    async def _forward(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        parts = urlsplit(target)
        upstream = await self._upstream(parts.hostname or "", parts.port or 80, writer)
        if upstream is None:
            return
        up_reader, up_writer = upstream
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        kept = {k: v for k, v in headers.items() if not k.startswith("proxy-")}
        kept["connection"] = "close"
        lines = [f"{method} {path} HTTP/1.1"] + [f"{k}: {v}" for k, v in kept.items()]
        up_writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        length = int(headers.get("content-length", "0"))
        if length:
            up_writer.write(await reader.readexactly(length))
        await up_writer.drain()
        await _pipe(up_reader, writer)
        up_writer.close()


@dataclass
class Seen:
    """One request the TLS receiver answered."""

    path: str
    headers: dict[str, str]
    body: bytes
    server_name: str | None
    client_subject: str | None


class TlsReceiver(_LoopThread):
    """An HTTPS receiver on 127.0.0.1 with the given server context (see the
    module docstring); ``status`` is what it answers."""

    def __init__(self, context: ssl.SSLContext, status: int = 200) -> None:
        super().__init__()
        self.context = context
        self.status = status
        self.seen: list[Seen] = []
        self._names: dict[int, str | None] = {}
        self.context.sni_callback = self._remember_name

    def _remember_name(self, sock: ssl.SSLObject, name: str | None, _ctx: Any) -> None:
        self._names[id(sock)] = name

    def url(self, host: str = "127.0.0.1", path: str = "/") -> str:
        return f"https://{host}:{self.port}{path}"

    async def _serve(self) -> asyncio.Server:
        return await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.context)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        ssl_object = writer.get_extra_info("ssl_object")
        head = await _read_head(reader)
        if head is None:
            writer.close()
            return
        first, headers = head
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        peer = ssl_object.getpeercert() if ssl_object is not None else None
        subject = None
        if peer:
            subject = ",".join(f"{k}={v}" for rdn in peer.get("subject", ()) for k, v in rdn)
        self.seen.append(
            Seen(
                path=first.split(" ")[1],
                headers=headers,
                body=body,
                server_name=self._names.get(id(ssl_object)),
                client_subject=subject,
            )
        )
        head = f"HTTP/1.1 {self.status} OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n"
        writer.write(head.encode() + b"ok")
        await writer.drain()
        writer.close()


def server_context(
    ca: Any, name: str, client_certs: ssl.VerifyMode = ssl.CERT_NONE
) -> ssl.SSLContext:
    """The TLS context of a :class:`TlsReceiver` serving ``name`` with a
    certificate of the ``trustme`` CA ``ca``; with ``client_certs``
    ``CERT_OPTIONAL`` or ``CERT_REQUIRED``, it asks for (or requires) a client
    certificate of the same CA."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(name).configure_cert(context)
    if client_certs != ssl.CERT_NONE:
        ca.configure_trust(context)
        context.verify_mode = client_certs
    return context
