"""The trained scorer: a loaded model behind the Scorer interface, with its calibrated chance
of attending, per-feature contributions and each activity's uptake evidence."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..catalogue import Catalogue
from ..errors import ModelError
from ..features import COLUMN, FEATURES
from .cold_start import ColdStartScorer

_COLD = ColdStartScorer()

__all__ = ["SMALL_BATCH", "TrainedScorer", "boosters", "thread_controller"]

SMALL_BATCH = 10_000  # rows below which prediction runs on one thread


@functools.cache
def thread_controller() -> Any:
    """One threadpoolctl controller per process (building one inspects every loaded library)."""
    from threadpoolctl import ThreadpoolController  # a dependency of scikit-learn

    return ThreadpoolController()


def boosters(estimator: Any) -> list[Any]:
    """The gradient-boosted models that predict, inside whatever wraps them."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.frozen import FrozenEstimator

    if isinstance(estimator, HistGradientBoostingClassifier):
        return [estimator]
    if isinstance(estimator, CalibratedClassifierCV):
        found: dict[int, Any] = {}
        for member in getattr(estimator, "calibrated_classifiers_", []):
            inner = member.estimator
            if isinstance(inner, FrozenEstimator):
                inner = inner.estimator
            if not isinstance(inner, HistGradientBoostingClassifier):
                raise ModelError(f"calibrated model wraps a {type(inner).__name__}")
            found[id(inner)] = inner
        return list(found.values())
    raise ModelError(f"unexpected model type {type(estimator).__name__}")


def _platt(estimator: Any) -> tuple[Any, float, float] | None:
    """``(booster, a, b)`` when the model is one booster under one sigmoid calibration, whose
    chance is ``1 / (1 + exp(a * f + b))`` of the booster's decision ``f``; else None."""
    from sklearn.calibration import CalibratedClassifierCV, _SigmoidCalibration

    members = getattr(estimator, "calibrated_classifiers_", [])
    if not isinstance(estimator, CalibratedClassifierCV) or len(members) != 1:
        return None
    calibrators = members[0].calibrators
    if len(calibrators) != 1 or not isinstance(calibrators[0], _SigmoidCalibration):
        return None
    booster = boosters(estimator)[0]
    return booster, float(calibrators[0].a_), float(calibrators[0].b_)


class TrainedScorer:
    """A trained model behind the :class:`~matcher.scoring.Scorer` interface.

    ``predict`` is the calibrated chance of attending. ``contributions`` measures each
    feature by occlusion: its value replaced by the reference row's (training medians), the
    change in log-odds recorded. With sigmoid calibration that is the served score's own
    log-odds; with isotonic calibration, whose steps would hide small changes, the trees'.
    """

    kind = "trained"

    def __init__(
        self,
        payload: dict[str, Any],
        card: dict[str, Any],
        path: Path,
        *,
        smooth: bool = True,
        notes: Sequence[str] = (),
    ):
        self.estimator = payload["estimator"]
        self.card = card
        self.path = path
        self.version: str = card["version"]
        self.reference: np.ndarray = payload["reference"]
        self.prior_rate: float = payload["prior_rate"]
        self._ids: list[str] = payload["activity_ids"]
        self._rate: np.ndarray = payload["uptake_rate"]
        self._count: np.ndarray = payload["uptake_count"]
        self._smooth = smooth
        self._boosters = boosters(self.estimator)
        self._platt = _platt(self.estimator)
        # (intercept, weight of the cold-start log-odds, weight of the trees): a model fitted
        # on top of the cold-start scorer, whose trees see those log-odds as a last column.
        self._stack: np.ndarray | None = payload.get("stack")
        self.notes = list(notes)

    def __repr__(self) -> str:
        return f"TrainedScorer(version={self.version!r}, path={str(self.path)!r})"

    def evidence(self, catalogue: Catalogue) -> tuple[np.ndarray, np.ndarray]:
        """Each catalogue activity's uptake rate and referral count as trained; activities
        the model never saw get the prior rate and a count of 0."""
        rate = np.full(len(catalogue), self.prior_rate)
        count = np.zeros(len(catalogue))
        position = catalogue.position
        pairs = [(position[a], k) for k, a in enumerate(self._ids) if a in position]
        if pairs:
            at, k = np.array(pairs, dtype=np.intp).T
            rate[at], count[at] = self._rate[k], self._count[k]
        return rate, count

    @staticmethod
    def _threads(n_rows: int) -> contextlib.AbstractContextManager:
        # Serving scores tens to hundreds of rows: starting OpenMP threads for those costs
        # more than the trees themselves (measured: 2 ms alone against 20 ms on two cores).
        if n_rows >= SMALL_BATCH:
            return contextlib.nullcontext()
        return thread_controller().limit(limits=1, user_api="openmp")

    @staticmethod
    def _rows(X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        if X.ndim != 2 or X.shape[1] != len(FEATURES):
            raise ValueError(f"expected rows of {len(FEATURES)} features")
        return X

    def predict(self, X: np.ndarray) -> np.ndarray:
        X = self._rows(X)
        if len(X) == 0:
            return np.zeros(0)
        with self._threads(len(X)):
            if self._platt is not None or self._stack is not None:
                from scipy.special import expit  # as scikit-learn's sigmoid calibration

                return expit(self._log_odds(X))
            return self.estimator.predict_proba(X)[:, 1]

    def _log_odds(self, X: np.ndarray) -> np.ndarray:
        if self._stack is not None:
            prior = _COLD.log_odds(X)
            trees = self._boosters[0].decision_function(np.column_stack([X, prior]))
            return self._stack[0] + self._stack[1] * prior + self._stack[2] * trees
        if self._platt is not None:  # the same numbers as predict_proba, without its wrappers
            booster, a, b = self._platt
            return -(a * booster.decision_function(X) + b)
        if self._smooth:
            p = np.clip(self.estimator.predict_proba(X)[:, 1], 1e-9, 1 - 1e-9)
            return np.log(p) - np.log1p(-p)
        return np.mean([b.decision_function(X) for b in self._boosters], axis=0)

    def contributions(self, X: np.ndarray, features: Sequence[str] | None = None) -> np.ndarray:
        """Per row and feature, the log-odds the feature's value adds over the reference
        row's value (0 where they agree). One batch of ``k × (m + 1)`` predictions, where
        ``m`` is the number of ``features`` asked for (default all; the rest are 0)."""
        X = self._rows(X)
        k, n = X.shape
        if k == 0:
            return np.zeros((0, n))
        wanted = np.arange(n) if features is None else np.array([COLUMN[f] for f in features])
        m = len(wanted)
        occluded = np.repeat(X, m, axis=0)
        column = np.tile(wanted, k)
        occluded[np.arange(k * m), column] = self.reference[column]
        with self._threads(k * (m + 1)):
            z = self._log_odds(np.vstack([X, occluded]))
        out = np.zeros((k, n))
        out[:, wanted] = z[:k, None] - z[k:].reshape(k, m)
        same = (self.reference == X) | (np.isnan(X) & np.isnan(self.reference))
        out[same] = 0.0  # exactly: a feature at its reference value explains nothing
        return out
