"""What a small service gets from training: for uptake logs of a few hundred to a few thousand
referrals from simulated worlds of several kinds and seeds, train as a maintainer would (on the
log alone, no truth: ``training.train`` without ``--world``), then score against the world's
true attendance probabilities what the gate served, the trained model ranked directly, the
cold-start scorer and a LightGBM model fitted on the same rows and split.

    .venv/bin/pip install -c constraints.txt '.[test,bench]'
    .venv/bin/python benchmarks/bench_small_logs.py --work /tmp/small-logs

Prints one line per world, then a Markdown table of means per size (and per kind and size):
expected uptake@5 as a share of the oracle's. A log of N referrals is simulated as
``round(N × 1.7)`` uptake lines (the simulator's link worker refers 1.7 activities per
referral on average; the actual referral count is printed).
"""

from __future__ import annotations

import argparse
import json
import math
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

LINES_PER_REFERRAL = 1.7


def run_one(work: str, kind: str, seed: int, size: int) -> dict:
    """One world: simulate, train on its log, evaluate everything on its truth."""
    import io

    from matcher.catalogue import Catalogue
    from matcher.scoring import ColdStartScorer, load_model
    from training.evaluate import evaluate_world
    from training.simulate import simulate
    from training.train import train, training_rows

    world = Path(work) / f"{kind}-{seed}-{size}"
    if not (world / "truth.npz").exists():
        simulate(world, seed, kind=kind, n_activities=400, n_heldout=300,
                 n_referrals=round(size * LINES_PER_REFERRAL))  # fmt: skip
    models = world / "models"
    card = train(world / "catalogue.json", world / "uptake.jsonl", models, version="v1",
                 report=False, log=lambda _: None)  # fmt: skip
    model = load_model(models / "v1")
    share = {}
    share["trained"] = evaluate_world(world, model, logged=False)["rankers"]["model"]
    cold = evaluate_world(world, ColdStartScorer(), logged=False)["rankers"]
    share["cold_start"] = cold["model"]
    share["oracle_uptake"] = cold["oracle"]
    share["served"] = share["trained"] if card["gate"]["accepted"] else share["cold_start"]
    catalogue = Catalogue.load(world / "catalogue.json")
    data, X, y, split, prior = training_rows(catalogue, world / "uptake.jsonl")
    share["lightgbm"] = evaluate_world(world, _lightgbm(catalogue, data, X, y, split, prior, seed),
                                       logged=False)["rankers"]["model"]  # fmt: skip
    del io
    return {
        "kind": kind, "seed": seed, "size": size,
        "referrals": card["data"]["referrals"],
        "accepted": card["gate"]["accepted"],
        "evidence": card["gate"].get("evidence"),
        "gain": card["gate"]["comparisons"].get("cold_start", {}),
        **{name: share[name]["share_of_oracle"] for name in
           ("served", "trained", "cold_start", "lightgbm")},
    }  # fmt: skip


def _lightgbm(catalogue, data, X, y, split, prior, seed):
    """LightGBM on exactly the rows, split and features training uses, early-stopped and
    Platt-calibrated on the validation slice, as the trained model is."""
    import lightgbm
    from bench_train import LightGBMScorer  # beside this script: on sys.path when run as one
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator

    from training.fit import evidence_from, monotonic_constraints

    booster = lightgbm.LGBMClassifier(
        learning_rate=0.12, n_estimators=400, num_leaves=31, min_child_samples=40,
        reg_lambda=1.0, max_bin=127, monotone_constraints=monotonic_constraints().tolist(),
        random_state=seed, n_jobs=1, verbose=-1,
    )  # fmt: skip
    booster.fit(X[split.train], y[split.train], eval_X=(X[split.valid],), eval_y=(y[split.valid],),
                callbacks=[lightgbm.early_stopping(20, verbose=False)])  # fmt: skip
    model = CalibratedClassifierCV(FrozenEstimator(booster), method="sigmoid")
    model.fit(X[split.valid], y[split.valid])
    known = ~split.test
    served = evidence_from(data.activity[known], y[known], len(catalogue), prior)
    return LightGBMScorer(model, served.rate, served.count)


def table(rows: list[dict], by: tuple[str, ...]) -> str:
    names = ("served", "trained", "cold_start", "lightgbm")
    head = [*by, "worlds", "referrals", "gate accepted", *names, "served − cold-start"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    keys = sorted({tuple(r[b] for b in by) for r in rows})
    for key in keys:
        group = [r for r in rows if tuple(r[b] for b in by) == key]
        means = {n: float(np.mean([r[n] for r in group])) for n in names}
        cells = [str(k) for k in key] + [
            str(len(group)), f"{np.mean([r['referrals'] for r in group]):.0f}",
            f"{sum(r['accepted'] for r in group)}/{len(group)}",
            *[f"{means[n]:.3f}" for n in names], f"{means['served'] - means['cold_start']:+.3f}",
        ]  # fmt: skip
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", required=True, help="folder for the worlds and models")
    parser.add_argument("--kinds", default="dense,council,effects")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--sizes", default="400,1500,8000", help="referrals per log")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    jobs = [(args.work, kind, int(seed), int(size)) for size in args.sizes.split(",")
            for kind in args.kinds.split(",") for seed in args.seeds.split(",")]  # fmt: skip
    rows = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for row in pool.map(run_one, *zip(*jobs, strict=True)):
            gain = row.pop("gain")
            print(json.dumps(row | {"gain_low": gain.get("low", math.nan)}), flush=True)
            rows.append(row)
    print("\nBy size (means over kinds and seeds):\n")
    print(table(rows, ("size",)))
    print("\nBy kind and size:\n")
    print(table(rows, ("size", "kind")))


if __name__ == "__main__":
    main()
