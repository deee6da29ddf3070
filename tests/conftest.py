"""Shared fixtures: a fresh database per test, on SQLite and on PostgreSQL.

PostgreSQL tests use the server on 127.0.0.1:5432 (``WEBHOOKS_TEST_PG_URL``
overrides it). Without a server they are skipped with the reason shown, except
under CI (``CI`` set), where a missing server fails the run instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

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


def _create_pg_database() -> str:
    name = f"webhooks_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def _drop_pg_database(url: str) -> None:
    name = make_url(url).database
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated PostgreSQL database made once per test session; tests get a
    copy of it (CREATE DATABASE ... TEMPLATE), which is far cheaper than
    migrating each time."""
    require_postgres()
    from producer.db import create_db_engine, migrate
    from producer.settings import Settings

    url = _create_pg_database()
    engine = create_db_engine(Settings(database_url=url))
    migrate(engine)
    engine.dispose()
    yield url
    _drop_pg_database(url)


def _copy_pg_database(template_url: str) -> str:
    name = f"webhooks_test_{uuid.uuid4().hex[:12]}"
    template = make_url(template_url).database
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    admin.dispose()
    return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """A fresh, migrated database URL: one SQLite file, or one PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'webhooks.db'}"
        return
    template = request.getfixturevalue("pg_template")
    url = _copy_pg_database(template)
    yield url
    _drop_pg_database(url)


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh migrated PostgreSQL database, for tests that only make sense there."""
    template = request.getfixturevalue("pg_template")
    url = _copy_pg_database(template)
    yield url
    _drop_pg_database(url)


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 22, 10, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock at 2026-11-22T10:00Z."""
    return FakeClock()


@pytest.fixture
def producer(database_url: str):
    """A Producer on a fresh database (SQLite or PostgreSQL), real clock, allowed
    to deliver to receivers on 127.0.0.1."""
    from producer import Producer

    p = Producer(database_url, auto_migrate=True, allowed_cidrs=["127.0.0.0/8"])
    yield p
    p.close()


@pytest.fixture
def browser():
    """Headless Debian Chromium; mark the test ``@needs_chromium`` (tests/browser.py)."""
    from tests.browser import chromium

    with chromium() as browser:
        yield browser
