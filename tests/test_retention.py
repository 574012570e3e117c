"""Erasure and retention (SQLite and PostgreSQL): ``Store.erase`` deletes one referral and all
its outcomes, ``Store.purge`` (``matcher purge``) those made before a date; what is deleted is
gone from the database file too, and each is audited without naming what was erased beyond the
id."""

from __future__ import annotations

import io
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from matcher import admin
from matcher.settings import load_settings, normalise_database_url
from matcher.store import Store, UnknownReferral, upgrade

pytest_plugins = ["store_support"]  # store_url (SQLite and PostgreSQL)

PROFILE = {"age": 71, "location": {"postcode": "LS6 3HN"}, "needs": ["loneliness"]}
MARKER = "quetzal-erasure-marker"


@pytest.fixture
def store(store_url):
    with Store(store_url, create=True) as s:
        yield s


def _count(url: str, sql: str) -> int:
    engine = create_engine(normalise_database_url(url), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql)).scalar_one()
    finally:
        engine.dispose()


def _day(d: int) -> datetime:
    return datetime(2026, 1, d, 12, tzinfo=timezone.utc)


def test_erase_deletes_the_referral_and_every_outcome(store, store_url):
    keep = store.add_referral(PROFILE, "act-1")
    rid = store.add_referral({**PROFILE, "interests": [MARKER]}, "act-2")
    store.record_outcome(rid, True, 2)
    store.record_outcome(rid, False, 0, correction=True)
    store.record_outcome(keep, True)
    store.erase(rid, actor="user:alice")
    with pytest.raises(UnknownReferral):
        store.get(rid)
    with pytest.raises(UnknownReferral):
        store.erase(rid, actor="user:alice")
    with pytest.raises(UnknownReferral):
        store.record_outcome(rid, True)
    assert [r.id for r in store.referrals()] == [keep]
    assert _count(store_url, f"SELECT COUNT(*) FROM outcomes WHERE referral_id = '{rid}'") == 0
    assert _count(store_url, "SELECT COUNT(*) FROM outcomes") == 1
    assert store.counts() == {"referrals": 1, "with_outcome": 1, "pending": 0}
    erased = [x for x in store.audit_lines() if x["action"] == "referral.erased"]
    assert erased == [{**erased[0], "actor": "user:alice", "referral_id": rid, "outcome": "ok"}]
    assert len(erased) == 1  # the failed second erasure is the caller's to audit


def test_an_erased_referral_leaves_no_copy_in_the_sqlite_files(tmp_path):
    path = tmp_path / "r.sqlite3"
    with Store(f"sqlite:///{path}", create=True) as s:
        rids = [s.add_referral({**PROFILE, "interests": [f"{MARKER} {k}"]}, "act-1")
                for k in range(20)]  # fmt: skip
        s.add_referral(PROFILE, "act-keep")
        for rid in rids:
            s.erase(rid, actor="user:alice")
        files = [p for p in (path, Path(f"{path}-wal")) if p.exists()]
        assert files
        for p in files:
            assert MARKER.encode() not in p.read_bytes(), p.name
        assert [r.activity_id for r in s.referrals()] == ["act-keep"]


def test_purge_deletes_referrals_made_before_a_date(store, store_url):
    old = [store.add_referral(PROFILE, f"old-{d}", when=_day(d)) for d in (1, 2)]
    new = [store.add_referral(PROFILE, f"new-{d}", when=_day(d)) for d in (3, 4)]
    for rid in old + new:
        store.record_outcome(rid, True)
    store.record_outcome(old[0], False, correction=True)
    assert store.purge(date(2026, 1, 3), actor="cli:root") == 2
    assert [r.id for r in store.referrals()] == new
    assert _count(store_url, "SELECT COUNT(*) FROM outcomes") == 2
    assert store.purge(date(2026, 1, 3)) == 0
    purged = [x for x in store.audit_lines() if x["action"] == "referrals.purged"]
    assert [(x["actor"], x["referral_id"]) for x in purged] == [("cli:root", None),
                                                                 ("system", None)]  # fmt: skip
    # Audit lines about the purged referrals stay: they hold no health data.
    created = {x["referral_id"] for x in store.audit_lines() if x["action"] == "referral.created"}
    assert created == set(old + new)


class _Settings:
    """What the purge command reads from the settings."""

    def __init__(self, url: str, retention_days: int | None = None):
        self._url = url
        if retention_days is not None:
            self.retention_days = retention_days

    def store_url(self) -> str:
        return self._url


def _purge(argv: list[str], settings) -> int:
    parser = admin._Parser(prog="matcher")
    admin.add_arguments(parser.add_subparsers(dest="command", required=True))
    return admin.run(parser.parse_args(["purge", *argv]), settings)


def test_the_purge_command_defaults_to_the_retention_period(store, store_url, capsys,
                                                            monkeypatch):  # fmt: skip
    monkeypatch.setattr(admin.getpass, "getuser", lambda: "ops")
    today = datetime.now(timezone.utc)
    ages = {"older": 40, "edge": 30, "newer": 10}
    ids = {name: store.add_referral(PROFILE, name, when=today - timedelta(days=days))
           for name, days in ages.items()}  # fmt: skip
    assert _purge([], _Settings(store_url, retention_days=30)) == 0
    before = (today - timedelta(days=30)).date().isoformat()
    assert capsys.readouterr().out == f"purged 1 referrals made before {before}\n"
    assert sorted(r.activity_id for r in store.referrals()) == ["edge", "newer"]
    # Without the setting: two years.
    assert admin.DEFAULT_RETENTION_DAYS == 730
    assert _purge([], _Settings(store_url)) == 0
    assert capsys.readouterr().out.startswith("purged 0 referrals made before ")
    assert _purge(["--before", today.date().isoformat()], _Settings(store_url)) == 0
    assert capsys.readouterr().out.startswith("purged 2 referrals")
    assert store.counts()["referrals"] == 0
    actors = [x["actor"] for x in store.audit_lines() if x["action"] == "referrals.purged"]
    assert actors == ["cli:ops"] * 3
    del ids


def test_the_purge_command_on_a_real_settings_object(tmp_path, monkeypatch, capsys):
    url = f"sqlite:///{tmp_path / 'r.sqlite3'}"
    upgrade(url)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert _purge(["--before", "2026-01-01"], load_settings(database_url=url)) == 0
    assert capsys.readouterr().out == "purged 0 referrals made before 2026-01-01\n"
