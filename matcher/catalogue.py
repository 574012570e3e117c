"""A loaded catalogue: validated activities plus the arrays, spatial index and text index that
ranking reads, all built once at load.

Everything a :class:`Catalogue` holds is numpy arrays plus a few small Python containers, so
that one built in a gunicorn master is shared by the forked workers (refcounting never touches
an array's data). Activities are kept as their contract JSON in one byte array and become
:class:`Activity` objects only when asked for, by position (:class:`Activities`).

A catalogue file can be prepared once and reloaded fast: ``Catalogue.load(path, snapshot_dir)``
writes a snapshot keyed by the file's SHA-256 (numpy ``.npy`` arrays and JSON, never a pickle,
with a manifest of each part's SHA-256) and later loads of the same file map it back without
parsing or validating a record. See :func:`load_snapshot` and :func:`write_snapshot`.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import mmap
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache, partial
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.neighbors import BallTree

from . import geo, oruk, safejson
from .contract import (
    ACCESSIBILITY,
    DAY_PARTS,
    NEED_DESCRIPTIONS,
    NEEDS,
    Activity,
    day_part,
    parse_activity,
)
from .errors import CatalogueError, InvalidActivity, UnknownActivity, UnknownPostcode
from .text import NEED_LEXICON, analyse, analyse_tokens, clean_html, need_hits_in, words

GENDER_CODES = {"female": 1, "male": 2}
FORMAT_CODES = {"group": 1, "one_to_one": 2}
REFERRAL_CODES = {"self": 1, "professional": 2}
_ACTIVITY_FIELDS = set(Activity.model_fields)
# Inferred needs count for less than listed ones; the strongest inference stays below 1.
_MAX_INFERRED = 0.9
_MAX_INFERRED_NEEDS = 3
# Activities materialised recently, per catalogue (a match list and its reasons ask again).
_ACTIVITY_CACHE = 2048


@dataclass
class LoadReport:
    """What happened when a catalogue was read: nothing is dropped without a line here."""

    source: str
    kind: str = "catalogue"
    records: int = 0
    loaded: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    without_location: int = 0
    needs_inferred: int = 0
    online: int = 0
    inactive: int = 0
    warnings: list[str] = field(default_factory=list)
    # What happened with the prepared snapshot, when one was asked for: "loaded FOLDER",
    # "written FOLDER", or why there is none.
    snapshot: str | None = None

    def summary(self) -> str:
        return (
            f"{self.source}: {self.records} records, {self.loaded} loaded, "
            f"{len(self.skipped)} skipped, {self.without_location} without location, "
            f"{self.online} online, {self.inactive} inactive, "
            f"needs inferred for {self.needs_inferred}"
        )

    def to_dict(self) -> dict[str, Any]:
        out = {
            "source": self.source,
            "kind": self.kind,
            "records": self.records,
            "loaded": self.loaded,
            "skipped": [{"record": where, "reason": why} for where, why in self.skipped],
            "without_location": self.without_location,
            "online": self.online,
            "inactive": self.inactive,
            "needs_inferred": self.needs_inferred,
            "warnings": self.warnings,
        }
        if self.snapshot is not None:
            out["snapshot"] = self.snapshot
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoadReport:
        return cls(
            source=str(data["source"]),
            kind=str(data["kind"]),
            records=int(data["records"]),
            loaded=int(data["loaded"]),
            skipped=[(str(s["record"]), str(s["reason"])) for s in data["skipped"]],
            without_location=int(data["without_location"]),
            online=int(data["online"]),
            inactive=int(data["inactive"]),
            needs_inferred=int(data["needs_inferred"]),
            warnings=[str(w) for w in data["warnings"]],
        )


# --- reading and validating records ------------------------------------------------------------


def read_records(path: str | Path) -> tuple[list[Any], str, list[tuple[str, str]]]:
    """Read a catalogue file into raw records: native JSON, JSON Lines, or an Open Referral UK
    feed (converted). Returns ``(records, kind, skipped)``."""
    path = Path(path)
    return _parse_records(_decode(_read_bytes(path), path), path)


def _read_bytes(path: Path) -> bytes:
    # Bounded in size, nesting and number length before the parser sees it (matcher.safejson).
    return safejson.read_checked(path, safejson.MAX_CATALOGUE_BYTES, error=CatalogueError)


def _decode(data: bytes, path: Path) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CatalogueError(f"{path}: cannot be read ({exc.__class__.__name__})") from None


def _parse_records(text: str, path: Path) -> tuple[list[Any], str, list[tuple[str, str]]]:
    if not text.strip():
        raise CatalogueError(f"{path}: the file is empty")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        if text.lstrip().startswith("{") and "\n" in text.strip():
            return _read_json_lines(text)
        raise CatalogueError(
            f"{path}: not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    if oruk.is_oruk(data):
        activities, skipped, _ = oruk.import_feed(data)
        return activities, "oruk", list(skipped)
    if isinstance(data, dict) and isinstance(data.get("activities"), list):
        return data["activities"], "catalogue", []
    if isinstance(data, list):
        return data, "catalogue", []
    if isinstance(data, dict) and "id" in data and "name" in data:
        return [data], "jsonl", []  # JSON Lines holding a single activity
    raise CatalogueError(
        f'{path}: expected {{"activities": [...]}}, a JSON array of activities, JSON Lines, '
        "or an Open Referral UK feed"
    )


def _read_json_lines(text: str) -> tuple[list[Any], str, list[tuple[str, str]]]:
    records, skipped = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            skipped.append((f"line {number}", f"malformed JSON ({exc.msg})"))
            records.append(None)  # keeps record numbers equal to line numbers below
    return records, "jsonl", skipped


def validate_records(
    records: Iterable[Any], report: LoadReport, *, where: str = "record"
) -> list[Activity]:
    """Validate raw records, skipping (and reporting) bad ones and duplicate ids."""
    return list(_validated(records, report, where=where))


def _validated(
    records: Iterable[Any], report: LoadReport, *, where: str = "record", release: bool = False
) -> Iterator[Activity]:
    """:func:`validate_records` one activity at a time. With ``release`` (``records`` is a list
    the caller gives up), each raw record is dropped once validated, to keep the peak low."""
    seen: set[str] = set()
    unknown: Counter[str] = Counter()
    for number, record in enumerate(records, start=1):
        if release:
            records[number - 1] = None  # type: ignore[index]
        if record is None:
            continue  # already reported by the reader
        report.records += 1
        label = f"{where} {number}"
        if isinstance(record, dict) and isinstance(record.get("id"), str):
            label += f" (id {record['id']})"
            extra = record.keys() - _ACTIVITY_FIELDS
            if extra:
                unknown.update(extra)
        try:
            activity = parse_activity(record, prefix="")
        except InvalidActivity as exc:
            report.skipped.append((label, str(exc)))
            continue
        if activity.id in seen:
            report.skipped.append((label, "duplicate id"))
            continue
        seen.add(activity.id)
        yield activity
    for name, count in sorted(unknown.items()):
        report.warnings.append(f"field {name!r} is not in the contract; ignored in {count} records")


# --- activities, kept as JSON and materialised on demand --------------------------------------


def _json(blob: np.ndarray, offsets: np.ndarray, i: int) -> bytes:
    return blob[offsets[i] : offsets[i + 1]].tobytes()


def _materialise(blob: np.ndarray, offsets: np.ndarray, i: int) -> Activity:
    return Activity.model_validate_json(_json(blob, offsets, i))


class Activities(Sequence[Activity]):
    """The catalogue's activities in order, stored as contract JSON in one byte array (shared
    between forked workers, or mapped from a snapshot) and validated into :class:`Activity`
    objects only when read. The most recently read are cached."""

    def __init__(self, blob: np.ndarray, offsets: np.ndarray):
        self._blob = blob
        self._offsets = offsets
        # (not a bound method: a cache holding its owner would be a cycle, kept until a full
        # collection, and with it the whole byte array)
        self._cached = lru_cache(maxsize=_ACTIVITY_CACHE)(partial(_materialise, blob, offsets))

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def json(self, i: int) -> bytes:
        """Activity ``i`` as its contract JSON (description already cleaned)."""
        return _json(self._blob, self._offsets, i)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return tuple(self._cached(k) for k in range(*i.indices(len(self))))
        i = int(i)
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("activity position out of range")
        return self._cached(i)

    def __iter__(self) -> Iterator[Activity]:
        for i in range(len(self)):  # not through the cache: a full pass would only churn it
            yield _materialise(self._blob, self._offsets, i)


# --- building: validated activities to arrays -------------------------------------------------


def _identity(tokens: list[str]) -> list[str]:
    return tokens


def _vectorizer(terms: list[str], idf: np.ndarray) -> TfidfVectorizer:
    """A fitted TF-IDF vectorizer from its vocabulary (terms in column order) and idf weights,
    transforming text as the catalogue was indexed (:func:`matcher.text.analyse`)."""
    vectorizer = TfidfVectorizer(analyzer=analyse, sublinear_tf=True, dtype=np.float64, norm="l2")
    vectorizer.vocabulary_ = {term: k for k, term in enumerate(terms)}
    vectorizer.idf_ = idf
    return vectorizer


class _Builder:
    """Everything ranking reads about each activity, gathered in one pass over the validated
    activities: the description is cleaned once and every text is tokenised once here."""

    def __init__(self, report: LoadReport, *, cleaned: bool = False):
        self.report = report
        self.cleaned = cleaned  # descriptions were cleaned already (an ORUK import)
        self.n = 0
        self.ids: list[str] = []
        self.json: list[bytes] = []
        self.docs: list[list[str]] = []  # TF-IDF tokens, one list per activity
        self.to_infer: list[tuple[int, dict[str, int], dict[str, int]]] = []
        self.columns: dict[str, list] = {name: [] for name in (
            "lat", "lon", "location_precision", "online", "active", "min_age", "max_age",
            "gender", "format", "referral", "cost", "capacity", "access", "n_access",
            "n_sessions", "evening_share", "languages")}  # fmt: skip
        self.slots: list[tuple[int, int]] = []
        self.needs: list[tuple[int, int]] = []
        self.language_bit: dict[str, int] = {}
        self.unknown_postcodes = 0
        self._stems: dict[str, str] = {}
        self._short: dict[str, list[str]] = {}
        self._places: dict[str, tuple[float, float, str] | None] = {}

    _SLOT = {p: k for k, p in enumerate(DAY_PARTS)}
    _NEED = {c: k for k, c in enumerate(NEEDS)}
    _BIT = {f: 1 << k for k, f in enumerate(ACCESSIBILITY)}

    def add(self, a: Activity) -> None:
        i = self.n
        self.n += 1
        col = self.columns
        description = a.description
        if description and not self.cleaned:
            description = clean_html(description)  # the one cleaning of this text
        # The contract JSON, with the cleaned description.
        raw = a.model_dump_json(exclude_none=True, exclude_unset=True, exclude={"description"})
        if description is not None:  # (id and name always follow)
            raw = '{"description":' + json.dumps(description, ensure_ascii=False) + "," + raw[1:]
        self.ids.append(a.id)
        self.json.append(raw.encode("utf-8"))

        # Words, once: name (twice), tags, organisation, description (Catalogue.text_of).
        name = self._words(a.name)
        tags = self._words(" ; ".join(a.tags))
        organisation = self._words(a.organisation or "")
        described = words(description or "", self._stems)
        self.docs.append(analyse_tokens(name + name + tags + organisation + described))
        if not a.needs:
            strong = need_hits_in(name + tags)
            weak = need_hits_in(described + organisation)
            self.to_infer.append((i, strong, weak))

        lat = lon = np.nan
        precision = 0  # 0 none, 1 district, 2 sector, 3 point
        loc = a.location
        if loc is not None:
            if loc.lat is not None and loc.lon is not None:
                lat, lon, precision = loc.lat, loc.lon, 3
            elif loc.postcode:
                place = self._place(loc.postcode)
                if place is None:
                    self.unknown_postcodes += 1
                else:
                    lat, lon = place[0], place[1]
                    precision = 2 if place[2] == "sector" else 1
        col["lat"].append(lat)
        col["lon"].append(lon)
        col["location_precision"].append(precision)
        col["online"].append(a.online)
        col["active"].append(a.status == "active")
        col["min_age"].append(np.nan if a.min_age is None else a.min_age)
        col["max_age"].append(np.nan if a.max_age is None else a.max_age)
        col["gender"].append(GENDER_CODES.get(a.gender or "", 0))
        col["format"].append(FORMAT_CODES.get(a.format or "", 0))
        col["referral"].append(REFERRAL_CODES.get(a.referral or "", 0))
        col["cost"].append(np.nan if a.cost is None else a.cost)
        col["capacity"].append(np.nan if a.capacity is None else a.capacity)
        col["access"].append(sum(self._BIT[f] for f in a.accessibility))
        col["n_access"].append(len(a.accessibility))
        evenings = 0
        for s in a.sessions:
            part = day_part(s.start)
            evenings += part == "eve"
            self.slots.append((i, self._SLOT[f"{s.day}_{part}"]))
        col["n_sessions"].append(len(a.sessions))
        col["evening_share"].append(evenings / len(a.sessions) if a.sessions else 0.0)
        bits = self.language_bit
        for code in a.languages:
            if code not in bits and len(bits) < 62:
                bits[code] = 1 << len(bits)
        col["languages"].append(sum(bits.get(c, 0) for c in a.languages))
        for code in a.needs:
            self.needs.append((i, self._NEED[code]))

    def _words(self, text: str) -> list[str]:
        """Words of a short text: names, tags and organisations repeat across a directory."""
        found = self._short.get(text)
        if found is None:
            found = self._short[text] = words(text, self._stems)
        return found

    def _place(self, postcode: str) -> tuple[float, float, str] | None:
        if postcode not in self._places:
            try:
                self._places[postcode] = geo.lookup(postcode)
            except UnknownPostcode:
                self._places[postcode] = None
        return self._places[postcode]

    def finish(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """The catalogue's parts: arrays (see :data:`_ARRAYS`) and JSON-ready metadata."""
        n, col = self.n, self.columns
        if self.unknown_postcodes:
            self.report.warnings.append(
                f"{self.unknown_postcodes} activities have a postcode that is not in the "
                "postcode table; their location is treated as unknown"
            )
        arrays: dict[str, np.ndarray] = {}
        for name, dtype in _COLUMN_TYPES.items():
            arrays[name] = np.array(col[name], dtype=dtype).reshape(n)
        slots = np.zeros((n, len(DAY_PARTS)), dtype=bool)
        if self.slots:
            rows, cols = np.array(self.slots).T
            slots[rows, cols] = True
        arrays["slots"] = slots
        listed = np.zeros((n, len(NEEDS)), dtype=np.float64)
        if self.needs:
            rows, cols = np.array(self.needs).T
            listed[rows, cols] = 1.0
        arrays["needs_listed"] = listed
        lengths = np.fromiter((len(b) for b in self.json), dtype=np.int64, count=n)
        arrays["activity_offsets"] = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        arrays["activity_json"] = np.frombuffer(b"".join(self.json), dtype=np.uint8)
        self.json = []

        fitting = TfidfVectorizer(
            analyzer=_identity, sublinear_tf=True, dtype=np.float64, norm="l2"
        )
        matrix = fitting.fit_transform(self.docs).tocsr()
        self.docs = []
        vocabulary = fitting.vocabulary_
        terms = [""] * len(vocabulary)
        for term, k in vocabulary.items():
            terms[k] = term
        columns = matrix.tocsc()
        arrays["idf"] = np.asarray(fitting.idf_, dtype=np.float64)
        arrays["text_data"], arrays["text_indices"], arrays["text_indptr"] = (
            matrix.data, matrix.indices, matrix.indptr)  # fmt: skip
        arrays["column_data"], arrays["column_indices"], arrays["column_indptr"] = (
            columns.data, columns.indices, columns.indptr)  # fmt: skip
        concept_names = sorted(t[2:] for t in vocabulary if t.startswith("c:"))
        picked = [vocabulary[f"c:{c}"] for c in concept_names]
        arrays["concepts"] = (
            (columns[:, picked] > 0).toarray() if picked else np.zeros((n, 0), dtype=bool)
        )
        inferred, were_inferred = self._infer_needs(matrix, terms, arrays["idf"])
        arrays["needs_inferred"], arrays["needs_were_inferred"] = inferred, were_inferred
        meta = {
            "n": n,
            "ids": self.ids,
            "terms": terms,
            "concept_names": concept_names,
            "language_bit": self.language_bit,
        }
        return arrays, meta

    def _infer_needs(
        self, matrix: sp.csr_matrix, terms: list[str], idf: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Needs for activities that list none: a lexicon of need phrases (name and tags count
        double), falling back to TF-IDF similarity with the need descriptions."""
        inferred = np.zeros((self.n, len(NEEDS)))
        were_inferred = np.zeros(self.n, dtype=bool)
        if not self.to_infer:
            return inferred, were_inferred
        need_docs = [
            f"{text} " + " ".join(NEED_LEXICON[code]) for code, text in NEED_DESCRIPTIONS.items()
        ]
        need_vectors = _vectorizer(terms, idf).transform(need_docs)
        todo = [i for i, _, _ in self.to_infer]
        similarity = (matrix[todo] @ need_vectors.T).toarray()
        for row, (i, strong, weak) in enumerate(self.to_infer):
            score = np.array([2 * strong.get(c, 0) + weak.get(c, 0) for c in NEEDS], dtype=float)
            strength = np.where(score >= 2, np.minimum(_MAX_INFERRED, 0.4 + 0.1 * score), 0.0)
            if not strength.any():
                best = int(np.argmax(similarity[row]))
                if similarity[row, best] >= 0.08:
                    strength[best] = 0.3
            if strength.any():
                keep = np.argsort(-strength, kind="stable")[:_MAX_INFERRED_NEEDS]
                inferred[i, keep] = strength[keep]
                were_inferred[i] = True
        return inferred, were_inferred


# One row per activity, as the builder gathers them: name -> dtype.
_COLUMN_TYPES: dict[str, Any] = {
    "lat": np.float64, "lon": np.float64, "location_precision": np.int8, "online": bool,
    "active": bool, "min_age": np.float64, "max_age": np.float64, "gender": np.int8,
    "format": np.int8, "referral": np.int8, "cost": np.float64, "capacity": np.float64,
    "access": np.int64, "n_access": np.float64, "n_sessions": np.float64,
    "evening_share": np.float64, "languages": np.int64,
}  # fmt: skip
# Every array a catalogue is made of (a snapshot holds exactly these).
_ARRAYS: tuple[str, ...] = (
    *_COLUMN_TYPES, "slots", "needs_listed", "needs_inferred", "needs_were_inferred",
    "concepts", "activity_json", "activity_offsets", "idf", "text_data", "text_indices",
    "text_indptr", "column_data", "column_indices", "column_indptr",
)  # fmt: skip
_ROW_ARRAYS = (*_COLUMN_TYPES, "slots", "needs_listed", "needs_inferred", "needs_were_inferred",
               "concepts")  # fmt: skip


class Catalogue:
    """Activities with everything ranking needs, indexed once.

    Arrays are aligned with ``activities``: position ``i`` everywhere is the same activity.
    """

    def __init__(self, activities: Iterable[Activity], report: LoadReport | None = None):
        given = report is not None
        report = report or LoadReport(source="records")
        builder = _Builder(report)
        for activity in activities:
            builder.add(activity)
        if not builder.n:
            raise CatalogueError("the catalogue has no valid activities")
        if not given:
            report.records = builder.n
        self._adopt(*builder.finish(), report)

    @classmethod
    def _from_parts(
        cls, arrays: dict[str, np.ndarray], meta: dict[str, Any], report: LoadReport
    ) -> Catalogue:
        catalogue = cls.__new__(cls)
        catalogue._adopt(arrays, meta, report)
        return catalogue

    def _adopt(self, arrays: dict[str, np.ndarray], meta: dict[str, Any], report: LoadReport):
        """Take the parts as they are (no copies: they may be mapped from a snapshot)."""
        n = int(meta["n"])
        self._arrays = arrays
        self._meta = meta
        self.report = report
        self.activities = Activities(arrays["activity_json"], arrays["activity_offsets"])
        self.ids: list[str] = meta["ids"]
        self.position: dict[str, int] = {a_id: i for i, a_id in enumerate(self.ids)}
        if len(self.position) != n or len(self.activities) != n:
            raise CatalogueError("activity ids must be unique")
        for name in _ROW_ARRAYS:
            if arrays[name].shape[:1] != (n,):
                raise CatalogueError(f"catalogue part {name} does not match the activities")
            setattr(self, name, arrays[name])
        self.located = ~np.isnan(self.lat)
        self.language_bit: dict[str, int] = {
            str(code): int(bit) for code, bit in meta["language_bit"].items()
        }
        terms = meta["terms"]
        self.vectorizer = _vectorizer(terms, arrays["idf"])
        shape = (n, len(terms))
        self.text_matrix = sp.csr_matrix(
            (arrays["text_data"], arrays["text_indices"], arrays["text_indptr"]), shape=shape
        )
        self.text_columns = sp.csc_matrix(
            (arrays["column_data"], arrays["column_indices"], arrays["column_indptr"]), shape=shape
        )
        self.concept_names: list[str] = meta["concept_names"]
        self._build_spatial_index()
        report.loaded = n
        report.without_location = int((~self.located & ~self.online).sum())
        report.online = int(self.online.sum())
        report.inactive = int((~self.active).sum())
        report.needs_inferred = int(self.needs_were_inferred.sum())

    # --- construction ---------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | Path, snapshot_dir: str | Path | None = None) -> Catalogue:
        """Load a catalogue file (any supported form); bad records are reported and skipped.

        With ``snapshot_dir``, the first load of a file writes a prepared snapshot there, in a
        folder named by the file's SHA-256, and later loads of the same file map that snapshot
        instead of parsing the file (``report.snapshot`` says which happened). A snapshot that
        fails any check is never used: the file is loaded again and the snapshot rewritten.
        """
        path = Path(path)
        if snapshot_dir is None:
            return cls._from_file(path)[0]
        return _load_through_snapshot(cls, path, Path(snapshot_dir))

    @classmethod
    def _from_file(cls, path: Path) -> tuple[Catalogue, str]:
        """Read, parse, validate and index a catalogue file; also the SHA-256 of the bytes
        read (the bytes parsed are the bytes a snapshot is named by)."""
        # Millions of objects are made and dropped here, none in a reference cycle: the cyclic
        # collector would only walk them again and again (a third of the time at 300,000).
        collecting = gc.isenabled()
        gc.disable()
        try:
            data = _read_bytes(path)
            sha = hashlib.sha256(data).hexdigest()
            text = _decode(data, path)
            del data
            records, kind, skipped = _parse_records(text, path)
            del text
            catalogue = cls._from_records(records, kind, skipped, path)
            del records
        finally:
            if collecting:
                gc.enable()
        _give_back_freed_memory()
        return catalogue, sha

    @classmethod
    def _from_records(
        cls, records: list[Any], kind: str, skipped: list[tuple[str, str]], path: Path
    ) -> Catalogue:
        # Records the reader already turned away (malformed lines, unusable feed services)
        # count as read; validation counts the rest.
        report = LoadReport(source=str(path), kind=kind, skipped=list(skipped))
        report.records = len(skipped)
        where = "line" if kind == "jsonl" else "record"
        # An ORUK import has cleaned its descriptions (matcher.oruk): they are not cleaned twice.
        builder = _Builder(report, cleaned=kind == "oruk")
        for activity in _validated(records, report, where=where, release=True):
            builder.add(activity)
        del records
        if not builder.n:
            reasons = "; ".join(f"{w}: {r}" for w, r in report.skipped[:3])
            raise CatalogueError(
                f"{path}: no valid activities" + (f" ({reasons})" if reasons else "")
            )
        return cls._from_parts(*builder.finish(), report)

    @classmethod
    def from_records(cls, records: Iterable[Any], source: str = "records") -> Catalogue:
        report = LoadReport(source=source)
        return cls(_validated(records, report), report)

    @staticmethod
    def text_of(activity: Activity) -> str:
        """The words an activity is matched on: name (twice), tags, organisation, description
        (as the catalogue holds it: already cleaned)."""
        parts = [activity.name, activity.name, " ; ".join(activity.tags)]
        parts += [activity.organisation or "", activity.description or ""]
        return " \n ".join(parts)

    def _build_spatial_index(self) -> None:
        self.located_positions = np.flatnonzero(self.located)
        points = np.radians(np.column_stack([self.lat, self.lon])[self.located_positions])
        self.tree = BallTree(points, metric="haversine") if len(points) else None
        # Always candidates, wherever the person is: online, and location unknown.
        self.always_candidates = np.flatnonzero(self.online | ~self.located)

    # --- reading ----------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.activities)

    def __iter__(self) -> Iterator[Activity]:
        return iter(self.activities)

    def index_of(self, activity_id: str) -> int:
        try:
            return self.position[activity_id]
        except KeyError:
            raise UnknownActivity(f"no activity with id {activity_id!r} in the catalogue") from None

    def get(self, activity_id: str) -> Activity:
        return self.activities[self.index_of(activity_id)]

    def needs_of(self, i: int) -> tuple[list[str], bool]:
        """An activity's need codes and whether they were inferred rather than listed."""
        if self.needs_listed[i].any():
            return list(self.activities[i].needs), False
        row = self.needs_inferred[i]
        inferred = [NEEDS[k] for k in np.argsort(-row, kind="stable") if row[k] > 0]
        return inferred, bool(self.needs_were_inferred[i])

    def has_word(self, i: int, token: str) -> bool:
        """Whether activity ``i``'s text has ``token`` (a word as :func:`matcher.text.words`
        gives it), read from the text index: catalogue text is tokenised once, at load."""
        column = self.vectorizer.vocabulary_.get(token)
        if column is None:
            return False
        start, end = self.text_matrix.indptr[i], self.text_matrix.indptr[i + 1]
        return bool((self.text_matrix.indices[start:end] == column).any())

    def serves(self, need: str) -> np.ndarray:
        """Which activities help with ``need``, as :meth:`needs_of` says (listed needs, else
        the inferred ones), for the whole catalogue at once."""
        k = NEEDS.index(need)
        listed = self.needs_listed
        return np.where(listed.any(axis=1), listed[:, k] > 0, self.needs_inferred[:, k] > 0)

    def search(
        self,
        *,
        text: str | None = None,
        near: tuple[float, float] | None = None,
        within_km: float | None = None,
        need: str | None = None,
        day: str | None = None,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """A directory search over active activities: positions in order (nearest first with
        ``near``, else most relevant to ``text``, else catalogue order) and, with ``near``,
        every activity's distance in km (NaN where unknown)."""
        keep = self.active.copy()
        order: np.ndarray | None = None
        distance = None
        if near is not None:
            distance = np.asarray(geo.haversine_km(near[0], near[1], self.lat, self.lon), float)
            if within_km is not None:
                keep &= ~np.isnan(distance) & (distance <= within_km)
            order = np.lexsort((np.arange(len(distance)), np.nan_to_num(distance, nan=np.inf)))
        if text is not None:
            relevance = (self.text_matrix @ self.vectorizer.transform([text]).T).toarray().ravel()
            keep &= relevance > 0
            if order is None:
                order = np.lexsort((np.arange(len(relevance)), -relevance))
        if need is not None:
            keep &= self.serves(need)
        if day is not None:
            columns = [k for k, slot in enumerate(DAY_PARTS) if slot.startswith(f"{day}_")]
            keep &= self.slots[:, columns].any(axis=1)
        if order is None:
            order = np.arange(len(self))
        return order[keep[order]], distance

    def candidates(self, lat: float | None, lon: float | None, radius_km: float) -> np.ndarray:
        """Positions worth scoring for a person at (lat, lon): located activities within
        ``radius_km`` (from the spatial index) plus online and location-unknown ones. Sorted."""
        return self.nearby(lat, lon, radius_km)[0]

    def nearby(
        self, lat: float | None, lon: float | None, radius_km: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`candidates` and each one's distance in km from (lat, lon): NaN where the
        activity's location or the person's is unknown. Computed once here for the filters,
        the features and the reasons; by :func:`matcher.geo.haversine_km` (the spatial index
        only finds), so every stage and the audit rule agree to the last bit."""
        if lat is None or lon is None or self.tree is None:
            idx = np.arange(len(self)) if lat is None else self.always_candidates
        else:
            near = self.tree.query_radius(
                np.radians([[lat, lon]]), r=radius_km / geo.EARTH_RADIUS_KM
            )[0]
            found = np.zeros(len(self), dtype=bool)
            found[self.located_positions[near]] = True
            found[self.always_candidates] = True
            idx = np.flatnonzero(found)
        if lat is None or lon is None:
            return idx, np.full(len(idx), np.nan)
        return idx, np.asarray(geo.haversine_km(lat, lon, self.lat[idx], self.lon[idx]), float)


def _give_back_freed_memory() -> None:
    """Return the C heap freed after a build to the system (glibc keeps it otherwise: about
    300 MB after 300,000 activities, in a process that may go on to fork workers)."""
    try:
        import ctypes

        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


# --- snapshots --------------------------------------------------------------------------------

SNAPSHOT_FORMAT = "matcher-catalogue-snapshot/1"
_MANIFEST = "manifest.json"
_META = "meta.json"
_LOCK = ".build.lock"
_HASH_CHUNK = 1 << 22


class SnapshotUnusable(Exception):
    """A snapshot that must not be used; the message says why (for the load report)."""


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file, read in chunks (a 200 MB catalogue takes about 0.2 s)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@cache
def builder_version() -> str:
    """What a snapshot's content depends on besides the catalogue file: the code that builds it
    (this module, text, contract, ORUK import, geocoding and its postcode table) and the
    library versions. A snapshot written by anything else is rebuilt, never trusted."""
    import pydantic
    import scipy
    import sklearn

    digest = hashlib.sha256(SNAPSHOT_FORMAT.encode())
    for version in (np.__version__, scipy.__version__, sklearn.__version__, pydantic.__version__):
        digest.update(f"\0{version}".encode())
    here = Path(__file__).parent
    for name in ("catalogue.py", "text.py", "contract.py", "oruk.py", "geo.py",
                 "data/postcodes.csv.gz"):  # fmt: skip
        try:
            digest.update(b"\0" + (here / name).read_bytes())
        except OSError:
            digest.update(f"\0{name}: unreadable".encode())
    return digest.hexdigest()


builder_version()  # now, at import: the code running, not what may be on disk later


def snapshot_folder(snapshot_dir: str | Path, source_sha256: str) -> Path:
    """Where the snapshot of a catalogue file with this SHA-256 lives."""
    return Path(snapshot_dir) / f"catalogue-{source_sha256}"


def write_snapshot(catalogue: Catalogue, snapshot_dir: str | Path, source_sha256: str) -> Path:
    """Write ``catalogue``'s parts as a snapshot for the file with ``source_sha256``: ``.npy``
    arrays (``allow_pickle=False``), ``meta.json`` and ``manifest.json`` with each part's
    SHA-256, into a temporary folder renamed into place at the end, so that no reader ever
    sees half a snapshot. An unusable snapshot already there is replaced."""
    snapshot_dir = Path(snapshot_dir)
    snapshot_dir.mkdir(parents=True, exist_ok=True)
    final = snapshot_folder(snapshot_dir, source_sha256)
    temp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=snapshot_dir))
    try:
        parts: dict[str, dict[str, Any]] = {}
        for name in _ARRAYS:
            target = temp / f"{name}.npy"
            with open(target, "wb") as f:
                np.save(f, np.ascontiguousarray(catalogue._arrays[name]), allow_pickle=False)
            parts[target.name] = _describe_part(target)
        report = catalogue.report.to_dict()
        report.pop("snapshot", None)
        meta = {**catalogue._meta, "report": report}
        (temp / _META).write_text(json.dumps(meta, ensure_ascii=False), "utf-8")
        parts[_META] = _describe_part(temp / _META)
        manifest = {
            "format": SNAPSHOT_FORMAT,
            "builder": builder_version(),
            "source_sha256": source_sha256,
            "activities": len(catalogue),
            "parts": parts,
        }
        (temp / _MANIFEST).write_text(json.dumps(manifest, indent=1), "utf-8")
        temp.chmod(0o755)  # as a folder made any other way (mkdtemp's is private)
        try:
            os.rename(temp, final)
        except OSError:
            # One is there already: replace it (it was found unusable, or is the same).
            stale = final.with_name(f".{final.name}.stale-{os.getpid()}")
            with contextlib.suppress(FileNotFoundError):
                os.rename(final, stale)
            os.rename(temp, final)
            shutil.rmtree(stale, ignore_errors=True)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return final


def _describe_part(path: Path) -> dict[str, Any]:
    return {"sha256": file_sha256(path), "bytes": path.stat().st_size}


def load_snapshot(folder: str | Path, source_sha256: str, source: str) -> Catalogue:
    """The catalogue in a snapshot folder, checked before use: the manifest must name this
    format, this builder and this source file; every part must have the size and SHA-256 the
    manifest gives. Arrays are mapped read-only (shared by every process that maps them) and
    read with numpy's format reader, refusing any dtype that would need a pickle.

    Raises :class:`SnapshotUnusable` saying why, for any problem at all."""
    folder = Path(folder)
    try:
        manifest = json.loads((folder / _MANIFEST).read_text("utf-8"))
    except FileNotFoundError:
        raise SnapshotUnusable("absent") from None
    except (OSError, ValueError) as exc:
        raise SnapshotUnusable(f"unreadable manifest ({exc.__class__.__name__})") from None
    try:
        if manifest.get("format") != SNAPSHOT_FORMAT:
            raise SnapshotUnusable("another snapshot format")
        if manifest.get("builder") != builder_version():
            raise SnapshotUnusable("written by another version of the matcher")
        if manifest.get("source_sha256") != source_sha256:
            raise SnapshotUnusable("written for another catalogue file")
        parts = manifest["parts"]
        expected = {f"{name}.npy" for name in _ARRAYS} | {_META}
        if not isinstance(parts, dict) or set(parts) != expected:
            raise SnapshotUnusable("the manifest does not list the expected parts")
        arrays = {name: _map_array(folder / f"{name}.npy", parts[f"{name}.npy"])
                  for name in _ARRAYS}  # fmt: skip
        meta = json.loads(_checked_bytes(folder / _META, parts[_META]).decode("utf-8"))
        report = LoadReport.from_dict(meta.pop("report"))
        report.source = source
        return Catalogue._from_parts(arrays, meta, report)
    except SnapshotUnusable:
        raise
    except Exception as exc:  # noqa: BLE001 - anything at all: the snapshot is not used
        raise SnapshotUnusable(f"inconsistent ({exc.__class__.__name__})") from None


def _checked_bytes(path: Path, part: dict[str, Any]) -> bytes:
    data = path.read_bytes()
    if len(data) != part["bytes"] or hashlib.sha256(data).hexdigest() != part["sha256"]:
        raise SnapshotUnusable(f"{path.name} fails its checksum")
    return data


def _map_array(path: Path, part: dict[str, Any]) -> np.ndarray:
    """One ``.npy`` part, mapped read-only after its SHA-256 is checked through the same
    mapping (so the bytes checked are the bytes used, and this process maps every page)."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size != part["bytes"]:
            raise SnapshotUnusable(f"{path.name} fails its checksum")
        if hasattr(mmap, "MAP_POPULATE"):  # Linux: every page mapped in one call
            flags = mmap.MAP_SHARED | mmap.MAP_POPULATE
            mapped = mmap.mmap(f.fileno(), 0, flags=flags, prot=mmap.PROT_READ)
        else:
            mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    view = memoryview(mapped)
    digest = hashlib.sha256()
    for start in range(0, size, _HASH_CHUNK):
        digest.update(view[start : start + _HASH_CHUNK])
    if digest.hexdigest() != part["sha256"]:
        raise SnapshotUnusable(f"{path.name} fails its checksum")
    header = _BytesReader(view)
    version = np.lib.format.read_magic(header)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(header)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(header)
    else:
        raise SnapshotUnusable(f"{path.name}: unexpected .npy version")
    if dtype.hasobject:  # would need unpickling: never
        raise SnapshotUnusable(f"{path.name} holds Python objects")
    return np.ndarray(shape, dtype=dtype, buffer=mapped, offset=header.tell(),
                      order="F" if fortran else "C")  # fmt: skip


class _BytesReader:
    """The file-like ``read`` numpy's header reader needs, over a memoryview."""

    def __init__(self, view: memoryview):
        self._view = view
        self._at = 0

    def read(self, size: int) -> bytes:
        data = self._view[self._at : self._at + size].tobytes()
        self._at += len(data)
        return data

    def tell(self) -> int:
        return self._at


@contextlib.contextmanager
def _build_lock(snapshot_dir: Path) -> Iterator[None]:
    """One process at a time builds a snapshot in ``snapshot_dir`` (workers starting together
    wait for the first to finish, then map its snapshot). Released if the process dies."""
    try:
        import fcntl
    except ImportError:  # not POSIX: the atomic rename still keeps snapshots whole
        yield
        return
    with open(snapshot_dir / _LOCK, "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _load_through_snapshot(cls: type[Catalogue], path: Path, snapshot_dir: Path) -> Catalogue:
    try:
        sha = file_sha256(path)
    except FileNotFoundError:
        raise CatalogueError(f"{path}: no such file") from None
    except OSError as exc:
        raise CatalogueError(f"{path}: cannot be read ({exc.__class__.__name__})") from None
    problem = None
    try:
        return _snapshot_of(path, snapshot_dir, sha)
    except SnapshotUnusable as exc:
        problem = None if str(exc) == "absent" else str(exc)
    with contextlib.ExitStack() as stack:
        try:
            snapshot_dir.mkdir(parents=True, exist_ok=True)
            stack.enter_context(_build_lock(snapshot_dir))
        except OSError as exc:
            return _unsaved(cls._from_file(path)[0], snapshot_dir, exc)
        try:  # another process may have written it while this one waited
            return _snapshot_of(path, snapshot_dir, sha)
        except SnapshotUnusable as exc:
            problem = None if str(exc) == "absent" else str(exc)
        catalogue = _build_snapshot(cls, path, snapshot_dir)
        if problem:  # said in this load's report only, not in the snapshot's
            catalogue.report.warnings.append(
                f"the catalogue snapshot in {snapshot_dir} was not used ({problem}); it was "
                "rebuilt from the file"
            )
        return catalogue


def _build_snapshot(cls: type[Catalogue], path: Path, snapshot_dir: Path) -> Catalogue:
    """Build the catalogue from the file, write its snapshot, and serve from the snapshot just
    written: the same mapped arrays every later start has, shared between processes.

    A large file is built in a separate Python process when that can be done: a build leaves
    its heap fragmented (about 450 MB more anonymous memory than a snapshot start, at 300,000
    activities), and a serving process may go on to fork workers or live for weeks."""
    big = False
    with contextlib.suppress(OSError):  # (if it is gone, the build here says so)
        big = path.stat().st_size >= _BUILD_APART_BYTES
    if big:
        written = _build_apart(path, snapshot_dir)
        if written is not None:
            folder, sha = written
            with contextlib.suppress(SnapshotUnusable):
                catalogue = load_snapshot(folder, sha, str(path))
                catalogue.report.snapshot = f"written {folder}"
                return catalogue
    built, sha = cls._from_file(path)
    try:
        folder = write_snapshot(built, snapshot_dir, sha)
        catalogue = load_snapshot(folder, sha, str(path))
        catalogue.report.snapshot = f"written {folder}"
    except (OSError, SnapshotUnusable) as exc:
        return _unsaved(built, snapshot_dir, exc)
    del built
    _give_back_freed_memory()
    return catalogue


# Files from this size up are built apart (below it a build takes seconds and leaves little).
_BUILD_APART_BYTES = 16 << 20


def _build_apart(path: Path, snapshot_dir: Path) -> tuple[Path, str] | None:
    """Build and write the snapshot of ``path`` in a new Python process (this interpreter,
    which finds this package as this process did, and nothing of its memory); ``(folder,
    sha256)``, or None when that could not be done (the caller then builds here). A catalogue
    error is raised as here. A plain child process, not multiprocessing's: that would leave a
    resource-tracker process behind for good."""
    if not sys.executable:
        return None
    code = f"import sys; from {__name__} import _prepare; sys.exit(_prepare(sys.argv[1:]))"
    try:
        done = subprocess.run(
            [sys.executable, "-c", code, str(path), str(snapshot_dir)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, check=False,
        )  # fmt: skip
        said = json.loads(done.stdout.decode("utf-8").strip().splitlines()[-1])
    except (OSError, ValueError, IndexError):
        return None
    if not isinstance(said, dict):
        return None
    if "catalogue_error" in said:
        raise CatalogueError(str(said["catalogue_error"]))
    if done.returncode != 0 or "folder" not in said:
        return None
    return Path(said["folder"]), str(said["sha256"])


def _prepare(argv: list[str]) -> int:
    """The separate process of :func:`_build_apart`: build, write, and say where, as JSON."""
    path, snapshot_dir = Path(argv[0]), Path(argv[1])
    try:
        built, sha = Catalogue._from_file(path)
        folder = write_snapshot(built, snapshot_dir, sha)
    except CatalogueError as exc:
        print(json.dumps({"catalogue_error": str(exc)}))
        return 0
    except OSError as exc:
        print(json.dumps({"error": exc.__class__.__name__}))
        return 1
    print(json.dumps({"folder": str(folder), "sha256": sha}))
    return 0


def _snapshot_of(path: Path, snapshot_dir: Path, sha: str) -> Catalogue:
    folder = snapshot_folder(snapshot_dir, sha)
    catalogue = load_snapshot(folder, sha, str(path))
    catalogue.report.snapshot = f"loaded {folder}"
    return catalogue


def _unsaved(catalogue: Catalogue, snapshot_dir: Path, exc: Exception) -> Catalogue:
    why = f"{exc.__class__.__name__}: {exc}" if isinstance(exc, SnapshotUnusable) else (
        exc.__class__.__name__)  # fmt: skip
    catalogue.report.snapshot = f"not written ({why})"
    catalogue.report.warnings.append(
        f"no catalogue snapshot could be written in {snapshot_dir} ({why}); the next start "
        "will load the file again"
    )
    return catalogue
