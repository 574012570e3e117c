"""Tests for the evaluation library: metrics on hand-computed examples, baselines that never
break a hard need, and the oracle beating every baseline on a small simulated world."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from matcher.catalogue import Catalogue
from matcher.contract import parse_profile, parse_uptake
from matcher.features import COLUMN, prepare
from matcher.ranking import Matcher
from matcher.scoring import ColdStartScorer
from training.evaluate import (
    DirectoryRanker,
    NearestRanker,
    OracleRanker,
    RandomRanker,
    brier,
    coverage,
    dcg_at_k,
    evaluate_uptake,
    evaluate_world,
    expected_calibration_error,
    expected_uptake_at_k,
    format_groups,
    format_table,
    load_world,
    mean_over_worlds,
    ndcg_at_k,
    recall_at_k,
    reliability_curve,
)
from training.simulate import simulate

# --- metrics on tiny hand-computed examples ------------------------------------------------------


def test_dcg_by_hand():
    assert dcg_at_k([3, 2, 1]) == pytest.approx(3 + 2 / math.log2(3) + 1 / 2)
    assert dcg_at_k([1, 1, 1, 1], k=2) == pytest.approx(1 + 1 / math.log2(3))
    assert dcg_at_k([]) == 0.0


def test_ndcg_perfect_is_one_and_reversed_is_lower():
    assert ndcg_at_k([0.9, 0.5, 0.1]) == pytest.approx(1.0)
    reversed_ = ndcg_at_k([1, 2, 3])
    ideal = 3 + 2 / math.log2(3) + 1 / 2
    assert reversed_ == pytest.approx((1 + 2 / math.log2(3) + 3 / 2) / ideal)
    assert reversed_ < 1.0


def test_ndcg_ideal_comes_from_all_allowed_candidates():
    # Listing only the second-best item, when a better one was allowed, is not perfect.
    assert ndcg_at_k([0.5], ideal_relevance=[0.9, 0.5]) == pytest.approx(
        0.5 / (0.9 + 0.5 / math.log2(3))
    )
    assert ndcg_at_k([0.5], k=1, ideal_relevance=[0.9, 0.5]) == pytest.approx(0.5 / 0.9)
    assert math.isnan(ndcg_at_k([0, 0], ideal_relevance=[0, 0, 0]))
    assert ndcg_at_k([0.2, 0.9], k=1, ideal_relevance=[0.9, 0.2]) == pytest.approx(0.2 / 0.9)


def test_expected_uptake_sums_the_top_k():
    assert expected_uptake_at_k([0.5, 0.4, 0.3, 0.2, 0.1, 0.9]) == pytest.approx(1.5)
    assert expected_uptake_at_k([0.5, 0.4], k=5) == pytest.approx(0.9)
    assert expected_uptake_at_k([0.5, 0.4, 0.3], k=1) == pytest.approx(0.5)


def test_recall_at_k():
    assert recall_at_k(["a", "b", "c", "d"], {"a", "c"}, k=2) == 0.5
    assert recall_at_k(["a", "b", "c", "d"], {"a", "c"}, k=3) == 1.0
    assert recall_at_k(["a"], {"z"}, k=5) == 0.0
    assert math.isnan(recall_at_k(["a"], set()))


def test_brier_with_outcomes_and_with_true_probabilities():
    assert brier([1.0, 0.0], [1, 0]) == 0.0
    assert brier([0.5, 0.5], [1, 0]) == pytest.approx(0.25)
    # A true probability y: expected score over the coin flip, (p - y)^2 + y(1 - y).
    assert brier([0.3], [0.3]) == pytest.approx(0.21)
    assert brier([0.5], [0.3]) == pytest.approx(0.04 + 0.21)
    with pytest.raises(ValueError):
        brier([0.1, 0.2], [1])


def test_reliability_curve_and_calibration_error():
    pred = [0.05, 0.05, 0.95, 0.95, 0.55]
    outcome = [0, 0.1, 1, 0.9, 0.55]
    curve = reliability_curve(pred, outcome, bins=10)
    assert [b["count"] for b in curve] == [2, 1, 2]
    assert curve[0]["lower"] == 0.0 and curve[0]["upper"] == pytest.approx(0.1)
    assert curve[0]["mean_observed"] == pytest.approx(0.05)
    assert expected_calibration_error(curve) == pytest.approx(0.0)
    assert reliability_curve([1.0], [1])[0]["upper"] == 1.0  # 1.0 falls in the last bin
    assert expected_calibration_error(reliability_curve([0.8, 0.8], [0, 0])) == pytest.approx(0.8)


def test_coverage():
    assert coverage([[1, 2], [2, 3]], 6) == pytest.approx(0.5)
    assert coverage([], 4) == 0.0


# --- rankers and worlds --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("world")
    simulate(out, 4, n_activities=150, n_referrals=1500, n_heldout=40)
    return out


@pytest.fixture(scope="module")
def result(world):
    return evaluate_world(world, ColdStartScorer())


def test_baselines_rank_only_allowed_candidates(world):
    catalogue, profiles, truth = load_world(world)
    matcher = Matcher(catalogue)
    by_id = {p.id: truth[r] for r, p in enumerate(profiles)}
    rankers = [RandomRanker(matcher, seed=1), NearestRanker(matcher), DirectoryRanker(matcher),
               OracleRanker(matcher, by_id)]  # fmt: skip
    for profile in profiles[:15]:
        person = prepare(profile, catalogue)
        allowed_idx, _, _ = matcher.score(person)
        for ranker in rankers:
            idx, scores, X = ranker.score(person)
            assert sorted(idx.tolist()) == sorted(allowed_idx.tolist()), ranker.name
            assert len(scores) == len(X) == len(idx)
        idx, _, X = NearestRanker(matcher).score(person)
        d = X[:, COLUMN["distance_km"]]
        known = d[~np.isnan(d)]
        assert (np.diff(known) >= 0).all()
        assert not np.isnan(d[: len(known)]).any()  # online and unknown places last
        idx, _, X = DirectoryRanker(matcher).score(person)
        need = X[:, COLUMN["need_listed"]] + X[:, COLUMN["need_inferred"]]
        assert (np.diff(np.round(need, 6)) <= 0).all()
        idx, scores, _ = OracleRanker(matcher, by_id).score(person)
        assert (np.diff(scores) <= 0).all()
        a, _, _ = RandomRanker(matcher, seed=1).score(person)
        b, _, _ = RandomRanker(matcher, seed=1).score(person)
        assert a.tolist() == b.tolist()


def test_world_evaluation_has_every_ranker_and_no_violations(result):
    assert result["violations"] == 0
    rankers = result["rankers"]
    assert set(rankers) >= {"oracle", "model", "model_no_variety", "cold_start", "directory",
                            "nearest", "random"}  # fmt: skip
    for name, metrics in rankers.items():
        assert metrics["violations"] == 0, name
        assert 0 <= metrics["coverage"] <= 1
        assert 0 < metrics["mean_list_length"] <= 10
    assert rankers["oracle"]["ndcg_at_10"] == pytest.approx(1.0)
    assert rankers["oracle"]["share_of_oracle"] == pytest.approx(1.0)
    assert rankers["model"]["expected_uptake_at_5"] == pytest.approx(
        rankers["cold_start"]["expected_uptake_at_5"]
    )  # the model here is the cold-start scorer
    assert 0 <= rankers["model"]["brier"] <= 1 and rankers["model"]["reliability"]
    assert rankers["oracle"]["brier"] <= rankers["model"]["brier"]


def test_oracle_beats_every_baseline(result):
    rankers = result["rankers"]
    oracle = rankers["oracle"]
    for name, metrics in rankers.items():
        assert oracle["expected_uptake_at_5"] >= metrics["expected_uptake_at_5"] - 1e-12, name
        assert oracle["ndcg_at_10"] >= metrics["ndcg_at_10"] - 1e-12, name
    assert rankers["random"]["expected_uptake_at_5"] < rankers["cold_start"]["expected_uptake_at_5"]


def test_groups_cover_every_ranked_person(result):
    for group in ("age_band", "first_need", "travel"):
        values = result["groups"][group]
        assert sum(v["n"] for v in values.values()) == result["profiles_ranked"]
        for entry in values.values():
            assert (
                entry["oracle"]["expected_uptake_at_5"] >= entry["random"]["expected_uptake_at_5"]
            )
    assert set(result["groups"]["age_band"]) <= {"<40", "40-64", "65+", "unknown"}


def test_logged_slice_is_evaluated_too(result):
    logged = result["logged"]
    assert logged["referrals"] > 0
    for metrics in logged["rankers"].values():
        assert 0 <= metrics["recall_at_5"] <= metrics["recall_at_10"] <= 1
    assert logged["model_calibration"]["pairs"] > 0


def test_evaluate_uptake_uses_the_later_slice(world):
    catalogue = Catalogue.load(world / "catalogue.json")
    with open(world / "uptake.jsonl", encoding="utf-8") as f:
        lines = [json.loads(line) for line in f]
    records = [parse_uptake(line) for line in lines]
    out = evaluate_uptake(catalogue, records, since="2025-04-01")
    later = {r.referral_id for r in records if r.date.isoformat() >= "2025-04-01"}
    assert out["referrals"] == len(later) and out["since"] == "2025-04-01"
    default = evaluate_uptake(catalogue, lines[-300:] + [{**lines[0], "activity_id": "nope"}],
                              later_share=1.0)  # fmt: skip
    assert default["lines_unknown_activity"] == 1
    assert default["rankers"]["model"]["recall_at_5"] >= 0


def test_tables_and_means(result):
    twice = [result, result]
    mean = mean_over_worlds(twice)
    assert mean["oracle"]["expected_uptake_at_5"] == pytest.approx(
        result["rankers"]["oracle"]["expected_uptake_at_5"]
    )
    assert mean["oracle"]["expected_uptake_at_5_sd"] == pytest.approx(0.0)
    table = format_table(twice, labels=["a", "b"])
    assert "| oracle |" in table and "expected_uptake_at_5 mean" in table
    assert "| age_band |" in format_groups(result)


def test_world_evaluation_is_quick(result):
    assert result["seconds"] < 10


def test_profiles_in_a_world_parse(world):
    _, profiles, truth = load_world(world)
    assert truth.shape[0] == len(profiles)
    assert all(parse_profile(p.to_dict()) == p for p in profiles)
