"""Scoring: the cold-start scorer, the trained scorer, model files and the version registry.

Dependencies point down: ``registry`` uses ``model_files`` and ``cold_start``; ``model_files``
uses ``trained``; none of them knows the service or training.
"""

from __future__ import annotations

from .cold_start import ColdStartScorer, Scorer, sigmoid
from .model_files import (
    CARD_FILE,
    MODEL_FILE,
    TRUSTED_TYPES,
    default_model_dir,
    library_versions,
    load_model,
    save_model,
    sha256_file,
    update_card,
)
from .registry import (
    HISTORY_FILE,
    current_version,
    kept_aside_only,
    list_versions,
    load_scorer,
    read_history,
    rollback,
    set_current,
)
from .trained import TrainedScorer

__all__ = [
    "CARD_FILE",
    "HISTORY_FILE",
    "MODEL_FILE",
    "TRUSTED_TYPES",
    "ColdStartScorer",
    "Scorer",
    "TrainedScorer",
    "current_version",
    "default_model_dir",
    "kept_aside_only",
    "library_versions",
    "list_versions",
    "load_model",
    "load_scorer",
    "read_history",
    "rollback",
    "save_model",
    "set_current",
    "sha256_file",
    "sigmoid",
    "update_card",
]
