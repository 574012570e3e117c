"""The referral lifecycle (contract v1.1 §7) and the demand record, on SQLite and PostgreSQL
(``store_url`` runs each store test on both): revision 0004 on a database with data, case
references, baseline and follow-up wellbeing, declined outcomes, caseloads, the provision
report's referral facts, erasure and retention; the contract's new fields and their errors."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone

import pytest
from alembic import command
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from matcher.settings import normalise_database_url
from matcher.store import Demand, Store, age_band, current, head, upgrade
from matcher.store.migrate import alembic_config

pytest_plugins = ["store_support", "conftest_api"]  # store_url; the app and client fixtures

PROFILE = {"age": 71, "location": {"postcode": "LS6 3HN"}, "needs": ["loneliness"]}


@pytest.fixture
def store(store_url):
    with Store(store_url, create=True) as s:
        yield s


def _execute(url: str, *statements: str, params: list | None = None) -> list:
    """Run SQL on the database at ``url`` outside the store, in one transaction."""
    engine = create_engine(normalise_database_url(url), poolclass=NullPool)
    try:
        with engine.begin() as conn:
            results = [
                conn.execute(text(s), (params or [{}] * len(statements))[k])
                for k, s in enumerate(statements)
            ]
            return [r.all() if r.returns_rows else None for r in results]
    finally:
        engine.dispose()


# --- the demand record -----------------------------------------------------------------------


def test_demand_lines_round_trip_in_order_and_since_a_day(store):
    store.add_demand(date(2026, 3, 1), "LS6", "walk", "65+", {"loneliness": 2, "money": 0})
    store.add_demand("2026-03-02", None, None, "unknown", {})
    store.add_demand("2026-03-03", "SW1A", "car", "<40", {"digital": 12})
    assert list(store.demand_rows()) == [
        Demand("2026-03-01", "LS6", "walk", "65+", {"loneliness": 2, "money": 0}),
        Demand("2026-03-02", None, None, "unknown", {}),
        Demand("2026-03-03", "SW1A", "car", "<40", {"digital": 12}),
    ]
    assert [d.day for d in store.demand_rows(since=date(2026, 3, 2))] == [
        "2026-03-02", "2026-03-03"]  # fmt: skip
    line = next(store.demand_rows(since=date(2026, 3, 3)))
    assert line.within_reach["digital"] == 12 and line.age_band == "<40"


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("2026-13-01", "LS6", "walk", "65+", {}), "day"),
        (("yesterday", "LS6", "walk", "65+", {}), "day"),
        (("2026-03-01", "LS6 3HN", "walk", "65+", {}), "district"),  # a full postcode: refused
        (("2026-03-01", "ls6", "walk", "65+", {}), "district"),
        (("2026-03-01", "Mrs Smith", "walk", "65+", {}), "district"),
        (("2026-03-01", "LS6", "bike", "65+", {}), "travel"),
        (("2026-03-01", "LS6", "walk", "71", {}), "age_band"),  # an age, not a band
        (("2026-03-01", "LS6", "walk", "65+", {"p-123": 1}), "within_reach"),  # not a need code
        (("2026-03-01", "LS6", "walk", "65+", {"likes choirs": 1}), "within_reach"),
        (("2026-03-01", "LS6", "walk", "65+", {"money": -1}), "within_reach"),
        (("2026-03-01", "LS6", "walk", "65+", {"money": "3"}), "within_reach"),
        (("2026-03-01", "LS6", "walk", "65+", {"money": True}), "within_reach"),
        (("2026-03-01", "LS6", "walk", "65+", ["money"]), "within_reach"),
    ],
)
def test_a_demand_line_holds_nothing_but_its_narrow_fields(store, args, field):
    with pytest.raises(ValueError, match=f"demand {field}:") as caught:
        store.add_demand(*args)
    for value in args:  # the message names the field, never the value
        if isinstance(value, str) and len(value) > 2:
            assert value not in str(caught.value)
    assert list(store.demand_rows()) == []


def test_the_demand_table_has_no_column_for_a_person(store_url):
    upgrade(store_url)
    engine = create_engine(normalise_database_url(store_url), poolclass=NullPool)
    from sqlalchemy import inspect

    with engine.connect() as conn:
        columns = {c["name"] for c in inspect(conn).get_columns("demand")}
    engine.dispose()
    assert columns == {"id", "day", "district", "travel", "age_band", "within_reach"}


def test_age_bands():
    assert [age_band(a) for a in (None, 16, 39, 40, 64, 65, 120)] == [
        "unknown", "<40", "<40", "40-64", "40-64", "65+", "65+"]  # fmt: skip


def test_purge_drops_demand_lines_from_before_the_day(store):
    store.add_demand("2025-01-01", "LS6", None, "65+", {})
    store.add_demand("2026-01-01", "LS6", None, "65+", {})
    store.purge(date(2025, 6, 1))
    assert [d.day for d in store.demand_rows()] == ["2026-01-01"]


# --- revision 0004 on a database with data ---------------------------------------------------


def test_the_lifecycle_migration_keeps_data_and_names_who_made_each_referral(store_url):
    upgrade(store_url, revision="0003")
    made, orphan = "r-" + "a" * 32, "r-" + "b" * 32
    seq = "" if store_url.startswith("postgresql") else ", seq"
    insert_referral = (
        "INSERT INTO referrals (id, created_at, date, profile, activity_id"
        f"{seq}) VALUES (:id, '2026-01-05T09:00:00+00:00', '2026-01-05', '{{}}', 'act-1'"
        f"{seq.replace(', ', ', :')})"
    )
    _execute(
        store_url,
        insert_referral,
        insert_referral,
        "INSERT INTO outcomes (referral_id, attended, sessions_attended, recorded_at,"
        " recorded_by, correction) VALUES (:id, 1, 2, '2026-01-06T09:00:00+00:00',"
        " 'user:bob', 0)",
        "INSERT INTO audit (at, actor, action, referral_id, outcome) VALUES"
        " ('2026-01-05T09:00:00.000+00:00', 'user:alice', 'referral.created', :id, 'ok')",
        "INSERT INTO audit (at, actor, action, referral_id, outcome) VALUES"
        " ('2026-01-05T10:00:00.000+00:00', 'user:carol', 'referral.read', :id, 'ok')",
        params=[
            {"id": made, "seq": 1},
            {"id": orphan, "seq": 2},
            {"id": made},
            {"id": made},
            {"id": orphan},
        ],  # fmt: skip
    )
    assert upgrade(store_url) == head() == current(store_url)
    with Store(store_url) as s:
        first, second = s.get(made), s.get(orphan)
        assert first.created_by == "user:alice"  # from the audit trail's referral.created
        assert second.created_by is None  # only a read was audited: nobody is guessed
        assert first.case is None and first.wellbeing is None
        assert [(o.attended, o.declined, o.wellbeing) for o in first.outcomes] == [
            (True, False, None)]  # fmt: skip
        assert second.outcomes == []
        s.add_demand("2026-01-07", "LS6", "walk", "65+", {"loneliness": 1})

    # Downgrading drops what 0004 added, keeps the rest, and upgrading again works.
    engine = create_engine(normalise_database_url(store_url), poolclass=NullPool)
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0003")
    engine.dispose()
    assert _execute(store_url, "SELECT COUNT(*) FROM outcomes") == [[(1,)]]
    assert upgrade(store_url) == head()
    with Store(store_url) as s:
        assert s.get(made).attended is True and list(s.demand_rows()) == []


def _utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


# --- referrals with a case, wellbeing, declined outcomes ----------------------------------------

BEFORE = {"life_satisfaction": 4, "worthwhile": 5, "happiness": 3, "anxiety": 8}
AFTER = {"life_satisfaction": 7, "worthwhile": 7, "happiness": 6, "anxiety": 4}


def test_case_wellbeing_and_creator_round_trip(store):
    rid = store.add_referral(PROFILE, "act-1", actor="user:alice", case="C-0042", wellbeing=BEFORE)
    ref = store.get(rid)
    assert (ref.case, ref.created_by, ref.wellbeing) == ("C-0042", "user:alice", BEFORE)
    assert ref.status == "open" and ref.declined is None and ref.wellbeing_after is None
    done = store.record_outcome(rid, True, 3, actor="user:alice", wellbeing=AFTER)
    assert done.status == "attended" and done.declined is False and done.wellbeing_after == AFTER
    assert store.get(rid).outcomes[0].wellbeing == AFTER
    # No case, no wellbeing: as a v1.0 referral.
    plain = store.get(store.add_referral(PROFILE, "act-2"))
    assert (plain.case, plain.created_by, plain.wellbeing) == (None, "system", None)


def test_a_declined_outcome(store):
    rid = store.add_referral(PROFILE, "act-1", actor="key:gp-system", case="c1")
    with pytest.raises(ValueError, match="^attended: expected false when declined is true$"):
        store.record_outcome(rid, True, declined=True)
    assert store.get(rid).outcomes == []  # nothing was stored
    ref = store.record_outcome(rid, False, 0, declined=True, actor="key:gp-system")
    assert ref.status == "declined" and ref.declined is True and ref.attended is False
    # A correction replaces it: the latest counts, the history stays.
    ref = store.record_outcome(rid, True, 1, correction=True, wellbeing=AFTER)
    assert ref.status == "attended" and [o.declined for o in ref.outcomes] == [True, False]
    assert store.record_outcome(
        store.add_referral(PROFILE, "act-2"), False
    ).status == "not_attended"  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"case": "Mary Smith"}, "case"),  # a space: a name is not a case reference
        ({"case": ""}, "case"),
        ({"case": "x" * 41}, "case"),
        ({"case": "C/1"}, "case"),
        ({"case": 42}, "case"),
        ({"wellbeing": {**BEFORE, "anxiety": 11}}, "wellbeing.anxiety"),
        ({"wellbeing": {**BEFORE, "happiness": -1}}, "wellbeing.happiness"),
        ({"wellbeing": {**BEFORE, "worthwhile": 5.5}}, "wellbeing.worthwhile"),
        ({"wellbeing": {**BEFORE, "worthwhile": True}}, "wellbeing.worthwhile"),
        ({"wellbeing": {**BEFORE, "note": 1}}, "wellbeing"),
        ({"wellbeing": {"anxiety": 3}}, "wellbeing"),
        ({"wellbeing": [1, 2, 3, 4]}, "wellbeing"),
    ],
)
def test_malformed_case_or_wellbeing_is_refused_naming_the_field(store, kwargs, field):
    with pytest.raises(ValueError, match=rf"^{field}: expected") as caught:
        store.add_referral(PROFILE, "act-1", **kwargs)
    assert "Mary" not in str(caught.value)
    rid = store.add_referral(PROFILE, "act-1")
    if "wellbeing" in kwargs:
        with pytest.raises(ValueError, match=rf"^{field}: expected"):
            store.record_outcome(rid, True, **kwargs)
    assert store.counts() == {"referrals": 1, "with_outcome": 0, "pending": 1}


def test_case_referrals_and_open_referrals_by_owner(store):
    a1 = store.add_referral(PROFILE, "act-1", actor="user:alice", case="C1", when=_utc(2026, 3, 1))
    a2 = store.add_referral(PROFILE, "act-2", actor="user:alice", case="C1", when=_utc(2026, 3, 2))
    b1 = store.add_referral(PROFILE, "act-3", actor="user:bob", case="C1", when=_utc(2026, 3, 3))
    a3 = store.add_referral(PROFILE, "act-4", actor="user:alice", case="C2", when=_utc(2026, 2, 1))
    a4 = store.add_referral(PROFILE, "act-5", actor="user:alice", when=_utc(2026, 3, 4))
    store.record_outcome(a2, True, 1, actor="user:alice")

    assert [r.id for r in store.case_referrals("C1")] == [a1, a2, b1]
    assert [r.id for r in store.case_referrals("C1", owner="user:alice")] == [a1, a2]
    assert store.case_referrals("C1", owner="user:carol") == []
    assert store.case_referrals("c1") == []  # case references are compared exactly
    assert store.case_referrals("no such case!") == []  # ill-formed: none, not an error
    assert store.case_referrals("C1")[1].attended is True

    assert [r.id for r in store.open_referrals("user:alice")] == [a3, a1, a4]  # oldest first
    assert [r.id for r in store.open_referrals("user:bob")] == [b1]
    assert [r.id for r in store.open_referrals()] == [a3, a1, b1, a4]
    assert [r.case for r in store.open_referrals("user:alice")] == ["C2", "C1", None]
    store.record_outcome(a1, False, declined=True)
    assert a1 not in [r.id for r in store.open_referrals()]


def test_referral_facts_hold_no_identifier(store):
    first = store.add_referral(
        {"id": "p-secret", "age": 80, "location": {"postcode": "LS6 3HN"},
         "needs": ["loneliness", "money"], "interests": "choir"},
        "act-1", case="C-private", wellbeing=BEFORE, when=_utc(2026, 3, 1),
    )  # fmt: skip
    second = store.add_referral({"location": {"lat": 53.8, "lon": -1.55}}, "act-2",
                                when=_utc(2026, 3, 2))  # fmt: skip
    third = store.add_referral({"location": {"postcode": "ls6"}, "needs": ["food"]}, "act-3",
                               when=_utc(2026, 3, 3))  # fmt: skip
    store.add_referral({"needs": ["digital"]}, "act-4", when=_utc(2026, 3, 4))
    store.record_outcome(first, True, 2)
    store.record_outcome(second, False, declined=True)
    store.record_outcome(third, False)
    facts = list(store.referral_facts())
    assert facts == [
        ("2026-03-01", "LS6", ("loneliness", "money"), "attended"),
        ("2026-03-02", None, (), "declined"),
        ("2026-03-03", "LS6", ("food",), "not_attended"),
        ("2026-03-04", None, ("digital",), None),
    ]
    assert [f.date for f in store.referral_facts(since=date(2026, 3, 3))] == [
        "2026-03-03", "2026-03-04"]  # fmt: skip
    flat = repr(facts)
    for secret in ("p-secret", "C-private", "choir", "r-", "80"):
        assert secret not in flat


def test_erase_and_purge_remove_the_new_data(store_url, store):
    old = store.add_referral(
        PROFILE, "act-1", case="OLD-1", wellbeing=BEFORE, when=_utc(2025, 1, 1)
    )
    store.record_outcome(old, False, declined=True, wellbeing=AFTER)
    gone = store.add_referral(PROFILE, "act-2", case="ERASE-1", wellbeing=BEFORE)
    store.record_outcome(gone, True, 1, wellbeing=AFTER)
    kept = store.add_referral(PROFILE, "act-3", case="KEEP-1")
    store.erase(gone, actor="user:alice")
    assert store.purge(date(2025, 6, 1)) == 1
    assert [r.id for r in store.referrals()] == [kept]
    rows = _execute(
        store_url,
        "SELECT case_ref, wellbeing FROM referrals",
        "SELECT COUNT(*) FROM outcomes",
    )
    assert [tuple(r) for r in rows[0]] == [("KEEP-1", None)] and rows[1] == [(0,)]
    # The audit trail holds ids and actors only: no case reference, no score.
    trail = repr(list(store.audit_lines()))
    assert "OLD-1" not in trail and "ERASE-1" not in trail and "KEEP-1" not in trail
    assert "life_satisfaction" not in trail


def test_the_uptake_export_carries_the_new_fields(store):
    rid = store.add_referral(PROFILE, "act-1", case="C9", wellbeing=BEFORE)
    ref = store.record_outcome(rid, False, 0, declined=True, wellbeing=AFTER)
    record = ref.to_uptake()
    assert record["declined"] is True and record["case"] == "C9"
    assert record["wellbeing_before"] == BEFORE and record["wellbeing_after"] == AFTER
    plain = store.record_outcome(store.add_referral(PROFILE, "act-2"), True, 1).to_uptake()
    assert not {"declined", "case", "wellbeing_before", "wellbeing_after"} & set(plain)


# --- the API: the contract's optional fields (§7) ----------------------------------------------


def _refer(client, catalogue, **extra):
    body = {"profile": PROFILE, "activity_id": catalogue.activities[0].id, **extra}
    return client.post("/v1/referrals", json=body)


def _problems(response) -> dict[str, str]:
    assert response.status_code == 422, response.get_json()
    assert response.mimetype == "application/problem+json"
    return {e["path"]: e["expected"] for e in response.get_json()["errors"]}


def test_the_api_takes_and_shows_case_wellbeing_and_declined(client, catalogue):
    r = _refer(client, catalogue, case="C-0042", wellbeing=BEFORE)
    assert r.status_code == 201
    rid = r.get_json()["referral_id"]
    shown = client.get(f"/v1/referrals/{rid}").get_json()
    assert (shown["case"], shown["wellbeing"], shown["status"]) == ("C-0042", BEFORE, "open")
    assert shown["created_by"] == "system"  # open mode: the service itself acts
    r = client.post(f"/v1/referrals/{rid}/outcome",
                    json={"attended": False, "declined": True, "wellbeing": AFTER})  # fmt: skip
    assert r.status_code == 200
    assert r.get_json()["declined"] is True and r.get_json()["wellbeing"] == AFTER
    shown = client.get(f"/v1/referrals/{rid}").get_json()
    assert shown["status"] == "declined"
    assert [(o["declined"], o["wellbeing"]) for o in shown["outcomes"]] == [(True, AFTER)]
    # A v1.0 client sends none of them and sees them empty.
    plain = _refer(client, catalogue).get_json()["referral_id"]
    assert client.post(f"/v1/referrals/{plain}/outcome", json={"attended": True}).status_code == 200
    shown = client.get(f"/v1/referrals/{plain}").get_json()
    assert (shown["case"], shown["wellbeing"], shown["status"]) == (None, None, "attended")
    assert shown["outcomes"][0]["declined"] is False


@pytest.mark.parametrize(
    ("extra", "path"),
    [
        ({"case": "Mary Smith"}, "case"),
        ({"case": "mary.smith@example.org"}, "case"),
        ({"case": "x" * 41}, "case"),
        ({"case": ""}, "case"),
        ({"case": 1234}, "case"),
        ({"wellbeing": {**BEFORE, "anxiety": 11}}, "wellbeing.anxiety"),
        ({"wellbeing": {**BEFORE, "anxiety": "7"}}, "wellbeing.anxiety"),
        ({"wellbeing": {**BEFORE, "anxiety": 7.0}}, "wellbeing.anxiety"),
        ({"wellbeing": {**BEFORE, "anxiety": True}}, "wellbeing.anxiety"),
        ({"wellbeing": {**BEFORE, "mood": "Mary is low"}}, "wellbeing.mood"),
        ({"wellbeing": {"life_satisfaction": 5}}, "wellbeing.worthwhile"),
        ({"wellbeing": "Mary is fine"}, "wellbeing"),
    ],
)
def test_a_bad_case_or_baseline_is_422_naming_the_field_never_the_value(
    client, catalogue, extra, path
):
    r = _refer(client, catalogue, **extra)
    problems = _problems(r)
    assert path in problems
    body = r.get_data(as_text=True)
    assert "Mary" not in body and "mary" not in body and "xxxxx" not in body


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"attended": True, "declined": True}, "attended"),
        ({"attended": False, "declined": "yes"}, "declined"),
        ({"attended": False, "declined": 1}, "declined"),
        ({"attended": True, "wellbeing": {**AFTER, "happiness": -1}}, "wellbeing.happiness"),
        ({"attended": True, "wellbeing": {**AFTER, "note": "Mary"}}, "wellbeing.note"),
        ({"attended": False, "declined": True, "sessions_attended": 3}, "sessions_attended"),
    ],
)
def test_a_bad_outcome_is_422_naming_the_field_never_the_value(client, catalogue, body, path):
    rid = _refer(client, catalogue).get_json()["referral_id"]
    r = client.post(f"/v1/referrals/{rid}/outcome", json=body)
    assert path in _problems(r)
    assert "Mary" not in r.get_data(as_text=True) and "yes" not in r.get_data(as_text=True)
    assert client.get(f"/v1/referrals/{rid}").get_json()["outcomes"] == []  # nothing stored


def test_the_uptake_contract_reads_old_and_new_records():
    from matcher.contract import parse_uptake
    from matcher.errors import InvalidUptake

    old = {"referral_id": "r-1", "date": "2026-03-14", "profile": {}, "activity_id": "a",
           "attended": True}  # fmt: skip
    assert parse_uptake(old).to_dict() == old
    new = {**old, "attended": False, "declined": True, "case": "C-1",
           "wellbeing_before": BEFORE, "wellbeing_after": AFTER}  # fmt: skip
    assert parse_uptake(new).to_dict() == new
    with pytest.raises(InvalidUptake) as caught:
        parse_uptake({**new, "attended": True})
    assert caught.value.problems[0][0] == "declined"
    with pytest.raises(InvalidUptake) as caught:
        parse_uptake({**new, "case": "Mary Smith"})
    assert caught.value.problems == [
        ("case", "expected 1-40 letters, digits, - or _ (a case reference, never a name)")
    ]


def test_the_openapi_document_describes_the_new_fields_and_the_fhir_endpoint(client):
    doc = client.get("/openapi.json").get_json()
    schemas = doc["components"]["schemas"]
    referral = next(v for k, v in schemas.items() if k.startswith("ReferralRequest"))
    assert {"case", "wellbeing"} <= set(referral["properties"])
    assert "case" not in referral.get("required", [])
    outcome = next(v for k, v in schemas.items() if k.startswith("OutcomeRequest"))
    assert {"declined", "wellbeing"} <= set(outcome["properties"])
    ons4 = next(v for k, v in schemas.items() if k.startswith("Wellbeing"))
    assert set(ons4["required"]) == {"life_satisfaction", "worthwhile", "happiness", "anxiety"}
    assert ons4["properties"]["anxiety"]["maximum"] == 10
    fhir = doc["paths"]["/v1/referrals/{referral_id}/fhir"]["get"]
    assert "application/fhir+json" in fhir["responses"]["200"]["content"]
    assert "871731000000106" in fhir["description"]


def test_training_reads_uptake_with_the_new_fields_like_old_records(tmp_path, catalogue):
    from training.uptake import load_uptake

    ids = [a.id for a in catalogue.activities[:3]]
    lines = [
        {"referral_id": "r-1", "date": "2026-03-01", "profile": {"needs": ["loneliness"]},
         "activity_id": ids[0], "attended": True},
        {"referral_id": "r-2", "date": "2026-03-02", "profile": {"needs": ["money"]},
         "activity_id": ids[1], "attended": True, "case": "C-1", "wellbeing_before": BEFORE,
         "wellbeing_after": AFTER},
        {"referral_id": "r-3", "date": "2026-03-03", "profile": {"needs": ["food"]},
         "activity_id": ids[2], "attended": False, "declined": True, "case": "C-2"},
    ]  # fmt: skip
    path = tmp_path / "uptake.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), "utf-8")
    data = load_uptake(path, catalogue, log=None, for_training=False, min_rows=1,
                       min_referrals=1)  # fmt: skip
    assert data.bad_lines == [] and len(data) == 3
    assert data.outcome.tolist() == [1, 1, 0]  # a decline is a referral not attended


def test_the_uptake_export_file_carries_the_new_fields(store, tmp_path):
    from training.export import export_uptake

    declined = store.add_referral(PROFILE, "act-1", case="C-7", wellbeing=BEFORE)
    store.record_outcome(declined, False, 0, declined=True, wellbeing=AFTER)
    store.record_outcome(store.add_referral(PROFILE, "act-2"), True, 2)
    out = tmp_path / "uptake.jsonl"
    report = export_uptake(store, out)
    assert (report.exported, report.invalid) == (2, 0)
    first, second = (json.loads(line) for line in out.read_text("utf-8").splitlines())
    assert (first["declined"], first["case"]) == (True, "C-7")
    assert (first["wellbeing_before"], first["wellbeing_after"]) == (BEFORE, AFTER)
    assert not {"declined", "case", "wellbeing_before", "wellbeing_after"} & set(second)
