"""``webhooks keys``: management API keys."""

from __future__ import annotations

import click

from producer.cli.common import emit_page, json_option, one_line_errors, open_producer, table, when


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


@keys.command("list")
@json_option
@click.pass_context
@one_line_errors
def keys_list(ctx: click.Context, as_json: bool) -> None:
    """List the API keys not revoked, newest first: id, prefix, tenant, name.

    The keys themselves cannot be shown: only a hash of each is stored.
    """
    rows = open_producer(ctx).list_api_keys()
    if as_json:
        emit_page(rows, None)
        return
    table(
        ["id", "prefix", "tenant", "name", "created"],
        ([k.id, k.prefix, k.tenant or "(admin)", k.name, when(k.created_at)] for k in rows),
        empty="no API keys",
    )


@keys.command("revoke")
@click.argument("key_id")
@click.pass_context
@one_line_errors
def keys_revoke(ctx: click.Context, key_id: str) -> None:
    """Revoke an API key (by the id `keys list` shows): it authenticates no more."""
    key = open_producer(ctx).revoke_api_key(key_id)
    click.echo(f"revoked {key.id} ({key.prefix}…)")
