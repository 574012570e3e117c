"""The interface ranking talks to, and the transparent cold-start scorer that serves until a
trained model exists and whenever one cannot be loaded."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from ..catalogue import Catalogue
from ..features import COLUMN, FEATURES

__all__ = ["ColdStartScorer", "Scorer", "sigmoid"]


class Scorer(Protocol):
    """What ranking needs of a model.

    ``predict`` gives each row's chance of attending (0–1); ``contributions`` says how much
    each feature moved that row's score (log-odds, positive helps), which the reasons read;
    ``features`` names the ones wanted (others may be left at 0).
    """

    version: str
    kind: str

    def evidence(self, catalogue: Catalogue) -> tuple[np.ndarray, np.ndarray] | None: ...

    def predict(self, X: np.ndarray) -> np.ndarray: ...

    def contributions(self, X: np.ndarray, features: Sequence[str] | None = None) -> np.ndarray: ...


_BLOCK = 1 << 16


def sigmoid(z: np.ndarray) -> np.ndarray:
    """The logistic function: log-odds to a chance from 0 to 1."""
    return 1.0 / (1.0 + np.exp(-z))


class ColdStartScorer:
    """A hand-set logistic score: need match first, then interests, nearness, budget, timing.

    Every weight is visible here, so a link worker's question "why this one?" has an answer
    even before any uptake has been learned from.
    """

    version = "cold-start-1"
    kind = "cold-start"
    BIAS = -2.2
    WEIGHTS: dict[str, float] = {
        "need_listed": 2.6,
        "need_inferred": 1.9,
        "need_first": 0.6,
        "needs_covered": 0.5,
        "interest_similarity": 2.2,
        "interest_concepts": 0.5,
        "distance_ratio": -1.4,
        "location_unknown": -0.5,
        "online": -0.2,
        "over_budget": -0.7,
        "cost_unknown": -0.1,
        "free": 0.25,
        "schedule_fit": 0.9,
        "format_match": 0.4,
        "access_extras": 0.05,
        "language_match": 0.4,
    }
    # Where a feature is unknown (NaN), the value assumed: middling, not best or worst.
    IMPUTE: dict[str, float] = {"distance_ratio": 0.6, "schedule_fit": 0.5}
    CAPS: dict[str, float] = {"interest_concepts": 2.0, "over_budget": 5.0}

    def __init__(self) -> None:
        self._w = np.zeros(len(FEATURES))
        for name, weight in self.WEIGHTS.items():
            self._w[COLUMN[name]] = weight

    def _prepared(self, X: np.ndarray) -> np.ndarray:
        X = X.copy()
        for name, value in self.IMPUTE.items():
            column = X[:, COLUMN[name]]
            column[np.isnan(column)] = value
        for name, cap in self.CAPS.items():
            np.minimum(X[:, COLUMN[name]], cap, out=X[:, COLUMN[name]])
        return np.nan_to_num(X, nan=0.0)

    def evidence(self, catalogue: Catalogue) -> None:
        return None

    def contributions(self, X: np.ndarray, features: Sequence[str] | None = None) -> np.ndarray:
        return self._prepared(X) * self._w  # all of them: as cheap as any

    def log_odds(self, X: np.ndarray) -> np.ndarray:
        """The score before the logistic function: what a trained model starts from. In
        blocks, so that training on millions of rows never holds a float64 copy of them."""
        X = np.asarray(X)
        out = np.empty(len(X))
        for start in range(0, len(X), _BLOCK):
            out[start : start + _BLOCK] = (
                self.BIAS + self._prepared(X[start : start + _BLOCK]) @ self._w
            )
        return out

    def predict(self, X: np.ndarray) -> np.ndarray:
        return sigmoid(self.log_odds(X))
