"""Management API keys: made once and shown once, stored as a hash."""

from __future__ import annotations

import hashlib
import secrets
import threading

from producer.context import Context
from producer.errors import InvalidStateError
from producer.ids import new_id
from producer.models import ApiKeyRow
from producer.types import ApiKey, snapshot
from producer.validation import validate_tenant

__all__ = ["authenticate", "create", "has_admin_key", "list_live", "remembered", "revoke"]

PREFIX = "whk_"
MAX_KEY_LENGTH = 256

_live_keys_lock = threading.Lock()
"""Guards every context's ``live_keys`` (the cache is not thread-safe)."""


def create(ctx: Context, *, tenant: str | None, name: str) -> tuple[ApiKey, str]:
    """A new key (admin when ``tenant`` is None) and its plain text."""
    if tenant is not None:
        validate_tenant(tenant)
    plain = PREFIX + secrets.token_urlsafe(32)
    row = ApiKeyRow(
        id=new_id("key"),
        tenant=tenant,
        name=name,
        key_hash=_hash(plain),
        prefix=plain[:10],
        created_at=ctx.clock(),
    )
    with ctx.store.transaction() as s:
        s.add(row)
    return _api_key_of(row), plain


def authenticate(ctx: Context, plain: str) -> ApiKey | None:
    """The live key whose plain text is ``plain``, or None.

    A key found live is remembered for ``KEY_CACHE_SECONDS`` (see
    :mod:`producer.context`); an unknown key is looked up every time.
    """
    key = remembered(ctx, plain)
    if key is not None or not plain or len(plain) > MAX_KEY_LENGTH:
        return key
    key_hash = _hash(plain)
    with ctx.store.reading() as s:
        row = ctx.store.api_key_by_hash(s, key_hash)
        if row is None:
            return None
        key = _api_key_of(row)
    with _live_keys_lock:
        ctx.live_keys[key_hash] = key
    return key


def remembered(ctx: Context, plain: str) -> ApiKey | None:
    """The key ``plain`` if this process found it live a moment ago, without
    touching the database; None means "look it up", not "invalid"."""
    if not plain or len(plain) > MAX_KEY_LENGTH:
        return None
    key_hash = _hash(plain)
    with _live_keys_lock:
        key: ApiKey | None = ctx.live_keys.get(key_hash)
    return key


def has_admin_key(ctx: Context) -> bool:
    """Whether at least one live admin key exists."""
    with ctx.store.reading() as s:
        return ctx.store.count_api_keys(s, admin_only=True) > 0


def list_live(ctx: Context) -> list[ApiKey]:
    """Every key not revoked, newest first (never their plain text: only a hash is kept)."""
    with ctx.store.reading() as s:
        return [_api_key_of(row) for row in ctx.store.live_api_keys(s)]


def revoke(ctx: Context, key_id: str) -> ApiKey:
    """Revoke a key: it authenticates no more. A revoked key is InvalidStateError."""
    with ctx.store.transaction() as s:
        row = ctx.store.get_api_key(s, key_id, lock=True)
        if row.revoked_at is not None:
            raise InvalidStateError(f"api key {key_id} is already revoked")
        row.revoked_at = ctx.clock()
        key = _api_key_of(row)
    with _live_keys_lock:
        ctx.live_keys.pop(row.key_hash, None)
    return key


def _hash(plain: str) -> str:
    return hashlib.sha256(plain.encode()).hexdigest()


def _api_key_of(row: ApiKeyRow) -> ApiKey:
    return snapshot(ApiKey, row)
