"""A report for maintainers, written next to each model: an HTML page with PNG plots of the
model against the baselines, its calibration, whom it serves worse, and what it relies on."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import numpy as np

from matcher.features import FEATURES

BASELINE_ORDER = ("oracle", "model", "model_no_variety", "cold_start", "directory", "nearest",
                  "random")  # fmt: skip
MAX_IMPORTANCE_ROWS = 20_000


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _headline(results: dict[str, Any]) -> tuple[str, dict[str, float]]:
    """The metric the gate used, per ranker: expected uptake@5 with truth, else recall@5."""
    rankers = results["rankers"]
    metric = "expected_uptake_at_5" if "oracle" in rankers else "pairwise_accuracy"
    names = [n for n in BASELINE_ORDER if n in rankers]
    return metric, {n: float(rankers[n][metric]) for n in names}


def _bars(path: Path, values: dict[str, float], title: str, xlabel: str) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.6))
    names = list(values)
    colours = ["#1f77b4" if n.startswith("model") else "#999999" for n in names]
    ax.barh(names[::-1], [values[n] for n in names][::-1], color=colours[::-1])
    for y, n in enumerate(names[::-1]):
        ax.text(values[n], y, f" {values[n]:.3f}", va="center", fontsize=8)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _calibration(path: Path, curve: list[dict[str, float]]) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    ax.plot([0, 1], [0, 1], ls="--", color="#999999", label="perfect")
    if curve:
        pred = [b["mean_predicted"] for b in curve]
        seen = [b["mean_observed"] for b in curve]
        ax.plot(pred, seen, marker="o", color="#1f77b4", label="model")
    ax.set_xlabel("predicted chance of attending")
    ax.set_ylabel("observed (or true) rate")
    ax.set_title("Calibration")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _groups(path: Path, results: dict[str, Any], metric: str) -> list[list[str]]:
    """Per group value, the model against the best baseline; returns the table rows."""
    plt = _plt()
    rows, labels, model_v, base_v = [], [], [], []
    for group, values in results.get("groups", {}).items():
        for value, entry in values.items():

            def val(name: str, entry=entry) -> float:
                item = entry.get(name)
                return float(item[metric] if isinstance(item, dict) else item)

            model = val("model")
            best = max(val(n) for n in ("cold_start", "directory", "nearest") if n in entry)
            rows.append([group, value, str(entry["n"]), f"{model:.3f}", f"{best:.3f}"])
            labels.append(f"{group}: {value} (n={entry['n']})")
            model_v.append(model)
            base_v.append(best)
    if labels:
        fig, ax = plt.subplots(figsize=(7, 0.32 * len(labels) + 1.2))
        y = np.arange(len(labels))
        ax.barh(y + 0.2, model_v, height=0.4, label="model", color="#1f77b4")
        ax.barh(y - 0.2, base_v, height=0.4, label="best baseline", color="#999999")
        ax.set_yticks(y, labels, fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel(metric.replace("_", " "))
        ax.set_title("Whom the model serves worse")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return rows


def permutation_importances(model: Any, X: np.ndarray, y: np.ndarray, seed: int = 0):
    """Loss in log-likelihood when each feature is shuffled, on the validation slice."""
    from sklearn.inspection import permutation_importance

    if len(X) > MAX_IMPORTANCE_ROWS:
        keep = np.random.default_rng(seed).choice(len(X), MAX_IMPORTANCE_ROWS, replace=False)
        X, y = X[keep], y[keep]
    result = permutation_importance(model, X, y, scoring="neg_log_loss", n_repeats=3,
                                    random_state=seed)  # fmt: skip
    return result.importances_mean


def _importance(path: Path, importances: np.ndarray, top: int = 20) -> list[tuple[str, float]]:
    plt = _plt()
    order = np.argsort(-importances)[:top]
    pairs = [(FEATURES[k], float(importances[k])) for k in order]
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(pairs) + 1.2))
    ax.barh([p[0] for p in pairs][::-1], [p[1] for p in pairs][::-1], color="#1f77b4")
    ax.set_xlabel("increase in log loss when shuffled")
    ax.set_title("Permutation importance (validation slice)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return pairs


def _table(head: list[str], rows: list[list[str]]) -> str:
    cells = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"


def write_report(
    folder: str | Path,
    card: dict[str, Any],
    results: dict[str, Any],
    model: Any,
    X_valid: np.ndarray,
    y_valid: np.ndarray,
) -> Path:
    """Write ``report.html`` and its PNGs into the model folder; return the page's path."""
    folder = Path(folder)
    metric, headline = _headline(results)
    _bars(folder / "metrics.png", headline, "Model against the baselines", metric)
    curve = (results["rankers"].get("model", {}).get("reliability")
             or results.get("model_calibration", {}).get("reliability") or [])  # fmt: skip
    _calibration(folder / "calibration.png", curve)
    group_metric = metric if "oracle" in results["rankers"] else "recall_at_5"
    group_rows = _groups(folder / "groups.png", results, group_metric)
    importances = permutation_importances(model, X_valid, y_valid)
    pairs = _importance(folder / "importance.png", importances)

    gate = card.get("gate", {})
    metric_rows = []
    for name in headline:
        r = results["rankers"][name]
        metric_rows.append([name] + [
            f"{r[m]:.3f}" if isinstance(r.get(m), (int, float)) and r.get(m) is not None else "–"
            for m in (metric, "share_of_oracle", "ndcg_at_10", "brier", "coverage", "violations")
        ])  # fmt: skip
    data = card.get("data", {})
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Model {html.escape(card["version"])}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}}
table{{border-collapse:collapse;margin:1rem 0}}td,th{{border:1px solid #ccc;padding:.25rem .5rem;
text-align:left}}img{{max-width:100%;display:block;margin:1rem 0}}
.accepted{{color:#0a6d2c}}.rejected{{color:#a31515}}</style></head><body>
<h1>Model {html.escape(card["version"])}</h1>
<p>Trained {html.escape(str(card.get("trained_at", "")))} on
{html.escape(str(data.get("kept", "?")))} uptake rows
({html.escape(str(data.get("first_date")))} to {html.escape(str(data.get("last_date")))}).
Split by date: {html.escape(json.dumps(card.get("training", {}).get("split", {})))}.</p>
<h2 class="{"accepted" if gate.get("accepted") else "rejected"}">Gate:
{"accepted" if gate.get("accepted") else "kept aside"}</h2>
<ul>{"".join(f"<li>{html.escape(r)}</li>" for r in gate.get("reasons", []))}</ul>
<h2>Against the baselines</h2>
<p>Evaluated on {
        "held-out simulated patients against their true attendance probabilities"
        if "oracle" in results["rankers"]
        else "the latest slice of the uptake log (pairwise accuracy within referrals)"
    };
"model" is as served, with the variety re-rank.</p>
{
        _table(
            ["ranker", metric, "share of oracle", "NDCG@10", "Brier", "coverage", "violations"],
            metric_rows,
        )
    }
<img src="metrics.png" alt="Bar chart of {html.escape(metric)} for the model and each baseline">
<h2>Calibration</h2>
<img src="calibration.png" alt="Reliability curve: predicted chance against observed rate">
<h2>By group</h2>
{_table(["group", "value", "n", "model", "best baseline"], group_rows)}
<img src="groups.png" alt="The model and the best baseline per group">
<h2>What the model relies on</h2>
{_table(["feature", "importance"], [[n, f"{v:.4f}"] for n, v in pairs])}
<img src="importance.png" alt="Permutation importance of the features">
</body></html>
"""
    path = folder / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
