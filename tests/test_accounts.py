"""Accounts and API keys in the referral store (SQLite and PostgreSQL), the throttle shared by
every worker, and the ``matcher users`` / ``matcher keys`` commands."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from service_support import clean_env
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from matcher import admin
from matcher.settings import normalise_database_url
from matcher.store import (
    ROLES,
    SCOPES,
    AccountError,
    ApiKey,
    Store,
    User,
    hash_password,
    upgrade,
)
from matcher.store import accounts as acc

pytest_plugins = ["store_support"]  # store_url (SQLite and PostgreSQL), postgres_url

PASSWORD = "correct horse battery"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def quick_hashes(monkeypatch):
    """argon2id with small parameters, so that the tests do not spend 64 MiB and a tenth of a
    second on every hash (one test checks the real ones)."""
    monkeypatch.setattr(acc, "_HASHER", PasswordHasher(time_cost=1, memory_cost=1024,
                                                       parallelism=1))  # fmt: skip
    acc.dummy_hash.cache_clear()
    yield
    acc.dummy_hash.cache_clear()


@pytest.fixture
def store(store_url):
    with Store(store_url, create=True) as s:
        yield s


def _rows(url: str, sql: str) -> list:
    engine = create_engine(normalise_database_url(url), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql)).all()
    finally:
        engine.dispose()


def test_roles_and_scopes():
    assert ROLES == ("link_worker", "maintainer", "admin")
    assert SCOPES == (
        "match", "activities", "referrals:write", "referrals:read", "model", "reports:read"
    )  # fmt: skip


def test_passwords_are_argon2id_with_the_library_defaults(monkeypatch):
    monkeypatch.setattr(acc, "_HASHER", PasswordHasher())
    hashed = hash_password(PASSWORD)
    assert hashed.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert PASSWORD not in hashed and hash_password(PASSWORD) != hashed  # salted
    assert acc.verify_password(hashed, PASSWORD) and not acc.verify_password(hashed, "nope!!!!")


# --- users --------------------------------------------------------------------------------------


def test_users_sign_in_with_their_password_only(store, store_url):
    store.add_user("alice", "link_worker", PASSWORD, actor="cli:root")
    user = store.authenticate_user("alice", PASSWORD)
    assert user == User("alice", "link_worker", False, user.created_at) and user.created_at
    assert store.authenticate_user("alice", PASSWORD + "x") is None
    assert store.authenticate_user("alice", "") is None
    assert store.authenticate_user("bob", PASSWORD) is None
    assert store.user("alice") == user and store.user("bob") is None
    [(stored,)] = _rows(store_url, "SELECT password_hash FROM users")
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_an_unknown_or_disabled_user_costs_a_hash_too(store, monkeypatch):
    """Answering "no such user" as fast as a skipped hash would tell who has an account."""
    store.add_user("alice", "admin", PASSWORD, actor="system")
    checked = []
    real = acc.verify_password
    monkeypatch.setattr(acc, "verify_password",
                        lambda h, p: checked.append(h) or real(h, p))  # fmt: skip
    assert store.authenticate_user("nobody", PASSWORD) is None
    store.disable_user("alice", actor="user:root")
    assert store.authenticate_user("alice", PASSWORD) is None
    assert checked == [acc.dummy_hash(), acc.dummy_hash()]


def test_disabling_a_user(store):
    store.add_user("alice", "maintainer", PASSWORD, actor="system")
    store.add_user("bob", "admin", PASSWORD, actor="system")
    store.disable_user("alice", actor="user:bob")
    store.disable_user("alice", actor="user:bob")  # again: nothing more happens
    assert store.authenticate_user("alice", PASSWORD) is None
    assert [(u.name, u.role, u.disabled) for u in store.users()] == [
        ("alice", "maintainer", True), ("bob", "admin", False)]  # fmt: skip
    assert store.user("alice").disabled is True
    disabled = [x for x in store.audit_lines() if x["action"] == "user.disabled"]
    assert [(x["actor"], x["subject"]) for x in disabled] == [("user:bob", "user:alice")]


def test_bad_account_input_names_the_field_not_the_value(store):
    secret_name = "x" * 70
    cases = [
        (lambda: store.add_user(secret_name, "admin", PASSWORD, actor="system"), "name"),
        (lambda: store.add_user("alice", "root-ish", PASSWORD, actor="system"), "role"),
        (lambda: store.add_user("alice", "admin", "short", actor="system"), "password"),
        (lambda: store.add_user("al ice", "admin", PASSWORD, actor="system"), "name"),
        (lambda: store.create_key("k", ["match", "everything-ish"], actor="system"), "scopes"),
        (lambda: store.create_key("k", [], actor="system"), "scopes"),
        (lambda: store.create_key("k", "match", actor="system"), "scopes"),
        (lambda: store.disable_user("nobody", actor="system"), "name"),
        (lambda: store.revoke_key("nothing", actor="system"), "name"),
    ]
    for call, field in cases:
        with pytest.raises(AccountError) as caught:
            call()
        message = str(caught.value)
        assert message.startswith(f"{field}:"), message
        for value in (secret_name, "root-ish", "short", "al ice", "everything-ish", "nobody",
                      "nothing"):  # fmt: skip
            assert value not in message
    assert store.users() == [] and store.keys() == []


def test_names_are_never_reused(store):
    store.add_user("alice", "admin", PASSWORD, actor="system")
    store.disable_user("alice", actor="system")
    with pytest.raises(AccountError, match="^name: a user with this name exists"):
        store.add_user("alice", "admin", PASSWORD, actor="system")
    store.create_key("case-system", ["match"], actor="system")
    store.revoke_key("case-system", actor="system")
    with pytest.raises(AccountError, match="^name: a key with this name exists"):
        store.create_key("case-system", ["match"], actor="system")


def test_a_hash_made_with_weaker_parameters_is_replaced_on_sign_in(store, store_url, monkeypatch):
    store.add_user("alice", "admin", PASSWORD, actor="system")
    [(weak,)] = _rows(store_url, "SELECT password_hash FROM users")
    monkeypatch.setattr(acc, "_HASHER", PasswordHasher(time_cost=2, memory_cost=2048,
                                                       parallelism=1))  # fmt: skip
    assert store.authenticate_user("alice", PASSWORD) is not None
    [(strong,)] = _rows(store_url, "SELECT password_hash FROM users")
    assert strong != weak and "m=2048,t=2" in strong
    assert store.authenticate_user("alice", PASSWORD) is not None


# --- keys ---------------------------------------------------------------------------------------


def test_a_key_is_shown_once_and_only_its_hash_is_stored(store, store_url):
    key = store.create_key("case-system", ["referrals:write", "match", "match"], actor="cli:root")
    assert key.startswith("mk_") and len(key) == 3 + 43
    found = store.key_for(key)
    assert isinstance(found, ApiKey)
    assert (found.name, found.scopes, found.revoked) == ("case-system", ("match",
            "referrals:write"), False)  # fmt: skip
    assert found.created_at and found.last_used_at
    [(digest, scopes)] = _rows(store_url, "SELECT key_hash, scopes FROM api_keys")
    assert digest == hashlib.sha256(key.encode()).hexdigest() and scopes == "match referrals:write"
    everything = str(_rows(store_url, "SELECT * FROM api_keys")) + str(store.keys())
    assert key not in everything and key[3:] not in everything
    assert store.create_key("other", ["model"], actor="system") != key


def test_unknown_and_revoked_keys_are_refused(store):
    key = store.create_key("k", ["match"], actor="system")
    for token in ("", "mk_", "mk_" + "A" * 43, key + "x", key[3:], "Bearer " + key, None, 7):
        assert store.key_for(token) is None
    store.revoke_key("k", actor="user:alice")
    store.revoke_key("k", actor="user:alice")  # again: nothing more happens
    assert store.key_for(key) is None
    assert [(k.name, k.revoked) for k in store.keys()] == [("k", True)]  # noqa: SIM118
    revoked = [x for x in store.audit_lines() if x["action"] == "key.revoked"]
    assert [(x["actor"], x["subject"]) for x in revoked] == [("user:alice", "key:k")]


def test_a_keys_last_use_is_written_now_and_then_not_every_time(store, store_url, monkeypatch):
    key = store.create_key("k", ["match"], actor="system")
    assert store.keys()[0].last_used_at is None
    first = store.key_for(key).last_used_at
    assert first is not None
    writes = []
    real = store._transaction

    def spy(*, write=False):
        writes.append(write)
        return real(write=write)

    monkeypatch.setattr(store, "_transaction", spy)
    for _ in range(5):
        assert store.key_for(key).last_used_at == first
    assert not any(writes)  # reads only, within TOUCH_SECONDS


def test_has_credentials(store):
    assert store.has_credentials() is False
    store.create_key("k", ["match"], actor="system")
    assert store.has_credentials() is True
    store.revoke_key("k", actor="system")
    assert store.has_credentials() is False
    store.add_user("alice", "admin", PASSWORD, actor="system")
    assert store.has_credentials() is True
    store.disable_user("alice", actor="system")
    assert store.has_credentials() is False


def test_account_changes_are_audited_with_no_secret(store):
    store.add_user("alice", "admin", PASSWORD, actor="cli:root")
    key = store.create_key("k", ["match"], actor="user:alice")
    lines = list(store.audit_lines())
    assert [(x["actor"], x["action"], x["subject"], x["outcome"]) for x in lines] == [
        ("cli:root", "user.added", "user:alice", "ok"),
        ("user:alice", "key.created", "key:k", "ok"),
    ]  # fmt: skip
    assert PASSWORD not in str(lines) and key not in str(lines)


# --- the shared throttle ----------------------------------------------------------------------


def test_failures_are_counted_per_client_across_workers(store, store_url):
    other = Store(store_url)  # another worker, or another replica
    try:
        for _ in range(3):
            store.record_failure("client-a")
        other.record_failure("client-a")
        other.record_failure("client-b")
        assert store.failures("client-a", 60) == other.failures("client-a", 60) == 4
        assert store.failures("client-b", 60) == 1 and store.failures("client-c", 60) == 0
        time.sleep(1.2)
        store.record_failure("client-a")
        assert store.failures("client-a", 1) == 1
        assert store.failures("client-a", 60) == 5
    finally:
        other.close()
    [(columns,)] = [(tuple(r._fields),) for r in _rows(store_url, "SELECT * FROM throttle")[:1]]
    assert columns == ("id", "client", "at")  # nothing else about a client is kept


def test_purge_drops_failures_too_old_to_count(store, store_url):
    store.record_failure("client-a")
    engine = create_engine(normalise_database_url(store_url), poolclass=NullPool)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO throttle (client, at) VALUES ('client-a', :at)"),
                     {"at": time.time() - 2 * 24 * 3600})  # fmt: skip
    engine.dispose()
    assert store.failures("client-a", 3 * 24 * 3600) == 2
    store.purge(date(2000, 1, 1))
    assert store.failures("client-a", 3 * 24 * 3600) == 1


# --- the command line -------------------------------------------------------------------------


def _run(url: str, *argv: str, stdin: str = "", monkeypatch, capsys) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = admin.main([*argv, "--database", url])
    out, err = capsys.readouterr()
    return code, out, err


def test_users_commands(store_url, monkeypatch, capsys):
    upgrade(store_url)  # PostgreSQL is upgraded by whoever deploys; SQLite would make itself
    monkeypatch.setattr(admin.getpass, "getuser", lambda: "root")
    code, out, err = _run(store_url, "users", "add", "alice", "--role", "admin",
                          "--password-stdin", stdin=PASSWORD + "\n", monkeypatch=monkeypatch,
                          capsys=capsys)  # fmt: skip
    assert code == 0 and out == "" and PASSWORD not in err
    assert _run(store_url, "users", "disable", "alice", monkeypatch=monkeypatch,
                capsys=capsys)[0] == 0  # fmt: skip
    code, out, _ = _run(store_url, "users", "list", monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0
    header, row = out.splitlines()
    assert header.split() == ["NAME", "ROLE", "STATE", "CREATED"]
    assert row.split()[:3] == ["alice", "admin", "disabled"]
    with Store(store_url) as s:
        assert [(x["actor"], x["action"]) for x in s.audit_lines()] == [
            ("cli:root", "user.added"), ("cli:root", "user.disabled")]  # fmt: skip


def test_keys_commands(store_url, monkeypatch, capsys):
    upgrade(store_url)
    code, out, err = _run(store_url, "keys", "create", "case-system", "--scopes",
                          "match,referrals:write", monkeypatch=monkeypatch,
                          capsys=capsys)  # fmt: skip
    assert code == 0
    key = out.strip()
    assert out == key + "\n" and key.startswith("mk_")  # the key, and nothing else
    assert key not in err
    with Store(store_url) as s:
        assert s.key_for(key).scopes == ("match", "referrals:write")
    code, out, _ = _run(store_url, "keys", "list", monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0 and key not in out and key[3:13] not in out
    assert out.splitlines()[1].split()[:3] == ["case-system", "match,referrals:write", "active"]
    assert _run(store_url, "keys", "revoke", "case-system", monkeypatch=monkeypatch,
                capsys=capsys)[0] == 0  # fmt: skip
    with Store(store_url) as s:
        assert s.key_for(key) is None


@pytest.mark.parametrize(
    "argv, stdin, expected",
    [
        (["users", "add", "alice", "--role", "admin"], PASSWORD, "--password-stdin is required"),
        (["users", "add", "alice", "--role", "admin", "--password-stdin"], "short", "password:"),
        (["users", "add", "alice", "--role", "root"], "", "--role"),
        (["users", "add", "a b", "--role", "admin", "--password-stdin"], PASSWORD, "name:"),
        (["users", "disable", "nobody"], "", "name: no such user"),
        (["keys", "create", "k", "--scopes", "match,all"], "", "--scopes"),
        (["keys", "revoke", "nothing"], "", "name: no such key"),
        (["audit", "--since", "yesterday"], "", "--since"),
        (["purge", "--before", "2999-01-01"], "", "no later than today"),
        (["users", "remove", "x"], "", "invalid choice"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, monkeypatch, capsys, argv, stdin, expected):
    url = f"sqlite:///{tmp_path / 'r.sqlite3'}"
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    try:
        code = admin.main([*argv, "--database", url])
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and expected in err, err
    assert "Traceback" not in err
    for value in ("nobody", "nothing", "short", "yesterday"):
        assert value not in err


def test_a_fresh_install_creates_the_default_store_for_keys_create(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "matcher.admin", "keys", "create", "case-system", "--scopes",
         "match"], env=clean_env(), cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    key = done.stdout.strip()
    assert done.stdout == key + "\n" and key.startswith("mk_")
    with Store(f"sqlite:///{tmp_path / 'instance' / 'matcher.sqlite3'}") as s:
        assert s.key_for(key).name == "case-system"
        [line] = s.audit_lines()
        assert line["actor"].startswith("cli:") and line["action"] == "key.created"


def test_a_named_postgresql_must_be_upgraded_first(tmp_path, postgres_url):
    def keys_create() -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "matcher.admin", "keys", "create", "k", "--scopes", "match"],
            env=clean_env({"MATCHER_DATABASE_URL": postgres_url}), cwd=tmp_path,
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    done = keys_create()
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1
    assert 'run "matcher db upgrade"' in done.stderr
    upgrade(postgres_url)
    done = keys_create()
    assert done.returncode == 0 and done.stdout.startswith("mk_"), done.stderr
