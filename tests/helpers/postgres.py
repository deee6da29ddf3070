"""The PostgreSQL server the tests use, and throwaway databases on it.

The server is on 127.0.0.1:5432 (``WEBHOOKS_TEST_PG_URL`` overrides it).
Without a server, PostgreSQL tests are skipped with the reason shown, except
under CI (``CI`` set), where a missing server fails the run instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

PG_ADMIN_URL = os.environ.get(
    "WEBHOOKS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
_pg_state: dict[str, str | None] = {}


def _pg_unavailable_reason() -> str | None:
    if "reason" not in _pg_state:
        try:
            engine = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
            with engine.connect() as conn:
                conn.execute(text("select 1"))
            engine.dispose()
            _pg_state["reason"] = None
        except Exception as exc:  # any driver or connection failure means "not here"
            _pg_state["reason"] = f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc!s:.200}"
    return _pg_state["reason"]


def require_postgres() -> None:
    """Skip (or, under CI, fail) when PostgreSQL is not reachable."""
    reason = _pg_unavailable_reason()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run PostgreSQL tests: {reason}")
        pytest.skip(reason)


def create_database(template: str | None = None) -> str:
    """A new database (a copy of ``template``'s database, if given); returns its URL."""
    name = f"webhooks_test_{uuid.uuid4().hex[:12]}"
    copy = f' TEMPLATE "{make_url(template).database}"' if template is not None else ""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"{copy}'))
    admin.dispose()
    return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    """Drop the database of ``url``, closing its connections."""
    name = make_url(url).database
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


# Everything a migration or a test could change in a database's schema, as
# one comparable text: schemas, relations, columns, constraints, functions,
# triggers, types, and the migration revision. System schemas are left out
# (names starting with pg_ are reserved for them).
_SCHEMA = r"""
SELECT string_agg(item, E'\n' ORDER BY item) FROM (
    SELECT format('namespace %s', nspname)
    FROM pg_namespace WHERE nspname !~ '^(pg_|information_schema$)'
    UNION ALL
    SELECT format('relation %s.%s %s', relnamespace::regnamespace, relname, relkind)
    FROM pg_class WHERE relnamespace::regnamespace::text !~ '^(pg_|information_schema$)'
    UNION ALL
    SELECT format(
        'column %s.%s %s not null %s default %s', a.attrelid::regclass, a.attname,
        format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(d.adbin, d.adrelid)
    )
    FROM pg_attribute a
    JOIN pg_class c ON c.oid = a.attrelid
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE a.attnum > 0 AND NOT a.attisdropped
      AND c.relnamespace::regnamespace::text !~ '^(pg_|information_schema$)'
    UNION ALL
    SELECT format('constraint %s.%s %s', conrelid::regclass, conname, pg_get_constraintdef(oid))
    FROM pg_constraint WHERE connamespace::regnamespace::text !~ '^(pg_|information_schema$)'
    UNION ALL
    SELECT format('function %s', oid::regprocedure)
    FROM pg_proc WHERE pronamespace::regnamespace::text !~ '^(pg_|information_schema$)'
    UNION ALL
    SELECT format('trigger %s.%s', tgrelid::regclass, tgname)
    FROM pg_trigger WHERE NOT tgisinternal
    UNION ALL
    SELECT format('type %s.%s', typnamespace::regnamespace, typname)
    FROM pg_type WHERE typnamespace::regnamespace::text !~ '^(pg_|information_schema$)'
    UNION ALL
    SELECT format('revision %s', version_num) FROM webhook_alembic_version
) AS schema(item)
"""

_TABLES = r"""
SELECT format('%I.%I', schemaname, tablename) FROM pg_tables
WHERE schemaname !~ '^(pg_|information_schema$)' AND tablename <> 'webhook_alembic_version'
"""


def _schema_and_tables(conn: Connection) -> tuple[str, list[str]]:
    schema = conn.execute(text(_SCHEMA)).scalar_one()
    return schema, list(conn.execute(text(_TABLES)).scalars())


class DatabasePool:
    """Empty copies of a migrated template database, for one test at a time.

    Making a copy (CREATE DATABASE ... TEMPLATE) and dropping it cost about
    0.3 s of disk writes, more than most tests take. So a copy a test is done
    with is made as good as new and used again: the connections to it are
    closed, it is renamed (a connection a test leaked cannot find it again),
    every row is deleted and every sequence restarted. A copy whose schema a
    test changed (a host application's table, a migration) is dropped
    instead, and the next test gets a new one.
    """

    def __init__(self, template: str) -> None:
        self._template = template
        self._spare: list[str] = []
        # Pinged before use: a test may restart the server.
        self._admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
        engine = create_engine(template, poolclass=NullPool)
        with engine.connect() as conn:
            self._schema, tables = _schema_and_tables(conn)
            # Emptying a copy turns foreign keys off, which takes a superuser,
            # and would lose any rows the migrations made.
            superuser = conn.execute(text("SELECT current_setting('is_superuser') = 'on'"))
            self._reusable = superuser.scalar_one() and not any(
                conn.execute(text(f"SELECT EXISTS (SELECT FROM {table})")).scalar_one()
                for table in tables
            )
        engine.dispose()

    def take(self) -> str:
        """The URL of an empty, migrated database, for the caller alone."""
        return self._spare.pop() if self._spare else create_database(self._template)

    def give_back(self, url: str) -> None:
        """Take back a database :meth:`take` returned; the caller must not use it again."""
        if not self._reusable:
            drop_database(url)
            return
        renewed = self._renew(url)
        if renewed is not None:
            self._spare.append(renewed)

    def close(self) -> None:
        """Drop the spare databases."""
        while self._spare:
            drop_database(self._spare.pop())
        self._admin.dispose()

    def _renew(self, url: str) -> str | None:
        """Close the connections to ``url``'s database, rename it and empty it;
        returns its new URL, or drops it and returns None when it cannot be
        used again."""
        old = make_url(url).database
        renewed = make_url(url).set(database=f"webhooks_test_{uuid.uuid4().hex[:12]}")
        try:
            with self._admin.connect() as conn:
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
                        " WHERE datname = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": old},
                )
                conn.execute(text(f'ALTER DATABASE "{old}" RENAME TO "{renewed.database}"'))
        except DBAPIError:  # a leaked connection came back in between
            drop_database(url)
            return None
        new_url = renewed.render_as_string(hide_password=False)
        engine = create_engine(new_url, poolclass=NullPool)
        with engine.begin() as conn:
            schema, tables = _schema_and_tables(conn)
            if schema == self._schema:
                # Deleting the few rows a test made is far cheaper than
                # TRUNCATE, which makes new files; with foreign keys off, in
                # any order.
                conn.execute(text("SET LOCAL session_replication_role = replica"))
                for table in tables:
                    conn.execute(text(f"DELETE FROM {table}"))
                conn.execute(text("SELECT setval(seqrelid, seqstart, false) FROM pg_sequence"))
        engine.dispose()
        if schema != self._schema:
            drop_database(new_url)
            return None
        return new_url


