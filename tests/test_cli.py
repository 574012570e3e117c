"""Tests for the command line (contract §5): suggest, rank, import-oruk; bad input exits 2 with
one line naming the file and line, never a traceback and never the value."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from matcher import cli
from matcher.catalogue import Catalogue

HOME = {"lat": 53.80, "lon": -1.55}

CATALOGUE = {"activities": [
    {"id": "garden", "name": "Meanwood allotment group", "needs": ["loneliness"],
     "tags": ["gardening"], "location": {"lat": 53.81, "lon": -1.55}, "cost": 0,
     "sessions": [{"day": "wed", "start": "10:00", "end": "12:00"}],
     "contact": {"phone": "0113 000 0000"}},
    {"id": "debt", "name": "Debt advice drop-in", "needs": ["money"],
     "location": {"postcode": "LS1 3ES"}, "cost": 2.5,
     "sessions": [{"day": "mon", "start": "09:30"}, {"day": "thu", "start": "09:30"}]},
    {"id": "yoga", "name": "Online chair yoga", "needs": ["physical_activity"], "online": True,
     "sessions": [{"day": "tue", "start": "14:00"}]},
    {"id": "walk", "name": "Health walk", "needs": ["physical_activity", "loneliness"],
     "location": HOME},
]}  # fmt: skip


@pytest.fixture(autouse=True)
def cold_start(monkeypatch, tmp_path):
    """Every test runs with the transparent cold-start scorer and no default catalogue set, so
    that results do not depend on which model happens to be shipped."""
    monkeypatch.setenv("MATCHER_MODEL_DIR", str(tmp_path / "no-model-here"))
    monkeypatch.delenv("MATCHER_CATALOGUE", raising=False)


@pytest.fixture
def catalogue_file(tmp_path) -> Path:
    path = tmp_path / "catalogue.json"
    path.write_text(json.dumps(CATALOGUE), "utf-8")
    return path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.strip()]


def assert_one_line_error(code: int, err: str, *must: str) -> str:
    assert code == 2
    assert "Traceback" not in err
    lines = error_lines(err)
    assert len(lines) == 1, lines
    for text in must:
        assert text in lines[0], (text, lines[0])
    return lines[0]


# --- suggest --------------------------------------------------------------------------------


def test_suggest_prints_a_table(capsys, catalogue_file):
    code, out, _ = run(capsys, "suggest", "--catalogue", catalogue_file, "--lat", "53.80",
                       "--lon", "-1.55", "--needs", "loneliness", "--interests", "allotment",
                       "--travel", "walk")  # fmt: skip
    assert code == 0
    lines = out.splitlines()
    header = lines[0]
    for column in ("#", "Activity", "Distance", "When", "Cost"):
        assert column in header
    assert set(lines[1]) == {"-"}
    rows = [line for line in lines if re.match(r"^\s*\d+\s{2}\S", line)]
    assert rows[0].split()[0] == "1"
    assert "Meanwood allotment group" in rows[0]
    assert re.search(r"\b1\.1 km\b", rows[0])
    assert "Wednesday mornings" in rows[0] and "Free" in rows[0]
    ranks = [int(r.split()[0]) for r in rows]
    assert ranks == list(range(1, len(rows) + 1))
    reasons = [line.strip()[2:] for line in lines if line.startswith("    - ")]
    assert "Helps with loneliness" in reasons
    assert "Matches your interest in gardening" in reasons
    assert "Contact: 0113 000 0000" in out
    assert "online" in out  # the online yoga's distance column
    assert "cold-start" in out  # the footer names the model


def test_suggest_table_shows_cost_and_unknown_distance(capsys, catalogue_file):
    code, out, _ = run(capsys, "suggest", "--catalogue", catalogue_file, "--needs", "money")
    assert code == 0
    row = next(line for line in out.splitlines() if "Debt advice drop-in" in line)
    assert "£2.50" in row
    assert "unknown" in row  # no location given for the person
    assert "Monday and Thursday" in row  # the When column is shortened to fit


def test_suggest_json(capsys, catalogue_file):
    code, out, _ = run(
        capsys,
        "suggest",
        "--catalogue",
        catalogue_file,
        "--json",
        "--id",
        "p-9",
        "--postcode",
        "LS6 3HN",
        "--needs",
        "money,loneliness",
        "--top",
        "2",
    )
    assert code == 0
    data = json.loads(out)
    assert data["id"] == "p-9"
    assert data["model_version"]
    assert len(data["matches"]) == 2
    for match in data["matches"]:
        assert set(match) >= {"activity_id", "name", "score", "distance_km", "reasons"}
        assert 0 <= match["score"] <= 1
        assert 2 <= len(match["reasons"]) <= 4
    assert data["matches"][0]["activity_id"] == "debt"


def test_suggest_flags_cover_the_hard_needs(capsys, catalogue_file):
    code, out, _ = run(
        capsys,
        "suggest",
        "--catalogue",
        catalogue_file,
        "--json",
        "--online",
        "no",
        "--exclude",
        "garden",
        "--accessibility",
        "",
        "--top",
        "10",
    )
    assert code == 0
    ids = [m["activity_id"] for m in json.loads(out)["matches"]]
    assert "yoga" not in ids and "garden" not in ids
    assert sorted(ids) == ["debt", "walk"]


def test_suggest_profile_file_with_flags_overriding(capsys, catalogue_file, tmp_path):
    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps({"id": "file-id", "needs": ["money"], "location": HOME}))
    code, out, _ = run(capsys, "suggest", "--catalogue", catalogue_file, "--json", "--profile",
                       profile, "--needs", "physical_activity", "--online", "only")  # fmt: skip
    assert code == 0
    data = json.loads(out)
    assert data["id"] == "file-id"
    assert [m["activity_id"] for m in data["matches"]] == ["yoga"]


def test_suggest_nothing_matches(capsys, catalogue_file):
    code, out, _ = run(capsys, "suggest", "--catalogue", catalogue_file, "--accessibility", "bsl")
    assert code == 0
    assert "No activity" in out


def test_suggest_on_the_demo_catalogue_by_default(capsys, demo_catalogue_file):
    code, out, _ = run(
        capsys,
        "suggest",
        "--postcode",
        "LS6 3HN",
        "--needs",
        "loneliness,physical_activity",
        "--interests",
        "gardening",
        "--json",
    )
    assert code == 0
    matches = json.loads(out)["matches"]
    assert len(matches) == 10
    demo_ids = {a.id for a in Catalogue.load(demo_catalogue_file)}
    assert {m["activity_id"] for m in matches} <= demo_ids


# --- rank -----------------------------------------------------------------------------------


def test_rank_on_the_contract_examples(capsys, examples_dir):
    profiles = examples_dir / "profiles.jsonl"
    code, out, _ = run(capsys, "rank", "--catalogue", examples_dir / "catalogue.json",
                       "--profiles", profiles, "--top", "2")  # fmt: skip
    assert code == 0
    expected_ids = [json.loads(line).get("id") for line in
                    profiles.read_text("utf-8").splitlines() if line.strip()]  # fmt: skip
    lines = out.splitlines()
    assert len(lines) == len(expected_ids)
    results = [json.loads(line) for line in lines]
    assert [r["id"] for r in results] == expected_ids
    for result in results:
        assert 1 <= len(result["matches"]) <= 2
        for match in result["matches"]:
            assert set(match) >= {"activity_id", "score", "reasons"}


def test_rank_keeps_input_order_and_skips_blank_lines(capsys, catalogue_file, tmp_path):
    profiles = [
        {"id": f"p-{k}", "needs": [need], "location": HOME}
        for k, need in enumerate(["money", "loneliness", "physical_activity", "money"])
    ]
    profiles.append({"needs": ["money"]})  # no id: echoed as null
    path = tmp_path / "profiles.jsonl"
    path.write_text("\n".join([json.dumps(profiles[0]), "", *map(json.dumps, profiles[1:])]))
    code, out, _ = run(capsys, "rank", "--catalogue", catalogue_file, "--profiles", path)
    assert code == 0
    results = [json.loads(line) for line in out.splitlines()]
    assert [r["id"] for r in results] == ["p-0", "p-1", "p-2", "p-3", None]
    assert results[0]["matches"][0]["activity_id"] == "debt"
    assert results[0] == results[3] | {"id": "p-0"}  # the same profile, the same answer
    assert all(len(r["matches"]) == 4 for r in results)  # default --top 10, 4 activities


# --- bad input ------------------------------------------------------------------------------


def test_rank_malformed_json_on_line_2(capsys, catalogue_file, tmp_path):
    path = tmp_path / "profiles.jsonl"
    path.write_text('{"id": "p-1"}\n{"id": "p-2", "age": 9999,\n{"id": "p-3"}\n')
    code, out, err = run(capsys, "rank", "--catalogue", catalogue_file, "--profiles", path)
    line = assert_one_line_error(code, err, str(path), "line 2", "malformed JSON")
    assert "9999" not in line
    assert out == ""  # nothing written for the good line 1


def test_rank_unknown_field(capsys, catalogue_file, tmp_path):
    path = tmp_path / "profiles.jsonl"
    path.write_text('{"id": "p-1"}\n{"id": "p-2", "nhs_number": "943 476 5919"}\n')
    code, out, err = run(capsys, "rank", "--catalogue", catalogue_file, "--profiles", path)
    line = assert_one_line_error(code, err, str(path), "line 2", "nhs_number")
    assert "943" not in line
    assert out == ""


def test_rank_bad_type(capsys, catalogue_file, tmp_path):
    path = tmp_path / "profiles.jsonl"
    path.write_text('{"id": "p-1"}\n\n{"id": "p-3", "age": "seventy"}\n')
    code, out, err = run(capsys, "rank", "--catalogue", catalogue_file, "--profiles", path)
    line = assert_one_line_error(code, err, str(path), "line 3", "profile.age", "whole number")
    assert "seventy" not in line
    assert out == ""


def test_rank_unknown_postcode(capsys, catalogue_file, tmp_path):
    path = tmp_path / "profiles.jsonl"
    path.write_text('{"id": "p-1"}\n{"id": "p-2", "location": {"postcode": "QQ1 1QQ"}}\n')
    code, _, err = run(capsys, "rank", "--catalogue", catalogue_file, "--profiles", path)
    line = assert_one_line_error(code, err, str(path), "line 2", "postcode")
    assert "QQ1" not in line


def test_rank_unknown_postcode_gives_no_partial_output(capsys, catalogue_file, tmp_path):
    # cmd_rank promises: every line is checked before anything is written
    path = tmp_path / "profiles.jsonl"
    path.write_text('{"id": "p-1"}\n{"id": "p-2", "location": {"postcode": "QQ1 1QQ"}}\n')
    code, out, _ = run(capsys, "rank", "--catalogue", catalogue_file, "--profiles", path)
    assert code == 2
    assert out == ""


def test_suggest_bad_age_flag(capsys, catalogue_file):
    code, out, err = run(capsys, "suggest", "--catalogue", catalogue_file, "--age", "abc")
    line = assert_one_line_error(code, err, "--age", "whole number")
    assert "abc" not in line
    assert out == ""


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--age", "12"], "profile.age"),
        (["--online", "sometimes"], "profile.online"),
        (["--needs", "loneliness,chess"], "profile.needs.1"),
        (["--lat", "fifty"], "--lat"),
        (["--lat", "53.8"], "profile.location"),
        (["--max-cost", "-1"], "profile.max_cost"),
    ],
)
def test_suggest_bad_flags(capsys, catalogue_file, flags, words):
    code, _, err = run(capsys, "suggest", "--catalogue", catalogue_file, *flags)
    line = assert_one_line_error(code, err, words)
    assert flags[-1] not in line.replace(words, "")


def test_suggest_unknown_postcode(capsys, catalogue_file):
    code, out, err = run(capsys, "suggest", "--catalogue", catalogue_file, "--postcode", "QQ1 1QQ")
    line = assert_one_line_error(code, err, "postcode", "not a known UK postcode")
    assert "QQ1" not in line
    assert out == ""


def test_suggest_profile_file_with_unknown_field_names_the_file(capsys, catalogue_file, tmp_path):
    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps({"name": "Jane Doe", "needs": ["money"]}))
    code, _, err = run(capsys, "suggest", "--catalogue", catalogue_file, "--profile", profile)
    line = assert_one_line_error(code, err, str(profile), "profile.name")
    assert "Jane" not in line


def test_suggest_profile_file_malformed(capsys, catalogue_file, tmp_path):
    profile = tmp_path / "profile.json"
    profile.write_text('{"needs": ["money"],\n "age": }')
    code, _, err = run(capsys, "suggest", "--catalogue", catalogue_file, "--profile", profile)
    assert_one_line_error(code, err, str(profile), "line 2")


def test_missing_files(capsys, catalogue_file, tmp_path):
    code, _, err = run(capsys, "suggest", "--catalogue", tmp_path / "nope.json")
    assert_one_line_error(code, err, "nope.json")
    code, _, err = run(capsys, "rank", "--catalogue", catalogue_file, "--profiles",
                       tmp_path / "nope.jsonl")  # fmt: skip
    assert_one_line_error(code, err, "nope.jsonl")


def test_malformed_catalogue(capsys, tmp_path):
    path = tmp_path / "catalogue.json"
    path.write_text('{"activities": [\n{"id": "a", "name": "A"},\n}')
    code, _, err = run(capsys, "suggest", "--catalogue", path)
    assert_one_line_error(code, err, str(path), "line")


def test_usage_errors_are_one_line(capsys):
    for argv in (["rank"], ["suggest", "--no-such-flag"], ["schema", "patient"], []):
        with pytest.raises(SystemExit) as info:
            cli.main(argv)
        assert info.value.code == 2
        assert_one_line_error(2, capsys.readouterr().err)


# --- import-oruk ----------------------------------------------------------------------------

FEED = {
    "totalElements": 2,
    "number": 0,
    "content": [
        {
            "id": "svc-1",
            "name": "Tuesday Walking Group",
            "description": "<p>Gentle walks &amp; a cuppa. All welcome.</p>",
            "url": "https://example.org/walks",
            "email": "walks@example.org",
            "status": "active",
            "organization": {"id": "org-1", "name": "Friends of the Park"},
            "cost_options": [{"id": "co1", "option": "Standard", "amount": "0"}],
            "service_at_locations": [{"id": "sal-1", "location": {
                "id": "loc-1", "name": "Park Lodge", "latitude": "53.8", "longitude": "-1.55",
                "physical_addresses": [{"address_1": "1 Park Road", "postal_code": "LS6 3HN"}],
            }}],
            "regular_schedules": [{"id": "rs1", "opens_at": "10:00:00", "closes_at": "12:00:00",
                                   "byday": "TU"}],
        },
        {
            "id": "svc-2",
            "name": "Debt and benefits advice",
            "description": "Free help with debt, benefits and Universal Credit.",
            "url": "",
            "email": "",
            "status": "active",
            "organization": {"id": "org-2", "name": "Advice Centre"},
        },
    ],
}  # fmt: skip


def test_import_oruk_writes_a_catalogue_that_loads(capsys, tmp_path):
    feed = tmp_path / "feed.json"
    feed.write_text(json.dumps(FEED), "utf-8")
    out, report = tmp_path / "catalogue.json", tmp_path / "report.json"
    code, stdout, err = run(capsys, "import-oruk", feed, "--out", out, "--report", report)
    assert code == 0
    assert "wrote 2 activities" in err
    assert "Traceback" not in err
    catalogue = Catalogue.load(out)
    assert catalogue.report.kind == "catalogue"  # now a native catalogue, not a feed
    assert catalogue.ids == ["svc-1", "svc-2"]
    walk = catalogue.get("svc-1")
    assert walk.description == "Gentle walks & a cuppa. All welcome."
    assert [(s.day, s.start) for s in walk.sessions] == [("tue", "10:00")]
    assert walk.cost == 0
    assert catalogue.located[0] and not catalogue.located[1]
    needs, inferred = catalogue.needs_of(1)
    assert inferred and needs[0] == "money"
    data = json.loads(report.read_text("utf-8"))
    assert data["loaded"] == 2 and data["kind"] == "oruk"


def test_import_oruk_refuses_a_native_catalogue(capsys, catalogue_file, tmp_path):
    out = tmp_path / "out.json"
    code, _, err = run(capsys, "import-oruk", catalogue_file, "--out", out)
    assert_one_line_error(code, err, str(catalogue_file), "not an Open Referral UK feed")
    assert not out.exists()


def test_import_oruk_real_bristol_feed(capsys, oruk_dir, tmp_path):
    feed = oruk_dir / "bristol-v1-services.json"
    if not feed.exists():
        pytest.skip(f"{feed} is absent")
    out, report = tmp_path / "bristol.json", tmp_path / "report.json"
    code, _, err = run(capsys, "import-oruk", feed, "--out", out, "--report", report)
    assert code == 0
    assert "Traceback" not in err
    summary = json.loads(report.read_text("utf-8"))
    catalogue = Catalogue.load(out)
    assert len(catalogue) == summary["loaded"] > 500
    assert catalogue.report.skipped == []  # everything written is valid
    direct = Catalogue.load(feed)
    assert catalogue.ids == direct.ids


# --- the entry point ------------------------------------------------------------------------


def test_python_dash_m_matcher(catalogue_file, tmp_path):
    env = {**os.environ, "MATCHER_MODEL_DIR": str(tmp_path / "no-model-here")}
    done = subprocess.run(
        [sys.executable, "-m", "matcher", "suggest", "--catalogue", str(catalogue_file),
         "--postcode", "LS6 3HN", "--needs", "loneliness,physical_activity",
         "--interests", "gardening", "--json"],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    matches = json.loads(done.stdout)["matches"]
    assert matches and matches[0]["activity_id"] in {"garden", "walk"}


# --- the model and the catalogue, said on stderr (issue 9, item 7) ---------------------------


def test_rank_and_suggest_take_model_cold_start(capsys, catalogue_file, tmp_path):
    path = tmp_path / "profiles.jsonl"
    path.write_text(json.dumps({"id": "p", "needs": ["money"], "location": HOME}) + "\n")
    code, out, err = run(capsys, "rank", "--catalogue", catalogue_file, "--profiles", path,
                         "--model", "cold-start")  # fmt: skip
    assert code == 0
    assert "cold-start scorer" not in err and "error" not in err  # chosen: nothing failed
    assert json.loads(out)["matches"][0]["activity_id"] == "debt"
    code, out, err = run(capsys, "suggest", "--catalogue", catalogue_file, "--needs", "money",
                         "--model", "cold-start", "--json")  # fmt: skip
    assert code == 0 and json.loads(out)["model_version"] == "cold-start-1"


def test_a_folder_called_cold_start_is_reached_as_dot_slash(capsys, catalogue_file, tmp_path):
    code, _, err = run(capsys, "suggest", "--catalogue", catalogue_file,
                       "--model", "./cold-start")  # fmt: skip
    assert_one_line_error(code, err, "cold-start")


def test_model_dir_cold_start_from_the_environment(capsys, catalogue_file, monkeypatch):
    monkeypatch.setenv("MATCHER_MODEL_DIR", "cold-start")
    code, out, err = run(capsys, "suggest", "--catalogue", catalogue_file, "--json")
    assert code == 0 and json.loads(out)["model_version"] == "cold-start-1"
    assert "cold-start scorer" not in err


def test_serve_model_cold_start_reaches_the_app_and_healthz(monkeypatch, catalogue_file, tmp_path):
    from matcher.service import create_app, server

    seen = {}
    monkeypatch.setattr(server, "serve", lambda settings, *rest: seen.setdefault("s", settings)
                        and 0)  # fmt: skip
    assert cli.main(["serve", "--model", "cold-start", "--catalogue", str(catalogue_file)]) == 0
    settings = seen["s"]
    assert settings.model_dir == "cold-start"
    app = create_app({"MATCHER_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
                      "MATCHER_RELOAD_ON_SIGHUP": False, "TESTING": True},
                     settings=settings.model_copy(update={
                         "database_url": f"sqlite:///{tmp_path / 'db.sqlite3'}",
                         "reload_on_sighup": False}))  # fmt: skip
    client = app.test_client()
    health = client.get("/healthz").get_json()
    assert health["model_version"] == "cold-start-1"
    assert "note" not in health  # chosen, not a failure to load
    watcher = app.extensions["matcher"].watcher
    watcher.request_reload()
    watcher.current()  # a forced look: nothing on disk to reload, nothing refused
    assert watcher.refused is None and watcher.version() == "cold-start-1"
    assert "chosen by name" in client.get("/v1/model").get_json()["summary"]


def test_rank_reports_the_catalogue_and_skipped_records_on_one_line(capsys, tmp_path):
    records = [*CATALOGUE["activities"], {"id": "bad", "name": "Bad cost", "cost": -1}]
    path = tmp_path / "catalogue.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n", "utf-8")
    profiles = tmp_path / "profiles.jsonl"
    profiles.write_text(json.dumps({"needs": ["money"]}) + "\n")
    code, out, err = run(capsys, "rank", "--catalogue", path, "--profiles", profiles,
                         "--model", "cold-start")  # fmt: skip
    assert code == 0 and len(out.splitlines()) == 1
    (line,) = error_lines(err)
    assert line.startswith("matcher: ") and "5 records, 4 loaded, 1 skipped" in line
    code, _, err = run(capsys, "suggest", "--catalogue", path, "--model", "cold-start")
    assert "1 skipped" in err


def test_suggest_on_the_bundled_catalogue_prints_no_summary(capsys, demo_catalogue_file):
    code, _, err = run(capsys, "suggest", "--needs", "money", "--model", "cold-start")
    assert code == 0 and err == ""
