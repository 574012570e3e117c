"""The plan and the follow-up in a real headless browser (Debian's chromium through playwright):
tick three suggestions and make a plan without JavaScript, print it to PDF on A4; then the
caseload, due first, and a follow-up with ONS4 scores showing the change from baseline."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from api_support import PROFILE, make_app
from browser_support import needs_chromium, serving

from matcher.service.pages import NEED_LABELS

pytest_plugins = ["conftest_api"]  # the catalogue fixture

pytestmark = needs_chromium

PDF_PAGE = re.compile(rb"/Type\s*/Page(?!s)")


@pytest.fixture(scope="module")
def server(tmp_path_factory, catalogue):
    """The app on a loopback port, served by werkzeug in a thread (open mode: the service
    itself acts, and sees every case)."""
    app = make_app(tmp_path_factory.mktemp("browser-plans"), catalogue)
    with serving(app) as url:
        yield app, url


def test_tick_three_make_a_plan_and_print_it(server, browser, tmp_path):
    app, base = server
    context = browser.new_context(java_script_enabled=False)  # works without JavaScript
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        page.goto(base + "/")
        page.get_by_label("Feeling lonely or isolated", exact=True).check()
        page.get_by_label("Wants to get more active", exact=True).check()
        page.get_by_label("Postcode", exact=True).fill("LS6 3HN")
        page.get_by_label("Age", exact=True).fill("71")
        page.get_by_label("In person only", exact=True).check()
        page.get_by_role("button", name="Find activities").click()
        page.get_by_role("heading", name="Suggestions").wait_for()
        ticks = page.get_by_label(re.compile("^Add to the plan"))
        names = [page.locator("li.card h3").nth(k).inner_text() for k in range(3)]
        for k in range(3):
            ticks.nth(k).check()
        page.get_by_label("Case reference", exact=True).fill("LW-0042")
        for question, score in [("satisfied", "4"), ("worthwhile", "5"),
                                ("happy", "3"), ("anxious", "8")]:  # fmt: skip
            page.get_by_label(re.compile(question)).select_option(score)
        page.get_by_role("button", name="Make a plan").click()

        page.get_by_role("heading", name="Your plan").wait_for()
        assert page.url.endswith("/plans/LW-0042")
        items = page.locator(".plan-item")
        assert items.count() == 3
        assert [items.nth(k).locator("h2").inner_text() for k in range(3)] == [
            f"{k + 1}. {name}" for k, name in enumerate(names)
        ]
        plan_text = page.locator("main").inner_text()
        assert plan_text.count("What to say when you call") == 3
        for label in NEED_LABELS.values():
            assert label not in plan_text
        assert "71" not in plan_text and "anxious" not in plan_text.lower()
        refs = app.extensions["matcher"].store.case_referrals("LW-0042")
        assert len(refs) == 3 and refs[0].wellbeing["anxiety"] == 8

        pdf = page.pdf(format="A4", print_background=False)
        (tmp_path / "plan.pdf").write_bytes(pdf)
        pages = len(PDF_PAGE.findall(pdf))
        # Three activities in large print, none split across pages: at most one page each.
        assert 1 <= pages <= 3, pages
        # As printed (A4 less 15 mm margins: 180 x 267 mm), the menus are gone and every
        # activity fits on one page, so "break-inside: avoid" can keep each one whole.
        page.emulate_media(media="print")
        page.set_viewport_size({"width": 680, "height": 1009})
        assert not page.locator(".site-header").is_visible()
        assert not page.locator(".no-print").is_visible()
        heights = page.locator(".plan-item").evaluate_all(
            "items => items.map(e => [getComputedStyle(e).breakInside, "
            "e.getBoundingClientRect().height])"
        )
        assert all(rule == "avoid" and 0 < height < 1009 for rule, height in heights)
        assert page.evaluate("parseFloat(getComputedStyle(document.querySelector('main'))"
                             ".fontSize)") >= 18  # 14pt and up: large print  # fmt: skip
    finally:
        context.close()


def test_caseload_then_a_follow_up_with_wellbeing(server, browser):
    app, base = server
    svc = app.extensions["matcher"]
    activities = svc.catalogue.activities
    before = {"life_satisfaction": 4, "worthwhile": 5, "happiness": 3, "anxiety": 8}
    now = datetime.now(timezone.utc)
    for case, days, k in [("SOON", 2, 0), ("OVERDUE", 40, 1), ("DUE", 15, 2)]:
        svc.store.add_referral(PROFILE, activities[k].id, actor="system", case=case,
                               wellbeing=before, when=now - timedelta(days=days))  # fmt: skip
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        page.goto(base + "/caseload")
        headings = page.locator(".case-group h2").all_inner_texts()
        order = [h.split()[1] for h in headings if h.startswith("Case ")]
        assert [c for c in order if c in ("SOON", "OVERDUE", "DUE")] == ["OVERDUE", "DUE", "SOON"]
        assert "Overdue" in headings[order.index("OVERDUE")]

        page.get_by_role("link", name="Case DUE", exact=True).click()
        page.get_by_role("heading", name="Case DUE").wait_for()
        page.get_by_label(re.compile("^Went at least once")).check()
        page.get_by_label(re.compile("^How many sessions")).fill("2")
        for question, score in [("satisfied", "6"), ("worthwhile", "5"),
                                ("happy", "7"), ("anxious", "5")]:  # fmt: skip
            page.get_by_label(re.compile(question)).select_option(score)
        page.get_by_role("button", name=re.compile("^Save follow-up")).click()
        page.get_by_text("Follow-up saved").wait_for()
        changes = page.locator("td.change").all_inner_texts()
        assert changes == ["+2 (better)", "0 (no change)", "+4 (better)", "-3 (better)"]
        assert "for anxiety, lower is better" in page.locator("main").inner_text()
    finally:
        context.close()