class PrivateCluster:
    """A PostgreSQL server of its own, for a test that restarts its database:
    restarting the shared server would break every test running beside it.

    Made with Debian's ``pg_createcluster`` (trust authentication, on a free
    port of 127.0.0.1) from the version the shared server runs, and dropped
    with its data when closed.
    """

    def __init__(self) -> None:
        from tests.helpers.processes import free_port

        versions = sorted(p.name for p in Path("/etc/postgresql").iterdir())
        self.version = versions[0]
        self.name = f"webhooks_test_{uuid.uuid4().hex[:8]}"
        self.port = free_port()
        self._ctl(
            "pg_createcluster", self.version, self.name, "-p", str(self.port), "--start",
            "--", "--auth=trust",
        )  # fmt: skip
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    @staticmethod
    def available() -> bool:
        """Whether this machine can make one (Debian's PostgreSQL tools)."""
        return Path("/etc/postgresql").is_dir() and shutil.which("pg_createcluster") is not None

    def restart(self) -> None:
        self._ctl("pg_ctlcluster", "--skip-systemctl-redirect", self.version, self.name, "restart")

    def close(self) -> None:
        self._ctl("pg_dropcluster", "--stop", self.version, self.name)

    @staticmethod
    def _ctl(*command: str) -> None:
        subprocess.run(command, check=True, capture_output=True, timeout=120)
