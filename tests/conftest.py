"""Shared fixtures: a fresh database per test, on SQLite and on PostgreSQL, and
the producers, clock, receiver, API clients and browser built on it.

Helpers that are not fixtures live in ``tests/helpers``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from producer import Producer, destinations
from tests.helpers.api import Api
from tests.helpers.clock import FakeClock
from tests.helpers.postgres import DatabasePool, create_database, drop_database, require_postgres
from tests.helpers.producers import FAST
from tests.helpers.receiver import Receiver
from tests.helpers.resolvers import offline_resolver

# -- name resolution ----------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    """No test resolves an outside name: every producer made in the test run
    (modules that build one when collected included) resolves with
    ``offline_resolver`` (tests/helpers/resolvers.py), at registration and at
    delivery; a test that needs a name to resolve installs a ``FakeResolver``."""
    destinations.system_resolver = offline_resolver


# -- databases ----------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated PostgreSQL database made once per test session; tests get a
    copy of it (see ``pg_databases``), which is far cheaper than migrating
    each time."""
    require_postgres()
    from producer.db import create_db_engine, migrate
    from producer.settings import Settings

    url = create_database()
    engine = create_db_engine(Settings(database_url=url))
    migrate(engine)
    engine.dispose()
    yield url
    drop_database(url)


@pytest.fixture(scope="session")
def pg_databases(pg_template: str) -> Iterator[DatabasePool]:
    """Empty copies of ``pg_template``, one test at a time (tests/helpers/postgres.py)."""
    pool = DatabasePool(pg_template)
    yield pool
    pool.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file made once per test session; tests get a copy."""
    from producer.db import create_db_engine, migrate
    from producer.settings import Settings

    path = tmp_path_factory.mktemp("template") / "webhooks.db"
    engine = create_db_engine(Settings(database_url=f"sqlite:///{path}"))
    migrate(engine)
    engine.dispose()  # the last connection to close folds the WAL into the file
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """A fresh, migrated database URL: one SQLite file, or one PostgreSQL database."""
    if request.param == "sqlite":
        path = tmp_path / "webhooks.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    databases: DatabasePool = request.getfixturevalue("pg_databases")
    url = databases.take()
    yield url
    databases.give_back(url)


@pytest.fixture
def postgres_url(pg_databases: DatabasePool) -> Iterator[str]:
    """A fresh migrated PostgreSQL database, for tests that only make sense there."""
    url = pg_databases.take()
    yield url
    pg_databases.give_back(url)


# -- producers ----------------------------------------------------------------------


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock at 2026-11-22T10:00Z."""
    return FakeClock()


@pytest.fixture
def make_producer(database_url: str) -> Iterator[Callable[..., Producer]]:
    """Makes producers on the test's database: ``FAST`` settings (allowed to
    deliver to 127.0.0.1, a worker that wakes often and stops quickly) unless
    overridden, e.g. ``make_producer(clock=clock)``. All are closed at the end."""
    made: list[Producer] = []

    def make(**settings: Any) -> Producer:
        producer = Producer(database_url, **{**FAST, **settings})
        made.append(producer)
        return producer

    yield make
    for producer in made:
        producer.close()


@pytest.fixture
def producer(make_producer: Callable[..., Producer]) -> Producer:
    """A Producer on a fresh database (SQLite or PostgreSQL), real clock, with
    the ``FAST`` settings of :func:`make_producer`."""
    return make_producer()


# -- around the producer ------------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A recording webhook receiver on 127.0.0.1 (tests/helpers/receiver.py)."""
    with Receiver() as r:
        yield r


@pytest.fixture
def api(producer: Producer) -> Api:
    """The REST API over ``producer``, with a client per kind of caller."""
    return Api(producer)


# -- the web UI ---------------------------------------------------------------------


@pytest.fixture
def admin_key(producer: Producer) -> str:
    """The plain text of an admin API key."""
    return producer.create_api_key(name="admin")[1]


@pytest.fixture
def client(producer: Producer) -> Iterator[Any]:
    """A browser-like client (``TestClient``) of the UI app, not signed in."""
    from fastapi.testclient import TestClient

    from tests.helpers.ui import build_app

    with TestClient(build_app(producer)) as c:
        yield c


@pytest.fixture
def admin(client: Any, admin_key: str) -> tuple[Any, str]:
    """The UI client signed in with an admin API key, and its CSRF token."""
    from tests.helpers.ui import sign_in

    return client, sign_in(client, admin_key)


@pytest.fixture
def browser() -> Iterator[Any]:
    """Headless Debian Chromium; mark the test ``@needs_chromium`` (tests/helpers/browser.py)."""
    from tests.helpers.browser import chromium

    with chromium() as browser:
        yield browser
