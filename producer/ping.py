"""The test send: one event to one endpoint now, answered while the caller
waits (the backend of a "send test event" button).

It is an ordinary message and delivery, leased to a pseudo-worker so no
worker picks it up, sent by the same :func:`~producer.delivery.deliver` as
every other attempt and recorded by the same :class:`~producer.outcomes.Outcomes`,
with trigger ``test``: never retried, never counted in endpoint health.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from functools import partial
from typing import Any

from producer.context import Context
from producer.delivery import deliver, failed_attempt
from producer.endpoints import live_secrets
from producer.ids import new_id
from producer.models import DeliveryRow, MessageRow
from producer.outcomes import Outcomes
from producer.queue import Job
from producer.routing import validate_event_type_name
from producer.sending import Draft, render, schemas_of
from producer.types import TestResult

__all__ = ["DEFAULT_TEST_DATA", "TEST_OWNER", "send_test"]

TEST_OWNER = "test-send"
"""The lease owner of test deliveries."""
DEFAULT_TEST_DATA = {"test": True, "message": "This is a test event."}
DEFAULT_VERSION = "1"

log = logging.getLogger("producer.ping")


async def send_test(
    ctx: Context,
    outcomes: Outcomes,
    endpoint_id: str,
    *,
    event_type: str,
    data: Any,
    tenant: str | None,
) -> TestResult:
    """Send a test event to one endpoint and wait for its answer."""
    job = await asyncio.to_thread(_create_job, ctx, endpoint_id, event_type, data, tenant)
    transport = ctx.new_transport()
    try:
        result = await deliver(ctx, transport, job, pool_key=job.endpoint_id)
    except Exception as exc:
        # The person pressing the button gets the failure, not a 500, and the
        # delivery is recorded rather than left leased to the pseudo-worker.
        log.exception("test send to %s failed outside its attempt", job.endpoint_id)
        result = failed_attempt(ctx, job, exc)
    finally:
        await transport.aclose()
    await asyncio.to_thread(outcomes.record, [result], TEST_OWNER)
    return TestResult(
        delivery_id=job.delivery_id,
        message_id=job.message_id,
        succeeded=result.decision.action == "succeeded",
        status_code=result.response.status_code,
        duration_ms=result.response.duration_ms,
        response_body=result.response.body if result.response.status_code else None,
        error=result.response.error,
    )


def _create_job(
    ctx: Context, endpoint_id: str, event_type: str, data: Any, tenant: str | None
) -> Job:
    """Store the test message and its delivery, leased to :data:`TEST_OWNER`."""
    validate_event_type_name(event_type)
    now = ctx.clock()
    with ctx.store.transaction() as s:
        endpoint = ctx.store.get_endpoint(s, endpoint_id, tenant=tenant)
        version = endpoint.version or DEFAULT_VERSION
        draft = Draft(
            id=new_id("msg"),
            event_type=event_type,
            version=version,
            created_at=now,
            data=DEFAULT_TEST_DATA if data is None else data,
            schemas=schemas_of(ctx, s, event_type),
        )
        s.add(
            MessageRow(
                id=draft.id,
                tenant=endpoint.tenant,
                event_type=event_type,
                version=version,
                payload=render(ctx, draft, version),
                created_at=now,
            )
        )
        s.flush()
        timeout = endpoint.timeout_seconds or ctx.settings.request_timeout
        delivery_id = new_id("dlv")
        s.add(
            DeliveryRow(
                id=delivery_id,
                message_id=draft.id,
                endpoint_id=endpoint.id,
                tenant=endpoint.tenant,
                event_type=event_type,
                status="sending",
                attempt_count=0,
                next_trigger="test",
                lease_owner=TEST_OWNER,
                lease_expires_at=now + timedelta(seconds=timeout * 1.5 + 1),
                created_at=now,
                updated_at=now,
            )
        )
        s.flush()
        [job] = ctx.queue.jobs(
            s, [delivery_id], partial(live_secrets, ctx, now), ctx.secret_box.open
        )
        return job
