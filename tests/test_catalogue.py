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


# --- text: cleaned and tokenised once, at load ----------------------------------------------


def test_descriptions_are_cleaned_once_at_load_and_never_again(monkeypatch):
    import matcher.catalogue as module
    from matcher.text import clean_html

    calls = []

    def counting(text):
        calls.append(text)
        return clean_html(text)

    monkeypatch.setattr(module, "clean_html", counting)
    records = [act(f"d{k}", description=f"<p>Walk {k} &amp; talk</p>") for k in range(5)]
    records += [act("plain", description="Fish &amp;amp; chips"), act("none")]
    catalogue = Catalogue.from_records(records)
    assert len(calls) == 6  # one cleaning per description, none for the activity without one
    assert catalogue.get("d0").description == "Walk 0 & talk"
    # decoded once: the text said "&amp;" in so many letters, and still does
    assert catalogue.get("plain").description == "Fish &amp; chips"
    assert catalogue.has_word(catalogue.index_of("plain"), "amp")
    assert catalogue.has_word(catalogue.index_of("plain"), "chip")
    assert not catalogue.has_word(catalogue.index_of("plain"), "walk")

    from matcher.ranking import Matcher

    calls.clear()
    monkeypatch.setattr(Catalogue, "text_of", lambda *_: pytest.fail("text_of at request time"))
    matches = Matcher(catalogue).recommend({"interests": "fish and chips, talk"}, 10)
    assert matches and calls == []  # serving cleans nothing


def test_an_oruk_description_is_cleaned_once(tmp_path):
    feed = {"content": [{"id": "s1", "name": "Chippy club",
                         "description": "<p>Fish &amp;amp; chips</p>",
                         "organization": {"name": "Org"}}]}  # fmt: skip
    path = tmp_path / "feed.json"
    path.write_text(json.dumps(feed), "utf-8")
    catalogue = Catalogue.load(path)
    assert catalogue.report.kind == "oruk"
    assert catalogue.get("s1").description == "Fish &amp; chips"


def test_text_of_reads_the_prepared_description():
    catalogue = Catalogue.from_records([act("a", "Walks", description="<b>Tea</b> &amp;amp; cake")])
    text = Catalogue.text_of(catalogue.get("a"))
    assert text.endswith("Tea &amp; cake")  # as held, not cleaned a second time


# --- activities, materialised on demand ------------------------------------------------------


def test_activities_are_the_validated_records_with_clean_descriptions(demo_catalogue_file):
    from matcher.contract import parse_activity
    from matcher.text import clean_html

    raw = json.loads(demo_catalogue_file.read_text("utf-8"))["activities"]
    catalogue = Catalogue.load(demo_catalogue_file)
    assert len(catalogue.activities) == len(raw)
    for record, activity in zip(raw, catalogue, strict=True):
        expected = parse_activity(record)
        if expected.description:
            expected = expected.model_copy(update={"description": clean_html(expected.description)})
        assert activity == expected
        assert activity.to_dict() == expected.to_dict()
    assert catalogue.activities[-1] == catalogue.activities[len(raw) - 1]
    assert catalogue.activities[np.int64(3)].id == catalogue.ids[3]
    assert [a.id for a in catalogue.activities[2:5]] == catalogue.ids[2:5]
    with pytest.raises(IndexError):
        catalogue.activities[len(raw)]


# --- snapshots ------------------------------------------------------------------------------

SNAPSHOT_RECORDS = [
    *RECORDS,
    act("html", "Knit and natter", description="<p>Knitting &amp; a cuppa.</p><p>All welcome</p>",
        location={"postcode": "LS6 3HN"}, sessions=[{"day": "tue", "start": "19:00"}],
        languages=["en", "pl"], accessibility=["wheelchair"], cost=1.5, min_age=18),
    act("infer", "Debt and benefits advice drop-in", location={"postcode": "LS6"}),
    act("nowhere", "Walking football", location={"postcode": "ZZ99 9ZZ"}, status="inactive"),
    act("closed", "Closed choir", status="inactive", gender="female", format="group"),
]  # fmt: skip


def _catalogue_file(tmp_path, records=SNAPSHOT_RECORDS, name="catalogue.json"):
    path = tmp_path / name
    path.write_text(json.dumps({"activities": [*records, {"id": "bad", "cost": -1}]}), "utf-8")
    return path


