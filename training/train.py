"""``python -m training.train``: learn the ranking model from uptake, evaluate it against the
baselines and the current model on later data, gate it, and write a versioned model folder."""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from matcher.catalogue import Catalogue
from matcher.errors import MatcherError, ModelError
from matcher.scoring import Scorer, load_model, save_model, set_current, update_card
from matcher.scoring.trained import TrainedScorer

from .evaluate import evaluate_uptake, evaluate_world
from .fit import (
    cold_start_reference,
    evidence_from,
    feature_matrix,
    fill_evidence,
    fit,
)
from .gate import DEFAULT_MARGIN, gate
from .uptake import UptakeData, load_uptake

# Referrals of the held-out slice evaluated on real logs: each is ranked over the catalogue by
# every ranker (milliseconds each), so a million-line log is judged on a sample.
EVALUATE_REFERRALS = 20_000
# On a log whose latest slice holds fewer referrals than this, the gate also judges models
# fitted on earlier cuts (at these shares of the log by date) on the referrals that follow
# them: about three times the evidence of the latest slice alone (see _earlier_windows).
EARLIER_WINDOWS_BELOW = 5_000
EARLIER_WINDOWS = (0.55, 0.70)


@dataclass
class Split:
    """Rows by time: fit on ``train``, stop early and calibrate on ``valid`` (later), evaluate
    and gate on ``test`` (latest; empty when a simulated world supplies held-out truth)."""

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray

    def sizes(self) -> dict[str, int]:
        return {k: int(v.sum()) for k, v in vars(self).items()}


def time_split(dates: np.ndarray, valid_share: float, test_share: float) -> Split:
    """Cut at whole days so that one day's referrals are never on both sides of a cut."""
    ordered = np.sort(dates)
    n = len(ordered)

    def cut(share: float) -> np.datetime64:
        return ordered[min(n - 1, int(n * (1.0 - share)))]

    test = dates >= cut(test_share) if test_share > 0 else np.zeros(n, dtype=bool)
    valid = (dates >= cut(test_share + valid_share)) & ~test
    train = ~valid & ~test
    if not train.any() or not valid.any():
        raise MatcherError("the uptake spans too few days to hold out a later slice for validation")
    return Split(train, valid, test)


def training_rows(
    catalogue: Catalogue,
    uptake_path: str | Path,
    *,
    held_out: bool = True,
    valid_share: float = 0.15,
    test_share: float = 0.15,
    log: Callable[[str], None] = lambda text: None,
) -> tuple[UptakeData, np.ndarray, np.ndarray, Split, float]:
    """Read the uptake, build its features and split it by time: ``(data, X, y, split,
    prior)``, ``X`` float32 with the activity evidence filled in (out of fold in the training
    rows, from the training rows in the later ones). Without ``held_out`` (a simulated world
    holds the truth out) there is no test slice. Benchmarks fit other learners on exactly this.
    """
    # Features are built (the serving feature builder) chunk by chunk as the uptake is read,
    # into one float32 matrix; no validated record outlives its chunk.
    building = [0.0]

    def build(profiles, profile_of_row, positions):
        t0 = time.perf_counter()
        block = feature_matrix(catalogue, profiles, profile_of_row, positions)
        building[0] += time.perf_counter() - t0
        return block

    t0 = time.perf_counter()
    data = load_uptake(uptake_path, catalogue, log=_Writer(log), keep_records=False,
                       features=build)  # fmt: skip
    X = data.features
    y = data.outcome.astype(int)
    log(f"  read, validated and built {X.shape[0]} rows × {X.shape[1]} features in "
        f"{time.perf_counter() - t0:.1f} s (features {building[0]:.1f} s)")  # fmt: skip
    split = time_split(data.dates, valid_share, test_share if held_out else 0.0)
    log(f"split by date: {split.sizes()}")

    prior = fill_evidence(X, data.activity, y, data.referral, split.train,
                          split.valid | split.test, len(catalogue))  # fmt: skip
    return data, X, y, split, prior


