"""The delivery contract, held by both transports: every test here runs against
httpx and aiohttp (``make_transport``, tests/helpers/transports.py), over real
servers on 127.0.0.1. Names resolve through a fake resolver only.

Timeouts, redirects, bounded and undecoded reads, the in-flight cap, the
destination guard (the checked address is the one connected to), exact
headers and body (signatures verified with ``standardwebhooks``), TLS with
the original server name, proxies, and a whole delivery through the worker.
Huge, endless and trickling bodies, answers later than the default timeout
and refused connections are tested in tests/test_transport.py, on both
transports too.
"""

from __future__ import annotations

import asyncio
import ssl
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
import trustme
from click.testing import CliRunner

from producer import Producer, WebhooksError
from producer.cli import main
from producer.credentials import ClientTLS
from producer.destinations import DestinationPolicy
from producer.signing import build_headers, generate_secret
from producer.transport import Request, Response, TransportConfig
from tests.helpers.proxy import ConnectProxy, TlsReceiver, server_context
from tests.helpers.receiver import LocalServer
from tests.helpers.resolvers import FakeResolver, offline_resolver
from tests.helpers.transports import (  # noqa: F401 (fixtures)
    KINDS,
    Answering,
    gzipped,
    make_transport_fixture,
    new_transport,
    transport_kind_fixture,
    unanswered_port,
)
from tests.helpers.waiting import wait_for_status

NAME = "hooks.customer.example"
LOCAL = DestinationPolicy.from_settings(["127.0.0.0/8"], False)
"""A guard that lets the local servers through (and only them)."""


def send(transport: Any, url: str, **kwargs: Any) -> Response:
    """One request on a fresh event loop; the transport is closed afterwards."""
    headers = kwargs.pop("headers", {"x-test": "1"})
    body = kwargs.pop("body", b"{}")

    async def go() -> Response:
        try:
            return await transport.send(Request(url, headers, body, **kwargs))
        finally:
            await transport.aclose()

    return asyncio.run(go())


def resolving(answers: dict[str, list[str]], allowed: tuple[str, ...] = ("127.0.0.0/8",)) -> Any:
    """A guard opening ``allowed`` whose resolver is a :class:`FakeResolver`."""
    return DestinationPolicy.from_settings(allowed, False, FakeResolver(answers))


# -- answers --------------------------------------------------------------------------


def test_headers_and_body_arrive_exactly_and_the_signature_verifies(make_transport, receiver):
    secret = generate_secret()
    body = b'{"type":"invoice.paid","data":{"n":1,"text":"caf\xc3\xa9"}}'
    headers = {
        "content-type": "application/json",
        "x-custom": "value with spaces",
        **build_headers([secret], "msg_1", int(time.time()), body),
    }
    response = send(make_transport(), receiver.url("/in"), headers=headers, body=body)
    assert (response.status_code, response.error) == (200, None)
    [got] = receiver.received("/in")
    got.verify(secret)  # standardwebhooks, not our code
    assert got.body == body
    assert {k: got.headers[k] for k in headers} == headers
    assert got.headers["content-length"] == str(len(body))
    assert got.headers["user-agent"].startswith("webhook-producer/")
    assert got.headers["accept-encoding"] == "identity"


def test_no_content_type_is_made_up(make_transport, receiver):
    send(make_transport(), receiver.url("/bare"), headers={})
    [got] = receiver.received("/bare")
    assert "content-type" not in got.headers


def test_a_custom_header_cannot_invite_a_compressed_answer(make_transport, receiver):
    send(make_transport(), receiver.url("/c"), headers={"Accept-Encoding": "gzip, br"})
    [got] = receiver.received("/c")
    assert got.headers["accept-encoding"] == "identity"


def test_request_headers_override_the_user_agent(make_transport, receiver):
    send(make_transport(), receiver.url("/ua"), headers={"User-Agent": "mine/2"})
    assert receiver.received("/ua")[0].headers["user-agent"] == "mine/2"


def test_the_answer_has_status_lower_case_headers_and_retry_after(make_transport):
    app = Answering(429, [("Retry-After", "30"), ("X-Reply", "a"), ("X-Reply", "b")], b"slow down")
    with LocalServer(app) as base_url:
        response = send(make_transport(), base_url + "/")
    assert (response.status_code, response.body, response.error) == (429, "slow down", None)
    assert response.retry_after == "30"
    assert response.headers["x-reply"] == "a, b"
    assert all(name == name.lower() for name in response.headers)
    assert not response.truncated


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirects_are_answers_never_followed(make_transport, status):
    app = Answering(status, [("Location", "/elsewhere")])
    with LocalServer(app) as base_url:
        response = send(make_transport(), base_url + "/hook")
    assert (response.status_code, response.error) == (status, None)
    assert response.headers["location"] == "/elsewhere"
    assert app.paths == ["/hook"]


