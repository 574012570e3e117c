"""Tests for matcher.artifacts and training.rollback: round trip, tamper and untrusted-type
refusal, feature mismatch, the atomic current switch, rollback, and the trained scorer."""

from __future__ import annotations

import copy
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from matcher import artifacts
from matcher.artifacts import (
    CARD_FILE,
    MODEL_FILE,
    TRUSTED_TYPES,
    TrainedScorer,
    current_version,
    list_versions,
    load_model,
    read_history,
    rollback,
    save_model,
    set_current,
)
from matcher.catalogue import Catalogue
from matcher.errors import ModelError
from matcher.features import COLUMN, FEATURES, MONOTONE
from matcher.ranking import Matcher
from matcher.scorer import ColdStartScorer, load_scorer
from training import rollback as rollback_cli

N = len(FEATURES)


def _data(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
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


def _booster(X, y) -> HistGradientBoostingClassifier:
    monotone = [MONOTONE.get(name, 0) for name in FEATURES]
    return HistGradientBoostingClassifier(
        max_iter=30, max_leaf_nodes=15, monotonic_cst=monotone, early_stopping=False,
        random_state=0,
    ).fit(X, y)  # fmt: skip


@pytest.fixture(scope="module")
def data():
    return _data(0, 3000)


@pytest.fixture(scope="module")
def models(data):
    """The ways training may shape a model: calibrated as training does it (sigmoid, on a
    later slice, the trees frozen), isotonic, or the bare booster."""
    X, y = data
    with threadpool_limits(1):  # small fits: threads only contend
        booster = _booster(X[:2000], y[:2000])
        out = {"booster": booster}
        for method in ("sigmoid", "isotonic"):
            calibrated = CalibratedClassifierCV(FrozenEstimator(booster), method=method)
            out[method] = calibrated.fit(X[2000:], y[2000:])
    return out


@pytest.fixture(scope="module")
def reference(data):
    return np.nanmedian(data[0], axis=0)


EVIDENCE = {"act-001": (0.42, 30.0), "act-002": (0.1, 5.0)}
CARD = {
    "data": {"sha256": "0" * 64, "rows": 3000, "kept": 3000, "referrals": 1200},
    "metrics": {"auc": {"model": 0.71, "cold_start": 0.62}},
    "gate": {"passed": True, "reason": "beats every baseline"},
}


def save(root: Path, version: str, model, reference, **card) -> Path:
    return save_model(model, EVIDENCE, {**CARD, **card}, root, version, reference=reference)


def forge(folder: Path, payload, **card) -> Path:
    """A model folder written by hand (as an attacker or a bug might), with a card whose
    checksum matches, so only the later checks stand in the way."""
    folder.mkdir(parents=True)
    blob = sio.dumps(payload)
    (folder / MODEL_FILE).write_bytes(blob)
    fields = {"version": folder.name, "features": list(FEATURES)}
    fields.update(card, model_sha256=hashlib.sha256(blob).hexdigest())
    (folder / CARD_FILE).write_text(json.dumps(fields))
    return folder


def payload(estimator, reference) -> dict:
    return {
        "estimator": estimator,
        "features": list(FEATURES),
        "activity_ids": ["act-001"],
        "uptake_rate": np.array([0.4]),
        "uptake_count": np.array([10.0]),
        "prior_rate": 0.3,
        "reference": np.asarray(reference, dtype=float),
    }


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
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


# --- round trip --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sigmoid", "isotonic", "booster"])
def test_round_trip_gives_identical_predictions(tmp_path, models, data, reference, kind):
    folder = save(tmp_path, "v1", models[kind], reference)
    scorer = load_model(folder)
    X = data[0][:500]
    assert isinstance(scorer, TrainedScorer)
    assert scorer.kind == "trained" and scorer.version == "v1"
    assert np.array_equal(scorer.predict(X), models[kind].predict_proba(X)[:, 1])
    assert np.array_equal(scorer.reference, reference, equal_nan=True)


def test_the_card_records_what_was_trained(tmp_path, models, reference):
    folder = save(tmp_path, "2026-03-31.1", models["sigmoid"], reference)
    card = json.loads((folder / CARD_FILE).read_text())
    assert card["version"] == "2026-03-31.1" and card["trained_at"]
    assert card["features"] == list(FEATURES)
    assert card["model_sha256"] == hashlib.sha256((folder / MODEL_FILE).read_bytes()).hexdigest()
    assert set(card["libraries"]) >= {"python", "numpy", "scikit-learn", "skops"}
    assert card["data"] == CARD["data"] and card["metrics"] == CARD["metrics"]
    assert card["gate"] == CARD["gate"]
    assert card["estimator"]["calibration"] == "sigmoid"
    assert set(card["reference"]) == set(FEATURES)
    assert card["evidence"]["activities"] == 2
    assert sorted(p.name for p in folder.iterdir()) == [MODEL_FILE, CARD_FILE]
    assert load_model(folder).card["gate"] == CARD["gate"]


def test_a_version_is_never_replaced_and_names_are_checked(tmp_path, models, reference):
    save(tmp_path, "v1", models["sigmoid"], reference)
    with pytest.raises(ModelError, match="already exists"):
        save(tmp_path, "v1", models["sigmoid"], reference)
    for bad in ("current", "../escape", ".hidden", "", "a/b"):
        with pytest.raises(ValueError):
            save(tmp_path, bad, models["sigmoid"], reference)
    assert list_versions(tmp_path) == ["v1"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".") and "tmp" in p.name]


