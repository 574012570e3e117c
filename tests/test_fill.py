"""Tests for the fill beyond a person's usual reach (issue 9, item 4): a travel mode's default
radius is a preference, so a short list is filled with the nearest allowed activities beyond it,
each saying so; a stated max_travel_km and every other hard need stay hard; a short or empty list
says why, in the library, the API, the page and the command line."""

from __future__ import annotations

import json

import pytest
from api_support import make_app, page_post

from matcher import cli, geo
from matcher.catalogue import Catalogue
from matcher.contract import parse_profile
from matcher.features import prepare
from matcher.filters import violations
from matcher.ranking import FILL_REACH, Matcher
from matcher.scoring import ColdStartScorer
from training.evaluate import evaluate_world, load_world
from training.simulate import simulate

HOME = {"lat": 53.80, "lon": -1.55}
KM_PER_DEGREE = geo.EARTH_RADIUS_KM * 3.141592653589793 / 180


def north(km: float) -> dict:
    return {"lat": HOME["lat"] + km / KM_PER_DEGREE, "lon": HOME["lon"]}


def act(id_: str, km: float | None, needs: list[str], **fields) -> dict:
    record = {"id": id_, "name": f"Group {id_}", "needs": needs, **fields}
    if km is not None:
        record["location"] = north(km)
    return record


# A walker's usual reach is 3 km; one group inside it, the rest further out.
RECORDS = [
    act("near", 1, ["loneliness"]),
    act("d4", 4, ["money"]),
    act("d5", 5, ["loneliness"]),
    act("d7", 7, ["money"]),
    act("d10", 10, ["loneliness"]),
    act("d45", 45, ["loneliness"]),  # beyond a walker's fill reach (30 km), within a car's
    act("web", None, ["loneliness"], online=True),
    act("women", 4.5, ["loneliness"], gender="female"),
    act("shut", 2, ["loneliness"], status="inactive"),
    act("old", 4.2, ["loneliness"], min_age=65),
]
WALKER = {"location": HOME, "travel": "walk", "online": "no", "needs": ["loneliness"], "age": 40}


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return Matcher(Catalogue.from_records(RECORDS))


def ids(matches) -> list[str]:
    return [m.activity_id for m in matches]


def audited(matcher: Matcher, profile: dict, matches) -> list[list[str]]:
    """``filters.violations`` for each match, as training's evaluation audits them."""
    person = prepare(parse_profile(profile), matcher.catalogue)
    return [
        violations(person.profile, m.activity, distance_km=m.distance_km, max_km=person.max_km)
        for m in matches
    ]


def test_rural_walker_without_a_maximum_gets_a_full_list_nearest_then_best(matcher):
    found = matcher.suggest(WALKER, 4)
    # Inside the usual 3 km first; then (3, 6] km, best first (d5 serves the need, d4 does
    # not); then (6, 12] km, where d10 (serves the need) beats the nearer d7.
    assert ids(found.matches) == ["near", "d5", "d4", "d10"]
    inside, *fill = found.matches
    assert not inside.beyond_usual and inside.distance_km < 3
    for m in fill:
        assert m.beyond_usual and m.distance_km > 3
        (further,) = [r for r in m.reasons if "further than" in r]
        assert further.startswith(f"{m.distance_km:.1f} km away: further than a usual walk")
    assert found.notes == [
        "3 suggestions lie beyond the usual 3 km for a walk, as only 1 within it meets the "
        "hard needs"
    ]
    assert audited(matcher, WALKER, found.matches) == [[]] * 4


def test_fill_keeps_every_hard_need_and_stops_at_its_reach(matcher):
    found = matcher.suggest(WALKER, 50)
    # Not online ("no"), not women-only (a man's or unstated gender), not inactive, not 65+,
    # and not 45 km away (a walker's fill reaches 30 km).
    assert ids(found.matches) == ["near", "d5", "d4", "d10", "d7"]
    assert audited(matcher, WALKER, found.matches) == [[]] * 5
    assert found.notes[1] == (
        "only 5 activities meet the hard needs (50 asked for): of 8 activities within 30 km, "
        "age rules out 1, gender rules out 1, online rules out 1"
    )


