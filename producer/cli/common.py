"""What every command shares: one-line errors, opening the database, options
(ISO 8601 times, paging), output for people (tables) or scripts
(``--json``), and progress on a terminal."""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, NoReturn, TypeVar

import click
from sqlalchemy.exc import SQLAlchemyError

from producer.errors import WebhooksError

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str) -> NoReturn:
    """Print ``error: message`` on stderr and exit with status 1."""
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
            fail(exc.message)
        except SettingsError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "settings"
            fail(f"invalid setting WEBHOOKS_{field.upper()}: {first['msg']}")
        except SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            fail(f"database error: {reason}")

    return wrapper  # type: ignore[return-value]


def database_url(ctx: click.Context) -> str:
    """The database URL: ``--database-url``, else the settings' default."""
    from producer.settings import Settings

    url: str = ctx.obj.get("database_url") or Settings().database_url
    return url


def sqlite_file(url: str) -> str | None:
    """The file of an SQLite URL (None for other databases and in-memory ones)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return parsed.database


def open_producer(ctx: click.Context, *, create: bool = False, migrate_sqlite: bool = True) -> Any:
    """The producer of the configured database.

    Only the commands that set a database up (``db upgrade``, ``serve``,
    ``worker``) pass ``create``; every other one refuses a missing SQLite
    file rather than make an empty database (and its directory) at a
    mistyped path.
    """
    from producer.producer import Producer
    from producer.settings import Settings

    # Settings first: a malformed WEBHOOKS_* variable is the error to report.
    url = ctx.obj.get("database_url")
    settings = Settings(database_url=url) if url else Settings()
    path = sqlite_file(settings.database_url)
    if not create and path is not None and not os.path.isfile(path):
        fail(
            f"no database at {path}: create it with `webhooks db upgrade` "
            "(or start the service with `webhooks serve`)"
        )
    producer = Producer(settings=settings)
    if not migrate_sqlite:
        return producer
    producer.check_schema_version()
    return producer


class IsoDateTime(click.ParamType):
    """An ISO 8601 time (``2026-11-22``, ``2026-11-22T10:00:00Z``,
    ``2026-11-22T11:00+01:00``); one without an offset is UTC."""

    name = "ISO 8601 time"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, datetime):
            return value
        try:
            parsed = datetime.fromisoformat(str(value))
        except ValueError:
            self.fail(f"{value!r} is not an ISO 8601 time, e.g. 2026-11-22T10:00:00Z", param, ctx)
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


ISO_TIME = IsoDateTime()


def window_options(func: F) -> F:
    """``--since`` and ``--until``: a creation window ``[since, until)``, as the API's."""
    func = click.option(
        "--until", type=ISO_TIME, default=None, help="Created before this time (exclusive)."
    )(func)
    return click.option(
        "--since", type=ISO_TIME, default=None, help="Created at or after this time."
    )(func)


def page_options(default: int | None) -> Callable[[F], F]:
    """``--limit`` and ``--cursor``: how many rows to print (fetched in pages
    of the API's size), and where to start (a ``next_cursor``)."""
    shown = "every one" if default is None else str(default)

    def decorate(func: F) -> F:
        func = click.option(
            "--cursor", default=None, help="Start after this row: a previous `next_cursor`."
        )(func)
        return click.option(
            "--limit",
            type=click.IntRange(min=1),
            default=default,
            help=f"At most this many rows (default: {shown}).",
        )(func)

    return decorate


def collect(
    fetch: Callable[[int, str | None], Any], limit: int | None, cursor: str | None
) -> tuple[list[Any], str | None]:
    """Rows of a paged list: ``fetch(page_size, cursor)`` returns a ``Page``;
    pages are read until ``limit`` rows (None: all). Returns the rows and the
    cursor of what comes after them (None at the end)."""
    from producer.store import MAX_PAGE_SIZE

    rows: list[Any] = []
    while True:
        size = MAX_PAGE_SIZE if limit is None else min(MAX_PAGE_SIZE, limit - len(rows))
        page = fetch(size, cursor)
        rows.extend(page.data)
        cursor = page.next_cursor
        if cursor is None or (limit is not None and len(rows) >= limit):
            return rows, cursor


