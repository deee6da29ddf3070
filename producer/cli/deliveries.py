"""``webhooks deliveries``: the delivery log, its attempts, and retries."""

from __future__ import annotations

from typing import Any

import click

from producer.cli.common import (
    emit_json,
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
from producer.cli.views import attempt_view, delivery_view, result
from producer.types import DELIVERY_STATUSES, Delivery


@click.group()
def deliveries() -> None:
    """The delivery log: one message to one endpoint, and its attempts."""


def delivery_table(rows: list[Delivery]) -> None:
    """Deliveries as a table for people."""
    table(
        ["id", "status", "event type", "tenant", "endpoint", "attempts", "last result", "created"],
        (
            [
                d.id,
                d.status,
                d.event_type,
                d.tenant,
                d.endpoint_id,
                d.attempt_count,
                result(d.last_status_code, d.last_error),
                when(d.created_at),
            ]
            for d in rows
        ),
        empty="no deliveries",
    )


@deliveries.command("list")
@click.option("--status", type=click.Choice(DELIVERY_STATUSES), default=None)
@click.option("--endpoint-id", default=None, help="Deliveries to this endpoint.")
@click.option("--message-id", default=None, help="Deliveries of this message.")
@click.option("--event-type", default=None)
@click.option("--tenant", default=None)
@window_options
@page_options(default=50)
@json_option
@click.pass_context
@one_line_errors
def deliveries_list(
    ctx: click.Context,
    limit: int | None,
    cursor: str | None,
    as_json: bool,
    **filters: object,
) -> None:
    """List deliveries, newest first; filters combine (as GET /v1/deliveries)."""
    producer = open_producer(ctx)
    print_list(
        lambda size, after: producer.list_deliveries(limit=size, cursor=after, **filters),
        limit,
        cursor,
        as_json,
        view=delivery_view,
        show=delivery_table,
    )


@deliveries.command("show")
@click.argument("delivery_id")
@json_option
@click.pass_context
@one_line_errors
def deliveries_show(ctx: click.Context, delivery_id: str, as_json: bool) -> None:
    """Show a delivery and every attempt it made, oldest first."""
    producer = open_producer(ctx)
    delivery = producer.get_delivery(delivery_id)
    attempts = producer.list_attempts(delivery_id)
    if as_json:
        emit_json(
            {"delivery": delivery_view(delivery), "attempts": [attempt_view(a) for a in attempts]}
        )
        return
    fields(
        [
            ("id", delivery.id),
            ("status", delivery.status),
            ("message", delivery.message_id),
            ("endpoint", delivery.endpoint_id),
            ("event type", delivery.event_type),
            ("tenant", delivery.tenant),
            ("created", when(delivery.created_at)),
            ("attempts", delivery.attempt_count),
            ("next attempt", when(delivery.next_attempt_at)),
        ]
    )
    click.echo("")
    table(
        ["#", "started", "trigger", "result", "duration"],
        (
            [
                a.number,
                when(a.started_at),
                a.trigger,
                result(a.response_status, a.error),
                f"{a.duration_ms:.0f} ms",
            ]
            for a in attempts
        ),
        empty="no attempts yet",
    )


@deliveries.command("retry-all")
@click.option(
    "--status",
    default="failed",
    show_default=True,
    type=click.Choice(["failed", "succeeded"]),
    help="Which deliveries; succeeded ones need --force.",
)
@click.option("--endpoint-id", default=None)
@click.option("--event-type", default=None)
@click.option("--tenant", default=None)
@window_options
@click.option("--force", is_flag=True, help="Send deliveries that already succeeded again.")
@json_option
@click.pass_context
@one_line_errors
def deliveries_retry_all(ctx: click.Context, as_json: bool, **filters: Any) -> None:
    """Put every delivery the filters select back in the queue, due now."""
    producer = open_producer(ctx)
    with progress("requeued") as advance:
        count = producer.retry_deliveries(progress=advance, **filters)
    if as_json:
        emit_json({"requeued": count})
        return
    noun = "delivery" if count == 1 else "deliveries"
    click.echo(f"requeued {count} {noun}")


@deliveries.command("retry")
@click.argument("delivery_id")
@click.option("--force", is_flag=True, help="Send a delivery that already succeeded again.")
@json_option
@click.pass_context
@one_line_errors
def deliveries_retry(ctx: click.Context, delivery_id: str, force: bool, as_json: bool) -> None:
    """Put a delivery back in the queue, due now (trigger ``manual``)."""
    delivery = open_producer(ctx).retry_delivery(delivery_id, force=force)
    if as_json:
        emit_json(delivery_view(delivery))
        return
    click.echo(f"{delivery.id} queued: {delivery.status}, due now")
