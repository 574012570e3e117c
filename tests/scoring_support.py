"""Shared makings for the scoring tests: feature rows, models shaped as training shapes them,
and model folders saved properly or forged by hand."""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import skops.io as sio
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.frozen import FrozenEstimator
from threadpoolctl import threadpool_limits

from matcher.catalogue import Catalogue
from matcher.features import COLUMN, FEATURES, MONOTONE
from matcher.scoring import CARD_FILE, MODEL_FILE, save_model

N = len(FEATURES)
EVIDENCE = {"act-001": (0.42, 30.0), "act-002": (0.1, 5.0)}
CARD = {
    "data": {"sha256": "0" * 64, "rows": 3000, "kept": 3000, "referrals": 1200},
    "metrics": {"auc": {"model": 0.71, "cold_start": 0.62}},
    "gate": {"passed": True, "reason": "beats every baseline"},
}


def rows(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows over FEATURES where need match helps, distance hurts, and a tenth is missing."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, N))
    X[:, COLUMN["need_listed"]] = rng.random(n)
    X[:, COLUMN["distance_ratio"]] = rng.random(n) * 2
    X[rng.random(X.shape) < 0.1] = np.nan
    need = np.nan_to_num(X[:, COLUMN["need_listed"]], nan=0.5)
    far = np.nan_to_num(X[:, COLUMN["distance_ratio"]], nan=1.0)
    logit = -0.5 + 3 * need - 1.5 * far + 0.5 * np.nan_to_num(X[:, COLUMN["person_age"]])
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y


@functools.cache
def data() -> tuple[np.ndarray, np.ndarray]:
    """3000 rows and outcomes, made once per test session (treat as read-only)."""
    return rows(0, 3000)


@functools.cache
def reference() -> np.ndarray:
    """The training medians contributions are measured against."""
    return np.nanmedian(data()[0], axis=0)


@functools.cache
def models() -> dict[str, Any]:
    """The ways training may shape a model: calibrated as training does it (sigmoid, on a
    later slice, the trees frozen), isotonic, or the bare booster. Made once per session."""
    X, y = data()
    monotone = [MONOTONE.get(name, 0) for name in FEATURES]
    with threadpool_limits(1):  # small fits: threads only contend
        booster = HistGradientBoostingClassifier(
            max_iter=30, max_leaf_nodes=15, monotonic_cst=monotone, early_stopping=False,
            random_state=0,
        ).fit(X[:2000], y[:2000])  # fmt: skip
        out: dict[str, Any] = {"booster": booster}
        for method in ("sigmoid", "isotonic"):
            calibrated = CalibratedClassifierCV(FrozenEstimator(booster), method=method)
            out[method] = calibrated.fit(X[2000:], y[2000:])
    return out


def save(root: Path, version: str, model: Any, reference: np.ndarray, **card: Any) -> Path:
    """Save ``model`` as training would, with the test evidence and card."""
    return save_model(model, EVIDENCE, {**CARD, **card}, root, version, reference=reference)


def forge(folder: Path, payload: dict[str, Any], **card: Any) -> Path:
    """A model folder written by hand (as an attacker or a bug might), with a card whose
    checksum matches, so only the later checks stand in the way."""
    folder.mkdir(parents=True)
    blob = sio.dumps(payload)
    (folder / MODEL_FILE).write_bytes(blob)
    fields = {"version": folder.name, "features": list(FEATURES)}
    fields.update(card, model_sha256=hashlib.sha256(blob).hexdigest())
    (folder / CARD_FILE).write_text(json.dumps(fields))
    return folder


def payload(estimator: Any, reference: np.ndarray) -> dict[str, Any]:
    """What save_model puts in a model file, around ``estimator``."""
    return {
        "estimator": estimator,
        "features": list(FEATURES),
        "activity_ids": ["act-001"],
        "uptake_rate": np.array([0.4]),
        "uptake_count": np.array([10.0]),
        "prior_rate": 0.3,
        "reference": np.asarray(reference, dtype=float),
    }


def small_catalogue() -> Catalogue:
    """Three activities: two with uptake evidence in EVIDENCE, one never seen."""
    return Catalogue.from_records(
        [
            {"id": "act-001", "name": "Allotment group", "needs": ["loneliness"],
             "tags": ["gardening"], "location": {"lat": 53.83, "lon": -1.58}, "cost": 0},
            {"id": "act-002", "name": "Debt advice drop-in", "needs": ["money"],
             "location": {"postcode": "LS1 3ES"}},
            {"id": "act-003", "name": "Walking group", "needs": ["physical_activity"],
             "location": {"lat": 53.80, "lon": -1.55}},
        ]
    )  # fmt: skip
