"""A loaded catalogue: validated activities plus the arrays, spatial index and text index that
ranking reads, all built once at load."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.neighbors import BallTree

from . import geo, oruk
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
from .text import NEED_LEXICON, analyse, clean_html, need_hits

GENDER_CODES = {"female": 1, "male": 2}
FORMAT_CODES = {"group": 1, "one_to_one": 2}
REFERRAL_CODES = {"self": 1, "professional": 2}
_ACTIVITY_FIELDS = set(Activity.model_fields)
# Inferred needs count for less than listed ones; the strongest inference stays below 1.
_MAX_INFERRED = 0.9
_MAX_INFERRED_NEEDS = 3


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

    def summary(self) -> str:
        return (
            f"{self.source}: {self.records} records, {self.loaded} loaded, "
            f"{len(self.skipped)} skipped, {self.without_location} without location, "
            f"{self.online} online, {self.inactive} inactive, "
            f"needs inferred for {self.needs_inferred}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
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


def read_records(path: str | Path) -> tuple[list[Any], str, list[tuple[str, str]]]:
    """Read a catalogue file into raw records: native JSON, JSON Lines, or an Open Referral UK
    feed (converted). Returns ``(records, kind, skipped)``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise CatalogueError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogueError(f"{path}: cannot be read ({exc.__class__.__name__})") from None
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
    activities: list[Activity] = []
    seen: set[str] = set()
    unknown: Counter[str] = Counter()
    for number, record in enumerate(records, start=1):
        if record is None:
            continue  # already reported by the reader
        report.records += 1
        label = f"{where} {number}"
        if isinstance(record, dict) and isinstance(record.get("id"), str):
            label += f" (id {record['id']})"
            unknown.update(k for k in record if k not in _ACTIVITY_FIELDS)
        try:
            activity = parse_activity(record, prefix="")
        except InvalidActivity as exc:
            report.skipped.append((label, str(exc)))
            continue
        if activity.id in seen:
            report.skipped.append((label, "duplicate id"))
            continue
        seen.add(activity.id)
        activities.append(activity)
    for name, count in sorted(unknown.items()):
        report.warnings.append(f"field {name!r} is not in the contract; ignored in {count} records")
    return activities


