"""Outcomes: what the worker's attempts change, recorded in one transaction.

For a batch of results: the attempt log, each delivery's next state,
endpoint health (failure streaks, probing, auto-disable) and the
operational events those changes raise, which go to the host's callbacks
and, when ``operations_tenant`` is set, out as messages to that tenant.
Each problem among them (a failed attempt, a refused destination, an
endpoint disabled) is also one log line, as :mod:`producer.problem_log`
allows.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from producer.context import Context
from producer.delivery import DeliveryResult
from producer.health import HealthEvent, Outcome, apply_outcomes
from producer.hooks import OperationalEvent
from producer.models import EndpointRow
from producer.payloads import format_timestamp
from producer.problem_log import Problem, ProblemLimiter
from producer.queue import DeliveryUpdate
from producer.sending import SendRequest, send_in
from producer.store import health_of, set_health
from producer.types import Attempt, DeliveryStatus

__all__ = [
    "Outcomes",
    "attempt_record",
    "delivery_update",
    "disabled_problems",
    "health_events_of",
    "host_of",
    "problems_of",
]

log = logging.getLogger("producer.outcomes")

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
    """Records the results of attempts; shared by the worker and the test send.

    ``limiter`` decides which problem lines are written (by default at most
    one per endpoint and kind a minute, within an overall budget).
    """

    def __init__(self, ctx: Context, limiter: ProblemLimiter | None = None) -> None:
        self.ctx = ctx
        self.limiter = limiter or ProblemLimiter()

    def record(self, results: Sequence[DeliveryResult], owner: str) -> None:
        """Store attempts and each delivery's next state, update endpoint
        health, and raise operational events — in one transaction."""
        ctx = self.ctx
        now = ctx.clock()
        by_endpoint: defaultdict[str, list[Outcome]] = defaultdict(list)
        events: list[OperationalEvent] = []
        hosts: dict[str, str | None] = {}
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
                hosts[row.id] = host_of(row.url)
            self.send_operational(s, events)
        ctx.hooks.emit(events)
        self.log_problems([*problems_of(results), *disabled_problems(events, hosts)])
        ctx.hooks.attempted([r.observation() for r in results])

    def log_problems(self, problems: Iterable[Problem]) -> None:
        """Write one line per problem, as far as the limiter allows: an
        endpoint disabled at ERROR, the others at WARNING, each with the
        problem's fields as the record's extra attributes."""
        now = self.ctx.clock()
        for problem in problems:
            admitted = self.limiter.admit(problem.key, now)
            if admitted is None:
                continue
            level = logging.ERROR if problem.kind == "endpoint_disabled" else logging.WARNING
            # The text goes in as an argument: an error may hold a "%".
            log.log(level, "%s", problem.message(admitted), extra=problem.fields(admitted))

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


def problems_of(results: Iterable[DeliveryResult]) -> list[Problem]:
    """The problems among attempt results: each failed attempt, or a refused
    destination. A test send's failure is its caller's to read, not a line."""
    problems = []
    for r in results:
        if r.job.trigger == "test" or r.decision.action == "succeeded":
            continue
        job, blocked = r.job, r.decision.reason == "blocked_destination"
        problems.append(
            Problem(
                "destination_blocked" if blocked else "attempt_failed",
                job.endpoint_id,
                job.tenant,
                host=host_of(job.url),
                delivery_id=job.delivery_id,
                attempt=job.attempt_number,
                status_code=r.response.status_code or None,
                error=r.response.error,
                next_attempt_at=r.next_attempt_at,
                reason=r.decision.reason,
            )
        )
    return problems


def disabled_problems(
    events: Iterable[OperationalEvent], hosts: Mapping[str, str | None] | None = None
) -> list[Problem]:
    """The ``endpoint.disabled`` events as problems; ``hosts`` maps endpoint
    ids to their URL's host where the caller knows it."""
    hosts = hosts or {}
    return [
        Problem(
            "endpoint_disabled",
            e.data["endpoint_id"],
            e.tenant,
            host=hosts.get(e.data["endpoint_id"]),
            reason=e.data.get("reason"),
        )
        for e in events
        if e.type == "endpoint.disabled"
    ]


def host_of(url: str) -> str | None:
    """The host (and port, when the URL names one) of ``url``, never its
    credentials: what a log line may say of a destination."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not host:
        return None
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{port}" if port else host


def health_events_of(row: EndpointRow, events: Iterable[HealthEvent]) -> list[OperationalEvent]:
    """Health events of an endpoint as operational events of its tenant."""
    return [OperationalEvent(e.type, row.tenant, {"endpoint_id": row.id, **e.data}) for e in events]


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, datetime):
        return format_timestamp(value)
    return value
