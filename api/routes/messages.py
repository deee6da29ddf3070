"""``/v1/messages``: send events and read them back."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query

from api.dependencies import Caller, Cursor, Limit, ProducerDep, Since, Until
from api.errors import error_responses
from api.schemas import (
    DeliveryOut,
    MessageCreate,
    MessageDetailOut,
    MessageOut,
    PageOut,
    ResendRequest,
)
from producer.errors import ValidationError

__all__ = ["router"]

router = APIRouter(prefix="/v1/messages", tags=["messages"])


@router.post(
    "",
    status_code=202,
    response_model=MessageOut,
    responses=error_responses(400, 401, 409, 413, 422),
    summary="Send an event",
)
def send_message(
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
    message = producer.send(
        body.event_type,
        body.data,
        tenant=caller.scope(body.tenant),
        version=body.version,
        idempotency_key=idempotency_key if idempotency_key is not None else body.idempotency_key,
        endpoint_ids=body.endpoint_ids,
    )
    return MessageOut.of(message)


@router.get(
    "",
    response_model=PageOut[MessageOut],
    responses=error_responses(401, 422),
    summary="List messages",
)
def list_messages(
    producer: ProducerDep,
    caller: Caller,
    event_type: Annotated[str | None, Query(max_length=128)] = None,
    tenant: Annotated[str | None, Query(max_length=128)] = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> PageOut[MessageOut]:
    """Messages, newest first; filters combine. A tenant key lists only its own."""
    if not caller.sees_tenant(tenant):
        return PageOut[MessageOut](data=[], next_cursor=None)
    page = producer.list_messages(
        tenant=caller.scope(tenant),
        event_type=event_type,
        since=since,
        until=until,
        limit=limit,
        cursor=cursor,
    )
    return PageOut[MessageOut](
        data=[MessageOut.of(m) for m in page.data], next_cursor=page.next_cursor
    )


@router.get(
    "/{message_id}",
    response_model=MessageDetailOut,
    responses=error_responses(401, 404, 422),
    summary="Get a message",
)
def get_message(message_id: str, producer: ProducerDep, caller: Caller) -> MessageDetailOut:
    """The message with ``payload``, the exact envelope receivers get (an
    endpoint pinned to another version gets it converted)."""
    return MessageDetailOut.of(producer.get_message(message_id, tenant=caller.tenant))


@router.post(
    "/{message_id}/resend",
    status_code=202,
    response_model=DeliveryOut,
    responses=error_responses(400, 401, 404, 409, 422),
    summary="Resend a message to an endpoint",
)
def resend_message(
    message_id: str, body: ResendRequest, producer: ProducerDep, caller: Caller
) -> DeliveryOut:
    """A new attempt for that endpoint now (trigger ``manual``), even if it
    did not get the message the first time."""
    delivery = producer.resend_message(message_id, body.endpoint_id, tenant=caller.tenant)
    return DeliveryOut.of(delivery)
