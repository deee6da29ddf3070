"""The destination guard: no webhook reaches the operator's own network.

Refusals are proven with a fake resolver and the guard's decision; no request
ever leaves for a forbidden address.
"""

from __future__ import annotations

import asyncio
import ipaddress

import httpx
import pytest

from producer import Producer, ValidationError
from producer.destinations import BlockedDestination, DestinationPolicy
from tests.helpers.waiting import wait_until

FORBIDDEN = {
    "127.0.0.1": "loopback",
    "10.1.2.3": "private",
    "172.16.0.9": "private",
    "192.168.1.1": "private",
    "169.254.169.254": "cloud metadata",
    "169.254.10.10": "link-local",
    "100.64.0.1": "shared (CGNAT)",
    "100.100.100.200": "cloud metadata",
    "224.0.0.1": "multicast",
    "0.0.0.0": "unspecified",
    "240.0.0.1": "reserved",
    "255.255.255.255": "",
    "::1": "loopback",
    "::": "unspecified",
    "fe80::1": "link-local",
    "fc00::1": "private",
    "fd00:ec2::254": "cloud metadata",
    "ff02::1": "multicast",
    "::ffff:127.0.0.1": "loopback",
    "::ffff:10.0.0.1": "private",
    "64:ff9b::a00:1": "private",  # NAT64 form of 10.0.0.1
    "2002:a00:1::": "private",  # 6to4 form of 10.0.0.1
}


@pytest.mark.parametrize(("address", "kind"), FORBIDDEN.items())
def test_internal_addresses_are_refused(address, kind):
    reason = DestinationPolicy().reason(address)
    assert reason is not None and kind in reason


@pytest.mark.parametrize(
    "address", ["93.184.215.14", "2606:4700:4700::1111", "::ffff:93.184.215.14"]
)
def test_public_addresses_are_allowed(address):
    assert DestinationPolicy().reason(address) is None


def test_allowed_cidrs_open_chosen_ranges_only():
    policy = DestinationPolicy.from_settings(["127.0.0.0/8", "::1/128"], False)
    assert policy.reason("127.0.0.1") is None and policy.reason("::1") is None
    assert policy.reason("::ffff:127.0.0.1") is None
    assert policy.reason("10.0.0.1") is not None


def _fake_resolver(answers: dict[str, list[str]]):
    asked: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        asked.append(host)
        return answers[host]

    resolve.asked = asked  # type: ignore[attr-defined]
    return resolve


def test_a_name_resolving_to_an_internal_address_is_refused():
    policy = DestinationPolicy(resolver=_fake_resolver({"internal.example": ["10.9.8.7"]}))
    with pytest.raises(BlockedDestination, match=r"internal.example -> 10.9.8.7 is a private"):
        asyncio.run(policy.resolve("internal.example", 443))


def test_a_mixed_answer_is_refused():
    resolver = _fake_resolver({"mixed.example": ["93.184.215.14", "127.0.0.1"]})
    with pytest.raises(BlockedDestination):
        asyncio.run(DestinationPolicy(resolver=resolver).resolve("mixed.example", 443))


@pytest.mark.parametrize(
    "url", ["http://10.0.0.1/h", "http://[::1]:8080/h", "https://169.254.169.254/"]
)
def test_ip_literal_urls_are_refused_at_registration(database_url, url):
    producer = Producer(database_url, auto_migrate=True)
    with pytest.raises(ValidationError, match="destination refused"):
        producer.create_endpoint(url)
    assert producer.list_endpoints().data == []


@pytest.mark.parametrize(
    ("url", "cidr"), [("http://10.0.0.1/h", "10.0.0.1/32"), ("http://[::1]:8080/h", "::1/128")]
)
def test_a_refused_destination_names_the_setting_that_opens_it(database_url, url, cidr):
    producer = Producer(database_url, auto_migrate=True)
    with pytest.raises(ValidationError) as info:
        producer.create_endpoint(url)
    assert f"add its range to WEBHOOKS_ALLOWED_CIDRS (e.g. {cidr})" in info.value.message
    opened = Producer(database_url, auto_migrate=True, allowed_cidrs=[cidr])
    assert opened.create_endpoint(url).url == url


def test_https_only_refuses_plain_http(database_url):
    producer = Producer(database_url, auto_migrate=True, https_only=True)
    with pytest.raises(ValidationError, match="https"):
        producer.create_endpoint("http://hooks.example/")
    assert producer.create_endpoint("https://hooks.example/").url == "https://hooks.example/"


def test_blocked_delivery_is_recorded_and_not_retried(database_url):
    producer = Producer(database_url, auto_migrate=True)
    resolver = _fake_resolver({"internal.example": ["192.168.0.10"]})
    producer.destinations = DestinationPolicy(resolver=resolver)
    sent: list[httpx.Request] = []
    producer.transport_factory = lambda key: httpx.MockTransport(
        lambda request: sent.append(request) or httpx.Response(200)
    )
    endpoint = producer.create_endpoint("http://internal.example/hooks")
    result = producer.test_endpoint(endpoint.id)
    assert not result.succeeded and result.status_code is None
    assert (
        result.error == "blocked_destination: internal.example -> 192.168.0.10 is a private address"
    )
    assert sent == [] and resolver.asked == ["internal.example"]  # type: ignore[attr-defined]
    delivery = producer.get_delivery(result.delivery_id)
    assert delivery.status == "failed" and delivery.next_attempt_at is None
    [attempt] = producer.list_attempts(result.delivery_id)
    assert attempt.error.startswith("blocked_destination: ")


def test_worker_fails_a_blocked_delivery_at_once(database_url):
    producer = Producer(database_url, auto_migrate=True, worker_poll_interval=0.05)
    producer.destinations = DestinationPolicy(
        resolver=_fake_resolver({"meta.example": ["169.254.169.254"]})
    )
    producer.create_endpoint("http://meta.example/")
    message = producer.send("a.b", {})
    with producer.start_worker_thread():
        wait_until(
            lambda: producer.list_deliveries(message_id=message.id).data[0].status == "failed",
            what="the delivery to fail",
        )
    [delivery] = producer.list_deliveries(message_id=message.id).data
    assert delivery.status == "failed" and delivery.attempt_count == 1
    assert delivery.last_error.startswith("blocked_destination: meta.example -> 169.254.169.254")


def test_the_connection_goes_to_the_checked_address(database_url, receiver):
    """The name resolves (through the fake resolver only) to the receiver's
    address; the request arrives there with the original Host header."""
    producer = Producer(database_url, auto_migrate=True)
    producer.destinations = DestinationPolicy(
        allowed=(ipaddress.ip_network("127.0.0.0/8"),),
        resolver=_fake_resolver({"hooks.customer.example": ["127.0.0.1"]}),
    )
    endpoint = producer.create_endpoint(f"http://hooks.customer.example:{receiver.port}/in")
    result = producer.test_endpoint(endpoint.id)
    [request] = receiver.received()
    assert result.succeeded
    assert request.headers["host"] == f"hooks.customer.example:{receiver.port}"
    assert request.path == "/in"
