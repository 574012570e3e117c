"""Tests for the world simulator: determinism, contract-valid outputs, the hidden truth (hard
needs, interactions) and the biased link worker."""

from __future__ import annotations

import dataclasses
import json
from importlib.resources import files

import numpy as np
import pytest

from matcher import geo
from matcher.catalogue import Catalogue
from matcher.contract import NEEDS, parse_profile, parse_uptake
from matcher.features import prepare
from matcher.filters import allowed, violations
from matcher.text import CONCEPTS, concepts_in
from training.simulate import (
    ARCHETYPE_CONCEPTS,
    ARCHETYPES,
    CONCEPT_NAMES,
    PERSON_PHRASES,
    TOWNS,
    build_world,
    draw_population,
    hard_zero,
    main,
    simulate,
    town_places,
    true_logit,
)
from training.simulate.population import _CONCEPT_POPULARITY, _COOCCUR, _FIRST_NEED

SEED = 3
SMALL = {"n_activities": 150, "n_referrals": 3000, "n_heldout": 40}
FILES = ("catalogue.json", "uptake.jsonl", "heldout_profiles.jsonl", "heldout_uptake.jsonl",
         "truth.npz", "WORLD.md")  # fmt: skip


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("world")
    simulate(out, SEED, **SMALL)
    return out


@pytest.fixture(scope="module")
def catalogue(world_dir) -> Catalogue:
    return Catalogue.load(world_dir / "catalogue.json")


