"""The audit trail (SQLite and PostgreSQL): every write the store makes is audited in the same
transaction, no profile value ever reaches it, the database itself refuses to change or delete
a line, and ``matcher audit`` prints it as JSON Lines."""

from __future__ import annotations

import io
import json
import re
import sys
from datetime import date, datetime, timedelta, timezone

import pytest
from argon2 import PasswordHasher
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from matcher import admin
from matcher.settings import normalise_database_url
from matcher.store import Store, StoreError, UnknownReferral, upgrade
from matcher.store import accounts as acc
from matcher.store import referrals as store_module

pytest_plugins = ["store_support"]  # store_url (SQLite and PostgreSQL), postgres_url

# A profile whose every value is easy to find again.
MARKED = {
    "id": "pseudo-7f3a9q",
    "age": 97,
    "location": {"postcode": "LS6 3HN"},
    "needs": ["bereavement"],
    "interests": ["zebra-finch breeding", "oboe quartets"],
    "gender": "nonbinary-marker",
    "languages": ["cy"],
}
NEEDLES = ["pseudo-7f3a9q", "97", "LS6", "3HN", "LS6 3", "bereavement", "zebra", "oboe",
           "nonbinary-marker", '"cy"']  # fmt: skip


def _searchable(text_: str) -> str:
    """Everything but referral ids (random hex) and times, which may hold any digits."""
    text_ = re.sub(r"r-[0-9a-f]{32}", "r-ID", text_)
    return re.sub(r"\d{4}-\d\d-\d\dT[\d:.]+\+00:00", "TIME", text_)


@pytest.fixture(autouse=True)
def quick_hashes(monkeypatch):
    monkeypatch.setattr(acc, "_HASHER", PasswordHasher(time_cost=1, memory_cost=1024,
                                                       parallelism=1))  # fmt: skip


@pytest.fixture
def store(store_url):
    with Store(store_url, create=True) as s:
        yield s


def _engine(url: str):
    return create_engine(normalise_database_url(url), poolclass=NullPool)


def _raw_audit(url: str) -> list[tuple]:
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text("SELECT * FROM audit ORDER BY id"))]
    finally:
        engine.dispose()


def test_every_write_is_audited_with_who_and_no_profile_value(store, store_url):
    when = datetime(2026, 1, 5, 9, tzinfo=timezone.utc)
    rid = store.add_referral(MARKED, "act-00001", shown=["act-00001"], model_version="m-1",
                             actor="user:alice", when=when)  # fmt: skip
    store.record_outcome(rid, True, 97, actor="key:case-system")
    store.record_outcome(rid, False, 0, actor="user:bob", correction=True)
    other = store.add_referral(MARKED, "act-00002", actor="key:case-system")
    store.audit("user:alice", "referral.read", referral_id=rid)
    store.erase(other, actor="user:alice")
    assert store.purge(date(2026, 1, 6), actor="cli:root") == 1
    lines = list(store.audit_lines())
    assert [(x["actor"], x["action"], x["referral_id"], x["outcome"]) for x in lines] == [
        ("user:alice", "referral.created", rid, "ok"),
        ("key:case-system", "outcome.recorded", rid, "ok"),
        ("user:bob", "outcome.corrected", rid, "ok"),
        ("key:case-system", "referral.created", other, "ok"),
        ("user:alice", "referral.read", rid, "ok"),
        ("user:alice", "referral.erased", other, "ok"),
        ("cli:root", "referrals.purged", None, "ok"),
    ]  # fmt: skip
    for x in lines:
        assert set(x) == {"at", "actor", "action", "referral_id", "outcome"}
        assert datetime.fromisoformat(x["at"]).tzinfo is not None
    # Neither what audit_lines yields nor anything in the table holds a profile value.
    everything = _searchable(json.dumps(lines, ensure_ascii=False) + repr(_raw_audit(store_url)))
    for needle in NEEDLES:
        assert needle not in everything, needle


