"""Several replicas, one truth: two ``matcher serve`` on two ports, two workers each, sharing one
PostgreSQL database and one models root, take referrals and outcomes from many clients at once.
Every acknowledged write is in the store and in the export exactly once, and a new
``models/current`` reaches every worker of both within the reload interval."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from api_support import PROFILE
from service_support import clean_env, request, running
from sklearn.ensemble import HistGradientBoostingClassifier

from matcher.cli import main as cli_main
from matcher.features import COLUMN, FEATURES
from matcher.scoring import save_model, set_current
from matcher.store import Store

CLIENTS = 16
REFERRALS_EACH = 30
ACTIVITY = "act-00000"


pytest_plugins = ["store_support"]  # postgres_url: a fresh schema in the test PostgreSQL


def _models(root: Path) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, len(FEATURES)))
    y = (X[:, COLUMN["need_listed"]] + rng.normal(size=400) > 0).astype(int)
    booster = HistGradientBoostingClassifier(max_iter=5, max_leaf_nodes=4).fit(X, y)
    card = {"metrics": {"auc": {"model": 0.7}}, "gate": {"passed": True}}
    for version in ("r1", "r2"):
        evidence = {"act-00000": (0.4, 10.0)}
        save_model(booster, evidence, card, root, version, reference=np.zeros(len(FEATURES)))
    set_current(root, "r1")


def _client(urls: tuple[str, str], n: int) -> list[tuple[str, bool]]:
    """Refer on one replica, record the outcome on the other; what was acknowledged."""
    done = []
    for k in range(n):
        first, second = urls if k % 2 else urls[::-1]
        status, body = request(
            f"{first}/v1/referrals", {"profile": PROFILE, "activity_id": ACTIVITY}
        )
        assert status == 201, body
        attended = bool((n + k) % 3)
        outcome = {"attended": attended}
        status, body = request(f"{second}/v1/referrals/{body['referral_id']}/outcome", outcome)
        assert status == 200, body
        done.append((body["referral_id"], attended))
    return done


def _versions(url: str, n: int = 16) -> set[str]:
    return {request(f"{url}/healthz")[1]["model_version"] for _ in range(n)}


def test_two_replicas_share_one_database_and_one_models_root(tmp_path, postgres_url):
    database_url = postgres_url
    assert cli_main(["db", "upgrade", "--database", database_url]) == 0
    root = tmp_path / "models"
    _models(root)
    env = {
        "MATCHER_DATABASE_URL": database_url,
        "MATCHER_MODEL_DIR": str(root / "current"),
        "MATCHER_MODEL_CHECK_SECONDS": "1",
    }
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with running(tmp_path / "a", env) as a, running(tmp_path / "b", env) as b:
        urls = (a.url, b.url)
        with ThreadPoolExecutor(CLIENTS) as pool:
            acked = [r for rs in pool.map(_client, [urls] * CLIENTS, [REFERRALS_EACH] * CLIENTS)
                     for r in rs]  # fmt: skip

        assert _versions(a.url) == _versions(b.url) == {"r1"}
        set_current(root, "r2")
        switched = time.monotonic()
        while _versions(a.url) | _versions(b.url) != {"r2"}:
            assert time.monotonic() - switched < 5, "a worker kept serving r1"
            time.sleep(0.2)

    assert len(acked) == CLIENTS * REFERRALS_EACH
    expected = dict(acked)
    assert len(expected) == len(acked)  # no id given twice
    with Store(database_url) as store:
        stored = {r.id: r.attended for r in store.referrals()}
    assert stored == expected

    out = tmp_path / "uptake.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "training.export", "--out", str(out)],
        env=clean_env({"MATCHER_DATABASE_URL": database_url}), cwd=tmp_path,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    exported = [(line["referral_id"], line["attended"]) for line in lines]
    assert len(exported) == len(set(exported)) == len(acked)
    assert dict(exported) == expected
