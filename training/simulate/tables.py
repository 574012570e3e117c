"""The simulator's tables: JSON files in ``training/simulate/data/``, read once by the modules
that use them."""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any


def read_table(name: str) -> Any:
    """The parsed JSON of ``data/{name}.json`` in this package."""
    text = (files(__package__) / "data" / f"{name}.json").read_text(encoding="utf-8")
    return json.loads(text)


def tuples(value: Any) -> Any:
    """``value`` with every JSON array turned into a tuple, at any depth (objects stay dicts)."""
    if isinstance(value, list):
        return tuple(tuples(item) for item in value)
    if isinstance(value, dict):
        return {key: tuples(item) for key, item in value.items()}
    return value
