"""Tests for matcher.features: the one feature builder, column by column on hand-built pairs,
and the same rows whether people are built one at a time (serving) or together (training)."""

from __future__ import annotations

import numpy as np
import pytest

from matcher import geo
from matcher.catalogue import Catalogue
from matcher.contract import NEEDS, parse_profile
from matcher.errors import InvalidProfile
from matcher.features import (
    COLUMN,
    DEFAULT_TRAVEL_KM,
    FEATURES,
    MONOTONE,
    SPEED_KMH,
    WAIT_MINUTES,
    People,
    build_features,
    need_weights,
    prepare,
    prepare_many,
)

HOME = {"lat": 53.80, "lon": -1.55}

RECORDS = [
    {"id": "garden", "name": "Allotment gardening group",
     "needs": ["loneliness", "mental_wellbeing"],
     "tags": ["gardening"], "location": {"lat": 53.81, "lon": -1.55}, "cost": 0,
     "sessions": [{"day": "wed", "start": "10:00"}, {"day": "wed", "start": "11:00"}],
     "format": "group", "languages": ["en"], "accessibility": ["step_free", "wheelchair"],
     "capacity": 15, "referral": "self"},
    {"id": "debt", "name": "Debt and benefits advice", "location": {"lat": 53.80, "lon": -1.55},
     "cost": 5, "sessions": [{"day": "mon", "start": "09:00"}, {"day": "thu", "start": "14:00"},
                              {"day": "thu", "start": "18:30"}],
     "format": "one_to_one", "languages": ["pl"], "min_age": 18, "referral": "professional"},
    {"id": "online", "name": "Online choir", "online": True, "needs": ["loneliness"],
     "location": {"lat": 51.5, "lon": -0.12}, "description": "Sing from home"},
    {"id": "nowhere", "name": "Befriending calls", "needs": ["loneliness"], "cost": 1.5},
]  # fmt: skip


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return Catalogue.from_records(RECORDS)


def features_for(catalogue: Catalogue, profile: dict) -> dict[str, dict[str, float]]:
    """feature name -> activity id -> value, for one person against the whole catalogue."""
    person = prepare(parse_profile(profile), catalogue)
    n = len(catalogue)
    X = build_features(People([person], catalogue), catalogue, np.zeros(n, np.intp), np.arange(n))
    assert X.shape == (n, len(FEATURES))
    return {f: dict(zip(catalogue.ids, X[:, k], strict=True)) for f, k in COLUMN.items()}


# --- shape and names ------------------------------------------------------------------------


def test_feature_names_are_unique_and_indexed():
    assert len(set(FEATURES)) == len(FEATURES)
    assert [FEATURES[k] for k in range(len(FEATURES))] == list(COLUMN)
    assert all(COLUMN[name] == k for k, name in enumerate(FEATURES))
    assert {f"person_{code}" for code in NEEDS} <= set(FEATURES)
    for name in (
        "distance_km",
        "over_budget",
        "schedule_fit",
        "format_match",
        "language_match",
        "need_listed",
        "need_inferred",
        "interest_concepts",
        "location_unknown",
    ):
        assert name in COLUMN  # fmt: skip


def test_monotone_directions_name_real_features():
    assert set(MONOTONE) <= set(FEATURES)
    assert set(MONOTONE.values()) <= {-1, 1}
    assert MONOTONE["distance_km"] == -1 and MONOTONE["over_budget"] == -1
    assert MONOTONE["need_listed"] == 1 and MONOTONE["schedule_fit"] == 1


def test_shape_for_any_number_of_pairs(catalogue):
    person = prepare(parse_profile({}), catalogue)
    people = People([person], catalogue)
    for n in (0, 1, 7):
        a = np.arange(n) % len(catalogue)
        X = build_features(people, catalogue, np.zeros(n, np.intp), a)
        assert X.shape == (n, len(FEATURES))


# --- distance -------------------------------------------------------------------------------


def test_distance_and_travel(catalogue):
    f = features_for(catalogue, {"location": HOME, "travel": "walk"})
    expected = float(geo.haversine_km(53.80, -1.55, 53.81, -1.55))
    assert f["distance_km"]["garden"] == pytest.approx(expected)
    assert 1.0 < expected < 1.2
    assert f["distance_km"]["debt"] == pytest.approx(0.0, abs=1e-9)
    assert f["distance_ratio"]["garden"] == pytest.approx(expected / DEFAULT_TRAVEL_KM["walk"])
    assert f["travel_minutes"]["garden"] == pytest.approx(expected / SPEED_KMH["walk"] * 60)
    assert WAIT_MINUTES["walk"] == 0
    assert f["location_unknown"] == {"garden": 0, "debt": 0, "online": 0, "nowhere": 1}
    assert f["online"] == {"garden": 0, "debt": 0, "online": 1, "nowhere": 0}


