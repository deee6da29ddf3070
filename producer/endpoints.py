"""Endpoints: a tenant's receiver URLs, their settings, secrets and state.

Create, read, update and delete; enable and disable by hand; signing
secrets (reveal, rotate with a grace period, re-seal under a new key).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from producer import signing
from producer.context import Context
from producer.errors import ValidationError
from producer.ids import new_id
from producer.models import EndpointRow
from producer.retry import validate_schedule
from producer.routing import validate_patterns
from producer.types import (
    DEFAULT_TENANT,
    ENDPOINT_STATUSES,
    Endpoint,
    EndpointSecret,
    Page,
    PreviousSecret,
)
from producer.validation import (
    validate_headers,
    validate_metadata,
    validate_positive,
    validate_tenant,
    validate_url,
    validate_version,
)

__all__ = [
    "create",
    "delete",
    "disable",
    "enable",
    "endpoint_of",
    "get",
    "get_secret",
    "list_",
    "live_secrets",
    "reencrypt_secrets",
    "rotate_secret",
    "update",
]

_ORDERINGS = ("unordered", "fifo")
MAX_GRACE_SECONDS = 30 * 86400


def create(
    ctx: Context,
    url: str,
    *,
    tenant: str | None,
    secret: str | None,
    signature_scheme: str,
    fields: Mapping[str, Any],
) -> Endpoint:
    """Register a receiver URL; ``fields`` are the other endpoint settings."""
    tenant = validate_tenant(tenant or DEFAULT_TENANT)
    _check_scheme(signature_scheme)
    if secret is None:
        secret = signing.generate_secret(signature_scheme)
    else:
        _check_secret(secret, signature_scheme)
    checked = check_fields(ctx, {"url": url, **fields})
    now = ctx.clock()
    row = EndpointRow(
        id=new_id("ep"),
        tenant=tenant,
        signature_scheme=signature_scheme,
        secret=ctx.secret_box.seal(secret),
        previous_secrets=[],
        status="enabled",
        consecutive_failures=0,
        created_at=now,
        updated_at=now,
        **{_column(k): v for k, v in checked.items()},
    )
    with ctx.store.transaction() as s:
        s.add(row)
        s.flush()
        return endpoint_of(row, secret=secret)


def check_fields(ctx: Context, fields: Mapping[str, Any]) -> dict[str, Any]:
    """Validate (and normalise) endpoint fields given for a create or update."""
    out: dict[str, Any] = {}
    for name, value in fields.items():
        if name == "url":
            out[name] = validate_url(value, https_only=ctx.settings.https_only)
            ctx.destinations.check_url(value)
        elif name == "description":
            if value is not None and not isinstance(value, str):
                raise ValidationError.for_field(name, "must be a string")
            out[name] = value or ""
        elif name == "event_types":
            if isinstance(value, str):
                raise ValidationError.for_field(name, "must be a list of patterns")
            out[name] = validate_patterns(value, limit=ctx.settings.max_event_type_patterns)
        elif name == "version":
            out[name] = None if value is None else validate_version(value, name)
        elif name == "headers":
            out[name] = validate_headers(value)
        elif name == "rate_limit_per_second":
            out[name] = validate_positive(value, name, maximum=100_000)
        elif name == "ordering":
            if value not in _ORDERINGS:
                raise ValidationError.for_field(name, "must be 'unordered' or 'fifo'")
            out[name] = value
        elif name == "retry_schedule":
            out[name] = None if value is None else list(validate_schedule(value))
        elif name == "timeout_seconds":
            out[name] = validate_positive(value, name, maximum=300)
        elif name == "max_in_flight":
            if value is not None and (
                not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 1000
            ):
                raise ValidationError.for_field(name, "must be an integer from 1 to 1000")
            out[name] = value
        elif name == "metadata":
            out[name] = validate_metadata(value, max_bytes=ctx.settings.max_metadata_bytes)
        else:
            raise ValidationError.for_field(name, "is not an endpoint field")
    return out


def get(ctx: Context, endpoint_id: str, *, tenant: str | None) -> Endpoint:
    """An endpoint; with ``tenant`` set, another tenant's is NotFoundError."""
    with ctx.store.transaction() as s:
        return endpoint_of(ctx.store.get_endpoint(s, endpoint_id, tenant=tenant))


