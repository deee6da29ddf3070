"""The context: what every part of a producer shares, built once.

The ``Producer`` facade, the resource modules, the worker and the
maintenance jobs all take a :class:`Context` instead of the facade, so the
layers below the facade never import it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from cachetools import TTLCache
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from producer.destinations import DestinationPolicy
from producer.doorbell import Doorbell, doorbell_for
from producer.group_commit import GroupCommit, LoopGroupCommit
from producer.health import HealthRules
from producer.hooks import Hooks
from producer.payloads import ConverterRegistry
from producer.queue import Queue, Taker
from producer.sealing import SecretBox
from producer.settings import Settings
from producer.store import Store
from producer.tracing import Tracing
from producer.transport import Transport, TransportConfig

__all__ = ["KEY_CACHE_SECONDS", "Clock", "Context", "utcnow"]

Clock = Callable[[], datetime]

KEY_CACHE_SECONDS = 2.0
"""How long a process trusts an API key it found live without reading it
again: a key revoked by another process stops working within this time (one
revoked in this process stops at once)."""


def utcnow() -> datetime:
    """The real clock: now, in UTC."""
    return datetime.now(UTC)


@dataclass
class Context:
    """Settings and the collaborators derived from them."""

    settings: Settings
    clock: Clock
    engine: Engine
    store: Store
    queue: Queue
    secret_box: SecretBox
    converters: ConverterRegistry
    destinations: DestinationPolicy
    """The destination guard; tests replace it (e.g. with a fake resolver)."""
    transport_config: TransportConfig
    health_rules: HealthRules
    hooks: Hooks
    transport_factory: Callable[[str], Any] | None = None
    """Optional ``pool_key -> httpx.AsyncBaseTransport`` used for delivery."""
    tracing: Tracing | None = None
    """The spans of sends, attempts and worker batches; None when tracing is off."""
    doorbell: Doorbell | None = None
    """Wakes the workers of other processes on the same SQLite file."""
    sends: GroupCommit[Any, Any] = field(default_factory=GroupCommit)
    """Concurrent ``send`` calls of this process, committed together."""
    loop_sends: LoopGroupCommit[Any, Any] = field(default_factory=LoopGroupCommit)
    """Concurrent ``asend`` calls on a local database, committed together on the loop."""
    taker: Taker | None = None
    """The worker of this process that takes deliveries straight from the
    sends that queue them, when it can start them at once (set while it runs)."""
    live_keys: TTLCache[str, Any] = field(
        default_factory=lambda: TTLCache(maxsize=1024, ttl=KEY_CACHE_SECONDS)
    )
    """API keys found live in the last :data:`KEY_CACHE_SECONDS`, by hash
    (``producer.api_keys``): an API request then reads no key from the database."""

    @classmethod
    def build(cls, settings: Settings, engine: Engine, clock: Clock | None = None) -> Context:
        """Derive every collaborator from ``settings`` over ``engine``."""
        if settings.transport == "aiohttp":
            # Without the extra this fails here, in one line naming it, rather
            # than when a worker starts.
            import producer.transport_aiohttp  # noqa: F401
        ctx = cls(
            settings=settings,
            clock=clock or utcnow,
            engine=engine,
            store=Store(engine),
            queue=Queue(engine),
            secret_box=SecretBox(settings.encryption_keys),
            converters=ConverterRegistry(),
            destinations=DestinationPolicy.from_settings(
                settings.allowed_cidrs, settings.https_only
            ),
            transport_config=TransportConfig(
                connect_timeout=settings.connect_timeout,
                timeout=settings.request_timeout,
                max_response_bytes=settings.max_response_bytes,
                max_clients=settings.http_clients,
                max_connections_per_client=1,
            ),
            health_rules=HealthRules(
                probe_after_failures=settings.probe_after_failures,
                disable_after_seconds=settings.disable_after_seconds,
                disable_after_failures=settings.disable_after_failures,
            ),
            hooks=Hooks(),
            tracing=Tracing() if settings.otel else None,
        )
        if engine.dialect.name == "sqlite":
            # No NOTIFY on SQLite: workers of other processes hear of sends
            # through the doorbell instead of at their next poll.
            ctx.doorbell = doorbell_for(engine.url.database)
            if ctx.doorbell is not None:
                ctx.hooks.on_send(ctx.doorbell.ring)
        return ctx

    @property
    def local_database(self) -> bool:
        """Whether the database is a local file (SQLite): short work there
        costs less on the event loop than a trip to a thread."""
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def waking_transaction(self) -> Iterator[Session]:
        """A transaction of our own; once it commits, this process's workers
        are woken to claim what it queued."""
        with self.store.transaction() as s:
            yield s
        self.hooks.wake()

    def new_transport(self) -> Transport:
        """A delivery transport with this context's limits, guard and factory:
        the one ``WEBHOOKS_TRANSPORT`` names (both have the same interface). A
        ``transport_factory`` plugs httpx transports in, so it means httpx."""
        if self.settings.transport == "aiohttp" and self.transport_factory is None:
            from producer.transport_aiohttp import AiohttpTransport

            return cast(Transport, AiohttpTransport(self.transport_config, guard=self.destinations))
        return Transport(
            self.transport_config,
            transport_factory=self.transport_factory,
            guard=self.destinations,
        )