def test_a_stated_maximum_stays_a_hard_limit_and_the_note_says_what_lies_beyond(matcher):
    profile = {**WALKER, "max_travel_km": 3}
    found = matcher.suggest(profile, 4)
    assert ids(found.matches) == ["near"]
    assert not any(m.beyond_usual for m in found.matches)
    # d4, d5, d7, d10 meet every other hard need within 10 km beyond the 3 km stated.
    assert found.notes == [
        "only 1 activity meets the hard needs (4 asked for): max_travel_km 3 (4 more within "
        "10 km beyond it); of 2 activities within 3 km, online rules out 1"
    ]
    empty = matcher.suggest({**WALKER, "max_travel_km": 0.5}, 4)
    assert empty.matches == []
    assert empty.notes[0].startswith(
        "no activity meets the hard needs: max_travel_km 0.5 (5 more within 10 km beyond it)"
    )
    far = matcher.suggest({**WALKER, "max_travel_km": 0.5, "location": north(-30)}, 4)
    assert far.matches == []
    assert "(0 more within 10 km beyond it; the nearest is 31 km away)" in far.notes[0]


def test_a_driver_fills_further_and_each_mode_has_its_words(matcher):
    driver = {**WALKER, "travel": "car"}
    found = matcher.suggest(driver, 6)
    assert set(ids(found.matches)[:5]) == {"near", "d4", "d5", "d7", "d10"}  # within 20 km
    last = found.matches[-1]
    assert last.activity_id == "d45" and last.beyond_usual
    assert any("45.0 km away: further than a usual drive" in r for r in last.reasons)
    assert "beyond the usual 20 km by car" in found.notes[0]
    bus = Matcher(Catalogue.from_records([act("d15", 15, ["loneliness"])]))
    (m,) = bus.recommend({**WALKER, "travel": "public_transport"}, 1)
    assert any("further than a usual bus or train journey" in r for r in m.reasons)
    (m,) = bus.recommend({"location": HOME}, 1)  # no travel mode: a usual 10 km
    assert any(r.startswith("15.0 km away: further than usual") for r in m.reasons)


def test_fill_off_keeps_to_the_usual_reach(matcher):
    found = matcher.suggest(WALKER, 4, fill=False)
    assert ids(found.matches) == ["near"]
    assert found.notes == [
        "only 1 activity meets the hard needs (4 asked for): of 2 activities within 3 km, "
        "online rules out 1"
    ]


def test_no_fill_for_online_only_or_unlocated_people(matcher):
    online = matcher.suggest({**WALKER, "online": "only"}, 4)
    assert ids(online.matches) == ["web"]
    assert not any(m.beyond_usual for m in online.matches)
    # Online only: distance is moot, so the note counts the whole catalogue.
    assert "activities in the catalogue, online rules out 8" in online.notes[0]
    nowhere = matcher.suggest({"needs": ["loneliness"], "age": 40, "online": "no"}, 4)
    assert not any(m.beyond_usual for m in nowhere.matches)
    assert len(nowhere.matches) == 4  # no distance rule at all without a location


def test_a_full_list_has_no_notes_and_fill_is_deterministic(matcher):
    assert matcher.suggest(WALKER, 1).notes == []
    again = [(m.activity_id, m.score, m.reasons) for m in matcher.recommend(WALKER, 4)]
    assert again == [(m.activity_id, m.score, m.reasons) for m in matcher.recommend(WALKER, 4)]
    fresh = Matcher(Catalogue.from_records(list(reversed(RECORDS))))
    assert ids(fresh.recommend(WALKER, 4)) == ids(matcher.recommend(WALKER, 4))


def test_fill_reach_is_ten_usual_radii():
    assert FILL_REACH == 10.0  # the notes and the README say "30 km for a walker"


@pytest.mark.parametrize(
    "world",
    [{"n_activities": 40}, {"n_activities": 80, "kind": "rural"}],
    ids=["sparse", "rural"],
)
def test_a_simulated_world_is_evaluated_with_the_fill_and_no_violation(tmp_path, world):
    simulate(tmp_path, 4, n_referrals=300, n_heldout=80, **world)
    catalogue, profiles, _ = load_world(tmp_path)
    matcher = Matcher(catalogue)
    filled = [p for p in profiles if any(m.beyond_usual for m in matcher.recommend(p, 10))]
    assert filled  # a sparse world: some people's usual reach holds fewer than 10
    result = evaluate_world(tmp_path, ColdStartScorer(), logged=False)
    assert result["violations"] == 0
    assert all(r["violations"] == 0 for r in result["rankers"].values())


# --- the API, the page and the command line -----------------------------------------------------


@pytest.fixture
def client(tmp_path, matcher):
    return make_app(tmp_path, matcher.catalogue).test_client()


