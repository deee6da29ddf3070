"""Figures: an endpoint's delivery counts, success rate, latency and hourly
outcomes, and the queue figures that monitoring reads."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from producer.context import Context
from producer.errors import ValidationError
from producer.types import EndpointStats, FailingEndpoint, HourlyActivity, HourlyCount, Overview
from producer.validation import validate_aware

__all__ = [
    "endpoint_hourly_counts",
    "endpoint_stats",
    "endpoint_success_rates",
    "metrics_snapshot",
    "overview",
    "queue_depth",
]

DEFAULT_WINDOW = timedelta(days=1)
MAX_OVERVIEW_WINDOW = timedelta(days=31)
"""The longest window of :func:`overview`: it lists every hour."""
FAILING_ENDPOINTS = 10


def endpoint_stats(
    ctx: Context,
    endpoint_id: str,
    *,
    since: datetime | None,
    until: datetime | None,
    tenant: str | None,
) -> EndpointStats:
    """Counts, success rate and attempt latency over a window (default: a day)."""
    since, until = _window(ctx, since, until)
    with ctx.store.reading() as s:
        ctx.store.get_endpoint(s, endpoint_id, tenant=tenant)
        counts = ctx.store.delivery_status_counts(s, [endpoint_id], since, until)
        latencies = ctx.store.attempt_latencies(s, endpoint_id, since, until)
    return _stats(counts[endpoint_id], latencies)


def endpoint_success_rates(
    ctx: Context,
    endpoint_ids: Sequence[str],
    *,
    since: datetime | None,
    until: datetime | None,
) -> dict[str, EndpointStats]:
    """Counts and success rate of several endpoints in one query (no latencies)."""
    since, until = _window(ctx, since, until)
    with ctx.store.reading() as s:
        counts = ctx.store.delivery_status_counts(s, endpoint_ids, since, until)
    return {endpoint_id: _stats(c, []) for endpoint_id, c in counts.items()}


def endpoint_hourly_counts(
    ctx: Context, endpoint_id: str, *, since: datetime, until: datetime, tenant: str | None
) -> list[HourlyCount]:
    """Succeeded, failed and retrying deliveries per creation hour, oldest first."""
    since = validate_aware(since, "since")  # type: ignore[assignment]
    until = validate_aware(until, "until")  # type: ignore[assignment]
    with ctx.store.reading() as s:
        ctx.store.get_endpoint(s, endpoint_id, tenant=tenant)
        rows = ctx.store.hourly_outcomes(s, endpoint_id, since, until)
    series = {"succeeded": 0, "failed": 1}  # else pending or sending, after an attempt
    counts: dict[str, list[int]] = {}
    for hour, status, n in rows:
        counts.setdefault(hour, [0, 0, 0])[series.get(status, 2)] += n
    return [
        HourlyCount(
            hour=datetime.strptime(hour, "%Y-%m-%d %H").replace(tzinfo=UTC),
            succeeded=ok,
            failed=failed,
            retrying=retrying,
        )
        for hour, (ok, failed, retrying) in sorted(counts.items())
    ]


def metrics_snapshot(ctx: Context) -> dict[str, Any]:
    """Deliveries by status, the due queue (how many, and the lag: seconds
    since the oldest of them fell due) and disabled endpoints."""
    now = ctx.clock()
    with ctx.store.reading() as s:
        due, oldest = ctx.queue.due_summary(s, now)
        return {
            "deliveries": ctx.store.delivery_counts(s),
            "queue_depth": due,
            "queue_lag_seconds": _lag(now, oldest),
            "endpoints_disabled": ctx.store.disabled_endpoint_count(s),
        }


def _lag(now: datetime, oldest_due: datetime | None) -> float:
    return max(0.0, (now - oldest_due).total_seconds()) if oldest_due is not None else 0.0


def overview(ctx: Context, *, since: datetime | None, until: datetime | None) -> Overview:
    """Throughput, success rate, the lag now, the endpoints failing most and
    the activity per hour, over a window of at most 31 days (default: a day)."""
    since, until = _window(ctx, since, until)
    if until <= since:
        raise ValidationError.for_field("until", "must be later than since")
    if until - since > MAX_OVERVIEW_WINDOW:
        raise ValidationError.for_field("since", "the window may span 31 days at most")
    now = ctx.clock()
    with ctx.store.reading() as s:
        attempts, succeeded = ctx.store.attempt_totals(s, since, until)
        failing = ctx.store.most_failing_endpoints(s, since, until, FAILING_ENDPOINTS)
        hourly = {
            h: (ok, bad, wait) for h, ok, bad, wait in ctx.store.hourly_attempts(s, since, until)
        }
        due, oldest = ctx.queue.due_summary(s, now)
    hours = []
    hour = since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    while hour < until:
        ok, bad, wait = hourly.get(hour.strftime("%Y-%m-%d %H"), (0, 0, None))
        hours.append(HourlyActivity(hour=hour, succeeded=ok, failed=bad, max_wait_seconds=wait))
        hour += timedelta(hours=1)
    return Overview(
        since=since,
        until=until,
        attempts=attempts,
        succeeded=succeeded,
        failed=attempts - succeeded,
        success_rate=succeeded / attempts if attempts else None,
        attempts_per_minute=attempts / ((until - since).total_seconds() / 60),
        deliveries_due=due,
        queue_lag_seconds=_lag(now, oldest),
        failing_endpoints=[FailingEndpoint(*row) for row in failing],
        hours=hours,
    )


def database_answers(ctx: Context) -> None:
    """Run the lightest query there is; raises whatever the database does."""
    with ctx.store.reading() as s:
        ctx.store.ping(s)


def queue_depth(ctx: Context) -> int:
    """Pending deliveries due now on enabled endpoints."""
    with ctx.store.reading() as s:
        return ctx.queue.due_count(s, ctx.clock())


def _window(
    ctx: Context, since: datetime | None, until: datetime | None
) -> tuple[datetime, datetime]:
    now = ctx.clock()
    return (
        validate_aware(since, "since") or now - DEFAULT_WINDOW,
        validate_aware(until, "until") or now,
    )


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
