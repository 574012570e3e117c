"""Follow-up: the caseload (a link worker's own open referrals by case, those due first,
overdue marked; an admin sees everyone's), the case view with its outcome form (went, did not
go, chose not to go; sessions; ONS4 at follow-up) and the change from baseline."""

from __future__ import annotations

import html
import re
from datetime import date, datetime, timedelta, timezone

import pytest
from api_support import PASSWORD, PROFILE, SECRET, make_app, make_governed_app, page_post, sign_in

from matcher.service.pages import change, followup

pytest_plugins = ["conftest_api"]  # the catalogue fixture

BEFORE = {"life_satisfaction": 4, "worthwhile": 5, "happiness": 3, "anxiety": 8}


def days_ago(n: int) -> datetime:
    return datetime.now(timezone.utc) - timedelta(days=n)


@pytest.fixture
def app(tmp_path, catalogue):
    app = make_governed_app(tmp_path, catalogue)
    store = app.extensions["matcher"].store
    store.add_user("bob", "link_worker", PASSWORD, actor="system")
    store.add_user("ada", "admin", PASSWORD, actor="system")
    return app


def refer(app, case: str | None, age_days: int, actor: str = "user:alice", k: int = 0) -> str:
    svc = app.extensions["matcher"]
    activity = svc.catalogue.activities[k].id
    return svc.store.add_referral(PROFILE, activity, actor=actor, when=days_ago(age_days),
                                  case=case, wellbeing=BEFORE)  # fmt: skip


def case_order(text: str) -> list[str]:
    return re.findall(r'<a href="/cases/([^"]+)">Case ', text)


def test_due_first_then_by_date_and_overdue_marked(app):
    refer(app, "NOT-YET", 3)  # first follow-up in 11 days
    refer(app, "DUE", 16)  # due 2 days ago
    refer(app, "LATE", 30)  # due 16 days ago: overdue
    refer(app, "BOBS", 30, actor="user:bob")
    client = app.test_client()
    sign_in(client)
    text = client.get("/caseload").get_data(as_text=True)
    assert case_order(text) == ["LATE", "DUE", "NOT-YET"]  # bob's is not alice's
    late, due, later = re.split(r'<li class="case-group', text)[1:4]
    assert "Overdue" in late and "overdue" in late
    assert "Due now" in due and "Overdue" not in due
    assert "Due now" not in later and "due on" in later
    admin = app.test_client()
    sign_in(admin, "ada")
    assert set(case_order(admin.get("/caseload").get_data(as_text=True))) == {
        "LATE", "DUE", "NOT-YET", "BOBS"}  # fmt: skip


def test_the_weeks_are_a_setting(tmp_path, catalogue):
    app = make_app(tmp_path, catalogue, MATCHER_SECRET_KEY=SECRET, MATCHER_FOLLOWUP_WEEKS=[1])
    refer(app, "EIGHT-DAYS", 8)
    refer(app, "THREE-DAYS", 3)
    text = app.test_client().get("/caseload").get_data(as_text=True)  # open mode: everyone's
    assert case_order(text) == ["EIGHT-DAYS", "THREE-DAYS"]
    assert "1-week follow-up due since" in text


def test_followup_dates():
    class Ref:
        def __init__(self, made: date, latest=None, status="open"):
            self.date, self.latest, self.status = made.isoformat(), latest, status

    class Latest:
        def __init__(self, at: date):
            self.recorded_at = at.isoformat() + "T10:00:00+00:00"

    today = date(2026, 3, 1)
    made = today - timedelta(days=20)
    first = followup(Ref(made), (2, 6), today)
    assert first["weeks"] == 2 and first["due_now"] and not first["overdue"]
    # Went, recorded at two weeks: next is the six-week follow-up, not yet due.
    went = Ref(made, Latest(made + timedelta(days=15)), "attended")
    second = followup(went, (2, 6), today)
    assert second["weeks"] == 6 and not second["due_now"]
    assert followup(Ref(made, Latest(today), "declined"), (2, 6), today) is None
    assert followup(Ref(made - timedelta(weeks=8), Latest(today), "attended"), (2, 6), today) \
        is None  # fmt: skip


