"""The referral store: which person was referred to which activity, and whether they went,
kept in SQLite with a versioned schema so the service's own outcomes can train the next model.

Safe for several processes writing at once (gunicorn workers): WAL journal, a busy timeout,
and short ``BEGIN IMMEDIATE`` transactions, one connection per thread and process.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from .errors import MatcherError

__all__ = [
    "SCHEMA_VERSION",
    "Referral",
    "Store",
    "StoreError",
    "UnknownReferral",
    "database_path",
    "default_database_url",
]

BUSY_TIMEOUT_MS = 10_000

# Each entry moves the schema from version i to i + 1; never edit one that has shipped.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE referrals (
        id                TEXT PRIMARY KEY,
        created_at        TEXT NOT NULL,
        date              TEXT NOT NULL,
        profile           TEXT NOT NULL,
        activity_id       TEXT NOT NULL,
        shown             TEXT,
        model_version     TEXT,
        attended          INTEGER,
        sessions_attended INTEGER,
        outcome_at        TEXT
    );
    CREATE INDEX referrals_date ON referrals (date);
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


class StoreError(MatcherError):
    """The referral database cannot be opened, or holds a schema newer than this code."""


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


def default_database_url() -> str:
    """``MATCHER_DATABASE_URL`` if set, else an SQLite file in the project's instance folder."""
    env = os.environ.get("MATCHER_DATABASE_URL")
    if env:
        return env
    instance = Path(__file__).resolve().parent.parent / "instance"
    return f"sqlite:///{instance / 'matcher.sqlite3'}"


def database_path(url: str) -> str:
    """The SQLite file behind ``sqlite:///relative``, ``sqlite:////absolute`` or a plain path."""
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :]
    elif url.startswith("sqlite://"):
        raise StoreError("an SQLite URL needs three slashes: sqlite:///path/to/file.sqlite3")
    elif "://" in url:
        scheme = url.split("://", 1)[0]
        raise StoreError(f"unsupported database scheme {scheme!r}: only sqlite is supported")
    else:
        path = url
    if not path:
        raise StoreError("the database URL names no file")
    return path


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Store:
    """Referrals in one SQLite file. Open once per process; methods are thread-safe."""

    def __init__(self, url: str | None = None):
        self.url = url or default_database_url()
        self.path = database_path(self.url)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._migrate()

    # --- connections ---------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        # One connection per thread, and a new one after a fork: SQLite connections must not
        # cross either.
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            return conn
        try:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            reason = exc.__class__.__name__
            raise StoreError(f"cannot open the referral database ({reason})") from None
        conn.row_factory = sqlite3.Row
        self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def _write(self, sql: str, params: tuple = ()) -> sqlite3.Cursor:
        """One statement in its own short write transaction."""
        conn = self._connect()
        conn.execute("BEGIN IMMEDIATE")
        try:
            cursor = conn.execute(sql, params)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return cursor

    def _migrate(self) -> None:
        conn = self._connect()
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"the referral database has schema version {version}; this code knows "
                    f"up to {SCHEMA_VERSION}"
                )
            for number in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[number].split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number + 1}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @property
    def schema_version(self) -> int:
        return int(self._connect().execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            conn.close()
        self._local.conn = None

    def ping(self) -> bool:
        """Whether the database answers."""
        try:
            self._connect().execute("SELECT 1").fetchone()
        except (sqlite3.Error, StoreError):
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
        self._write(
            "INSERT INTO referrals (id, created_at, date, profile, activity_id, shown,"
            " model_version) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                referral_id,
                when.isoformat(timespec="seconds"),
                when.date().isoformat(),
                json.dumps(profile, ensure_ascii=False, separators=(",", ":")),
                activity_id,
                None if shown is None else json.dumps(shown, ensure_ascii=False),
                model_version,
            ),
        )
        return referral_id

    def record_outcome(
        self, referral_id: str, attended: bool, sessions_attended: int | None = None
    ) -> Referral:
        """Set (or correct) whether the person went; raises :class:`UnknownReferral`."""
        cursor = self._write(
            "UPDATE referrals SET attended = ?, sessions_attended = ?, outcome_at = ? WHERE id = ?",
            (int(attended), sessions_attended, _now().isoformat(timespec="seconds"), referral_id),
        )
        if cursor.rowcount == 0:
            raise UnknownReferral(f"no referral with id {referral_id!r}")
        return self.get(referral_id)

    def get(self, referral_id: str) -> Referral:
        row = (
            self._connect()
            .execute("SELECT * FROM referrals WHERE id = ?", (referral_id,))
            .fetchone()
        )
        if row is None:
            raise UnknownReferral(f"no referral with id {referral_id!r}")
        return _referral(row)

    def referrals(self, *, since: date | None = None) -> Iterator[Referral]:
        """Every referral in the order made (optionally from a date on)."""
        sql, params = "SELECT * FROM referrals", ()
        if since is not None:
            sql, params = sql + " WHERE date >= ?", (since.isoformat(),)
        rows = self._connect().execute(sql + " ORDER BY created_at, rowid", params).fetchall()
        for row in rows:
            yield _referral(row)

    def counts(self) -> dict[str, int]:
        row = self._connect().execute("SELECT COUNT(*), COUNT(attended) FROM referrals").fetchone()
        return {"referrals": row[0], "with_outcome": row[1], "pending": row[0] - row[1]}


def _referral(row: sqlite3.Row) -> Referral:
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