def test_online_and_unknown_venues_have_no_distance(catalogue):
    f = features_for(catalogue, {"location": HOME})
    # the online choir lists a London address, but nobody travels to an online activity
    assert np.isnan(f["distance_km"]["online"]) and np.isnan(f["travel_minutes"]["online"])
    assert np.isnan(f["distance_km"]["nowhere"]) and np.isnan(f["distance_ratio"]["nowhere"])


def test_explicit_max_travel_and_mode_defaults(catalogue):
    d = float(geo.haversine_km(53.80, -1.55, 53.81, -1.55))
    by_mode = {mode: features_for(catalogue, {"location": HOME, "travel": mode})
               for mode in ("walk", "public_transport", "car")}  # fmt: skip
    ratios = [by_mode[m]["distance_ratio"]["garden"] for m in ("walk", "public_transport", "car")]
    assert ratios == sorted(ratios, reverse=True)  # a car goes further, so the same km is less
    assert by_mode["car"]["distance_ratio"]["garden"] == pytest.approx(d / DEFAULT_TRAVEL_KM["car"])
    f = features_for(catalogue, {"location": HOME, "travel": "walk", "max_travel_km": 0.5})
    assert f["distance_ratio"]["garden"] == pytest.approx(d / 0.5)
    pt = by_mode["public_transport"]["travel_minutes"]["garden"]
    assert pt == pytest.approx(
        d / SPEED_KMH["public_transport"] * 60 + WAIT_MINUTES["public_transport"]
    )


def test_person_without_location_has_no_distances(catalogue):
    f = features_for(catalogue, {"needs": ["money"]})
    assert all(np.isnan(v) for v in f["distance_km"].values())
    assert f["location_unknown"]["garden"] == 0  # the venue is known; only the person is not


def test_person_postcode_is_geocoded(catalogue):
    f = features_for(catalogue, {"location": {"postcode": "LS6 3HN"}})
    lat, lon, _ = geo.lookup("LS6 3HN")
    assert f["distance_km"]["debt"] == pytest.approx(
        float(geo.haversine_km(lat, lon, 53.80, -1.55))
    )


def test_unknown_person_postcode_is_an_invalid_profile(catalogue):
    with pytest.raises(InvalidProfile) as info:
        prepare(parse_profile({"location": {"postcode": "ZZ99 9ZZ"}}), catalogue)
    assert info.value.problems[0][0] == "profile.location.postcode"
    assert "ZZ99" not in str(info.value)


# --- cost -----------------------------------------------------------------------------------


def test_cost_and_over_budget(catalogue):
    f = features_for(catalogue, {"max_cost": 2})
    assert f["over_budget"] == {"garden": 0, "debt": 3, "online": 0, "nowhere": 0}
    assert f["free"] == {"garden": 1, "debt": 0, "online": 0, "nowhere": 0}
    assert f["cost_unknown"] == {"garden": 0, "debt": 0, "online": 1, "nowhere": 0}
    assert f["cost"]["nowhere"] == 1.5 and np.isnan(f["cost"]["online"])


def test_no_budget_means_never_over_budget(catalogue):
    f = features_for(catalogue, {})
    assert set(f["over_budget"].values()) == {0.0}


def test_free_only_budget(catalogue):
    f = features_for(catalogue, {"max_cost": 0})
    assert f["over_budget"]["nowhere"] == 1.5 and f["over_budget"]["garden"] == 0


# --- schedule -------------------------------------------------------------------------------


def test_schedule_fit_with_availability(catalogue):
    # debt meets mon_am, thu_pm and thu_eve; garden twice on wed_am (one slot)
    f = features_for(catalogue, {"availability": ["wed_am", "thu_pm"]})
    assert f["schedule_fit"]["garden"] == 1.0
    assert f["schedule_fit"]["debt"] == pytest.approx(1 / 3)
    assert np.isnan(f["schedule_fit"]["nowhere"])  # by arrangement: unknown, not 0
    assert f["by_arrangement"] == {"garden": 0, "debt": 0, "online": 1, "nowhere": 1}
    f = features_for(catalogue, {"availability": ["sun_eve"]})
    assert f["schedule_fit"]["garden"] == 0.0 and f["schedule_fit"]["debt"] == 0.0


