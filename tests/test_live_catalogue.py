"""The catalogue as live data, end to end: ``matcher pull`` reads a council's real feed from an
HSDS 3.0 API on loopback (several pages) into a folder, ``matcher serve`` serves that folder,
and a second, incremental pull that adds a service reaches both running workers without a
restart. A failed pull changes nothing the service sees."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from oruk_server import V3, FeedServer, later
from service_support import clean_env, running

MATCHER = Path(sys.executable).with_name("matcher")


def _pull(url: str, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(MATCHER), "pull", url, "--out", str(out), "--per-page", "200", *extra],
        env=clean_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def _sizes(server, n: int = 12) -> set[tuple[int, str]]:
    out = set()
    for _ in range(n):
        body = server.get("/healthz")[1]
        out.add((body["catalogue_size"], body["catalogue_version"]))
    return out


@pytest.fixture
def feed(oruk_dir):
    records = json.loads((oruk_dir / "north-lincolnshire-v1-services.json").read_text("utf-8"))
    server = FeedServer(records, shape=V3).start()
    yield server, records
    server.stop()


def test_pull_serve_and_take_a_new_service_without_a_restart(tmp_path, feed):
    server, records = feed
    out = tmp_path / "catalogue"
    first = _pull(server.url, out)
    assert first.returncode == 0, first.stderr
    assert server.pages_asked() == [1, 2, 3, 4]  # 738 services, 200 a page
    env = {"MATCHER_CATALOGUE": str(out), "MATCHER_MODEL_CHECK_SECONDS": "1"}
    with running(tmp_path, env, workers=2) as service:
        (size, version), *others = _sizes(service)
        assert not others and size > 600

        assert service.get("/v1/activities/brand-new-lunch-club")[0] == 404
        new = {**records[0], "id": "brand-new-lunch-club", "name": "Brand new lunch club"}
        server.add(new, later())
        second = _pull(server.url, out)
        assert second.returncode == 0, second.stderr
        assert "incremental" in second.stdout

        deadline = time.monotonic() + 10
        while _sizes(service) != {(size + 1, _version(out))}:
            assert time.monotonic() < deadline, _sizes(service)
            time.sleep(0.3)
        assert _version(out) != version
        for _ in range(6):  # both workers serve it
            status, body = service.get("/v1/activities/brand-new-lunch-club")
            assert status == 200 and body["name"] == "Brand new lunch club"

        server.status[2] = (
            500  # the API now fails part-way: current stays, the service does not notice
        )
        third = _pull(server.url, out, "--full")
        assert third.returncode == 2 and third.stderr.startswith("pull: ")
        assert len(third.stderr.strip().splitlines()) == 1
        time.sleep(1.5)
        assert _sizes(service) == {(size + 1, _version(out))}


def _version(out: Path) -> str:
    return (out / "current").readlink().name
