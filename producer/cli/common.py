"""What every command shares: one-line errors, opening the database, and
output for people (tables) or scripts (``--json``)."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
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


def json_option(func: F) -> F:
    """``--json``: print machine-readable JSON instead of a table."""
    return click.option(
        "--json", "as_json", is_flag=True, help="Print JSON (for scripts) instead of a table."
    )(func)


def emit_json(value: Any) -> None:
    """Print ``value`` as JSON (dataclasses, datetimes and enums included)."""
    click.echo(json.dumps(_plain(value), indent=2, ensure_ascii=False))


def _plain(value: Any) -> Any:
    import dataclasses
    import enum
    from datetime import datetime

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, enum.Enum):
        return value.value
    return value


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


@contextmanager
def progress(label: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
    """Show the progress of long work on a terminal, and nothing when piped.

    Yields ``advance(n)``, to call as work gets done; without a ``total`` the
    line shows a running count.
    """
    if not sys.stderr.isatty():
        yield lambda n: None
        return
    if total is not None:
        with click.progressbar(length=total, label=label, file=sys.stderr) as bar:
            yield bar.update
        return
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        click.echo(f"\r{label} {done}", nl=False, err=True)

    try:
        yield advance
    finally:
        click.echo("", err=True)
