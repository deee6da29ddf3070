"""How a delivery's connection leaves: directly, or through an egress proxy;
with the default trust, or an endpoint's client certificate and CA.

An https receiver behind a proxy is reached through a ``CONNECT`` tunnel
opened by :class:`TunnelBackend`, a network backend: httpcore asks it for a
connection to the receiver's (already checked) address, it opens the tunnel
to that address, and httpcore then speaks TLS inside with the receiver's own
name as server name. httpcore's built-in tunnel would use the address as
server name, and a certificate names the host, not its address. A plain http
receiver is reached the standard way, the proxy forwarding the request
(whose URL also holds the checked address, its Host header the name).

Failures of the proxy itself (cannot connect, refuses the tunnel) raise
``httpcore.ProxyError``, which httpx turns into ``httpx.ProxyError``: the
attempt records them as ``proxy_error``, apart from the receiver's failures.
"""

from __future__ import annotations

import base64
import ssl
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import httpcore
import httpx

from producer.credentials import ClientTLS

__all__ = ["MAX_CONNECT_ANSWER", "Route", "TlsContexts", "TunnelBackend", "build_transport"]

MAX_CONNECT_ANSWER = 16 * 1024
"""The most a proxy's answer to ``CONNECT`` may take before its blank line."""


@dataclass(frozen=True)
class Route:
    """Everything that shapes one client's connections besides the pool size.

    ``proxy`` is the proxy URL (its host possibly already replaced by the
    checked address), ``https`` whether the receiver is reached over TLS.
    """

    proxy: str | None = None
    tls: ClientTLS | None = None
    https: bool = True

    @property
    def is_default(self) -> bool:
        """No proxy and no client certificate: the plain httpx transport."""
        return self.proxy is None and self.tls is None


class TlsContexts:
    """TLS contexts by client certificate (``None``: default trust, certifi's
    as httpx builds it), each built once; the ``limit`` most recently used
    are kept. Building one reads the whole CA bundle (tens of ms of CPU), so
    clients and connections share them rather than make one each."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._contexts: OrderedDict[ClientTLS | None, ssl.SSLContext] = OrderedDict()

    def get(self, tls: ClientTLS | None) -> ssl.SSLContext:
        context = self._contexts.get(tls)
        if context is None:
            context = tls.ssl_context() if tls is not None else httpx.create_ssl_context()
            self._contexts[tls] = context
            while len(self._contexts) > self._limit:
                self._contexts.popitem(last=False)
        else:
            self._contexts.move_to_end(tls)
        return context


def build_transport(
    route: Route, limits: httpx.Limits, context: ssl.SSLContext
) -> httpx.AsyncBaseTransport:
    """The httpx transport of one client following ``route``, its TLS
    context ``context`` (the route's client certificate, or default trust)."""
    if route.proxy is None:
        return httpx.AsyncHTTPTransport(verify=context, limits=limits)
    if not route.https:
        # Forwarded by the proxy: the only connection made is to the proxy,
        # so a connection error is the proxy's (see Transport.send).
        return httpx.AsyncHTTPTransport(limits=limits, proxy=httpx.Proxy(route.proxy))
    transport = httpx.AsyncHTTPTransport(verify=context, limits=limits)
    # httpx takes no network backend of its own; the pool it made is
    # replaced by one that connects through the tunnel.
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=context,
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=TunnelBackend(httpx.URL(route.proxy)),
    )
    return transport


class TunnelBackend(httpcore.AsyncNetworkBackend):
    """Connections to ``host:port`` made as ``CONNECT host:port`` tunnels
    through the proxy at ``proxy`` (``http://`` or ``https://``, with an
    optional ``user:password`` sent as ``Proxy-Authorization: Basic``)."""

    def __init__(self, proxy: httpx.URL, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self.proxy = proxy
        self.inner = inner or httpcore.AnyIOBackend()
        self._authorization: bytes | None = None
        if proxy.username:
            pair = f"{unquote(proxy.username)}:{unquote(proxy.password or '')}"
            self._authorization = b"Basic " + base64.b64encode(pair.encode())

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._open_proxy(timeout, local_address, socket_options)
        try:
            await self._tunnel(stream, host, port, timeout)
        except BaseException:
            await stream.aclose()
            raise
        return stream

    async def _open_proxy(
        self, timeout: float | None, local_address: str | None, socket_options: Any
    ) -> httpcore.AsyncNetworkStream:
        host = self.proxy.host
        port = self.proxy.port or (443 if self.proxy.scheme == "https" else 80)
        try:
            stream = await self.inner.connect_tcp(
                host,
                port,
                timeout=timeout,
                local_address=local_address,
                socket_options=socket_options,
            )
            if self.proxy.scheme == "https":
                stream = await stream.start_tls(
                    ssl.create_default_context(), server_hostname=host, timeout=timeout
                )
        except (httpcore.ConnectError, httpcore.NetworkError, OSError) as exc:
            raise httpcore.ProxyError(f"cannot connect to the proxy {host}:{port}: {exc}") from exc
        return stream

    async def _tunnel(
        self, stream: httpcore.AsyncNetworkStream, host: str, port: int, timeout: float | None
    ) -> None:
        target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        lines = [f"CONNECT {target} HTTP/1.1".encode(), b"Host: " + target.encode()]
        if self._authorization is not None:
            lines.append(b"Proxy-Authorization: " + self._authorization)
        try:
            await stream.write(b"\r\n".join(lines) + b"\r\n\r\n", timeout=timeout)
            answer = await _read_head(stream, timeout)
        except (httpcore.NetworkError, OSError) as exc:
            raise httpcore.ProxyError(f"the proxy broke the tunnel to {target}: {exc}") from exc
        status_line = answer.split(b"\r\n", 1)[0].decode("latin-1")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise httpcore.ProxyError(f"the proxy answered CONNECT with {status_line[:100]!r}")
        if not 200 <= int(parts[1]) < 300:
            raise httpcore.ProxyError(
                f"the proxy refused CONNECT {target}: {status_line[len(parts[0]) + 1 :][:200]}"
            )

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.AsyncNetworkStream:  # pragma: no cover - deliveries use TCP
        raise httpcore.ConnectError("deliveries do not use unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


async def _read_head(stream: httpcore.AsyncNetworkStream, timeout: float | None) -> bytes:
    """The proxy's answer up to its blank line. The receiver does not speak
    before the TLS handshake we start, so nothing of the tunnel follows it."""
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = await stream.read(4096, timeout=timeout)
        if not chunk:
            raise httpcore.ProxyError("the proxy closed the connection before answering CONNECT")
        head += chunk
        if len(head) > MAX_CONNECT_ANSWER:
            raise httpcore.ProxyError("the proxy's answer to CONNECT is too long")
    return head
