"""The person's plan from the page: ticked suggestions become one referral each under a case
reference, by the signed-in link worker, CSRF-protected; the plan page speaks to the person
and carries no health information; errors name the field."""

from __future__ import annotations

import html
import re

import pytest
from api_support import PASSWORD, csrf_token, make_governed_app, page_post, sign_in

from matcher.service.pages import NEED_LABELS

pytest_plugins = ["conftest_api"]  # the catalogue fixture

SEARCH = {
    "needs": ["loneliness", "physical_activity"], "postcode": "LS6 3HN", "age": "71",
    "interests": "allotment, zebra-knitting", "travel": "public_transport", "online": "no",
}  # fmt: skip
BASELINE = {"wb-life_satisfaction": "4", "wb-worthwhile": "5", "wb-happiness": "3",
            "wb-anxiety": "8"}  # fmt: skip


@pytest.fixture
def app(tmp_path, catalogue):
    app = make_governed_app(tmp_path, catalogue)
    app.extensions["matcher"].store.add_user("bob", "link_worker", PASSWORD, actor="system")
    return app


def results(client) -> dict:
    """Search as the page does; what the plan form carries, and the suggestions' ids."""
    page = page_post(client, "/", SEARCH).get_data(as_text=True)
    hidden = dict(re.findall(r'name="(profile|shown)" value="([^"]*)"', page))
    ids = re.findall(r'id="plan-\d+" name="activity_id" value="([^"]+)"', page)
    assert len(ids) >= 3
    return {"profile": html.unescape(hidden["profile"]), "shown": hidden["shown"], "ids": ids}


def make_plan(client, found: dict, case: str = "C-2031", ticked: int = 3, **extra):
    data = {"profile": found["profile"], "shown": found["shown"], "case": case,
            "activity_id": found["ids"][:ticked], **extra}  # fmt: skip
    return page_post(client, "/plans", data)


def test_ticked_suggestions_become_a_plan(app):
    client = app.test_client()
    sign_in(client)
    found = results(client)
    answer = make_plan(client, found, **BASELINE)
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/plans/C-2031")
    store = app.extensions["matcher"].store
    refs = store.case_referrals("C-2031")
    assert [r.activity_id for r in refs] == found["ids"][:3]
    assert all(r.created_by == "user:alice" for r in refs)
    assert all(r.wellbeing == {"life_satisfaction": 4, "worthwhile": 5, "happiness": 3,
                               "anxiety": 8} for r in refs)  # fmt: skip
    assert all(r.shown == found["shown"].split(",") for r in refs)
    trail = [line["action"] for line in store.audit_lines()]
    assert trail.count("referral.created") == 3

    page = client.get("/plans/C-2031")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    catalogue = app.extensions["matcher"].catalogue
    for activity_id in found["ids"][:3]:
        assert html.escape(catalogue.get(activity_id).name) in text
    assert text.count('class="plan-item"') == 3
    assert "What to say when you call" in text and "my link worker suggested" in text
    assert "Every " in text  # sessions in words
    # No health information: no need, no age, no wellbeing.
    for label in NEED_LABELS.values():
        assert label not in text
    main = text.split("<main", 1)[1]
    for word in ("71", "anxious", "wellbeing", "Wellbeing", "zebra", "LS6 3HN"):
        assert word not in main


def test_the_plan_needs_the_pages_csrf_token(app):
    client = app.test_client()
    sign_in(client)
    found = results(client)
    data = {"profile": found["profile"], "shown": found["shown"], "case": "C-1",
            "activity_id": found["ids"][:2]}  # fmt: skip
    assert client.post("/plans", data=data, headers={"Origin": "http://localhost"}).status_code \
        == 403  # fmt: skip
    assert page_post(client, "/plans", data, token="forged").status_code == 403
    assert app.extensions["matcher"].store.case_referrals("C-1") == []


@pytest.mark.parametrize(
    ("case", "ticked", "extra", "message"),
    [
        ("Mrs Smith", 2, {}, "Case reference: Enter 1 to 40 letters, digits, - or _"),
        ("x" * 41, 2, {}, "Case reference: Enter 1 to 40"),
        ("C-9", 0, {}, "Suggestions: Tick at least one suggestion"),
        ("C-9", 2, {"wb-happiness": "7"}, "Wellbeing: Life satisfaction: Choose a score"),
        ("C-9", 2, {**BASELINE, "wb-anxiety": "11"}, "Wellbeing: Anxiety yesterday"),
    ],
)
def test_errors_name_the_field_and_keep_what_was_chosen(app, case, ticked, extra, message):
    client = app.test_client()
    sign_in(client)
    found = results(client)
    answer = make_plan(client, found, case=case, ticked=ticked, **extra)
    assert answer.status_code == 422
    text = html.unescape(answer.get_data(as_text=True))
    assert message in text
    assert text.count('name="activity_id" value') >= 3  # the suggestions are back
    for activity_id in found["ids"][:ticked]:  # still ticked
        assert re.search(rf'value="{re.escape(activity_id)}" form="plan-form" checked', text)
    assert list(app.extensions["matcher"].store.referrals()) == []


def test_another_link_worker_cannot_open_the_plan(app):
    client = app.test_client()
    sign_in(client)
    make_plan(client, results(client))
    other = app.test_client()
    sign_in(other, "bob")
    assert other.get("/plans/C-2031").status_code == 404
    assert other.get("/cases/C-2031").status_code == 404
    assert client.get("/plans/not a case").status_code == 404


def test_the_plan_prints_on_a4_without_the_menus(app):
    client = app.test_client()
    css = client.get("/static/style.css").get_data(as_text=True)
    assert re.search(r"@page\s*{\s*size:\s*A4", css)
    print_rules = css.split("@media print", 1)[1]
    assert ".site-header" in print_rules and "display: none" in print_rules
    assert "break-inside: avoid" in print_rules
    sign_in(client)
    make_plan(client, results(client))
    text = client.get("/plans/C-2031").get_data(as_text=True)
    assert "<script" not in text and 'class="no-print"' in text
    assert csrf_token(client, "/plans/C-2031")  # the page is a full page of the site
