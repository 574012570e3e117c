"""The JSON API and the link-worker page through Flask's test client: every endpoint, auth on
and off, configuration, model reload without downtime, and a real gunicorn start."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser

import pytest
from api_support import (
    PROFILE,
    ROOT,
    csrf_token,
    fake_load_model,
    make_app,
    page_post,
    point_current,
    write_model,
)

from matcher import geo, watch
from matcher.cli import main as cli_main
from matcher.contract import NEEDS, parse_profile
from matcher.service import context, create_app
from matcher.service.server import is_loopback
from matcher.store import Store, minimise

pytest_plugins = ["conftest_api"]  # the app, client and catalogue fixtures


# --- POST /v1/match ---------------------------------------------------------------------------


def test_match_answers_the_contract_shape(client):
    r = client.post("/v1/match", json={"profile": PROFILE, "limit": 5})
    assert r.status_code == 200
    assert r.content_type == "application/json"
    body = r.get_json()
    assert body["model_version"] == "cold-start-1"
    assert body["id"] == "p-7f3a"
    assert 1 <= len(body["matches"]) <= 5
    for m in body["matches"]:
        assert set(m) == {"activity_id", "name", "score", "distance_km", "reasons"}
        assert 0 <= m["score"] <= 1
        assert m["reasons"] and all(isinstance(x, str) for x in m["reasons"])


def test_match_default_limit_is_ten_and_is_deterministic(client):
    a = client.post("/v1/match", json={"profile": {"needs": ["loneliness"]}}).get_json()
    b = client.post("/v1/match", json={"profile": {"needs": ["loneliness"]}}).get_json()
    assert len(a["matches"]) == 10
    assert a == b
    assert "id" not in a


def test_match_respects_hard_needs(client, catalogue):
    profile = {"needs": ["physical_activity"], "accessibility": ["wheelchair"], "online": "no"}
    body = client.post("/v1/match", json={"profile": profile, "limit": 20}).get_json()
    for m in body["matches"]:
        activity = catalogue.get(m["activity_id"])
        assert "wheelchair" in activity.accessibility
        assert not activity.online


@pytest.mark.parametrize("limit", [0, 51, "5", 2.5, True])
def test_match_refuses_a_bad_limit(client, limit):
    r = client.post("/v1/match", json={"profile": {}, "limit": limit})
    assert r.status_code == 422
    assert [e["path"] for e in r.get_json()["errors"]] == ["limit"]


def test_match_refuses_unknown_top_level_fields(client):
    r = client.post("/v1/match", json={"profile": {}, "name": "Jane Doe"})
    assert r.status_code == 422
    assert r.get_json()["errors"][0]["path"] == "name"
    assert "Jane" not in r.get_data(as_text=True)


def test_match_unknown_postcode_is_422_on_the_field(client):
    r = client.post("/v1/match", json={"profile": {"location": {"postcode": "ZZ99 9ZZ"}}})
    assert r.status_code == 422
    assert r.get_json()["errors"][0]["path"] == "profile.location.postcode"
    assert "ZZ99" not in r.get_data(as_text=True)


# --- GET /v1/activities -------------------------------------------------------------------------


def test_activities_pages_through_active_activities(client, catalogue):
    first = client.get("/v1/activities?per_page=7").get_json()
    active = sum(a.status == "active" for a in catalogue)
    assert first["total_items"] == active
    assert first["total_pages"] == -(-active // 7)
    assert first["first_page"] and not first["last_page"] and not first["empty"]
    assert len(first["contents"]) == 7
    second = client.get("/v1/activities?per_page=7&page=2").get_json()
    assert {a["id"] for a in first["contents"]}.isdisjoint(a["id"] for a in second["contents"])
    last = client.get(f"/v1/activities?per_page=7&page={first['total_pages']}").get_json()
    assert last["last_page"]
    beyond = client.get(f"/v1/activities?per_page=7&page={first['total_pages'] + 1}").get_json()
    assert beyond["empty"] and beyond["contents"] == []


def test_activities_postcode_and_proximity(client):
    body = client.get("/v1/activities?postcode=LS6%203HN&proximity=1500&per_page=100").get_json()
    assert body["total_items"] > 0
    distances = [a["distance_km"] for a in body["contents"]]
    assert all(d <= 1.5 for d in distances)
    assert distances == sorted(distances)
    wider = client.get("/v1/activities?postcode=LS6%203HN&proximity=5000").get_json()
    assert wider["total_items"] > body["total_items"]


def test_activities_postcode_alone_sorts_by_distance(client):
    body = client.get("/v1/activities?postcode=LS1&per_page=30").get_json()
    distances = [a["distance_km"] for a in body["contents"] if "distance_km" in a]
    assert distances == sorted(distances) and len(distances) == 30


def test_activities_need_and_day_filters(client, catalogue):
    body = client.get("/v1/activities?need=money&day=mon&per_page=100").get_json()
    assert body["total_items"] > 0
    for item in body["contents"]:
        assert "money" in (item.get("needs") or item.get("inferred_needs"))
        assert any(s["day"] == "mon" for s in item["sessions"])


def test_activities_text_search(client):
    body = client.get("/v1/activities?text=gardening&per_page=5").get_json()
    assert body["total_items"] > 0
    top = body["contents"][0]
    text = (top["name"] + " " + top.get("description", "") + " " + " ".join(top["tags"])).lower()
    assert "garden" in text or "allotment" in text


@pytest.mark.parametrize(
    "query, path",
    [
        ("proximity=1000", "proximity"),
        ("postcode=ZZ99%209ZZ", "postcode"),
        ("need=happiness", "need"),
        ("day=funday", "day"),
        ("page=0", "page"),
        ("per_page=1000", "per_page"),
        ("page=two", "page"),
        ("postcode=LS6&proximity=-5", "proximity"),
    ],
)
def test_activities_bad_filters_are_422(client, query, path):
    r = client.get(f"/v1/activities?{query}")
    assert r.status_code == 422
    assert r.content_type == "application/problem+json"
    assert [e["path"] for e in r.get_json()["errors"]] == [path]


def test_one_activity_and_a_missing_one(client, catalogue):
    first = catalogue.activities[0]
    r = client.get(f"/v1/activities/{first.id}")
    assert r.status_code == 200 and r.get_json()["name"] == first.name
    r = client.get("/v1/activities/no-such-activity")
    assert r.status_code == 404 and r.content_type == "application/problem+json"


def test_inferred_needs_are_shown(client, catalogue):
    inferred = next(i for i in range(len(catalogue)) if catalogue.needs_of(i)[1])
    body = client.get(f"/v1/activities/{catalogue.ids[inferred]}").get_json()
    assert body["inferred_needs"] == catalogue.needs_of(inferred)[0]


# --- referrals and outcomes ------------------------------------------------------------------


def test_referral_then_outcome(client, app):
    r = client.post(
        "/v1/referrals",
        json={"profile": PROFILE, "activity_id": "act-00000", "shown": ["act-00000", "act-00001"]},
    )
    assert r.status_code == 201
    referral_id = r.get_json()["referral_id"]
    store = app.extensions["matcher"].store
    stored = store.get(referral_id)
    # Stored minimised: the postcode cut to its sector (the store's rule).
    assert stored.profile == minimise(parse_profile(PROFILE).to_dict()) and stored.attended is None
    assert stored.shown == ["act-00000", "act-00001"] and stored.model_version == "cold-start-1"

    r = client.post(
        f"/v1/referrals/{referral_id}/outcome", json={"attended": True, "sessions_attended": 4}
    )
    assert r.status_code == 200
    assert r.get_json() == {
        "referral_id": referral_id,
        "activity_id": "act-00000",
        "date": stored.date,
        "attended": True,
        "sessions_attended": 4,
        "correction": False,
    }
    # A second outcome is refused unless it says it is a correction (changed: it used to
    # replace the first silently).
    r = client.post(f"/v1/referrals/{referral_id}/outcome", json={"attended": False})
    assert r.status_code == 409 and r.content_type == "application/problem+json"
    assert store.get(referral_id).attended is True
    r = client.post(
        f"/v1/referrals/{referral_id}/outcome", json={"attended": False, "correction": True}
    )
    assert r.status_code == 200 and store.get(referral_id).attended is False


def test_referral_to_an_unknown_activity_is_422(client):
    r = client.post("/v1/referrals", json={"profile": {}, "activity_id": "act-nope"})
    assert r.status_code == 422
    assert r.get_json()["errors"] == [
        {"path": "activity_id", "expected": "expected an activity id in the catalogue"}
    ]


def test_referral_needs_a_valid_profile(client):
    r = client.post(
        "/v1/referrals",
        json={"profile": {"nhs_number": "943 476 5919"}, "activity_id": "act-00000"},
    )
    assert r.status_code == 422
    assert r.get_json()["errors"][0]["path"] == "profile.nhs_number"
    assert "943" not in r.get_data(as_text=True)


def test_outcome_for_an_unknown_referral_is_404(client):
    r = client.post("/v1/referrals/r-nope/outcome", json={"attended": True})
    assert r.status_code == 404 and r.content_type == "application/problem+json"


@pytest.mark.parametrize(
    "body, path",
    [
        ({}, "attended"),
        ({"attended": "yes"}, "attended"),
        ({"attended": True, "sessions_attended": 0}, "sessions_attended"),
        ({"attended": False, "sessions_attended": 3}, "sessions_attended"),
        ({"attended": True, "sessions_attended": -1}, "sessions_attended"),
        ({"attended": True, "note": "x"}, "note"),
    ],
)
def test_bad_outcomes_are_422(client, body, path):
    rid = client.post("/v1/referrals", json={"profile": {}, "activity_id": "act-00000"})
    r = client.post(f"/v1/referrals/{rid.get_json()['referral_id']}/outcome", json=body)
    assert r.status_code == 422
    assert [e["path"] for e in r.get_json()["errors"]] == [path]


# --- model card, health, OpenAPI ---------------------------------------------------------------


def test_model_card_for_the_cold_start_scorer(client):
    card = client.get("/v1/model").get_json()
    assert card["version"] == "cold-start-1" and card["kind"] == "cold-start"
    assert card["trained"] is False
    assert "not been learned" in card["summary"] and "need_listed" in card["weights"]


def test_healthz_is_liveness_and_never_touches_the_store(client, catalogue, monkeypatch):
    store = client.application.extensions["matcher"].store
    monkeypatch.setattr(store, "writable", lambda: 1 / 0)
    monkeypatch.setattr(store, "ping", lambda: 1 / 0)
    r = client.get("/healthz")
    assert r.status_code == 200
    body = r.get_json()
    assert body["status"] == "ok" and body["model_version"] == "cold-start-1"
    assert body["catalogue_size"] == len(catalogue)
    assert "cold-start scorer" in body["note"]


def test_readyz_writes_to_the_store_and_names_what_is_served(client, catalogue, monkeypatch):
    r = client.get("/readyz")
    assert r.status_code == 200
    assert r.get_json() == {
        "status": "ready",
        "database": "ok",
        "model_version": "cold-start-1",
        "catalogue_version": None,
        "catalogue_size": len(catalogue),
    }
    store = client.application.extensions["matcher"].store
    monkeypatch.setattr(store, "writable", lambda: False)
    r = client.get("/readyz")
    assert r.status_code == 503
    assert r.get_json()["status"] == "unavailable" and r.get_json()["database"] == "unavailable"


def test_openapi_lists_every_endpoint_and_its_statuses(client):
    doc = client.get("/openapi.json").get_json()
    assert doc["openapi"] == "3.1.0"
    ops = {(path, method): op for path, item in doc["paths"].items() for method, op in item.items()}
    assert set(ops) == {
        ("/v1/match", "post"),
        ("/v1/activities", "get"),
        ("/v1/activities/{activity_id}", "get"),
        ("/v1/referrals", "post"),
        ("/v1/referrals/{referral_id}/outcome", "post"),
        ("/v1/referrals/{referral_id}", "get"),
        ("/v1/referrals/{referral_id}", "delete"),
        ("/v1/referrals/{referral_id}/fhir", "get"),
        ("/v1/model", "get"),
        ("/v1/reports/provision", "get"),
        ("/healthz", "get"),
        ("/readyz", "get"),
    }
    for (path, method), op in ops.items():
        statuses = set(op["responses"])
        assert "500" in statuses
        if path.startswith("/v1"):
            assert {"401", "403", "429"} <= statuses
        if method == "post":
            assert {"400", "413", "415", "422"} <= statuses
        if "{" in path:
            assert "404" in statuses
    for op in ops.values():  # any request may meet a refused Host, long URL or headers, or a
        assert {"400", "414", "431", "503"} <= set(op["responses"])  # busy service
    assert set(ops[("/v1/activities", "get")]["responses"]) == {
        "200",
        "400",
        "401",
        "403",
        "422",
        "429",
        "500",
        "414",
        "431",
        "503",
    }
    assert "409" in ops[("/v1/referrals/{referral_id}/outcome", "post")]["responses"]
    assert "204" in ops[("/v1/referrals/{referral_id}", "delete")]["responses"]
    schemas = doc["components"]["schemas"]
    assert any(name.startswith("Profile") for name in schemas)
    profile = next(s for n, s in schemas.items() if n.startswith("Profile") and "Location" not in n)
    assert profile["additionalProperties"] is False


# --- auth ----------------------------------------------------------------------------------------


@pytest.fixture
def keyed(tmp_path, catalogue):
    return make_app(tmp_path, catalogue, MATCHER_API_KEYS="alpha-key, beta-key").test_client()


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("post", "/v1/match", {"profile": {}}),
        ("get", "/v1/activities", None),
        ("get", "/v1/activities/act-00000", None),
        ("post", "/v1/referrals", {"profile": {}, "activity_id": "act-00000"}),
        ("post", "/v1/referrals/r-x/outcome", {"attended": True}),
        ("get", "/v1/model", None),
        ("get", "/v1/nothing-here", None),
    ],
)
def test_every_v1_endpoint_needs_a_key_when_keys_are_set(keyed, method, path, body):
    call = getattr(keyed, method)
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic alpha-key"},
        {"Authorization": "Bearer"},
        {"Authorization": "bearer alpha-key-extra"},
    ):
        r = call(path, json=body, headers=headers)
        assert r.status_code == 401, headers
        assert r.content_type == "application/problem+json"
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
    r = call(path, json=body, headers={"Authorization": "Bearer beta-key"})
    assert r.status_code != 401


def test_both_keys_work_and_open_endpoints_stay_open(keyed):
    for key in ("alpha-key", "beta-key"):
        r = keyed.post(
            "/v1/match", json={"profile": {}}, headers={"Authorization": f"Bearer {key}"}
        )
        assert r.status_code == 200
    assert keyed.get("/healthz").status_code == 200
    assert keyed.get("/openapi.json").status_code == 200


def test_without_keys_nothing_needs_auth(client):
    assert client.post("/v1/match", json={"profile": {}}).status_code == 200
    assert client.get("/").status_code == 200


def test_the_page_asks_for_a_sign_in_when_keys_are_set(keyed):
    """Changed: the page sends a person to the sign-in form (a bootstrap key as the password
    still works, deprecated) instead of asking for HTTP Basic."""
    r = keyed.get("/", headers={"Accept": "text/html"})
    assert r.status_code == 303 and r.headers["Location"].startswith("/login")
    good = base64.b64encode(b"linkworker:alpha-key").decode()
    assert keyed.get("/", headers={"Authorization": f"Basic {good}"}).status_code == 200
    bad = base64.b64encode(b"linkworker:nope").decode()
    assert keyed.get("/", headers={"Authorization": f"Basic {bad}"}).status_code == 303
    assert keyed.get("/static/style.css").status_code == 200
    r = page_post(keyed, "/login", {"name": "linkworker", "password": "alpha-key"},
                  token=csrf_token(keyed, "/login"))  # fmt: skip
    assert r.status_code == 303 and r.headers["Location"] == "/"
    assert keyed.get("/").status_code == 200


def test_keys_compare_in_constant_time(monkeypatch, app):
    seen = []
    real = hmac.compare_digest
    monkeypatch.setattr(context.hmac, "compare_digest", lambda a, b: seen.append(1) or real(a, b))
    service = app.extensions["matcher"]
    service._key_digests = [hashlib.sha256(k.encode()).digest() for k in ("a", "b", "c")]
    assert service.key_ok("a")
    assert len(seen) == 3  # every key is compared, not just up to the first match


# --- configuration ------------------------------------------------------------------------------


def test_configuration_from_the_environment(tmp_path, monkeypatch, catalogue):
    path = tmp_path / "cat.json"
    path.write_text(json.dumps({"activities": [a.to_dict() for a in catalogue.activities[:20]]}))
    monkeypatch.setenv("MATCHER_CATALOGUE", str(path))
    monkeypatch.setenv("MATCHER_DATABASE_URL", f"sqlite:///{tmp_path / 'env.sqlite3'}")
    monkeypatch.setenv("MATCHER_API_KEYS", "env-key")
    monkeypatch.setenv("MATCHER_MAX_BODY", "1000")
    monkeypatch.setenv("MATCHER_MODEL_DIR", str(tmp_path / "none"))
    monkeypatch.setenv("MATCHER_RELOAD_ON_SIGHUP", "0")
    app = create_app()
    c = app.test_client()
    auth = {"Authorization": "Bearer env-key"}
    assert c.get("/healthz").get_json()["catalogue_size"] == 20
    assert c.get("/v1/model").status_code == 401
    assert c.get("/v1/model", headers=auth).status_code == 200
    big = {"profile": {"interests": "x" * 1500}, "limit": 3}
    assert c.post("/v1/match", json=big, headers=auth).status_code == 413
    assert (tmp_path / "env.sqlite3").exists()
    # A mapping overrides the environment.
    app2 = create_app(
        {"MATCHER_API_KEYS": "", "MATCHER_DATABASE_URL": f"sqlite:///{tmp_path / 'b.db'}"}
    )
    assert app2.test_client().get("/v1/model").status_code == 200


def test_database_defaults_to_the_instance_folder(tmp_path, catalogue, monkeypatch):
    monkeypatch.delenv("MATCHER_DATABASE_URL", raising=False)
    application = make_app(tmp_path, catalogue, MATCHER_DATABASE_URL=None)
    store = application.extensions["matcher"].store
    assert store.path == os.path.join(application.instance_path, "matcher.sqlite3")


def test_an_open_referral_feed_as_the_catalogue(tmp_path):
    feed = ROOT.parent / "shared" / "data" / "oruk" / "north-lincolnshire-v1-services.json"
    if not feed.exists():
        pytest.skip("the shared Open Referral UK feed is not here")
    c = make_app(tmp_path, str(feed)).test_client()
    size = c.get("/healthz").get_json()["catalogue_size"]
    assert size > 100
    assert c.post("/v1/match", json={"profile": {"needs": ["loneliness"]}}).status_code == 200


def test_serve_refuses_a_public_address_without_keys(monkeypatch, capsys):
    monkeypatch.delenv("MATCHER_API_KEYS", raising=False)
    assert cli_main(["serve", "--host", "0.0.0.0"]) == 2
    assert "without API keys" in capsys.readouterr().err
    assert cli_main(["serve", "--host", "192.168.1.10", "--port", "1"]) == 2


@pytest.mark.parametrize(
    "host, loopback",
    [
        ("127.0.0.1", True),
        ("127.9.9.9", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("10.0.0.1", False),
        ("example.org", False),
    ],
)
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback


# --- model reload without downtime --------------------------------------------------------------


@pytest.fixture
def models(tmp_path, monkeypatch):
    monkeypatch.setattr("matcher.scoring.registry.load_model", fake_load_model)
    folder = tmp_path / "models"
    write_model(folder, "m-1")
    point_current(folder, "m-1")
    return folder


def _version(c) -> str:
    return c.post("/v1/match", json={"profile": {}, "limit": 1}).get_json()["model_version"]


def test_a_new_model_is_picked_up_and_a_bad_one_refused(tmp_path, catalogue, models, caplog):
    caplog.set_level(logging.INFO, logger="matcher")
    app = make_app(
        tmp_path,
        catalogue,
        MATCHER_MODEL_DIR=str(models / "current"),
        MATCHER_MODEL_CHECK_SECONDS=0,
    )
    c = app.test_client()
    assert _version(c) == "m-1"
    card = c.get("/v1/model").get_json()
    assert card["trained"] is True and card["version"] == "m-1" and card["metrics"]

    write_model(models, "m-2")
    point_current(models, "m-2")
    assert _version(c) == "m-2"
    assert c.get("/healthz").get_json()["model_version"] == "m-2"

    write_model(models, "m-3-tampered", bad=True)
    point_current(models, "m-3-tampered")
    assert _version(c) == "m-2"  # refused; the previous model keeps serving
    refused = [
        json.loads(r.getMessage()) for r in caplog.records if "model_refused" in r.getMessage()
    ]
    assert refused and refused[-1]["serving"] == "m-2" and "checksum" in refused[-1]["reason"]

    write_model(models, "m-4")
    point_current(models, "m-4")
    assert _version(c) == "m-4"


def test_the_model_is_checked_at_most_every_few_seconds(tmp_path, catalogue, models, monkeypatch):
    app = make_app(
        tmp_path,
        catalogue,
        MATCHER_MODEL_DIR=str(models / "current"),
        MATCHER_MODEL_CHECK_SECONDS=3600,
    )
    holder = app.extensions["matcher"].watcher
    calls = []
    real = watch.fingerprint
    monkeypatch.setattr(watch, "fingerprint", lambda path: calls.append(1) or real(path))
    c = app.test_client()
    write_model(models, "m-2")
    point_current(models, "m-2")
    for _ in range(5):
        assert _version(c) == "m-1"
    assert calls == []
    holder._next_check = 0  # as if the interval had passed
    assert _version(c) == "m-2" and len(calls) == 1


def test_sighup_reloads_the_model(tmp_path, catalogue, models, monkeypatch):
    before = signal.getsignal(signal.SIGHUP)
    try:
        app = make_app(
            tmp_path,
            catalogue,
            MATCHER_MODEL_DIR=str(models / "current"),
            MATCHER_MODEL_CHECK_SECONDS=3600,
            MATCHER_RELOAD_ON_SIGHUP=True,
        )
        c = app.test_client()
        write_model(models, "m-2")
        point_current(models, "m-2")
        assert _version(c) == "m-1"
        os.kill(os.getpid(), signal.SIGHUP)
        time.sleep(0.05)
        assert _version(c) == "m-2"
    finally:
        signal.signal(signal.SIGHUP, before)


def test_a_bad_model_at_start_falls_back_to_cold_start(tmp_path, catalogue, models, caplog):
    caplog.set_level(logging.INFO, logger="matcher")
    write_model(models, "m-bad", bad=True)
    point_current(models, "m-bad")
    app = make_app(tmp_path, catalogue, MATCHER_MODEL_DIR=str(models / "current"))
    c = app.test_client()
    assert _version(c) == "cold-start-1"
    assert "checksum" in c.get("/v1/model").get_json()["note"]
    assert any("model_refused" in r.getMessage() for r in caplog.records)


def test_no_model_folder_yet_then_one_appears(tmp_path, catalogue, monkeypatch):
    monkeypatch.setattr("matcher.scoring.registry.load_model", fake_load_model)
    models = tmp_path / "models"
    app = make_app(
        tmp_path,
        catalogue,
        MATCHER_MODEL_DIR=str(models / "current"),
        MATCHER_MODEL_CHECK_SECONDS=0,
    )
    c = app.test_client()
    assert _version(c) == "cold-start-1"
    write_model(models, "m-1")
    point_current(models, "m-1")
    assert _version(c) == "m-1"


# --- the link-worker page ------------------------------------------------------------------------


class _Controls(HTMLParser):
    """Collects form controls and the ids that labels point at."""

    def __init__(self):
        super().__init__()
        self.controls, self.labelled = [], set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("input", "select", "textarea") and a.get("type") not in ("hidden", "submit"):
            self.controls.append(a.get("id"))
        if tag == "label" and a.get("for"):
            self.labelled.add(a["for"])


def test_the_form_has_a_label_for_every_control(client):
    r = client.get("/")
    assert r.status_code == 200 and r.content_type.startswith("text/html")
    parser = _Controls()
    parser.feed(r.get_data(as_text=True))
    assert len(parser.controls) >= len(NEEDS) + 21 + 6
    assert all(c and c in parser.labelled for c in parser.controls)
    html = r.get_data(as_text=True)
    assert 'name="viewport"' in html and "<script" not in html


def test_the_form_gives_cards_with_refer_buttons(client):
    r = page_post(
        client,
        "/",
        {
            "needs": ["loneliness", "physical_activity"],
            "postcode": "LS6 3HN",
            "interests": "gardening",
            "age": "70",
            "travel": "walk",
            "availability": ["wed_am"],
            "online": "no",
            "max_cost": "0",
        },
    )
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert html.count('class="card"') >= 3
    assert html.count('action="/refer"') == html.count('class="card"')
    for word in ("Where", "When", "Cost", "km away"):
        assert word in html
    # What was typed stays in the form.
    assert 'value="LS6 3HN"' in html and ">gardening</textarea>" in html


@pytest.mark.parametrize(
    "data, message",
    [
        ({"age": "seventy"}, "Age: Enter the age as a whole number"),
        ({"age": "12"}, "Age: Enter an age from 16 to 120"),
        ({"postcode": "not a postcode"}, "Postcode: Enter a UK postcode"),
        ({"postcode": "ZZ99 9ZZ"}, "Postcode: Enter a UK postcode"),
        ({"max_cost": "-3"}, "Most they can pay: Enter an amount of 0 or more"),
        ({"max_travel_km": "far"}, "Furthest they will travel: Enter the distance"),
        ({"needs": ["world_peace"]}, "What would help: Expected one of"),
    ],
)
def test_invalid_form_input_names_the_field(client, data, message):
    r = page_post(client, "/", data)
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert message in html
    assert 'role="alert"' in html and 'class="card"' not in html


def test_refer_from_the_page_then_record_the_outcome(client, app):
    r = page_post(client, "/", {"needs": ["money"], "postcode": "LS1"})
    html = r.get_data(as_text=True)
    profile = re.search(r'name="profile" value="([^"]*)"', html).group(1)
    activity_id = re.search(r'name="activity_id" value="([^"]*)"', html).group(1)
    shown = re.search(r'name="shown" value="([^"]*)"', html).group(1)
    from html import unescape

    r = page_post(
        client, "/refer", {"profile": unescape(profile), "activity_id": activity_id, "shown": shown}
    )
    assert r.status_code == 303
    page = client.get(r.headers["Location"])
    assert page.status_code == 200 and "Referral recorded" in page.get_data(as_text=True)
    referral_id = r.headers["Location"].rsplit("/", 1)[1]
    store = app.extensions["matcher"].store
    stored = store.get(referral_id)
    assert stored.activity_id == activity_id and stored.profile["needs"] == ["money"]
    assert stored.shown == shown.split(",")

    r = page_post(
        client, f"/referrals/{referral_id}/outcome", {"attended": "yes", "sessions_attended": "2"}
    )
    assert r.status_code == 303 and "saved=1" in r.headers["Location"]
    assert store.get(referral_id).attended is True
    assert "Outcome saved" in client.get(r.headers["Location"]).get_data(as_text=True)
    r = page_post(client, f"/referrals/{referral_id}/outcome", {"attended": "maybe"})
    assert "error=1" in r.headers["Location"]
    # The page offers the recorded outcome for correction, and says so when it is sent.
    page = client.get(f"/referrals/{referral_id}").get_data(as_text=True)
    assert 'name="correction" value="1"' in page
    r = page_post(client, f"/referrals/{referral_id}/outcome",
                  {"attended": "no", "correction": "1"})  # fmt: skip
    assert r.status_code == 303 and store.get(referral_id).attended is False
    assert [o.correction for o in store.get(referral_id).outcomes] == [False, True]
    r = page_post(client, f"/referrals/{referral_id}/outcome", {"attended": "yes"})
    assert r.status_code == 409 and store.get(referral_id).attended is False


def test_cross_site_form_posts_are_refused(client):
    """Changed: a post with no Origin, or ``null``, is refused too, and so is one without the
    session's CSRF token (tests/test_security.py has the rest)."""
    token = csrf_token(client)
    for origin in ("https://evil.example", None, "null"):
        r = page_post(client, "/", {"needs": ["money"]}, token=token, origin=origin)
        assert r.status_code == 403, origin
    r = page_post(client, "/", {"needs": ["money"]}, token=token, origin="http://localhost")
    assert r.status_code == 200


