"""Health-data governance on the web side, through Flask's test client: forms only the page can
send (CSRF token and Origin), trusted host names, referrer policies, the 422 that does not
repeat a value sent as a field name, and a bounded model card."""

from __future__ import annotations

import json
import re

import pytest
from api_support import (
    PASSWORD,
    PROFILE,
    SECRET,
    csrf_token,
    make_app,
    make_governed_app,
    page_post,
    sign_in,
)

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


# --- API keys and scopes --------------------------------------------------------------------


@pytest.fixture
def governed(tmp_path, catalogue):
    return make_governed_app(tmp_path, catalogue)


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_a_match_only_key_can_match_but_not_write_a_referral(governed):
    store = governed.extensions["matcher"].store
    key = store.create_key("matcher-only", ["match"], actor="system")
    c = governed.test_client()
    assert c.post("/v1/match", json={"profile": PROFILE}, headers=_bearer(key)).status_code == 200
    before = _count(governed)
    r = c.post("/v1/referrals", json={"profile": PROFILE, "activity_id": "act-00000"},
               headers=_bearer(key))  # fmt: skip
    assert r.status_code == 403 and r.content_type == "application/problem+json"
    assert "referrals:write" in r.get_json()["detail"] and key not in r.get_data(as_text=True)
    assert _count(governed) == before
    calls = [("get", "/v1/model"), ("get", "/v1/activities"), ("get", "/v1/referrals/r-x"),
             ("delete", "/v1/referrals/r-x")]  # fmt: skip
    for method, path in calls:
        assert getattr(c, method)(path, headers=_bearer(key)).status_code == 403, path


@pytest.mark.parametrize(
    "scope, method, path, body",
    [
        ("match", "post", "/v1/match", {"profile": {}}),
        ("activities", "get", "/v1/activities", None),
        ("activities", "get", "/v1/activities/act-00000", None),
        ("referrals:write", "post", "/v1/referrals", {"profile": {}, "activity_id": "act-00000"}),
        ("model", "get", "/v1/model", None),
        ("reports:read", "get", "/v1/reports/provision", None),
    ],
)
def test_each_endpoint_takes_its_scope(governed, scope, method, path, body):
    store = governed.extensions["matcher"].store
    right = store.create_key("right", [scope], actor="system")
    others = [s for s in ("match", "activities", "referrals:write", "referrals:read", "model",
                          "reports:read") if s != scope]  # fmt: skip
    wrong = store.create_key("wrong", others, actor="system")
    c = governed.test_client()
    assert getattr(c, method)(path, json=body, headers=_bearer(right)).status_code in (200, 201)
    assert getattr(c, method)(path, json=body, headers=_bearer(wrong)).status_code == 403


def test_no_key_an_unknown_or_a_revoked_key_is_401(governed):
    store = governed.extensions["matcher"].store
    key = store.create_key("case-system", ["match"], actor="system")
    c = governed.test_client()
    body = {"profile": {}}
    assert c.post("/v1/match", json=body, headers=_bearer(key)).status_code == 200
    for headers in ({}, _bearer("mk_" + "x" * 43), _bearer("not-a-key")):
        r = c.post("/v1/match", json=body, headers=headers)
        assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
    store.revoke_key("case-system", actor="system")
    r = c.post("/v1/match", json=body, headers=_bearer(key))
    assert r.status_code == 401 and r.content_type == "application/problem+json"


def test_keys_are_revoked_one_by_one(governed):
    store = governed.extensions["matcher"].store
    a = store.create_key("a", ["match"], actor="system")
    b = store.create_key("b", ["match"], actor="system")
    store.revoke_key("a", actor="system")
    c = governed.test_client()
    assert c.post("/v1/match", json={"profile": {}}, headers=_bearer(a)).status_code == 401
    assert c.post("/v1/match", json={"profile": {}}, headers=_bearer(b)).status_code == 200


def test_a_bootstrap_key_has_every_scope_beside_store_keys(tmp_path, catalogue):
    app = make_governed_app(tmp_path, catalogue, MATCHER_API_KEYS="boot-key")
    c = app.test_client()
    r = c.post("/v1/referrals", json={"profile": PROFILE, "activity_id": "act-00000"},
               headers=_bearer("boot-key"))  # fmt: skip
    assert r.status_code == 201
    rid = r.get_json()["referral_id"]
    assert c.get(f"/v1/referrals/{rid}", headers=_bearer("boot-key")).status_code == 200
    lines = list(app.extensions["matcher"].store.audit_lines())
    assert {"actor": "key:bootstrap-key", "action": "referral.created"}.items() <= next(
        line for line in lines if line["action"] == "referral.created"
    ).items()


