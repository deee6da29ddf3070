"""``webhooks db``: the database's schema, backups and retention."""

from __future__ import annotations

import click

from producer.cli.common import (
    database_url,
    fail,
    one_line_errors,
    open_producer,
    progress,
    sqlite_file,
)

BACKUP_STEP_PAGES = 1024
"""Pages copied per step of ``db backup`` (4 MiB at SQLite's default page size)."""


@click.group()
def db() -> None:
    """Database schema, backups and retention."""


@db.command("upgrade")
@click.pass_context
@one_line_errors
def db_upgrade(ctx: click.Context) -> None:
    """Apply the shipped migrations."""
    from producer.db import current_revision

    producer = open_producer(ctx, create=True, migrate_sqlite=False)
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
    path = sqlite_file(database_url(ctx))
    if path is None:
        fail("db backup copies SQLite files; back up PostgreSQL with pg_dump or base backups")
        return
    if not os.path.isfile(path):
        fail(f"no SQLite database at {path}")
    if os.path.exists(target):
        fail(f"{target} exists; name a new file")
    with closing(sqlite3.connect(path)) as source, closing(sqlite3.connect(target)) as copy:
        # One read transaction for the whole copy: every step reads the same
        # snapshot. Without it, a write by the running service between two
        # steps would restart the copy, again and again on a busy database.
        source.execute("BEGIN")
        (pages,) = source.execute("PRAGMA page_count").fetchone()
        with progress("backing up pages", total=pages) as advance:
            copied = 0

            def step(_status: int, remaining: int, total: int) -> None:
                nonlocal copied
                advance(total - remaining - copied)
                copied = total - remaining

            source.backup(copy, pages=BACKUP_STEP_PAGES, progress=step)
    click.echo(f"backed up {path} to {target}")


@db.command("purge")
@click.pass_context
@one_line_errors
def db_purge(ctx: click.Context) -> None:
    """Delete attempts and finished messages older than WEBHOOKS_RETENTION_DAYS
    now, as the worker's hourly maintenance does; a message with a pending
    delivery is kept."""
    producer = open_producer(ctx)
    with progress("deleted rows") as advance:
        attempts, messages = producer.purge_expired(progress=advance)
    days = producer.settings.retention_days
    click.echo(f"deleted {attempts} attempts and {messages} messages older than {days:g} days")
