"""HTTP delivery: pooled clients, a hard total timeout, bounded response reads.

One ``httpx.AsyncClient`` per pool key (the worker uses one per endpoint
in-flight slot) in a bounded LRU cache: a single shared httpcore pool gets
slower as more requests are in flight in it, while many small clients keep
their speed and keep a slow receiver away from the others' connections.

:meth:`Transport.send` never raises for network trouble; it reports it in
:attr:`Response.error` so the retry policy can judge it like any status.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version

import httpx

from producer.destinations import BlockedDestination, DestinationPolicy, GuardedTransport

__all__ = ["Request", "Response", "Transport", "TransportConfig"]

_MAX_ERROR_CHARS = 200


def _user_agent() -> str:
    try:
        return f"webhook-producer/{version('webhook-producer')}"
    except PackageNotFoundError:
        return "webhook-producer/0.1.0"


@dataclass(frozen=True)
class TransportConfig:
    """Timeouts and limits of delivery requests.

    ``timeout`` bounds a whole request (connecting, sending, waiting, reading
    the answer); ``connect_timeout`` bounds establishing the connection.
    Only the first ``max_response_bytes`` of an answer are read.
    """

    connect_timeout: float = 5.0
    timeout: float = 15.0
    max_response_bytes: int = 16384
    user_agent: str = field(default_factory=_user_agent)
    max_clients: int = 256
    max_connections_per_client: int = 10


@dataclass(frozen=True)
class Request:
    """One POST to make.

    ``timeout`` overrides :attr:`TransportConfig.timeout` for this request (an
    endpoint's own timeout); ``pool_key`` picks the cached client to use.
    """

    url: str
    headers: dict[str, str]
    body: bytes
    timeout: float | None = None
    pool_key: str = "default"


@dataclass(frozen=True)
class Response:
    """What one attempt got: a status and (the start of) the body, or an error.

    ``error`` is ``None`` when an answer arrived, else ``"timeout"`` or
    ``"connection_error: <exception class>: <message>"``. ``headers`` has
    lower-case names. ``truncated`` tells that the body was cut at the limit.
    """

    status_code: int | None
    headers: dict[str, str]
    body: str
    truncated: bool
    error: str | None
    duration_ms: float
    retry_after: str | None = None


@dataclass(eq=False)
class _Pooled:
    """A cached client and how many requests are using it right now."""

    client: httpx.AsyncClient
    active: int = 0
    evicted: bool = False


class Transport:
    """Sends delivery requests over cached clients; never raises for network failures.

    ``transport_factory`` builds the ``httpx`` transport of each new client
    from its pool key (tests plug in mocks, a network guard can plug in a
    filtering transport). Call :meth:`aclose` when done.
    """

    def __init__(
        self,
        config: TransportConfig | None = None,
        *,
        transport_factory: Callable[[str], httpx.AsyncBaseTransport] | None = None,
        guard: DestinationPolicy | None = None,
    ) -> None:
        self.config = config or TransportConfig()
        self._factory = transport_factory
        self._guard = guard
        self._clients: OrderedDict[str, _Pooled] = OrderedDict()
        # Evicted clients still carrying a request; closed once it finishes.
        self._draining: set[_Pooled] = set()
        self._closing: set[asyncio.Task[None]] = set()

    @property
    def client_count(self) -> int:
        """How many clients are cached."""
        return len(self._clients)

    def _checkout(self, key: str) -> _Pooled:
        pooled = self._clients.get(key)
        if pooled is not None:
            self._clients.move_to_end(key)
        else:
            pooled = _Pooled(self._new_client(key))
            self._clients[key] = pooled
            while len(self._clients) > self.config.max_clients:
                _, oldest = self._clients.popitem(last=False)
                oldest.evicted = True
                if oldest.active:
                    # Closing now would break its request; the last user closes it.
                    self._draining.add(oldest)
                else:
                    self._close_soon(oldest.client)
        pooled.active += 1
        return pooled

    def _checkin(self, pooled: _Pooled) -> None:
        pooled.active -= 1
        if pooled.evicted and not pooled.active and pooled in self._draining:
            self._draining.discard(pooled)
            self._close_soon(pooled.client)

    def _new_client(self, key: str) -> httpx.AsyncClient:
        size = self.config.max_connections_per_client
        return httpx.AsyncClient(
            # A redirect is the receiver's answer, not an instruction to post
            # the payload somewhere else.
            follow_redirects=False,
            # Proxy settings of the host environment must not reroute webhooks.
            trust_env=False,
            limits=httpx.Limits(max_connections=size, max_keepalive_connections=size),
            timeout=self._timeout(self.config.timeout),
            headers={
                "user-agent": self.config.user_agent,
                # Only the first few KiB of an answer are kept; a compressed
                # body could expand far beyond that before it is cut.
                "accept-encoding": "identity",
            },
            transport=self._transport_for(key),
        )

    def _transport_for(self, key: str) -> httpx.AsyncBaseTransport | None:
        transport = self._factory(key) if self._factory is not None else None
        if self._guard is None:
            return transport
        if transport is None:
            size = self.config.max_connections_per_client
            transport = httpx.AsyncHTTPTransport(
                limits=httpx.Limits(max_connections=size, max_keepalive_connections=size)
            )
        return GuardedTransport(self._guard, transport)

    def _timeout(self, total: float) -> httpx.Timeout:
        return httpx.Timeout(total, connect=min(self.config.connect_timeout, total))

    def _close_soon(self, client: httpx.AsyncClient) -> None:
        task = asyncio.get_running_loop().create_task(client.aclose())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def send(self, request: Request) -> Response:
        """POST ``request`` and read at most ``max_response_bytes`` of the answer.

        The total timeout covers the whole exchange including the body read:
        httpx's own timeouts apply per network operation, so a receiver
        trickling bytes could otherwise hold the request open indefinitely.
        """
        total = request.timeout if request.timeout is not None else self.config.timeout
        pooled = self._checkout(request.pool_key)
        started = time.perf_counter()
        try:
            async with asyncio.timeout(total):
                return await self._post(pooled.client, request, total, started)
        except BlockedDestination as exc:
            return _failure(f"blocked_destination: {exc.reason}", started)
        except (TimeoutError, httpx.TimeoutException):
            return _failure("timeout", started)
        except (httpx.TransportError, httpx.InvalidURL) as exc:
            return _failure(f"connection_error: {_describe(exc)}", started)
        finally:
            self._checkin(pooled)

    async def _post(
        self, client: httpx.AsyncClient, request: Request, total: float, started: float
    ) -> Response:
        limit = self.config.max_response_bytes
        async with client.stream(
            "POST",
            request.url,
            content=request.body,
            headers=request.headers,
            # Per request, so an endpoint's longer timeout is not cut short by
            # the client's default read timeout.
            timeout=self._timeout(total),
        ) as response:
            chunks: list[bytes] = []
            size = 0
            truncated = False
            try:
                async for chunk in response.aiter_bytes():
                    chunks.append(chunk[: limit - size])
                    size += len(chunk)
                    if size > limit:
                        # Leaving the stream unread closes the connection
                        # instead of draining a possibly endless body.
                        truncated = True
                        break
            except httpx.DecodingError:
                # The status arrived and is what counts; keep what was read.
                truncated = True
            headers = {name.lower(): value for name, value in response.headers.items()}
            return Response(
                status_code=response.status_code,
                headers=headers,
                body=b"".join(chunks).decode("utf-8", errors="replace"),
                truncated=truncated,
                error=None,
                duration_ms=_ms(started),
                retry_after=headers.get("retry-after"),
            )

    async def aclose(self) -> None:
        """Close every client, including evicted ones still being closed."""
        clients = [pooled.client for pooled in (*self._clients.values(), *self._draining)]
        self._clients.clear()
        self._draining.clear()
        await asyncio.gather(
            *(client.aclose() for client in clients), *self._closing, return_exceptions=True
        )


def _describe(exc: Exception) -> str:
    # Exception texts can be long or span lines (chained causes); the log
    # needs a short, one-line reason.
    message = " ".join(str(exc).split())
    reason = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return reason[:_MAX_ERROR_CHARS]


def _failure(error: str, started: float) -> Response:
    return Response(None, {}, "", False, error, _ms(started))


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
