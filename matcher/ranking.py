"""Ranking one person against a catalogue: hard filters, candidates, features, the model's
score, a re-rank for variety across needs, and reasons."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .catalogue import Catalogue
from .contract import Activity, Profile, parse_profile
from .features import COLUMN, People, Person, build_features, prepare
from .filters import allowed
from .reasons import EXPLAINED, explain, money, when
from .scoring import ColdStartScorer, Scorer

# Variety, as shares of a candidate's score: a copy of a suggestion already chosen (text
# likeness 1) loses half its score, and likeness below LIKENESS_FLOOR costs nothing (two
# different groups that share some words are not copies); one serving a need of the person's
# that nothing chosen serves yet gains 5%. Chosen by measurement on simulated worlds (mean of
# three): stronger settings (floor 0.35, bonus 15%) cost 0.5% more of the oracle's expected
# uptake; a test checks that near-copies still give way to other needs.
SIMILARITY_PENALTY = 0.5
LIKENESS_FLOOR = 0.6
NEW_NEED_BONUS = 0.05
# At most this many allowed candidates are scored by a trained model; beyond it (thousands of
# activities within reach) the cold-start score chooses which. Measured: the shipped
# 132-tree model takes ~3.5 ms per 1,000 rows on one core.
MAX_MODEL_CANDIDATES = 1000


@dataclass(frozen=True)
class Match:
    """One suggestion: the contract's fields plus what a link worker's screen shows."""

    activity: Activity
    score: float
    distance_km: float | None
    reasons: list[str]
    needs: list[str] = field(default_factory=list)
    needs_inferred: bool = False
    location_unknown: bool = False

    @property
    def activity_id(self) -> str:
        return self.activity.id

    def when(self) -> str:
        return when(self.activity) or "By arrangement"

    def cost(self) -> str:
        cost = self.activity.cost
        return "Unknown" if cost is None else ("Free" if cost == 0 else money(cost))

    def to_dict(self) -> dict[str, Any]:
        """The contract's match (§5, §6)."""
        out: dict[str, Any] = {
            "activity_id": self.activity.id,
            "name": self.activity.name,
            "score": round(self.score, 4),
            "distance_km": None if self.distance_km is None else round(self.distance_km, 2),
            "reasons": self.reasons,
        }
        return out


class Matcher:
    """Ranks one catalogue for one person at a time with a given scorer.

    Build it once (the catalogue is indexed at load); ``recommend`` is then cheap and pure.
    """

    def __init__(self, catalogue: Catalogue, scorer: Scorer | None = None):
        self.catalogue = catalogue
        self.scorer: Scorer = scorer or ColdStartScorer()
        self._first_stage = ColdStartScorer()
        self._evidence = self.scorer.evidence(catalogue)

    @property
    def model_version(self) -> str:
        return self.scorer.version

    def recommend(
        self,
        profile: Profile | dict,
        n: int = 10,
        *,
        exclude: Iterable[str] = (),
        variety: bool = True,
    ) -> list[Match]:
        """The ``n`` best activities for ``profile`` that break none of its hard needs.

        ``exclude`` adds activity ids never to suggest (as the profile's own ``exclude``).
        Deterministic: the same profile and catalogue always give the same list.
        """
        if not isinstance(profile, Profile):
            profile = parse_profile(profile)
        extra = [x for x in exclude if x not in profile.exclude]
        if extra:
            profile = profile.model_copy(update={"exclude": [*profile.exclude, *extra]})
        person = prepare(profile, self.catalogue)
        idx, scores, X = self.score(person)
        if len(idx) == 0 or n <= 0:
            return []
        order = self._order(person, idx, scores, n, variety)
        contributions = self.scorer.contributions(X[order], EXPLAINED)  # one batch
        return [
            self._match(person, idx[k], scores[k], X[k], c)
            for k, c in zip(order, contributions, strict=True)
        ]

    def score(self, person: Person) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Allowed candidate positions, their scores and feature rows, best first."""
        cat = self.catalogue
        # Candidates and their distances once, for the filters and the features alike.
        idx, distance = cat.nearby(person.lat, person.lon, person.max_km)
        ok = allowed(person, cat, idx, distance)
        idx, distance = idx[ok], distance[ok]
        if len(idx) == 0:
            return idx, np.zeros(0), np.zeros((0, len(COLUMN)))
        X = build_features(
            People([person], cat),
            cat,
            np.zeros(len(idx), np.intp),
            idx,
            self._evidence,
            distance_km=distance,
        )
        if len(idx) > MAX_MODEL_CANDIDATES and not isinstance(self.scorer, ColdStartScorer):
            # A first stage for very dense catalogues: the cheap transparent score keeps the
            # best few thousand, and only those go through the trained model's trees.
            first = self._first_stage.predict(X)
            keep = np.sort(np.lexsort((idx, -first))[:MAX_MODEL_CANDIDATES])
            idx, X = idx[keep], X[keep]
        scores = self.scorer.predict(X)
        # Ties go to catalogue order, so equal scores never shuffle between runs.
        order = np.lexsort((idx, -scores))
        return idx[order], scores[order], X[order]

    def _order(
        self, person: Person, idx: np.ndarray, scores: np.ndarray, n: int, variety: bool
    ) -> list[int]:
        """Greedy maximal-marginal-relevance pick over the best few, so that the list covers
        the person's needs and is not five near-copies of one group."""
        if not variety or n == 1:
            return list(range(min(n, len(idx))))
        pool = min(len(idx), max(4 * n, 40))
        text = self.catalogue.text_matrix[idx[:pool]]
        likeness = (text @ text.T).toarray()
        likeness = np.clip((likeness - LIKENESS_FLOOR) / (1 - LIKENESS_FLOOR), 0.0, 1.0)
        wanted = person.need_weights > 0
        cat = self.catalogue
        serves = np.maximum(cat.needs_listed[idx[:pool]], cat.needs_inferred[idx[:pool]]) >= 0.5
        serves &= wanted
        covered = np.zeros(len(wanted), dtype=bool)
        chosen: list[int] = []
        closest = np.zeros(pool)
        available = np.ones(pool, dtype=bool)
        for _ in range(min(n, pool)):
            brings_new_need = (serves & ~covered).any(axis=1)
            value = scores[:pool] * (1 - SIMILARITY_PENALTY * closest)
            value *= 1 + NEW_NEED_BONUS * brings_new_need
            value[~available] = -np.inf
            k = int(np.argmax(value))  # first maximum: deterministic
            chosen.append(k)
            available[k] = False
            covered |= serves[k]
            closest = np.maximum(closest, likeness[k])
        return chosen

    def _match(
        self, person: Person, i: int, score: float, x: np.ndarray, contribution: np.ndarray
    ) -> Match:
        distance = x[COLUMN["distance_km"]]
        needs, inferred = self.catalogue.needs_of(i)
        return Match(
            activity=self.catalogue.activities[i],
            score=float(score),
            distance_km=None if math.isnan(distance) else float(distance),
            reasons=explain(person, self.catalogue, i, x, contribution),
            needs=needs,
            needs_inferred=inferred,
            location_unknown=bool(x[COLUMN["location_unknown"]]),
        )
