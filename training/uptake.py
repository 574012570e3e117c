"""Reading uptake records (contract §4, JSON Lines or CSV) for training: every bad line reported
by number and reason, duplicates found, and data too thin to learn from refused.

The file is read as a stream. What is kept per usable line is a few numbers (date, activity,
outcome, referral, line); the validated records themselves are kept only when asked for
(``keep_records``), and a feature builder given as ``features`` turns each chunk of lines
into rows of one preallocated float32 matrix while its profiles are still at hand, so a
million lines never live as a million pydantic objects."""

from __future__ import annotations

import csv
import gc
import gzip
import hashlib
import io
import re
import sys
from array import array
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pydantic_core
from pydantic import ValidationError

from matcher.catalogue import Catalogue
from matcher.contract import Profile, UptakeRecord, problems_from
from matcher.errors import InvalidProfile, InvalidUptake
from matcher.features import locate

__all__ = [
    "MIN_REFERRALS",
    "MIN_ROWS",
    "BadLine",
    "UptakeData",
    "UptakeReport",
    "RowBuilder",
    "check_trainable",
    "load_uptake",
]

MIN_ROWS = 200
MIN_REFERRALS = 50
# Lines validated between two calls of the feature builder: its float64 block (about 16 MB)
# and the chunk's profiles are all that a chunk holds at once.
CHUNK_ROWS = 50_000
# How many bad lines a refusal message quotes; the report keeps them all.
QUOTED = 10
CSV_REQUIRED = ("referral_id", "date", "profile", "activity_id", "attended")
# Contract v1.1 (§7) adds declined, case and the ONS4 objects (as JSON in their cells).
CSV_OPTIONAL = ("sessions_attended", "shown", "declined", "case", "wellbeing_before",
                "wellbeing_after")  # fmt: skip
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_ONE_LINE = re.compile(r"at line 1 column ([0-9]+)")
ATTENDED_WORDS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}

# Reasons a line is rejected, in the order the summary lists them.
MALFORMED = "malformed JSON"
MALFORMED_CSV = "malformed CSV row"
MISSING = "missing field"
BAD_DATE = "bad date"
BAD_PROFILE = "invalid profile"
UNKNOWN_POSTCODE = "unknown postcode"
BAD_FIELD = "invalid field"
UNKNOWN_ACTIVITY = "unknown activity"
NOT_TEXT = "not UTF-8 text"
REASONS = (MALFORMED, MALFORMED_CSV, NOT_TEXT, MISSING, BAD_DATE, BAD_PROFILE, UNKNOWN_POSTCODE,
           BAD_FIELD, UNKNOWN_ACTIVITY)  # fmt: skip


@dataclass(frozen=True)
class BadLine:
    """One line that was not used: where, the kind of fault, and the fault by field path."""

    line: int
    kind: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass
