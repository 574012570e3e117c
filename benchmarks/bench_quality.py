"""Ranking quality on simulated worlds: simulate, train, and score the held-out patients'
rankings against their true attendance probabilities, as the mean over several seeds.

Run: ``python benchmarks/bench_quality.py [--seeds 0,1,2] [--referrals 100000]``

Prints a Markdown table (expected uptake in the top 5, its share of the oracle's, NDCG@10) for
the model as served and every baseline, per seed and the mean, and the number of suggestions
that broke a hard need (must be 0).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from training.evaluate import format_table, mean_over_worlds
from training.simulate import simulate
from training.train import train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--referrals", type=int, default=100_000, help="uptake rows per world")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in (int(s) for s in args.seeds.split(",")):
            world = Path(tmp) / f"seed{seed}"
            simulate(world, seed, n_referrals=args.referrals)
            card = train(world / "catalogue.json", world / "uptake.jsonl", Path(tmp) / "models",
                         world=world, version=f"seed{seed}", report=False, margin=-1.0,
                         log=lambda _: None)  # fmt: skip
            results.append(card["metrics"])
            model = card["metrics"]["rankers"]["model"]
            print(f"seed {seed}: share of oracle {model['share_of_oracle']:.3f}", flush=True)
    print(format_table(results, labels=[f"seed {s}" for s in args.seeds.split(",")]))
    mean = mean_over_worlds(results)
    best = max(mean[b]["expected_uptake_at_5"] for b in ("cold_start", "directory", "nearest",
                                                          "random"))  # fmt: skip
    print(f"\nmodel minus best baseline, expected uptake@5: "
          f"{mean['model']['expected_uptake_at_5'] - best:+.3f} "
          f"(share of oracle {mean['model']['share_of_oracle']:.3f}); "
          f"suggestions breaking a hard need: {sum(r['violations'] for r in results)}")  # fmt: skip


if __name__ == "__main__":
    main()
