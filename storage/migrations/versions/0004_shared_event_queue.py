"""shared event queue: whose event it is, and which worker owns an outbox row

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 06:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WAITING = sa.text("processed_at IS NULL")


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("inbound_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("user_key", sa.String(length=64), nullable=True))
        batch_op.create_index(
            "ix_inbound_waiting", ["id"], postgresql_where=WAITING, sqlite_where=WAITING
        )
        batch_op.create_index(
            "ix_inbound_waiting_user",
            ["platform", "user_key", "id"],
            postgresql_where=WAITING,
            sqlite_where=WAITING,
        )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("owner")
    with op.batch_alter_table("inbound_events", schema=None) as batch_op:
        batch_op.drop_index("ix_inbound_waiting_user")
        batch_op.drop_index("ix_inbound_waiting")
        batch_op.drop_column("user_key")
