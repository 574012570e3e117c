"""The referral store: which person was referred to which activity, and whether they went, so
the service's own outcomes can train the next model.

One :class:`Store` per process holds one pooled engine; its methods are thread-safe, and several
processes (gunicorn workers, replicas) may write at once. Each write is one short transaction
that commits before the method returns, so a write the caller saw succeed is stored once.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import Connection, Engine, Insert, func, insert, select, text, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import SQLAlchemyError

from ..errors import MatcherError
from .database import (
    WRITE,
    StoreError,
    database_file,
    describe,
    fork_safe,
    make_engine,
    make_folder,
    parse_url,
)
from .migrate import check, upgrade_engine
from .tables import referrals as table

__all__ = ["Referral", "Store", "UnknownReferral"]

FIELDS = (
    "id", "created_at", "date", "profile", "activity_id", "shown", "model_version", "attended",
    "sessions_attended", "outcome_at",
)  # fmt: skip
COLUMNS = [table.c[name] for name in FIELDS]

# SQLite has no sequences; its writers take turns (BEGIN IMMEDIATE), so max + 1 is unique.
NEXT_SEQ = select(func.coalesce(func.max(table.c.seq), 0) + 1).scalar_subquery()


class UnknownReferral(MatcherError, KeyError):
    """A referral id that is not in the store."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown referral"


