"""Shipped migrations build exactly the models' schema, on both databases."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from producer.db import create_db_engine, current_revision, head_revision, migrate
from producer.models import Base
from producer.settings import Settings


def test_migrations_match_the_models(database_url):
    engine = create_db_engine(Settings(database_url=database_url))
    migrate(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "version_table": "webhook_alembic_version"}
        )
        diff = [
            d
            for d in compare_metadata(context, Base.metadata)
            if not (d[0] == "remove_table" and d[1].name == "webhook_alembic_version")
        ]
    assert diff == []
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_migrating_twice_is_a_no_op(database_url):
    engine = create_db_engine(Settings(database_url=database_url))
    migrate(engine)
    migrate(engine)
    assert "webhook_deliveries" in inspect(engine).get_table_names()
    engine.dispose()


def test_version_table_does_not_collide_with_the_host_apps_alembic(database_url):
    engine = create_db_engine(Settings(database_url=database_url))
    migrate(engine)
    tables = inspect(engine).get_table_names()
    assert "webhook_alembic_version" in tables and "alembic_version" not in tables
    engine.dispose()
