"""Hostile files are refused in one line, never with a traceback, and never stop the service:
model cards and catalogues nested 100,000 deep, holding a 5,000-digit integer or a 50 MB
field, a zip-bomb model file, a ``current`` that leaves its root; at load, at start, swapped
into a running app, and at the command line. Every file here is made under tmp_path."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tracemalloc
import zipfile
from pathlib import Path

import pytest
from api_support import PROFILE, make_app, point_current

from matcher import safejson
from matcher.catalogue import Catalogue
from matcher.errors import CatalogueError, ModelError, PullError
from matcher.features import FEATURES
from matcher.pull import catalogue_file
from matcher.scoring import (
    CARD_FILE,
    MODEL_FILE,
    ColdStartScorer,
    default_model_dir,
    list_versions,
    load_model,
    load_scorer,
)
from matcher.scoring.registry import current_version
from matcher.watch import Watcher, first_catalogue

DEEP = 100_000
# Timetabled, so that the shipped model finds it like the catalogues it was trained on and
# ranks it (matcher.scoring.shape) rather than handing it to the cold-start scorer.
ACTIVITIES = [
    {"id": "act-001", "name": "Allotment group", "needs": ["loneliness"],
     "tags": ["gardening"], "location": {"lat": 53.83, "lon": -1.58}, "cost": 0,
     "sessions": [{"day": "sat", "start": "10:00"}]},
    {"id": "act-002", "name": "Walking group", "needs": ["physical_activity"],
     "location": {"lat": 53.80, "lon": -1.55}, "sessions": [{"day": "tue", "start": "10:00"}]},
]  # fmt: skip


# --- makers -----------------------------------------------------------------------------------


def shipped_copy(folder: Path) -> Path:
    """The shipped model (a real one that loads) copied into ``folder``."""
    folder.mkdir(parents=True)
    for name in (MODEL_FILE, CARD_FILE):
        shutil.copy(default_model_dir() / name, folder / name)
    return folder


def card_text(folder: Path, hostile: str) -> str:
    """The folder's own card (its checksum right) with ``"x": <hostile JSON>`` added."""
    card = json.loads((folder / CARD_FILE).read_text("utf-8"))
    return json.dumps(card)[:-1] + ', "x": ' + hostile + "}"


HOSTILE_CARDS = {
    "100,000 deep": "[" * DEEP + "]" * DEEP,
    "a 5,000-digit integer": "1" + "0" * 4999,
    "a 50 MB field": '"' + "a" * 50_000_000 + '"',
}
CARD_REASONS = {
    "100,000 deep": "nested deeper than",
    "a 5,000-digit integer": "a number longer than",
    "a 50 MB field": "larger than the limit",
}


def hostile_model(folder: Path, kind: str) -> Path:
    shipped_copy(folder)
    (folder / CARD_FILE).write_text(card_text(folder, HOSTILE_CARDS[kind]), "utf-8")
    return folder


def with_card(folder: Path, blob_path: Path) -> Path:
    """A card that vouches for ``blob_path`` (an attacker writes both)."""
    card = {
        "version": folder.name,
        "features": list(FEATURES),
        "model_sha256": hashlib.sha256(blob_path.read_bytes()).hexdigest(),
    }
    (folder / CARD_FILE).write_text(json.dumps(card), "utf-8")
    return folder


def zip_bomb(folder: Path, *, lie: bool = False) -> Path:
    """A model folder whose model.skops is a small zip holding a schema.json that expands to
    300 MB; with ``lie``, the zip declares it 1,000 bytes."""
    folder.mkdir(parents=True)
    path = folder / MODEL_FILE
    block = b" " * (1 << 20)
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive,
        archive.open("schema.json", "w") as f,
    ):
        f.write(b'{"__class__": "dict", "pad": "')
        for _ in range(300):
            f.write(block)
        f.write(b'"}')
    if lie:
        data = bytearray(path.read_bytes())
        central = data.rindex(b"PK\x01\x02")
        struct.pack_into("<I", data, central + 24, 1000)  # uncompressed size, central record
        struct.pack_into("<I", data, 22, 1000)  # and the local header
        path.write_bytes(bytes(data))
    assert path.stat().st_size < 1_000_000
    return with_card(folder, path)


