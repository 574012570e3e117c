"""The demand record and the provision report: one anonymous line per match (never a profile id
or free text, and never a failed match for a failed line); the report by need and district,
with every count from 1 to 4 suppressed and no suppressed count recoverable from the totals, in
every output (JSON, CSV, the page, the command line's file)."""

from __future__ import annotations

import csv
import io
import json
import logging
import re

import pytest
from api_support import (
    PASSWORD,
    PROFILE,
    make_app,
    make_governed_app,
    page_post,
    sign_in,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, inspect, select, text

from matcher.cli import main
from matcher.contract import parse_profile
from matcher.demand import age_band, demand_line, district_of, within_reach
from matcher.provision import COUNTS, PRIMARY, SECONDARY, THRESHOLD, provision_report
from matcher.store import upgrade

pytest_plugins = ["conftest_api", "store_support"]  # the catalogue and store_url fixtures

DISTRICTS = ["LS6", "LS7", "LS8", "BD1", None]
NEED_CODES = ["loneliness", "money", "food"]
MARKS = (PRIMARY, SECONDARY)


# --- the demand line --------------------------------------------------------------------------


def test_the_line_holds_bands_and_counts_not_the_profile(catalogue):
    profile = parse_profile({**PROFILE, "age": 71})
    line = demand_line(profile, catalogue)
    assert line.district == "LS6" and line.travel == "public_transport"
    assert line.age_band == "65+"
    assert set(line.within_reach) == {"loneliness", "physical_activity"}
    assert all(isinstance(n, int) and n >= 0 for n in line.within_reach.values())
    assert age_band(39) == "<40" and age_band(40) == "40-64" and age_band(None) == "unknown"
    assert district_of(parse_profile({"location": {"lat": 53.8, "lon": -1.55}})) is None


def test_within_reach_counts_what_the_filters_allow(catalogue):
    """Online only, no place: every active online activity serving the need is within reach,
    counted here from the activities themselves."""
    for need in ("loneliness", "money", "digital"):
        profile = parse_profile({"needs": [need], "online": "only"})
        expected = sum(
            1
            for i, a in enumerate(catalogue.activities)
            if a.online and a.status == "active" and need in catalogue.needs_of(i)[0]
        )
        assert within_reach(profile, catalogue) == {need: expected}


def test_reach_grows_with_distance(catalogue):
    near = within_reach(parse_profile({**PROFILE, "max_travel_km": 1.0}), catalogue)
    far = within_reach(parse_profile({**PROFILE, "max_travel_km": 30.0}), catalogue)
    assert all(far[n] >= near[n] for n in near) and far != near


def _raw_demand(app) -> list[dict]:
    """The demand table as stored, every column, read past the store's own methods."""
    engine = create_engine(app.extensions["matcher.settings"].store_url())
    try:
        with engine.connect() as conn:
            return [dict(r) for r in conn.execute(text("SELECT * FROM demand")).mappings()]
    finally:
        engine.dispose()


def test_the_demand_table_never_holds_a_profile_id_or_free_text(tmp_path, catalogue):
    app = make_app(tmp_path, catalogue)
    client = app.test_client()
    secret_id, secret_text = "p-ZEBRA-4417-unique", "xylophone quartet on Thursdays at Aunt Mabel"
    profile = {**PROFILE, "id": secret_id, "interests": secret_text, "gender": "female",
               "location": {"postcode": "LS6 3HN"}}  # fmt: skip
    assert client.post("/v1/match", json={"profile": profile}).status_code == 200
    form = {"needs": ["money"], "postcode": "LS7 1AB", "age": "44", "interests": secret_text}
    assert page_post(client, "/", form).status_code == 200
    rows = _raw_demand(app)
    assert len(rows) == 2
    engine = create_engine(app.extensions["matcher.settings"].store_url())
    columns = {c["name"] for c in inspect(engine).get_columns("demand")}
    engine.dispose()
    assert columns <= {"id", "day", "district", "travel", "age_band", "within_reach"}
    dump = json.dumps(rows, default=str)
    for value in (secret_id, "xylophone", "Mabel", "female", "3HN", "LS6 3", "1AB", "interests"):
        assert value not in dump
    for row in rows:  # the exact age is nowhere: only a band, and counts under need codes
        assert set(json.loads(row["within_reach"])) <= {"loneliness", "physical_activity", "money"}
    assert [r["district"] for r in rows] == ["LS6", "LS7"]
    assert [r["age_band"] for r in rows] == ["65+", "40-64"]
    assert set(json.loads(rows[1]["within_reach"])) == {"money"}


def test_a_failed_demand_line_never_fails_the_match(tmp_path, catalogue, caplog):
    app = make_app(tmp_path, catalogue)
    svc = app.extensions["matcher"]

    def broken(*args, **kwargs):
        raise RuntimeError("the disk is full")

    svc.store.add_demand = broken
    caplog.set_level(logging.WARNING, logger="matcher.api")
    client = app.test_client()
    answer = client.post("/v1/match", json={"profile": {**PROFILE, "id": "p-secret-9"}})
    assert answer.status_code == 200 and answer.json["matches"]
    assert page_post(client, "/", {"needs": ["money"], "postcode": "LS7"}).status_code == 200
    assert svc.demand_failures == 2
    lines = [r.getMessage() for r in caplog.records if "demand_not_recorded" in r.getMessage()]
    assert len(lines) == 2 and '"error": "RuntimeError"' in lines[0]
    assert not any("p-secret-9" in m or "LS6" in m or "allotment" in m for m in lines)


# --- suppression ------------------------------------------------------------------------------

demand_lines = st.lists(
    st.fixed_dictionaries({
        "district": st.sampled_from(DISTRICTS),
        "within_reach": st.dictionaries(st.sampled_from(NEED_CODES), st.integers(0, 6),
                                        max_size=3),
    }),
    max_size=60,
)  # fmt: skip
facts = st.lists(
    st.fixed_dictionaries({
        "district": st.sampled_from(DISTRICTS),
        "needs": st.lists(st.sampled_from(NEED_CODES), max_size=2, unique=True),
        "outcome": st.sampled_from([None, "attended", "not_attended", "declined"]),
    }),
    max_size=40,
)  # fmt: skip


def _no_small_number(rows: list[dict]) -> None:
    for row in rows:
        for name in COUNTS:
            value = row[name]
            if isinstance(value, str) and value in MARKS:
                continue
            assert int(value) == 0 or int(value) >= THRESHOLD, (name, value)


def _recover(rows: list[dict]) -> dict[tuple, int]:
    """What a reader can work out exactly from the shown numbers alone: a sum with one
    unknown term gives it (a need's "All" row over its districts, per column; searched =
    fewer_than_3 + the rest; referrals = attended + the rest), repeated until nothing more
    comes out. Returns the unknowns worked out, by (need, district, what)."""
    known: dict[tuple, int] = {}
    sums: list[tuple[tuple, list[tuple]]] = []
    for row in rows:
        key = (row["need"], row["district"])
        for name in COUNTS:
            if isinstance(row[name], int):
                known[(*key, name)] = row[name]
        sums.append(((*key, "searched"), [(*key, "fewer_than_3"), (*key, "not_few")]))
        sums.append(((*key, "referrals"), [(*key, "attended"), (*key, "not_attended")]))
    for need in {r["need"] for r in rows}:
        districts = [r["district"] for r in rows if r["need"] == need and r["district"] != "All"]
        for name in COUNTS:
            sums.append(((need, "All", name), [(need, d, name) for d in districts]))
    found: dict[tuple, int] = {}
    while True:
        progress = False
        for total, parts in sums:
            members = [total, *parts]
            unknown = [m for m in members if m not in known]
            if len(unknown) != 1:
                continue
            (m,) = unknown
            if m == total:
                value = sum(known[p] for p in parts)
            else:
                value = known[total] - sum(known[p] for p in parts if p != m)
            known[m] = found[m] = value
            progress = True
        if not progress:
            return found


def _check_report(rows: list[dict]) -> None:
    _no_small_number(rows)
    for where, value in _recover(rows).items():
        assert not 0 < value < THRESHOLD, f"{where} can be worked out from the totals"
    for row in rows:  # a rate only from two shown counts
        pairs = {"referral_rate": ("referrals", "searched"),
                 "attendance_rate": ("attended", "referrals")}  # fmt: skip
        for rate, (top, bottom) in pairs.items():
            if row[rate] not in (SECONDARY, None):
                assert isinstance(row[top], int) and isinstance(row[bottom], int)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(demand_lines, facts)
def test_no_number_below_5_and_none_recoverable(lines, referral_facts):
    report = provision_report(lines, referral_facts)
    rows = report.to_dict()["rows"]
    _check_report(rows)
    # The CSV says the same, cell for cell.
    parsed = list(csv.DictReader(io.StringIO(report.csv_text())))
    assert len(parsed) == len(rows)
    for got, row in zip(parsed, rows, strict=True):
        for name in COUNTS:
            assert got[name] == str(row[name])


def test_a_total_of_six_over_a_small_and_a_hidden_cell_is_hidden():
    """1 + 5 = 6: with "<5" (1-4) and "[c]" (0 or 5 and more) a reader would know 1 and 5."""
    lines = [{"district": "LS1", "within_reach": {"food": 9}}] + [
        {"district": "LS2", "within_reach": {"food": 9}}
    ] * 5
    rows = provision_report(lines).to_dict()["rows"]
    assert [r["searched"] for r in rows] == [PRIMARY, SECONDARY, SECONDARY]


def test_one_suppressed_cell_in_a_shown_total_takes_another_with_it():
    lines = (
        [{"district": "LS1", "within_reach": {"food": 9}}] * 2
        + [{"district": "LS2", "within_reach": {"food": 9}}] * 7
        + [{"district": "LS3", "within_reach": {"food": 9}}] * 30
    )
    rows = {r["district"]: r for r in provision_report(lines).to_dict()["rows"]}
    assert rows["LS1"]["searched"] == PRIMARY
    assert rows["LS2"]["searched"] == SECONDARY  # the smallest other cell, not the total
    assert rows["LS3"]["searched"] == 30 and rows["All"]["searched"] == 39


def test_within_a_row_the_rest_is_protected_too():
    """12 searched, 10 with fewer than 3: showing both would say that 2 had 3 or more."""
    lines = [{"district": "LS1", "within_reach": {"food": 1}}] * 10 + [
        {"district": "LS1", "within_reach": {"food": 5}}
    ] * 2
    row = provision_report(lines).to_dict()["rows"][0]
    assert SECONDARY in (row["searched"], row["fewer_than_3"])


def test_zero_is_shown_and_rates_need_both_counts():
    lines = [{"district": "LS1", "within_reach": {"food": 0}}] * 8
    facts_ = [{"district": "LS1", "needs": ["food"], "outcome": "attended"}] * 6
    row = provision_report(lines, facts_).to_dict()["rows"][0]
    assert row["searched"] == 8 and row["fewer_than_3"] == 8
    assert row["referrals"] == 6 and row["attended"] == 6
    assert row["referral_rate"] == 0.75 and row["attendance_rate"] == 1.0
    facts_ = facts_[:3]
    row = provision_report(lines, facts_).to_dict()["rows"][0]
    assert row["referrals"] == PRIMARY and row["referral_rate"] == SECONDARY


# --- the report's faces: API, page, command line ----------------------------------------------


def _seeded(svc, random_lines: list[dict]) -> None:
    for line in random_lines:
        svc.store.add_demand("2026-11-01", line["district"], None, "unknown", line["within_reach"])


@pytest.fixture
def governed(tmp_path, catalogue):
    app = make_governed_app(tmp_path, catalogue)
    svc = app.extensions["matcher"]
    svc.store.add_user("mo", "maintainer", PASSWORD, actor="system")
    # A commissioner's gap: many searches for food in BD1, where the catalogue has little.
    lines = (
        [{"district": "BD1", "within_reach": {"food": 1}}] * 23
        + [{"district": "LS6", "within_reach": {"food": 7, "money": 2}}] * 9
        + [{"district": "LS7", "within_reach": {"food": 4, "money": 0}}] * 3
    )
    _seeded(svc, lines)
    return app


def _count_cells(html: str) -> list[str]:
    return re.findall(r'<td class="count">([^<]*)</td>', html)


def test_the_page_is_for_maintainers_and_shows_the_gap(governed):
    client = governed.test_client()
    sign_in(client)  # alice, a link worker
    assert client.get("/reports").status_code == 403
    client = governed.test_client()
    sign_in(client, "mo")
    page = client.get("/reports")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "<svg" in html and "<script" not in html
    cells = _count_cells(html)
    assert cells and all(c in ("<5", "[c]", "&lt;5") or c == "0" or int(c) >= 5 for c in cells)
    bd1 = re.search(r"<td>BD1</td>\s*<td class=\"count\">23</td>\s*<td class=\"count\">23</td>",
                    html)  # fmt: skip
    assert bd1, "the district with 23 searches and 23 short of activities"
    download = client.get("/reports/provision.csv")
    assert download.status_code == 200 and download.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(download.get_data(as_text=True))))
    _check_report([{k: (int(v) if v.isdigit() else v) for k, v in r.items()} for r in rows])