def list_(
    ctx: Context, *, tenant: str | None, status: str | None, limit: int, cursor: str | None
) -> Page[Endpoint]:
    """Endpoints, newest first, optionally of one tenant and status."""
    if status is not None and status not in ENDPOINT_STATUSES:
        raise ValidationError.for_field("status", "must be 'enabled' or 'disabled'")
    with ctx.store.transaction() as s:
        rows, next_cursor = ctx.store.list_endpoints(
            s, tenant=tenant, status=status, limit=limit, cursor=cursor
        )
        return Page([endpoint_of(r) for r in rows], next_cursor)


def update(
    ctx: Context, endpoint_id: str, *, tenant: str | None, changes: Mapping[str, Any]
) -> Endpoint:
    """Change endpoint fields; a switch to or from ``v1a`` makes a new secret."""
    changes = dict(changes)
    scheme = changes.pop("signature_scheme", None)
    fields = check_fields(ctx, changes)
    if scheme is not None:
        _check_scheme(scheme)
    now = ctx.clock()
    with ctx.store.transaction() as s:
        row = ctx.store.get_endpoint(s, endpoint_id, tenant=tenant, lock=True)
        for name, value in fields.items():
            setattr(row, _column(name), value)
        if scheme is not None and scheme != row.signature_scheme:
            if "v1a" in (scheme, row.signature_scheme):
                # The key kinds differ (a symmetric secret, a key pair).
                row.secret = ctx.secret_box.seal(signing.generate_secret(scheme))
                row.previous_secrets = []
            row.signature_scheme = scheme
        row.updated_at = now
        s.flush()
        return endpoint_of(row)


def delete(ctx: Context, endpoint_id: str, *, tenant: str | None) -> None:
    """Delete an endpoint and cancel its pending deliveries; its log stays."""
    now = ctx.clock()
    with ctx.store.transaction() as s:
        row = ctx.store.get_endpoint(s, endpoint_id, tenant=tenant, lock=True)
        row.deleted_at = now
        row.updated_at = now
        ctx.store.cancel_pending_deliveries(s, endpoint_id, now)


def disable(ctx: Context, endpoint_id: str, *, tenant: str | None, reason: str) -> Endpoint:
    """Stop delivering to an endpoint; its deliveries wait as ``pending``."""
    now = ctx.clock()
    with ctx.store.transaction() as s:
        row = ctx.store.get_endpoint(s, endpoint_id, tenant=tenant, lock=True)
        if row.status != "disabled":
            row.status = "disabled"
            row.disabled_reason = reason
            row.disabled_at = now
            row.updated_at = now
        s.flush()
        return endpoint_of(row)


def enable(ctx: Context, endpoint_id: str, *, tenant: str | None) -> Endpoint:
    """Resume an endpoint and clear its failure state; held deliveries go out."""
    now = ctx.clock()
    with ctx.store.transaction() as s:
        row = ctx.store.get_endpoint(s, endpoint_id, tenant=tenant, lock=True)
        row.status = "enabled"
        row.disabled_reason = None
        row.disabled_at = None
        row.failing_since = None
        row.consecutive_failures = 0
        row.updated_at = now
        ctx.store.notify_due(s)
        s.flush()
        result = endpoint_of(row)
    ctx.hooks.wake()
    return result


# -- secrets -------------------------------------------------------------------


def get_secret(ctx: Context, endpoint_id: str, *, tenant: str | None) -> EndpointSecret:
    """The current secret, its public key (``v1a``) and previous secrets' expiry."""
    now = ctx.clock()
    with ctx.store.transaction() as s:
        row = ctx.store.get_endpoint(s, endpoint_id, tenant=tenant)
        previous = [
            PreviousSecret(expires_at=expires)
            for _, expires in previous_secrets(row.previous_secrets)
            if expires > now
        ]
        plain = ctx.secret_box.open(row.secret)
        return EndpointSecret(plain, signing.public_key(plain), previous)


