"""Tests for matcher.ranking: Matcher.recommend is deterministic, respects n, exclusions and hard
needs, ranks by need, and varies its suggestions across the person's needs."""

from __future__ import annotations

import numpy as np
import pytest

from matcher.catalogue import Catalogue
from matcher.contract import parse_profile
from matcher.errors import InvalidProfile
from matcher.features import prepare
from matcher.ranking import Match, Matcher
from matcher.scoring import ColdStartScorer

HOME = {"lat": 53.80, "lon": -1.55}


def walking_group(k: int) -> dict:
    return {
        "id": f"walk-{k}",
        "name": f"Health walk group {k}",
        "description": "A friendly health walk around the park for all abilities.",
        "needs": ["physical_activity"],
        "tags": ["walking"],
        "location": {"lat": 53.80 + 0.001 * k, "lon": -1.55},
        "cost": 0,
        "sessions": [{"day": "tue", "start": "10:00", "end": "11:00"}],
        "format": "group",
    }


RECORDS = [walking_group(k) for k in range(6)] + [
    {"id": "choir", "name": "Community choir", "description": "Sing together and make friends.",
     "needs": ["loneliness"], "tags": ["choir"], "location": {"lat": 53.805, "lon": -1.56},
     "cost": 0, "sessions": [{"day": "thu", "start": "19:00"}], "format": "group"},
    {"id": "debt", "name": "Debt advice service", "description": "Confidential money advice.",
     "needs": ["money"], "location": {"lat": 53.79, "lon": -1.54}, "cost": 0,
     "sessions": [{"day": "mon", "start": "09:30"}], "format": "one_to_one"},
    {"id": "garden", "name": "Allotment gardening group", "description": "<p>Grow veg.</p>",
     "tags": ["gardening"], "location": {"lat": 53.812, "lon": -1.55}, "cost": 2,
     "accessibility": ["step_free"]},
    {"id": "online", "name": "Online coffee morning", "needs": ["loneliness"], "online": True},
    {"id": "closed", "name": "Closed walking group", "needs": ["physical_activity"],
     "location": HOME, "status": "inactive"},
]  # fmt: skip

PERSON = {"id": "p-1", "location": HOME, "needs": ["physical_activity", "loneliness", "money"]}


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return Matcher(Catalogue.from_records(RECORDS))


def ids(matches: list[Match]) -> list[str]:
    return [m.activity_id for m in matches]


# --- the basics -----------------------------------------------------------------------------


def test_deterministic(matcher):
    first = matcher.recommend(PERSON, 10)
    for _ in range(3):
        again = matcher.recommend(PERSON, 10)
        assert ids(again) == ids(first)
        assert [m.score for m in again] == [m.score for m in first]
        assert [m.reasons for m in again] == [m.reasons for m in first]
    fresh = Matcher(Catalogue.from_records(RECORDS)).recommend(PERSON, 10)
    assert ids(fresh) == ids(first)


def test_dict_and_profile_give_the_same(matcher):
    assert ids(matcher.recommend(PERSON, 5)) == ids(matcher.recommend(parse_profile(PERSON), 5))


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8])
def test_n_respected(matcher, n):
    matches = matcher.recommend(PERSON, n)
    assert len(matches) == n
    assert len(set(ids(matches))) == n


def test_n_larger_than_the_catalogue_gives_every_allowed_activity(matcher):
    matches = matcher.recommend(PERSON, 100)
    assert sorted(ids(matches)) == sorted(r["id"] for r in RECORDS if r["id"] != "closed")


def test_n_zero_or_negative_gives_nothing(matcher):
    assert matcher.recommend(PERSON, 0) == []
    assert matcher.recommend(PERSON, -3) == []


def test_exclude_argument_honoured(matcher):
    top = ids(matcher.recommend(PERSON, 3))
    matches = matcher.recommend(PERSON, 3, exclude=[top[0], "no-such-id"])
    assert top[0] not in ids(matches)
    assert len(matches) == 3


def test_exclude_argument_adds_to_the_profile_exclude(matcher):
    profile = {**PERSON, "exclude": ["debt"]}
    matches = matcher.recommend(profile, 100, exclude=["choir", "debt"])
    assert not {"debt", "choir"} & set(ids(matches))
    assert len(matches) == len(RECORDS) - 3  # closed, debt, choir


