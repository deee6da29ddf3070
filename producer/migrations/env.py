"""Alembic environment for the webhook tables.

Run through :func:`producer.db.migrate` (or ``webhooks db upgrade``), which
passes the connection in ``config.attributes["connection"]``. The version
table is named ``webhook_alembic_version`` so a host application's own Alembic
history in the same database is left alone.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from producer.models import Base

VERSION_TABLE = "webhook_alembic_version"

config = context.config
connection = config.attributes.get("connection")


def _run(conn: Connection) -> None:
    context.configure(
        connection=conn,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if connection is not None:
    _run(connection)
else:
    # Migrations copy rows (secrets included): no bound parameters in errors.
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "", hide_parameters=True)
    with engine.connect() as conn:
        _run(conn)
        conn.commit()
