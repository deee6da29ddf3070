"""One attempt of one delivery: build the signed request, send it, decide what next.

Shared by the worker (scheduled and manual attempts) and the synchronous
test send, so every attempt is made and judged the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from producer import signing
from producer.context import Context
from producer.ids import new_id
from producer.queue import Job
from producer.retry import AttemptOutcome, Decision, RetryPolicy
from producer.transport import Request, Response, Transport
from producer.validation import redact_headers

__all__ = ["DeliveryResult", "deliver"]


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
