"""The ``webhooks`` command line.

One module per group of commands; this one assembles them under ``main``.
"""

from __future__ import annotations

import click

from producer.cli.database import db
from producer.cli.deliveries import deliveries
from producer.cli.endpoints import endpoints
from producer.cli.jobs import jobs
from producer.cli.keys import keys
from producer.cli.messages import messages, send
from producer.cli.secrets import secrets
from producer.cli.service import listen, openapi, serve, worker

__all__ = ["main"]


@click.group()
@click.option(
    "--database-url",
    envvar="WEBHOOKS_DATABASE_URL",
    default=None,
    help="SQLAlchemy URL (default sqlite:///./webhooks.db).",
)
@click.version_option(package_name="webhook-producer", prog_name="webhooks")
@click.pass_context
def main(ctx: click.Context, database_url: str | None) -> None:
    """Send webhooks: manage endpoints, send events, run the service."""
    ctx.ensure_object(dict)
    ctx.obj["database_url"] = database_url


for command in (
    db,
    keys,
    endpoints,
    send,
    messages,
    deliveries,
    jobs,
    listen,
    secrets,
    openapi,
    worker,
    serve,
):
    main.add_command(command)
