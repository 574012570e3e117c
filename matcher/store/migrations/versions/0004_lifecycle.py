"""The referral lifecycle (contract v1.1 §7) and the demand record for the provision report.

- ``referrals`` gains ``case_ref`` (the link worker's pseudonymous case reference, indexed: a
  plan and a case view read a case's referrals), ``created_by`` (the actor who made it, so a
  caseload is a link worker's own; filled for existing referrals from the audit trail's
  "referral.created" lines, NULL where the trail has none) and ``wellbeing`` (the baseline
  ONS4 scores, a JSON object, NULL when not given).
- ``outcomes`` gains ``declined`` (1 when the person chose not to go; 0 for every earlier
  outcome) and ``wellbeing`` (ONS4 at follow-up, a JSON object or NULL).
- ``demand``: one anonymous line per match request: the day, the postcode district, the travel
  mode, an age band, and how many activities serving each stated need were within reach. No
  profile id, no free text: nothing in it points back to a person or a referral.

Downgrading drops the demand table and the new columns (and so their data).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _serial() -> sa.types.TypeEngine:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # Plain ADD COLUMN on both databases: a batch (copy-and-move) rebuild of ``referrals`` on
    # SQLite would drop the table that ``outcomes`` cascades from.
    op.add_column("referrals", sa.Column("case_ref", sa.Text()))
    op.add_column("referrals", sa.Column("created_by", sa.Text()))
    op.add_column("referrals", sa.Column("wellbeing", sa.Text()))
    op.create_index("referrals_case", "referrals", ["case_ref"])
    op.add_column(
        "outcomes",
        sa.Column("declined", sa.Integer(), nullable=False, server_default=sa.text("0")),
    )
    op.add_column("outcomes", sa.Column("wellbeing", sa.Text()))
    # Who made each existing referral, as far as the audit trail says (the first
    # "referral.created" line naming it; a referral made before the trail existed keeps NULL).
    op.execute(
        "UPDATE referrals SET created_by = (SELECT a.actor FROM audit a"
        " WHERE a.referral_id = referrals.id AND a.action = 'referral.created'"
        " ORDER BY a.id LIMIT 1) WHERE created_by IS NULL"
    )
    op.create_table(
        "demand",
        sa.Column("id", _serial(), sa.Identity(), primary_key=True),
        sa.Column("day", sa.Text(), nullable=False),
        sa.Column("district", sa.Text()),
        sa.Column("travel", sa.Text()),
        sa.Column("age_band", sa.Text(), nullable=False),
        sa.Column("within_reach", sa.Text(), nullable=False),
    )
    op.create_index("demand_day", "demand", ["day"])


def downgrade() -> None:
    op.drop_index("demand_day", table_name="demand")
    op.drop_table("demand")
    op.drop_column("outcomes", "wellbeing")
    op.drop_column("outcomes", "declined")
    op.drop_index("referrals_case", table_name="referrals")
    op.drop_column("referrals", "wellbeing")
    op.drop_column("referrals", "created_by")
    op.drop_column("referrals", "case_ref")
