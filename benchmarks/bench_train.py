"""Training time, peak memory and quality for 10k, 100k, 1M and 5M uptake rows, next to LightGBM
fitted on the same features and the same split.

Run: ``python benchmarks/bench_train.py [--sizes 10000,100000,1000000,5000000] [--seed 3]
[--keep DIR] [--no-lightgbm]``

For each size a simulated world is written (not timed; kept in ``--keep`` and reused), then two
child processes run one after the other, each measured on its own (wall time; peak resident
memory from the kernel's accounting of that child, ``wait4``):

- ``python -m training.train`` exactly as a maintainer runs it (read and validate the uptake,
  features, out-of-fold evidence, fit, evaluation against the baselines on the world's held-out
  truth, gate, model folder; no HTML report);
- LightGBM: the same reading, features, split and evidence (``training.train.training_rows``),
  then a LightGBM classifier with the same monotone constraints, stopped early on the same
  later slice and Platt-calibrated on it, then the same evaluation of the served ranking.

Quality is the expected uptake in the top 5 as served, as a share of the oracle's (the true
probabilities) over the world's held-out patients (``training.evaluate.evaluate_world``).
Targets: 1M rows under 2.5 GB peak; 5M rows train on the 2-core, 24 GB machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def simulate(size: int, seed: int, work: Path) -> Path:
    world = work / f"world-{seed}-{size}"
    if not (world / "WORLD.md").exists():  # written last: a world cut short is written again
        command = [sys.executable, "-m", "training.simulate", "--out", str(world),
                   "--seed", str(seed), "--referrals", str(size)]  # fmt: skip
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return world


def child(command: Sequence[str], work: Path) -> tuple[float, float, str, str]:
    """Run a command; its wall seconds, its own peak RSS in MB, stdout and stderr."""
    out, err = work / "child.out", work / "child.err"
    with open(out, "w") as fo, open(err, "w") as fe:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=fo, stderr=fe)
        # wait4 gives this child's own rusage; RUSAGE_CHILDREN would also hold the simulator's.
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    stdout, stderr = out.read_text(), err.read_text()
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command[:4])} … failed:\n{stderr[-3000:]}")
    return seconds, usage.ru_maxrss / 1024, stdout, stderr


def run_ours(world: Path, work: Path, seed: int) -> dict:
    models = work / f"models-{world.name}"
    command = [sys.executable, "-m", "training.train", "--catalogue", str(world / "catalogue.json"),
               "--uptake", str(world / "uptake.jsonl"), "--world", str(world),
               "--out", str(models), "--no-report", "--json", "--seed", str(seed),
               "--version", f"bench-{int(time.time())}"]  # fmt: skip
    seconds, peak, stdout, stderr = child(command, work)
    card = json.loads(stdout)
    model = card.get("metrics", {}).get("rankers", {}).get("model", {})
    stages = [line.strip() for line in stderr.splitlines() if " in " in line and " s" in line]
    return {"seconds": seconds, "peak_mb": peak, "fit_seconds": card["training"]["fit_seconds"],
            "rounds": card["training"].get("boosting_rounds"),
            "uptake5": model.get("expected_uptake_at_5"), "share": model.get("share_of_oracle"),
            "stages": stages}  # fmt: skip


def run_lightgbm(world: Path, work: Path, seed: int) -> dict:
    command = [sys.executable, __file__, "--lightgbm-child", str(world), "--seed", str(seed)]
    seconds, peak, stdout, _ = child(command, work)
    return {"seconds": seconds, "peak_mb": peak, **json.loads(stdout)}


class LightGBMScorer:
    """A calibrated LightGBM model behind the ranking's scorer interface (no reasons)."""

    kind = "trained"
    version = "lightgbm-bench"

    def __init__(self, model, rate: np.ndarray, count: np.ndarray):
        self.model, self.rate, self.count = model, rate, count

    def evidence(self, catalogue):
        return self.rate, self.count

    def predict(self, X: np.ndarray) -> np.ndarray:
        if len(X) == 0:
            return np.zeros(0)
        return self.model.predict_proba(np.asarray(X, dtype=float))[:, 1]

    def contributions(self, X: np.ndarray, features=None) -> np.ndarray:
        return np.zeros(np.shape(X))


