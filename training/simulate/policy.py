"""The link worker: who gets referred where (directory needs and nearness plus noise, blind to
everything else), what the directory showed, and how each referral turned out.
"""

from __future__ import annotations

import numpy as np

from .population import Population
from .truth import Activities, WorldParams, true_distance

__all__ = ["policy_score", "uptake_lines"]


def policy_score(
    people: Population,
    acts: Activities,
    params: WorldParams,
    distance: np.ndarray | None = None,
) -> np.ndarray:
    """P × A: the link worker's preference before noise — the directory's needs and nearness
    only, blind to quality, timing, cost, interests and every interaction."""
    need = people.need_weights @ acts.directory.T
    d = true_distance(people, acts) if distance is None else distance
    near = np.where(acts.online[None, :], params.policy_online, -d / params.policy_distance_km)
    return params.policy_need * need + near


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    """Column positions of each row's ``k`` largest scores, best first (ties: lower column)."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    values = np.take_along_axis(scores, part, axis=1)
    return np.take_along_axis(part, np.lexsort((part, -values), axis=-1), axis=1)


def uptake_lines(
    rng: np.random.Generator,
    people: Population,
    acts: Activities,
    params: WorldParams,
    p: np.ndarray,
    k: np.ndarray,
    hard: np.ndarray,
    distance: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The link worker's picks for each person (``k[i]`` referrals), what the directory showed,
    and the outcomes: ``(person, activity, attended, sessions, shown)`` per referral row."""
    base = policy_score(people, acts, params, distance)
    base[hard] = -np.inf
    noisy = base + params.policy_noise * rng.gumbel(size=base.shape)
    picks = _top(noisy, 3)
    shown = _top(base, 6)
    person = np.repeat(np.arange(len(people)), k)
    rank = np.concatenate([np.arange(j) for j in k]) if len(k) else np.zeros(0, np.int64)
    activity = picks[person, rank]
    prob = p[person, activity]
    attended = rng.random(len(person)) < prob
    sessions = 1 + rng.poisson(8.0 * prob)
    return person, activity, attended, sessions, shown
