"""Errors are RFC 9457 problems (400, 401, 404, 405, 413, 415, 422, 500) that never echo a
submitted value, and the logs carry request id, endpoint, status, latency and model version,
never bodies or profile fields."""

from __future__ import annotations

import json
import logging

import pytest
from api_support import PROFILE, make_app, page_post

from matcher.ranking import Matcher

pytest_plugins = ["conftest_api"]  # the app, client and catalogue fixtures


def _is_problem(r, status: int) -> dict:
    assert r.status_code == status
    assert r.content_type == "application/problem+json"
    body = json.loads(r.get_data(as_text=True))
    assert body["status"] == status and body["type"] == "about:blank" and body["title"]
    assert body["request_id"] == r.headers["X-Request-ID"]
    return body


# --- 400 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b'{"profile": {}',
        b"",
        b'{"profile": {"age": NaN}}',
        b'{"profile": {"max_cost": Infinity}}',
        b"\xff\xfe\x00",
        b"[" * 100_000 + b"]" * 100_000,
    ],
)
def test_malformed_json_is_400(client, raw):
    r = client.post("/v1/match", data=raw, content_type="application/json")
    body = _is_problem(r, 400)
    assert "JSON" in body["detail"] or "UTF-8" in body["detail"]


def test_a_json_body_that_is_not_an_object_is_422(client):
    for raw in (b"[]", b'"profile"', b"42", b"null"):
        r = client.post("/v1/match", data=raw, content_type="application/json")
        body = _is_problem(r, 422)
        assert body["errors"] == [{"path": "body", "expected": "expected a JSON object"}]


# --- 401 ------------------------------------------------------------------------------------------


def test_401_is_a_problem_with_a_challenge(tmp_path, catalogue):
    c = make_app(tmp_path, catalogue, MATCHER_API_KEYS="k1").test_client()
    r = c.post("/v1/match", json={"profile": PROFILE}, headers={"Authorization": "Bearer bad"})
    body = _is_problem(r, 401)
    assert r.headers["WWW-Authenticate"] == 'Bearer realm="matcher"'
    assert "bad" not in json.dumps(body)


# --- 404, 405 -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/nope", "/v1", "/v1/", "/v1/matches", "/v1/activities/x/y"])
def test_unknown_paths_are_404(client, path):
    _is_problem(client.get(path), 404)


@pytest.mark.parametrize(
    "method, path, allowed",
    [
        ("get", "/v1/match", {"POST", "OPTIONS"}),
        ("put", "/v1/match", {"POST", "OPTIONS"}),
        ("delete", "/v1/activities", {"GET", "HEAD", "OPTIONS"}),
        ("post", "/v1/activities/act-00000", {"GET", "HEAD", "OPTIONS"}),
        ("get", "/v1/referrals", {"POST", "OPTIONS"}),
        ("post", "/healthz", {"GET", "HEAD", "OPTIONS"}),
        ("patch", "/v1/model", {"GET", "HEAD", "OPTIONS"}),
    ],
)
def test_405_keeps_the_allow_header(client, method, path, allowed):
    r = getattr(client, method)(path)
    _is_problem(r, 405)
    assert set(r.headers["Allow"].replace(" ", "").split(",")) == allowed


# --- 413, 415 -------------------------------------------------------------------------------------


def test_too_large_is_413(tmp_path, catalogue):
    c = make_app(tmp_path, catalogue, MATCHER_MAX_BODY=500).test_client()
    body = {"profile": {"interests": ["gardening " * 30] * 3}}
    _is_problem(c.post("/v1/match", json=body), 413)
    _is_problem(c.post("/v1/referrals", json={**body, "activity_id": "act-00000"}), 413)
    assert c.post("/v1/match", json={"profile": {}}).status_code == 200


