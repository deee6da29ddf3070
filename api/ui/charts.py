"""Per-hour delivery counts of an endpoint and the geometry of their bar chart."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from producer.types import HourlyCount

__all__ = [
    "Bar",
    "Chart",
    "bar_chart",
    "hour_window",
    "hourly_counts",
]

_HOUR = timedelta(hours=1)


def _hour_of(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def hour_window(now: datetime, hours: int = 24) -> tuple[datetime, datetime]:
    """``[since, until)`` of the last ``hours`` whole hours, the current one included."""
    current = _hour_of(now)
    return current - (hours - 1) * _HOUR, current + _HOUR


def hourly_counts(
    producer: Any,
    endpoint_id: str,
    *,
    since: datetime,
    until: datetime,
    tenant: str | None = None,
) -> list[HourlyCount]:
    """Succeeded, failed and retrying deliveries of an endpoint per hour of
    ``[since, until)``, oldest first, every hour present (the library leaves
    out empty ones; here they count zero).

    ``producer`` is a :class:`~producer.producer.Producer`, or anything with its
    ``endpoint_hourly_counts``. Raises NotFoundError for an endpoint ``tenant``
    does not see."""
    found = {
        _hour_of(count.hour): count
        for count in producer.endpoint_hourly_counts(
            endpoint_id, since=since, until=until, tenant=tenant
        )
    }
    hours = []
    hour = _hour_of(since)
    while hour < until:
        hours.append(found.get(hour) or HourlyCount(hour, succeeded=0, failed=0, retrying=0))
        hour += _HOUR
    return hours


@dataclass(frozen=True)
class Bar:
    """One hour's stacked bar in SVG coordinates: succeeded at the bottom,
    then failed, then retrying (failed so far) on top."""

    x: float
    width: float
    succeeded_y: float
    succeeded_height: float
    failed_y: float
    failed_height: float
    retrying_y: float
    retrying_height: float
    label: str
    """The hour, ``HH:00`` UTC, shown under every few bars."""
    title: str
    """Tooltip text."""
    show_label: bool


@dataclass(frozen=True)
class Chart:
    """What the template draws: the bars and the scale."""

    width: int
    height: int
    plot_height: float
    bars: list[Bar]
    maximum: int
    total_succeeded: int
    total_failed: int
    total_retrying: int


def bar_chart(hours: list[HourlyCount], *, width: int = 720, height: int = 170) -> Chart:
    """Lay out one stacked bar per hour; the tallest bar fills the plot."""
    plot_height = height - 20.0  # room for the hour labels below the bars
    maximum = max((h.succeeded + h.failed + h.retrying for h in hours), default=0)
    scale = plot_height / maximum if maximum else 0.0
    slot = width / max(len(hours), 1)
    bars = []
    for index, h in enumerate(hours):
        ok_height = h.succeeded * scale
        failed_height = h.failed * scale
        retrying_height = h.retrying * scale
        failed_y = plot_height - ok_height - failed_height
        label = h.hour.strftime("%H:00")
        title = f"{label} UTC: {h.succeeded} succeeded, {h.failed} failed"
        if h.retrying:
            title += f", {h.retrying} retrying"
        bars.append(
            Bar(
                x=round(index * slot + slot * 0.1, 2),
                width=round(slot * 0.8, 2),
                succeeded_y=round(plot_height - ok_height, 2),
                succeeded_height=round(ok_height, 2),
                failed_y=round(failed_y, 2),
                failed_height=round(failed_height, 2),
                retrying_y=round(failed_y - retrying_height, 2),
                retrying_height=round(retrying_height, 2),
                label=label,
                title=title,
                show_label=index % 3 == 0,
            )
        )
    return Chart(
        width=width,
        height=height,
        plot_height=plot_height,
        bars=bars,
        maximum=maximum,
        total_succeeded=sum(h.succeeded for h in hours),
        total_failed=sum(h.failed for h in hours),
        total_retrying=sum(h.retrying for h in hours),
    )
