"""Tests for matcher.pull: a live Open Referral UK API (served from loopback by
tests/oruk_server.py, page by page, from the real feeds) read into a versioned catalogue folder."""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import re
import socket
from pathlib import Path

import pytest
from oruk_server import V1, V3, FeedServer, later, to_v3

from matcher import oruk
from matcher.catalogue import Catalogue
from matcher.errors import CatalogueError, MatcherError, PullError
from matcher.pull import (
    add_arguments,
    catalogue_file,
    catalogue_version,
    command,
    pull,
)

FEEDS = {
    "bristol": "bristol-v1-services.json",
    "north-lincolnshire": "north-lincolnshire-v1-services.json",
}


@pytest.fixture(autouse=True)
def no_proxies(monkeypatch):
    """Loopback only: a proxy from the environment must not carry the tests' requests."""
    for name in (
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def feeds(oruk_dir) -> dict[str, list[dict]]:
    return {name: json.loads((oruk_dir / file).read_text("utf-8")) for name, file in FEEDS.items()}


@pytest.fixture(scope="session")
def loaded(oruk_dir) -> dict[str, list[dict]]:
    """Each real feed's activities as ``Catalogue.load`` of the file gives them."""
    return {
        name: [json.loads(json.dumps(a.to_dict())) for a in Catalogue.load(oruk_dir / f).activities]
        for name, f in FEEDS.items()
    }


@pytest.fixture
def serve():
    servers: list[FeedServer] = []

    def start(records: list[dict], **options) -> FeedServer:
        server = FeedServer(records, **options).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def small(feeds) -> list[dict]:
    """60 real North Lincolnshire services: three pages of 25 (25, 25, 10)."""
    return feeds["north-lincolnshire"][:60]


def activities(folder: Path) -> list[dict]:
    return json.loads(catalogue_file(folder).read_text("utf-8"))["activities"]


def report(folder: Path) -> dict:
    return json.loads((catalogue_file(folder).parent / "import_report.json").read_text("utf-8"))


def snapshot(folder: Path) -> tuple[str | None, list[str], bytes]:
    """What a failed pull must not change: where current points, the folder's entries, and the
    current catalogue's bytes."""
    return (
        os.readlink(folder / "current"),
        sorted(os.listdir(folder)),
        catalogue_file(folder).read_bytes(),
    )


# --- full pulls of the real feeds -------------------------------------------------------------


@pytest.mark.parametrize(
    ("feed", "shape", "first_number"),
    [
        ("bristol", V3, 1),
        ("bristol", V1, 0),
        ("north-lincolnshire", V3, 1),
        ("north-lincolnshire", V1, 1),
    ],
)
def test_full_pull_gives_what_loading_the_file_gives(
    feed, shape, first_number, feeds, loaded, serve, tmp_path
):
    server = serve(feeds[feed], shape=shape, first_number=first_number)
    out = tmp_path / "catalogue"
    result = pull(server.url, out, per_page=100)

    assert activities(out) == loaded[feed]
    pages = -(-len(feeds[feed]) // 100)
    assert pages >= 8 and server.pages_asked() == list(range(1, pages + 1))
    assert all(q["per_page"] == "100" and "modified_after" not in q for q in server.requests)
    assert result.switched and result.mode == "full" and result.pages == pages
    assert result.services == len(feeds[feed]) and result.activities == len(loaded[feed])
    assert result.added == len(loaded[feed]) and result.changed == result.removed == 0

    assert catalogue_version(out) == result.version == os.readlink(out / "current")
    assert catalogue_file(out) == out / result.version / "catalogue.json"
    data = report(out)
    assert data["url"] == data["source"] == server.url + "/services"
    assert data["mode"] == "full" and data["modified_after"] is None
    assert data["page_shape"] == ("HSDS 3.0" if shape == V3 else "ORUK v1")
    assert data["first_page_number"] == first_number
    assert [p["page"] for p in data["pages"]] == list(range(1, pages + 1))
    assert sum(p["services"] for p in data["pages"]) == len(feeds[feed])
    assert data["catalogue_sha256"] == hashlib.sha256(catalogue_file(out).read_bytes()).hexdigest()
    assert data["loaded"] == len(loaded[feed])
    assert data["records"] == len(feeds[feed])  # what was read: loaded plus skipped
    assert len(data["skipped"]) == data["records"] - data["loaded"]
    # The version loads as any catalogue file does, as a native catalogue.
    again = Catalogue.load(catalogue_file(out))
    assert again.report.kind == "catalogue" and len(again) == len(loaded[feed])


def test_3_0_pages_carry_3_0_records(feeds):
    record = next(r for r in feeds["north-lincolnshire"] if r.get("organization"))
    converted = to_v3(record, later())
    assert "fees" not in converted and "fees_description" in converted
    assert "website" in converted["organization"] and "url" not in converted["organization"]
    assert "last_modified" in converted and "pc_metadata" not in converted
    assert oruk.to_activity(converted) == oruk.to_activity(record)


def test_the_report_names_skipped_records_never_their_values(small, serve, tmp_path):
    records = [dict(r) for r in small[:5]]
    records[1] = {**records[1], "id": None, "name": "Jane Smith's befriending"}
    records[2] = {**records[2], "name": "<p>&nbsp;</p>"}
    server = serve(records)
    out = tmp_path / "catalogue"
    result = pull(server.url + "?api_key=SECRET-KEY", out)
    text = (catalogue_file(out).parent / "import_report.json").read_text("utf-8")
    assert report(out)["skipped"] == [
        {"record": "record 2", "reason": "no id"},
        {"record": str(records[2]["id"]), "reason": "empty name"},
    ]
    assert result.skipped == 2 and result.activities == 3
    assert "Jane" not in text
    # The API key went to the API but is never written down.
    assert all(q["api_key"] == "SECRET-KEY" for q in server.requests)
    assert "SECRET" not in text and "SECRET" not in catalogue_file(out).read_text("utf-8")


# --- incremental pulls ------------------------------------------------------------------------


def test_incremental_pull_sends_modified_after_and_merges(small, serve, tmp_path):
    server = serve(small)
    out = tmp_path / "catalogue"
    first = pull(server.url, out, per_page=25)
    before = {a["id"]: a for a in activities(out)}
    started = report(out)["started_at"]
    assert len(before) == 60 and server.pages_asked() == [1, 2, 3]

    new = {**small[60 - 1], "id": "new-service", "name": "Brand new lunch club"}
    gone, renamed = str(small[10]["id"]), str(small[40]["id"])
    server.add(new, later())
    server.change(gone, later(), status="defunct")
    server.change(renamed, later(), name="Renamed walking group")
    server.requests.clear()

    second = pull(server.url, out, per_page=25)

    assert server.requests == [{"page": "1", "per_page": "25", "modified_after": started}]
    assert second.switched and second.mode == "incremental"
    assert second.services == 3 and second.pages == 1
    assert (second.added, second.changed, second.removed) == (1, 1, 1)
    assert catalogue_version(out) == second.version != first.version
    assert (out / first.version / "catalogue.json").is_file()  # the old version stays
    after = {a["id"]: a for a in activities(out)}
    assert "new-service" in after and after["new-service"]["name"] == "Brand new lunch club"
    assert gone not in after
    assert after[renamed]["name"] == "Renamed walking group"
    assert set(after) == set(before) - {gone} | {"new-service"}
    for key in set(before) - {gone, renamed}:
        assert after[key] == before[key]  # the rest is kept as it was
    data = report(out)
    assert data["mode"] == "incremental" and data["modified_after"] == started
    assert data["previous_version"] == first.version
    assert data["services_read"] == 3 and data["loaded"] == 60

    # A full pull of the same API now gives the same catalogue, apart from the deleted
    # service, which a full pull keeps as inactive (it is still in the API).
    third = pull(server.url, out, per_page=25, incremental=False)
    full = {a["id"]: a for a in activities(out)}
    assert third.mode == "full" and full[gone]["status"] == "inactive"
    assert {k: v for k, v in full.items() if k != gone} == after


def test_incremental_pull_with_no_changes_leaves_current(small, serve, tmp_path):
    server = serve(small)
    out = tmp_path / "catalogue"
    first = pull(server.url, out, per_page=25)
    kept = snapshot(out)
    result = pull(server.url, out, per_page=25)
    assert not result.switched and result.version == first.version
    assert result.summary().startswith("no change (0 services on 1 page, incremental pull)")
    assert snapshot(out) == kept


def test_an_unchanged_full_pull_makes_no_new_version(small, serve, tmp_path):
    server = serve(small)
    out = tmp_path / "catalogue"
    first = pull(server.url, out, per_page=25)
    kept = snapshot(out)
    result = pull(server.url, out, per_page=25, incremental=False)
    assert not result.switched and result.version == first.version and snapshot(out) == kept


def test_a_pull_from_another_url_is_full(small, serve, tmp_path):
    one, other = serve(small[:30]), serve(small[30:])
    out = tmp_path / "catalogue"
    pull(one.url, out)
    result = pull(other.url, out)
    assert result.mode == "full" and "modified_after" not in other.requests[0]
    assert report(out)["full_because"] == "the current version came from another URL"
    assert (result.added, result.removed) == (30, 30)


# --- faults: current stays as it was ----------------------------------------------------------


def _fault(server: FeedServer, fault: str) -> dict:
    """Set one fault on the server; return pull() options it needs."""
    if fault == "http 500":
        server.status[2] = 500
    elif fault == "http 404":
        server.status[3] = 404
    elif fault == "not json":
        server.junk_page = 2
    elif fault == "not a page":
        server.bare_page = 1
    elif fault == "too deep":
        server.deep_page = 2
    elif fault.startswith("too big"):
        server.send_length = fault == "too big"
        return {"max_page_bytes": 20_000}
    elif fault == "total_pages changes":
        server.grow_from_page = 2
    elif fault == "page missing":
        server.skip_page = 2
    elif fault == "timeout":
        server.slow_page = 2
        return {"timeout": 0.5}
    elif fault == "empty feed":
        server.records.clear()
    elif fault == "nothing importable":
        for record in server.records:
            record["name"] = "<p><br></p>"
    return {}


FAULTS = {
    "http 500": "page 2 of {url}: HTTP 500",
    "http 404": "page 3 of {url}: HTTP 404",
    "not json": "page 2 of {url}: not JSON (line 1, column 1: Expecting value)",
    "not a page": "page 1 of {url}: not an Open Referral UK page",
    "too deep": "page 2 of {url}: JSON nested deeper than 64 levels",
    "too big": "page 1 of {url}: larger than the limit of 20000 bytes",
    "too big, no length given": "page 1 of {url}: larger than the limit of 20000 bytes",
    "total_pages changes": "page 2 of {url}: total_pages changed from 3 to 4 during the pull",
    "page missing": "page 2 of {url}: answered as page 3 (a page is missing)",
    "timeout": "page 2 of {url}: no answer within 0.5 s",
    "empty feed": "{url}: the API sent no services",
    "nothing importable": "{url}: no importable activities in 60 services (",
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_failed_pull_leaves_current_and_says_why(fault, small, serve, tmp_path):
    out = tmp_path / "catalogue"
    pull(serve(small[:7]).url, out)  # an earlier good pull: current exists
    kept = snapshot(out)
    server = serve(small, shape=V3)
    options = _fault(server, fault)
    with pytest.raises(PullError) as info:
        pull(server.url, out, per_page=25, **options)
    message = str(info.value)
    assert message.startswith(FAULTS[fault].format(url=server.url + "/services"))
    assert "\n" not in message
    assert snapshot(out) == kept  # current, the folder's entries and the catalogue as they were


@pytest.mark.parametrize("fault", ["http 500", "not json", "page missing"])
def test_a_failed_first_pull_leaves_no_current(fault, small, serve, tmp_path):
    server = serve(small, shape=V1, first_number=0)
    _fault(server, fault)
    out = tmp_path / "catalogue"
    with pytest.raises(PullError):
        pull(server.url, out, per_page=25)
    assert os.listdir(out) == []
    assert catalogue_version(out) is None


def test_a_failed_incremental_pull_leaves_current(small, serve, tmp_path):
    server = serve(small)
    out = tmp_path / "catalogue"
    pull(server.url, out, per_page=10)
    kept = snapshot(out)
    for record in small[:30]:
        server.change(str(record["id"]), later(), name="Changed")
    server.status[2] = 502
    with pytest.raises(PullError, match="HTTP 502"):
        pull(server.url, out, per_page=10)
    assert snapshot(out) == kept


def test_connection_refused(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(
        PullError, match=r"^page 1 of http://127\.0\.0\.1:\d+/services: connection refused$"
    ):
        pull(f"http://127.0.0.1:{port}", tmp_path / "catalogue", timeout=2)


def test_only_http_urls(tmp_path):
    with pytest.raises(PullError, match="http:// or https://"):
        pull("file:///etc/passwd", tmp_path / "catalogue")


def test_a_crashed_pulls_leftovers_are_cleared(small, serve, tmp_path):
    out = tmp_path / "catalogue"
    (out / ".tmp-20250101T000000Z-abcdef").mkdir(parents=True)
    (out / ".tmp-20250101T000000Z-abcdef" / "feed.json").write_text("{", "utf-8")
    os.symlink("nowhere", out / ".current-1234")
    result = pull(serve(small[:5]).url, out)
    assert sorted(os.listdir(out)) == sorted(["current", result.version])


def test_two_pulls_cannot_interleave(small, serve, tmp_path):
    out = tmp_path / "catalogue"
    out.mkdir()
    fd = os.open(out, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as a pull in another process holds it
        with pytest.raises(PullError, match="another pull is writing to this folder"):
            pull(serve(small).url, out)
    finally:
        os.close(fd)
    assert os.listdir(out) == []


# --- the catalogue folder: current, catalogue_file, catalogue_version -------------------------


def test_catalogue_file_and_version(small, serve, tmp_path):
    plain = tmp_path / "plain.json"
    plain.write_text('{"activities": []}', "utf-8")
    assert catalogue_file(plain) == plain and catalogue_version(plain) is None
    assert catalogue_file(tmp_path / "missing.json") == tmp_path / "missing.json"

    out = tmp_path / "catalogue"
    out.mkdir()
    assert catalogue_version(out) is None
    with pytest.raises(CatalogueError, match=rf"^{re.escape(str(out))}: a folder with no current"):
        catalogue_file(out)

    server = serve(small)
    first = pull(server.url, out)
    assert catalogue_version(out) == first.version
    server.add({**small[0], "id": "another"}, later())
    second = pull(server.url, out)
    # what a running worker polls: the name changes, and the file is the new version's
    assert catalogue_version(out) == second.version != first.version
    assert catalogue_file(out) == out / second.version / "catalogue.json"
    assert "another" in Catalogue.load(catalogue_file(out)).ids


@pytest.mark.parametrize("target", ["../elsewhere", "ABSOLUTE", ".", "version/inner", "current"])
def test_current_pointing_outside_its_folder_is_refused(target, small, serve, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "inner").mkdir(parents=True)
    (elsewhere / "catalogue.json").write_text('{"activities": []}', "utf-8")
    out = tmp_path / "catalogue"
    (out / "version" / "inner").mkdir(parents=True)
    link = str(elsewhere) if target == "ABSOLUTE" else target
    os.symlink(link, out / "current")

    with pytest.raises(CatalogueError, match=r"current: points outside .*; refusing it$"):
        catalogue_file(out)
    with pytest.raises(CatalogueError, match="points outside"):
        catalogue_version(out)
    server = serve(small)
    with pytest.raises(PullError, match="points outside"):
        pull(server.url, out)
    assert os.readlink(out / "current") == link and server.requests == []


def test_current_that_is_not_a_symlink_is_refused(small, serve, tmp_path):
    out = tmp_path / "catalogue"
    (out / "current").mkdir(parents=True)
    with pytest.raises(CatalogueError, match="is not a symlink"):
        catalogue_file(out)
    with pytest.raises(PullError, match="is not a symlink"):
        pull(serve(small).url, out)


def test_current_pointing_at_a_missing_version(tmp_path):
    out = tmp_path / "catalogue"
    out.mkdir()
    os.symlink("20250101T000000Z-gone00", out / "current")
    with pytest.raises(CatalogueError, match="points at a version that is not there"):
        catalogue_file(out)


# --- the command ------------------------------------------------------------------------------


def run(capsys, *argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="matcher pull")
    add_arguments(parser)
    code = command(parser.parse_args([str(a) for a in argv]))
    out, err = capsys.readouterr()
    return code, out, err


def test_command_prints_one_summary_line(small, serve, tmp_path, capsys):
    server = serve(small)
    out = tmp_path / "catalogue"
    code, stdout, stderr = run(capsys, server.url, "--out", out, "--per-page", "25")
    assert code == 0 and stderr == ""
    version = catalogue_version(out)
    assert stdout == (
        "60 activities (60 added, 0 changed, 0 removed; 0 skipped) from 60 services on "
        f"3 pages, full pull: current is {version}\n"
    )
    server.requests.clear()
    code, stdout, _ = run(capsys, server.url, "--out", out, "--full", "--timeout", "5")
    assert code == 0 and stdout.startswith("no change (60 services on 1 page, full pull)")
    assert "modified_after" not in server.requests[0]


def test_command_failure_is_one_line_on_stderr(small, serve, tmp_path, capsys):
    server = serve(small)
    server.status[1] = 503
    code, stdout, stderr = run(capsys, server.url, "--out", tmp_path / "catalogue")
    assert code == 2 and stdout == ""
    assert stderr == f"pull: page 1 of {server.url}/services: HTTP 503\n"


def test_pull_error_is_a_matcher_error():
    assert issubclass(PullError, MatcherError)
