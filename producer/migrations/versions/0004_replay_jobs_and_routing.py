"""replay jobs and indexed event-type routing

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

import producer.models

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BACKFILL_BATCH = 1000


def upgrade() -> None:
    op.create_table(
        "webhook_endpoint_routes",
        sa.Column("tenant", sa.String(length=128), nullable=False),
        sa.Column("pattern", sa.String(length=130), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("endpoint_id", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(["endpoint_id"], ["webhook_endpoints.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("tenant", "pattern", "channel", "endpoint_id"),
    )
    with op.batch_alter_table("webhook_endpoint_routes", schema=None) as batch_op:
        batch_op.create_index("ix_webhook_endpoint_routes_endpoint", ["endpoint_id"], unique=False)
    _backfill_routes()
    op.create_table(
        "webhook_jobs",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("tenant", sa.String(length=128), nullable=True),
        sa.Column("endpoint_id", sa.String(length=40), nullable=True),
        sa.Column("since", producer.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("until", producer.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("phase", sa.String(length=16), nullable=False),
        sa.Column("cursor", sa.String(length=40), nullable=True),
        sa.Column("scanned", sa.Integer(), nullable=False),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("requeued", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_expires_at", producer.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", producer.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", producer.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", producer.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", producer.models.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("webhook_jobs", schema=None) as batch_op:
        batch_op.create_index("ix_webhook_jobs_status_id", ["status", "id"], unique=False)
        batch_op.create_index("ix_webhook_jobs_tenant_id", ["tenant", "id"], unique=False)


def _backfill_routes() -> None:
    """The routing index of the endpoints already there: a row per pattern
    (``*`` for none) and channel (``""`` for none) of every live endpoint,
    in id order, a batch of endpoints at a time."""
    bind = op.get_bind()
    endpoints = sa.table(
        "webhook_endpoints",
        sa.column("id", sa.String),
        sa.column("tenant", sa.String),
        sa.column("event_types", sa.JSON),
        sa.column("channels", sa.JSON),
        sa.column("deleted_at"),
    )
    routes = sa.table(
        "webhook_endpoint_routes",
        sa.column("tenant", sa.String),
        sa.column("pattern", sa.String),
        sa.column("channel", sa.String),
        sa.column("endpoint_id", sa.String),
    )
    after = ""
    while True:
        rows = bind.execute(
            sa.select(
                endpoints.c.id, endpoints.c.tenant, endpoints.c.event_types, endpoints.c.channels
            )
            .where(endpoints.c.deleted_at.is_(None), endpoints.c.id > after)
            .order_by(endpoints.c.id)
            .limit(BACKFILL_BATCH)
        ).all()
        if not rows:
            return
        values = [
            {"tenant": tenant, "pattern": pattern, "channel": channel, "endpoint_id": endpoint_id}
            for endpoint_id, tenant, event_types, channels in rows
            for pattern in _listed(event_types, "*")
            for channel in _listed(channels, "")
        ]
        bind.execute(routes.insert(), values)
        after = rows[-1][0]


def _listed(value: Any, none: str) -> list[str]:
    """A stored JSON list, de-duplicated; ``[none]`` when empty."""
    if isinstance(value, str):  # a driver that hands JSON back as text
        value = json.loads(value)
    return list(dict.fromkeys(value or [])) or [none]


def downgrade() -> None:
    with op.batch_alter_table("webhook_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_jobs_tenant_id")
        batch_op.drop_index("ix_webhook_jobs_status_id")
    op.drop_table("webhook_jobs")
    with op.batch_alter_table("webhook_endpoint_routes", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_endpoint_routes_endpoint")
    op.drop_table("webhook_endpoint_routes")