class UptakeReport:
    """What happened when an uptake file was read: nothing is dropped without a line here."""

    source: str
    format: str
    rows: int = 0
    kept: int = 0
    rejected: list[BadLine] = field(default_factory=list)
    duplicates: list[tuple[int, int]] = field(default_factory=list)  # (line, first seen on)
    conflicting: int = 0  # duplicates whose outcome differs from the line kept
    # Catalogue ids, not personal data: named in the summary to help mend the catalogue.
    unknown_activities: Counter[str] = field(default_factory=Counter)
    referrals: int = 0
    people: int = 0
    attended_rate: float = float("nan")
    first_date: str | None = None
    last_date: str | None = None
    sha256: str = ""

    def by_reason(self) -> dict[str, int]:
        counts = Counter(bad.kind for bad in self.rejected)
        return {kind: counts[kind] for kind in REASONS if counts[kind]}

    def summary(self) -> str:
        reasons = ", ".join(f"{kind} {n:,}" for kind, n in self.by_reason().items())
        rate = "n/a" if np.isnan(self.attended_rate) else f"{self.attended_rate:.1%}"
        dates = f"{self.first_date} to {self.last_date}" if self.first_date else "none"
        return (
            f"{self.source} ({self.format}): {self.rows:,} rows read, {self.kept:,} kept, "
            f"{len(self.rejected):,} rejected"
            + (f" ({reasons})" if reasons else "")
            + f", {len(self.duplicates):,} duplicates (first kept"
            + (f"; {self.conflicting:,} with another outcome" if self.conflicting else "")
            + "); "
            f"{self.referrals:,} referrals, {self.people:,} people; attended {rate}; "
            f"dates {dates}" + self._unknown_ids()
        )

    def _unknown_ids(self) -> str:
        if not self.unknown_activities:
            return ""
        common = self.unknown_activities.most_common(5)
        shown = ", ".join(f"{activity_id[:40]} ×{n:,}" for activity_id, n in common)
        more = len(self.unknown_activities) - len(common)
        shown += f" and {more:,} more" if more else ""
        return f"; activity ids not in the catalogue: {shown}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "format": self.format,
            "sha256": self.sha256,
            "rows": self.rows,
            "kept": self.kept,
            "rejected": len(self.rejected),
            "rejected_by_reason": self.by_reason(),
            "duplicates": len(self.duplicates),
            "conflicting_duplicates": self.conflicting,
            "referrals": self.referrals,
            "people": self.people,
            "attended_rate": None if np.isnan(self.attended_rate) else self.attended_rate,
            "first_date": self.first_date,
            "last_date": self.last_date,
        }


# Builds feature rows for one chunk: (the chunk's distinct profiles, each row's index into
# them, each row's catalogue position) -> an (n, F) matrix (training.fit.feature_matrix).
RowBuilder = Callable[[list[Profile], np.ndarray, np.ndarray], np.ndarray]


@dataclass
class UptakeData:
    """Validated uptake as arrays aligned row by row, one row per usable, first-seen line.

    ``activity[k]`` is the activity's position in the catalogue the data was checked against;
    ``referral[k]`` the rank of the row's ``referral_id`` among the distinct ids in sorted
    order (whole referrals share it); ``line[k]`` is where the row was in the file.
    ``features`` is the float32 feature matrix when a builder was given to :func:`load_uptake`.

    With ``keep_records`` (the default), ``records[k]`` is the validated record and
    ``profiles[profile_index[k]] is records[k].profile``, each distinct profile stored once.
    Without, ``records`` and ``profile_index`` are None, ``profiles`` is empty, and
    :meth:`records_in` reads the records of chosen rows from the file again.
    """

    records: list[UptakeRecord] | None
    dates: np.ndarray  # datetime64[D]
    activity: np.ndarray  # intp, catalogue positions
    outcome: np.ndarray  # int8, 1 attended
    profile_index: np.ndarray | None  # intp, into profiles
    profiles: list[Profile]
    line: np.ndarray  # int64
    report: UptakeReport
    referral: np.ndarray = field(default_factory=lambda: np.zeros(0, np.intp))
    features: np.ndarray | None = None
    catalogue: Catalogue | None = None
    _stamp: tuple[int, int] | None = None  # size and mtime when read, to re-read it safely

    def __len__(self) -> int:
        return len(self.outcome)

    @property
    def bad_lines(self) -> list[BadLine]:
        return self.report.rejected

    def records_in(
        self, rows: np.ndarray, *, max_referrals: int | None = None, seed: int = 0
    ) -> list[UptakeRecord]:
        """The validated records of the chosen rows (a boolean mask), in file order.

        With ``max_referrals``, at most that many whole referrals, drawn at random (``seed``)
        from those the rows belong to: an evaluation sample whose size does not grow with the
        file. Without kept records the file is read again; a file changed since it was loaded
        is refused rather than misread.
        """
        rows = np.asarray(rows, dtype=bool)
        if max_referrals is not None:
            chosen = np.unique(self.referral[rows])
            if len(chosen) > max_referrals:
                rng = np.random.default_rng(seed)
                chosen = np.sort(rng.choice(chosen, size=max_referrals, replace=False))
                rows = rows & np.isin(self.referral, chosen)
        if self.records is not None:
            return [self.records[k] for k in np.flatnonzero(rows)]
        return self._read_again(set(self.line[rows].tolist()))

    def _read_again(self, wanted: set[int]) -> list[UptakeRecord]:
        path = Path(self.report.source)
        where = self.report.source
        if self.catalogue is None or self._stamp is None:
            raise InvalidUptake("the records were not kept and the file is not known", where=where)
        try:
            info = path.stat()
        except OSError:
            info = None
        if info is None or (info.st_size, info.st_mtime_ns) != self._stamp:
            raise InvalidUptake("the file changed after it was loaded; load it again", where=where)
        out: list[UptakeRecord] = []
        profiles = _Profiles()
        with _open_text(path) as f:
            rows = _csv_rows(f, where) if self.report.format == "csv" else _jsonl_rows(f, wanted)
            for number, row, raw_profile in rows:
                if number not in wanted:
                    continue
                checked = None if isinstance(row, BadLine) else _record(row, number, profiles,
                                                                         raw_profile)  # fmt: skip
                if checked is None or isinstance(checked, BadLine):
                    raise InvalidUptake(f"line {number} no longer validates; load the file again",
                                        where=where)  # fmt: skip
                out.append(checked[0])
        return out


