"""Endpoints: a tenant's receiver URLs, their settings, secrets and state.

Create, read, update and delete; enable and disable by hand; signing
secrets (reveal, rotate with a grace period, re-seal under a new key).

Creating or updating an endpoint refuses what would fail every delivery or
send later: a destination the guard refuses (an IP literal, or a name
resolving to such an address), and a pinned payload version that a matching
event type's messages cannot be converted to.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from producer import credentials, signing
from producer.context import Context
from producer.errors import ConversionError, ValidationError
from producer.filters import validate_filter
from producer.health import HealthState
from producer.ids import new_id
from producer.models import EndpointRow, EventTypeRow
from producer.payloads import default_version
from producer.retry import validate_schedule
from producer.routing import MAX_ENDPOINT_CHANNELS, matches, validate_channels, validate_patterns
from producer.store import MAX_PAGE_SIZE, health_of, set_health
from producer.types import (
    DEFAULT_TENANT,
    ENDPOINT_STATUSES,
    Endpoint,
    EndpointSecret,
    Page,
    PreviousSecret,
    snapshot,
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
    "check_version_reachable",
    "create",
    "delete",
    "disable",
    "enable",
    "endpoint_of",
    "get",
    "get_secret",
    "list_",
    "live_secrets",
    "open_headers",
    "reencrypt_secrets",
    "rotate_secret",
    "seal_headers",
    "update",
]

_ORDERINGS = ("unordered", "fifo")
HEALTHY = HealthState(
    status="enabled",
    disabled_reason=None,
    disabled_at=None,
    failing_since=None,
    consecutive_failures=0,
)
"""The health of a new or re-enabled endpoint."""
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
        check_version_reachable(ctx, s, row.version, row.event_types)
        s.add(row)
        s.flush()
        ctx.store.set_endpoint_channels(s, row.id, row.channels)
        ctx.store.set_endpoint_routes(s, row)
        return endpoint_of(ctx, row, secret=secret)


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
            # Header values carry credentials (Authorization, API keys):
            # sealed at rest like the signing secret.
            out[name] = seal_headers(ctx, validate_headers(value))
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
        elif name == "forward_traceparent":
            if not isinstance(value, bool):
                raise ValidationError.for_field(name, "must be true or false")
            out[name] = value
        elif name == "channels":
            out[name] = validate_channels(value, limit=MAX_ENDPOINT_CHANNELS)
        elif name == "filter":
            out[name] = None if value is None else validate_filter(value)
        elif name in _CREDENTIALS:
            out[name] = _CREDENTIALS[name](ctx, value)
        else:
            raise ValidationError.for_field(name, "is not an endpoint field")
    return out


def check_version_reachable(
    ctx: Context, s: Session, version: str | None, patterns: list[str]
) -> None:
    """Raise ConversionError (on ``version``) when a registered event type
    that ``patterns`` match could not be rendered in the pinned ``version``:
    every send of it to the endpoint's tenant would fail.

    Each registered, unarchived event type the patterns match is checked from
    the version its messages get when the sender names none (the newest with
    a schema, else ``"1"``), along the converters registered now. Messages
    sent in another version, and event types registered or given a new
    version later, are checked when they are sent.
    """
    if version is None:
        return
    missing = [
        (row.name, source)
        for row in _event_types(ctx, s)
        if matches(patterns, row.name)
        and (source := default_version(row.schemas or {})) != version
        and not ctx.converters.reaches(row.name, source, version)
    ]
    if not missing:
        return
    name, source = missing[0]
    others = len(missing) - 1
    more = f" (and {others} more event type{'s' if others > 1 else ''})" if others else ""
    raise ConversionError.for_field(
        "version",
        f"event type {name} has no conversion from version {source} to {version}{more}; "
        "register a converter (Producer.register_converter) or pin another version",
    )


def _event_types(ctx: Context, s: Session) -> list[EventTypeRow]:
    """Every registered, unarchived event type, in name order."""
    rows: list[EventTypeRow] = []
    cursor: str | None = None
    while True:
        page, cursor = ctx.store.list_event_types(
            s, include_archived=False, limit=MAX_PAGE_SIZE, cursor=cursor
        )
        rows.extend(page)
        if cursor is None:
            return rows


def get(ctx: Context, endpoint_id: str, *, tenant: str | None) -> Endpoint:
    """An endpoint; with ``tenant`` set, another tenant's is NotFoundError."""
    with ctx.store.reading() as s:
        return endpoint_of(ctx, ctx.store.get_endpoint(s, endpoint_id, tenant=tenant))


