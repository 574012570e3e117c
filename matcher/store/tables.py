"""The referral store's tables as SQLAlchemy Core, the shape the migrations build (a test
checks that they agree). Migrations never import this module: each keeps its own frozen copy.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Identity, Index, Integer, MetaData, Table, Text

__all__ = ["metadata", "referrals"]

metadata = MetaData()

referrals = Table(
    "referrals",
    metadata,
    Column("id", Text, primary_key=True),  # "r-" and 32 hex digits
    Column("created_at", Text, nullable=False),  # ISO 8601 UTC, to the second
    Column("date", Text, nullable=False),  # YYYY-MM-DD of created_at
    Column("profile", Text, nullable=False),  # the contract profile as JSON
    Column("activity_id", Text, nullable=False),
    Column("shown", Text),  # JSON list of the activity ids shown, in order
    Column("model_version", Text),
    Column("attended", Integer),  # 1, 0, or NULL while no outcome is recorded
    Column("sessions_attended", Integer),
    Column("outcome_at", Text),
    # The order referrals were stored in, the tie-break for referrals made in the same second.
    # PostgreSQL fills it from an identity; SQLite has no sequences, so the insert gives
    # max + 1, which its one-writer-at-a-time transactions make unique.
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), Identity(), nullable=False),
    Index("referrals_date", "date"),
    Index("referrals_seq", "seq", unique=True),
)
