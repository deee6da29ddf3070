"""The ``Producer`` facade: everything a host application calls."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets as _secrets
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from producer import signing
from producer.db import create_db_engine, current_revision, head_revision, migrate
from producer.destinations import DestinationPolicy
from producer.errors import (
    ConflictError,
    IdempotencyConflictError,
    InvalidStateError,
    NotFoundError,
    PayloadTooLargeError,
    ValidationError,
    WebhooksError,
)
from producer.health import HealthRules, HealthState, Outcome, apply_outcomes, evaluate_disable
from producer.ids import new_id
from producer.models import (
    ApiKeyRow,
    AttemptRow,
    DeliveryRow,
    EndpointRow,
    EventTypeRow,
    MessageRow,
)
from producer.payloads import (
    Converter,
    ConverterRegistry,
    check_schema,
    compact_json,
    default_version,
    format_timestamp,
    render_envelope,
    validate_data,
)
from producer.retry import validate_schedule
from producer.routing import matches, validate_event_type_name, validate_patterns
from producer.sealing import SecretBox
from producer.settings import Settings
from producer.store import DuplicateIdempotencyKey, Store
from producer.types import (
    DEFAULT_TENANT,
    ApiKey,
    Attempt,
    Delivery,
    Endpoint,
    EndpointSecret,
    EndpointStats,
    EventType,
    HourlyCount,
    Message,
    Page,
    PreviousSecret,
    TestResult,
)
from producer.validation import validate_headers, validate_metadata, validate_tenant, validate_url

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from producer.delivery import DeliveryResult, Job
    from producer.transport import TransportConfig
    from producer.worker import BackgroundWorker

__all__ = ["Producer"]

Clock = Callable[[], datetime]

_ENDPOINT_FIELDS = frozenset(
    {
        "url",
        "description",
        "event_types",
        "version",
        "headers",
        "signature_scheme",
        "rate_limit_per_second",
        "ordering",
        "retry_schedule",
        "timeout_seconds",
        "max_in_flight",
        "metadata",
    }
)
_ORDERINGS = ("unordered", "fifo")
_DELIVERY_STATUSES = ("pending", "sending", "succeeded", "failed", "cancelled")


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _hash_key(plain: str) -> str:
    return hashlib.sha256(plain.encode()).hexdigest()


class Producer:
    """Register endpoints and event types, send events, inspect deliveries.

    ``Producer(database_url=None, **settings)``: settings not given here come
    from ``WEBHOOKS_*`` environment variables (see ``Settings``). Pass
    ``engine=`` to share the host application's SQLAlchemy engine.
    """

    def __init__(
        self,
        database_url: str | None = None,
        *,
        settings: Settings | None = None,
        engine: Engine | None = None,
        clock: Clock | None = None,
        **overrides: Any,
    ) -> None:
        if settings is None:
            if database_url is not None:
                overrides["database_url"] = database_url
            settings = Settings(**overrides)
        elif database_url is not None or overrides:
            settings = settings.model_copy(
                update={**overrides, **({"database_url": database_url} if database_url else {})}
            )
        self.settings = settings
        self.clock: Clock = clock or _utcnow
        self.engine = engine if engine is not None else create_db_engine(settings)
        """The SQLAlchemy engine; on SQLite, make your own sessions from it for
        the outbox (it sets WAL mode, a busy timeout and immediate transactions)."""
        self._owns_engine = engine is None
        self.store = Store(self.engine)
        self.converters = ConverterRegistry()
        self._wake_callbacks: list[Callable[[], None]] = []
        self._event_callbacks: list[Callable[[str, dict[str, Any]], None]] = []
        self._attempt_callbacks: list[Callable[[str, float], None]] = []
        self.secret_box = SecretBox(settings.encryption_keys)
        self.destinations = DestinationPolicy.from_settings(
            settings.allowed_cidrs, settings.https_only
        )
        """The destination guard; replace it (e.g. with a fake resolver) in tests."""
        self.transport_factory: Callable[[str], Any] | None = None
        """Optional ``pool_key -> httpx.AsyncBaseTransport`` used for delivery."""
        self._health_rules = HealthRules(
            probe_after_failures=settings.probe_after_failures,
            disable_after_seconds=settings.disable_after_seconds,
            disable_after_failures=settings.disable_after_failures,
        )
        self._wake_lock = threading.Lock()
        auto = settings.auto_migrate
        if auto is None:
            auto = self.engine.dialect.name == "sqlite"
        if auto:
            migrate(self.engine)

    # -- lifecycle -------------------------------------------------------------

    def migrate(self) -> None:
        """Apply the shipped database migrations (``webhooks db upgrade``)."""
        migrate(self.engine)

    def check_schema_version(self) -> None:
        """Raise WebhooksError when the database is not at this version's schema."""
        current, head = current_revision(self.engine), head_revision()
        if current != head:
            raise WebhooksError(
                f"the database schema is at {current or 'nothing'}, this version needs "
                f"{head}: run `webhooks db upgrade`"
            )

    def close(self) -> None:
        """Release the database connections (only of an engine we created)."""
        if self._owns_engine:
            self.engine.dispose()

    def on_send(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` after each committed send (the worker's wake-up).

        Returns a function that removes the callback.
        """
        return self._subscribe(self._wake_callbacks, callback)

    def _subscribe(self, callbacks: list[Any], callback: Any) -> Callable[[], None]:
        """Add ``callback``; the returned remover may be called any number of times."""
        with self._wake_lock:
            callbacks.append(callback)

        def remove() -> None:
            with self._wake_lock:
                if callback in callbacks:
                    callbacks.remove(callback)

        return remove

    def _wake(self) -> None:
        with self._wake_lock:
            callbacks = list(self._wake_callbacks)
        for callback in callbacks:
            callback()

    # -- event types -----------------------------------------------------------

    def create_event_type(
        self,
        name: str,
        *,
        description: str = "",
        schemas: Mapping[str, Any] | None = None,
        examples: Mapping[str, Any] | None = None,
    ) -> EventType:
        """Register an event type; ``schemas`` maps a version to a JSON Schema.

        Re-creating an archived type unarchives it; an existing live type is a
        ConflictError.
        """
        validate_event_type_name(name, "name")
        schemas_, examples_ = self._check_event_type_docs(schemas, examples)
        now = self.clock()
        with self.store.transaction() as s:
            row = self.store.get_event_type(s, name)
            if row is not None and row.archived_at is None:
                raise ConflictError(f"event type {name} already exists")
            if row is None:
                row = EventTypeRow(name=name, created_at=now)
                s.add(row)
            row.description = description or ""
            row.schemas = schemas_
            row.examples = examples_
            row.updated_at = now
            row.archived_at = None
            s.flush()
            return _event_type(row)

    def _check_event_type_docs(
        self, schemas: Mapping[str, Any] | None, examples: Mapping[str, Any] | None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        schemas_ = dict(schemas or {})
        examples_ = dict(examples or {})
        for version, schema in schemas_.items():
            _check_version(version, f"schemas.{version}")
            check_schema(schema, f"schemas.{version}")
        for version, example in examples_.items():
            _check_version(version, f"examples.{version}")
            if version in schemas_:
                validate_data(schemas_[version], example, event_type="example", version=version)
        return schemas_, examples_

    def get_event_type(self, name: str) -> EventType:
        """An event type by name (archived ones too)."""
        with self.store.transaction() as s:
            row = self.store.get_event_type(s, name)
            if row is None:
                raise NotFoundError(f"event type {name} not found")
            return _event_type(row)

    def list_event_types(
        self, *, include_archived: bool = False, limit: int = 50, cursor: str | None = None
    ) -> Page[EventType]:
        """Event types in name order."""
        with self.store.transaction() as s:
            rows, next_cursor = self.store.list_event_types(
                s, include_archived=include_archived, limit=limit, cursor=cursor
            )
            return Page([_event_type(r) for r in rows], next_cursor)

    def update_event_type(self, name: str, **changes: Any) -> EventType:
        """Change ``description``, ``schemas`` or ``examples`` of an event type."""
        unknown = set(changes) - {"description", "schemas", "examples"}
        if unknown:
            raise ValidationError.for_field(sorted(unknown)[0], "cannot be changed")
        now = self.clock()
        with self.store.transaction() as s:
            row = self.store.get_event_type(s, name)
            if row is None:
                raise NotFoundError(f"event type {name} not found")
            schemas, examples = self._check_event_type_docs(
                changes.get("schemas", row.schemas), changes.get("examples", row.examples)
            )
            if "description" in changes:
                row.description = changes["description"] or ""
            row.schemas, row.examples, row.updated_at = schemas, examples, now
            s.flush()
            return _event_type(row)

    def archive_event_type(self, name: str) -> EventType:
        """Archive an event type: it can no longer be sent."""
        now = self.clock()
        with self.store.transaction() as s:
            row = self.store.get_event_type(s, name)
            if row is None:
                raise NotFoundError(f"event type {name} not found")
            if row.archived_at is None:
                row.archived_at = now
                row.updated_at = now
            s.flush()
            return _event_type(row)

    def register_converter(
        self, event_type: str, from_version: str, to_version: str, func: Converter
    ) -> None:
        """Teach the producer to turn ``from_version`` data into ``to_version`` data.

        Endpoints pinned to a version receive every message rendered in it,
        converted along the shortest chain of registered converters. Use
        ``"*"`` as event type for a converter that fits every type.
        """
        self.converters.register(event_type, str(from_version), str(to_version), func)

    def converter(
        self, event_type: str, from_version: str, to_version: str
    ) -> Callable[[Converter], Converter]:
        """Decorator form of ``register_converter``."""

        def decorate(func: Converter) -> Converter:
            self.register_converter(event_type, from_version, to_version, func)
            return func

        return decorate

    # -- endpoints -------------------------------------------------------------

    def create_endpoint(
        self,
        url: str,
        *,
        tenant: str | None = None,
        description: str = "",
        event_types: Iterable[str] | None = None,
        version: str | None = None,
        headers: Mapping[str, str] | None = None,
        secret: str | None = None,
        signature_scheme: str = "v1",
        rate_limit_per_second: float | None = None,
        ordering: str = "unordered",
        retry_schedule: Sequence[float] | None = None,
        timeout_seconds: float | None = None,
        max_in_flight: int | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Endpoint:
        """Register a receiver URL for a tenant.

        ``event_types`` empty or None subscribes to every type; patterns may end
        in ``.*`` or be ``*``. A secret is generated when none is given; the
        returned value is the only one that carries it (see
        ``get_endpoint_secret``).
        """
        tenant = validate_tenant(tenant or DEFAULT_TENANT)
        if signature_scheme not in signing.SCHEMES:
            raise ValidationError.for_field(
                "signature_scheme", f"must be one of {', '.join(signing.SCHEMES)}"
            )
        if secret is None:
            secret = signing.generate_secret(signature_scheme)
        else:
            _check_secret(secret, signature_scheme)
        fields = self._check_endpoint_fields(
            {
                "url": url,
                "description": description,
                "event_types": event_types,
                "version": version,
                "headers": headers,
                "rate_limit_per_second": rate_limit_per_second,
                "ordering": ordering,
                "retry_schedule": retry_schedule,
                "timeout_seconds": timeout_seconds,
                "max_in_flight": max_in_flight,
                "metadata": metadata,
            }
        )
        now = self.clock()
        row = EndpointRow(
            id=new_id("ep"),
            tenant=tenant,
            signature_scheme=signature_scheme,
            secret=self.secret_box.seal(secret),
            previous_secrets=[],
            status="enabled",
            consecutive_failures=0,
            created_at=now,
            updated_at=now,
            **{("metadata_" if k == "metadata" else k): v for k, v in fields.items()},
        )
        with self.store.transaction() as s:
            s.add(row)
            s.flush()
            return _endpoint(row, secret=secret)

    def _check_endpoint_fields(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Validate (and normalise) endpoint fields given for a create or update."""
        out: dict[str, Any] = {}
        for name, value in fields.items():
            if name == "url":
                out[name] = validate_url(value, https_only=self.settings.https_only)
                self.destinations.check_url(value)
            elif name == "description":
                if value is not None and not isinstance(value, str):
                    raise ValidationError.for_field(name, "must be a string")
                out[name] = value or ""
            elif name == "event_types":
                if isinstance(value, str):
                    raise ValidationError.for_field(name, "must be a list of patterns")
                out[name] = validate_patterns(value, limit=self.settings.max_event_type_patterns)
            elif name == "version":
                out[name] = None if value is None else _check_version(value, name)
            elif name == "headers":
                out[name] = validate_headers(value)
            elif name == "rate_limit_per_second":
                out[name] = _positive_number(value, name, maximum=100_000)
            elif name == "ordering":
                if value not in _ORDERINGS:
                    raise ValidationError.for_field(name, "must be 'unordered' or 'fifo'")
                out[name] = value
            elif name == "retry_schedule":
                out[name] = None if value is None else list(validate_schedule(value))
            elif name == "timeout_seconds":
                out[name] = _positive_number(value, name, maximum=300)
            elif name == "max_in_flight":
                if value is not None and (
                    not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 1000
                ):
                    raise ValidationError.for_field(name, "must be an integer from 1 to 1000")
                out[name] = value
            elif name == "metadata":
                out[name] = validate_metadata(value, max_bytes=self.settings.max_metadata_bytes)
            else:
                raise ValidationError.for_field(name, "is not an endpoint field")
        return out

    def get_endpoint(self, endpoint_id: str, *, tenant: str | None = None) -> Endpoint:
        """An endpoint; with ``tenant`` set, another tenant's is NotFoundError."""
        with self.store.transaction() as s:
            return _endpoint(self.store.get_endpoint(s, endpoint_id, tenant=tenant))

    def list_endpoints(
        self,
        *,
        tenant: str | None = None,
        status: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[Endpoint]:
        """Endpoints, newest first, optionally of one tenant and status."""
        if status is not None and status not in ("enabled", "disabled"):
            raise ValidationError.for_field("status", "must be 'enabled' or 'disabled'")
        with self.store.transaction() as s:
            rows, next_cursor = self.store.list_endpoints(
                s, tenant=tenant, status=status, limit=limit, cursor=cursor
            )
            return Page([_endpoint(r) for r in rows], next_cursor)

    def update_endpoint(
        self, endpoint_id: str, *, tenant: str | None = None, **changes: Any
    ) -> Endpoint:
        """Change endpoint fields (those of ``create_endpoint`` but tenant
        and secret). Switching to or from the ``v1a`` scheme generates a new
        secret, since the key kinds differ."""
        scheme = changes.pop("signature_scheme", None)
        fields = self._check_endpoint_fields(changes)
        if scheme is not None and scheme not in signing.SCHEMES:
            raise ValidationError.for_field(
                "signature_scheme", f"must be one of {', '.join(signing.SCHEMES)}"
            )
        now = self.clock()
        with self.store.transaction() as s:
            row = self.store.get_endpoint(s, endpoint_id, tenant=tenant, lock=True)
            for name, value in fields.items():
                setattr(row, "metadata_" if name == "metadata" else name, value)
            if scheme is not None and scheme != row.signature_scheme:
                if "v1a" in (scheme, row.signature_scheme):
                    row.secret = self.secret_box.seal(signing.generate_secret(scheme))
                    row.previous_secrets = []
                row.signature_scheme = scheme
            row.updated_at = now
            s.flush()
            return _endpoint(row)

    def delete_endpoint(self, endpoint_id: str, *, tenant: str | None = None) -> None:
        """Delete an endpoint; its pending deliveries become ``cancelled``.

        The delivery log of the endpoint is kept (until retention purges it).
        """
        now = self.clock()
        with self.store.transaction() as s:
            row = self.store.get_endpoint(s, endpoint_id, tenant=tenant, lock=True)
            row.deleted_at = now
            row.updated_at = now
            self.store.cancel_pending_deliveries(s, endpoint_id, now)

    def get_endpoint_secret(self, endpoint_id: str, *, tenant: str | None = None) -> EndpointSecret:
        """The current signing secret, its public key (v1a) and previous secrets' expiry."""
        now = self.clock()
        with self.store.transaction() as s:
            row = self.store.get_endpoint(s, endpoint_id, tenant=tenant)
            previous = [
                PreviousSecret(expires_at=expires)
                for _, expires in _previous_secrets(row.previous_secrets)
                if expires > now
            ]
            plain = self.secret_box.open(row.secret)
            return EndpointSecret(plain, signing.public_key(plain), previous)

    def rotate_endpoint_secret(
        self,
        endpoint_id: str,
        *,
        tenant: str | None = None,
        secret: str | None = None,
        grace_period_seconds: float = 86400,
    ) -> str:
        """Replace the signing secret; the old one keeps signing for the grace
        period, so every delivery carries one signature per live secret."""
        if not isinstance(grace_period_seconds, int | float) or not (
            0 <= grace_period_seconds <= 30 * 86400
        ):
            raise ValidationError.for_field(
                "grace_period_seconds", "must be between 0 and 2592000 (30 days)"
            )
        now = self.clock()
        with self.store.transaction() as s:
            row = self.store.get_endpoint(s, endpoint_id, tenant=tenant, lock=True)
            if secret is None:
                secret = signing.generate_secret(row.signature_scheme)
            else:
                _check_secret(secret, row.signature_scheme)
            kept = [
                {"secret": old, "expires_at": expires.isoformat()}
                for old, expires in _previous_secrets(row.previous_secrets)
                if expires > now
            ]
            if grace_period_seconds > 0:
                expires = now + timedelta(seconds=grace_period_seconds)
                kept.insert(0, {"secret": row.secret, "expires_at": expires.isoformat()})
            row.secret = self.secret_box.seal(secret)
            row.previous_secrets = kept
            row.updated_at = now
            return secret

    def live_secrets(self, endpoint: EndpointRow) -> list[str]:
        """The secrets a delivery to ``endpoint`` is signed with right now."""
        now = self.clock()
        return [self.secret_box.open(endpoint.secret)] + [
            self.secret_box.open(old)
            for old, expires in _previous_secrets(endpoint.previous_secrets)
            if expires > now
        ]

    def reencrypt_secrets(self) -> int:
        """Re-seal every endpoint secret with the first encryption key (after
        adding a new key in front); returns how many endpoints were updated."""
        count = 0
        with self.store.transaction() as s:
            for row in self.store.all_endpoints(s):
                row.secret = self.secret_box.reseal(row.secret)
                row.previous_secrets = [
                    {**entry, "secret": self.secret_box.reseal(entry["secret"])}
                    for entry in row.previous_secrets
                ]
                count += 1
        return count

    def disable_endpoint(
        self, endpoint_id: str, *, tenant: str | None = None, reason: str = "manual"
    ) -> Endpoint:
        """Stop delivering to an endpoint; its deliveries wait, held as ``pending``."""
        now = self.clock()
        with self.store.transaction() as s:
            row = self.store.get_endpoint(s, endpoint_id, tenant=tenant, lock=True)
            if row.status != "disabled":
                row.status = "disabled"
                row.disabled_reason = reason
                row.disabled_at = now
                row.updated_at = now
            s.flush()
            return _endpoint(row)

    def enable_endpoint(self, endpoint_id: str, *, tenant: str | None = None) -> Endpoint:
        """Resume an endpoint: clears its failure state; held deliveries go out."""
        now = self.clock()
        with self.store.transaction() as s:
            row = self.store.get_endpoint(s, endpoint_id, tenant=tenant, lock=True)
            row.status = "enabled"
            row.disabled_reason = None
            row.disabled_at = None
            row.failing_since = None
            row.consecutive_failures = 0
            row.updated_at = now
            self.store.notify_due(s)
            s.flush()
            result = _endpoint(row)
        self._wake()
        return result

    # -- sending ---------------------------------------------------------------

    def send(
        self,
        event_type: str,
        data: Any,
        *,
        tenant: str | None = None,
        version: str | None = None,
        idempotency_key: str | None = None,
        endpoint_ids: Sequence[str] | None = None,
        session: Session | None = None,
    ) -> Message:
        """Send an event: store it and one delivery per matching endpoint.

        Matching endpoints are the tenant's endpoints (enabled or disabled)
        whose patterns match ``event_type``, restricted to ``endpoint_ids``
        when given. Pass your own SQLAlchemy ``session`` to write inside your
        transaction (outbox): if you roll back, the event never existed.

        Raises ValidationError (bad name, archived type, data not matching the
        schema, no converter for an endpoint's pinned version),
        PayloadTooLargeError, and IdempotencyConflictError when the key was
        used before with another request.
        """
        if session is None:
            with self.store.transaction() as s:
                message = self._send_in(
                    s, event_type, data, tenant, version, idempotency_key, endpoint_ids
                )
            self._wake()
            return message
        message = self._send_in(
            session, event_type, data, tenant, version, idempotency_key, endpoint_ids
        )
        event.listen(session, "after_commit", lambda _s: self._wake(), once=True)
        return message

    def send_many(
        self,
        events: Iterable[tuple[str, Any]],
        *,
        tenant: str | None = None,
        session: Session | None = None,
    ) -> list[Message]:
        """Send many ``(event_type, data)`` events in one transaction.

        On PostgreSQL a commit waits for the WAL flush, so one transaction per
        event caps a producer at a few hundred events per second; batching
        lifts that. All or nothing: one invalid event sends none.
        """
        if session is None:
            with self.store.transaction() as s:
                messages = [
                    self._send_in(s, event_type, data, tenant, None, None, None)
                    for event_type, data in events
                ]
            self._wake()
            return messages
        messages = [
            self._send_in(session, event_type, data, tenant, None, None, None)
            for event_type, data in events
        ]
        event.listen(session, "after_commit", lambda _s: self._wake(), once=True)
        return messages

    async def asend(
        self,
        event_type: str,
        data: Any,
        *,
        tenant: str | None = None,
        version: str | None = None,
        idempotency_key: str | None = None,
        endpoint_ids: Sequence[str] | None = None,
        session: AsyncSession | None = None,
    ) -> Message:
        """The async twin of ``send``; ``session`` may be an ``AsyncSession``."""
        if session is None:
            return await asyncio.to_thread(
                self.send,
                event_type,
                data,
                tenant=tenant,
                version=version,
                idempotency_key=idempotency_key,
                endpoint_ids=endpoint_ids,
            )

        def run(sync_session: Session) -> Message:
            return self._send_in(
                sync_session, event_type, data, tenant, version, idempotency_key, endpoint_ids
            )

        message = await session.run_sync(run)
        event.listen(session.sync_session, "after_commit", lambda _s: self._wake(), once=True)
        return message

    def _send_in(
        self,
        s: Session,
        event_type: str,
        data: Any,
        tenant: str | None,
        version: str | None,
        idempotency_key: str | None,
        endpoint_ids: Sequence[str] | None,
    ) -> Message:
        tenant = validate_tenant(tenant or DEFAULT_TENANT)
        validate_event_type_name(event_type)
        if version is not None:
            version = _check_version(version, "version")
        if endpoint_ids is not None:
            endpoint_ids = _check_ids(endpoint_ids)
        request_hash: str | None = None
        if idempotency_key is not None:
            if not isinstance(idempotency_key, str) or not 1 <= len(idempotency_key) <= 256:
                raise ValidationError.for_field("idempotency_key", "must be 1-256 characters")
            request_hash = _request_hash(event_type, data, version, endpoint_ids)
            existing = self.store.message_by_idempotency_key(s, tenant, idempotency_key)
            if existing is not None:
                return self._replay(s, existing, request_hash)

        type_row = self.store.get_event_type(s, event_type)
        if type_row is not None and type_row.archived_at is not None:
            raise ValidationError.for_field("event_type", f"{event_type} is archived")
        schemas: dict[str, Any] = type_row.schemas if type_row is not None else {}
        version = version or default_version(schemas)
        if version in schemas:
            validate_data(schemas[version], data, event_type=event_type, version=version)

        now = self.clock()
        message_id = new_id("msg")
        payload = self._checked_envelope(message_id, event_type, version, now, data)

        endpoints = self.store.endpoints_of_tenant(s, tenant, endpoint_ids)
        if endpoint_ids is not None:
            missing = sorted(set(endpoint_ids) - {e.id for e in endpoints})
            if missing:
                raise ValidationError.for_field(
                    "endpoint_ids", f"unknown endpoint(s) of tenant {tenant}: {', '.join(missing)}"
                )
        rendered: dict[str, bytes] = {}
        deliveries: list[DeliveryRow] = []
        for endpoint in endpoints:
            if not matches(endpoint.event_types, event_type):
                continue
            body: bytes | None = None
            if endpoint.version is not None and endpoint.version != version:
                target = endpoint.version
                if target not in rendered:
                    converted = self.converters.convert(event_type, data, version, target)
                    if target in schemas:
                        validate_data(
                            schemas[target], converted, event_type=event_type, version=target
                        )
                    rendered[target] = self._checked_envelope(
                        message_id, event_type, target, now, converted
                    )
                body = rendered[target]
            deliveries.append(
                DeliveryRow(
                    id=new_id("dlv"),
                    message_id=message_id,
                    endpoint_id=endpoint.id,
                    tenant=tenant,
                    event_type=event_type,
                    status="pending",
                    payload=body,
                    attempt_count=0,
                    next_attempt_at=now,
                    next_trigger="scheduled",
                    created_at=now,
                    updated_at=now,
                )
            )
        row = MessageRow(
            id=message_id,
            tenant=tenant,
            event_type=event_type,
            version=version,
            payload=payload,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
            created_at=now,
        )
        try:
            self.store.insert_message(s, row, deliveries)
        except DuplicateIdempotencyKey:
            assert idempotency_key is not None and request_hash is not None
            existing = self.store.message_by_idempotency_key(s, tenant, idempotency_key)
            if existing is None:  # the other transaction rolled back meanwhile
                raise IdempotencyConflictError(
                    "a concurrent request with the same idempotency key failed; retry"
                ) from None
            return self._replay(s, existing, request_hash)
        if deliveries:
            self.store.notify_due(s)
        return _message(row, len(deliveries))

    def _replay(self, s: Session, existing: MessageRow, request_hash: str) -> Message:
        if existing.request_hash != request_hash:
            raise IdempotencyConflictError(
                f"idempotency key {existing.idempotency_key!r} was already used "
                "with a different request",
                details=[{"field": "idempotency_key", "message": f"used by {existing.id}"}],
            )
        count = self.store.count_deliveries(s, [existing.id]).get(existing.id, 0)
        return _message(existing, count)

    def _checked_envelope(
        self, message_id: str, event_type: str, version: str, now: datetime, data: Any
    ) -> bytes:
        payload = render_envelope(message_id, event_type, version, now, data)
        limit = self.settings.max_payload_bytes
        if len(payload) > limit:
            raise PayloadTooLargeError(
                f"the payload is {len(payload)} bytes, more than the limit of {limit} bytes"
            )
        return payload

    # -- messages, deliveries, attempts ---------------------------------------

    def get_message(self, message_id: str, *, tenant: str | None = None) -> Message:
        """A message with its exact payload."""
        with self.store.transaction() as s:
            row = self.store.get_message(s, message_id, tenant=tenant)
            count = self.store.count_deliveries(s, [row.id]).get(row.id, 0)
            return _message(row, count)

    def list_messages(
        self,
        *,
        tenant: str | None = None,
        event_type: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[Message]:
        """Messages, newest first, filtered."""
        with self.store.transaction() as s:
            rows, next_cursor = self.store.list_messages(
                s,
                tenant=tenant,
                event_type=event_type,
                since=_aware(since, "since"),
                until=_aware(until, "until"),
                limit=limit,
                cursor=cursor,
            )
            counts = self.store.count_deliveries(s, [r.id for r in rows])
            return Page([_message(r, counts.get(r.id, 0)) for r in rows], next_cursor)

    def get_delivery(self, delivery_id: str, *, tenant: str | None = None) -> Delivery:
        """A delivery: one message to one endpoint."""
        with self.store.transaction() as s:
            return _delivery(self.store.get_delivery(s, delivery_id, tenant=tenant))

    def list_deliveries(
        self,
        *,
        message_id: str | None = None,
        endpoint_id: str | None = None,
        status: str | None = None,
        event_type: str | None = None,
        tenant: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[Delivery]:
        """The delivery log, newest first; filters combine."""
        if status is not None and status not in _DELIVERY_STATUSES:
            raise ValidationError.for_field(
                "status", f"must be one of {', '.join(_DELIVERY_STATUSES)}"
            )
        with self.store.transaction() as s:
            rows, next_cursor = self.store.list_deliveries(
                s,
                message_id=message_id,
                endpoint_id=endpoint_id,
                status=status,
                event_type=event_type,
                tenant=tenant,
                since=_aware(since, "since"),
                until=_aware(until, "until"),
                limit=limit,
                cursor=cursor,
            )
            return Page([_delivery(r) for r in rows], next_cursor)

    def get_delivery_payload(self, delivery_id: str, *, tenant: str | None = None) -> bytes:
        """The exact body this delivery sends: the message's envelope, or its
        rendering in the version the endpoint pins."""
        with self.store.transaction() as s:
            row = self.store.get_delivery(s, delivery_id, tenant=tenant)
            if row.payload is not None:
                return row.payload
            return self.store.get_message(s, row.message_id, tenant=None).payload

    def list_attempts(self, delivery_id: str, *, tenant: str | None = None) -> list[Attempt]:
        """Every attempt of a delivery, oldest first."""
        with self.store.transaction() as s:
            self.store.get_delivery(s, delivery_id, tenant=tenant)
            return [_attempt(r) for r in self.store.list_attempts(s, delivery_id)]

    # -- delivery engine --------------------------------------------------------

    def on_event(self, callback: Callable[[str, dict[str, Any]], None]) -> Callable[[], None]:
        """Register ``callback(event_type, data)`` for operational events:
        ``endpoint.failing``, ``endpoint.disabled``, ``endpoint.recovered`` and
        ``delivery.exhausted``. Returns a function that removes it."""
        return self._subscribe(self._event_callbacks, callback)

    async def run_worker(self, *, stop: asyncio.Event | None = None) -> None:
        """Deliver webhooks until cancelled or until ``stop`` is set.

        Periodic maintenance (lease reclaim, health checks, retention) runs
        alongside on APScheduler.
        """
        from producer.scheduler import Maintenance
        from producer.worker import Worker

        worker = Worker(self)
        maintenance = Maintenance(self)
        maintenance.start()
        stopper = asyncio.create_task(stop.wait()) if stop is not None else None
        if stopper is not None:
            stopper.add_done_callback(lambda _t: worker.stop())
        try:
            await worker.run()
        finally:
            maintenance.shutdown()
            if stopper is not None:
                stopper.cancel()

    def start_worker_thread(self) -> BackgroundWorker:
        """Run the worker in a background thread (for synchronous apps).

        Returns a handle whose ``stop()`` shuts it down gracefully; also a
        context manager.
        """
        from producer.worker import BackgroundWorker

        return BackgroundWorker(self).start()

    def record_results(self, results: Sequence[DeliveryResult], owner: str) -> None:
        """Store attempts and each delivery's next state, update endpoint
        health, and raise operational events — in one transaction."""
        now = self.clock()
        attempts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        by_endpoint: dict[str, list[Outcome]] = {}
        events: list[tuple[str, str, dict[str, Any]]] = []
        for r in results:
            job, response, decision = r.job, r.response, r.decision
            status = {"succeeded": "succeeded", "failed": "failed", "retry": "pending"}[
                decision.action
            ]
            attempts.append(
                {
                    "id": r.attempt_id,
                    "delivery_id": job.delivery_id,
                    "number": job.attempt_number,
                    "trigger": job.trigger,
                    "started_at": r.started_at,
                    "duration_ms": response.duration_ms,
                    "request_url": job.url,
                    "request_headers": r.request_headers,
                    "response_status": response.status_code,
                    "response_headers": response.headers if response.status_code else None,
                    "response_body": response.body if response.status_code else None,
                    "response_truncated": response.truncated,
                    "error": response.error,
                    "succeeded": decision.action == "succeeded",
                    "next_attempt_at": r.next_attempt_at,
                }
            )
            updates.append(
                {
                    "b_id": job.delivery_id,
                    "b_owner": owner,
                    "b_status": status,
                    "b_next": r.next_attempt_at,
                    "b_last": r.started_at,
                    "b_code": response.status_code,
                    "b_error": response.error,
                }
            )
            if job.trigger != "test":
                by_endpoint.setdefault(job.endpoint_id, []).append(
                    Outcome(
                        at=r.started_at,
                        succeeded=decision.action == "succeeded",
                        gone=decision.disable_endpoint,
                    )
                )
            if decision.action == "failed" and decision.reason == "exhausted":
                events.append(
                    (
                        "delivery.exhausted",
                        job.tenant,
                        {
                            "delivery_id": job.delivery_id,
                            "message_id": job.message_id,
                            "endpoint_id": job.endpoint_id,
                            "event_type": job.event_type,
                            "attempts": job.attempt_number,
                        },
                    )
                )
        with self.store.transaction() as s:
            self.store.insert_attempts(s, attempts)
            self.store.finish_deliveries(s, updates)
            # Endpoints whose attempts all succeeded need no change unless they
            # were failing before: one light query spares loading the rest.
            clean = [e for e, outcomes in by_endpoint.items() if all(o.succeeded for o in outcomes)]
            touched = set(by_endpoint) - set(clean)
            touched |= self.store.endpoints_with_failures(s, clean)
            for row in self.store.endpoints_for_update(s, sorted(touched)):
                state, health_events = apply_outcomes(
                    _health_state(row), by_endpoint[row.id], self._health_rules, now
                )
                _store_health(row, state, now)
                for e in health_events:
                    events.append((e.type, row.tenant, {"endpoint_id": row.id, **e.data}))
            self._send_operational(s, events)
        self._emit(events)
        for callback in list(self._attempt_callbacks):
            for r in results:
                callback(r.decision.action, r.response.duration_ms)

    def _send_operational(self, s: Session, events: list[tuple[str, str, dict[str, Any]]]) -> None:
        ops = self.settings.operations_tenant
        if not ops:
            return
        for event_type, tenant, data in events:
            # Never report on the operations tenant's own endpoints to itself:
            # a failing operations endpoint would otherwise feed its own queue.
            if tenant == ops:
                continue
            self._send_in(
                s, event_type, _jsonable({**data, "tenant": tenant}), ops, None, None, None
            )

    def _emit(self, events: list[tuple[str, str, dict[str, Any]]]) -> None:
        for event_type, tenant, data in events:
            for callback in list(self._event_callbacks):
                try:
                    callback(event_type, {**data, "tenant": tenant})
                except Exception:
                    _log.exception("operational event callback failed for %s", event_type)

    def on_attempt(self, callback: Callable[[str, float], None]) -> Callable[[], None]:
        """Call ``callback(outcome, duration_ms)`` for every attempt recorded by
        this process; ``outcome`` is ``succeeded``, ``retry`` or ``failed``.
        Meant for metrics. Returns a function that removes it."""
        return self._subscribe(self._attempt_callbacks, callback)

    def metrics_snapshot(self) -> dict[str, Any]:
        """Counts for monitoring: deliveries by status, due queue depth and
        disabled endpoints."""
        now = self.clock()
        with self.store.transaction() as s:
            return {
                "deliveries": self.store.delivery_counts(s),
                "queue_depth": self.store.due_count(s, now),
                "endpoints_disabled": self.store.disabled_endpoint_count(s),
            }

    def evaluate_endpoint_health(self) -> int:
        """Disable endpoints whose failure streak passed the thresholds even
        without a new attempt; returns how many were disabled."""
        now = self.clock()
        events: list[tuple[str, str, dict[str, Any]]] = []
        with self.store.transaction() as s:
            for row in self.store.failing_endpoints(s):
                state, health_events = evaluate_disable(_health_state(row), self._health_rules, now)
                if health_events:
                    _store_health(row, state, now)
                    for e in health_events:
                        events.append((e.type, row.tenant, {"endpoint_id": row.id, **e.data}))
            self._send_operational(s, events)
        self._emit(events)
        return len(events)

    def reclaim_expired_leases(self) -> int:
        """Return deliveries whose worker vanished to the queue, due now."""
        with self.store.transaction() as s:
            count = self.store.reclaim_expired_leases(s, self.clock())
        if count:
            _log.warning("reclaimed %d deliveries from expired leases", count)
            self._wake()
        return count

    def release_deliveries(self, delivery_ids: Sequence[str], owner: str) -> int:
        """Give leased, unattempted deliveries back to the queue."""
        with self.store.transaction() as s:
            return self.store.release(s, delivery_ids, owner, self.clock())

    def purge_expired(self, *, batch: int = 5000) -> tuple[int, int]:
        """Delete attempts and finished messages older than the retention
        period; a message with a pending delivery is never deleted.

        Works in batches of ``batch`` rows, one short transaction each, until
        nothing old is left, so a busy database catches up in one run without
        holding locks for long. Returns ``(attempts, messages)`` deleted.
        """
        before = self.clock() - timedelta(days=self.settings.retention_days)
        attempts = messages = 0
        while True:
            with self.store.transaction() as s:
                more_attempts, more_messages = self.store.purge(s, before, batch=batch)
            attempts += more_attempts
            messages += more_messages
            if more_attempts < batch and more_messages < batch:
                return attempts, messages

    def queue_depth(self) -> int:
        """Pending deliveries due now on enabled endpoints."""
        with self.store.transaction() as s:
            return self.store.due_count(s, self.clock())

    def retry_delivery(
        self, delivery_id: str, *, tenant: str | None = None, force: bool = False
    ) -> Delivery:
        """Put a delivery back in the queue, due now, with trigger ``manual``.

        A succeeded delivery needs ``force=True`` (else InvalidStateError); one
        in flight cannot be retried.
        """
        now = self.clock()
        with self.store.transaction() as s:
            row = self.store.get_delivery(s, delivery_id, tenant=tenant, lock=True)
            if row.status == "sending":
                raise InvalidStateError(f"delivery {delivery_id} is being sent right now")
            if row.status == "succeeded" and not force:
                raise InvalidStateError(
                    f"delivery {delivery_id} already succeeded; pass force to send it again"
                )
            self.store.get_endpoint(s, row.endpoint_id)
            row.status = "pending"
            row.next_attempt_at = now
            row.next_trigger = "manual"
            row.updated_at = now
            self.store.notify_due(s)
            s.flush()
            result = _delivery(row)
        self._wake()
        return result

    def resend_message(
        self, message_id: str, endpoint_id: str, *, tenant: str | None = None
    ) -> Delivery:
        """Send a message to one endpoint again, now (trigger ``manual``).

        Reuses the message's delivery to that endpoint, or creates one if the
        endpoint did not get the message (it was added later, say).
        """
        now = self.clock()
        with self.store.transaction() as s:
            message = self.store.get_message(s, message_id, tenant=tenant)
            endpoint = self.store.get_endpoint(s, endpoint_id, tenant=message.tenant)
            rows, _ = self.store.list_deliveries(
                s, message_id=message.id, endpoint_id=endpoint.id, limit=1
            )
            if rows and rows[0].status == "sending":
                raise InvalidStateError(f"delivery {rows[0].id} is being sent right now")
            if rows:
                row = rows[0]
            else:
                body = None
                if endpoint.version is not None and endpoint.version != message.version:
                    data = self.converters.convert(
                        message.event_type,
                        message_data(message.payload),
                        message.version,
                        endpoint.version,
                    )
                    body = self._checked_envelope(
                        message.id, message.event_type, endpoint.version, message.created_at, data
                    )
                row = DeliveryRow(
                    id=new_id("dlv"),
                    message_id=message.id,
                    endpoint_id=endpoint.id,
                    tenant=message.tenant,
                    event_type=message.event_type,
                    payload=body,
                    attempt_count=0,
                    created_at=now,
                )
                s.add(row)
            row.status = "pending"
            row.next_attempt_at = now
            row.next_trigger = "manual"
            row.updated_at = now
            self.store.notify_due(s)
            s.flush()
            result = _delivery(row)
        self._wake()
        return result

    def recover_endpoint(
        self,
        endpoint_id: str,
        *,
        since: datetime,
        until: datetime | None = None,
        tenant: str | None = None,
    ) -> int:
        """Requeue every ``failed`` delivery of an endpoint created in
        ``[since, until)``, due now; returns how many."""
        since = _aware(since, "since")  # type: ignore[assignment]
        until = _aware(until, "until")
        now = self.clock()
        with self.store.transaction() as s:
            self.store.get_endpoint(s, endpoint_id, tenant=tenant)
            count = self.store.requeue_failed(s, endpoint_id, since, until, now)
            if count:
                self.store.notify_due(s)
        if count:
            self._wake()
        return count

    def endpoint_stats(
        self,
        endpoint_id: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        tenant: str | None = None,
    ) -> EndpointStats:
        """Delivery counts, success rate and attempt latency over a window
        (default: the last 24 hours)."""
        now = self.clock()
        since = _aware(since, "since") or now - timedelta(days=1)
        until = _aware(until, "until") or now
        with self.store.transaction() as s:
            self.store.get_endpoint(s, endpoint_id, tenant=tenant)
            counts = self.store.delivery_status_counts(s, [endpoint_id], since, until)
            latencies = self.store.attempt_latencies(s, endpoint_id, since, until)
        return _stats(counts[endpoint_id], latencies)

    def endpoint_success_rates(
        self,
        endpoint_ids: Sequence[str],
        *,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> dict[str, EndpointStats]:
        """Delivery counts and success rate of several endpoints in one query
        (default window: the last 24 hours); latencies are left out (None)."""
        now = self.clock()
        since = _aware(since, "since") or now - timedelta(days=1)
        until = _aware(until, "until") or now
        with self.store.transaction() as s:
            counts = self.store.delivery_status_counts(s, endpoint_ids, since, until)
        return {endpoint_id: _stats(c, []) for endpoint_id, c in counts.items()}

    def endpoint_hourly_counts(
        self,
        endpoint_id: str,
        *,
        since: datetime,
        until: datetime,
        tenant: str | None = None,
    ) -> list[HourlyCount]:
        """Succeeded and failed deliveries of an endpoint per creation hour
        in ``[since, until)``, oldest first (hours without any are left out)."""
        since = _aware(since, "since")  # type: ignore[assignment]
        until = _aware(until, "until")  # type: ignore[assignment]
        with self.store.transaction() as s:
            self.store.get_endpoint(s, endpoint_id, tenant=tenant)
            rows = self.store.hourly_outcomes(s, endpoint_id, since, until)
        counts: dict[str, list[int]] = {}
        for hour, status, n in rows:
            counts.setdefault(hour, [0, 0])[0 if status == "succeeded" else 1] += n
        return [
            HourlyCount(
                hour=datetime.strptime(hour, "%Y-%m-%d %H").replace(tzinfo=UTC),
                succeeded=ok,
                failed=failed,
            )
            for hour, (ok, failed) in sorted(counts.items())
        ]

    async def atest_endpoint(
        self,
        endpoint_id: str,
        *,
        event_type: str = "webhook.test",
        data: Any = None,
        tenant: str | None = None,
    ) -> TestResult:
        """Send a test event to one endpoint now and wait for its answer.

        Works on disabled endpoints too. The attempt is recorded in the log
        with trigger ``test`` and is never retried.
        """
        from producer.delivery import deliver
        from producer.transport import Transport

        job = await asyncio.to_thread(self._create_test_job, endpoint_id, event_type, data, tenant)
        transport = Transport(
            self._transport_config(),
            transport_factory=self.transport_factory,
            guard=self.destinations,
        )
        try:
            result = await deliver(self, transport, job, pool_key=job.endpoint_id)
        finally:
            await transport.aclose()
        await asyncio.to_thread(self.record_results, [result], _TEST_OWNER)
        return TestResult(
            delivery_id=job.delivery_id,
            message_id=job.message_id,
            succeeded=result.decision.action == "succeeded",
            status_code=result.response.status_code,
            duration_ms=result.response.duration_ms,
            response_body=result.response.body if result.response.status_code else None,
            error=result.response.error,
        )

    def test_endpoint(
        self,
        endpoint_id: str,
        *,
        event_type: str = "webhook.test",
        data: Any = None,
        tenant: str | None = None,
    ) -> TestResult:
        """Synchronous form of ``atest_endpoint`` (not from inside an event loop)."""
        return asyncio.run(
            self.atest_endpoint(endpoint_id, event_type=event_type, data=data, tenant=tenant)
        )

    def _create_test_job(
        self, endpoint_id: str, event_type: str, data: Any, tenant: str | None
    ) -> Job:
        from producer.delivery import job_from_row

        validate_event_type_name(event_type)
        if data is None:
            data = {"test": True, "message": "This is a test event."}
        now = self.clock()
        timeout = self.settings.request_timeout
        with self.store.transaction() as s:
            endpoint = self.store.get_endpoint(s, endpoint_id, tenant=tenant)
            message_id = new_id("msg")
            version = endpoint.version or "1"
            payload = self._checked_envelope(message_id, event_type, version, now, data)
            s.add(
                MessageRow(
                    id=message_id,
                    tenant=endpoint.tenant,
                    event_type=event_type,
                    version=version,
                    payload=payload,
                    created_at=now,
                )
            )
            s.flush()
            delivery_id = new_id("dlv")
            s.add(
                DeliveryRow(
                    id=delivery_id,
                    message_id=message_id,
                    endpoint_id=endpoint.id,
                    tenant=endpoint.tenant,
                    event_type=event_type,
                    status="sending",
                    attempt_count=0,
                    next_trigger="test",
                    lease_owner=_TEST_OWNER,
                    lease_expires_at=now
                    + timedelta(seconds=(endpoint.timeout_seconds or timeout) * 1.5 + 1),
                    created_at=now,
                    updated_at=now,
                )
            )
            s.flush()
            [row] = self.store.jobs(s, [delivery_id])
            return job_from_row(row, now, self.secret_box.open)

    def _transport_config(self) -> TransportConfig:
        from producer.transport import TransportConfig

        st = self.settings
        return TransportConfig(
            connect_timeout=st.connect_timeout,
            timeout=st.request_timeout,
            max_response_bytes=st.max_response_bytes,
            max_clients=st.http_clients,
            max_connections_per_client=1,
        )

    # -- API keys --------------------------------------------------------------

    def create_api_key(self, *, tenant: str | None = None, name: str = "") -> tuple[ApiKey, str]:
        """Create a management API key; returns it and its plain text (shown once).

        ``tenant`` None makes an admin key that sees every tenant.
        """
        if tenant is not None:
            validate_tenant(tenant)
        plain = "whk_" + _secrets.token_urlsafe(32)
        row = ApiKeyRow(
            id=new_id("key"),
            tenant=tenant,
            name=name,
            key_hash=_hash_key(plain),
            prefix=plain[:10],
            created_at=self.clock(),
        )
        with self.store.transaction() as s:
            s.add(row)
        return _api_key(row), plain

    def authenticate(self, plain: str) -> ApiKey | None:
        """The API key matching ``plain``, or None."""
        if not plain or len(plain) > 256:
            return None
        with self.store.transaction() as s:
            row = self.store.api_key_by_hash(s, _hash_key(plain))
            return _api_key(row) if row is not None else None

    def has_admin_key(self) -> bool:
        """Whether at least one live admin key exists."""
        with self.store.transaction() as s:
            return self.store.count_api_keys(s, admin_only=True) > 0


# -- helpers ------------------------------------------------------------------

_log = logging.getLogger("producer")
_TEST_OWNER = "test-send"


def message_data(payload: bytes) -> Any:
    """The ``data`` of a stored envelope."""
    return json.loads(payload)["data"]


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, datetime):
        return format_timestamp(value)
    return value


def _stats(counts: dict[str, int], latencies: list[float]) -> EndpointStats:
    done = counts.get("succeeded", 0) + counts.get("failed", 0)
    return EndpointStats(
        succeeded=counts.get("succeeded", 0),
        failed=counts.get("failed", 0),
        pending=counts.get("pending", 0) + counts.get("sending", 0),
        success_rate=counts.get("succeeded", 0) / done if done else None,
        latency_p50_ms=_percentile(latencies, 50),
        latency_p95_ms=_percentile(latencies, 95),
    )


def _percentile(values: list[float], pct: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return round(ordered[index], 3)


def _health_state(row: EndpointRow) -> HealthState:
    return HealthState(
        status=row.status,
        disabled_reason=row.disabled_reason,
        disabled_at=row.disabled_at,
        failing_since=row.failing_since,
        consecutive_failures=row.consecutive_failures,
    )


def _store_health(row: EndpointRow, state: HealthState, now: datetime) -> None:
    if _health_state(row) != state:
        row.status = state.status
        row.disabled_reason = state.disabled_reason
        row.disabled_at = state.disabled_at
        row.failing_since = state.failing_since
        row.consecutive_failures = state.consecutive_failures
        row.updated_at = now


def _check_version(value: Any, field: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not 1 <= len(value) <= 32 or not value.isprintable():
        raise ValidationError.for_field(field, "a version is a string of 1-32 characters")
    return value


def _check_ids(ids: Sequence[str]) -> list[str]:
    if isinstance(ids, str) or not all(isinstance(i, str) for i in ids):
        raise ValidationError.for_field("endpoint_ids", "must be a list of endpoint ids")
    if len(ids) > 1000:
        raise ValidationError.for_field("endpoint_ids", "at most 1000 ids")
    return list(dict.fromkeys(ids))


def _check_secret(secret: str, scheme: str) -> None:
    try:
        signing.validate_secret(secret, scheme)
    except ValueError as exc:
        raise ValidationError.for_field("secret", str(exc)) from exc


def _positive_number(value: Any, field: str, *, maximum: float) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= maximum:
        raise ValidationError.for_field(field, f"must be a number above 0 and at most {maximum:g}")
    return float(value)


def _aware(value: datetime | None, field: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValidationError.for_field(field, "must carry a timezone (UTC)")
    return value


def _request_hash(
    event_type: str, data: Any, version: str | None, endpoint_ids: Sequence[str] | None
) -> str:
    try:
        body = compact_json(
            {
                "event_type": event_type,
                "data": data,
                "version": version,
                "endpoint_ids": sorted(endpoint_ids) if endpoint_ids is not None else None,
            }
        )
    except (TypeError, ValueError) as exc:
        raise ValidationError.for_field("data", f"is not JSON-serialisable: {exc}") from exc
    return hashlib.sha256(body).hexdigest()


def _previous_secrets(entries: list[Any]) -> list[tuple[str, datetime]]:
    return [(e["secret"], datetime.fromisoformat(e["expires_at"])) for e in entries]


def _endpoint(row: EndpointRow, *, secret: str | None = None) -> Endpoint:
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
        status=row.status,
        disabled_reason=row.disabled_reason,
        disabled_at=row.disabled_at,
        failing_since=row.failing_since,
        consecutive_failures=row.consecutive_failures,
        created_at=row.created_at,
        updated_at=row.updated_at,
        secret=secret,
    )


def _event_type(row: EventTypeRow) -> EventType:
    return EventType(
        name=row.name,
        description=row.description,
        schemas=dict(row.schemas or {}),
        examples=dict(row.examples or {}),
        archived=row.archived_at is not None,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _message(row: MessageRow, deliveries: int) -> Message:
    return Message(
        id=row.id,
        tenant=row.tenant,
        event_type=row.event_type,
        version=row.version,
        created_at=row.created_at,
        payload=row.payload,
        idempotency_key=row.idempotency_key,
        deliveries=deliveries,
    )


def _delivery(row: DeliveryRow) -> Delivery:
    return Delivery(
        id=row.id,
        message_id=row.message_id,
        endpoint_id=row.endpoint_id,
        event_type=row.event_type,
        tenant=row.tenant,
        status=row.status,
        attempt_count=row.attempt_count,
        next_attempt_at=row.next_attempt_at,
        last_attempt_at=row.last_attempt_at,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        created_at=row.created_at,
    )


def _attempt(row: AttemptRow) -> Attempt:
    return Attempt(
        id=row.id,
        delivery_id=row.delivery_id,
        number=row.number,
        trigger=row.trigger,
        started_at=row.started_at,
        duration_ms=row.duration_ms,
        request_url=row.request_url,
        request_headers=dict(row.request_headers or {}),
        response_status=row.response_status,
        response_headers=dict(row.response_headers) if row.response_headers is not None else None,
        response_body=row.response_body,
        response_truncated=row.response_truncated,
        error=row.error,
        succeeded=row.succeeded,
        next_attempt_at=row.next_attempt_at,
    )


def _api_key(row: ApiKeyRow) -> ApiKey:
    return ApiKey(
        id=row.id, tenant=row.tenant, name=row.name, prefix=row.prefix, created_at=row.created_at
    )
