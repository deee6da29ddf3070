"""The dashboard page: the whole service over the last 24 hours, for admins.

Attempts per hour, the longest wait of a first attempt per hour (the queue
lag of that hour), the lag now, and the endpoints failing most; all from one
library call, :meth:`~producer.producer.Producer.overview`.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Response

from api.ui.charts import bar_chart, hour_window
from api.ui.rendering import PageRoute, UiError
from api.ui.sessions import VisitDep
from producer.types import HourlyActivity, HourlyCount

__all__ = ["WaitBar", "WaitChart", "router", "wait_chart"]

router = APIRouter(route_class=PageRoute)


@dataclass(frozen=True)
class WaitBar:
    """One hour's longest first-attempt wait, in SVG coordinates."""

    x: float
    width: float
    y: float
    height: float
    label: str
    title: str
    show_label: bool


@dataclass(frozen=True)
class WaitChart:
    """The bars of the waits and their scale (the longest fills the plot)."""

    width: int
    height: int
    plot_height: float
    bars: list[WaitBar]
    maximum: float


def wait_chart(hours: list[HourlyActivity], *, width: int = 720, height: int = 170) -> WaitChart:
    """Lay out one bar per hour of its longest first-attempt wait."""
    plot_height = height - 20.0  # room for the hour labels below the bars
    maximum = max((h.max_wait_seconds or 0.0 for h in hours), default=0.0)
    scale = plot_height / maximum if maximum else 0.0
    slot = width / max(len(hours), 1)
    bars = []
    for index, h in enumerate(hours):
        label = h.hour.strftime("%H:00")
        wait = h.max_wait_seconds
        bar_height = (wait or 0.0) * scale
        bars.append(
            WaitBar(
                x=round(index * slot + slot * 0.1, 2),
                width=round(slot * 0.8, 2),
                y=round(plot_height - bar_height, 2),
                height=round(bar_height, 2),
                label=label,
                title=f"{label} UTC: "
                + (f"longest wait {wait:.1f} s" if wait is not None else "no first attempt"),
                show_label=index % 3 == 0,
            )
        )
    return WaitChart(width, height, plot_height, bars, maximum)


@router.get("/dashboard", name="ui_dashboard")
def dashboard(visit: VisitDep) -> Response:
    """The last 24 hours of every tenant: throughput, lag, failing endpoints."""
    if visit.tenant is not None:
        raise UiError(
            403, "Admins only", "The dashboard shows every tenant: sign in with an admin key."
        )
    since, until = hour_window(visit.producer.clock())
    overview = visit.producer.overview(since=since, until=until)
    attempts = [HourlyCount(h.hour, succeeded=h.succeeded, failed=h.failed) for h in overview.hours]
    return visit.render(
        "dashboard.html",
        {
            "overview": overview,
            "attempts": bar_chart(attempts),
            "waits": wait_chart(overview.hours),
        },
    )
