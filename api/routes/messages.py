"""``/v1/messages``: send events and read them back."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header

from api.dependencies import Caller, EdgeChecks, LogFiltersDep, ProducerDep
from api.errors import route_errors
from api.schemas.common import PageOut
from api.schemas.deliveries import DeliveryOut
from api.schemas.messages import MessageCreate, MessageDetailOut, MessageOut, ResendRequest
from producer.errors import ValidationError

__all__ = ["router"]

router = APIRouter(prefix="/v1/messages", tags=["messages"], dependencies=[EdgeChecks])


@router.post("", status_code=202, responses=route_errors(400, 409, 413), summary="Send an event")
async def send_message(
    body: MessageCreate,
    producer: ProducerDep,
    caller: Caller,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=256,
            description="The same key with the same body returns the first message; "
            "with another body, 409.",
        ),
    ] = None,
) -> MessageOut:
    """Store the event and one delivery per matching endpoint of the tenant
    (enabled or disabled), restricted to ``endpoint_ids`` when given."""
    if (
        idempotency_key is not None
        and body.idempotency_key is not None
        and idempotency_key != body.idempotency_key
    ):
        raise ValidationError.for_field(
            "idempotency_key", "differs from the Idempotency-Key header; send one of them"
        )
    # Group-committed with concurrent requests: on the event loop for SQLite,
    # in a thread otherwise (a sync route would take a second trip to a
    # thread to validate its answer).
    message = await producer.asend(
        body.event_type,
        body.data,
        tenant=caller.scope(body.tenant),
        version=body.version,
        idempotency_key=idempotency_key if idempotency_key is not None else body.idempotency_key,
        endpoint_ids=body.endpoint_ids,
        channels=body.channels,
    )
    return MessageOut.of(message)


@router.get("", responses=route_errors(), summary="List messages")
def list_messages(
    producer: ProducerDep, caller: Caller, filters: LogFiltersDep
) -> PageOut[MessageOut]:
    """Messages, newest first; filters combine. A tenant key lists only its own."""
    query = filters.query(caller)
    if query is None:
        return PageOut[MessageOut](data=[], next_cursor=None)
    return PageOut[MessageOut].of(producer.list_messages(**query), MessageOut.of)


@router.get("/{message_id}", responses=route_errors(404), summary="Get a message")
def get_message(message_id: str, producer: ProducerDep, caller: Caller) -> MessageDetailOut:
    """The message with ``payload``, the exact envelope receivers get (an
    endpoint pinned to another version gets it converted)."""
    return MessageDetailOut.of(producer.get_message(message_id, tenant=caller.tenant))


@router.post(
    "/{message_id}/resend",
    status_code=202,
    responses=route_errors(400, 404, 409),
    summary="Resend a message to an endpoint",
)
def resend_message(
    message_id: str, body: ResendRequest, producer: ProducerDep, caller: Caller
) -> DeliveryOut:
    """A new attempt for that endpoint now (trigger ``manual``), even if it
    did not get the message the first time."""
    delivery = producer.resend_message(message_id, body.endpoint_id, tenant=caller.tenant)
    return DeliveryOut.of(delivery)
