"""Offline evaluation of rankings, always side by side with baselines: on simulated worlds
against the true attendance probabilities, and on real uptake logs on a later time slice.

Metric conventions
------------------
- A ranking is a person's suggestion list, best first, drawn only from their **allowed**
  candidates (``Matcher.score``: spatial candidates passing ``filters.allowed``), so no ranker,
  baseline or model, can break a hard need; every list is audited again with
  ``filters.violations`` (a stated ``max_travel_km`` included) and the count must be 0. As
  served, a list may be filled from beyond the usual distance for the person's travel mode
  when they stated no ``max_travel_km`` (``Matcher.recommend``); people with no allowed
  candidate within the usual distance are left out of every ranker's means
  (``profiles_without_candidates``).
- Lists are ``k = 10`` long (fewer when fewer are allowed). The model is evaluated as served,
  with the variety re-rank (``Matcher.recommend``), and also without it (``*_no_variety``).
- **expected uptake@5**: the sum of the true attendance probabilities of the first 5
  suggestions — the expected number of the 5 that the person takes up (0–5). Averaged over
  held-out people with at least one allowed candidate. ``share_of_oracle`` divides by the
  oracle's.
- **NDCG@10**: graded relevance = the true probability (where no truth is known: attended
  1/0); gain = relevance, discount = log2(rank + 1) with ranks from 1; the ideal DCG is that of
  the best possible ordering of **all** the person's allowed candidates (not just the ones
  listed), so the oracle scores exactly 1. People whose ideal DCG is 0 are left out of the mean.
- **recall@k** (logs without truth): of the activities the person attended, the share in the
  top k of a ranking of their allowed candidates; referrals where nobody attended anything are
  left out. Logged outcomes exist only for what the link worker chose, so recall on logs
  favours rankers that imitate the link worker (nearness, listed needs).
- **pairwise accuracy** (logs without truth): within each referral that has both an attended
  and a not-attended activity, the share of (attended, not attended) pairs the ranker orders
  rightly (ties half), averaged over such referrals. It compares rankers only among options
  the person was really offered, so it does not reward imitating the link worker; it is what
  the gate uses on logs.
- **Brier score**: mean of (prediction − outcome)²; where the outcome is a true probability
  ``y`` it is the *expected* Brier score over the coin flip, mean((pred − y)² + y(1 − y)), so
  0/1 outcomes and probabilities are on one scale. Reported over all allowed pairs of held-out
  people (and over the listed top 10), for rankers whose scores are probabilities.
- **reliability curve**: ``bins`` equal-width bins of the prediction over [0, 1]; per
  non-empty bin the mean prediction, the mean outcome and the count. ``ece`` is the
  count-weighted mean absolute gap.
- **coverage**: the share of the catalogue's active activities that appear in at least one
  held-out person's top 10.
- Groups (stated in the profile): age band ``<40`` / ``40-64`` / ``65+`` / ``unknown``; the
  first need (``none`` when no need is stated); travel mode (``unknown`` when not stated);
  wheelchair users (``yes`` when the profile requires wheelchair access).
- ``units``: the per-unit values behind the gate metric, aligned across rankers so that
  comparisons can be paired (:mod:`training.gate`): per ranked person ``expected_uptake_at_5``
  on a world, per referral with mixed outcomes ``pairwise_accuracy`` on logs, with each unit's
  group values. Arrays, not for the model card.

Baselines: ``random`` (seeded), ``nearest`` (online and location-unknown activities last),
``directory`` (the rule "need match, then distance": listed — or else inferred — needs
weighted by the person's priorities, then nearest), ``cold_start`` (the matcher's transparent
``ColdStartScorer``, as served with variety) and, on simulated worlds, ``oracle`` (the true
probabilities). Ties are broken by catalogue order, so every ranking is deterministic.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from matcher import geo
from matcher.catalogue import Catalogue
from matcher.contract import Profile, UptakeRecord, parse_profile, parse_uptake
from matcher.features import COLUMN, People, Person, build_features, prepare
from matcher.filters import violations
from matcher.ranking import Matcher
from matcher.scoring import ColdStartScorer, Scorer

__all__ = [
    "DirectoryRanker",
    "NearestRanker",
    "OracleRanker",
    "RandomRanker",
    "brier",
    "coverage",
    "dcg_at_k",
    "evaluate_uptake",
    "evaluate_world",
    "expected_calibration_error",
    "expected_uptake_at_k",
    "format_groups",
    "format_table",
    "mean_over_worlds",
    "ndcg_at_k",
    "recall_at_k",
    "reliability_curve",
]

K = 10
UPTAKE_K = 5

# --- metrics -----------------------------------------------------------------------------------


def dcg_at_k(relevance: Sequence[float] | np.ndarray, k: int = K) -> float:
    """Discounted cumulative gain of the first ``k``: Σ rel_i / log2(i + 1), ranks from 1."""
    rel = np.asarray(relevance, dtype=float)[:k]
    return float(np.sum(rel / np.log2(np.arange(2, len(rel) + 2))))


def ndcg_at_k(
    ranked_relevance: Sequence[float] | np.ndarray,
    k: int = K,
    ideal_relevance: Sequence[float] | np.ndarray | None = None,
) -> float:
    """NDCG@k of a ranking given the relevance of its items in ranked order.

    ``ideal_relevance`` is the relevance of every candidate that could have been ranked (the
    ideal DCG sorts them); by default the ranked items themselves. NaN when the ideal DCG is 0.
    """
    ideal = np.asarray(ranked_relevance if ideal_relevance is None else ideal_relevance, float)
    best = dcg_at_k(np.sort(ideal)[::-1], k)
    return dcg_at_k(ranked_relevance, k) / best if best > 0 else math.nan


def expected_uptake_at_k(
    ranked_true_probs: Sequence[float] | np.ndarray, k: int = UPTAKE_K
) -> float:
    """Expected number of the first ``k`` suggestions taken up: the sum of their true
    probabilities (a shorter list simply sums fewer)."""
    return float(np.sum(np.asarray(ranked_true_probs, dtype=float)[:k]))


def recall_at_k(ranked_ids: Sequence, relevant_ids: Iterable, k: int = UPTAKE_K) -> float:
    """Share of ``relevant_ids`` (e.g. attended activities) in the first ``k`` of the ranking;
    NaN when there is nothing relevant."""
    relevant = set(relevant_ids)
    if not relevant:
        return math.nan
    return len(relevant.intersection(list(ranked_ids)[:k])) / len(relevant)


def concordance(scores: np.ndarray, attended: np.ndarray) -> float:
    """Share of (attended, not attended) pairs that ``scores`` order rightly; ties count half."""
    yes, no = scores[attended], scores[~attended]
    if len(yes) == 0 or len(no) == 0:
        return math.nan
    diff = yes[:, None] - no[None, :]
    return float(((diff > 0) + 0.5 * (diff == 0)).mean())


def _rank_scores(order: np.ndarray) -> np.ndarray:
    """Scores from an ordering: the first gets the highest."""
    scores = np.empty(len(order))
    scores[order] = -np.arange(len(order), dtype=float)
    return scores


def brier(pred: Sequence[float] | np.ndarray, outcome: Sequence[float] | np.ndarray) -> float:
    """Brier score; outcomes may be 0/1 or true probabilities (then the expected score over
    the coin flip: mean((pred − y)² + y(1 − y)))."""
    p = np.asarray(pred, dtype=float)
    y = np.asarray(outcome, dtype=float)
    if p.shape != y.shape:
        raise ValueError("pred and outcome must have the same shape")
    if p.size == 0:
        return math.nan
    return float(np.mean((p - y) ** 2 + y * (1.0 - y)))


def reliability_curve(
    pred: Sequence[float] | np.ndarray, outcome: Sequence[float] | np.ndarray, bins: int = 10
) -> list[dict[str, float]]:
    """Per non-empty equal-width bin of the prediction on [0, 1]: its edges, the mean
    prediction, the mean outcome and the count."""
    p = np.clip(np.asarray(pred, dtype=float), 0.0, 1.0)
    y = np.asarray(outcome, dtype=float)
    which = np.minimum((p * bins).astype(int), bins - 1)
    count = np.bincount(which, minlength=bins)
    sum_p = np.bincount(which, weights=p, minlength=bins)
    sum_y = np.bincount(which, weights=y, minlength=bins)
    return [
        {
            "lower": b / bins,
            "upper": (b + 1) / bins,
            "mean_predicted": float(sum_p[b] / count[b]),
            "mean_observed": float(sum_y[b] / count[b]),
            "count": int(count[b]),
        }
        for b in range(bins)
        if count[b]
    ]


def expected_calibration_error(curve: list[dict[str, float]]) -> float:
    """Count-weighted mean |mean predicted − mean observed| over a reliability curve."""
    total = sum(b["count"] for b in curve)
    if not total:
        return math.nan
    return sum(b["count"] * abs(b["mean_predicted"] - b["mean_observed"]) for b in curve) / total


def coverage(rankings: Iterable[Iterable], n_activities: int) -> float:
    """Share of ``n_activities`` that appear in at least one ranking."""
    if n_activities <= 0:
        return math.nan
    seen: set = set()
    for ranking in rankings:
        seen.update(ranking)
    return len(seen) / n_activities


# --- rankers -----------------------------------------------------------------------------------
# Each has Matcher.score's signature: person -> (allowed positions best first, scores, features).
# ``order(idx, X, person)`` ranks candidates already scored, so an evaluation scores once.


class _Baseline:
    name = "baseline"

    def __init__(self, matcher: Matcher):
        self.matcher = matcher

    def score(self, person: Person) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        idx, _, X = self.matcher.score(person)
        order, scores = self.order(idx, X, person)
        return idx[order], scores[order], X[order]

    def order(
        self, idx: np.ndarray, X: np.ndarray, person: Person
    ) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError


def _distance_key(X: np.ndarray) -> np.ndarray:
    d = X[:, COLUMN["distance_km"]]
    return np.where(np.isnan(d), np.inf, d)  # online and location-unknown last


class RandomRanker(_Baseline):
    """Allowed candidates in a random order, seeded per person (by the profile id)."""

    name = "random"

    def __init__(self, matcher: Matcher, seed: int = 0):
        super().__init__(matcher)
        self.seed = seed

    def order(self, idx, X, person):
        key = person.profile.id or ""
        rng = np.random.default_rng([self.seed, *key.encode("utf-8")])
        perm = rng.permutation(len(idx))
        scores = np.empty(len(idx))
        scores[perm] = np.linspace(1.0, 0.0, len(idx)) if len(idx) else scores
        return perm, scores


class NearestRanker(_Baseline):
    """Nearest first; online and location-unknown activities last, in catalogue order."""

    name = "nearest"

    def order(self, idx, X, person):
        d = _distance_key(X)
        return np.lexsort((idx, d)), -d


class DirectoryRanker(_Baseline):
    """A directory's rule: the best need match first (listed needs, or inferred ones where none
    are listed, weighted by the person's priorities), then the nearest."""

    name = "directory"

    def order(self, idx, X, person):
        need = np.round(X[:, COLUMN["need_listed"]] + X[:, COLUMN["need_inferred"]], 6)
        d = _distance_key(X)
        return np.lexsort((idx, d, -need)), need - 1e-3 * np.minimum(d, 100.0)


