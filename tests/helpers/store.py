"""States of the delivery log set up directly in the store, where reaching
them through public calls would take a worker and real failures."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import update

from producer.models import DeliveryRow


def mark_failed(producer: Any, delivery_ids: Iterable[str]) -> None:
    """Make these deliveries ``failed``, as if their retries had run out."""
    with producer.context.store.transaction() as s:
        s.execute(
            update(DeliveryRow)
            .where(DeliveryRow.id.in_(list(delivery_ids)))
            .values(status="failed", next_attempt_at=None)
        )
