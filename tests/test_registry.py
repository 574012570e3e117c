"""Tests for matcher.scoring.registry and training.rollback: the atomic ``current`` switch,
history, rollback, and which scorer load_scorer gives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import scoring_support as support
from scoring_support import save

from matcher.errors import ModelError
from matcher.scoring import (
    MODEL_FILE,
    ColdStartScorer,
    TrainedScorer,
    current_version,
    default_model_dir,
    kept_aside_only,
    list_versions,
    load_model,
    load_scorer,
    read_history,
    registry,
    rollback,
    set_current,
)
from training import rollback as rollback_cli


@pytest.fixture(scope="module")
def models():
    return support.models()


@pytest.fixture(scope="module")
def reference():
    return support.reference()


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

    monkeypatch.setattr(registry.os, "replace", watched)
    set_current(root, "v2")
    assert (Path(calls[0][0]).parent, calls[0][1]) == (root, root / "current")


def test_a_failed_switch_leaves_the_old_model_serving(root, monkeypatch):
    set_current(root, "v1")

    def broken(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(registry.os, "replace", broken)
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


def test_load_scorer_falls_back_when_there_is_no_current_model(tmp_path):
    scorer, note = load_scorer(tmp_path / "models" / "current", required=False)
    assert isinstance(scorer, ColdStartScorer)
    assert "no trained model" in note


def test_load_scorer_uses_the_current_model(root):
    set_current(root, "v2")
    for path in (root / "current", root):  # a models root means its current model
        scorer, note = load_scorer(path)
        assert isinstance(scorer, TrainedScorer) and scorer.version == "v2" and note is None


def test_load_scorer_falls_back_when_the_gate_kept_every_model_aside(root):
    assert kept_aside_only(root) and not kept_aside_only(root / "v1")
    scorer, note = load_scorer(root)
    assert isinstance(scorer, ColdStartScorer) and "kept every model there aside" in note
    set_current(root, "v1")
    assert not kept_aside_only(root)


def test_load_scorer_falls_back_on_a_tampered_default_but_not_an_explicit_one(root):
    set_current(root, "v1")
    (root / "v1" / MODEL_FILE).write_bytes(b"tampered")
    scorer, note = load_scorer(root / "current", required=False)
    assert isinstance(scorer, ColdStartScorer) and "checksum mismatch" in note
    with pytest.raises(ModelError, match="checksum mismatch"):
        load_scorer(root / "v1")
    with pytest.raises(ModelError, match="no model folder"):
        load_scorer(root / "absent")


def test_load_scorer_defaults_to_the_shipped_model():
    scorer, note = load_scorer()
    assert isinstance(scorer, TrainedScorer) and note is None
    assert scorer.path == default_model_dir()
