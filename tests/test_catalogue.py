"""Tests for matcher.catalogue: the three native file forms, what is reported and skipped,
geocoding, need inference, the spatial index, and the two real Open Referral UK feeds."""

from __future__ import annotations

import json

import numpy as np
import pytest

from matcher import geo
from matcher.catalogue import Catalogue
from matcher.contract import NEEDS
from matcher.errors import CatalogueError, UnknownActivity

LEEDS = (53.8, -1.55)


def act(id_: str, name: str | None = None, **fields) -> dict:
    return {"id": id_, "name": name or f"Activity {id_}", **fields}


RECORDS = [
    act("a1", "Meanwood walking group", needs=["physical_activity"],
        location={"lat": 53.83, "lon": -1.58}),
    act("a2", "Debt advice", needs=["money"], location={"postcode": "LS1 3ES"}),
    act("a3", "Online chair yoga", needs=["physical_activity"], online=True),
]  # fmt: skip


# --- the three native forms -----------------------------------------------------------------


def test_load_object_with_activities(tmp_path):
    path = tmp_path / "catalogue.json"
    path.write_text(json.dumps({"activities": RECORDS}), "utf-8")
    catalogue = Catalogue.load(path)
    assert catalogue.ids == ["a1", "a2", "a3"]
    assert catalogue.report.kind == "catalogue"
    assert catalogue.report.records == catalogue.report.loaded == 3
    assert catalogue.report.skipped == []


def test_load_bare_array(tmp_path):
    path = tmp_path / "catalogue.json"
    path.write_text(json.dumps(RECORDS), "utf-8")
    catalogue = Catalogue.load(path)
    assert catalogue.ids == ["a1", "a2", "a3"]
    assert catalogue.get("a2").name == "Debt advice"


def test_load_json_lines_with_a_malformed_line(tmp_path):
    lines = [json.dumps(RECORDS[0]), '{"id": "broken", "name": ', json.dumps(RECORDS[1]), "",
             json.dumps(RECORDS[2])]  # fmt: skip
    path = tmp_path / "catalogue.jsonl"
    path.write_text("\n".join(lines) + "\n", "utf-8")
    catalogue = Catalogue.load(path)
    assert catalogue.ids == ["a1", "a2", "a3"]
    assert catalogue.report.kind == "jsonl"
    where = [w for w, _ in catalogue.report.skipped]
    assert where == ["line 2"]
    assert "malformed JSON" in catalogue.report.skipped[0][1]
    assert catalogue.report.loaded == 3
    assert catalogue.report.records == 4  # the malformed line was read too: nothing unaccounted


def test_json_lines_invalid_record_is_reported_by_its_line(tmp_path):
    lines = [json.dumps(RECORDS[0]), json.dumps(act("bad", cost=-1)), json.dumps(RECORDS[1])]
    path = tmp_path / "catalogue.jsonl"
    path.write_text("\n".join(lines), "utf-8")
    catalogue = Catalogue.load(path)
    assert catalogue.ids == ["a1", "a2"]
    ((where, why),) = catalogue.report.skipped
    assert where.startswith("line 2") and "bad" in where
    assert "cost" in why


def test_json_lines_with_a_single_activity(tmp_path):
    # one line of JSON Lines is also a JSON object: it is one activity, not a broken catalogue
    path = tmp_path / "catalogue.jsonl"
    path.write_text(json.dumps(RECORDS[0]) + "\n", "utf-8")
    catalogue = Catalogue.load(path)
    assert catalogue.ids == ["a1"]


def test_bom_is_tolerated(tmp_path):
    path = tmp_path / "catalogue.json"
    path.write_text("\ufeff" + json.dumps(RECORDS), "utf-8")
    assert len(Catalogue.load(path)) == 3


@pytest.mark.parametrize(
    "content", ["", "   \n", "not json at all", '{"something": "else"}', "[1, 2", "42"]
)
def test_unreadable_catalogue_files_raise_catalogue_error(tmp_path, content):
    path = tmp_path / "catalogue.json"
    path.write_text(content, "utf-8")
    with pytest.raises(CatalogueError) as info:
        Catalogue.load(path)
    assert str(path) in str(info.value)


def test_missing_file_raises_catalogue_error(tmp_path):
    with pytest.raises(CatalogueError, match="no such file"):
        Catalogue.load(tmp_path / "nope.json")