def test_schedule_fit_counts_every_free_slot(catalogue):
    # two of debt's three slots (mon_am, thu_pm) are free: the share is 2/3, not 1/3
    f = features_for(catalogue, {"availability": ["mon_am", "thu_pm"]})
    assert f["schedule_fit"]["debt"] == pytest.approx(2 / 3)
    f = features_for(catalogue, {"availability": ["mon_am", "thu_pm", "thu_eve"]})
    assert f["schedule_fit"]["debt"] == 1.0


def test_schedule_fit_without_availability_is_any_time(catalogue):
    f = features_for(catalogue, {})
    assert f["schedule_fit"]["garden"] == 1.0 and f["schedule_fit"]["debt"] == 1.0


def test_empty_availability_is_not_any_time(catalogue):
    f = features_for(catalogue, {"availability": []})
    assert f["schedule_fit"]["garden"] == 0.0


def test_evening_share(catalogue):
    f = features_for(catalogue, {})
    assert f["evening_share"]["debt"] == pytest.approx(1 / 3)
    assert f["evening_share"]["garden"] == 0


def test_time_of_day_shares_and_fits(catalogue):
    # debt: Monday 09:00, Thursday 14:00 and 18:30 — one slot in each part of the day.
    free_evenings = features_for(catalogue, {"availability": ["thu_eve", "fri_eve"]})
    for part in ("morning", "afternoon", "evening"):
        assert free_evenings[f"{part}_share"]["debt"] == pytest.approx(1 / 3)
    assert free_evenings["evening_fit"]["debt"] == pytest.approx(1 / 3)
    assert free_evenings["morning_fit"]["debt"] == 0 and free_evenings["afternoon_fit"]["debt"] == 0
    mornings = features_for(catalogue, {"availability": ["mon_am"]})
    assert mornings["morning_fit"]["debt"] == pytest.approx(1 / 3)
    assert mornings["evening_fit"]["debt"] == 0
    # The three fits split schedule_fit by time of day.
    any_time = features_for(catalogue, {})
    total = sum(any_time[f"{part}_fit"]["debt"] for part in ("morning", "afternoon", "evening"))
    assert total == pytest.approx(any_time["schedule_fit"]["debt"])


def test_time_of_day_fit_unknown_without_sessions(catalogue):
    f = features_for(catalogue, {"availability": ["mon_am"]})
    by_arrangement = [a for a, v in f["by_arrangement"].items() if v == 1]
    assert by_arrangement, "the fixture needs an activity without sessions"
    for part in ("morning", "afternoon", "evening"):
        assert np.isnan(f[f"{part}_fit"][by_arrangement[0]])
        assert f[f"{part}_share"][by_arrangement[0]] == 0


# --- format, language, access, age ----------------------------------------------------------


def test_format_match(catalogue):
    group = features_for(catalogue, {"format": "group"})["format_match"]
    assert group == {"garden": 1, "debt": -1, "online": 0, "nowhere": 0}
    one = features_for(catalogue, {"format": "one_to_one"})["format_match"]
    assert one == {"garden": -1, "debt": 1, "online": 0, "nowhere": 0}
    assert set(features_for(catalogue, {})["format_match"].values()) == {0}


def test_language_match(catalogue):
    english = features_for(catalogue, {"languages": ["en"]})["language_match"]
    assert english == {"garden": 1, "debt": -1, "online": 0, "nowhere": 0}
    polish = features_for(catalogue, {"languages": ["pl", "en"]})["language_match"]
    assert polish == {"garden": 1, "debt": 1, "online": 0, "nowhere": 0}
    other = features_for(catalogue, {"languages": ["ur"]})["language_match"]  # not in catalogue
    assert other == {"garden": -1, "debt": -1, "online": 0, "nowhere": 0}
    assert set(features_for(catalogue, {})["language_match"].values()) == {0}


def test_access_extras_age_capacity_referral(catalogue):
    f = features_for(catalogue, {"accessibility": ["step_free"], "age": 40})
    assert f["access_extras"]["garden"] == 1  # wheelchair, beyond the step-free asked for
    assert f["access_extras"]["debt"] == 0
    assert f["age_restricted"] == {"garden": 0, "debt": 1, "online": 0, "nowhere": 0}
    assert f["capacity_log"]["garden"] == pytest.approx(np.log1p(15))
    assert f["self_referral"] == {"garden": 1, "debt": 0, "online": 0, "nowhere": 0}
    assert set(f["person_age"].values()) == {40}


