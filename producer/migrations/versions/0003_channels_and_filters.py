"""channels of messages and endpoints, endpoint payload filters, skipped counts

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The defaults fill the rows already there; new rows get theirs from the model.
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("channels", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
        batch_op.add_column(sa.Column("filter", sa.JSON(), nullable=True))
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.alter_column("channels", server_default=None)
    with op.batch_alter_table("webhook_messages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("channels", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
        batch_op.add_column(sa.Column("skipped", sa.JSON(), nullable=True))
    with op.batch_alter_table("webhook_messages", schema=None) as batch_op:
        batch_op.alter_column("channels", server_default=None)
    op.create_table(
        "webhook_endpoint_channels",
        sa.Column("endpoint_id", sa.String(length=40), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["endpoint_id"], ["webhook_endpoints.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("endpoint_id", "channel"),
    )
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_webhook_deliveries_message_endpoint", ["message_id", "endpoint_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_deliveries_message_endpoint")
    op.drop_table("webhook_endpoint_channels")
    with op.batch_alter_table("webhook_messages", schema=None) as batch_op:
        batch_op.drop_column("skipped")
        batch_op.drop_column("channels")
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.drop_column("filter")
        batch_op.drop_column("channels")
