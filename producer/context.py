"""The context: what every part of a producer shares, built once.

The ``Producer`` facade, the resource modules, the worker and the
maintenance jobs all take a :class:`Context` instead of the facade, so the
layers below the facade never import it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from producer.destinations import DestinationPolicy
from producer.health import HealthRules
from producer.hooks import Hooks
from producer.payloads import ConverterRegistry
from producer.queue import Queue
from producer.sealing import SecretBox
from producer.settings import Settings
from producer.store import Store
from producer.tracing import Tracing
from producer.transport import Transport, TransportConfig

__all__ = ["Clock", "Context", "utcnow"]

Clock = Callable[[], datetime]


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

    @classmethod
    def build(cls, settings: Settings, engine: Engine, clock: Clock | None = None) -> Context:
        """Derive every collaborator from ``settings`` over ``engine``."""
        return cls(
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

    @contextmanager
    def waking_transaction(self) -> Iterator[Session]:
        """A transaction of our own; once it commits, this process's workers
        are woken to claim what it queued."""
        with self.store.transaction() as s:
            yield s
        self.hooks.wake()

    def new_transport(self) -> Transport:
        """A delivery transport with this context's limits, guard and factory."""
        return Transport(
            self.transport_config,
            transport_factory=self.transport_factory,
            guard=self.destinations,
        )