def test_browsers_get_an_html_error_page_on_the_site(client):
    r = client.get("/referrals/r-nope", headers={"Accept": "text/html,*/*;q=0.8"})
    assert r.status_code == 404 and r.content_type.startswith("text/html")
    r = client.get("/v1/nothing", headers={"Accept": "text/html,*/*;q=0.8"})
    assert r.content_type == "application/problem+json"


# --- gunicorn -------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_runs_under_gunicorn(tmp_path, catalogue):
    path = tmp_path / "cat.json"
    path.write_text(json.dumps([a.to_dict() for a in catalogue.activities[:30]]))
    port = _free_port()
    env = {
        **os.environ,
        "MATCHER_CATALOGUE": str(path),
        "MATCHER_DATABASE_URL": f"sqlite:///{tmp_path / 'g.sqlite3'}",
        "MATCHER_MODEL_DIR": str(tmp_path / "none"),
    }
    gunicorn = os.path.join(os.path.dirname(sys.executable), "gunicorn")
    log = open(tmp_path / "gunicorn.log", "wb")  # noqa: SIM115  (a file: a pipe could fill up)
    proc = subprocess.Popen(
        [gunicorn, "-w", "2", "-b", f"127.0.0.1:{port}", "api:create_app()"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    assert json.load(r)["catalogue_size"] == 30
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.2)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/match",
            method="POST",
            data=json.dumps({"profile": PROFILE}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as r:
            assert r.status == 200 and "matches" in json.load(r)

        # Both workers writing referrals at once lose none.
        def refer(k: int) -> str:
            body = {"profile": {**PROFILE, "id": f"p-{k}"}, "activity_id": catalogue.ids[k % 30]}
            req = urllib.request.Request(
                f"http://127.0.0.1:{port}/v1/referrals",
                method="POST",
                data=json.dumps(body).encode(),
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(req, timeout=30) as r:
                assert r.status == 201
                return json.load(r)["referral_id"]

        with ThreadPoolExecutor(6) as pool:
            made = list(pool.map(refer, range(60)))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
    stored = {r.id: r for r in Store(env["MATCHER_DATABASE_URL"]).referrals()}
    assert set(made) == set(stored) and len(made) == 60
    assert {r.profile["id"] for r in stored.values()} == {f"p-{k}" for k in range(60)}
    text = (tmp_path / "gunicorn.log").read_text()
    assert "Booting worker" in text
    assert geo.normalise_postcode(PROFILE["location"]["postcode"]) not in text
    assert PROFILE["interests"] not in text


# --- headers --------------------------------------------------------------------------------------


def test_pages_and_answers_are_never_cached_and_never_leak_the_address(client):
    for r in (client.get("/"), client.post("/v1/match", json={"profile": {}}),
              client.get("/nope")):  # fmt: skip
        assert r.headers["Cache-Control"] == "no-store"
        # Changed for pages: same-origin (no-referrer made Chromium send Origin: null).
        assert r.headers["Referrer-Policy"] in ("no-referrer", "same-origin")
        assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert client.get("/").headers["Referrer-Policy"] == "same-origin"
    assert client.get("/nope").headers["Referrer-Policy"] == "no-referrer"
    page = client.get("/")
    assert "script-src 'none'" in page.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]


@pytest.mark.parametrize(
    "setting, value",
    [("MATCHER_MAX_BODY", "1MB"), ("MATCHER_MAX_BODY", 0), ("MATCHER_MODEL_CHECK_SECONDS", "-1")],
)
def test_bad_settings_are_named(tmp_path, catalogue, setting, value):
    with pytest.raises(ValueError, match=setting):
        make_app(tmp_path, catalogue, **{setting: value})


def test_real_model_folders_swap_and_a_tampered_one_is_refused(tmp_path, catalogue, caplog):
    """With matcher.scoring's own folders: serve v1, switch to v2, then a v3 whose model file
    no longer matches its card's SHA-256 is refused and v2 keeps serving."""
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingClassifier

    from matcher.features import COLUMN, FEATURES
    from matcher.scoring import MODEL_FILE, save_model, set_current

    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, len(FEATURES)))
    y = (X[:, COLUMN["need_listed"]] + rng.normal(size=400) > 0).astype(int)
    booster = HistGradientBoostingClassifier(max_iter=5, max_leaf_nodes=4).fit(X, y)
    root = tmp_path / "models"
    card = {"metrics": {"auc": {"model": 0.7}}, "gate": {"passed": True}}
    for version in ("v1", "v2", "v3"):
        evidence = {"act-00000": (0.4, 10.0)}
        save_model(booster, evidence, card, root, version, reference=np.zeros(len(FEATURES)))
    set_current(root, "v1")
    caplog.set_level(logging.INFO, logger="matcher")
    app = make_app(tmp_path, catalogue, MATCHER_MODEL_DIR=str(root / "current"),
                   MATCHER_MODEL_CHECK_SECONDS=0)  # fmt: skip
    c = app.test_client()
    assert _version(c) == "v1"
    served = c.get("/v1/model").get_json()
    assert served["trained"] is True and served["kind"] == "trained"
    assert served["metrics"] == {"auc": {"model": 0.7}}

    set_current(root, "v2")
    assert _version(c) == "v2"

    model = root / "v3" / MODEL_FILE
    blob = bytearray(model.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    model.write_bytes(bytes(blob))
    point_current(root, "v3")  # a bad deploy, past set_current's own check
    assert _version(c) == "v2"
    refused = [r.getMessage() for r in caplog.records if "model_refused" in r.getMessage()]
    assert refused and "checksum" in refused[-1]


@pytest.mark.parametrize("need", NEEDS)
def test_the_need_filter_agrees_with_needs_of(catalogue, need):
    mask = catalogue.serves(need)
    assert list(mask) == [need in catalogue.needs_of(i)[0] for i in range(len(catalogue))]
