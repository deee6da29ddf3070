"""``webhooks db``: the database's schema and backups."""

from __future__ import annotations

import click

from producer.cli.common import database_url, fail, one_line_errors, open_producer, sqlite_file


@click.group()
def db() -> None:
    """Database schema."""


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
    # SQLite's online backup API copies a consistent snapshot page by page
    # while other connections keep reading and writing (WAL included).
    with closing(sqlite3.connect(path)) as source, closing(sqlite3.connect(target)) as copy:
        source.backup(copy)
    click.echo(f"backed up {path} to {target}")
