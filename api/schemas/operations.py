"""Operational responses: the health check."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

__all__ = ["HealthOut"]

Availability = Literal["ok", "unavailable"]


class HealthOut(BaseModel):
    """Whether the service and its database answer."""

    status: Availability
    database: Availability
