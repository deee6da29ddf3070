"""endpoint credentials: egress proxy, client certificate, receiver authentication

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # All nullable: an endpoint without them is sent exactly as before.
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.add_column(sa.Column("proxy_url", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("auth", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("tls", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.drop_column("tls")
        batch_op.drop_column("auth")
        batch_op.drop_column("proxy_url")
