"""HTTP delivery: pooled clients, timeouts, bounded response reads.

One ``httpx.AsyncClient`` per pool key (the worker uses one per endpoint
in-flight slot) in a bounded LRU cache: a single shared pool slows down as
concurrency grows, while many small clients keep their speed and keep a slow
receiver from touching the others' connections.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version

import httpx

__all__ = ["Request", "Response", "Transport", "TransportConfig"]


def _user_agent() -> str:
    try:
        return f"webhook-producer/{version('webhook-producer')}"
    except PackageNotFoundError:
        return "webhook-producer/0.1.0"


@dataclass(frozen=True)
class TransportConfig:
    """Timeouts and limits of delivery requests."""

    connect_timeout: float = 5.0
    timeout: float = 15.0
    max_response_bytes: int = 16384
    user_agent: str = field(default_factory=_user_agent)
    max_clients: int = 256
    max_connections_per_client: int = 10


@dataclass(frozen=True)
class Request:
    """One POST to make."""

    url: str
    headers: dict[str, str]
    body: bytes
    timeout: float | None = None
    pool_key: str = "default"


@dataclass(frozen=True)
class Response:
    """What an attempt got: a status and (part of) the body, or an error."""

    status_code: int | None
    headers: dict[str, str]
    body: str
    truncated: bool
    error: str | None
    duration_ms: float
    retry_after: str | None = None


class Transport:
    """Sends delivery requests; never raises for network failures."""

    def __init__(
        self,
        config: TransportConfig | None = None,
        *,
        transport_factory: Callable[[str], httpx.AsyncBaseTransport] | None = None,
    ) -> None:
        self.config = config or TransportConfig()
        self._factory = transport_factory
        self._clients: OrderedDict[str, httpx.AsyncClient] = OrderedDict()
        self._closing: set[asyncio.Task[None]] = set()

    def _client(self, key: str) -> httpx.AsyncClient:
        client = self._clients.get(key)
        if client is not None:
            self._clients.move_to_end(key)
            return client
        limits = httpx.Limits(
            max_connections=self.config.max_connections_per_client,
            max_keepalive_connections=self.config.max_connections_per_client,
        )
        client = httpx.AsyncClient(
            follow_redirects=False,
            trust_env=False,
            limits=limits,
            timeout=httpx.Timeout(self.config.timeout, connect=self.config.connect_timeout),
            transport=self._factory(key) if self._factory is not None else None,
        )
        self._clients[key] = client
        while len(self._clients) > self.config.max_clients:
            _, old = self._clients.popitem(last=False)
            task = asyncio.get_running_loop().create_task(old.aclose())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        return client

    @property
    def client_count(self) -> int:
        """How many clients are cached."""
        return len(self._clients)

    async def send(self, request: Request) -> Response:
        """POST ``request``; read at most ``max_response_bytes`` of the answer."""
        client = self._client(request.pool_key)
        total = request.timeout or self.config.timeout
        started = time.perf_counter()
        try:
            async with asyncio.timeout(total):
                return await self._post(client, request, started)
        except (TimeoutError, httpx.TimeoutException):
            return Response(None, {}, "", False, "timeout", _ms(started))
        except httpx.TransportError as exc:
            reason = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
            return Response(None, {}, "", False, f"connection_error: {reason[:300]}", _ms(started))

    async def _post(self, client: httpx.AsyncClient, request: Request, started: float) -> Response:
        limit = self.config.max_response_bytes
        async with client.stream(
            "POST", request.url, content=request.body, headers=request.headers
        ) as response:
            chunks: list[bytes] = []
            size = 0
            truncated = False
            async for chunk in response.aiter_bytes():
                chunks.append(chunk)
                size += len(chunk)
                if size > limit:
                    truncated = True
                    break
            body = b"".join(chunks)[:limit]
            headers = {k.lower(): v for k, v in response.headers.items()}
            return Response(
                status_code=response.status_code,
                headers=headers,
                body=body.decode("utf-8", errors="replace"),
                truncated=truncated,
                error=None,
                duration_ms=_ms(started),
                retry_after=headers.get("retry-after"),
            )

    async def aclose(self) -> None:
        """Close every cached client."""
        clients = list(self._clients.values())
        self._clients.clear()
        await asyncio.gather(*(c.aclose() for c in clients), *self._closing, return_exceptions=True)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