# --- reading lines --------------------------------------------------------------------------


def _open_text(path: Path) -> TextIO:
    raw = gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")  # noqa: SIM115
    # Bad bytes become U+FFFD here and are reported per line below, not fatal for the file.
    return io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline="")


def _detect_format(path: Path, first: str) -> str:
    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    suffix = Path(name).suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    return "jsonl" if first.lstrip().startswith("{") else "csv"


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _from_json(text: str) -> Any:
    """Parse JSON (NaN and Infinity refused). pydantic's parser is twice as fast as the standard
    library's, and its messages give a position, never the text."""
    try:
        return pydantic_core.from_json(text, allow_inf_nan=False)
    except ValueError as exc:
        # One line of a file is parsed at a time: "line 1" would mislead.
        raise ValueError(_ONE_LINE.sub(r"at column \1", str(exc))) from None


def _jsonl_rows(
    f: TextIO, only: set[int] | None = None
) -> Iterator[tuple[int, dict | BadLine, str | None]]:
    for number, line in enumerate(f, start=1):
        if not line.strip() or (only is not None and number not in only):
            continue
        if "\ufffd" in line:
            yield number, BadLine(number, NOT_TEXT, "not valid UTF-8 text"), None
            continue
        try:
            data = _from_json(line.rstrip("\r\n"))
        except ValueError as exc:
            yield number, BadLine(number, MALFORMED, f"malformed JSON ({exc})"), None
            continue
        if not isinstance(data, dict):
            yield number, BadLine(number, MALFORMED, "expected a JSON object"), None
            continue
        yield number, data, None


