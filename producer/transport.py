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
import logging
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version

import httpx

from producer.credentials import ClientTLS
from producer.destinations import BlockedDestination, DestinationPolicy, GuardedTransport
from producer.egress import Route, TlsContexts, build_transport
from producer.errors import describe, internal_error

__all__ = ["Request", "Response", "Transport", "TransportConfig", "failure"]

log = logging.getLogger("producer.transport")


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
    proxy: str | None = None
    """The egress proxy to go through (an endpoint's, or ``WEBHOOKS_EGRESS_PROXY``)."""
    guard_proxy: bool = False
    """Whether the guard checks the proxy's address too (an endpoint's own proxy)."""
    tls: ClientTLS | None = None
    """The client certificate (and CA) the receiver wants."""
    max_response_bytes: int | None = None
    """Overrides :attr:`TransportConfig.max_response_bytes` (a token answer)."""


@dataclass(frozen=True)
class Response:
    """What one attempt got: a status and (the start of) the body, or an error.

    ``error`` is ``None`` when an answer arrived, else ``"timeout"``,
    ``"connection_error: <exception class>: <message>"``,
    ``"proxy_error: ..."`` (the egress proxy failed or refused the tunnel) or
    ``"blocked_destination: ..."``. ``headers`` has
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
    route: Route
    active: int = 0
    evicted: bool = False


class Transport:
    """Sends delivery requests over cached clients; never raises for network failures.

    ``transport_factory`` builds the ``httpx`` transport of each new client
    from its pool key (tests plug in mocks, a network guard can plug in a
    filtering transport); ``None`` from it means the default transport for
    that key. Call :meth:`aclose` when done.
    """

    def __init__(
        self,
        config: TransportConfig | None = None,
        *,
        transport_factory: Callable[[str], httpx.AsyncBaseTransport | None] | None = None,
        guard: DestinationPolicy | None = None,
    ) -> None:
        self.config = config or TransportConfig()
        self._factory = transport_factory
        self._guard = guard
        self._clients: OrderedDict[str, _Pooled] = OrderedDict()
        # Evicted clients still carrying a request; closed once it finishes.
        self._draining: set[_Pooled] = set()
        self._closing: set[asyncio.Task[None]] = set()
        self._contexts = TlsContexts(self.config.max_clients)

    @property
    def client_count(self) -> int:
        """How many clients are cached."""
        return len(self._clients)

    def _checkout(self, key: str, route: Route) -> _Pooled:
        pooled = self._clients.get(key)
        if pooled is not None and pooled.route != route:
            # The endpoint's proxy or certificate changed: attempts under way
            # finish on the old client, the next ones use the new settings.
            self._retire(self._clients.pop(key))
            pooled = None
        if pooled is not None:
            self._clients.move_to_end(key)
        else:
            pooled = _Pooled(self._new_client(key, route), route)
            self._clients[key] = pooled
            while len(self._clients) > self.config.max_clients:
                self._retire(self._clients.popitem(last=False)[1])
        pooled.active += 1
        return pooled

    def _retire(self, pooled: _Pooled) -> None:
        pooled.evicted = True
        if pooled.active:
            # Closing now would break its request; the last user closes it.
            self._draining.add(pooled)
        else:
            self._close_soon(pooled.client)

    def _checkin(self, pooled: _Pooled) -> None:
        pooled.active -= 1
        if pooled.evicted and not pooled.active and pooled in self._draining:
            self._draining.discard(pooled)
            self._close_soon(pooled.client)

    def _new_client(self, key: str, route: Route) -> httpx.AsyncClient:
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
            transport=self._transport_for(key, route),
        )

    def _transport_for(self, key: str, route: Route) -> httpx.AsyncBaseTransport:
        size = self.config.max_connections_per_client
        limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
        # A factory may answer None for a key: that client takes the default.
        made = self._factory(key) if self._factory is not None else None
        if made is not None:
            transport: httpx.AsyncBaseTransport = made
        elif not route.is_default:
            transport = build_transport(route, limits, self._contexts.get(route.tls))
        else:
            transport = httpx.AsyncHTTPTransport(verify=self._contexts.get(None), limits=limits)
        if self._guard is None:
            return transport
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
        started = time.perf_counter()
        try:
            route = _DEFAULT_ROUTE
            if request.proxy is not None or request.tls is not None:
                async with asyncio.timeout(total):
                    route = await self._route(request)
        except BlockedDestination as exc:
            return failure(f"blocked_destination: proxy: {exc.reason}", started)
        except (TimeoutError, httpx.TransportError) as exc:
            return failure(f"proxy_error: {describe(exc)}", started)
        pooled = self._checkout(request.pool_key, route)
        try:
            async with asyncio.timeout(total):
                return await self._post(pooled.client, request, total, started)
        except BlockedDestination as exc:
            return failure(f"blocked_destination: {exc.reason}", started)
        except (TimeoutError, httpx.TimeoutException):
            return failure("timeout", started)
        except httpx.ProxyError as exc:
            return failure(f"proxy_error: {describe(exc)}", started)
        except httpx.ConnectError as exc:
            if route.proxy is not None and not route.https:
                # A forwarding proxy is the only peer this client connects to.
                return failure(f"proxy_error: {describe(exc)}", started)
            return failure(f"connection_error: {describe(exc)}", started)
        except (httpx.TransportError, httpx.InvalidURL) as exc:
            return failure(f"connection_error: {describe(exc)}", started)
        except Exception as exc:
            # Anything else (a header value that cannot be encoded, an IDNA
            # error of a stored host, a bug) is still this attempt's outcome:
            # raising would leave the delivery leased and unrecorded.
            log.warning("delivery request failed unexpectedly", exc_info=True)
            return failure(internal_error(exc), started)
        finally:
            self._checkin(pooled)

    async def _route(self, request: Request) -> Route:
        """The route of a request with a proxy or a client certificate. An
        endpoint's own plain-http proxy is checked by the guard and reached at
        the checked address; an https one is checked by name (its certificate
        names the host, so the connection resolves it again)."""
        proxy = request.proxy
        if proxy is not None and request.guard_proxy and self._guard is not None:
            url = httpx.URL(proxy)
            port = url.port or (443 if url.scheme == "https" else 80)
            address = await self._guard.resolve(url.host, port)
            if url.scheme == "http" and address != url.host:
                proxy = str(url.copy_with(host=address))
        https = request.url.startswith("https:")
        return Route(proxy=proxy, tls=request.tls, https=https)

    async def _post(
        self, client: httpx.AsyncClient, request: Request, total: float, started: float
    ) -> Response:
        limit = (
            self.config.max_response_bytes
            if request.max_response_bytes is None
            else request.max_response_bytes
        )
        # Last, so that no custom header (even one written straight into the
        # database) can invite a compressed answer.
        headers = {k: v for k, v in request.headers.items() if k.lower() != "accept-encoding"}
        headers["accept-encoding"] = "identity"
        async with client.stream(
            "POST",
            request.url,
            content=request.body,
            headers=headers,
            # Per request, so an endpoint's longer timeout is not cut short by
            # the client's default read timeout.
            timeout=self._timeout(total),
        ) as response:
            if response.is_stream_consumed:
                # Built in memory by a plugged-in transport (a mock): httpx
                # has already read and decoded it.
                body = _BoundedBody(limit, None)
                body.feed(response.content)
            else:
                body = _BoundedBody(limit, response.headers.get("content-encoding"))
                # Raw bytes: httpx's own decoding would inflate a whole network
                # chunk at once, and a small gzip answer can inflate to gigabytes.
                async for chunk in response.aiter_raw():
                    if not body.feed(chunk):
                        # Leaving the stream unread closes the connection
                        # instead of draining a possibly endless body.
                        break
                body.finish()
            answer = {name.lower(): value for name, value in response.headers.items()}
            return Response(
                status_code=response.status_code,
                headers=answer,
                body=b"".join(body.chunks).decode("utf-8", errors="replace"),
                truncated=body.truncated,
                error=None,
                duration_ms=_ms(started),
                retry_after=answer.get("retry-after"),
            )

    async def aclose(self) -> None:
        """Close every client, including evicted ones still being closed."""
        clients = [pooled.client for pooled in (*self._clients.values(), *self._draining)]
        self._clients.clear()
        self._draining.clear()
        await asyncio.gather(
            *(client.aclose() for client in clients), *self._closing, return_exceptions=True
        )


_DEFAULT_ROUTE = Route()


class _BoundedBody:
    """At most ``limit`` bytes of an answer's body, decoded as it arrives.

    A ``gzip`` or ``deflate`` body (sent although we asked for ``identity``)
    is inflated with an output bound, so memory stays within the limit
    whatever the compression ratio; other encodings are kept as sent.
    """

    def __init__(self, limit: int, encoding: str | None) -> None:
        self.limit = limit
        self.chunks: list[bytes] = []
        self.size = 0
        self.truncated = False
        coding = (encoding or "").strip().lower()
        wbits = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS}.get(coding)
        if coding == "deflate":
            wbits = zlib.MAX_WBITS
        self._inflate = zlib.decompressobj(wbits) if wbits is not None else None

    def feed(self, raw: bytes) -> bool:
        """Take one raw chunk; False once the limit is passed (stop reading)."""
        room = self.limit - self.size
        if self._inflate is None:
            data = raw[: room + 1]
        else:
            try:
                # One byte past the room tells that there is more than the limit.
                data = self._inflate.decompress(raw, room + 1)
            except zlib.error:
                # The status arrived and is what counts; keep what was read.
                self.truncated = True
                return False
        return self._keep(data)

    def finish(self) -> None:
        """Take what the decoder still holds once the body has ended."""
        if self._inflate is not None and not self.truncated:
            try:
                self._keep(self._inflate.flush(self.limit - self.size + 1))
            except zlib.error:
                self.truncated = True

    def _keep(self, data: bytes) -> bool:
        room = self.limit - self.size
        if len(data) > room:
            self.truncated = True
            data = data[:room]
        if data:
            self.chunks.append(data)
            self.size += len(data)
        return not self.truncated


def failure(error: str, started: float) -> Response:
    """A :class:`Response` for an attempt that got no answer, timed from
    ``started`` (a :func:`time.perf_counter` reading)."""
    return Response(None, {}, "", False, error, _ms(started))


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