class OracleRanker(_Baseline):
    """The true probabilities (simulated worlds only): ``truth`` maps a profile id to an array
    aligned with the catalogue's positions."""

    name = "oracle"

    def __init__(self, matcher: Matcher, truth: dict[str, np.ndarray]):
        super().__init__(matcher)
        self.truth = truth

    def order(self, idx, X, person):
        p = self.truth[person.profile.id or ""][idx]
        return np.lexsort((idx, -p)), p


# --- evaluating a simulated world --------------------------------------------------------------


def _age_band(profile: Profile) -> str:
    if profile.age is None:
        return "unknown"
    return "<40" if profile.age < 40 else ("40-64" if profile.age < 65 else "65+")


def _groups(profile: Profile) -> dict[str, str]:
    return {
        "age_band": _age_band(profile),
        "first_need": profile.needs[0] if profile.needs else "none",
        "travel": profile.travel or "unknown",
        "wheelchair": "yes" if "wheelchair" in profile.accessibility else "no",
    }


def _violations(catalogue: Catalogue, person: Person, positions: Iterable[int]) -> int:
    broken = 0
    for i in positions:
        distance = None
        if person.located and catalogue.located[i]:
            distance = float(
                geo.haversine_km(person.lat, person.lon, catalogue.lat[i], catalogue.lon[i])
            )
        activity = catalogue.activities[i]
        if violations(person.profile, activity, distance_km=distance, max_km=person.max_km):
            broken += 1
    return broken