def train(
    catalogue_path: str | Path,
    uptake_path: str | Path,
    out: str | Path,
    *,
    world: str | Path | None = None,
    margin: float = DEFAULT_MARGIN,
    valid_share: float = 0.15,
    test_share: float = 0.15,
    seed: int = 0,
    version: str | None = None,
    report: bool = True,
    log: Callable[[str], None] = lambda text: print(text, file=sys.stderr, flush=True),
) -> dict[str, Any]:
    """The whole job; returns the model card. See the module docstring."""
    started = time.perf_counter()
    catalogue = Catalogue.load(catalogue_path)
    log(catalogue.report.summary())
    data, X, y, split, prior = training_rows(catalogue, uptake_path, held_out=not world,
                                             valid_share=valid_share, test_share=test_share,
                                             log=log)  # fmt: skip
    known = ~split.test  # what the model may learn from; the test slice stays unseen

    log("fitting …")
    t0 = time.perf_counter()
    fitted = fit(X[split.train], y[split.train], X[split.valid], y[split.valid],
                        seed=seed, log=log)  # fmt: skip
    fit_seconds = time.perf_counter() - t0
    served = evidence_from(data.activity[known], y[known], len(catalogue), prior)
    with warnings.catch_warnings():  # a feature missing everywhere has no median: NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        reference = np.nanmedian(X[split.train], axis=0)

    version = version or datetime.now(timezone.utc).strftime("v%Y%m%d-%H%M%S")
    card = {
        "data": data.report.to_dict(),
        "training": {
            "catalogue": str(catalogue_path),
            "uptake": str(uptake_path),
            "split": split.sizes(),
            "boosting_rounds": fitted.n_iter,
            "prior_blend": dict(
                zip(("intercept", "cold_start", "trees"), fitted.stack.tolist(), strict=True)
            ),
            "fit_seconds": round(fit_seconds, 1),
            "seed": seed,
        },
    }
    folder = save_model(fitted.booster, (catalogue.ids, served.rate, served.count), card, out,
                        version, stack=fitted.stack,
                        reference=reference, prior=prior)  # fmt: skip
    log(f"wrote {folder}")
    scorer = load_model(folder)  # what is evaluated is exactly what was written

    log("evaluating against the baselines …")
    # On logs the model's chances are judged against the cold-start ranking calibrated on
    # the same training rows (with the person's own terms): see training.gate.
    calibrated = None if world else cold_start_reference(X[split.train], y[split.train])
    results = _evaluate(catalogue, data, split, scorer, world, seed, calibrated)
    units = results.pop("units", None)  # per-unit arrays for the gate, not for the card
    current_scorer = _current_scorer(out, version, log)
    current_units = None
    if current_scorer is not None:
        log(f"evaluating the current model {current_scorer.version} on the same data …")
        current = _evaluate(catalogue, data, split, current_scorer, world, seed, calibrated)
        current_units = current.pop("units", None)
    if not world and units is not None and units["n"] < EARLIER_WINDOWS_BELOW:
        units, current_units = _earlier_windows(
            catalogue, data, X, y, split, units, current_units, current_scorer, seed, log
        )
    decision = gate(results, units, current_units, margin=margin, seed=seed)
    card = update_card(folder, metrics=results, gate=decision)
    if decision["accepted"]:
        set_current(out, version)
        log(f"gate: accepted; {Path(out) / 'current'} now points at {version}")
    else:
        log(f"gate: kept aside ({'; '.join(decision['reasons'])})")
    if report:
        from .report import write_report

        page = write_report(folder, card, results, scorer, X[split.valid], y[split.valid])
        log(f"report: {page}")
    log(f"done in {time.perf_counter() - started:.1f} s")
    return card


def _evaluate(
    catalogue: Catalogue,
    data: UptakeData,
    split: Split,
    scorer: Scorer,
    world: str | Path | None,
    seed: int,
    reference: Callable[[np.ndarray], np.ndarray] | None = None,
) -> dict[str, Any]:
    if world:
        return evaluate_world(world, scorer, seed=seed)
    # A bounded sample of whole referrals, read again from the file: the records are not kept.
    test_records = data.records_in(split.test, max_referrals=EVALUATE_REFERRALS, seed=seed)
    return evaluate_uptake(catalogue, test_records, scorer, later_share=1.0, seed=seed,
                           reference=reference)  # fmt: skip


def _current_scorer(out: str | Path, version: str, log: Callable[[str], None]):
    """The model being served from ``out``, or None when there is none (or it is this one)."""
    current = Path(out) / "current"
    if not current.exists() or current.resolve().name == version:
        return None
    try:
        return load_model(current)
    except ModelError as exc:
        log(f"the current model does not load ({exc}); gating against the baselines only")
        return None


