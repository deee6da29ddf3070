"""Engines, sessions and migrations."""

from __future__ import annotations

import select
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.exc import DisconnectionError

from producer.settings import Settings

if TYPE_CHECKING:
    from alembic.config import Config

# Alembic (with Mako and their dependencies) is imported by the functions that
# migrate, not with this module: a process that only sends events never loads
# it. It is about a quarter of the time ``from producer import Producer``
# takes, and a fifth of the objects its garbage collector then walks.

__all__ = [
    "READ_ONLY",
    "create_db_engine",
    "current_revision",
    "head_revision",
    "migrate",
    "normalize_url",
]

_MIGRATIONS = Path(__file__).with_name("migrations")

READ_ONLY = "webhooks_read_only"
"""Execution option of the connections :meth:`producer.store.Store.reading` uses."""


def normalize_url(url: str) -> str:
    """Map ``postgres://``/``postgresql://`` URLs to the psycopg 3 driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def create_db_engine(settings: Settings) -> Engine:
    """Create the engine for ``settings.database_url``.

    SQLite runs in WAL mode with ``synchronous=NORMAL`` and every transaction
    starts with ``BEGIN IMMEDIATE``: SQLite allows one writer, and taking the
    write lock up front makes concurrent writers wait (``busy_timeout``)
    instead of failing with "database is locked" when a read upgrades.
    Connections with the :data:`READ_ONLY` execution option start a plain
    (deferred) ``BEGIN`` instead and read beside the writer.
    """
    url = make_url(normalize_url(settings.database_url))
    kwargs: dict[str, Any] = {}
    if url.get_backend_name() == "sqlite":
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        if url.database and url.database != ":memory:":
            Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    else:
        kwargs.update(
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout,
        )
    # Bound parameters hold endpoint secrets and header values: keep them out
    # of error messages and of SQLAlchemy's statement log.
    engine = create_engine(url, hide_parameters=True, **kwargs)
    event.listen(engine, "handle_error", _hide_row_values)
    if url.get_backend_name() == "sqlite":
        _configure_sqlite(engine)
    elif url.get_backend_name() == "postgresql":
        event.listen(engine, "checkout", _refuse_closed_connection)
    return engine


def _refuse_closed_connection(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Replace a pooled PostgreSQL connection the server has closed, before it
    is used: checked without a round trip, unlike the pool's pre-ping.

    An idle connection gets nothing from the server (nothing here LISTENs on a
    pooled connection) until the server ends it: on a restart or an
    administrator's termination it sends an error and closes the socket, and
    when its process dies the socket reaches end of file. Either way the
    socket turns readable, and the pool then opens a new connection in its
    place. A connection that fails anyway (a network that vanished without a
    word) fails its statement, which invalidates the whole pool at once.
    """
    if dbapi_connection.closed:
        raise DisconnectionError("the connection is closed")
    try:
        readable = _readable(dbapi_connection.fileno())
    except (OSError, ValueError) as exc:
        raise DisconnectionError(f"the connection's socket is unusable: {exc}") from exc
    if readable:
        raise DisconnectionError("the server closed or is closing the connection")


def _readable(fd: int) -> bool:
    """Whether ``fd`` has something to read (or is at end of file), without waiting."""
    if hasattr(select, "poll"):  # any descriptor number, unlike select()
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(0))
    readable, _, _ = select.select([fd], [], [], 0)
    return bool(readable)


def _hide_row_values(context: ExceptionContext) -> None:
    """Drop the DETAIL of a PostgreSQL error from its message.

    The DETAIL of a constraint violation quotes values ("Failing row contains
    (...)", "Key (...)=(...)"), secrets included, and error messages end up
    in logs. The primary message names the constraint, which is what a
    reader needs; the DETAIL stays available in the driver's ``diag``.
    """
    orig = context.original_exception
    diag = getattr(orig, "diag", None)
    primary = getattr(diag, "message_primary", None)
    if not primary or not getattr(diag, "message_detail", None):
        return
    orig.args = (primary,)
    wrapped = context.sqlalchemy_exception
    if wrapped is not None:
        wrapped.args = (f"({type(orig).__module__}.{type(orig).__name__}) {primary}",)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to SQLAlchemy's "begin" event below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A read takes no lock until it reads, and then only a WAL snapshot:
        # it never waits for the writer, nor the writer for it.
        read = conn.get_execution_options().get(READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read else "BEGIN IMMEDIATE")


def _alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    return config


def migrate(engine: Engine, revision: str = "head") -> None:
    """Apply the shipped migrations up to ``revision`` (default: the latest)."""
    from alembic import command

    config = _alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def head_revision() -> str | None:
    """The newest migration shipped with this version of the package."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The migration the database is at, or None for an empty database."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"version_table": "webhook_alembic_version"}
        )
        return context.get_current_revision()
