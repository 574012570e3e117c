"""The version registry: which model in a models root serves, switched atomically, with the
history that lets it be rolled back, and the scorer a model folder gives.

A models root holds one folder per version (see :mod:`matcher.scoring.model_files`), a
``current`` symlink to the one in service and ``history.json``, the versions that have served,
in order, for rollback.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .. import safejson
from ..errors import ModelError
from .cold_start import ColdStartScorer, Scorer
from .model_files import (
    CARD_FILE,
    CURRENT,
    check_version_name,
    default_model_dir,
    json_ready,
    load_model,
    utc_now,
    write_atomic,
)

__all__ = [
    "COLD_START",
    "HISTORY_FILE",
    "current_version",
    "is_cold_start",
    "kept_aside_only",
    "list_versions",
    "load_scorer",
    "read_history",
    "rollback",
    "set_current",
]

HISTORY_FILE = "history.json"
# The model "folder" that names the transparent cold-start scorer (``--model cold-start``,
# ``MATCHER_MODEL_DIR=cold-start``); a real folder of that name is reached as ./cold-start.
COLD_START = "cold-start"
# A switch adds about 150 bytes to the history: 16 MB is a hundred thousand switches.
MAX_HISTORY_BYTES = 16 << 20


# --- which model serves -----------------------------------------------------------------------


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    """One writer at a time for ``current`` and ``history.json``: a lock on the models folder
    itself, so no lock file is left beside the models."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, the switch itself is still atomic
        yield
        return
    fd = os.open(root, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def current_version(models_root: str | Path) -> str | None:
    """The version ``models/current`` points at, or None when there is none (or it points
    anywhere but at a folder inside the root)."""
    try:
        return safejson.current_target(models_root, error=ModelError)
    except ModelError:
        return None


def list_versions(models_root: str | Path) -> list[str]:
    """Every model folder under the root, oldest first (by the card's trained_at)."""
    root = Path(models_root)
    if not root.is_dir():
        return []
    found = []
    for folder in root.iterdir():
        if folder.name.startswith(".") or folder.is_symlink() or not folder.is_dir():
            continue
        if not (folder / CARD_FILE).is_file():
            continue
        try:
            card = safejson.load(folder / CARD_FILE, safejson.MAX_CARD_BYTES, error=ModelError)
            trained_at = str(card.get("trained_at"))
        except (ModelError, AttributeError):
            trained_at = ""
        found.append((trained_at, folder.name))
    return [name for _, name in sorted(found)]


def read_history(models_root: str | Path) -> dict[str, Any]:
    """``history.json``: ``history`` (versions that served, in order, the last serving now)
    and ``events`` (every switch and rollback, with times)."""
    path = Path(models_root) / HISTORY_FILE
    if not os.path.lexists(path):
        return {"history": [], "events": []}
    data = safejson.load(path, MAX_HISTORY_BYTES, error=ModelError)
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("history"), list)
        or not all(isinstance(v, str) for v in data["history"])
    ):
        raise ModelError(f'{path}: expected {{"history": [versions], "events": [...]}}')
    data.setdefault("events", [])
    return data


def _history_now(root: Path) -> dict[str, Any]:
    data = read_history(root)
    current = current_version(root)
    # The link is the truth for serving: a switch made by hand still counts.
    if current is not None and (not data["history"] or data["history"][-1] != current):
        data["history"].append(current)
    return data


def _point_current(root: Path, version: str) -> None:
    link = root / CURRENT
    if link.exists() and not link.is_symlink():
        raise ModelError(f"{link}: is not a symlink; move it aside to let versions be switched")
    tmp = root / f".{CURRENT}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    os.symlink(version, tmp)  # relative: the models folder can move
    try:
        os.replace(tmp, link)  # rename(2): readers see the old target or the new, never none
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _verified(root: Path, version: str) -> None:
    check_version_name(version)
    folder = root / version
    if not folder.is_dir() or folder.is_symlink():
        raise ModelError(f"{folder}: no such model version")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        load_model(folder)  # never point serving at a model that would not load


def set_current(models_root: str | Path, version: str) -> None:
    """Point ``models/current`` at ``version`` (after checking it loads) and record it."""
    root = Path(models_root)
    _verified(root, version)
    with _locked(root):
        data = _history_now(root)
        previous = current_version(root)
        _point_current(root, version)
        if not data["history"] or data["history"][-1] != version:
            data["history"].append(version)
        data["events"].append(
            {"action": "set_current", "version": version, "previous": previous, "at": utc_now()}
        )
        _write_history(root, data)


def rollback(models_root: str | Path) -> str:
    """Point ``models/current`` back at the version that served before it; return that version.

    Raises
    ------
    ModelError
        When the history holds no earlier version, or that version no longer loads.
    """
    root = Path(models_root)
    if not root.is_dir():
        raise ModelError(f"{root}: no models folder there")
    with _locked(root):
        data = _history_now(root)
        history = data["history"]
        current = current_version(root)
        if len(history) < 2:
            now = f"{current} is the only version that has served" if current else "no version"
            raise ModelError(f"{root}: nothing to roll back to ({now}; see {HISTORY_FILE})")
        target = history[-2]
        try:
            _verified(root, target)
        except ModelError as exc:
            raise ModelError(f"cannot roll back to {target}: {exc}") from None
        _point_current(root, target)
        history.pop()
        data["events"].append(
            {"action": "rollback", "version": target, "previous": current, "at": utc_now()}
        )
        _write_history(root, data)
    return target


def _write_history(root: Path, data: dict[str, Any]) -> None:
    text = json.dumps(json_ready(data), indent=2, ensure_ascii=False)
    write_atomic(root / HISTORY_FILE, (text + "\n").encode("utf-8"))


# --- the scorer a model folder gives -------------------------------------------------------


def kept_aside_only(path: str | Path) -> bool:
    """A models root holding versions but no ``current``: training ran, the gate said no."""
    path = Path(path)
    if not path.is_dir() or (path / CARD_FILE).exists() or (path / CURRENT).exists():
        return False
    return any((child / CARD_FILE).exists() for child in path.iterdir())


def is_cold_start(model_dir: str | Path | None) -> bool:
    """Whether ``model_dir`` names the cold-start scorer rather than a folder."""
    return isinstance(model_dir, str) and model_dir == COLD_START


def load_scorer(
    model_dir: str | Path | None = None, *, required: bool | None = None
) -> tuple[Scorer, str | None]:
    """The trained model in ``model_dir`` (default: the shipped one), or the cold-start scorer
    with a note saying why. A folder that is ``required`` (by default: one named explicitly)
    must load: failing that is an error. ``"cold-start"`` (:data:`COLD_START`) chooses the
    cold-start scorer, with no note: nothing failed."""
    if is_cold_start(model_dir):
        return ColdStartScorer(), None
    explicit = model_dir is not None if required is None else required
    path = Path(model_dir) if model_dir is not None else default_model_dir()
    if not explicit and not path.exists():
        return ColdStartScorer(), f"no trained model at {path}; using the cold-start scorer"
    if kept_aside_only(path):
        return ColdStartScorer(), (
            f"{path} has no current model (the gate kept every model there aside: see their "
            "model_card.json); using the cold-start scorer"
        )
    try:
        return load_model(path), None
    except ModelError as exc:
        if explicit:
            raise
        return ColdStartScorer(), f"{exc}; using the cold-start scorer"