# --- throttling -------------------------------------------------------------------------------


def test_repeated_bad_keys_are_throttled_per_client(governed):
    from matcher.service import auth

    store = governed.extensions["matcher"].store
    good = store.create_key("good", ["match"], actor="system")
    c = governed.test_client()
    here = {"REMOTE_ADDR": "192.0.2.10"}
    for _ in range(auth.THROTTLE_FAILURES):
        r = c.post("/v1/match", json={"profile": {}}, headers=_bearer("mk_guess"),
                   environ_base=here)  # fmt: skip
        assert r.status_code == 401
    r = c.post("/v1/match", json={"profile": {}}, headers=_bearer("mk_guess"), environ_base=here)
    assert r.status_code == 429 and r.content_type == "application/problem+json"
    assert int(r.headers["Retry-After"]) > 0
    # Even the right key waits: a guesser must learn nothing from a 429's absence.
    r = c.post("/v1/match", json={"profile": {}}, headers=_bearer(good), environ_base=here)
    assert r.status_code == 429
    elsewhere = {"REMOTE_ADDR": "192.0.2.99"}
    r = c.post("/v1/match", json={"profile": {}}, headers=_bearer(good), environ_base=elsewhere)
    assert r.status_code == 200


def test_failed_sign_ins_are_throttled(governed):
    from matcher.service import auth

    c = governed.test_client()
    for _ in range(auth.THROTTLE_FAILURES):
        assert sign_in(c, password="wrong password").status_code == 401
    r = sign_in(c)  # the right password, too late
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0


def test_a_failed_sign_in_names_only_an_existing_account(governed):
    """A password typed into the name field must not reach the audit trail."""
    c = governed.test_client()
    assert sign_in(c, name="Hunter2secret", password="whatever it is").status_code == 401
    assert sign_in(c, password="wrong password").status_code == 401  # alice exists
    store = governed.extensions["matcher"].store
    failed = [a for a in store.audit_lines() if a["action"] == "user.sign_in"]
    assert [(a["actor"], a["outcome"]) for a in failed] == [
        ("system", "failed_unnamed"),
        ("user:alice", "failed"),
    ]
    assert "Hunter2secret" not in json.dumps(list(store.audit_lines()))


def test_behind_tls_the_client_is_the_one_the_proxy_names(tmp_path, catalogue):
    from matcher.service import auth

    app = make_governed_app(tmp_path, catalogue, MATCHER_BEHIND_TLS=True)
    good = app.extensions["matcher"].store.create_key("good", ["match"], actor="system")
    c = app.test_client()
    proxy = {"REMOTE_ADDR": "10.0.0.2"}  # nginx, the same for every client

    def call(key: str, client_ip: str) -> int:
        headers = {**_bearer(key), "X-Forwarded-For": client_ip, "X-Forwarded-Proto": "https"}
        return c.post("/v1/match", json={"profile": {}}, headers=headers,
                      environ_base=proxy).status_code  # fmt: skip

    for _ in range(auth.THROTTLE_FAILURES):
        assert call("mk_guess", "198.51.100.7") == 401
    assert call(good, "198.51.100.7") == 429
    assert call(good, "198.51.100.8") == 200


# --- signing in -------------------------------------------------------------------------------


def test_a_person_signs_in_and_out(governed):
    c = governed.test_client()
    r = c.get("/")
    assert r.status_code == 303 and r.headers["Location"].startswith("/login")
    r = sign_in(c, password="wrong password")
    assert r.status_code == 401 and "not right" in r.get_data(as_text=True)
    assert PASSWORD not in r.get_data(as_text=True)
    r = sign_in(c)
    assert r.status_code == 303 and r.headers["Location"] == "/"
    page = c.get("/")
    assert page.status_code == 200 and "Signed in as alice" in page.get_data(as_text=True)
    assert page_post(c, "/", FORM).status_code == 200
    assert page_post(c, "/logout").status_code == 303
    assert c.get("/").status_code == 303
    lines = [(x["actor"], x["action"], x["outcome"])
             for x in governed.extensions["matcher"].store.audit_lines()]  # fmt: skip
    assert ("user:alice", "user.sign_in", "failed") in lines
    assert ("user:alice", "user.sign_in", "ok") in lines
    assert ("user:alice", "user.sign_out", "ok") in lines


