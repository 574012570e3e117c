"""``python -m training.export``: the referral store as uptake JSON Lines (contract §4), and the
loop suggest -> refer -> record outcome -> export -> read for training."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone

import pytest
from api_support import ROOT, make_app

from matcher.contract import parse_uptake
from matcher.store import Store, upgrade
from training.export import export_uptake, main

pytest_plugins = ["conftest_api", "store_support"]  # catalogue; store_url (SQLite, PostgreSQL)

PROFILE = {"age": 71, "location": {"postcode": "LS6 3HN"}, "needs": ["loneliness"]}
STORED = {**PROFILE, "location": {"postcode": "LS6 3"}}  # the store keeps the sector


@pytest.fixture
def store(store_url):
    s = Store(store_url, create=True)
    day = datetime(2026, 2, 3, tzinfo=timezone.utc)
    a = s.add_referral(PROFILE, "act-00001", shown=["act-00001", "act-00002"], when=day)
    b = s.add_referral({**PROFILE, "age": 44}, "act-00002", when=day.replace(day=5))
    s.add_referral(PROFILE, "act-00003", when=day.replace(day=6))  # no outcome yet
    s.add_referral(PROFILE, "act-00004", when=day.replace(day=7))  # no outcome yet
    s.record_outcome(a, True, 6)
    s.record_outcome(b, False, 0)
    yield s
    s.close()


def test_exports_referrals_with_an_outcome(store, tmp_path):
    out = tmp_path / "uptake.jsonl"
    report = export_uptake(store, out)
    assert (report.exported, report.pending, report.invalid) == (2, 2, 0)
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["activity_id"] for x in lines] == ["act-00001", "act-00002"]
    assert lines[0] == {
        "referral_id": lines[0]["referral_id"], "date": "2026-02-03", "profile": STORED,
        "activity_id": "act-00001", "attended": True, "sessions_attended": 6,
        "shown": ["act-00001", "act-00002"],
    }  # fmt: skip
    assert lines[1]["attended"] is False and "shown" not in lines[1]
    for line in lines:
        parse_uptake(line)


def test_the_command_reads_the_environment_and_prints_the_counts(store, tmp_path, monkeypatch,
                                                                  capsys):  # fmt: skip
    monkeypatch.setenv("MATCHER_DATABASE_URL", store.url)
    out = tmp_path / "sub" / "uptake.jsonl"
    assert main(["--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "exported 2 referrals" in printed
    assert "2 referrals with no outcome yet were not exported" in printed
    assert len(out.read_text().splitlines()) == 2


def test_since(store, tmp_path):
    out = tmp_path / "u.jsonl"
    assert main(["--out", str(out), "--database", store.url, "--since", "2026-02-04"]) == 0
    assert [json.loads(x)["activity_id"] for x in out.read_text().splitlines()] == ["act-00002"]


def test_a_bare_path_names_an_sqlite_file(tmp_path):
    Store(f"sqlite:///{tmp_path / 'r.sqlite3'}", create=True).close()
    assert (
        main(["--out", str(tmp_path / "u.jsonl"), "--database", str(tmp_path / "r.sqlite3")]) == 0
    )


def test_bad_arguments_exit_2(tmp_path, capsys, monkeypatch):
    out = str(tmp_path / "u.jsonl")
    assert main(["--out", out, "--database", str(tmp_path / "none.db")]) == 2
    assert "no referral database" in capsys.readouterr().err
    assert not (tmp_path / "none.db").exists()  # an export never creates a store
    assert main(["--out", out, "--database", "mysql://h/db"]) == 2
    assert "unsupported database URL" in capsys.readouterr().err
    assert main(["--out", out, "--database", "postgresql://postgres@127.0.0.1:1/db"]) == 2
    assert "cannot open the referral database" in capsys.readouterr().err
    assert main(["--out", out, "--since", "March"]) == 2
    monkeypatch.setenv("MATCHER_MAX_BODY", "lots")
    assert main(["--out", out]) == 2
    assert "invalid settings: MATCHER_MAX_BODY" in capsys.readouterr().err
    assert not (tmp_path / "u.jsonl").exists()


def test_a_store_at_an_older_schema_is_refused_naming_the_command(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'r.sqlite3'}"
    upgrade(url, revision="0001")
    assert main(["--out", str(tmp_path / "u.jsonl"), "--database", url]) == 2
    assert 'run "matcher db upgrade"' in capsys.readouterr().err


def test_runs_as_a_module(store, tmp_path):
    out = tmp_path / "uptake.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "training.export", "--out", str(out), "--database", store.url],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "2 referrals with no outcome yet" in done.stdout


def test_the_loop_closes(tmp_path, catalogue):
    """Suggest, refer, record outcomes through the API; export; training reads the file."""
    app = make_app(tmp_path, catalogue)
    c = app.test_client()
    profiles = [
        {"age": 30 + k, "location": {"postcode": "LS6 3HN"}, "needs": ["loneliness"]}
        for k in range(6)
    ]
    for k, profile in enumerate(profiles):
        matches = c.post("/v1/match", json={"profile": profile, "limit": 5}).get_json()["matches"]
        shown = [m["activity_id"] for m in matches]
        r = c.post("/v1/referrals", json={"profile": profile, "activity_id": shown[0],
                                          "shown": shown})  # fmt: skip
        if k < 4:
            rid = r.get_json()["referral_id"]
            c.post(f"/v1/referrals/{rid}/outcome", json={"attended": k % 2 == 0})
    out = tmp_path / "uptake.jsonl"
    report = export_uptake(app.extensions["matcher"].store, out)
    assert (report.exported, report.pending) == (4, 2)
    records = [parse_uptake(json.loads(x)) for x in out.read_text().splitlines()]
    assert [r.attended for r in records] == [True, False, True, False]
    assert all(r.shown and r.activity_id == r.shown[0] for r in records)

    uptake = pytest.importorskip("training.uptake")
    data = uptake.load_uptake(out, catalogue, for_training=False, log=None)
    assert len(data.records) == 4


def test_exports_only_what_is_still_stored_with_the_latest_outcome(store, tmp_path):
    by_activity = {r.activity_id: r.id for r in store.referrals()}
    store.record_outcome(by_activity["act-00001"], False, 0, actor="user:alice", correction=True)
    store.record_outcome(by_activity["act-00003"], True, 1)
    store.erase(by_activity["act-00002"], actor="user:alice")
    store.purge(datetime(2026, 2, 2, tzinfo=timezone.utc).date())  # nothing that old
    out = tmp_path / "u.jsonl"
    report = export_uptake(store, out)
    assert (report.exported, report.pending) == (2, 1)
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [(x["activity_id"], x["attended"], x.get("sessions_attended")) for x in lines] == [
        ("act-00001", False, 0), ("act-00003", True, 1)]  # fmt: skip
    assert all(x["profile"]["location"] == {"postcode": "LS6 3"} for x in lines)


def test_an_export_is_audited_with_the_cli_user(store, tmp_path, monkeypatch):
    monkeypatch.setattr("matcher.admin.getpass.getuser", lambda: "analyst")
    before = len(list(store.audit_lines()))
    assert main(["--out", str(tmp_path / "u.jsonl"), "--database", store.url]) == 0
    lines = list(store.audit_lines())
    assert len(lines) == before + 1
    assert {k: lines[-1][k] for k in ("actor", "action", "referral_id", "outcome")} == {
        "actor": "cli:analyst", "action": "referrals.exported", "referral_id": None,
        "outcome": "ok"}  # fmt: skip
    export_uptake(store, tmp_path / "v.jsonl")  # called as a library: the caller's actor
    assert list(store.audit_lines())[-1]["actor"] == "system"