def test_a_file_with_no_valid_activity_is_an_error(tmp_path):
    path = tmp_path / "catalogue.json"
    path.write_text(json.dumps([{"id": "x"}, {"name": "y"}]), "utf-8")
    with pytest.raises(CatalogueError, match="no valid activities"):
        Catalogue.load(path)
    with pytest.raises(CatalogueError):
        Catalogue.from_records([])


# --- reported and skipped -------------------------------------------------------------------


def test_duplicate_ids_and_invalid_records_are_skipped_and_reported_by_id():
    catalogue = Catalogue.from_records([
        act("a", "First a"),
        act("b", cost=-3),
        act("a", "Second a"),
        act("c", gender="women"),
        "not an object",
        act("d"),
    ])  # fmt: skip
    assert catalogue.ids == ["a", "d"]
    assert catalogue.get("a").name == "First a"  # the first of a duplicate is kept
    skipped = dict(catalogue.report.skipped)
    assert len(skipped) == 4
    by_id = {w: r for w, r in skipped.items() if "(id " in w}
    assert any("(id b)" in w and "cost" in r for w, r in by_id.items())
    assert any("(id a)" in w and r == "duplicate id" for w, r in by_id.items())
    assert any("(id c)" in w and "gender" in r for w, r in by_id.items())
    assert any(w.startswith("record 5") for w in skipped)
    assert catalogue.report.records == 6 and catalogue.report.loaded == 2


def test_unknown_fields_are_warned_about_not_fatal():
    catalogue = Catalogue.from_records(
        [act("a", pc_targetAudience="Adults"), act("b", pc_targetAudience="All", colour="red")]
    )
    assert len(catalogue) == 2
    warnings = " | ".join(catalogue.report.warnings)
    assert "'pc_targetAudience'" in warnings and "2 records" in warnings
    assert "'colour'" in warnings and "1 records" in warnings
    assert "colour" not in json.dumps(catalogue.get("b").to_dict())


def test_report_counts():
    catalogue = Catalogue.from_records([
        act("located", location={"lat": 53.8, "lon": -1.55}, needs=["money"]),
        act("online", online=True, needs=["money"]),
        act("nowhere", needs=["money"]),
        act("closed", status="inactive", needs=["money"], location={"lat": 53.8, "lon": -1.5}),
        act("debt", "Debt and benefits advice"),
    ])  # fmt: skip
    report = catalogue.report
    assert report.loaded == 5
    assert report.online == 1
    assert report.without_location == 2  # "nowhere" and "debt"; online is not "unknown"
    assert report.inactive == 1
    assert report.needs_inferred == 1
    summary = report.summary()
    assert "5 loaded" in summary and "1 online" in summary


def test_descriptions_are_cleaned_of_html_at_load():
    catalogue = Catalogue.from_records(
        [act("a", description="<p>Tea &amp; cake</p><script>x()</script>")]
    )
    assert catalogue.get("a").description == "Tea & cake"


def test_unknown_id_raises_unknown_activity():
    catalogue = Catalogue.from_records(RECORDS)
    with pytest.raises(UnknownActivity, match="nope"):
        catalogue.get("nope")
    assert catalogue.index_of("a3") == 2


# --- geocoding ------------------------------------------------------------------------------


def test_postcode_only_activities_are_geocoded():
    catalogue = Catalogue.from_records([
        act("full", location={"postcode": "LS6 3HN"}),
        act("district", location={"postcode": "LS6"}),
        act("point", location={"lat": 53.81, "lon": -1.56, "postcode": "LS1 3ES"}),
    ])  # fmt: skip
    lat, lon, _ = geo.lookup("LS6 3HN")
    assert catalogue.lat[0] == pytest.approx(lat) and catalogue.lon[0] == pytest.approx(lon)
    lat, lon, _ = geo.lookup("LS6")
    assert catalogue.lat[1] == pytest.approx(lat) and catalogue.lon[1] == pytest.approx(lon)
    # given coordinates win over the postcode
    assert (catalogue.lat[2], catalogue.lon[2]) == (53.81, -1.56)
    assert list(catalogue.location_precision) == [2, 1, 3]
    assert catalogue.located.all()
    assert catalogue.report.warnings == []