def list_(
    ctx: Context, *, tenant: str | None, status: str | None, limit: int, cursor: str | None
) -> Page[Endpoint]:
    """Endpoints, newest first, optionally of one tenant and status."""
    if status is not None and status not in ENDPOINT_STATUSES:
        raise ValidationError.for_field("status", "must be 'enabled' or 'disabled'")
    with ctx.store.reading() as s:
        rows, next_cursor = ctx.store.list_endpoints(
            s, tenant=tenant, status=status, limit=limit, cursor=cursor
        )
        return Page([endpoint_of(ctx, r) for r in rows], next_cursor)


def update(
    ctx: Context, endpoint_id: str, *, tenant: str | None, changes: Mapping[str, Any]
) -> Endpoint:
    """Change endpoint fields; a switch to or from ``v1a`` makes a new secret."""
    changes = dict(changes)
    scheme = changes.pop("signature_scheme", None)
    fields = check_fields(ctx, changes)
    if scheme is not None:
        _check_scheme(scheme)

    def change(s: Session, row: EndpointRow, now: datetime) -> None:
        if "version" in fields or "event_types" in fields:
            check_version_reachable(
                ctx,
                s,
                fields.get("version", row.version),
                fields.get("event_types", row.event_types),
            )
        for name, value in fields.items():
            setattr(row, _column(name), value)
        if "channels" in fields:
            ctx.store.set_endpoint_channels(s, row.id, fields["channels"])
        if "event_types" in fields or "channels" in fields:
            ctx.store.set_endpoint_routes(s, row)
        if scheme is not None and scheme != row.signature_scheme:
            if "v1a" in (scheme, row.signature_scheme):
                # The key kinds differ (a symmetric secret, a key pair).
                row.secret = ctx.secret_box.seal(signing.generate_secret(scheme))
                row.previous_secrets = []
            row.signature_scheme = scheme
        row.updated_at = now

    return _change(ctx, endpoint_id, tenant, change)


def delete(ctx: Context, endpoint_id: str, *, tenant: str | None) -> None:
    """Delete an endpoint and cancel its pending deliveries; its log stays."""
    now = ctx.clock()
    with ctx.store.transaction() as s:
        row = ctx.store.get_endpoint(s, endpoint_id, tenant=tenant, lock=True)
        row.deleted_at = now
        row.updated_at = now
        ctx.store.set_endpoint_routes(s, row)
        ctx.store.cancel_pending_deliveries(s, endpoint_id, now)


MAX_REASON = 16
"""The longest ``disabled_reason`` an endpoint can carry."""


def disable(ctx: Context, endpoint_id: str, *, tenant: str | None, reason: str) -> Endpoint:
    """Stop delivering to an endpoint; its deliveries wait as ``pending``.

    ``reason`` is a short word the log shows (``manual``; the worker uses
    ``failing`` and ``gone``): 1-16 printable characters."""
    if (
        not isinstance(reason, str)
        or not 1 <= len(reason) <= MAX_REASON
        or not reason.isprintable()
    ):
        raise ValidationError.for_field(
            "reason", f"must be 1-{MAX_REASON} printable characters, e.g. 'manual'"
        )

    def change(_s: Session, row: EndpointRow, now: datetime) -> None:
        if row.status != "disabled":
            state = health_of(row)
            set_health(
                row, replace(state, status="disabled", disabled_reason=reason, disabled_at=now), now
            )

    return _change(ctx, endpoint_id, tenant, change)


def enable(ctx: Context, endpoint_id: str, *, tenant: str | None) -> Endpoint:
    """Resume an endpoint and clear its failure state; held deliveries go out."""

    def change(s: Session, row: EndpointRow, now: datetime) -> None:
        set_health(row, HEALTHY, now)
        row.updated_at = now
        ctx.store.notify_due(s)

    endpoint = _change(ctx, endpoint_id, tenant, change)
    ctx.hooks.wake()
    return endpoint


def _change(
    ctx: Context,
    endpoint_id: str,
    tenant: str | None,
    change: Callable[[Session, EndpointRow, datetime], None],
) -> Endpoint:
    """Apply ``change(session, row, now)`` to the locked row of an endpoint."""
    now = ctx.clock()
    with ctx.store.transaction() as s:
        row = ctx.store.get_endpoint(s, endpoint_id, tenant=tenant, lock=True)
        change(s, row, now)
        s.flush()
        return endpoint_of(ctx, row)


