"""The gate: whether a newly trained model may replace the one being served, decided with the
uncertainty of every comparison in view.

Evidence
--------
The evaluation gives, per held-out unit, each ranker's value of the gate metric on the same
units: per person ``expected_uptake_at_5`` on a simulated world (truth known), per referral
with mixed outcomes ``pairwise_accuracy`` on logs. A comparison of the new model with a rival
is a **paired bootstrap over units**: the units are resampled with replacement
(:data:`BOOTSTRAP_RESAMPLES` times, seeded), and in each resample the *relative gain*
``mean(new) / mean(rival) - 1`` is computed; the 5th and 95th percentiles are the 90%
interval. Pairing (the same resampled units for both) removes the variation between people,
which is most of it.

Rule
----
The new model is promoted only if, as served,

- the **lower end** of the 90% interval of its gain over the current model and over the
  cold-start scorer is above ``margin`` (relative; 0 by default: the interval already says how
  sure we are). Without a current model, the cold-start scorer is what is served, so it is the
  only rival that must be beaten. Intervals against the other baselines are shown, not gated;
- it breaks no hard need;
- its worst-served group (of at least :data:`MIN_GROUP` people) is not below
  :data:`FAIR_RATIO` of its overall figure when the current model's (or, without one, the
  cold-start scorer's) worst group is not.

A refusal says how much evidence there was and roughly how much more would settle it: if the
gain seen is real, the interval narrows as one over the square root of the number of units,
so ``n × (1.645·se / (gain − margin))²`` units would lift its lower end above the margin.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

BOOTSTRAP_RESAMPLES = 2000
LEVEL = 0.90
Z = 1.645  # the 95th percentile of the normal: a two-sided 90% interval
DEFAULT_MARGIN = 0.0
GATED_RIVALS = ("current_model", "cold_start")
SHOWN_RIVALS = ("directory", "nearest", "random")
MIN_GROUP = 15
FAIR_RATIO = 0.9

__all__ = [
    "DEFAULT_MARGIN",
    "FAIR_RATIO",
    "MIN_GROUP",
    "fairness",
    "gate",
    "mean_interval",
    "paired_gain",
]


def _resamples(n: int, seed: int, resamples: int = BOOTSTRAP_RESAMPLES) -> np.ndarray:
    """Bootstrap counts: how often each of ``n`` units is drawn in each resample
    (``resamples × n``), so every comparison on the same units uses the same draws."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n, np.full(n, 1.0 / n), size=resamples).astype(np.float64)


