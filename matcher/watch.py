"""The Matcher in service and a cheap watch on its model folder and catalogue source, so that a
new model or a new catalogue version is taken without a restart and a broken one never is."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .catalogue import Catalogue
from .errors import CatalogueError, MatcherError, ModelError
from .pull import CATALOGUE_FILE, catalogue_file, catalogue_version
from .ranking import Matcher
from .scoring import ColdStartScorer, Scorer, default_model_dir, load_scorer
from .scoring.registry import is_cold_start
from .scoring.shape import suited

__all__ = ["Watcher", "catalogue_name", "fingerprint", "first_catalogue", "reload_all"]

log = logging.getLogger("matcher.watch")

_WATCHERS: weakref.WeakSet[Watcher] = weakref.WeakSet()
# Earlier catalogue versions tried at start when the current one is refused: each try is a
# full load (seconds for a large catalogue), and one good version is all that is needed.
MAX_FALLBACKS = 3


def reload_all() -> None:
    """Ask every watcher in this process to look again at its next request (SIGHUP)."""
    for watcher in list(_WATCHERS):
        watcher.request_reload()


def _event(level: int, event: str, **fields: Any) -> None:
    log.log(level, json.dumps({"event": event, **fields}, ensure_ascii=False))


def fingerprint(path: Path) -> tuple | None:
    """Where ``path`` points now and when it, its target and the files in it changed; None when
    it does not exist. A ``current`` switched by a deploy or a pull changes the target."""
    try:
        link = os.lstat(path)
        real = os.path.realpath(path)
        target = os.stat(real)
    except OSError:
        return None
    files: tuple = ()
    if os.path.isdir(real):
        try:
            with os.scandir(real) as entries:
                files = tuple(
                    sorted(
                        (e.name, e.stat().st_mtime_ns, e.stat().st_size)
                        for e in entries
                        if e.is_file() or e.is_symlink()
                    )
                )
        except OSError:
            files = ()
    return real, link.st_mtime_ns, target.st_mtime_ns, target.st_size, files


class Watcher:
    """Serves one :class:`Matcher` and swaps in a new model or catalogue when its files change.

    At most once every ``check_seconds`` (or after :meth:`request_reload`) a request looks at the
    model folder's and the catalogue source's fingerprints; when one changes, the new one is
    loaded off to the side and swapped in whole. One that fails to load is refused and logged,
    and what was serving keeps serving.

    ``catalogue_source`` (a file, or a folder written by ``matcher pull``) is None for a
    catalogue given already loaded, which is never reloaded; ``load_catalogue`` reads a
    catalogue file.
    """

    def __init__(
        self,
        catalogue: Catalogue,
        model_dir: str | Path | None,
        check_seconds: float,
        *,
        catalogue_source: str | Path | None = None,
        load_catalogue: Callable[[Path], Catalogue] = Catalogue.load,
        catalogue_version: str | None = None,
        catalogue_refused: str | None = None,
    ):
        # Chosen by name, the cold-start scorer has no folder to watch, reload or refuse.
        self.cold_start = is_cold_start(model_dir)
        self.path = Path(model_dir) if model_dir else default_model_dir()
        self.catalogue_source = Path(catalogue_source) if catalogue_source else None
        self.catalogue_version = catalogue_version
        self._load_catalogue = load_catalogue
        self.check_seconds = float(check_seconds)
        self._lock = threading.Lock()
        self._reload_requested = False
        self._next_check = time.monotonic() + self.check_seconds
        self._key = None if self.cold_start else fingerprint(self.path)
        self._catalogue_key = (
            _catalogue_key(self.catalogue_source) if self.catalogue_source else None
        )
        self.refused: str | None = None
        self.catalogue_refused = catalogue_refused  # why the catalogue's current is not served
        self.loaded_from: Path | None = None
        scorer, self.note = self._load_initial()
        self.model = scorer  # as loaded; the matcher may rank with the cold-start scorer
        self.matcher = self._matcher(catalogue, scorer)
        _WATCHERS.add(self)

    @property
    def catalogue(self) -> Catalogue:
        return self.matcher.catalogue

    def _load_initial(self) -> tuple[Scorer, str | None]:
        if self.cold_start:
            return ColdStartScorer(), None
        if self._key is None:
            note = f"no trained model at {self.path}; using the cold-start scorer"
            return ColdStartScorer(), note
        try:
            scorer, note = load_scorer(self.path)
        except Exception as exc:  # a broken model must never stop the service starting
            reason = str(exc) if isinstance(exc, ModelError) else type(exc).__name__
            self.refused = reason
            _event(logging.ERROR, "model_refused", reason=reason, serving=ColdStartScorer.version)
            return ColdStartScorer(), f"{reason}; using the cold-start scorer"
        self.loaded_from = Path(os.path.realpath(self.path))
        return scorer, note

    def _matcher(self, catalogue: Catalogue, scorer: Scorer) -> Matcher:
        """A matcher for the pair, with the cold-start scorer instead of a model trained on
        catalogues unlike this one; the reason becomes the note /healthz shows."""
        chosen, why = suited(scorer, catalogue)
        self.unlike = why
        if why:
            _event(logging.WARNING, "model_not_suited", model_version=scorer.version,
                   serving=chosen.version)  # fmt: skip
        return Matcher(catalogue, chosen)

    def request_reload(self) -> None:
        self._reload_requested = True

    def current(self) -> Matcher:
        if self._reload_requested or time.monotonic() >= self._next_check:
            self.check()
        return self.matcher

    def check(self) -> None:
        """Look at both sources now and swap in whatever changed and loads."""
        if not self._lock.acquire(blocking=False):
            return  # another thread is already looking; serve what is loaded meanwhile
        try:
            self._next_check = time.monotonic() + self.check_seconds
            forced, self._reload_requested = self._reload_requested, False
            catalogue = self._check_catalogue(forced)
            scorer = self._check_model(forced)
            if catalogue is None and scorer is None:
                return
            try:
                matcher = self._matcher(catalogue or self.matcher.catalogue, scorer or self.model)
            except MatcherError as exc:
                self.refused = str(exc)
                _event(logging.ERROR, "model_refused", reason=str(exc), serving=self.version())
                return
            previous = self.matcher.model_version
            self.matcher = matcher
            if scorer is not None:
                self.model = scorer
                self.note, self.refused = None, None
                self.loaded_from = Path(os.path.realpath(self.path))
                _event(logging.INFO, "model_loaded", model_version=matcher.model_version,
                       previous=previous)  # fmt: skip
        finally:
            self._lock.release()

    def _check_catalogue(self, forced: bool) -> Catalogue | None:
        if self.catalogue_source is None:
            return None
        key = _catalogue_key(self.catalogue_source)
        if key == self._catalogue_key and not forced:
            return None
        self._catalogue_key = key
        if key is None or isinstance(key, str):
            self.catalogue_refused = key
            _event(logging.WARNING, "catalogue_missing", reason=key, serving=self.catalogue_version)
            return None
        try:
            catalogue = self._load_catalogue(catalogue_file(self.catalogue_source))
        except (MatcherError, OSError, ValueError, RecursionError) as exc:
            reason = str(exc) if isinstance(exc, CatalogueError) else type(exc).__name__
            self.catalogue_refused = reason
            _event(logging.ERROR, "catalogue_refused", reason=reason,
                   serving=self.catalogue_version)  # fmt: skip
            return None
        previous, self.catalogue_version = (
            self.catalogue_version,
            catalogue_name(self.catalogue_source),
        )
        self.catalogue_refused = None
        _event(logging.INFO, "catalogue_loaded", catalogue_version=self.catalogue_version,
               previous=previous, activities=len(catalogue))  # fmt: skip
        return catalogue

    def _check_model(self, forced: bool) -> Scorer | None:
        """A new scorer when the model folder changed and loads; None keeps the one serving."""
        if self.cold_start:
            return None
        key = fingerprint(self.path)
        if key == self._key and not forced:
            return None
        self._key = key
        if key is None:
            _event(logging.WARNING, "model_missing", serving=self.version())
            return None
        try:
            scorer, _ = load_scorer(self.path)
        except ModelError as exc:
            self.refused = str(exc)
            _event(logging.ERROR, "model_refused", reason=str(exc), serving=self.version())
            return None
        except Exception as exc:  # a broken model must never take the service down
            self.refused = type(exc).__name__
            _event(logging.ERROR, "model_refused", reason=self.refused, serving=self.version())
            return None
        return scorer

    def version(self) -> str:
        return self.matcher.model_version

    def card(self) -> dict[str, Any]:
        """The model card: the trained model's own, or a short one for the cold-start scorer."""
        scorer = self.matcher.scorer
        base: dict[str, Any] = {"version": scorer.version, "kind": scorer.kind}
        if isinstance(scorer, ColdStartScorer):
            summary = (
                "No trained model is in service. Suggestions come from a hand-set, "
                "transparent score: need match first, then interests, nearness, budget and "
                "timing. It has not been learned from uptake."
            )
            if self.cold_start:
                summary += " It was chosen by name (model cold-start)."
            base.update(
                trained=False,
                summary=summary,
                bias=scorer.BIAS,
                weights=dict(scorer.WEIGHTS),
            )
            notes = [n for n in (self.note, self.unlike) if n]
            if notes:
                base["note"] = "; ".join(notes)
            return base
        base["trained"] = True
        card = getattr(scorer, "card", None)
        card = card() if callable(card) else card
        if isinstance(card, Mapping):
            return {**card, **base}
        return base