def load_world(world_dir: str | Path) -> tuple[Catalogue, list[Profile], np.ndarray]:
    """A simulated world's catalogue, held-out profiles and truth (rows aligned with the
    profiles, columns with the catalogue's positions)."""
    world = Path(world_dir)
    catalogue = Catalogue.load(world / "catalogue.json")
    with open(world / "heldout_profiles.jsonl", encoding="utf-8") as f:
        profiles = [
            parse_profile(json.loads(line), prefix=f"line {n}")
            for n, line in enumerate(f, start=1)
            if line.strip()
        ]
    with np.load(world / "truth.npz") as data:
        ids = [str(x) for x in data["profile_ids"]]
        columns = np.array([catalogue.index_of(str(a)) for a in data["activity_ids"]])
        p = np.zeros((len(ids), len(catalogue)))
        p[:, columns] = data["p"]
    row = {pid: r for r, pid in enumerate(ids)}
    missing = [pr.id for pr in profiles if pr.id not in row]
    if missing:
        raise ValueError(f"{world}: {len(missing)} held-out profiles have no truth")
    return catalogue, profiles, p[[row[pr.id] for pr in profiles]]


class _Tally:
    """Per-person metric values for one ranker, and what they listed."""

    def __init__(self) -> None:
        self.uptake: list[float] = []
        self.ndcg: list[float] = []
        self.lists: list[np.ndarray] = []
        self.violations = 0
        self.pred: list[np.ndarray] = []
        self.truth: list[np.ndarray] = []
        self.pred_top: list[np.ndarray] = []
        self.truth_top: list[np.ndarray] = []


