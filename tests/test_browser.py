"""The link-worker page in a real headless browser (Debian's chromium through playwright): fill
the form, get results, refer, record the outcome; with and without JavaScript, by keyboard, on a
phone-sized screen."""

from __future__ import annotations

import re

import pytest
from api_support import make_app
from browser_support import needs_chromium, serving

pytest_plugins = ["conftest_api"]  # the catalogue fixture

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def server(tmp_path_factory, catalogue):
    """The app on a loopback port, served by werkzeug in a thread."""
    app = make_app(tmp_path_factory.mktemp("browser"), catalogue)
    with serving(app) as url:
        yield app, url


@pytest.fixture(params=[True, False], ids=["with-js", "without-js"])
def page(request, browser):
    context = browser.new_context(java_script_enabled=request.param)
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    yield pg
    context.close()


def test_fill_the_form_get_results_and_refer(server, page):
    app, base = server
    page.goto(base + "/")
    page.get_by_label("Feeling lonely or isolated", exact=True).check()
    page.get_by_label("Wants to get more active", exact=True).check()
    page.get_by_label("Interests", exact=True).fill("used to have an allotment, likes a chat")
    page.get_by_label("Postcode", exact=True).fill("LS6 3HN")
    page.get_by_label("Age", exact=True).fill("71")
    page.get_by_label("How they get about", exact=True).select_option("public_transport")
    page.get_by_label("Step-free access", exact=True).check()
    page.get_by_label("Morning on Wednesday", exact=True).check()
    page.get_by_label("Afternoon on Thursday", exact=True).check()
    page.get_by_label("Most they can pay per session (£)", exact=True).fill("0")
    page.get_by_label("In person only", exact=True).check()
    page.get_by_role("button", name="Find activities").click()

    page.get_by_role("heading", name="Suggestions").wait_for()
    cards = page.locator("li.card")
    assert cards.count() >= 3
    first = cards.first
    name = first.locator("h3").inner_text()
    assert name
    assert first.locator(".reasons li").count() >= 2
    facts = first.locator(".facts").inner_text()
    for label in ("Where", "When", "Cost"):
        assert label in facts
    assert "km away" in facts and "Free" in facts
    # What was typed is still in the form.
    assert page.get_by_label("Postcode", exact=True).input_value() == "LS6 3HN"
    assert page.get_by_label("Feeling lonely or isolated", exact=True).is_checked()

    first.get_by_role("button", name=re.compile("^Refer")).click()
    page.get_by_role("heading", name="Referral recorded").wait_for()
    reference = page.locator(".ref").inner_text()
    stored = app.extensions["matcher"].store.get(reference)
    assert app.extensions["matcher"].catalogue.get(stored.activity_id).name == name
    # Stored minimised: the full postcode cut to its sector (the store's rule).
    assert stored.profile["location"] == {"postcode": "LS6 3"}
    assert stored.shown and stored.shown[0] == stored.activity_id

    page.get_by_label("Yes", exact=True).check()
    page.get_by_label("How many sessions (optional)", exact=True).fill("3")
    page.get_by_role("button", name="Save outcome").click()
    page.get_by_text("Outcome saved").wait_for()
    stored = app.extensions["matcher"].store.get(reference)
    assert stored.attended is True and stored.sessions_attended == 3


def test_invalid_input_names_the_field(server, page):
    _, base = server
    page.goto(base + "/")
    page.get_by_label("Age", exact=True).fill("seventy")
    page.get_by_label("Postcode", exact=True).fill("not a postcode")
    page.get_by_role("button", name="Find activities").click()
    alert = page.get_by_role("alert")
    alert.wait_for()
    text = alert.inner_text()
    assert "Age: Enter the age as a whole number" in text
    assert page.locator("li.card").count() == 0
    assert page.get_by_label("Age", exact=True).input_value() == "seventy"
    # The message links to the field.
    alert.get_by_role("link", name=re.compile("^Age")).click()
    assert page.evaluate("document.activeElement.id") == "age"


def test_usable_by_keyboard_alone(server, browser):
    _, base = server
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(base + "/")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Skip to main content"
        for _ in range(6):  # the site name and the menu's links, then the form
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.id") == "need-loneliness":
                break
        assert page.evaluate("document.activeElement.id") == "need-loneliness"
        page.keyboard.press("Space")
        assert page.get_by_label("Feeling lonely or isolated", exact=True).is_checked()
        for _ in range(200):  # tab on to the postcode field
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.id") == "postcode":
                break
        page.keyboard.type("LS1")
        page.keyboard.press("Enter")  # Enter in a text field sends the form
        page.get_by_role("heading", name="Suggestions").wait_for()
        assert page.locator("li.card").count() >= 1
        for _ in range(300):  # and on to the first Refer button
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.textContent").startswith("Refer"):
                break
        page.keyboard.press("Enter")
        page.get_by_role("heading", name="Referral recorded").wait_for()
    finally:
        context.close()


def test_readable_on_a_phone(server, browser, tmp_path):
    _, base = server
    context = browser.new_context(viewport={"width": 360, "height": 740}, device_scale_factor=2,
                                  is_mobile=True, has_touch=True)  # fmt: skip
    page = context.new_page()
    try:
        page.goto(base + "/")
        page.get_by_label("Bereavement or loss", exact=True).check()
        page.get_by_label("Postcode", exact=True).fill("LS8")
        page.get_by_role("button", name="Find activities").click()
        page.get_by_role("heading", name="Suggestions").wait_for()
        # The browser lands on the suggestions, not back at the top of the long form.
        assert page.url.endswith("/#results")
        page.wait_for_function(
            "Math.abs(document.getElementById('results').getBoundingClientRect().top) < 740"
        )
        width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1], "the page scrolls sideways on a phone"
        size = page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
        assert size >= 16
        page.screenshot(path=str(tmp_path / "phone.png"), full_page=True)
    finally:
        context.close()