def _why(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, CatalogueError) else type(exc).__name__


def first_catalogue(
    source: str | Path, load: Callable[[Path], Catalogue] = Catalogue.load
) -> tuple[Catalogue, str, str | None]:
    """The catalogue to start serving: ``(catalogue, version, note)``. A file or a pulled
    folder's current version when it loads (note None); when a folder's current is refused,
    the newest earlier version that loads, with a note saying why.

    Raises
    ------
    CatalogueError
        When the source is refused and holds no earlier version that loads (a file has none).
    """
    source = Path(source)
    try:
        return load(catalogue_file(source)), catalogue_name(source), None
    except (MatcherError, OSError, ValueError, RecursionError) as exc:
        if not source.is_dir():
            if isinstance(exc, CatalogueError):
                raise
            raise CatalogueError(f"{source}: cannot be loaded ({_why(exc)})") from None
        reason = _why(exc)
    try:
        current = catalogue_version(source)
    except CatalogueError:
        current = None  # a current pointing outside the folder: every version is earlier
    earlier = sorted(
        (
            entry.name
            for entry in source.iterdir()
            if not entry.name.startswith(".")
            and entry.name != "current"
            and not entry.is_symlink()
            and (entry / CATALOGUE_FILE).is_file()
            and (current is None or entry.name < current)  # pull names sort by time
        ),
        reverse=True,
    )
    for name in earlier[:MAX_FALLBACKS]:
        try:
            catalogue = load(source / name / CATALOGUE_FILE)
        except (MatcherError, OSError, ValueError, RecursionError) as exc:
            _event(logging.ERROR, "catalogue_refused", reason=_why(exc), serving=None)
            continue
        _event(logging.ERROR, "catalogue_refused", reason=reason, serving=name)
        return catalogue, name, f"{reason}; serving the earlier version {name}"
    raise CatalogueError(f"{reason} (and no earlier version in {source} loads)")


def catalogue_name(source: Path) -> str:
    """A catalogue's version: the folder ``current`` points at, else the file's name."""
    return catalogue_version(source) or source.name


def _catalogue_key(source: Path) -> tuple | str | None:
    """What changes when a new catalogue is there: the file behind a pulled folder's
    ``current``, or the file itself; a broken ``current`` is a key of its own (refused)."""
    try:
        return fingerprint(catalogue_file(source))
    except CatalogueError as exc:
        return str(exc)
