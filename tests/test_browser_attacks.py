"""Cross-site request forgery in a real headless Chromium: a page on a second loopback server
(another origin, the same site, so SameSite=Lax cookies still go along) auto-submits forms to
``/refer`` and ``/referrals/<id>/outcome``, from a no-referrer page and from a sandboxed frame
(``Origin: null``), against the keyless service and against one where the link worker has
signed in. Each is refused with 403 and nothing is stored."""

from __future__ import annotations

import html
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from api_support import PASSWORD, PROFILE, make_app, make_governed_app
from browser_support import needs_chromium

pytest_plugins = ["conftest_api"]  # the catalogue fixture

pytestmark = needs_chromium


class _Seen:
    """The posts the service answered, with the Origin each came with and the status given (a
    framed answer is blocked by frame-ancestors, so the browser cannot be asked)."""

    def __init__(self, app):
        self.app, self.posts = app, []

    def __call__(self, environ, start_response):
        def start(status, headers, exc_info=None):
            if environ["REQUEST_METHOD"] == "POST":
                origin = environ.get("HTTP_ORIGIN")
                self.posts.append((environ["PATH_INFO"], origin, int(status.split()[0])))
            return start_response(status, headers, exc_info)

        return self.app(environ, start)


def _serve(app):
    from werkzeug.serving import make_server

    app.extensions["seen"] = seen = _Seen(app.wsgi_app)
    app.wsgi_app = seen
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    return httpd, thread, f"http://127.0.0.1:{httpd.server_port}"


@pytest.fixture(scope="module", params=["keyless", "signed-in"])
def target(request, tmp_path_factory, catalogue):
    """The service, keyless or with an account; yields (app, base URL, signed_in)."""
    folder = tmp_path_factory.mktemp(request.param)
    if request.param == "keyless":
        app = make_app(folder, catalogue)
    else:
        app = make_governed_app(folder, catalogue)
    httpd, thread, base = _serve(app)
    yield app, base, request.param == "signed-in"
    httpd.shutdown()
    thread.join(10)


class _Attacker(BaseHTTPRequestHandler):
    pages: dict[str, str] = {}

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        body = self.pages.get(self.path.split("?")[0], "").encode()
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def attacker():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Attacker)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield _Attacker.pages, f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join(10)


@pytest.fixture
def page(browser, target):
    """A browser page; on the signed-in service, the link worker has signed in through the
    page's own form first (so the session cookie is there for the attacker to ride on)."""
    app, base, signed_in = target
    context = browser.new_context()
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    if signed_in:
        pg.goto(base + "/")
        pg.get_by_label("User name", exact=True).fill("alice")
        pg.get_by_label("Password", exact=True).fill(PASSWORD)
        pg.get_by_role("button", name="Sign in").click()
        pg.get_by_role(
            "heading", name="Find activities for the person you are supporting"
        ).wait_for()
        assert any(c["name"] == "matcher_session" for c in context.cookies())
    yield pg
    context.close()


def _form(action: str, fields: dict[str, str]) -> str:
    inputs = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, v in fields.items()
    )
    return f'<form id="f" method="post" action="{html.escape(action)}">{inputs}</form>'


def _no_referrer_page(action: str, fields: dict[str, str]) -> str:
    return (
        '<!doctype html><html><head><meta name="referrer" content="no-referrer"></head><body>'
        + _form(action, fields)
        + "<script>document.getElementById('f').submit()</script></body></html>"
    )


def _sandboxed_frame_page(action: str, fields: dict[str, str]) -> str:
    inner = (
        "<!doctype html><body>" + _form(action, fields)
        + "<script>document.getElementById('f').submit()</script></body>"
    )  # fmt: skip
    return (
        '<!doctype html><html><head><meta name="referrer" content="no-referrer"></head><body>'
        f'<iframe sandbox="allow-forms allow-scripts" srcdoc="{html.escape(inner)}"></iframe>'
        "</body></html>"
    )


ATTACKS = {"no-referrer-page": _no_referrer_page, "sandboxed-frame": _sandboxed_frame_page}


def _attack(app, page, attacker, name: str, content: str, path: str) -> tuple[str | None, int]:
    """Serve the attacker's page, open it, and return the Origin the forged post came with and
    the status the service answered it with."""
    import time

    pages, origin = attacker
    pages[f"/{name}"] = content
    seen = app.extensions["seen"].posts
    before = len(seen)
    page.goto(f"{origin}/{name}")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        posted = [(o, status) for p, o, status in seen[before:] if p == path]
        if posted:
            return posted[0]
        time.sleep(0.05)
    raise AssertionError(f"the browser never sent the forged post to {path}")


def _expected_origin(attack: str, origin: str | None, attacker) -> None:
    """The Origin the browser sent is the one the attack is about: ``null`` from a sandboxed
    frame; from a no-referrer page, Chromium sends ``null`` too (or the attacker's origin),
    which the old check let through."""
    if attack == "sandboxed-frame":
        assert origin == "null"
    else:
        assert origin in ("null", attacker[1])


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_a_forged_referral_is_refused(target, attacker, page, attack):
    app, base, _ = target
    store = app.extensions["matcher"].store
    before = sum(1 for _ in store.referrals())
    fields = {"profile": json.dumps({"needs": ["money"]}), "activity_id": "act-00000",
              "shown": "act-00000"}  # fmt: skip
    action = f"{base}/refer"
    content = ATTACKS[attack](action, fields)
    origin, status = _attack(app, page, attacker, f"refer-{attack}", content, "/refer")
    _expected_origin(attack, origin, attacker)
    assert status == 403
    assert sum(1 for _ in store.referrals()) == before, "the forged referral was stored"


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_a_forged_outcome_is_refused(target, attacker, page, attack):
    app, base, _ = target
    store = app.extensions["matcher"].store
    rid = store.add_referral(PROFILE, "act-00000", actor="system")
    action = f"{base}/referrals/{rid}/outcome"
    fields = {"attended": "no", "sessions_attended": "0", "correction": "1"}
    content = ATTACKS[attack](action, fields)
    path = f"/referrals/{rid}/outcome"
    origin, status = _attack(app, page, attacker, f"outcome-{attack}", content, path)
    _expected_origin(attack, origin, attacker)
    assert status == 403
    assert store.get(rid).outcomes == [], "the forged outcome was stored"


def test_the_page_own_forms_still_work_after_the_attacks(target, page):
    """The page's own flow in the same browser: search, refer, record an outcome."""
    app, base, _ = target
    page.goto(base + "/")
    page.get_by_label("Money worries, debt or benefits", exact=True).check()
    page.get_by_label("Postcode", exact=True).fill("LS1")
    page.get_by_role("button", name="Find activities").click()
    page.get_by_role("heading", name="Suggestions").wait_for()
    page.locator("li.card").first.get_by_role("button", name="Refer", exact=False).click()
    page.get_by_role("heading", name="Referral recorded").wait_for()
    reference = page.locator(".ref").inner_text()
    page.get_by_label("Yes", exact=True).check()
    page.get_by_role("button", name="Save outcome").click()
    page.get_by_text("Outcome saved").wait_for()
    assert app.extensions["matcher"].store.get(reference).attended is True