def _earlier_windows(catalogue, data, X, y, split, units, current_units, current_scorer,
                     seed, log):  # fmt: skip
    """More evidence for the gate on a small log: models fitted the same way on earlier cuts
    of the log, each judged (with the current model) on the window of referrals that follows
    its cut, their units added to the latest slice's. The models are fitted on less data than
    the one being gated, so this evidence is, if anything, against it."""
    ordered = np.sort(data.dates)
    cuts = [ordered[int(len(ordered) * share)] for share in EARLIER_WINDOWS]
    ends = [*cuts[1:], data.dates[split.test].min()]
    pooled, pooled_current = [units], [current_units]
    for cut, end in zip(cuts, ends, strict=True):
        before = data.dates < cut
        window = (data.dates >= cut) & (data.dates < end)
        if not window.any() or before.sum() < 2:
            continue
        inner = time_split(data.dates[before], 0.15, 0.0)
        Xf, yf = X[before].copy(), y[before]
        prior = fill_evidence(Xf, data.activity[before], yf, data.referral[before], inner.train,
                              inner.valid, len(catalogue))  # fmt: skip
        fitted = fit(Xf[inner.train], yf[inner.train], Xf[inner.valid], yf[inner.valid], seed=seed)
        served = evidence_from(data.activity[before], y[before], len(catalogue), prior)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            medians = np.nanmedian(Xf[inner.train], axis=0).astype(float)
        scorer = TrainedScorer(
            {"estimator": fitted.booster, "reference": medians, "prior_rate": prior,
             "activity_ids": list(catalogue.ids), "uptake_rate": served.rate,
             "uptake_count": served.count, "stack": fitted.stack},
            {"version": f"cut-{cut}"}, Path("."),
        )  # fmt: skip
        calibrated = cold_start_reference(Xf[inner.train], yf[inner.train])
        records = data.records_in(window, max_referrals=EVALUATE_REFERRALS, seed=seed)
        found = evaluate_uptake(catalogue, records, scorer, later_share=1.0, seed=seed,
                                reference=calibrated)["units"]  # fmt: skip
        log(f"  earlier cut {cut}: a model on {int(before.sum())} rows judged on "
            f"{found['n']} later referrals")  # fmt: skip
        pooled.append(found)
        if current_scorer is not None:
            pooled_current.append(evaluate_uptake(catalogue, records, current_scorer,
                                                  later_share=1.0, seed=seed,
                                                  reference=calibrated)["units"])  # fmt: skip
    merged = _merge_units(pooled)
    merged["windows"] = len(pooled)
    return merged, (_merge_units(pooled_current) if current_scorer is not None else None)


def _merge_units(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Units of several evaluations on disjoint referrals, as one."""
    first = parts[0]

    def joined(key: str, inner: str | None = None) -> dict[str, np.ndarray]:
        def pick(part):
            return part[key] if inner is None else part[key][inner]

        return {name: np.concatenate([pick(p)[name] for p in parts]) for name in pick(first)}

    merged = dict(first)
    merged["n"] = sum(p["n"] for p in parts)
    merged["mixed"] = sum(p.get("mixed", 0) for p in parts)
    merged["values"] = joined("values")
    merged["groups"] = joined("groups")
    if "shown" in first:
        merged["shown"] = {"metric": first["shown"]["metric"],
                           "values": joined("shown", "values")}  # fmt: skip
    return merged


class _Writer:
    """A file-like adapter so the uptake loader's summary goes through ``log``."""

    def __init__(self, log: Callable[[str], None]):
        self._log = log

    def write(self, text: str) -> int:
        if text.strip():
            self._log(text.rstrip("\n"))
        return len(text)

    def flush(self) -> None:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.train",
        description="Train the ranking model on uptake records, evaluate it against the "
        "baselines on later data, and gate it into OUT/current.",
    )
    parser.add_argument("--catalogue", required=True, help="catalogue the uptake refers to")
    parser.add_argument("--uptake", required=True, help="uptake records, JSON Lines or CSV")
    parser.add_argument("--out", required=True, help="models folder (versions + current)")
    parser.add_argument("--world", help="a simulated world (training.simulate) to evaluate on")
    parser.add_argument(
        "--margin",
        type=float,
        default=DEFAULT_MARGIN,
        help="relative gain over the current model and the cold-start scorer that the lower "
        "end of its 90%% interval must exceed (default 0)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--version", help="version name (default: vYYYYmmdd-HHMMSS, UTC)")
    parser.add_argument("--no-report", action="store_true", help="skip the HTML report")
    parser.add_argument("--json", action="store_true", help="print the model card as JSON")
    args = parser.parse_args(argv)
    try:
        card = train(args.catalogue, args.uptake, args.out, world=args.world, margin=args.margin,
                     seed=args.seed, version=args.version, report=not args.no_report)  # fmt: skip
    except MatcherError as exc:
        print(f"training: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(card, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
