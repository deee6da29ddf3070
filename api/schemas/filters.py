"""Payload filters: trying one against a sample payload."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from api.schemas.common import RequestBody, example

__all__ = ["FilterTest", "FilterTestOut"]


class FilterTest(RequestBody):
    """A filter, as an endpoint's ``filter``, and a message's ``data`` to try it on."""

    model_config = example(
        {
            "filter": {"amount": {"$gte": 100}, "customer.country": {"$in": ["FR", "DE"]}},
            "payload": {"amount": 120, "customer": {"country": "FR"}},
        }
    )

    filter: dict[str, Any]
    payload: Any = None


class FilterTestOut(BaseModel):
    """Whether the payload passes the filter."""

    matches: bool = Field(examples=[True])
