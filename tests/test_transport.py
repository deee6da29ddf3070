"""The HTTP transport: respx for unit behaviour, a real local server for
bodies that are huge or never end."""

from __future__ import annotations

import asyncio
import time

import httpx
import respx

from producer.transport import Request, Transport, TransportConfig
from tests.receiver import Receiver

URL = "https://receiver.example/hooks"


def send(transport: Transport, url: str = URL, **kwargs) -> object:
    async def go():
        try:
            return await transport.send(Request(url, {"x": "1"}, b"{}", **kwargs))
        finally:
            await transport.aclose()

    return asyncio.run(go())


@respx.mock
def test_success_returns_status_headers_and_body():
    respx.post(URL).respond(200, text="thanks", headers={"X-Reply": "yes"})
    response = send(Transport())
    assert (response.status_code, response.body, response.error) == (200, "thanks", None)
    assert response.headers["x-reply"] == "yes" and not response.truncated
    assert response.duration_ms >= 0


@respx.mock
def test_request_carries_the_given_headers_and_body():
    route = respx.post(URL).respond(204)
    send(Transport())
    request = route.calls.last.request
    assert request.headers["x"] == "1" and request.content == b"{}"


@respx.mock
def test_body_beyond_the_limit_is_cut_and_flagged():
    respx.post(URL).respond(200, content=b"a" * 50_000)
    response = send(Transport(TransportConfig(max_response_bytes=16384)))
    assert len(response.body) == 16384 and response.truncated


@respx.mock
def test_redirects_are_never_followed():
    respx.post(URL).respond(302, headers={"Location": "https://elsewhere.example/"})
    target = respx.post("https://elsewhere.example/").respond(200)
    response = send(Transport())
    assert response.status_code == 302 and not target.called


@respx.mock
def test_timeout_is_reported_as_timeout():
    respx.post(URL).mock(side_effect=httpx.ReadTimeout("slow"))
    assert send(Transport()).error == "timeout"


@respx.mock
def test_connection_failure_is_reported_with_its_reason():
    respx.post(URL).mock(side_effect=httpx.ConnectError("refused"))
    response = send(Transport())
    assert response.status_code is None
    assert response.error == "connection_error: ConnectError: refused"


@respx.mock
def test_retry_after_is_surfaced():
    respx.post(URL).respond(429, headers={"Retry-After": "30"})
    assert send(Transport()).retry_after == "30"


def test_clients_are_cached_per_pool_key_and_bounded():
    async def go() -> tuple[int, int, bool]:
        transport = Transport(TransportConfig(max_clients=3))
        first = transport._client("a")
        same = transport._client("a") is first
        for key in "bcde":
            transport._client(key)
        await asyncio.sleep(0)
        count = transport.client_count
        await transport.aclose()
        await asyncio.sleep(0)
        return count, len(transport._clients), same and first.is_closed

    count, after_close, first_closed = asyncio.run(go())
    assert count == 3 and after_close == 0 and first_closed


async def _endless(scope, receive, send):
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    chunk = b"x" * 65536
    for _ in range(16_000):  # up to ~1 GB if anyone read it all
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def _never_finishes(scope, receive, send):
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"partial", "more_body": True})
    await asyncio.sleep(3600)


def test_a_huge_body_is_read_only_up_to_the_limit():
    with _server(_endless) as url:
        started = time.monotonic()
        response = send(Transport(), url)
        assert response.status_code == 200 and response.truncated
        assert len(response.body) == 16384
        assert time.monotonic() - started < 5


def test_a_response_that_never_ends_times_out():
    with _server(_never_finishes) as url:
        started = time.monotonic()
        response = send(Transport(), url, timeout=1.0)
        assert response.error == "timeout"
        assert time.monotonic() - started < 3


class _server:
    """Run a raw ASGI app on 127.0.0.1 (reusing the test receiver's runner)."""

    def __init__(self, app) -> None:
        self.receiver = Receiver()
        self.app = app

    def __enter__(self) -> str:
        self.receiver.start_app(self.app)
        return self.receiver.url("/")

    def __exit__(self, *exc: object) -> None:
        self.receiver.stop()
