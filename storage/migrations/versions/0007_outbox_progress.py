"""outbox: requests already sent, and why a delivery waits

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 06:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(
            sa.Column("sent_batches", sa.Integer(), server_default="0", nullable=False)
        )
        batch.add_column(sa.Column("held_reason", sa.String(length=200), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("held_reason")
        batch.drop_column("sent_batches")