def test_invalid_utf8_is_replaced_not_raised(make_transport):
    with LocalServer(Answering(500, body=b"bad \xff\xfe bytes")) as base_url:
        response = send(make_transport(), base_url + "/")
    assert (response.status_code, response.body) == (500, "bad \ufffd\ufffd bytes")


# -- bounded reads ----------------------------------------------------------------------


@pytest.mark.parametrize(("size", "limit", "truncated"), [(16384, 16384, False), (100, 10, True)])
def test_the_limit_is_exact(make_transport, size, limit, truncated):
    with LocalServer(Answering(200, body=b"a" * size)) as base_url:
        response = send(make_transport(TransportConfig(max_response_bytes=limit)), base_url + "/")
    assert (len(response.body), response.truncated) == (min(size, limit), truncated)


@pytest.fixture(scope="module")
def bomb() -> bytes:
    """64 MiB of zeros, gzipped to about 64 KiB."""
    return gzipped(b"0" * 2**26)


def test_a_gzip_bomb_is_inflated_only_up_to_the_limit(make_transport, bomb):
    app = Answering(200, [("Content-Encoding", "gzip")], bomb)
    with LocalServer(app) as base_url:
        response = send(make_transport(), base_url + "/")
    # Inflated once, by the bounded reader: the client's own decoding is off
    # (decoding twice would fail and leave nothing).
    assert response.body == "0" * 16384 and response.truncated


def test_a_small_gzip_answer_reads_as_its_text(make_transport):
    app = Answering(400, [("Content-Encoding", "gzip")], gzipped(b"bad signature"))
    with LocalServer(app) as base_url:
        response = send(make_transport(), base_url + "/")
    assert (response.status_code, response.body, response.truncated) == (
        400,
        "bad signature",
        False,
    )


# -- timeouts ---------------------------------------------------------------------------


def test_an_answer_that_never_comes_times_out(make_transport, receiver):
    started = time.monotonic()
    response = send(make_transport(), receiver.hang("/stuck"), timeout=0.5)
    assert (response.status_code, response.error) == (None, "timeout")
    assert 0.4 <= time.monotonic() - started < 3


def test_the_connect_timeout_bounds_establishing_the_connection(make_transport):
    config = TransportConfig(connect_timeout=0.3, timeout=10)
    with unanswered_port() as port:
        started = time.monotonic()
        response = send(make_transport(config), f"http://127.0.0.1:{port}/")
    assert response.error == "timeout"
    assert time.monotonic() - started < 3  # the connect bound, not the total one


# -- failures read the same --------------------------------------------------------------


def test_an_unusable_url_is_reported_not_raised(make_transport):
    response = send(make_transport(), "ftp://receiver.example/")
    assert response.error is not None
    assert response.error.startswith("connection_error: UnsupportedProtocol"), response.error


def test_a_header_that_is_not_ascii_fails_the_attempt_unsent(make_transport, receiver):
    response = send(make_transport(), receiver.url("/h"), headers={"x-note": "café"})
    assert response.error == (
        "internal_error: UnicodeEncodeError: 'ascii' codec can't encode character '\\xe9' "
        "in position 3: ordinal not in range(128)"
    )
    assert receiver.received() == []


def test_a_host_that_is_not_valid_punycode_fails_the_attempt(make_transport):
    response = send(make_transport(), "http://xn--zz.example/hooks")
    assert response.error == "internal_error: IDNAError: Invalid A-label"


def test_both_transports_word_a_failed_lookup_alike():
    guard = resolving({})
    errors = {
        kind: send(new_transport(kind, guard=guard), "http://nowhere.example/").error
        for kind in KINDS
    }
    assert len(set(errors.values())) == 1, errors
    assert errors["aiohttp"] == (
        "connection_error: ConnectError: cannot resolve nowhere.example: "
        "[Errno -2] nowhere.example is not known to the test resolver"
    )


# -- in-flight cap ------------------------------------------------------------------------


def _concurrently(transport: Any, urls_and_keys: list[tuple[str, str]]) -> list[Response]:
    async def go() -> list[Response]:
        try:
            sends = (transport.send(Request(u, {}, b"{}", pool_key=k)) for u, k in urls_and_keys)
            return await asyncio.gather(*sends)
        finally:
            await transport.aclose()

    return asyncio.run(go())


