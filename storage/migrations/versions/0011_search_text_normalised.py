"""search text with Thai normalised, re-indexed

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 06:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from bot.domain.normalize import search_form
from storage import search

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 2000
proposals = sa.table(
    "proposals",
    sa.column("id", sa.Integer),
    sa.column("title", sa.String),
    sa.column("problem", sa.Text),
    sa.column("solution", sa.Text),
    sa.column("location_text", sa.String),
    sa.column("search_text", sa.Text),
)


def upgrade() -> None:
    """Apply this revision: fill search_text for every proposal, index it instead."""
    connection = op.get_bind()
    search.drop(connection)
    with op.batch_alter_table("proposals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("search_text", sa.Text(), nullable=True))
    last = 0
    while True:
        rows = connection.execute(
            sa.select(proposals.c.id, proposals.c.title, proposals.c.problem,
                      proposals.c.solution, proposals.c.location_text)
            .where(proposals.c.id > last).order_by(proposals.c.id).limit(BATCH)
        ).all()  # fmt: skip
        if not rows:
            break
        connection.execute(
            sa.update(proposals).where(proposals.c.id == sa.bindparam("pid"))
            .values(search_text=sa.bindparam("text")),
            [{"pid": r.id,
              "text": search_form(r.title, r.problem, r.solution, r.location_text)}
             for r in rows],
        )  # fmt: skip
        last = rows[-1].id
    search.create(connection)


def downgrade() -> None:
    """Revert this revision: index the three texts as typed again."""
    connection = op.get_bind()
    search.drop(connection)
    with op.batch_alter_table("proposals", schema=None) as batch_op:
        batch_op.drop_column("search_text")
    search.create(connection, search.LEGACY_COLUMNS)