class Catalogue:
    """Activities with everything ranking needs, indexed once.

    Arrays are aligned with ``activities``: position ``i`` everywhere is the same activity.
    """

    def __init__(self, activities: Sequence[Activity], report: LoadReport | None = None):
        if not activities:
            raise CatalogueError("the catalogue has no valid activities")
        self.report = report or LoadReport(source="records", records=len(activities))
        self.activities: tuple[Activity, ...] = tuple(
            a.model_copy(update={"description": clean_html(a.description)}) if a.description
            else a
            for a in activities
        )  # fmt: skip
        self.ids: list[str] = [a.id for a in self.activities]
        self.position: dict[str, int] = {a_id: i for i, a_id in enumerate(self.ids)}
        if len(self.position) != len(self.ids):
            raise CatalogueError("activity ids must be unique")
        self._build_arrays()
        self._build_text_index()
        self._infer_needs()
        self._build_spatial_index()
        self.report.loaded = len(self.activities)
        self.report.without_location = int((~self.located & ~self.online).sum())
        self.report.online = int(self.online.sum())
        self.report.inactive = int((~self.active).sum())
        self.report.needs_inferred = int(self.needs_were_inferred.sum())

    # --- construction ---------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | Path) -> Catalogue:
        """Load a catalogue file (any supported form); bad records are reported and skipped."""
        records, kind, skipped = read_records(path)
        # Records the reader already turned away (malformed lines, unusable feed services)
        # count as read; validation counts the rest.
        report = LoadReport(source=str(path), kind=kind, skipped=list(skipped))
        report.records = len(skipped)
        where = "line" if kind == "jsonl" else "record"
        activities = validate_records(records, report, where=where)
        if not activities:
            reasons = "; ".join(f"{w}: {r}" for w, r in report.skipped[:3])
            raise CatalogueError(
                f"{path}: no valid activities" + (f" ({reasons})" if reasons else "")
            )
        return cls(activities, report)

    @classmethod
    def from_records(cls, records: Iterable[Any], source: str = "records") -> Catalogue:
        report = LoadReport(source=source)
        return cls(validate_records(records, report), report)

    def _build_arrays(self) -> None:
        acts = self.activities
        n = len(acts)
        self.lat = np.full(n, np.nan)
        self.lon = np.full(n, np.nan)
        self.location_precision = np.zeros(
            n, dtype=np.int8
        )  # 0 none, 1 district, 2 sector, 3 point
        unknown_postcodes = 0
        for i, a in enumerate(acts):
            loc = a.location
            if loc is None:
                continue
            if loc.lat is not None and loc.lon is not None:
                self.lat[i], self.lon[i], self.location_precision[i] = loc.lat, loc.lon, 3
            elif loc.postcode:
                try:
                    lat, lon, precision = geo.lookup(loc.postcode)
                except UnknownPostcode:
                    unknown_postcodes += 1
                    continue
                self.lat[i], self.lon[i] = lat, lon
                self.location_precision[i] = 2 if precision == "sector" else 1
        if unknown_postcodes:
            self.report.warnings.append(
                f"{unknown_postcodes} activities have a postcode that is not in the postcode "
                "table; their location is treated as unknown"
            )
        self.located = ~np.isnan(self.lat)
        self.online = np.array([a.online for a in acts], dtype=bool)
        self.active = np.array([a.status == "active" for a in acts], dtype=bool)
        self.min_age = np.array([np.nan if a.min_age is None else a.min_age for a in acts])
        self.max_age = np.array([np.nan if a.max_age is None else a.max_age for a in acts])
        self.gender = np.array([GENDER_CODES.get(a.gender or "", 0) for a in acts], dtype=np.int8)
        self.format = np.array([FORMAT_CODES.get(a.format or "", 0) for a in acts], dtype=np.int8)
        self.referral = np.array(
            [REFERRAL_CODES.get(a.referral or "", 0) for a in acts], dtype=np.int8
        )
        self.cost = np.array([np.nan if a.cost is None else a.cost for a in acts])
        self.capacity = np.array([np.nan if a.capacity is None else a.capacity for a in acts])
        bit = {f: 1 << k for k, f in enumerate(ACCESSIBILITY)}
        self.access = np.array([sum(bit[f] for f in a.accessibility) for a in acts], dtype=np.int64)
        self.n_access = np.array([len(a.accessibility) for a in acts], dtype=np.float64)
        slot = {p: k for k, p in enumerate(DAY_PARTS)}
        self.slots = np.zeros((n, len(DAY_PARTS)), dtype=bool)
        self.n_sessions = np.zeros(n)
        self.evening_share = np.zeros(n)
        for i, a in enumerate(acts):
            for s in a.sessions:
                self.slots[i, slot[f"{s.day}_{day_part(s.start)}"]] = True
            self.n_sessions[i] = len(a.sessions)
            if a.sessions:
                self.evening_share[i] = np.mean([day_part(s.start) == "eve" for s in a.sessions])
        self.language_bit: dict[str, int] = {}
        for a in acts:
            for code in a.languages:
                if code not in self.language_bit and len(self.language_bit) < 62:
                    self.language_bit[code] = 1 << len(self.language_bit)
        self.languages = np.array(
            [sum(self.language_bit.get(c, 0) for c in a.languages) for a in acts], dtype=np.int64
        )
        self.needs_listed = np.zeros((n, len(NEEDS)), dtype=np.float64)
        need_col = {c: k for k, c in enumerate(NEEDS)}
        for i, a in enumerate(acts):
            for code in a.needs:
                self.needs_listed[i, need_col[code]] = 1.0

    def _build_text_index(self) -> None:
        texts = [self.text_of(a) for a in self.activities]
        self.vectorizer = TfidfVectorizer(
            analyzer=analyse, sublinear_tf=True, dtype=np.float64, norm="l2"
        )
        matrix = self.vectorizer.fit_transform(texts)
        self.text_matrix = matrix.tocsr()
        self.text_columns = matrix.tocsc()
        vocabulary = self.vectorizer.vocabulary_
        self.concept_names = sorted(t[2:] for t in vocabulary if t.startswith("c:"))
        columns = [vocabulary[f"c:{c}"] for c in self.concept_names]
        self.concepts = (
            (self.text_columns[:, columns] > 0).toarray()
            if columns
            else np.zeros((len(texts), 0), dtype=bool)
        )

    @staticmethod
    def text_of(activity: Activity) -> str:
        """The words an activity is matched on: name (twice), tags, organisation, description."""
        parts = [activity.name, activity.name, " ; ".join(activity.tags)]
        parts += [activity.organisation or "", clean_html(activity.description)]
        return " \n ".join(parts)

    def _infer_needs(self) -> None:
        """Fill needs for activities that list none: a lexicon of need phrases (name and tags
        count double), falling back to TF-IDF similarity with the need descriptions."""
        n = len(self.activities)
        self.needs_inferred = np.zeros((n, len(NEEDS)))
        self.needs_were_inferred = np.zeros(n, dtype=bool)
        todo = [i for i in range(n) if not self.activities[i].needs]
        if not todo:
            return
        need_docs = [
            f"{text} " + " ".join(NEED_LEXICON[code]) for code, text in NEED_DESCRIPTIONS.items()
        ]
        need_vectors = self.vectorizer.transform(need_docs)
        similarity = (self.text_matrix[todo] @ need_vectors.T).toarray()
        for row, i in enumerate(todo):
            a = self.activities[i]
            strong = need_hits(" ; ".join([a.name, *a.tags]))
            weak = need_hits(clean_html(a.description) + " " + (a.organisation or ""))
            score = np.array([2 * strong.get(c, 0) + weak.get(c, 0) for c in NEEDS], dtype=float)
            strength = np.where(score >= 2, np.minimum(_MAX_INFERRED, 0.4 + 0.1 * score), 0.0)
            if not strength.any():
                best = int(np.argmax(similarity[row]))
                if similarity[row, best] >= 0.08:
                    strength[best] = 0.3
            if strength.any():
                keep = np.argsort(-strength, kind="stable")[:_MAX_INFERRED_NEEDS]
                self.needs_inferred[i, keep] = strength[keep]
                self.needs_were_inferred[i] = True

    def _build_spatial_index(self) -> None:
        self.located_positions = np.flatnonzero(self.located)
        points = np.radians(np.column_stack([self.lat, self.lon])[self.located_positions])
        self.tree = BallTree(points, metric="haversine") if len(points) else None
        # Always candidates, wherever the person is: online, and location unknown.
        self.always_candidates = np.flatnonzero(self.online | ~self.located)

    # --- reading ----------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.activities)

    def __iter__(self):
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
        if self.activities[i].needs:
            return list(self.activities[i].needs), False
        row = self.needs_inferred[i]
        inferred = [NEEDS[k] for k in np.argsort(-row, kind="stable") if row[k] > 0]
        return inferred, bool(self.needs_were_inferred[i])

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
            order = np.arange(len(self.activities))
        return order[keep[order]], distance

    def candidates(self, lat: float | None, lon: float | None, radius_km: float) -> np.ndarray:
        """Positions worth scoring for a person at (lat, lon): located activities within
        ``radius_km`` (from the spatial index) plus online and location-unknown ones. Sorted."""
        if lat is None or lon is None or self.tree is None:
            return np.arange(len(self.activities)) if lat is None else self.always_candidates
        near = self.tree.query_radius(np.radians([[lat, lon]]), r=radius_km / geo.EARTH_RADIUS_KM)[
            0
        ]
        found = np.zeros(len(self.activities), dtype=bool)
        found[self.located_positions[near]] = True
        found[self.always_candidates] = True
        return np.flatnonzero(found)
