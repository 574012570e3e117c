"""Helpers shared by the API tests: app building, a sample profile and a stand-in trained
model."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from matcher.catalogue import Catalogue
from matcher.errors import ModelError
from matcher.scoring import ColdStartScorer
from matcher.service import create_app

ROOT = Path(__file__).resolve().parents[1]  # the project folder (gunicorn 'api:create_app()')
SHARED = ROOT.parent / "shared"
EXAMPLES = SHARED / "contract" / "examples"
PROFILE: dict[str, Any] = {
    "id": "p-7f3a",
    "age": 71,
    "location": {"postcode": "LS6 3HN"},
    "needs": ["loneliness", "physical_activity"],
    "interests": "used to have an allotment, likes a chat",
    "travel": "public_transport",
    "accessibility": ["step_free"],
    "availability": ["tue_am", "wed_am", "thu_pm"],
    "max_cost": 0,
    "online": "no",
}


def make_app(tmp_path: Path, catalogue: Catalogue | str, **config: Any):
    """An app on ``catalogue`` with its own SQLite file, no model and no keys, unless
    ``config`` says otherwise."""
    settings = {
        "MATCHER_CATALOGUE": catalogue,
        "MATCHER_DATABASE_URL": f"sqlite:///{tmp_path / 'referrals.sqlite3'}",
        "MATCHER_MODEL_DIR": str(tmp_path / "no-model"),
        "MATCHER_API_KEYS": "",
        "MATCHER_RELOAD_ON_SIGHUP": False,
        "TESTING": True,
    }
    settings.update(config)
    return create_app(settings)


# --- a stand-in trained model, for reload tests --------------------------------------------


class FakeScorer:
    """Scores like the cold-start scorer under another version, as a trained model would."""

    kind = "fake-trained"

    def __init__(self, version: str):
        self.version = version
        self._inner = ColdStartScorer()
        self.card = {"summary": "a stand-in model for tests", "metrics": {"auc": 0.5}}

    def evidence(self, catalogue):
        return None

    def predict(self, X):
        return self._inner.predict(X)

    def contributions(self, X, features=None):
        return self._inner.contributions(X)


def fake_load_model(path: Path):
    """Reads ``fake.json`` ({"version": ..., "bad": bool}) in a model folder."""
    try:
        data = json.loads((Path(path) / "fake.json").read_text("utf-8"))
    except (OSError, ValueError):
        raise ModelError(f"{path}: not a model folder") from None
    if data.get("bad"):
        raise ModelError(f"{path}: checksum mismatch for model.skops")
    return FakeScorer(data["version"])


def write_model(models: Path, version: str, bad: bool = False) -> Path:
    folder = models / version
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "fake.json").write_text(json.dumps({"version": version, "bad": bad}))
    return folder


def point_current(models: Path, version: str) -> Path:
    """Atomically repoint ``models/current`` at ``models/<version>`` (as a deploy would)."""
    current = models / "current"
    tmp = models / f".current-{version}"
    if tmp.is_symlink():
        tmp.unlink()
    os.symlink(version, tmp)
    os.replace(tmp, current)
    return current


# --- the page's forms: a CSRF token from the page, sent with this site's Origin -------------

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(client, path: str = "/") -> str:
    """The CSRF token of ``client``'s session, read from a page as a browser would."""
    html = client.get(path).get_data(as_text=True)
    found = CSRF_FIELD.search(html)
    assert found, f"no CSRF token on {path}"
    return found.group(1)


def page_post(client, path: str, data: dict[str, Any] | None = None, *, token: str | None = None,
              origin: str | None = "http://localhost", **kwargs: Any):  # fmt: skip
    """A form post as the page itself sends it: its session's token and this site's Origin
    (the test client's host is ``localhost``)."""
    token = csrf_token(client) if token is None else token
    headers = dict(kwargs.pop("headers", {}))
    if origin is not None:
        headers["Origin"] = origin
    return client.post(path, data={**(data or {}), "csrf_token": token}, headers=headers, **kwargs)


# --- accounts and keys --------------------------------------------------------------------

SECRET = "a-test-secret-for-signing-sessions"
PASSWORD = "correct horse battery"


def make_governed_app(tmp_path: Path, catalogue: Catalogue | str, **config: Any):
    """An app with a secret key, a link worker ``alice`` (password ``PASSWORD``) and nothing
    else; add keys with ``app.extensions["matcher"].store.create_key``."""
    app = make_app(tmp_path, catalogue, MATCHER_SECRET_KEY=SECRET, **config)
    app.extensions["matcher"].store.add_user("alice", "link_worker", PASSWORD, actor="system")
    return app


def sign_in(client, name: str = "alice", password: str = PASSWORD):
    """Sign in through the page's own form, as a browser would."""
    return page_post(client, "/login", {"name": name, "password": password},
                     token=csrf_token(client, "/login"))  # fmt: skip
