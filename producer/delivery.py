"""One attempt of one delivery: build the signed request, send it, decide what next.

Shared by the worker (scheduled and manual attempts) and the synchronous
test send, so every attempt is made and judged the same way.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from producer import signing
from producer.context import Context
from producer.credentials import ClientTLS
from producer.errors import ValidationError, internal_error
from producer.hooks import AttemptObservation
from producer.ids import new_id
from producer.oauth2 import TokenCache, TokenError, tokens_for
from producer.queue import Job
from producer.retry import AttemptOutcome, Decision, RetryPolicy, validate_schedule
from producer.tracing import FORWARDED_HEADERS
from producer.transport import Request, Response, Transport, failure
from producer.validation import redact_headers

__all__ = [
    "DeliveryResult",
    "deliver",
    "failed_attempt",
    "judge",
    "request_headers",
    "static_authorization",
]

log = logging.getLogger("producer.delivery")


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

    def observation(self) -> AttemptObservation:
        """What metrics learn of this attempt."""
        return AttemptObservation(
            outcome=self.decision.action,
            duration_ms=self.response.duration_ms,
            status_code=self.response.status_code,
            endpoint_id=self.job.endpoint_id,
            tenant=self.job.tenant,
        )


async def deliver(ctx: Context, transport: Transport, job: Job, *, pool_key: str) -> DeliveryResult:
    """Make one attempt and decide: succeeded, retry (when), or failed.

    Never raises for what goes wrong with this one delivery: an exception
    while building, signing or sending the request is the attempt's outcome
    (``internal_error: ...``), judged by the retry policy like any failure.
    Traced, the attempt is a ``webhooks.attempt`` span in its message's trace.
    """
    tracing = ctx.tracing
    if tracing is None:
        return await _attempt(ctx, transport, job, pool_key, job.trace_context)
    attributes = {
        "webhooks.endpoint_id": job.endpoint_id,
        "webhooks.delivery_id": job.delivery_id,
        "webhooks.message_id": job.message_id,
        "webhooks.attempt": job.attempt_number,
        "webhooks.trigger": job.trigger,
    }
    if not job.forward_traceparent:
        # Nothing needs the span before the answer: it is made afterwards.
        started = time.time_ns()
        result = await _attempt(ctx, transport, job, pool_key, None)
        tracing.record_attempt(
            parent=job.trace_context,
            url=job.url,
            attributes=attributes,
            start_time=started,
            outcome=result.decision.action,
            status_code=result.response.status_code,
            error=result.response.error,
        )
        return result
    span = tracing.start_attempt(parent=job.trace_context, url=job.url, attributes=attributes)
    try:
        # The attempt's own context, for the receiver that asked for it.
        result = await _attempt(ctx, transport, job, pool_key, tracing.carrier(span))
    except BaseException:
        span.end()  # cancelled: no outcome to record
        raise
    tracing.end_attempt(
        span,
        outcome=result.decision.action,
        status_code=result.response.status_code,
        error=result.response.error,
    )
    return result


async def _attempt(
    ctx: Context,
    transport: Transport,
    job: Job,
    pool_key: str,
    trace_context: Mapping[str, str] | None,
) -> DeliveryResult:
    started = ctx.clock()
    clock = time.perf_counter()
    headers: dict[str, str] = {}
    if job.unusable is not None:
        return judge(ctx, job, started, headers, failure(job.unusable, clock))
    try:
        headers = request_headers(job, started, transport.config.user_agent)
        if job.forward_traceparent and trace_context:
            headers.update({k: v for k, v in trace_context.items() if k in FORWARDED_HEADERS})
        request = Request(
            url=job.url,
            headers=headers,
            body=job.body,
            timeout=job.timeout_seconds,
            pool_key=pool_key,
        )
        if job.proxy_url or job.auth or job.tls or ctx.settings.egress_proxy:
            response = await _send_with_credentials(ctx, transport, job, request)
        else:
            response = await transport.send(request)
    except Exception as exc:
        log.exception("attempt of delivery %s failed before an answer", job.delivery_id)
        response = failure(internal_error(exc), clock)
    return judge(ctx, job, started, headers, response)


async def _send_with_credentials(
    ctx: Context, transport: Transport, job: Job, request: Request
) -> Response:
    """Send through the egress proxy, with the client certificate and the
    ``Authorization`` the endpoint asks for. An OAuth2 receiver answering
    401 gets one retry with a fresh token; a second 401 is the outcome.
    The header is set on ``request.headers`` (recorded redacted)."""
    request = replace(
        request,
        proxy=job.proxy_url or ctx.settings.egress_proxy,
        guard_proxy=job.proxy_url is not None,
        tls=ClientTLS.of(job.tls),
    )
    auth = job.auth
    if auth is None:
        return await transport.send(request)
    if auth["type"] != "oauth2_client_credentials":
        _authorize(request.headers, static_authorization(auth))
        return await transport.send(request)
    tokens = tokens_for(transport)
    response, token = await _send_with_token(tokens, transport, job, auth, request)
    if response.status_code == 401 and token is not None:
        tokens.invalidate(job.endpoint_id, auth, token)
        response, _ = await _send_with_token(tokens, transport, job, auth, request)
    return response


async def _send_with_token(
    tokens: TokenCache, transport: Transport, job: Job, auth: Mapping[str, str], request: Request
) -> tuple[Response, str | None]:
    """Send with the current token; a token that cannot be had is the
    attempt's outcome (``auth_error: ...``), with no request to the receiver."""
    clock = time.perf_counter()
    try:
        token = await tokens.token(job.endpoint_id, auth, request)
    except TokenError as exc:
        return failure(str(exc), clock), None
    _authorize(request.headers, f"Bearer {token}")
    return await transport.send(request), token


