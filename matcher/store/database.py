"""Connections to the referral database: which URLs are accepted, one pooled engine per store,
SQLite's locking set up for several writing processes, and pools that never cross a fork.

SQLite (``sqlite:///PATH``): WAL journal, a busy timeout, and SQLAlchemy, not the ``sqlite3``
module, emitting ``BEGIN``: ``BEGIN IMMEDIATE`` on a connection taken with :data:`WRITE` (so a
writer waits for the write lock up front instead of failing half way), a deferred ``BEGIN``
otherwise. PostgreSQL (``postgresql+psycopg://``; a plain ``postgresql://`` means the same):
ordinary READ COMMITTED transactions, connections checked with a ping when taken from the pool.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.pool import NullPool, Pool

from ..errors import MatcherError
from ..settings import normalise_database_url

__all__ = [
    "WRITE",
    "StoreError",
    "database_file",
    "describe",
    "fork_safe",
    "make_engine",
    "make_folder",
    "parse_url",
    "sqlite_in_use",
]

BUSY_TIMEOUT_MS = 10_000

# Execution options for a connection that will write: on SQLite its transactions start with
# BEGIN IMMEDIATE. Use as ``engine.execution_options(**WRITE).connect()``.
WRITE = {"matcher_write": True}


class StoreError(MatcherError):
    """The referral database cannot be opened or used, or its schema is not this code's."""


def parse_url(url: str) -> URL:
    """The URL as SQLAlchemy reads it, once it is known to name a backend the store supports."""
    if not isinstance(url, str) or not url.strip():
        raise StoreError("no referral database URL was given")
    try:
        parsed = make_url(normalise_database_url(url.strip()))
    except ArgumentError:
        raise StoreError(
            "the referral database URL is not a URL; expected sqlite:///PATH or "
            "postgresql+psycopg://USER@HOST:PORT/DB"
        ) from None
    backend, driver = parsed.get_backend_name(), parsed.get_driver_name()
    if backend == "sqlite" and driver == "pysqlite":
        if parsed.host:
            raise StoreError("an SQLite URL needs three slashes: sqlite:///path/to/file.sqlite3")
        name = parsed.database or ""
        if name in ("", ":memory:") or parsed.query.get("mode") == "memory":
            raise StoreError("the referral store needs an SQLite file, not an in-memory database")
        return parsed
    if backend == "postgresql" and driver == "psycopg":
        return parsed
    raise StoreError(
        f"unsupported database URL scheme {parsed.drivername!r}: use sqlite:///PATH or "
        "postgresql+psycopg://USER@HOST:PORT/DB"
    )


def describe(exc: BaseException) -> str:
    """A database error in a few words that cannot hold a referral's data: the driver's class,
    and its message only when connecting failed (host unreachable, login refused)."""
    orig = getattr(exc, "orig", None) or exc
    reason = type(orig).__name__
    if isinstance(exc, DBAPIError) and exc.statement is None and str(orig).strip():
        reason += ": " + str(orig).strip().splitlines()[0]
    return reason


def database_file(url: URL) -> Path | None:
    """The SQLite file a URL names (``file:`` URI form included); None for PostgreSQL."""
    if url.get_backend_name() != "sqlite":
        return None
    name = url.database or ""
    if name.startswith("file:"):  # sqlite:///file:PATH?mode=ro&uri=true
        name = name[len("file:") :].split("?", 1)[0]
    return Path(name)


def make_folder(path: Path) -> None:
    """Create the folder an SQLite file goes in."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create {path.parent} ({exc.strerror})") from None


def make_engine(url: URL, *, pooled: bool = True) -> Engine:
    """An engine for the store. ``pooled=False`` opens a connection per use (one-off commands).

    Parameters are hidden from error messages and logs: a referral holds health data.
    """
    options: dict[str, Any] = {"hide_parameters": True}
    if not pooled:
        options["poolclass"] = NullPool
    if url.get_backend_name() == "sqlite":
        # Pooled connections move between threads; each is used by one thread at a time.
        options["connect_args"] = {"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
        engine = create_engine(url, **options)
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_begin)
    else:
        engine = create_engine(url, pool_pre_ping=True, **options)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Stop the sqlite3 module from emitting BEGIN (and COMMIT before DDL) itself: the "begin"
    # event below does it, so every transaction, reads and DDL included, is a real one.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        # Switching a file to WAL needs it to itself, and SQLite does not wait for that on its
        # own; once the file is in WAL (it stays so) this returns at once.
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                cursor.execute("PRAGMA journal_mode = WAL")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        # Deleted rows (an erasure, a purge) are overwritten with zeros, not left in free pages.
        cursor.execute("PRAGMA secure_delete = ON")
    finally:
        cursor.close()


def _sqlite_begin(conn: Any) -> None:
    write = conn.get_execution_options().get("matcher_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


# --- forks ------------------------------------------------------------------------------------

# gunicorn imports the app (and opens the store) in the master, then forks the workers. A
# pooled connection must never be used by two processes, so each child starts with new pools.
_FORK_SAFE: weakref.WeakSet[Engine] = weakref.WeakSet()
# The parent's pools, kept referenced in a child so that garbage collection there never closes
# (and so never touches) a connection the parent is still using.
_INHERITED: list[Pool] = []


class _ForkGuard:
    """No fork while a thread of this process is using an SQLite connection.

    SQLite keeps the locks a process holds on a file in memory shared by all the process's
    connections to it; a child forked while one was held (the server's purge thread in the
    gunicorn master, say, as a worker is forked) inherits that memory but not the locks, and
    its connections then wait on a lock nobody holds. So each use of an SQLite connection is
    counted, and a fork waits (up to a limit) until none is in use and lets none begin."""

    LIMIT_SECONDS = 60.0

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._busy = 0

    @contextmanager
    def using(self) -> Iterator[None]:
        with self._cond:
            self._busy += 1
        try:
            yield
        finally:
            with self._cond:
                self._busy -= 1
                if not self._busy:
                    self._cond.notify_all()

    def before_fork(self) -> None:
        self._cond.acquire()  # held through the fork: no use begins meanwhile
        self._cond.wait_for(lambda: not self._busy, timeout=self.LIMIT_SECONDS)

    def after_fork_in_parent(self) -> None:
        self._cond.release()

    def after_fork_in_child(self) -> None:
        self.__init__()  # the child's copy of the lock is held, by a thread it does not have


_FORK_GUARD = _ForkGuard()


def sqlite_in_use(url: URL) -> AbstractContextManager[None]:
    """A context for using a connection to ``url``: on SQLite it keeps forks out meanwhile."""
    return _FORK_GUARD.using() if url.get_backend_name() == "sqlite" else nullcontext()


def fork_safe(engine: Engine) -> Engine:
    """Give ``engine`` a new, empty pool in any process forked from this one."""
    _FORK_SAFE.add(engine)
    return engine


def _after_fork_in_child() -> None:
    for engine in list(_FORK_SAFE):
        _INHERITED.append(engine.pool)
        engine.dispose(close=False)  # drop the parent's pool without closing its connections


_register: Callable[..., None] | None = getattr(os, "register_at_fork", None)
if _register is not None:  # every POSIX Python; absent on Windows, which cannot fork
    _register(
        before=_FORK_GUARD.before_fork,
        after_in_parent=_FORK_GUARD.after_fork_in_parent,
        after_in_child=_FORK_GUARD.after_fork_in_child,
    )
    _register(after_in_child=_after_fork_in_child)