def rotate_secret(
    ctx: Context,
    endpoint_id: str,
    *,
    tenant: str | None,
    secret: str | None,
    grace_period_seconds: float,
) -> str:
    """Replace the secret; the old one keeps signing for the grace period."""
    if not isinstance(grace_period_seconds, int | float) or not (
        0 <= grace_period_seconds <= MAX_GRACE_SECONDS
    ):
        raise ValidationError.for_field(
            "grace_period_seconds", f"must be between 0 and {MAX_GRACE_SECONDS} (30 days)"
        )
    now = ctx.clock()
    with ctx.store.transaction() as s:
        row = ctx.store.get_endpoint(s, endpoint_id, tenant=tenant, lock=True)
        if secret is None:
            secret = signing.generate_secret(row.signature_scheme)
        else:
            _check_secret(secret, row.signature_scheme)
        kept = [
            {"secret": old, "expires_at": expires.isoformat()}
            for old, expires in previous_secrets(row.previous_secrets)
            if expires > now
        ]
        if grace_period_seconds > 0:
            expires = now + timedelta(seconds=grace_period_seconds)
            kept.insert(0, {"secret": row.secret, "expires_at": expires.isoformat()})
        row.secret = ctx.secret_box.seal(secret)
        row.previous_secrets = kept
        row.updated_at = now
        return secret


def live_secrets(ctx: Context, sealed: str, previous: list[Any] | None, now: datetime) -> list[str]:
    """The plain secrets a delivery is signed with at ``now``: the current one,
    then each previous one still in its grace period."""
    return [ctx.secret_box.open(sealed)] + [
        ctx.secret_box.open(old)
        for old, expires in previous_secrets(previous or [])
        if expires > now
    ]


def reencrypt_secrets(ctx: Context) -> int:
    """Re-seal every endpoint secret with the first key; returns how many endpoints."""
    count = 0
    with ctx.store.transaction() as s:
        for row in ctx.store.all_endpoints(s):
            row.secret = ctx.secret_box.reseal(row.secret)
            row.previous_secrets = [
                {**entry, "secret": ctx.secret_box.reseal(entry["secret"])}
                for entry in row.previous_secrets
            ]
            count += 1
    return count


def previous_secrets(entries: list[Any]) -> list[tuple[str, datetime]]:
    """``(sealed secret, expiry)`` of the stored previous secrets."""
    return [(e["secret"], datetime.fromisoformat(e["expires_at"])) for e in entries]


# -- helpers -------------------------------------------------------------------


def _column(field: str) -> str:
    # ``metadata`` is reserved on SQLAlchemy models.
    return "metadata_" if field == "metadata" else field


def _check_scheme(scheme: str) -> None:
    if scheme not in signing.SCHEMES:
        raise ValidationError.for_field(
            "signature_scheme", f"must be one of {', '.join(signing.SCHEMES)}"
        )


def _check_secret(secret: str, scheme: str) -> None:
    try:
        signing.validate_secret(secret, scheme)
    except ValueError as exc:
        raise ValidationError.for_field("secret", str(exc)) from exc


def endpoint_of(row: EndpointRow, *, secret: str | None = None) -> Endpoint:
    """The public snapshot of an endpoint row (``secret`` only when just made)."""
    return Endpoint(
        id=row.id,
        tenant=row.tenant,
        url=row.url,
        description=row.description,
        event_types=list(row.event_types or []),
        version=row.version,
        headers=dict(row.headers or {}),
        signature_scheme=row.signature_scheme,
        rate_limit_per_second=row.rate_limit_per_second,
        ordering=row.ordering,
        retry_schedule=list(row.retry_schedule) if row.retry_schedule is not None else None,
        timeout_seconds=row.timeout_seconds,
        max_in_flight=row.max_in_flight,
        metadata=dict(row.metadata_ or {}),
        status=row.status,  # type: ignore[arg-type]
        disabled_reason=row.disabled_reason,
        disabled_at=row.disabled_at,
        failing_since=row.failing_since,
        consecutive_failures=row.consecutive_failures,
        created_at=row.created_at,
        updated_at=row.updated_at,
        secret=secret,
    )
