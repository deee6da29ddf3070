"""Operational responses: the health check and the service overview."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from api.schemas.common import LibraryView

__all__ = ["FailingEndpointOut", "HealthOut", "HourOut", "StatsOut"]

Availability = Literal["ok", "unavailable"]


class HealthOut(BaseModel):
    """Whether the service and its database answer."""

    status: Availability
    database: Availability


class FailingEndpointOut(LibraryView):
    """An endpoint and its failed attempts over the window."""

    endpoint_id: str = Field(examples=["ep_01JD5Q2S3T4V5W6X7Y8Z9A0B1C"])
    tenant: str = Field(examples=["acme"])
    url: str = Field(examples=["https://hooks.acme.example/webhooks"])
    failed: int = Field(examples=[42])
    attempts: int = Field(examples=[60])


class HourOut(LibraryView):
    """The attempts of every endpoint started in one hour."""

    hour: str = Field(examples=["2026-11-22T10:00:00.000Z"])
    succeeded: int = Field(examples=[1200])
    failed: int = Field(examples=[15], description="Attempts that did not succeed.")
    max_wait_seconds: float | None = Field(
        examples=[1.8],
        description="The longest a first attempt waited after its message was sent: "
        "the queue lag of that hour (null without a first attempt).",
    )


class StatsOut(LibraryView):
    """How delivery goes across every tenant: over the window, and right now."""

    since: str = Field(examples=["2026-11-21T10:00:00.000Z"])
    until: str = Field(examples=["2026-11-22T10:00:00.000Z"])
    attempts: int = Field(examples=[28800], description="Attempts started in the window.")
    succeeded: int = Field(examples=[28500])
    failed: int = Field(examples=[300])
    success_rate: float | None = Field(examples=[0.9896])
    attempts_per_minute: float = Field(examples=[20.0], description="Throughput.")
    deliveries_due: int = Field(examples=[3], description="Pending deliveries due now.")
    queue_lag_seconds: float = Field(
        examples=[0.4], description="Seconds since the oldest due delivery fell due (now)."
    )
    failing_endpoints: list[FailingEndpointOut] = Field(
        description="The ten endpoints with the most failed attempts in the window."
    )
    hours: list[HourOut] = Field(description="Every hour of the window, oldest first.")

    @classmethod
    def fields_of(cls, value: object) -> dict[str, object]:
        """The overview's fields, its lists as their responses."""
        fields = super().fields_of(value)
        fields["failing_endpoints"] = [
            FailingEndpointOut.of(e)
            for e in value.failing_endpoints  # type: ignore[attr-defined]
        ]
        fields["hours"] = [HourOut.of(h) for h in value.hours]  # type: ignore[attr-defined]
        return fields
