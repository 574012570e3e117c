"""Model folders on disk: writing one, and verifying and loading it safely.

A model folder holds two files; a models root holds one folder per version and a pointer to
the one in service (switched by :mod:`matcher.scoring.registry`)::

    models/
      2026-03-31.1/  model.skops       the estimator, activity evidence and reference row (skops)
                     model_card.json   version, data, libraries, features, metrics, gate, SHA-256
      current -> 2026-03-31.1          a symlink, switched atomically

Loading checks the card, then the SHA-256 of ``model.skops`` against it before any byte is
deserialised, then lets skops build only the types in :data:`TRUSTED_TYPES`, then checks the
trees' node indices are in range (skops can check types, not content) before a first
prediction.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import platform
import re
import secrets
import struct
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

from .. import safejson
from ..errors import ModelError
from ..features import FEATURES
from .trained import TrainedScorer, boosters, thread_controller

__all__ = [
    "CARD_FILE",
    "CURRENT",
    "MODEL_FILE",
    "TRUSTED_TYPES",
    "default_model_dir",
    "library_versions",
    "load_model",
    "save_model",
    "sha256_file",
    "update_card",
]

MODEL_FILE = "model.skops"
CARD_FILE = "model_card.json"
# A models root's pointer to the version in service: loading follows it, the registry moves it.
CURRENT = "current"
CARD_FORMAT = "matcher-model/1"
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")

# Every type a model file may hold: what training builds (a HistGradientBoostingClassifier,
# wrapped in CalibratedClassifierCV(FrozenEstimator(...)) with sigmoid or isotonic calibration)
# and nothing else. skops trusts every scikit-learn estimator by default; we trust these only.
# TreePredictor is one skops deliberately leaves untrusted (its node indices are used without
# bounds checks): it is listed because loading checks those indices itself (_check_trees).
TRUSTED_TYPES: tuple[str, ...] = (
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "sklearn._loss.loss.HalfBinomialLoss",
    "sklearn._loss._loss.CyHalfBinomialLoss",
    "sklearn._loss.link.LogitLink",
    "sklearn._loss.link.Interval",
    "sklearn.preprocessing._label.LabelEncoder",
    "sklearn.calibration.CalibratedClassifierCV",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.isotonic.IsotonicRegression",
    "sklearn.frozen._frozen.FrozenEstimator",
    "numpy.ndarray",
    "numpy.random._generator.Generator",  # HistGradientBoosting's feature-subsampling state
    "numpy.float64",
    "numpy.float32",
    "numpy.int64",
    "numpy.int32",
    "numpy.uint8",
    "numpy.uint32",
    "numpy.uint64",
    "numpy.bool",
    "numpy.bool_",
)
# The containers and scalars every skops file is made of.
_STRUCTURE = frozenset(
    f"builtins.{name}"
    for name in ("dict", "list", "tuple", "str", "int", "float", "bool", "NoneType")
)
# How skops may rebuild things: plain objects, containers, arrays and the loss and random
# state helpers. Not functions, methods, partials, operator functions or reduce calls.
_LOADERS = frozenset(
    {"ObjectNode", "DictNode", "ListNode", "TupleNode", "JsonNode", "TypeNode", "NdArrayNode",
     "RandomGeneratorNode", "LossNode"}
)  # fmt: skip
# Limits on a model file, checked before anything in it is read whole. The shipped model is
# 368 KB holding 455 parts that expand to 2.0 MB (schema.json 1.5 MB, deflated 43 to 1, nested
# 25 deep); a model on 300,000 activities would hold a schema of about 36 MB.
MAX_MODEL_BYTES = 128 << 20
MAX_EXPANDED_BYTES = 256 << 20
MAX_PARTS = 20_000
# Deflate cannot compress more than about 1,032 to 1; a large part claiming more is lying.
MAX_RATIO = 200
_RATIO_FROM = 1 << 20
MAX_SCHEMA_DEPTH = 100
_PAYLOAD_KEYS = frozenset(
    {"estimator", "features", "activity_ids", "uptake_rate", "uptake_count", "prior_rate",
     "reference"}
)  # fmt: skip


# --- helpers ----------------------------------------------------------------------------------


def sha256_file(path: str | Path) -> str:
    """The SHA-256 of a file, read in blocks (uptake files can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def library_versions() -> dict[str, str]:
    """The versions a model file depends on, recorded in its card and compared at load."""
    import scipy
    import sklearn
    import skops

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "scikit-learn": sklearn.__version__,
        "skops": skops.__version__,
    }


