"""The referral store's tables as SQLAlchemy Core, the shape the migrations build (a test
checks that they agree). Migrations never import this module: each keeps its own frozen copy.

What is kept, and why (data minimisation): a referral keeps the profile as matching reads it,
with a full postcode cut to its sector (matching never looks further than the sector); every
outcome recorded for it, with who recorded it and when; accounts and API keys as hashes only;
an append-only audit trail that holds no profile value; and failed sign-ins per client (a keyed
hash the web layer makes), for a throttle shared by every worker and replica.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    text,
)

__all__ = [
    "api_keys", "audit", "demand", "metadata", "outcomes", "referrals", "throttle", "users",
]  # fmt: skip

metadata = MetaData()


def _serial() -> BigInteger:
    # An identity on PostgreSQL; on SQLite an INTEGER PRIMARY KEY (the rowid), which SQLite
    # fills with max + 1 by itself.
    return BigInteger().with_variant(Integer, "sqlite")


referrals = Table(
    "referrals",
    metadata,
    Column("id", Text, primary_key=True),  # "r-" and 32 hex digits
    Column("created_at", Text, nullable=False),  # ISO 8601 UTC, to the second
    Column("date", Text, nullable=False),  # YYYY-MM-DD of created_at
    Column("profile", Text, nullable=False),  # the contract profile as JSON, postcode at sector
    Column("activity_id", Text, nullable=False),
    Column("shown", Text),  # JSON list of the activity ids shown, in order
    Column("model_version", Text),
    # Unused since revision 0003, which moved their values to ``outcomes`` and emptied them:
    # dropping a column on SQLite means rebuilding the table (and, with ``outcomes`` pointing
    # at it, cascading deletes), so they stay, always NULL. Nothing reads or writes them.
    Column("attended", Integer),
    Column("sessions_attended", Integer),
    Column("outcome_at", Text),
    # The order referrals were stored in, the tie-break for referrals made in the same second.
    # PostgreSQL fills it from an identity; SQLite has no sequences, so the insert gives
    # max + 1, which its one-writer-at-a-time transactions make unique.
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), Identity(), nullable=False),
    # The link worker's pseudonymous case reference (1-40 of A-Z a-z 0-9 - _), grouping the
    # referrals of one plan; NULL when none was given.
    Column("case_ref", Text),
    # The actor who made it ("user:alice", "key:x"), so a caseload is a link worker's own;
    # NULL for a referral made before revision 0004 that the audit trail did not name.
    Column("created_by", Text),
    Column("wellbeing", Text),  # baseline ONS4 as a JSON object, NULL when not given
    Index("referrals_date", "date"),
    Index("referrals_seq", "seq", unique=True),
    Index("referrals_case", "case_ref"),
)

# Every outcome ever recorded for a referral, oldest first by id; the latest is the one that
# counts. At most one row per referral is not a correction, so of two first outcomes recorded
# at once exactly one is stored (the store also locks the referral row first).
outcomes = Table(
    "outcomes",
    metadata,
    Column("id", _serial(), Identity(), primary_key=True),
    Column(
        "referral_id",
        Text,
        ForeignKey("referrals.id", name="outcomes_referral", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("attended", Integer, nullable=False),  # 1 or 0
    Column("sessions_attended", Integer),
    Column("recorded_at", Text, nullable=False),  # ISO 8601 UTC, to the second
    Column("recorded_by", Text, nullable=False),  # an actor: "user:alice", "key:x", "migration"
    Column("correction", Integer, nullable=False),  # 1 when it replaced an earlier outcome
    # 1 when the person chose not to go (``attended`` is then 0).
    Column("declined", Integer, nullable=False, server_default=text("0")),
    Column("wellbeing", Text),  # ONS4 at follow-up as a JSON object, NULL when not given
    Index("outcomes_referral", "referral_id", "id"),
    Index(
        "outcomes_one_first",
        "referral_id",
        unique=True,
        sqlite_where=text("correction = 0"),
        postgresql_where=text("correction = 0"),
    ),
)

users = Table(
    "users",
    metadata,
    Column("name", Text, primary_key=True),
    Column("role", Text, nullable=False),  # link_worker, maintainer or admin
    Column("password_hash", Text, nullable=False),  # argon2id, PHC string
    Column("disabled", Integer, nullable=False),  # 1 once disabled; names are never reused
    Column("created_at", Text, nullable=False),
    Column("disabled_at", Text),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("name", Text, primary_key=True),
    Column("key_hash", Text, nullable=False),  # SHA-256 of the key, hex
    Column("scopes", Text, nullable=False),  # space-separated, in SCOPES order
    Column("revoked", Integer, nullable=False),  # 1 once revoked; names are never reused
    Column("created_at", Text, nullable=False),
    Column("last_used_at", Text),  # to the minute or so: not written on every request
    Column("revoked_at", Text),
    Index("api_keys_hash", "key_hash", unique=True),
)

# Append-only: triggers refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL). Only who did
# what, to which referral id, how it ended and when: never a profile value.
audit = Table(
    "audit",
    metadata,
    Column("id", _serial(), Identity(), primary_key=True),
    Column("at", Text, nullable=False),  # ISO 8601 UTC, to the millisecond
    Column("actor", Text, nullable=False),  # "user:alice", "key:case-system", "cli:root", ...
    Column("action", Text, nullable=False),  # "referral.created", "outcome.recorded", ...
    Column("referral_id", Text),  # no foreign key: the line outlives an erased referral
    Column("subject", Text),  # the account an account action was about ("user:bob")
    Column("outcome", Text, nullable=False),  # "ok", "denied", "not_found", ...
    Index("audit_at", "at"),
)

# One row per failed sign-in or key check: the client (a keyed hash made by the web layer,
# nothing else about it) and the time in seconds since the epoch. ``purge`` drops old rows.
throttle = Table(
    "throttle",
    metadata,
    Column("id", _serial(), Identity(), primary_key=True),
    Column("client", Text, nullable=False),
    Column("at", Float, nullable=False),
    Index("throttle_client_at", "client", "at"),
    Index("throttle_at", "at"),
)

# One anonymous line per match request, for the provision report: no profile id, no free text,
# nothing that points back to a person or a referral. ``district`` is a postcode district
# ("LS6"); ``age_band`` one of "<40", "40-64", "65+", "unknown"; ``within_reach`` a JSON object
# of need code -> number of allowed activities serving it within reach ("{}": no need stated).
demand = Table(
    "demand",
    metadata,
    Column("id", _serial(), Identity(), primary_key=True),
    Column("day", Text, nullable=False),  # YYYY-MM-DD, UTC
    Column("district", Text),
    Column("travel", Text),
    Column("age_band", Text, nullable=False),
    Column("within_reach", Text, nullable=False),
    Index("demand_day", "day"),
)