def _csv_rows(f: TextIO, source: str) -> Iterator[tuple[int, dict | BadLine, str | None]]:
    reader = csv.reader(f, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        raise InvalidUptake(f"{source} line 1: malformed CSV header ({exc})") from None
    columns = [c.strip() for c in header]
    missing = [c for c in CSV_REQUIRED if c not in columns]
    unknown = [c for c in columns if c not in CSV_REQUIRED + CSV_OPTIONAL]
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    problems = [(c, "is a required column") for c in missing]
    problems += [(c, "is not a contract column (unknown columns are refused)") for c in unknown]
    problems += [(c, "appears more than once") for c in repeated]
    if problems:
        raise InvalidUptake(problems, where=f"{source} line 1 (header)")
    width = len(columns)
    end = reader.line_num
    while True:
        start = end + 1  # a quoted field may span lines: report where the row begins
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            end = reader.line_num
            yield start, BadLine(start, MALFORMED_CSV, f"malformed CSV ({exc})"), None
            continue
        end = reader.line_num
        if not values or (len(values) == 1 and not values[0].strip()):
            continue
        if any("\ufffd" in v for v in values):
            yield start, BadLine(start, NOT_TEXT, "not valid UTF-8 text"), None
            continue
        if len(values) != width:
            reason = f"expected {width} columns, found {len(values)}"
            yield start, BadLine(start, MALFORMED_CSV, reason), None
            continue
        row = dict(zip(columns, values, strict=True))
        record = _csv_record(row, start)
        yield start, record, None if isinstance(record, BadLine) else record.get("profile")


def _csv_record(row: dict[str, str], number: int) -> dict | BadLine:
    """A CSV row in the JSON form: shown parsed from JSON, attended as a bool, empty optional
    cells absent, the profile still as text. Values the contract checks are left to it."""
    data: dict[str, Any] = {
        "referral_id": row["referral_id"],
        "date": row["date"].strip(),
        "activity_id": row["activity_id"],
    }
    problems: list[tuple[str, str]] = []
    attended = ATTENDED_WORDS.get(row["attended"].strip().lower())
    if attended is None:
        problems.append(("attended", "expected true or false (true/false/1/0/yes/no)"))
    data["attended"] = attended
    if row["profile"].strip():
        data["profile"] = row["profile"].strip()  # parsed once per distinct text, by _Profiles
    else:
        problems.append(("profile", "is required"))
    for column in ("shown", "wellbeing_before", "wellbeing_after"):
        cell = row.get(column, "").strip()
        if cell:
            try:
                data[column] = _from_json(cell)
            except ValueError as exc:
                return BadLine(number, MALFORMED, f"{column}: malformed JSON ({exc})")
    declined = row.get("declined", "").strip()
    if declined:
        data["declined"] = ATTENDED_WORDS.get(declined.lower())
        if data["declined"] is None:
            problems.append(("declined", "expected true or false (true/false/1/0/yes/no)"))
    case = row.get("case", "").strip()
    if case:
        data["case"] = case
    sessions = row.get("sessions_attended", "").strip()
    if sessions:
        data["sessions_attended"] = sessions
    if problems:
        return BadLine(number, _kind(problems), _join(problems))
    return data


def _join(problems: list[tuple[str, str]]) -> str:
    return "; ".join(f"{path}: {expected}" if path else expected for path, expected in problems)


def _kind(problems: list[tuple[str, str]]) -> str:
    if any(expected == "is required" for _, expected in problems):
        return MISSING
    if any(path == "date" for path, _ in problems):
        return BAD_DATE
    if any(path == "profile" or path.startswith("profile.") for path, _ in problems):
        return BAD_PROFILE
    return BAD_FIELD


# --- validating records ---------------------------------------------------------------------

_PLACEHOLDER_PROFILE = Profile()
_PLACEHOLDER_DATE = "2000-01-01"


class _Profiles:
    """Validated, geocoded profiles by their source text, so a person referred to several
    activities (one line each) is validated and geocoded once, and stored once."""

    def __init__(self) -> None:
        self.checked: dict[str, tuple[Profile, int] | BadLine] = {}
        self.distinct: list[Profile] = []
        # Who each distinct profile belongs to, as a hash of the id (or of the text when there is
        # none): only ever counted, and 8 bytes a line where the text would be hundreds.
        self.person: list[int] = []

    def get(self, key: str, data: Any, number: int, text: bool) -> tuple[Profile, int] | BadLine:
        """The profile on line ``number`` (``data``, decoded or, with ``text``, JSON text) and
        its index in ``distinct``, or the fault that makes it unusable."""
        found = self.checked.get(key)
        if found is None:
            if text:
                try:
                    data = _from_json(data)
                except ValueError as exc:
                    found = BadLine(number, MALFORMED, f"profile: malformed JSON ({exc})")
            if found is None:
                found = self._validate(data, number)
            if not isinstance(found, BadLine):
                profile = found
                found = (profile, len(self.distinct))
                self.distinct.append(profile)
                self.person.append(hash(f"id:{profile.id}" if profile.id is not None else key))
            self.checked[key] = found
        elif isinstance(found, BadLine) and found.line != number:
            found = BadLine(number, found.kind, found.reason)
        return found

    @staticmethod
    def _validate(data: Any, number: int) -> Profile | BadLine:
        if not isinstance(data, dict):
            return BadLine(number, BAD_PROFILE, "profile: expected a JSON object")
        try:
            profile = Profile.model_validate(data)
        except ValidationError as exc:
            return BadLine(number, BAD_PROFILE, _join(problems_from(exc, "profile")))
        try:
            locate(profile)
        except InvalidProfile as exc:
            return BadLine(number, UNKNOWN_POSTCODE, str(exc))
        return profile


def _record(
    data: dict[str, Any], number: int, profiles: _Profiles, raw_profile: str | None
) -> tuple[UptakeRecord, int] | BadLine:
    """Validate one record; on failure, one :class:`BadLine` naming every fault on the line."""
    problems: list[tuple[str, str]] = []
    faults: list[BadLine] = []
    index = -1
    data = dict(data)
    date = data.get("date")
    if "date" in data and not (isinstance(date, str) and _DATE.fullmatch(date)):
        # The contract's type would also take a timestamp or a datetime: never guess.
        problems.append(("date", "expected a date as YYYY-MM-DD"))
        data["date"] = _PLACEHOLDER_DATE
    if "profile" in data:
        # JSON decoding keeps key order and tells 1, 1.0 and true apart, so the repr of the
        # decoded profile stands for its text when the text itself is not at hand.
        text = raw_profile is not None
        key = raw_profile if text else repr(data["profile"])
        found = profiles.get(key, data["profile"], number, text)
        if isinstance(found, BadLine):
            faults.append(found)
            data["profile"] = _PLACEHOLDER_PROFILE  # still check the other fields
        else:
            data["profile"], index = found  # an instance: pydantic does not validate it again
    for name in ("referral_id", "activity_id"):
        value = data.get(name)
        if isinstance(value, str) and value and not value.strip():
            problems.append((name, "expected a non-empty string"))
    try:
        record = UptakeRecord.model_validate(data)
    except ValidationError as exc:
        problems += problems_from(exc)
        record = None
    if record is not None and not problems and not faults:
        return record, index
    kind = _kind(problems) if problems else faults[0].kind
    if faults and kind == BAD_FIELD:
        kind = faults[0].kind
    reason = "; ".join([f.reason for f in faults] + ([_join(problems)] if problems else []))
    return BadLine(number, kind, reason)


def load_uptake(
    path: str | Path,
    catalogue: Catalogue,
    *,
    strict: bool = False,
    for_training: bool = True,
    min_rows: int = MIN_ROWS,
    min_referrals: int = MIN_REFERRALS,
    log: TextIO | None = sys.stderr,
    keep_records: bool = True,
    features: RowBuilder | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> UptakeData:
    """Read and validate an uptake file (JSON Lines or CSV, optionally gzipped) against a
    catalogue.

    Every line that cannot be used is reported with its number and reason, by field path and
    never by value (profiles hold health data). A repeated ``(referral_id, activity_id)``
    keeps its first line. With ``strict``, any bad or duplicate line fails the load. With
    ``for_training``, data too small or with a single outcome is refused
    (:func:`check_trainable`). The summary is written to ``log``.

    The file is read as a stream, ``chunk_rows`` usable lines at a time. Without
    ``keep_records`` only compact arrays outlive a chunk (see :class:`UptakeData`); with a
    ``features`` builder, each chunk's rows are built while its profiles are at hand and
    written into one preallocated float32 matrix, ``UptakeData.features``.

    Raises
    ------
    InvalidUptake
        If the file cannot be read, its CSV header is wrong, no line is usable, ``strict`` is
        set and a line is bad, or the data cannot be trained on.
    """
    path = Path(path)
    source = str(path)
    try:
        f = _open_text(path)
        first = f.readline()
        f.seek(0)
        info = path.stat()
    except FileNotFoundError:
        raise InvalidUptake(f"{source}: no such file") from None
    except (OSError, EOFError) as exc:
        raise InvalidUptake(f"{source}: cannot be read ({exc.__class__.__name__})") from None

    kind = _detect_format(path, first)
    report = UptakeReport(source=source, format=kind)
    position = catalogue.position
    rows_kept = _Rows(keep_records)
    matrix = _Matrix(features, _count_lines(path) if features is not None else 0)
    reasons: dict[str, str] = {}  # one string per distinct reason: a million bad lines stay small
    profiles = _Profiles()
    chunk_start = 0

    def reject(bad: BadLine) -> None:
        reason = reasons.setdefault(bad.reason, bad.reason)
        report.rejected.append(BadLine(bad.line, bad.kind, reason))

    def end_chunk() -> _Profiles:
        nonlocal chunk_start
        matrix.add(profiles.distinct, rows_kept.profile_index[chunk_start:],
                   rows_kept.activity[chunk_start:])  # fmt: skip
        chunk_start = len(rows_kept)
        # Profiles of later chunks are validated afresh (a person whose lines straddle the
        # cut is validated twice): the price of not holding every profile of the file.
        return profiles if keep_records else _Profiles()

    collecting = gc.isenabled()
    # Nothing read here forms a reference cycle, and the collector's repeated passes over a
    # growing million records would take as long as the reading itself.
    gc.disable()
    try:
        with f:
            rows = _csv_rows(f, source) if kind == "csv" else _jsonl_rows(f)
            for number, row, raw_profile in rows:
                report.rows += 1
                if isinstance(row, BadLine):
                    reject(row)
                    continue
                checked = _record(row, number, profiles, raw_profile)
                if isinstance(checked, BadLine):
                    reject(checked)
                    continue
                record, index = checked
                at = position.get(record.activity_id)
                if at is None:
                    report.unknown_activities[record.activity_id] += 1
                    reject(BadLine(number, UNKNOWN_ACTIVITY,
                                   "activity_id: not an activity in the catalogue"))  # fmt: skip
                    continue
                rows_kept.add(record, number, at, index, profiles.person[index])
                if len(rows_kept) - chunk_start >= chunk_rows:
                    profiles = end_chunk()
            end_chunk()
    except OSError as exc:  # e.g. a truncated gzip stream
        raise InvalidUptake(f"{source}: cannot be read ({exc.__class__.__name__})") from None
    finally:
        if collecting:
            gc.enable()

    report.sha256 = _file_sha256(path)
    data = rows_kept.assemble(report, profiles.distinct if keep_records else [], matrix)
    data.catalogue = catalogue
    data._stamp = (info.st_size, info.st_mtime_ns)
    if log is not None:
        print(report.summary(), file=log)
    if strict and (report.rejected or report.duplicates):
        raise InvalidUptake(_strict_message(report), where=source)
    if not len(data):
        detail = "; ".join(str(b) for b in report.rejected[:3])
        raise InvalidUptake(
            "no usable uptake records" + (f" ({detail})" if detail else ""), where=source
        )
    if for_training:
        check_trainable(data, min_rows=min_rows, min_referrals=min_referrals)
    return data


def _count_lines(path: Path) -> int:
    """Lines in the file (newlines, plus a last line without one): at least its rows, so the
    feature matrix can be allocated once before reading."""
    opener = gzip.open if path.suffix == ".gz" else open
    count = 0
    last = b"\n"
    with opener(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            count += block.count(b"\n")
            last = block[-1:]
    return count + (last != b"\n")


class _Rows:
    """What is kept of each usable line: compact typed arrays, plus the records and profile
    indexes only when they are asked for."""

    def __init__(self, keep_records: bool):
        self.records: list[UptakeRecord] | None = [] if keep_records else None
        self.days = array("i")  # days since 1970-01-01
        self.activity = array("q")
        self.outcome = array("b")
        self.line = array("q")
        self.referral = array("q")  # first-seen code of the referral_id
        self.person = array("q")  # hash of who the profile belongs to
        self.profile_index = array("q")  # into the profiles of the chunk (or file, when kept)
        self.referral_code: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.outcome)

    def add(self, record: UptakeRecord, number: int, at: int, index: int, person: int) -> None:
        if self.records is not None:
            self.records.append(record)
        self.days.append(record.date.toordinal() - _EPOCH)
        self.activity.append(at)
        self.outcome.append(record.attended)
        self.line.append(number)
        self.referral.append(self.referral_code.setdefault(record.referral_id,
                                                           len(self.referral_code)))  # fmt: skip
        self.person.append(person)
        self.profile_index.append(index)

    def assemble(self, report: UptakeReport, profiles: list[Profile], matrix: _Matrix
                 ) -> UptakeData:  # fmt: skip
        activity = np.frombuffer(self.activity, dtype=np.int64).astype(np.intp)
        outcome = np.frombuffer(self.outcome, dtype=np.int8).copy()
        line = np.frombuffer(self.line, dtype=np.int64).copy()
        first = np.frombuffer(self.referral, dtype=np.int64)
        # Referral codes become ranks among the ids in sorted order, as np.unique numbers them.
        rank = np.empty(len(self.referral_code), dtype=np.intp)
        for r, rid in enumerate(sorted(self.referral_code)):
            rank[self.referral_code[rid]] = r
        referral = rank[first]
        self.referral_code = {}
        keep = _first_of_each_pair(referral, activity, len(rank), outcome, line, report)
        dates = (np.frombuffer(self.days, dtype=np.int32)[keep]).astype("datetime64[D]")
        records = None
        if self.records is not None:
            records = [r for r, k in zip(self.records, keep.tolist(), strict=True) if k]
        profile_index = np.frombuffer(self.profile_index, dtype=np.int64).astype(np.intp)[keep]
        kept = int(keep.sum())
        report.kept = kept
        report.referrals = int(np.unique(referral[keep]).size)
        report.people = int(np.unique(np.frombuffer(self.person, dtype=np.int64)[keep]).size)
        outcome = outcome[keep]
        if kept:
            report.attended_rate = float(outcome.mean())
            report.first_date = str(dates.min())
            report.last_date = str(dates.max())
        return UptakeData(
            records=records,
            dates=dates,
            activity=activity[keep],
            outcome=outcome,
            profile_index=profile_index if records is not None else None,
            profiles=profiles,
            line=line[keep],
            report=report,
            referral=referral[keep],
            features=matrix.result(keep),
        )


_EPOCH = np.datetime64("1970-01-01", "D").astype(object).toordinal()


def _first_of_each_pair(
    referral: np.ndarray,
    activity: np.ndarray,
    n_referrals: int,
    outcome: np.ndarray,
    line: np.ndarray,
    report: UptakeReport,
) -> np.ndarray:
    """Which rows to keep: the first line of each ``(referral_id, activity_id)``; the others go
    into the report as duplicates (line, first seen on), in file order."""
    n_act = int(activity.max()) + 1 if len(activity) else 1
    key = referral.astype(np.int64) * n_act + activity
    order = np.argsort(key, kind="stable")  # rows are in file order: the first comes first
    ordered = key[order]
    starts = np.ones(len(order), dtype=bool)
    starts[1:] = ordered[1:] != ordered[:-1]
    first_row = order[np.flatnonzero(starts)[np.cumsum(starts) - 1]]
    repeat, of = order[~starts], first_row[~starts]
    by_line = np.argsort(repeat, kind="stable")
    repeat, of = repeat[by_line], of[by_line]
    report.duplicates = list(zip(line[repeat].tolist(), line[of].tolist(), strict=True))
    report.conflicting = int((outcome[repeat] != outcome[of]).sum())
    keep = np.ones(len(key), dtype=bool)
    keep[repeat] = False
    return keep


class _Matrix:
    """The feature matrix, built chunk by chunk into one float32 array allocated for the
    file's line count (an upper bound on its rows) at the first chunk."""

    def __init__(self, build: RowBuilder | None, capacity: int):
        self.build = build
        self.capacity = capacity
        self.X: np.ndarray | None = None
        self.filled = 0

    def add(self, profiles: list[Profile], index: array, activity: array) -> None:
        if self.build is None or not len(activity):
            return
        index_np = np.frombuffer(index, dtype=np.int64)
        # Only the profiles these rows use are prepared (all of the chunk's, unless they are
        # kept across the whole file).
        used, local = np.unique(index_np, return_inverse=True)
        block = self.build([profiles[k] for k in used.tolist()], local.astype(np.intp),
                           np.frombuffer(activity, dtype=np.int64).astype(np.intp))  # fmt: skip
        if self.X is None:
            self.X = np.empty((max(self.capacity, len(block)), block.shape[1]), dtype=np.float32)
        self.X[self.filled : self.filled + len(block)] = block
        self.filled += len(block)

    def result(self, keep: np.ndarray) -> np.ndarray | None:
        if self.build is None:
            return None
        if self.X is None:
            return np.zeros((0, 0), dtype=np.float32)
        X, n = self.X, int(keep.sum())
        if n < self.filled:
            # Drop the duplicates' rows in place, block by block: every kept row moves up or
            # stays, so no block overwrites a row a later block still reads.
            rows = np.flatnonzero(keep)
            for at in range(0, n, CHUNK_ROWS):
                block = rows[at : at + CHUNK_ROWS]
                X[at : at + len(block)] = X[block]
        self.X = None
        if n < 0.9 * len(X):
            return X[:n].copy()  # many bad lines: give the unused tail back
        return X[:n]


def _strict_message(report: UptakeReport) -> str:
    faults = [str(b) for b in report.rejected[:QUOTED]]
    faults += [f"line {n}: duplicate of line {first} (same referral_id and activity_id)"
               for n, first in report.duplicates[: max(0, QUOTED - len(faults))]]  # fmt: skip
    total = len(report.rejected) + len(report.duplicates)
    more = f"; and {total - len(faults)} more" if total > len(faults) else ""
    return (
        f"strict mode: {len(report.rejected)} bad and {len(report.duplicates)} duplicate lines: "
        + "; ".join(faults)
        + more
    )


def check_trainable(
    data: UptakeData, *, min_rows: int = MIN_ROWS, min_referrals: int = MIN_REFERRALS
) -> None:
    """Refuse data a model cannot honestly be trained on: too few rows or referrals, or
    every outcome the same."""
    report = data.report
    problems = []
    if report.kept < min_rows:
        problems.append(f"only {report.kept} usable rows (at least {min_rows} needed)")
    if report.referrals < min_referrals:
        problems.append(f"only {report.referrals} referrals (at least {min_referrals} needed)")
    if len(data) and np.unique(data.outcome).size < 2:
        which = "attended" if data.outcome[0] else "did not attend"
        problems.append(f"every record {which}: a model needs both outcomes to learn from")
    if problems:
        raise InvalidUptake(
            "cannot train on this data: " + "; ".join(problems), where=report.source
        )