# --- needs ----------------------------------------------------------------------------------


def test_need_weights_follow_priority():
    w = need_weights(["money", "loneliness", "housing"])
    assert w.sum() == pytest.approx(1.0)
    m, lo, h = (w[NEEDS.index(c)] for c in ("money", "loneliness", "housing"))
    assert m == pytest.approx(2 * lo) and m == pytest.approx(3 * h)
    assert need_weights([]).sum() == 0


def test_need_listed_and_inferred_with_priority_weights(catalogue):
    f = features_for(catalogue, {"needs": ["money", "loneliness"]})
    # weights 2/3 (money), 1/3 (loneliness)
    assert f["need_listed"]["garden"] == pytest.approx(1 / 3)  # lists loneliness
    assert f["need_listed"]["online"] == pytest.approx(1 / 3)
    assert f["need_listed"]["debt"] == 0  # lists nothing ...
    money_strength = catalogue.needs_inferred[catalogue.index_of("debt"), NEEDS.index("money")]
    assert 0 < money_strength < 1
    assert f["need_inferred"]["debt"] == pytest.approx(2 / 3 * money_strength)  # ... infers money
    assert f["need_inferred"]["garden"] == 0  # listed needs are never second-guessed
    assert f["need_first"]["debt"] == pytest.approx(money_strength)
    assert f["need_first"]["garden"] == 0  # serves loneliness, not the first need
    assert f["needs_covered"]["garden"] == 0.5
    assert f["needs_covered"]["debt"] == 0.5


def test_needs_covered_counts_every_need_served(catalogue):
    # garden lists both loneliness and mental_wellbeing: it covers all of this person's needs
    f = features_for(catalogue, {"needs": ["loneliness", "mental_wellbeing"]})
    assert f["needs_covered"]["garden"] == 1.0
    f = features_for(catalogue, {"needs": ["loneliness", "money", "mental_wellbeing"]})
    assert f["needs_covered"]["garden"] == pytest.approx(2 / 3)
    assert f["needs_covered"]["online"] == pytest.approx(1 / 3)


def test_priority_order_matters(catalogue):
    lonely_first = features_for(catalogue, {"needs": ["loneliness", "money"]})
    money_first = features_for(catalogue, {"needs": ["money", "loneliness"]})
    assert lonely_first["need_listed"]["garden"] > money_first["need_listed"]["garden"]
    assert lonely_first["need_first"]["garden"] == 1


def test_no_needs_no_need_features(catalogue):
    f = features_for(catalogue, {})
    for name in ("need_listed", "need_inferred", "need_first", "needs_covered"):
        assert set(f[name].values()) == {0}


def test_person_columns(catalogue):
    f = features_for(catalogue, {"needs": ["money", "carers"], "travel": "car"})
    assert set(f["person_money"].values()) == {1} and set(f["person_carers"].values()) == {1}
    assert set(f["person_loneliness"].values()) == {0}
    assert set(f["person_needs"].values()) == {2}
    assert len(set(f["person_travel"].values())) == 1
    assert f["person_travel"]["garden"] != features_for(catalogue, {})["person_travel"]["garden"]
    assert all(np.isnan(v) for v in features_for(catalogue, {})["person_age"].values())


# --- interests ------------------------------------------------------------------------------


def test_interest_features(catalogue):
    f = features_for(catalogue, {"interests": "likes the allotment"})
    assert f["interest_concepts"]["garden"] >= 1
    assert f["interest_similarity"]["garden"] > 0.1
    assert f["interest_concepts"]["debt"] == 0 and f["interest_similarity"]["debt"] == 0
    f = features_for(catalogue, {"interests": "used to sing in a choir"})
    assert f["interest_concepts"]["online"] >= 1  # "choir" meets "sing"
    assert f["interest_concepts"]["garden"] == 0
    none = features_for(catalogue, {})
    assert set(none["interest_similarity"].values()) == {0}


def test_evidence_columns(catalogue):
    person = prepare(parse_profile({}), catalogue)
    people = People([person], catalogue)
    a = np.arange(len(catalogue))
    X = build_features(people, catalogue, np.zeros(len(a), np.intp), a)
    assert np.isnan(X[:, COLUMN["activity_uptake_rate"]]).all()
    assert (X[:, COLUMN["activity_uptake_count"]] == 0).all()
    rate, count = np.array([0.1, 0.2, 0.3, 0.4]), np.array([10.0, 0, 3, 7])
    X = build_features(people, catalogue, np.zeros(2, np.intp), np.array([3, 1]), (rate, count))
    assert list(X[:, COLUMN["activity_uptake_rate"]]) == [0.4, 0.2]
    assert list(X[:, COLUMN["activity_uptake_count"]]) == [7.0, 0.0]


