"""HTTP delivery over aiohttp (``WEBHOOKS_TRANSPORT=aiohttp``): the requests,
answers and error texts of :mod:`producer.transport`, for a fraction of its
CPU per request.

It keeps every guarantee of the httpx transport:

- one deadline over the whole exchange (connection, request, answer, body),
  and a connect timeout;
- redirects are answers, never followed; proxy variables and ``.netrc`` of the
  host environment are ignored (``trust_env`` off); cookies are not kept;
- at most ``max_response_bytes`` of an answer are read, raw
  (``auto_decompress`` off): a ``gzip`` or ``deflate`` body is inflated with an
  output bound, and the connection is dropped rather than drained;
- an in-flight cap per pool key (one endpoint's slot);
- the destination guard: a :class:`GuardResolver` resolves each name through
  the guard's resolver, checks every address with its policy and hands the
  connector only the checked address, so the connection goes exactly where
  the check allowed, with the URL (so the ``Host`` header and TLS server name)
  unchanged. A name is checked whenever a connection to it is opened, so a
  kept-alive connection goes on to the address checked when it was opened
  (the httpx transport checks again per request; either way no request
  reaches an address the guard refused). IP literals, which aiohttp never
  resolves, are checked before their first request;
- an egress proxy and client certificates per request.

Direct requests share one session: aiohttp's connector keeps its speed with
many requests in flight (httpcore's pool does not, hence the httpx
transport's client per slot), and measured side by side one session was as
fast as a session per pool key. Proxied requests use a second session whose
connector resolves only the proxy's name: their receiver's address is checked
per request and written into the URL, as the httpx transport does.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import httpx
import idna

from producer.destinations import BlockedDestination, DestinationPolicy, ip_literal
from producer.egress import TlsContexts
from producer.errors import WebhooksError, describe, internal_error
from producer.transport import Request, Response, TransportConfig, _BoundedBody, failure

try:
    import aiohttp
    from aiohttp.abc import AbstractResolver, ResolveResult
    from yarl import URL
except ImportError:  # pragma: no cover - depends on the installed extras
    # One line naming the extra (the CLI prints a WebhooksError as one line).
    raise WebhooksError(
        "WEBHOOKS_TRANSPORT=aiohttp needs aiohttp: pip install 'webhook-producer[aiohttp]'"
    ) from None

__all__ = ["AiohttpTransport", "GuardResolver"]

log = logging.getLogger("producer.transport")

KEEPALIVE_SECONDS = 5.0
"""How long an idle connection is kept (httpx's default too)."""

# aiohttp's failures named by the httpx exception of the same kind, so an
# attempt's error reads the same whichever transport made it. Most specific first.
_KINDS: tuple[tuple[type[BaseException], type[Exception]], ...] = (
    (aiohttp.ClientConnectorError, httpx.ConnectError),
    (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),
    (aiohttp.ClientPayloadError, httpx.RemoteProtocolError),
    (aiohttp.ClientResponseError, httpx.RemoteProtocolError),
    (aiohttp.NonHttpUrlClientError, httpx.UnsupportedProtocol),
    (aiohttp.InvalidURL, httpx.InvalidURL),
    (aiohttp.ClientOSError, httpx.ReadError),
    (aiohttp.ClientConnectionError, httpx.NetworkError),
)


class GuardResolver(AbstractResolver):
    """Resolves through the guard: the destination policy's resolver, every
    address checked, only the checked address returned (raises
    :class:`~producer.destinations.BlockedDestination` otherwise)."""

    def __init__(self, policy: DestinationPolicy) -> None:
        self.policy = policy

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        address = await self.policy.resolve(host, port)
        kind = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=kind,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
        ]

    async def close(self) -> None:
        """Nothing to release: the policy's resolver holds no connections."""


class _ProxyFailure(Exception):
    """The proxy could not be used; ``str()`` is the recorded reason."""


@dataclass(eq=False)
class _Pool:
    """One pool key's in-flight cap and how many requests hold or await it."""

    slots: asyncio.Semaphore
    users: int = 0


@dataclass(frozen=True)
class _Target:
    """Where one request goes: its URL (host possibly replaced by the checked
    address) and what keeps naming the original host."""

    url: URL
    proxy: str | None = None
    host_header: str | None = None
    server_hostname: str | None = None


