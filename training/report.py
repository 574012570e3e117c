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


def _gains(path: Path, gate: dict[str, Any]) -> list[list[str]]:
    """The gate's comparisons: relative gain over each rival with its 90% interval, the margin
    drawn as a line; returns the table rows."""
    comparisons = gate.get("comparisons", {})
    gated = ("current_model", "cold_start")

    def metric_of(name: str) -> str:  # on logs the other baselines are compared on ranking
        return (
            gate.get("metric", "")
            if name in gated
            else gate.get("shown_metric", gate.get("metric", ""))
        )

    rows = [[name, metric_of(name), str(c["units"]), f"{c['gain']:+.1%}", f"{c['low']:+.1%}",
             f"{c['high']:+.1%}", "yes" if name in gated else "shown"]
            for name, c in comparisons.items()]  # fmt: skip
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 0.45 * max(len(comparisons), 1) + 1.4))
    names = list(comparisons)
    for y, name in enumerate(names):
        c = comparisons[name]
        colour = "#1f77b4" if name in ("current_model", "cold_start") else "#999999"
        ax.plot([c["low"], c["high"]], [y, y], color=colour, lw=3)
        ax.plot([c["gain"]], [y], "o", color=colour)
    ax.axvline(0.0, color="#444444", lw=1)
    ax.axvline(float(gate.get("margin", 0.0)), color="#a31515", ls="--", lw=1, label="margin")
    ax.set_yticks(range(len(names)), [f"{n}\n({metric_of(n)})" for n in names], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("relative gain (90% paired bootstrap interval)")
    ax.set_title("How sure the gate is: the new model against each rival")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return rows


def _fairness(path: Path, gate: dict[str, Any]) -> list[list[str]]:
    """The model's gate metric per group with 90% intervals, and its ratio to its overall
    figure; the worst group of enough people is marked. Returns the table rows."""
    fairness = gate.get("fairness", {}).get("model")
    if not fairness:
        return []
    worst = fairness.get("worst") or {}
    rows, labels, means, lows, highs = [], [], [], [], []
    for group, values in fairness["groups"].items():
        for value, e in values.items():
            mark = " (worst)" if (group, value) == (worst.get("group"), worst.get("value")) else ""
            rows.append([group, value + mark, str(e["n"]), f"{e['mean']:.3f}",
                         f"{e['low']:.3f} – {e['high']:.3f}", f"{e['ratio']:.2f}"])  # fmt: skip
            labels.append(f"{group}: {value} (n={e['n']}){mark}")
            means.append(e["mean"])
            lows.append(e["mean"] - e["low"])
            highs.append(e["high"] - e["mean"])
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(labels) + 1.4))
    y = np.arange(len(labels))
    ax.errorbar(means, y, xerr=[lows, highs], fmt="o", color="#1f77b4", ms=4, capsize=2)
    ax.set_yticks(y, labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(f"{fairness.get('metric', gate.get('metric', ''))} per group (90% interval)")
    ax.set_title("Whom the model serves worse")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return rows


def permutation_importances(scorer: Any, X: np.ndarray, y: np.ndarray, seed: int = 0):
    """Increase in log loss when each feature is shuffled (mean of 3 shuffles), on the
    validation slice, through the scorer as served."""
    if len(X) > MAX_IMPORTANCE_ROWS:
        keep = np.random.default_rng(seed).choice(len(X), MAX_IMPORTANCE_ROWS, replace=False)
        X, y = X[keep], y[keep]
    X = np.asarray(X, dtype=float)
    rng = np.random.default_rng(seed)

    def loss(Z: np.ndarray) -> float:
        p = np.clip(scorer.predict(Z), 1e-6, 1 - 1e-6)
        return float(-np.mean(np.where(y == 1, np.log(p), np.log1p(-p))))

    base = loss(X)
    out = np.zeros(X.shape[1])
    for k in range(X.shape[1]):
        for _ in range(3):
            shuffled = X.copy()
            shuffled[:, k] = rng.permutation(shuffled[:, k])
            out[k] += (loss(shuffled) - base) / 3
    return out


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
    scorer: Any,
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
    importances = permutation_importances(scorer, X_valid, y_valid)
    pairs = _importance(folder / "importance.png", importances)

    gate = card.get("gate", {})
    gain_rows = _gains(folder / "gain.png", gate)
    fair_rows = _fairness(folder / "fairness.png", gate)
    fair = gate.get("fairness", {})
    worst = (fair.get("model") or {}).get("worst")
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
<p>Evidence: {html.escape(str(gate.get("evidence", "–")))}. Each gain is the relative
difference in {html.escape(str(gate.get("metric", "")))} on the same held-out units, with a
90% paired bootstrap interval ({html.escape(str(gate.get("resamples", "")))} resamples); the
model is promoted only if the lower end over the current model and the cold-start scorer is
above the margin ({float(gate.get("margin", 0.0)):+.1%}).</p>
{_table(["rival", "metric", "units", "gain", "90% low", "90% high", "gated"], gain_rows)}
<img src="gain.png" alt="Gain over each rival with its 90% interval">
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
<p>The model's {html.escape(str((fair.get("model") or {}).get("metric", "")))} per group, with
90% intervals, and
its ratio to the model's overall figure (on worlds, both as a share of the oracle's). The gate
refuses a model whose worst group of at least {fair.get("min_group", "–")} people is below
{fair.get("ratio", "–")} of its overall figure when the model it would replace is not.
{
        html.escape(
            f"Worst group: {worst['group']} {worst['value']} ({worst['n']} people), "
            f"{worst['ratio']:.2f}."
            if worst
            else ""
        )
    }</p>
{_table(["group", "value", "n", "model", "90% interval", "ratio to overall"], fair_rows)}
<img src="fairness.png" alt="The model's figure per group with 90% intervals">
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