def _mean(values: Iterable[float]) -> float:
    arr = np.asarray([v for v in values if not math.isnan(v)], dtype=float)
    return float(arr.mean()) if arr.size else math.nan


def evaluate_world(
    world_dir: str | Path,
    scorer: Scorer | None = None,
    *,
    k: int = K,
    seed: int = 0,
    logged: bool = True,
) -> dict[str, Any]:
    """Rank every held-out profile of a simulated world with ``scorer`` (default: the
    cold-start scorer) and every baseline, and score the lists against the truth.

    Returns ``{"rankers": {name: metrics}, "groups": {group: {value: {name: metrics}}},
    "violations": total, ...}``; with ``logged``, also ``"logged"``: recall on the held-out
    patients' logged referrals (:func:`evaluate_uptake`), to compare with the truth.
    """
    started = time.perf_counter()
    catalogue, profiles, truth = load_world(world_dir)
    scorer = scorer or ColdStartScorer()
    model = Matcher(catalogue, scorer)
    cold = Matcher(catalogue, ColdStartScorer())
    by_id = {pr.id or "": truth[r] for r, pr in enumerate(profiles)}
    baselines: list[_Baseline] = [
        OracleRanker(cold, by_id), RandomRanker(cold, seed), NearestRanker(cold),
        DirectoryRanker(cold),
    ]  # fmt: skip
    names = ["oracle", "model", "model_no_variety", "cold_start", "cold_start_no_variety",
             "directory", "nearest", "random"]  # fmt: skip
    tally = {name: _Tally() for name in names}
    group_rows: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    unit_groups: dict[str, list[str]] = defaultdict(list)
    empty = 0
    ranked = 0
    for r, profile in enumerate(profiles):
        person = prepare(profile, catalogue)
        idx, scores, X = model.score(person)
        if len(idx) == 0:
            empty += 1
            continue
        if scorer is cold.scorer or isinstance(scorer, ColdStartScorer):
            cidx, cscores, cX = idx, scores, X
        else:
            cidx, cscores, cX = cold.score(person)
        lists: dict[str, tuple[np.ndarray, np.ndarray | None]] = {
            "model": (_served(model, profile, k), None),
            "model_no_variety": (idx[:k], scores[:k]),
            "cold_start": (_served(cold, profile, k), None),
            "cold_start_no_variety": (cidx[:k], cscores[:k]),
        }
        for baseline in baselines:
            order, _ = baseline.order(cidx, cX, person)
            lists[baseline.name] = (cidx[order][:k], None)
        p_row = truth[r]
        ideal = p_row[cidx]
        for name, (top, _) in lists.items():
            t = tally[name]
            rel = p_row[top]
            t.uptake.append(expected_uptake_at_k(rel, UPTAKE_K))
            t.ndcg.append(ndcg_at_k(rel, k, ideal))
            t.lists.append(top)
            t.violations += _violations(catalogue, person, top)
        for name, (pidx, pscores) in (("model", (idx, scores)), ("cold_start", (cidx, cscores))):
            tally[name].pred.append(pscores)
            tally[name].truth.append(p_row[pidx])
            tally[name].pred_top.append(pscores[:k])
            tally[name].truth_top.append(p_row[pidx[:k]])
        tally["oracle"].pred.append(ideal)
        tally["oracle"].truth.append(ideal)
        for group, value in _groups(profile).items():
            group_rows[group][value].append(ranked)
            unit_groups[group].append(value)
        ranked += 1

    n_active = int(catalogue.active.sum())
    oracle_uptake = _mean(tally["oracle"].uptake)
    rankers: dict[str, dict[str, Any]] = {}
    for name, t in tally.items():
        uptake = _mean(t.uptake)
        out: dict[str, Any] = {
            "expected_uptake_at_5": uptake,
            "share_of_oracle": uptake / oracle_uptake if oracle_uptake else math.nan,
            "ndcg_at_10": _mean(t.ndcg),
            "coverage": coverage((top.tolist() for top in t.lists), n_active),
            "mean_list_length": _mean(len(top) for top in t.lists),
            "violations": t.violations,
        }
        if t.pred:
            pred, y = np.concatenate(t.pred), np.concatenate(t.truth)
            curve = reliability_curve(pred, y)
            out["brier"] = brier(pred, y)
            out["ece"] = expected_calibration_error(curve)
            out["reliability"] = curve
            if t.pred_top:
                out["brier_top"] = brier(np.concatenate(t.pred_top), np.concatenate(t.truth_top))
        rankers[name] = out

    groups: dict[str, dict[str, Any]] = {}
    for group, values in group_rows.items():
        groups[group] = {}
        for value, rows in sorted(values.items()):
            oracle = _mean(tally["oracle"].uptake[j] for j in rows)
            entry: dict[str, Any] = {"n": len(rows)}
            for name, t in tally.items():
                uptake = _mean(t.uptake[j] for j in rows)
                entry[name] = {
                    "expected_uptake_at_5": uptake,
                    "share_of_oracle": uptake / oracle if oracle else math.nan,
                    "ndcg_at_10": _mean(t.ndcg[j] for j in rows),
                }
            groups[group][value] = entry

    result: dict[str, Any] = {
        "world": str(world_dir),
        "model_version": scorer.version,
        "profiles": len(profiles),
        "profiles_ranked": ranked,
        "profiles_without_candidates": empty,
        "activities": len(catalogue),
        "active_activities": n_active,
        "k": k,
        "rankers": rankers,
        "groups": groups,
        "violations": sum(t.violations for t in tally.values()),
        "units": {
            "kind": "world",
            "metric": "expected_uptake_at_5",
            "n": ranked,
            "values": {name: np.asarray(t.uptake) for name, t in tally.items()},
            "groups": {group: np.asarray(labels) for group, labels in unit_groups.items()},
        },
    }
    log = Path(world_dir) / "heldout_uptake.jsonl"
    if logged and log.exists():
        with open(log, encoding="utf-8") as f:
            records = [parse_uptake(json.loads(line)) for line in f if line.strip()]
        result["logged"] = evaluate_uptake(catalogue, records, scorer, since=None, seed=seed,
                                           later_share=1.0)  # fmt: skip
    result["seconds"] = round(time.perf_counter() - started, 2)
    return result