def test_exclude_does_not_change_the_callers_profile(matcher):
    profile = parse_profile(PERSON)
    matcher.recommend(profile, 3, exclude=["debt"])
    assert profile.exclude == []


def test_inactive_never_suggested(matcher):
    for profile in (PERSON, {}, {"needs": ["physical_activity"], "location": HOME}):
        assert "closed" not in ids(matcher.recommend(profile, 100))


def test_scores_are_chances_and_match_fields(matcher):
    matches = matcher.recommend(PERSON, 100)
    for m in matches:
        assert 0.0 <= m.score <= 1.0
        d = m.to_dict()
        assert set(d) >= {"activity_id", "name", "score", "distance_km", "reasons"}
        assert d["activity_id"] == m.activity.id and d["name"] == m.activity.name
        assert d["score"] == pytest.approx(m.score, abs=1e-4)
    by_id = {m.activity_id: m for m in matches}
    assert by_id["online"].distance_km is None and by_id["online"].to_dict()["distance_km"] is None
    assert by_id["walk-0"].distance_km == pytest.approx(0.0, abs=1e-6)
    assert by_id["debt"].distance_km == pytest.approx(1.32, abs=0.05)


def test_without_variety_scores_are_in_order(matcher):
    matches = matcher.recommend(PERSON, 100, variety=False)
    scores = [m.score for m in matches]
    assert scores == sorted(scores, reverse=True)


def test_the_first_need_comes_first():
    matcher = Matcher(Catalogue.from_records(RECORDS))
    assert ids(matcher.recommend({"location": HOME, "needs": ["money"]}, 1)) == ["debt"]
    top = matcher.recommend({"location": HOME, "needs": ["loneliness"]}, 2)
    assert set(ids(top)) == {"choir", "online"}


def test_interests_lift_what_the_person_likes():
    matcher = Matcher(Catalogue.from_records(RECORDS))
    top = matcher.recommend({"location": HOME, "interests": "likes the allotment"}, 1)
    assert ids(top) == ["garden"]


def test_person_without_location_still_gets_suggestions(matcher):
    matches = matcher.recommend({"needs": ["money"]}, 3)
    assert ids(matches)[0] == "debt"
    assert all(m.distance_km is None for m in matches)


def test_bad_profile_raises_invalid_profile(matcher):
    with pytest.raises(InvalidProfile):
        matcher.recommend({"nhs_number": "1"}, 3)
    with pytest.raises(InvalidProfile) as info:
        matcher.recommend({"location": {"postcode": "ZZ99 9ZZ"}}, 3)
    assert info.value.problems[0][0] == "profile.location.postcode"


def test_nothing_allowed_gives_an_empty_list(matcher):
    assert matcher.recommend({"accessibility": ["bsl"]}, 5) == []
    assert matcher.recommend({"location": {"lat": 51.5, "lon": -0.12}, "online": "no"}, 5) == []


def test_model_version_is_the_scorers():
    matcher = Matcher(Catalogue.from_records(RECORDS))
    assert isinstance(matcher.scorer, ColdStartScorer)
    assert matcher.model_version == ColdStartScorer.version


def test_match_display_helpers():
    catalogue = Catalogue.from_records([
        {"id": "a", "name": "A", "cost": 2.5, "sessions": [{"day": "mon", "start": "10:00"},
                                                            {"day": "thu", "start": "10:00"}]},
        {"id": "b", "name": "B", "cost": 0},
        {"id": "c", "name": "C"},
    ])  # fmt: skip
    by_id = {m.activity_id: m for m in Matcher(catalogue).recommend({}, 3)}
    assert by_id["a"].cost() == "£2.50" and by_id["b"].cost() == "Free"
    assert by_id["c"].cost() == "Unknown"
    assert by_id["a"].when() == "Monday and Thursday mornings"
    assert by_id["b"].when() == "By arrangement"


# --- variety --------------------------------------------------------------------------------