def static_authorization(auth: Mapping[str, str]) -> str:
    """The ``Authorization`` value of ``basic`` or ``bearer`` auth."""
    if auth["type"] == "bearer":
        return f"Bearer {auth['token']}"
    pair = f"{auth['username']}:{auth['password']}".encode()
    return "Basic " + base64.b64encode(pair).decode()


def _authorize(headers: dict[str, str], value: str) -> None:
    """Set ``Authorization``, replacing a custom header of the same name
    whatever its case (the endpoint's ``auth`` wins)."""
    for name in [name for name in headers if name.lower() == "authorization"]:
        del headers[name]
    headers["authorization"] = value


def request_headers(job: Job, started: datetime, user_agent: str) -> dict[str, str]:
    """The headers of one attempt: content type, signature, the endpoint's own."""
    return {
        "content-type": "application/json",
        "user-agent": user_agent,
        **signing.build_headers(
            job.secrets, job.message_id, int(started.timestamp()), job.body, scheme=job.scheme
        ),
        "webhook-version": job.version,
        **job.headers,
    }


def failed_attempt(ctx: Context, job: Job, exc: BaseException) -> DeliveryResult:
    """The result of an attempt that raised ``exc`` before it could be judged
    (for callers of :func:`deliver`, should it ever raise)."""
    return judge(ctx, job, ctx.clock(), {}, failure(internal_error(exc), time.perf_counter()))


def judge(
    ctx: Context, job: Job, started: datetime, headers: dict[str, str], response: Response
) -> DeliveryResult:
    """Decide what follows an attempt that got ``response``."""
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
        decision = _policy(job).decide(outcome, job.attempt_number, now=now)
    next_at = None
    if decision.action == "retry":
        assert decision.delay is not None, "a retry decision carries its delay"
        next_at = now + timedelta(seconds=decision.delay)
    return DeliveryResult(
        job=job,
        attempt_id=new_id("att"),
        started_at=started,
        request_headers=redact_headers(headers),
        response=response,
        decision=decision,
        next_attempt_at=next_at,
    )


def _policy(job: Job) -> RetryPolicy:
    if job.retry_schedule is None:
        return RetryPolicy()
    try:
        return RetryPolicy.from_schedule(validate_schedule(job.retry_schedule))
    except ValidationError:
        # A stored schedule that was written around the API (not a list of
        # sane delays) must not stop the delivery from being judged at all.
        log.warning("endpoint %s has an unusable retry schedule", job.endpoint_id)
        return RetryPolicy()