def test_unknown_postcode_leaves_location_unknown_with_a_warning():
    catalogue = Catalogue.from_records([
        act("ok", location={"postcode": "LS6 3HN"}),
        act("unknown", location={"postcode": "ZZ99 9ZZ"}),
        act("gibberish", location={"postcode": "not a postcode"}),
    ])  # fmt: skip
    assert list(catalogue.located) == [True, False, False]
    assert np.isnan(catalogue.lat[1]) and np.isnan(catalogue.lon[2])
    assert any("2 activities" in w and "postcode" in w for w in catalogue.report.warnings)
    assert catalogue.report.without_location == 2


# --- need inference -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "description", "need"),
    [
        ("Debt and benefits advice", None, "money"),
        ("Walking football", None, "physical_activity"),
        ("Lunch club", "A friendly lunch club for people who feel isolated.", "loneliness"),
        ("Foodbank", "Emergency food parcels.", "food"),
        ("Carers cafe", "A break for unpaid carers.", "carers"),
        ("Get online", "Help with computers, tablets and the internet.", "digital"),
        ("Cruse", "Bereavement support after a death.", "bereavement"),
    ],
)
def test_inferred_needs_are_sensible(name, description, need):
    catalogue = Catalogue.from_records(
        [act("x", name, description=description), act("y", "Knit and natter", needs=["carers"])]
    )
    needs, inferred = catalogue.needs_of(0)
    assert inferred
    assert needs[0] == need, needs


def test_needs_are_inferred_only_for_activities_that_list_none():
    catalogue = Catalogue.from_records([
        act("listed", "Walking football", needs=["money"], description="debt advice too"),
        act("empty", "Walking football", needs=[]),
        act("absent", "Walking football"),
    ])  # fmt: skip
    assert catalogue.needs_of(0) == (["money"], False)
    assert not catalogue.needs_inferred[0].any()
    assert not catalogue.needs_were_inferred[0]
    for i in (1, 2):
        needs, inferred = catalogue.needs_of(i)
        assert inferred and "physical_activity" in needs
        assert catalogue.needs_were_inferred[i]
        assert catalogue.needs_listed[i].sum() == 0


def test_inferred_needs_are_weaker_than_listed_and_few():
    catalogue = Catalogue.from_records([
        act("listed", "Debt advice", needs=["money", "housing"]),
        act("inferred", "Debt, benefits, money, housing, tenancy, eviction, rent and bills advice"),
    ])  # fmt: skip
    assert catalogue.needs_listed[0, NEEDS.index("money")] == 1.0
    row = catalogue.needs_inferred[1]
    assert 0 < row.max() < 1.0
    assert (row > 0).sum() <= 3
    needs, _ = catalogue.needs_of(1)
    assert set(needs[:2]) == {"money", "housing"}
    strengths = [row[NEEDS.index(n)] for n in needs]
    assert strengths == sorted(strengths, reverse=True)  # strongest first


def test_nothing_to_infer_means_no_needs_and_not_marked_inferred():
    catalogue = Catalogue.from_records([act("x", "Zqx"), act("y", "Debt advice", needs=["money"])])
    assert not catalogue.needs_inferred[0].any()
    assert not catalogue.needs_were_inferred[0]
    # needs_of must agree with needs_were_inferred: nothing was inferred, so it is not "inferred"
    assert catalogue.needs_of(0) == ([], False)


# --- the spatial index ----------------------------------------------------------------------


