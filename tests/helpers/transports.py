"""Both delivery transports behind one fixture, so a guarantee is tested
against each: httpx (``producer.transport``) and aiohttp
(``producer.transport_aiohttp``).

A test module imports the fixtures (``make_transport_fixture`` and
``transport_kind_fixture``, which pytest knows as ``make_transport`` and
``transport_kind``) and a test takes one as an argument; every test using it
runs once per transport, its id naming which::

    def test_x(make_transport):
        transport = make_transport(TransportConfig(timeout=1), guard=policy)
"""

from __future__ import annotations

import socket
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from producer.destinations import DestinationPolicy
from producer.transport import Transport, TransportConfig

KINDS = ("httpx", "aiohttp")
"""The values of ``WEBHOOKS_TRANSPORT``."""

MakeTransport = Callable[..., Any]


def new_transport(
    kind: str, config: TransportConfig | None = None, *, guard: DestinationPolicy | None = None
) -> Any:
    """A transport of ``kind`` with ``config`` and the destination ``guard``."""
    if kind == "aiohttp":
        from producer.transport_aiohttp import AiohttpTransport

        return AiohttpTransport(config, guard=guard)
    return Transport(config, guard=guard)


@pytest.fixture(name="transport_kind", params=KINDS)
def transport_kind_fixture(request: pytest.FixtureRequest) -> str:
    """``"httpx"``, then ``"aiohttp"``."""
    return str(request.param)


@pytest.fixture(name="make_transport")
def make_transport_fixture(transport_kind: str) -> MakeTransport:
    """Makes transports of this run's kind (see :func:`new_transport`)."""

    def make(config: TransportConfig | None = None, **options: Any) -> Any:
        return new_transport(transport_kind, config, **options)

    return make


# -- odd receivers (ASGI apps for ``LocalServer``) ----------------------------------


class Answering:
    """Answers every request with ``status``, ``headers`` and ``body``, and
    records the paths asked for (to see that a redirect was not followed)."""

    def __init__(
        self, status: int, headers: list[tuple[str, str]] | None = None, body: bytes = b""
    ) -> None:
        self.status = status
        self.headers = [(k.encode(), v.encode()) for k, v in headers or []]
        self.body = body
        self.paths: list[str] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        self.paths.append(scope["path"])
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body})


def gzipped(data: bytes) -> bytes:
    """``data`` as a gzip stream."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


@contextmanager
def unanswered_port() -> Iterator[int]:
    """A port on 127.0.0.1 whose connections never get established: a
    listening socket with a full accept queue drops further handshakes, so
    only a connect timeout ends an attempt there."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        port = server.getsockname()[1]
        fillers = []
        try:
            for _ in range(3):
                filler = socket.socket()
                filler.setblocking(False)
                filler.connect_ex(("127.0.0.1", port))
                fillers.append(filler)
            time.sleep(0.05)  # let the kernel finish the fillers' handshakes
            yield port
        finally:
            for filler in fillers:
                filler.close()
