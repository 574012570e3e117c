"""The referrals table, exactly as the store made it before migrations were Alembic's (an SQLite
file with ``PRAGMA user_version = 1``), so such a file can be stamped at this revision.

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "referrals",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("created_at", sa.Text(), nullable=False),
        sa.Column("date", sa.Text(), nullable=False),
        sa.Column("profile", sa.Text(), nullable=False),
        sa.Column("activity_id", sa.Text(), nullable=False),
        sa.Column("shown", sa.Text()),
        sa.Column("model_version", sa.Text()),
        sa.Column("attended", sa.Integer()),
        sa.Column("sessions_attended", sa.Integer()),
        sa.Column("outcome_at", sa.Text()),
    )
    op.create_index("referrals_date", "referrals", ["date"])


def downgrade() -> None:
    op.drop_index("referrals_date", table_name="referrals")
    op.drop_table("referrals")