def print_list(
    fetch: Callable[[int, str | None], Any],
    limit: int | None,
    cursor: str | None,
    as_json: bool,
    *,
    view: Callable[[Any], Any],
    show: Callable[[list[Any]], None],
) -> None:
    """What a listing command prints: the rows ``fetch`` pages through (see
    :func:`collect`), as the API's JSON page (each row through ``view``) or
    by ``show`` for people, with a hint when rows were left out."""
    rows, next_cursor = collect(fetch, limit, cursor)
    if as_json:
        emit_page([view(row) for row in rows], next_cursor)
        return
    show(rows)
    more_hint(next_cursor)


def more_hint(next_cursor: str | None) -> None:
    """Tell a person (on stderr) how to see the rows after a cut-off list."""
    if next_cursor is not None:
        click.echo(f"(more: --cursor {next_cursor}, or a larger --limit)", err=True)


def json_option(func: F) -> F:
    """``--json``: print machine-readable JSON instead of a table."""
    return click.option(
        "--json", "as_json", is_flag=True, help="Print JSON (for scripts) instead of a table."
    )(func)


def emit_json(value: Any) -> None:
    """Print ``value`` as JSON (dataclasses, datetimes and enums included);
    times as the API writes them (RFC 3339 UTC with milliseconds)."""
    click.echo(json.dumps(_plain(value), indent=2, ensure_ascii=False))


def emit_page(items: list[Any], next_cursor: str | None) -> None:
    """Print a list in the API's page shape: ``{"data": [...], "next_cursor": ...}``."""
    emit_json({"data": items, "next_cursor": next_cursor})


def _plain(value: Any) -> Any:
    import dataclasses
    import enum

    from producer.payloads import format_timestamp

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, enum.Enum):
        return value.value
    return value


def when(value: datetime | None) -> str:
    """A time for a table: UTC to the second (``2026-11-22T10:00:00Z``), or empty."""
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, empty: str) -> None:
    """Print ``rows`` as columns under ``headers``, or ``empty`` when there are none."""
    cells = [["" if c is None else str(c) for c in row] for row in rows]
    if not cells:
        click.echo(empty)
        return
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    click.echo(line([h.upper() for h in headers]))
    for row in cells:
        click.echo(line(row))


def fields(pairs: Iterable[tuple[str, Any]]) -> None:
    """Print ``name: value`` lines, the names aligned (a record for people)."""
    pairs = [(name, "" if value is None else str(value)) for name, value in pairs]
    width = max(len(name) for name, _ in pairs) + 1
    for name, value in pairs:
        click.echo(f"{name + ':':<{width}} {value}".rstrip())


def on_terminal() -> bool:
    """Whether stderr is a terminal (a person watching), rather than a pipe or file."""
    return sys.stderr.isatty()


REDRAW_SECONDS = 0.1
"""How often at most a progress line is redrawn."""


@contextmanager
def progress(label: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
    """Show the progress of long work on a terminal (stderr), and nothing when piped.

    Yields ``advance(n)``, to call as work gets done; the line shows
    ``done/total`` with a percentage, or a running count without a ``total``.
    """
    if not on_terminal():
        yield lambda n: None
        return
    done = 0
    drawn = 0.0

    def draw() -> None:
        figure = f"{done}" if total is None else f"{done}/{total} ({_percent(done, total)}%)"
        click.echo(f"\r{label} {figure}", nl=False, err=True)

    def advance(n: int) -> None:
        nonlocal done, drawn
        done += n
        now = time.monotonic()
        if now - drawn >= REDRAW_SECONDS:
            drawn = now
            draw()

    draw()
    try:
        yield advance
    finally:
        draw()
        click.echo("", err=True)


def _percent(done: int, total: int) -> int:
    return 100 if total <= 0 else min(100, done * 100 // total)
