"""``webhooks endpoints``: register, list, inspect and operate receiver endpoints."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from producer.cli.common import (
    ISO_TIME,
    collect,
    emit_json,
    emit_page,
    fail,
    fields,
    json_option,
    more_hint,
    one_line_errors,
    open_producer,
    page_options,
    progress,
    table,
    when,
)
from producer.cli.jobs import emit_queued
from producer.cli.views import endpoint_view
from producer.types import ENDPOINT_STATUSES, Endpoint

F = TypeVar("F", bound=Callable[..., Any])

SCHEMES = click.Choice(["v1", "v1a", "t-v1-hex"])


@click.group()
def endpoints() -> None:
    """Receiver endpoints."""


# -- the settings ``add`` and ``update`` share ----------------------------------------


def _headers(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> Any:
    if not values:
        return None
    headers = {}
    for value in values:
        name, colon, content = value.partition(":")
        if not colon or not name.strip():
            raise click.BadParameter(f"{value!r} is not 'Name: value'")
        headers[name.strip()] = content.strip()
    return headers


def _schedule(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    if value is None:
        return None
    try:
        return [float(part) for part in value.split(",")]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not seconds separated by commas") from None


def _json_object(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}") from None


def _json_or_file(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    """JSON given inline or, as ``@path``, read from a file (so that secrets
    need not appear on the command line)."""
    if value is not None and value.startswith("@"):
        value = _read_text(value[1:])
    return _json_object(ctx, param, value)


def _pem_file(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    return None if value is None else _read_text(value)


def _read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as file:
            return file.read()
    except OSError as exc:
        raise click.BadParameter(f"cannot read {path}: {exc.strerror}") from None


def take_tls(options: dict[str, Any]) -> None:
    """Fold ``--tls-cert``, ``--tls-key`` and ``--tls-ca`` into one ``tls``
    object (it replaces the endpoint's whole TLS setting)."""
    parts = {
        "client_cert_pem": options.pop("tls_cert"),
        "client_key_pem": options.pop("tls_key"),
        "ca_pem": options.pop("tls_ca"),
    }
    given_parts = {name: pem for name, pem in parts.items() if pem is not None}
    options["tls"] = given_parts or None


def setting_options(func: F) -> F:
    """The delivery settings of an endpoint, as options (unset: left alone)."""
    options = [
        click.option(
            "--header",
            "headers",
            multiple=True,
            callback=_headers,
            help="A custom header, 'Name: value'; repeat for several (replaces them all).",
        ),
        click.option("--rate-limit", "rate_limit_per_second", type=float, help="Requests/second."),
        click.option("--ordering", type=click.Choice(["unordered", "fifo"])),
        click.option(
            "--retry-schedule",
            callback=_schedule,
            help="Delays between attempts, in seconds: '5,30,300'.",
        ),
        click.option("--timeout", "timeout_seconds", type=float, help="Seconds per attempt."),
        click.option("--max-in-flight", type=int, help="Attempts in flight at once."),
        click.option("--metadata", callback=_json_object, help="A JSON object kept with it."),
        click.option(
            "--channel",
            "channels",
            multiple=True,
            help="Get only messages sent on this channel; repeat for several (replaces them all).",
        ),
        click.option(
            "--filter",
            "filter",
            callback=_json_object,
            help='A payload filter as JSON: \'{"amount": {"$gte": 100}}\'.',
        ),
        click.option("--proxy-url", help="An egress proxy for it (http:// or https://)."),
        click.option(
            "--auth",
            callback=_json_or_file,
            help='Receiver authentication as JSON or @file: \'{"type": "bearer", "token": "…"}\'.',
        ),
        click.option("--tls-cert", callback=_pem_file, help="Client certificate PEM file (mTLS)."),
        click.option("--tls-key", callback=_pem_file, help="Its private key PEM file."),
        click.option("--tls-ca", callback=_pem_file, help="CA PEM file trusted for the receiver."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def given(options: dict[str, Any]) -> dict[str, Any]:
    """The options that were given (click passes None for the others)."""
    return {name: value for name, value in options.items() if value is not None}


# -- commands -----------------------------------------------------------------------


@endpoints.command("add")
@click.argument("url")
@click.option("--event-type", "event_types", multiple=True, help="Pattern; repeat for several.")
@click.option("--tenant", default=None)
@click.option("--description", default="")
@click.option("--version", "version", default=None, help="Pin a payload version.")
@click.option("--scheme", "signature_scheme", default="v1", type=SCHEMES)
@click.option("--secret", default=None, help="Use this secret instead of a generated one.")
@setting_options
@json_option
@click.pass_context
@one_line_errors
def endpoints_add(ctx: click.Context, url: str, as_json: bool, **options: Any) -> None:
    """Register URL as an endpoint; prints its id and signing secret."""
    options["event_types"] = list(options["event_types"])
    options["channels"] = list(options["channels"])
    take_tls(options)
    endpoint = open_producer(ctx).create_endpoint(url, **given(options))
    if as_json:
        emit_json({**endpoint_view(endpoint), "secret": endpoint.secret})
        return
    click.echo(f"id: {endpoint.id}")
    click.echo(f"secret: {endpoint.secret}")


@endpoints.command("list")
@click.option("--tenant", default=None)
@click.option("--status", default=None, type=click.Choice(ENDPOINT_STATUSES))
@page_options(default=None)
@json_option
@click.pass_context
@one_line_errors
def endpoints_list(
    ctx: click.Context,
    tenant: str | None,
    status: str | None,
    limit: int | None,
    cursor: str | None,
    as_json: bool,
) -> None:
    """List endpoints, newest first."""
    producer = open_producer(ctx)
    rows, next_cursor = collect(
        lambda size, after: producer.list_endpoints(
            tenant=tenant, status=status, limit=size, cursor=after
        ),
        limit,
        cursor,
    )
    if as_json:
        emit_page([endpoint_view(e) for e in rows], next_cursor)
        return
    table(
        ["id", "tenant", "status", "event types", "url"],
        ([e.id, e.tenant, _state(e), ",".join(e.event_types) or "*", e.url] for e in rows),
        empty="no endpoints",
    )
    more_hint(next_cursor)


@endpoints.command("show")
@click.argument("endpoint_id")
@json_option
@click.pass_context
@one_line_errors
def endpoints_show(ctx: click.Context, endpoint_id: str, as_json: bool) -> None:
    """Show an endpoint: its settings and health (sensitive header values redacted)."""
    _print(open_producer(ctx).get_endpoint(endpoint_id), as_json)


RESETTABLE = {
    "event-types": "event_types",
    "version": "version",
    "headers": "headers",
    "rate-limit": "rate_limit_per_second",
    "retry-schedule": "retry_schedule",
    "timeout": "timeout_seconds",
    "max-in-flight": "max_in_flight",
    "metadata": "metadata",
    "channels": "channels",
    "filter": "filter",
    "proxy-url": "proxy_url",
    "auth": "auth",
    "tls": "tls",
}
"""``--reset`` names and the fields they set back to their default (null)."""


@endpoints.command("update")
@click.argument("endpoint_id")
@click.option("--url", default=None)
@click.option("--description", default=None)
@click.option(
    "--event-type",
    "event_types",
    multiple=True,
    help="Pattern; repeat for several (replaces them all).",
)
@click.option("--version", "version", default=None, help="Pin a payload version.")
@click.option("--scheme", "signature_scheme", default=None, type=SCHEMES)
@setting_options
@click.option(
    "--reset",
    "resets",
    multiple=True,
    type=click.Choice(sorted(RESETTABLE)),
    help="Set a setting back to its default (every event type, no pinned version, ...).",
)
@json_option
@click.pass_context
@one_line_errors
def endpoints_update(
    ctx: click.Context,
    endpoint_id: str,
    resets: tuple[str, ...],
    as_json: bool,
    **options: Any,
) -> None:
    """Change the settings given (as PATCH /v1/endpoints/{id}); the others
    keep their value. Switching to or from v1a makes a new secret."""
    options["event_types"] = list(options["event_types"]) or None
    options["channels"] = list(options["channels"]) or None
    take_tls(options)
    changes = given(options)
    for name in resets:
        field = RESETTABLE[name]
        if field in changes:
            fail(f"--reset {name} and a new value for it: give one of them")
        changes[field] = None
    if not changes:
        fail("nothing to change: give at least one setting (see --help)")
    _print(open_producer(ctx).update_endpoint(endpoint_id, **changes), as_json)


@endpoints.command("disable")
@click.argument("endpoint_id")
@json_option
@click.pass_context
@one_line_errors
def endpoints_disable(ctx: click.Context, endpoint_id: str, as_json: bool) -> None:
    """Stop delivering to an endpoint; its deliveries wait as pending."""
    endpoint = open_producer(ctx).disable_endpoint(endpoint_id)
    _print_state(endpoint, as_json)


@endpoints.command("enable")
@click.argument("endpoint_id")
@json_option
@click.pass_context
@one_line_errors
def endpoints_enable(ctx: click.Context, endpoint_id: str, as_json: bool) -> None:
    """Resume an endpoint: clears its failure state; held deliveries go out."""
    endpoint = open_producer(ctx).enable_endpoint(endpoint_id)
    _print_state(endpoint, as_json)


@endpoints.command("delete")
@click.argument("endpoint_id")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
@one_line_errors
def endpoints_delete(ctx: click.Context, endpoint_id: str, yes: bool) -> None:
    """Delete an endpoint; its pending deliveries are cancelled (its log stays)."""
    producer = open_producer(ctx)
    endpoint = producer.get_endpoint(endpoint_id)
    if not yes:
        if not sys.stdin.isatty():
            fail("deleting an endpoint needs --yes when not asked on a terminal")
        click.confirm(f"Delete {endpoint.id} ({endpoint.url})?", abort=True, err=True)
    producer.delete_endpoint(endpoint.id)
    click.echo(f"deleted {endpoint.id}")


@endpoints.command("test")
@click.argument("endpoint_id")
@click.option("--event-type", default="webhook.test", show_default=True)
@click.option("--data", callback=_json_object, help="The event data as JSON.")
@json_option
@click.pass_context
@one_line_errors
def endpoints_test(
    ctx: click.Context, endpoint_id: str, event_type: str, data: Any, as_json: bool
) -> None:
    """Send a test event now and print the receiver's answer (as POST
    /v1/endpoints/{id}/test). Works on disabled endpoints; logged with
    trigger ``test``, never retried. Exits with status 1 when the receiver
    did not accept it."""
    test = open_producer(ctx).test_endpoint(endpoint_id, event_type=event_type, data=data)
    if as_json:
        emit_json(test)
    else:
        answer = [
            ("result", "succeeded" if test.succeeded else "failed"),
            ("status code", test.status_code),
            ("error", test.error),
            ("duration", f"{test.duration_ms:.0f} ms"),
            ("delivery", test.delivery_id),
            ("message", test.message_id),
            ("response", test.response_body),
        ]
        fields([(name, value) for name, value in answer if value is not None])
    if not test.succeeded:
        ctx.exit(1)


@endpoints.command("recover")
@click.argument("endpoint_id")
@click.option("--since", type=ISO_TIME, required=True, help="Deliveries created at or after.")
@click.option("--until", type=ISO_TIME, default=None, help="Deliveries created before.")
@json_option
@click.pass_context
@one_line_errors
def endpoints_recover(
    ctx: click.Context, endpoint_id: str, since: Any, until: Any, as_json: bool
) -> None:
    """Requeue the endpoint's failed deliveries created in [since, until), due now."""
    producer = open_producer(ctx)
    with progress("requeued") as advance:
        count = producer.recover_endpoint(endpoint_id, since=since, until=until, progress=advance)
    if as_json:
        emit_json({"requeued": count})
        return
    noun = "delivery" if count == 1 else "deliveries"
    click.echo(f"requeued {count} failed {noun} of {endpoint_id}")


@endpoints.command("replay")
@click.argument("endpoint_id")
@click.option("--since", type=ISO_TIME, required=True, help="Messages created at or after.")
@click.option("--until", type=ISO_TIME, default=None, help="Messages created before.")
@click.option(
    "--event-type", "event_types", multiple=True, help="Only this event type; repeat for several."
)
@click.option("--include-failed", is_flag=True, help="Also requeue the failed deliveries.")
@click.option("--dry-run", is_flag=True, help="Only count what it would do; write nothing.")
@click.option(
    "--background",
    is_flag=True,
    help="Queue it as a job the workers run; prints the job id (see `webhooks jobs show`).",
)
@json_option
@click.pass_context
@one_line_errors
def endpoints_replay(
    ctx: click.Context,
    endpoint_id: str,
    since: Any,
    until: Any,
    event_types: tuple[str, ...],
    include_failed: bool,
    dry_run: bool,
    background: bool,
    as_json: bool,
) -> None:
    """Deliver what the endpoint missed: every message created in [since,
    until) that it would get now and has no delivery of."""
    producer = open_producer(ctx)
    window = {
        "since": since,
        "until": until,
        "event_types": list(event_types) or None,
        "include_failed": include_failed,
        "dry_run": dry_run,
    }
    if background:
        emit_queued(producer.start_replay(endpoint_id, **window), as_json=as_json)
        return
    with progress("messages looked at") as advance:
        result = producer.replay_endpoint(endpoint_id, progress=advance, **window)
    if as_json:
        emit_json({"created": result.created, "requeued": result.requeued})
        return
    noun = "delivery" if result.created == 1 else "deliveries"
    verb = ("would create", "would requeue") if dry_run else ("created", "requeued")
    line = f"{verb[0]} {result.created} {noun} for {endpoint_id}"
    if include_failed:
        line += f", {verb[1]} {result.requeued} failed"
    click.echo(line)


@endpoints.command("rotate-secret")
@click.argument("endpoint_id")
@click.option(
    "--grace-period",
    type=click.FloatRange(min=0),
    default=86400,
    show_default=True,
    help="Seconds the old secret keeps signing beside the new one.",
)
@click.option("--secret", default=None, help="Use this secret instead of a generated one.")
@json_option
@click.pass_context
@one_line_errors
def endpoints_rotate_secret(
    ctx: click.Context, endpoint_id: str, grace_period: float, secret: str | None, as_json: bool
) -> None:
    """Replace the signing secret; prints the new one alone on stdout."""
    new = open_producer(ctx).rotate_endpoint_secret(
        endpoint_id, secret=secret, grace_period_seconds=grace_period
    )
    if as_json:
        emit_json({"secret": new})
        return
    click.echo(new)


# -- output -------------------------------------------------------------------------


def _state(endpoint: Endpoint) -> str:
    if endpoint.status == "enabled":
        return "enabled"
    return f"disabled ({endpoint.disabled_reason})"


def _print_state(endpoint: Endpoint, as_json: bool) -> None:
    if as_json:
        emit_json(endpoint_view(endpoint))
        return
    click.echo(f"{endpoint.id} {_state(endpoint)}")


def _print(endpoint: Endpoint, as_json: bool) -> None:
    view = endpoint_view(endpoint)
    if as_json:
        emit_json(view)
        return
    headers = view["headers"]
    fields(
        [
            ("id", endpoint.id),
            ("url", endpoint.url),
            ("tenant", endpoint.tenant),
            ("status", _state(endpoint)),
            ("description", endpoint.description),
            ("event types", ", ".join(endpoint.event_types) or "* (every type)"),
            ("version", endpoint.version),
            ("scheme", endpoint.signature_scheme),
            ("ordering", endpoint.ordering),
            ("rate limit", endpoint.rate_limit_per_second),
            ("retry schedule", _joined(endpoint.retry_schedule)),
            ("timeout", endpoint.timeout_seconds),
            ("max in flight", endpoint.max_in_flight),
            ("headers", "; ".join(f"{k}: {v}" for k, v in headers.items())),
            ("metadata", json.dumps(endpoint.metadata) if endpoint.metadata else ""),
            ("failing since", when(endpoint.failing_since)),
            ("failures in a row", endpoint.consecutive_failures),
            ("disabled at", when(endpoint.disabled_at)),
            ("created", when(endpoint.created_at)),
            ("updated", when(endpoint.updated_at)),
        ]
    )


def _joined(schedule: list[float] | None) -> str:
    return "" if schedule is None else ",".join(f"{s:g}" for s in schedule)
