"""A real ``matcher serve`` against hostile HTTP: a chunked body over the limit is refused and
nothing stored, gunicorn's own 414 and 431 are problems that repeat nothing, and no profile
value sent, good or bad, reaches a line of the server's log."""

from __future__ import annotations

import http.client
import json
import socket
from pathlib import Path

import pytest
from service_support import running

from matcher.store import Store

MAX_BODY = 4000
MARK = "ZQXSENTINEL"  # in every value sent, to grep the log for


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    url = f"sqlite:///{folder / 'referrals.sqlite3'}"
    env = {"MATCHER_DATABASE_URL": url, "MATCHER_MODEL_DIR": str(folder / "no-model"),
           "MATCHER_MAX_BODY": str(MAX_BODY)}  # fmt: skip
    with running(folder, env, workers=1) as srv:
        srv.store_url = url  # type: ignore[attr-defined]
        yield srv


def _port(server) -> int:
    return int(server.url.rsplit(":", 1)[1])


def _raw(server, data: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read the whole answer (the server closes the connection)."""
    with socket.create_connection(("127.0.0.1", _port(server)), timeout=10) as s:
        s.sendall(data)
        chunks = []
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    raw = b"".join(chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
    return status, headers, body


def _chunked(server, path: str, parts: list[bytes]) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", _port(server), timeout=20)
    try:
        conn.request("POST", path, body=iter(parts), encode_chunked=True,
                     headers={"Content-Type": "application/json"})  # fmt: skip
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def _stored(server) -> list:
    with Store(server.store_url) as store:
        return list(store.referrals())


# --- a chunked body ------------------------------------------------------------------------------


def test_a_chunked_body_over_the_limit_is_413_and_nothing_is_stored(server):
    """The first MAX_BODY bytes are a whole, valid referral: cut there, as werkzeug did, it
    would be stored although the client sent something else."""
    before = len(_stored(server))
    referral = json.dumps({"profile": {"needs": ["money"], "interests": f"{MARK} chunked"},
                           "activity_id": "act-00000"}).encode()  # fmt: skip
    padding = b" " * (MAX_BODY * 3)
    status, body = _chunked(server, "/v1/referrals", [referral, padding[:5000], padding[5000:]])
    assert status == 413
    assert json.loads(body)["status"] == 413
    assert len(_stored(server)) == before


def test_a_chunked_body_within_the_limit_is_read_whole(server):
    before = len(_stored(server))
    referral = json.dumps({"profile": {"needs": ["money"]}, "activity_id": "act-00001"}).encode()
    status, body = _chunked(server, "/v1/referrals", [referral[:20], referral[20:], b"  "])
    assert status == 201, body
    assert len(_stored(server)) == before + 1


def test_a_chunked_body_just_over_the_limit_is_413(server):
    status, _ = _chunked(server, "/v1/match", [b'{"profile": {}}', b" " * (MAX_BODY - 14)])
    assert status == 413
    status, _ = _chunked(server, "/v1/match", [b'{"profile": {}}', b" " * (MAX_BODY - 16)])
    assert status == 200


# --- gunicorn's own refusals --------------------------------------------------------------


def test_an_over_long_request_line_is_a_414_problem(server):
    path = "/v1/activities?text=" + MARK + "A" * 6000
    status, headers, body = _raw(server, f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    assert status == 414
    assert headers["content-type"] == "application/problem+json"
    problem = json.loads(body)
    assert problem["status"] == 414 and problem["title"] == "URI Too Long"
    assert MARK.encode() not in body and b"AAAA" not in body


@pytest.mark.parametrize("kind", ["one-huge-header", "too-many-headers"])
def test_headers_too_large_are_a_431_problem(server, kind):
    if kind == "one-huge-header":
        extra = f"X-Note: {MARK}{'B' * 9000}\r\n"
    else:
        extra = "".join(f"X-H{i}: {MARK}\r\n" for i in range(150))
    data = f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n".encode()
    status, headers, body = _raw(server, data)
    assert status == 431
    assert headers["content-type"] == "application/problem+json"
    assert json.loads(body)["status"] == 431
    assert MARK.encode() not in body


def test_a_malformed_request_line_is_a_400_problem_without_echo(server):
    data = f"GET /v1/activities?postcode={MARK} LS6 HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    status, headers, body = _raw(server, data)
    assert status == 400 and headers["content-type"] == "application/problem+json"
    assert MARK.encode() not in body


# --- the log -------------------------------------------------------------------------------------


def test_no_profile_value_reaches_the_server_log(server):
    """Recognisable values through every way in, good and bad; then grep the server's log."""
    import re
    import urllib.parse
    import urllib.request

    profile = {
        "id": f"p-{MARK}-ID", "age": 87, "location": {"postcode": "LS6 3HN"},
        "needs": ["bereavement"], "interests": f"{MARK}-INTEREST ZEBRAFINCH watching",
        "gender": f"{MARK}-GENDER", "exclude": [f"act-{MARK}"],
    }  # fmt: skip
    assert server.post("/v1/match", {"profile": profile})[0] == 200
    assert server.post("/v1/match", {"profile": {**profile, "age": 9}})[0] == 422
    assert server.post("/v1/match", {"profile": {**profile, f"{MARK}FIELD": 1}})[0] == 422
    assert server.post("/v1/match", {"profile": {**profile, "9434765919": 1}})[0] == 422
    status, created = server.post("/v1/referrals", {"profile": profile, "activity_id": "act-00002"})
    assert status == 201
    rid = created["referral_id"]
    assert server.post(f"/v1/referrals/{rid}/outcome", {"attended": True})[0] == 200
    assert server.post(f"/v1/referrals/{rid}/outcome", {"attended": False})[0] == 409
    assert server.get(f"/v1/referrals/{rid}")[0] == 200
    query = urllib.parse.urlencode({"postcode": "LS6 3HN", "text": f"{MARK}-QUERY"})
    assert server.get(f"/v1/activities?{query}")[0] == 200
    conn = http.client.HTTPConnection("127.0.0.1", _port(server), timeout=10)
    conn.request("POST", "/v1/match", body=b'{"profile": {"interests": "' + MARK.encode(),
                 headers={"Content-Type": "application/json"})  # fmt: skip
    assert conn.getresponse().status == 400
    conn.close()
    _chunked(server, "/v1/match", [b'{"profile": {"interests": "' + MARK.encode(), b" " * 9000])
    _raw(server, f"GET /v1/activities?text={MARK}{'A' * 6000} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    _raw(server, f"GET /healthz HTTP/1.1\r\nX-Note: {MARK}{'B' * 9000}\r\n\r\n".encode())
    _raw(server, f"GET /?postcode={MARK} LS6 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    _raw(server, f"GET /healthz HTTP/1.1\r\nHost: {MARK}.example\r\n\r\n".encode())

    # The page: a search and a referral with the page's own token, and a forged one.
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    html = opener.open(server.url + "/", timeout=10).read().decode()
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    form = urllib.parse.urlencode(
        {"csrf_token": token, "postcode": "LS6 3HN", "age": "87", "needs": "bereavement",
         "interests": f"{MARK}-FORM ZEBRAFINCH"}).encode()  # fmt: skip
    req = urllib.request.Request(server.url + "/", data=form, headers={"Origin": server.url})
    assert opener.open(req, timeout=10).status == 200
    forged = urllib.parse.urlencode({"csrf_token": "x", "profile": json.dumps(profile),
                                     "activity_id": "act-00000"}).encode()  # fmt: skip
    req = urllib.request.Request(server.url + "/refer", data=forged, headers={"Origin": "null"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        opener.open(req, timeout=10)
    assert refused.value.code == 403

    text = Path(server.log).read_text("utf-8", "replace")
    assert '"event": "request"' in text, "the server logged no request at all"
    for needle in (MARK, "ZEBRAFINCH", "LS6 3HN", "LS6+3HN", "LS6%203HN", "9434765919",
                   "bereavement"):  # fmt: skip
        assert needle not in text, needle


# --- retention ------------------------------------------------------------------------------------


def test_matcher_serve_purges_old_referrals_at_start_and_daily(tmp_path):
    """The purge runs in the server's master: an old referral is gone soon after the start,
    a recent one stays, and the audit trail says the system purged (naming no referral)."""
    import time
    from datetime import datetime, timedelta, timezone

    url = f"sqlite:///{tmp_path / 'referrals.sqlite3'}"
    now = datetime.now(timezone.utc)
    with Store(url, create=True) as store:
        old = store.add_referral({"needs": ["money"]}, "act-00000", actor="system",
                                 when=now - timedelta(days=40))  # fmt: skip
        recent = store.add_referral({"needs": ["money"]}, "act-00001", actor="system",
                                    when=now - timedelta(days=5))  # fmt: skip
    env = {"MATCHER_DATABASE_URL": url, "MATCHER_MODEL_DIR": str(tmp_path / "no-model"),
           "MATCHER_RETENTION_DAYS": "30"}  # fmt: skip
    with running(tmp_path, env, workers=1) as srv:
        deadline = time.monotonic() + 90  # generous: a loaded CI machine starts slowly
        while time.monotonic() < deadline:
            with Store(url) as store:
                ids = {r.id for r in store.referrals()}
            if old not in ids:
                break
            time.sleep(0.2)
        assert ids == {recent}
        with Store(url) as store:
            purged = [x for x in store.audit_lines() if x["action"] == "referrals.purged"]
        assert purged and purged[0]["actor"] == "system" and purged[0]["referral_id"] is None
        while '"event": "purged"' not in Path(srv.log).read_text():  # logged just after
            assert time.monotonic() < deadline + 10, "the purge was never logged"
            time.sleep(0.2)