def _log_loss_sum(p: np.ndarray, went: np.ndarray) -> float:
    """Negative log-likelihood of one referral's outcomes under chances ``p`` (nats)."""
    p = np.clip(np.asarray(p, float), 1e-6, 1 - 1e-6)
    return float(-np.sum(np.where(went, np.log(p), np.log1p(-p))))


def _served(matcher: Matcher, profile: Profile, k: int) -> np.ndarray:
    """Positions of the list as served: ``Matcher.recommend`` with the variety re-rank."""
    position = matcher.catalogue.position
    return np.array([position[m.activity_id] for m in matcher.recommend(profile, k)], dtype=int)


# --- evaluating real uptake logs ---------------------------------------------------------------


def evaluate_uptake(
    catalogue: Catalogue,
    records: Iterable[UptakeRecord | dict],
    scorer: Scorer | None = None,
    *,
    since: date | str | None = None,
    later_share: float = 0.2,
    k: int = UPTAKE_K,
    seed: int = 0,
    reference: Callable[[np.ndarray], np.ndarray] | None = None,
) -> dict[str, Any]:
    """Recall@k of the model and the baselines on the referrals of a later time slice.

    ``reference`` gives the chance of attending by the cold-start scorer's ranking calibrated
    on the training rows (:func:`training.fit.cold_start_reference`); the per-referral log
    loss of the model and of the reference are the units the gate compares (every referral
    counts, not only those with mixed outcomes). Without it, the cold-start scorer's own
    hand-set chance is used.

    The slice is the referrals dated on or after ``since``; by default the latest
    ``later_share`` of referral ids by date. For each referral (lines sharing a
    ``referral_id``) the person's allowed candidates are ranked, and the activities they
    attended are looked for in the top ``k`` (and top 10). The model's predicted chance for
    each logged pair is scored against ``attended`` (Brier, reliability). Lines naming an
    activity not in the catalogue are counted and skipped.
    """
    scorer = scorer or ColdStartScorer()
    parsed = [r if isinstance(r, UptakeRecord) else parse_uptake(r) for r in records]
    referrals: dict[str, list[UptakeRecord]] = defaultdict(list)
    for record in parsed:
        referrals[record.referral_id].append(record)
    first_date = {rid: min(r.date for r in lines) for rid, lines in referrals.items()}
    if since is None:
        dates = sorted(first_date.values())
        cut = dates[min(len(dates) - 1, int(len(dates) * (1.0 - later_share)))] if dates else None
    else:
        cut = date.fromisoformat(since) if isinstance(since, str) else since
    chosen = sorted(
        (rid for rid, d in first_date.items() if cut is None or d >= cut),
        key=lambda rid: (first_date[rid], rid),
    )
    model = Matcher(catalogue, scorer)
    cold = Matcher(catalogue, ColdStartScorer())
    baselines: list[_Baseline] = [RandomRanker(cold, seed), NearestRanker(cold),
                                  DirectoryRanker(cold)]  # fmt: skip
    names = ["model", "model_no_variety", "cold_start", "directory", "nearest", "random"]
    recall: dict[str, dict[int, list[float]]] = {n: {k: [], K: []} for n in names}
    group_rows: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    pred: list[float] = []
    outcome: list[float] = []
    pairwise: dict[str, list[float]] = {n: [] for n in names}
    loss: dict[str, list[float]] = {"model": [], "cold_start": []}
    unit_pairwise: dict[str, list[float]] = {n: [] for n in names}
    unit_groups: dict[str, list[str]] = defaultdict(list)
    unknown = 0
    scored = 0
    evidence = scorer.evidence(catalogue)
    for rid in chosen:
        lines = referrals[rid]
        profile = lines[0].profile
        known = [r for r in lines if r.activity_id in catalogue.position]
        unknown += len(lines) - len(known)
        if not known:
            continue
        person = prepare(profile, catalogue)
        positions = np.array([catalogue.position[r.activity_id] for r in known])
        X = build_features(
            People([person], catalogue), catalogue, np.zeros(len(positions), np.intp), positions,
            evidence,
        )  # fmt: skip
        model_scores = scorer.predict(X)
        pred.extend(model_scores.tolist())
        outcome.extend(float(r.attended) for r in known)
        went = np.array([r.attended for r in known])
        rival = reference(X) if reference is not None else cold.scorer.predict(X)
        loss["model"].append(_log_loss_sum(model_scores, went))
        loss["cold_start"].append(_log_loss_sum(rival, went))
        for group, value in _groups(profile).items():
            unit_groups[group].append(value)
        mixed = went.any() and not went.all()
        if not mixed:
            for name in names:
                unit_pairwise[name].append(math.nan)
        if mixed:
            # Among the activities this person was actually referred to, does the ranker put
            # those they went to above those they did not? Unlike recall, this does not reward
            # imitating the link worker who chose them.
            scores = {"model": model_scores, "model_no_variety": model_scores,
                      "cold_start": cold.scorer.predict(X)}  # fmt: skip
            for baseline in baselines:
                order, _ = baseline.order(positions, X, person)
                scores[baseline.name] = _rank_scores(order)
            for name, s in scores.items():
                pairwise[name].append(concordance(s, went))
                unit_pairwise[name].append(pairwise[name][-1])
        attended = {r.activity_id for r in known if r.attended}
        if not attended:
            continue
        idx, _, X_all = model.score(person)
        cidx, _, cX = cold.score(person)
        depth = max(k, K)
        lists = {
            "model": _served(model, profile, depth),
            "model_no_variety": idx[:depth],
            "cold_start": _served(cold, profile, depth),
        }
        for baseline in baselines:
            order, _ = baseline.order(cidx, cX, person)
            lists[baseline.name] = cidx[order][:depth]
        for name, top in lists.items():
            ids = [catalogue.ids[i] for i in top]
            recall[name][k].append(recall_at_k(ids, attended, k))
            recall[name][K].append(recall_at_k(ids, attended, K))
        for group, value in _groups(profile).items():
            group_rows[group][value].append(scored)
        scored += 1
    curve = reliability_curve(pred, outcome) if pred else []
    result: dict[str, Any] = {
        "since": None if cut is None else cut.isoformat(),
        "referrals": len(chosen),
        "referrals_with_attendance": scored,
        "lines_unknown_activity": unknown,
        "k": k,
        "referrals_with_mixed_outcomes": len(pairwise["model"]),
        "rankers": {
            name: {
                f"recall_at_{k}": _mean(r[k]),
                f"recall_at_{K}": _mean(r[K]),
                "pairwise_accuracy": _mean(pairwise[name]),
            }
            for name, r in recall.items()
        },
        "model_calibration": {
            "pairs": len(pred),
            "brier": brier(pred, outcome),
            "ece": expected_calibration_error(curve),
            "reliability": curve,
        },
        "groups": {
            group: {
                value: {"n": len(rows)}
                | {name: _mean(recall[name][k][j] for j in rows) for name in names}
                for value, rows in sorted(values.items())
            }
            for group, values in group_rows.items()
        },
        "units": {
            "kind": "logs",
            "metric": "log_loss",
            "lower_is_better": True,
            "n": len(loss["model"]),
            "mixed": len(pairwise["model"]),
            "values": {name: np.asarray(v) for name, v in loss.items()},
            # Ranking within referrals: NaN where a referral's outcomes are not mixed.
            "shown": {
                "metric": "pairwise_accuracy",
                "values": {name: np.asarray(v) for name, v in unit_pairwise.items()},
            },
            "groups": {group: np.asarray(labels) for group, labels in unit_groups.items()},
        },
    }
    return result


