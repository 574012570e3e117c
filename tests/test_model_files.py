"""Tests for matcher.scoring.model_files: round trip, the card, tamper and untrusted-type
refusal, feature mismatch, broken folders, the shipped model."""

from __future__ import annotations

import copy
import hashlib
import json

import numpy as np
import pytest
import scoring_support as support
import skops.io as sio
from scoring_support import CARD, EVIDENCE, forge, payload, save
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

from matcher.catalogue import Catalogue
from matcher.errors import ModelError
from matcher.features import FEATURES
from matcher.scoring import (
    CARD_FILE,
    MODEL_FILE,
    TRUSTED_TYPES,
    TrainedScorer,
    default_model_dir,
    list_versions,
    load_model,
    save_model,
)


@pytest.fixture(scope="module")
def data():
    return support.data()


@pytest.fixture(scope="module")
def models():
    return support.models()


@pytest.fixture(scope="module")
def reference():
    return support.reference()


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return support.small_catalogue()


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
        (lambda f: (f / CARD_FILE).write_text("{not json"), "not JSON"),
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


# --- the shipped model --------------------------------------------------------------------------


def test_the_shipped_model_is_package_data_and_loads():
    folder = default_model_dir()
    assert folder.parts[-3:] == ("matcher", "data", "model")
    scorer = load_model(folder)
    assert isinstance(scorer, TrainedScorer) and scorer.card["features"] == list(FEATURES)
