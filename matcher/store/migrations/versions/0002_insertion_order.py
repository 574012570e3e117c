"""A column for the order referrals were stored in.

Referrals are listed by ``created_at`` (to the second), and those made in the same second in
the order they were stored. SQLite's hidden ``rowid`` gave that order before; PostgreSQL has no
such thing, so the order becomes a column on both: an identity on PostgreSQL, and on SQLite the
old ``rowid`` for existing rows (an adopted file keeps its order) and max + 1 for new ones.

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
    if op.get_context().dialect.name == "sqlite":
        # SQLite cannot add a column filled from a sequence: fill it, then make it unique.
        op.add_column(
            "referrals",
            sa.Column("seq", sa.Integer(), nullable=False, server_default=sa.text("0")),
        )
        op.execute("UPDATE referrals SET seq = rowid")
    else:
        op.add_column(
            "referrals",
            sa.Column("seq", sa.BigInteger(), sa.Identity(), nullable=False),
        )
    op.create_index("referrals_seq", "referrals", ["seq"], unique=True)


def downgrade() -> None:
    op.drop_index("referrals_seq", table_name="referrals")
    op.drop_column("referrals", "seq")
