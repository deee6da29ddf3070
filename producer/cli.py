"""The ``webhooks`` command line."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
from sqlalchemy.exc import SQLAlchemyError

from producer.errors import WebhooksError

F = TypeVar("F", bound=Callable[..., Any])


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def one_line_errors(func: F) -> F:
    """Turn expected failures into one ``error: ...`` line and exit status 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from pydantic import ValidationError as SettingsError

        try:
            return func(*args, **kwargs)
        except WebhooksError as exc:
            _fail(exc.message)
        except SettingsError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "settings"
            _fail(f"invalid setting WEBHOOKS_{field.upper()}: {first['msg']}")
        except SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            _fail(f"database error: {reason}")

    return wrapper  # type: ignore[return-value]


def _database_url(ctx: click.Context) -> str:
    from producer.settings import Settings

    url: str = ctx.obj.get("database_url") or Settings().database_url
    return url


def _sqlite_file(url: str) -> str | None:
    """The file of an SQLite URL (None for other databases and in-memory ones)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return parsed.database


def _producer(ctx: click.Context, *, create: bool = False, migrate_sqlite: bool = True) -> Any:
    """The producer of the configured database.

    Only the commands that set a database up (``db upgrade``, ``serve``,
    ``worker``) pass ``create``; every other one refuses a missing SQLite
    file rather than make an empty database (and its directory) at a
    mistyped path.
    """
    import os

    from producer.producer import Producer
    from producer.settings import Settings

    # Settings first: a malformed WEBHOOKS_* variable is the error to report.
    url = ctx.obj.get("database_url")
    settings = Settings(database_url=url) if url else Settings()
    path = _sqlite_file(settings.database_url)
    if not create and path is not None and not os.path.isfile(path):
        _fail(
            f"no database at {path}: create it with `webhooks db upgrade` "
            "(or start the service with `webhooks serve`)"
        )
    producer = Producer(settings=settings)
    if not migrate_sqlite:
        return producer
    producer.check_schema_version()
    return producer


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


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.pass_context
@one_line_errors
def db_upgrade(ctx: click.Context) -> None:
    """Apply the shipped migrations."""
    from producer.db import current_revision

    producer = _producer(ctx, create=True, migrate_sqlite=False)
    producer.migrate()
    click.echo(f"database at revision {current_revision(producer.engine)}")


@db.command("backup")
@click.argument("target", type=click.Path(dir_okay=False, writable=True))
@click.pass_context
@one_line_errors
def db_backup(ctx: click.Context, target: str) -> None:
    """Copy an SQLite database to TARGET, safely while the service runs."""
    import os
    import sqlite3
    from contextlib import closing

    # No Producer here: the file is copied as it is.
    path = _sqlite_file(_database_url(ctx))
    if path is None:
        _fail("db backup copies SQLite files; back up PostgreSQL with pg_dump or base backups")
        return
    if not os.path.isfile(path):
        _fail(f"no SQLite database at {path}")
    if os.path.exists(target):
        _fail(f"{target} exists; name a new file")
    # SQLite's online backup API copies a consistent snapshot page by page
    # while other connections keep reading and writing (WAL included).
    with closing(sqlite3.connect(path)) as source, closing(sqlite3.connect(target)) as copy:
        source.backup(copy)
    click.echo(f"backed up {path} to {target}")


@main.group()
def keys() -> None:
    """Management API keys."""


@keys.command("create")
@click.option("--tenant", default=None, help="Scope the key to one tenant (default: admin key).")
@click.option("--name", default="", help="A label to recognise the key by.")
@click.pass_context
@one_line_errors
def keys_create(ctx: click.Context, tenant: str | None, name: str) -> None:
    """Create an API key and print it alone on stdout (it is shown only once)."""
    _, plain = _producer(ctx).create_api_key(tenant=tenant, name=name)
    click.echo(plain)


@main.group()
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
    endpoint = _producer(ctx).create_endpoint(url, **options)
    click.echo(f"id: {endpoint.id}")
    click.echo(f"secret: {endpoint.secret}")


@endpoints.command("list")
@click.option("--tenant", default=None)
@click.option("--status", default=None, type=click.Choice(["enabled", "disabled"]))
@click.pass_context
@one_line_errors
def endpoints_list(ctx: click.Context, tenant: str | None, status: str | None) -> None:
    """List endpoints, newest first."""
    producer = _producer(ctx)
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


@main.command("send")
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
        _fail(f"--data is not valid JSON: {exc}")
    message = _producer(ctx).send(event_type, parsed, **options)
    noun = "delivery" if message.deliveries == 1 else "deliveries"
    click.echo(f"{message.id} ({message.deliveries} {noun})")


@main.command("listen")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=9000, show_default=True, type=int)
@click.option("--secret", default=None, help="whsec_/whpk_ key to verify signatures with.")
@one_line_errors
def listen(host: str, port: int, secret: str | None) -> None:
    """Run a local receiver that prints each webhook and whether its signature verifies."""
    from producer.listen import run_listener

    if secret is not None and not secret.startswith(("whsec_", "whpk_", "whsk_")):
        _fail("--secret must start with whsec_, whpk_ or whsk_")
    run_listener(host, port, secret)


@main.group()
def secrets() -> None:
    """Signing secrets, and their encryption at rest."""


@secrets.command("generate")
@click.option(
    "--scheme", default="v1", show_default=True, type=click.Choice(["v1", "v1a", "t-v1-hex"])
)
def secrets_generate(scheme: str) -> None:
    """Print a new endpoint signing secret (``whsec_``; ``whsk_`` for v1a), e.g.
    for ``endpoints add --secret`` and ``listen --secret``."""
    from producer.signing import generate_secret

    click.echo(generate_secret(scheme))


@secrets.command("generate-key")
def secrets_generate_key() -> None:
    """Print a new key for WEBHOOKS_ENCRYPTION_KEYS."""
    from producer.sealing import generate_key

    click.echo(generate_key())


@secrets.command("reencrypt")
@click.pass_context
@one_line_errors
def secrets_reencrypt(ctx: click.Context) -> None:
    """Re-seal every endpoint secret with the first key of WEBHOOKS_ENCRYPTION_KEYS."""
    producer = _producer(ctx)
    if not producer.secret_box.enabled:
        _fail("WEBHOOKS_ENCRYPTION_KEYS is not set: nothing to encrypt with")
    click.echo(f"re-encrypted the secrets of {producer.reencrypt_secrets()} endpoints")


@main.command("openapi")
@one_line_errors
def openapi() -> None:
    """Print the REST API's OpenAPI document (JSON), e.g. to generate a client."""
    from api import openapi_document

    click.echo(json.dumps(openapi_document(), indent=2, ensure_ascii=False))


