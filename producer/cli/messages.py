"""``webhooks send`` and ``webhooks messages``: events and their fan-out."""

from __future__ import annotations

import json
from typing import Any

import click

from producer.cli.common import fail, one_line_errors, open_producer


@click.command("send")
@click.argument("event_type")
@click.option("--data", required=True, help="The event data as JSON.")
@click.option("--tenant", default=None)
@click.option("--version", "version", default=None)
@click.option("--idempotency-key", default=None)
@click.pass_context
@one_line_errors
def send(ctx: click.Context, event_type: str, data: str, **options: Any) -> None:
    """Send an event to every matching endpoint; prints the message id."""
    try:
        parsed = json.loads(data)
    except json.JSONDecodeError as exc:
        fail(f"--data is not valid JSON: {exc}")
    message = open_producer(ctx).send(event_type, parsed, **options)
    noun = "delivery" if message.deliveries == 1 else "deliveries"
    click.echo(f"{message.id} ({message.deliveries} {noun})")