def test_a_pool_key_has_at_most_its_cap_in_flight(make_transport, receiver):
    url = receiver.slow("/capped", 0.2)
    transport = make_transport(TransportConfig(max_connections_per_client=2))
    responses = _concurrently(transport, [(url, "ep#0")] * 6)
    assert [r.status_code for r in responses] == [200] * 6
    assert receiver.max_concurrent["/capped"] == 2


def test_pool_keys_do_not_share_their_caps(make_transport, receiver):
    url = receiver.slow("/spread", 0.3)
    transport = make_transport(TransportConfig(max_connections_per_client=1))
    responses = _concurrently(transport, [(url, f"ep#{i}") for i in range(3)])
    assert [r.status_code for r in responses] == [200] * 3
    assert receiver.max_concurrent["/spread"] == 3


def test_pools_are_kept_per_key_and_bounded(make_transport, receiver):
    transport = make_transport(TransportConfig(max_clients=2))

    async def go() -> list[int]:
        counts = []
        try:
            for key in ["a", "b", "a", "c", "d"]:
                response = await transport.send(Request(receiver.url("/"), {}, b"", pool_key=key))
                assert response.status_code == 200, response.error
                counts.append(transport.client_count)
            return counts
        finally:
            await transport.aclose()

    assert asyncio.run(go()) == [1, 2, 2, 2, 2]
    assert transport.client_count == 0


# -- the destination guard ---------------------------------------------------------------


def test_a_name_resolving_to_a_forbidden_address_is_refused(make_transport, receiver):
    guard = resolving({"internal.example": ["10.1.2.3"]}, allowed=())
    response = send(make_transport(guard=guard), f"http://internal.example:{receiver.port}/")
    assert response.error == (
        "blocked_destination: internal.example -> 10.1.2.3 is a private address; "
        "to deliver there, add its range to WEBHOOKS_ALLOWED_CIDRS (e.g. 10.1.2.3/32)"
    )
    assert receiver.received() == []


@pytest.mark.parametrize("host", ["127.0.0.1", "2130706433", "[::ffff:127.0.0.1]"])
def test_a_forbidden_ip_literal_is_refused(make_transport, receiver, host):
    # The offline resolver reads every spelling of an address, as getaddrinfo does.
    guard = DestinationPolicy.from_settings([], False, offline_resolver)
    response = send(make_transport(guard=guard), f"http://{host}:{receiver.port}/")
    assert response.error is not None
    assert response.error.startswith("blocked_destination: "), response.error
    assert "is a loopback address" in response.error
    assert receiver.received() == []


def test_https_only_refuses_plain_http(make_transport, receiver):
    guard = DestinationPolicy.from_settings(["127.0.0.0/8"], True)
    response = send(make_transport(guard=guard), receiver.url("/"))
    assert response.error == "blocked_destination: plain http is refused (WEBHOOKS_HTTPS_ONLY)"
    assert receiver.received() == []


class _Moving(FakeResolver):
    """Answers the receiver's address once, then an address the guard refuses:
    a second lookup between the check and the connection would be seen."""

    async def __call__(self, host: str, port: int) -> list[str]:
        answer = await super().__call__(host, port)
        self.answers[host] = ["10.9.9.9"]
        return answer


def test_the_connection_goes_to_the_checked_address(make_transport, receiver):
    resolver = _Moving({NAME: ["127.0.0.1"]})
    guard = DestinationPolicy.from_settings(["127.0.0.0/8"], False, resolver)
    response = send(make_transport(guard=guard), f"http://{NAME}:{receiver.port}/in")
    assert (response.status_code, response.error) == (200, None)
    assert resolver.asked == [NAME]  # one lookup: the checked answer was used
    [got] = receiver.received("/in")
    assert got.headers["host"] == f"{NAME}:{receiver.port}"


def test_a_name_that_moved_inside_is_refused(make_transport, receiver):
    resolver = _Moving({NAME: ["127.0.0.1"]})
    guard = DestinationPolicy.from_settings(["127.0.0.0/8"], False, resolver)
    assert send(make_transport(guard=guard), f"http://{NAME}:{receiver.port}/").error is None
    response = send(make_transport(guard=guard), f"http://{NAME}:{receiver.port}/")
    assert response.error is not None
    assert response.error.startswith(f"blocked_destination: {NAME} -> 10.9.9.9 is a private")


