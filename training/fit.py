"""Fitting the ranking model on uptake: the serving feature builder, out-of-fold activity
evidence, a monotone gradient-boosted classifier stopped early and calibrated on a later
slice of time."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.frozen import FrozenEstimator

from matcher.catalogue import Catalogue
from matcher.contract import Profile
from matcher.features import FEATURES, MONOTONE, build_features, prepare_many

# Activity evidence: a smoothed uptake rate, pulled towards the overall rate by this many
# pseudo-referrals, so an activity with two referrals is not judged on them alone.
EVIDENCE_PRIOR_WEIGHT = 20.0
EVIDENCE_FOLDS = 5


@dataclass
class Evidence:
    """Per-activity uptake evidence aligned with a catalogue: smoothed rate and count."""

    rate: np.ndarray
    count: np.ndarray
    prior: float


def evidence_from(
    positions: np.ndarray, outcomes: np.ndarray, n_activities: int, prior: float
) -> Evidence:
    """Smoothed uptake rate of every activity from the given referrals."""
    count = np.bincount(positions, minlength=n_activities).astype(float)
    attended = np.bincount(positions, weights=outcomes, minlength=n_activities)
    rate = (attended + EVIDENCE_PRIOR_WEIGHT * prior) / (count + EVIDENCE_PRIOR_WEIGHT)
    return Evidence(rate, count, prior)


def out_of_fold_evidence(
    positions: np.ndarray, outcomes: np.ndarray, groups: np.ndarray, n_activities: int, prior: float
) -> np.ndarray:
    """For each row, its activity's evidence computed without the row's own fold (folds are
    whole referrals), so no row ever sees its own label. Returns an (n, 2) array."""
    fold = groups % EVIDENCE_FOLDS
    out = np.zeros((len(positions), 2))
    for f in range(EVIDENCE_FOLDS):
        inside = fold == f
        other = evidence_from(positions[~inside], outcomes[~inside], n_activities, prior)
        out[inside, 0] = other.rate[positions[inside]]
        out[inside, 1] = other.count[positions[inside]]
    return out


def feature_matrix(
    catalogue: Catalogue,
    profiles: Sequence[Profile],
    profile_of_row: np.ndarray,
    positions: np.ndarray,
    evidence_rows: np.ndarray | None = None,
) -> np.ndarray:
    """The serving feature builder over training rows; per-row evidence replaces the
    catalogue-wide evidence a served model reads."""
    people = prepare_many(list(profiles), catalogue)
    X = build_features(people, catalogue, profile_of_row, positions)
    if evidence_rows is not None:
        X[:, FEATURES.index("activity_uptake_rate")] = evidence_rows[:, 0]
        X[:, FEATURES.index("activity_uptake_count")] = evidence_rows[:, 1]
    return X


def monotonic_constraints() -> np.ndarray:
    return np.array([MONOTONE.get(name, 0) for name in FEATURES])


def fit(
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_valid: np.ndarray,
    y_valid: np.ndarray,
    *,
    seed: int = 0,
    log: Callable[[str], None] = lambda _: None,
) -> tuple[CalibratedClassifierCV, int]:
    """A monotone HistGradientBoosting classifier stopped early on the later validation slice,
    then Platt-calibrated on that slice (sigmoid keeps the ranking; isotonic would tie it)."""
    start = time.perf_counter()
    # A feature never known in the training rows (cost in a feed that lists none, say) is
    # constant to the trees; scikit-learn cannot bin an all-NaN column, so it becomes 0.
    empty = np.isnan(X_train).all(axis=0)
    if empty.any():
        X_train, X_valid = X_train.copy(), X_valid.copy()
        X_train[:, empty] = 0.0
        X_valid[:, empty] = 0.0
        log("never known in training, so not learned from: "
            + ", ".join(np.array(FEATURES)[empty]))  # fmt: skip
    booster = HistGradientBoostingClassifier(
        learning_rate=0.12,
        max_iter=400,
        max_leaf_nodes=31,
        min_samples_leaf=40,
        l2_regularization=1.0,
        max_bins=128,
        monotonic_cst=monotonic_constraints(),
        early_stopping=True,
        n_iter_no_change=20,
        scoring="loss",
        random_state=seed,
    )
    booster.fit(X_train, y_train, X_val=X_valid, y_val=y_valid)
    log(f"boosting stopped after {booster.n_iter_} rounds ({time.perf_counter() - start:.1f} s)")
    calibrated = CalibratedClassifierCV(FrozenEstimator(booster), method="sigmoid")
    calibrated.fit(X_valid, y_valid)
    return calibrated, int(booster.n_iter_)