def deep_catalogue(path: Path) -> Path:
    path.write_text('{"activities": [' + "[" * DEEP + "]" * DEEP + "]}", "utf-8")
    return path


def good_catalogue(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"activities": ACTIVITIES}), "utf-8")
    return path


def pulled_folder(root: Path, versions: dict[str, str], current: str) -> Path:
    """A catalogue folder as ``matcher pull`` leaves it: versions, and ``current``."""
    for name, kind in versions.items():
        file = root / name / "catalogue.json"
        if kind == "good":
            good_catalogue(file)
        else:
            file.parent.mkdir(parents=True)
            deep_catalogue(file)
    os.symlink(current, root / "current")
    return root


def one_line_refusal(text: str) -> None:
    assert "Traceback" not in text
    assert len(text.strip().splitlines()) == 1, text[:2000]


# --- model cards ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(HOSTILE_CARDS))
def test_a_hostile_card_is_refused_in_one_line(tmp_path, kind):
    folder = hostile_model(tmp_path / "models" / "v1", kind)
    with pytest.raises(ModelError) as refused:
        load_model(folder)
    message = str(refused.value)
    assert CARD_REASONS[kind] in message and str(folder / CARD_FILE) in message
    one_line_refusal(message)
    assert len(message) < 300  # the file is named, the value never shown
    # The registry's listing reads cards too: it lists the version without failing.
    assert list_versions(tmp_path / "models") == ["v1"]


def test_a_card_with_a_number_too_large_for_a_float_is_refused(tmp_path):
    folder = shipped_copy(tmp_path / "v1")
    (folder / CARD_FILE).write_text(card_text(folder, "1e999"), "utf-8")
    with pytest.raises(ModelError, match="not JSON"):
        load_model(folder)
    (folder / CARD_FILE).write_text(card_text(folder, "NaN"), "utf-8")
    with pytest.raises(ModelError, match="not JSON"):
        load_model(folder)


def test_the_shipped_card_is_well_inside_the_limits():
    text = (default_model_dir() / CARD_FILE).read_bytes()
    assert len(text) < safejson.MAX_CARD_BYTES / 10
    assert safejson.problem(text, max_depth=10, max_number_chars=30) is None


# --- the zip bomb -----------------------------------------------------------------------------


@pytest.mark.parametrize("lie", [False, True], ids=["declared", "lying"])
def test_a_zip_bomb_model_is_refused_before_it_is_read_whole(tmp_path, lie):
    folder = zip_bomb(tmp_path / "v1", lie=lie)
    tracemalloc.start()
    try:
        with pytest.raises(ModelError) as refused:
            load_model(folder)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    one_line_refusal(str(refused.value))
    assert str(folder / MODEL_FILE) in str(refused.value)
    if not lie:
        assert "would expand" in str(refused.value)
    assert peak < 50e6, f"peak {peak / 1e6:.0f} MB"