class AiohttpTransport:
    """Sends delivery requests with aiohttp; never raises for network failures.

    The same interface as :class:`producer.transport.Transport`: :meth:`send`,
    :meth:`aclose`, :attr:`config` and :attr:`client_count`.
    """

    def __init__(
        self, config: TransportConfig | None = None, *, guard: DestinationPolicy | None = None
    ) -> None:
        self.config = config or TransportConfig()
        self._guard = guard
        self._pools: OrderedDict[str, _Pool] = OrderedDict()
        self._direct: aiohttp.ClientSession | None = None
        self._proxied: aiohttp.ClientSession | None = None
        self._contexts = TlsContexts(self.config.max_clients)
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}
        # Hosts that need no check per request: names (the connector checks
        # them) and allowed IP literals (their verdict cannot change).
        self._cleared: set[str] = set()

    @property
    def client_count(self) -> int:
        """How many pool keys have an in-flight cap tracked."""
        return len(self._pools)

    async def send(self, request: Request) -> Response:
        """POST ``request`` and read at most ``max_response_bytes`` of the answer,
        all within the request's total timeout (waiting for a slot included)."""
        total = request.timeout if request.timeout is not None else self.config.timeout
        started = time.perf_counter()
        tunnel = request.url.startswith("https:")
        pool = self._checkout(request.pool_key)
        try:
            async with asyncio.timeout(total), pool.slots:
                return await self._post(request, total, started)
        except BlockedDestination as exc:
            return failure(f"blocked_destination: {exc.reason}", started)
        except TimeoutError:
            return failure("timeout", started)
        except _ProxyFailure as exc:
            return failure(f"proxy_error: {exc}", started)
        except (aiohttp.ClientProxyConnectionError, aiohttp.ClientHttpProxyError) as exc:
            return failure(f"proxy_error: {_proxy_failure(exc, tunnel)}", started)
        except (aiohttp.ClientError, httpx.TransportError, httpx.InvalidURL) as exc:
            if request.proxy is not None and not tunnel:
                # A forwarding proxy is the only peer this request connects to.
                return failure(f"proxy_error: {_describe(exc)}", started)
            return failure(f"connection_error: {_describe(exc)}", started)
        except Exception as exc:
            # As in the httpx transport: this attempt's outcome, never a raise
            # that would leave the delivery leased and unrecorded.
            log.warning("delivery request failed unexpectedly", exc_info=True)
            return failure(internal_error(exc), started)
        finally:
            self._checkin(request.pool_key, pool)

    async def _post(self, request: Request, total: float, started: float) -> Response:
        target = await self._target(request)
        headers = _headers_of(request)
        if target.host_header is not None:
            headers["host"] = target.host_header
        # Last, as in the httpx transport: no custom header invites compression.
        headers["accept-encoding"] = "identity"
        session = self._session(proxied=target.proxy is not None)
        async with session.post(
            target.url,
            data=request.body,
            headers=headers,
            allow_redirects=False,
            timeout=self._timeout(total),
            proxy=target.proxy,
            ssl=self._contexts.get(request.tls) if target.url.scheme == "https" else True,
            server_hostname=target.server_hostname,
        ) as response:
            limit = (
                self.config.max_response_bytes
                if request.max_response_bytes is None
                else request.max_response_bytes
            )
            body = _BoundedBody(limit, response.headers.get("content-encoding"))
            while chunk := await response.content.readany():
                if not body.feed(chunk):
                    # Drop the connection rather than drain a possibly endless body.
                    response.close()
                    break
            body.finish()
            answer = _headers(response)
            return Response(
                status_code=response.status,
                headers=answer,
                body=b"".join(body.chunks).decode("utf-8", errors="replace"),
                truncated=body.truncated,
                error=None,
                duration_ms=round((time.perf_counter() - started) * 1000, 3),
                retry_after=answer.get("retry-after"),
            )

    async def _target(self, request: Request) -> _Target:
        """Check the destination. A name is checked by the connector's
        :class:`GuardResolver` when it connects; an IP literal, which aiohttp
        connects to without resolving, is checked here. Through a proxy the
        connector resolves only the proxy, so the receiver's name is checked
        here and replaced by its address, as in the httpx transport."""
        url = _url(request.url)
        guard = self._guard
        host = url.raw_host
        if guard is None or host is None:
            return _Target(url, request.proxy)
        if guard.https_only and url.scheme != "https":
            raise BlockedDestination("plain http is refused (WEBHOOKS_HTTPS_ONLY)")
        port = url.port or (443 if url.scheme == "https" else 80)
        if request.proxy is None:
            if host not in self._cleared:
                if ip_literal(host) is not None:
                    await guard.resolve(host, port)
                self._clear(host)
            return _Target(url)
        proxy = await self._proxy(request.proxy, request.guard_proxy)
        address = await guard.resolve(host, port)
        if address == host:
            return _Target(url, proxy)
        return _Target(
            url.with_host(address),
            proxy,
            host_header=url.raw_authority.rsplit("@", 1)[-1],
            server_hostname=host if url.scheme == "https" else None,
        )

    def _clear(self, host: str) -> None:
        if len(self._cleared) >= self.config.max_clients:
            self._cleared.clear()  # bounded; refilled by the hosts in use
        self._cleared.add(host)

    async def _proxy(self, proxy: str, guarded: bool) -> str:
        """An endpoint's own proxy is checked by the guard; a plain-http one is
        reached at the checked address (an https one by name: its certificate
        names the host)."""
        if not guarded or self._guard is None:
            return proxy
        url = URL(proxy)
        if url.host is None:
            return proxy
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            address = await self._guard.resolve(url.host, port)
        except BlockedDestination as exc:
            raise BlockedDestination(f"proxy: {exc.reason}") from None
        except httpx.TransportError as exc:  # its name does not resolve
            raise _ProxyFailure(describe(exc)) from exc
        if url.scheme == "http" and address != url.host:
            return str(url.with_host(address))
        return proxy

    def _session(self, *, proxied: bool) -> aiohttp.ClientSession:
        session = self._proxied if proxied else self._direct
        if session is None or session.closed:
            resolver = None if proxied or self._guard is None else GuardResolver(self._guard)
            session = self._new_session(resolver)
            if proxied:
                self._proxied = session
            else:
                self._direct = session
        return session

    def _new_session(self, resolver: AbstractResolver | None) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            # Caps are per pool key (see _checkout), not per connector.
            limit=0,
            limit_per_host=0,
            # Every new connection asks the guard again: a cached answer
            # would outlive a name's move.
            use_dns_cache=False,
            resolver=resolver,
            keepalive_timeout=KEEPALIVE_SECONDS,
        )
        return aiohttp.ClientSession(
            connector=connector,
            headers={"user-agent": self.config.user_agent},
            # The raw body: its inflation is bounded by _BoundedBody.
            auto_decompress=False,
            # Proxy settings of the host environment must not reroute webhooks.
            trust_env=False,
            # A receiver's cookies must not follow later deliveries.
            cookie_jar=aiohttp.DummyCookieJar(),
            # The body is sent with the headers given, no guessed content type.
            skip_auto_headers=("content-type",),
            timeout=aiohttp.ClientTimeout(total=None),
        )

    def _timeout(self, total: float) -> aiohttp.ClientTimeout:
        """The connect bound of a request; the total one is ``asyncio.timeout``'s."""
        timeout = self._timeouts.get(total)
        if timeout is None:
            connect = min(self.config.connect_timeout, total)
            timeout = self._timeouts[total] = aiohttp.ClientTimeout(total=None, connect=connect)
        return timeout

    def _checkout(self, key: str) -> _Pool:
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = _Pool(
                asyncio.Semaphore(self.config.max_connections_per_client)
            )
            self._evict_idle()
        else:
            self._pools.move_to_end(key)
        pool.users += 1
        return pool

    def _checkin(self, key: str, pool: _Pool) -> None:
        pool.users -= 1
        if not pool.users and len(self._pools) > self.config.max_clients:
            self._evict_idle()

    def _evict_idle(self) -> None:
        """Forget the least recently used idle keys beyond ``max_clients``; a
        key still in use keeps its cap (evicting it would let a second one
        run beside it)."""
        excess = len(self._pools) - self.config.max_clients
        for key in [k for k, p in self._pools.items() if not p.users][: max(excess, 0)]:
            del self._pools[key]

    async def aclose(self) -> None:
        """Close both sessions and their connections."""
        sessions = [s for s in (self._direct, self._proxied) if s is not None]
        self._direct = self._proxied = None
        self._pools.clear()
        await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)


