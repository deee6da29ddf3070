"""Signed tokens of the web UI: session cookies, portal links and CSRF tokens.

A token is ``<payload>.<signature>``: the payload is compact JSON in URL-safe
base64 without padding, the signature HMAC-SHA256 of the encoded payload,
also URL-safe base64. Each kind of token is signed with its own key derived
from the server secret, so a portal token can never pass for a session
cookie, nor a session cookie for a portal token.

Nothing is stored server-side: a session lasts until its expiry, and signing
out removes the cookie from the browser only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from api.schemas.portal_links import (
    ALL_CAPABILITIES,
    CAPABILITIES,
    DEFAULT_CAPABILITIES,
    Capability,
)

__all__ = [
    "ExpiredToken",
    "InvalidToken",
    "PortalGrant",
    "Session",
    "Signer",
    "TokenError",
    "resolve_secret",
]

_MIN_SECRET_BYTES = 16
# One random secret per producer for routers built without one, so the UI and
# the portal-link routers of one app agree without the host passing anything.
_derived_secrets: weakref.WeakKeyDictionary[Any, bytes] = weakref.WeakKeyDictionary()


class TokenError(Exception):
    """A token that must not be honoured."""


class InvalidToken(TokenError):
    """Malformed, signed with another key, or altered."""


class ExpiredToken(TokenError):
    """Correctly signed, but past its expiry."""


def resolve_secret(producer: Any, secret: bytes | str | None) -> bytes:
    """The server secret the UI signs with.

    In order: ``secret`` as given; the producer's ``ui_secret`` setting
    (``WEBHOOKS_UI_SECRET``); else random bytes kept for the
    lifetime of ``producer`` in this process. With the last, every session and
    portal link ends when the process restarts, and processes behind one load
    balancer do not accept each other's tokens.
    """
    if secret is None:
        configured = producer.settings.ui_secret
        secret = configured.get_secret_value() if configured is not None else None
    if secret is None:
        if producer not in _derived_secrets:
            _derived_secrets[producer] = secrets.token_bytes(32)
        return _derived_secrets[producer]
    key = secret.encode() if isinstance(secret, str) else bytes(secret)
    if len(key) < _MIN_SECRET_BYTES:
        raise ValueError(f"the UI secret must be at least {_MIN_SECRET_BYTES} bytes long")
    return key


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Session:
    """A signed-in browser: ``tenant`` None for an admin, else the only tenant shown."""

    id: str
    tenant: str | None
    via: str
    """``"key"`` (signed in with an API key) or ``"portal"`` (opened a portal link)."""
    expires_at: datetime
    capabilities: frozenset[Capability] = ALL_CAPABILITIES
    """What the session may do (see :data:`~api.schemas.portal_links.CAPABILITIES`):
    a portal link's choice; everything for a sign-in with an API key, which
    may do as much through the REST API."""

    @property
    def is_admin(self) -> bool:
        """Admins see every tenant."""
        return self.tenant is None

    def can(self, capability: Capability) -> bool:
        """Whether the session may do what ``capability`` allows."""
        return capability in self.capabilities


def _capabilities(value: Any, default: frozenset[Capability]) -> frozenset[Capability]:
    """The capabilities a token carries; ``default`` for a token from before
    tokens carried any. A token is signed, so anything else is a forgery."""
    if value is None:
        return default
    if not isinstance(value, list) or not set(value) <= set(CAPABILITIES):
        raise InvalidToken("malformed capabilities")
    return frozenset(value)


def _listed(capabilities: frozenset[Capability]) -> list[str]:
    return [c for c in CAPABILITIES if c in capabilities]


@dataclass(frozen=True)
class PortalGrant:
    """What a portal link opens: one tenant, until when, to do what."""

    tenant: str
    expires_at: datetime
    capabilities: frozenset[Capability]


class Signer:
    """Makes and checks the UI's tokens with keys derived from one secret."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _key(self, purpose: str) -> bytes:
        return hmac.new(self._secret, b"webhooks-ui/" + purpose.encode(), hashlib.sha256).digest()

    def _mac(self, purpose: str, data: bytes) -> bytes:
        return hmac.new(self._key(purpose), data, hashlib.sha256).digest()

    def sign(self, purpose: str, payload: dict[str, Any]) -> str:
        """A token carrying ``payload`` (which must hold an integer ``exp``)."""
        body = _b64encode(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
        return f"{body}.{_b64encode(self._mac(purpose, body.encode()))}"

    def verify(self, purpose: str, token: str, now: datetime) -> dict[str, Any]:
        """The payload of a valid token; InvalidToken or ExpiredToken otherwise."""
        if not isinstance(token, str) or len(token) > 4096 or token.count(".") != 1:
            raise InvalidToken("malformed token")
        body, signature = token.split(".")
        try:
            given = _b64decode(signature)
            payload = json.loads(_b64decode(body))
        except (binascii.Error, ValueError) as exc:
            raise InvalidToken("malformed token") from exc
        if not hmac.compare_digest(given, self._mac(purpose, body.encode())):
            raise InvalidToken("bad signature")
        if not isinstance(payload, dict) or not isinstance(payload.get("exp"), int):
            raise InvalidToken("no expiry")
        if payload["exp"] <= now.timestamp():
            raise ExpiredToken("expired")
        return payload

    # -- sessions ----------------------------------------------------------------

    def session_token(
        self,
        tenant: str | None,
        via: str,
        expires_at: datetime,
        capabilities: frozenset[Capability] = ALL_CAPABILITIES,
    ) -> str:
        """A new session (with a fresh id) as a cookie value."""
        payload = {
            "sid": secrets.token_urlsafe(16),
            "tenant": tenant,
            "via": via,
            "exp": int(expires_at.timestamp()),
            "caps": _listed(capabilities),
        }
        return self.sign("session", payload)

    def session(self, token: str, now: datetime) -> Session:
        """The session a cookie value stands for; TokenError if it stands for none."""
        payload = self.verify("session", token, now)
        sid, tenant, via = payload.get("sid"), payload.get("tenant"), payload.get("via")
        if not isinstance(sid, str) or not (tenant is None or isinstance(tenant, str)):
            raise InvalidToken("malformed session")
        # A portal session from before sessions carried capabilities had
        # what every portal link granted then.
        default = DEFAULT_CAPABILITIES if via == "portal" else ALL_CAPABILITIES
        return Session(
            id=sid,
            tenant=tenant,
            via=str(via),
            expires_at=datetime.fromtimestamp(payload["exp"], UTC),
            capabilities=_capabilities(payload.get("caps"), default),
        )

    # -- portal links ----------------------------------------------------------

    def portal_token(
        self,
        tenant: str,
        expires_at: datetime,
        capabilities: frozenset[Capability] = DEFAULT_CAPABILITIES,
    ) -> str:
        """A portal token: the tenant, the expiry and the capabilities, signed."""
        payload = {
            "tenant": tenant,
            "exp": int(expires_at.timestamp()),
            "caps": _listed(capabilities),
        }
        return self.sign("portal", payload)

    def portal(self, token: str, now: datetime) -> PortalGrant:
        """What a valid portal token grants; TokenError otherwise. A token
        without capabilities (made before links carried them) grants
        :data:`~api.schemas.portal_links.DEFAULT_CAPABILITIES`."""
        payload = self.verify("portal", token, now)
        tenant = payload.get("tenant")
        if not isinstance(tenant, str) or not tenant:
            raise InvalidToken("no tenant")
        return PortalGrant(
            tenant=tenant,
            expires_at=datetime.fromtimestamp(payload["exp"], UTC),
            capabilities=_capabilities(payload.get("caps"), DEFAULT_CAPABILITIES),
        )

    # -- CSRF --------------------------------------------------------------------

    def csrf_token(self, session_id: str) -> str:
        """The CSRF token of every form of one session (or of one sign-in nonce)."""
        return _b64encode(self._mac("csrf", session_id.encode()))

    def check_csrf(self, session_id: str, token: str | None) -> bool:
        """Whether a submitted form carries the CSRF token of ``session_id``."""
        return bool(token) and hmac.compare_digest(
            str(token).encode(), self.csrf_token(session_id).encode()
        )
