"""Health-data governance: accounts, API keys (hashes only), an append-only audit trail, every
outcome kept with who recorded it and when, a shared sign-in throttle; postcodes cut to sectors.

- ``outcomes`` takes each referral's outcome (one row per referral that had one, recorded by
  "migration" at its old ``outcome_at``), and the old columns on ``referrals`` are emptied: the
  outcomes table is then the only place an outcome is. (The columns stay, always NULL, because
  dropping one on SQLite rebuilds the table.)
- ``audit`` refuses UPDATE and DELETE through triggers (RAISE(ABORT) on SQLite; a PL/pgSQL
  function on PostgreSQL, which also refuses TRUNCATE).
- Stored profiles keep a full postcode at sector precision ("LS6 3HN" -> "LS6 3"), as new
  referrals now do; a partial postcode is left as it is. The postcode shapes below are a frozen
  copy of ``matcher.geo``'s, so this revision does the same thing whatever geo becomes.

Downgrading puts each referral's latest outcome back on ``referrals`` and drops the new tables;
it cannot give back the postcodes' cut characters.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import json
import re

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_OUTWARD = r"[A-Z]{1,2}[0-9][A-Z0-9]?"
_FULL = re.compile(rf"({_OUTWARD}) ?([0-9][A-Z]{{2}})")

BATCH = 500

APPEND_ONLY = "the audit trail is append-only"


def _serial() -> sa.types.TypeEngine:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    dialect = op.get_context().dialect.name
    op.create_table(
        "outcomes",
        sa.Column("id", _serial(), sa.Identity(), primary_key=True),
        sa.Column(
            "referral_id",
            sa.Text(),
            sa.ForeignKey("referrals.id", name="outcomes_referral", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("attended", sa.Integer(), nullable=False),
        sa.Column("sessions_attended", sa.Integer()),
        sa.Column("recorded_at", sa.Text(), nullable=False),
        sa.Column("recorded_by", sa.Text(), nullable=False),
        sa.Column("correction", sa.Integer(), nullable=False),
    )
    op.create_index("outcomes_referral", "outcomes", ["referral_id", "id"])
    op.create_index(
        "outcomes_one_first",
        "outcomes",
        ["referral_id"],
        unique=True,
        sqlite_where=sa.text("correction = 0"),
        postgresql_where=sa.text("correction = 0"),
    )
    op.create_table(
        "users",
        sa.Column("name", sa.Text(), primary_key=True),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("disabled", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Text(), nullable=False),
        sa.Column("disabled_at", sa.Text()),
    )
    op.create_table(
        "api_keys",
        sa.Column("name", sa.Text(), primary_key=True),
        sa.Column("key_hash", sa.Text(), nullable=False),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("revoked", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Text(), nullable=False),
        sa.Column("last_used_at", sa.Text()),
        sa.Column("revoked_at", sa.Text()),
    )
    op.create_index("api_keys_hash", "api_keys", ["key_hash"], unique=True)
    op.create_table(
        "audit",
        sa.Column("id", _serial(), sa.Identity(), primary_key=True),
        sa.Column("at", sa.Text(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("referral_id", sa.Text()),
        sa.Column("subject", sa.Text()),
        sa.Column("outcome", sa.Text(), nullable=False),
    )
    op.create_index("audit_at", "audit", ["at"])
    if dialect == "sqlite":
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_no_{event.lower()} BEFORE {event} ON audit "
                f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END"
            )
    else:
        op.execute(
            "CREATE FUNCTION matcher_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN RAISE EXCEPTION '{APPEND_ONLY}'; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit "
            "FOR EACH ROW EXECUTE FUNCTION matcher_audit_append_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit "
            "FOR EACH STATEMENT EXECUTE FUNCTION matcher_audit_append_only()"
        )
    op.create_table(
        "throttle",
        sa.Column("id", _serial(), sa.Identity(), primary_key=True),
        sa.Column("client", sa.Text(), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
    )
    op.create_index("throttle_client_at", "throttle", ["client", "at"])
    op.create_index("throttle_at", "throttle", ["at"])

    # The outcomes move, oldest referral first, and leave the referrals table.
    op.execute(
        "INSERT INTO outcomes (referral_id, attended, sessions_attended, recorded_at,"
        " recorded_by, correction)"
        " SELECT id, attended, sessions_attended, COALESCE(outcome_at, created_at),"
        " 'migration', 0 FROM referrals WHERE attended IS NOT NULL ORDER BY seq"
    )
    op.execute(
        "UPDATE referrals SET attended = NULL, sessions_attended = NULL, outcome_at = NULL"
        " WHERE attended IS NOT NULL OR sessions_attended IS NOT NULL"
        " OR outcome_at IS NOT NULL"
    )
    _trim_postcodes()


def _sector(postcode: str) -> str | None:
    """The sector of a full postcode; None for anything else (left as it is)."""
    full = _FULL.fullmatch(" ".join(postcode.upper().split()))
    return None if full is None else f"{full[1]} {full[2][0]}"


def _trim_postcodes() -> None:
    conn = op.get_bind()
    referrals = sa.table(
        "referrals", sa.column("id", sa.Text()), sa.column("profile", sa.Text()),
        sa.column("seq", sa.BigInteger()),
    )  # fmt: skip
    last = None
    while True:
        query = sa.select(referrals.c.seq, referrals.c.id, referrals.c.profile)
        query = query.where(referrals.c.profile.contains("postcode"))
        if last is not None:
            query = query.where(referrals.c.seq > last)
        rows = conn.execute(query.order_by(referrals.c.seq).limit(BATCH)).all()
        if not rows:
            return
        last = rows[-1].seq
        changed = []
        for row in rows:
            try:
                profile = json.loads(row.profile)
            except ValueError:
                continue
            location = profile.get("location") if isinstance(profile, dict) else None
            postcode = location.get("postcode") if isinstance(location, dict) else None
            sector = _sector(postcode) if isinstance(postcode, str) else None
            if sector is None:
                continue
            location["postcode"] = sector
            text = json.dumps(profile, ensure_ascii=False, separators=(",", ":"))
            changed.append({"rid": row.id, "profile": text})
        if changed:
            conn.execute(
                sa.update(referrals)
                .where(referrals.c.id == sa.bindparam("rid"))
                .values(profile=sa.bindparam("profile")),
                changed,
            )


def downgrade() -> None:
    dialect = op.get_context().dialect.name
    # Each referral's latest outcome goes back on its row.
    latest = (
        "(SELECT {col} FROM outcomes o WHERE o.referral_id = referrals.id"
        " ORDER BY o.id DESC LIMIT 1)"
    )
    op.execute(
        "UPDATE referrals SET "
        f"attended = {latest.format(col='attended')}, "
        f"sessions_attended = {latest.format(col='sessions_attended')}, "
        f"outcome_at = {latest.format(col='recorded_at')} "
        "WHERE id IN (SELECT referral_id FROM outcomes)"
    )
    op.drop_index("throttle_at", table_name="throttle")
    op.drop_index("throttle_client_at", table_name="throttle")
    op.drop_table("throttle")
    op.drop_index("audit_at", table_name="audit")
    op.drop_table("audit")  # its triggers go with it
    if dialect != "sqlite":
        op.execute("DROP FUNCTION matcher_audit_append_only()")
    op.drop_index("api_keys_hash", table_name="api_keys")
    op.drop_table("api_keys")
    op.drop_table("users")
    op.drop_index("outcomes_one_first", table_name="outcomes")
    op.drop_index("outcomes_referral", table_name="outcomes")
    op.drop_table("outcomes")
