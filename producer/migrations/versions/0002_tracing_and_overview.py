"""trace context of messages, traceparent forwarding, attempts by start time

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("trace_context", sa.JSON(), nullable=True))
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        # The default fills the rows already there; new rows get theirs from the model.
        batch_op.add_column(
            sa.Column(
                "forward_traceparent", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.alter_column("forward_traceparent", server_default=None)
    with op.batch_alter_table("webhook_attempts", schema=None) as batch_op:
        batch_op.create_index("ix_webhook_attempts_started_at", ["started_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("webhook_attempts", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_attempts_started_at")
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.drop_column("forward_traceparent")
    with op.batch_alter_table("webhook_messages", schema=None) as batch_op:
        batch_op.drop_column("trace_context")
