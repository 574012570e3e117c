"""The referral store: versioned schema, referrals and outcomes, and several processes and
threads writing at once without losing anything."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from datetime import date, datetime, timezone

import pytest

from matcher.store import (
    SCHEMA_VERSION,
    Store,
    StoreError,
    UnknownReferral,
    database_path,
    default_database_url,
)

PROFILE = {"age": 71, "location": {"postcode": "LS6 3HN"}, "needs": ["loneliness"]}


@pytest.fixture
def store(tmp_path):
    return Store(f"sqlite:///{tmp_path / 'r.sqlite3'}")


def test_a_new_database_gets_the_current_schema_in_wal_mode(store):
    assert store.schema_version == SCHEMA_VERSION
    conn = sqlite3.connect(store.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_opening_again_migrates_nothing_and_keeps_data(store):
    rid = store.add_referral(PROFILE, "act-1")
    again = Store(store.url)
    assert again.get(rid).activity_id == "act-1"
    assert again.schema_version == SCHEMA_VERSION


def test_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / "future.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="schema version"):
        Store(str(path))


def test_referral_and_outcome_round_trip(store):
    when = datetime(2026, 3, 14, 10, 30, tzinfo=timezone.utc)
    rid = store.add_referral(PROFILE, "act-1", shown=["act-1", "act-2"], model_version="m-1",
                             when=when)  # fmt: skip
    assert rid.startswith("r-")
    ref = store.get(rid)
    assert (ref.date, ref.profile, ref.activity_id) == ("2026-03-14", PROFILE, "act-1")
    assert ref.shown == ["act-1", "act-2"] and ref.model_version == "m-1"
    assert ref.attended is None and ref.outcome_at is None
    with pytest.raises(ValueError):
        ref.to_uptake()
    ref = store.record_outcome(rid, True, 5)
    assert ref.attended is True and ref.sessions_attended == 5 and ref.outcome_at
    assert ref.to_uptake() == {
        "referral_id": rid, "date": "2026-03-14", "profile": PROFILE, "activity_id": "act-1",
        "attended": True, "sessions_attended": 5, "shown": ["act-1", "act-2"],
    }  # fmt: skip
    assert store.counts() == {"referrals": 1, "with_outcome": 1, "pending": 0}


def test_unknown_referrals(store):
    with pytest.raises(UnknownReferral):
        store.get("r-nope")
    with pytest.raises(UnknownReferral):
        store.record_outcome("r-nope", False)


def test_referrals_in_order_and_since_a_date(store):
    days = [datetime(2026, 1, d, tzinfo=timezone.utc) for d in (5, 1, 20)]
    ids = [store.add_referral(PROFILE, f"act-{d.day}", when=d) for d in days]
    assert [r.id for r in store.referrals()] == [ids[1], ids[0], ids[2]]
    assert [r.id for r in store.referrals(since=date(2026, 1, 5))] == [ids[0], ids[2]]


def test_ids_are_unique(store):
    assert len({store.add_referral(PROFILE, "a") for _ in range(200)}) == 200


@pytest.mark.parametrize(
    "url, path",
    [
        ("sqlite:////var/lib/matcher.sqlite3", "/var/lib/matcher.sqlite3"),
        ("sqlite:///instance/m.sqlite3", "instance/m.sqlite3"),
        ("/tmp/x.sqlite3", "/tmp/x.sqlite3"),
        ("sqlite:///:memory:", ":memory:"),
    ],
)
def test_database_urls(url, path):
    assert database_path(url) == path


@pytest.mark.parametrize("url", ["postgresql://db/matcher", "sqlite://relative.db", "sqlite:///"])
def test_unsupported_database_urls(url):
    with pytest.raises(StoreError):
        database_path(url)


def test_default_url_from_the_environment(monkeypatch):
    monkeypatch.setenv("MATCHER_DATABASE_URL", "sqlite:////srv/r.sqlite3")
    assert default_database_url() == "sqlite:////srv/r.sqlite3"
    monkeypatch.delenv("MATCHER_DATABASE_URL")
    assert default_database_url().endswith("instance/matcher.sqlite3")


# --- concurrent writers -------------------------------------------------------------------------

PER_THREAD = 25
THREADS = 3
PROCESSES = 4


def _write_many(url: str, tag: str) -> list[str]:
    store = Store(url)  # each process opens (and migrates) the store itself, as a worker does
    made: list[str] = []
    lock = threading.Lock()

    def work(thread: int) -> None:
        for k in range(PER_THREAD):
            rid = store.add_referral({**PROFILE, "id": f"{tag}-{thread}-{k}"}, f"act-{k}")
            store.record_outcome(rid, k % 2 == 0, (k % 2 == 0) and 1 or 0)
            with lock:
                made.append(rid)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return made


def test_several_processes_and_threads_lose_nothing(tmp_path):
    url = f"sqlite:///{tmp_path / 'busy.sqlite3'}"
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(PROCESSES) as pool:
        results = pool.starmap(_write_many, [(url, f"p{i}") for i in range(PROCESSES)])
    made = [rid for ids in results for rid in ids]
    total = PROCESSES * THREADS * PER_THREAD
    assert len(made) == len(set(made)) == total
    store = Store(url)
    stored = list(store.referrals())
    assert {r.id for r in stored} == set(made)
    assert all(r.attended is not None for r in stored)
    assert store.counts() == {"referrals": total, "with_outcome": total, "pending": 0}
    assert len({r.profile["id"] for r in stored}) == total


def test_a_store_used_across_a_fork_reconnects(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'fork.sqlite3'}")
    store.add_referral(PROFILE, "before")
    ctx = multiprocessing.get_context("fork")
    process = ctx.Process(target=store.add_referral, args=(PROFILE, "child"))
    process.start()
    process.join(30)
    assert process.exitcode == 0
    assert sorted(r.activity_id for r in store.referrals()) == ["before", "child"]
