"""OAuth2 client credentials: the bearer tokens of receivers that want one.

The worker asks the endpoint's token server for a token (RFC 6749 section
4.4: a form-encoded ``grant_type=client_credentials`` request, the client
authenticated by HTTP Basic or in the body), keeps it until shortly before
it expires and shares it between the endpoint's concurrent deliveries: one
request at a time fetches, the others wait for its token. A receiver that
answers 401 gets one fresh token (see :mod:`producer.delivery`).

Token requests go through the same :class:`~producer.transport.Transport`
as deliveries: the destination guard checks the token URL, and the
endpoint's egress proxy carries them.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import quote_plus, urlencode

from producer.transport import Request, Transport

__all__ = ["DEFAULT_LIFETIME", "TokenCache", "TokenError", "tokens_for"]

DEFAULT_LIFETIME = 300.0
"""Seconds a token is kept when the server does not say (no ``expires_in``)."""
MAX_EARLY = 60.0
"""A token is renewed this long before it expires at most (10 % of its
lifetime for short-lived ones), so no request carries a token that expires
on the way."""
MAX_TOKEN_ANSWER = 64 * 1024


class TokenError(Exception):
    """No token could be had; ``str()`` is the error recorded on the attempt."""


@dataclass(frozen=True)
class _Token:
    value: str
    renew_at: float


class TokenCache:
    """Tokens by endpoint and client configuration, with one fetch at a time each.

    ``clock`` is monotonic seconds (tests pass their own).
    """

    def __init__(self, transport: Transport, clock: Callable[[], float] = time.monotonic) -> None:
        self.transport = transport
        self.clock = clock
        self.requests = 0
        """Token requests made (for tests and logs)."""
        self._tokens: dict[str, _Token] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def token(self, endpoint_id: str, auth: Mapping[str, str], template: Request) -> str:
        """A valid token for ``auth``; fetched (by one caller at a time) when
        none is cached or the cached one is due for renewal. ``template``
        gives the proxy, timeout and pool of the delivery request."""
        key = _key(endpoint_id, auth)
        cached = self._tokens.get(key)
        if cached is not None and self.clock() < cached.renew_at:
            return cached.value
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            cached = self._tokens.get(key)
            if cached is not None and self.clock() < cached.renew_at:
                return cached.value  # fetched by the caller we waited for
            fresh = await self._fetch(auth, template)
            self._tokens[key] = fresh
            return fresh.value

    def invalidate(self, endpoint_id: str, auth: Mapping[str, str], token: str) -> None:
        """Forget ``token`` after the receiver refused it, unless another
        delivery has already replaced it (so concurrent 401s fetch once)."""
        key = _key(endpoint_id, auth)
        cached = self._tokens.get(key)
        if cached is not None and cached.value == token:
            del self._tokens[key]

    async def _fetch(self, auth: Mapping[str, str], template: Request) -> _Token:
        form = {"grant_type": "client_credentials"}
        if auth.get("scope"):
            form["scope"] = auth["scope"]
        headers = {
            "content-type": "application/x-www-form-urlencoded",
            "accept": "application/json",
        }
        if auth.get("client_auth", "basic") == "basic":
            # RFC 6749 2.3.1: both parts form-encoded before Basic encoding.
            pair = f"{quote_plus(auth['client_id'])}:{quote_plus(auth['client_secret'])}"
            headers["authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:
            form.update(client_id=auth["client_id"], client_secret=auth["client_secret"])
        self.requests += 1
        started = self.clock()
        response = await self.transport.send(
            Request(
                url=auth["token_url"],
                headers=headers,
                body=urlencode(form).encode(),
                timeout=template.timeout,
                pool_key=f"{template.pool_key}#token",
                proxy=template.proxy,
                guard_proxy=template.guard_proxy,
                max_response_bytes=MAX_TOKEN_ANSWER,
            )
        )
        if response.error is not None:
            raise TokenError(f"auth_error: token request failed: {response.error}")
        if response.status_code != 200:
            raise TokenError(
                f"auth_error: token endpoint answered {response.status_code}: {response.body[:200]}"
            )
        return _token_of(response.body, started)


def _token_of(body: str, started: float) -> _Token:
    """The token of a token endpoint's JSON answer, and when to renew it."""
    try:
        answer = json.loads(body)
    except ValueError:
        raise TokenError("auth_error: the token answer is not JSON") from None
    if not isinstance(answer, dict):
        raise TokenError("auth_error: the token answer is not a JSON object")
    value = answer.get("access_token")
    if not isinstance(value, str) or not value or not value.isprintable():
        raise TokenError("auth_error: the token answer has no usable access_token")
    kind = answer.get("token_type", "bearer")
    if not isinstance(kind, str) or kind.lower() != "bearer":
        raise TokenError(f"auth_error: token_type {kind!r} is not bearer")
    lifetime = answer.get("expires_in", DEFAULT_LIFETIME)
    if isinstance(lifetime, str) and lifetime.isdigit():
        lifetime = int(lifetime)
    if not isinstance(lifetime, int | float) or isinstance(lifetime, bool) or lifetime <= 0:
        lifetime = DEFAULT_LIFETIME
    return _Token(value, started + lifetime - min(MAX_EARLY, lifetime * 0.1))


def _key(endpoint_id: str, auth: Mapping[str, str]) -> str:
    """One cache entry per endpoint and client configuration: new client
    credentials never get a token fetched with the old ones."""
    raw = json.dumps(sorted(auth.items())).encode()
    return f"{endpoint_id}:{hashlib.sha256(raw).hexdigest()[:16]}"


_CACHES: weakref.WeakKeyDictionary[Transport, TokenCache] = weakref.WeakKeyDictionary()


def tokens_for(transport: Transport) -> TokenCache:
    """The token cache living as long as ``transport`` (a worker's lifetime)."""
    cache = _CACHES.get(transport)
    if cache is None:
        cache = _CACHES[transport] = TokenCache(transport)
    return cache
