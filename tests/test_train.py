"""Training: the time split, out-of-fold evidence, the gate's decisions, monotonicity of the
fitted model, reproducibility, and a small end-to-end simulate → train → rank run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matcher import cli
from matcher.catalogue import Catalogue
from matcher.errors import MatcherError
from matcher.features import COLUMN, FEATURES, MONOTONE
from matcher.scoring import load_model
from training.fit import evidence_from, out_of_fold_evidence
from training.gate import gate
from training.simulate import simulate
from training.train import time_split, train

# --- the time split ---------------------------------------------------------------------------


def test_time_split_cuts_at_whole_days_and_keeps_order():
    dates = np.array(["2025-01-01"] * 50 + ["2025-01-02"] * 30 + ["2025-01-03"] * 20,
                     dtype="datetime64[D]")  # fmt: skip
    split = time_split(dates, valid_share=0.2, test_share=0.2)
    assert split.test.sum() == 20 and split.valid.sum() == 30 and split.train.sum() == 50
    assert dates[split.train].max() < dates[split.valid].min() <= dates[split.valid].max()
    assert dates[split.valid].max() < dates[split.test].min()
    assert not (split.train & split.valid).any() and not (split.valid & split.test).any()


def test_time_split_without_test_slice():
    dates = np.arange(100).astype("datetime64[D]")
    split = time_split(dates, valid_share=0.15, test_share=0.0)
    assert split.test.sum() == 0
    assert split.valid.sum() == 15


def test_time_split_refuses_a_single_day():
    dates = np.array(["2025-01-01"] * 100, dtype="datetime64[D]")
    with pytest.raises(MatcherError, match="too few days"):
        time_split(dates, 0.15, 0.15)


# --- evidence ---------------------------------------------------------------------------------


def test_out_of_fold_evidence_never_sees_its_own_label():
    rng = np.random.default_rng(0)
    positions = rng.integers(0, 5, size=400)
    outcomes = rng.integers(0, 2, size=400).astype(float)
    groups = np.arange(400)
    before = out_of_fold_evidence(positions, outcomes, groups, 5, prior=0.4)
    flipped = outcomes.copy()
    flipped[7] = 1 - flipped[7]
    after = out_of_fold_evidence(positions, flipped, groups, 5, prior=0.4)
    assert before[7, 0] == after[7, 0]  # its own label changed nothing for row 7
    others = np.flatnonzero(positions == positions[7])
    others = others[(groups[others] % 5) != (groups[7] % 5)]
    assert not np.allclose(before[others, 0], after[others, 0])  # but it did for other folds


def test_evidence_is_smoothed_towards_the_prior():
    ev = evidence_from(np.array([0, 0, 1]), np.array([1.0, 1.0, 0.0]), 3, prior=0.3)
    assert 0.3 < ev.rate[0] < 1.0  # two attended: above the prior, not certain
    assert ev.rate[1] < 0.3  # one not attended: a little below
    assert ev.rate[2] == pytest.approx(0.3) and ev.count[2] == 0  # never referred: the prior


# --- the gate ---------------------------------------------------------------------------------


def _units(model, *, n_groups=None, **others) -> dict:
    """Per-unit gate values for the model and rivals, as the evaluation gives them."""
    values = {"model": np.asarray(model, float)} | {k: np.asarray(v, float)
                                                    for k, v in others.items()}  # fmt: skip
    n = len(values["model"])
    groups = {"age_band": np.asarray(n_groups if n_groups is not None else ["40-64"] * n)}
    return {"kind": "logs", "metric": "pairwise_accuracy", "n": n, "mixed": n // 4,
            "values": values, "groups": groups}  # fmt: skip


def _noisy(rng, n, mean, sd=0.2):
    return np.clip(rng.normal(mean, sd, n), 0, 1)


RESULTS = {"rankers": {}, "violations": 0}


def test_gate_accepts_a_model_clearly_better_on_enough_evidence():
    rng = np.random.default_rng(0)
    base = _noisy(rng, 400, 0.6)
    units = _units(base + 0.1, cold_start=base, directory=base - 0.05)
    decision = gate(RESULTS, units, None)
    assert decision["accepted"], decision["reasons"]
    gain = decision["comparisons"]["cold_start"]
    assert 0 < gain["low"] < gain["gain"] < gain["high"]
    assert "directory" in decision["comparisons"]  # shown, with its interval, not gated


def test_gate_keeps_aside_a_small_gain_on_thin_evidence_and_says_how_much_more_would_settle():
    rng = np.random.default_rng(1)
    base = _noisy(rng, 14, 0.6)
    model = np.clip(base + rng.normal(0.02, 0.15, 14), 0, 1)
    decision = gate(RESULTS, _units(model, cold_start=base), None)
    assert not decision["accepted"]
    reason = decision["reasons"][0]
    assert "14 held-out referrals (3 with mixed outcomes)" in reason
    assert "90% interval" in reason and ("as many" in reason or "no gain" in reason)


def test_the_same_gain_is_accepted_once_there_is_enough_of_it():
    # One per-unit gain distribution: thin evidence keeps it aside, plenty promotes it.
    rng = np.random.default_rng(2)
    decisions = {}
    for n in (20, 2000):
        base = _noisy(rng, n, 0.6)
        model = base + rng.normal(0.03, 0.1, n)
        decisions[n] = gate(RESULTS, _units(model, cold_start=base), None)
    assert not decisions[20]["accepted"] and decisions[2000]["accepted"]
    widths = {n: d["comparisons"]["cold_start"]["high"] - d["comparisons"]["cold_start"]["low"]
              for n, d in decisions.items()}  # fmt: skip
    assert widths[2000] < widths[20] / 5  # 1/sqrt(n): 10 times narrower, give or take


def test_gate_keeps_aside_a_model_worse_than_the_current_one():
    rng = np.random.default_rng(3)
    base = _noisy(rng, 500, 0.5)
    current = _units(base + 0.2)
    decision = gate(RESULTS, _units(base + 0.1, cold_start=base), current)
    assert not decision["accepted"]
    assert any("current_model" in r for r in decision["reasons"])


def test_gate_refuses_any_broken_hard_need():
    rng = np.random.default_rng(4)
    base = _noisy(rng, 500, 0.5)
    decision = gate({"rankers": {}, "violations": 1}, _units(base + 0.3, cold_start=base), None)
    assert not decision["accepted"]
    assert any("hard need" in r for r in decision["reasons"])


def test_gate_refuses_a_model_that_serves_one_group_much_worse():
    rng = np.random.default_rng(5)
    n = 600
    labels = np.where(np.arange(n) < 40, "65+", "40-64")
    base = _noisy(rng, n, 0.6, 0.05)
    model = base + 0.1
    model[:40] = 0.45  # the over-65s: well under 0.9 of the model's overall figure
    decision = gate(RESULTS, _units(model, cold_start=base, n_groups=labels), None)
    assert not decision["accepted"]
    assert any("worst-served group (age_band 65+, 40 people)" in r for r in decision["reasons"])
    worst = decision["fairness"]["model"]["worst"]
    assert worst["ratio"] < 0.9
    # A group under 15 people is shown but not gated on: too few to judge.
    labels = np.where(np.arange(n) < 10, "65+", "40-64")
    model[10:40] = base[10:40] + 0.1
    decision = gate(RESULTS, _units(model, cold_start=base, n_groups=labels), None)
    assert decision["accepted"], decision["reasons"]
    assert decision["fairness"]["model"]["groups"]["age_band"]["65+"]["n"] == 10


def test_gate_cannot_decide_without_a_measurable_unit():
    decision = gate(RESULTS, _units([]), None)
    assert not decision["accepted"] and "cannot be measured" in decision["reasons"][0]


# --- a small world, trained once --------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("train")
    world = root / "world"
    simulate(world, seed=3, n_activities=150, n_referrals=4000, n_heldout=40)
    models = root / "models"
    card = train(world / "catalogue.json", world / "uptake.jsonl", models, world=world,
                 version="v1", log=lambda _: None)  # fmt: skip
    return {"world": world, "models": models, "card": card}


def test_end_to_end_writes_a_gated_model_with_card_and_report(trained):
    card, folder = trained["card"], trained["models"] / "v1"
    assert card["features"] == list(FEATURES)
    assert set(card["metrics"]["rankers"]) >= {"oracle", "model", "cold_start", "directory",
                                               "nearest", "random"}  # fmt: skip
    assert card["metrics"]["violations"] == 0
    assert card["gate"]["metric"] == "expected_uptake_at_5"
    assert isinstance(card["gate"]["accepted"], bool) and card["gate"]["reasons"]
    for name in ("report.html", "metrics.png", "calibration.png", "groups.png", "importance.png",
                 "gain.png", "fairness.png"):  # fmt: skip
        assert (folder / name).stat().st_size > 0
    # The world is seeded and training deterministic: this model clears the gate every time.
    assert card["gate"]["accepted"], card["gate"]["reasons"]
    assert (trained["models"] / "current").resolve() == folder.resolve()
    # The model beats the cold-start scorer on held-out truth even on this small world.
    rankers = card["metrics"]["rankers"]
    assert rankers["model"]["expected_uptake_at_5"] > rankers["cold_start"]["expected_uptake_at_5"]


def test_rank_uses_the_trained_model(trained, tmp_path, capsys):
    world = trained["world"]
    code = cli.main(
        [
            "rank",
            "--catalogue",
            str(world / "catalogue.json"),
            "--model",
            str(trained["models"] / "v1"),
            "--profiles",
            str(world / "heldout_profiles.jsonl"),
            "--top",
            "5",
        ]
    )
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 40
    first = json.loads(lines[0])
    assert first["matches"] and all(0 <= m["score"] <= 1 for m in first["matches"])


def test_same_seed_same_model(trained, tmp_path):
    world = trained["world"]
    card = train(world / "catalogue.json", world / "uptake.jsonl", tmp_path / "again",
                 world=world, version="v1", report=False, log=lambda _: None)  # fmt: skip
    # skops names its arrays by object id, so the bytes differ; the model must not.
    first, again = load_model(trained["models"] / "v1"), load_model(tmp_path / "again" / "v1")
    X = np.nan_to_num(np.tile(first.reference, (50, 1)))
    X += np.random.default_rng(1).normal(0, 0.5, X.shape)
    np.testing.assert_array_equal(first.predict(X), again.predict(X))
    assert card["metrics"]["rankers"]["model"] == trained["card"]["metrics"]["rankers"]["model"]


def test_a_second_model_no_better_than_the_current_is_kept_aside(trained):
    world, models = trained["world"], trained["models"]
    card = train(world / "catalogue.json", world / "uptake.jsonl", models, world=world,
                 version="v2", report=False, log=lambda _: None)  # fmt: skip
    assert not card["gate"]["accepted"]  # identical data: it cannot beat v1 by the margin
    assert (models / "current").resolve().name == "v1"


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_trained_model_is_monotone_where_sense_demands(trained, data):
    scorer = load_model(trained["models"] / "v1")
    rng = np.random.default_rng(data.draw(st.integers(0, 10_000)))
    base = np.array(scorer.reference, dtype=float)
    base = np.where(np.isnan(base), 0.5, base)
    base = base + rng.normal(0, 0.3, size=base.shape) * (base != 0)
    name = data.draw(st.sampled_from(sorted(MONOTONE)))
    step = data.draw(st.floats(0.05, 3.0))
    higher = base.copy()
    higher[COLUMN[name]] += step
    low, high = scorer.predict(np.vstack([base, higher]))
    if MONOTONE[name] > 0:
        assert high >= low - 1e-12, name
    else:
        assert high <= low + 1e-12, name


def test_training_refuses_an_uptake_file_with_bad_lines_only_where_it_must(tmp_path):
    catalogue = Path(__file__).resolve().parents[2] / "shared" / "contract" / "examples"
    if not catalogue.exists():
        pytest.skip("contract examples absent")
    with pytest.raises(MatcherError):  # three rows: far too few to learn from
        train(catalogue / "catalogue.json", catalogue / "uptake.jsonl", tmp_path / "m",
              report=False, log=lambda _: None)  # fmt: skip
    assert not (tmp_path / "m").exists()


def test_without_a_world_the_gate_compares_log_loss_per_referral_on_later_referrals(
    trained, tmp_path
):
    world = trained["world"]
    card = train(world / "catalogue.json", world / "uptake.jsonl", tmp_path / "logs",
                 version="v1", report=False, log=lambda _: None)  # fmt: skip
    gate = card["gate"]
    assert gate["metric"] == "log_loss" and gate["shown_metric"] == "pairwise_accuracy"
    # Every later referral is a unit of the log-loss comparison, not only the mixed ones.
    units = gate["comparisons"]["cold_start"]["units"]
    assert units > card["metrics"]["referrals_with_mixed_outcomes"]
    c = gate["comparisons"]["cold_start"]
    assert c["low"] <= c["gain"] <= c["high"]
    assert "held-out referrals" in gate["evidence"]
    # A small log: models fitted on two earlier cuts add the referrals after each cut.
    assert "in 3 windows" in gate["evidence"]
    assert units > card["metrics"]["referrals"] * 2
    assert card["training"]["split"]["test"] > 0  # a later slice held out, unseen in training
    rankers = card["metrics"]["rankers"]
    assert 0 <= rankers["model"]["pairwise_accuracy"] <= 1
    assert rankers["model"]["pairwise_accuracy"] > rankers["random"]["pairwise_accuracy"]


def test_concordance():
    from training.evaluate import concordance

    went = np.array([True, False, False])
    assert concordance(np.array([0.9, 0.1, 0.2]), went) == 1.0
    assert concordance(np.array([0.1, 0.9, 0.2]), went) == 0.0
    assert concordance(np.array([0.5, 0.5, 0.1]), went) == 0.75
    assert np.isnan(concordance(np.array([0.5, 0.4]), np.array([True, True])))


def test_a_models_folder_where_every_model_was_kept_aside_serves_cold_start(trained, tmp_path):
    import shutil

    from matcher.scoring import ColdStartScorer, load_scorer

    root = tmp_path / "models"
    shutil.copytree(trained["models"] / "v1", root / "v1")
    scorer, note = load_scorer(root)
    assert isinstance(scorer, ColdStartScorer)
    assert "kept every model there aside" in note


def test_on_a_tiny_log_the_model_ranks_much_as_the_cold_start_scorer_does(tmp_path):
    from scipy.stats import spearmanr

    from matcher.scoring import ColdStartScorer
    from training.fit import fit, with_prior
    from training.train import training_rows

    world = tmp_path / "tiny"
    simulate(world, seed=11, n_activities=120, n_referrals=500, n_heldout=5)
    catalogue = Catalogue.load(world / "catalogue.json")
    _, X, y, split, _ = training_rows(catalogue, world / "uptake.jsonl", held_out=False)
    fitted = fit(X[split.train], y[split.train], X[split.valid], y[split.valid])
    # The blend leans on the prior: its weight is positive and the model's log-odds follow it.
    assert fitted.stack[1] > 0
    Z = np.asarray(X, float)
    logit = fitted.stack[0] + fitted.stack[1] * with_prior(Z)[:, -1] + fitted.stack[2] * (
        fitted.booster.decision_function(with_prior(Z)))  # fmt: skip
    rho = spearmanr(logit, ColdStartScorer().log_odds(Z)).statistic
    assert rho > 0.6, rho
