"""The destination guard: no webhook reaches the operator's own network.

Refusals are proven with fake resolvers (tests/helpers/resolvers.py) and the
guard's decision; no request ever leaves for a forbidden address, and no
outside name is ever resolved.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import httpx
import pytest
from click.testing import CliRunner

from producer import Producer, ValidationError
from producer.cli import main
from producer.destinations import BlockedDestination, DestinationPolicy
from tests.helpers.api import Api, assert_error, create_endpoint
from tests.helpers.resolvers import FakeResolver, offline_resolver
from tests.helpers.waiting import wait_until

PUBLIC = "93.184.215.14"
LOOPBACK_HINT = (
    "to deliver there, add its range to WEBHOOKS_ALLOWED_CIDRS (e.g. 127.0.0.1/32), "
    "or run `webhooks serve --dev` to open loopback for local development"
)

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


def _resolving(producer: Producer, answers: dict[str, list[str]], **options) -> FakeResolver:
    """Make ``producer`` resolve names with a fake (at registration and at
    delivery), keeping its allowed ranges; returns the fake."""
    resolver = FakeResolver(answers, **options)
    producer.destinations = replace(producer.destinations, resolver=resolver)
    return resolver


# -- resolving at send time ------------------------------------------------------------


def test_a_name_resolving_to_an_internal_address_is_refused():
    policy = DestinationPolicy(resolver=FakeResolver({"internal.example": ["10.9.8.7"]}))
    with pytest.raises(BlockedDestination, match=r"internal.example -> 10.9.8.7 is a private"):
        asyncio.run(policy.resolve("internal.example", 443))


def test_a_mixed_answer_is_refused():
    resolver = FakeResolver({"mixed.example": [PUBLIC, "127.0.0.1"]})
    with pytest.raises(BlockedDestination):
        asyncio.run(DestinationPolicy(resolver=resolver).resolve("mixed.example", 443))


def test_a_blocked_destination_names_the_range_that_would_open_it():
    policy = DestinationPolicy(resolver=FakeResolver({"internal.example": ["10.9.8.7"]}))
    with pytest.raises(BlockedDestination) as info:
        asyncio.run(policy.resolve("internal.example", 443))
    assert info.value.reason == (
        "internal.example -> 10.9.8.7 is a private address; to deliver there, "
        "add its range to WEBHOOKS_ALLOWED_CIDRS (e.g. 10.9.8.7/32)"
    )


def test_a_blocked_loopback_destination_also_names_the_development_switch():
    policy = DestinationPolicy(resolver=FakeResolver({"here.example": ["127.0.0.1"]}))
    with pytest.raises(BlockedDestination) as info:
        asyncio.run(policy.resolve("here.example", 80))
    assert info.value.reason == f"here.example -> 127.0.0.1 is a loopback address; {LOOPBACK_HINT}"


# -- registration: IP literals ---------------------------------------------------------


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


def test_a_refused_loopback_literal_also_names_the_development_switch(database_url):
    producer = Producer(database_url, auto_migrate=True)
    with pytest.raises(ValidationError) as info:
        producer.create_endpoint("http://127.0.0.1:9000/")
    assert info.value.message == (
        f"url: destination refused: 127.0.0.1 is a loopback address; {LOOPBACK_HINT}"
    )


def test_a_refused_private_literal_does_not_name_the_development_switch(database_url):
    producer = Producer(database_url, auto_migrate=True)
    with pytest.raises(ValidationError) as info:
        producer.create_endpoint("http://10.0.0.1/")
    assert "--dev" not in info.value.message


def test_https_only_refuses_plain_http(database_url):
    producer = Producer(database_url, auto_migrate=True, https_only=True)
    with pytest.raises(ValidationError, match="https"):
        producer.create_endpoint("http://hooks.example/")
    assert producer.create_endpoint("https://hooks.example/").url == "https://hooks.example/"


# -- registration: host names ----------------------------------------------------------


def test_producers_in_tests_never_resolve_an_outside_name(make_producer, database_url):
    assert make_producer().destinations.resolver is offline_resolver
    assert Producer(database_url, auto_migrate=True).destinations.resolver is offline_resolver


def test_a_name_resolving_to_loopback_is_refused_at_create(make_producer):
    producer = make_producer(allowed_cidrs=[])
    resolver = _resolving(producer, {"hooks.customer.example": ["127.0.0.1"]})
    with pytest.raises(ValidationError) as info:
        producer.create_endpoint("http://hooks.customer.example:9000/in")
    assert info.value.details[0]["field"] == "url"
    assert info.value.message == (
        "url: destination refused: hooks.customer.example -> 127.0.0.1 is a loopback address; "
        + LOOPBACK_HINT
    )
    assert resolver.asked == ["hooks.customer.example"]
    assert producer.list_endpoints().data == []


def test_a_name_resolving_to_loopback_is_refused_at_update(make_producer):
    producer = make_producer(allowed_cidrs=[])
    _resolving(producer, {"public.example": [PUBLIC], "internal.example": ["127.0.0.1"]})
    endpoint = producer.create_endpoint("https://public.example/in")
    with pytest.raises(ValidationError, match=r"refused: internal\.example -> 127\.0\.0\.1"):
        producer.update_endpoint(endpoint.id, url="https://internal.example/in")
    assert producer.get_endpoint(endpoint.id).url == "https://public.example/in"


def test_a_resolver_may_answer_with_any_awaitable_not_only_a_coroutine(make_producer):
    """``Resolver`` promises an awaitable: a plain function returning a future
    (a cache's answer, say) is honoured at registration like a coroutine."""
    producer = make_producer(allowed_cidrs=[])

    def from_a_cache(host: str, port: int) -> asyncio.Future[list[str]]:
        answer: asyncio.Future[list[str]] = asyncio.get_running_loop().create_future()
        answer.set_result(["127.0.0.1"] if host == "internal.example" else [PUBLIC])
        return answer

    producer.destinations = replace(producer.destinations, resolver=from_a_cache)
    assert producer.create_endpoint("https://public.example/in").url == (
        "https://public.example/in"
    )
    with pytest.raises(ValidationError, match=r"refused: internal\.example -> 127\.0\.0\.1"):
        producer.create_endpoint("https://internal.example/in")


def test_a_name_resolving_to_a_public_address_is_accepted(make_producer):
    producer = make_producer(allowed_cidrs=[])
    resolver = _resolving(producer, {"public.example": [PUBLIC, "2606:4700:4700::1111"]})
    endpoint = producer.create_endpoint("https://public.example/in")
    assert endpoint.url == "https://public.example/in"
    assert resolver.asked == ["public.example"]


def test_a_name_that_does_not_resolve_is_accepted(make_producer):
    producer = make_producer(allowed_cidrs=[])
    resolver = _resolving(producer, {})
    endpoint = producer.create_endpoint("https://not-yet.example/in")
    assert endpoint.url == "https://not-yet.example/in"
    assert resolver.asked == ["not-yet.example"]


def test_a_name_that_resolves_to_no_address_is_accepted(make_producer):
    producer = make_producer(allowed_cidrs=[])
    _resolving(producer, {"empty.example": []})
    assert producer.create_endpoint("https://empty.example/in").url == "https://empty.example/in"


def test_a_lookup_that_does_not_answer_in_time_is_accepted(make_producer):
    producer = make_producer(allowed_cidrs=[])
    resolver = _resolving(producer, {"slow.example": ["127.0.0.1"]}, hang=("slow.example",))
    producer.destinations = replace(producer.destinations, lookup_timeout=0.05)
    try:
        endpoint = producer.create_endpoint("https://slow.example/in")
    finally:
        resolver.release()
    assert endpoint.url == "https://slow.example/in"


def test_allowed_cidrs_open_a_name_resolving_into_them(make_producer):
    producer = make_producer(allowed_cidrs=["10.20.0.0/16"])
    _resolving(producer, {"billing.internal": ["10.20.1.2"]})
    assert (
        producer.create_endpoint("http://billing.internal/in").url == "http://billing.internal/in"
    )


def test_a_mixed_answer_is_refused_at_registration(make_producer):
    producer = make_producer(allowed_cidrs=[])
    _resolving(producer, {"mixed.example": [PUBLIC, "10.0.0.7"]})
    with pytest.raises(ValidationError, match=r"mixed.example -> 10.0.0.7 is a private address"):
        producer.create_endpoint("https://mixed.example/in")
    assert producer.list_endpoints().data == []


def test_a_name_is_resolved_at_registration_from_inside_an_event_loop(make_producer):
    producer = make_producer(allowed_cidrs=[])
    _resolving(producer, {"internal.example": ["192.168.0.10"]})

    async def register() -> None:
        producer.create_endpoint("https://internal.example/in")

    with pytest.raises(ValidationError, match=r"internal\.example -> 192\.168\.0\.10"):
        asyncio.run(register())


def test_localhost_is_refused_at_registration(make_producer):
    """``localhost`` resolves through this machine's hosts file, as in production."""
    producer = make_producer(allowed_cidrs=[])
    with pytest.raises(ValidationError, match=r"destination refused: localhost -> .* loopback"):
        producer.create_endpoint("http://localhost:9000/")


def test_the_api_refuses_a_name_resolving_to_loopback_at_create_and_update(make_producer):
    producer = make_producer(allowed_cidrs=[])
    _resolving(producer, {"public.example": [PUBLIC], "internal.example": ["127.0.0.1"]})
    api = Api(producer)
    response = api.admin.post("/v1/endpoints", json={"url": "http://internal.example:9000/"})
    error = assert_error(response, 422, "validation_error", field="body.url")
    assert (
        "WEBHOOKS_ALLOWED_CIDRS" in error["message"] and "webhooks serve --dev" in error["message"]
    )
    endpoint = create_endpoint(api.admin, "https://public.example/in")
    response = api.admin.patch(
        f"/v1/endpoints/{endpoint['id']}", json={"url": "http://internal.example/"}
    )
    assert_error(response, 422, "validation_error", field="body.url")
    assert producer.get_endpoint(endpoint["id"]).url == "https://public.example/in"


def test_the_api_accepts_a_name_resolving_to_a_public_address(make_producer):
    producer = make_producer(allowed_cidrs=[])
    _resolving(producer, {"public.example": [PUBLIC]})
    assert create_endpoint(Api(producer).admin, "https://public.example/in")["url"] == (
        "https://public.example/in"
    )


def test_the_cli_refuses_localhost_in_one_line_naming_the_way_to_open_it(database_url):
    url = ["--database-url", database_url]
    runner = CliRunner()
    assert runner.invoke(main, [*url, "db", "upgrade"]).exit_code == 0
    result = runner.invoke(main, [*url, "endpoints", "add", "http://localhost:9000/"])
    assert result.exit_code == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: url: destination refused: localhost -> ")
    assert "WEBHOOKS_ALLOWED_CIDRS" in line and "webhooks serve --dev" in line


# -- delivery: names can change --------------------------------------------------------


def test_a_name_that_moves_to_an_internal_address_is_blocked_at_delivery(make_producer):
    producer = make_producer(allowed_cidrs=[])
    resolver = _resolving(producer, {"moving.example": [PUBLIC]})
    sent: list[httpx.Request] = []
    producer.transport_factory = lambda key: httpx.MockTransport(
        lambda request: sent.append(request) or httpx.Response(200)
    )
    endpoint = producer.create_endpoint("http://moving.example/hooks")
    resolver.answers["moving.example"] = ["192.168.0.10"]

    result = producer.test_endpoint(endpoint.id)

    assert not result.succeeded and result.status_code is None
    assert result.error == (
        "blocked_destination: moving.example -> 192.168.0.10 is a private address; "
        "to deliver there, add its range to WEBHOOKS_ALLOWED_CIDRS (e.g. 192.168.0.10/32)"
    )
    assert sent == [] and resolver.asked == ["moving.example", "moving.example"]
    delivery = producer.get_delivery(result.delivery_id)
    assert delivery.status == "failed" and delivery.next_attempt_at is None
    [attempt] = producer.list_attempts(result.delivery_id)
    assert attempt.error == result.error


def test_a_blocked_loopback_delivery_names_the_development_switch(make_producer):
    producer = make_producer(allowed_cidrs=[])
    resolver = _resolving(producer, {"moving.example": [PUBLIC]})
    endpoint = producer.create_endpoint("http://moving.example/hooks")
    resolver.answers["moving.example"] = ["127.0.0.1"]
    result = producer.test_endpoint(endpoint.id)
    assert result.error == (
        f"blocked_destination: moving.example -> 127.0.0.1 is a loopback address; {LOOPBACK_HINT}"
    )


def test_worker_fails_a_blocked_delivery_at_once(make_producer):
    producer = make_producer(allowed_cidrs=[])
    resolver = _resolving(producer, {"meta.example": [PUBLIC]})
    producer.create_endpoint("http://meta.example/")
    resolver.answers["meta.example"] = ["169.254.169.254"]
    message = producer.send("a.b", {})
    with producer.start_worker_thread():
        wait_until(
            lambda: producer.list_deliveries(message_id=message.id).data[0].status == "failed",
            what="the delivery to fail",
        )
    [delivery] = producer.list_deliveries(message_id=message.id).data
    assert delivery.status == "failed" and delivery.attempt_count == 1
    assert delivery.last_error.startswith("blocked_destination: meta.example -> 169.254.169.254")
    assert "WEBHOOKS_ALLOWED_CIDRS (e.g. 169.254.169.254/32)" in delivery.last_error


def test_the_connection_goes_to_the_checked_address(make_producer, receiver):
    """The name resolves (through the fake resolver only) to the receiver's
    address; the request arrives there with the original Host header."""
    producer = make_producer(allowed_cidrs=["127.0.0.0/8"])
    _resolving(producer, {"hooks.customer.example": ["127.0.0.1"]})
    endpoint = producer.create_endpoint(f"http://hooks.customer.example:{receiver.port}/in")
    result = producer.test_endpoint(endpoint.id)
    [request] = receiver.received()
    assert result.succeeded
    assert request.headers["host"] == f"hooks.customer.example:{receiver.port}"
    assert request.path == "/in"
