"""Reading files that may be hostile: JSON bounded in size, nesting and number length before
the parser sees it, and a ``current`` pointer that may not leave its folder."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "CURRENT",
    "MAX_CARD_BYTES",
    "MAX_CATALOGUE_BYTES",
    "MAX_DEPTH",
    "MAX_NUMBER_CHARS",
    "current_target",
    "load",
    "loads",
    "problem",
    "read_bytes",
    "read_checked",
]

CURRENT = "current"
# A fully nested HSDS 3.0 service is about ten levels deep inside its page, a model card six,
# a skops schema 25: far more is an attack or a bug, refused before the parser can recurse.
MAX_DEPTH = 64
# The longest number a card or catalogue needs is a float's repr (24 characters); a longer one
# is absurd, and a long integer costs time quadratic in its digits to convert (Python 3.10 has
# no limit of its own).
MAX_NUMBER_CHARS = 100
# The demo catalogue is 870 bytes an activity: 1 GiB is 1.2 million activities.
MAX_CATALOGUE_BYTES = 1 << 30
# The shipped model's card is 59 KB.
MAX_CARD_BYTES = 4 << 20

# Scanned in slices, so that the temporary copies stay small beside the text.
_SLICE = 8 << 20
_QUOTE, _BACKSLASH = 0x22, 0x5C
_NOT_MARKS = bytes(b for b in range(256) if b not in b'"[]{}')
# Number characters to "0", quotes kept, everything else to a space.
_NUMBER_MAP = bytes(
    0x30 if b in b"0123456789+-.eE" else b if b == _QUOTE else 0x20 for b in range(256)
)


def problem(
    data: bytes | bytearray | memoryview,
    *,
    max_depth: int = MAX_DEPTH,
    max_number_chars: int = MAX_NUMBER_CHARS,
) -> str | None:
    """Why a JSON text (UTF-8 bytes) must not be parsed — nested deeper than ``max_depth`` or
    holding a number longer than ``max_number_chars`` — or None.

    Whole-slice byte operations, no Python step per token: 0.5 s for a 91 MB catalogue that
    ``json.loads`` takes 2.7 s over, where pull's token-by-token scan took 5.7 s. Exact for
    the part of a text the parser accepts, which is all it would recurse into or convert."""
    view = memoryview(data).cast("B")
    long_run = b"0" * (max_number_chars + 1)
    depth, in_string, carry = 0, False, 0
    start, size = 0, len(view)
    while start < size:
        end = min(start + _SLICE, size)
        while end < size and view[end - 1] == _BACKSLASH:
            end += 1  # a slice never ends inside an escape, so each slice pairs its own
        chunk = bytes(view[start:end])
        start = end
        if b"\\" in chunk:
            # An escaped quote or backslash is no string boundary: drop them (pairs first).
            chunk = chunk.replace(b"\\\\", b"").replace(b'\\"', b"")
        starts_in_string = in_string

        # Structure: quotes and brackets only, a few percent of the text.
        marks = np.frombuffer(chunk.translate(None, _NOT_MARKS), np.uint8)
        if len(marks):
            quote = marks == _QUOTE
            inside = np.cumsum(quote, dtype=np.uint8)  # wraps at 256: parity is what counts
            inside &= 1
            if in_string:
                inside ^= 1
            in_string = bool(inside[-1])
            brackets = marks[(inside == 0) & ~quote]
            if len(brackets):
                steps = np.where((brackets == 0x5B) | (brackets == 0x7B), 1, -1)
                levels = np.cumsum(steps.astype(np.int32), dtype=np.int64)
                if depth + int(levels.max()) > max_depth:
                    return f"JSON nested deeper than {max_depth} levels"
                depth += int(levels[-1])

        # Numbers: a run of number characters outside strings.
        digits = chunk.translate(_NUMBER_MAP)
        edge = max_number_chars + 1  # runs at the edges need only be measured this far
        lead = min(len(digits), edge) - len(digits[:edge].lstrip(b"0"))
        if not starts_in_string and carry + lead > max_number_chars:
            return f"a number longer than {max_number_chars} characters"
        at, counted, quotes = digits.find(long_run), 0, 0
        while at >= 0:
            quotes += digits.count(b'"', counted, at)
            counted = at
            if (quotes % 2 == 1) == starts_in_string:
                return f"a number longer than {max_number_chars} characters"
            after = [i for i in (digits.find(b" ", at), digits.find(b'"', at)) if i >= 0]
            if not after:
                break
            at = digits.find(long_run, min(after))
        tail = min(len(digits), edge) - len(digits[-edge:].rstrip(b"0"))
        carry = 0 if in_string else (carry + tail if tail == len(digits) else tail)
    return None


def read_bytes(
    path: str | Path,
    max_bytes: int,
    *,
    error: type[Exception] = ValueError,
    missing: str = "no such file",
) -> bytes:
    """A file's bytes, reading at most ``max_bytes + 1`` of them whatever its size claims;
    ``error`` (naming the file) when it is missing, unreadable or larger than ``max_bytes``."""
    try:
        with open(path, "rb") as f:
            # Sized by the file, not the limit: read(limit) allocates the whole limit first.
            want = min(os.fstat(f.fileno()).st_size, max_bytes) + 1
            chunks, total = [], 0
            while total <= max_bytes and (chunk := f.read(want)):
                chunks.append(chunk)
                total += len(chunk)
                want = min(1 << 20, max_bytes + 1 - total)  # a file growing, or /proc
            data = b"".join(chunks)
    except FileNotFoundError:
        raise error(f"{path}: {missing}") from None
    except OSError as exc:
        raise error(f"{path}: cannot be read ({exc.__class__.__name__})") from None
    if len(data) > max_bytes:
        raise error(f"{path}: larger than the limit of {max_bytes} bytes")
    return data


def read_checked(
    path: str | Path,
    max_bytes: int,
    *,
    error: type[Exception] = ValueError,
    max_depth: int = MAX_DEPTH,
    max_number_chars: int = MAX_NUMBER_CHARS,
) -> bytes:
    """:func:`read_bytes`, then :func:`problem`: the bytes of a JSON (or JSON Lines) file that
    ``json.loads`` may be given without recursing deep or converting an absurd number."""
    data = read_bytes(path, max_bytes, error=error)
    why = problem(data, max_depth=max_depth, max_number_chars=max_number_chars)
    if why:
        raise error(f"{path}: {why}")
    return data


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("a number too large to be finite")
    return value


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def loads(
    data: bytes | str,
    where: str,
    *,
    error: type[Exception] = ValueError,
    max_depth: int = MAX_DEPTH,
    max_number_chars: int = MAX_NUMBER_CHARS,
    finite: bool = False,
) -> Any:
    """``json.loads`` of a text checked first by :func:`problem`; every failure is one
    ``error`` naming ``where``, never a traceback. With ``finite``, NaN, Infinity and numbers
    too large for a float are refused too."""
    if isinstance(data, str):
        raw = data.encode("utf-8", "surrogatepass")
        text = data
    else:
        raw = data
        try:
            text = bytes(data).decode("utf-8-sig")
        except UnicodeDecodeError:
            raise error(f"{where}: not JSON (not UTF-8 text)") from None
    why = problem(raw, max_depth=max_depth, max_number_chars=max_number_chars)
    if why:
        raise error(f"{where}: {why}")
    hooks: dict[str, Any] = {"parse_float": _finite, "parse_constant": _refuse_constant}
    try:
        return json.loads(text, **(hooks if finite else {}))
    except json.JSONDecodeError as exc:
        raise error(
            f"{where}: not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    except (ValueError, RecursionError) as exc:  # a refused number; a depth missed is a bug
        reason = str(exc) if finite and isinstance(exc, ValueError) else type(exc).__name__
        raise error(f"{where}: not JSON ({reason})") from None


def load(
    path: str | Path,
    max_bytes: int,
    *,
    error: type[Exception] = ValueError,
    missing: str = "no such file",
    max_depth: int = MAX_DEPTH,
    max_number_chars: int = MAX_NUMBER_CHARS,
    finite: bool = False,
) -> Any:
    """A JSON file read with :func:`read_bytes` and parsed with :func:`loads`."""
    data = read_bytes(path, max_bytes, error=error, missing=missing)
    return loads(
        data, str(path), error=error, max_depth=max_depth, max_number_chars=max_number_chars,
        finite=finite,
    )  # fmt: skip


def current_target(folder: str | Path, *, error: type[Exception] = ValueError) -> str | None:
    """The version folder ``folder/current`` names; None when there is no ``current``.
    ``error`` when ``current`` is not a symlink to a folder directly inside ``folder``."""
    folder = Path(folder)
    link = folder / CURRENT
    try:
        os.readlink(link)
    except FileNotFoundError:
        return None
    except OSError:  # there, but not a symlink
        raise error(f"{link}: is not a symlink to a version folder") from None
    target = Path(os.path.realpath(link))
    if target.parent != Path(os.path.realpath(folder)) or target.name == CURRENT:
        raise error(f"{link}: points outside {folder}; refusing it")
    if not target.is_dir():
        raise error(f"{link}: points at a version that is not there ({target.name})")
    return target.name
