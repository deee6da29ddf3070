"""The HTTP transport: respx and httpx.MockTransport for unit behaviour, a real
local server for bodies that are huge, trickle, or never end. The real-server
tests run against both transports (httpx and aiohttp, ``make_transport``);
tests/test_transport_contract.py holds the rest of their shared guarantees."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
import respx

from producer.transport import Request, Response, Transport, TransportConfig
from tests.helpers.receiver import LocalServer
from tests.helpers.transports import (  # noqa: F401 (fixtures)
    make_transport_fixture,
    transport_kind_fixture,
)

URL = "https://receiver.example/hooks"


def send(transport: Transport, url: str = URL, **kwargs: Any) -> Response:
    """One request on a fresh event loop; the transport is closed afterwards."""

    async def go() -> Response:
        try:
            return await transport.send(Request(url, {"x-test": "1"}, b"{}", **kwargs))
        finally:
            await transport.aclose()

    return asyncio.run(go())


class RecordingTransport(httpx.AsyncBaseTransport):
    """Answers through ``handler`` and remembers whether it was closed."""

    def __init__(self, handler: Callable[[httpx.Request], Awaitable[httpx.Response]]) -> None:
        self.handler = handler
        self.closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.handler(request)

    async def aclose(self) -> None:
        self.closed = True


async def ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, text="ok")


class Factory:
    """A ``transport_factory`` that records the pool keys it was asked for."""

    def __init__(self, handler: Callable[[httpx.Request], Awaitable[httpx.Response]] = ok):
        self.handler = handler
        self.made: dict[str, RecordingTransport] = {}
        self.keys: list[str] = []

    def __call__(self, key: str) -> httpx.AsyncBaseTransport:
        self.keys.append(key)
        self.made[key] = RecordingTransport(self.handler)
        return self.made[key]


# -- answers (respx) ---------------------------------------------------------------


@respx.mock
def test_success_returns_status_headers_and_body():
    respx.post(URL).respond(200, text="thanks", headers={"X-Reply": "Yes"})
    response = send(Transport())
    assert (response.status_code, response.body, response.error) == (200, "thanks", None)
    assert response.headers["x-reply"] == "Yes"
    assert all(name == name.lower() for name in response.headers)
    assert not response.truncated and response.retry_after is None
    assert response.duration_ms >= 0


@respx.mock
def test_request_is_a_post_with_the_given_headers_and_body():
    route = respx.post(URL).respond(204)
    send(Transport(TransportConfig(user_agent="test-agent/1")))
    request = route.calls.last.request
    assert request.method == "POST" and request.content == b"{}"
    assert request.headers["x-test"] == "1"
    assert request.headers["user-agent"] == "test-agent/1"
    assert request.headers["accept-encoding"] == "identity"


def test_default_user_agent_names_the_library():
    assert TransportConfig().user_agent.startswith("webhook-producer/")


@respx.mock
def test_request_headers_override_client_defaults():
    route = respx.post(URL).respond(204)
    asyncio.run(_send_with_headers({"User-Agent": "mine/2"}))
    assert route.calls.last.request.headers["user-agent"] == "mine/2"


async def _send_with_headers(headers: dict[str, str]) -> Response:
    transport = Transport()
    try:
        return await transport.send(Request(URL, headers, b"{}"))
    finally:
        await transport.aclose()


@pytest.mark.parametrize(
    ("size", "limit", "kept", "truncated"),
    [
        (50_000, 16384, 16384, True),
        (16385, 16384, 16384, True),
        (16384, 16384, 16384, False),
        (100, 16384, 100, False),
        (100, 10, 10, True),
    ],
)
@respx.mock
def test_body_beyond_the_limit_is_cut_and_flagged(size, limit, kept, truncated):
    respx.post(URL).respond(200, content=b"a" * size)
    response = send(Transport(TransportConfig(max_response_bytes=limit)))
    assert (len(response.body), response.truncated) == (kept, truncated)


@respx.mock
def test_invalid_utf8_is_replaced_not_raised():
    respx.post(URL).respond(500, content=b"bad \xff\xfe bytes")
    response = send(Transport())
    assert response.status_code == 500 and response.body == "bad \ufffd\ufffd bytes"


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@respx.mock
def test_redirects_are_never_followed(status):
    respx.post(URL).respond(status, headers={"Location": "https://elsewhere.example/"})
    target = respx.route(host="elsewhere.example").respond(200)
    response = send(Transport())
    assert response.status_code == status and response.error is None
    assert response.headers["location"] == "https://elsewhere.example/"
    assert not target.called


@respx.mock
def test_retry_after_is_surfaced():
    respx.post(URL).respond(429, headers={"Retry-After": "30"})
    response = send(Transport())
    assert (response.status_code, response.retry_after) == (429, "30")


# -- failures (respx) ----------------------------------------------------------------


@pytest.mark.parametrize(
    "exc", [httpx.ConnectTimeout("slow"), httpx.ReadTimeout("slow"), httpx.PoolTimeout("full")]
)
@respx.mock
def test_timeouts_are_reported_as_timeout(exc):
    respx.post(URL).mock(side_effect=exc)
    response = send(Transport())
    assert (response.status_code, response.error, response.body) == (None, "timeout", "")


@pytest.mark.parametrize(
    ("exc", "error"),
    [
        (httpx.ConnectError("refused"), "connection_error: ConnectError: refused"),
        (httpx.ReadError("reset"), "connection_error: ReadError: reset"),
        (
            httpx.RemoteProtocolError("Server disconnected"),
            "connection_error: RemoteProtocolError: Server disconnected",
        ),
        (httpx.ConnectError(""), "connection_error: ConnectError"),
        (
            httpx.ConnectError("line one\n  line two"),
            "connection_error: ConnectError: line one line two",
        ),
    ],
)
@respx.mock
def test_connection_failures_are_reported_with_their_reason(exc, error):
    respx.post(URL).mock(side_effect=exc)
    response = send(Transport())
    assert response.status_code is None and response.error == error


@respx.mock
def test_long_error_messages_are_shortened():
    respx.post(URL).mock(side_effect=httpx.ConnectError("x" * 5000))
    error = send(Transport()).error
    assert error is not None and error.startswith("connection_error: ConnectError: xxx")
    assert len(error) < 250


def test_an_unusable_url_is_reported_not_raised():
    response = send(Transport(), "ftp://receiver.example/")
    assert response.error is not None and response.error.startswith("connection_error: ")


# -- client cache (httpx.MockTransport-style factory) -------------------------------------


def test_clients_are_cached_per_pool_key():
    factory = Factory()

    async def go() -> None:
        transport = Transport(transport_factory=factory)
        for key in ["a", "b", "a", "a", "b", "c"]:
            response = await transport.send(Request(URL, {}, b"", pool_key=key))
            assert response.status_code == 200
        assert transport.client_count == 3
        await transport.aclose()
        assert transport.client_count == 0

    asyncio.run(go())
    assert factory.keys == ["a", "b", "c"]
    assert all(t.closed for t in factory.made.values())


def test_the_cache_is_bounded_and_evicts_the_least_recently_used():
    factory = Factory()

    async def go() -> None:
        transport = Transport(TransportConfig(max_clients=3), transport_factory=factory)
        for key in ["a", "b", "c", "a", "d", "e"]:  # "a" reused, so "b" and "c" go
            await transport.send(Request(URL, {}, b"", pool_key=key))
        await asyncio.sleep(0)  # let the background closes run
        assert transport.client_count == 3
        closed = {key for key, t in factory.made.items() if t.closed}
        assert closed == {"b", "c"}
        await transport.send(Request(URL, {}, b"", pool_key="a"))
        await transport.aclose()

    asyncio.run(go())
    assert factory.keys == ["a", "b", "c", "d", "e"]
    assert all(t.closed for t in factory.made.values())


def test_a_client_evicted_while_in_use_is_closed_after_its_request():
    release = asyncio.Event()

    async def held(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/held"):
            await release.wait()
        return httpx.Response(200)

    factory = Factory(held)

    async def go() -> None:
        nonlocal release
        release = asyncio.Event()
        transport = Transport(TransportConfig(max_clients=1), transport_factory=factory)
        busy = asyncio.create_task(transport.send(Request(URL + "/held", {}, b"", pool_key="slow")))
        await asyncio.sleep(0.01)
        await transport.send(Request(URL, {}, b"", pool_key="other"))  # evicts "slow"
        await asyncio.sleep(0.01)
        assert not factory.made["slow"].closed
        release.set()
        assert (await busy).status_code == 200
        await asyncio.sleep(0.01)
        assert factory.made["slow"].closed
        await transport.aclose()

    asyncio.run(go())


@pytest.mark.parametrize(
    ("default", "per_request", "server_delay", "error"),
    [
        (15.0, 0.2, 5.0, "timeout"),  # a shorter endpoint timeout wins
        (0.2, 2.0, 0.5, None),  # so does a longer one
        (0.2, None, 5.0, "timeout"),  # without one the default applies
    ],
)
def test_per_request_timeout_overrides_the_default(default, per_request, server_delay, error):
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(server_delay)
        return httpx.Response(200)

    config = TransportConfig(timeout=default)
    started = time.monotonic()
    response = send(Transport(config, transport_factory=Factory(slow)), timeout=per_request)
    assert response.error == error
    assert time.monotonic() - started < 3


# -- a real server on 127.0.0.1 -------------------------------------------------------


class _Endless:
    """Streams 64 KiB chunks until the client goes away (1 GiB at most) and
    counts what it managed to send."""

    def __init__(self) -> None:
        self.sent = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()  # the request body
        # After the body, the next message is the client's disconnect.
        gone = asyncio.ensure_future(receive())
        await send({"type": "http.response.start", "status": 200, "headers": []})
        chunk = b"x" * 65536
        while not gone.done() and self.sent < 2**30:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            self.sent += len(chunk)
            # Once the client is gone, uvicorn's send() discards the chunk and
            # returns without yielding; yield so the disconnect can be seen.
            await asyncio.sleep(0)
        gone.cancel()
        await send({"type": "http.response.body", "body": b""})


async def _never_finishes(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"partial", "more_body": True})
    await asyncio.sleep(3600)


async def _trickles(scope: dict[str, Any], receive: Any, send: Any) -> None:
    # Each byte comes well within httpx's per-read timeout; only a total
    # deadline stops this.
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    for _ in range(200):  # 20 s: far longer than the 1 s deadline
        await send({"type": "http.response.body", "body": b".", "more_body": True})
        await asyncio.sleep(0.1)
    await send({"type": "http.response.body", "body": b""})


async def _answers_late(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await receive()
    await asyncio.sleep(0.6)
    await send({"type": "http.response.start", "status": 202, "headers": []})
    await send({"type": "http.response.body", "body": b"late"})


def test_a_huge_body_is_read_only_up_to_the_limit(make_transport):
    app = _Endless()
    with LocalServer(app) as base_url:
        started = time.monotonic()
        response = send(make_transport(), base_url + "/")
        elapsed = time.monotonic() - started
    assert response.status_code == 200 and response.error is None
    assert response.truncated and len(response.body) == 16384
    assert elapsed < 10  # a gigabyte read in full would take far longer
    # The connection was dropped early: what the server got out is bounded
    # by socket buffers, far below the gigabyte it offered.
    assert app.sent < 64 * 2**20


def test_a_response_that_never_ends_times_out(make_transport):
    with LocalServer(_never_finishes) as base_url:
        started = time.monotonic()
        response = send(make_transport(), base_url + "/", timeout=1.0)
        elapsed = time.monotonic() - started
    assert (response.status_code, response.error) == (None, "timeout")
    # The 1 s timeout ended it: the answer would never have. The upper
    # bound leaves room for a machine busy with the tests running beside.
    assert 0.9 <= elapsed < 10


def test_the_total_timeout_covers_a_trickling_body(make_transport):
    with LocalServer(_trickles) as base_url:
        started = time.monotonic()
        response = send(make_transport(), base_url + "/", timeout=1.0)
        elapsed = time.monotonic() - started
    assert response.error == "timeout"
    assert elapsed < 10  # the trickle alone would go on far longer


def test_a_longer_endpoint_timeout_lets_a_slow_answer_through(make_transport):
    config = TransportConfig(timeout=0.3)
    with LocalServer(_answers_late) as base_url:
        assert send(make_transport(config), base_url + "/").error == "timeout"
        response = send(make_transport(config), base_url + "/", timeout=3.0)
    assert (response.status_code, response.body, response.error) == (202, "late", None)


def test_a_refused_connection_is_a_connection_error(make_transport):
    with socket.socket() as sock:  # a port that was free a moment ago
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    response = send(make_transport(), f"http://127.0.0.1:{port}/")
    assert response.status_code is None
    assert response.error is not None and response.error.startswith(
        "connection_error: ConnectError"
    )


def test_local_server_serves_and_stops():
    server = LocalServer(_answers_late)
    base_url = server.start()
    try:
        assert base_url == f"http://127.0.0.1:{server.port}" and server.port > 0
        assert server.url("/x") == base_url + "/x"
    finally:
        server.stop()
    server.stop()  # idempotent
    response = send(Transport(), base_url + "/")
    assert response.error is not None and response.error.startswith("connection_error")


# -- routes: proxies and client certificates ---------------------------------------


def test_a_request_without_proxy_or_certificate_takes_the_plain_path(monkeypatch):
    """No per-attempt work for endpoints that use neither: no route is
    worked out and the client gets the ordinary httpx transport."""
    import producer.transport as transport_module

    def forbidden(*args: Any) -> Any:
        raise AssertionError("the plain path built a route")

    monkeypatch.setattr(transport_module, "build_transport", forbidden)
    monkeypatch.setattr(Transport, "_route", forbidden)
    with LocalServer(_ok) as base_url:
        response = send(Transport(), base_url + "/")
    assert response.status_code == 200, response.error


def test_clients_share_one_tls_context(monkeypatch):
    """A TLS context reads the whole CA bundle: one is built for the default
    trust however many clients (pool keys) the transport opens."""
    import ssl

    built: list[object] = []
    real = ssl.create_default_context

    def counting(*args: Any, **kwargs: Any) -> Any:
        built.append(real(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(ssl, "create_default_context", counting)

    async def go(base_url: str) -> list[int | None]:
        transport = Transport()
        try:
            requests = (Request(base_url + "/", {}, b"", pool_key=f"ep#{i}") for i in range(5))
            return [(await transport.send(r)).status_code for r in requests]
        finally:
            await transport.aclose()

    with LocalServer(_ok) as base_url:
        assert asyncio.run(go(base_url)) == [200] * 5
    assert len(built) == 1


async def _ok(scope: dict[str, Any], receive: Any, send_: Any) -> None:
    await send_({"type": "http.response.start", "status": 200, "headers": []})
    await send_({"type": "http.response.body", "body": b"ok"})


def test_a_new_route_replaces_the_client_while_the_old_one_finishes(make_transport):
    """Rotation without a gap: a request under way keeps its client (and
    proxy) to the end; the next one on the same pool key uses the new route."""
    from tests.helpers.proxy import ConnectProxy
    from tests.helpers.receiver import Receiver

    with Receiver() as receiver, ConnectProxy() as old, ConnectProxy() as new:
        slow = receiver.slow("/slow", 0.5)

        async def go() -> tuple[Response, Response, int]:
            transport = make_transport()
            try:
                first = asyncio.create_task(
                    transport.send(Request(slow, {}, b"{}", pool_key="ep#0", proxy=old.url))
                )
                for _ in range(500):
                    if old.asked or first.done():
                        break
                    await asyncio.sleep(0.01)
                second = await transport.send(
                    Request(receiver.url("/fast"), {}, b"{}", pool_key="ep#0", proxy=new.url)
                )
                return await first, second, transport.client_count
            finally:
                await transport.aclose()

        first, second, clients = asyncio.run(go())
    assert first.status_code == 200 and second.status_code == 200, (first, second)
    assert [a.target.rsplit("/", 1)[1] for a in old.asked] == ["slow"]
    assert [a.target.rsplit("/", 1)[1] for a in new.asked] == ["fast"]
    assert clients == 1
