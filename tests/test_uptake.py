"""Tests for training.uptake: every bad line reported by number and reason (JSON Lines and CSV),
duplicates, refusals of thin data, strict mode, and no profile value in any message."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest

from matcher.catalogue import Catalogue
from matcher.errors import InvalidUptake
from training.uptake import (
    BAD_DATE,
    BAD_FIELD,
    BAD_PROFILE,
    MALFORMED,
    MALFORMED_CSV,
    MISSING,
    NOT_TEXT,
    UNKNOWN_ACTIVITY,
    UNKNOWN_POSTCODE,
    check_trainable,
    load_uptake,
)

ACTIVITY_IDS = ("act-001", "act-002", "act-003")
# Values no message may ever repeat: they stand for what a profile holds about a person.
SECRETS = ("Jane Secretname", "ZZ9 9ZZ", "12345", "likes-Secret-Choir")


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return Catalogue.from_records(
        [
            {
                "id": "act-001",
                "name": "Allotment group",
                "needs": ["loneliness"],
                "location": {"lat": 53.83, "lon": -1.58},
            },
            {
                "id": "act-002",
                "name": "Debt advice",
                "needs": ["money"],
                "location": {"postcode": "LS1 3ES"},
            },
            {
                "id": "act-003",
                "name": "Online chair yoga",
                "online": True,
                "needs": ["physical_activity"],
            },
        ]
    )


def record(n: int, **changes) -> dict:
    """A valid uptake record; referral ``r-n``, alternating outcomes and activities."""
    out = {
        "referral_id": f"r-{n:05d}",
        "date": f"2026-{1 + n % 12:02d}-{1 + n % 28:02d}",
        "profile": {
            "id": f"p-{n % 40}",
            "age": 20 + n % 60,
            "location": {"postcode": "LS6 3HN"},
            "needs": ["loneliness"],
        },
        "activity_id": ACTIVITY_IDS[n % 3],
        "attended": n % 3 == 0,
    }
    out.update(changes)
    return out


def write_jsonl(path: Path, lines: list) -> Path:
    """Write records (dicts) or raw lines (str) to a JSON Lines file."""
    text = "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines)
    path.write_text(text, encoding="utf-8")
    return path


CSV_COLUMNS = ["referral_id", "date", "activity_id", "attended", "profile", "sessions_attended"]


def csv_row(rec: dict) -> list[str]:
    return [
        rec["referral_id"],
        rec["date"],
        rec["activity_id"],
        "true" if rec["attended"] else "false",
        json.dumps(rec["profile"]),
        str(rec.get("sessions_attended", "")),
    ]


def write_csv(path: Path, rows: list[list[str]], columns=CSV_COLUMNS) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        writer.writerows(rows)
    return path


def load(path: Path, catalogue: Catalogue, **kwargs):
    kwargs.setdefault("for_training", False)
    kwargs.setdefault("log", None)
    return load_uptake(path, catalogue, **kwargs)


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"a profile value leaked into: {text}"


# --- JSON Lines: one bad line of each kind, with its line number ------------------------------

BAD_JSONL = [
    ('{"referral_id": "r-9", "date": "2026-01-01", "profile": {"age": 30', MALFORMED, "malformed"),
    ("[1, 2, 3]", MALFORMED, "expected a JSON object"),
    (
        '{"referral_id": "r-9", "date": "2026-01-01", "profile": {}, "activity_id": "act-001", '
        '"attended": NaN}',
        MALFORMED,
        "malformed",
    ),
    (record(9, attended=None) | {"attended": None}, BAD_FIELD, "attended"),
    ({k: v for k, v in record(9).items() if k != "attended"}, MISSING, "attended: is required"),
    ({k: v for k, v in record(9).items() if k != "profile"}, MISSING, "profile: is required"),
    (record(9, activity_id="act-999"), UNKNOWN_ACTIVITY, "activity_id"),
    (record(9, date="14/03/2026"), BAD_DATE, "date: expected a date as YYYY-MM-DD"),
    (record(9, date="2026-02-30"), BAD_DATE, "date"),
    (record(9, date=0), BAD_DATE, "date"),  # a timestamp is not guessed at
    (record(9, date="2026-03-14T10:00:00"), BAD_DATE, "date"),
    (record(9, profile={"age": 12345}), BAD_PROFILE, "profile.age"),
    (record(9, profile={"name": "Jane Secretname"}), BAD_PROFILE, "profile.name"),
    (record(9, profile={"interests": 12345}), BAD_PROFILE, "profile.interests"),
    (record(9, profile={"travel": "likes-Secret-Choir"}), BAD_PROFILE, "profile.travel"),
    (record(9, profile="Jane Secretname"), BAD_PROFILE, "profile: expected a JSON object"),
    (
        record(9, profile={"location": {"postcode": "ZZ9 9ZZ"}}),
        UNKNOWN_POSTCODE,
        "profile.location.postcode",
    ),
    (record(9, sessions_attended=-1), BAD_FIELD, "sessions_attended"),
    (record(9, notes="Jane Secretname"), BAD_FIELD, "notes: is not a contract field"),
    (record(9, referral_id="   "), BAD_FIELD, "referral_id"),
    (record(9, attended="yes"), BAD_FIELD, "attended: expected true or false"),
]


@pytest.mark.parametrize(("bad", "kind", "words"), BAD_JSONL)
def test_each_bad_jsonl_line_is_reported_with_its_number(tmp_path, catalogue, bad, kind, words):
    lines = [record(1), "", record(2), bad, record(3)]  # blank line 2 still counts as a line
    data = load(write_jsonl(tmp_path / "u.jsonl", lines), catalogue)
    assert len(data.bad_lines) == 1
    (fault,) = data.bad_lines
    assert fault.line == 4
    assert fault.kind == kind
    assert words in fault.reason
    assert str(fault).startswith("line 4: ")
    assert_no_secret(fault.reason)
    assert [r.referral_id for r in data.records] == ["r-00001", "r-00002", "r-00003"]
    assert list(data.line) == [1, 3, 5]
    assert data.report.rows == 4 and data.report.kept == 3


def test_every_bad_line_is_reported_not_just_the_first(tmp_path, catalogue):
    lines = [record(n) for n in range(10)]
    bad_at = {2: "{oops", 5: record(5, activity_id="nope"), 9: record(9, date="yesterday")}
    for k, bad in bad_at.items():
        lines[k - 1] = bad
    data = load(write_jsonl(tmp_path / "u.jsonl", lines), catalogue)
    assert [b.line for b in data.bad_lines] == [2, 5, 9]
    assert data.report.by_reason() == {MALFORMED: 1, BAD_DATE: 1, UNKNOWN_ACTIVITY: 1}


def test_a_line_with_several_faults_names_them_all(tmp_path, catalogue):
    bad = record(1, date="someday", profile={"age": 5}, attended="no", extra=1)
    data = load(write_jsonl(tmp_path / "u.jsonl", [record(0), bad]), catalogue)
    (fault,) = data.bad_lines
    for path in ("date", "profile.age", "attended", "extra"):
        assert f"{path}:" in fault.reason


def test_the_same_bad_profile_on_many_lines_is_reported_on_each(tmp_path, catalogue):
    bad_profile = {"age": 12345}
    lines = [record(1, profile=bad_profile), record(2), record(3, profile=bad_profile)]
    data = load(write_jsonl(tmp_path / "u.jsonl", lines), catalogue)
    assert [(b.line, b.kind) for b in data.bad_lines] == [(1, BAD_PROFILE), (3, BAD_PROFILE)]


def test_a_line_that_is_not_utf8_is_reported(tmp_path, catalogue):
    path = tmp_path / "u.jsonl"
    good = json.dumps(record(1)).encode()
    path.write_bytes(
        good + b"\n" + b'{"referral_id": "r-\xff\xfe"}\n' + good.replace(b"r-00001", b"r-2") + b"\n"
    )
    data = load(path, catalogue)
    assert [(b.line, b.kind) for b in data.bad_lines] == [(2, NOT_TEXT)]
    assert data.report.kept == 2


# --- CSV -------------------------------------------------------------------------------------


def test_csv_reads_like_json_lines(tmp_path, catalogue):
    recs = [record(n) for n in range(30)]
    from_jsonl = load(write_jsonl(tmp_path / "u.jsonl", recs), catalogue)
    from_csv = load(write_csv(tmp_path / "u.csv", [csv_row(r) for r in recs]), catalogue)
    assert from_csv.records == from_jsonl.records
    assert np.array_equal(from_csv.outcome, from_jsonl.outcome)
    assert np.array_equal(from_csv.activity, from_jsonl.activity)
    assert list(from_csv.line) == list(range(2, 32))  # the header is line 1


@pytest.mark.parametrize("word", ["true", "TRUE", "1", "yes", "Yes", "false", "0", "no", " No "])
def test_csv_attended_words(tmp_path, catalogue, word):
    row = csv_row(record(1))
    row[3] = word
    data = load(write_csv(tmp_path / "u.csv", [row]), catalogue)
    assert data.records[0].attended is (word.strip().lower() in ("true", "1", "yes"))


BAD_CSV = [
    (3, "maybe", None, BAD_FIELD, "attended: expected true or false"),
    (3, "", None, BAD_FIELD, "attended"),
    (4, '{"age": 30', None, MALFORMED, "profile: malformed JSON"),
    (4, "", None, MISSING, "profile: is required"),
    (4, json.dumps({"age": 12345, "name": "Jane Secretname"}), None, BAD_PROFILE, "profile.age"),
    (4, json.dumps({"location": {"postcode": "ZZ9 9ZZ"}}), None, UNKNOWN_POSTCODE, "postcode"),
    (1, "14/03/2026", None, BAD_DATE, "date"),
    (2, "act-404", None, UNKNOWN_ACTIVITY, "activity_id"),
    (5, "three", None, BAD_FIELD, "sessions_attended"),
    (None, None, ["r-1", "2026-01-01", "act-001"], MALFORMED_CSV, "expected 6 columns, found 3"),
]


@pytest.mark.parametrize(("column", "value", "raw", "kind", "words"), BAD_CSV)
def test_each_bad_csv_row_is_reported_with_its_line(tmp_path, catalogue, column, value, raw, kind,
                                                     words):  # fmt: skip
    bad = raw if raw is not None else csv_row(record(9))
    if column is not None:
        bad[column] = value
    rows = [csv_row(record(1)), csv_row(record(2)), bad, csv_row(record(3))]
    data = load(write_csv(tmp_path / "u.csv", rows), catalogue)
    (fault,) = data.bad_lines
    assert (fault.line, fault.kind) == (4, kind)
    assert words in fault.reason
    assert_no_secret(fault.reason)
    assert data.report.kept == 3


def test_csv_line_numbers_count_lines_inside_quoted_fields(tmp_path, catalogue):
    multi = csv_row(record(1))
    multi[4] = json.dumps(record(1)["profile"], indent=2)  # a profile over six lines
    bad = csv_row(record(2))
    bad[2] = "act-404"
    data = load(write_csv(tmp_path / "u.csv", [multi, bad]), catalogue)
    assert list(data.line) == [2]
    assert [b.line for b in data.bad_lines] == [2 + multi[4].count("\n") + 1]


def test_csv_optional_columns(tmp_path, catalogue):
    columns = [*CSV_COLUMNS, "shown"]
    good = [*csv_row(record(1, sessions_attended=4)), '["act-002", "act-001"]']
    bad = [*csv_row(record(2)), "[not json"]
    data = load(write_csv(tmp_path / "u.csv", [good, bad], columns), catalogue)
    assert data.records[0].sessions_attended == 4
    assert data.records[0].shown == ["act-002", "act-001"]
    assert [(b.line, b.kind) for b in data.bad_lines] == [(3, MALFORMED)]
    assert "shown" in data.bad_lines[0].reason


def test_csv_carries_the_lifecycle_columns_of_contract_v1_1(tmp_path, catalogue):
    columns = [*CSV_COLUMNS, "declined", "case", "wellbeing_before", "wellbeing_after"]
    ons4 = '{"life_satisfaction": 4, "worthwhile": 5, "happiness": 3, "anxiety": 7}'
    declined = [*csv_row(record(1, attended=False)), "yes", "CASE-1", ons4, ons4]
    plain = [*csv_row(record(2)), "", "", "", ""]
    bad_ons4 = [*csv_row(record(3)), "", "", '{"life_satisfaction": 11}', ""]
    bad_word = [*csv_row(record(4)), "perhaps", "", "", ""]
    rows = [declined, plain, bad_ons4, bad_word]
    data = load(write_csv(tmp_path / "u.csv", rows, columns), catalogue)
    first = data.records[0]
    assert first.declined is True and first.case == "CASE-1"
    assert first.wellbeing_before.anxiety == 7
    assert data.records[1].declined in (None, False) and data.records[1].case is None
    reasons = {b.line: b.reason for b in data.bad_lines}
    assert set(reasons) == {4, 5}
    assert "wellbeing_before" in reasons[4] and "declined" in reasons[5]


def test_csv_header_missing_or_unknown_columns_fail_the_load(tmp_path, catalogue):
    path = write_csv(
        tmp_path / "u.csv", [], ["referral_id", "date", "attended", "profile", "notes"]
    )
    with pytest.raises(InvalidUptake) as caught:
        load(path, catalogue)
    message = str(caught.value)
    assert "line 1" in message
    assert "activity_id: is a required column" in message
    assert "notes: is not a contract column" in message


# --- duplicates ------------------------------------------------------------------------------


def test_duplicates_are_reported_and_the_first_kept(tmp_path, catalogue):
    first = record(1, attended=True)
    lines = [first, record(2), record(1, attended=False), first, record(1, activity_id="act-003")]
    data = load(write_jsonl(tmp_path / "u.jsonl", lines), catalogue)
    assert data.report.duplicates == [(3, 1), (4, 1)]
    assert data.report.conflicting == 1
    assert not data.bad_lines
    assert [(r.referral_id, r.activity_id, r.attended) for r in data.records] == [
        ("r-00001", "act-002", True),
        ("r-00002", "act-003", False),
        ("r-00001", "act-003", False),
    ]
    assert "2 duplicates (first kept; 1 with another outcome)" in data.report.summary()


# --- refusals --------------------------------------------------------------------------------


def test_too_little_data_is_refused_for_training(tmp_path, catalogue):
    path = write_jsonl(tmp_path / "u.jsonl", [record(n) for n in range(60)])
    with pytest.raises(InvalidUptake) as caught:
        load_uptake(path, catalogue, log=None)
    message = str(caught.value)
    assert "cannot train" in message
    assert "only 60 usable rows (at least 200 needed)" in message
    # The minimums are settings.
    data = load_uptake(path, catalogue, log=None, min_rows=50, min_referrals=50)
    assert len(data) == 60


def test_too_few_referrals_are_refused(tmp_path, catalogue):
    lines = [record(n % 10, activity_id=ACTIVITY_IDS[(n // 10) % 3]) for n in range(30)]
    path = write_jsonl(tmp_path / "u.jsonl", lines)
    with pytest.raises(InvalidUptake, match=r"only 10 referrals \(at least 50 needed\)"):
        load_uptake(path, catalogue, log=None, min_rows=10)


@pytest.mark.parametrize("outcome", [True, False])
def test_a_single_outcome_is_refused(tmp_path, catalogue, outcome):
    path = write_jsonl(tmp_path / "u.jsonl", [record(n, attended=outcome) for n in range(300)])
    with pytest.raises(InvalidUptake, match="needs both outcomes"):
        load_uptake(path, catalogue, log=None)
    data = load(path, catalogue)  # still readable when not training
    with pytest.raises(InvalidUptake, match="needs both outcomes"):
        check_trainable(data, min_rows=1, min_referrals=1)


def test_enough_data_trains(tmp_path, catalogue):
    data = load_uptake(
        write_jsonl(tmp_path / "u.jsonl", [record(n) for n in range(300)]), catalogue, log=None
    )
    assert len(data) == 300 and data.report.referrals == 300


def test_no_usable_line_fails(tmp_path, catalogue):
    path = write_jsonl(tmp_path / "u.jsonl", ["{", record(1, activity_id="x")])
    with pytest.raises(InvalidUptake, match="no usable uptake records.*line 1"):
        load(path, catalogue)


def test_a_missing_file_fails_clearly(tmp_path, catalogue):
    with pytest.raises(InvalidUptake, match="no such file"):
        load(tmp_path / "absent.jsonl", catalogue)


# --- strict mode -----------------------------------------------------------------------------


def test_strict_mode_fails_on_any_bad_line_naming_them(tmp_path, catalogue):
    lines = [record(n) for n in range(5)]
    lines[1] = record(1, profile={"age": 12345, "name": "Jane Secretname"})
    lines[3] = record(3, activity_id="act-404")
    path = write_jsonl(tmp_path / "u.jsonl", lines)
    assert load(path, catalogue).report.kept == 3  # lenient by default
    with pytest.raises(InvalidUptake) as caught:
        load(path, catalogue, strict=True)
    message = str(caught.value)
    assert "strict mode" in message and "line 2: profile.age" in message and "line 4: " in message
    assert_no_secret(message)


def test_strict_mode_fails_on_duplicates(tmp_path, catalogue):
    path = write_jsonl(tmp_path / "u.jsonl", [record(1), record(2), record(1)])
    with pytest.raises(InvalidUptake, match="line 3: duplicate of line 1"):
        load(path, catalogue, strict=True)


def test_strict_mode_passes_clean_data(tmp_path, catalogue):
    path = write_jsonl(tmp_path / "u.jsonl", [record(n) for n in range(5)])
    assert len(load(path, catalogue, strict=True)) == 5


# --- what comes back -------------------------------------------------------------------------


def test_arrays_line_up_with_the_records(tmp_path, catalogue):
    recs = [record(n) for n in range(50)]
    data = load(write_jsonl(tmp_path / "u.jsonl", recs), catalogue)
    assert data.dates.dtype == np.dtype("datetime64[D]")
    assert data.activity.dtype == np.intp and data.outcome.dtype == np.int8
    for k, rec in enumerate(data.records):
        assert str(data.dates[k]) == rec.date.isoformat()
        assert catalogue.ids[data.activity[k]] == rec.activity_id
        assert data.outcome[k] == int(rec.attended)
        assert data.profiles[data.profile_index[k]] is rec.profile
    # Each distinct profile is validated and stored once; people are told apart by id, and
    # ten of the forty come back older (a changed profile, the same person).
    assert len(data.profiles) == 50 and data.report.people == 40


def test_summary_is_printed_with_the_counts(tmp_path, catalogue):
    lines = [record(n) for n in range(6)] + ["{", record(1), record(7, activity_id="act-xyz")]
    log = io.StringIO()
    load(write_jsonl(tmp_path / "u.jsonl", lines), catalogue, log=log)
    text = log.getvalue()
    for part in ("9 rows read", "6 kept", "2 rejected", "malformed JSON 1", "unknown activity 1",
                 "1 duplicates", "6 referrals", "attended 33.3%", "dates 2026-01-01 to",
                 "act-xyz ×1"):  # fmt: skip
        assert part in text, part


def test_the_file_hash_is_recorded(tmp_path, catalogue):
    path = write_jsonl(tmp_path / "u.jsonl", [record(n) for n in range(3)])
    data = load(path, catalogue)
    assert data.report.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert data.report.to_dict()["sha256"] == data.report.sha256


def test_gzipped_files_are_read(tmp_path, catalogue):
    path = tmp_path / "u.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("\n".join(json.dumps(record(n)) for n in range(5)) + "\n{\n")
    data = load(path, catalogue)
    assert data.report.kept == 5 and [b.line for b in data.bad_lines] == [6]


def test_the_format_is_sniffed_without_a_known_suffix(tmp_path, catalogue):
    jsonl = write_jsonl(tmp_path / "u.txt", [record(1)])
    table = write_csv(tmp_path / "u.data", [csv_row(record(1))])
    assert load(jsonl, catalogue).report.format == "jsonl"
    assert load(table, catalogue).report.format == "csv"


def test_no_message_holds_a_profile_value(tmp_path, catalogue):
    secret_profiles = [
        {"age": 12345},
        {"name": "Jane Secretname"},
        {"location": {"postcode": "ZZ9 9ZZ"}},
        {"interests": ["likes-Secret-Choir"], "travel": "likes-Secret-Choir"},
        {"gender": 12345, "languages": ["likes-Secret-Choir"]},
        {"needs": ["likes-Secret-Choir"], "exclude": 12345},
        {"location": {"postcode": "ZZ9 9ZZ", "lat": "Jane Secretname"}},
    ]
    lines = [record(n, profile=p) for n, p in enumerate(secret_profiles)] + [record(99)]
    recs_csv = [csv_row(record(n, profile=p)) for n, p in enumerate(secret_profiles)]
    recs_csv.append(csv_row(record(99)))
    log = io.StringIO()
    from_jsonl = load(write_jsonl(tmp_path / "u.jsonl", lines), catalogue, log=log)
    from_csv = load(write_csv(tmp_path / "u.csv", recs_csv), catalogue, log=log)
    for data in (from_jsonl, from_csv):
        assert len(data.bad_lines) == len(secret_profiles)
        for fault in data.bad_lines:
            assert_no_secret(str(fault))
    assert_no_secret(log.getvalue())
    for path in (tmp_path / "u.jsonl", tmp_path / "u.csv"):
        with pytest.raises(InvalidUptake) as caught:
            load_uptake(path, catalogue, strict=True, log=None)
        assert_no_secret(str(caught.value))


# --- the contract's own example --------------------------------------------------------------

CONTRACT = Path(__file__).resolve().parents[2] / "shared" / "contract"


def test_the_contract_example_loads():
    examples = CONTRACT / "examples"
    if not (examples / "uptake.jsonl").exists() or not (examples / "catalogue.json").exists():
        pytest.skip(f"{examples} is absent")
    catalogue = Catalogue.load(examples / "catalogue.json")
    data = load_uptake(examples / "uptake.jsonl", catalogue, strict=True, for_training=False,
                       log=None)  # fmt: skip
    lines = (examples / "uptake.jsonl").read_text().splitlines()
    assert len(data) == len([x for x in lines if x.strip()])
    assert not data.bad_lines and not data.report.duplicates
    assert set(data.outcome.tolist()) <= {0, 1}


# --- reading as a stream: compact arrays, features chunk by chunk, records read again ----------


def varied(n: int, **changes) -> dict:
    """Referral ``r-(n // 3)`` naming three activities, with interests for some people."""
    out = record(n // 3, activity_id=ACTIVITY_IDS[n % 3], **changes)
    if n % 9 < 3:
        out["profile"] = out["profile"] | {"interests": ["gardening", "choir"]}
    return out


def streamed_file(tmp_path: Path) -> Path:
    lines: list = [varied(n) for n in range(150)]
    lines[40] = "{"  # a bad line
    lines[70] = varied(5)  # a duplicate of line 6, many chunks later
    lines.append(varied(100, attended=False))  # a duplicate with another outcome
    return write_jsonl(tmp_path / "u.jsonl", lines)


def test_compact_reading_gives_the_same_arrays_and_report_without_records(tmp_path, catalogue):
    path = streamed_file(tmp_path)
    full = load(path, catalogue)
    compact = load(path, catalogue, keep_records=False, chunk_rows=16)
    assert compact.records is None and compact.profile_index is None and compact.profiles == []
    for name in ("dates", "activity", "outcome", "line", "referral"):
        assert np.array_equal(getattr(compact, name), getattr(full, name)), name
    assert compact.report.to_dict() == full.report.to_dict()
    assert compact.report.duplicates == full.report.duplicates == [(71, 6), (151, 101)]
    assert compact.report.conflicting == 1 and compact.report.people == 40
    assert [b.line for b in compact.bad_lines] == [41]
    # Referrals are numbered as np.unique numbers their ids: folds by referral do not depend
    # on how the file was read.
    ids = [r.referral_id for r in full.records]
    assert np.array_equal(full.referral, np.unique(ids, return_inverse=True)[1])


def test_features_built_chunk_by_chunk_equal_those_built_at_once(tmp_path, catalogue):
    from training.fit import feature_matrix

    path = streamed_file(tmp_path)
    calls: list[int] = []

    def build(profiles, profile_of_row, positions):
        calls.append(len(profiles))
        assert len(profile_of_row) == len(positions) <= 16
        return feature_matrix(catalogue, profiles, profile_of_row, positions)

    streamed = load(path, catalogue, keep_records=False, features=build, chunk_rows=16)
    full = load(path, catalogue)
    at_once = feature_matrix(catalogue, full.profiles, full.profile_index, full.activity)
    assert len(calls) == 10  # 149 usable lines in chunks of 16
    assert streamed.features.dtype == np.float32
    assert streamed.features.shape == at_once.shape == (len(full), at_once.shape[1])
    # The duplicates' rows are gone and every other row is where its line is.
    np.testing.assert_allclose(streamed.features, at_once, rtol=1e-6, equal_nan=True)


def test_records_of_chosen_rows_are_read_again(tmp_path, catalogue):
    path = streamed_file(tmp_path)
    full = load(path, catalogue)
    compact = load(path, catalogue, keep_records=False)
    later = compact.dates >= np.datetime64("2026-07-01")
    assert 0 < later.sum() < len(compact)
    expected = [r for r, keep in zip(full.records, later, strict=True) if keep]
    assert compact.records_in(later) == full.records_in(later) == expected

    sample = compact.records_in(later, max_referrals=4, seed=1)
    chosen = {r.referral_id for r in sample}
    assert len(chosen) == 4
    assert sample == [r for r in expected if r.referral_id in chosen]  # whole referrals
    assert sample == full.records_in(later, max_referrals=4, seed=1)

    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(varied(200)) + "\n")
    with pytest.raises(InvalidUptake, match="changed after it was loaded"):
        compact.records_in(later)