def utc_now() -> str:
    """The time now in UTC, to the second, as cards and history record it."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def json_ready(value: Any) -> Any:
    """Numpy scalars and arrays to plain JSON; NaN and infinities to null."""
    if isinstance(value, Mapping):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [json_ready(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def write_atomic(path: Path, data: bytes) -> None:
    """Write a file aside and rename it into place, so readers see the old one or the new."""
    tmp = path.with_name(f".{path.name}.tmp-{secrets.token_hex(4)}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def check_version_name(version: str) -> None:
    """Refuse a version name that could escape the models root or shadow ``current``."""
    if not isinstance(version, str) or not _VERSION.fullmatch(version) or version == CURRENT:
        raise ValueError(
            "a model version is 1-100 letters, digits, '.', '_' or '-', starting with a letter "
            f"or digit, and not {CURRENT!r}"
        )


# --- saving -----------------------------------------------------------------------------------


def _evidence_arrays(
    evidence: Mapping[str, tuple[float, float]] | Sequence[Any],
) -> tuple[list[str], np.ndarray, np.ndarray]:
    if isinstance(evidence, Mapping):
        ids = [str(k) for k in evidence]
        pairs = np.array([tuple(v) for v in evidence.values()], dtype=float).reshape(-1, 2)
        rate, count = pairs[:, 0], pairs[:, 1]
    else:
        try:
            ids_, rate_, count_ = evidence
        except (TypeError, ValueError):
            raise ValueError(
                "evidence is {activity_id: (rate, count)} or (activity_ids, rates, counts)"
            ) from None
        ids = [str(k) for k in ids_]
        rate = np.asarray(rate_, dtype=float).ravel()
        count = np.asarray(count_, dtype=float).ravel()
    if not (len(ids) == len(rate) == len(count)):
        raise ValueError("evidence: activity ids, rates and counts differ in length")
    if len(set(ids)) != len(ids):
        raise ValueError("evidence: an activity id appears more than once")
    if not (np.isfinite(rate).all() and ((rate >= 0) & (rate <= 1)).all()):
        raise ValueError("evidence: every rate must be a number from 0 to 1")
    if not (np.isfinite(count).all() and (count >= 0).all()):
        raise ValueError("evidence: every count must be a number ≥ 0")
    return ids, rate, count


def _reference_array(reference: Any) -> np.ndarray:
    if isinstance(reference, Mapping):
        if set(reference) != set(FEATURES):
            raise ValueError("reference: expected a value for every feature in FEATURES")
        reference = [np.nan if reference[f] is None else reference[f] for f in FEATURES]
    out = np.asarray(reference, dtype=float).ravel()
    if out.shape != (len(FEATURES),):
        raise ValueError(f"reference: expected {len(FEATURES)} values, one per feature")
    if np.isinf(out).any():
        raise ValueError("reference: values must be finite (NaN for a feature mostly missing)")
    return out


def save_model(
    estimator: Any,
    evidence: Mapping[str, tuple[float, float]] | Sequence[Any],
    card: Mapping[str, Any],
    models_root: str | Path,
    version: str,
    *,
    reference: Any = None,
    prior: float | None = None,
    stack: Any = None,
) -> Path:
    """Write ``models_root/version/`` with ``model.skops`` and ``model_card.json``; return it.

    Parameters
    ----------
    estimator
        A fitted ``HistGradientBoostingClassifier`` on :data:`~matcher.features.FEATURES`,
        usually inside ``CalibratedClassifierCV(FrozenEstimator(...))``.
    evidence
        Each activity's smoothed uptake rate and referral count, as
        ``{activity_id: (rate, count)}`` or ``(activity_ids, rates, counts)``.
    card
        What the trainer knows: ``data`` (the uptake file's SHA-256 and row counts),
        ``metrics``, ``gate`` and anything else worth keeping. Version, time, libraries,
        features, evidence summary, reference row and the model's SHA-256 are filled in here.
    reference
        The row contributions are measured against (training medians, NaN where a feature is
        mostly missing): an array over FEATURES or a mapping by name. Defaults to
        ``card["reference"]``.
    prior
        The uptake rate assumed for activities without evidence. Defaults to
        ``card["evidence"]["prior_rate"]``, else the count-weighted mean rate.
    stack
        For a model fitted on top of the cold-start scorer: ``(intercept, weight of the
        cold-start log-odds, weight of the trees' decision)``; the trees then take the
        cold-start log-odds as one more column after FEATURES.

    The folder is written aside and renamed into place, so it appears whole or not at all.
    ``models/current`` is not touched: see :func:`set_current`. Anything :func:`load_model`
    would refuse is refused here.
    """
    check_version_name(version)
    root = Path(models_root)
    final = root / version
    if final.exists():
        raise ModelError(f"{final}: version {version} already exists; versions are never replaced")
    card = dict(card)
    given = card.get("features")
    if given is not None and list(given) != list(FEATURES):
        raise ModelError("model was trained on different features than matcher.features.FEATURES")
    if reference is None:
        reference = card.get("reference")
    if reference is None:
        raise ValueError("save_model needs a reference row (training medians) for contributions")
    ref = _reference_array(reference)
    ids, rate, count = _evidence_arrays(evidence)
    given_evidence = card.get("evidence") if isinstance(card.get("evidence"), Mapping) else {}
    if prior is None:
        prior = given_evidence.get("prior_rate")
    if prior is None:
        prior = float(rate @ count / count.sum()) if count.sum() > 0 else float(rate.mean())
    if not (math.isfinite(prior) and 0 <= prior <= 1):
        raise ValueError("prior: expected a rate from 0 to 1")

    payload = {
        "estimator": estimator,
        "features": list(FEATURES),
        "activity_ids": ids,
        "uptake_rate": rate,
        "uptake_count": count,
        "prior_rate": float(prior),
        "reference": ref,
    }
    if stack is not None:
        payload["stack"] = np.asarray(stack, dtype=np.float64)
    import skops.io as sio

    blob = sio.dumps(payload, compression=zipfile.ZIP_DEFLATED, compresslevel=9)
    # Refuse now what loading would refuse later: types, tree structure, features.
    _check_payload(_deserialise(blob, f"model for {version}"), f"model for {version}")

    card.update(
        format=CARD_FORMAT,
        version=version,
        trained_at=card.get("trained_at") or utc_now(),
        libraries=library_versions(),
        features=list(FEATURES),
        estimator=_describe(estimator),
        evidence={
            **given_evidence,
            "activities": len(ids),
            "prior_rate": float(prior),
            "referrals": float(count.sum()),
        },
        reference=dict(zip(FEATURES, ref.tolist(), strict=True)),
        model_file=MODEL_FILE,
        model_sha256=hashlib.sha256(blob).hexdigest(),
    )
    text = json.dumps(json_ready(card), indent=2, ensure_ascii=False, allow_nan=False)

    root.mkdir(parents=True, exist_ok=True)
    staging = root / f".{version}.tmp-{secrets.token_hex(4)}"
    staging.mkdir()
    try:
        write_atomic(staging / MODEL_FILE, blob)
        write_atomic(staging / CARD_FILE, (text + "\n").encode("utf-8"))
        os.rename(staging, final)  # fails if another writer got there first
    except OSError as exc:
        for name in (MODEL_FILE, CARD_FILE):
            with contextlib.suppress(OSError):
                (staging / name).unlink()
        with contextlib.suppress(OSError):
            staging.rmdir()
        raise ModelError(f"{final}: cannot be written ({exc.__class__.__name__})") from None
    return final


def _describe(estimator: Any) -> dict[str, Any]:
    from sklearn.calibration import CalibratedClassifierCV

    out: dict[str, Any] = {"type": type(estimator).__name__}
    if isinstance(estimator, CalibratedClassifierCV):
        out["calibration"] = estimator.method
    inner = boosters(estimator)
    if inner:
        out["boosting_rounds"] = int(inner[0].n_iter_)
        params = inner[0].get_params()
        out["params"] = json_ready({k: v for k, v in params.items() if _plain(v)})
    return out


def _plain(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool, list, tuple, np.ndarray))


# --- loading ----------------------------------------------------------------------------------


def update_card(folder: str | Path, **fields: Any) -> dict[str, Any]:
    """Add fields (metrics, the gate's decision) to a saved model's card and return the card.

    The model's own fields (version, features, checksum) cannot be changed this way."""
    folder = Path(folder)
    card = _read_card(folder)
    fixed = {"version", "features", "model_sha256", "model_file", "format"} & set(fields)
    if fixed:
        raise ValueError(f"update_card cannot change {', '.join(sorted(fixed))}")
    card.update(fields)
    text = json.dumps(json_ready(card), indent=2, ensure_ascii=False, allow_nan=False)
    write_atomic(folder / CARD_FILE, (text + "\n").encode("utf-8"))
    return card


def _read_card(folder: Path) -> dict[str, Any]:
    path = folder / CARD_FILE
    # Bounded in size, depth and numbers: a card is served whole by GET /v1/model.
    card = safejson.load(
        path, safejson.MAX_CARD_BYTES, error=ModelError, missing="no model card", finite=True
    )
    if not isinstance(card, dict):
        raise ModelError(f"{path}: expected a JSON object")
    missing = [k for k in ("version", "features", "model_sha256") if k not in card]
    if missing:
        raise ModelError(f"{path}: missing {', '.join(missing)}")
    if not isinstance(card["version"], str) or not card["version"]:
        raise ModelError(f"{path}: version must be a non-empty string")
    if not isinstance(card["model_sha256"], str) or not re.fullmatch(
        r"[0-9a-f]{64}", card["model_sha256"]
    ):
        raise ModelError(f"{path}: model_sha256 must be 64 hexadecimal digits")
    if card["features"] != list(FEATURES):
        raise ModelError(
            f"{path}: model was trained on different features ({_feature_difference(card)})"
        )
    return card


def _feature_difference(card: dict[str, Any]) -> str:
    theirs = card["features"] if isinstance(card["features"], list) else []
    missing = [f for f in FEATURES if f not in theirs]
    extra = [str(f) for f in theirs if f not in FEATURES]
    parts = []
    if missing:
        parts.append(f"missing {', '.join(missing[:5])}" + (" …" if len(missing) > 5 else ""))
    if extra:
        parts.append(f"unknown {', '.join(extra[:5])}" + (" …" if len(extra) > 5 else ""))
    return "; ".join(parts) or "same names in another order"


def _types_in(schema: Any) -> tuple[set[str], set[str]]:
    """Every type and every skops loader named anywhere in a skops schema."""
    types: set[str] = set()
    loaders: set[str] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "__class__" in node or "__module__" in node:
                types.add(f"{node.get('__module__')}.{node.get('__class__')}")
                loaders.add(str(node.get("__loader__")))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return types, loaders


def _deserialise(blob: bytes, source: str) -> Any:
    """Audit a skops file's types against :data:`TRUSTED_TYPES`, then build it."""
    import skops.io as sio
    from skops.io.exceptions import UntrustedTypesFoundException

    blob, schema = _unpacked(blob, source)
    types, loaders = _types_in(schema)
    trusted = set(TRUSTED_TYPES)
    refused = types - trusted - _STRUCTURE
    try:
        refused |= set(sio.get_untrusted_types(data=blob)) - trusted
    except Exception as exc:  # a malformed schema: skops' own error types vary
        raise ModelError(
            f"{source}: not a readable skops file ({exc.__class__.__name__})"
        ) from None
    if refused:
        raise ModelError(f"{source}: refused untrusted types: {', '.join(sorted(refused))}")
    odd = loaders - _LOADERS
    if odd:
        raise ModelError(f"{source}: refused untrusted loaders: {', '.join(sorted(odd))}")
    try:
        return sio.loads(blob, trusted=list(TRUSTED_TYPES))
    except UntrustedTypesFoundException as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise ModelError(f"{source}: refused ({first})") from None
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise ModelError(
            f"{source}: cannot be loaded ({exc.__class__.__name__}: {first})"
        ) from None


def _parts_declared(blob: bytes, source: str) -> int:
    """How many parts a zip's end record declares, read before zipfile builds an entry for
    each (a 128 MB file could declare 1.7 million)."""
    end = blob.rfind(b"PK\x05\x06", max(0, len(blob) - (22 + 0xFFFF)))
    if end < 0 or len(blob) < end + 22:
        raise ModelError(f"{source}: not a skops model file")
    (count,) = struct.unpack_from("<H", blob, end + 10)
    if count == 0xFFFF:  # ZIP64: more parts than any model needs
        raise ModelError(f"{source}: more than {MAX_PARTS} parts; refusing it")
    return count


def _unpacked(blob: bytes, source: str) -> tuple[bytes, Any]:
    """A skops file's parts, each read with a cap, after checking what the zip declares
    (count, sizes, compression) against the limits; returned packed again uncompressed, so
    that skops reads exactly what was checked, with the parsed schema."""
    if _parts_declared(blob, source) > MAX_PARTS:
        raise ModelError(f"{source}: more than {MAX_PARTS} parts; refusing it")
    try:
        with zipfile.ZipFile(io.BytesIO(blob)) as archive:
            infos = archive.infolist()
            if len(infos) > MAX_PARTS:
                raise ModelError(f"{source}: more than {MAX_PARTS} parts; refusing it")
            declared = 0
            for info in infos:
                if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                    raise ModelError(f"{source}: a part is compressed in an unexpected way")
                declared += info.file_size
                if info.file_size > _RATIO_FROM and info.file_size > MAX_RATIO * max(
                    info.compress_size, 1
                ):
                    raise ModelError(
                        f"{source}: a part would expand more than {MAX_RATIO} times; refusing it"
                    )
            if declared > MAX_EXPANDED_BYTES:
                raise ModelError(
                    f"{source}: its parts would expand beyond {MAX_EXPANDED_BYTES} bytes; "
                    "refusing it"
                )
            parts: dict[str, bytes] = {}
            for info in infos:
                with archive.open(info) as member:
                    # Capped: zipfile stops at the declared size however much the data holds.
                    data = member.read(info.file_size + 1)
                if len(data) != info.file_size:
                    raise ModelError(f"{source}: a part is not the size it declares")
                parts[info.filename] = data
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError):
        raise ModelError(f"{source}: not a skops model file") from None
    if "schema.json" not in parts:
        raise ModelError(f"{source}: not a skops model file")
    schema = safejson.loads(
        parts["schema.json"], f"{source} (schema.json)", error=ModelError,
        max_depth=MAX_SCHEMA_DEPTH,
    )  # fmt: skip
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    return packed.getvalue(), schema


def _check_trees(booster: Any, source: str, n_features: int) -> None:
    """Refuse trees whose node indices point outside the tree or the feature row: prediction
    would follow them without bounds checks. Children must come after their parent (as
    scikit-learn writes them), which also rules out cycles."""
    from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor

    if getattr(booster, "n_features_in_", None) != n_features:
        raise ModelError(f"{source}: model was trained on different features (not {n_features})")
    if getattr(booster, "n_trees_per_iteration_", None) != 1:
        raise ModelError(f"{source}: expected a binary classifier")
    if list(getattr(booster, "classes_", [])) != [0, 1]:
        raise ModelError(f"{source}: expected outcome classes 0 and 1")
    if getattr(booster, "_preprocessor", None) is not None or (
        getattr(booster, "is_categorical_", None) is not None and np.any(booster.is_categorical_)
    ):
        raise ModelError(f"{source}: categorical features are not expected")
    mapper = booster._bin_mapper
    if getattr(mapper, "is_categorical_", None) is not None and np.any(mapper.is_categorical_):
        raise ModelError(f"{source}: categorical features are not expected")
    baseline = np.asarray(booster._baseline_prediction, dtype=float)
    if baseline.shape != (1, 1) or not np.isfinite(baseline).all():
        raise ModelError(f"{source}: malformed baseline prediction")
    for round_ in booster._predictors:
        if len(round_) != 1:
            raise ModelError(f"{source}: expected one tree per boosting round")
        tree = round_[0]
        if type(tree) is not TreePredictor:
            raise ModelError(f"{source}: unexpected tree type {type(tree).__name__}")
        nodes = tree.nodes
        if not isinstance(nodes, np.ndarray) or nodes.dtype != PREDICTOR_RECORD_DTYPE:
            raise ModelError(f"{source}: malformed tree nodes")
        if nodes.ndim != 1 or len(nodes) == 0:
            raise ModelError(f"{source}: malformed tree nodes")
        n = len(nodes)
        split = nodes["is_leaf"] == 0
        at = np.flatnonzero(split)
        left, right = nodes["left"][split].astype(np.int64), nodes["right"][split].astype(np.int64)
        feature = nodes["feature_idx"][split].astype(np.int64)
        if (
            (left <= at).any() or (right <= at).any() or (left >= n).any() or (right >= n).any()
            or (feature < 0).any() or (feature >= n_features).any()
            or nodes["is_categorical"].any()
            or not np.isfinite(nodes["value"][~split]).all()
        ):  # fmt: skip
            raise ModelError(f"{source}: a tree has node indices out of range")
        if (n - 1) != 2 * split.sum():  # every split has exactly two children
            raise ModelError(f"{source}: a tree is malformed")


def _check_calibration(estimator: Any, source: str) -> bool:
    """Check calibrators; True when all are sigmoid (a smooth map of the trees' log-odds)."""
    from sklearn.calibration import CalibratedClassifierCV, _SigmoidCalibration
    from sklearn.isotonic import IsotonicRegression

    if not isinstance(estimator, CalibratedClassifierCV):
        return True
    members = getattr(estimator, "calibrated_classifiers_", None)
    if not members:
        raise ModelError(f"{source}: the calibrated model is not fitted")
    smooth = True
    for member in members:
        if len(member.calibrators) != 1:
            raise ModelError(f"{source}: expected one calibrator per model")
        calibrator = member.calibrators[0]
        if isinstance(calibrator, _SigmoidCalibration):
            values = np.array([calibrator.a_, calibrator.b_], dtype=float)
        elif isinstance(calibrator, IsotonicRegression):
            smooth = False
            values = np.concatenate([calibrator.X_thresholds_, calibrator.y_thresholds_])
        else:
            raise ModelError(f"{source}: unexpected calibrator {type(calibrator).__name__}")
        if not np.isfinite(values).all():
            raise ModelError(f"{source}: calibration holds non-finite values")
    return smooth


def _check_payload(payload: Any, source: str) -> bool:
    """Check what skops built is a model as save_model writes it; True when its calibration
    is smooth (sigmoid)."""
    try:
        return _check_payload_parts(payload, source)
    except ModelError:
        raise
    except Exception as exc:  # an attribute of the wrong type, a model not fitted, …
        raise ModelError(f"{source}: malformed model ({exc.__class__.__name__})") from None


def _check_payload_parts(payload: Any, source: str) -> bool:
    if not isinstance(payload, dict) or set(payload) - {"stack"} != _PAYLOAD_KEYS:
        raise ModelError(f"{source}: not a model file written by save_model")
    stack = payload.get("stack")
    if stack is not None and not (
        isinstance(stack, np.ndarray) and stack.dtype == np.float64 and stack.shape == (3,)
        and np.isfinite(stack).all()
    ):  # fmt: skip
        raise ModelError(f"{source}: malformed prior weights")
    if payload["features"] != list(FEATURES):
        raise ModelError(f"{source}: model was trained on different features")
    ids, rate, count = payload["activity_ids"], payload["uptake_rate"], payload["uptake_count"]
    if not (isinstance(ids, list) and all(isinstance(i, str) for i in ids)):
        raise ModelError(f"{source}: malformed activity evidence")
    for array in (rate, count, payload["reference"]):
        if not isinstance(array, np.ndarray) or array.dtype != np.float64 or array.ndim != 1:
            raise ModelError(f"{source}: malformed arrays")
    if not (len(ids) == len(rate) == len(count)) or payload["reference"].shape != (len(FEATURES),):
        raise ModelError(f"{source}: malformed arrays")
    if not isinstance(payload["prior_rate"], float) or not 0 <= payload["prior_rate"] <= 1:
        raise ModelError(f"{source}: malformed prior rate")
    estimator = payload["estimator"]
    # A model fitted on top of the cold-start scorer sees its log-odds as one more column.
    n_features = len(FEATURES) + (stack is not None)
    for booster in boosters(estimator):
        _check_trees(booster, source, n_features)
    smooth = _check_calibration(estimator, source)
    probe_row = np.append(payload["reference"], 0.0)[None, :n_features]
    with thread_controller().limit(limits=1, user_api="openmp"):
        probe = estimator.predict_proba(probe_row)
    if probe.shape != (1, 2) or not np.isfinite(probe).all():
        raise ModelError(f"{source}: the model does not give a probability")
    return smooth


def _resolve(path: Path) -> Path:
    """A version folder; a models root is taken to mean its current model, which must be a
    folder directly inside the root (so must a ``current`` named as the model folder)."""
    if path.name == CURRENT and path.is_symlink():
        return path.parent / str(safejson.current_target(path.parent, error=ModelError))
    if not (path / CARD_FILE).exists() and os.path.lexists(path / CURRENT):
        return path / str(safejson.current_target(path, error=ModelError))
    return path


def load_model(path: str | Path) -> TrainedScorer:
    """Load and verify a model folder (or a models root's current model).

    Raises
    ------
    ModelError
        If the folder or its card is missing or unreadable, the card's features are not
        :data:`~matcher.features.FEATURES`, ``model.skops`` does not match the card's SHA-256,
        the file holds a type outside :data:`TRUSTED_TYPES`, or the model is malformed.
    """
    folder = _resolve(Path(path))
    if not folder.is_dir():
        raise ModelError(f"{folder}: no model folder there")
    card = _read_card(folder)
    model_path = folder / MODEL_FILE
    # Read once (what is checked is what is loaded), and never more than the limit.
    blob = safejson.read_bytes(
        model_path, MAX_MODEL_BYTES, error=ModelError, missing="no model file"
    )
    if hashlib.sha256(blob).hexdigest() != card["model_sha256"]:
        raise ModelError(
            f"{model_path}: checksum mismatch (not the file its model card describes); "
            "refusing to load it"
        )
    source = str(model_path)
    payload = _deserialise(blob, source)
    smooth = _check_payload(payload, source)
    notes = _library_notes(card)
    for note in notes:
        warnings.warn(f"{folder}: {note}", stacklevel=2)
    return TrainedScorer(payload, card, folder, smooth=smooth, notes=notes)


def _library_notes(card: dict[str, Any]) -> list[str]:
    saved = card.get("libraries") or {}
    if not isinstance(saved, dict):
        return []
    now = library_versions()
    notes = []
    for name in ("scikit-learn", "skops", "numpy"):
        if saved.get(name) and saved[name] != now[name]:
            notes.append(f"trained with {name} {saved[name]}, running {now[name]}")
    return notes


# --- the shipped model ------------------------------------------------------------------------


def default_model_dir() -> Path:
    """The model shipped with the package (``matcher/data/model``)."""
    return Path(str(files("matcher") / "data" / "model"))
