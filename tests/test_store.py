"""The referral store, on SQLite and on PostgreSQL (``store_url`` runs each test on both):
migrations and the schema check on opening, referrals and outcomes, and several processes and
threads writing at once without losing anything."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import time
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from matcher.settings import normalise_database_url
from matcher.store import (
    OutcomeExists,
    Store,
    StoreError,
    UnknownReferral,
    current,
    head,
    upgrade,
)
from matcher.store.migrate import ADVISORY_LOCK_KEY, alembic_config
from matcher.store.tables import metadata

pytest_plugins = ["store_support"]  # store_url (SQLite and PostgreSQL), postgres_url

PROFILE = {"age": 71, "location": {"postcode": "LS6 3HN"}, "needs": ["loneliness"]}
STORED = {**PROFILE, "location": {"postcode": "LS6 3"}}  # a full postcode is kept as its sector
UPGRADE = 'run "matcher db upgrade"'

# The schema the store made before its migrations were Alembic's (matcher/store.py at PRAGMA
# user_version 1), copied verbatim: such files are in use and must be adopted.
LEGACY_DDL = """
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
"""


@pytest.fixture
def store(store_url):
    with Store(store_url, create=True) as s:
        yield s


def _execute(url: str, *statements: str) -> list:
    """Run SQL on the database at ``url`` outside the store, in one transaction."""
    engine = create_engine(normalise_database_url(url), poolclass=NullPool)
    try:
        with engine.begin() as conn:
            results = [conn.execute(text(s)) for s in statements]
            return [r.all() if r.returns_rows else None for r in results]
    finally:
        engine.dispose()


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def _refused(url: str, **kw) -> str:
    with pytest.raises(StoreError) as caught:
        Store(url, **kw)
    message = str(caught.value)
    assert "\n" not in message
    return message


# --- migrations and the check on opening ------------------------------------------------------


def test_a_new_database_is_refused_until_upgraded(store_url):
    assert current(store_url) is None
    assert UPGRADE in _refused(store_url)
    if store_url.startswith("sqlite"):  # refusing leaves no empty file behind
        assert not Path(make_url(store_url).database).exists()
    assert upgrade(store_url) == head() == current(store_url)
    with Store(store_url) as s:
        assert s.counts() == {"referrals": 0, "with_outcome": 0, "pending": 0}


def test_create_upgrades_by_itself_and_opening_again_keeps_the_data(store_url):
    with Store(store_url, create=True) as first:
        rid = first.add_referral(PROFILE, "act-1")
    assert current(store_url) == head()
    with Store(store_url) as again:
        assert again.get(rid).activity_id == "act-1"
    assert upgrade(store_url) == head()  # nothing left to do, nothing lost
    with Store(store_url, create=True) as third:
        assert third.get(rid).activity_id == "act-1"


def test_an_older_schema_is_refused_naming_the_command(store_url):
    assert upgrade(store_url, revision="0001") == "0001"
    message = _refused(store_url)
    assert UPGRADE in message and "older" in message and "0001" in message
    assert upgrade(store_url) == head()
    with Store(store_url) as s:
        s.add_referral(PROFILE, "act-1")


def test_create_upgrades_an_older_schema(store_url):
    upgrade(store_url, revision="0001")
    with Store(store_url, create=True) as s:
        s.add_referral(PROFILE, "act-1")
    assert current(store_url) == head()


def test_a_newer_schema_is_refused(store_url):
    upgrade(store_url)
    _execute(store_url, "UPDATE alembic_version SET version_num = '9999_from_a_newer_matcher'")
    for create in (False, True):
        message = _refused(store_url, create=create)
        assert "newer than this code" in message and "upgrade the matcher" in message
    with pytest.raises(StoreError, match="newer than this code"):
        upgrade(store_url)
    assert current(store_url) == "9999_from_a_newer_matcher"


def test_a_referrals_table_no_migration_made_is_refused(store_url):
    _execute(store_url, "CREATE TABLE referrals (id TEXT PRIMARY KEY)")
    assert "no matcher migration made" in _refused(store_url)
    with pytest.raises(StoreError, match="no matcher migration made"):
        upgrade(store_url)
    assert current(store_url) is None


def test_the_tables_module_matches_the_migrations(store_url):
    upgrade(store_url)
    engine = create_engine(normalise_database_url(store_url), poolclass=NullPool)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    engine.dispose()


def test_every_migration_downgrades(store_url):
    with Store(store_url, create=True) as s:
        s.add_referral(PROFILE, "act-1")
    engine = create_engine(normalise_database_url(store_url), poolclass=NullPool)
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "base")
    with engine.connect() as conn:
        assert not inspect(conn).has_table("referrals")
    engine.dispose()
    assert current(store_url) is None
    assert upgrade(store_url) == head()


def test_upgrade_from_several_processes_at_once(store_url):
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        assert pool.map(upgrade, [store_url] * 4) == [head()] * 4
    assert _execute(store_url, "SELECT version_num FROM alembic_version") == [[(head(),)]]
    with Store(store_url) as s:
        s.add_referral(PROFILE, "act-1")


def _upgrade_and_report(url: str, done) -> None:
    upgrade(url)
    done.set()


def test_upgrade_waits_for_the_advisory_lock_on_postgresql(postgres_url):
    """Two replicas starting together: the second upgrade waits for the first one's lock."""
    engine = create_engine(postgres_url, poolclass=NullPool)
    ctx = multiprocessing.get_context("spawn")
    done = ctx.Event()
    with engine.connect() as holder:
        holder.execute(text("SELECT pg_advisory_lock(:k)"), {"k": ADVISORY_LOCK_KEY})
        process = ctx.Process(target=_upgrade_and_report, args=(postgres_url, done))
        process.start()
        assert not done.wait(3), "upgrade did not wait for the lock"
        assert current(postgres_url) is None
        holder.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_LOCK_KEY})
        holder.commit()
        assert done.wait(60)
    process.join(30)
    engine.dispose()
    assert process.exitcode == 0 and current(postgres_url) == head()


