"""Tests for matcher.scoring.trained: predictions, contributions in log-odds, evidence
aligned with the catalogue, and ranking with a trained model."""

from __future__ import annotations

import numpy as np
import pytest
import scoring_support as support
from scoring_support import N, save

from matcher.catalogue import Catalogue
from matcher.features import COLUMN
from matcher.ranking import Matcher
from matcher.scoring import load_model


@pytest.fixture(scope="module")
def data():
    return support.data()


@pytest.fixture(scope="module")
def models():
    return support.models()


@pytest.fixture(scope="module")
def reference():
    return support.reference()


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return support.small_catalogue()


# --- the trained scorer ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scorers(tmp_path_factory, models, reference):
    root = tmp_path_factory.mktemp("scorers")
    return {kind: load_model(save(root, kind, models[kind], reference)) for kind in models}


@pytest.mark.parametrize("kind", ["sigmoid", "isotonic", "booster"])
def test_contributions_shape_and_zero_at_the_reference(scorers, data, reference, kind):
    scorer = scorers[kind]
    X = data[0][:7]
    C = scorer.contributions(X)
    assert C.shape == (7, N) and np.isfinite(C).all()
    at_reference = scorer.contributions(reference[None, :])
    assert np.array_equal(at_reference, np.zeros((1, N)))
    assert scorer.contributions(np.zeros((0, N))).shape == (0, N)


@pytest.mark.parametrize("kind", ["sigmoid", "isotonic", "booster"])
def test_contributions_follow_the_monotone_directions(scorers, reference, kind):
    scorer = scorers[kind]
    rows = np.tile(reference, (2, 1))
    need, far = COLUMN["need_listed"], COLUMN["distance_ratio"]
    rows[0, need], rows[0, far] = 1.0, 0.0  # a close, well-matched activity
    rows[1, need], rows[1, far] = 0.0, 2.0  # a far, unmatched one
    C = scorer.contributions(rows)
    assert C[0, need] > 0 and C[0, far] >= 0
    assert C[1, need] < 0 and C[1, far] < 0
    untouched = [j for j in range(N) if j not in (need, far)]
    assert not C[:, untouched].any()


def test_sigmoid_contributions_are_in_the_served_scores_log_odds(scorers, reference):
    scorer = scorers["sigmoid"]
    row = reference.copy()
    row[COLUMN["need_listed"]] = 1.0
    p, p_ref = scorer.predict(np.vstack([row, reference]))
    expected = np.log(p / (1 - p)) - np.log(p_ref / (1 - p_ref))
    assert scorer.contributions(row[None, :])[0, COLUMN["need_listed"]] == pytest.approx(expected)


def test_predict_checks_its_input(scorers):
    with pytest.raises(ValueError, match=f"{N} features"):
        scorers["sigmoid"].predict(np.zeros((2, N - 1)))
    assert scorers["sigmoid"].predict(np.zeros((0, N))).shape == (0,)


def test_evidence_is_aligned_with_the_catalogue(scorers, catalogue):
    rate, count = scorers["sigmoid"].evidence(catalogue)
    prior = scorers["sigmoid"].prior_rate
    assert rate.tolist() == [0.42, 0.1, prior]  # act-003 was never seen: the prior, count 0
    assert count.tolist() == [30.0, 5.0, 0.0]
    assert prior == pytest.approx((0.42 * 30 + 0.1 * 5) / 35)


def test_a_trained_scorer_ranks_with_reasons(scorers, catalogue):
    matcher = Matcher(catalogue, scorers["sigmoid"])
    matches = matcher.recommend(
        {"location": {"postcode": "LS6 3HN"}, "needs": ["loneliness"], "interests": "gardening"}
    )
    assert matcher.model_version == "sigmoid"
    assert matches and all(0 <= m.score <= 1 and 2 <= len(m.reasons) <= 4 for m in matches)