def test_change_from_baseline_says_which_way_is_better():
    after = {"life_satisfaction": 6, "worthwhile": 5, "happiness": 2, "anxiety": 5}
    got = {c["key"]: (c["delta"], c["word"]) for c in change(BEFORE, after)}
    assert got == {"life_satisfaction": (2, "better"), "worthwhile": (0, "no change"),
                   "happiness": (-1, "worse"), "anxiety": (-3, "better")}  # fmt: skip
    assert change(None, after) == [] and change(BEFORE, None) == []


def test_record_an_outcome_with_wellbeing_and_see_the_change(app):
    rid = refer(app, "C-7", 15)
    client = app.test_client()
    sign_in(client)
    form = {"referral_id": rid, "outcome": "attended", "sessions_attended": "3",
            f"{rid}-wb-life_satisfaction": "6", f"{rid}-wb-worthwhile": "7",
            f"{rid}-wb-happiness": "5", f"{rid}-wb-anxiety": "4"}  # fmt: skip
    answer = page_post(client, "/cases/C-7/outcome", form)
    assert answer.status_code == 303 and f"saved={rid}" in answer.headers["Location"]
    stored = app.extensions["matcher"].store.get(rid)
    assert stored.attended is True and stored.sessions_attended == 3
    assert stored.wellbeing_after == {"life_satisfaction": 6, "worthwhile": 7, "happiness": 5,
                                      "anxiety": 4}  # fmt: skip
    assert stored.latest.recorded_by == "user:alice"
    text = html.unescape(client.get("/cases/C-7").get_data(as_text=True))
    changes = re.findall(r'<td class="change">([^<]+)</td>', text)
    assert changes == ["+2 (better)", "+2 (better)", "+2 (better)", "-4 (better)"]
    assert "for anxiety, lower is better" in text
    # Went: asked again at six weeks; the form now corrects.
    assert 'name="correction" value="1"' in text


def test_declined_closes_the_referral(app):
    rid = refer(app, "C-8", 15)
    client = app.test_client()
    sign_in(client)
    answer = page_post(client, "/cases/C-8/outcome", {"referral_id": rid, "outcome": "declined"})
    assert answer.status_code == 303
    stored = app.extensions["matcher"].store.get(rid)
    assert stored.declined is True and stored.attended is False
    assert "C-8" not in case_order(client.get("/caseload").get_data(as_text=True))
    # Declined activities are not on the person's plan any more.
    assert 'class="plan-item"' not in client.get("/plans/C-8").get_data(as_text=True)


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({}, "Did they go: Choose went, did not go, or chose not to go"),
        ({"outcome": "attended", "sessions_attended": "three"},
         "How many sessions: Enter a whole number of sessions"),
        ({"outcome": "attended", "sessions_attended": "0"}, "How many sessions: Enter at least 1"),
        ({"outcome": "not_attended", "WB-anxiety": "3"},
         "Wellbeing: Life satisfaction: Choose a score from 0 to 10, or leave all four"),
    ],
)  # fmt: skip
def test_outcome_errors_name_the_field(app, form, message):
    rid = refer(app, "C-9", 15)
    client = app.test_client()
    sign_in(client)
    data = {k.replace("WB", f"{rid}-wb"): v for k, v in form.items()}
    answer = page_post(client, "/cases/C-9/outcome", {"referral_id": rid, **data})
    assert answer.status_code == 422
    text = html.unescape(answer.get_data(as_text=True))
    assert message in text
    assert app.extensions["matcher"].store.get(rid).latest is None


def test_outcome_form_is_csrf_protected_and_owned(app):
    rid = refer(app, "C-10", 15)
    client = app.test_client()
    sign_in(client)
    data = {"referral_id": rid, "outcome": "attended"}
    assert page_post(client, "/cases/C-10/outcome", data, token="forged").status_code == 403
    other = app.test_client()
    sign_in(other, "bob")
    assert page_post(other, "/cases/C-10/outcome", data).status_code == 404
    assert app.extensions["matcher"].store.get(rid).latest is None
