"""Commands that run things: ``serve``, ``worker``, ``listen``, and ``openapi``."""

from __future__ import annotations

import errno
import json
import logging
import os
import socket
import sys
from typing import Any

import click
from click.core import ParameterSource

from producer.cli.common import F, fail, one_line_errors, open_producer

log = logging.getLogger("producer.service")


def _listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` and listening, so that a port in use is
    one error line before anything is created or printed (and no other
    process can take the port between the check and the start)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    if sys.platform != "win32":
        # A restart must not wait for the previous run's closed connections.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Answers go out at once: with Nagle's algorithm on, a response written
    # in two parts waits for the client's delayed ACK (40 ms) between them.
    # Accepted connections take the option from the listening socket.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            fail(f"port {port} on {host} is in use (choose another with --port)")
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    return sock


@click.command("listen")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=9000, show_default=True, type=int)
@click.option("--secret", default=None, help="whsec_/whpk_ key to verify signatures with.")
@one_line_errors
def listen(host: str, port: int, secret: str | None) -> None:
    """Run a local receiver that prints each webhook and whether its signature verifies."""
    from producer.listen import run_listener

    if secret is not None and not secret.startswith(("whsec_", "whpk_", "whsk_")):
        fail("--secret must start with whsec_, whpk_ or whsk_")
    run_listener(_listening_socket(host, port), secret)


@click.command("openapi")
@one_line_errors
def openapi() -> None:
    """Print the REST API's OpenAPI document (JSON), e.g. to generate a client."""
    from api import openapi_document

    click.echo(json.dumps(openapi_document(), indent=2, ensure_ascii=False))


def _warn_if_unsealed(producer: Any) -> None:
    if not producer.secret_box.enabled:
        logging.getLogger("producer").warning(
            "endpoint secrets are stored unencrypted: set WEBHOOKS_ENCRYPTION_KEYS "
            "(make a key with `webhooks secrets generate-key`)"
        )


def _configure_otel(producer: Any) -> None:
    """With ``WEBHOOKS_OTEL`` on, export spans and metrics as the ``OTEL_*``
    variables say."""
    if producer.settings.otel:
        from producer.otel_metrics import OtelMetrics, configure_meter_provider
        from producer.tracing import configure_tracer_provider

        try:
            configure_tracer_provider()
            configure_meter_provider()
        except RuntimeError as exc:
            fail(str(exc))
        OtelMetrics(producer).start()


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


def app_option(func: F) -> F:
    """``--app module:attribute``: the host application's producer."""
    return click.option(
        "--app",
        "app_path",
        metavar="MODULE:ATTRIBUTE",
        default=None,
        help="Run the host application's configured producer.Producer (or a function "
        "returning one), with its converters, callbacks and settings, e.g. "
        "myapp.hooks:producer. Not with --database-url: the app's producer has its own.",
    )(func)


def _service_producer(ctx: click.Context, app_path: str | None) -> Any:
    """The producer to run: the app's, or one of the configured database
    (created and migrated when it is an SQLite file that does not exist yet)."""
    if app_path is None:
        return open_producer(ctx, create=True)
    from producer.service import load_producer

    producer = load_producer(app_path)
    producer.check_schema_version()
    return producer


def _refuse_database_url_with_app(ctx: click.Context, app_path: str | None) -> None:
    # The app's producer was configured by the app; a URL given here would be
    # silently ignored. (WEBHOOKS_DATABASE_URL is the app's to read.)
    main = ctx.parent
    given = main is not None and main.get_parameter_source("database_url") == (
        ParameterSource.COMMANDLINE
    )
    if app_path is not None and given:
        fail("--database-url does not apply with --app: the app's producer has its own database")


@click.command("worker")
@click.option(
    "--metrics-port",
    type=int,
    default=None,
    help="Serve this worker's Prometheus metrics at /metrics on this port.",
)
@click.option("--metrics-host", default="127.0.0.1", show_default=True)
@app_option
@logging_options
@click.pass_context
@one_line_errors
def worker(
    ctx: click.Context,
    metrics_port: int | None,
    metrics_host: str,
    app_path: str | None,
    log_level: str,
    log_format: str,
) -> None:
    """Run the delivery worker only (stop with SIGTERM or Ctrl-C)."""
    import asyncio

    from producer.logs import configure_logging
    from producer.service import run_worker_process, serve_metrics

    configure_logging(log_level.upper(), log_format)
    _refuse_database_url_with_app(ctx, app_path)
    producer = _service_producer(ctx, app_path)
    _configure_otel(producer)
    if metrics_port is not None:
        try:
            serve_metrics(producer, metrics_host, metrics_port)
        except OSError as exc:
            fail(f"cannot serve metrics on {metrics_host}:{metrics_port}: {exc.strerror}")
    _warn_if_unsealed(producer)
    asyncio.run(run_worker_process(producer))


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _refuse_dev_database(url: str) -> None:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        fail(
            f"--dev is for trying things on an SQLite file, not on "
            f"{parsed.render_as_string(hide_password=True)}: open the ranges you need "
            "with WEBHOOKS_ALLOWED_CIDRS instead"
        )


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--no-worker", is_flag=True, help="Serve the API only.")
@click.option(
    "--dev",
    is_flag=True,
    help="Development: let webhooks reach this machine (127.0.0.0/8, ::1), e.g. "
    "`webhooks listen`. Refused with a --host other than loopback and with a "
    "database other than SQLite.",
)
@app_option
@logging_options
@click.pass_context
@one_line_errors
def serve(
    ctx: click.Context,
    host: str,
    port: int,
    no_worker: bool,
    dev: bool,
    app_path: str | None,
    log_level: str,
    log_format: str,
) -> None:
    """Run the management API and a delivery worker in one process.

    Once it answers, it prints where (API, docs, UI), on which database, which
    destinations are open, and the admin API key when it has just made one.
    """
    import asyncio

    from producer.logs import configure_logging
    from producer.service import LOOPBACK_CIDRS, open_loopback, serve_forever
    from producer.settings import Settings

    configure_logging(log_level.upper(), log_format)
    _refuse_database_url_with_app(ctx, app_path)
    if dev and not _is_loopback(host):
        fail(
            f"--dev with --host {host}: callers from the network could reach this "
            "machine's own services through webhooks; serve on 127.0.0.1 or drop --dev"
        )
    if dev and app_path is None:
        url = ctx.obj.get("database_url")
        _refuse_dev_database((Settings(database_url=url) if url else Settings()).database_url)
    sock = _listening_socket(host, port)
    producer = _service_producer(ctx, app_path)
    _configure_otel(producer)
    if dev:
        _refuse_dev_database(str(producer.engine.url))
        open_loopback(producer)
        log.warning(
            "--dev: deliveries to this machine (%s) are allowed; never use it in production",
            ", ".join(LOOPBACK_CIDRS),
        )
    _warn_if_unsealed(producer)

    def started() -> None:
        key = None
        if not producer.has_admin_key():
            _, key = producer.create_api_key(name="created by webhooks serve")
        base = f"http://{f'[{host}]' if ':' in host else host}:{sock.getsockname()[1]}"
        click.echo(_banner(producer, base, worker=not no_worker, dev=dev, app=app_path, key=key))

    asyncio.run(serve_forever(producer, sock, worker=not no_worker, on_started=started))


def _banner(
    producer: Any, base: str, *, worker: bool, dev: bool, app: str | None, key: str | None
) -> str:
    """What ``serve`` prints once it answers: where, on what, and how to get in."""
    ready = "API and worker" if worker else "API only, no worker"
    rows = [
        ("API", f"{base}/v1"),
        ("Docs", f"{base}/docs"),
        ("UI", f"{base}/ui"),
        ("Database", _database(producer)),
        ("Destinations", _destinations(producer, dev)),
    ]
    if app is not None:
        rows.append(("App", app))
    if key is not None:
        rows.append(("Admin key", f"{key}  (shown only this once: keep it)"))
    else:
        rows.append(("API keys", "an admin key exists; make another with `webhooks keys create`"))
    heading = f"webhooks serve: ready ({ready})"
    if dev:
        heading += " -- DEVELOPMENT MODE (--dev), not for production"
    return "\n".join([heading, *(f"  {label:<14}{value}" for label, value in rows)])


def _database(producer: Any) -> str:
    url = producer.engine.url
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return f"{os.path.abspath(url.database)} (SQLite)"
    shown: str = url.render_as_string(hide_password=True)
    return shown


def _destinations(producer: Any, dev: bool) -> str:
    from producer.service import LOOPBACK_CIDRS

    allowed = [str(network) for network in producer.destinations.allowed]
    if dev:
        others = [cidr for cidr in allowed if cidr not in LOOPBACK_CIDRS]
        also = f"; also {', '.join(others)}" if others else ""
        return f"THIS MACHINE IS OPEN (--dev: {', '.join(LOOPBACK_CIDRS)}){also}"
    if not allowed:
        return (
            "public addresses only (open ranges with WEBHOOKS_ALLOWED_CIDRS; loopback with --dev)"
        )
    loopback = "open" if producer.destinations.reason("127.0.0.1") is None else "refused"
    return f"public addresses and {', '.join(allowed)} (loopback {loopback})"
