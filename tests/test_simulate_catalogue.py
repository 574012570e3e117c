"""Tests for the synthetic activity generator (training.simulate.catalogue) and the shipped demo
catalogue around Leeds."""

from __future__ import annotations

import importlib.util
import json
import math
import re
from collections import Counter
from pathlib import Path

import pytest

from matcher.contract import ACCESSIBILITY, NEEDS, parse_activity
from training.simulate.catalogue import _VENUES, ARCHETYPES, _id_width, generate_catalogue
from training.simulate.tables import read_table

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "matcher" / "data" / "demo_catalogue.json"
LEEDS = (53.7997, -1.5492)
PHONE = re.compile(r"^(0113 496 0\d{3}|01632 960\d{3})$")


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * 6371.0088 * math.asin(math.sqrt(a))


@pytest.fixture(scope="module")
def big() -> list[dict]:
    return generate_catalogue(20_000, seed=11)


def test_archetypes_are_many_and_well_formed():
    assert len(ARCHETYPES) >= 40
    assert len({a.key for a in ARCHETYPES}) == len(ARCHETYPES)
    for kind in ARCHETYPES:
        assert len(kind.names) >= 2 and len(kind.descriptions) >= 2, kind.key
        assert kind.tags and kind.needs, kind.key
        assert set(kind.needs) | set(kind.extra_needs) <= set(NEEDS), kind.key
        assert kind.format in ("group", "one_to_one")
        for template in kind.names + kind.descriptions:
            template.format(place="Meanwood")  # only the {place} slot
        assert abs(sum(p for _, p in kind.cost) - 1) < 1e-9, kind.key


def test_listing_tables_cover_every_archetype():
    venues = {kind.venue for kind in ARCHETYPES}
    assert venues <= set(_VENUES)
    access = read_table("venue_access")["venues"]
    assert venues | {"online"} <= set(access)
    for venue, p in access.items():
        assert list(p) == list(ACCESSIBILITY), venue  # every feature, in the contract's order
        assert all(0.0 <= x <= 1.0 for x in p.values()), venue


def test_same_seed_same_catalogue():
    assert generate_catalogue(500, seed=7) == generate_catalogue(500, seed=7)


def test_different_seeds_differ():
    a, b = generate_catalogue(200, seed=1), generate_catalogue(200, seed=2)
    assert a != b
    assert sum(x["name"] == y["name"] for x, y in zip(a, b, strict=True)) < 50


def test_every_record_validates_and_ids_are_unique(big):
    for record in big:
        parse_activity(record)
    ids = [r["id"] for r in big]
    assert len(set(ids)) == len(ids)
    assert ids[0] == "act-00000" and ids[-1] == "act-19999"


def test_id_prefix_and_width():
    records = generate_catalogue(3, seed=0, id_prefix="x-")
    assert [r["id"] for r in records] == ["x-00000", "x-00001", "x-00002"]
    assert _id_width(99_999) == 5 and _id_width(100_000) == 6
    assert generate_catalogue(0) == []


def test_field_mix(big):
    n = len(big)
    count = Counter()
    for r in big:
        count["online"] += bool(r.get("online"))
        count["inactive"] += r.get("status") == "inactive"
        count["no_needs"] += not r.get("needs")
        count["min_age"] += "min_age" in r
        count["max_age"] += "max_age" in r
        count["male"] += r.get("gender") == "male"
        count["female"] += r.get("gender") == "female"
        count["unknown_location"] += not r.get("online") and not r.get("location")
        count["by_arrangement"] += not r["sessions"]
        count["cost_unknown"] += r["cost"] is None
        count["free"] += r["cost"] == 0
        count["paid"] += bool(r["cost"])
        count["no_tags"] += not r.get("tags")
        count["languages"] += "languages" in r
        count["professional"] += r.get("referral") == "professional"
        count["one_to_one"] += r.get("format") == "one_to_one"
        count["accessible"] += "wheelchair" in r.get("accessibility", [])
    share = {k: v / n for k, v in count.items()}
    assert 0.06 < share["online"] < 0.10
    assert 0.02 < share["inactive"] < 0.06
    assert 0.02 < share["unknown_location"] < 0.045
    assert 0.13 < share["no_needs"] < 0.17
    assert share["free"] > 0.5 and share["paid"] > 0.1 and share["cost_unknown"] > 0.03
    for key in ("min_age", "max_age", "male", "female", "by_arrangement", "no_tags",
                "languages", "professional", "one_to_one", "accessible"):  # fmt: skip
        assert share[key] > 0.003, key


def test_online_records_have_no_location_and_located_ones_do(big):
    for r in big:
        if r.get("online"):
            assert not r.get("location")
        elif r.get("location"):
            assert -90 <= r["location"]["lat"] <= 90


