"""One attempt of one delivery: build the signed request, send it, decide what next.

Shared by the worker (scheduled and manual attempts) and the synchronous
test send, so every attempt is made and judged the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from producer import signing
from producer.context import Context
from producer.endpoints import live_secrets
from producer.ids import new_id
from producer.queue import JobRow
from producer.retry import AttemptOutcome, Decision, RetryPolicy
from producer.transport import Request, Response, Transport
from producer.validation import redact_headers

__all__ = ["DeliveryResult", "Job", "build_jobs", "deliver"]


@dataclass(frozen=True)
class Job:
    """A leased delivery with everything needed to make its next attempt."""

    delivery_id: str
    message_id: str
    endpoint_id: str
    tenant: str
    event_type: str
    attempt_number: int
    trigger: str
    body: bytes
    version: str
    url: str
    headers: dict[str, str]
    scheme: str
    secrets: list[str]
    timeout_seconds: float | None
    retry_schedule: list[float] | None
    rate_limit_per_second: float | None


@dataclass(frozen=True)
class DeliveryResult:
    """An attempt made, and the decision taken on it."""

    job: Job
    attempt_id: str
    started_at: datetime
    request_headers: dict[str, str]
    response: Response
    decision: Decision
    next_attempt_at: datetime | None


def build_jobs(ctx: Context, rows: Sequence[JobRow], now: datetime) -> list[Job]:
    """Jobs from leased rows of :meth:`Queue.jobs`, their secrets opened: the
    current one and every previous one still in its grace period at ``now``."""
    return [_job(row, live_secrets(ctx, row.secret, row.previous_secrets, now)) for row in rows]


def _job(row: JobRow, secrets: list[str]) -> Job:
    # A delivery without a body of its own sends the message's envelope.
    own_body = row.payload is not None
    return Job(
        delivery_id=row.id,
        message_id=row.message_id,
        endpoint_id=row.endpoint_id,
        tenant=row.tenant,
        event_type=row.event_type,
        attempt_number=row.attempt_count + 1,
        trigger=row.next_trigger,
        body=row.payload if own_body else row.message_payload,  # type: ignore[arg-type]
        version=row.endpoint_version if own_body else row.message_version,  # type: ignore[arg-type]
        url=row.url,
        headers=dict(row.headers or {}),
        scheme=row.signature_scheme,
        secrets=secrets,
        timeout_seconds=row.timeout_seconds,
        retry_schedule=list(row.retry_schedule) if row.retry_schedule is not None else None,
        rate_limit_per_second=row.rate_limit_per_second,
    )


async def deliver(ctx: Context, transport: Transport, job: Job, *, pool_key: str) -> DeliveryResult:
    """Make one attempt and decide: succeeded, retry (when), or failed."""
    started = ctx.clock()
    headers = {
        "content-type": "application/json",
        "user-agent": transport.config.user_agent,
        **signing.build_headers(
            job.secrets, job.message_id, int(started.timestamp()), job.body, scheme=job.scheme
        ),
        "webhook-version": job.version,
        **job.headers,
    }
    response = await transport.send(
        Request(
            url=job.url,
            headers=headers,
            body=job.body,
            timeout=job.timeout_seconds,
            pool_key=pool_key,
        )
    )
    outcome = AttemptOutcome(
        status_code=response.status_code, error=response.error, retry_after=response.retry_after
    )
    now = ctx.clock()
    if job.trigger == "test":
        # A test send answers the person pressing the button; it is never retried.
        decision = Decision(
            action="succeeded" if outcome.succeeded else "failed",
            delay=None,
            reason=None if outcome.succeeded else "test",
            disable_endpoint=False,
        )
    else:
        policy = RetryPolicy.from_schedule(job.retry_schedule)
        decision = policy.decide(outcome, job.attempt_number, now=now)
    next_at = now + timedelta(seconds=decision.delay) if decision.action == "retry" else None
    return DeliveryResult(
        job=job,
        attempt_id=new_id("att"),
        started_at=started,
        request_headers=redact_headers(headers),
        response=response,
        decision=decision,
        next_attempt_at=next_at,
    )
