"""Property tests with hypothesis: random catalogues around Leeds and random valid profiles; no
suggestion ever breaks a hard need, and ranking is deterministic, bounded and honest."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matcher import geo
from matcher.catalogue import Catalogue
from matcher.contract import ACCESSIBILITY, DAY_PARTS, DAYS, NEEDS, parse_activity, parse_profile
from matcher.features import DEFAULT_TRAVEL_KM
from matcher.filters import violations
from matcher.ranking import FILL_REACH, Matcher

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

KNOWN_POSTCODES = ["LS6 3HN", "LS1 3ES", "LS9", "LS6", "LS17 6HB", "LS2 9JT", "LS12"]
WORDS = ["walking", "group", "choir", "allotment", "gardening", "debt", "advice", "coffee",
         "morning", "tai chi", "yoga", "friendly", "lunch club", "food bank", "carers", "café",
         "benefits", "computer", "knit", "natter", "<p>html</p>", "&amp;",
         "bereavement"]  # fmt: skip

lat = st.floats(53.6, 54.0, allow_nan=False)
lon = st.floats(-1.9, -1.2, allow_nan=False)
point = st.fixed_dictionaries({"lat": lat, "lon": lon})
text = st.lists(st.sampled_from(WORDS), min_size=1, max_size=6).map(" ".join)


def unique_subset(values, **kw):
    return st.lists(st.sampled_from(values), unique=True, **kw)


@st.composite
def sessions(draw):
    out = []
    for _ in range(draw(st.integers(0, 3))):
        hour = draw(st.integers(7, 21))
        out.append({"day": draw(st.sampled_from(DAYS)), "start": f"{hour:02d}:00",
                    "end": f"{hour + 1:02d}:30"})  # fmt: skip
    return out


@st.composite
def activity(draw, number: int) -> dict:
    record: dict = {"id": f"act-{number}", "name": draw(text)}
    if draw(st.booleans()):
        record["description"] = draw(text)
    record["needs"] = draw(unique_subset(NEEDS, max_size=3))
    record["tags"] = draw(unique_subset(WORDS, max_size=3))
    where = draw(st.sampled_from(["point", "postcode", "unknown postcode", "none"]))
    if where == "point":
        record["location"] = draw(point)
    elif where == "postcode":
        record["location"] = {"postcode": draw(st.sampled_from(KNOWN_POSTCODES))}
    elif where == "unknown postcode":
        record["location"] = {"postcode": "ZZ99 9ZZ"}
    record["online"] = (
        draw(st.booleans()) if where == "none" else draw(st.sampled_from([False] * 4 + [True]))
    )
    record["sessions"] = draw(sessions())
    record["cost"] = draw(st.one_of(st.none(), st.just(0), st.floats(0, 20, allow_nan=False)))
    record["accessibility"] = draw(unique_subset(ACCESSIBILITY, max_size=4))
    low = draw(st.one_of(st.none(), st.integers(16, 70)))
    high = draw(st.one_of(st.none(), st.integers(low or 16, 110)))
    record["min_age"], record["max_age"] = low, high
    record["gender"] = draw(st.sampled_from([None] * 6 + ["female", "male"]))
    record["format"] = draw(st.sampled_from([None, "group", "one_to_one"]))
    record["languages"] = draw(unique_subset(["en", "pl", "ur", "pa"], max_size=2))
    record["status"] = draw(st.sampled_from(["active"] * 5 + ["inactive"]))
    record["capacity"] = draw(st.one_of(st.none(), st.integers(1, 40)))
    return record


@st.composite
def catalogues(draw) -> list[dict]:
    n = draw(st.integers(1, 25))
    return [draw(activity(k)) for k in range(n)]


@st.composite
def profiles(draw, ids: list[str]) -> dict:
    profile: dict = {}
    if draw(st.booleans()):
        profile["id"] = draw(st.text(max_size=10))
    if draw(st.booleans()):
        profile["age"] = draw(st.integers(16, 120))
    where = draw(st.sampled_from(["point", "postcode", "none"]))
    if where == "point":
        profile["location"] = draw(point)
    elif where == "postcode":
        profile["location"] = {"postcode": draw(st.sampled_from(KNOWN_POSTCODES))}
    profile["needs"] = draw(unique_subset(NEEDS, max_size=4))
    if draw(st.booleans()):
        profile["interests"] = draw(st.one_of(text, st.lists(text, max_size=3)))
    profile["travel"] = draw(st.sampled_from([None, "walk", "public_transport", "car"]))
    if draw(st.booleans()):
        profile["max_travel_km"] = draw(st.floats(0.5, 40, allow_nan=False))
    profile["accessibility"] = draw(unique_subset(ACCESSIBILITY, max_size=2))
    if draw(st.booleans()):
        profile["availability"] = draw(unique_subset(DAY_PARTS, max_size=6))
    if draw(st.booleans()):
        profile["max_cost"] = draw(st.floats(0, 10, allow_nan=False))
    profile["format"] = draw(st.sampled_from([None, "group", "one_to_one"]))
    profile["online"] = draw(st.sampled_from(["no", "ok", "only"]))
    profile["gender"] = draw(st.sampled_from([None, "female", "male", "non-binary"]))
    profile["languages"] = draw(unique_subset(["en", "pl", "ur", "so"], max_size=2))
    profile["exclude"] = draw(unique_subset([*ids, "not-in-catalogue"], max_size=3))
    return {k: v for k, v in profile.items() if v is not None}


def where_is(location: dict | None) -> tuple[float, float] | None:
    """Coordinates of a contract location, worked out here rather than by the library."""
    if not location:
        return None
    if location.get("lat") is not None:
        return location["lat"], location["lon"]
    try:
        found = geo.lookup(location["postcode"])
    except geo.UnknownPostcode:
        return None
    return found[0], found[1]


def distance_to(profile: dict, record: dict) -> float | None:
    here, there = where_is(profile.get("location")), where_is(record.get("location"))
    if here and there:
        return float(geo.haversine_km(here[0], here[1], there[0], there[1]))
    return None


def usual_km(profile: dict) -> float:
    return profile.get("max_travel_km") or DEFAULT_TRAVEL_KM[profile.get("travel")]


def audit(profile: dict, record: dict) -> list[str]:
    """Every hard need ``record`` breaks for ``profile``, distance included (a stated
    max_travel_km; a travel mode's default radius is a preference, not a hard need)."""
    return violations(
        parse_profile(profile),
        parse_activity(record),
        distance_km=distance_to(profile, record),
        max_km=usual_km(profile),
    )


def reach(profile: dict, record: dict, km: float | None) -> bool:
    """Within ``km`` of the person (online, unknown places and no ``km`` are anywhere)."""
    distance = distance_to(profile, record)
    return km is None or record["online"] or distance is None or distance <= km + 1e-9


def fill_reach(profile: dict) -> float | None:
    """How far the fill beyond the usual reach goes; None when there is no fill."""
    fills = (
        where_is(profile.get("location")) is not None
        and profile.get("max_travel_km") is None
        and profile.get("online", "ok") != "only"
    )
    return usual_km(profile) * FILL_REACH if fills else None


def expected_length(profile: dict, records: list[dict], n: int, dropped=()) -> int:
    """What ``recommend`` must return: everything safe within the usual reach, then (the fill)
    within the fill's reach, up to ``n``."""
    safe = [r for r in records if not audit(profile, r) and r["id"] not in dropped]
    inside = [r for r in safe if reach(profile, r, usual_km(profile))]
    further = fill_reach(profile)
    beyond = [] if further is None else [r for r in safe if reach(profile, r, further)]
    return min(n, max(len(inside), len(beyond)))


@st.composite
def cases(draw):
    records = draw(catalogues())
    profile = draw(profiles([r["id"] for r in records]))
    n = draw(st.integers(1, 15))
    return records, profile, n


@SETTINGS
@given(cases())
def test_ranking_properties(case):
    records, profile, n = case
    catalogue = Catalogue.from_records(records)
    matcher = Matcher(catalogue)
    by_id = {r["id"]: r for r in records}

    matches = matcher.recommend(profile, n)
    ids = [m.activity_id for m in matches]

    # at most n, no duplicates
    assert len(matches) <= n
    assert len(set(ids)) == len(ids)
    # scores are chances
    for m in matches:
        assert math.isfinite(m.score) and 0.0 <= m.score <= 1.0
        assert 2 <= len(m.reasons) <= 4
    # no suggestion ever breaks a hard need, fill or not
    for activity_id in ids:
        broken = audit(profile, by_id[activity_id])
        assert not broken, (activity_id, broken)
    # the usual reach first; beyond it only as the fill (no max_travel_km stated), saying so
    usual = usual_km(profile)
    inside = [m for m in matches if not m.beyond_usual]
    assert matches[: len(inside)] == inside
    for m in inside:
        assert reach(profile, by_id[m.activity_id], usual)
    for m in matches[len(inside) :]:
        assert fill_reach(profile) is not None and not m.activity.online
        assert usual < m.distance_km <= fill_reach(profile) + 1e-9
        assert any("further than" in r for r in m.reasons)
    # and nothing safe is held back when fewer than n came back
    safe = [r["id"] for r in records if not audit(profile, r)]
    assert len(matches) == expected_length(profile, records, n), (ids, safe)
    assert set(ids) <= set(safe)
    # deterministic
    again = matcher.recommend(profile, n)
    assert [(m.activity_id, m.score, m.reasons) for m in again] == [
        (m.activity_id, m.score, m.reasons) for m in matches
    ]
    # exclude honoured
    if ids:
        dropped = ids[: max(1, len(ids) // 2)]
        rest = matcher.recommend(profile, n, exclude=dropped)
        assert not set(dropped) & {m.activity_id for m in rest}
        assert len(rest) == expected_length(profile, records, n, dropped)
    # without the variety re-rank: the same rules, in score order
    plain = matcher.recommend(profile, n, variety=False)
    assert {m.activity_id for m in plain} <= set(safe)
    assert len(plain) == len(matches)
    plain_scores = [m.score for m in plain if not m.beyond_usual]
    assert plain_scores == sorted(plain_scores, reverse=True)


@SETTINGS
@given(catalogues(), st.data())
def test_same_profile_under_another_id_ranks_the_same(records, data):
    matcher = Matcher(Catalogue.from_records(records))
    profile = data.draw(profiles([r["id"] for r in records]))
    a = matcher.recommend({**profile, "id": "first"}, 10)
    b = matcher.recommend({**profile, "id": "second"}, 10)
    assert [(m.activity_id, m.score) for m in a] == [(m.activity_id, m.score) for m in b]


@SETTINGS
@given(catalogues())
def test_catalogue_reports_every_record(records):
    catalogue = Catalogue.from_records(records)
    report = catalogue.report
    assert report.loaded == len(catalogue) == len(records)
    assert report.records == len(records) and report.skipped == []
    assert report.online == sum(bool(r["online"]) for r in records)
    unknown = sum(1 for r in records if not r["online"] and where_is(r.get("location")) is None)
    assert report.without_location == unknown
    for i, r in enumerate(records):
        needs, inferred = catalogue.needs_of(i)
        if r["needs"]:
            assert needs == r["needs"] and not inferred
        assert set(needs) <= set(NEEDS)


@SETTINGS
@given(catalogues(), st.data())
def test_fill_and_stated_limits_never_break_a_hard_need(records, data):
    """People on the edge of the catalogue's area, where the fill is common: no suggestion
    breaks a hard need, and a stated max_travel_km is never passed."""
    matcher = Matcher(Catalogue.from_records(records))
    profile = data.draw(profiles([r["id"] for r in records]))
    profile["location"] = data.draw(st.fixed_dictionaries({
        "lat": st.floats(53.4, 54.2, allow_nan=False), "lon": st.floats(-2.2, -0.9, allow_nan=False)
    }))  # fmt: skip
    stated = data.draw(st.one_of(st.none(), st.floats(0.5, 15, allow_nan=False)))
    profile.pop("max_travel_km", None)
    if stated is not None:
        profile["max_travel_km"] = stated
    n = data.draw(st.integers(1, 30))
    found = matcher.suggest(profile, n)
    by_id = {r["id"]: r for r in records}
    for m in found.matches:
        assert not audit(profile, by_id[m.activity_id]), m.activity_id
        if stated is not None and m.distance_km is not None and not m.activity.online:
            assert m.distance_km <= stated + 1e-9
    assert len(found.matches) == expected_length(profile, records, n)
    assert (stated is None) or not any(m.beyond_usual for m in found.matches)
    # a list shorter than asked, or reaching beyond the usual distance, says why
    filled = any(m.beyond_usual for m in found.matches)
    assert bool(found.notes) == (len(found.matches) < n or filled)