def assert_same_catalogue(a: Catalogue, b: Catalogue) -> None:
    assert a.ids == b.ids and a.position == b.position
    assert list(a.activities) == list(b.activities)
    assert [x.to_dict() for x in a] == [x.to_dict() for x in b]
    for name in ("lat", "lon", "location_precision", "located", "online", "active", "min_age",
                 "max_age", "gender", "format", "referral", "cost", "capacity", "access",
                 "n_access", "slots", "n_sessions", "evening_share", "languages",
                 "needs_listed", "needs_inferred", "needs_were_inferred", "concepts",
                 "located_positions", "always_candidates"):  # fmt: skip
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), name
    for name in ("text_matrix", "text_columns"):
        x, y = getattr(a, name), getattr(b, name)
        assert type(x) is type(y) and x.shape == y.shape
        for part in ("data", "indices", "indptr"):
            assert np.array_equal(getattr(x, part), getattr(y, part)), (name, part)
    assert a.vectorizer.vocabulary_ == b.vectorizer.vocabulary_
    assert np.array_equal(a.vectorizer.idf_, b.vectorizer.idf_)
    query = ["likes the allotment and singing", "debt", "zzz"]
    assert (a.vectorizer.transform(query) != b.vectorizer.transform(query)).nnz == 0
    assert a.concept_names == b.concept_names and a.language_bit == b.language_bit
    reports = [c.report.to_dict() for c in (a, b)]
    for report in reports:  # what became of the snapshot aside, the same report
        report.pop("snapshot", None)
        report["warnings"] = [w for w in report["warnings"] if "snapshot" not in w]
    assert reports[0] == reports[1]


def test_snapshot_round_trip_equals_a_fresh_load(tmp_path):
    from matcher.ranking import Matcher

    path = _catalogue_file(tmp_path)
    fresh = Catalogue.load(path)
    assert fresh.report.snapshot is None
    first = Catalogue.load(path, tmp_path / "snapshots")
    assert first.report.snapshot.startswith("written ")
    later = Catalogue.load(path, tmp_path / "snapshots")
    assert later.report.snapshot.startswith("loaded ")
    assert later.report.skipped and later.report.warnings  # the bad record and the postcode
    for loaded in (first, later):
        assert_same_catalogue(fresh, loaded)
    profiles = [{"location": {"lat": 53.8, "lon": -1.55}, "needs": ["money", "loneliness"],
                 "interests": "knitting", "languages": ["pl"]},
                {"needs": ["physical_activity"], "age": 40}]  # fmt: skip
    for profile in profiles:
        expected = [m.to_dict() for m in Matcher(fresh).recommend(profile, 10)]
        assert [m.to_dict() for m in Matcher(later).recommend(profile, 10)] == expected
    assert later.search(text="knitting")[0].tolist() == fresh.search(text="knitting")[0].tolist()
    # one snapshot, named by the file's SHA-256, and nothing half-written left behind
    from matcher.catalogue import file_sha256

    assert [p.name for p in (tmp_path / "snapshots").iterdir() if not p.name.startswith(".b")] == [
        f"catalogue-{file_sha256(path)}"
    ]


def test_a_snapshot_load_neither_parses_nor_validates(tmp_path, monkeypatch):
    import matcher.catalogue as module

    path = _catalogue_file(tmp_path)
    Catalogue.load(path, tmp_path / "snapshots")
    for name in ("_parse_records", "parse_activity", "clean_html", "words"):
        monkeypatch.setattr(module, name, lambda *a, **k: pytest.fail("parsed again"))
    later = Catalogue.load(path, tmp_path / "snapshots")
    assert later.report.snapshot.startswith("loaded ")
    assert later.get("html").description == "Knitting & a cuppa.\nAll welcome"
    # the mapped arrays are read-only: nothing can change a snapshot shared between workers
    assert not later.lat.flags.writeable and not later.text_matrix.data.flags.writeable


def test_a_changed_file_gets_its_own_snapshot(tmp_path):
    path = _catalogue_file(tmp_path)
    Catalogue.load(path, tmp_path / "snapshots")
    path.write_text(json.dumps(RECORDS), "utf-8")
    changed = Catalogue.load(path, tmp_path / "snapshots")
    assert changed.report.snapshot.startswith("written ") and changed.ids == ["a1", "a2", "a3"]
    assert len(list((tmp_path / "snapshots").glob("catalogue-*"))) == 2


def _corrupt(folder, how):
    if how == "flipped byte":
        part = folder / "needs_inferred.npy"
        data = bytearray(part.read_bytes())
        data[-3] ^= 0xFF
        part.write_bytes(bytes(data))
    elif how == "truncated part":
        part = folder / "text_data.npy"
        part.write_bytes(part.read_bytes()[:-8])
    elif how == "missing part":
        (folder / "meta.json").unlink()
    elif how == "garbage manifest":
        (folder / "manifest.json").write_text("{not json", "utf-8")
    elif how == "another builder":
        manifest = json.loads((folder / "manifest.json").read_text("utf-8"))
        manifest["builder"] = "0" * 64
        (folder / "manifest.json").write_text(json.dumps(manifest), "utf-8")
    elif how == "another file":
        manifest = json.loads((folder / "manifest.json").read_text("utf-8"))
        manifest["source_sha256"] = "0" * 64
        (folder / "manifest.json").write_text(json.dumps(manifest), "utf-8")
    elif how == "an extra part":
        manifest = json.loads((folder / "manifest.json").read_text("utf-8"))
        manifest["parts"]["../../evil.npy"] = manifest["parts"]["lat.npy"]
        (folder / "manifest.json").write_text(json.dumps(manifest), "utf-8")


