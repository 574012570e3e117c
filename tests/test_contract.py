"""Tests for matcher.contract: the exchange formats validate the contract's examples, refuse
unknown profile fields, name the field and what was expected, and never echo a value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from matcher import cli
from matcher.contract import (
    NEEDS,
    Activity,
    Profile,
    UptakeRecord,
    json_schema,
    loads_json,
    parse_activity,
    parse_profile,
    parse_uptake,
)
from matcher.errors import InvalidActivity, InvalidInput, InvalidProfile, InvalidUptake

# --- the contract's examples ----------------------------------------------------------------


def _example_records(examples: Path) -> list[tuple[str, str, dict]]:
    """(kind, where, record) for every record of every example file."""
    found: list[tuple[str, str, dict]] = []
    for path in sorted(examples.iterdir()):
        if path.suffix == ".jsonl":
            kind = "uptake" if "uptake" in path.name else "profile"
            for number, line in enumerate(path.read_text("utf-8").splitlines(), start=1):
                if line.strip():
                    found.append((kind, f"{path.name} line {number}", json.loads(line)))
        elif path.suffix == ".json":
            data = json.loads(path.read_text("utf-8"))
            if "catalogue" in path.name:
                items = data["activities"] if isinstance(data, dict) else data
                found += [("activity", f"{path.name} #{k}", a) for k, a in enumerate(items)]
            else:
                found.append(("profile", path.name, data))
    return found


PARSERS = {"profile": parse_profile, "activity": parse_activity, "uptake": parse_uptake}


def test_every_example_validates(examples_dir):
    records = _example_records(examples_dir)
    kinds = {kind for kind, _, _ in records}
    assert kinds == {"profile", "activity", "uptake"}, "an example file was not recognised"
    for kind, where, record in records:
        try:
            PARSERS[kind](record)
        except InvalidInput as exc:  # pragma: no cover - the message is the point
            pytest.fail(f"{where} does not validate as {kind}: {exc}")


def test_examples_round_trip_through_to_dict(examples_dir):
    for kind, where, record in _example_records(examples_dir):
        parsed = PARSERS[kind](record)
        again = PARSERS[kind](parsed.to_dict())
        assert again == parsed, where


def test_example_profile_fields_are_read(examples_dir):
    profile = parse_profile(json.loads((examples_dir / "profile.json").read_text("utf-8")))
    assert profile.id == "p-7f3a"
    assert profile.age == 71
    assert profile.needs == ["loneliness", "physical_activity"]
    # interests may be one string: it becomes a one-item list, kept as said
    assert profile.interests == ["used to have an allotment, likes a chat"]
    assert profile.online == "no"
    assert profile.location is not None and profile.location.postcode == "LS6 3HN"


# --- defaults and normalisation -------------------------------------------------------------


def test_empty_profile_is_valid_with_contract_defaults():
    profile = parse_profile({})
    assert profile.online == "ok"
    assert profile.needs == [] and profile.interests == [] and profile.exclude == []
    assert profile.availability is None  # absent: any time, which differs from []


def test_interests_as_string_or_list():
    assert parse_profile({"interests": "choir"}).interests == ["choir"]
    assert parse_profile({"interests": ["choir", "allotment"]}).interests == ["choir", "allotment"]
    assert parse_profile({"interests": ["choir", "allotment"]}).interest_text == "choir ; allotment"


def test_needs_keep_priority_order_and_drop_repeats():
    profile = parse_profile({"needs": ["money", "loneliness", "money"]})
    assert profile.needs == ["money", "loneliness"]


def test_activity_defaults_and_blank_trimming():
    activity = parse_activity({"id": " a-1 ", "name": " Choir "})
    assert activity.id == "a-1" and activity.name == "Choir"
    assert activity.status == "active" and activity.online is False
    assert activity.needs == [] and activity.sessions == []


def test_activity_unknown_fields_are_ignored_not_refused():
    # the loader reports them as warnings (see test_catalogue); the record itself is usable
    activity = parse_activity({"id": "a", "name": "n", "pc_targetAudience": "Adults"})
    assert "pc_targetAudience" not in activity.to_dict()


# --- unknown profile fields are refused, by path --------------------------------------------


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"nhs_number": "943 476 5919"}, "profile.nhs_number"),
        ({"name": "Jane Doe"}, "profile.name"),
        ({"notes": "lives alone"}, "profile.notes"),
        ({"location": {"postcode": "LS6 3HN", "address": "1 High St"}}, "profile.location.address"),
    ],
)
def test_unknown_profile_field_is_refused_with_its_path(data, path):
    with pytest.raises(InvalidProfile) as info:
        parse_profile(data)
    paths = [p for p, _ in info.value.problems]
    assert paths == [path]
    assert "not a contract field" in info.value.problems[0][1]


def test_unknown_field_in_uptake_profile_is_refused():
    record = {
        "referral_id": "r-1",
        "date": "2026-01-01",
        "profile": {"nhs_number": "1"},
        "activity_id": "a",
        "attended": True,
    }
    with pytest.raises(InvalidUptake) as info:
        parse_uptake(record)
    assert [p for p, _ in info.value.problems] == ["profile.nhs_number"]


# --- wrong types and out-of-range values ----------------------------------------------------


@pytest.mark.parametrize(
    ("data", "path", "expected"),
    [
        ({"age": "71"}, "profile.age", "whole number"),
        ({"age": 30.5}, "profile.age", "whole number"),
        ({"age": True}, "profile.age", "whole number"),
        ({"age": 15}, "profile.age", "16"),
        ({"age": 121}, "profile.age", "120"),
        ({"needs": "loneliness"}, "profile.needs", "list"),
        ({"needs": ["lonely"]}, "profile.needs.0", "loneliness"),
        ({"needs": ["money", "debt"]}, "profile.needs.1", "money"),
        ({"travel": "bike"}, "profile.travel", "public_transport"),
        ({"max_travel_km": 0}, "profile.max_travel_km", "> 0"),
        ({"max_travel_km": "5"}, "profile.max_travel_km", "number"),
        ({"max_cost": -1}, "profile.max_cost", "≥ 0"),
        ({"accessibility": ["ramp"]}, "profile.accessibility.0", "wheelchair"),
        ({"availability": ["monday"]}, "profile.availability.0", "mon_am"),
        ({"format": "solo"}, "profile.format", "one_to_one"),
        ({"online": "yes"}, "profile.online", "only"),
        ({"online": True}, "profile.online", "only"),
        ({"languages": ["eng"]}, "profile.languages.0", "ISO 639-1"),
        ({"gender": 1}, "profile.gender", "string"),
        ({"exclude": "act-1"}, "profile.exclude", "list"),
        ({"interests": 5}, "profile.interests", "string"),
        ({"location": "LS6 3HN"}, "profile.location", "object"),
        ({"location": {"lat": 53.8}}, "profile.location", "lat and lon"),
        ({"location": {}}, "profile.location", "postcode"),
        ({"location": {"lat": 91, "lon": 0}}, "profile.location.lat", "90"),
        ({"location": {"lat": "53.8", "lon": -1.5}}, "profile.location.lat", "number"),
    ],
)
def test_bad_profile_value_names_path_and_expectation(data, path, expected):
    with pytest.raises(InvalidProfile) as info:
        parse_profile(data)
    problems = dict(info.value.problems)
    assert path in problems, info.value.problems
    assert expected in problems[path]
    assert str(info.value).startswith(f"{path}: ") or f"; {path}: " in str(info.value)


def test_every_problem_is_reported_not_only_the_first():
    with pytest.raises(InvalidProfile) as info:
        parse_profile({"age": 3, "online": "maybe", "needs": ["x"]})
    assert {p for p, _ in info.value.problems} == {
        "profile.age",
        "profile.online",
        "profile.needs.0",
    }


def test_the_need_vocabulary_is_named_in_the_expectation():
    with pytest.raises(InvalidProfile) as info:
        parse_profile({"needs": ["loneliness", "isolation"]})
    ((path, expected),) = info.value.problems
    assert path == "profile.needs.1"
    assert all(code in expected for code in NEEDS)


def test_profile_must_be_an_object():
    for data in (None, [], "profile", 3):
        with pytest.raises(InvalidProfile) as info:
            parse_profile(data)
        assert info.value.problems == [("profile", "expected a JSON object")]


@pytest.mark.parametrize(
    ("data", "path", "expected"),
    [
        ({"name": "n"}, "activity.id", "required"),
        ({"id": "a"}, "activity.name", "required"),
        ({"id": "a", "name": "   "}, "activity.name", "non-empty"),
        ({"id": "a", "name": "n", "cost": -2}, "activity.cost", "≥ 0"),
        ({"id": "a", "name": "n", "online": "yes"}, "activity.online", "true or false"),
        ({"id": "a", "name": "n", "gender": "women"}, "activity.gender", "female"),
        ({"id": "a", "name": "n", "status": "closed"}, "activity.status", "inactive"),
        ({"id": "a", "name": "n", "sessions": [{"day": "wed", "start": "25:00"}]},
         "activity.sessions.0.start", "HH:MM"),
        ({"id": "a", "name": "n", "sessions": [{"day": "weds", "start": "10:00"}]},
         "activity.sessions.0.day", "wed"),
        ({"id": "a", "name": "n", "min_age": 60, "max_age": 50}, "activity", "min_age"),
        ({"id": "a", "name": "n", "location": {"lat": 53.8}}, "activity.location", "lat and lon"),
        ({"id": "a", "name": "n", "needs": ["fun"]}, "activity.needs.0", "loneliness"),
    ],
)  # fmt: skip
def test_bad_activity_value_names_path_and_expectation(data, path, expected):
    with pytest.raises(InvalidActivity) as info:
        parse_activity(data)
    problems = dict(info.value.problems)
    assert path in problems, info.value.problems
    assert expected in problems[path]


@pytest.mark.parametrize(
    ("change", "path", "expected"),
    [
        ({"date": "14/03/2026"}, "date", "YYYY-MM-DD"),
        ({"attended": "yes"}, "attended", "true or false"),
        ({"attended": 1}, "attended", "true or false"),
        ({"referral_id": ""}, "referral_id", "non-empty"),
        ({"sessions_attended": -1}, "sessions_attended", "≥ 0"),
        ({"profile": {"age": 200}}, "profile.age", "120"),
    ],
)
def test_bad_uptake_value_names_path_and_expectation(change, path, expected):
    record = {
        "referral_id": "r-1",
        "date": "2026-03-14",
        "profile": {"age": 70},
        "activity_id": "act-1",
        "attended": True,
    }
    parse_uptake(record)  # the base record is valid, so the change alone is at fault
    with pytest.raises(InvalidUptake) as info:
        parse_uptake({**record, **change})
    problems = dict(info.value.problems)
    assert path in problems, info.value.problems
    assert expected in problems[path]


# --- no error ever contains the submitted value ---------------------------------------------

SENTINEL = "Zebedee-4471-SENTINEL"


@pytest.mark.parametrize(
    "data",
    [
        {"age": "9999"},
        {"age": 9999},
        {"age": "QQ1 1QQ"},
        {"id": 4471},
        {"gender": ["QQ1 1QQ"]},
        {"travel": "QQ1 1QQ"},
        {"online": SENTINEL},
        {"needs": SENTINEL},
        {"needs": [SENTINEL]},
        {"needs": [{"text": SENTINEL}]},
        {"interests": {"text": SENTINEL}},
        {"interests": [SENTINEL, 9999]},
        {"interests": SENTINEL * 200},
        {"languages": [SENTINEL]},
        {"availability": [SENTINEL]},
        {"accessibility": SENTINEL},
        {"exclude": [SENTINEL * 20]},
        {"max_travel_km": "9999"},
        {"max_cost": -9999},
        {"location": {"postcode": SENTINEL}},
        {"location": {"postcode": 9999}},
        {"location": {"lat": "QQ1 1QQ", "lon": -1.55}},
        {"location": {"lat": 9999, "lon": 9999}},
        {"location": SENTINEL},
        {"id": SENTINEL * 20},
    ],
)
def test_profile_errors_never_contain_the_value(data):
    with pytest.raises(InvalidProfile) as info:
        parse_profile(data)
    _assert_no_value(info.value, ("9999", "QQ1 1QQ", "Zebedee", "SENTINEL", "4471"))


@pytest.mark.parametrize(
    "data",
    [
        {"id": "a", "name": "n", "cost": "9999 pounds"},
        {"id": "a", "name": "n", "min_age": "QQ1 1QQ"},
        {"id": "a", "name": "n", "sessions": [{"day": SENTINEL, "start": SENTINEL}]},
        {"id": "a", "name": "n", "location": {"lat": SENTINEL, "lon": 9999}},
        {"id": "a", "name": "n", "needs": [SENTINEL]},
        {"id": "a", "name": "n", "languages": [SENTINEL]},
        {"id": "a", "name": "n", "contact": {"phone": 9999}},
    ],
)
def test_activity_errors_never_contain_the_value(data):
    with pytest.raises(InvalidActivity) as info:
        parse_activity(data)
    _assert_no_value(info.value, ("9999", "QQ1 1QQ", "Zebedee", "SENTINEL"))


def test_uptake_errors_never_contain_the_value():
    record = {
        "referral_id": 9999,
        "date": SENTINEL,
        "profile": {"age": "9999", "nhs_number": SENTINEL, "location": {"postcode": 9999}},
        "activity_id": ["QQ1 1QQ"],
        "attended": SENTINEL,
        "shown": SENTINEL,
    }
    with pytest.raises(InvalidUptake) as info:
        parse_uptake(record)
    assert len(info.value.problems) >= 6
    _assert_no_value(info.value, ("9999", "QQ1 1QQ", "Zebedee", "SENTINEL"))


def test_malformed_json_message_does_not_quote_the_text():
    with pytest.raises(InvalidInput) as info:
        loads_json('{"postcode": "QQ1 1QQ", "age": 9999,,}')
    assert "line 1" in str(info.value)
    _assert_no_value(info.value, ("9999", "QQ1 1QQ"))


def test_json_constants_are_refused():
    for text in ('{"age": NaN}', '{"max_cost": Infinity}'):
        with pytest.raises(InvalidInput):
            loads_json(text)


def _assert_no_value(exc: InvalidInput, values: tuple[str, ...]) -> None:
    texts = [str(exc), repr(exc), *(f"{p} {e}" for p, e in exc.problems)]
    for text in texts:
        for value in values:
            # "SENTINEL" may only appear as a field name, which we never use it as
            assert value not in text, f"{value!r} leaked into {text!r}"
    # nothing chained that a traceback or a log could print later
    assert exc.__cause__ is None
    assert exc.__suppress_context__


# --- JSON Schema ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["profile", "activity", "uptake"])
def test_schema_command_prints_a_json_schema(kind, capsys):
    assert cli.main(["schema", kind]) == 0
    out = capsys.readouterr().out
    schema = json.loads(out)
    assert schema == json_schema(kind)
    assert schema["type"] == "object"
    model_fields = {
        "profile": Profile.model_fields,
        "activity": Activity.model_fields,
        "uptake": UptakeRecord.model_fields,
    }[kind]
    assert set(schema["properties"]) == set(model_fields)
    jsonschema_rs = pytest.importorskip("jsonschema_rs")
    assert jsonschema_rs.meta.is_valid(schema), "not a valid JSON Schema document"


def test_profile_schema_refuses_unknown_fields_and_requires_nothing():
    schema = json_schema("profile")
    assert schema.get("additionalProperties") is False
    assert not schema.get("required")


def test_activity_and_uptake_schemas_require_the_contract_fields():
    assert set(json_schema("activity")["required"]) == {"id", "name"}
    assert set(json_schema("uptake")["required"]) == {
        "referral_id",
        "date",
        "profile",
        "activity_id",
        "attended",
    }


def test_examples_validate_against_the_printed_schemas(examples_dir):
    """Other systems validate with the schema, not with pydantic: the two must agree."""
    jsonschema_rs = pytest.importorskip("jsonschema_rs")
    validators = {kind: jsonschema_rs.validator_for(json_schema(kind)) for kind in PARSERS}
    failures = []
    for kind, where, record in _example_records(examples_dir):
        for error in validators[kind].iter_errors(record):
            failures.append(f"{where} ({kind}) at {list(error.instance_path)}: {error.message}")
    assert not failures, "\n".join(failures)


def test_schema_agrees_with_the_parser_on_interests_as_one_string():
    jsonschema_rs = pytest.importorskip("jsonschema_rs")
    profile = {"interests": "used to sing in a choir, likes the allotment"}
    parse_profile(profile)  # the contract allows a string
    assert jsonschema_rs.validator_for(json_schema("profile")).is_valid(profile)
