"""Health-data governance on the web side, through Flask's test client: forms only the page can
send (CSRF token and Origin), trusted host names, referrer policies, the 422 that does not
repeat a value sent as a field name, and a bounded model card."""

from __future__ import annotations

import json
import re

import pytest
from api_support import PROFILE, csrf_token, make_app, page_post

from matcher.service.v1 import CARD_BYTES, CARD_TEXT

pytest_plugins = ["conftest_api"]  # the app, client and catalogue fixtures

FORM = {"needs": ["money"], "postcode": "LS1"}


def _refer_form(client) -> dict[str, str]:
    """The hidden fields of the first Refer button, after a search from the page."""
    html = page_post(client, "/", FORM).get_data(as_text=True)
    from html import unescape

    fields = {}
    for name in ("profile", "activity_id", "shown"):
        fields[name] = unescape(re.search(rf'name="{name}" value="([^"]*)"', html).group(1))
    return fields


def _count(app) -> int:
    return sum(1 for _ in app.extensions["matcher"].store.referrals())


# --- CSRF: a token from this session, and this site's Origin -----------------------------------


@pytest.mark.parametrize(
    "token, origin",
    [
        ("", "http://localhost"),  # no token
        ("forged-token", "http://localhost"),  # a wrong one
        (None, None),  # the right token, no Origin
        (None, "null"),  # the right token, an opaque origin (sandboxed frame)
        (None, "http://evil.example"),  # the right token, another site
        (None, "http://localhost:8001"),  # another port is another origin
    ],
    ids=["no-token", "wrong-token", "no-origin", "null-origin", "foreign", "other-port"],
)
def test_a_form_post_without_token_and_origin_is_refused(app, client, token, origin):
    fields = _refer_form(client)
    before = _count(app)
    good = csrf_token(client)
    r = page_post(client, "/refer", fields, token=good if token is None else token, origin=origin)
    assert r.status_code == 403
    assert _count(app) == before, "a refused referral was stored"
    assert "forged-token" not in r.get_data(as_text=True)


def test_an_outcome_needs_the_token_and_origin(app, client):
    store = app.extensions["matcher"].store
    rid = store.add_referral(PROFILE, "act-00000", actor="system")
    for token, origin in (("", "http://localhost"), (None, "null"), (None, None)):
        good = csrf_token(client)
        r = page_post(client, f"/referrals/{rid}/outcome", {"attended": "yes"},
                      token=good if token is None else token, origin=origin)  # fmt: skip
        assert r.status_code == 403
    assert store.get(rid).attended is None
    r = page_post(client, f"/referrals/{rid}/outcome", {"attended": "yes"})
    assert r.status_code == 303 and store.get(rid).attended is True


def test_the_page_own_form_posts_are_accepted(app, client):
    fields = _refer_form(client)
    before = _count(app)
    r = page_post(client, "/refer", fields)
    assert r.status_code == 303 and _count(app) == before + 1


def test_a_token_from_another_session_is_refused(app):
    mine, theirs = app.test_client(), app.test_client()
    fields = _refer_form(mine)
    r = page_post(mine, "/refer", fields, token=csrf_token(theirs))
    assert r.status_code == 403


def test_a_refused_form_is_an_html_page_for_a_browser(client):
    r = client.post("/", data=FORM, headers={"Accept": "text/html", "Origin": "http://localhost"})
    assert r.status_code == 403 and r.content_type.startswith("text/html")
    assert "not sent from this site" in r.get_data(as_text=True)


def test_the_json_api_needs_no_token(client):
    r = client.post("/v1/referrals", json={"profile": PROFILE, "activity_id": "act-00000"})
    assert r.status_code == 201


# --- host names ------------------------------------------------------------------------------


def test_an_open_service_answers_only_to_loopback_names(client):
    """DNS rebinding: a page on evil.example, its name now resolving to 127.0.0.1, is the
    same origin as the service in the browser's eyes; the Host it sends gives it away."""
    for host in ("localhost", "127.0.0.1:8000", "localhost:5000", "[::1]:8000"):
        assert client.get("/healthz", headers={"Host": host}).status_code == 200, host
    for host in ("evil.example", "evil.example:8000", "127.0.0.1.evil.example", "10.0.0.1"):
        r = client.post("/v1/match", json={"profile": {}}, headers={"Host": host})
        assert r.status_code == 400 and r.content_type == "application/problem+json", host
        assert "evil" not in r.get_data(as_text=True)
        r = client.get("/", headers={"Host": host, "Accept": "text/html"})
        assert r.status_code == 400 and "csrf_token" not in r.get_data(as_text=True)


def test_trusted_hosts_refuse_other_names(tmp_path, catalogue):
    app = make_app(tmp_path, catalogue, MATCHER_API_KEYS="k",
                   MATCHER_TRUSTED_HOSTS="matcher.example.org, .nhs.example")  # fmt: skip
    c = app.test_client()
    auth = {"Authorization": "Bearer k"}
    for host in ("matcher.example.org", "matcher.example.org:443", "a.nhs.example"):
        r = c.post("/v1/match", json={"profile": {}}, headers={**auth, "Host": host})
        assert r.status_code == 200, host
    for host in ("evil.example", "localhost", "nhs.example.evil"):
        r = c.post("/v1/match", json={"profile": {}}, headers={**auth, "Host": host})
        assert r.status_code == 400 and r.content_type == "application/problem+json", host
        assert host not in r.get_data(as_text=True)


