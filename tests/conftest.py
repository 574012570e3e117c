"""Shared fixtures: where the contract examples, the real ORUK feeds and the demo catalogue are
(each test using one is skipped when it is absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from matcher.settings import demo_catalogue_path

SHARED = Path(__file__).resolve().parents[2] / "shared"
DEMO_CATALOGUE = demo_catalogue_path()  # the installed package's, as the service reads it


def _existing(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent")
    return path


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    """The contract's example files (../shared/contract/examples)."""
    return _existing(SHARED / "contract" / "examples")


@pytest.fixture(scope="session")
def oruk_dir() -> Path:
    """The two real Open Referral UK v1 feeds (../shared/data/oruk); not ours to copy."""
    return _existing(SHARED / "data" / "oruk")


@pytest.fixture(scope="session")
def demo_catalogue_file() -> Path:
    """The bundled Leeds demo catalogue (matcher/data/demo_catalogue.json)."""
    return _existing(DEMO_CATALOGUE)


@pytest.fixture(scope="module")
def browser():
    """One started Debian Chromium per test module that asks for it (browser_support)."""
    from browser_support import chromium

    with chromium() as started:
        yield started
