"""Fixtures for the API tests, loaded by them with ``pytest_plugins = ["conftest_api"]`` so
that they never collide with a project-wide conftest.py."""

from __future__ import annotations

import pytest
from api_support import make_app

from matcher.catalogue import Catalogue
from matcher.settings import Settings, demo_catalogue_path


@pytest.fixture(scope="session")
def catalogue() -> Catalogue:
    """The bundled demo catalogue (350 Leeds activities), loaded once for every API test."""
    return Catalogue.load(demo_catalogue_path())


@pytest.fixture
def app(tmp_path, catalogue, monkeypatch):
    for name in Settings.model_fields:
        monkeypatch.delenv(f"MATCHER_{name.upper()}", raising=False)
    return make_app(tmp_path, catalogue)


@pytest.fixture
def client(app):
    return app.test_client()