def paired_gain(
    new: np.ndarray,
    rival: np.ndarray,
    *,
    seed: int = 0,
    counts: np.ndarray | None = None,
    lower_is_better: bool = False,
) -> dict[str, float]:
    """Relative gain of ``new`` over ``rival`` (per-unit values, aligned), with a 90% paired
    bootstrap interval: ``mean(new) / mean(rival) - 1``, or for a loss ``1 - mean(new) /
    mean(rival)``, so a positive gain is always better. NaN units (not measurable for either)
    are left out."""
    new, rival = np.asarray(new, float), np.asarray(rival, float)
    keep = ~(np.isnan(new) | np.isnan(rival))
    new, rival = new[keep], rival[keep]
    if counts is not None:
        counts = counts[:, keep]
    n = len(new)
    if n == 0 or rival.mean() == 0:
        return {"units": n, "gain": math.nan, "low": math.nan, "high": math.nan,
                "new": math.nan, "rival": math.nan}  # fmt: skip
    if counts is None:
        counts = _resamples(n, seed)
    sign = -1.0 if lower_is_better else 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        gains = sign * ((counts @ new) / (counts @ rival) - 1.0)
    low, high = np.nanquantile(gains, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    return {
        "units": n,
        "new": float(new.mean()),
        "rival": float(rival.mean()),
        "gain": float(sign * (new.mean() / rival.mean() - 1.0)),
        "low": float(low),
        "high": float(high),
    }


def mean_interval(values: np.ndarray, *, seed: int = 0) -> tuple[float, float, float]:
    """The mean of ``values`` with a 90% bootstrap interval (NaNs left out)."""
    values = np.asarray(values, float)
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return math.nan, math.nan, math.nan
    means = _resamples(len(values), seed) @ values / len(values)
    low, high = np.quantile(means, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    return float(values.mean()), float(low), float(high)


def fairness(
    units: dict[str, Any], ranker: str, *, seed: int = 0, min_group: int = MIN_GROUP
) -> dict[str, Any]:
    """Per group value, ``ranker``'s mean of the gate metric with a 90% interval and its ratio
    to the ranker's overall mean; ``worst`` is the lowest ratio among groups of at least
    ``min_group`` units. On worlds the metric is first divided by the oracle's mean over the
    same units (share of the oracle), so that a group the catalogue serves badly for everyone
    is not blamed on the model."""
    source = units.get("shown", units)  # on logs: ranking within referrals, not the log loss
    values = np.asarray(source["values"][ranker], float)
    oracle = source["values"].get("oracle")
    oracle = None if oracle is None else np.asarray(oracle, float)

    def figure(rows: np.ndarray) -> float:
        v = values[rows]
        if oracle is None:
            return float(np.nanmean(v)) if np.isfinite(v).any() else math.nan
        denominator = float(np.nanmean(oracle[rows]))
        return float(np.nanmean(v)) / denominator if denominator else math.nan

    every = np.flatnonzero(~np.isnan(values))
    overall = figure(every)
    groups: dict[str, dict[str, Any]] = {}
    worst: dict[str, Any] | None = None
    for group, labels in units["groups"].items():
        labels = np.asarray(labels)
        groups[group] = {}
        for value in sorted(set(labels.tolist())):
            rows = np.flatnonzero((labels == value) & ~np.isnan(values))
            if len(rows) == 0:
                continue  # nobody of this group among the units that measure it
            mean, low, high = mean_interval(values[rows], seed=seed)
            ratio = figure(rows) / overall if overall else math.nan
            entry = {"n": len(rows), "mean": mean, "low": low, "high": high, "ratio": ratio}
            groups[group][value] = entry
            if (
                len(rows) >= min_group
                and not math.isnan(ratio)
                and (worst is None or ratio < worst["ratio"])
            ):
                worst = {"group": group, "value": value, "n": len(rows), "ratio": ratio}
    return {"metric": source["metric"], "overall": overall, "groups": groups, "worst": worst}


def _evidence(units: dict[str, Any]) -> str:
    if units["kind"] == "world":
        return f"{units['n']} held-out people"
    where = ""
    if units.get("windows", 1) > 1:
        where = f", in {units['windows']} windows of referrals each later than its model's data"
    return f"{units['n']} held-out referrals ({units['mixed']} with mixed outcomes){where}"


def _more_needed(comparison: dict[str, float], margin: float) -> str:
    """Roughly how many units would settle a comparison whose interval straddles the margin."""
    gain, low, high, n = (
        comparison["gain"],
        comparison["low"],
        comparison["high"],
        comparison["units"],
    )
    if math.isnan(gain) or gain <= margin:
        return "the estimate itself shows no gain, so more data of this kind would not settle it"
    se = (high - low) / (2 * Z)
    needed = n * (Z * se / (gain - margin)) ** 2
    times = math.ceil(needed / max(n, 1) * 10) / 10
    return f"if the gain is real, about {times:g}× as many ({math.ceil(needed)}) would settle it"


def gate(
    results: dict[str, Any],
    units: dict[str, Any] | None,
    current_units: dict[str, Any] | None,
    *,
    margin: float = DEFAULT_MARGIN,
    seed: int = 0,
) -> dict[str, Any]:
    """The decision and everything it rests on (see the module docstring). ``units`` are the
    new model's per-unit evaluation (with the baselines'), ``current_units`` the current
    model's on the same units, or None when no model is being served."""
    metric = units["metric"] if units else "none"
    decision: dict[str, Any] = {"metric": metric, "margin": margin, "level": LEVEL,
                                "resamples": BOOTSTRAP_RESAMPLES, "comparisons": {}}  # fmt: skip
    reasons: list[str] = []
    if not units or units["n"] == 0:
        decision.update(
            accepted=False,
            evidence="no held-out unit could be scored",
            reasons=[
                f"{metric} cannot be measured on the held-out data (no held-out referral "
                "with both an activity taken up and one not)"
            ],  # fmt: skip
        )
        return decision
    decision["evidence"] = _evidence(units)
    values = dict(units["values"])
    if current_units is not None:
        values["current_model"] = current_units["values"]["model"]
    counts = _resamples(len(values["model"]), seed)
    lower = bool(units.get("lower_is_better"))
    for rival in GATED_RIVALS:
        if rival in values:
            decision["comparisons"][rival] = paired_gain(
                values["model"], values[rival], counts=counts, lower_is_better=lower
            )
    shown = units.get("shown", units)
    decision["shown_metric"] = shown["metric"]
    for rival in SHOWN_RIVALS:
        if rival in shown["values"]:
            decision["comparisons"][rival] = paired_gain(
                shown["values"]["model"], shown["values"][rival], counts=counts
            )
    for rival in GATED_RIVALS:
        c = decision["comparisons"].get(rival)
        if c is None:
            continue
        if math.isnan(c["low"]) or not c["low"] > margin:
            reasons.append(
                f"{metric}: gain over {rival} {c['gain']:+.1%} (90% interval {c['low']:+.1%} "
                f"to {c['high']:+.1%}) on {decision['evidence']}; its lower end is not above "
                f"{margin:+.1%}; {_more_needed(c, margin)}"
            )
    if results.get("violations", 0):
        reasons.append(f"{results['violations']} suggestions broke a hard need")

    fair_new = fairness(units, "model", seed=seed)
    baseline_name = "current_model" if current_units is not None else "cold_start"
    fair_old = (fairness(current_units, "model", seed=seed) if current_units is not None
                else fairness(units, "cold_start", seed=seed))  # fmt: skip
    decision["fairness"] = {"model": fair_new, baseline_name: fair_old, "ratio": FAIR_RATIO,
                            "min_group": MIN_GROUP}  # fmt: skip
    worst_new, worst_old = fair_new["worst"], fair_old["worst"]
    if (
        worst_new
        and worst_new["ratio"] < FAIR_RATIO
        and not (worst_old and worst_old["ratio"] < FAIR_RATIO)
    ):
        reasons.append(
            f"its worst-served group ({worst_new['group']} {worst_new['value']}, "
            f"{worst_new['n']} people) gets {worst_new['ratio']:.2f} of its overall figure, "
            f"below {FAIR_RATIO}, while {baseline_name}'s worst group gets "
            f"{'n/a' if not worst_old else format(worst_old['ratio'], '.2f')}"
        )
    decision["accepted"] = not reasons
    decision["reasons"] = reasons or [
        f"its gain over {' and '.join(r for r in GATED_RIVALS if r in decision['comparisons'])} "
        f"is above {margin:+.1%} at the lower end of the 90% interval, on {decision['evidence']}"
    ]
    return decision