# -- TLS: the original server name, client certificates ---------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_receiver(ca: trustme.CA) -> Iterator[TlsReceiver]:
    """An HTTPS receiver for ``NAME`` that asks for (but does not require) a
    client certificate of ``ca``."""
    with TlsReceiver(server_context(ca, NAME, ssl.CERT_OPTIONAL)) as receiver:
        yield receiver


def test_tls_names_the_host_while_connecting_to_the_checked_address(
    make_transport, tls_receiver, ca
):
    trust = ClientTLS(None, None, ca.cert_pem.bytes().decode())
    guard = resolving({NAME: ["127.0.0.1"]})
    response = send(make_transport(guard=guard), tls_receiver.url(NAME, "/hook"), tls=trust)
    assert (response.status_code, response.error) == (200, None)
    [seen] = tls_receiver.seen
    assert seen.server_name == NAME
    assert seen.headers["host"] == f"{NAME}:{tls_receiver.port}"
    assert seen.client_subject is None


def test_the_client_certificate_is_presented(make_transport, tls_receiver, ca):
    cert = ca.issue_cert("client.example")
    tls = ClientTLS(
        cert.cert_chain_pems[0].bytes().decode(),
        cert.private_key_pem.bytes().decode(),
        ca.cert_pem.bytes().decode(),
    )
    guard = resolving({NAME: ["127.0.0.1"]})
    response = send(make_transport(guard=guard), tls_receiver.url(NAME, "/m"), tls=tls)
    assert (response.status_code, response.error) == (200, None)
    [seen] = tls_receiver.seen
    assert seen.client_subject is not None


def test_an_untrusted_receiver_certificate_is_a_connection_error(make_transport, tls_receiver):
    guard = resolving({NAME: ["127.0.0.1"]})
    response = send(make_transport(guard=guard), tls_receiver.url(NAME, "/"))
    assert response.error is not None
    assert response.error.startswith("connection_error: ConnectError: "), response.error
    assert tls_receiver.seen == []


# -- through the worker ------------------------------------------------------------------


def test_the_worker_delivers_with_the_chosen_transport(make_producer, receiver, transport_kind):
    producer = make_producer(transport=transport_kind)
    assert type(producer.context.new_transport()).__module__ == (
        "producer.transport_aiohttp" if transport_kind == "aiohttp" else "producer.transport"
    )
    endpoint = producer.create_endpoint(
        receiver.url("/e2e"), auth={"type": "bearer", "token": "t0ken"}
    )
    message = producer.send("invoice.paid", {"n": 1})
    [delivery] = producer.list_deliveries(message_id=message.id).data
    with producer.start_worker_thread():
        wait_for_status(producer, delivery.id, "succeeded")
    [got] = receiver.received("/e2e")
    got.verify(producer.get_endpoint_secret(endpoint.id).secret)
    assert got.headers["authorization"] == "Bearer t0ken"
    assert got.headers["webhook-id"] == message.id


def test_the_test_send_uses_the_chosen_transport(make_producer, receiver, transport_kind):
    producer = make_producer(transport=transport_kind)
    endpoint = producer.create_endpoint(receiver.url("/ping"))
    result = producer.test_endpoint(endpoint.id)
    assert result.succeeded and result.status_code == 200, result.error
    [got] = receiver.received("/ping")
    got.verify(producer.get_endpoint_secret(endpoint.id).secret)


MISSING = "WEBHOOKS_TRANSPORT=aiohttp needs aiohttp: pip install 'webhook-producer[aiohttp]'"


