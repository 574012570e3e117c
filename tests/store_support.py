"""The ``store_url`` fixture: each store test runs twice, on an SQLite file and on a real
PostgreSQL, in a schema of its own that is dropped afterwards.

Loaded with ``pytest_plugins = ["store_support"]``. PostgreSQL comes from
``MATCHER_TEST_DATABASE_URL`` (default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``).
When it cannot be reached the PostgreSQL runs are skipped, except under CI (``CI`` set to
anything but empty, 0 or false), where they fail: CI must test both databases.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from matcher.settings import normalise_database_url

DEFAULT_TEST_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BACKENDS = ["sqlite", "postgresql"]


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def postgres_base_url() -> URL:
    raw = os.environ.get("MATCHER_TEST_DATABASE_URL") or DEFAULT_TEST_DATABASE_URL
    return make_url(normalise_database_url(raw))


def _admin():
    return create_engine(postgres_base_url(), poolclass=NullPool)


def postgres_unreachable() -> str | None:
    """Why the test PostgreSQL cannot be used, or None if it can."""
    url = postgres_base_url()
    engine = create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        return f"PostgreSQL at {url.render_as_string(hide_password=True)}: {reason}"
    finally:
        engine.dispose()
    return None


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A URL whose connections work in a new, empty schema (search_path), dropped on leaving."""
    schema = f"store_test_{uuid.uuid4().hex[:12]}"
    admin = _admin()
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = postgres_base_url().update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


@pytest.fixture(scope="session")
def postgres_available() -> None:
    """Skips (or, under CI, fails) the test when the test PostgreSQL cannot be reached."""
    why = postgres_unreachable()
    if why is not None:
        if in_ci():
            pytest.fail(f"CI must run the store tests on PostgreSQL too; {why}", pytrace=False)
        pytest.skip(why)


@pytest.fixture(params=BACKENDS)
def store_url(request, tmp_path) -> Iterator[str]:
    """A URL for an empty referral database: an SQLite file (not yet created) in tmp_path, or
    a fresh schema in the test PostgreSQL."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path / "referrals.sqlite3")
        return
    request.getfixturevalue("postgres_available")
    with postgres_schema() as url:
        yield url


@pytest.fixture
def postgres_url(postgres_available) -> Iterator[str]:
    """Like ``store_url``, PostgreSQL only (for what only PostgreSQL has)."""
    with postgres_schema() as url:
        yield url
