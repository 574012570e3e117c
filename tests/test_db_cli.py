"""``matcher db`` and a service facing a database whose schema is not its code's: refused at
start with one line naming the command to run, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from service_support import clean_env
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from matcher.store import head

pytest_plugins = ["store_support"]  # postgres_url: a fresh schema in the test PostgreSQL

MATCHER = str(Path(sys.executable).with_name("matcher"))


def _matcher(*args: str, url: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [MATCHER, *args], env=clean_env({"MATCHER_DATABASE_URL": url}), cwd=cwd,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def _one_line(done: subprocess.CompletedProcess) -> str:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


def test_an_empty_database_is_refused_until_upgraded(tmp_path, postgres_url):
    assert "matcher db upgrade" in _matcher("db", "current", url=postgres_url, cwd=tmp_path).stdout
    line = _one_line(_matcher("serve", "--port", "1", url=postgres_url, cwd=tmp_path))
    assert 'run "matcher db upgrade"' in line

    done = _matcher("db", "upgrade", url=postgres_url, cwd=tmp_path)
    assert done.returncode == 0 and head() in done.stdout, done.stderr
    assert _matcher("db", "current", url=postgres_url, cwd=tmp_path).stdout.strip() == head()
    again = _matcher("db", "upgrade", url=postgres_url, cwd=tmp_path)  # idempotent
    assert again.returncode == 0 and head() in again.stdout


def test_a_newer_schema_is_refused(tmp_path, postgres_url):
    assert _matcher("db", "upgrade", url=postgres_url, cwd=tmp_path).returncode == 0
    engine = create_engine(postgres_url, poolclass=NullPool)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    engine.dispose()
    line = _one_line(_matcher("serve", "--port", "1", url=postgres_url, cwd=tmp_path))
    assert "newer" in line and "upgrade the matcher" in line


def test_the_default_sqlite_store_is_created_on_first_use(tmp_path):
    done = subprocess.run(
        [MATCHER, "db", "current"], env=clean_env(), cwd=tmp_path,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    done = subprocess.run(
        [MATCHER, "db", "upgrade"], env=clean_env(), cwd=tmp_path,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0 and head() in done.stdout, done.stderr
    assert (tmp_path / "instance" / "matcher.sqlite3").is_file()
