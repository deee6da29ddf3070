"""Endpoint authentication: basic, bearer and OAuth2 client credentials,
against real servers on 127.0.0.1.

The token server (:class:`TokenServer`) counts token requests and issues
``tok-1``, ``tok-2``, ...; its receiver accepts only the tokens it issued and
has not revoked, so a 401 and the refresh after it are real.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs

import pytest
import trustme
from click.testing import CliRunner
from sqlalchemy import text

from producer import Producer, ValidationError
from producer.cli import main
from producer.destinations import DestinationPolicy, system_resolver
from producer.oauth2 import TokenCache
from producer.sealing import generate_key
from producer.transport import Request, Transport
from tests.helpers.api import Api, assert_error, create_endpoint
from tests.helpers.receiver import LocalServer
from tests.helpers.resolvers import FakeResolver
from tests.helpers.waiting import wait_for_status

CLIENT = {"client_id": "shop", "client_secret": "s3cret-client"}


class TokenServer:
    """A token endpoint at ``/token`` and a receiver at ``/hook`` on one server.

    ``lifetime`` is the ``expires_in`` it answers; ``status`` (when set) what
    ``/token`` answers instead of a token; ``reject`` makes ``/hook`` refuse
    that many requests with 401 whatever their token.
    """

    def __init__(self, lifetime: float = 300, client_auth: str = "basic") -> None:
        self.lifetime = lifetime
        self.client_auth = client_auth
        self.status: int | None = None
        self.reject = 0
        self.token_requests: list[dict[str, Any]] = []
        self.hook_tokens: list[str | None] = []
        self.valid: set[str] = set()
        self.server = LocalServer(self)

    def url(self, path: str) -> str:
        return self.server.url(path)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        if scope["path"] == "/token":
            status, answer = self._token(headers, body)
        else:
            status, answer = self._hook(headers)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": json.dumps(answer).encode()})

    def _token(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        self.token_requests.append({"form": form, "headers": headers})
        if self.status is not None:
            return self.status, {"error": "invalid_client"}
        if form.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type"}
        if self.client_auth == "basic":
            pair = f"{CLIENT['client_id']}:{CLIENT['client_secret']}".encode()
            ok = headers.get("authorization") == "Basic " + base64.b64encode(pair).decode()
        else:
            ok = all(form.get(k) == v for k, v in CLIENT.items())
        if not ok:
            return 401, {"error": "invalid_client"}
        token = f"tok-{len(self.token_requests)}"
        self.valid.add(token)
        return 200, {"access_token": token, "token_type": "Bearer", "expires_in": self.lifetime}

    def _hook(self, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        auth = headers.get("authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None
        self.hook_tokens.append(token)
        if self.reject:
            self.reject -= 1
            return 401, {}
        return (200, {}) if token in self.valid else (401, {})

    def __enter__(self) -> TokenServer:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()


@pytest.fixture
def tokens() -> Iterator[TokenServer]:
    with TokenServer() as server:
        yield server


@pytest.fixture
def sealed(make_producer) -> Producer:
    return make_producer(encryption_keys=[generate_key()])


def oauth(server: TokenServer, **extra: str) -> dict[str, str]:
    return {
        "type": "oauth2_client_credentials",
        "token_url": server.url("/token"),
        "scope": "webhooks:write",
        **CLIENT,
        **extra,
    }


# -- basic and bearer ----------------------------------------------------------


def test_basic_auth_is_sent_and_recorded_redacted(sealed, receiver):
    auth = {"type": "basic", "username": "shop", "password": "pa55word"}
    endpoint = sealed.create_endpoint(receiver.url("/basic"), auth=auth)

    result = sealed.test_endpoint(endpoint.id)

    assert result.succeeded, result.error
    [got] = receiver.received("/basic")
    assert got.headers["authorization"] == "Basic " + base64.b64encode(b"shop:pa55word").decode()
    [attempt] = sealed.list_attempts(result.delivery_id)
    assert attempt.request_headers["authorization"] == "[redacted]"


def test_bearer_auth_replaces_a_custom_authorization_header(sealed, receiver):
    endpoint = sealed.create_endpoint(
        receiver.url("/bearer"),
        auth={"type": "bearer", "token": "abc.def"},
        headers={"Authorization": "Bearer old"},
    )
    assert sealed.test_endpoint(endpoint.id).succeeded
    [got] = receiver.received("/bearer")
    assert got.headers["authorization"] == "Bearer abc.def"


def test_secrets_are_sealed_at_rest_and_never_read_back(sealed):
    kinds = [
        {"type": "basic", "username": "shop", "password": "pa55word"},
        {"type": "bearer", "token": "tok-secret-value"},
        {
            "type": "oauth2_client_credentials",
            "token_url": "https://auth.example/token",
            **CLIENT,
        },
    ]
    api = Api(sealed)
    for auth in kinds:
        secret = next(v for k, v in auth.items() if k in ("password", "token", "client_secret"))
        endpoint = sealed.create_endpoint("https://example.com/hook", auth=auth)
        with sealed.context.engine.connect() as connection:
            raw = connection.execute(
                text("SELECT auth FROM webhook_endpoints WHERE id = :id"), {"id": endpoint.id}
            ).scalar_one()
        assert secret not in str(raw) and "enc:" in str(raw)
        assert secret not in repr(endpoint) + repr(sealed.get_endpoint(endpoint.id))
        assert endpoint.auth["type"] == auth["type"]
        shown = api.admin.get(f"/v1/endpoints/{endpoint.id}").json()
        assert secret not in json.dumps(shown) and shown["auth"]["type"] == auth["type"]
    created = create_endpoint(api.admin, auth=kinds[2])
    assert created["auth"] == {
        "type": "oauth2_client_credentials",
        "token_url": "https://auth.example/token",
        "client_id": "shop",
        "client_auth": "basic",
    }


@pytest.mark.parametrize(
    ("auth", "field"),
    [
        ({"type": "digest"}, "auth.type"),
        ({"type": "basic", "username": "shop"}, "auth.password"),
        ({"type": "basic", "username": "a:b", "password": "x"}, "auth.username"),
        ({"type": "bearer", "token": ""}, "auth.token"),
        ({"type": "bearer", "token": "enc:abc"}, "auth.token"),
        ({"type": "bearer", "token": "t", "password": "x"}, "auth.password"),
        ({"type": "oauth2_client_credentials", **CLIENT}, "auth.token_url"),
        (
            {
                "type": "oauth2_client_credentials",
                "token_url": "ftp://auth.example/",
                **CLIENT,
            },
            "auth.token_url",
        ),
        (
            {
                "type": "oauth2_client_credentials",
                "token_url": "https://auth.example/",
                "client_auth": "jwt",
                **CLIENT,
            },
            "auth.client_auth",
        ),
    ],
)
def test_bad_auth_is_a_field_error(producer, auth, field):
    with pytest.raises(ValidationError) as caught:
        producer.create_endpoint("https://example.com/", auth=auth)
    assert caught.value.details[0]["field"] == field


def test_the_api_refuses_bad_auth_and_keeps_what_is_stored(sealed):
    api = Api(sealed)
    auth = {"type": "bearer", "token": "keep-me"}
    created = create_endpoint(api.admin, auth=auth)
    bad = api.admin.patch(f"/v1/endpoints/{created['id']}", json={"auth": {"type": "basic"}})
    assert_error(bad, 422, "validation_error", field="body.auth.username")
    assert api.admin.get(f"/v1/endpoints/{created['id']}").json()["auth"] == {"type": "bearer"}
    # The stored token still opens.
    with sealed.context.store.transaction() as s:
        row = sealed.context.store.get_endpoint(s, created["id"], tenant=None)
        assert sealed.context.secret_box.open(row.auth["token"]) == "keep-me"


# -- OAuth2 client credentials -------------------------------------------------


@pytest.mark.parametrize("client_auth", ["basic", "body"])
def test_oauth2_token_is_fetched_and_sent(make_producer, client_auth):
    with TokenServer(client_auth=client_auth) as server:
        producer = make_producer()
        endpoint = producer.create_endpoint(
            server.url("/hook"), auth=oauth(server, client_auth=client_auth)
        )
        result = producer.test_endpoint(endpoint.id)
        assert result.succeeded, result.error
        [asked] = server.token_requests
        assert asked["headers"]["content-type"] == "application/x-www-form-urlencoded"
        assert asked["form"]["scope"] == "webhooks:write"
        if client_auth == "body":
            assert "authorization" not in asked["headers"]
        else:
            assert "client_secret" not in asked["form"]
        assert server.hook_tokens == ["tok-1"]


def test_a_401_gets_one_fresh_token_and_one_retry(producer, tokens):
    endpoint = producer.create_endpoint(tokens.url("/hook"), auth=oauth(tokens))
    tokens.reject = 1

    result = producer.test_endpoint(endpoint.id)

    assert result.succeeded, result.error
    assert tokens.hook_tokens == ["tok-1", "tok-2"]
    assert len(tokens.token_requests) == 2


def test_a_second_401_fails_the_attempt(producer, tokens):
    endpoint = producer.create_endpoint(tokens.url("/hook"), auth=oauth(tokens))
    tokens.reject = 5

    result = producer.test_endpoint(endpoint.id)

    assert not result.succeeded and result.status_code == 401
    assert len(tokens.hook_tokens) == 2 and len(tokens.token_requests) == 2


def test_token_errors_are_recorded_on_the_attempt(producer, tokens):
    endpoint = producer.create_endpoint(tokens.url("/hook"), auth=oauth(tokens))
    tokens.status = 400

    result = producer.test_endpoint(endpoint.id)

    assert result.error is not None and result.error.startswith("auth_error: token endpoint")
    assert "400" in result.error and "invalid_client" in result.error
    assert tokens.hook_tokens == []
    [attempt] = producer.list_attempts(result.delivery_id)
    assert attempt.error == result.error and attempt.response_status is None


def test_an_unreachable_token_server_is_an_auth_error(producer, tokens):
    endpoint = producer.create_endpoint(tokens.url("/hook"), auth=oauth(tokens))
    tokens.server.stop()
    result = producer.test_endpoint(endpoint.id)
    assert result.error is not None
    assert result.error.startswith("auth_error: token request failed: connection_error")


def test_the_token_url_passes_the_destination_guard(make_producer, tokens):
    producer = make_producer()
    with pytest.raises(ValidationError) as caught:
        producer.create_endpoint(
            "https://example.com/",
            auth={**oauth(tokens), "token_url": "http://10.1.2.3/token"},
        )
    assert caught.value.details[0]["field"] == "auth.token_url"
    # A name that moves to an internal address after registration is refused
    # at send time, before any request.
    resolver = FakeResolver({"auth.example": ["93.184.215.14"]})
    producer.destinations = replace(producer.destinations, resolver=resolver)
    endpoint = producer.create_endpoint(
        tokens.url("/hook"), auth={**oauth(tokens), "token_url": "http://auth.example/token"}
    )
    resolver.answers["auth.example"] = ["10.1.2.3"]
    result = producer.test_endpoint(endpoint.id)
    assert result.error is not None
    assert result.error.startswith("auth_error: token request failed: blocked_destination")
    assert tokens.token_requests == [] and tokens.hook_tokens == []


def test_the_worker_shares_one_token_across_concurrent_deliveries(make_producer, tokens):
    producer = make_producer(max_in_flight_per_endpoint=8)
    endpoint = producer.create_endpoint(tokens.url("/hook"), auth=oauth(tokens), max_in_flight=8)
    messages = [producer.send("invoice.paid", {"n": n}) for n in range(24)]
    with producer.start_worker_thread():
        for message in messages:
            [delivery] = producer.list_deliveries(message_id=message.id).data
            wait_for_status(producer, delivery.id, "succeeded")
    assert len(tokens.token_requests) == 1
    assert tokens.hook_tokens == ["tok-1"] * 24
    assert endpoint.auth == {k: v for k, v in oauth(tokens).items() if k != "client_secret"} | {
        "client_auth": "basic"
    }


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_one_token_request_per_expiry_window_under_concurrency():
    with TokenServer(lifetime=60) as server:
        clock = _Clock()

        async def run() -> list[set[str]]:
            policy = DestinationPolicy.from_settings(["127.0.0.0/8"], False, system_resolver)
            transport = Transport(guard=policy)
            cache = TokenCache(transport, clock=clock)
            auth = oauth(server)
            template = Request(url=server.url("/hook"), headers={}, body=b"", pool_key="ep")
            windows = []
            try:
                for _ in range(3):
                    got = await asyncio.gather(
                        *(cache.token("ep_1", auth, template) for _ in range(20))
                    )
                    windows.append(set(got))
                    clock.now += 55  # past 60 - 6 (renewed 10 % early)
                # Before the renewal point the cached token is kept.
                clock.now += 1
                windows.append({await cache.token("ep_1", auth, template)})
                clock.now += 50
                windows.append({await cache.token("ep_1", auth, template)})
            finally:
                await transport.aclose()
            return windows

        windows = asyncio.run(run())
        assert windows == [{"tok-1"}, {"tok-2"}, {"tok-3"}, {"tok-4"}, {"tok-4"}]
        assert len(server.token_requests) == 4


def test_new_client_credentials_get_a_new_token(producer, tokens):
    endpoint = producer.create_endpoint(tokens.url("/hook"), auth=oauth(tokens, scope="a"))
    # One worker throughout: its token cache outlives the update.
    with producer.start_worker_thread():
        for scope in ("a", "b"):
            if scope == "b":
                producer.update_endpoint(endpoint.id, auth=oauth(tokens, scope=scope))
            message = producer.send("invoice.paid", {"scope": scope})
            [delivery] = producer.list_deliveries(message_id=message.id).data
            wait_for_status(producer, delivery.id, "succeeded")
    assert [r["form"]["scope"] for r in tokens.token_requests] == ["a", "b"]
    assert tokens.hook_tokens == ["tok-1", "tok-2"]


# -- the command line ----------------------------------------------------------


def test_the_cli_sets_auth_from_a_file_and_never_prints_secrets(database_url, tmp_path):
    runner = CliRunner()

    def run(*args: str) -> Any:
        return runner.invoke(main, ["--database-url", database_url, *args], catch_exceptions=False)

    run("db", "upgrade")
    auth = tmp_path / "auth.json"
    auth.write_text(json.dumps({"type": "basic", "username": "shop", "password": "pa55word"}))
    added = run("endpoints", "add", "https://r.example/h", "--auth", f"@{auth}", "--json")
    assert added.exit_code == 0, added.output
    shown = json.loads(added.output)
    assert shown["auth"] == {"type": "basic", "username": "shop"}
    assert "pa55word" not in added.output
    endpoint_id = shown["id"]

    bad = run("endpoints", "update", endpoint_id, "--auth", '{"type": "bearer"}')
    assert bad.exit_code != 0 and "auth.token" in bad.output
    assert len(bad.output.strip().splitlines()) == 1

    reset = run("endpoints", "update", endpoint_id, "--reset", "auth", "--json")
    assert json.loads(reset.output)["auth"] is None
    missing = run("endpoints", "update", endpoint_id, "--auth", "@/nonexistent/auth.json")
    assert missing.exit_code != 0 and "cannot read" in missing.output


def test_reencrypt_reseals_every_credential(make_producer, tokens):
    old, new = generate_key(), generate_key()
    before = make_producer(encryption_keys=[old])
    endpoint = before.create_endpoint(
        tokens.url("/hook"),
        auth=oauth(tokens),
        proxy_url="http://user:pw@127.0.0.1:3128",
        tls={"ca_pem": _ca_pem()},
    )
    assert make_producer(encryption_keys=[new, old]).reencrypt_secrets() >= 1

    after = make_producer(encryption_keys=[new])  # the old key is gone
    assert after.get_endpoint(endpoint.id).proxy_url == "http://user:***@127.0.0.1:3128"
    after.update_endpoint(endpoint.id, proxy_url=None)
    assert after.test_endpoint(endpoint.id).succeeded


def _ca_pem() -> str:
    return trustme.CA().cert_pem.bytes().decode()
