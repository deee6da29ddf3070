"""Messages: sending an event, reading it back, resending it."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from api.schemas.common import TS_EXAMPLE, LibraryView, RequestBody, example, readable_json
from producer.types import Message

__all__ = ["MessageCreate", "MessageDetailOut", "MessageOut", "ResendRequest"]

_MESSAGE_ID_EXAMPLE = "msg_01JD0000000000000000000000"


class MessageCreate(RequestBody):
    """An event to send to every matching endpoint of the tenant."""

    model_config = example(
        {
            "event_type": "invoice.paid",
            "data": {"invoice": "in_1", "amount": 4200},
            "tenant": "acme",
            "version": "2",
            "endpoint_ids": None,
            "idempotency_key": None,
            "channels": ["store-7", "eu"],
        }
    )

    event_type: str
    data: Any
    tenant: str | None = Field(
        default=None, description="Ignored for tenant keys: forced to the key's tenant."
    )
    version: str | None = None
    endpoint_ids: list[str] | None = None
    idempotency_key: str | None = Field(
        default=None, description="Same as the `Idempotency-Key` header, which wins."
    )
    channels: list[str] | None = Field(
        default=None,
        description="At most 10 names (1-64 letters, digits, `_ . : -`): endpoints "
        "subscribed to channels get the message only when they share one.",
    )


class MessageOut(LibraryView):
    """A sent event and how many deliveries it fanned out to."""

    model_config = example(
        {
            "id": _MESSAGE_ID_EXAMPLE,
            "event_type": "invoice.paid",
            "tenant": "acme",
            "version": "2",
            "created_at": TS_EXAMPLE,
            "deliveries": 2,
            "idempotency_key": None,
            "channels": ["store-7", "eu"],
            "skipped": {"filter": 1},
        }
    )

    id: str
    event_type: str
    tenant: str
    version: str
    created_at: str
    deliveries: int
    idempotency_key: str | None
    channels: list[str]
    skipped: dict[str, int] = Field(
        description="Endpoints the message matched that got no delivery, by reason "
        "(`filter`: their payload filter refused its data); empty when none."
    )


class MessageDetailOut(MessageOut):
    """A message with ``payload``: the exact envelope receivers get."""

    payload: dict[str, Any] = Field(
        examples=[
            {
                "id": _MESSAGE_ID_EXAMPLE,
                "type": "invoice.paid",
                "version": "2",
                "timestamp": TS_EXAMPLE,
                "data": {"invoice": "in_1"},
            }
        ]
    )

    @classmethod
    def fields_of(cls, value: Message) -> dict[str, Any]:
        """The response fields of a library message, its envelope decoded."""
        return {**super().fields_of(value), "payload": readable_json(value.envelope)}


class ResendRequest(RequestBody):
    """The endpoint to send the message to again."""

    model_config = example({"endpoint_id": "ep_01JD0000000000000000000000"})

    endpoint_id: str
