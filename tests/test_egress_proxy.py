"""The egress proxy: every request through a proxy on 127.0.0.1 that records
what it was asked (tests/helpers/proxy.py).

Receivers are named (``receiver.example``, answered by a fake resolver), so
the tests see that the guard resolves and checks the name and the proxy is
asked for the checked address, while the TLS server name stays the name.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
import trustme
from sqlalchemy import text

from producer import Producer, ValidationError
from producer.sealing import generate_key
from tests.helpers.api import Api, create_endpoint
from tests.helpers.proxy import ConnectProxy, TlsReceiver, server_context
from tests.helpers.resolvers import FakeResolver
from tests.helpers.waiting import wait_for_status

NAME = "receiver.example"
PUBLIC = "93.184.215.14"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def https_receiver(ca: trustme.CA) -> Iterator[TlsReceiver]:
    """An HTTPS receiver with a certificate for ``receiver.example``."""
    with TlsReceiver(server_context(ca, NAME)) as receiver:
        yield receiver


@pytest.fixture
def proxy() -> Iterator[ConnectProxy]:
    with ConnectProxy() as running:
        yield running


@pytest.fixture
def resolver() -> FakeResolver:
    return FakeResolver({NAME: ["127.0.0.1"]})


@pytest.fixture
def proxied(make_producer, proxy, resolver) -> Producer:
    """A producer sending everything through ``proxy`` (WEBHOOKS_EGRESS_PROXY)."""
    producer = make_producer(egress_proxy=proxy.url, encryption_keys=[generate_key()])
    producer.destinations = replace(producer.destinations, resolver=resolver)
    return producer


def trust(ca: trustme.CA) -> dict[str, str]:
    """A ``tls`` object trusting ``ca`` for the receiver (no client certificate)."""
    return {"ca_pem": ca.cert_pem.bytes().decode()}


def test_https_goes_through_a_connect_tunnel_to_the_checked_address(
    proxied, proxy, https_receiver, ca, resolver
):
    endpoint = proxied.create_endpoint(https_receiver.url(NAME, "/hook"), tls=trust(ca))

    result = proxied.test_endpoint(endpoint.id)

    assert result.succeeded, result.error
    [asked] = proxy.asked
    assert (asked.method, asked.target) == ("CONNECT", f"127.0.0.1:{https_receiver.port}")
    [seen] = https_receiver.seen
    assert seen.server_name == NAME
    assert seen.headers["host"] == f"{NAME}:{https_receiver.port}"
    assert NAME in resolver.asked


def test_plain_http_is_forwarded_to_the_checked_address(proxied, proxy, receiver):
    url = receiver.url("/plain").replace("127.0.0.1", NAME)
    endpoint = proxied.create_endpoint(url)

    result = proxied.test_endpoint(endpoint.id)

    assert result.succeeded, result.error
    [asked] = proxy.asked
    assert asked.method == "POST"
    assert asked.target.startswith("http://127.0.0.1:") and asked.target.endswith("/plain")
    assert asked.headers["host"].startswith(NAME)
    [got] = receiver.received("/plain")
    assert got.headers["host"].startswith(NAME)


def test_a_refused_destination_behind_the_proxy_is_still_refused(proxied, proxy, resolver):
    resolver.answers["moving.example"] = [PUBLIC]
    endpoint = proxied.create_endpoint("https://moving.example/hook")
    resolver.answers["moving.example"] = ["10.0.0.5"]  # the name moves inside

    result = proxied.test_endpoint(endpoint.id)

    assert not result.succeeded
    assert result.error is not None and result.error.startswith("blocked_destination"), result
    assert "10.0.0.5" in result.error
    assert proxy.asked == []


def test_the_endpoint_proxy_overrides_the_setting(make_producer, resolver, https_receiver, ca):
    with ConnectProxy(refuse=403) as service_proxy, ConnectProxy() as own:
        producer = make_producer(egress_proxy=service_proxy.url)
        producer.destinations = replace(producer.destinations, resolver=resolver)
        endpoint = producer.create_endpoint(
            https_receiver.url(NAME), tls=trust(ca), proxy_url=own.url
        )
        result = producer.test_endpoint(endpoint.id)
        assert result.succeeded, result.error
        assert service_proxy.asked == [] and [a.method for a in own.asked] == ["CONNECT"]


def test_a_refusing_proxy_is_recorded_as_a_proxy_error(make_producer, resolver, ca, https_receiver):
    with ConnectProxy(refuse=403) as refusing:
        producer = make_producer(egress_proxy=refusing.url)
        producer.destinations = replace(producer.destinations, resolver=resolver)
        endpoint = producer.create_endpoint(https_receiver.url(NAME), tls=trust(ca))
        result = producer.test_endpoint(endpoint.id)
    assert result.error is not None and result.error.startswith("proxy_error:"), result.error
    assert "403" in result.error
    assert https_receiver.seen == []
    [attempt] = producer.list_attempts(result.delivery_id)
    assert attempt.error == result.error


@pytest.mark.parametrize("scheme", ["https", "http"])
def test_an_unreachable_proxy_is_a_proxy_error(make_producer, resolver, scheme):
    closed = ConnectProxy()
    closed.start()
    closed.stop()  # its port now refuses connections
    producer = make_producer(egress_proxy=closed.url)
    producer.destinations = replace(producer.destinations, resolver=resolver)
    endpoint = producer.create_endpoint(f"{scheme}://{NAME}:9/hook")
    result = producer.test_endpoint(endpoint.id)
    assert result.error is not None and result.error.startswith("proxy_error:"), result.error


def test_proxy_credentials_are_sent_sealed_and_hidden(make_producer, resolver, https_receiver, ca):
    with ConnectProxy(credentials="egress:s3cret") as guarded:
        producer = make_producer(encryption_keys=[generate_key()])
        producer.destinations = replace(producer.destinations, resolver=resolver)
        proxy_url = guarded.url.replace("http://", "http://egress:s3cret@")
        endpoint = producer.create_endpoint(
            https_receiver.url(NAME), tls=trust(ca), proxy_url=proxy_url
        )
        assert producer.test_endpoint(endpoint.id).succeeded
    assert endpoint.proxy_url == guarded.url.replace("http://", "http://egress:***@")
    with producer.context.engine.connect() as connection:
        raw = connection.execute(
            text("SELECT proxy_url FROM webhook_endpoints WHERE id = :id"), {"id": endpoint.id}
        ).scalar_one()
    assert "s3cret" not in raw and raw.startswith("enc:")
    shown = Api(producer).admin.get(f"/v1/endpoints/{endpoint.id}").json()
    assert "s3cret" not in str(shown) and shown["proxy_url"] == endpoint.proxy_url


def test_an_endpoint_proxy_passes_the_guard(make_producer):
    producer = make_producer()
    with pytest.raises(ValidationError) as caught:
        producer.create_endpoint("https://example.com/", proxy_url="http://10.0.0.7:3128")
    assert caught.value.details[0]["field"] == "proxy_url"
    assert "10.0.0.7" in str(caught.value)
    for bad in ("socks5://127.0.0.1:1080", "http://127.0.0.1:3128/path", 5):
        with pytest.raises(ValidationError, match="proxy_url"):
            producer.create_endpoint("https://example.com/", proxy_url=bad)


def test_the_api_sets_and_clears_the_proxy(proxied, proxy):
    api = Api(proxied)
    created = create_endpoint(api.admin, "https://receiver.example/", proxy_url=proxy.url)
    assert created["proxy_url"] == proxy.url
    cleared = api.admin.patch(f"/v1/endpoints/{created['id']}", json={"proxy_url": None})
    assert cleared.json()["proxy_url"] is None


def test_the_worker_delivers_through_the_proxy(proxied, proxy, https_receiver, ca):
    endpoint = proxied.create_endpoint(https_receiver.url(NAME), tls=trust(ca))
    message = proxied.send("invoice.paid", {"n": 1})
    delivery = proxied.list_deliveries(message_id=message.id).data[0]
    with proxied.start_worker_thread():
        wait_for_status(proxied, delivery.id, "succeeded")
    assert [a.target for a in proxy.asked] == [f"127.0.0.1:{https_receiver.port}"]
    assert len(https_receiver.seen) == 1
    assert https_receiver.seen[0].headers["webhook-id"] == message.id
    assert proxied.get_endpoint(endpoint.id).consecutive_failures == 0
