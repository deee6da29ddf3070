"""``webhooks keys``: management API keys."""

from __future__ import annotations

import click

from producer.cli.common import one_line_errors, open_producer


@click.group()
def keys() -> None:
    """Management API keys."""


@keys.command("create")
@click.option("--tenant", default=None, help="Scope the key to one tenant (default: admin key).")
@click.option("--name", default="", help="A label to recognise the key by.")
@click.pass_context
@one_line_errors
def keys_create(ctx: click.Context, tenant: str | None, name: str) -> None:
    """Create an API key and print it alone on stdout (it is shown only once)."""
    _, plain = open_producer(ctx).create_api_key(tenant=tenant, name=name)
    click.echo(plain)