@pytest.mark.parametrize("how", ["flipped byte", "truncated part", "missing part",
                                 "garbage manifest", "another builder", "another file",
                                 "an extra part"])  # fmt: skip
def test_a_corrupt_or_mismatched_snapshot_is_rebuilt_with_a_note(tmp_path, how):
    path = _catalogue_file(tmp_path)
    fresh = Catalogue.load(path)
    (folder,) = Path_glob(tmp_path / "snapshots", path)
    _corrupt(folder, how)
    rebuilt = Catalogue.load(path, tmp_path / "snapshots")
    assert rebuilt.report.snapshot.startswith("written ")
    (note,) = [w for w in rebuilt.report.warnings if "snapshot" in w]
    assert "not used" in note and "rebuilt" in note
    assert_same_catalogue(fresh, rebuilt)
    again = Catalogue.load(path, tmp_path / "snapshots")  # and the new one is sound
    assert again.report.snapshot.startswith("loaded ")
    assert not any("snapshot" in w for w in again.report.warnings)


def Path_glob(snapshots, path):  # noqa: N802 - a helper: write the snapshot, return its folder
    Catalogue.load(path, snapshots)
    return sorted(snapshots.glob("catalogue-*"))


def test_a_snapshot_is_never_unpickled(tmp_path, monkeypatch):
    """Even a snapshot whose manifest vouches for a pickled part (someone who can write the
    instance folder) is refused before anything is unpickled, and rebuilt."""
    import hashlib
    import os
    import pickle

    path = _catalogue_file(tmp_path)
    (folder,) = Path_glob(tmp_path / "snapshots", path)
    marker = tmp_path / "unpickled"

    class Payload:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    part = folder / "lat.npy"
    np.save(part, np.array([Payload()], dtype=object), allow_pickle=True)
    manifest = json.loads((folder / "manifest.json").read_text("utf-8"))
    data = part.read_bytes()
    manifest["parts"]["lat.npy"] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    (folder / "manifest.json").write_text(json.dumps(manifest), "utf-8")

    def refuse(*args, **kwargs):
        raise AssertionError("a snapshot was unpickled")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    catalogue = Catalogue.load(path, tmp_path / "snapshots")
    assert not marker.exists()
    assert any("lat.npy holds Python objects" in w for w in catalogue.report.warnings)
    assert catalogue.report.snapshot.startswith("written ")


def test_loads_at_once_share_one_snapshot(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    path = _catalogue_file(tmp_path)
    with ThreadPoolExecutor(3) as pool:
        loaded = list(pool.map(lambda _: Catalogue.load(path, tmp_path / "snapshots"), range(3)))
    states = sorted(c.report.snapshot.split()[0] for c in loaded)
    assert states == ["loaded", "loaded", "written"]  # one built it; the others waited and mapped
    for other in loaded[1:]:
        assert_same_catalogue(loaded[0], other)
    names = [p.name for p in (tmp_path / "snapshots").iterdir()]
    assert len([n for n in names if n.startswith("catalogue-")]) == 1
    assert not [n for n in names if n.startswith(".catalogue-")]  # no temporary folder left


def test_a_snapshot_folder_that_cannot_be_written_still_loads(tmp_path):
    path = _catalogue_file(tmp_path)
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder", "utf-8")
    catalogue = Catalogue.load(path, blocked)
    assert catalogue.report.snapshot.startswith("not written")
    assert any("no catalogue snapshot could be written" in w for w in catalogue.report.warnings)
    assert_same_catalogue(Catalogue.load(path), catalogue)


def test_a_missing_file_is_a_catalogue_error_with_a_snapshot_folder(tmp_path):
    with pytest.raises(CatalogueError, match="no such file"):
        Catalogue.load(tmp_path / "nope.json", tmp_path / "snapshots")


def test_a_large_file_is_built_in_a_separate_process(tmp_path, monkeypatch):
    import matcher.catalogue as module

    monkeypatch.setattr(module, "_BUILD_APART_BYTES", 0)  # every file is "large"
    built_here = []
    monkeypatch.setattr(module, "_give_back_freed_memory", lambda: built_here.append(1))
    path = _catalogue_file(tmp_path)
    first = Catalogue.load(path, tmp_path / "snapshots")
    assert first.report.snapshot.startswith("written ") and built_here == []
    assert_same_catalogue(Catalogue.load(path), first)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"id": "x"}]), "utf-8")
    with pytest.raises(CatalogueError, match=f"{bad}: no valid activities"):
        Catalogue.load(bad, tmp_path / "snapshots")