def test_sign_in_starts_a_new_session_and_goes_back_only_to_this_site(governed):
    c = governed.test_client()
    before = csrf_token(c, "/login")
    r = page_post(c, "/login", {"name": "alice", "password": PASSWORD,
                                "next": "/referrals/r-x?saved=1"}, token=before)  # fmt: skip
    assert r.headers["Location"] == "/referrals/r-x?saved=1"
    assert csrf_token(c) != before  # a token fixed before sign-in is not the one after
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        c2 = governed.test_client()
        r = page_post(c2, "/login", {"name": "alice", "password": PASSWORD, "next": target},
                      token=csrf_token(c2, "/login"))  # fmt: skip
        assert r.headers["Location"] == "/", target


def test_a_sign_in_needs_the_token_and_origin_too(governed):
    c = governed.test_client()
    r = page_post(c, "/login", {"name": "alice", "password": PASSWORD},
                  token=csrf_token(c, "/login"), origin="null")  # fmt: skip
    assert r.status_code == 403
    r = page_post(c, "/login", {"name": "alice", "password": PASSWORD}, token="")
    assert r.status_code == 403
    assert c.get("/").status_code == 303


def test_a_session_ends_when_idle(governed, monkeypatch):
    import time

    c = governed.test_client()
    sign_in(c)
    assert c.get("/").status_code == 200
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 29 * 60)  # 29 minutes on: still in
    assert c.get("/").status_code == 200
    monkeypatch.setattr(time, "time", lambda: real() + 29 * 60 + 31 * 60)  # 31 idle minutes
    r = c.get("/")
    assert r.status_code == 303 and r.headers["Location"].startswith("/login")


def test_the_idle_time_is_configurable(tmp_path, catalogue, monkeypatch):
    import time

    app = make_governed_app(tmp_path, catalogue, MATCHER_SESSION_IDLE_MINUTES=2)
    c = app.test_client()
    sign_in(c)
    cookie = next(v for v in c.get("/").headers.getlist("Set-Cookie") if "matcher" in v)
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 3 * 60)
    assert c.get("/").status_code == 303


def test_disabling_an_account_ends_its_sessions(governed):
    c = governed.test_client()
    sign_in(c)
    assert c.get("/").status_code == 200
    governed.extensions["matcher"].store.disable_user("alice", actor="system")
    assert c.get("/").status_code == 303


def test_a_secret_key_is_required_once_accounts_exist(tmp_path, catalogue):
    make_governed_app(tmp_path, catalogue)  # alice now exists in this store
    with pytest.raises(ValueError, match="MATCHER_SECRET_KEY"):
        make_app(tmp_path, catalogue)
    assert make_app(tmp_path, catalogue, MATCHER_SECRET_KEY=SECRET)


def test_the_page_is_open_without_credentials_and_closes_when_one_is_added(app, client):
    assert client.get("/").status_code == 200
    app.extensions["matcher"].store.create_key("k", ["match"], actor="system")
    assert client.get("/").status_code == 303
    assert client.post("/v1/match", json={"profile": {}}).status_code == 401


def test_serve_counts_store_credentials(tmp_path, catalogue):
    from matcher.service.server import _store_has_credentials
    from matcher.settings import load_settings

    settings = load_settings(database_url=f"sqlite:///{tmp_path / 'referrals.sqlite3'}")
    assert _store_has_credentials(settings) is False  # no file yet: nothing to open
    make_governed_app(tmp_path, catalogue)
    assert _store_has_credentials(settings) is True


# --- outcomes, reading and erasing ------------------------------------------------------------


def test_a_second_outcome_is_409_unless_a_correction(governed):
    store = governed.extensions["matcher"].store
    key = store.create_key("cases", ["referrals:write", "referrals:read"], actor="system")
    c = governed.test_client()
    rid = c.post("/v1/referrals", json={"profile": PROFILE, "activity_id": "act-00000"},
                 headers=_bearer(key)).get_json()["referral_id"]  # fmt: skip
    url = f"/v1/referrals/{rid}/outcome"
    assert c.post(url, json={"attended": True, "sessions_attended": 2},
                  headers=_bearer(key)).status_code == 200  # fmt: skip
    r = c.post(url, json={"attended": False}, headers=_bearer(key))
    assert r.status_code == 409 and r.content_type == "application/problem+json"
    assert '"correction": true' in r.get_json()["detail"]
    r = c.post(url, json={"attended": False, "correction": True}, headers=_bearer(key))
    assert r.status_code == 200 and r.get_json()["correction"] is True

    r = c.get(f"/v1/referrals/{rid}", headers=_bearer(key))
    assert r.status_code == 200
    body = r.get_json()
    assert body["referral_id"] == rid and body["activity_id"] == "act-00000"
    history = body["outcomes"]
    assert [(o["attended"], o["sessions_attended"], o["correction"]) for o in history] == [
        (True, 2, False), (False, None, True)
    ]  # fmt: skip
    assert {o["recorded_by"] for o in history} == {"key:cases"}
    assert all(o["recorded_at"] for o in history)
    actions = [(x["actor"], x["action"], x["referral_id"]) for x in store.audit_lines()]
    for action in ("referral.created", "outcome.recorded", "outcome.corrected", "referral.read"):
        assert ("key:cases", action, rid) in actions


