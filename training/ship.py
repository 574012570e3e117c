"""``python -m training.ship``: the default model shipped with the package, trained across many
simulated worlds of every kind, and shown against the cold-start scorer on fresh worlds of
each kind that it never saw.

A shipped model meets catalogues it knows nothing about, so it learns nothing about single
activities: every training row's activity evidence is "never referred" (the prior rate, a
count of 0), exactly what a served model reads for an activity it has no evidence on. Each
world is split by date (train, then a later validation slice for early stopping and the
blend with the cold-start log-odds), and the slices of all worlds are pooled.

The model is kept only if, on the held-out worlds, it is at least as good as the cold-start
scorer on every kind (mean expected uptake@5 over the seeds); otherwise the command exits 1
and says where it falls short. It also records, in the model card, the range of catalogue
shapes it was trained on (:func:`matcher.scoring.shape.catalogue_shape`), which serving
compares with the catalogue it meets.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from matcher.catalogue import Catalogue
from matcher.features import COLUMN
from matcher.scoring import load_model, save_model, update_card
from matcher.scoring.shape import catalogue_shape, shape_range

from .evaluate import evaluate_world
from .fit import fit
from .simulate import KINDS, make_worlds
from .train import time_split, training_rows

TRAIN_SEEDS = (100, 101, 102, 103)
SHIPPED_RATE = 0.3
HELDOUT_SEEDS = (200, 201, 202)


def pooled_rows(
    worlds: list[Path], log: Callable[[str], None]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float, list[dict[str, float]]]:
    """``(X_train, y_train, X_valid, y_valid, prior, shapes)`` pooled over the worlds, with the
    activity evidence set to "never referred"."""
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    shapes = []
    for world in worlds:
        catalogue = Catalogue.load(world / "catalogue.json")
        shapes.append(catalogue_shape(catalogue))
        data, X, y, _, _ = training_rows(catalogue, world / "uptake.jsonl", held_out=False)
        split = time_split(data.dates, 0.15, 0.0)
        parts.append((X, y, split.valid))
        log(f"  {world.name}: {len(y)} rows")
    y_all = np.concatenate([p[1] for p in parts])
    prior = float(y_all.mean())
    X_all = np.concatenate([p[0] for p in parts])
    X_all[:, COLUMN["activity_uptake_rate"]] = prior
    X_all[:, COLUMN["activity_uptake_count"]] = 0.0
    valid = np.concatenate([p[2] for p in parts])
    return X_all[~valid], y_all[~valid], X_all[valid], y_all[valid], prior, shapes


def compare(model_dir: Path, worlds: list[Path], log: Callable[[str], None]) -> dict[str, Any]:
    """Per kind, the model (as served) and the cold-start scorer on held-out worlds: expected
    uptake@5, share of the oracle, and each one's worst group ratio (training.gate.fairness);
    means over the worlds."""
    from .gate import fairness

    scorer = load_model(model_dir)
    per_kind: dict[str, list[dict[str, float]]] = {}
    for world in worlds:
        kind = world.name.rsplit("-", 1)[0]
        result = evaluate_world(world, scorer, logged=False)
        worst = fairness(result["units"], "model")["worst"]
        cold_worst = fairness(result["units"], "cold_start")["worst"]
        row = {
            "model": result["rankers"]["model"]["expected_uptake_at_5"],
            "cold_start": result["rankers"]["cold_start"]["expected_uptake_at_5"],
            "model_share": result["rankers"]["model"]["share_of_oracle"],
            "cold_start_share": result["rankers"]["cold_start"]["share_of_oracle"],
            "worst_group_ratio": worst["ratio"] if worst else float("nan"),
            "cold_start_worst_group_ratio": cold_worst["ratio"] if cold_worst else float("nan"),
            "violations": result["violations"],
        }
        log(f"  {world.name}: model {row['model_share']:.3f} of oracle, cold-start "
            f"{row['cold_start_share']:.3f}; worst group {worst and worst['group']} "
            f"{worst and worst['value']} {row['worst_group_ratio']:.2f} (cold-start's "
            f"{row['cold_start_worst_group_ratio']:.2f})")  # fmt: skip
        per_kind.setdefault(kind, []).append(row)
    means: dict[str, Any] = {}
    for kind, rows in per_kind.items():
        means[kind] = {key: float(np.mean([r[key] for r in rows])) for key in rows[0]}
        means[kind]["worlds"] = len(rows)
    return means


def ship(
    out: str | Path,
    version: str,
    *,
    work: str | Path | None = None,
    kinds: tuple[str, ...] = tuple(KINDS),
    train_seeds: tuple[int, ...] = TRAIN_SEEDS,
    heldout_seeds: tuple[int, ...] = HELDOUT_SEEDS,
    n_activities: int = 400,
    n_referrals: int = 20_000,
    n_heldout: int = 300,
    log: Callable[[str], None] = lambda text: print(text, file=sys.stderr, flush=True),
) -> tuple[Path, dict[str, Any]]:
    """Simulate, train, compare; returns the model folder and the per-kind comparison."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(work or scratch)
        log(f"simulating {len(kinds) * len(train_seeds)} training worlds …")
        training = _worlds(root / "train", kinds, train_seeds, n_activities=n_activities,
                               n_referrals=n_referrals, n_heldout=10, progress=log)  # fmt: skip
        log("building features …")
        X_train, y_train, X_valid, y_valid, prior, shapes = pooled_rows(training, log)
        log(f"fitting on {len(y_train)} rows, stopping and blending on {len(y_valid)} …")
        # A faster rate than training's default keeps the file the package carries small: the
        # file grows with the number of trees (206 trees of 31 leaves made 525 KB; 400 of 15
        # leaves, 658 KB).
        fitted = fit(X_train, y_train, X_valid, y_valid, learning_rate=SHIPPED_RATE, log=log)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            medians = np.nanmedian(X_train, axis=0)
        card = {
            "data": {"source": "simulated worlds", "kinds": list(kinds),
                     "seeds": list(train_seeds), "rows": int(len(y_train) + len(y_valid))},
            "training": {
                "recipe": f"python -m training.ship --out MODELS --version {version}",
                "boosting_rounds": fitted.n_iter,
                "prior_blend": dict(zip(("intercept", "cold_start", "trees"),
                                        fitted.stack.tolist(), strict=True)),
                "sizes": {"activities": n_activities, "uptake_lines": n_referrals},
            },
            "catalogue_shapes": shape_range(shapes),
        }  # fmt: skip
        folder = save_model(fitted.booster, ([], np.zeros(0), np.zeros(0)), card, out, version,
                            reference=medians, prior=prior, stack=fitted.stack)  # fmt: skip
        log(f"wrote {folder}; comparing on held-out worlds of every kind …")
        heldout = _worlds(root / "heldout", kinds, heldout_seeds, n_activities=n_activities,
                              n_referrals=2_000, n_heldout=n_heldout, progress=log)  # fmt: skip
        by_kind = compare(folder, heldout, log)
    short = [k for k, r in by_kind.items() if r["model"] < r["cold_start"]]
    verdict = (f"below the cold-start scorer on {', '.join(short)}" if short
               else "at least as good as the cold-start scorer on every kind")  # fmt: skip
    update_card(folder, metrics={"by_kind": by_kind, "heldout_seeds": list(heldout_seeds)},
                gate={"accepted": not short, "reasons": [verdict]})  # fmt: skip
    log(format_kinds(by_kind))
    log(f"done in {time.perf_counter() - started:.0f} s")
    return folder, by_kind


