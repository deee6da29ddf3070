"""Property-based fuzzing of the REST API from its own OpenAPI document.

schemathesis generates requests for every operation (valid and invalid
inputs) with an admin key, under a bounded budget, on SQLite and on
PostgreSQL; no response may be a server error, and every response must match
the documented schema, status codes, headers and content types.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

from api import create_app
from producer import Producer
from tests.helpers.postgres import DatabasePool

pytestmark = pytest.mark.slow

EXAMPLES_PER_OPERATION = 25

OPENAPI = Path(__file__).resolve().parent.parent / "docs" / "reference" / "openapi.json"


class _Forward:
    """The app the module's fixture built, in place of which schemathesis
    gets this stand-in when the module is collected."""

    def __init__(self) -> None:
        self.app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


# The committed document, which tests/test_docs.py keeps equal to the app's
# own: the operations are known when the module is collected, and collecting
# it (in every test process, also when these tests are deselected) opens no
# database. The app a test calls is made by a fixture, which cleans up.
_sqlite_app, _postgres_app = _Forward(), _Forward()
schema = schemathesis.openapi.from_path(OPENAPI)
schema.app = _sqlite_app
pg_schema = schemathesis.openapi.from_path(OPENAPI)
pg_schema.app = _postgres_app


def _serve(producer: Producer, forward: _Forward) -> str:
    """Make ``forward`` serve the API over ``producer``; an admin key for it."""
    _, key = producer.create_api_key()
    producer.create_endpoint("https://hooks.example/in", tenant="acme")
    producer.create_event_type("invoice.paid", schemas={"1": {"type": "object"}})
    producer.send("invoice.paid", {"n": 1}, tenant="acme")
    forward.app = create_app(producer)
    return key


@pytest.fixture(scope="module")
def sqlite_key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    producer = Producer(f"sqlite:///{tmp_path_factory.mktemp('fuzz')}/fuzz.db", auto_migrate=True)
    yield _serve(producer, _sqlite_app)
    _sqlite_app.app = None  # the stand-in outlives the module's tests
    producer.close()


@pytest.fixture(scope="module")
def postgres_key(pg_databases: DatabasePool) -> Iterator[str]:
    # PostgreSQL refuses input SQLite accepts (NUL in text, for one), so the
    # same requests are made against both.
    url = pg_databases.take()
    producer = Producer(url)
    yield _serve(producer, _postgres_app)
    _postgres_app.app = None
    producer.close()
    pg_databases.give_back(url)


_BUDGET = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
# Some schema-valid input is refused on purpose by rules a JSON Schema cannot
# state (a secret's key length, a URL to a private address), and unknown query
# parameters are ignored, as HTTP APIs commonly do: the two "acceptance"
# checks assume neither.
_EXCLUDED = [checks.positive_data_acceptance, checks.negative_data_rejection]


def _call(case: Any, key: str) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {key}"}, excluded_checks=_EXCLUDED)


@schema.parametrize()
@_BUDGET
def test_no_request_makes_the_api_fail_or_break_its_contract(case, sqlite_key):
    _call(case, sqlite_key)


@pg_schema.parametrize()
@_BUDGET
def test_no_request_makes_the_api_fail_or_break_its_contract_on_postgresql(case, postgres_key):
    _call(case, postgres_key)
