"""Tests for matcher.filters: the vectorised mask ``allowed`` and the plain rules
``violations`` (independent on purpose) agree, and each hard need bites exactly when it should."""

from __future__ import annotations

import numpy as np
import pytest

from matcher import geo
from matcher.catalogue import Catalogue
from matcher.contract import parse_profile
from matcher.features import prepare
from matcher.filters import allowed, ruled_out, violations

HOME = {"lat": 53.80, "lon": -1.55}
NEAR = {"lat": 53.81, "lon": -1.55}  # about 1.1 km north
FAR = {"lat": 53.85, "lon": -1.55}  # about 5.6 km north


def act(**fields) -> dict:
    return {"id": "x", "name": "Activity", **fields}


def judge(profile: dict, records: list[dict]) -> tuple[np.ndarray, list[list[str]]]:
    """``allowed`` (the hard needs alone: a stated distance, not a mode's default) over the
    whole catalogue, and ``violations`` for each activity."""
    catalogue = Catalogue.from_records(records)
    person = prepare(parse_profile(profile), catalogue)
    mask = allowed(person, catalogue, np.arange(len(catalogue)), travel="stated")
    broken = []
    for i, activity in enumerate(catalogue.activities):
        distance = None
        if person.located and catalogue.located[i]:
            distance = float(
                geo.haversine_km(person.lat, person.lon, catalogue.lat[i], catalogue.lon[i])
            )
        broken.append(
            violations(person.profile, activity, distance_km=distance, max_km=person.max_km)
        )
    return mask, broken