@dataclass(frozen=True)
class Referral:
    """One stored referral and its outcome, if recorded."""

    id: str
    created_at: str
    date: str
    profile: dict[str, Any]
    activity_id: str
    shown: list[str] | None
    model_version: str | None
    attended: bool | None
    sessions_attended: int | None
    outcome_at: str | None

    def to_uptake(self) -> dict[str, Any]:
        """The contract's uptake record (§4); only for a referral with an outcome."""
        if self.attended is None:
            raise ValueError("a referral without an outcome is not an uptake record")
        out: dict[str, Any] = {
            "referral_id": self.id,
            "date": self.date,
            "profile": self.profile,
            "activity_id": self.activity_id,
            "attended": self.attended,
        }
        if self.sessions_attended is not None:
            out["sessions_attended"] = self.sessions_attended
        if self.shown is not None:
            out["shown"] = self.shown
        return out


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Store:
    """Referrals in an SQLite file or a PostgreSQL database.

    ``url`` is ``sqlite:///PATH`` or ``postgresql+psycopg://USER@HOST:PORT/DB`` (a plain
    ``postgresql://`` means psycopg too). Opening checks that the database's schema is this
    code's newest and raises :class:`StoreError` otherwise, naming what to do. With
    ``create=True`` it instead upgrades the schema itself, creating an SQLite file and its
    folder if need be (for the built-in SQLite default; elsewhere run ``matcher db upgrade``).
    """

    def __init__(self, url: str, *, create: bool = False):
        parsed = parse_url(url)
        self.url = parsed.render_as_string(hide_password=False)
        self._shown_url = parsed.render_as_string(hide_password=True)
        file = database_file(parsed)
        self.path: str | None = None if file is None else str(file)
        if file is not None and create:
            make_folder(file)
        elif file is not None and not file.is_file():
            raise StoreError(
                f'no referral database at {file}; run "matcher db upgrade" to create it'
            )
        engine = make_engine(parsed)
        try:
            if create:
                upgrade_engine(engine)
            else:
                with engine.connect() as conn:
                    check(conn)
        except SQLAlchemyError as exc:
            engine.dispose()
            raise StoreError(f"cannot open the referral database ({describe(exc)})") from exc
        except BaseException:
            engine.dispose()
            raise
        self._engine = fork_safe(engine)
        self._writer = engine.execution_options(**WRITE)

    def __repr__(self) -> str:
        return f"Store({self._shown_url!r})"

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- connections ---------------------------------------------------------------------

    @contextmanager
    def _transaction(self, *, write: bool = False) -> Iterator[Connection]:
        """One transaction, committed on leaving; on SQLite a writing one starts with
        BEGIN IMMEDIATE, so it waits for the write lock before reading anything."""
        engine: Engine = self._writer if write else self._engine
        try:
            with engine.begin() as conn:
                yield conn
        except SQLAlchemyError as exc:
            what = "write to" if write else "read"
            raise StoreError(f"cannot {what} the referral database ({describe(exc)})") from exc

    def close(self) -> None:
        """Close the pooled connections (a later call opens new ones)."""
        self._engine.dispose()

    def ping(self) -> bool:
        """Whether the database answers a query on the referrals table."""
        try:
            with self._transaction() as conn:
                conn.execute(select(table.c.id).limit(1)).all()
        except StoreError:
            return False
        return True

    def writable(self) -> bool:
        """Whether a referral could be stored now: inserts a probe row the way
        :meth:`add_referral` does, in a transaction that is then rolled back."""
        probe = {
            "id": f"r-probe-{uuid.uuid4().hex}",
            "created_at": _now().isoformat(timespec="seconds"),
            "date": _now().date().isoformat(),
            "profile": "{}",
            "activity_id": "probe",
        }
        try:
            with self._writer.connect() as conn:
                transaction = conn.begin()
                try:
                    if conn.dialect.name == "postgresql":  # a probe waits briefly, not forever
                        conn.execute(text("SET LOCAL lock_timeout = '2s'"))
                    conn.execute(_insert(conn, probe))
                finally:
                    transaction.rollback()
        except SQLAlchemyError:
            return False
        return True

    # --- referrals -----------------------------------------------------------------------

    def add_referral(
        self,
        profile: dict[str, Any],
        activity_id: str,
        *,
        shown: list[str] | None = None,
        model_version: str | None = None,
        when: datetime | None = None,
    ) -> str:
        """Record that a person (their contract profile) was referred; returns the new id."""
        when = when or _now()
        referral_id = f"r-{uuid.uuid4().hex}"
        values = {
            "id": referral_id,
            "created_at": when.isoformat(timespec="seconds"),
            "date": when.date().isoformat(),
            "profile": json.dumps(profile, ensure_ascii=False, separators=(",", ":")),
            "activity_id": activity_id,
            "shown": None if shown is None else json.dumps(shown, ensure_ascii=False),
            "model_version": model_version,
        }
        with self._transaction(write=True) as conn:
            conn.execute(_insert(conn, values))
        return referral_id

    def record_outcome(
        self, referral_id: str, attended: bool, sessions_attended: int | None = None
    ) -> Referral:
        """Set (or correct) whether the person went; raises :class:`UnknownReferral`.

        Returns the referral as this call left it. When two calls race, each is one atomic
        update and the later one wins."""
        statement = (
            update(table)
            .where(table.c.id == referral_id)
            .values(
                attended=int(attended),
                sessions_attended=sessions_attended,
                outcome_at=_now().isoformat(timespec="seconds"),
            )
            .returning(*COLUMNS)
        )
        with self._transaction(write=True) as conn:
            row = conn.execute(statement).mappings().first()
        if row is None:
            raise UnknownReferral(f"no referral with id {referral_id!r}")
        return _referral(row)

    def get(self, referral_id: str) -> Referral:
        with self._transaction() as conn:
            row = conn.execute(select(*COLUMNS).where(table.c.id == referral_id)).mappings().first()
        if row is None:
            raise UnknownReferral(f"no referral with id {referral_id!r}")
        return _referral(row)

    def referrals(self, *, since: date | None = None) -> Iterator[Referral]:
        """Every referral in the order made (optionally from a date on)."""
        query = select(*COLUMNS).order_by(table.c.created_at, table.c.seq)
        if since is not None:
            query = query.where(table.c.date >= since.isoformat())
        with self._transaction() as conn:
            rows = conn.execute(query).mappings().all()
        for row in rows:
            yield _referral(row)

    def counts(self) -> dict[str, int]:
        query = select(func.count(), func.count(table.c.attended))
        with self._transaction() as conn:
            total, with_outcome = conn.execute(query).one()
        return {"referrals": total, "with_outcome": with_outcome, "pending": total - with_outcome}


def _insert(conn: Connection, values: dict[str, Any]) -> Insert:
    statement = insert(table).values(**values)
    if conn.dialect.name == "sqlite":
        statement = statement.values(seq=NEXT_SEQ)
    return statement


def _referral(row: RowMapping) -> Referral:
    return Referral(
        id=row["id"],
        created_at=row["created_at"],
        date=row["date"],
        profile=json.loads(row["profile"]),
        activity_id=row["activity_id"],
        shown=None if row["shown"] is None else json.loads(row["shown"]),
        model_version=row["model_version"],
        attended=None if row["attended"] is None else bool(row["attended"]),
        sessions_attended=row["sessions_attended"],
        outcome_at=row["outcome_at"],
    )