def _url(raw: str) -> URL:
    """``raw`` parsed; a punycode host is checked as httpx checks it (the
    ``idna`` package), so a bad one is the same failed attempt whichever
    transport meets it."""
    url = URL(raw)
    if url.raw_host is not None and "xn--" in url.raw_host:
        idna.decode(url.raw_host)
    return url


def _headers_of(request: Request) -> dict[str, str]:
    """The request's headers but ``accept-encoding``; a name or value that is
    not ASCII raises ``UnicodeEncodeError`` as in httpx (aiohttp would send
    UTF-8), so the attempt fails the same way."""
    headers = {}
    for name, value in request.headers.items():
        if not (name.isascii() and value.isascii()):
            name.encode("ascii")
            value.encode("ascii")
        if name.lower() != "accept-encoding":
            headers[name] = value
    return headers


def _headers(response: aiohttp.ClientResponse) -> dict[str, str]:
    """Lower-case names; a repeated header joined with ``, `` (as httpx does)."""
    answer: dict[str, str] = {}
    for name, value in response.headers.items():
        name = name.lower()
        answer[name] = f"{answer[name]}, {value}" if name in answer else value
    return answer


def _describe(exc: BaseException) -> str:
    """``exc`` as one line, named after the httpx exception of its kind."""
    for kind, named in _KINDS:
        if isinstance(exc, kind):
            return describe(named(_message(exc)))
    return describe(exc)


def _message(exc: BaseException) -> str:
    """What went wrong, without aiohttp's rendering of the TLS context."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        cause = getattr(exc, "certificate_error", None) or exc.os_error
        return f"cannot connect to {exc.host}:{exc.port}: {cause}"
    return str(exc)


def _proxy_failure(exc: Any, tunnel: bool) -> str:
    """A proxy's failure worded as the httpx transport words it: a refused
    ``CONNECT`` or an unreachable tunnelling proxy is a ``ProxyError``; a
    forwarding proxy that cannot be reached, a ``ConnectError``."""
    if isinstance(exc, aiohttp.ClientHttpProxyError):
        url = exc.request_info.url  # the CONNECT target
        target = f"{url.raw_host}:{url.port}: {exc.status} {exc.message}"
        return describe(httpx.ProxyError(f"the proxy refused CONNECT {target}"))
    if not tunnel:
        return _describe(exc)
    reason = f"{exc.host}:{exc.port}: {exc.os_error}"
    return describe(httpx.ProxyError(f"cannot connect to the proxy {reason}"))