def test_the_api_needs_the_reports_scope(governed):
    svc = governed.extensions["matcher"]
    client = governed.test_client()
    match_only = svc.store.create_key("matching", ["match"], actor="system")
    headers = {"Authorization": f"Bearer {match_only}"}
    assert client.get("/v1/reports/provision").status_code == 401
    assert client.get("/v1/reports/provision", headers=headers).status_code == 403
    reader = svc.store.create_key("commissioner", ["reports:read"], actor="system")
    commissioner = {"Authorization": f"Bearer {reader}"}
    answer = client.get("/v1/reports/provision", headers=commissioner)
    assert answer.status_code == 200 and answer.json["rows"]
    assert client.post("/v1/match", json={"profile": PROFILE}, headers=commissioner).status_code \
        == 403  # fmt: skip


def test_json_csv_and_the_command_line_agree(tmp_path, catalogue, monkeypatch):
    app = make_app(tmp_path, catalogue, MATCHER_API_KEYS="a-bootstrap-key")
    svc = app.extensions["matcher"]
    lines = [{"district": d, "within_reach": {"food": n}}
             for d, n in [("LS6", 1)] * 12 + [("LS7", 4)] * 3 + [("BD1", 0)] * 6]  # fmt: skip
    _seeded(svc, lines)
    client = app.test_client()
    headers = {"Authorization": "Bearer a-bootstrap-key"}
    answer = client.get("/v1/reports/provision", headers=headers)
    assert answer.status_code == 200
    rows = answer.json["rows"]
    _check_report(rows)
    searched = {r["district"]: r["searched"] for r in rows}
    assert searched["LS6"] == 12 and searched["LS7"] == PRIMARY and searched["BD1"] == SECONDARY
    # 21 searched and 18 short over all districts would say that 3 were not: one is hidden.
    assert SECONDARY in (rows[-1]["searched"], rows[-1]["fewer_than_3"])
    as_csv = client.get("/v1/reports/provision?format=csv", headers=headers)
    assert as_csv.mimetype == "text/csv"
    assert client.get("/v1/reports/provision?since=yesterday", headers=headers).status_code == 422
    out = tmp_path / "provision.csv"
    for name in ("MATCHER_API_KEYS", "MATCHER_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    url = app.extensions["matcher.settings"].store_url()
    assert main(["report", "provision", "--out", str(out), "--database", url]) == 0
    assert out.read_text("utf-8") == as_csv.get_data(as_text=True)
    assert main(["report", "provision", "--out", str(out), "--database", url,
                 "--since", "1st May"]) == 2  # fmt: skip


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(demand_lines)
def test_no_small_number_in_any_output(tmp_path_factory, catalogue, lines):
    """Random demand records through the store, then every face of the report."""
    folder = tmp_path_factory.mktemp("faces")
    app = make_app(folder, catalogue, MATCHER_API_KEYS="a-bootstrap-key")
    _seeded(app.extensions["matcher"], lines)
    client = app.test_client()
    api = client.get("/v1/reports/provision", headers={"Authorization": "Bearer a-bootstrap-key"})
    _check_report(api.json["rows"])
    page = client.get("/reports").get_data(as_text=True)
    for cell in _count_cells(page):
        assert cell in ("&lt;5", "[c]") or cell == "0" or int(cell) >= THRESHOLD
    out = folder / "provision.csv"
    url = app.extensions["matcher.settings"].store_url()
    assert main(["report", "provision", "--out", str(out), "--database", url]) == 0
    for row in csv.DictReader(io.StringIO(out.read_text("utf-8"))):
        for name in COUNTS:
            assert row[name] in MARKS or row[name] == "0" or int(row[name]) >= THRESHOLD
    app.extensions["matcher"].store.close()


def test_the_store_reads_back_what_the_report_needs(tmp_path, catalogue):
    app = make_app(tmp_path, catalogue)
    client = app.test_client()
    for _ in range(3):
        client.post("/v1/match", json={"profile": PROFILE})
    rows = list(app.extensions["matcher"].store.demand_rows())
    assert len(rows) == 3 and rows[0].district == "LS6"
    engine = create_engine(app.extensions["matcher.settings"].store_url())
    try:
        with engine.connect() as conn:
            assert conn.execute(select(text("count(*)")).select_from(text("demand"))).scalar() == 3
    finally:
        engine.dispose()


def test_the_report_from_sqlite_and_postgresql(store_url, tmp_path, catalogue):
    """Searches and referrals through the service, on either database, into the report."""
    upgrade(store_url)
    app = make_app(tmp_path, catalogue, MATCHER_DATABASE_URL=store_url,
                   MATCHER_API_KEYS="a-bootstrap-key")  # fmt: skip
    svc = app.extensions["matcher"]
    client = app.test_client()
    headers = {"Authorization": "Bearer a-bootstrap-key"}
    for k in range(6):
        assert client.post("/v1/match", json={"profile": PROFILE}, headers=headers).status_code \
            == 200  # fmt: skip
        made = client.post("/v1/referrals", headers=headers, json={
            "profile": PROFILE, "activity_id": catalogue.activities[k].id})  # fmt: skip
        rid = made.json["referral_id"]
        client.post(f"/v1/referrals/{rid}/outcome", json={"attended": True}, headers=headers)
    rows = client.get("/v1/reports/provision", headers=headers).json["rows"]
    lonely = next(r for r in rows if r["need"] == "loneliness" and r["district"] == "LS6")
    assert lonely == {"need": "loneliness", "district": "LS6", "searched": 6, "fewer_than_3": 0,
                      "referrals": 6, "attended": 6, "referral_rate": 1.0,
                      "attendance_rate": 1.0}  # fmt: skip
    out = tmp_path / "provision.csv"
    assert main(["report", "provision", "--out", str(out), "--database", store_url]) == 0
    as_csv = client.get("/v1/reports/provision?format=csv", headers=headers)
    assert out.read_text("utf-8") == as_csv.get_data(as_text=True)
    svc.store.close()