def test_free_text_cannot_reach_the_trail(store, store_url):
    rid = store.add_referral(MARKED, "act-00001")
    # An id from a URL is recorded only if it is shaped like one of the store's.
    store.audit("user:alice", "referral.read", referral_id="LS6 3HN zebra", outcome="not_found")
    store.audit("user:alice", "referral.read", referral_id=rid.upper(), outcome="not_found")
    for bad in [
        dict(actor="alice", action="referral.read"),
        dict(actor="user:LS6 3HN", action="referral.read"),
        dict(actor="user:alice", action="read LS6 3HN"),
        dict(actor="user:alice", action="referral.read", outcome="failed: zebra finch"),
        dict(actor="user:alice", action="user.disabled", subject="zebra finch"),
    ]:
        with pytest.raises(ValueError):
            store.audit(bad.pop("actor"), bad.pop("action"), **bad)
    lines = list(store.audit_lines())
    assert [x["referral_id"] for x in lines] == [rid, None, None]
    everything = _searchable(json.dumps(lines) + repr(_raw_audit(store_url)))
    for needle in NEEDLES:
        assert needle not in everything


def test_a_write_and_its_audit_line_stand_or_fall_together(store, monkeypatch):
    """One transaction: if the audit line cannot be written, neither is the referral."""
    real = store_module.trail.row

    def failing(*args, **kwargs):
        line = real(*args, **kwargs)
        return {**line, "actor": None}  # NOT NULL: the insert fails inside the transaction

    monkeypatch.setattr(store_module.trail, "row", failing)
    with pytest.raises(StoreError):
        store.add_referral(MARKED, "act-00001")
    monkeypatch.undo()
    assert store.counts()["referrals"] == 0
    assert list(store.audit_lines()) == []


def test_the_trail_is_append_only_in_the_database(store, store_url):
    store.add_referral(MARKED, "act-00001", actor="user:alice")
    engine = _engine(store_url)
    for statement in ("UPDATE audit SET actor = 'user:mallory'", "DELETE FROM audit"):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))
    engine.dispose()
    assert [x["actor"] for x in store.audit_lines()] == ["user:alice"]


def test_truncate_is_refused_on_postgresql(postgres_url):
    with Store(postgres_url, create=True) as s:
        s.audit("system", "service.started")
    engine = _engine(postgres_url)
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text("TRUNCATE audit"))
    engine.dispose()
    with Store(postgres_url) as s:
        assert len(list(s.audit_lines())) == 1


def test_erasing_a_referral_keeps_its_audit_lines(store):
    rid = store.add_referral(MARKED, "act-00001", actor="user:alice")
    store.erase(rid, actor="user:bob")
    with pytest.raises(UnknownReferral):
        store.get(rid)
    assert [(x["action"], x["referral_id"]) for x in store.audit_lines()] == [
        ("referral.created", rid), ("referral.erased", rid)]  # fmt: skip


def test_lines_oldest_first_since_a_time_page_by_page(store, monkeypatch):
    monkeypatch.setattr(store_module, "AUDIT_PAGE", 3)
    for k in range(8):
        store.audit("system", f"test.line_{k}")
    lines = list(store.audit_lines())
    assert [x["action"] for x in lines] == [f"test.line_{k}" for k in range(8)]
    assert [x["at"] for x in lines] == sorted(x["at"] for x in lines)
    cut = datetime.fromisoformat(lines[5]["at"])
    assert [x["action"] for x in store.audit_lines(cut)][0] in {f"test.line_{k}" for k in
                                                                range(6)}  # fmt: skip
    assert len(list(store.audit_lines(cut.replace(tzinfo=None)))) >= 3  # naive means UTC
    today = datetime.now(timezone.utc).date()
    assert len(list(store.audit_lines(today))) == 8
    assert list(store.audit_lines(today + timedelta(days=1))) == []


def test_the_audit_command_prints_json_lines(store_url, monkeypatch, capsys):
    upgrade(store_url)
    with Store(store_url) as s:
        rid = s.add_referral(MARKED, "act-00001", actor="key:case-system")
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert admin.main(["audit", "--database", store_url]) == 0
    out = capsys.readouterr().out
    [line] = [json.loads(x) for x in out.splitlines()]
    assert line["referral_id"] == rid and line["action"] == "referral.created"
    today = datetime.now(timezone.utc).date()
    assert admin.main(["audit", "--since", (today + timedelta(days=1)).isoformat(),
                       "--database", store_url]) == 0  # fmt: skip
    assert capsys.readouterr().out == ""
    assert admin.main(["audit", "--since", today.isoformat(), "--database", store_url]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1