def lightgbm_child(world: Path, seed: int) -> None:
    """Fit and evaluate LightGBM on the rows and split training uses; print JSON."""
    import lightgbm
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator

    from matcher.catalogue import Catalogue
    from training.evaluate import evaluate_world
    from training.fit import evidence_from, monotonic_constraints
    from training.train import training_rows

    start = time.perf_counter()
    catalogue = Catalogue.load(world / "catalogue.json")
    data, X, y, split, prior = training_rows(catalogue, world / "uptake.jsonl", held_out=False)
    read_seconds = time.perf_counter() - start
    start = time.perf_counter()
    booster = lightgbm.LGBMClassifier(
        learning_rate=0.12, n_estimators=400, num_leaves=31, min_child_samples=40,
        reg_lambda=1.0, max_bin=127, monotone_constraints=monotonic_constraints().tolist(),
        random_state=seed, n_jobs=2, verbose=-1,
    )  # fmt: skip
    booster.fit(X[split.train], y[split.train], eval_set=[(X[split.valid], y[split.valid])],
                callbacks=[lightgbm.early_stopping(20, verbose=False)])  # fmt: skip
    model = CalibratedClassifierCV(FrozenEstimator(booster), method="sigmoid")
    model.fit(X[split.valid], y[split.valid])
    fit_seconds = time.perf_counter() - start
    known = ~split.test
    served = evidence_from(data.activity[known], y[known], len(catalogue), prior)
    del X, data
    results = evaluate_world(world, LightGBMScorer(model, served.rate, served.count),
                             seed=seed, logged=False)  # fmt: skip
    ranked = results["rankers"]["model"]
    print(json.dumps({"read_seconds": read_seconds, "fit_seconds": fit_seconds,
                      "rounds": int(booster.best_iteration_ or booster.n_estimators),
                      "uptake5": ranked["expected_uptake_at_5"],
                      "share": ranked["share_of_oracle"]}))  # fmt: skip


def _cell(value, form: str) -> str:
    return "n/a" if value is None else format(value, form)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000,5000000")
    parser.add_argument("--seed", type=int, default=3, help="world seed (3: Leicester)")
    parser.add_argument("--keep", help="keep the worlds and models in this folder")
    parser.add_argument("--no-lightgbm", action="store_true", help="skip the LightGBM rows")
    parser.add_argument("--lightgbm-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.lightgbm_child:
        lightgbm_child(Path(args.lightgbm_child), args.seed)
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.keep or tmp)
        work.mkdir(parents=True, exist_ok=True)
        print(f"{'uptake rows':>12} {'learner':<22} {'wall s':>8} {'fit s':>7} {'peak MB':>8} "
              f"{'rounds':>6} {'uptake@5':>8} {'share':>6}", flush=True)  # fmt: skip
        for size in (int(s) for s in args.sizes.split(",")):
            world = simulate(size, args.seed, work)
            runs = [("training.train (HGB)", run_ours(world, work, args.seed))]
            if not args.no_lightgbm:
                runs.append(("LightGBM, same rows", run_lightgbm(world, work, args.seed)))
            for name, r in runs:
                print(f"{size:>12,} {name:<22} {r['seconds']:>8.1f} {r['fit_seconds']:>7.1f} "
                      f"{r['peak_mb']:>8.0f} {_cell(r['rounds'], 'd'):>6} "
                      f"{_cell(r['uptake5'], '.3f'):>8} {_cell(r['share'], '.3f'):>6}",
                      flush=True)  # fmt: skip
            for stage in runs[0][1]["stages"]:
                print(f"{'':14}{stage}", flush=True)


if __name__ == "__main__":
    main()