def test_delete_erases_then_404_and_not_exported(governed):
    store = governed.extensions["matcher"].store
    writer = store.create_key("writer", ["referrals:write", "referrals:read"], actor="system")
    c = governed.test_client()
    body = {"profile": PROFILE, "activity_id": "act-00000"}
    made = [c.post("/v1/referrals", json=body, headers=_bearer(writer)).get_json()["referral_id"]
            for _ in range(2)]  # fmt: skip
    gone, kept = made
    c.post(f"/v1/referrals/{gone}/outcome", json={"attended": True}, headers=_bearer(writer))
    r = c.delete(f"/v1/referrals/{gone}", headers=_bearer(writer))
    assert r.status_code == 204 and r.get_data() == b""
    assert c.get(f"/v1/referrals/{gone}", headers=_bearer(writer)).status_code == 404
    assert c.delete(f"/v1/referrals/{gone}", headers=_bearer(writer)).status_code == 404
    assert c.post(f"/v1/referrals/{gone}/outcome", json={"attended": True},
                  headers=_bearer(writer)).status_code == 404  # fmt: skip
    assert [r.id for r in store.referrals()] == [kept]
    assert ("key:writer", "referral.erased", gone) in [
        (x["actor"], x["action"], x["referral_id"]) for x in store.audit_lines()
    ]


def test_export_after_an_erasure_leaves_it_out(governed, tmp_path):
    from training.export import export_uptake

    store = governed.extensions["matcher"].store
    key = store.create_key("w", ["referrals:write"], actor="system")
    c = governed.test_client()
    ids = []
    for _ in range(2):
        rid = c.post("/v1/referrals", json={"profile": PROFILE, "activity_id": "act-00000"},
                     headers=_bearer(key)).get_json()["referral_id"]  # fmt: skip
        c.post(f"/v1/referrals/{rid}/outcome", json={"attended": True}, headers=_bearer(key))
        ids.append(rid)
    assert c.delete(f"/v1/referrals/{ids[0]}", headers=_bearer(key)).status_code == 204
    out = tmp_path / "export.jsonl"
    assert export_uptake(store, out).exported == 1
    exported = [json.loads(line)["referral_id"] for line in out.read_text().splitlines()]
    assert exported == [ids[1]]


def test_reading_a_referral_on_the_page_is_audited_and_needs_a_sign_in(governed):
    store = governed.extensions["matcher"].store
    rid = store.add_referral(PROFILE, "act-00000", actor="system")
    c = governed.test_client()
    assert c.get(f"/referrals/{rid}").status_code == 303
    sign_in(c)
    assert c.get(f"/referrals/{rid}").status_code == 200
    assert ("user:alice", "referral.read", rid) in [
        (x["actor"], x["action"], x["referral_id"]) for x in store.audit_lines()
    ]


def test_the_audit_trail_holds_no_profile_value(governed):
    store = governed.extensions["matcher"].store
    key = store.create_key("k", ["referrals:write", "referrals:read"], actor="system")
    c = governed.test_client()
    profile = {**PROFILE, "interests": "SENTINEL-INTEREST", "gender": "SENTINEL-GENDER"}
    rid = c.post("/v1/referrals", json={"profile": profile, "activity_id": "act-00000"},
                 headers=_bearer(key)).get_json()["referral_id"]  # fmt: skip
    c.get(f"/v1/referrals/{rid}", headers=_bearer(key))
    c.get("/v1/referrals/LS6 3HN SENTINEL", headers=_bearer(key))
    sign_in(c, name="SENTINEL name with spaces", password="wrong password")
    sign_in(c)
    text = json.dumps(list(store.audit_lines()))
    for needle in ("SENTINEL", "LS6", "allotment", PASSWORD):
        assert needle not in text, needle