def test_with_credentials_and_no_list_any_host_is_answered(tmp_path, catalogue):
    c = make_app(tmp_path, catalogue, MATCHER_API_KEYS="k").test_client()
    r = c.get("/healthz", headers={"Host": "matcher.example.org"})
    assert r.status_code == 200


# --- referrer policies --------------------------------------------------------------------------


def test_pages_send_same_origin_and_json_no_referrer(client):
    """no-referrer on a page makes Chromium send ``Origin: null`` on the page's own forms."""
    for r in (client.get("/"), client.get("/nope", headers={"Accept": "text/html"})):
        assert r.content_type.startswith("text/html")
        assert r.headers["Referrer-Policy"] == "same-origin"
    for r in (client.post("/v1/match", json={"profile": {}}), client.get("/healthz"),
              client.get("/v1/nope")):  # fmt: skip
        assert r.headers["Referrer-Policy"] == "no-referrer"


# --- the session cookie ------------------------------------------------------------------------


def _cookie(response) -> str:
    cookies = response.headers.getlist("Set-Cookie")
    assert cookies, "no session cookie"
    return cookies[0]


def test_the_session_cookie_is_httponly_lax_and_not_secure_without_tls(client):
    cookie = _cookie(client.get("/"))
    assert cookie.startswith("matcher_session=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    assert "Expires=" in cookie  # ends when idle, not only when the browser closes


def test_behind_tls_the_cookie_is_secure_and_host_only(tmp_path, catalogue):
    app = make_app(tmp_path, catalogue, MATCHER_BEHIND_TLS=True)
    c = app.test_client()
    r = c.get("/", headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"})
    cookie = _cookie(r)
    assert cookie.startswith("__Host-matcher=") and "Secure" in cookie and "Path=/" in cookie
    assert "Domain=" not in cookie


# --- 422: a value sent as a field name is not repeated --------------------------------------


@pytest.mark.parametrize(
    "body, path, named",
    [
        ({"profile": {"9434765919": 1}}, "profile", None),
        ({"profile": {"nickname": 1}}, "profile.nickname", "nickname"),
        ({"profile": {"LS6 3HN": True}}, "profile", None),
        (
            {"profile": {"location": {"Mrs Jones": 1, "postcode": "LS6 3HN"}}},
            "profile.location",
            None,
        ),
        ({"profile": {}, "x" * 41: 1}, "body", None),
        ({"profile": {}, "x" * 40: 1}, "x" * 40, "x" * 40),
        ({"profile": {}, "limit": 3, "sort_by": "name"}, "sort_by", "sort_by"),
    ],
)
def test_an_unknown_field_is_named_only_when_it_looks_like_one(client, body, path, named):
    r = client.post("/v1/match", json=body)
    assert r.status_code == 422
    problem = r.get_json()
    assert [e["path"] for e in problem["errors"]] == [path]
    text = r.get_data(as_text=True)
    for key in ("9434765919", "LS6 3HN", "Mrs Jones", "x" * 41):
        assert key not in text
    if named is None:
        assert "name is not repeated" in problem["errors"][0]["expected"]
    else:
        assert named in problem["detail"]


def test_unknown_fields_of_a_referral_are_not_echoed(client):
    body = {"profile": {"943 476 5919": "x"}, "activity_id": "act-00000"}
    r = client.post("/v1/referrals", json=body)
    assert r.status_code == 422 and "943" not in r.get_data(as_text=True)


# --- the model card is bounded ----------------------------------------------------------------


def test_the_model_card_served_is_bounded(client, monkeypatch):
    watcher = client.application.extensions["matcher"].watcher
    deep: dict = {}
    node = deep
    for _ in range(200):
        node["next"] = {}
        node = node["next"]
    card = {
        "version": "v-huge", "kind": "trained", "trained": True, "summary": "s" * 100_000,
        "metrics": {"auc": 0.7}, "deep": deep, "long": list(range(1_000_000)),
        "wide": {f"k{i}": {f"j{j}": "v" * 50 for j in range(100)} for i in range(100)},
    }  # fmt: skip
    monkeypatch.setattr(type(watcher), "card", lambda self: card)
    r = client.get("/v1/model")
    assert r.status_code == 200
    assert len(r.get_data()) <= CARD_BYTES + 1000
    served = r.get_json()
    assert served["version"] == "v-huge" and served["trained"] is True
    assert served["truncated"] is True
    assert len(json.dumps(served)) < CARD_BYTES + 1000
    if "summary" in served:
        assert len(served["summary"]) <= CARD_TEXT


def test_a_small_card_is_served_whole(client):
    card = client.get("/v1/model").get_json()
    assert "truncated" not in card and card["kind"] == "cold-start"
