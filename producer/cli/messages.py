"""``webhooks send`` and ``webhooks messages``: events and their fan-out."""

from __future__ import annotations

import json
from typing import Any

import click

from producer.cli.common import (
    collect,
    emit_json,
    fail,
    fields,
    json_option,
    one_line_errors,
    open_producer,
    page_options,
    print_list,
    progress,
    table,
    when,
    window_options,
)
from producer.cli.deliveries import delivery_table
from producer.cli.views import delivery_view, message_view


@click.command("send")
@click.argument("event_type")
@click.option("--data", required=True, help="The event data as JSON.")
@click.option("--tenant", default=None)
@click.option("--version", "version", default=None)
@click.option("--idempotency-key", default=None)
@click.option(
    "--channel", "channels", multiple=True, help="Send on this channel; repeat for several."
)
@click.pass_context
@one_line_errors
def send(ctx: click.Context, event_type: str, data: str, **options: Any) -> None:
    """Send an event to every matching endpoint; prints the message id."""
    try:
        parsed = json.loads(data)
    except json.JSONDecodeError as exc:
        fail(f"--data is not valid JSON: {exc}")
    options["channels"] = list(options["channels"]) or None
    message = open_producer(ctx).send(event_type, parsed, **options)
    noun = "delivery" if message.deliveries == 1 else "deliveries"
    click.echo(f"{message.id} ({message.deliveries} {noun})")


@click.group()
def messages() -> None:
    """Sent events (messages) and their deliveries."""


@messages.command("list")
@click.option("--event-type", default=None)
@click.option("--tenant", default=None)
@window_options
@page_options(default=50)
@json_option
@click.pass_context
@one_line_errors
def messages_list(
    ctx: click.Context, limit: int | None, cursor: str | None, as_json: bool, **filters: Any
) -> None:
    """List messages, newest first; filters combine (as GET /v1/messages)."""
    producer = open_producer(ctx)
    print_list(
        lambda size, after: producer.list_messages(limit=size, cursor=after, **filters),
        limit,
        cursor,
        as_json,
        view=message_view,
        show=lambda rows: table(
            ["id", "event type", "tenant", "version", "deliveries", "created"],
            (
                [m.id, m.event_type, m.tenant, m.version, m.deliveries, when(m.created_at)]
                for m in rows
            ),
            empty="no messages",
        ),
    )


@messages.command("show")
@click.argument("message_id")
@json_option
@click.pass_context
@one_line_errors
def messages_show(ctx: click.Context, message_id: str, as_json: bool) -> None:
    """Show a message, its payload (the envelope receivers get) and its deliveries."""
    producer = open_producer(ctx)
    message = producer.get_message(message_id)
    deliveries, _ = collect(
        lambda size, after: producer.list_deliveries(
            message_id=message.id, limit=size, cursor=after
        ),
        None,
        None,
    )
    if as_json:
        emit_json(
            {
                "message": message_view(message, payload=True),
                "deliveries": [delivery_view(d) for d in deliveries],
            }
        )
        return
    fields(
        [
            ("id", message.id),
            ("event type", message.event_type),
            ("tenant", message.tenant),
            ("version", message.version),
            ("created", when(message.created_at)),
            ("idempotency key", message.idempotency_key),
        ]
    )
    click.echo("payload:")
    click.echo(json.dumps(message.envelope, indent=2, ensure_ascii=False))
    click.echo("")
    delivery_table(deliveries)


@messages.command("resend")
@click.argument("message_id")
@click.argument("endpoint_ids", metavar="ENDPOINT_ID...", nargs=-1, required=True)
@json_option
@click.pass_context
@one_line_errors
def messages_resend(
    ctx: click.Context, message_id: str, endpoint_ids: tuple[str, ...], as_json: bool
) -> None:
    """Send a message again, now, to each endpoint named (trigger ``manual``),
    even one that did not get it the first time."""
    producer = open_producer(ctx)
    resent = []
    with progress("resending", total=len(endpoint_ids)) as advance:
        for endpoint_id in endpoint_ids:
            resent.append(producer.resend_message(message_id, endpoint_id))
            advance(1)
    if as_json:
        emit_json([delivery_view(d) for d in resent])
        return
    for delivery in resent:
        click.echo(f"{delivery.id} queued for {delivery.endpoint_id}")