CASES = [
    # (case, profile, activity, allowed, words in the violation)
    ("min age bites", {"age": 30}, act(min_age=50), False, "minimum age"),
    ("min age met", {"age": 60}, act(min_age=50), True, None),
    ("min age exactly", {"age": 50}, act(min_age=50), True, None),
    ("min age, age not given", {}, act(min_age=50), True, None),
    ("max age bites", {"age": 30}, act(max_age=25), False, "maximum age"),
    ("max age met", {"age": 20}, act(max_age=25), True, None),
    ("max age exactly", {"age": 25}, act(max_age=25), True, None),
    ("age band bites", {"age": 70}, act(min_age=16, max_age=25), False, "maximum age"),
    ("wheelchair lacking", {"accessibility": ["wheelchair"]}, act(accessibility=["step_free"]),
     False, "wheelchair"),
    ("wheelchair offered", {"accessibility": ["wheelchair"]},
     act(accessibility=["step_free", "wheelchair"]), True, None),
    ("one of two features lacking", {"accessibility": ["wheelchair", "hearing_loop"]},
     act(accessibility=["wheelchair"]), False, "hearing_loop"),
    ("no features listed", {"accessibility": ["bsl"]}, act(), False, "bsl"),
    ("features not needed", {}, act(), True, None),
    ("online no bites", {"online": "no"}, act(online=True), False, "online"),
    ("online no, venue", {"online": "no"}, act(location=NEAR), True, None),
    ("online only bites", {"online": "only"}, act(location=NEAR), False, "online only"),
    ("online only bites on unknown venue", {"online": "only"}, act(), False, "online only"),
    ("online only met", {"online": "only"}, act(online=True), True, None),
    ("online ok", {"online": "ok"}, act(online=True), True, None),
    ("women-only, man", {"gender": "male"}, act(gender="female"), False, "female-only"),
    ("women-only, woman", {"gender": "female"}, act(gender="female"), True, None),
    ("women-only, gender not stated", {}, act(gender="female"), False, "female-only"),
    ("women-only, other gender", {"gender": "non-binary"}, act(gender="female"), False,
     "female-only"),
    ("men-only, woman", {"gender": "female"}, act(gender="male"), False, "male-only"),
    ("men-only, man", {"gender": "male"}, act(gender="male"), True, None),
    ("mixed group, any gender", {"gender": "non-binary"}, act(), True, None),
    ("excluded", {"exclude": ["x"]}, act(), False, "excluded"),
    ("another excluded", {"exclude": ["y", "z"]}, act(), True, None),
    ("inactive", {}, act(status="inactive"), False, "inactive"),
    ("active", {}, act(status="active"), True, None),
    # A mode's default radius is a preference (the fill may pass it), not a hard need.
    ("beyond a usual walk, no maximum stated", {"location": HOME, "travel": "walk"},
     act(location=FAR), True, None),
    ("beyond a stated walk", {"location": HOME, "travel": "walk", "max_travel_km": 3},
     act(location=FAR), False, "travel distance"),
    ("near enough to walk", {"location": HOME, "travel": "walk"}, act(location=NEAR), True, None),
    ("far, but by car", {"location": HOME, "travel": "car"}, act(location=FAR), True, None),
    ("beyond an explicit maximum", {"location": HOME, "max_travel_km": 1.0},
     act(location=NEAR), False, "travel distance"),
    ("far but online", {"location": HOME, "travel": "walk"},
     act(online=True, location={"lat": 51.5, "lon": -0.12}), True, None),
    ("location unknown is kept", {"location": HOME, "travel": "walk"}, act(), True, None),
    ("unknown postcode is kept", {"location": HOME, "travel": "walk"},
     act(location={"postcode": "ZZ99 9ZZ"}), True, None),
    ("person location unknown", {"travel": "walk"}, act(location=FAR), True, None),
    ("far postcode, stated", {"location": HOME, "max_travel_km": 3},
     act(location={"postcode": "LS25"}), False, "travel distance"),
    ("far postcode, usual walk", {"location": HOME, "travel": "walk"},
     act(location={"postcode": "LS25"}), True, None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("profile", "record", "ok", "words"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_hard_need(profile, record, ok, words):
    mask, broken = judge(profile, [record])
    assert bool(mask[0]) is ok
    assert (broken[0] == []) is ok, broken[0]
    if words:
        assert any(words in b for b in broken[0]), broken[0]


def test_several_needs_broken_at_once_are_all_named():
    _, broken = judge(
        {"age": 30, "online": "no", "gender": "male", "exclude": ["x"], "accessibility": ["bsl"]},
        [act(min_age=50, online=True, gender="female", status="inactive")],
    )
    assert len(broken[0]) == 6


def test_allowed_and_violations_agree_on_a_mixed_catalogue():
    rng = np.random.default_rng(5)
    records = []
    for k in range(120):
        record: dict = {"id": f"a{k}", "name": f"Activity {k}"}
        if rng.random() < 0.3:
            record["min_age"] = int(rng.choice([16, 18, 50, 65]))
        if rng.random() < 0.2:
            record["max_age"] = int(rng.choice([25, 70, 90]))
            record["min_age"] = min(record.get("min_age", 0), record["max_age"])
        if rng.random() < 0.15:
            record["gender"] = str(rng.choice(["female", "male"]))
        if rng.random() < 0.2:
            record["online"] = True
        if rng.random() < 0.1:
            record["status"] = "inactive"
        record["accessibility"] = [f for f in ("wheelchair", "step_free", "hearing_loop")
                                   if rng.random() < 0.5]  # fmt: skip
        if rng.random() < 0.85:
            record["location"] = {"lat": float(53.8 + rng.normal(0, 0.05)),
                                  "lon": float(-1.55 + rng.normal(0, 0.08))}  # fmt: skip
        records.append(record)
    profiles = [
        {},
        {"age": 70, "location": HOME, "travel": "walk", "accessibility": ["wheelchair"]},
        {"age": 20, "gender": "female", "online": "no", "location": HOME, "max_travel_km": 4},
        {"age": 55, "gender": "male", "online": "only", "exclude": ["a1", "a2", "a3"]},
        {"age": 90, "accessibility": ["step_free", "hearing_loop"], "location": HOME},
    ]
    bites = 0
    for profile in profiles:
        mask, broken = judge(profile, records)
        for i, reasons in enumerate(broken):
            assert bool(mask[i]) == (not reasons), (profile, records[i], reasons)
        bites += int((~mask).sum())
    assert bites > 50  # the catalogue really exercises the rules


def test_the_main_list_keeps_to_the_usual_radius_and_any_drops_every_distance():
    records = [act(id="near", location=NEAR), act(id="far", location=FAR),
               act(id="web", online=True)]  # fmt: skip
    catalogue = Catalogue.from_records(records)
    everything = np.arange(3)
    walker = prepare(parse_profile({"location": HOME, "travel": "walk"}), catalogue)
    assert list(allowed(walker, catalogue, everything)) == [True, False, True]
    assert list(allowed(walker, catalogue, everything, travel="stated")) == [True, True, True]
    stated = prepare(parse_profile({"location": HOME, "max_travel_km": 3}), catalogue)
    assert list(allowed(stated, catalogue, everything, travel="stated")) == [True, False, True]
    assert list(allowed(stated, catalogue, everything, travel="any")) == [True, True, True]


def test_ruled_out_names_each_hard_need_that_bites_alone():
    records = [act(id="a", min_age=50, location=FAR), act(id="b", online=True),
               act(id="c", gender="female", location=NEAR)]  # fmt: skip
    catalogue = Catalogue.from_records(records)
    person = prepare(
        parse_profile({"age": 30, "online": "no", "location": HOME, "max_travel_km": 2}),
        catalogue,
    )
    out = {k: list(v) for k, v in ruled_out(person, catalogue, np.arange(3)).items()}
    assert out == {
        "age": [True, False, False],
        "online": [False, True, False],
        "gender": [False, False, True],
        "max_travel_km": [True, False, False],
    }


def test_allowed_respects_the_positions_it_is_given():
    records = [act(id="a", min_age=50), act(id="b"), act(id="c", status="inactive")]
    catalogue = Catalogue.from_records(records)
    person = prepare(parse_profile({"age": 30}), catalogue)
    assert list(allowed(person, catalogue, np.array([2, 1, 0]))) == [False, True, False]
    assert list(allowed(person, catalogue, np.array([1]))) == [True]
    assert allowed(person, catalogue, np.array([], dtype=np.intp)).shape == (0,)


def test_allowed_does_not_change_the_catalogue():
    catalogue = Catalogue.from_records([act(id="a", status="inactive"), act(id="b")])
    person = prepare(parse_profile({}), catalogue)
    before = catalogue.active.copy()
    allowed(person, catalogue, np.arange(2))
    np.testing.assert_array_equal(catalogue.active, before)


def test_allowed_with_the_candidates_distances_is_the_same_mask():
    rng = np.random.default_rng(5)
    records = [act(id=f"a{k}", location={"lat": float(53.8 + rng.normal(0, 0.05)),
                                         "lon": float(-1.55 + rng.normal(0, 0.08))},
                   online=bool(k % 7 == 0)) for k in range(200)]  # fmt: skip
    records += [act(id="nowhere")]
    catalogue = Catalogue.from_records(records)
    for max_km in (1.0, 3.0, 10.0):
        person = prepare(parse_profile({"location": HOME, "max_travel_km": max_km}), catalogue)
        idx, distance = catalogue.nearby(person.lat, person.lon, 2 * max_km)
        expected = allowed(person, catalogue, idx)
        np.testing.assert_array_equal(allowed(person, catalogue, idx, distance), expected)
        assert 0 < expected.sum() < len(idx)
