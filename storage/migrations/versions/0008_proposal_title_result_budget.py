"""proposal title, expected result, resources, budget, and counts as ranges of people or households

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 07:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ADDED = (
    sa.Column("title", sa.Text(), nullable=True),
    sa.Column("people_max", sa.Integer(), nullable=True),
    sa.Column("people_unit", sa.String(length=16), nullable=False, server_default="people"),
    sa.Column("expected_result", sa.Text(), nullable=True),
    sa.Column("resources", sa.Text(), nullable=True),
    sa.Column("budget", sa.String(length=16), nullable=True),
)


def upgrade() -> None:
    """Apply this revision."""
    # plain ADD COLUMN: SQLite does it in place, without copying a million-row table
    for column in _ADDED:
        op.add_column("proposals", column)


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("proposals") as batch_op:
        for column in reversed(_ADDED):
            batch_op.drop_column(column.name)