def test_save_needs_a_reference_row(tmp_path, models):
    with pytest.raises(ValueError, match="reference"):
        save_model(models["sigmoid"], EVIDENCE, CARD, tmp_path, "v1")
    with pytest.raises(ValueError, match="reference"):
        save_model(models["sigmoid"], EVIDENCE, CARD, tmp_path, "v1", reference=np.zeros(3))


def test_evidence_may_be_arrays(tmp_path, models, reference, catalogue):
    ids, rate, count = ["act-003", "act-001"], np.array([0.2, 0.6]), np.array([8.0, 40.0])
    save_model(models["sigmoid"], (ids, rate, count), CARD, tmp_path, "v1", reference=reference,
               prior=0.25)  # fmt: skip
    scorer = load_model(tmp_path / "v1")
    got_rate, got_count = scorer.evidence(catalogue)
    assert got_rate.tolist() == [0.6, 0.25, 0.2]
    assert got_count.tolist() == [40.0, 0.0, 8.0]


# --- refusals -----------------------------------------------------------------------------------


def test_one_changed_byte_is_refused_before_deserialising(tmp_path, models, reference, monkeypatch):
    folder = save(tmp_path, "v1", models["sigmoid"], reference)
    blob = bytearray((folder / MODEL_FILE).read_bytes())
    blob[len(blob) // 2] ^= 0x01
    (folder / MODEL_FILE).write_bytes(bytes(blob))

    def never(*args, **kwargs):
        raise AssertionError("deserialised a file whose checksum does not match")

    monkeypatch.setattr(sio, "loads", never)
    monkeypatch.setattr(sio, "load", never)
    monkeypatch.setattr(sio, "get_untrusted_types", never)
    with pytest.raises(ModelError, match="checksum mismatch"):
        load_model(folder)


def test_an_unlisted_class_is_refused_and_named(tmp_path, data, reference):
    # skops itself trusts every scikit-learn estimator; this one was never trained here.
    X, y = data
    model = LogisticRegression().fit(np.nan_to_num(X[:200]), y[:200])
    folder = forge(tmp_path / "v1", payload(model, reference))
    with pytest.raises(ModelError) as caught:
        load_model(folder)
    assert "untrusted types" in str(caught.value)
    assert "sklearn.linear_model._logistic.LogisticRegression" in str(caught.value)


def test_a_function_is_refused_and_named(tmp_path, models, reference):
    smuggled = payload(models["sigmoid"], reference) | {"prior_rate": np.sum}
    folder = forge(tmp_path / "v1", smuggled)
    with pytest.raises(ModelError, match=r"untrusted types: numpy\.sum"):
        load_model(folder)


def test_save_refuses_what_load_would_refuse(tmp_path, data, reference):
    X, y = data
    model = LogisticRegression().fit(np.nan_to_num(X[:200]), y[:200])
    with pytest.raises(ModelError, match="LogisticRegression"):
        save(tmp_path, "v1", model, reference)
    assert not (tmp_path / "v1").exists()


def test_the_trusted_list_is_what_training_produces(models):
    for model in models.values():
        found = set(sio.get_untrusted_types(data=sio.dumps(model)))
        assert found <= set(TRUSTED_TYPES)
    assert not any("linear_model" in t or "pipeline" in t for t in TRUSTED_TYPES)


def test_tree_indices_out_of_range_are_refused(tmp_path, models, reference):
    model = copy.deepcopy(models["sigmoid"])
    booster = model.calibrated_classifiers_[0].estimator.estimator
    tree = booster._predictors[0][0]
    split = int(np.flatnonzero(tree.nodes["is_leaf"] == 0)[0])
    tree.nodes["left"][split] = 10**6
    folder = forge(tmp_path / "v1", payload(model, reference))
    with pytest.raises(ModelError, match="out of range"):
        load_model(folder)


def test_feature_mismatch_is_refused(tmp_path, models, reference):
    folder = save(tmp_path, "v1", models["sigmoid"], reference)
    card = json.loads((folder / CARD_FILE).read_text())
    card["features"] = card["features"][:-1] + ["activity_popularity"]
    (folder / CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(ModelError, match="model was trained on different features") as caught:
        load_model(folder)
    assert "activity_uptake_count" in str(caught.value)
    assert "activity_popularity" in str(caught.value)
    with pytest.raises(ModelError, match="different features"):
        save(tmp_path, "v2", models["sigmoid"], reference, features=["need_listed"])


def test_a_model_on_fewer_features_is_refused(tmp_path, data, reference):
    X, y = data
    small = HistGradientBoostingClassifier(max_iter=5).fit(X[:500, :10], y[:500])
    folder = forge(tmp_path / "v1", payload(small, reference))
    with pytest.raises(ModelError, match="different features"):
        load_model(folder)


@pytest.mark.parametrize(
    ("breakage", "words"),
    [
        (lambda f: (f / CARD_FILE).unlink(), "no model card"),
        (lambda f: (f / CARD_FILE).write_text("{not json"), "not valid JSON"),
        (lambda f: (f / CARD_FILE).write_text("[]"), "expected a JSON object"),
        (lambda f: (f / CARD_FILE).write_text('{"version": "v1"}'), "missing features"),
        (lambda f: (f / MODEL_FILE).unlink(), "no model file"),
    ],
)
def test_a_broken_folder_is_refused(tmp_path, models, reference, breakage, words):
    folder = save(tmp_path, "v1", models["sigmoid"], reference)
    breakage(folder)
    with pytest.raises(ModelError, match=words):
        load_model(folder)


def test_a_missing_folder_is_refused(tmp_path):
    with pytest.raises(ModelError, match="no model folder"):
        load_model(tmp_path / "nothing")


def test_other_library_versions_warn(tmp_path, models, reference):
    folder = save(tmp_path, "v1", models["sigmoid"], reference)
    card = json.loads((folder / CARD_FILE).read_text())
    card["libraries"]["scikit-learn"] = "0.0.1"
    (folder / CARD_FILE).write_text(json.dumps(card))
    with pytest.warns(UserWarning, match="trained with scikit-learn 0.0.1"):
        scorer = load_model(folder)
    assert scorer.notes == [f"trained with scikit-learn 0.0.1, running {_sklearn_version()}"]


def _sklearn_version() -> str:
    import sklearn

    return sklearn.__version__


# --- which model serves -----------------------------------------------------------------------


@pytest.fixture()
def root(tmp_path, models, reference) -> Path:
    """A models folder with three versions, none serving yet."""
    root = tmp_path / "models"
    for k, version in enumerate(("v1", "v2", "v3")):
        save(root, version, models["sigmoid"], reference, trained_at=f"2026-0{k + 1}-01T00:00:00")
    return root


def test_set_current_switches_the_symlink(root):
    assert current_version(root) is None
    set_current(root, "v1")
    link = root / "current"
    assert link.is_symlink() and os.readlink(link) == "v1"  # relative: the folder can move
    assert load_model(link).version == "v1"
    assert load_model(root).version == "v1"  # a models root means its current model
    set_current(root, "v2")
    assert current_version(root) == "v2" and load_model(link).version == "v2"
    assert read_history(root)["history"] == ["v1", "v2"]
    assert [e["action"] for e in read_history(root)["events"]] == ["set_current"] * 2
    assert not [p.name for p in root.iterdir() if ".tmp" in p.name]
    assert list_versions(root) == ["v1", "v2", "v3"]


def test_set_current_replaces_the_link_in_one_rename(root, monkeypatch):
    set_current(root, "v1")
    calls = []
    real_replace = os.replace

    def watched(src, dst):
        calls.append((Path(src), Path(dst)))
        # At the instant of the switch the old link still serves and the new one is whole.
        if Path(dst).name == "current":
            assert os.readlink(root / "current") == "v1"
            assert os.readlink(src) == "v2"
        return real_replace(src, dst)

    monkeypatch.setattr(artifacts.os, "replace", watched)
    set_current(root, "v2")
    assert (Path(calls[0][0]).parent, calls[0][1]) == (root, root / "current")


def test_a_failed_switch_leaves_the_old_model_serving(root, monkeypatch):
    set_current(root, "v1")

    def broken(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(artifacts.os, "replace", broken)
    with pytest.raises(OSError):
        set_current(root, "v2")
    assert current_version(root) == "v1"
    assert not [p.name for p in root.iterdir() if ".tmp" in p.name]


def test_set_current_refuses_a_model_that_does_not_load(root):
    set_current(root, "v1")
    blob = bytearray((root / "v2" / MODEL_FILE).read_bytes())
    blob[100] ^= 0xFF
    (root / "v2" / MODEL_FILE).write_bytes(bytes(blob))
    with pytest.raises(ModelError, match="checksum mismatch"):
        set_current(root, "v2")
    with pytest.raises(ModelError, match="no such model version"):
        set_current(root, "v9")
    assert current_version(root) == "v1"


def test_rollback_goes_back_one_version_at_a_time(root):
    for version in ("v1", "v2", "v3"):
        set_current(root, version)
    assert rollback(root) == "v2" and current_version(root) == "v2"
    assert rollback(root) == "v1" and current_version(root) == "v1"
    with pytest.raises(ModelError, match="nothing to roll back to"):
        rollback(root)
    assert current_version(root) == "v1"
    events = read_history(root)["events"]
    assert [(e["action"], e["version"], e["previous"]) for e in events[-2:]] == [
        ("rollback", "v2", "v3"),
        ("rollback", "v1", "v2"),
    ]


def test_rollback_with_no_history_is_refused(tmp_path):
    with pytest.raises(ModelError, match="nothing to roll back to"):
        rollback(tmp_path)
    with pytest.raises(ModelError, match="no models folder"):
        rollback(tmp_path / "typo")
    assert not (tmp_path / "typo").exists()


def test_rollback_refuses_a_version_that_no_longer_loads(root):
    set_current(root, "v1")
    set_current(root, "v2")
    (root / "v1" / MODEL_FILE).write_bytes(b"not a model")
    with pytest.raises(ModelError, match="cannot roll back to v1"):
        rollback(root)
    assert current_version(root) == "v2"


def test_rollback_command(root, capsys):
    set_current(root, "v1")
    set_current(root, "v2")
    assert rollback_cli.main(["--models", str(root)]) == 0
    out = capsys.readouterr().out
    assert "v2 -> v1" in out
    assert rollback_cli.main(["--models", str(root)]) == 2
    err = capsys.readouterr().err
    assert "nothing to roll back to" in err and len(err.strip().splitlines()) == 1


# --- load_scorer ------------------------------------------------------------------------------


def test_load_scorer_falls_back_when_there_is_no_current_model(tmp_path, monkeypatch):
    monkeypatch.setenv("MATCHER_MODEL_DIR", str(tmp_path / "models" / "current"))
    scorer, note = load_scorer()
    assert isinstance(scorer, ColdStartScorer)
    assert "no trained model" in note


def test_load_scorer_uses_the_current_model(root, monkeypatch):
    set_current(root, "v2")
    monkeypatch.setenv("MATCHER_MODEL_DIR", str(root / "current"))
    scorer, note = load_scorer()
    assert isinstance(scorer, TrainedScorer) and scorer.version == "v2" and note is None


def test_load_scorer_falls_back_on_a_tampered_default_but_not_an_explicit_one(root, monkeypatch):
    set_current(root, "v1")
    (root / "v1" / MODEL_FILE).write_bytes(b"tampered")
    monkeypatch.setenv("MATCHER_MODEL_DIR", str(root / "current"))
    scorer, note = load_scorer()
    assert isinstance(scorer, ColdStartScorer) and "checksum mismatch" in note
    with pytest.raises(ModelError, match="checksum mismatch"):
        load_scorer(root / "v1")
    with pytest.raises(ModelError, match="no model folder"):
        load_scorer(root / "absent")


# --- the trained scorer ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scorers(tmp_path_factory, models, reference):
    root = tmp_path_factory.mktemp("scorers")
    return {kind: load_model(save(root, kind, models[kind], reference)) for kind in models}


@pytest.mark.parametrize("kind", ["sigmoid", "isotonic", "booster"])
def test_contributions_shape_and_zero_at_the_reference(scorers, data, reference, kind):
    scorer = scorers[kind]
    X = data[0][:7]
    C = scorer.contributions(X)
    assert C.shape == (7, N) and np.isfinite(C).all()
    at_reference = scorer.contributions(reference[None, :])
    assert np.array_equal(at_reference, np.zeros((1, N)))
    assert scorer.contributions(np.zeros((0, N))).shape == (0, N)


@pytest.mark.parametrize("kind", ["sigmoid", "isotonic", "booster"])
def test_contributions_follow_the_monotone_directions(scorers, reference, kind):
    scorer = scorers[kind]
    rows = np.tile(reference, (2, 1))
    need, far = COLUMN["need_listed"], COLUMN["distance_ratio"]
    rows[0, need], rows[0, far] = 1.0, 0.0  # a close, well-matched activity
    rows[1, need], rows[1, far] = 0.0, 2.0  # a far, unmatched one
    C = scorer.contributions(rows)
    assert C[0, need] > 0 and C[0, far] >= 0
    assert C[1, need] < 0 and C[1, far] < 0
    untouched = [j for j in range(N) if j not in (need, far)]
    assert not C[:, untouched].any()


def test_sigmoid_contributions_are_in_the_served_scores_log_odds(scorers, reference):
    scorer = scorers["sigmoid"]
    row = reference.copy()
    row[COLUMN["need_listed"]] = 1.0
    p, p_ref = scorer.predict(np.vstack([row, reference]))
    expected = np.log(p / (1 - p)) - np.log(p_ref / (1 - p_ref))
    assert scorer.contributions(row[None, :])[0, COLUMN["need_listed"]] == pytest.approx(expected)


def test_predict_checks_its_input(scorers):
    with pytest.raises(ValueError, match=f"{N} features"):
        scorers["sigmoid"].predict(np.zeros((2, N - 1)))
    assert scorers["sigmoid"].predict(np.zeros((0, N))).shape == (0,)


def test_evidence_is_aligned_with_the_catalogue(scorers, catalogue):
    rate, count = scorers["sigmoid"].evidence(catalogue)
    prior = scorers["sigmoid"].prior_rate
    assert rate.tolist() == [0.42, 0.1, prior]  # act-003 was never seen: the prior, count 0
    assert count.tolist() == [30.0, 5.0, 0.0]
    assert prior == pytest.approx((0.42 * 30 + 0.1 * 5) / 35)


def test_a_trained_scorer_ranks_with_reasons(scorers, catalogue):
    matcher = Matcher(catalogue, scorers["sigmoid"])
    matches = matcher.recommend(
        {"location": {"postcode": "LS6 3HN"}, "needs": ["loneliness"], "interests": "gardening"}
    )
    assert matcher.model_version == "sigmoid"
    assert matches and all(0 <= m.score <= 1 and 2 <= len(m.reasons) <= 4 for m in matches)