def test_all_need_codes_appear(big):
    listed = Counter(code for r in big for code in r.get("needs", []))
    assert set(listed) == set(NEEDS)
    assert min(listed.values()) > 50


def test_missing_rate_controls_needs():
    assert all(r.get("needs") for r in generate_catalogue(300, seed=3, missing_rate=0.0))
    assert not any(r.get("needs") for r in generate_catalogue(300, seed=3, missing_rate=1.0))


def test_age_and_gender_where_real(big):
    for r in big:
        if r.get("gender") and "description" in r:  # a single-gender group says so
            word = r"\bmen\b|\bmen's|\blads\b" if r["gender"] == "male" else r"women|ladies"
            assert re.search(word, r["name"] + " " + r["description"], re.I), r["name"]
        if "max_age" in r:
            assert r["min_age"] >= 16 and r["max_age"] <= 25
    recovery = [
        r for r in big if re.search(r"drinking|drug|addiction", r.get("description", ""))
        and "min_age" in r
    ]  # fmt: skip
    assert recovery and all(r["min_age"] >= 18 for r in recovery)


def test_contacts_are_fictional(big):
    for r in big:
        contact = r.get("contact") or {}
        if "phone" in contact:
            assert PHONE.match(contact["phone"]), contact["phone"]
        if "email" in contact:
            assert contact["email"].endswith("@example.org")
        if "url" in contact:
            assert contact["url"].startswith("https://example.org/")


def test_disc_scatter_stays_within_radius():
    centre = (51.4545, -2.5879)  # Bristol: phone numbers switch to the 01632 range
    records = generate_catalogue(2000, seed=5, centre=centre, radius_km=4.0)
    located = [r for r in records if r.get("location")]
    assert located
    for r in located:
        loc = r["location"]
        assert set(loc) == {"lat", "lon"}
        assert haversine_km(loc["lat"], loc["lon"], *centre) <= 4.01
    phones = [r["contact"]["phone"] for r in records if "phone" in r.get("contact", {})]
    assert phones and all(p.startswith("01632 960") for p in phones)


def test_places_are_honoured():
    places = [("Meanwood", 53.8291, -1.5664, "LS6 4AB"), ("Otley", 53.9018, -1.6966, "LS21 3XY")]
    records = generate_catalogue(400, seed=9, places=places)
    located = [r for r in records if r.get("location")]
    assert len(located) > 300
    by_postcode = {p[3]: p for p in places}
    seen = set()
    for r in located:
        loc = r["location"]
        place = by_postcode[loc["postcode"]]
        seen.add(place[0])
        assert loc["address"].endswith(", " + place[0])
        if "lat" in loc:
            assert loc["lat"] == round(loc["lat"], 5)
            assert haversine_km(loc["lat"], loc["lon"], place[1], place[2]) <= 0.61
    assert seen == {"Meanwood", "Otley"}
    assert any("Meanwood" in r["name"] for r in records)


# --- the shipped demo catalogue -------------------------------------------------------------


@pytest.fixture(scope="module")
def demo() -> dict:
    return json.loads(DEMO.read_text(encoding="utf-8"))


def test_demo_catalogue_loads_and_validates(demo):
    assert "synthetic" in demo["about"].lower() and "make_demo_catalogue.py" in demo["about"]
    activities = demo["activities"]
    assert 300 <= len(activities) <= 400
    for record in activities:
        parse_activity(record)
    assert len({r["id"] for r in activities}) == len(activities)


def test_demo_catalogue_is_around_leeds(demo):
    located = [r for r in demo["activities"] if r.get("location") and "lat" in r["location"]]
    assert len(located) > 250
    for r in located:
        loc = r["location"]
        assert haversine_km(loc["lat"], loc["lon"], *LEEDS) <= 20.0, r["id"]
    postcodes = [r["location"]["postcode"] for r in demo["activities"] if r.get("location")]
    assert all(re.fullmatch(r"LS\d{1,2} \d[A-Z]{2}", p) for p in postcodes)
    assert len({a.split(", ")[-1] for r in located for a in [r["location"]["address"]]}) >= 30


def test_demo_postcodes_are_in_real_sectors(demo):
    geo = pytest.importorskip("matcher.geo")
    for r in demo["activities"]:
        loc = r.get("location")
        if loc:
            lat, lon, precision = geo.lookup(loc["postcode"])
            assert precision == "sector"
            if "lat" in loc:
                assert haversine_km(loc["lat"], loc["lon"], lat, lon) <= 0.61


def test_demo_catalogue_is_what_the_script_writes(demo):
    pytest.importorskip("matcher.geo")
    spec = importlib.util.spec_from_file_location(
        "make_demo_catalogue", ROOT / "scripts" / "make_demo_catalogue.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rebuilt = json.loads(json.dumps(module.build(), ensure_ascii=False))
    assert rebuilt == demo, "run scripts/make_demo_catalogue.py to refresh the shipped file"