def _spread(n: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    records = []
    for k in range(n):
        kind = rng.random()
        if kind < 0.1:
            records.append(act(f"on{k}", online=True))
        elif kind < 0.2:
            records.append(act(f"nowhere{k}"))
        elif kind < 0.25:  # online and with a venue: still always a candidate
            records.append(act(f"both{k}", online=True, location={"lat": 53.0, "lon": -1.0}))
        else:
            lat = LEEDS[0] + rng.normal(0, 0.15)
            lon = LEEDS[1] + rng.normal(0, 0.25)
            records.append(act(f"at{k}", location={"lat": float(lat), "lon": float(lon)}))
    return records


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("radius", [0.5, 3.0, 10.0, 25.0])
def test_candidates_match_brute_force_haversine(seed, radius):
    catalogue = Catalogue.from_records(_spread(300, seed))
    rng = np.random.default_rng(seed + 100)
    for _ in range(5):
        lat = LEEDS[0] + rng.normal(0, 0.1)
        lon = LEEDS[1] + rng.normal(0, 0.1)
        found = set(catalogue.candidates(lat, lon, radius).tolist())
        distance = geo.haversine_km(lat, lon, catalogue.lat, catalogue.lon)
        with np.errstate(invalid="ignore"):
            inside = catalogue.located & (distance <= radius)
            borderline = catalogue.located & (np.abs(distance - radius) < 1e-6)
        always = catalogue.online | ~catalogue.located
        expected = set(np.flatnonzero(inside | always).tolist())
        fuzzy = set(np.flatnonzero(borderline).tolist())
        assert found - fuzzy == expected - fuzzy
        outside = catalogue.located & ~always & (distance > radius + 1e-6)
        assert not found & set(np.flatnonzero(outside).tolist())


def test_candidates_are_sorted_and_unique():
    catalogue = Catalogue.from_records(_spread(200, 7))
    found = catalogue.candidates(LEEDS[0], LEEDS[1], 8.0)
    assert list(found) == sorted(set(found.tolist()))


def test_candidates_always_include_online_and_location_unknown():
    catalogue = Catalogue.from_records([
        act("far", location={"lat": 51.5, "lon": -0.12}),  # London
        act("near", location={"lat": 53.801, "lon": -1.55}),
        act("online", online=True),
        act("unknown", location={"postcode": "ZZ99 9ZZ"}),
    ])  # fmt: skip
    found = [catalogue.ids[i] for i in catalogue.candidates(53.8, -1.55, 5.0)]
    assert found == ["near", "online", "unknown"]


def test_candidates_without_a_person_location_are_everything():
    catalogue = Catalogue.from_records(_spread(50, 3))
    assert list(catalogue.candidates(None, None, 5.0)) == list(range(len(catalogue)))


def test_candidates_when_nothing_is_located():
    catalogue = Catalogue.from_records([act("a", online=True), act("b")])
    assert list(catalogue.candidates(53.8, -1.55, 1.0)) == [0, 1]


# --- the real Open Referral UK feeds --------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["bristol-v1-services.json", "north-lincolnshire-v1-services.json"]
)
def test_real_oruk_feeds_load(oruk_dir, name):
    path = oruk_dir / name
    if not path.exists():
        pytest.skip(f"{path} is absent")
    catalogue = Catalogue.load(path)
    report = catalogue.report
    assert report.kind == "oruk"
    assert len(catalogue) > 500
    assert report.loaded == len(catalogue)
    assert report.records == report.loaded + len(report.skipped)
    # these feeds give no coordinates and no postcodes we can place: every activity is unplaced
    assert not catalogue.located.any()
    assert report.without_location + report.online == len(catalogue)
    # no taxonomy either: most needs come from the text
    assert catalogue.needs_were_inferred.sum() > 0.5 * len(catalogue)
    # and every description is plain text
    assert not any("<p>" in (a.description or "") for a in catalogue)
    # a search still finds everything (all unplaced activities are candidates)
    assert len(catalogue.candidates(51.45, -2.59, 5.0)) == len(catalogue)


def test_directory_search_filters_orders_and_measures():
    catalogue = Catalogue.from_records([
        {"id": "near", "name": "Walking group", "needs": ["physical_activity"],
         "location": {"lat": 53.80, "lon": -1.55}, "sessions": [{"day": "mon", "start": "10:00"}]},
        {"id": "far", "name": "Walking club", "needs": ["physical_activity"],
         "location": {"lat": 53.90, "lon": -1.55}, "sessions": [{"day": "tue", "start": "10:00"}]},
        {"id": "debt", "name": "Debt advice", "needs": ["money"],
         "location": {"lat": 53.801, "lon": -1.55}},
        {"id": "shut", "name": "Walking group (closed)", "status": "inactive"},
    ])  # fmt: skip
    ids = lambda found: [catalogue.ids[i] for i in found]  # noqa: E731
    found, distance = catalogue.search(near=(53.80, -1.55))
    assert ids(found) == ["near", "debt", "far"]  # nearest first; inactive never listed
    assert distance[catalogue.index_of("far")] == pytest.approx(11.1, abs=0.2)
    assert ids(catalogue.search(near=(53.80, -1.55), within_km=2)[0]) == ["near", "debt"]
    assert set(ids(catalogue.search(text="walking")[0])) == {"near", "far"}
    assert ids(catalogue.search(need="money")[0]) == ["debt"]
    assert ids(catalogue.search(day="tue")[0]) == ["far"]
    assert catalogue.search()[1] is None