# --- training and serving give the same rows ------------------------------------------------

PROFILES = [
    {"id": "p1", "age": 70, "location": HOME, "needs": ["loneliness", "physical_activity"],
     "interests": "used to have an allotment, likes a chat", "travel": "walk",
     "availability": ["wed_am", "thu_pm"], "max_cost": 0, "format": "group", "languages": ["en"]},
    {"id": "p2", "location": {"postcode": "LS6 3HN"}, "needs": ["money"], "travel": "car",
     "interests": ["singing", "choir"], "accessibility": ["step_free"], "languages": ["pl"]},
    {"id": "p3"},
    {"id": "p4", "age": 30, "location": {"lat": 53.9, "lon": -1.6}, "max_travel_km": 4,
     "needs": ["mental_wellbeing", "money", "loneliness"], "interests": "debt advice",
     "max_cost": 2, "format": "one_to_one", "online": "only", "gender": "female"},
]  # fmt: skip


def test_many_people_at_once_give_the_same_rows_as_one_at_a_time(catalogue):
    persons = [prepare(parse_profile(p), catalogue) for p in PROFILES]
    n_a = len(catalogue)
    # every pair, shuffled, as training would see them
    p = np.repeat(np.arange(len(persons)), n_a)
    a = np.tile(np.arange(n_a), len(persons))
    order = np.random.default_rng(0).permutation(len(p))
    p, a = p[order], a[order]
    together = build_features(People(persons, catalogue), catalogue, p, a)
    for k in range(len(p)):
        alone = build_features(
            People([persons[p[k]]], catalogue), catalogue, np.zeros(1, np.intp), a[k : k + 1]
        )[0]
        np.testing.assert_array_equal(
            together[k], alone, err_msg=f"person {PROFILES[p[k]]['id']} x {catalogue.ids[a[k]]}"
        )


def test_one_person_many_candidates_equals_pair_by_pair(catalogue):
    person = prepare(parse_profile(PROFILES[0]), catalogue)
    people = People([person], catalogue)
    a = np.array([3, 0, 2, 1, 0])
    batch = build_features(people, catalogue, np.zeros(len(a), np.intp), a)
    for k, i in enumerate(a):
        single = build_features(people, catalogue, np.zeros(1, np.intp), np.array([i]))[0]
        np.testing.assert_array_equal(batch[k], single)


def test_prepare_many_gives_the_same_rows_as_prepare_one_at_a_time(catalogue):
    profiles = [parse_profile(p) for p in PROFILES]
    batch = prepare_many(profiles, catalogue)
    assert len(batch) == len(profiles)
    n_a = len(catalogue)
    p = np.repeat(np.arange(len(profiles)), n_a)
    a = np.tile(np.arange(n_a), len(profiles))
    together = build_features(batch, catalogue, p, a)
    for k, profile in enumerate(profiles):
        alone = build_features(
            People([prepare(profile, catalogue)], catalogue),
            catalogue,
            np.zeros(n_a, np.intp),
            np.arange(n_a),
        )
        np.testing.assert_array_equal(together[p == k], alone, err_msg=PROFILES[k].get("id"))


def test_given_distances_give_the_same_rows(catalogue):
    for profile in ({"location": HOME, "travel": "walk"}, {"needs": ["loneliness"]}):
        person = prepare(parse_profile(profile), catalogue)
        idx, distance = catalogue.nearby(person.lat, person.lon, 1000.0)
        people = People([person], catalogue)
        p = np.zeros(len(idx), np.intp)
        computed = build_features(people, catalogue, p, idx)
        given = build_features(people, catalogue, p, idx, distance_km=distance)
        np.testing.assert_array_equal(given, computed)  # to the last bit (NaN where unknown)


def test_nearby_distances_are_the_haversine_distances(catalogue):
    idx, distance = catalogue.nearby(53.8, -1.55, 1000.0)
    expected = geo.haversine_km(53.8, -1.55, catalogue.lat[idx], catalogue.lon[idx])
    np.testing.assert_array_equal(distance, expected)
    assert list(idx) == list(catalogue.candidates(53.8, -1.55, 1000.0))
    idx, distance = catalogue.nearby(None, None, 10.0)
    assert list(idx) == list(range(len(catalogue))) and np.isnan(distance).all()