# --- summaries ---------------------------------------------------------------------------------

TABLE_RANKERS = ("oracle", "model", "model_no_variety", "cold_start", "directory", "nearest",
                 "random")  # fmt: skip


def mean_over_worlds(results: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per ranker, the mean and standard deviation over worlds of each scalar metric."""
    out: dict[str, dict[str, float]] = {}
    for name in results[0]["rankers"]:
        metrics = [r["rankers"][name] for r in results]
        out[name] = {}
        for key, value in metrics[0].items():
            if isinstance(value, (int, float)):
                values = np.array([m[key] for m in metrics], dtype=float)
                out[name][key] = float(np.nanmean(values))
                out[name][key + "_sd"] = float(np.nanstd(values))
    return out


def format_table(
    results: Sequence[dict[str, Any]],
    metrics: Sequence[str] = ("expected_uptake_at_5", "share_of_oracle", "ndcg_at_10"),
    rankers: Sequence[str] = TABLE_RANKERS,
    labels: Sequence[str] | None = None,
) -> str:
    """A Markdown table: one row per ranker, per metric a column per world and their mean."""
    labels = list(labels or [Path(r["world"]).name for r in results])
    mean = mean_over_worlds(results)
    head = ["ranker"]
    for metric in metrics:
        head += [f"{metric} {label}" for label in labels] + [f"{metric} mean"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in rankers:
        if name not in mean:
            continue
        cells = [name]
        for metric in metrics:
            cells += [f"{r['rankers'][name][metric]:.3f}" for r in results]
            cells.append(f"**{mean[name][metric]:.3f}**")
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def format_groups(
    result: dict[str, Any],
    rankers: Sequence[str] = ("oracle", "model", "cold_start", "directory", "nearest"),
    metric: str = "expected_uptake_at_5",
) -> str:
    """A Markdown table of one metric per group value and ranker, to see whom a ranker serves
    worse; with the per-unit values at hand, also the model's 90% interval per group and its
    ratio to the model's overall figure (share of the oracle on worlds), and the worst group
    of at least :data:`training.gate.MIN_GROUP` people."""
    from .gate import MIN_GROUP, fairness

    fair = fairness(result["units"], "model") if result.get("units") else None
    extra = ["model 90% interval", "ratio to overall"] if fair else []
    head = ["group", "value", "n", *rankers, *extra]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for group, values in result["groups"].items():
        for value, entry in values.items():
            cells = [group, value, str(entry["n"])]
            cells += [f"{entry[name][metric]:.3f}" for name in rankers]
            if fair:
                f = fair["groups"].get(group, {}).get(value)
                cells += ["", ""] if f is None else [
                    f"{f['low']:.3f} – {f['high']:.3f}", f"{f['ratio']:.2f}"]  # fmt: skip
            rows.append("| " + " | ".join(cells) + " |")
    if fair and fair["worst"]:
        w = fair["worst"]
        rows.append(f"\nworst group of at least {MIN_GROUP}: {w['group']} {w['value']} "
                    f"({w['n']} people), {w['ratio']:.2f} of the model's overall")  # fmt: skip
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.evaluate",
        description="Evaluate a model and the baselines on simulated worlds.",
    )
    parser.add_argument("worlds", nargs="+", help="folders written by training.simulate")
    parser.add_argument("--model", help="trained model folder (default: the cold-start scorer)")
    parser.add_argument("--json", action="store_true", help="print the full results as JSON")
    args = parser.parse_args(argv)
    scorer: Scorer = ColdStartScorer()
    if args.model:
        from matcher.scoring import load_scorer

        scorer, _ = load_scorer(args.model)
    results = []
    for world in args.worlds:
        if not Path(world, "truth.npz").exists():
            parser.exit(2, f"{parser.prog}: error: {world}: not a simulated world\n")
        results.append(evaluate_world(world, scorer))
        print(f"{world}: {results[-1]['seconds']} s", file=sys.stderr)
    if args.json:
        plain = [{k: v for k, v in r.items() if k != "units"} for r in results]
        print(json.dumps(plain, indent=1, default=float))
        return 0
    print(format_table(results))
    for result in results:
        print(f"\n{result['world']}: violations {result['violations']}\n")
        print(format_groups(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