def test_upgrade_waits_for_the_write_lock_on_sqlite(tmp_path):
    url = sqlite_url(tmp_path / "r.sqlite3")
    ctx = multiprocessing.get_context("spawn")
    done = ctx.Event()
    holder = sqlite3.connect(tmp_path / "r.sqlite3", isolation_level=None)
    holder.execute("PRAGMA journal_mode = WAL")
    holder.execute("BEGIN IMMEDIATE")
    process = ctx.Process(target=_upgrade_and_report, args=(url, done))
    process.start()
    assert not done.wait(3), "upgrade did not wait for the write lock"
    holder.execute("ROLLBACK")
    holder.close()
    assert done.wait(60)
    process.join(30)
    assert process.exitcode == 0 and current(url) == head()


# --- SQLite files -------------------------------------------------------------------------------


def test_sqlite_creates_its_folder_and_uses_wal(tmp_path):
    path = tmp_path / "instance" / "deeper" / "matcher.sqlite3"
    with Store(sqlite_url(path), create=True) as s:
        assert s.path == str(path)
        s.add_referral(PROFILE, "act-1")
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # An older matcher reading user_version refuses this file instead of misreading it.
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    conn.close()


def _legacy_file(path: Path, rows: int = 3) -> list[str]:
    """An SQLite file as today's main (hand-rolled migrations, user_version 1) leaves it."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")  # as the old store set on every connection
    conn.executescript(LEGACY_DDL)
    conn.execute("PRAGMA user_version = 1")
    ids = [f"r-{rows - k:032x}" for k in range(rows)]  # made in the reverse of sorted order
    for k, rid in enumerate(ids):
        conn.execute(
            "INSERT INTO referrals (id, created_at, date, profile, activity_id, shown,"
            " model_version, attended, sessions_attended, outcome_at)"
            " VALUES (?, '2026-01-05T09:00:00+00:00', '2026-01-05', ?, ?, ?, 'm-1', ?, ?, ?)",
            (rid, '{"age":71}', f"act-{k}", '["act-0"]', k % 2 if k else None, k or None,
             "2026-01-06T10:00:00+00:00" if k else None),
        )  # fmt: skip
    conn.close()
    return ids


def test_an_old_main_sqlite_file_is_adopted_with_its_data(tmp_path):
    path = tmp_path / "matcher.sqlite3"
    ids = _legacy_file(path, rows=4)
    url = sqlite_url(path)
    assert current(url) is None
    message = _refused(url)
    assert UPGRADE in message and "earlier matcher" in message
    with Store(url, create=True) as s:  # the built-in default adopts it by itself
        stored = list(s.referrals())
        # Same second: the order stored in, as the old rowid order was.
        assert [r.id for r in stored] == ids
        assert [r.activity_id for r in stored] == ["act-0", "act-1", "act-2", "act-3"]
        assert stored[0].attended is None and stored[0].profile == {"age": 71}
        assert stored[1].attended is True and stored[1].sessions_attended == 1
        assert stored[2].attended is False and stored[2].shown == ["act-0"]
        new = s.add_referral(PROFILE, "act-new", when=datetime(2026, 1, 5, 9, tzinfo=timezone.utc))
        assert [r.id for r in s.referrals()] == [*ids, new]
        assert s.counts() == {"referrals": 5, "with_outcome": 3, "pending": 2}
    assert current(url) == head()
    with Store(url) as again:
        assert again.get(ids[0]).activity_id == "act-0"


def test_an_old_main_sqlite_file_is_adopted_by_upgrade(tmp_path):
    path = tmp_path / "matcher.sqlite3"
    ids = _legacy_file(path)
    assert upgrade(sqlite_url(path)) == head()
    with Store(sqlite_url(path)) as s:
        assert [r.id for r in s.referrals()] == ids


def test_an_old_file_whose_table_differs_is_not_adopted(tmp_path):
    path = tmp_path / "matcher.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(LEGACY_DDL.replace("outcome_at        TEXT", "outcome_at INTEGER"))
    conn.execute("PRAGMA user_version = 1")
    conn.close()
    with pytest.raises(StoreError, match="not adopting"):
        upgrade(sqlite_url(path))
    conn = sqlite3.connect(path)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"referrals"}  # untouched: not stamped, not altered
    conn.close()


@pytest.mark.parametrize(
    "url, expected",
    [
        ("sqlite://relative.db", "three slashes"),
        ("sqlite:///", "SQLite file"),
        ("sqlite:///:memory:", "SQLite file"),
        ("mysql://db/matcher", "unsupported"),
        ("postgresql+psycopg2://db/matcher", "unsupported"),
        ("/var/lib/matcher.sqlite3", "not a URL"),
        ("", "no referral database URL"),
    ],
)
def test_unsupported_database_urls(url, expected):
    for call in (Store, upgrade, current):
        with pytest.raises(StoreError, match=expected):
            call(url)


def test_a_plain_postgresql_url_means_psycopg(postgres_url):
    plain = postgres_url.replace("postgresql+psycopg://", "postgresql://", 1)
    assert upgrade(plain) == head() == current(plain)
    with Store(plain) as s:
        assert s.url.startswith("postgresql+psycopg://") and s.path is None
        s.add_referral(PROFILE, "act-1")


# --- referrals and outcomes -----------------------------------------------------------------


def test_referral_and_outcome_round_trip(store):
    when = datetime(2026, 3, 14, 10, 30, tzinfo=timezone.utc)
    rid = store.add_referral(PROFILE, "act-1", shown=["act-1", "act-2"], model_version="m-1",
                             when=when)  # fmt: skip
    assert rid.startswith("r-")
    ref = store.get(rid)
    assert (ref.date, ref.profile, ref.activity_id) == ("2026-03-14", STORED, "act-1")
    assert ref.created_at == "2026-03-14T10:30:00+00:00"
    assert ref.shown == ["act-1", "act-2"] and ref.model_version == "m-1"
    assert ref.attended is None and ref.outcome_at is None
    with pytest.raises(ValueError):
        ref.to_uptake()
    ref = store.record_outcome(rid, True, 5, actor="key:case-system")
    assert ref.attended is True and ref.sessions_attended == 5 and ref.outcome_at
    assert ref.to_uptake() == {
        "referral_id": rid, "date": "2026-03-14", "profile": STORED, "activity_id": "act-1",
        "attended": True, "sessions_attended": 5, "shown": ["act-1", "act-2"],
    }  # fmt: skip
    assert store.get(rid) == ref
    assert store.counts() == {"referrals": 1, "with_outcome": 1, "pending": 0}
    with pytest.raises(OutcomeExists):
        store.record_outcome(rid, False)
    assert store.get(rid) == ref
    corrected = store.record_outcome(rid, False, actor="user:alice", correction=True)
    assert corrected.attended is False and corrected.sessions_attended is None
    assert corrected.to_uptake()["attended"] is False  # the latest outcome counts
    first, second = corrected.outcomes  # every outcome is kept, with who and when
    assert (first.attended, first.sessions_attended, first.recorded_by, first.correction) == (
        True, 5, "key:case-system", False)  # fmt: skip
    assert (second.attended, second.recorded_by, second.correction) == (False, "user:alice", True)
    assert corrected.outcome_at == second.recorded_at
    assert store.get(rid) == corrected
    assert store.counts() == {"referrals": 1, "with_outcome": 1, "pending": 0}


def test_a_correction_with_nothing_to_correct_is_the_first_outcome(store):
    rid = store.add_referral(PROFILE, "act-1")
    ref = store.record_outcome(rid, True, correction=True)
    assert [o.correction for o in ref.outcomes] == [False]
    with pytest.raises(OutcomeExists):
        store.record_outcome(rid, False)


def test_postcodes_are_kept_at_sector_precision(store):
    cases = {
        "LS6 3HN": "LS6 3", "ls63hn": "LS6 3", " sw1a  1aa ": "SW1A 1",
        "LS6 3": "LS6 3", "LS6": "LS6", "ls6": "ls6",  # partial: left as it is
    }  # fmt: skip
    for given, kept in cases.items():
        rid = store.add_referral({"location": {"postcode": given}, "age": 40}, "act-1")
        assert store.get(rid).profile == {"location": {"postcode": kept}, "age": 40}
    point = {"location": {"lat": 53.8, "lon": -1.55}}
    assert store.get(store.add_referral(point, "act-1")).profile == point


def test_unknown_referrals(store):
    with pytest.raises(UnknownReferral):
        store.get("r-nope")
    with pytest.raises(UnknownReferral):
        store.record_outcome("r-nope", False)
    assert store.counts()["referrals"] == 0


def test_referrals_in_order_and_since_a_date(store):
    days = [datetime(2026, 1, d, tzinfo=timezone.utc) for d in (5, 1, 20)]
    ids = [store.add_referral(PROFILE, f"act-{d.day}", when=d) for d in days]
    assert [r.id for r in store.referrals()] == [ids[1], ids[0], ids[2]]
    assert [r.id for r in store.referrals(since=date(2026, 1, 5))] == [ids[0], ids[2]]


def test_referrals_made_in_the_same_second_keep_the_order_made(store):
    when = datetime(2026, 2, 3, 12, tzinfo=timezone.utc)
    ids = [store.add_referral(PROFILE, f"act-{k}", when=when) for k in range(30)]
    assert [r.id for r in store.referrals()] == ids


def test_ids_are_unique(store):
    assert len({store.add_referral(PROFILE, "a") for _ in range(200)}) == 200


def test_text_is_kept_exactly(store):
    profile = {**PROFILE, "interests": "gardening, café, 合唱 — and 'quotes' \"too\""}
    rid = store.add_referral(profile, "act-é", shown=["act-é"])
    stored = {**profile, "location": {"postcode": "LS6 3"}}
    assert store.get(rid).profile == stored and store.get(rid).shown == ["act-é"]


# --- health checks ------------------------------------------------------------------------------


def _read_only(url: str) -> str:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return f"sqlite:///file:{parsed.database}?mode=ro&uri=true"
    options = parsed.query.get("options", "") + " -cdefault_transaction_read_only=on"
    return parsed.update_query_dict({"options": options.strip()}).render_as_string(False)


def test_ping_and_writable(store, store_url):
    rid = store.add_referral(PROFILE, "act-1")
    assert store.ping() is True
    assert store.writable() is True
    assert store.counts()["referrals"] == 1  # the probe was rolled back
    assert [r.id for r in store.referrals()] == [rid]
    with Store(_read_only(store_url)) as read_only:
        assert read_only.ping() is True
        assert read_only.get(rid).activity_id == "act-1"
        assert read_only.writable() is False


def test_ping_and_writable_report_a_broken_database_instead_of_raising(store, store_url):
    assert store.ping() and store.writable()
    store.close()  # so that no pooled SQLite connection caches the old schema
    cascade = "" if store_url.startswith("sqlite") else " CASCADE"  # outcomes point at it
    _execute(store_url, "DROP TABLE referrals" + cascade)
    assert store.ping() is False
    assert store.writable() is False
    with pytest.raises(StoreError, match="cannot read"):
        store.counts()


# --- concurrent writers -------------------------------------------------------------------------

PER_THREAD = 25
THREADS = 3
PROCESSES = 4
CONTESTED = 5


def _write_many(url: str, tag: str, contested: list[str]) -> list[str]:
    # Each process opens (and, racing the others, upgrades) the store itself, as a worker does.
    store = Store(url, create=True)
    made: list[str] = []
    lock = threading.Lock()

    def work(thread: int) -> None:
        for k in range(PER_THREAD):
            rid = store.add_referral({**PROFILE, "id": f"{tag}-{thread}-{k}"}, f"act-{k}")
            store.record_outcome(rid, k % 2 == 0, (k % 2 == 0) and 1 or 0)
            with lock:
                made.append(rid)
            # Every thread of every process also corrects outcomes for the same few referrals.
            other = contested[k % len(contested)]
            seen = store.record_outcome(other, thread % 2 == 0, thread, correction=True)
            assert (seen.attended, seen.sessions_attended) == (thread % 2 == 0, thread)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store.close()
    return made


def test_several_processes_and_threads_lose_nothing(store_url):
    with Store(store_url, create=True) as store:
        contested = [store.add_referral(PROFILE, "contested") for _ in range(CONTESTED)]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(PROCESSES) as pool:
        results = pool.starmap(
            _write_many, [(store_url, f"p{i}", contested) for i in range(PROCESSES)]
        )
    made = [rid for ids in results for rid in ids]
    total = PROCESSES * THREADS * PER_THREAD
    assert len(made) == len(set(made)) == total
    with Store(store_url) as store:
        stored = [r for r in store.referrals() if r.activity_id != "contested"]
        assert {r.id for r in stored} == set(made)
        assert len(stored) == total  # each acknowledged write stored exactly once
        assert all(r.attended is not None for r in stored)
        assert len({r.profile["id"] for r in stored}) == total
        everything = total + CONTESTED
        assert store.counts() == {"referrals": everything, "with_outcome": everything,
                                  "pending": 0}  # fmt: skip
        for rid in contested:  # whichever write came last, it came whole, and all are kept
            ref = store.get(rid)
            assert ref.sessions_attended in range(THREADS)
            assert ref.attended == (ref.sessions_attended % 2 == 0)
            assert len(ref.outcomes) == PROCESSES * THREADS * PER_THREAD // CONTESTED
            assert [o.correction for o in ref.outcomes] == [False] + [True] * (
                len(ref.outcomes) - 1)  # fmt: skip


@pytest.mark.parametrize("separate_stores", [False, True], ids=["one-store", "two-stores"])
def test_a_first_outcome_recorded_twice_at_once(store, store_url, separate_stores):
    """Workers racing to record the same referral's first outcome: exactly one succeeds, every
    other gets OutcomeExists, and only the winner's outcome is stored."""
    rid = store.add_referral(PROFILE, "act-1")
    writers = 8
    others = [Store(store_url) if separate_stores else store for _ in range(writers)]
    barrier = threading.Barrier(writers)
    seen: dict[int, object] = {}
    refused: list[int] = []

    def record(k: int) -> None:
        barrier.wait()
        try:
            seen[k] = others[k].record_outcome(rid, k % 2 == 0, k, actor=f"user:w{k}")
        except OutcomeExists:
            refused.append(k)

    threads = [threading.Thread(target=record, args=(k,)) for k in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if separate_stores:
        for other in others:
            other.close()
    assert len(seen) == 1 and sorted([*seen, *refused]) == list(range(writers))
    [(k, ref)] = seen.items()
    assert (ref.attended, ref.sessions_attended) == (k % 2 == 0, k)
    final = store.get(rid)
    assert final == ref and len(final.outcomes) == 1
    assert final.outcomes[0].recorded_by == f"user:w{k}"
    assert store.counts() == {"referrals": 1, "with_outcome": 1, "pending": 0}
    recorded = [x for x in store.audit_lines() if x["action"].startswith("outcome.")]
    assert recorded == [{**recorded[0], "actor": f"user:w{k}", "action": "outcome.recorded"}]


def _add_in_child(store: Store, activity_id: str) -> None:
    store.add_referral(PROFILE, activity_id)
    store.record_outcome(store.add_referral(PROFILE, activity_id + "-2"), True)


def test_a_store_used_across_a_fork_reconnects(store):
    """gunicorn opens the store in the master and forks: no worker may use the master's
    pooled connections, and the master's keep working."""
    store.add_referral(PROFILE, "before")
    ctx = multiprocessing.get_context("fork")
    children = [ctx.Process(target=_add_in_child, args=(store, f"child-{k}")) for k in range(3)]
    for child in children:
        child.start()
    for child in children:
        child.join(60)
        assert child.exitcode == 0
    store.add_referral(PROFILE, "after")
    assert store.ping() and store.writable()
    assert sorted(r.activity_id for r in store.referrals()) == [
        "after", "before", "child-0", "child-0-2", "child-1", "child-1-2", "child-2", "child-2-2",
    ]  # fmt: skip


def test_the_forked_child_gets_its_own_connections(postgres_url):
    with Store(postgres_url, create=True) as store:
        with store._engine.connect() as conn:
            parent_backend = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        ctx = multiprocessing.get_context("fork")
        queue = ctx.Queue()
        child = ctx.Process(target=_backend_pid, args=(store, queue))
        child.start()
        child_backend = queue.get(timeout=60)
        child.join(60)
        assert child.exitcode == 0 and child_backend != parent_backend
        with store._engine.connect() as conn:  # the parent's connection was left alone
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() == parent_backend


def _backend_pid(store: Store, queue) -> None:
    with store._engine.connect() as conn:
        queue.put(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_a_slow_writer_makes_others_wait_not_fail(store):
    """A write transaction held open for a while (a long upgrade, a slow disk) delays the
    others; it does not make them fail."""
    with store._writer.connect() as conn, conn.begin():
        conn.execute(text("SELECT 1"))
        if conn.dialect.name == "postgresql":
            conn.execute(text("LOCK TABLE referrals IN EXCLUSIVE MODE"))
        result: list[str] = []
        writer = threading.Thread(target=lambda: result.append(store.add_referral(PROFILE, "x")))
        writer.start()
        time.sleep(1)
        assert not result  # waiting for the lock
    writer.join(30)
    assert len(result) == 1 and store.get(result[0]).activity_id == "x"


# --- revision 0003: outcomes move to their own table, postcodes to sectors -----------------------


def test_the_governance_migration_moves_outcomes_and_trims_postcodes(store_url):
    upgrade(store_url, revision="0002")
    rows = [  # id, profile, attended, sessions, outcome_at
        ("r-" + "1" * 32, '{"age":71,"location":{"postcode":"LS6 3HN"}}', 1, 4,
         "2026-01-06T10:00:00+00:00"),
        ("r-" + "2" * 32, '{"location":{"postcode":"ls6"},"interests":["café"]}', 0, None, None),
        ("r-" + "3" * 32, '{"location":{"lat":53.8,"lon":-1.55}}', None, None, None),
        ("r-" + "4" * 32, '{"location":{"postcode":"sw1a1aa"},"needs":["money"]}', None, None,
         None),
    ]  # fmt: skip
    seq = "" if store_url.startswith("postgresql") else ", seq"
    insert_row = text(
        "INSERT INTO referrals (id, created_at, date, profile, activity_id, attended,"
        f" sessions_attended, outcome_at{seq}) VALUES (:id, '2026-01-05T09:00:00+00:00',"
        f" '2026-01-05', :profile, :act, :a, :n, :at{seq.replace(', ', ', :')})"
    )
    engine = create_engine(normalise_database_url(store_url), poolclass=NullPool)
    with engine.begin() as conn:
        for k, (rid, profile, a, n, at) in enumerate(rows):
            conn.execute(insert_row, {"id": rid, "profile": profile, "act": f"act-{k}", "a": a,
                                      "n": n, "at": at, "seq": k + 1})  # fmt: skip
    engine.dispose()
    assert upgrade(store_url) == head()
    with Store(store_url) as s:
        first, second, third, fourth = (s.get(r[0]) for r in rows)
    assert first.profile == {"age": 71, "location": {"postcode": "LS6 3"}}
    assert second.profile == {"location": {"postcode": "ls6"}, "interests": ["café"]}
    assert third.profile == {"location": {"lat": 53.8, "lon": -1.55}}
    assert fourth.profile == {"location": {"postcode": "SW1A 1"}, "needs": ["money"]}
    assert [(o.attended, o.sessions_attended, o.recorded_at, o.recorded_by, o.correction)
            for o in first.outcomes] == [
        (True, 4, "2026-01-06T10:00:00+00:00", "migration", False)]  # fmt: skip
    # No outcome time before: the referral's own time stands in.
    assert [(o.attended, o.recorded_at) for o in second.outcomes] == [
        (False, "2026-01-05T09:00:00+00:00")]  # fmt: skip
    assert third.outcomes == [] and fourth.outcomes == []
    # The old columns are emptied: the outcomes table is the only place an outcome is.
    assert _execute(
        store_url, "SELECT COUNT(*) FROM referrals WHERE attended IS NOT NULL"
        " OR sessions_attended IS NOT NULL OR outcome_at IS NOT NULL"
    ) == [[(0,)]]  # fmt: skip

    # Downgrading puts the latest outcome back on the referral.
    with Store(store_url) as s:
        s.record_outcome(rows[0][0], False, 0, correction=True)
    engine = create_engine(normalise_database_url(store_url), poolclass=NullPool)
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0002")
    engine.dispose()
    back = _execute(store_url, "SELECT id, attended, sessions_attended FROM referrals ORDER BY id")
    assert [tuple(r) for r in back[0]] == [
        (rows[0][0], 0, 0), (rows[1][0], 0, None), (rows[2][0], None, None),
        (rows[3][0], None, None),
    ]  # fmt: skip
    assert upgrade(store_url) == head()


def test_a_fork_waits_for_a_thread_using_sqlite(tmp_path):
    """The server's purge thread in the gunicorn master may be inside a transaction just as a
    worker is forked: the fork waits for it to end, so the child never inherits SQLite's
    record of a lock it does not hold (and then waits on it for ever)."""
    with Store(sqlite_url(tmp_path / "r.sqlite3"), create=True) as store:
        inside, held = threading.Event(), 1.0

        def long_write() -> None:
            with store._transaction(write=True) as conn:
                conn.execute(text("SELECT 1"))
                inside.set()
                time.sleep(held)
            store.add_referral(PROFILE, "parent-thread")

        thread = threading.Thread(target=long_write)
        thread.start()
        assert inside.wait(10)
        started = time.monotonic()
        child = multiprocessing.get_context("fork").Process(
            target=_add_in_child, args=(store, "child")
        )
        child.start()  # waits here until the thread's transaction is over
        waited = time.monotonic() - started
        child.join(60)
        thread.join(30)
        assert child.exitcode == 0 and waited > held / 2
        assert sorted(r.activity_id for r in store.referrals()) == [
            "child", "child-2", "parent-thread"]  # fmt: skip