def test_the_shipped_model_is_well_inside_the_model_limits():
    from matcher.scoring import model_files

    with zipfile.ZipFile(default_model_dir() / MODEL_FILE) as archive:
        infos = archive.infolist()
        schema = archive.read("schema.json")
    assert len(infos) < model_files.MAX_PARTS / 10
    assert sum(i.file_size for i in infos) < model_files.MAX_EXPANDED_BYTES / 10
    assert safejson.problem(schema, max_depth=model_files.MAX_SCHEMA_DEPTH // 2) is None


def test_a_model_file_over_the_limit_is_refused_without_reading_it(tmp_path, monkeypatch):
    from matcher.scoring import model_files

    folder = shipped_copy(tmp_path / "v1")
    monkeypatch.setattr(model_files, "MAX_MODEL_BYTES", 1000)
    with pytest.raises(ModelError, match="larger than the limit of 1000 bytes"):
        load_model(folder)


# --- catalogues -------------------------------------------------------------------------------


def test_a_catalogue_100000_deep_is_refused_in_one_line(tmp_path):
    path = deep_catalogue(tmp_path / "deep.json")
    with pytest.raises(CatalogueError, match="nested deeper than 64 levels") as refused:
        Catalogue.load(path)
    one_line_refusal(str(refused.value))
    with pytest.raises(CatalogueError, match="nested deeper"):
        Catalogue.load(path, snapshot_dir=tmp_path / "snapshots")


def test_a_catalogue_with_an_absurd_number_is_refused(tmp_path):
    record = json.dumps(ACTIVITIES[0])[:-1] + ', "cost": 1' + "0" * 4999 + "}"
    path = tmp_path / "big-number.json"
    path.write_text('{"activities": [' + record + "]}", "utf-8")
    with pytest.raises(CatalogueError, match="a number longer than 100 characters"):
        Catalogue.load(path)
    lines = tmp_path / "big-number.jsonl"
    lines.write_text(json.dumps(ACTIVITIES[1]) + "\n" + record + "\n", "utf-8")
    with pytest.raises(CatalogueError, match="a number longer than"):
        Catalogue.load(lines)


def test_a_catalogue_over_the_size_limit_is_refused(tmp_path, monkeypatch):
    path = good_catalogue(tmp_path / "catalogue.json")
    monkeypatch.setattr(safejson, "MAX_CATALOGUE_BYTES", 100)
    with pytest.raises(CatalogueError, match="larger than the limit of 100 bytes"):
        Catalogue.load(path)


def test_long_digit_runs_inside_strings_are_not_numbers(tmp_path):
    record = {**ACTIVITIES[0], "description": "ref " + "7" * 5000 + ' "[[[[' * 100}
    path = tmp_path / "catalogue.json"
    path.write_text(json.dumps({"activities": [record]}), "utf-8")
    assert len(Catalogue.load(path)) == 1


# --- current ----------------------------------------------------------------------------------


def test_a_models_current_outside_its_root_is_refused(tmp_path):
    shipped_copy(tmp_path / "elsewhere" / "v1")  # a model that loads, but not in this root
    root = tmp_path / "models"
    shipped_copy(root / "v0")
    os.symlink(tmp_path / "elsewhere" / "v1", root / "current")
    for path in (root, root / "current"):
        with pytest.raises(ModelError, match="points outside") as refused:
            load_model(path)
        one_line_refusal(str(refused.value))
    with pytest.raises(ModelError, match="points outside"):
        load_scorer(root)
    scorer, note = load_scorer(root, required=False)
    assert isinstance(scorer, ColdStartScorer) and "points outside" in note
    assert current_version(root) is None
    os.replace(root / "current", root / "old")
    os.symlink("../elsewhere/v1", root / "current")  # relative, the same escape
    with pytest.raises(ModelError, match="points outside"):
        load_model(root)


def test_a_models_current_inside_its_root_still_loads(tmp_path):
    root = tmp_path / "models"
    shipped_copy(root / "v1")
    os.symlink("v1", root / "current")
    assert load_model(root).version == load_model(root / "current").version
    assert current_version(root) == "v1"


def test_a_catalogue_folders_current_outside_it_is_refused(tmp_path):
    good_catalogue(tmp_path / "elsewhere" / "v1" / "catalogue.json")
    folder = tmp_path / "catalogue"
    folder.mkdir()
    os.symlink(tmp_path / "elsewhere" / "v1", folder / "current")
    with pytest.raises(CatalogueError, match="points outside"):
        catalogue_file(folder)


def test_pull_reads_pages_through_the_shared_reader():
    from matcher import pull

    assert pull.MAX_DEPTH == safejson.MAX_DEPTH
    with pytest.raises(PullError, match="page 1: JSON nested deeper than 64 levels"):
        pull._parse(b"[" * DEEP, "page 1", pull._Limits(1.0, 1 << 20, 64, 10))
    with pytest.raises(PullError, match="page 1: a number longer than"):
        pull._parse(b"[1" + b"0" * 5000 + b"]", "page 1", pull._Limits(1.0, 1 << 20, 64, 10))


# --- the scanner ------------------------------------------------------------------------------


@pytest.mark.parametrize("slice_bytes", [1, 3, 7, 1 << 23])
def test_the_scanner_agrees_with_the_parser_across_slices(monkeypatch, slice_bytes):
    monkeypatch.setattr(safejson, "_SLICE", slice_bytes)
    cases = {
        '{"a": [1, [2, [3]]], "b": "[[[["}': 4,
        '["\\\\", ["\\"[", [[]]]]': 4,
        '"\\\\\\"[[["': 0,
        '[{"k\\"": {"x": "]]]]"}}, [[[[]]]]]': 5,
    }
    for text, depth in cases.items():
        json.loads(text)  # each is JSON
        assert safejson.problem(text.encode(), max_depth=depth) is None, text
        assert safejson.problem(text.encode(), max_depth=depth - 1) is not None or depth == 0
    number = b'["' + b"9" * 300 + b'", 1' + b"0" * 99 + b"]"
    assert safejson.problem(number) is None
    assert safejson.problem(number.replace(b"1" + b"0" * 99, b"1" + b"0" * 100)) is not None


# --- at the command line ----------------------------------------------------------------------


def _matcher(*argv: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "matcher", *argv],
        capture_output=True, text=True, timeout=300, env=env, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("kind", ["card 100,000 deep", "zip bomb", "current outside"])
def test_matcher_rank_refuses_a_hostile_model_in_one_line(tmp_path, kind):
    root = tmp_path / "models"
    if kind == "card 100,000 deep":
        model = hostile_model(root / "v1", "100,000 deep")
    elif kind == "zip bomb":
        model = zip_bomb(root / "v1")
    else:
        shipped_copy(tmp_path / "elsewhere" / "v1")
        root.mkdir()
        os.symlink(tmp_path / "elsewhere" / "v1", root / "current")
        model = root
    profiles = tmp_path / "profiles.jsonl"
    profiles.write_text(json.dumps(PROFILE) + "\n", "utf-8")
    catalogue = good_catalogue(tmp_path / "catalogue.json")
    done = _matcher("rank", "--model", str(model), "--catalogue", str(catalogue),
                    "--profiles", str(profiles))  # fmt: skip
    assert done.returncode == 2, done.stderr
    one_line_refusal(done.stderr)
    assert done.stderr.startswith("matcher: error: ") and done.stdout == ""


def test_matcher_suggest_refuses_a_hostile_catalogue_in_one_line(tmp_path):
    path = deep_catalogue(tmp_path / "deep.json")
    done = _matcher(
        "suggest", "--catalogue", str(path), "--postcode", "LS6 3HN", "--needs", "loneliness",
        env_extra={"MATCHER_MODEL_DIR": str(tmp_path / "no-model")},
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    one_line_refusal(done.stderr)
    assert "nested deeper than 64 levels" in done.stderr


# --- at start, and swapped into a running service ---------------------------------------------


def _health(client) -> dict:
    response = client.get("/healthz")
    assert response.status_code == 200
    return response.get_json()


@pytest.mark.parametrize("kind", [*HOSTILE_CARDS, "zip bomb", "current outside"])
def test_a_hostile_model_at_start_serves_cold_start_with_a_note(tmp_path, kind):
    root = tmp_path / "models"
    if kind in HOSTILE_CARDS:
        hostile_model(root / "v1", kind)
    elif kind == "zip bomb":
        zip_bomb(root / "v1")
    else:
        shipped_copy(tmp_path / "elsewhere" / "v1")
        root.mkdir()
        os.symlink(tmp_path / "elsewhere" / "v1", root / "current")
    if not (root / "current").is_symlink():
        os.symlink("v1", root / "current")
    catalogue = Catalogue.from_records(ACTIVITIES)
    app = make_app(tmp_path, catalogue, MATCHER_MODEL_DIR=str(root))
    client = app.test_client()
    health = _health(client)
    assert health["model_version"] == ColdStartScorer.version
    assert "cold-start" in health["note"] and str(root) in health["note"]
    card = client.get("/v1/model")
    assert card.status_code == 200 and len(card.data) < 10_000
    assert card.get_json()["trained"] is False


@pytest.mark.parametrize("kind", ["100,000 deep", "zip bomb", "current outside"])
def test_a_hostile_model_swapped_in_is_refused_and_the_old_one_serves(tmp_path, kind):
    root = tmp_path / "models"
    good = load_model(shipped_copy(root / "v1")).version
    os.symlink("v1", root / "current")
    app = make_app(tmp_path, Catalogue.from_records(ACTIVITIES), MATCHER_MODEL_DIR=str(root),
                   MATCHER_MODEL_CHECK_SECONDS=0)  # fmt: skip
    client = app.test_client()
    assert _health(client)["model_version"] == good
    if kind == "zip bomb":
        zip_bomb(root / "v2")
        point_current(root, "v2")
    elif kind == "current outside":
        shipped_copy(tmp_path / "elsewhere" / "v2")
        os.replace(root / "current", root / "old-current")
        os.symlink(tmp_path / "elsewhere" / "v2", root / "current")
    else:
        hostile_model(root / "v2", kind)
        point_current(root, "v2")
    health = _health(client)
    assert health["model_version"] == good
    assert str(root) in health["note"]


def test_a_hostile_catalogue_version_at_start_falls_back_to_the_previous_one(tmp_path):
    folder = pulled_folder(tmp_path / "catalogue", {"v1": "good", "v2": "deep"}, "v2")
    catalogue, version, note = first_catalogue(folder)
    assert version == "v1" and len(catalogue) == 2
    assert "nested deeper than 64 levels" in note and "serving the earlier version v1" in note
    watcher = Watcher(catalogue, None, 0, catalogue_source=folder, catalogue_version=version,
                      catalogue_refused=note)  # fmt: skip
    watcher.check()  # the refused current is not loaded again and again
    assert watcher.catalogue_version == "v1" and watcher.catalogue_refused == note
    one_line_refusal(note)


def test_a_hostile_catalogue_with_nothing_earlier_is_refused_in_one_line(tmp_path):
    with pytest.raises(CatalogueError, match="nested deeper") as refused:
        first_catalogue(deep_catalogue(tmp_path / "deep.json"))
    one_line_refusal(str(refused.value))
    folder = pulled_folder(tmp_path / "catalogue", {"v2": "deep"}, "v2")
    with pytest.raises(CatalogueError, match="no earlier version"):
        first_catalogue(folder)


def test_a_catalogue_current_outside_its_folder_at_start_falls_back(tmp_path):
    good_catalogue(tmp_path / "elsewhere" / "v9" / "catalogue.json")
    folder = tmp_path / "catalogue"
    good_catalogue(folder / "v1" / "catalogue.json")
    os.symlink(tmp_path / "elsewhere" / "v9", folder / "current")
    catalogue, version, note = first_catalogue(folder)
    assert version == "v1" and "points outside" in note


def test_create_app_on_a_hostile_catalogue_version_serves_the_previous_one(tmp_path):
    folder = pulled_folder(tmp_path / "catalogue", {"v1": "good", "v2": "deep"}, "v2")
    app = make_app(tmp_path, str(folder))
    health = _health(app.test_client())
    assert health["catalogue_version"] == "v1"
    assert "nested deeper than 64 levels" in health["note"]


def test_a_hostile_catalogue_swapped_in_is_refused_and_the_old_one_serves(tmp_path):
    folder = pulled_folder(tmp_path / "catalogue", {"v1": "good", "v2": "deep"}, "v1")
    app = make_app(tmp_path, str(folder), MATCHER_MODEL_CHECK_SECONDS=0)
    client = app.test_client()
    assert _health(client)["catalogue_version"] == "v1"
    point_current(folder, "v2")
    health = _health(client)
    assert health["catalogue_version"] == "v1" and health["catalogue_size"] == 2
    assert "nested deeper than 64 levels" in health["note"]
    # and a current moved outside the folder
    good_catalogue(tmp_path / "elsewhere" / "v3" / "catalogue.json")
    os.replace(folder / "current", folder / "old-current")
    os.symlink(tmp_path / "elsewhere" / "v3", folder / "current")
    health = _health(client)
    assert health["catalogue_version"] == "v1" and "points outside" in health["note"]