def _warn_if_unsealed(producer: Any) -> None:
    if not producer.secret_box.enabled:
        import logging

        logging.getLogger("producer").warning(
            "endpoint secrets are stored unencrypted: set WEBHOOKS_ENCRYPTION_KEYS "
            "(make a key with `webhooks secrets generate-key`)"
        )


def logging_options(func: F) -> F:
    """``--log-level`` and ``--log-format`` of the commands that run the service."""
    from producer.logs import LEVELS

    func = click.option(
        "--log-format",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        help="json: one JSON object per line (time, level, logger, message, exception).",
    )(func)
    return click.option(
        "--log-level",
        type=click.Choice(LEVELS, case_sensitive=False),
        default="INFO",
        show_default=True,
        help="DEBUG also shows every request and scheduled job.",
    )(func)


@main.command("worker")
@click.option(
    "--metrics-port",
    type=int,
    default=None,
    help="Serve this worker's Prometheus metrics at /metrics on this port.",
)
@click.option("--metrics-host", default="127.0.0.1", show_default=True)
@logging_options
@click.pass_context
@one_line_errors
def worker(
    ctx: click.Context, metrics_port: int | None, metrics_host: str, log_level: str, log_format: str
) -> None:
    """Run the delivery worker only (stop with SIGTERM or Ctrl-C)."""
    import asyncio

    from producer.logs import configure_logging
    from producer.service import run_worker_process, serve_metrics

    configure_logging(log_level.upper(), log_format)
    producer = _producer(ctx, create=True)
    _warn_if_unsealed(producer)
    if metrics_port is not None:
        try:
            serve_metrics(producer, metrics_host, metrics_port)
        except OSError as exc:
            _fail(f"cannot serve metrics on {metrics_host}:{metrics_port}: {exc.strerror}")
    asyncio.run(run_worker_process(producer))


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--no-worker", is_flag=True, help="Serve the API only.")
@logging_options
@click.pass_context
@one_line_errors
def serve(
    ctx: click.Context, host: str, port: int, no_worker: bool, log_level: str, log_format: str
) -> None:
    """Run the management API and a delivery worker in one process."""
    import asyncio

    from producer.logs import configure_logging
    from producer.service import serve_forever

    configure_logging(log_level.upper(), log_format)
    producer = _producer(ctx, create=True)
    _warn_if_unsealed(producer)
    if not producer.has_admin_key():
        _, plain = producer.create_api_key(name="created by webhooks serve")
        click.echo("Created an admin API key (shown only this once):")
        click.echo(f"  {plain}")
    asyncio.run(serve_forever(producer, host=host, port=port, worker=not no_worker))


if __name__ == "__main__":
    main()