def test_variety_across_needs(matcher):
    """Six near-identical walking groups must not crowd out the choir and the debt advice."""
    top3 = matcher.recommend(PERSON, 3)
    assert not all(m.activity_id.startswith("walk-") for m in top3), ids(top3)
    covered = {need for m in top3 for need in m.needs if need in PERSON["needs"]}
    assert len(covered) >= 2, (ids(top3), covered)


def test_variety_with_identical_copies():
    records = [{**walking_group(k), "name": "Health walk group"} for k in range(6)]
    records += [r for r in RECORDS if r["id"] in ("choir", "debt")]
    matcher = Matcher(Catalogue.from_records(records))
    top3 = matcher.recommend(PERSON, 3)
    walks = [m for m in top3 if m.activity_id.startswith("walk-")]
    assert len(walks) <= 2, ids(top3)


def test_variety_keeps_the_best_first(matcher):
    with_variety = matcher.recommend(PERSON, 5)
    without = matcher.recommend(PERSON, 5, variety=False)
    assert with_variety[0].activity_id == without[0].activity_id


def test_variety_changes_only_the_order_of_allowed_activities(matcher):
    every = set(ids(matcher.recommend(PERSON, 100, variety=False)))
    assert set(ids(matcher.recommend(PERSON, 100))) == every


def test_distances_are_computed_once_per_request(matcher, monkeypatch):
    from matcher import geo

    calls = []
    haversine = geo.haversine_km

    def counting(*args):
        calls.append(len(np.atleast_1d(args[2])))
        return haversine(*args)

    monkeypatch.setattr(geo, "haversine_km", counting)
    before = [m.to_dict() for m in matcher.recommend(PERSON, 5)]
    assert len(calls) == 1  # by Catalogue.nearby, for the candidates; filters and features reuse it
    assert calls[0] <= len(matcher.catalogue)
    monkeypatch.setattr(geo, "haversine_km", haversine)
    assert [m.to_dict() for m in matcher.recommend(PERSON, 5)] == before


def test_a_snapshot_catalogue_ranks_the_same(matcher, tmp_path):
    import json

    path = tmp_path / "catalogue.json"
    path.write_text(json.dumps(RECORDS), "utf-8")
    Catalogue.load(path, tmp_path / "snapshots")
    mapped = Catalogue.load(path, tmp_path / "snapshots")
    assert mapped.report.snapshot.startswith("loaded ")
    for profile in (PERSON, {"needs": ["loneliness"], "interests": "singing"}, {}):
        expected = [(m.to_dict(), m.needs, m.location_unknown) for m in matcher.recommend(profile)]
        got = [
            (m.to_dict(), m.needs, m.location_unknown) for m in Matcher(mapped).recommend(profile)
        ]
        assert got == expected


# --- the fill beyond the usual reach (issue 9; more in tests/test_fill.py) --------------------


def test_suggest_is_recommend_with_notes(matcher):
    found = matcher.suggest(PERSON, 3)
    assert ids(found.matches) == ids(matcher.recommend(PERSON, 3))
    assert found.notes == []  # a full list within the usual reach needs no note
    short = matcher.suggest({**PERSON, "max_travel_km": 5}, 50)
    assert len(short.matches) == 10 and len(short.notes) == 1
    assert short.notes[0].startswith("only 10 activities meet the hard needs (50 asked for)")
    assert matcher.suggest(PERSON, 0).matches == []


def test_the_fill_comes_after_the_usual_reach_and_is_scored_by_the_same_scorer():
    far = {**walking_group(99), "id": "far", "location": {"lat": 53.85, "lon": -1.55}}
    matcher = Matcher(Catalogue.from_records([*RECORDS, far]))
    walker = {**PERSON, "travel": "walk"}
    found = matcher.suggest(walker, 50)
    assert ids(found.matches)[-1] == "far" and found.matches[-1].beyond_usual
    assert not any(m.beyond_usual for m in found.matches[:-1])
    person = prepare(parse_profile(walker), matcher.catalogue)
    idx, scores, _ = matcher.beyond(person, 5)
    assert [matcher.catalogue.ids[i] for i in idx] == ["far"]
    assert scores[0] == pytest.approx(found.matches[-1].score)
    assert ids(matcher.recommend(walker, 50, fill=False)) == ids(found.matches)[:-1]