def _worlds(root: Path, kinds, seeds, **sizes) -> list[Path]:
    """``make_worlds``, keeping any world of the same name already written whole in ``root``
    (a kept ``--work`` folder), so a second run of the recipe simulates nothing again."""
    out = []
    for kind in kinds:
        for seed in seeds:
            folder = root / f"{kind}-{seed}"
            if not (folder / "truth.npz").exists():
                make_worlds(root, [kind], [seed], **sizes)
            out.append(folder)
    return out


def format_kinds(by_kind: dict[str, dict[str, float]]) -> str:
    """A Markdown table: per kind, the model and the cold-start scorer."""
    rows = ["| kind | worlds | model: share of oracle | cold-start: share of oracle | "
            "model − cold-start (uptake@5) | worst group ratio: model | cold-start | "
            "violations |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for kind, r in by_kind.items():
        rows.append(f"| {kind} | {r['worlds']} | {r['model_share']:.3f} | "
                    f"{r['cold_start_share']:.3f} | {r['model'] - r['cold_start']:+.3f} | "
                    f"{r['worst_group_ratio']:.2f} | {r['cold_start_worst_group_ratio']:.2f} | "
                    f"{r['violations']:.0f} |")  # fmt: skip
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.ship",
        description="Train the shipped default model across simulated worlds of every kind "
        "and compare it with the cold-start scorer on held-out worlds of each kind.",
    )
    parser.add_argument("--out", required=True, help="models folder to write the version into")
    parser.add_argument("--version", required=True)
    parser.add_argument("--work", help="keep the simulated worlds here (default: a temp folder)")
    parser.add_argument("--referrals", type=int, default=20_000, help="uptake lines per world")
    args = parser.parse_args(argv)
    _, by_kind = ship(args.out, args.version, work=args.work, n_referrals=args.referrals)
    return 0 if all(r["model"] >= r["cold_start"] for r in by_kind.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