def test_api_adds_notes_when_filled_short_or_empty_and_not_when_full(client):
    full = client.post("/v1/match", json={"profile": WALKER, "limit": 1}).get_json()
    assert "notes" not in full and len(full["matches"]) == 1
    filled = client.post("/v1/match", json={"profile": WALKER, "limit": 4}).get_json()
    assert len(filled["matches"]) == 4
    assert filled["notes"][0].startswith("3 suggestions lie beyond the usual 3 km")
    assert any("further than a usual walk" in r for r in filled["matches"][-1]["reasons"])
    stated = {**WALKER, "max_travel_km": 0.5, "location": {"postcode": "LS6 3HN"}}
    empty = client.post("/v1/match", json={"profile": stated, "limit": 4}).get_json()
    assert empty["matches"] == []
    assert empty["notes"][0].startswith("no activity meets the hard needs: max_travel_km 0.5")
    assert "LS6" not in json.dumps(empty["notes"])


def test_the_page_shows_the_note_above_the_results(client):
    form = {"postcode": "LS6 3HN", "travel": "walk", "online": "no", "needs": ["loneliness"],
            "age": "40"}  # fmt: skip
    html = page_post(client, "/", form).get_data(as_text=True)
    note = html.index('class="hint note">Note: ')
    assert note < html.index('class="cards"')
    assert "further than a usual walk" in html
    html = page_post(client, "/", {**form, "max_travel_km": "0.5"}).get_data(as_text=True)
    assert "Note: No activity meets the hard needs: max_travel_km 0.5 (" in html
    assert html.index("Note: No activity") < html.index("No activity in the catalogue")


def test_openapi_describes_the_notes(client):
    schemas = client.get("/openapi.json").get_json()["components"]["schemas"]
    notes = schemas["MatchResponse"]["properties"]["notes"]
    assert {"type": "array", "items": {"type": "string"}} in notes["anyOf"]
    assert "notes" not in schemas["MatchResponse"].get("required", [])


@pytest.fixture
def catalogue_file(tmp_path):
    path = tmp_path / "catalogue.json"
    path.write_text(json.dumps({"activities": RECORDS}), "utf-8")
    return path


@pytest.fixture(autouse=True)
def _cold_start(monkeypatch, tmp_path):
    monkeypatch.setenv("MATCHER_MODEL_DIR", "cold-start")
    monkeypatch.delenv("MATCHER_CATALOGUE", raising=False)


def test_suggest_says_why_a_list_is_empty_on_one_stderr_line(capsys, catalogue_file):
    code = cli.main(["suggest", "--catalogue", str(catalogue_file), "--postcode", "LS6 3HN",
                     "--max-travel-km", "0.5", "--online", "no"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0
    assert "No activity in the catalogue meets" in out
    summary, line = err.splitlines()  # the catalogue's summary line, then why
    assert summary.endswith("10 records, 10 loaded, 0 skipped, 0 without location, 1 online, "
                            "1 inactive, needs inferred for 0")  # fmt: skip
    assert line.startswith("matcher: no suggestions: no activity meets the hard needs: "
                           "max_travel_km 0.5 (")  # fmt: skip
    assert "LS6" not in err


def test_suggest_table_and_json_show_the_fill_note(capsys, catalogue_file):
    where = ["--lat", str(HOME["lat"]), "--lon", str(HOME["lon"])]
    base = ["suggest", "--catalogue", str(catalogue_file), *where, "--travel", "walk",
            "--online", "no", "--needs", "loneliness", "--age", "40", "--top", "4"]  # fmt: skip
    assert cli.main(base) == 0
    out, err = capsys.readouterr()
    assert out.startswith(" #  Activity")  # the notes go at the foot, the table first
    assert "\nNote: 3 suggestions lie beyond the usual 3 km for a walk" in out
    assert "further than a usual walk" in out and "no suggestions" not in err
    assert cli.main([*base, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["matches"]) == 4 and data["notes"][0].startswith("3 suggestions")


def test_rank_names_the_line_of_each_empty_list(capsys, catalogue_file, tmp_path):
    profiles = tmp_path / "profiles.jsonl"
    lines = [{**WALKER, "id": "full"}, {**WALKER, "id": "none", "max_travel_km": 0.5}]
    profiles.write_text("\n".join(json.dumps(p) for p in lines) + "\n", "utf-8")
    code = cli.main(["rank", "--catalogue", str(catalogue_file), "--profiles", str(profiles),
                     "--top", "4"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0
    first, second = (json.loads(line) for line in out.splitlines())
    assert len(first["matches"]) == 4 and second["matches"] == []
    assert "notes" not in first  # the contract's rank line (§5) is unchanged
    _summary, line = err.splitlines()
    assert line.startswith(f"matcher: {profiles} line 2: no suggestions: no activity meets")