# -- secrets -------------------------------------------------------------------


def get_secret(ctx: Context, endpoint_id: str, *, tenant: str | None) -> EndpointSecret:
    """The current secret, its public key (``v1a``) and previous secrets' expiry."""
    now = ctx.clock()
    with ctx.store.reading() as s:
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


def live_secrets(ctx: Context, now: datetime, sealed: str, previous: list[Any]) -> list[str]:
    """The plain secrets a delivery is signed with at ``now``: the current one,
    then each previous one still in its grace period."""
    return [ctx.secret_box.open(sealed)] + [
        ctx.secret_box.open(old) for old, expires in previous_secrets(previous) if expires > now
    ]


def reencrypt_secrets(ctx: Context, *, progress: Callable[[int], None] | None = None) -> int:
    """Re-seal every endpoint secret, custom header value and credential
    (proxy URL, auth, client key) with the first key; returns how many
    endpoints. ``progress(1)`` is called per endpoint."""
    count = 0
    with ctx.store.transaction() as s:
        for row in ctx.store.all_endpoints(s):
            row.secret = ctx.secret_box.reseal(row.secret)
            row.previous_secrets = [
                {**entry, "secret": ctx.secret_box.reseal(entry["secret"])}
                for entry in row.previous_secrets
            ]
            row.headers = {name: ctx.secret_box.reseal(v) for name, v in row.headers.items()}
            _reseal_credentials(ctx, row)
            count += 1
            if progress is not None:
                progress(1)
    return count


def _reseal_credentials(ctx: Context, row: EndpointRow) -> None:
    box = ctx.secret_box
    if row.proxy_url is not None:
        row.proxy_url = box.reseal(row.proxy_url)
    row.auth = credentials.seal_auth(credentials.open_auth(row.auth, box.open), box.seal)
    row.tls = credentials.seal_tls(credentials.open_tls(row.tls, box.open), box.seal)


# -- credentials ---------------------------------------------------------------
# Each takes the plain value given and returns it checked, as stored (sealed).


def _check_proxy_url(ctx: Context, value: Any) -> str | None:
    # The guard checks the proxy's address only: plain http to a proxy is
    # fine under WEBHOOKS_HTTPS_ONLY, as https receivers are tunnelled.
    proxy = credentials.check_proxy_url(
        value, lambda url, field: ctx.destinations.check_url(_as_https(url), field)
    )
    return None if proxy is None else ctx.secret_box.seal(proxy)


def _as_https(url: str) -> str:
    return "https" + url[url.index(":") :]


def _check_auth(ctx: Context, value: Any) -> dict[str, str] | None:
    checked = credentials.check_auth(value, ctx.destinations.check_url)
    return credentials.seal_auth(checked, ctx.secret_box.seal)


def _check_tls(ctx: Context, value: Any) -> dict[str, str] | None:
    return credentials.seal_tls(credentials.check_tls(value), ctx.secret_box.seal)


_CREDENTIALS: dict[str, Callable[[Context, Any], Any]] = {
    "proxy_url": _check_proxy_url,
    "auth": _check_auth,
    "tls": _check_tls,
}


def seal_headers(ctx: Context, headers: Mapping[str, str]) -> dict[str, str]:
    """Custom headers as stored: each value sealed (as is, without keys)."""
    return {name: ctx.secret_box.seal(value) for name, value in headers.items()}


def open_headers(ctx: Context, stored: Mapping[str, str]) -> dict[str, str]:
    """The plain custom headers of stored ones (values stored before keys
    were set open as themselves)."""
    return {name: ctx.secret_box.open(value) for name, value in stored.items()}


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


def endpoint_of(ctx: Context, row: EndpointRow, *, secret: str | None = None) -> Endpoint:
    """The public snapshot of an endpoint row (``secret`` only when just made),
    its header values opened."""
    return snapshot(
        Endpoint,
        row,
        metadata=dict(row.metadata_),
        headers=open_headers(ctx, row.headers),
        secret=secret,
        proxy_url=credentials.public_proxy_url(
            None if row.proxy_url is None else ctx.secret_box.open(row.proxy_url)
        ),
        auth=credentials.public_auth(row.auth),
        tls=credentials.public_tls(row.tls),
    )