@pytest.fixture
def without_aiohttp(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if the ``aiohttp`` extra were not installed."""
    monkeypatch.setitem(sys.modules, "aiohttp", None)
    monkeypatch.delitem(sys.modules, "producer.transport_aiohttp", raising=False)


def test_choosing_aiohttp_without_it_installed_names_the_extra(database_url, without_aiohttp):
    with pytest.raises(WebhooksError) as caught:
        Producer(database_url, transport="aiohttp", auto_migrate=True)
    assert str(caught.value) == MISSING


def test_the_cli_says_so_in_one_line(database_url, without_aiohttp, monkeypatch):
    runner = CliRunner()
    url = ["--database-url", database_url]
    assert runner.invoke(main, [*url, "db", "upgrade"]).exit_code == 0
    monkeypatch.setenv("WEBHOOKS_TRANSPORT", "aiohttp")
    result = runner.invoke(main, [*url, "endpoints", "list"])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [f"error: {MISSING}"]


# -- through an egress proxy --------------------------------------------------------------


def test_https_goes_through_a_tunnel_to_the_checked_address(make_transport, tls_receiver, ca):
    trust = ClientTLS(None, None, ca.cert_pem.bytes().decode())
    guard = resolving({NAME: ["127.0.0.1"]})
    with ConnectProxy() as proxy:
        response = send(
            make_transport(guard=guard), tls_receiver.url(NAME, "/t"), tls=trust, proxy=proxy.url
        )
    assert (response.status_code, response.error) == (200, None)
    [asked] = proxy.asked
    assert (asked.method, asked.target) == ("CONNECT", f"127.0.0.1:{tls_receiver.port}")
    [seen] = tls_receiver.seen
    assert seen.server_name == NAME
    assert seen.headers["host"] == f"{NAME}:{tls_receiver.port}"


def test_plain_http_is_forwarded_to_the_checked_address(make_transport, receiver):
    guard = resolving({NAME: ["127.0.0.1"]})
    with ConnectProxy() as proxy:
        response = send(
            make_transport(guard=guard), f"http://{NAME}:{receiver.port}/f", proxy=proxy.url
        )
    assert (response.status_code, response.error) == (200, None)
    [asked] = proxy.asked
    assert asked.target == f"http://127.0.0.1:{receiver.port}/f"
    assert receiver.received("/f")[0].headers["host"] == f"{NAME}:{receiver.port}"


def test_a_forbidden_destination_is_refused_before_the_proxy(make_transport, receiver):
    guard = resolving({"internal.example": ["10.0.0.5"]}, allowed=())
    with ConnectProxy() as proxy:
        response = send(make_transport(guard=guard), "https://internal.example/", proxy=proxy.url)
    assert response.error is not None
    assert response.error.startswith("blocked_destination: internal.example -> 10.0.0.5")
    assert proxy.asked == []


def test_proxy_credentials_in_its_url_are_sent(make_transport, receiver):
    guard = resolving({NAME: ["127.0.0.1"]})
    with ConnectProxy(credentials="egress:s3cret") as proxy:
        url = proxy.url.replace("http://", "http://egress:s3cret@")
        response = send(make_transport(guard=guard), f"http://{NAME}:{receiver.port}/", proxy=url)
    assert (response.status_code, response.error) == (200, None)


def test_a_refusing_proxy_is_a_proxy_error(make_transport, tls_receiver, ca):
    trust = ClientTLS(None, None, ca.cert_pem.bytes().decode())
    guard = resolving({NAME: ["127.0.0.1"]})
    with ConnectProxy(refuse=403) as proxy:
        response = send(
            make_transport(guard=guard), tls_receiver.url(NAME), tls=trust, proxy=proxy.url
        )
    assert response.error == (
        f"proxy_error: ProxyError: the proxy refused CONNECT 127.0.0.1:{tls_receiver.port}: "
        "403 Refused"
    )
    assert tls_receiver.seen == []


@pytest.mark.parametrize(
    ("scheme", "kind"),
    [
        ("https", "ProxyError: cannot connect to the proxy 127.0.0.1:"),  # a tunnel
        ("http", "ConnectError: "),  # a forwarding proxy: the only peer
    ],
)
def test_an_unreachable_proxy_is_a_proxy_error(make_transport, scheme, kind):
    closed = ConnectProxy()
    closed.start()
    closed.stop()  # its port refuses connections now
    guard = resolving({NAME: ["127.0.0.1"]})
    response = send(make_transport(guard=guard), f"{scheme}://{NAME}:9/", proxy=closed.url)
    assert response.error is not None
    assert response.error.startswith(f"proxy_error: {kind}"), response.error


def test_an_endpoint_proxy_inside_the_network_is_refused(make_transport):
    guard = resolving({NAME: ["127.0.0.1"], "inside.example": ["10.0.0.1"]})
    request = {"proxy": "http://inside.example:3128", "guard_proxy": True}
    response = send(make_transport(guard=guard), f"https://{NAME}/", **request)
    assert response.error == (
        "blocked_destination: proxy: inside.example -> 10.0.0.1 is a private address; "
        "to deliver there, add its range to WEBHOOKS_ALLOWED_CIDRS (e.g. 10.0.0.1/32)"
    )


def test_an_endpoint_proxy_that_does_not_resolve_is_a_proxy_error(make_transport):
    guard = resolving({NAME: ["127.0.0.1"]})
    request = {"proxy": "http://nope.example:3128", "guard_proxy": True}
    response = send(make_transport(guard=guard), f"https://{NAME}/", **request)
    assert response.error == (
        "proxy_error: ConnectError: cannot resolve nope.example: "
        "[Errno -2] nope.example is not known to the test resolver"
    )
