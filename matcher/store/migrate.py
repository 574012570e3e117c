"""The referral store's schema, moved by Alembic: ``upgrade`` (``matcher db upgrade``),
``current`` (``matcher db current``), and the check a store makes when it opens.

The Alembic configuration is built here; no ``alembic.ini`` is needed. ``upgrade`` runs in one
transaction that first takes a lock, so replicas starting together upgrade once and the others
then find nothing to do: on PostgreSQL a transaction-level advisory lock, on SQLite the write
lock (``BEGIN IMMEDIATE``). Both databases have transactional DDL, so a failed upgrade leaves
the schema as it was.

An SQLite file made before migrations were Alembic's (``PRAGMA user_version = 1`` and the
``referrals`` table, no ``alembic_version``) is adopted by ``upgrade``: stamped at revision 0001
when its table is exactly that revision's, then upgraded like any other.
"""

from __future__ import annotations

import functools
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import SQLAlchemyError

from .database import (
    WRITE,
    StoreError,
    database_file,
    describe,
    make_engine,
    make_folder,
    parse_url,
)

__all__ = ["ADVISORY_LOCK_KEY", "alembic_config", "check", "current", "head", "upgrade"]

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

# pg_advisory_xact_lock's key for "the referral store's schema is being upgraded".
ADVISORY_LOCK_KEY = 0x6D61_7463_6865_7201  # "matcher", 1

UPGRADE = 'run "matcher db upgrade"'

# The store's SQLite files carry a user_version too, so that a matcher from before Alembic
# refuses a file migrated by this one ("schema version 2; this code knows up to 1") instead
# of misreading it.
LEGACY_USER_VERSION = 1
ALEMBIC_USER_VERSION = 2

# PRAGMA table_info of the legacy table: name, declared type, NOT NULL (or primary key), pk.
LEGACY_COLUMNS = [
    ("id", "TEXT", True, True),
    ("created_at", "TEXT", True, False),
    ("date", "TEXT", True, False),
    ("profile", "TEXT", True, False),
    ("activity_id", "TEXT", True, False),
    ("shown", "TEXT", False, False),
    ("model_version", "TEXT", False, False),
    ("attended", "INTEGER", False, False),
    ("sessions_attended", "INTEGER", False, False),
    ("outcome_at", "TEXT", False, False),
]
LEGACY_REVISION = "0001"


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration for the store's migrations, optionally bound to ``connection``
    (``env.py`` runs on that connection, inside its transaction)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@functools.cache
def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head() -> str:
    """The newest schema revision this code knows."""
    revision = _script().get_current_head()
    assert revision is not None, "the store ships no migrations"
    return revision


def upgrade(url: str, *, revision: str = "head") -> str:
    """Bring the database at ``url`` to ``revision`` (the newest by default), creating an SQLite
    file and its folder if need be; returns the revision the database is then at.

    Safe to run from several processes at once. Raises :class:`StoreError` if the database is
    newer than this code, or holds a ``referrals`` table no matcher migration made.
    """
    parsed = parse_url(url)
    path = database_file(parsed)
    if path is not None:
        make_folder(path)
    engine = make_engine(parsed, pooled=False)
    try:
        return upgrade_engine(engine, revision)
    finally:
        engine.dispose()


def current(url: str) -> str | None:
    """The revision the database at ``url`` is at; None if it has none (no tables yet, no
    file yet, or an SQLite file from before migrations that ``upgrade`` has not adopted)."""
    parsed = parse_url(url)
    path = database_file(parsed)
    if path is not None and not path.is_file():
        return None  # and do not create it
    engine = make_engine(parsed, pooled=False)
    try:
        with engine.connect() as conn:
            return _revision(conn)
    except SQLAlchemyError as exc:
        raise _unavailable(exc, "read") from exc
    finally:
        engine.dispose()


def upgrade_engine(engine: Engine, revision: str = "head") -> str:
    """:func:`upgrade` on an engine the caller owns."""
    try:
        with engine.execution_options(**WRITE).connect() as conn, conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
            state, found = _state(conn)
            if state in ("newer", "foreign"):
                raise StoreError(_message(state, found))
            config = alembic_config(conn)
            if state == "legacy":
                _adopt(conn, config)
            command.upgrade(config, revision)
            if conn.dialect.name == "sqlite":
                version = conn.exec_driver_sql("PRAGMA user_version").scalar_one()
                if version < ALEMBIC_USER_VERSION:
                    conn.exec_driver_sql(f"PRAGMA user_version = {ALEMBIC_USER_VERSION}")
            done = _revision(conn)
    except CommandError as exc:
        raise StoreError(f"cannot upgrade the referral database: {exc}") from exc
    except SQLAlchemyError as exc:
        raise _unavailable(exc, "upgrade") from exc
    assert done is not None
    return done


def check(conn: Connection) -> None:
    """Raise :class:`StoreError` unless the database's schema is this code's newest."""
    state, found = _state(conn)
    if state != "current":
        raise StoreError(_message(state, found))


# --- what the database holds ----------------------------------------------------------------


def _revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def _state(conn: Connection) -> tuple[str, str | None]:
    """``current``, ``older``, ``newer``, ``empty`` (no tables), ``legacy`` (an SQLite file
    from before Alembic) or ``foreign`` (a ``referrals`` table no migration made); and the
    revision found."""
    found = _revision(conn)
    if found == head():
        return "current", found
    if found is None:
        if not inspect(conn).has_table("referrals"):
            return "empty", None
        if conn.dialect.name == "sqlite":
            version = conn.exec_driver_sql("PRAGMA user_version").scalar_one()
            if version == LEGACY_USER_VERSION:
                return "legacy", None
        return "foreign", None
    try:
        known = _script().get_revision(found) is not None
    except CommandError:  # alembic's "Can't locate revision" (a ResolutionError)
        known = False
    return ("older" if known else "newer"), found


def _message(state: str, found: str | None) -> str:
    if state == "empty":
        return f"the referral database has no tables yet; {UPGRADE}"
    if state == "legacy":
        return (
            "the referral database was made by an earlier matcher and is not under migrations "
            f"yet; {UPGRADE}"
        )
    if state == "older":
        return (
            f"the referral database schema is at revision {found}, older than this code's "
            f"{head()}; {UPGRADE}"
        )
    if state == "newer":
        return (
            f"the referral database schema is at revision {found}, newer than this code (which "
            f"knows up to {head()}); upgrade the matcher"
        )
    return (
        "the referral database has a referrals table that no matcher migration made; "
        "refusing to use it"
    )


def _adopt(conn: Connection, config: Config) -> None:
    """Stamp a pre-Alembic SQLite file at 0001, after checking its table is 0001's."""
    rows = conn.exec_driver_sql("PRAGMA table_info(referrals)").all()
    columns = [(r.name, r.type.upper(), bool(r.notnull or r.pk), bool(r.pk)) for r in rows]
    indexes = {
        ix["name"]: (ix["column_names"], bool(ix["unique"]))
        for ix in inspect(conn).get_indexes("referrals")
    }
    if columns != LEGACY_COLUMNS or indexes.get("referrals_date") != (["date"], False):
        raise StoreError(
            "the referral database is marked as schema version 1 but its referrals table is "
            "not that version's; not adopting it"
        )
    command.stamp(config, LEGACY_REVISION)


def _unavailable(exc: SQLAlchemyError, what: str) -> StoreError:
    return StoreError(f"cannot {what} the referral database ({describe(exc)})")