@pytest.fixture(scope="module")
def uptake(world_dir) -> list[dict]:
    with open(world_dir / "uptake.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def heldout(world_dir):
    with open(world_dir / "heldout_profiles.jsonl", encoding="utf-8") as f:
        profiles = [parse_profile(json.loads(line)) for line in f]
    truth = np.load(world_dir / "truth.npz")
    return profiles, truth


def test_same_seed_writes_identical_files(world_dir, tmp_path):
    simulate(tmp_path, SEED, **SMALL)
    for name in FILES:
        assert (tmp_path / name).read_bytes() == (world_dir / name).read_bytes(), name


def test_another_seed_is_another_world(world_dir, tmp_path):
    simulate(tmp_path, SEED + 1, **SMALL)
    assert (tmp_path / "uptake.jsonl").read_bytes() != (world_dir / "uptake.jsonl").read_bytes()
    assert list(TOWNS)[SEED % len(TOWNS)] in (world_dir / "WORLD.md").read_text()
    assert list(TOWNS)[(SEED + 1) % len(TOWNS)] in (tmp_path / "WORLD.md").read_text()


def test_catalogue_loads_cleanly(catalogue):
    assert len(catalogue) == SMALL["n_activities"]
    assert not catalogue.report.skipped
    assert catalogue.located.mean() > 0.8


def test_uptake_lines_are_contract_records(uptake, catalogue):
    assert len(uptake) == SMALL["n_referrals"]
    records = [parse_uptake(line) for line in uptake]
    assert all(r.activity_id in catalogue.position for r in records)
    dates = [r.date for r in records]
    assert dates == sorted(dates)
    assert (dates[-1] - dates[0]).days > 480  # about 18 months
    for r in records:
        if r.sessions_attended is not None:
            assert r.attended and r.sessions_attended >= 1
    # Several lines share a referral, with one profile; 1-3 activities each, never twice.
    by_referral: dict[str, list] = {}
    for r in records:
        by_referral.setdefault(r.referral_id, []).append(r)
    sizes = [len(v) for v in by_referral.values()]
    assert max(sizes) <= 3 and 1.4 < np.mean(sizes) < 2.0
    for lines in by_referral.values():
        assert len({r.profile.model_dump_json() for r in lines}) == 1
        assert len({r.activity_id for r in lines}) == len(lines)
    rate = np.mean([r.attended for r in records])
    assert 0.2 < rate < 0.6


def test_profiles_miss_fields_at_realistic_rates(uptake):
    profiles = {line["referral_id"]: line["profile"] for line in uptake}.values()
    share = {
        field: np.mean([field in p for p in profiles])
        for field in ("age", "location", "needs", "interests", "availability", "max_cost")
    }
    assert share["age"] > 0.85 and share["needs"] > 0.9
    assert 0.7 < share["location"] < 0.95
    assert 0.3 < share["interests"] < 0.8
    assert 0.25 < share["availability"] < 0.55
    assert 0.1 < share["max_cost"] < 0.5
    ids = [p["id"] for p in profiles]
    assert len(set(ids)) == len(ids)


def test_heldout_is_later_and_truth_is_aligned(heldout, uptake, catalogue, world_dir):
    profiles, truth = heldout
    assert len(profiles) == SMALL["n_heldout"]
    assert [p.id for p in profiles] == [str(x) for x in truth["profile_ids"]]
    assert [str(a) for a in truth["activity_ids"]] == catalogue.ids
    p = truth["p"]
    assert p.dtype == np.float32 and p.shape == (len(profiles), len(catalogue))
    assert (p >= 0).all() and (p <= 1).all()
    assert min(str(d) for d in truth["dates"]) > max(line["date"] for line in uptake)
    with open(world_dir / "heldout_uptake.jsonl", encoding="utf-8") as f:
        later = [parse_uptake(json.loads(line)) for line in f]
    assert {r.profile.id for r in later} <= {p.id for p in profiles}


def test_truth_is_zero_wherever_a_hard_need_is_broken(heldout, catalogue):
    profiles, truth = heldout
    everything = np.arange(len(catalogue))
    broken_pairs = 0
    for row, profile in enumerate(profiles):
        person = prepare(profile, catalogue)
        ok = allowed(person, catalogue, everything)
        p = truth["p"][row]
        assert (p[~ok] == 0).all()
        broken_pairs += int((~ok).sum())
        # The independent rules agree on a sample of pairs.
        for i in everything[::7]:
            distance = None
            if person.located and catalogue.located[i]:
                distance = float(geo.haversine_km(
                    person.lat, person.lon, catalogue.lat[i], catalogue.lon[i]
                ))  # fmt: skip
            if violations(profile, catalogue.activities[i], distance_km=distance,
                          max_km=person.max_km):  # fmt: skip
                assert p[i] == 0
    assert broken_pairs > 0
    assert (truth["p"] > 0).mean() > 0.2


def test_hard_zero_covers_needs_the_profile_left_out():
    world = build_world(SEED, 80)
    people = draw_population(np.random.default_rng(0), 300, world.places, len(world.acts))
    silent = dataclasses.replace(people, gender_stated=np.zeros(len(people), bool))
    women_only = world.acts.gender == 1
    if women_only.any():
        zero = hard_zero(silent, world.acts)
        assert zero[:, women_only].all()  # gender not stated: never a single-gender group
    online = world.acts.online
    no_online = dataclasses.replace(people, online=np.zeros(len(people), int))
    assert hard_zero(no_online, world.acts)[:, online].all()


@pytest.fixture(scope="module")
def small_world():
    world = build_world(SEED, 150)
    people = draw_population(np.random.default_rng(1), 200, world.places, len(world.acts))
    return world, people


def test_older_people_avoid_evening_sessions_all_else_equal(small_world):
    world, people = small_world
    n = len(people)
    at_50 = true_logit(dataclasses.replace(people, age=np.full(n, 50)), world.acts, world.params)
    at_68 = true_logit(dataclasses.replace(people, age=np.full(n, 68)), world.acts, world.params)
    acts = world.acts
    evening = (acts.evening_share > 0) & ~acts.online
    daytime = (acts.evening_share == 0) & ~acts.online
    assert evening.any() and daytime.any()
    assert (at_68[:, evening] < at_50[:, evening] - 1.0).all()
    assert np.allclose(at_68[:, daytime], at_50[:, daytime])
    gap = at_50[:, evening] - at_68[:, evening]
    assert np.allclose(gap, -world.params.evening_old * acts.evening_share[evening])


def test_anxious_people_avoid_large_groups_all_else_equal(small_world):
    world, people = small_world
    small = dataclasses.replace(world.acts, capacity=np.full(len(world.acts), 10.0))
    large = dataclasses.replace(world.acts, capacity=np.full(len(world.acts), 30.0))
    diff = true_logit(people, large, world.params) - true_logit(people, small, world.params)
    anxious = people.needs[:, 0] == NEEDS.index("mental_wellbeing")
    assert anxious.any() and (~anxious).any()
    assert np.allclose(diff[anxious], world.params.crowd_anxious)
    assert np.allclose(diff[~anxious], 0.0)


def test_quality_and_needs_move_the_truth(small_world):
    world, people = small_world
    better = dataclasses.replace(world.acts, quality=world.acts.quality + 1.0)
    diff = true_logit(people, better, world.params) - true_logit(people, world.acts, world.params)
    assert np.allclose(diff, 1.0)
    no_needs = dataclasses.replace(people, need_weights=np.zeros_like(people.need_weights))
    served = true_logit(people, world.acts, world.params)
    unserved = true_logit(no_needs, world.acts, world.params)
    assert (served >= unserved - 1e-9).all() and (served > unserved).mean() > 0.3


def test_link_worker_refers_by_need_and_nearness_not_quality(uptake, catalogue):
    world = build_world(SEED, SMALL["n_activities"])
    counts = np.bincount([catalogue.position[r["activity_id"]] for r in uptake],
                         minlength=len(catalogue))  # fmt: skip
    served = np.maximum(catalogue.needs_listed, catalogue.needs_inferred) > 0
    match, base = [], []
    for line in uptake:
        needs = line["profile"].get("needs")
        if not needs:
            continue
        col = NEEDS.index(needs[0])
        match.append(served[catalogue.position[line["activity_id"]], col])
        base.append(served[:, col].mean())
    assert np.mean(match) > 0.6 and np.mean(match) > 2 * np.mean(base)
    # Referral counts follow how many people's needs an activity's listing names ...
    demand = np.zeros(len(catalogue))
    for line in uptake:
        for k, code in enumerate(line["profile"].get("needs", [])):
            demand += served[:, NEEDS.index(code)] / (k + 1)
    assert np.corrcoef(counts, demand)[0, 1] > 0.3
    # ... not its quality, which only attendance reveals.
    attended = np.bincount([catalogue.position[r["activity_id"]] for r in uptake if r["attended"]],
                           minlength=len(catalogue))  # fmt: skip
    often = counts >= 10
    rate = attended[often] / counts[often]
    assert abs(np.corrcoef(counts, world.acts.quality)[0, 1]) < 0.25
    assert np.corrcoef(rate, world.acts.quality[often])[0, 1] > 0.3
    assert (counts == 0).any() or counts.max() > 5 * np.median(counts)
    shown = [line["shown"] for line in uptake if "shown" in line]
    assert 0.3 < len(shown) / len(uptake) < 0.8 and max(map(len, shown)) <= 6


def test_every_town_has_real_sectors():
    for town in TOWNS:
        places = town_places(town)
        assert len(places) >= 8, town
        for _, lat, lon, sector in places[:3]:
            got = geo.lookup(sector)
            assert got[2] == "sector" and abs(got[0] - lat) < 1e-4 and abs(got[1] - lon) < 1e-4


def test_people_describe_interests_in_their_own_words():
    assert set(CONCEPT_NAMES) <= set(CONCEPTS)
    recognised = [
        concept in concepts_in(phrase)
        for concept, phrases in PERSON_PHRASES.items()
        for phrase in phrases
    ]
    # The matcher's lexicon catches many, not all: the synonym gap is part of the world (and
    # interests left unsaid or unasked widen it further).
    assert 0.3 < np.mean(recognised) < 0.97


def test_world_tables_agree_with_each_other_and_the_contract():
    assert set(_CONCEPT_POPULARITY) == set(CONCEPT_NAMES)
    assert set(ARCHETYPE_CONCEPTS) <= {kind.key for kind in ARCHETYPES}
    assert {c for offered in ARCHETYPE_CONCEPTS.values() for c in offered} <= set(CONCEPT_NAMES)
    assert len(_FIRST_NEED) == 3 and all(set(table) <= set(NEEDS) for table in _FIRST_NEED)
    assert set(_COOCCUR) <= set(NEEDS)
    assert {c for friends in _COOCCUR.values() for c in friends} <= set(NEEDS)


def test_data_files_are_json_directly_in_the_data_folder():
    # Package data ships "simulate/data/*.json": nothing else, nothing in subfolders.
    names = [entry.name for entry in (files("training.simulate") / "data").iterdir()]
    assert "archetypes.json" in names and "towns.json" in names
    assert all(name.endswith(".json") for name in names), names


def test_command_line(tmp_path, capsys):
    out = tmp_path / "w"
    code = main(["--out", str(out), "--seed", "1", "--activities", "40", "--referrals", "50",
                 "--heldout", "5"])  # fmt: skip
    assert code == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["uptake_lines"] == 50
    assert "uptake:" in captured.err
    assert len((out / "uptake.jsonl").read_text().splitlines()) == 50


@pytest.mark.parametrize(
    "argv",
    [
        ["--seed", "1"],
        ["--out", "x", "--seed", "one"],
        ["--out", "x", "--seed", "1", "--referrals", "0"],
        ["--out", "x", "--seed", "1", "--activities", "5"],
    ],
)
def test_command_line_bad_arguments_exit_2_with_one_line(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "error" in err and len(err.splitlines()) == 1


def test_output_folder_that_is_a_file(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SystemExit) as exc:
        main(["--out", str(blocker), "--seed", "1"])
    assert exc.value.code == 2
