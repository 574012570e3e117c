"""The hazard log names the tests that show each control works: every one must exist, and
every hazard must name at least one."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOG = ROOT / "docs" / "hazard-log.md"
NAMED = re.compile(r"`(tests/test_[a-z0-9_]+\.py)::(test_[a-z0-9_]+)`")


def _tests_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text("utf-8"))
    return {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
    }


def test_every_test_the_hazard_log_names_exists():
    named = NAMED.findall(LOG.read_text("utf-8"))
    assert len(named) > 40
    missing = [f"{f}::{t}" for f, t in named if not (ROOT / f).is_file()
               or t not in _tests_in(ROOT / f)]  # fmt: skip
    assert not missing, missing


def test_every_hazard_names_its_tests():
    sections = re.split(r"^## ", LOG.read_text("utf-8"), flags=re.M)[1:]
    assert len(sections) >= 8
    for section in sections:
        assert NAMED.search(section), section.splitlines()[0]
