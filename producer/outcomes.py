"""Outcomes: what the worker's attempts change, recorded in one transaction.

For a batch of results: the attempt log, each delivery's next state,
endpoint health (failure streaks, probing, auto-disable) and the
operational events those changes raise, which go to the host's callbacks
and, when ``operations_tenant`` is set, out as messages to that tenant.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from producer.context import Context
from producer.delivery import DeliveryResult
from producer.health import HealthEvent, Outcome, apply_outcomes
from producer.hooks import OperationalEvent
from producer.models import EndpointRow
from producer.payloads import format_timestamp
from producer.queue import DeliveryUpdate
from producer.sending import SendRequest, send_in
from producer.store import health_of, set_health
from producer.types import Attempt, DeliveryStatus

__all__ = [
    "Outcomes",
    "attempt_record",
    "delivery_update",
    "health_events_of",
]

_NEXT_STATUS: dict[str, DeliveryStatus] = {
    "succeeded": "succeeded",
    "failed": "failed",
    "retry": "pending",
}


def attempt_record(result: DeliveryResult) -> Attempt:
    """The attempt-log row of one result."""
    job, response = result.job, result.response
    answered = bool(response.status_code)
    return Attempt(
        id=result.attempt_id,
        delivery_id=job.delivery_id,
        number=job.attempt_number,
        trigger=job.trigger,
        started_at=result.started_at,
        duration_ms=response.duration_ms,
        request_url=job.url,
        request_headers=_storable_map(result.request_headers),
        response_status=response.status_code,
        response_headers=_storable_map(response.headers) if answered else None,
        response_body=_storable(response.body) if answered else None,
        response_truncated=response.truncated,
        error=_storable(response.error),
        succeeded=result.decision.action == "succeeded",
        next_attempt_at=result.next_attempt_at,
    )


def delivery_update(result: DeliveryResult, owner: str) -> DeliveryUpdate:
    """A delivery's state after one result."""
    return DeliveryUpdate(
        delivery_id=result.job.delivery_id,
        owner=owner,
        status=_NEXT_STATUS[result.decision.action],
        next_attempt_at=result.next_attempt_at,
        attempted_at=result.started_at,
        status_code=result.response.status_code,
        error=_storable(result.response.error),
    )


def _storable(text: str | None) -> str | None:
    # A receiver's answer may hold NUL characters, which PostgreSQL text and
    # JSON cannot store: one such answer would fail its whole batch's record.
    return str(text).replace("\x00", "\ufffd") if text is not None else None


def _storable_map(values: dict[str, str]) -> dict[str, str]:
    # str(): a header value written straight into the database may not be text.
    return {str(_storable(k)): str(_storable(v)) for k, v in values.items()}


class Outcomes:
    """Records the results of attempts; shared by the worker and the test send."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def record(self, results: Sequence[DeliveryResult], owner: str) -> None:
        """Store attempts and each delivery's next state, update endpoint
        health, and raise operational events — in one transaction."""
        ctx = self.ctx
        now = ctx.clock()
        by_endpoint: defaultdict[str, list[Outcome]] = defaultdict(list)
        events: list[OperationalEvent] = []
        for r in results:
            if r.job.trigger != "test":  # a test send says nothing of an endpoint's health
                by_endpoint[r.job.endpoint_id].append(
                    Outcome(
                        at=r.started_at,
                        succeeded=r.decision.action == "succeeded",
                        gone=r.decision.disable_endpoint,
                    )
                )
            if r.decision.action == "failed" and r.decision.reason == "exhausted":
                events.append(_exhausted(r))
        with ctx.store.transaction() as s:
            ctx.queue.insert_attempts(s, [attempt_record(r) for r in results])
            ctx.queue.finish_deliveries(s, [delivery_update(r, owner) for r in results])
            # Endpoints whose attempts all succeeded need no change unless they
            # were failing before: one light query spares loading the rest.
            clean = [e for e, outcomes in by_endpoint.items() if all(o.succeeded for o in outcomes)]
            touched = (set(by_endpoint) - set(clean)) | ctx.store.endpoints_with_failures(s, clean)
            for row in ctx.store.endpoints_for_update(s, sorted(touched)):
                state, health_events = apply_outcomes(
                    health_of(row), by_endpoint[row.id], ctx.health_rules, now
                )
                set_health(row, state, now)
                events += health_events_of(row, health_events)
            self.send_operational(s, events)
        ctx.hooks.emit(events)
        ctx.hooks.attempted([(r.decision.action, r.response.duration_ms) for r in results])

    def send_operational(self, s: Session, events: Iterable[OperationalEvent]) -> None:
        """Send operational events as messages to the operations tenant, in ``s``."""
        ops = self.ctx.settings.operations_tenant
        if not ops:
            return
        for e in events:
            # Never report on the operations tenant's own endpoints to itself:
            # a failing operations endpoint would otherwise feed its own queue.
            if e.tenant == ops:
                continue
            send_in(self.ctx, s, SendRequest(e.type, _jsonable(e.payload()), ops))


def _exhausted(result: DeliveryResult) -> OperationalEvent:
    job = result.job
    return OperationalEvent(
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


def health_events_of(row: EndpointRow, events: Iterable[HealthEvent]) -> list[OperationalEvent]:
    """Health events of an endpoint as operational events of its tenant."""
    return [OperationalEvent(e.type, row.tenant, {"endpoint_id": row.id, **e.data}) for e in events]


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, datetime):
        return format_timestamp(value)
    return value
