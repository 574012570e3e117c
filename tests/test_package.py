"""The installed package: it serves on the built-in defaults from an empty folder, and its layout
keeps its promises (the library reads no environment and knows no web framework; nothing edits
sys.path)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
from api_support import PROFILE, ROOT
from service_support import clean_env, running

import matcher

PACKAGE = Path(matcher.__file__).resolve().parent
SERVICE = PACKAGE / "service"


def _modules(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "migrations" not in p.parts)


def _library_modules() -> list[Path]:
    return [p for p in _modules(PACKAGE) if SERVICE not in p.parents]


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.skipif(not os.environ.get("CI"), reason="CI installs the package non-editable")
def test_ci_tests_the_installed_package_not_the_source_tree():
    assert PACKAGE != ROOT / "matcher" and "site-packages" in PACKAGE.parts, PACKAGE


def test_serves_on_the_built_in_defaults_from_an_empty_folder(tmp_path):
    with running(tmp_path) as server:
        status, health = server.get("/healthz")
        assert status == 200
        assert health["catalogue_size"] == 350
        assert health["model_version"] == "sim-kinds-1"
        status, page = server.get("/")
        assert status == 200 and "<form" in page
        status, body = server.post("/v1/match", {"profile": PROFILE, "limit": 3})
        assert status == 200 and len(body["matches"]) == 3
        assert server.get("/static/style.css")[0] == 200
        assert server.get("/readyz")[0] == 200
    assert (tmp_path / "instance" / "matcher.sqlite3").is_file()


def test_the_command_line_runs_from_an_empty_folder(tmp_path):
    done = subprocess.run(
        [str(Path(sys.executable).with_name("matcher")), "suggest", "--postcode", "LS6 3HN",
         "--needs", "loneliness", "--top", "2"],
        cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "sim-kinds-1" in done.stdout


def test_the_library_reads_no_environment_variable():
    for path in _library_modules():
        tree = ast.parse(path.read_text("utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv"):
                assert path.name in ("settings.py",), f"{path} reads the environment"


def test_the_library_imports_neither_the_web_layer_nor_training():
    for path in _library_modules():
        for name in _imports(path):
            top = name.split(".")[0]
            assert top not in ("flask", "werkzeug", "gunicorn", "training", "api"), (path, name)
            assert not name.startswith("matcher.service"), (path, name)
        text = path.read_text("utf-8")
        if path.name != "cli.py":  # cli imports the server lazily, for `serve` alone
            assert "from .service" not in text and "from . import service" not in text, path


def test_the_command_line_loads_no_web_framework():
    code = "import sys, matcher.cli; print(any(m.split('.')[0] == 'flask' for m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_nothing_edits_sys_path():
    for folder in ("tests", "benchmarks", "scripts"):
        for path in (ROOT / folder).glob("*.py"):
            edits = [f"sys.path.{verb}(" for verb in ("insert", "append")]
            text = path.read_text("utf-8")
            assert not any(edit in text for edit in edits), path


def test_serving_installs_neither_plotting_nor_browser_tools():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    base = " ".join(project["dependencies"]).lower()
    for heavy in ("matplotlib", "playwright", "pytest", "schemathesis"):
        assert heavy not in base
