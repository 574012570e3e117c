"""Training time and peak memory for 10k, 100k and 1M uptake rows.

Run: ``python benchmarks/bench_train.py [--sizes 10000,100000,1000000] [--keep DIR]``

For each size a simulated world is written (not timed), then ``python -m training.train`` runs
in a child process exactly as a maintainer runs it (load and validate the uptake, features,
out-of-fold evidence, fit, evaluation against the baselines, gate, model folder; no HTML
report), and its wall time and peak resident memory are printed. Target: 1M rows in under
5 minutes on the 2-core machine.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(size: int, work: Path) -> dict:
    world = work / f"world-{size}"
    if not (world / "uptake.jsonl").exists():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "training.simulate",
                "--out",
                str(world),
                "--seed",
                "0",
                "--referrals",
                str(size),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    models = work / f"models-{size}"
    command = [sys.executable, "-m", "training.train", "--catalogue", str(world / "catalogue.json"),
               "--uptake", str(world / "uptake.jsonl"), "--world", str(world),
               "--out", str(models), "--no-report"]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"training on {size} rows failed:\n{done.stderr[-2000:]}")
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    stages = [line for line in done.stderr.splitlines() if " in " in line and " s" in line]
    return {"rows": size, "seconds": seconds, "peak_mb": max(peak_kb, before) / 1024,
            "stages": stages}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--keep", help="keep the worlds and models in this folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.keep or tmp)
        work.mkdir(parents=True, exist_ok=True)
        print(f"{'uptake rows':>12} {'train s':>8} {'peak MB':>8}")
        for size in (int(s) for s in args.sizes.split(",")):
            r = run(size, work)
            print(f"{r['rows']:>12,} {r['seconds']:>8.1f} {r['peak_mb']:>8.0f}", flush=True)
            for stage in r["stages"]:
                print(f"{'':14}{stage.strip()}")


if __name__ == "__main__":
    main()
