"""Commands that run things: ``serve``, ``worker``, ``listen``, and ``openapi``."""

from __future__ import annotations

import json
from typing import Any

import click

from producer.cli.common import F, fail, one_line_errors, open_producer


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
    run_listener(host, port, secret)


@click.command("openapi")
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


@click.command("worker")
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
    producer = open_producer(ctx, create=True)
    _warn_if_unsealed(producer)
    if metrics_port is not None:
        try:
            serve_metrics(producer, metrics_host, metrics_port)
        except OSError as exc:
            fail(f"cannot serve metrics on {metrics_host}:{metrics_port}: {exc.strerror}")
    asyncio.run(run_worker_process(producer))


@click.command("serve")
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
    producer = open_producer(ctx, create=True)
    _warn_if_unsealed(producer)
    if not producer.has_admin_key():
        _, plain = producer.create_api_key(name="created by webhooks serve")
        click.echo("Created an admin API key (shown only this once):")
        click.echo(f"  {plain}")
    asyncio.run(serve_forever(producer, host=host, port=port, worker=not no_worker))