def test_the_default_limit_is_one_megabyte(client):
    big = {"profile": {"interests": ["x" * 2000] * 50}, "pad": "y" * 1_000_000}
    _is_problem(client.post("/v1/match", json=big), 413)


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "application/xml"]
)
def test_not_json_is_415(client, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    r = client.post("/v1/match", data=b'{"profile": {}}', headers=headers)
    _is_problem(r, 415)


def test_json_with_a_charset_or_a_json_suffix_is_accepted(client):
    for ctype in ("application/json; charset=utf-8", "application/merge-patch+json"):
        r = client.post("/v1/match", data=b'{"profile": {}}', headers={"Content-Type": ctype})
        assert r.status_code == 200


# --- 422: the field paths, never the values -------------------------------------------------

SENTINELS = {
    "age": 7,
    "location": {"postcode": "QX7 SENTINEL"},
    "interests": ["SENTINEL-INTEREST-zebra"],
    "needs": ["SENTINEL_NEED"],
    "gender": "x" * 51,
    "languages": ["SENTINELLANG"],
    "nhs_number": "SENTINEL-943-476-5919",
    "max_cost": -12345.678,
}


def test_422_names_the_fields_and_never_the_values(client):
    r = client.post("/v1/match", json={"profile": SENTINELS, "limit": 987654})
    body = _is_problem(r, 422)
    text = r.get_data(as_text=True)
    for needle in ("SENTINEL", "987654", "12345", "xxxxx", "943"):
        assert needle not in text
    paths = {e["path"] for e in body["errors"]}
    assert paths == {
        "limit", "profile.age", "profile.location.postcode", "profile.needs.0",
        "profile.gender", "profile.languages.0", "profile.nhs_number", "profile.max_cost",
    } or paths >= {"limit", "profile.age", "profile.nhs_number", "profile.max_cost"}  # fmt: skip
    for e in body["errors"]:
        assert set(e) == {"path", "expected"} and e["expected"]


def test_a_422_detail_lists_paths_only(client):
    body = client.post("/v1/match", json={"profile": {"age": "SENTINEL"}}).get_json()
    assert body["detail"] == "The request breaks the contract at: profile.age."


# --- 500: an opaque error id only ---------------------------------------------------------


def test_500_is_opaque_and_logged_with_its_id(client, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="matcher.api")

    def broken(self, profile, n=10, **kwargs):
        raise RuntimeError(f"internal detail about {profile.interests}")

    monkeypatch.setattr(Matcher, "recommend", broken)
    r = client.post("/v1/match", json={"profile": {"interests": "SENTINEL-secret-garden"}})
    body = _is_problem(r, 500)
    assert set(body) == {"type", "title", "status", "detail", "request_id", "error_id"}
    assert "internal" not in r.get_data(as_text=True) and "SENTINEL" not in r.get_data(as_text=True)
    logged = "\n".join(rec.getMessage() for rec in caplog.records)
    assert body["error_id"] in logged and "RuntimeError" in logged
    # The stack's source lines are there (code), the exception's message is not (values).
    assert "SENTINEL" not in logged and "internal detail about [" not in logged


def test_500_on_the_page_is_html_for_a_browser(client, monkeypatch):
    monkeypatch.setattr(Matcher, "recommend", lambda *a, **k: 1 / 0)
    r = page_post(client, "/", {"needs": ["money"]}, headers={"Accept": "text/html"})
    assert r.status_code == 500 and r.content_type.startswith("text/html")
    assert "ZeroDivisionError" not in r.get_data(as_text=True)
    assert "quote this reference" in r.get_data(as_text=True)


# --- the logs ------------------------------------------------------------------------------------


def test_one_log_line_per_request_with_what_operators_need(client, caplog):
    caplog.set_level(logging.INFO, logger="matcher.api")
    r = client.post("/v1/match", json={"profile": PROFILE}, headers={"X-Request-ID": "abc-123"})
    assert r.headers["X-Request-ID"] == "abc-123"
    lines = [json.loads(x.getMessage()) for x in caplog.records if '"request"' in x.getMessage()]
    assert len(lines) == 1
    line = lines[0]
    assert line["request_id"] == "abc-123" and line["endpoint"] == "/v1/match"
    assert line["status"] == 200 and line["model_version"] == "cold-start-1"
    assert line["method"] == "POST" and line["latency_ms"] >= 0


def test_an_unsafe_request_id_is_replaced(client):
    r = client.get("/healthz", headers={"X-Request-ID": "LS6 3HN <script>"})
    assert r.headers["X-Request-ID"] != "LS6 3HN <script>"
    assert len(r.headers["X-Request-ID"]) == 32


def test_no_profile_value_reaches_any_log_line(app, client, caplog):
    """Valid, invalid and failing requests, through the API and the page: none of the profile's
    values appears in a log record, formatted or not."""
    caplog.set_level(logging.DEBUG)
    profile = {
        "id": "p-SENTINEL-ID",
        "age": 87,
        "location": {"postcode": "LS6 3HN"},
        "needs": ["bereavement"],
        "interests": "SENTINEL-INTEREST likes ZEBRAFINCH birdwatching",
        "gender": "SENTINEL-GENDER",
        "languages": ["cy"],
        "exclude": ["act-SENTINEL-EXCLUDE"],
    }
    client.post("/v1/match", json={"profile": profile, "limit": 3})
    client.post("/v1/match", json={"profile": {**profile, "age": 12}})
    client.post("/v1/match", json={"profile": {**profile, "nickname": "SENTINEL-NICK"}})
    client.post(
        "/v1/match",
        data=b'{"profile": {"interests": "SENTINEL-BROKEN',
        content_type="application/json",
    )
    r = client.post("/v1/referrals", json={"profile": profile, "activity_id": "act-00001"})
    client.post(f"/v1/referrals/{r.get_json()['referral_id']}/outcome", json={"attended": True})
    client.get("/v1/activities?postcode=LS6%203HN&text=ZEBRAFINCH")
    form = {"postcode": "LS6 3HN", "interests": "SENTINEL-INTEREST ZEBRAFINCH", "age": "87",
            "needs": ["bereavement"]}  # fmt: skip
    assert page_post(client, "/", form).status_code == 200
    assert page_post(client, "/", {**form, "age": "SENTINEL-AGE"}).status_code == 422
    client.post("/", data=form, headers={"Origin": "null"})  # refused: no token, opaque origin

    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    text = "\n".join(formatter.format(rec) + " " + repr(rec.args) for rec in caplog.records)
    assert caplog.records, "nothing was logged at all"
    for needle in ("SENTINEL", "ZEBRAFINCH", "LS6 3HN", "LS6%203HN", "bereavement", '"age": 87'):
        assert needle not in text, needle


def test_a_store_that_fails_answers_503_with_retry_after(client, monkeypatch):
    from matcher.store import StoreError

    store = client.application.extensions["matcher"].store

    def down(*args, **kwargs):
        raise StoreError("cannot write to the referral database (OperationalError)")

    monkeypatch.setattr(store, "add_referral", down)
    r = client.post("/v1/referrals", json={"profile": PROFILE, "activity_id": "act-00000"})
    assert r.status_code == 503 and r.headers["Retry-After"] == "5"
    assert r.content_type == "application/problem+json"
    assert "OperationalError" not in r.get_data(as_text=True)
