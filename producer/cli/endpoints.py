"""``webhooks endpoints``: receiver endpoints."""

from __future__ import annotations

from typing import Any

import click

from producer.cli.common import one_line_errors, open_producer


@click.group()
def endpoints() -> None:
    """Receiver endpoints."""


@endpoints.command("add")
@click.argument("url")
@click.option("--event-type", "event_types", multiple=True, help="Pattern; repeat for several.")
@click.option("--tenant", default=None)
@click.option("--description", default="")
@click.option("--version", "version", default=None, help="Pin a payload version.")
@click.option(
    "--scheme", "signature_scheme", default="v1", type=click.Choice(["v1", "v1a", "t-v1-hex"])
)
@click.option("--secret", default=None, help="Use this secret instead of a generated one.")
@click.pass_context
@one_line_errors
def endpoints_add(ctx: click.Context, url: str, **options: Any) -> None:
    """Register URL as an endpoint; prints its id and signing secret."""
    options["event_types"] = list(options["event_types"])
    endpoint = open_producer(ctx).create_endpoint(url, **options)
    click.echo(f"id: {endpoint.id}")
    click.echo(f"secret: {endpoint.secret}")


@endpoints.command("list")
@click.option("--tenant", default=None)
@click.option("--status", default=None, type=click.Choice(["enabled", "disabled"]))
@click.pass_context
@one_line_errors
def endpoints_list(ctx: click.Context, tenant: str | None, status: str | None) -> None:
    """List endpoints, newest first."""
    producer = open_producer(ctx)
    cursor = None
    rows = []
    while True:
        page = producer.list_endpoints(tenant=tenant, status=status, limit=250, cursor=cursor)
        rows.extend(page.data)
        cursor = page.next_cursor
        if cursor is None:
            break
    if not rows:
        click.echo("no endpoints")
        return
    for e in rows:
        types = ",".join(e.event_types) or "*"
        state = e.status if e.status == "enabled" else f"disabled ({e.disabled_reason})"
        click.echo(f"{e.id}  {e.tenant}  {state}  {types}  {e.url}")
